"""Far-novelty tables: images of another data set and junk, scored by a trained GMM-GAN.

    python docs/far_novelty.py RUN [RUN ...]

For each run (a --model=gmmgan workdir with a validation split) and each novelty scorer of the
PCM and D (gmmgan_tf/novelty.py): the AUROC of telling a set of novel images from in-distribution
images, and the share of the novel set that the scorer flags at its served threshold (the one
that flags FLAG_SHARE of the run's validation images; novelty.calibrate). Novel sets: the other
data set (an MNIST run gets Fashion-MNIST, a Fashion-MNIST run mnist_5k), blank (all-black),
constant grey images (GREYS), uniform noise, and the in-distribution images inverted (-x).

Two tables a run, so that nothing is chosen on the test split:
  validation  in-distribution = the run's validation images; the other data set's training
              images; noise of another seed. Choose scorers here.
  test        in-distribution = the run's test images (the first row: the served flag rate on
              them, FLAG_SHARE within binomial noise); the other data set's test images.
"""
import dataclasses
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gmmgan_tf import data, novelty, workdir as wd  # noqa: E402
from gmmgan_tf.config import Config  # noqa: E402

SCORERS = ("max_responsibility", "entropy", "discriminator", "mahalanobis", "combined", "knn",
           "knn_mahalanobis")
OTHER = {"mnist_5k": "fashion_mnist", "mnist": "fashion_mnist", "fashion_mnist": "mnist_5k"}
GREYS = (-0.5, 0.0, 0.5, 1.0)  # 64, 128, 191, 255 of 0..255 (all-black, -1, is `blank`)
OTHER_IMAGES = 2000  # of the other data set, drawn once with seed 0
NOISE_IMAGES = 1000


def novel_sets(bundle, dataset: str, split: str) -> dict[str, np.ndarray]:
    """The novel images scored against `split`'s in-distribution images of `dataset`."""
    held_out = bundle.val_images if split == "validation" else bundle.test_images
    other_name = OTHER[dataset]
    other = data.load(dataclasses.replace(Config(), dataset=other_name,
                                          image_size=bundle.image_shape[0],
                                          validation_fraction=0.0))
    pool = other.train_images if split == "validation" else other.test_images
    pool = pool[np.random.default_rng(0).permutation(len(pool))[:OTHER_IMAGES]]
    shape = bundle.image_shape
    rng = np.random.default_rng(1 if split == "validation" else 2)
    return {f"{other_name} ({len(pool)})": pool,
            "blank (1)": np.full((1, *shape), -1.0, np.float32),
            f"constant ({len(GREYS)} greys)": np.stack([np.full(shape, g, np.float32)
                                                        for g in GREYS]),
            f"uniform noise ({NOISE_IMAGES})": rng.uniform(-1, 1, (NOISE_IMAGES, *shape))
            .astype(np.float32),
            f"inverted ({len(held_out)})": -held_out}


def table(model, bundle, dataset: str, split: str) -> str:
    train = novelty.gmmgan_outputs(model, bundle.train_images)
    validation = novelty.gmmgan_outputs(model, bundle.val_images)
    calibrations = {s: novelty.calibrate_outputs(train, validation, s) for s in SCORERS}
    fitted = calibrations[SCORERS[0]].fitted  # the same fit for every scorer

    def scores(images):
        outputs = novelty.gmmgan_outputs(model, images)
        return {s: novelty.score(s, outputs, fitted) for s in SCORERS}

    normal = scores(bundle.val_images if split == "validation" else bundle.test_images)
    header = ["novel images"] + [f"{s} AUROC / flagged" for s in SCORERS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
             f"| in-distribution {split} images ({len(normal[SCORERS[0]])}): flagged | "
             + " | ".join(f"{np.mean(normal[s] > calibrations[s].threshold):.1%}"
                          for s in SCORERS) + " |"]
    for name, images in novel_sets(bundle, dataset, split).items():
        novel = scores(images)
        cells = []
        for s in SCORERS:
            values = np.concatenate([normal[s], novel[s]])
            truth = np.r_[np.zeros(len(normal[s])), np.ones(len(novel[s]))]
            cells.append(f"{roc_auc_score(truth, values):.3f} / "
                         f"{np.mean(novel[s] > calibrations[s].threshold):.1%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    for run in sys.argv[1:]:
        config, bundle, model = wd.load_trained_model(run, mode="evaluate")
        bundle.validation()  # refuses a run without a validation split, naming the fix
        for split in ("validation", "test"):
            print(f"\n{run} ({config.dataset}, seed {config.seed}), {split} side\n")
            print(table(model, bundle, config.dataset, split))
