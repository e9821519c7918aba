"""The sample-quality evaluation as one function: arrays in, a flat dict of numbers out.

`evaluate_samples` computes, for generated images against the real training images:
- NDB/K and JS (`ndb.py`): `ndb`, `ndb_over_k`, `ndb_js`, `ndb_bins`, `ndb_samples`,
  `ndb_train_samples`, and for plots `ndb_proportions`, `ndb_train_proportions`,
  `ndb_different` (lists), with the fakes' `components` also `ndb_component_proportions`
  ([bin][component] shares of the fakes);
- domain IS / FID / KID from the project's classifier (`domain_classifier.py`, NOT Inception):
  `domain_is` (one split: all samples), `domain_fid`, `domain_kid` (against the training
  images), `domain_classifier_accuracy`;
- mode coverage by that classifier (`coverage.py`): `coverage_classes`, `coverage_kl`,
  `coverage_shares` (list); with the fakes' `components`, their purity by the same
  classification (`clustering.component_purity`): `component_purity`,
  `component_classes_generated`, `component_matched_class` (list); with `train_labels` too,
  per component (lists, `pixels.group_statistics`) `component_pixel_intensity`,
  `component_pixel_ink`, `component_sharpness` of its fakes beside
  `matched_class_pixel_intensity`, `matched_class_pixel_ink`, `matched_class_sharpness` of the
  training images of its matched class;
- Inception IS / FID / KID (`inception.py`) only when an extractor is given: `inception_is`,
  `inception_is_std` (10 splits, as in the original code), `inception_fid`, `inception_kid`;
- sharpness (`sharpness.py`): `sharpness`; pixel statistics (`pixels.py`): `pixel_intensity`,
  `pixel_ink`;
- with `reference=True`, the copy guard (`copying.py`): `copy_ratio`,
  `copy_distance_samples_median`, `copy_distance_held_out_median`.
With `reference=True` the held-out real images go through the same metrics, giving the
paper's TEST row: `ref_ndb_over_k`, `ref_ndb_js`, `ref_domain_is`, `ref_domain_fid`,
`ref_domain_kid`, `ref_sharpness`, `ref_pixel_intensity`, `ref_pixel_ink` (and
`ref_inception_*`). PCM clustering and component agreement need the model,
so they live with the caller (`gmmgan_tf/evaluation.py`, using `clustering.py`).
Metrics never import model code.
"""
from __future__ import annotations

import os

import keras
import numpy as np

from gmmgan_tf.metrics import clustering, copying, coverage, fid, pixels, sharpness
from gmmgan_tf.metrics.domain_classifier import DomainClassifier
from gmmgan_tf.metrics.ndb import NDB


def evaluate_samples(real_train: np.ndarray, real_test: np.ndarray, fakes: np.ndarray, *,
                     ndb: NDB | None = None, classifier: DomainClassifier | None = None,
                     train_labels: np.ndarray | None = None,
                     components: np.ndarray | None = None, inception=None,
                     ndb_significance: float = 0.05, ndb_z_threshold: float | None = None,
                     reference: bool = True, seed: int = 0, progress: bool = False) -> dict:
    """All sample-quality metrics of `fakes` (NHWC in [-1, 1]); see the module docstring.

    `ndb`: bins fitted on `real_train` (`NDB.cached`); `classifier`: the data set's domain
    classifier; `train_labels`: training labels, for the coverage KL (uniform without them);
    `components`: the mixture component of each fake, for component purity and the
    per-component entries (None: skipped);
    `inception`: an `InceptionExtractor` or None. Skipped parts leave their keys out.
    """
    _check_images(real_train, "real_train")
    _check_images(fakes, "fakes", like=real_train)
    if reference:
        _check_images(real_test, "real_test", like=real_train)
    steps = [name for name, on in (("ndb", ndb is not None), ("domain", classifier is not None),
                                   ("inception", inception is not None), ("pixels", True),
                                   ("copy", reference))
             if on]
    bar = keras.utils.Progbar(len(steps), stateful_metrics=["step"]) if progress else None
    sets = {"": fakes, "ref_": real_test} if reference else {"": fakes}
    out: dict = {}
    for i, step in enumerate(steps):
        if step == "ndb":
            for prefix, images in sets.items():
                result = ndb.evaluate(images, ndb_significance, ndb_z_threshold)
                out[f"{prefix}ndb_over_k"] = result["ndb_over_k"]
                out[f"{prefix}ndb_js"] = result["js"]
                if not prefix:
                    out.update(ndb=result["ndb"], ndb_bins=result["num_bins"],
                               ndb_samples=result["num_samples"],
                               ndb_train_samples=ndb.reference_size,
                               ndb_proportions=result["proportions"].tolist(),
                               ndb_train_proportions=ndb.proportions.tolist(),
                               ndb_different=result["different"].tolist())
                    if components is not None:
                        out["ndb_component_proportions"] = ndb.proportions_by_component(
                            images, components, int(np.max(components)) + 1).tolist()
        elif step == "domain":
            out.update(_classifier_metrics(classifier, real_train, sets, train_labels,
                                           components, seed))
        elif step == "inception":
            out.update(_inception_metrics(inception, real_train, sets, seed))
        elif step == "pixels":
            for prefix, images in sets.items():
                out[f"{prefix}sharpness"] = sharpness.sharpness(images)
                out.update({f"{prefix}pixel_{k}": v
                            for k, v in pixels.pixel_statistics(images).items()})
        else:
            copy = copying.copy_ratio(fakes, real_train, real_test)
            out.update(copy_ratio=copy["ratio"],
                       copy_distance_samples_median=copy["samples_median"],
                       copy_distance_held_out_median=copy["held_out_median"])
        if bar is not None:
            bar.update(i + 1, values=[("step", i + 1)])
    return out


