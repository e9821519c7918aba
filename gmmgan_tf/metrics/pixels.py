"""Pixel statistics of NHWC images in [-1, 1], to see how samples differ from real images:

- intensity: the mean of u = (x + 1) / 2 over all pixels and channels (0 black, 1 white);
- ink: the fraction of pixel values above mid-grey, x > 0 (on MNIST the strokes: thicker, extra
  or missing strokes move it);
- per group (a generator component, a class): both, and sharpness (`sharpness.py`).
"""
from __future__ import annotations

import numpy as np

from gmmgan_tf.metrics.sharpness import sharpness


def pixel_statistics(images: np.ndarray) -> dict[str, float]:
    """intensity and ink of a set of images (see the module docstring)."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"need NHWC images, got shape {x.shape}")
    return {"intensity": (float(np.mean(x, dtype=np.float64)) + 1.0) / 2.0,
            "ink": float(np.mean(x > 0))}


def group_statistics(images: np.ndarray, groups: np.ndarray,
                     num_groups: int) -> dict[str, np.ndarray]:
    """intensity, ink and sharpness [num_groups] of the images of each group id; NaN for a group
    without images (0 would read as a black or blurred group)."""
    images, groups = np.asarray(images), np.asarray(groups)
    if groups.shape != (len(images),):
        raise ValueError(f"need one group id per image, got {groups.shape} for {len(images)}")
    out = {name: np.full(num_groups, np.nan) for name in ("intensity", "ink", "sharpness")}
    for g in np.unique(groups):
        members = images[groups == g]
        stats = pixel_statistics(members)
        out["intensity"][g], out["ink"][g] = stats["intensity"], stats["ink"]
        out["sharpness"][g] = sharpness(members)
    return out
