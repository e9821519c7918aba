"""Start-up time and peak memory of the program, each in a fresh process.

Rows: `main.py --helpshort` (median of 3); a training fragment of --steps steps as
`train.train_and_evaluate` runs it (flags, data load, model, trace, fit), on mnist_5k
(flags/quick.cfg, `make run`'s flags) and on Fashion-MNIST (flags/fashion_mnist.cfg, 60,000
images loaded and cached) when its data is on this machine, with the time from process start to
the end of the first training step; with --full, whole `main.py` runs of 1 epoch of --steps
steps (adding the checkpoint, samples and the end-of-run evaluation, minutes on Fashion-MNIST).
Peak RSS is the child's maximum resident set size (wait4's ru_maxrss).

    .venv/bin/python -m benchmarks.process_bench [--steps 20] [--full]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import machine_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")

# Mirrors train.train_and_evaluate's training: flags, data, model, fit; prints the clock at the
# end of the first step and of the last.
TRAIN = r"""
import json, sys, time
from absl import flags
from gmmgan_tf import cli
cli.define_flags()
flags.FLAGS(["train_fragment"] + sys.argv[1:])
config = cli.config_from_flags()
import keras
from gmmgan_tf import data as data_lib
from gmmgan_tf.distribute import make_strategy
from gmmgan_tf.train import build_model
bundle = data_lib.load(config)
model = build_model(config, bundle.image_shape, make_strategy(config))

class FirstStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.first_step_end = time.time()

clock = FirstStep()
model.fit(bundle.train_dataset(config.batch_size, config.seed), epochs=1,
          steps_per_epoch=config.steps_per_epoch, callbacks=[clock], verbose=0)
print(json.dumps({"first_step_end": clock.first_step_end, "end": time.time()}))
"""
TRAININGS = (("mnist_5k", "flags/quick.cfg"), ("fashion_mnist", "flags/fashion_mnist.cfg"))


def run(args: list[str], exit_codes=(0,)) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of a child process; fails on other exit codes."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.time()
        child = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=ENV, text=True,
                                 stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # reaps it, with its resource usage
        wall = time.time() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode not in exit_codes:
            raise RuntimeError(f"{' '.join(args)[:160]} exited {child.returncode}: "
                               f"{err.read()[-800:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--full", action="store_true", help="also whole main.py runs")
    args = parser.parse_args()
    rows = []
    # absl's --helpshort exits with 1 after printing the help.
    helps = [run(["main.py", "--helpshort"], exit_codes=(0, 1)) for _ in range(3)]
    rows.append(("`main.py --helpshort`", statistics.median(h[0] for h in helps), "",
                 max(h[1] for h in helps)))
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, flagfile in TRAININGS:
            command = [f"--flagfile={flagfile}", f"--steps_per_epoch={args.steps}"]
            name = f"{dataset}: {args.steps} training steps (`{' '.join(command)}`)"
            try:
                start = time.time()
                wall, rss, out = run(["-c", TRAIN, *command])
                first = json.loads(out.strip().splitlines()[-1])["first_step_end"] - start
                rows.append((name, wall, f"{first:.1f}", rss))
            except RuntimeError as e:
                rows.append((f"{name}: failed, {str(e).splitlines()[-1][:200]}", float("nan"),
                             "", float("nan")))
            if args.full:
                command += ["--epochs=1", f"--workdir={tmp}/{dataset}"]
                wall, rss, _ = run(["main.py", *command])
                rows.append((f"`main.py {' '.join(command[:3])}` (+ checkpoint, samples, "
                             "evaluation)", wall, "", rss))
    print(machine_line())
    print("\n| process | wall s | s to end of first step | peak RSS MiB |")
    print("|---|---|---|---|")
    for name, wall, first, rss in rows:
        print(f"| {name} | {wall:.1f} | {first} | {rss:.0f} |")


if __name__ == "__main__":
    main()
