"""How much domain FID depends on the classifier that measures it (docs/RESULTS.md, "Domain FID
depends on the classifier").

Trains domain classifiers of the current recipe with their own seeds 0, 1, 2 on a run's
training images and scores each run's samples (its prior, `--ndb_samples` of them, the run's
seed) under each, against the training images, as `evaluate_samples` does; with
`--cache=<file.keras>`, also under that saved classifier (e.g. an earlier machine's cache).

    PYTHONPATH=. .venv/bin/python docs/classifier_spread.py [--cache=FILE] runs/s3/default_s0 ...
"""
from __future__ import annotations

import sys

import numpy as np

from gmmgan_tf.evaluation import classifier_data
from gmmgan_tf.metrics import fid
from gmmgan_tf.metrics.domain_classifier import (DomainClassifier, TrainingOptions,
                                                 train_domain_classifier)
from gmmgan_tf.workdir import load_trained_model

CLASSIFIER_SEEDS = (0, 1, 2)


def main(workdirs: list[str], cached: str | None) -> None:
    classifiers, reference = {}, None
    for workdir in workdirs:
        config, data, model = load_trained_model(workdir)
        if not classifiers:
            reference = classifier_data(data, config)
            for seed in CLASSIFIER_SEEDS:
                classifiers[f"seed {seed}"] = train_domain_classifier(
                    reference.train_images, reference.train_labels, data.test_images,
                    data.test_labels, data.num_classes, TrainingOptions(seed=seed))
            if cached:
                classifiers["cached"] = DomainClassifier.load(cached)
            print("classifier test accuracy: " + ", ".join(
                f"{name} {c.accuracy(data.test_images, data.test_labels):.3f}"
                for name, c in classifiers.items()), flush=True)
        fakes, _ = model.sample_from_prior(config.ndb_samples, seed=config.seed)
        scores = {name: fid.fid(c.features(data.train_images), c.features(fakes))
                  for name, c in classifiers.items()}
        fresh = [scores[f"seed {s}"] for s in CLASSIFIER_SEEDS]
        print(f"{workdir}: domain FID " + " / ".join(f"{name} {v:.1f}"
                                                     for name, v in scores.items())
              + f"; max/min over the seeds {max(fresh) / min(fresh):.2f}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    cache = next((a.split("=", 1)[1] for a in args if a.startswith("--cache=")), None)
    runs = [a for a in args if not a.startswith("--")]
    if not runs:
        sys.exit("usage: docs/classifier_spread.py [--cache=FILE.keras] WORKDIR [WORKDIR ...]")
    np.set_printoptions(precision=3)
    main(runs, cache)
