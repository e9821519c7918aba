"""Input pipeline: the share of training time spent waiting for the next batch.

The loop is fit's: take the next batch of `DataBundle.train_dataset` (cache -> shuffle -> batch
-> prefetch) and run the compiled train step (`model.make_train_function()`, default gmmgan
recipe) on it. While a step runs, prefetch prepares the next batch, so the time spent in
`next(iterator)` is the stall a training run sees. Reported after a warm-up (the first batches
fill the shuffle buffer and trace the step): median wait, median step, and total wait / total
time. Fashion-MNIST (60,000 images) is included when its data is on this machine.

    .venv/bin/python -m benchmarks.pipeline_bench [--steps 20]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, even where a GPU exists
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import machine_line  # noqa: E402
from gmmgan_tf import data as data_lib  # noqa: E402
from gmmgan_tf.config import Config  # noqa: E402
from gmmgan_tf.data_check import check_available  # noqa: E402
from gmmgan_tf.errors import UserError  # noqa: E402
from gmmgan_tf.gan import GMMGAN  # noqa: E402

WARMUP = 3


def waits_and_steps(config: Config, steps: int) -> tuple[list[float], list[float], float]:
    """Per-step seconds waiting for data and computing, after the warm-up; and load seconds."""
    start = time.perf_counter()
    bundle = data_lib.load(config)
    load_seconds = time.perf_counter() - start
    model = GMMGAN(config, bundle.image_shape)
    model.compile(jit_compile=config.jit_compile)
    model.make_train_function()
    iterator = iter(bundle.train_dataset(config.batch_size, config.seed))
    waits, computes = [], []
    for _ in range(WARMUP + steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        float(model.train_function([batch])["d_loss"])
        waits.append(fetched - start)
        computes.append(time.perf_counter() - fetched)
    return waits[WARMUP:], computes[WARMUP:], load_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for dataset in ("mnist_5k", "fashion_mnist"):
        config = dataclasses.replace(Config(), dataset=dataset).resolved().validate()
        try:
            check_available(config)
        except UserError as e:
            rows.append(f"| {dataset} | not measured: {e} | | | | |")
            continue
        waits, computes, load_seconds = waits_and_steps(config, args.steps)
        share = sum(waits) / (sum(waits) + sum(computes))
        rows.append(f"| {dataset} | {load_seconds:.1f} | {1e3 * statistics.median(waits):.2f} "
                    f"| {1e3 * max(waits):.1f} | {1e3 * statistics.median(computes):.0f} "
                    f"| {100 * share:.2f} % |")
    print(machine_line())
    print(f"\nDefault gmmgan recipe (M = {Config().batch_size}), {args.steps} steps after "
          f"{WARMUP} warm-up steps; target: waiting < 5 % of the time.\n")
    print("| data set | load s | median wait ms | max wait ms | median step ms | waiting |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
