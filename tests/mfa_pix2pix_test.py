"""MFA+pix2pix networks: shapes, the losses against NumPy, and that training learns the pairs."""
import numpy as np
import pytest
import tensorflow as tf

from gmmgan_tf.mfa import pix2pix


def _pairs(n=48, seed=0):
    """Sharp random bars (targets) and their 3x3 box blurs (inputs), 28x28 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    y = -np.ones((n, 28, 28, 1), np.float32)
    for img in y:
        for _ in range(3):
            r, c = rng.integers(2, 20, 2)
            if rng.random() < 0.5:
                img[r:r + 2, c:c + 8] = 1.0
            else:
                img[r:r + 8, c:c + 2] = 1.0
    padded = np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    x = sum(padded[:, i:i + 28, j:j + 28] for i in range(3) for j in range(3)) / 9.0
    return x.astype(np.float32), y


def _sigmoid_xent(logits, label):
    return np.mean(np.maximum(logits, 0) - logits * label + np.log1p(np.exp(-np.abs(logits))))


def test_networks_shapes_and_bad_sizes():
    model = pix2pix.Pix2Pix((28, 28, 1), filters=8)
    x = np.zeros((2, 28, 28, 1), np.float32)
    assert model.translate(x).shape == (2, 28, 28, 1)
    assert model.discriminator([x, x]).shape == (2, 7, 7, 1)
    with pytest.raises(ValueError, match="multiples of 4"):
        pix2pix.unet_generator((30, 30, 1))
    with pytest.raises(ValueError, match=r"images \[N"):
        model.translate(np.zeros((2, 32, 32, 1)))
    with pytest.raises(ValueError, match="pairs"):
        model.fit(x, x[:1], epochs=1)


def test_losses_match_numpy():
    rng = np.random.default_rng(1)
    real, fake_logits = rng.normal(size=(2, 4, 7, 7, 1)).astype(np.float32)
    fake, target = rng.uniform(-1, 1, (2, 4, 28, 28, 1)).astype(np.float32)
    d = pix2pix.discriminator_loss(tf.constant(real), tf.constant(fake_logits))
    np.testing.assert_allclose(d, _sigmoid_xent(real, 1.0) + _sigmoid_xent(fake_logits, 0.0),
                               rtol=1e-5)
    g, l1 = pix2pix.generator_loss(tf.constant(fake_logits), tf.constant(fake),
                                   tf.constant(target), 100.0)
    np.testing.assert_allclose(l1, np.mean(np.abs(target - fake)), rtol=1e-5)
    np.testing.assert_allclose(g, _sigmoid_xent(fake_logits, 1.0) + 100.0 * l1, rtol=1e-5)


def test_training_changes_weights_and_lowers_l1():
    x, y = _pairs()
    model = pix2pix.Pix2Pix((28, 28, 1), filters=8, learning_rate=2e-3)
    g0 = [w.numpy().copy() for w in model.generator.trainable_variables]
    d0 = [w.numpy().copy() for w in model.discriminator.trainable_variables]
    before = np.mean(np.abs(model.translate(x) - y))
    seen = []
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0,
                        on_epoch_end=lambda epoch, logs: seen.append(epoch))
    after = np.mean(np.abs(model.translate(x) - y))
    assert seen == list(range(1, 9)) and len(history) == 8
    assert all(np.isfinite(v) for logs in history for v in logs.values())
    assert any(not np.allclose(a, w) for a, w in zip(g0, model.generator.trainable_variables))
    assert any(not np.allclose(a, w) for a, w in zip(d0, model.discriminator.trainable_variables))
    assert history[-1]["l1"] < history[0]["l1"]
    assert after < 0.7 * before, (before, after)
