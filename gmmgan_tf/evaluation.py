"""Quality numbers of a trained model on its data set (reads a model, writes nothing).

This module joins models and metrics: metrics stay pure functions of arrays, models never import
them.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
from absl import logging
from scipy import special
from scipy.spatial import distance

from gmmgan_tf import data as data_lib, novelty, warm_start
from gmmgan_tf.config import Config
from gmmgan_tf.data_core import DataBundle
from gmmgan_tf.metrics import clustering, report
from gmmgan_tf.metrics.domain_classifier import load_or_train
from gmmgan_tf.metrics.inception import InceptionExtractor
from gmmgan_tf.metrics.ndb import cached_ndb


def pcm_scores(model, data: DataBundle, num_fakes: int, seed: int = 0) -> dict[str, float]:
    """Clustering of the held-out real images by argmax C(x) (ACC/NMI/ARI, clusters used) and
    component agreement of the PCM on `num_fakes` generated images."""
    k = model.num_components
    scores = pcm_clustering(model, data)
    fakes, components = model.sample(max(1, num_fakes // k), seed=seed)
    predicted = model.responsibilities(fakes).argmax(axis=1)
    agreement = clustering.component_agreement(components, predicted)
    scores["agreement_identity"] = agreement["identity"]
    scores["agreement_best_permutation"] = agreement["best_permutation"]
    return scores


def pcm_clustering(model, data: DataBundle) -> dict[str, float]:
    """ACC/NMI/ARI and clusters used of argmax C(x) on the held-out real images."""
    clusters = model.responsibilities(data.test_images).argmax(axis=1)
    scores = {f"pcm_{name}": value
              for name, value in clustering.clustering_scores(data.test_labels, clusters).items()}
    scores["pcm_clusters_used"] = clustering.clusters_used(clusters, model.num_components)
    return scores


def within_component_diversity(model, data: DataBundle, num_per_component: int = 100,
                               seed: int = 0) -> dict[str, float]:
    """Mean pairwise L2 distance of samples from one component, divided by the same among real
    held-out images of the class the PCM matches to that component (1.0 = as varied as the
    data). Returns the minimum and mean ratio over the components that have one.

    A component has no ratio (NaN, left out of the minimum and mean, and counted in
    `diversity_components_skipped`) when the PCM assigns it no held-out image, or when its
    matched class has fewer than 2 distinct held-out images (no pairwise distance to divide by);
    0.0 would read as a collapsed component. With no ratio at all, min and mean are NaN.
    """
    fakes, components = model.sample(num_per_component, seed=seed)
    cluster_of_real = model.responsibilities(data.test_images).argmax(axis=1)
    ratios = np.full(model.num_components, np.nan)
    for k in range(model.num_components):
        members = data.test_labels[cluster_of_real == k]
        if members.size == 0:
            continue
        matched_class = np.bincount(members).argmax()
        real = data.test_images[data.test_labels == matched_class][:num_per_component]
        reference = _mean_pairwise_distance(real.reshape(len(real), -1))
        if reference > 0:
            own = fakes[components == k].reshape(num_per_component, -1)
            ratios[k] = _mean_pairwise_distance(own) / reference
    rated = ratios[np.isfinite(ratios)]
    return {"diversity_ratio_min": float(rated.min()) if rated.size else float("nan"),
            "diversity_ratio_mean": float(rated.mean()) if rated.size else float("nan"),
            "diversity_components_skipped": int(model.num_components - rated.size)}


def _mean_pairwise_distance(x: np.ndarray) -> float:
    """Euclidean, over distinct pairs; 0.0 for fewer than 2 rows."""
    return float(distance.pdist(x).mean()) if len(x) > 1 else 0.0


def mixture_weights(model, data: DataBundle) -> dict:
    """alpha_k of the model's prior beside the share of the training images its PCM assigns to
    component k (lists `component_alpha`, `component_train_shares`) and their total variation
    `component_alpha_tv` (`clustering.weights_against_shares`)."""
    alpha = special.softmax(np.asarray(model.prior.mixture_logits, np.float64))
    clusters = model.responsibilities(data.train_images).argmax(axis=1)
    gap = clustering.weights_against_shares(alpha, clusters)
    return {"component_alpha": gap["alpha"].tolist(),
            "component_train_shares": gap["shares"].tolist(), "component_alpha_tv": gap["tv"]}


def classifier_data(data: DataBundle, config: Config) -> DataBundle:
    """The data the domain classifier learns from: for imbalanced_<name> or --exclude_classes,
    <name>'s whole training set, so that every run on it, whatever its dominant or excluded
    classes, is judged by one classifier that saw every class in full (and the classifier cached
    under <name> is <name>'s)."""
    if not data.name.startswith("imbalanced_") and not data.excluded_classes:
        return data
    return data_lib.load(dataclasses.replace(
        config, dataset=config.dataset.removeprefix("imbalanced_"), exclude_classes=""))


def sample_scorers(data: DataBundle, config: Config):
    """The NDB bins of the training images and the domain classifier, both cached per data set
    under --metrics_cache_dir: what sample_quality scores samples with."""
    cache = report.default_cache_dir(config.metrics_cache_dir)
    ndb = cached_ndb(cache, data.name, data.train_images, config.ndb_bins, config.ndb_whitening)
    reference = classifier_data(data, config)
    classifier = load_or_train(cache, reference.name, reference.train_images,
                               reference.train_labels, data.test_images, data.test_labels,
                               data.num_classes)
    return ndb, classifier


def sample_quality(model, data: DataBundle, config: Config, num_fakes: int,
                   progress: bool = False) -> dict:
    """NDB/K and JS, domain IS/FID/KID, mode coverage and sharpness of `num_fakes` samples (and of
    the held-out real images, the `ref_` TEST row); Inception IS/FID with --inception_weights.
    NDB bins and the domain classifier are cached per data set under --metrics_cache_dir."""
    ndb, classifier = sample_scorers(data, config)
    inception = (InceptionExtractor(config.inception_weights) if config.inception_weights
                 else None)
    fakes, components = model.sample_from_prior(num_fakes, seed=config.seed)
    mixture = model.config.uses_mixture_prior and model.num_components > 1
    return report.evaluate_samples(
        data.train_images, data.test_images, fakes, ndb=ndb, classifier=classifier,
        train_labels=data.train_labels, components=components if mixture else None,
        inception=inception, ndb_significance=config.ndb_significance,
        ndb_z_threshold=config.ndb_z_threshold or None, seed=config.seed, progress=progress)


def served_novelty(calibration: novelty.Calibration, test_outputs: dict, data: DataBundle
                   ) -> dict:
    """How the served novelty score was calibrated (novelty.calibrate), and the share of the
    test images of the trained classes it flags: FLAG_SHARE within binomial noise if the
    validation images are like them."""
    scores = novelty.score(calibration.scorer, test_outputs, calibration.fitted)
    trained = ~np.isin(data.test_labels, data.excluded_classes)
    return {**calibration.metadata(), "novelty_test_images": int(trained.sum()),
            "novelty_test_flag_rate": float(np.mean(scores[trained] > calibration.threshold))}


def novelty_detection(model, data: DataBundle, warm_start_dir: str = "",
                      fitted: novelty.Fitted | None = None) -> dict:
    """AUROC/AUPRC of every novelty scorer of the model (novelty.py; the fitted ones with
    `fitted`) at finding the held-out images of the classes the run left out of its training
    images (--exclude_classes); with the run's warm-start cache `warm_start_dir`, also of its
    embedding density."""
    outputs = novelty.gmmgan_outputs(model, data.test_images)
    if warm_start_dir and os.path.isdir(warm_start_dir):
        try:
            outputs.update(novelty.warm_start_outputs(warm_start_dir, data.test_images))
        except (OSError, ValueError, EOFError) as e:  # the other scorers still report
            logging.warning("novelty: no embedding_density, %s is unreadable (%s)",
                            warm_start_dir, e)
    scores = novelty.score_all(outputs, fitted)
    return novelty.detection_metrics(scores, data.test_labels, data.excluded_classes)


def evaluate(model, data: DataBundle, config: Config, num_fakes: int,
             progress: bool = False) -> dict:
    """Every number of a trained model: PCM clustering, agreement, diversity and alpha_k against
    the PCM's shares (gmmgan), the served novelty score's calibration (when the test split is
    scored and there is a validation split), novelty detection (runs with --exclude_classes) and
    sample quality (with --eval_quality). Lists (per-bin, per-class, ROC curves) are kept for
    plots."""
    scores, calibration = {}, None
    if model.pcm is not None:
        scores.update(pcm_scores(model, data, config.eval_samples, config.seed))
        scores.update(within_component_diversity(model, data, seed=config.seed))
        scores.update(mixture_weights(model, data))
        if data.num_validation and data.held_out == "test":  # not per epoch: once, at the end
            calibration = novelty.calibrate(model, data)
            scores.update(served_novelty(calibration, novelty.gmmgan_outputs(
                model, data.test_images), data))
    if data.excluded_classes:
        warm = os.path.join(config.workdir, warm_start.CACHE_DIR) if config.uses_warm_start else ""
        scores.update(novelty_detection(model, data, warm,
                                        calibration.fitted if calibration else None))
    if config.eval_quality:
        scores.update(sample_quality(model, data, config, num_fakes, progress))
    return scores


HEADLINE = ("pcm_acc", "pcm_nmi", "pcm_ari", "agreement_identity", "pcm_clusters_used",
            "diversity_ratio_min", "component_purity", "component_classes_generated",
            "ndb_over_k", "domain_is", "domain_fid", "coverage_classes")


def headline(scores: dict) -> str:
    """The numbers worth a line in the log."""
    return " ".join(f"{k}={scores[k]:.3g}" for k in HEADLINE if k in scores)
