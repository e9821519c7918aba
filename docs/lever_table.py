"""The table of issue 26's levers (docs/RESULTS.md, "Levers") from docs/run_levers.sh's runs.

Reads `<runs>/<lever>_s<seed>/metrics.json` (each run's final evaluation: 20,000 samples for
the sample metrics, the validation split for clustering) and prints, per lever, each seed's
numbers and their mean ± sample std, then each lever's paired differences from the default
(same seed, same warm start): mean change and on how many seeds the lever is better. Only
validation-side and sample-side numbers are shown: the levers are chosen on them, not on the
test split.

    .venv/bin/python docs/lever_table.py runs/levers
    .venv/bin/python docs/lever_table.py runs/s3 default cover_1 cover_0.3   # BASE LEVER...

With names after the directory, the first is the base that the others are paired with (the
levers measured since diversity 0.3 became the default: docs/run_experiments.sh's runs).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

# The default first: the paired table compares every other lever with it.
LEVERS = (("base", "default (EMA 0.999, diversity 0.1)"),
          ("diffaug", "--diff_augment=color,translation,cutout"),
          ("r1", "--r1_weight=1"),
          ("div03", "--diversity_weight=0.3"),
          ("ttur", "--learning_rate_d=4e-4 --learning_rate_g=1e-4"),
          ("div03gc", "--diversity_weight=0.3 --generator_consistency"),
          ("r1div03", "--r1_weight=1 --diversity_weight=0.3"),
          ("b64", "--batch_size=64"),
          ("div06", "--diversity_weight=0.6"),
          ("rec1div03", "--reconstruction_weight=1 --diversity_weight=0.3"))
SEEDS = (0, 1, 2)
COLUMNS = (("ndb_over_k", "NDB/K"), ("ndb_js", "NDB JS"), ("domain_fid", "domain FID"),
           ("sharpness", "sharpness"), ("copy_ratio", "copy ratio"),
           ("diversity_ratio_min", "diversity (min)"), ("component_purity", "purity"),
           ("component_classes_generated", "classes generated"),
           ("val_pcm_acc", "validation ACC"), ("val_pcm_nmi", "validation NMI"),
           ("agreement_identity", "agreement"))


def load(runs: str, lever: str) -> dict[int, dict]:
    """{seed: metrics.json} of the lever's finished runs."""
    found = {}
    for seed in SEEDS:
        path = os.path.join(runs, f"{lever}_s{seed}", "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                found[seed] = json.load(f)
    return found


def lever_rows(found: dict[int, dict], lever: str, label: str) -> list[list[str]]:
    """One row per finished seed ('3 / 4 / 5' style values) and a mean ± std row."""
    if not found:
        return []
    per_seed = [" / ".join(f"{found[s][key]:.3g}" for s in found) for key, _ in COLUMNS]
    rows = [[f"{label}, seeds {' / '.join(map(str, found))}"] + per_seed]
    if len(found) > 1:
        rows.append([f"**{lever}: mean ± sd**"] + [
            f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}"
            for v in ([m[key] for m in found.values()] for key, _ in COLUMNS)])
    return rows


# The levers added on top of diversity 0.3, also paired with it alone.
ON_DIV03 = ("div03gc", "r1div03", "div06", "rec1div03")
# Paired against the default: (key, title, +1 if higher is better else -1).
PAIRED = (("ndb_over_k", "NDB/K", -1), ("ndb_js", "NDB JS", -1), ("domain_fid", "domain FID", -1),
          ("component_purity", "purity", 1), ("val_pcm_acc", "validation ACC", 1),
          ("val_pcm_nmi", "validation NMI", 1))


def paired_row(base: dict[int, dict], found: dict[int, dict], lever: str) -> list[str] | None:
    """'mean change (better on n of m seeds)' per PAIRED column, over seeds both have."""
    seeds = sorted(set(base) & set(found))
    if not seeds:
        return None
    cells = []
    for key, _, sign in PAIRED:
        change = np.array([found[s][key] - base[s][key] for s in seeds])
        cells.append(f"{change.mean():+.3f} ({int((sign * change > 0).sum())} of {len(seeds)})")
    return [lever] + cells


def print_table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    print("\n".join("| " + " | ".join(row) + " |" for row in rows))


def main(runs: str, levers: tuple[tuple[str, str], ...] = LEVERS) -> None:
    found = {lever: load(runs, lever) for lever, _ in levers}
    print_table(["lever"] + [title for _, title in COLUMNS],
                [row for lever, label in levers for row in lever_rows(found[lever], lever, label)])
    print("\nAgainst the default on the same seed: mean change (better on n of m seeds)\n")
    print_table(["lever"] + [title for _, title, _ in PAIRED],
                [row for lever, _ in levers[1:]
                 if (row := paired_row(found[levers[0][0]], found[lever], lever))])
    if levers is not LEVERS:
        return
    print("\nAgainst --diversity_weight=0.3 alone on the same seed\n")
    print_table(["lever"] + [title for _, title, _ in PAIRED],
                [row for lever in ON_DIV03
                 if (row := paired_row(found["div03"], found[lever], lever))])


if __name__ == "__main__":
    if len(sys.argv) == 2:
        main(sys.argv[1])
    elif len(sys.argv) > 3:
        main(sys.argv[1], tuple((name, name) for name in sys.argv[2:]))
    else:
        sys.exit("usage: docs/lever_table.py <runs directory> [<base> <lever> ...]")
