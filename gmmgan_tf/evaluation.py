"""Quality numbers of a trained model on its data set (reads a model, writes nothing).

This module joins models and metrics: metrics stay pure functions of arrays, models never import
them.
"""
from __future__ import annotations

import numpy as np

from gmmgan_tf.data import DataBundle
from gmmgan_tf.metrics import clustering


def pcm_scores(model, data: DataBundle, num_fakes: int, seed: int = 0) -> dict[str, float]:
    """Clustering of the held-out real images by argmax C(x) (ACC/NMI/ARI, clusters used) and
    component agreement of the PCM on `num_fakes` generated images."""
    k = model.num_components
    clusters = model.responsibilities(data.test_images).argmax(axis=1)
    scores = {f"pcm_{name}": value
              for name, value in clustering.clustering_scores(data.test_labels, clusters).items()}
    scores["pcm_clusters_used"] = clustering.clusters_used(clusters, k)
    fakes, components = model.sample(max(1, num_fakes // k), seed=seed)
    predicted = model.responsibilities(fakes).argmax(axis=1)
    agreement = clustering.component_agreement(components, predicted)
    scores["agreement_identity"] = agreement["identity"]
    scores["agreement_best_permutation"] = agreement["best_permutation"]
    return scores


def within_component_diversity(model, data: DataBundle, num_per_component: int = 100,
                               seed: int = 0) -> dict[str, float]:
    """Mean pairwise L2 distance of samples from one component, divided by the same among real
    held-out images of the class the PCM matches to that component (1.0 = as varied as the
    data). Returns the minimum and mean ratio over components."""
    fakes, components = model.sample(num_per_component, seed=seed)
    cluster_of_real = model.responsibilities(data.test_images).argmax(axis=1)
    ratios = []
    for k in range(model.num_components):
        own = fakes[components == k].reshape(num_per_component, -1)
        members = data.test_labels[cluster_of_real == k]
        if members.size == 0:
            ratios.append(0.0)
            continue
        matched_class = np.bincount(members).argmax()
        real = data.test_images[data.test_labels == matched_class][:num_per_component]
        ratios.append(_mean_pairwise_distance(own) / _mean_pairwise_distance(real.reshape(
            len(real), -1)))
    return {"diversity_ratio_min": float(np.min(ratios)),
            "diversity_ratio_mean": float(np.mean(ratios))}


def _mean_pairwise_distance(x: np.ndarray) -> float:
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    n = len(x)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


def evaluate(model, data: DataBundle, num_fakes: int, seed: int = 0) -> dict[str, float]:
    scores = {}
    if model.pcm is not None:
        scores.update(pcm_scores(model, data, num_fakes, seed))
        scores.update(within_component_diversity(model, data, seed=seed))
    return scores
