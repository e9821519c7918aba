"""The warm start's UMAP settings on mnist_5k (docs/RESULTS.md §0): held-out ACC/NMI of the
GaussianMixture on UMAP-transformed codes, for each seed's autoencoder and each setting.

    .venv/bin/python docs/warm_start_sweep.py --seeds=0,1,2 --neighbors=10,15,20 \
        --metrics=euclidean,cosine [--augment]

The autoencoder is warm_start.train_autoencoder (1,500 steps, as flags/base.cfg), trained once a
seed; warm_start's UMAP (10 dims) and GaussianMixture, the ones warm_start.compute uses, then
run for every setting. One line a run, then the mean ± sd over seeds.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from gmmgan_tf import data, warm_start  # noqa: E402
from gmmgan_tf.config import Config  # noqa: E402
from gmmgan_tf.metrics.clustering import clustering_scores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--neighbors", default="10,15,20")
    parser.add_argument("--metrics", default="euclidean")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--augment", action="store_true")
    args = parser.parse_args()
    bundle = data.load(Config(dataset="mnist_5k"))
    results = {}
    for seed in map(int, args.seeds.split(",")):
        encoder = warm_start.train_autoencoder(bundle.train_images, args.steps, seed, args.augment)
        train_codes = encoder.predict(bundle.train_images.reshape(len(bundle.train_images), -1),
                                      verbose=0)
        test_codes = encoder.predict(bundle.test_images.reshape(len(bundle.test_images), -1),
                                     verbose=0)
        for neighbors in map(int, args.neighbors.split(",")):
            for metric in args.metrics.split(","):
                reducer = warm_start.make_reducer(neighbors, 10, seed, metric)
                mixture = warm_start.fit_mixture(reducer.fit_transform(train_codes), 10, seed)
                scores = clustering_scores(bundle.test_labels,
                                           mixture.predict(reducer.transform(test_codes)))
                results.setdefault((neighbors, metric), []).append((scores["acc"], scores["nmi"]))
                print(f"seed {seed} neighbours {neighbors} {metric}: held-out ACC "
                      f"{scores['acc']:.3f} NMI {scores['nmi']:.3f}", flush=True)
    print("\n| neighbours | metric | held-out ACC | held-out NMI | seeds |\n|---|---|---|---|---|")
    for (neighbors, metric), values in results.items():
        acc, nmi = np.array(values).T
        spread = (lambda v: f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1
                  else f"{v[0]:.3f}")
        print(f"| {neighbors} | {metric} | {spread(acc)} | {spread(nmi)} | {len(values)} |")


if __name__ == "__main__":
    main()
