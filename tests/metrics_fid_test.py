"""FID, IS and KID against closed forms and independent NumPy computations."""
import itertools

import numpy as np
import pytest
import scipy.linalg

from gmmgan_tf.metrics import fid as fid_lib


def random_spd(d, rng):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def closed_form_fid(mu1, s1, mu2, s2):
    """tr((S1 S2)^{1/2}) = tr((S1^{1/2} S2 S1^{1/2})^{1/2}), the symmetric form, via eigh."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))


def sqrtm_fid(mu1, s1, mu2, s2):
    """The textbook form with scipy's general matrix square root."""
    return (np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2)
            - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_matches_closed_form(method):
    rng = np.random.default_rng(0)
    for d in (1, 3, 8, 50):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_spd(d, rng), random_spd(d, rng)
        value = fid_lib.frechet_distance(mu1, s1, mu2, s2, method=method)
        assert value == pytest.approx(closed_form_fid(mu1, s1, mu2, s2), rel=1e-8)
        assert value == pytest.approx(sqrtm_fid(mu1, s1, mu2, s2), rel=1e-8)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_diagonal_gaussians_give_sum_of_squared_std_differences(method):
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = 1 + 4 + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid_lib.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2),
                                    method=method) == pytest.approx(expected)


def test_fid_of_samples_approaches_closed_form_and_grows_with_noise():
    rng = np.random.default_rng(1)
    d = 4
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    a = rng.multivariate_normal(mu1, s1, size=20000)
    b = rng.multivariate_normal(mu2, s2, size=20000)
    assert fid_lib.fid(a, b) == pytest.approx(closed_form_fid(mu1, s1, mu2, s2), rel=0.05)
    assert fid_lib.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    noisy = [fid_lib.fid(a, a + s * rng.normal(size=a.shape)) for s in (0.1, 0.5, 1.0)]
    assert noisy[0] < noisy[1] < noisy[2]


def test_fid_with_fewer_samples_than_dimensions_stays_finite_and_methods_agree():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 30)), rng.normal(size=(10, 30))
    value = fid_lib.fid(a, b)
    assert np.isfinite(value) and value > 0
    assert fid_lib.fid(a, b, method="sqrtm") == pytest.approx(value, rel=1e-4)


def test_inception_score_of_confident_balanced_predictions_is_the_class_count():
    for classes in (1, 4, 10):
        probs = np.eye(classes)[np.arange(100 * classes) % classes]
        assert fid_lib.inception_score(probs)[0] == pytest.approx(classes, rel=1e-6)
        mean, std = fid_lib.inception_score(probs, splits=5)
        assert mean == pytest.approx(classes, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    assert fid_lib.inception_score(np.full((50, 10), 0.1))[0] == pytest.approx(1.0)


def test_inception_score_matches_direct_formula():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(6) * 0.3, size=200)
    marginal = p.mean(axis=0)
    expected = np.exp(np.mean([sum(pi * np.log(pi / marginal)) for pi in p]))
    assert fid_lib.inception_score(p)[0] == pytest.approx(expected, rel=1e-6)


def test_mmd2_unbiased_matches_loop():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = np.mean([k(x[i], x[j]) for i, j in itertools.permutations(range(7), 2)])
    yy = np.mean([k(y[i], y[j]) for i, j in itertools.permutations(range(5), 2)])
    xy = np.mean([k(a, b) for a in x for b in y])
    assert fid_lib.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    same, same_std = fid_lib.kid(a, b, num_subsets=5, subset_size=500)
    shifted, _ = fid_lib.kid(a, b + 0.5, num_subsets=5, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 0.05 > abs(same)


@pytest.mark.parametrize("call, message", [
    (lambda: fid_lib.fid(np.zeros((10, 3)), np.zeros((10, 4))), "feature sizes differ"),
    (lambda: fid_lib.fid(np.full((10, 3), np.nan), np.zeros((10, 3))), "NaN"),
    (lambda: fid_lib.fid(np.zeros((1, 3)), np.zeros((10, 3))), "N >= 2"),
    (lambda: fid_lib.inception_score(np.ones((4, 3))), "sum to 1"),
    (lambda: fid_lib.inception_score(np.eye(3), splits=5), "splits"),
    (lambda: fid_lib.fid(np.eye(3), np.eye(3), method="svd"), "unknown FID method"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
