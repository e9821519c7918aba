"""The model-side evaluation helpers (PCM clustering, agreement, within-component diversity,
mixture weights) against known answers, with a stub model whose PCM and generator are given by
hand."""
import dataclasses
import types

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from gmmgan_tf import evaluation
from gmmgan_tf.data import DataBundle

K = 3


class StubModel:
    """Pixel 0 of every image carries a code; the PCM's argmax is `pcm(code)`. The generator's
    component-k images have code k and seeded random other pixels."""

    def __init__(self, pcm):
        self.num_components, self.pcm = K, pcm

    def responsibilities(self, images):
        codes = np.rint(images.reshape(len(images), -1)[:, 0]).astype(int)
        return np.eye(K)[[self.pcm(c) for c in codes]]

    def sample(self, per_component, seed=0):
        components = np.repeat(np.arange(K), per_component)
        images = np.random.default_rng(seed).normal(size=(len(components), 2, 2, 1))
        images[:, 0, 0, 0] = components
        return images, components


def bundle(labels, seed=1):
    """Held-out images whose code is their label."""
    labels = np.asarray(labels)
    images = np.random.default_rng(seed).normal(size=(len(labels), 2, 2, 1))
    images[:, 0, 0, 0] = labels
    return DataBundle("stub", images, labels, images, labels, num_classes=K)


BALANCED = np.arange(30) % K


@pytest.mark.parametrize("pcm, expected", [
    (lambda c: c, dict(pcm_acc=1, pcm_nmi=1, pcm_ari=1, pcm_clusters_used=K,
                       agreement_identity=1, agreement_best_permutation=1)),
    # Right clusters under other names: ACC/NMI/ARI are permutation-invariant, identity is not.
    (lambda c: (c + 1) % K, dict(pcm_acc=1, pcm_nmi=1, pcm_ari=1, pcm_clusters_used=K,
                                 agreement_identity=0, agreement_best_permutation=1)),
    (lambda c: 0, dict(pcm_acc=1 / K, pcm_nmi=0, pcm_ari=0, pcm_clusters_used=1,
                       agreement_identity=1 / K, agreement_best_permutation=1 / K)),
])
def test_pcm_scores_of_perfect_permuted_and_constant_pcms(pcm, expected):
    scores = evaluation.pcm_scores(StubModel(pcm), bundle(BALANCED), num_fakes=12)
    assert scores == pytest.approx(expected, abs=1e-12)


def test_diversity_ratio_is_fake_over_matched_real_pairwise_distance():
    # Classes 0 and 2 go to component 0 (class 0 in majority); class 1 to component 1.
    labels = np.array([0, 0, 0, 0, 2, 2, 2, 1, 1, 1, 1, 1])
    data = bundle(labels)
    model = StubModel(lambda c: {0: 0, 1: 1, 2: 0}[c])
    fakes, components = model.sample(5, seed=4)
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    ratio = [pdist(flat(fakes[components == k])).mean()
             / pdist(flat(data.test_images[labels == c])).mean() for k, c in ((0, 0), (1, 1))]
    scores = evaluation.within_component_diversity(model, data, num_per_component=5, seed=4)
    # Component 2 has no held-out image: no ratio (not 0.0, which would read as collapse).
    assert scores == pytest.approx({"diversity_ratio_min": min(ratio),
                                    "diversity_ratio_mean": np.mean(ratio),
                                    "diversity_components_skipped": 1}, rel=1e-9)


def test_a_single_image_class_gives_no_ratio_instead_of_dividing_by_zero():
    # A folder: data set with a small class holds out one image of it (data.py).
    labels = np.array([0, 0, 0, 1, 2, 2])
    model = StubModel(lambda c: c)
    scores = evaluation.within_component_diversity(model, bundle(labels), num_per_component=4)
    assert scores["diversity_components_skipped"] == 1
    assert np.isfinite(scores["diversity_ratio_min"])
    only = evaluation.within_component_diversity(StubModel(lambda c: c), bundle([0, 1, 2]),
                                                 num_per_component=4)
    assert only["diversity_components_skipped"] == K
    assert np.isnan(only["diversity_ratio_min"]) and np.isnan(only["diversity_ratio_mean"])


def test_mixture_weights_beside_the_pcm_shares_of_the_training_images():
    # Training classes 0, 0, 0, 1, 2, 2 -> PCM components 1, 1, 1, 2, 0, 0; held-out images
    # (all class 0) must not count.
    model = StubModel(lambda c: (c + 1) % K)
    model.prior = types.SimpleNamespace(mixture_logits=np.log(np.array([1.0, 2.0, 1.0])))
    data = dataclasses.replace(bundle([0, 0, 0, 1, 2, 2]), test_images=bundle([0, 0]).test_images)
    scores = evaluation.mixture_weights(model, data)
    assert scores["component_alpha"] == pytest.approx([0.25, 0.5, 0.25], rel=1e-12)
    assert scores["component_train_shares"] == pytest.approx([2 / 6, 3 / 6, 1 / 6], rel=1e-12)
    assert scores["component_alpha_tv"] == pytest.approx(1 / 12, rel=1e-12)
