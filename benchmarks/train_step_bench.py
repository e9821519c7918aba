"""Algorithm 1's compiled train step against the vanilla DCGAN step, side by side in one process.

Every variant uses the recipe of flags/base.cfg (M = 32 real images, K = 10, d = 32, width 1,
28x28 mnist_5k images) and generates the same M*K fakes a step through the same G and D:
`gaussian` (vanilla DCGAN: N(0, I) prior, no PCM, no mode-seeking term), `gmmgan` (separate D
and PCM encoders), `gmmgan --shared_encoder` and `gmmgan --r1_weight=1` (R1's second-order
gradients, a backward pass a head), each with XLA (`jit_compile`) off and on. The timed function is the
one `fit` runs, `model.make_train_function()`, on one fixed batch (no input pipeline: see
pipeline_bench.py). After a warm-up (tracing and compilation), rounds interleave all variants in
a rotating order, so load from other jobs hits them alike; each cell is the median over rounds,
and "x vanilla" is the median of the per-round ratios to the vanilla step with the same jit
(and the same revision).

--baseline_rev=<git revision> adds the same variants built from that revision's gmmgan_tf/gan.py
(the rest of the package as it is now), for before/after ratios from one run.

    .venv/bin/python -m benchmarks.train_step_bench [--rounds 7] [--steps 3] [--jit off,on]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import statistics
import subprocess
import time
import types

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, even where a GPU exists
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import machine_line  # noqa: E402
from gmmgan_tf import data as data_lib  # noqa: E402
from gmmgan_tf.config import Config  # noqa: E402
from gmmgan_tf.gan import GMMGAN  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = (("vanilla DCGAN (--model=gaussian --diversity_weight=0)",
             {"model": "gaussian", "diversity_weight": 0.0}),
            ("gmmgan", {}),
            ("gmmgan --shared_encoder", {"shared_encoder": True}),
            ("gmmgan --r1_weight=1", {"r1_weight": 1.0}))


def gan_class_at(revision: str):
    """GMMGAN as defined by gmmgan_tf/gan.py at a git revision."""
    source = subprocess.run(["git", "show", f"{revision}:gmmgan_tf/gan.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"gan_at_{revision}")
    exec(compile(source, f"{revision}:gmmgan_tf/gan.py", "exec"), module.__dict__)
    return module.GMMGAN


def build_train_function(gan_class, config: Config, image_shape):
    """The step `fit` runs (as train.build_model builds the model), or the error that stops it."""
    model = gan_class(config, image_shape)
    model.compile(jit_compile=config.jit_compile)
    model.make_train_function()
    return model.train_function


def seconds_per_step(train_function, batch, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        logs = train_function([batch])
    float(logs["d_loss"])  # waits for the last step
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps timed per variant a round")
    parser.add_argument("--jit", default="off,on", help="comma-separated: off, on")
    parser.add_argument("--baseline_rev", default="", help="also time gan.py at this revision")
    args = parser.parse_args()

    base = Config().resolved()
    bundle = data_lib.load(base)
    batch = tf.constant(bundle.train_images[:base.batch_size])
    classes = [("", GMMGAN)] + ([(f"@{args.baseline_rev}", gan_class_at(args.baseline_rev))]
                                if args.baseline_rev else [])
    jits = [{"off": False, "on": True}[j] for j in args.jit.split(",")]

    cells, failures = {}, []
    for tag, gan_class in classes:
        for jit in jits:
            for name, overrides in VARIANTS:
                config = dataclasses.replace(base, jit_compile=jit, **overrides).validate()
                key = (name + tag, jit)
                start = time.perf_counter()
                try:
                    fn = build_train_function(gan_class, config, bundle.image_shape)
                    seconds_per_step(fn, batch, 2)  # trace, compile, warm up
                except Exception as e:  # noqa: BLE001 -- a variant that cannot compile is a result
                    failures.append(f"{name + tag}, jit {'on' if jit else 'off'}: "
                                    f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                    continue
                cells[key] = {"fn": fn, "times": [], "warmup": time.perf_counter() - start,
                              "vanilla": (VARIANTS[0][0] + tag, jit)}

    keys = list(cells)
    for r in range(args.rounds):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            cells[key]["times"].append(seconds_per_step(cells[key]["fn"], batch, args.steps))

    fakes = base.batch_size * base.num_components
    print(machine_line())
    print(f"\nM = {base.batch_size} real images and M*K = {fakes} generated images a step "
          f"(K = {base.num_components}, d = {base.latent_dim}, {bundle.image_shape} images); "
          f"{args.rounds} interleaved rounds of {args.steps} steps after warm-up; medians.\n")
    print("| train step | jit | ms/step | min-max ms | generated images/s | x vanilla "
          "| warm-up s |")
    print("|---|---|---|---|---|---|---|")
    for (name, jit), cell in cells.items():
        vanilla = cells.get(cell["vanilla"])
        times = np.array(cell["times"])
        ratio = (f"{statistics.median(times / np.array(vanilla['times'])):.2f}"
                 if vanilla else "n/a")
        median = statistics.median(times)
        print(f"| {name} | {'on' if jit else 'off'} | {1e3 * median:.0f} | "
              f"{1e3 * times.min():.0f}-{1e3 * times.max():.0f} | {fakes / median:.0f} | "
              f"{ratio} | {cell['warmup']:.1f} |")
    for failure in failures:
        print(f"\nNot compiled: {failure}")
    print(f"\nLoad average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}.")


if __name__ == "__main__":
    main()
