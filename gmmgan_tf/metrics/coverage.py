"""Mode coverage: which classes the generator makes, judged by the domain classifier.

For C classes and generated images with predicted classes c_n:
- shares q_c = #{n : c_n = c} / N (the class histogram);
- covered = #{c : q_c >= 1 / (4 C)}, a class counts as generated when it gets at least a quarter
  of its uniform share;
- kl = KL(q || p) = sum_c q_c log(q_c / p_c), p the training class distribution (uniform when not
  given). This direction (generated against training, as PacGAN/VEEGAN report it) stays finite
  when the generator misses classes; p is smoothed, p' = (p + eps) / (1 + C eps), so that a class
  absent from the training set cannot make it infinite. Missing modes show in `covered`.
"""
from __future__ import annotations

import numpy as np


def class_histogram(predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Shares q_c of the predicted classes."""
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or predicted.size == 0:
        raise ValueError(f"need a non-empty 1-D array of predicted classes, got {predicted.shape}")
    if predicted.min() < 0 or predicted.max() >= num_classes:
        raise ValueError(f"predicted classes must be in [0, {num_classes}), got "
                         f"[{predicted.min()}, {predicted.max()}]")
    return np.bincount(predicted, minlength=num_classes) / predicted.size


def mode_coverage(predicted: np.ndarray, num_classes: int,
                  training_distribution: np.ndarray | None = None,
                  eps: float = 1e-6) -> dict:
    """covered classes, their count share threshold, shares and KL(generated || training)."""
    q = class_histogram(predicted, num_classes)
    if training_distribution is None:
        p = np.full(num_classes, 1.0 / num_classes)
    else:
        p = np.asarray(training_distribution, np.float64)
        if p.shape != (num_classes,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"training_distribution must be {num_classes} non-negative shares "
                             "summing to 1")
    p = (p + eps) / (1.0 + num_classes * eps)
    threshold = 1.0 / (4 * num_classes)
    support = q > 0
    return {
        "covered": int(np.sum(q >= threshold)),
        "num_classes": num_classes,
        "threshold": threshold,
        "shares": q,
        "kl": float(np.sum(q[support] * np.log(q[support] / p[support]))),
    }
