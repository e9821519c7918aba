"""How knn's settings were chosen: its variants on the validation side of both novelty tables.

    python docs/knn_choice.py --near runs/lodo27 --far runs/levers/base_s0

knn (gmmgan_tf/novelty.py) is the distance from an image's unit-length, randomly projected flat
PCM features to the nearest training image's. Each variant changes one of its settings; every
number is on the validation side, so nothing here is chosen on a test split:
  near  the leave-one-digit-out runs of docs/run_novelty.sh: mean AUROC over the runs of the
        excluded digit's training-part images against the run's validation images (as
        docs/near_novelty.py);
  far   each run's validation images against docs/far_novelty.py's validation-side novel sets:
        the lowest AUROC over the sets, and the lowest share of a set flagged at the variant's
        own threshold (the 95th percentile of the validation images' scores).
"""
import argparse
import dataclasses
import glob
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gmmgan_tf import data, novelty, workdir as wd  # noqa: E402
from far_novelty import novel_sets  # noqa: E402


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


def kth_distance(bank: np.ndarray, x: np.ndarray, k: int = 1) -> np.ndarray:
    """The distance from each row of x to its k-th nearest row of bank."""
    squared = ((x * x).sum(1)[:, None] - 2 * x @ bank.T + (bank * bank).sum(1)[None])
    return np.sqrt(np.maximum(np.partition(squared, k - 1, axis=1)[:, k - 1], 0))


def variants(train: np.ndarray) -> dict:
    """{name: scorer(flat features [N, D]) -> [N]}, fitted on the training images' features."""
    out = {"unprojected": lambda x, b=unit(train): kth_distance(b, unit(x)),
           "unprojected, not unit length": lambda x: kth_distance(train, x),
           "unprojected, k = 5": lambda x, b=unit(train): kth_distance(b, unit(x), 5)}
    for dims in (64, 128, 256, 512):
        for seed in (0, 1, 2):
            p, bank = novelty.fit_nearest_neighbours(train, dims, len(train), seed)
            out[f"{dims} dims, projection seed {seed}"] = (
                lambda x, p=p, b=bank: kth_distance(b, unit(x @ p)))
    for images in (500, 1000, 5000, 10000, 20000):
        if images < len(train):
            p, bank = novelty.fit_nearest_neighbours(train, 256, images)
            out[f"256 dims, bank of {images} images"] = (
                lambda x, p=p, b=bank: kth_distance(b, unit(x @ p)))
    return out


def auroc(normal: np.ndarray, novel: np.ndarray) -> float:
    return float(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(novel))],
                               np.r_[normal, novel]))


def flat(model, images: np.ndarray) -> np.ndarray:
    return novelty.gmmgan_outputs(model, images)[novelty.PCM_FLAT_FEATURES]


def near(run: str) -> dict[str, float]:
    config, bundle, model = wd.load_trained_model(run, mode="evaluate")
    (excluded,) = bundle.excluded_classes
    whole = data.load(dataclasses.replace(config, exclude_classes="", validation_fraction=0.0))
    normal = flat(model, bundle.val_images)
    novel = flat(model, whole.train_images[whole.train_labels == excluded])
    return {name: auroc(score(normal), score(novel))
            for name, score in variants(flat(model, bundle.train_images)).items()}


def far(run: str) -> dict[str, tuple[float, float]]:
    config, bundle, model = wd.load_trained_model(run, mode="evaluate")
    normal = flat(model, bundle.val_images)
    sets = [flat(model, images) for images in
            novel_sets(bundle, config.dataset, "validation").values()]
    out = {}
    for name, score in variants(flat(model, bundle.train_images)).items():
        on_normal = score(normal)
        threshold = novelty.flag_threshold(on_normal)
        scored = [score(s) for s in sets]
        out[name] = (min(auroc(on_normal, s) for s in scored),
                     min(float(np.mean(s > threshold)) for s in scored))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--near", help="a directory of docs/run_novelty.sh's gmmgan_<d> runs")
    parser.add_argument("--far", nargs="*", default=[], help="--model=gmmgan runs")
    args = parser.parse_args()
    columns, rows = [], {}
    if args.near:
        runs = sorted(r for r in glob.glob(os.path.join(args.near, "gmmgan_*"))
                      if os.path.exists(os.path.join(r, "metrics.json")))
        results = [near(r) for r in runs]
        columns.append(f"near: mean AUROC ({len(runs)} runs)")
        for name in results[0]:
            rows.setdefault(name, {})[columns[-1]] = f"{np.mean([r[name] for r in results]):.3f}"
    for run in args.far:
        columns.append(f"far {run}: lowest AUROC / flagged")
        for name, (lowest, flagged) in far(run).items():
            rows.setdefault(name, {})[columns[-1]] = f"{lowest:.3f} / {flagged:.1%}"
    print("| variant | " + " | ".join(columns) + " |\n" + "|---" * (len(columns) + 1) + "|")
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells.get(c, "–") for c in columns) + " |")


if __name__ == "__main__":
    main()
