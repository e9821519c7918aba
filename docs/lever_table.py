"""The table of issue 26's levers (docs/RESULTS.md, "Levers") from docs/run_levers.sh's runs.

Reads `<runs>/<lever>_s<seed>/metrics.json` (each run's final evaluation: 20,000 samples for
the sample metrics, the validation split for clustering) and prints, per lever, each seed's
numbers and their mean ± sample std. Only validation-side and sample-side numbers are shown:
the levers are chosen on them, not on the test split.

    .venv/bin/python docs/lever_table.py runs/levers
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

LEVERS = (("base", "default (EMA 0.999, diversity 0.1)"),
          ("diffaug", "--diff_augment=color,translation,cutout"),
          ("r1", "--r1_weight=1"),
          ("div03", "--diversity_weight=0.3"),
          ("ttur", "--learning_rate_d=4e-4 --learning_rate_g=1e-4"),
          ("div03gc", "--diversity_weight=0.3 --generator_consistency"),
          ("r1div03", "--r1_weight=1 --diversity_weight=0.3"),
          ("b64", "--batch_size=64"))
SEEDS = (0, 1, 2)
COLUMNS = (("ndb_over_k", "NDB/K"), ("ndb_js", "NDB JS"), ("domain_fid", "domain FID"),
           ("sharpness", "sharpness"), ("copy_ratio", "copy ratio"),
           ("diversity_ratio_min", "diversity (min)"), ("component_purity", "purity"),
           ("component_classes_generated", "classes generated"),
           ("val_pcm_acc", "validation ACC"), ("val_pcm_nmi", "validation NMI"),
           ("agreement_identity", "agreement"))


def lever_rows(runs: str, lever: str, label: str) -> list[list[str]]:
    """One row per finished seed ('3 / 4 / 5' style values) and a mean ± std row."""
    found = {}
    for seed in SEEDS:
        path = os.path.join(runs, f"{lever}_s{seed}", "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                found[seed] = json.load(f)
    if not found:
        return []
    per_seed = [" / ".join(f"{found[s][key]:.3g}" for s in found) for key, _ in COLUMNS]
    rows = [[f"{label}, seeds {' / '.join(map(str, found))}"] + per_seed]
    if len(found) > 1:
        rows.append([f"**{lever}: mean ± sd**"] + [
            f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}"
            for v in ([m[key] for m in found.values()] for key, _ in COLUMNS)])
    return rows


def main(runs: str) -> None:
    rows = [row for lever, label in LEVERS for row in lever_rows(runs, lever, label)]
    header = ["lever"] + [title for _, title in COLUMNS]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    print("\n".join("| " + " | ".join(row) + " |" for row in rows))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: docs/lever_table.py <runs directory of docs/run_levers.sh>")
    main(sys.argv[1])
