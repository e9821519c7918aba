"""Leave-one-class-out novelty on the validation side: the choice of a scorer without the test split.

    python docs/near_novelty.py runs/novelty        # the gmmgan_<d> runs of docs/run_novelty.sh

docs/novelty_table.py reports each run's AUROC on the test split (the excluded class's held-out
images against the others). Choosing a scorer by that table would choose on test, so this script
scores what the run never saw on the training side instead: positives are the excluded class's
images of the **training part** of the data set (left out of training and of the validation
split by --exclude_classes), negatives the run's validation images. Prints the AUROC of each
scorer a digit, the mean, and the same on the test side beside it (to report, not to choose).
"""
import dataclasses
import glob
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gmmgan_tf import data, novelty, workdir as wd  # noqa: E402

SCORERS = ("max_responsibility", "entropy", "discriminator", "mahalanobis", "combined", "knn",
           "knn_mahalanobis")


def auroc(normal: np.ndarray, novel: np.ndarray) -> float:
    return float(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(novel))],
                               np.r_[normal, novel]))


def run_aurocs(run: str) -> tuple[int, dict[str, tuple[float, float]]]:
    """(excluded class, {scorer: (validation-side AUROC, test-side AUROC)}) of one run."""
    config, bundle, model = wd.load_trained_model(run, mode="evaluate")
    (excluded,) = bundle.excluded_classes
    whole = data.load(dataclasses.replace(config, exclude_classes="", validation_fraction=0.0))
    unseen = whole.train_images[whole.train_labels == excluded]
    train = novelty.gmmgan_outputs(model, bundle.train_images)
    validation = novelty.gmmgan_outputs(model, bundle.validation()[0])
    fitted = novelty.fit(train, validation)

    def scores(images):
        outputs = novelty.gmmgan_outputs(model, images)
        return {s: novelty.score(s, outputs, fitted) for s in SCORERS}

    val_normal, val_novel = scores(bundle.val_images), scores(unseen)
    test = scores(bundle.test_images)
    is_novel = bundle.test_labels == excluded
    return excluded, {s: (auroc(val_normal[s], val_novel[s]),
                          auroc(test[s][~is_novel], test[s][is_novel])) for s in SCORERS}


def main(directory: str) -> None:
    rows = sorted((run_aurocs(run) for run in glob.glob(os.path.join(directory, "gmmgan_*"))
                   if os.path.exists(os.path.join(run, "metrics.json"))), key=lambda r: r[0])
    header = ["class"] + [f"{s} validation / test" for s in SCORERS]
    print("| " + " | ".join(header) + " |\n" + "|---" * len(header) + "|")
    for excluded, cells in rows:
        print(f"| {excluded} | " + " | ".join(f"{v:.3f} / {t:.3f}" for v, t in
                                              (cells[s] for s in SCORERS)) + " |")
    means = {s: np.mean([cells[s] for _, cells in rows], axis=0) for s in SCORERS}
    print(f"| mean ({len(rows)}) | " + " | ".join(f"**{means[s][0]:.3f}** / {means[s][1]:.3f}"
                                                  for s in SCORERS) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
