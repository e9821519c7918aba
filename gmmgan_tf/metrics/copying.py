"""Copy guard: do the samples sit closer to the training images than new real images do?

With a few thousand training images a generator can score well on NDB by reproducing them.

    copy_ratio = median_n min_m ||s_n - t_m|| / median_n min_m ||h_n - t_m||,

s the samples, h the held-out real images, t the training images (flattened pixels, L2). About 1
for a generator that makes new images as close to the training set as real ones are; near 0 for
one that copies; above 1 for samples farther from every training image than real images are.
L2 favours blur (an average-looking image is close to many), so read a low ratio with sharpness.
"""
from __future__ import annotations

import numpy as np

from gmmgan_tf.metrics.ndb import nearest_centre


def nearest_distances(queries: np.ndarray, reference: np.ndarray,
                      batch_size: int = 1024) -> np.ndarray:
    """L2 distance [N] from every query to its nearest reference row, both [N, ...] arrays.

    The neighbour is found by float32 matrix products in batches of `batch_size` queries
    (20,000 x 4,000 MNIST images in seconds, ~16 MB per product); its distance is then taken from
    the pixel differences, not ||q||^2 + ||t||^2 - 2 q.t, whose float32 cancellation leaves some
    exact copies of MNIST-like images at ~0.02 instead of 0.
    """
    q, t = _flat32(queries, "queries"), _flat32(reference, "reference")
    if q.shape[1] != t.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values each, the reference {t.shape[1]}")
    nearest = nearest_centre(q, t, batch_size)
    return np.linalg.norm(q - t[nearest], axis=1)


def copy_ratio(samples: np.ndarray, train: np.ndarray, held_out: np.ndarray,
               batch_size: int = 1024) -> dict[str, float]:
    """ratio, samples_median, held_out_median: see the module docstring."""
    samples_median = float(np.median(nearest_distances(samples, train, batch_size)))
    held_out_median = float(np.median(nearest_distances(held_out, train, batch_size)))
    if held_out_median == 0:
        raise ValueError("half or more of the held-out images are copies of training images; "
                         "the split leaks and the copy ratio has no scale")
    return {"ratio": samples_median / held_out_median, "samples_median": samples_median,
            "held_out_median": held_out_median}


def _flat32(images: np.ndarray, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim < 2 or images.shape[0] == 0:
        raise ValueError(f"{name}: need an array [N, ...] with N >= 1, got shape {images.shape}")
    return images.reshape(len(images), -1).astype(np.float32, copy=False)
