"""Sharpness: relative energy of the high-pass filtered images (Richardson & Weiss 2018).

The authors never published their code, so this project defines it as

    sharpness = log10( mean_n ||L * u_n||^2 / ||u_n||^2 ),

where u_n = (x_n + 1) / 2 is image n mapped from [-1, 1] to [0, 1] (so the denominator is the
image's energy, not its distance from mid-grey), L * u the 'valid' 2-D convolution of every channel
with the 4-neighbour Laplacian [[0, 1, 0], [1, -4, 1], [0, 1, 0]] (no border effects), and the
norms are over all pixels and channels of one image. Blurring removes high frequencies, so
blurred images score lower; higher is sharper. Values are comparable only across images of the
same size and data set, not with the paper's CelebA numbers.
"""
from __future__ import annotations

import numpy as np


def laplacian(images: np.ndarray) -> np.ndarray:
    """'Valid' 4-neighbour Laplacian of NHWC images: [N, H-2, W-2, C]."""
    x = images
    return (x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:]
            - 4.0 * x[:, 1:-1, 1:-1])


def sharpness(images: np.ndarray) -> float:
    """log10 of the mean relative high-pass energy (see the module docstring)."""
    x = np.asarray(images, np.float64)
    if x.ndim != 4 or x.shape[1] < 3 or x.shape[2] < 3 or x.shape[0] == 0:
        raise ValueError(f"need NHWC images at least 3x3, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinite values")
    u = (x + 1.0) / 2.0
    energy = np.sum(u ** 2, axis=(1, 2, 3))
    if np.any(energy == 0):
        raise ValueError("an image is all -1 (black): its relative energy is undefined")
    high = np.sum(laplacian(u) ** 2, axis=(1, 2, 3))
    return float(np.log10(np.mean(high / energy)))
