"""The warm start's settings (docs/RESULTS.md §0): validation ACC/NMI of the GaussianMixture on
UMAP-transformed codes, for each seed's autoencoder and each setting. It scores the validation
split only: settings are chosen here, so the test split stays unread.

    .venv/bin/python docs/warm_start_sweep.py --seeds=0,1,2 --neighbors=10,15,20 \
        --metrics=euclidean,cosine [--augment]
    .venv/bin/python docs/warm_start_sweep.py --dataset=fashion_mnist --steps=1500,6000
    .venv/bin/python docs/warm_start_sweep.py --dataset=fashion_mnist --neighbors=10 \
        --neighbour_epochs=20     # also stage 4 (SCAN) on the same images, a line a seed

The autoencoder is warm_start.train_autoencoder (1,500 steps, as flags/base.cfg), trained once a
seed and step count on the training images (at most --fit_images of them, drawn as the warm
start draws them: 20,000, as flags/base.cfg); warm_start's UMAP (10 dims) and GaussianMixture, the ones
warm_start.compute uses, are fit on the same images and run for every setting. One line a run,
then the mean ± sd over seeds.
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
    parser.add_argument("--steps", default="1500")
    parser.add_argument("--dataset", default="mnist_5k")
    parser.add_argument("--fit_images", type=int, default=20000)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--neighbour_epochs", type=int, default=0,
                        help="also score warm_start.neighbour_clustering with this many epochs")
    args = parser.parse_args()
    bundle = data.load(Config(dataset=args.dataset))
    val_images, val_labels = bundle.validation()
    results, stage_scores = {}, {}
    for seed in map(int, args.seeds.split(",")):
        train_images = bundle.train_images[warm_start.fit_indices(  # as warm_start.compute
            len(bundle.train_images), args.fit_images, seed)]
        if args.neighbour_epochs:
            network = warm_start.neighbour_clustering(train_images, 10, args.neighbour_epochs,
                                                      seed)
            scores = clustering_scores(val_labels, network.predict(
                val_images, batch_size=1024, verbose=0).argmax(axis=1))
            stage_scores[seed] = (scores["acc"], scores["nmi"])
            print(f"seed {seed} neighbour stage ({args.neighbour_epochs} epochs): validation ACC "
                  f"{scores['acc']:.3f} NMI {scores['nmi']:.3f}", flush=True)
        for steps in map(int, args.steps.split(",")):
            encoder = warm_start.train_autoencoder(train_images, steps, seed, args.augment)
            train_codes = encoder.predict(train_images.reshape(len(train_images), -1),
                                          batch_size=1024, verbose=0)
            val_codes = encoder.predict(val_images.reshape(len(val_images), -1),
                                        batch_size=1024, verbose=0)
            for neighbors in map(int, args.neighbors.split(",")):
                for metric in args.metrics.split(","):
                    reducer = warm_start.make_reducer(neighbors, 10, seed, metric)
                    mixture = warm_start.fit_mixture(reducer.fit_transform(train_codes), 10, seed)
                    scores = clustering_scores(val_labels,
                                               mixture.predict(reducer.transform(val_codes)))
                    results.setdefault((steps, neighbors, metric), []).append(
                        (scores["acc"], scores["nmi"]))
                    print(f"seed {seed} steps {steps} neighbours {neighbors} {metric}: validation "
                          f"ACC {scores['acc']:.3f} NMI {scores['nmi']:.3f}", flush=True)
    print("\n| autoencoder steps | neighbours | metric | validation ACC | validation NMI | seeds |\n"
          "|---|---|---|---|---|---|")
    spread = (lambda v: f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v[0]:.3f}")
    for (steps, neighbors, metric), values in results.items():
        acc, nmi = np.array(values).T
        print(f"| {steps} | {neighbors} | {metric} | {spread(acc)} | {spread(nmi)} | {len(values)} |")
    if stage_scores:
        acc, nmi = np.array(list(stage_scores.values())).T
        print(f"| stage 4, {args.neighbour_epochs} epochs | | | {spread(acc)} | {spread(nmi)} "
              f"| {len(stage_scores)} |")


if __name__ == "__main__":
    main()
