"""Adversarial MFA: a few WGAN-GP steps move the weights (the penalty: losses_test)."""
import numpy as np
import pytest

from gmmgan_tf.mfa.adversarial import AdversarialMFA
from gmmgan_tf.mfa.model import MFA


def small_mfa(seed=0):
    rng = np.random.default_rng(seed)
    return MFA(np.full(2, 0.5), rng.normal(size=(2, 8)), rng.normal(size=(2, 8, 2)) * 0.5,
               np.full((2, 8), 0.1))


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
