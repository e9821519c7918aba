"""Markdown tables (AUROC, then AUPRC) of the leave-one-digit-out runs of docs/run_novelty.sh.

    python docs/novelty_table.py runs/novelty

One row per held-out digit, one column per model and novelty scorer (read from
<dir>/<model>_<digit>/metrics.json), and the mean over the digits that have a run.
"""
import json
import os
import sys

MODELS = ("gmmgan", "mfa")
SCORERS = {"gmmgan": ("max_responsibility", "entropy", "discriminator"),
           "mfa": ("mfa_nll", "max_responsibility", "entropy")}


def load(root: str) -> dict:
    runs = {}
    for model in MODELS:
        for digit in range(10):
            path = os.path.join(root, f"{model}_{digit}", "metrics.json")
            if os.path.exists(path):
                with open(path) as f:
                    runs[model, digit] = json.load(f)
    return runs


def table(runs: dict, metric: str) -> str:
    columns = [(m, s) for m in MODELS for s in SCORERS[m] if any(k[0] == m for k in runs)]
    lines = ["| digit | " + " | ".join(f"{m} {s}" for m, s in columns) + " |",
             "|---|" + "---|" * len(columns)]
    values = {c: [] for c in columns}
    for digit in range(10):
        cells = []
        for m, s in columns:
            value = runs.get((m, digit), {}).get(f"novelty_{metric}_{s}")
            if value is not None:
                values[m, s].append(value)
            cells.append("–" if value is None else f"{value:.3f}")
        lines.append(f"| {digit} | " + " | ".join(cells) + " |")
    means = [f"**{sum(v) / len(v):.3f}** ({len(v)})" if v else "–" for v in values.values()]
    lines.append("| mean (digits) | " + " | ".join(means) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    found = load(sys.argv[1] if len(sys.argv) > 1 else "runs/novelty")
    print("AUROC\n\n" + table(found, "auroc") + "\n\nAUPRC\n\n" + table(found, "auprc"))
