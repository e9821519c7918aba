"""Copy ratio against brute-force SciPy distances, and by hand."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gmmgan_tf.metrics import copying


def images(n, seed):
    """MNIST-like: 28x28 values near -1 or 1, so ||x||^2 ~ 700 and float32 cancellation shows."""
    return np.tanh(3 * np.random.default_rng(seed).normal(size=(n, 28, 28, 1))).astype(np.float32)


def brute_force_nearest(queries, reference):
    flat = lambda x: x.reshape(len(x), -1).astype(np.float64)  # noqa: E731
    return cdist(flat(queries), flat(reference)).min(axis=1)


@pytest.mark.parametrize("batch_size", [1024, 7])  # one batch, and 6 batches with a partial one
def test_nearest_distances_match_cdist(batch_size):
    queries, reference = images(40, 1), images(23, 2)
    np.testing.assert_allclose(copying.nearest_distances(queries, reference, batch_size),
                               brute_force_nearest(queries, reference), rtol=1e-5)


@pytest.mark.parametrize("num_samples", [41, 40])  # odd: the middle one; even: a mean of two
def test_copy_ratio_matches_brute_force_medians(num_samples):
    train, held_out = images(30, 3), images(25, 4)
    # Half the samples near training images, so the median and the mean differ.
    near = num_samples // 2
    samples = np.concatenate([train[:near] * 0.9, images(num_samples - near, 5)])
    s = np.median(brute_force_nearest(samples, train))
    h = np.median(brute_force_nearest(held_out, train))
    out = copying.copy_ratio(samples, train, held_out, batch_size=6)
    assert out["samples_median"] == pytest.approx(s, rel=1e-5)
    assert out["held_out_median"] == pytest.approx(h, rel=1e-5)
    assert out["ratio"] == pytest.approx(s / h, rel=1e-5)


def test_by_hand():
    train = np.array([[0, 0, 0, 0], [3, 3, 3, 3]], np.float32)[:, :, None, None]
    held_out = np.array([[2, 0, 0, 0], [0, 0, 0, 2], [3, 3, 3, 1]], np.float32)[:, :, None, None]
    samples = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [3, 3, 3, 2]], np.float32)[:, :, None, None]
    assert copying.copy_ratio(samples, train, held_out) == {
        "ratio": 0.5, "samples_median": 1.0, "held_out_median": 2.0}


def test_exact_copies_of_training_images_give_zero():
    train = images(50, 6)
    out = copying.copy_ratio(train[[3, 7, 7, 0, 49]], train, images(20, 7), batch_size=4)
    assert out["ratio"] == 0.0 and out["samples_median"] == 0.0
    assert out["held_out_median"] > 10
    # Every copy, not just the median: ||q||^2 + ||t||^2 - 2 q.t leaves some at ~0.02.
    np.testing.assert_array_equal(copying.nearest_distances(train, train, batch_size=16), 0.0)


def test_refusals():
    train = images(10, 8)
    with pytest.raises(ValueError, match="split leaks"):
        copying.copy_ratio(images(5, 9), train, train[:6])
    with pytest.raises(ValueError, match="784 values each, the reference 392"):
        copying.nearest_distances(train, train[:, :14])
    with pytest.raises(ValueError, match="N >= 1"):
        copying.nearest_distances(train[:0], train)
