"""The mixture prior: analytic responsibilities and reparameterised gradients."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import multivariate_normal

from gmmgan_tf.prior import MixturePrior


def scipy_responsibilities(prior, z):
    """alpha_k N(z; mu_k, diag sigma_k^2) / sum_j (...), with alpha = softmax(mixture logits)."""
    means, scales = prior.means.numpy(), prior.scales().numpy()
    logits = prior.mixture_logits.numpy().astype(np.float64)
    log_alpha = logits - np.log(np.exp(logits).sum())
    log_joint = np.stack([log_alpha[k] + multivariate_normal(
        means[k], np.diag(scales[k] ** 2)).logpdf(z) for k in range(len(means))], axis=1)
    expected = np.exp(log_joint - log_joint.max(1, keepdims=True))
    return expected / expected.sum(1, keepdims=True)


@pytest.mark.parametrize("logits", [[0.0, 0.0, 0.0], [1.5, -1.0, 0.2]])
def test_responsibilities_equal_a_hand_softmax_of_log_densities(logits):
    prior = MixturePrior(3, 2, mean_init_std=1.0, sigma_init=0.7, seed=1)
    prior.mixture_logits.assign(logits)
    z = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_allclose(prior.responsibilities(z).numpy(),
                               scipy_responsibilities(prior, z), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("learn", [False, True])
def test_learned_mixture_logits_move_pr_k_given_z_as_softmax_calculus_says(learn):
    prior = MixturePrior(3, 2, mean_init_std=1.0, learn_mixture_logits=learn, seed=2)
    assert any(v is prior.mixture_logits for v in prior.trainable_variables) == learn
    prior.mixture_logits.assign([0.3, -0.4, 0.1])
    z = np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)
    with tf.GradientTape() as tape:
        first = tf.reduce_sum(prior.responsibilities(z)[:, 0])
    grad = tape.gradient(first, prior.mixture_logits)
    if not learn:  # fixed log alpha: not watched, never updated
        assert grad is None
        return
    # w_k = softmax_k(a_k + log N_k): d w_0 / d a_j = w_0 (delta_0j - w_j).
    w = scipy_responsibilities(prior, z)
    np.testing.assert_allclose(grad.numpy(), (w[:, :1] * (np.eye(3)[0] - w)).sum(0), rtol=1e-3,
                               atol=1e-6)


def test_reparameterised_samples_carry_gradients_to_means_and_scales():
    prior = MixturePrior(3, 4, seed=0)
    eps = tf.random.normal((6, 3, 4), seed=0)
    with tf.GradientTape() as tape:
        z = prior.reparameterize(eps)
        loss = tf.reduce_sum(z ** 2) + tf.reduce_sum(prior.responsibilities(z)[..., 0])
    grads = tape.gradient(loss, [prior.means, prior.raw_scales])
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_sample_k_has_mean_mu_k_and_std_sigma_k():
    prior = MixturePrior(2, 3, mean_init_std=2.0, sigma_init=0.3, seed=3)
    eps = tf.random.normal((20000, 2, 3), seed=1)
    z = prior.reparameterize(eps).numpy()
    np.testing.assert_allclose(z.mean(0), prior.means.numpy(), atol=0.02)
    np.testing.assert_allclose(z.std(0), prior.scales().numpy(), rtol=0.03)


def test_standard_normal_prior_is_fixed():
    prior = MixturePrior.standard_normal(4)
    assert prior.trainable_variables == []
    np.testing.assert_allclose(prior.scales().numpy(), 1.0)
    assert float(tf.reduce_max(tf.abs(prior.means))) == pytest.approx(0.0)


def test_scales_respect_the_floor():
    prior = MixturePrior(2, 2, sigma_init=0.5, sigma_floor=0.1)
    prior.raw_scales.assign(np.full((2, 2), -50.0, np.float32))
    assert float(tf.reduce_min(prior.scales())) >= 0.1
