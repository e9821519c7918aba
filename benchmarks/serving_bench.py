"""PCM SavedModel serving cost: latency at batch 1 and throughput at batch 256 through the loaded
`serving_default` signature (float32 images in [-1, 1] -> Pr(k|x), component), in process.

The model is the default gmmgan recipe, untrained (the cost does not depend on the weights),
exported with `export.export_model` and loaded with `tf.saved_model.load`, as TF Serving would.
Batch 1: --calls timed calls after 10 warm-up calls, p50 and p99. Batch 256: median of 10.

    .venv/bin/python -m benchmarks.serving_bench [--calls 300]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, even where a GPU exists
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import machine_line  # noqa: E402
from gmmgan_tf import export  # noqa: E402
from gmmgan_tf.config import Config  # noqa: E402
from gmmgan_tf.gan import GMMGAN  # noqa: E402


def call_seconds(signature, images: tf.Tensor, calls: int) -> np.ndarray:
    (name,) = signature.structured_input_signature[1]
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        signature(**{name: images})["responsibilities"].numpy()
        times.append(time.perf_counter() - start)
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    config = Config().resolved()
    shape = (config.image_size, config.image_size, 1)
    model = GMMGAN(config, shape)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        written = export.export_model(model, tmp)
        signature = tf.saved_model.load(written[export.PCM]).signatures["serving_default"]
        one = tf.constant(rng.uniform(-1, 1, (1, *shape)).astype(np.float32))
        many = tf.constant(rng.uniform(-1, 1, (256, *shape)).astype(np.float32))
        call_seconds(signature, one, 10)
        call_seconds(signature, many, 2)
        single = call_seconds(signature, one, args.calls)
        batched = np.median(call_seconds(signature, many, 10))
    print(machine_line())
    print(f"\nPCM of the default recipe ({shape} images, K = {config.num_components}), "
          "loaded SavedModel, signature serving_default, in process (no RPC).\n")
    print("| batch | p50 ms | p99 ms | images/s |")
    print("|---|---|---|---|")
    print(f"| 1 | {1e3 * np.percentile(single, 50):.2f} | {1e3 * np.percentile(single, 99):.2f} "
          f"| {1 / np.median(single):.0f} |")
    print(f"| 256 | {1e3 * batched:.1f} | | {256 / batched:.0f} |")


if __name__ == "__main__":
    main()
