"""The headline table of docs/RESULTS.md's protocol section: one row per trained seed, then
mean ± sd, from each run's final `metrics.json` (validation-side choices beside the test split's
scores, the sample measures on the run's final samples).

    .venv/bin/python docs/seed_table.py runs/fashion_test/s3 runs/fashion_test/s4 ...

A row is named by its run's seed (config.json). A run without a key shows '–' there.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

# (metrics.json key, column title, digits)
COLUMNS = (("val_warm_start_acc", "validation: warm start ACC", 3),
           ("val_pretrained_pcm_acc", "pre-trained PCM ACC", 3),
           ("val_pcm_acc", "final PCM ACC", 3),
           ("val_pcm_nmi", "final PCM NMI", 3),
           ("pcm_acc", "**test ACC**", 3),
           ("pcm_nmi", "**test NMI**", 3),
           ("pcm_ari", "test ARI", 3),
           ("agreement_identity", "agreement", 3),
           ("component_purity", "purity", 3),
           ("diversity_ratio_min", "diversity (min)", 3),
           ("component_classes_generated", "classes generated", 0),
           ("ndb_over_k", "NDB/K", 2),
           ("ndb_js", "NDB JS", 4),
           ("ref_ndb_over_k", "test images' NDB/K", 2),
           ("domain_fid", "domain FID", 1),
           ("copy_ratio", "copy ratio", 2),
           ("sharpness", "sharpness", 3),
           ("ref_sharpness", "test images' sharpness", 3))


def load(run: str) -> tuple[str, dict]:
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(run, "config.json")) as f:
        seed = json.load(f).get("seed", "?")
    return str(seed), metrics


def cell(values: list, digits: int, spread: bool) -> str:
    values = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    if not values:
        return "–"
    if not spread or len(values) == 1:  # one run's value has no spread to show
        return f"{values[0]:.{digits}f}"
    digits = max(digits, 1)  # a mean of counts (9, 8) reads 8.5 ± 0.7, not a rounded 8 ± 1
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(runs: list[str]) -> str:
    loaded = [load(run) for run in runs]
    lines = ["| seed | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for seed, metrics in loaded:
        lines.append(f"| {seed} | " + " | ".join(
            cell([metrics.get(key)], digits, spread=False) for key, _, digits in COLUMNS) + " |")
    if len(loaded) > 1:
        lines.append("| **mean ± sd** | " + " | ".join(
            cell([m.get(key) for _, m in loaded], digits, spread=True)
            for key, _, digits in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: docs/seed_table.py <run directory> [<run directory> ...]")
    missing = [run for run in sys.argv[1:] if not os.path.isfile(os.path.join(run, "metrics.json"))]
    if missing:
        sys.exit(f"no metrics.json in {', '.join(missing)}: pass finished training runs")
    print(table(sys.argv[1:]))
