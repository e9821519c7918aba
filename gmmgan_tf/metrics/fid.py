"""FID, IS and KID from features and class probabilities (any feature extractor).

The same functions give the standard numbers from InceptionV3 (`inception.py`, when
`--inception_weights` is given) and the *domain* numbers from the project's own classifier
(`domain_classifier.py`); callers label which is which.

- FID (Heusel et al. 2017): ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2}); the trace of
  the matrix square root from symmetric eigendecompositions (default, fast) or from
  `scipy.linalg.sqrtm` (real part), see `frechet_distance`.
- IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction; optionally
  averaged over `splits` disjoint parts as in the original code (mean and std over the parts).
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  k(a, b) = (a.b / d + 1)^3, averaged over random subsets.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg


def _features(features: np.ndarray, name: str, min_rows: int = 2) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < min_rows:
        raise ValueError(f"{name}: need a [N, d] array with N >= {min_rows}, got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name}: contains NaN or infinite values; check the images")
    return f


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [d] and unbiased covariance [d, d] of feature rows."""
    f = _features(features, "features")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, method: str = "eigh", eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    The trace term tr((S1 S2)^{1/2}) equals tr((S1^{1/2} S2 S1^{1/2})^{1/2}), the sum of the
    square roots of the eigenvalues of a symmetric PSD matrix. method="eigh" computes it so (two
    symmetric eigendecompositions, as TF-GAN does): 6 s against 33 s for `scipy.linalg.sqrtm`
    at d = 2048 on two busy cores, equal to 1e-11 relative. method="sqrtm" is the pytorch-fid
    form (sqrtm of S1 S2, real part, eps * I added when the product is singular).
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different sizes: {mu1.shape} vs {mu2.shape}; use the "
                         "same feature extractor for both sets")
    if method == "eigh":
        trace_sqrt = _trace_sqrt_product_eigh(sigma1, sigma2)
    elif method == "sqrtm":
        trace_sqrt = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        raise ValueError(f"unknown FID method {method!r}; use 'eigh' or 'sqrtm'")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # round-off can make w slightly < 0
    inner = root1 @ sigma2 @ root1
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None))))


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if caught or not np.all(np.isfinite(covmean)):
        # Singular product (fewer samples than dimensions, dead ReLU features): regularise as
        # the pytorch-fid reference does.
        offset = eps * np.eye(len(sigma1))
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    return float(np.trace(np.real(covmean)))


def fid(features1: np.ndarray, features2: np.ndarray, method: str = "eigh") -> float:
    """FID between two sets of feature rows (`method` as in `frechet_distance`)."""
    f1, f2 = _features(features1, "features1"), _features(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sizes differ ({f1.shape[1]} vs {f2.shape[1]}); use the same "
                         "feature extractor for both sets")
    return frechet_distance(*gaussian_statistics(f1), *gaussian_statistics(f2), method=method)


def inception_score(probabilities: np.ndarray, splits: int = 1,
                    eps: float = 1e-12) -> tuple[float, float]:
    """(mean, std) over `splits` parts of exp(mean_x sum_y p(y|x) log(p(y|x) / p(y)))."""
    p = _features(probabilities, "probabilities", min_rows=1)
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probabilities: rows must be non-negative and sum to 1 (pass softmax "
                         "outputs, not logits)")
    if not 1 <= splits <= len(p):
        raise ValueError(f"splits must be in [1, {len(p)}], got {splits}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + eps) - np.log(marginal + eps)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(a, b) = (a.b / d + 1)^3 for all row pairs."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2: mean_{i!=j} k(x_i,x_j) + mean_{i!=j} k(y_i,y_j) - 2 mean k(x_i,y_j)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean())


def kid(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 10,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over random subsets (without replacement inside one)."""
    f1, f2 = _features(features1, "features1"), _features(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sizes differ ({f1.shape[1]} vs {f2.shape[1]})")
    size = min(subset_size, len(f1), len(f2))
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(f1[rng.choice(len(f1), size, replace=False)],
                            f2[rng.choice(len(f2), size, replace=False)])
              for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))
