"""Where the samples' NDB gap comes from (docs/RESULTS.md, "Samples against the data"): is it
the class mix, one class, the seed, or G's spread inside every class?

For each run: the domain classifier's class shares of 20,000 samples against the training
images'; the bins NDB finds different, by the majority class of their training images (under- /
over-filled); the total variation between the bin shares of a class's samples and of its
training images; and the sample measures at noise temperatures tau (samples G(mu_k + sigma_k
tau eps), tau = 1 is the model), against the validation split's images (tau would be a setting).
With several runs, also NDB/K of an ensemble: a third of each run's samples, pooled (if the runs
missed different bins, the pool would fill them).

    PYTHONPATH=. .venv/bin/python docs/coverage_probe.py [--taus=1,1.2] runs/m5k/div03_s3 ...
"""
from __future__ import annotations

import sys

import numpy as np

from gmmgan_tf.evaluation import sample_quality, sample_scorers
from gmmgan_tf.workdir import load_trained_model

KEYS = ("ndb_over_k", "ndb_js", "domain_fid", "component_purity", "copy_ratio", "sharpness")


def class_report(model, data, config, ndb, classifier) -> np.ndarray:
    """Prints the class and bin breakdown of the run's own samples; returns the samples."""
    samples, _ = model.sample_from_prior(config.ndb_samples, seed=config.seed)
    result = ndb.evaluate(samples)
    predicted = classifier.probabilities(samples).argmax(1)
    classes = data.num_classes
    print("  class shares, training:", np.round(np.bincount(data.train_labels, minlength=classes)
                                                / len(data.train_labels), 3))
    print("  class shares, samples: ", np.round(np.bincount(predicted, minlength=classes)
                                                / len(predicted), 3))
    train_bins, sample_bins = ndb.assign(data.train_images), ndb.assign(samples)
    majority = np.array([np.bincount(data.train_labels[train_bins == b], minlength=classes)
                         .argmax() for b in range(ndb.num_bins)])
    over = result["proportions"] > ndb.proportions
    for name, mask in (("under-filled", result["different"] & ~over),
                       ("over-filled", result["different"] & over)):
        print(f"  {name} bins by majority class:",
              np.bincount(majority[mask], minlength=classes).tolist())
    shares = lambda bins: np.bincount(bins, minlength=ndb.num_bins) / max(len(bins), 1)  # noqa
    tv = [0.5 * np.abs(shares(train_bins[data.train_labels == c])
                       - shares(sample_bins[predicted == c])).sum() for c in range(classes)]
    print("  within-class total variation of bin shares:", np.round(tv, 3).tolist())
    return samples


def main(workdirs: list[str], taus: list[float]) -> None:
    pooled = []
    for workdir in workdirs:
        config, data, model = load_trained_model(workdir)
        # tau is a setting being chosen: its sample measures are scored on the validation split.
        data = data.for_scoring("validation")
        ndb, classifier = sample_scorers(data, config)
        print(workdir)
        samples = class_report(model, data, config, ndb, classifier)
        keep = np.random.default_rng(1).permutation(len(samples))[:len(samples) // 3]
        pooled.append(samples[keep])
        generate = model.generate
        for tau in taus:
            model.generate = (lambda components, eps, batch_size=500, tau=tau:
                              generate(components, eps * tau, batch_size))
            scores = sample_quality(model, data, config, config.ndb_samples)
            print(f"  tau {tau}: " + ", ".join(f"{k} {scores[k]:.3g}" for k in KEYS),
                  flush=True)
        model.generate = generate
    if len(workdirs) > 1:
        result = ndb.evaluate(np.concatenate(pooled))
        print(f"ensemble of the {len(workdirs)} runs: NDB/K {result['ndb_over_k']:.2f}, "
              f"JS {result['js']:.4f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    taus = [1.0, 1.2]
    for arg in [a for a in args if a.startswith("--taus=")]:
        taus = [float(t) for t in arg.split("=", 1)[1].split(",")]
        args.remove(arg)
    if not args:
        sys.exit(__doc__)
    main(args, taus)
