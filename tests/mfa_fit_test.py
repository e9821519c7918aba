"""MFA initialisation and fitting: EM monotonicity (float64 dense check), Adam, bad input."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gmmgan_tf.mfa import fit as mfa_fit
from gmmgan_tf.mfa.model import MFA


def dense_mean_log_prob(p, x):
    """Mean log p(x) with dense float64 covariances (independent of the TF code)."""
    joint = [np.log(p["pi"][j]) + multivariate_normal(
        p["mu"][j], p["A"][j] @ p["A"][j].T + np.diag(p["D"][j])).logpdf(x)
        for j in range(len(p["pi"]))]
    return logsumexp(np.stack(joint, axis=1), axis=1).mean()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    truth = MFA(rng.dirichlet(np.ones(3) * 3), rng.normal(size=(3, 10)) * 2,
                rng.normal(size=(3, 10, 2)) * 0.7, rng.uniform(0.05, 0.5, (3, 10)))
    return truth.sample(1500, seed=1)[0].numpy()


@pytest.mark.parametrize("component_model", ["fa", "ppca"])
def test_em_never_decreases_the_log_likelihood(data, component_model):
    model = mfa_fit.init_mfa(data, 4, 2, component_model=component_model, seed=0)
    lls = [dense_mean_log_prob(model.parameters(), data)]
    history = []
    for _ in range(8):
        # Mini-batches of 400 (not a divisor of 1500): the statistics must still be exact sums.
        history += mfa_fit.fit_em(model, data, iterations=1, batch_size=400)[:1]
        lls.append(dense_mean_log_prob(model.parameters(), data))
    assert np.all(np.diff(lls) >= -1e-6 * abs(lls[0])), np.diff(lls)
    assert lls[-1] > lls[0] + 1e-3
    # The E-step's own log-likelihood (float32) is the dense one of the parameters it used.
    np.testing.assert_allclose(history, lls[:-1], rtol=1e-5)


def test_em_m_step_matches_dense_single_factor_analyzer(data):
    # K=1: one EM step of FA (Ghahramani & Hinton eq. 5-6 with mu re-estimated) in dense NumPy.
    model = mfa_fit.init_mfa(data, 1, 2, seed=0)
    p = model.parameters()
    a, dd, mu = p["A"][0], p["D"][0], p["mu"][0]
    x = data.astype(np.float64)
    beta = a.T @ np.linalg.inv(a @ a.T + np.diag(dd))
    ez = (x - mu) @ beta.T
    ezt = np.concatenate([ez, np.ones((len(x), 1))], axis=1)
    ezz = ezt.T @ ezt
    ezz[:2, :2] += len(x) * (np.eye(2) - beta @ a)
    a_aug = np.linalg.solve(ezz, ezt.T @ x).T
    d_new = np.diag(x.T @ x - a_aug @ ezt.T @ x) / len(x)
    mfa_fit.fit_em(model, data, iterations=1)
    q = model.parameters()
    np.testing.assert_allclose(q["A"][0], a_aug[:, :2], atol=2e-4)
    np.testing.assert_allclose(q["mu"][0], a_aug[:, 2], atol=2e-4)
    np.testing.assert_allclose(q["D"][0], np.maximum(d_new, model.noise_floor), rtol=2e-3)


def test_sgd_lowers_the_negative_log_likelihood(data):
    model = mfa_fit.init_mfa(data, 3, 2, component_model="ppca", seed=0)
    before = dense_mean_log_prob(model.parameters(), data)
    losses = mfa_fit.fit(model, data, method="sgd", iterations=150, batch_size=250,
                         learning_rate=1e-2)
    after = dense_mean_log_prob(model.parameters(), data)
    assert after > before + 0.05
    assert np.mean(losses[-20:]) < np.mean(losses[:20])


def test_fitted_model_samples_have_the_model_moments(data):
    model = mfa_fit.init_mfa(data, 3, 2, seed=0)
    mfa_fit.fit_em(model, data, iterations=5)
    p = model.parameters()
    x = model.sample(100_000, seed=3)[0].numpy().astype(np.float64)
    mean = p["pi"] @ p["mu"]
    cov = sum(w * (a @ a.T + np.diag(dd) + np.outer(m - mean, m - mean))
              for w, a, dd, m in zip(p["pi"], p["A"], p["D"], p["mu"]))
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.03 * np.abs(cov).max())


def test_bad_fit_input_errors_clearly(data):
    with pytest.raises(ValueError, match="at least K images"):
        mfa_fit.init_mfa(data[:5], 6, 2)
    with pytest.raises(ValueError, match="l < d"):
        mfa_fit.init_mfa(data, 2, 10)
    bad = data.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mfa_fit.init_mfa(bad, 2, 2)
    model = mfa_fit.init_mfa(data, 2, 2)
    with pytest.raises(ValueError, match="em"):
        mfa_fit.fit(model, data, method="adam", iterations=1)
    with pytest.raises(ValueError, match="component_model"):
        mfa_fit.init_mfa(data, 2, 2, component_model="pca")
