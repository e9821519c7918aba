"""evaluate_samples: every entry equals the metric module's own function on the same arrays."""
import json

import numpy as np
import pytest

from gmmgan_tf.metrics import clustering, copying, coverage, fid, pixels, sharpness
from gmmgan_tf.metrics.domain_classifier import DomainClassifier, build_classifier
from gmmgan_tf.metrics.ndb import NDB
from gmmgan_tf.metrics.report import evaluate_samples, scalars


class FakeInception:
    """Stands in for InceptionExtractor: fixed random projection features, softmax 'classes'."""

    def __init__(self, dim):
        self.w = np.random.default_rng(9).normal(size=(dim, 6))

    def __call__(self, images):
        f = images.reshape(len(images), -1) @ self.w
        e = np.exp(f - f.max(axis=1, keepdims=True))
        return f, e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    train = np.tanh(rng.normal(size=(300, 8, 8, 1))).astype(np.float32)
    test = np.tanh(rng.normal(size=(120, 8, 8, 1))).astype(np.float32)
    fakes = np.tanh(rng.normal(size=(150, 8, 8, 1)) * 0.5 + 0.3).astype(np.float32)
    labels = rng.integers(0, 3, size=300)
    classifier = DomainClassifier(build_classifier((8, 8, 1), 3, seed=0), test_accuracy=0.5)
    ndb = NDB.fit(train, num_bins=5)
    return train, test, fakes, labels, classifier, ndb


def test_entries_match_the_metric_functions(setup):
    train, test, fakes, labels, classifier, ndb = setup
    components = np.arange(150) % 5
    out = evaluate_samples(train, test, fakes, ndb=ndb, classifier=classifier,
                           train_labels=labels, components=components,
                           inception=FakeInception(64))
    direct = ndb.evaluate(fakes)
    assert out["ndb_over_k"] == direct["ndb_over_k"] and out["ndb_js"] == direct["js"]
    assert out["ref_ndb_over_k"] == ndb.evaluate(test)["ndb_over_k"]
    tf_, tp = classifier.features_and_probabilities(train)[0], classifier.probabilities(fakes)
    ff = classifier.features(fakes)
    assert out["domain_fid"] == pytest.approx(fid.fid(tf_, ff), rel=1e-6)
    assert out["domain_is"] == pytest.approx(fid.inception_score(tp)[0], rel=1e-6)
    cov = coverage.mode_coverage(tp.argmax(1), 3, np.bincount(labels, minlength=3) / 300)
    assert out["coverage_classes"] == cov["covered"]
    assert out["coverage_kl"] == pytest.approx(cov["kl"], rel=1e-6)
    purity = clustering.component_purity(components, tp.argmax(1), 3)
    assert out["component_purity"] == purity["purity"]
    assert out["component_classes_generated"] == purity["classes_generated"]
    matched = purity["matched_class"]
    assert out["component_matched_class"] == matched.tolist()
    by_component = ndb.proportions_by_component(fakes, components, 5)
    assert out["ndb_component_proportions"] == by_component.tolist()
    np.testing.assert_allclose(by_component.sum(axis=1), out["ndb_proportions"])
    own = pixels.group_statistics(fakes, components, 5)
    real = pixels.group_statistics(train, labels, 3)
    for name, key in (("intensity", "pixel_intensity"), ("ink", "pixel_ink"),
                      ("sharpness", "sharpness")):
        np.testing.assert_array_equal(out[f"component_{key}"], own[name])
        np.testing.assert_array_equal(out[f"matched_class_{key}"], real[name][matched])
    assert out["sharpness"] == sharpness.sharpness(fakes)
    assert out["ref_sharpness"] == sharpness.sharpness(test)
    for prefix, images in (("", fakes), ("ref_", test)):
        stats = pixels.pixel_statistics(images)
        assert out[f"{prefix}pixel_intensity"] == stats["intensity"]
        assert out[f"{prefix}pixel_ink"] == stats["ink"]
    copy = copying.copy_ratio(fakes, train, test)
    assert out["copy_ratio"] == copy["ratio"]
    assert out["copy_distance_samples_median"] == copy["samples_median"]
    assert out["copy_distance_held_out_median"] == copy["held_out_median"]
    inc = FakeInception(64)
    assert out["inception_fid"] == pytest.approx(fid.fid(inc(train)[0], inc(fakes)[0]))
    assert out["inception_is"] == pytest.approx(fid.inception_score(inc(fakes)[1], 10)[0])
    assert out["domain_classifier_accuracy"] == 0.5
    json.dumps(out)  # metrics.json-ready
    assert set(scalars(out)) == {k for k in out if not isinstance(out[k], list)}
    assert isinstance(scalars(out)["coverage_classes"], int)
    assert isinstance(scalars(out)["ndb_js"], float)


def test_optional_parts_are_left_out(setup):
    train, test, fakes, *_ = setup
    out = evaluate_samples(train, test, fakes, reference=False)
    assert set(out) == {"sharpness", "pixel_intensity", "pixel_ink"}
    out = evaluate_samples(train, test, fakes)
    assert set(out) == {"sharpness", "pixel_intensity", "pixel_ink", "ref_sharpness",
                        "ref_pixel_intensity", "ref_pixel_ink", "copy_ratio",
                        "copy_distance_samples_median", "copy_distance_held_out_median"}


def test_real_held_out_images_score_better_than_shifted_fakes(setup):
    train, test, fakes, labels, classifier, ndb = setup
    out = evaluate_samples(train, test, fakes, ndb=ndb, classifier=classifier)
    assert out["ref_ndb_js"] < out["ndb_js"]
    assert out["ref_domain_fid"] < out["domain_fid"]


@pytest.mark.parametrize("change, message", [
    (lambda t, s, f: (t, s, f[:, :4]), "fakes: images of shape"),
    (lambda t, s, f: (t, s, np.full_like(f, np.nan)), "NaN"),
    (lambda t, s, f: (t, s, f[0]), "NHWC"),
])
def test_bad_input(setup, change, message):
    train, test, fakes, *_ = setup
    with pytest.raises(ValueError, match=message):
        evaluate_samples(*change(train, test, fakes))
