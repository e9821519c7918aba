"""Single-device vs MirroredStrategy step time, and the sizes of the exported SavedModels, for the
mnist_5k default configuration (flags/mnist_5k.cfg: K = 10, d = 32, batch 32, full width).

Step time: the median over `--steps` of one Algorithm 1 step (after 3 warm-up steps) on random
images of the global batch, traced once with tf.function; the mirrored run splits the CPU into
2 logical devices (`--num_virtual_devices=2`) in a fresh interpreter, since that must happen
before TensorFlow starts. On a CPU both "devices" share the same cores, so this measures the
cost of distribution (all_gather, synchronized BatchNorm, gradient all-reduce), not a speed-up.
Export sizes: `du` of each SavedModel directory (they do not depend on training).

    PYTHONPATH=. .venv/bin/python benchmarks/distribute_bench.py [--steps 20]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_SHAPE = (28, 28, 1)


def mnist_5k_config(**overrides):
    from gmmgan_tf.cli import define_flags, config_from_flags
    from absl import flags

    define_flags()
    flags.FLAGS([sys.argv[0], "--flagfile=flags/mnist_5k.cfg"])
    import dataclasses

    return dataclasses.replace(config_from_flags(), **overrides).validate()


def time_steps(strategy_name: str, steps: int) -> dict:
    """Runs in its own interpreter: seconds per step under one strategy."""
    config = mnist_5k_config(strategy=strategy_name,
                             num_virtual_devices=2 if strategy_name == "mirrored" else 0)
    from gmmgan_tf.distribute import make_strategy

    strategy = make_strategy(config)
    import tensorflow as tf

    from gmmgan_tf.train import build_model

    model = build_model(config, IMAGE_SHAPE, strategy)
    images = np.random.default_rng(0).uniform(-1, 1, (config.batch_size, *IMAGE_SHAPE))
    dataset = tf.data.Dataset.from_tensors(images.astype(np.float32)).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step = tf.function(lambda batch: strategy.run(model.train_step, args=(batch,)))
    times = []
    for i in range(steps + 3):
        batch = next(iterator)
        start = time.perf_counter()
        out = step(batch)
        float(strategy.experimental_local_results(out["d_loss"])[0])  # wait for the step
        if i >= 3:
            times.append(time.perf_counter() - start)
    return {"strategy": strategy_name, "replicas": strategy.num_replicas_in_sync,
            "seconds_per_step": statistics.median(times)}


def export_sizes() -> dict:
    from gmmgan_tf import export
    from gmmgan_tf.gan import GMMGAN

    model = GMMGAN(mnist_5k_config(), IMAGE_SHAPE)
    with tempfile.TemporaryDirectory() as out:
        written = export.export_model(model, out)
        return {name: int(subprocess.check_output(["du", "-sk", path]).split()[0])
                for name, path in written.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_steps(args.child, args.steps)))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    rows = []
    for name in ("default", "mirrored"):
        out = subprocess.run([sys.executable, __file__, f"--child={name}", f"--steps={args.steps}"],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    from benchmarks.common import machine_line

    print(machine_line())
    print()
    print("| strategy | replicas | global batch | s / step | vs 1 device |")
    print("|---|---|---|---|---|")
    base = rows[0]["seconds_per_step"]
    for row in rows:
        print(f"| {row['strategy']} | {row['replicas']} | 32 | {row['seconds_per_step']:.3f} | "
              f"{row['seconds_per_step'] / base:.2f}x |")
    print()
    print("| SavedModel (mnist_5k default config) | size |")
    print("|---|---|")
    for name, kib in export_sizes().items():
        print(f"| {name}/<v>/ | {kib / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
