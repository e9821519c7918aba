"""The mixture prior: analytic responsibilities and reparameterised gradients."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import multivariate_normal

from gmmgan_tf.prior import MixturePrior


def test_responsibilities_equal_a_hand_softmax_of_log_densities():
    prior = MixturePrior(3, 2, mean_init_std=1.0, sigma_init=0.7, seed=1)
    z = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    means, scales = prior.means.numpy(), prior.scales().numpy()
    log_dens = np.stack([multivariate_normal(means[k], np.diag(scales[k] ** 2)).logpdf(z)
                         for k in range(3)], axis=1)
    expected = np.exp(log_dens - log_dens.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(prior.responsibilities(z).numpy(), expected, rtol=1e-4, atol=1e-6)


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
