"""What D can still see at the end of a run (docs/RESULTS.md, "Levers"): if D cannot tell the
samples from real digits, no loss that follows D moves G further, whatever NDB says.

For each run: the logit of D's head for an image's component (a real image's component is the
PCM's argmax, a sample's the one that generated it) on the training digits, the validation
digits and 2,000 samples of the sampling generator (G's average); the AUROC of validation digits
against samples (0.5: D cannot tell them apart) and of training against validation digits
(above 0.5: D remembers its training images). With --rejection, also discriminator rejection
sampling (Azadi et al. 2019): ten candidates a sample, a candidate of component k kept with
probability exp(l - max_k l) (max over that component's candidates), the first kept ones in
each component's share of a plain draw scored like the run's own samples (20,000; NDB/K, FID).

    PYTHONPATH=. .venv/bin/python docs/discriminator_probe.py [--rejection] runs/levers/div03_s0 ...
"""
from __future__ import annotations

import sys

import numpy as np
from sklearn.metrics import roc_auc_score

from gmmgan_tf.evaluation import sample_quality
from gmmgan_tf.workdir import load_trained_model

CANDIDATES = 10
KEYS = ("ndb_over_k", "ndb_js", "domain_fid", "copy_ratio", "component_purity")


def own_head_logits(model, images: np.ndarray, components: np.ndarray) -> np.ndarray:
    """D's logit of each image's own component head."""
    return np.concatenate([
        model.discriminator(images[i:i + 500], training=False).numpy()[
            np.arange(len(images[i:i + 500])), components[i:i + 500]]
        for i in range(0, len(images), 500)])


def rejection_sampler(model):
    """sample_from_prior through discriminator rejection sampling, with the same signature."""
    plain = model.sample_from_prior

    def sample(num: int, seed: int = 0):
        candidates, components = plain(num * CANDIDATES, seed=seed + 1)
        logits = own_head_logits(model, candidates, components)
        rng = np.random.default_rng(seed)
        chosen = []
        for k, need in zip(*np.unique(plain(num, seed=seed)[1], return_counts=True)):
            mine = np.flatnonzero(components == k)
            kept = mine[rng.random(len(mine)) < np.exp(logits[mine] - logits[mine].max())]
            if len(kept) < need:
                raise RuntimeError(f"component {k}: {len(kept)} kept of {need} needed")
            chosen.append(kept[:need])
        chosen = np.concatenate(chosen)
        return candidates[chosen], components[chosen]

    return sample


def main(workdirs: list[str], rejection: bool) -> None:
    for workdir in workdirs:
        config, data, model = load_trained_model(workdir)
        train, val = data.train_images[:2000], data.val_images
        fakes, fake_components = model.sample_from_prior(2000, seed=config.seed)
        logits = {"train": own_head_logits(model, train, model.responsibilities(train).argmax(1)),
                  "validation": own_head_logits(model, val, model.responsibilities(val).argmax(1)),
                  "samples": own_head_logits(model, fakes, fake_components)}
        medians = ", ".join(f"{name} {np.median(v):+.2f}" for name, v in logits.items())
        auroc = lambda a, b: roc_auc_score(  # noqa: E731
            np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b])
        print(f"{workdir}: median logit {medians}; AUROC validation vs samples "
              f"{auroc(logits['validation'], logits['samples']):.3f}, train vs validation "
              f"{auroc(logits['train'], logits['validation']):.3f}")
        if rejection:
            for name, sampler in (("plain", model.sample_from_prior),
                                  ("rejection", rejection_sampler(model))):
                model.sample_from_prior = sampler
                scores = sample_quality(model, data, config, config.ndb_samples)
                print(f"  {name}: " + ", ".join(f"{k} {scores[k]:.3g}" for k in KEYS))


if __name__ == "__main__":
    args = sys.argv[1:]
    with_rejection = "--rejection" in args
    runs = [a for a in args if a != "--rejection"]
    if not runs:
        sys.exit("usage: docs/discriminator_probe.py [--rejection] <workdir> [<workdir> ...]")
    main(runs, with_rejection)
