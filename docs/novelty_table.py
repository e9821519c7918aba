"""Markdown tables (AUROC, then AUPRC) of the leave-one-class-out runs of docs/run_novelty.sh.

    python docs/novelty_table.py runs/novelty

One row per held-out class that has a run, one column per model and novelty scorer (read from
<dir>/<model>_<class>/metrics.json), and the mean over those classes. The published MNIST anchor
column is printed when the runs are on MNIST (mnist_5k).
"""
import json
import os
import sys

MODELS = ("gmmgan", "mfa")
# Published per-digit anchors (AUROC, AUPRC) beside the table: a VAE-based detector with a 2-d
# latent on MNIST, Tonnaer 2019 (thesis), Tables 3.3 and 3.4.
ANCHORS = {"auroc": (0.96, 0.73, 0.97, 0.94, 0.73, 0.92, 0.95, 0.77, 0.92, 0.66),
           "auprc": (0.75, 0.21, 0.76, 0.64, 0.23, 0.45, 0.69, 0.27, 0.47, 0.15)}
SCORERS = {"gmmgan": ("max_responsibility", "entropy", "discriminator", "mahalanobis", "combined",
                      "embedding_density"),
           "mfa": ("mfa_nll", "max_responsibility", "entropy")}


def load(root: str) -> tuple[dict, set]:
    """{(model, class): metrics} and the data sets the runs trained on."""
    runs, datasets = {}, set()
    for model in MODELS:
        for label in range(10):
            workdir = os.path.join(root, f"{model}_{label}")
            if os.path.exists(os.path.join(workdir, "metrics.json")):
                with open(os.path.join(workdir, "metrics.json")) as f:
                    runs[model, label] = json.load(f)
                with open(os.path.join(workdir, "config.json")) as f:
                    datasets.add(json.load(f)["dataset"])
    return runs, datasets


def table(runs: dict, metric: str, with_anchor: bool) -> str:
    columns = [(m, s) for m in MODELS for s in SCORERS[m] if any(k[0] == m for k in runs)]
    labels = sorted({label for _, label in runs})
    anchor = ANCHORS[metric]
    header = ["class"] + [f"{m} {s}" for m, s in columns] + ["VAE 2-d (anchor)"] * with_anchor
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    values = {c: [] for c in columns}
    for label in labels:
        cells = []
        for m, s in columns:
            value = runs.get((m, label), {}).get(f"novelty_{metric}_{s}")
            if value is not None:
                values[m, s].append(value)
            cells.append("–" if value is None else f"{value:.3f}")
        cells += [f"{anchor[label]:.2f}"] * with_anchor
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    means = [f"**{sum(v) / len(v):.3f}** ({len(v)})" if v else "–" for v in values.values()]
    means += [f"{sum(anchor[label] for label in labels) / len(labels):.3f}"] * with_anchor
    lines.append("| mean (classes) | " + " | ".join(means) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    found, datasets = load(sys.argv[1] if len(sys.argv) > 1 else "runs/novelty")
    mnist = datasets <= {"mnist_5k", "mnist"}
    print("AUROC\n\n" + table(found, "auroc", mnist) + "\n\nAUPRC\n\n"
          + table(found, "auprc", mnist))
