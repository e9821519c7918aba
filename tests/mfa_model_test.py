"""MFA likelihood, posterior and sampling against dense float64 SciPy/NumPy references."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gmmgan_tf.mfa.model import MFA


def random_params(k=3, d=12, l=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(pi=rng.dirichlet(np.ones(k) * 2), mu=rng.normal(size=(k, d)),
                A=rng.normal(size=(k, d, l)) * 0.7, D=rng.uniform(0.05, 0.5, (k, d)))


def dense_joint(p, x):
    """log pi_j + log N(x; mu_j, A_j A_j^T + diag D_j), float64 dense covariances."""
    return np.stack([np.log(p["pi"][j]) + multivariate_normal(
        p["mu"][j], p["A"][j] @ p["A"][j].T + np.diag(p["D"][j])).logpdf(x)
        for j in range(len(p["pi"]))], axis=1)


@pytest.mark.parametrize("k,d,l", [(1, 8, 1), (3, 12, 3), (5, 20, 6)])
def test_log_prob_matches_dense_scipy_mixture(k, d, l):
    p = random_params(k, d, l, seed=d)
    x = np.random.default_rng(1).normal(size=(64, d)) * 1.5
    ref = dense_joint(p, x)
    model = MFA(**p)
    np.testing.assert_allclose(model.log_prob(x).numpy(), logsumexp(ref, axis=1), rtol=1e-4)
    np.testing.assert_allclose(model.joint_log_prob(x).numpy(), ref, rtol=1e-4)
    resp = np.exp(ref - logsumexp(ref, axis=1, keepdims=True))
    np.testing.assert_allclose(model.responsibilities(x).numpy(), resp, atol=1e-4)


def test_images_are_flattened_and_noise_floor_applies():
    p = random_params(2, 16, 2)
    p["D"][0, :4] = 1e-9  # below the floor
    model = MFA(**p, noise_floor=1e-3)
    floored = dict(p, D=np.maximum(p["D"], 1e-3))
    x = np.random.default_rng(2).normal(size=(10, 4, 4, 1))
    np.testing.assert_allclose(model.log_prob(x).numpy(),
                               logsumexp(dense_joint(floored, x.reshape(10, -1)), axis=1),
                               rtol=1e-4)


def test_latent_posterior_matches_dense_formulas():
    p = random_params(2, 10, 3)
    x = np.random.default_rng(3).normal(size=(7, 10))
    _, ez, cov = MFA(**p).latent_posterior(x)
    for j in range(2):
        a = p["A"][j]
        sigma = a @ a.T + np.diag(p["D"][j])
        # z | x ~ N(A^T S^-1 (x - mu), I - A^T S^-1 A)
        np.testing.assert_allclose(ez.numpy()[:, j],
                                   np.linalg.solve(sigma, (x - p["mu"][j]).T).T @ a, atol=1e-5)
        np.testing.assert_allclose(cov.numpy()[j], np.eye(3) - a.T @ np.linalg.solve(sigma, a),
                                   atol=1e-5)


def test_samples_have_the_model_moments():
    p = random_params(3, 8, 2, seed=4)
    x, c = MFA(**p).sample(200_000, seed=5)
    x, c = x.numpy().astype(np.float64), c.numpy()
    sigmas = [a @ a.T + np.diag(dd) for a, dd in zip(p["A"], p["D"])]
    mean = p["pi"] @ p["mu"]
    second = sum(w * (s + np.outer(m, m)) for w, s, m in zip(p["pi"], sigmas, p["mu"]))
    cov = second - np.outer(mean, mean)
    np.testing.assert_allclose(np.bincount(c, minlength=3) / len(c), p["pi"], atol=5e-3)
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05 * np.abs(cov).max())


@pytest.mark.parametrize("change,message", [
    (dict(A=np.zeros((3, 12, 12))), "l < d"),
    (dict(pi=np.array([0.5, 0.6, -0.1])), "pi"),
    (dict(D=np.zeros((3, 12))), "D must be > 0"),
    (dict(mu=np.zeros((3, 11))), "disagree"),
])
def test_bad_parameters_error_clearly(change, message):
    with pytest.raises(ValueError, match=message):
        MFA(**dict(random_params(), **change))


def test_bad_input_errors_clearly():
    model = MFA(**random_params())
    x = np.zeros((4, 12))
    x[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.log_prob(x)
    with pytest.raises(ValueError, match="d=12"):
        model.log_prob(np.zeros((4, 13)))
    with pytest.raises(ValueError, match="non-empty"):
        model.log_prob(np.zeros((0, 12)))
    with pytest.raises(ValueError, match=">= 1"):
        model.sample(0)


def test_noise_free_samples_lie_on_their_component_plane():
    p = random_params(3, 12, 2, seed=6)
    x, c = MFA(**p).sample(50, seed=7, noise=False)
    for xi, ci in zip(x.numpy().astype(np.float64), c.numpy()):
        a = p["A"][ci]
        z = np.linalg.lstsq(a, xi - p["mu"][ci], rcond=None)[0]
        np.testing.assert_allclose(a @ z + p["mu"][ci], xi, atol=1e-5)
