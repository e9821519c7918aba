"""Markdown tables (AUROC, then AUPRC) of the leave-one-digit-out runs of docs/run_novelty.sh.

    python docs/novelty_table.py runs/novelty

One row per held-out digit, one column per model and novelty scorer (read from
<dir>/<model>_<digit>/metrics.json), and the mean over the digits that have a run.
"""
import json
import os
import sys

MODELS = ("gmmgan", "mfa")
# Published per-digit anchors (AUROC, AUPRC) beside the table: a VAE-based detector with a 2-d
# latent on MNIST, Tonnaer 2019 (thesis), Tables 3.3 and 3.4.
ANCHORS = {"auroc": (0.96, 0.73, 0.97, 0.94, 0.73, 0.92, 0.95, 0.77, 0.92, 0.66),
           "auprc": (0.75, 0.21, 0.76, 0.64, 0.23, 0.45, 0.69, 0.27, 0.47, 0.15)}
SCORERS = {"gmmgan": ("max_responsibility", "entropy", "discriminator", "embedding_density"),
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
    anchor = ANCHORS[metric]
    lines = ["| digit | " + " | ".join(f"{m} {s}" for m, s in columns) + " | VAE 2-d (anchor) |",
             "|---|" + "---|" * (len(columns) + 1)]
    values = {c: [] for c in columns}
    for digit in range(10):
        cells = []
        for m, s in columns:
            value = runs.get((m, digit), {}).get(f"novelty_{metric}_{s}")
            if value is not None:
                values[m, s].append(value)
            cells.append("–" if value is None else f"{value:.3f}")
        lines.append(f"| {digit} | " + " | ".join(cells) + f" | {anchor[digit]:.2f} |")
    means = [f"**{sum(v) / len(v):.3f}** ({len(v)})" if v else "–" for v in values.values()]
    lines.append("| mean (digits) | " + " | ".join(means) + f" | {sum(anchor) / 10:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    found = load(sys.argv[1] if len(sys.argv) > 1 else "runs/novelty")
    print("AUROC\n\n" + table(found, "auroc") + "\n\nAUPRC\n\n" + table(found, "auprc"))
