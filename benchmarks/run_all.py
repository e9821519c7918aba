"""`make bench`: every benchmark at sizes that keep the whole suite under 10 minutes on 2 CPU
cores, each in its own process; the tables are printed and appended to benchmarks/RESULTS.md
under the date, the git revision and the command that made each one.

    .venv/bin/python -m benchmarks.run_all [--only train_step_bench,pipeline_bench]
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# (module, arguments); modules that are not there (yet) are skipped.
SUITE = (
    ("train_step_bench", ["--rounds", "5", "--steps", "2"]),
    ("pipeline_bench", ["--steps", "10"]),
    ("process_bench", ["--steps", "10"]),
    ("serving_bench", ["--calls", "200"]),
    ("metrics_bench", []),
    ("mfa_bench", []),
    ("distribute_bench", ["--steps", "5"]),
)


def revision() -> str:
    result = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated module names")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    sections = [f"\n## `make bench`, {datetime.datetime.now():%Y-%m-%d %H:%M}, revision "
                f"{revision()}\n"]
    suite_start = time.time()
    for module, arguments in SUITE:
        if (only and module not in only) or not (ROOT / "benchmarks" / f"{module}.py").exists():
            continue
        command = [sys.executable, "-m", f"benchmarks.{module}", *arguments]
        shown = " ".join(["python", "-m", f"benchmarks.{module}", *arguments])
        print(f"--- {shown}", flush=True)
        start = time.time()
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.time() - start
        body = (result.stdout.strip() if result.returncode == 0 else
                f"FAILED (exit {result.returncode}):\n\n```\n{result.stderr.strip()[-1500:]}\n```")
        print(body, flush=True)
        sections.append(f"\n### `{shown}` ({seconds:.0f} s)\n\n{body}\n")
    sections.append(f"\nWhole suite: {time.time() - suite_start:.0f} s.\n")
    with open(RESULTS, "a") as f:
        f.write("".join(sections))
    print(f"Appended to {RESULTS.relative_to(ROOT)}.")


if __name__ == "__main__":
    main()
