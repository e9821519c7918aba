"""MFA+pix2pix (Richardson & Weiss 2018, §5): a small conditional GAN that sharpens MFA images.

pix2pix (Isola et al. 2017) learns y = G(x) from pairs (x, y): here x is an image's MFA MAP
reconstruction (blurry, `inference.map_reconstruction`) and y the real image; once trained, G is
applied to MFA samples. The losses, with D(x, y) a grid of patch logits and BCE the mean sigmoid
cross-entropy over patches,

    L_D = BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)
    L_G = BCE(D(x, G(x)), 1) + lambda * mean |y - G(x)|          (lambda = 100, as in pix2pix)

Networks are sized for 28x28 on a CPU: a U-Net generator (two stride-2 encoder steps, skip
connections, tanh output; no dropout, so the refinement is deterministic) and a PatchGAN
discriminator (two stride-2 steps: one logit per 4x4 block of the input). Image sides must be
multiples of 4. This module has no metrics; `mfa/train.py` measures sharpness and NDB/K.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

L1_WEIGHT = 100.0


def _check_shape(image_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[0] % 4 or shape[1] % 4 or min(shape) < 1:
        raise ValueError(f"pix2pix needs images [H, W, C] with H and W multiples of 4, got "
                         f"{shape}")
    return shape


def unet_generator(image_shape, filters: int = 32) -> keras.Model:
    """U-Net: H -> H/2 -> H/4 (bottleneck) -> H/2 -> H, each decoder step concatenated with the
    encoder map of the same size; the last layer also sees the input, so G starts near a
    refinement of x."""
    shape = _check_shape(image_shape)
    x = keras.Input(shape, name="mfa_image")
    d1 = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(filters, 4, 2, "same")(x))
    d2 = keras.layers.Conv2D(2 * filters, 4, 2, "same", use_bias=False)(d1)
    d2 = keras.layers.LeakyReLU(0.2)(keras.layers.BatchNormalization()(d2))
    b = keras.layers.Conv2D(4 * filters, 3, 1, "same", use_bias=False)(d2)
    b = keras.layers.ReLU()(keras.layers.BatchNormalization()(b))
    u2 = keras.layers.Conv2DTranspose(2 * filters, 4, 2, "same", use_bias=False)(
        keras.layers.Concatenate()([b, d2]))
    u2 = keras.layers.ReLU()(keras.layers.BatchNormalization()(u2))
    u1 = keras.layers.Conv2DTranspose(filters, 4, 2, "same", use_bias=False)(
        keras.layers.Concatenate()([u2, d1]))
    u1 = keras.layers.ReLU()(keras.layers.BatchNormalization()(u1))
    y = keras.layers.Conv2D(shape[2], 3, 1, "same", activation="tanh")(
        keras.layers.Concatenate()([u1, x]))
    return keras.Model(x, y, name="pix2pix_generator")


def patch_discriminator(image_shape, filters: int = 32) -> keras.Model:
    """PatchGAN on the pair (x, y) stacked on channels: [N, H/4, W/4, 1] real/fake logits."""
    shape = _check_shape(image_shape)
    x = keras.Input(shape, name="condition")
    y = keras.Input(shape, name="target")
    h = keras.layers.Concatenate()([x, y])
    h = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(filters, 4, 2, "same")(h))
    h = keras.layers.Conv2D(2 * filters, 4, 2, "same", use_bias=False)(h)
    h = keras.layers.LeakyReLU(0.2)(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2D(4 * filters, 3, 1, "same", use_bias=False)(h)
    h = keras.layers.LeakyReLU(0.2)(keras.layers.BatchNormalization()(h))
    logits = keras.layers.Conv2D(1, 3, 1, "same")(h)
    return keras.Model([x, y], logits, name="pix2pix_discriminator")


def bce(logits: tf.Tensor, label: float) -> tf.Tensor:
    """Mean sigmoid cross-entropy of logits against a constant label."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), label), logits=logits))


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """L_D = BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)."""
    return bce(real_logits, 1.0) + bce(fake_logits, 0.0)


def generator_loss(fake_logits: tf.Tensor, fake: tf.Tensor, target: tf.Tensor,
                   l1_weight: float = L1_WEIGHT) -> tuple[tf.Tensor, tf.Tensor]:
    """(L_G, L1): L_G = BCE(D(x, G(x)), 1) + l1_weight * L1, L1 = mean |y - G(x)|."""
    l1 = tf.reduce_mean(tf.abs(target - fake))
    return bce(fake_logits, 1.0) + l1_weight * l1, l1


