"""Novelty scores: how unlike the training images an image is ("none of my clusters").

The PCM's responsibilities always sum to 1, so on an image of a kind it never saw it still names
a component. Each scorer here turns outputs of a trained model into a score per image, higher =
more novel, with one interface: `score(name, outputs, fitted)` takes a dict of NumPy model
outputs (and, for the fitted scorers, the parameters `fit` returns) and gives NumPy scores [N].

    max_responsibility  1 - max_k Pr(k|x)        PCM (or MFA) responsibilities [N, K]
    entropy             -sum_k Pr(k|x) log Pr(k|x)
    discriminator       -max_k D_k(x)            D's logits [N, K] (per-component heads: the
                                                 best realness over the heads, Kliger &
                                                 Fleishman 2018; a single head: -D(x))
    mahalanobis         min_k ||f(x) - mu_k||_S  f = the mean and spread over positions of
                                                 each of the PCM's last maps [N, 2c]; a
                                                 Gaussian per component with a tied covariance
                                                 S (Lee et al. 2018), fitted on the training
                                                 images (fitted)
    knn                 min_j ||u(h(x) P) - b_j||  the distance to the nearest training image
                                                 (Sun et al. 2022, k = 1) in the PCM's flat
                                                 last-layer features h [N, D], randomly
                                                 projected (P [D, m]) and scaled to unit length
                                                 (u); b_j = u(h(x_j) P) of the training images
                                                 (fitted)
    combined            mean_s (s(x) - m_s) / sd_s  over COMBINED, each standardised on the
                                                 validation images (fitted)
    knn_mahalanobis     max_s (s(x) - m_s) / sd_s   over knn and mahalanobis (fitted): novel
                                                 when either is, each in units of its spread
    mfa_nll             -log p(x)                the MFA's log-likelihood [N] (--model=mfa)
    embedding_density   -log p(e(x))             the warm start's GaussianMixture density of
                                                 the image's autoencoder -> UMAP embedding [N]
                                                 (runs with --pcm_init=embedding)

The formulas are TensorFlow ops and the fitted parameters NumPy constants, so the exported PCM
(export.py) serves the same function that the evaluation measures. `calibrate` fits them and
sets the served threshold on the validation split; `detection_metrics` scores the
leave-one-class-out protocol (--exclude_classes): the held-out images of the excluded classes
are the positives.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from gmmgan_tf.errors import ConfigError

# Model outputs the scorers read.
RESPONSIBILITIES = "responsibilities"
DISCRIMINATOR_LOGITS = "discriminator_logits"
PCM_FEATURES = "pcm_features"
PCM_FLAT_FEATURES = "pcm_flat_features"
LOG_LIKELIHOOD = "log_likelihood"
EMBEDDING_LOG_DENSITY = "embedding_log_density"
# The share of the calibration (validation) images the served threshold flags (export.py,
# saved_models/README.md).
FLAG_SHARE = 0.05
# Added to the tied covariance, times its mean variance tr(S)/c: keeps S invertible when a
# feature barely varies over the training images, too small to move the other distances.
RIDGE = 1e-6
# knn's random projection: m dimensions, and at most this many training images in its bank
# (a bound on the export's size, about 20 MB). 256 dimensions were chosen on the validation side
# of docs/NOVELTY.md's tables (docs/knn_choice.py): leave-one-digit-out AUROC 0.933-0.935 over
# three projection seeds, against 0.941 unprojected and 0.927-0.931 at 128.
KNN_DIMENSIONS = 256
KNN_BANK_IMAGES = 20_000
KNN_SEED = 0
# Rows scored at a time: knn's distances are [rows, bank images].
SCORE_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class Fitted:
    """The parameters of the fitted scorers (`fit`)."""
    means: np.ndarray  # [K, c] the components' means, whitened: mu_k W
    whitening: np.ndarray  # [c, c] W with W W^T = S^-1
    standard: dict  # {scorer: (mean, standard deviation)} over the validation images
    projection: np.ndarray | None = None  # [D, m] knn's random projection P
    bank: np.ndarray | None = None  # [n, m] u(h(x_j) P) of (up to KNN_BANK_IMAGES) training images


@dataclasses.dataclass(frozen=True)
class Scorer:
    name: str
    reads: tuple[str, ...]  # the keys of the model outputs it scores
    formula: Callable[[dict, Fitted | None], tf.Tensor]  # (outputs as tensors, fitted) -> [N]
    fitted: bool = False  # reads `fit`'s parameters


def min_mahalanobis(features: tf.Tensor, fitted: Fitted) -> tf.Tensor:
    """min_k sqrt((f - mu_k)^T S^-1 (f - mu_k)) = min_k ||f W - mu_k W||  [N]."""
    white = tf.matmul(features, tf.constant(fitted.whitening, features.dtype))
    offsets = white[:, None, :] - tf.constant(fitted.means, features.dtype)[None]
    return tf.reduce_min(tf.norm(offsets, axis=-1), axis=-1)


def nearest_neighbour_distance(features: tf.Tensor, fitted: Fitted) -> tf.Tensor:
    """min_j ||u - b_j|| = sqrt(2 - 2 max_j u . b_j) for unit vectors u = u(h P), b_j  [N]."""
    # tf.cast: P and the bank are NumPy arrays, or variables in the export (export.py).
    projected = tf.matmul(features, tf.cast(fitted.projection, features.dtype))
    unit = tf.math.l2_normalize(projected, axis=-1)
    nearest = tf.reduce_max(tf.matmul(unit, tf.cast(fitted.bank, features.dtype),
                                      transpose_b=True), axis=-1)
    return tf.sqrt(tf.maximum(2.0 - 2.0 * nearest, 0.0))


def standardised(names: tuple[str, ...], outputs: dict, fitted: Fitted) -> tf.Tensor:
    """(s(x) - m_s) / sd_s  [len(names), N]: each scorer s in units of its spread over the
    validation images, so that none dominates by its scale alone."""
    return tf.stack([(SCORERS[name].formula(outputs, fitted) - fitted.standard[name][0])
                     / fitted.standard[name][1] for name in names])


# The scorers the combined score averages: the best far (mahalanobis) and near (entropy, the
# leave-one-digit-out table) scorers.
COMBINED = ("mahalanobis", "entropy")
# The scorers knn_mahalanobis takes the largest of: knn finds novel digits, and mahalanobis
# the blank image that knn misses on a Fashion-MNIST model (docs/NOVELTY.md).
EITHER = ("knn", "mahalanobis")
# The scorer the exported PCM serves and --mode=assign writes, chosen on the validation side of
# docs/NOVELTY.md's tables: the only one that meets the far goals in both directions and the
# near one (leave-one-digit-out AUROC 0.915; knn alone 0.935 misses the blank image).
SERVED_SCORER = "knn_mahalanobis"
SCORERS = {s.name: s for s in (
    Scorer("max_responsibility", (RESPONSIBILITIES,),
           lambda o, _: 1.0 - tf.reduce_max(o[RESPONSIBILITIES], axis=-1)),
    Scorer("entropy", (RESPONSIBILITIES,),
           lambda o, _: -tf.reduce_sum(tf.math.xlogy(o[RESPONSIBILITIES], o[RESPONSIBILITIES]),
                                       axis=-1)),
    Scorer("discriminator", (DISCRIMINATOR_LOGITS,),
           lambda o, _: -tf.reduce_max(o[DISCRIMINATOR_LOGITS], axis=-1)),
    Scorer("mahalanobis", (PCM_FEATURES,), lambda o, f: min_mahalanobis(o[PCM_FEATURES], f),
           fitted=True),
    Scorer("knn", (PCM_FLAT_FEATURES,),
           lambda o, f: nearest_neighbour_distance(o[PCM_FLAT_FEATURES], f), fitted=True),
    Scorer("mfa_nll", (LOG_LIKELIHOOD,), lambda o, _: -o[LOG_LIKELIHOOD]),
    Scorer("embedding_density", (EMBEDDING_LOG_DENSITY,), lambda o, _: -o[EMBEDDING_LOG_DENSITY]),
)}
SCORERS["combined"] = Scorer("combined", tuple(dict.fromkeys(
    key for name in COMBINED for key in SCORERS[name].reads)),
    lambda o, f: tf.reduce_mean(standardised(COMBINED, o, f), axis=0), fitted=True)
SCORERS["knn_mahalanobis"] = Scorer("knn_mahalanobis", tuple(dict.fromkeys(
    key for name in EITHER for key in SCORERS[name].reads)),
    lambda o, f: tf.reduce_max(standardised(EITHER, o, f), axis=0), fitted=True)


def score(name: str, outputs: dict[str, np.ndarray], fitted: Fitted | None = None
          ) -> np.ndarray:
    """Scores [N] (float64, higher = more novel) of scorer `name` from the model outputs."""
    scorer = SCORERS[name]
    missing = [key for key in scorer.reads if key not in outputs]
    if missing:
        raise ValueError(f"novelty scorer {name!r} needs the model output {missing[0]!r}; "
                         f"got {sorted(outputs)}")
    if scorer.fitted and fitted is None:
        raise ValueError(f"novelty scorer {name!r} needs fitted parameters (novelty.fit)")
    rows = len(outputs[scorer.reads[0]])
    return np.concatenate([scorer.formula(
        {key: tf.convert_to_tensor(np.asarray(outputs[key][i:i + SCORE_BATCH], np.float64))
         for key in scorer.reads}, fitted).numpy() for i in range(0, max(rows, 1), SCORE_BATCH)])


def score_all(outputs: dict[str, np.ndarray], fitted: Fitted | None = None
              ) -> dict[str, np.ndarray]:
    """Every scorer whose inputs are among `outputs` (the fitted ones only with `fitted`)."""
    return {name: score(name, outputs, fitted) for name, s in SCORERS.items()
            if set(s.reads) <= set(outputs) and (fitted is not None or not s.fitted)}


def fit_component_gaussians(features: np.ndarray, responsibilities: np.ndarray,
                            ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """Lee et al. 2018's class-conditional Gaussians with a tied covariance, the PCM's
    responsibilities r_ik as the (soft) classes of the N training images' features f_i:

        mu_k = sum_i r_ik f_i / sum_i r_ik
        S    = 1/N sum_i sum_k r_ik (f_i - mu_k)(f_i - mu_k)^T + ridge tr(S)/c I

    Returns (mu_k W [K, c], W [c, c]) with W W^T = S^-1: W = L^-T for S = L L^T (Cholesky)."""
    f = np.asarray(features, np.float64)
    center = f.mean(axis=0)
    f = f - center  # S does not move; the sums below lose fewer digits
    r = np.asarray(responsibilities, np.float64)
    mass = r.sum(axis=0)
    means = (r.T @ f) / mass[:, None]
    # sum_i sum_k r_ik (f_i - mu_k)(f_i - mu_k)^T = F^T F - sum_k mass_k mu_k mu_k^T, as
    # sum_k r_ik = 1 and sum_i r_ik f_i = mass_k mu_k.
    cov = (f.T @ f - (means.T * mass) @ means) / len(f)
    cov += ridge * np.trace(cov) / len(cov) * np.eye(len(cov))
    whitening = np.linalg.inv(np.linalg.cholesky(cov)).T
    return (means + center) @ whitening, whitening


def fit_nearest_neighbours(features: np.ndarray, dimensions: int = KNN_DIMENSIONS,
                           bank_images: int = KNN_BANK_IMAGES, seed: int = KNN_SEED
                           ) -> tuple[np.ndarray, np.ndarray]:
    """knn's (P [D, m], bank [n, m]): P has N(0, 1/m) entries, which keep distances between the
    features (Johnson-Lindenstrauss) in m << D dimensions; the bank is u(h_j P) of the training
    features h_j, or of `bank_images` of them drawn without replacement. Both float32: the
    export stores them."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((features.shape[1], dimensions)) / np.sqrt(dimensions)
    if len(features) > bank_images:
        features = features[np.sort(rng.choice(len(features), bank_images, replace=False))]
    projected = np.asarray(features, np.float64) @ projection
    bank = projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-6)
    return projection.astype(np.float32), bank.astype(np.float32)