def default_cache_dir(option: str = "") -> str:
    """--metrics_cache_dir, or ~/.cache/gmmgan_tf: NDB bins and domain classifiers, per data set."""
    return os.path.expanduser(option or os.path.join("~", ".cache", "gmmgan_tf"))


def scalars(metrics: dict) -> dict[str, float]:
    """The numeric scalar entries (for TensorBoard and tables), without the per-bin/per-class
    lists or words (the novelty calibration's split name); counts stay integers."""
    return {k: (int(v) if isinstance(v, (int, np.integer)) else float(v))
            for k, v in metrics.items() if np.ndim(v) == 0 and not isinstance(v, str)}


def _classifier_metrics(classifier: DomainClassifier, real_train: np.ndarray, sets: dict,
                        train_labels: np.ndarray | None, components: np.ndarray | None,
                        seed: int) -> dict:
    train_features = classifier.features(real_train)
    distribution = (None if train_labels is None else
                    np.bincount(np.asarray(train_labels), minlength=classifier.num_classes)
                    / len(train_labels))
    out = {"domain_classifier_accuracy": classifier.test_accuracy}
    for prefix, images in sets.items():
        features, probs = classifier.features_and_probabilities(images)
        out[f"{prefix}domain_is"] = fid.inception_score(probs)[0]
        out[f"{prefix}domain_fid"] = fid.fid(train_features, features)
        out[f"{prefix}domain_kid"] = fid.kid(train_features, features, seed=seed)[0]
        if not prefix:
            classes = probs.argmax(axis=1)
            cov = coverage.mode_coverage(classes, classifier.num_classes, distribution)
            out.update(coverage_classes=cov["covered"], coverage_kl=cov["kl"],
                       coverage_shares=cov["shares"].tolist())
            if components is not None:
                purity = clustering.component_purity(components, classes, classifier.num_classes)
                out.update(component_purity=purity["purity"],
                           component_classes_generated=purity["classes_generated"],
                           component_matched_class=purity["matched_class"].tolist())
                if train_labels is not None:
                    out.update(_component_pixels(images, components, real_train, train_labels,
                                                 purity["matched_class"], classifier.num_classes))
    return out


def _component_pixels(fakes: np.ndarray, components: np.ndarray, real_train: np.ndarray,
                      train_labels: np.ndarray, matched_class: np.ndarray,
                      num_classes: int) -> dict:
    """Pixel statistics of each component's fakes beside those of the training images of the
    class it makes most (NaN for a component without fakes or a class without images)."""
    own = pixels.group_statistics(fakes, components, len(matched_class))
    real = pixels.group_statistics(real_train, train_labels, num_classes)
    out = {}
    for name, key in (("intensity", "pixel_intensity"), ("ink", "pixel_ink"),
                      ("sharpness", "sharpness")):
        out[f"component_{key}"] = own[name].tolist()
        out[f"matched_class_{key}"] = np.where(matched_class >= 0, real[name][matched_class],
                                               np.nan).tolist()
    return out


def _inception_metrics(inception, real_train: np.ndarray, sets: dict, seed: int) -> dict:
    train_features, _ = inception(real_train)
    out = {}
    for prefix, images in sets.items():
        features, probs = inception(images)
        out[f"{prefix}inception_fid"] = fid.fid(train_features, features)
        out[f"{prefix}inception_kid"] = fid.kid(train_features, features, seed=seed)[0]
        if probs is not None:
            out[f"{prefix}inception_is"], std = fid.inception_score(probs, splits=10
                                                                    if len(probs) >= 10 else 1)
            if not prefix:
                out["inception_is_std"] = std
    return out


def _check_images(images: np.ndarray, name: str, like: np.ndarray | None = None) -> None:
    shape = np.shape(images)
    if len(shape) != 4 or shape[0] == 0:
        raise ValueError(f"{name}: need NHWC images, got shape {shape}")
    if like is not None and shape[1:] != np.shape(like)[1:]:
        raise ValueError(f"{name}: images of shape {shape[1:]} but the training images are "
                         f"{np.shape(like)[1:]}")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{name}: contains NaN or infinite values; check the generator")
