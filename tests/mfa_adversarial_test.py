"""Adversarial MFA: WGAN-GP penalty against a closed form, a few steps move the weights."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from gmmgan_tf.mfa.adversarial import AdversarialMFA, gradient_penalty
from gmmgan_tf.mfa.model import MFA


def small_mfa(seed=0):
    rng = np.random.default_rng(seed)
    return MFA(np.full(2, 0.5), rng.normal(size=(2, 8)), rng.normal(size=(2, 8, 2)) * 0.5,
               np.full((2, 8), 0.1))


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    # f(x) = w.x + b has gradient w everywhere: the penalty is (|w| - 1)^2.
    critic = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    w = np.arange(8, dtype=np.float32)[:, None] / 10
    critic.layers[0].set_weights([w, np.zeros(1, np.float32)])
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.normal(size=(5, 8)), tf.float32) for _ in range(2))
    gp = gradient_penalty(critic, real, fake, tf.constant(rng.uniform(size=(5, 1)), tf.float32))
    np.testing.assert_allclose(float(gp), (np.linalg.norm(w) - 1) ** 2, rtol=1e-5)


def test_a_few_steps_change_generator_and_critic():
    model = small_mfa()
    adv = AdversarialMFA(model, n_critic=2, learning_rate=1e-2, seed=1)
    # Before training the generator is the MFA itself.
    x = np.random.default_rng(1).normal(size=(6, 8))
    np.testing.assert_allclose(adv.to_mfa().log_prob(x).numpy(), model.log_prob(x).numpy(),
                               rtol=1e-5)
    critic_before = [v.numpy().copy() for v in adv.critic.trainable_variables]
    real = model.sample(64, seed=2)[0].numpy() + 1.0  # shifted data: the critic has signal
    history = adv.train(real, steps=3, batch_size=16)
    assert len(history) == 3 and np.all(np.isfinite([list(h.values()) for h in history]))
    assert not np.allclose(adv.generator.mu.numpy(), model.mu.numpy())
    assert not np.allclose(adv.generator.A.numpy(), model.A.numpy())
    assert any(not np.allclose(a, b.numpy())
               for a, b in zip(critic_before, adv.critic.trainable_variables))
    with pytest.raises(ValueError, match="d=8"):
        adv.train(np.zeros((10, 9)), steps=1)