def fit(train_outputs: dict[str, np.ndarray], validation_outputs: dict[str, np.ndarray]
        ) -> Fitted:
    """The fitted scorers' parameters: the component Gaussians on the training images' pooled
    PCM features and knn's bank of their flat ones (when given), then the mean and spread on
    the validation images of each scorer that combined or knn_mahalanobis standardise."""
    means, whitening = fit_component_gaussians(train_outputs[PCM_FEATURES],
                                               train_outputs[RESPONSIBILITIES])
    projection, bank = (fit_nearest_neighbours(train_outputs[PCM_FLAT_FEATURES])
                        if PCM_FLAT_FEATURES in train_outputs else (None, None))
    gaussians = Fitted(means, whitening, {}, projection, bank)
    standard = {}
    for name in dict.fromkeys(COMBINED + EITHER):
        if set(SCORERS[name].reads) <= set(validation_outputs):
            values = score(name, validation_outputs, gaussians)
            standard[name] = (float(values.mean()), float(values.std()))
    return dataclasses.replace(gaussians, standard=standard)


def gmmgan_outputs(model, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
    """The outputs of a GMMGAN model the scorers read: D's logits, and the PCM's Pr(k|x), its
    flat penultimate features and their pooled moments (Encoder.channel_moments), all from one
    pass of the PCM's encoder."""
    def batched(fn, rows):
        return np.concatenate([fn(rows[i:i + batch_size]).numpy()
                               for i in range(0, len(rows), batch_size)])

    outputs = {DISCRIMINATOR_LOGITS: batched(lambda x: model.discriminator(x, training=False),
                                             images)}
    if model.pcm is not None:
        flat = batched(lambda x: model.pcm.encoder(x, training=False), images)
        outputs[RESPONSIBILITIES] = batched(lambda f: tf.nn.softmax(model.pcm.dense(f)), flat)
        outputs[PCM_FEATURES] = batched(model.pcm.encoder.channel_moments, flat)
        outputs[PCM_FLAT_FEATURES] = flat
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


def flag_threshold(scores: np.ndarray, share: float = FLAG_SHARE) -> float:
    """The score above which `share` of `scores` lie: their (1 - share) quantile."""
    return float(np.quantile(np.asarray(scores, np.float64), 1.0 - share))


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The served novelty score of a trained model: its scorer's fitted parameters, fitted on
    the training images, and the threshold that flags FLAG_SHARE of the validation images."""
    scorer: str
    fitted: Fitted
    threshold: float
    train_images: int
    calibration_images: int

    def metadata(self) -> dict:
        """What the export's metadata and metrics.json say of it."""
        return {"novelty_scorer": self.scorer, "novelty_threshold": self.threshold,
                "novelty_flag_share": FLAG_SHARE, "novelty_calibration_split": "validation",
                "novelty_calibration_images": self.calibration_images,
                "novelty_fit_split": "train", "novelty_fit_images": self.train_images}


def calibrate(model, bundle, scorer: str = SERVED_SCORER) -> Calibration:
    """Fits the scorers on `bundle`'s training images and sets the threshold of `scorer` on its
    validation images, which the model never trained on: on the training images, where the PCM
    is most confident, it would flag about twice FLAG_SHARE of new images like them."""
    if not bundle.num_validation:
        raise ConfigError(f"{bundle.name}: this run has no validation split (trained with "
                          "--validation_fraction=0, or before it existed), and the novelty "
                          "threshold is calibrated on images the model never trained on; "
                          "retrain with --validation_fraction=0.1 (the default)")
    return calibrate_outputs(gmmgan_outputs(model, bundle.train_images),
                             gmmgan_outputs(model, bundle.val_images), scorer)


def calibrate_outputs(train_outputs: dict[str, np.ndarray],
                      validation_outputs: dict[str, np.ndarray], scorer: str) -> Calibration:
    """calibrate() from the model's outputs on the training and validation images."""
    fitted = fit(train_outputs, validation_outputs)
    threshold = flag_threshold(score(scorer, validation_outputs, fitted))
    return Calibration(scorer, fitted, threshold, len(train_outputs[RESPONSIBILITIES]),
                       len(validation_outputs[RESPONSIBILITIES]))


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
