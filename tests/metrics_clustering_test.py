"""Clustering metrics against brute force and scikit-learn on small label arrays."""
import itertools

import numpy as np
import pytest
from sklearn import metrics as skm

from gmmgan_tf.metrics import clustering


def _brute_force_accuracy(a, b, k):
    return max(np.mean(a == np.asarray(perm)[b]) for perm in itertools.permutations(range(k)))


def test_best_matching_accuracy_equals_brute_force_over_permutations():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 5, 60), rng.integers(0, 5, 60)
        assert clustering.best_matching_accuracy(a, b) == pytest.approx(
            _brute_force_accuracy(a, b, 5))
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert clustering.best_matching_accuracy(labels, (labels + 1) % 3) == 1.0


def test_clustering_scores_and_agreement():
    rng = np.random.default_rng(1)
    labels, clusters = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    scores = clustering.clustering_scores(labels, clusters)
    assert scores["nmi"] == pytest.approx(skm.normalized_mutual_info_score(labels, clusters))
    assert scores["ari"] == pytest.approx(skm.adjusted_rand_score(labels, clusters))
    swapped = clustering.component_agreement(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
    assert swapped == {"identity": 0.0, "best_permutation": 1.0}
    with pytest.raises(ValueError, match="equal, non-empty"):
        clustering.best_matching_accuracy(np.array([0, 1]), np.array([0]))


def test_clusters_used_counts_clusters_above_the_share():
    clusters = np.array([0] * 97 + [1] * 2 + [2])
    assert clustering.clusters_used(clusters, 4) == 2  # 97 % and 2 %; 1 % and 0 % are not


def test_component_purity():
    # Component 0 makes class 3 four times of five, component 1 class 3 always, component 2 class 1.
    components = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    classes = np.array([3, 3, 3, 3, 5, 3, 3, 1, 1, 1])
    out = clustering.component_purity(components, classes, num_classes=10)
    assert out["purity"] == pytest.approx(9 / 10)
    assert out["classes_generated"] == 2  # classes 3 and 1
    np.testing.assert_array_equal(out["matched_class"], [3, 3, 1])
    pure = clustering.component_purity(np.arange(10), np.arange(10), 10)
    assert pure["purity"] == 1.0 and pure["classes_generated"] == 10
    np.testing.assert_array_equal(pure["matched_class"], np.arange(10))
    # Component 1 makes nothing: no matched class (not class 0, argmax of a zero row).
    gap = clustering.component_purity(np.array([0, 2, 2]), np.array([4, 1, 1]), 5)
    np.testing.assert_array_equal(gap["matched_class"], [4, -1, 1])
    assert gap["classes_generated"] == 2


def test_weights_against_shares_by_hand():
    out = clustering.weights_against_shares(np.array([0.5, 0.25, 0.25]), np.array([0, 0, 0, 1]))
    np.testing.assert_allclose(out["shares"], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(out["alpha"], [0.5, 0.25, 0.25])
    assert out["tv"] == pytest.approx(0.25)  # (|0.5 - 0.75| + 0 + |0.25 - 0|) / 2
    with pytest.raises(ValueError, match="sum to 1"):
        clustering.weights_against_shares(np.array([0.5, 0.4]), np.array([0]))
    with pytest.raises(ValueError, match=r"must be in \[0, 2\)"):
        clustering.weights_against_shares(np.array([0.5, 0.5]), np.array([2]))