class Pix2Pix(tf.Module):
    """Generator, discriminator and their Adam optimizers (lr 2e-4, beta_1 0.5, as in pix2pix);
    `optimizers` is what `workdir.Checkpointer` saves beside the networks."""

    def __init__(self, image_shape, filters: int = 32, l1_weight: float = L1_WEIGHT,
                 learning_rate: float = 2e-4, beta_1: float = 0.5):
        super().__init__(name="pix2pix")
        if not l1_weight >= 0 or not learning_rate > 0:
            raise ValueError(f"pix2pix needs l1_weight >= 0 and learning_rate > 0, got "
                             f"{l1_weight}, {learning_rate}")
        self.image_shape = _check_shape(image_shape)
        self.l1_weight = float(l1_weight)
        self.generator = unet_generator(self.image_shape, filters)
        self.discriminator = patch_discriminator(self.image_shape, filters)
        self.optimizers = {
            "generator_optimizer": keras.optimizers.Adam(learning_rate, beta_1=beta_1),
            "discriminator_optimizer": keras.optimizers.Adam(learning_rate, beta_1=beta_1)}
        # Built here so that a checkpoint restores their slots before the first step.
        self.optimizers["generator_optimizer"].build(self.generator.trainable_variables)
        self.optimizers["discriminator_optimizer"].build(self.discriminator.trainable_variables)

    @tf.function(reduce_retracing=True)
    def train_step(self, inputs: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
        """One simultaneous Adam step of G and D on a batch of (x, y) pairs."""
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator(inputs, training=True)
            real_logits = self.discriminator([inputs, targets], training=True)
            fake_logits = self.discriminator([inputs, fake], training=True)
            g_loss, l1 = generator_loss(fake_logits, fake, targets, self.l1_weight)
            d_loss = discriminator_loss(real_logits, fake_logits)
        self.optimizers["generator_optimizer"].apply(tape.gradient(g_loss, g_vars), g_vars)
        self.optimizers["discriminator_optimizer"].apply(tape.gradient(d_loss, d_vars), d_vars)
        return {"g_loss": g_loss, "d_loss": d_loss, "l1": l1}

    def fit(self, inputs, targets, epochs: int, batch_size: int = 32, seed: int = 0,
            initial_epoch: int = 0, verbose: int = 1,
            on_epoch_end: Callable[[int, dict], None] | None = None) -> list[dict]:
        """Epochs initial_epoch .. epochs-1 over shuffled pairs (the last short batch dropped when
        there are at least batch_size pairs); on_epoch_end(completed_epochs, mean losses).
        Returns the mean losses of each epoch run."""
        x, y = (np.asarray(a, np.float32) for a in (inputs, targets))
        if x.shape != y.shape or x.shape[1:] != self.image_shape or len(x) == 0:
            raise ValueError(f"pix2pix pairs must be two arrays [N, {self.image_shape}] of one "
                             f"shape, got {x.shape} and {y.shape}")
        if batch_size < 1 or epochs < 0:
            raise ValueError(f"pix2pix needs batch_size >= 1 and epochs >= 0, got {batch_size}, "
                             f"{epochs}")
        batch = min(batch_size, len(x))
        steps = len(x) // batch
        history = []
        for epoch in range(initial_epoch, epochs):
            order = np.random.default_rng([seed, epoch]).permutation(len(x))
            bar = keras.utils.Progbar(steps, verbose=verbose,
                                      stateful_metrics=["g_loss", "d_loss", "l1"])
            totals: dict[str, float] = {}
            for s in range(steps):
                idx = order[s * batch:(s + 1) * batch]
                logs = {k: float(v) for k, v in self.train_step(x[idx], y[idx]).items()}
                for k, v in logs.items():
                    totals[k] = totals.get(k, 0.0) + v / steps
                bar.update(s + 1, values=list(logs.items()))
            history.append(totals)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, totals)
        return history

    def translate(self, images, batch_size: int = 256) -> np.ndarray:
        """G(x) for images [N, H, W, C] in [-1, 1] (inference mode)."""
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            raise ValueError(f"pix2pix input must be images [N, {self.image_shape}], got "
                             f"{x.shape}")
        return np.concatenate([self.generator(x[i:i + batch_size], training=False).numpy()
                               for i in range(0, len(x), batch_size)])
