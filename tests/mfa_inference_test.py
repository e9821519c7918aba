"""MFA inference against dense NumPy/SciPy: likelihood, outliers, in-painting, MAP, components."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gmmgan_tf.mfa import inference
from gmmgan_tf.mfa.model import MFA


def params(k, d=16, l=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(pi=rng.dirichlet(np.ones(k) * 2), mu=rng.normal(size=(k, d)),
                A=rng.normal(size=(k, d, l)) * 0.7, D=rng.uniform(0.05, 0.5, (k, d)))


def dense_conditional(p, x, obs):
    """Mixture of Gaussian conditionals E[x_h | x_o], dense float64 (Bishop eq. 2.81)."""
    h = ~obs
    weights, means = [], []
    for pi, mu, a, dd in zip(p["pi"], p["mu"], p["A"], p["D"]):
        s = a @ a.T + np.diag(dd)
        s_oo, s_ho = s[np.ix_(obs, obs)], s[np.ix_(h, obs)]
        weights.append(np.log(pi) + np.atleast_1d(
            multivariate_normal(mu[obs], s_oo).logpdf(x[:, obs])))
        means.append(mu[h] + (x[:, obs] - mu[obs]) @ np.linalg.solve(s_oo, s_ho.T))
    w = np.stack(weights, axis=1)
    w = np.exp(w - logsumexp(w, axis=1, keepdims=True))
    return np.einsum("nk,knd->nd", w, np.stack(means)), w


def test_inpainting_single_gaussian_equals_closed_form_conditional_mean():
    p = params(1)
    x = np.random.default_rng(1).normal(size=(5, 4, 4, 1))  # 4x4 images, d = 16
    obs = np.ones((4, 4, 1), bool)
    obs[1:3, 1:4] = False  # a hidden pixel block
    filled, post = inference.inpaint(MFA(**p), x, obs)
    ref, _ = dense_conditional(p, x.reshape(5, -1), obs.ravel())
    assert filled.shape == x.shape
    np.testing.assert_allclose(filled.reshape(5, -1)[:, ~obs.ravel()], ref, atol=1e-4)
    np.testing.assert_array_equal(filled[:, obs[..., 0]], x.astype(np.float32)[:, obs[..., 0]])
    np.testing.assert_allclose(post, 1.0)


def test_inpainting_mixture_with_per_image_masks_matches_dense():
    p = params(4, seed=2)
    rng = np.random.default_rng(3)
    x = MFA(**p).sample(40, seed=4)[0].numpy()
    masks = rng.random((40, 16)) < 0.6
    masks[:, 0] = True
    masks[:, 1] = False
    filled, post = inference.inpaint(MFA(**p), x, masks)
    for n in range(40):
        ref, w = dense_conditional(p, x[n:n + 1], masks[n])
        np.testing.assert_allclose(filled[n, ~masks[n]], ref[0], atol=2e-4)
        np.testing.assert_allclose(post[n], w[0], atol=1e-4)


def test_inpainting_masks_that_cover_everything_or_nothing_error():
    model = MFA(**params(2))
    x = np.zeros((3, 16))
    with pytest.raises(ValueError, match="hides every pixel"):
        inference.inpaint(model, x, np.zeros(16, bool))
    with pytest.raises(ValueError, match="observes every pixel"):
        inference.inpaint(model, x, np.ones(16, bool))
    with pytest.raises(ValueError, match="mask has 15 entries"):
        inference.inpaint(model, x, np.ones(15, bool))


def test_log_likelihood_and_outliers():
    p = params(3, seed=5)
    model = MFA(**p)
    x = model.sample(300, seed=6)[0].numpy()
    x[[17, 201]] += 6.0  # two images far from every component
    ll = inference.log_likelihood(model, x, batch_size=64)
    ref = logsumexp(np.stack([np.log(pi) + multivariate_normal(m, a @ a.T + np.diag(d)).logpdf(x)
                              for pi, m, a, d in zip(*p.values())], axis=1), axis=1)
    np.testing.assert_allclose(ll, ref, rtol=1e-4)
    idx, worst = inference.outliers(model, x, 2, batch_size=64)
    assert sorted(idx) == [17, 201]
    assert worst[0] <= worst[1] < np.delete(ll, idx).min()
    with pytest.raises(ValueError, match="outlier count"):
        inference.outliers(model, x, 0)


def test_map_reconstruction_maximises_the_joint_posterior():
    p = params(3, d=10, l=2, seed=7)
    model = MFA(**p)
    x = model.sample(30, seed=8)[0].numpy().astype(np.float64)
    x_hat, c_hat, z_hat = inference.map_reconstruction(model, x, batch_size=7)
    for n in range(len(x)):
        scores, zs = [], []
        for pi, mu, a, dd in zip(*p.values()):
            # log p(c, z | x) + log p(x) = log pi_c + log N(z; 0, I) + log N(x; A z + mu, D),
            # maximised over z by the ridge solution (A^T D^-1 A + I)^-1 A^T D^-1 (x - mu).
            z = np.linalg.solve(a.T @ (a / dd[:, None]) + np.eye(2), a.T @ ((x[n] - mu) / dd))
            zs.append(z)
            scores.append(np.log(pi) + multivariate_normal(np.zeros(2)).logpdf(z)
                          + multivariate_normal(a @ z + mu, np.diag(dd)).logpdf(x[n]))
        c = int(np.argmax(scores))
        assert c_hat[n] == c
        np.testing.assert_allclose(z_hat[n], zs[c], atol=1e-4)
        np.testing.assert_allclose(x_hat[n], p["A"][c] @ zs[c] + p["mu"][c], atol=1e-4)


def test_component_visualization_arrays():
    p = params(2, l=4, seed=9)
    vis = inference.component_visualization(MFA(**p), 1, num_columns=3, scale=2.0, mid=0.5)
    a = p["A"][1]
    order = np.argsort(-np.linalg.norm(a, axis=0))[:3]
    np.testing.assert_array_equal(vis["columns"], order)
    np.testing.assert_allclose(vis["plus"], p["mu"][1] + 2 * a[:, order].T, atol=1e-5)
    np.testing.assert_allclose(vis["minus"], p["mu"][1] - 2 * a[:, order].T, atol=1e-5)
    np.testing.assert_allclose(vis["direction"], 0.5 + 2 * a[:, order].T, atol=1e-5)
    np.testing.assert_allclose(vis["noise_variance"], p["D"][1], rtol=1e-5)
    with pytest.raises(ValueError, match="num_columns"):
        inference.component_visualization(MFA(**p), 0, num_columns=5)
