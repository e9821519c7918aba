"""Novelty scores: how unlike the training images an image is ("none of my clusters").

The PCM's responsibilities always sum to 1, so on an image of a kind it never saw it still names
a component. Each scorer here turns one output of a trained model into a score per image,
higher = more novel, with one interface: `score(name, outputs)` takes a dict of NumPy model
outputs and returns NumPy scores [N].

    max_responsibility  1 - max_k Pr(k|x)        PCM (or MFA) responsibilities [N, K]
    entropy             -sum_k Pr(k|x) log Pr(k|x)
    discriminator       -max_k D_k(x)            D's logits [N, K] (per-component heads: the
                                                 best realness over the heads, Kliger &
                                                 Fleishman 2018; a single head: -D(x))
    mfa_nll             -log p(x)                the MFA's log-likelihood [N] (--model=mfa)
    embedding_density   -log p(e(x))             the warm start's GaussianMixture density of
                                                 the image's autoencoder -> UMAP embedding [N]
                                                 (runs with --pcm_init=embedding)

The formulas are TensorFlow ops, so the exported PCM (export.py) serves the same function that
the evaluation measures. `detection_metrics` scores the leave-one-class-out protocol
(--exclude_classes): the held-out images of the excluded classes are the positives.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

# Model outputs the scorers read.
RESPONSIBILITIES = "responsibilities"
DISCRIMINATOR_LOGITS = "discriminator_logits"
LOG_LIKELIHOOD = "log_likelihood"
EMBEDDING_LOG_DENSITY = "embedding_log_density"
# The share of training images the served threshold flags (export.py, saved_models/README.md).
FLAG_SHARE = 0.05


@dataclasses.dataclass(frozen=True)
class Scorer:
    name: str
    reads: str  # the key of the model output it scores
    formula: Callable[[tf.Tensor], tf.Tensor]


# The novelty score the exported PCM serves and --mode=assign writes: the best GMM-GAN scorer of
# docs/NOVELTY.md's leave-one-digit-out table (the PCM's entropy; D's heads, the first guess from
# short pilots, ranked well below it on most digits).
SERVED_SCORER = "entropy"
SCORERS = {s.name: s for s in (
    Scorer("max_responsibility", RESPONSIBILITIES, lambda r: 1.0 - tf.reduce_max(r, axis=-1)),
    Scorer("entropy", RESPONSIBILITIES, lambda r: -tf.reduce_sum(tf.math.xlogy(r, r), axis=-1)),
    Scorer("discriminator", DISCRIMINATOR_LOGITS, lambda d: -tf.reduce_max(d, axis=-1)),
    Scorer("mfa_nll", LOG_LIKELIHOOD, lambda ll: -ll),
    Scorer("embedding_density", EMBEDDING_LOG_DENSITY, lambda ll: -ll),
)}


def score(name: str, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Scores [N] (float64, higher = more novel) of scorer `name` from the model outputs."""
    scorer = SCORERS[name]
    if scorer.reads not in outputs:
        raise ValueError(f"novelty scorer {name!r} needs the model output {scorer.reads!r}; "
                         f"got {sorted(outputs)}")
    values = tf.convert_to_tensor(np.asarray(outputs[scorer.reads], np.float64))
    return scorer.formula(values).numpy()


def score_all(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every scorer whose input is among `outputs`."""
    return {name: score(name, outputs) for name, s in SCORERS.items() if s.reads in outputs}


def gmmgan_outputs(model, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
    """The outputs of a GMMGAN model the scorers read: D's logits, and the PCM's Pr(k|x)."""
    logits = np.concatenate([model.discriminator(images[i:i + batch_size], training=False)
                             .numpy() for i in range(0, len(images), batch_size)])
    outputs = {DISCRIMINATOR_LOGITS: logits}
    if model.pcm is not None:
        outputs[RESPONSIBILITIES] = model.responsibilities(images, batch_size)
    return outputs


def mfa_outputs(model, images: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs of an MFA the scorers read: log p(x) and the responsibilities p(j|x)."""
    from gmmgan_tf.mfa import inference

    return {LOG_LIKELIHOOD: inference.log_likelihood(model, images),
            RESPONSIBILITIES: inference.responsibilities(model, images)}


def warm_start_outputs(directory: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """The output of a run's warm start (<workdir>/warm_start/) the scorers read: the log
    density of the images' embeddings under its GaussianMixture."""
    from gmmgan_tf import warm_start

    result = warm_start.load(directory, with_models=True)
    return {EMBEDDING_LOG_DENSITY: result.log_density(images)}


def flag_threshold(train_scores: np.ndarray, share: float = FLAG_SHARE) -> float:
    """The score above which `share` of the training images lie: the (1 - share) quantile."""
    return float(np.quantile(np.asarray(train_scores, np.float64), 1.0 - share))


def detection_metrics(scores: dict[str, np.ndarray], labels: np.ndarray,
                      novel_classes: tuple[int, ...]) -> dict:
    """AUROC and AUPRC of each scorer at telling images of `novel_classes` (positives) from
    the others, plus the ROC curve as [fpr, tpr] lists (`novelty_roc_<scorer>`, for plots)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    positives = np.isin(labels, novel_classes)
    if positives.all() or not positives.any():
        raise ValueError(f"novelty detection needs images of both the classes {novel_classes} "
                         f"and the others; got {int(positives.sum())} of {len(labels)}")
    out = {"novelty_positives": int(positives.sum()),
           "novelty_negatives": int((~positives).sum())}
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(positives, values)
        out[f"novelty_auroc_{name}"] = float(roc_auc_score(positives, values))
        out[f"novelty_auprc_{name}"] = float(average_precision_score(positives, values))
        out[f"novelty_roc_{name}"] = [fpr.tolist(), tpr.tolist()]
    return out
