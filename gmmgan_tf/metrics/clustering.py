"""Clustering of real images by the PCM, and agreement of the PCM with the generator's components.

ACC uses the Hungarian matching of clusters to classes (scipy `linear_sum_assignment`); NMI and
ARI come from scikit-learn. Component agreement is the fraction of fakes from component k that the
PCM assigns to k: `identity` requires PCM index k to mean component k (what serving Pr(k|x)
needs), `best_permutation` allows any relabelling.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from gmmgan_tf.metrics.coverage import class_histogram


def contingency(a: np.ndarray, b: np.ndarray, size_a: int, size_b: int) -> np.ndarray:
    """counts[i, j] = #{n : a_n = i and b_n = j}, for i < size_a and j < size_b: scikit-learn's
    table, which has a row (column) per value present only, placed at those values."""
    a, b = np.asarray(a), np.asarray(b)
    counts = np.zeros((size_a, size_b), dtype=np.int64)
    counts[np.ix_(np.unique(a), np.unique(b))] = skm.cluster.contingency_matrix(a, b)
    return counts


def best_matching_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """max over one-to-one relabellings of b of mean(a == relabel(b))."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two equal, non-empty 1-D label arrays, got {a.shape} and {b.shape}")
    counts = contingency(b, a, b.max() + 1, a.max() + 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / a.size)


def clustering_scores(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """ACC (Hungarian), NMI and ARI of predicted clusters against true labels."""
    return {
        "acc": best_matching_accuracy(labels, clusters),
        "nmi": float(skm.normalized_mutual_info_score(labels, clusters)),
        "ari": float(skm.adjusted_rand_score(labels, clusters)),
    }


def component_agreement(components: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Fraction of fakes whose PCM argmax is their generating component (identity) or is so
    after the best relabelling of PCM outputs (best_permutation)."""
    components, predicted = np.asarray(components), np.asarray(predicted)
    return {
        "identity": float(np.mean(components == predicted)),
        "best_permutation": best_matching_accuracy(components, predicted),
    }


def clusters_used(clusters: np.ndarray, num_clusters: int, min_share: float = 0.02) -> int:
    """How many clusters hold at least `min_share` of the images."""
    shares = np.bincount(np.asarray(clusters), minlength=num_clusters) / max(len(clusters), 1)
    return int(np.sum(shares >= min_share))


def component_purity(components: np.ndarray, classes: np.ndarray, num_classes: int) -> dict:
    """Are the generator's components real clusters? `classes`: a domain classifier's class of
    each fake. purity: the fraction of fakes in their component's majority class (1 when every
    component makes one class); classes_generated: how many classes are some component's
    majority class (the number of classes the components stand for); matched_class: that
    majority class per component id up to the largest, -1 for an id without fakes."""
    components, classes = np.asarray(components), np.asarray(classes)
    counts = contingency(components, classes, components.max() + 1, num_classes)
    used = counts.sum(axis=1) > 0
    matched = np.where(used, counts.argmax(axis=1), -1)
    return {"purity": float(counts.max(axis=1).sum() / components.size),
            "classes_generated": int(np.unique(matched[used]).size),
            "matched_class": matched}


def weights_against_shares(weights: np.ndarray, clusters: np.ndarray) -> dict:
    """Mixture weights alpha_k (the share of samples component k makes) beside share_k, the share
    of real images assigned to component k, and their total variation 0.5 sum_k |alpha_k -
    share_k|: the least part of the samples that would have to come from another component for
    the generated mix to match the real one, however good each component's images are."""
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 1 or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be non-negative and sum to 1, got {weights}")
    shares = class_histogram(clusters, weights.size)
    return {"alpha": weights, "shares": shares, "tv": float(0.5 * np.abs(weights - shares).sum())}
