"""Adversarial MFA (seed 001): an MFA used as a GAN generator and trained against a WGAN-GP critic.

    x = sum_i c_i (A_i z1 + mu_i + D_i^(1/2) * z2),  c ~ Cat(pi) one-hot,  z1 ~ N(0, I_l),
    z2 ~ N(0, I_d)

(the seed writes D_i z2 with D_i the noise standard deviation). The weights pi stay those of the
MFA it starts from; mu, A and the log noise std are trained. The critic loss is WGAN-GP
(Gulrajani et al. 2017): E f(fake) - E f(real) + lambda E (|grad_xhat f(xhat)|_2 - 1)^2 with
xhat = eps real + (1 - eps) fake, eps ~ U(0, 1) an image; the generator loss is -E f(fake).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gmmgan_tf.losses import (gradient_penalty, wasserstein_critic_loss,
                              wasserstein_generator_loss)
from gmmgan_tf.mfa.model import MFA
from gmmgan_tf.networks import kernel_initializer


class MFAGenerator(tf.Module):
    """The MFA sampler with trainable mu, A and log_std, started from a fitted MFA."""

    def __init__(self, model: MFA, name: str = "mfa_generator"):
        super().__init__(name=name)
        self.logits = tf.constant(model.log_pi())
        self.mu = tf.Variable(model.mu)
        self.A = tf.Variable(model.A)
        self.log_std = tf.Variable(0.5 * tf.math.log(model.noise_variance()))

    def __call__(self, n: int, seed) -> tf.Tensor:
        """n images [n, d]; seed is a stateless seed (shape [2])."""
        seeds = tf.random.split(tf.cast(seed, tf.int64), 3)
        c = tf.random.stateless_categorical(self.logits[None], n, seed=seeds[0])[0]
        z1 = tf.random.stateless_normal([n, self.A.shape[2]], seed=seeds[1])
        z2 = tf.random.stateless_normal([n, self.mu.shape[1]], seed=seeds[2])
        return (tf.einsum("ndl,nl->nd", tf.gather(self.A, c), z1) + tf.gather(self.mu, c)
                + tf.exp(tf.gather(self.log_std, c)) * z2)


def make_critic(dim: int, width: int = 256, seed: int = 0) -> keras.Model:
    """A small MLP critic on flat images (no normalisation layers, as WGAN-GP needs), its
    initial weights drawn from `seed` alone."""
    kernels = kernel_initializer(keras.random.SeedGenerator(seed))
    return keras.Sequential([
        keras.Input((dim,)),
        keras.layers.Dense(width, kernel_initializer=kernels), keras.layers.LeakyReLU(0.2),
        keras.layers.Dense(width, kernel_initializer=kernels), keras.layers.LeakyReLU(0.2),
        keras.layers.Dense(1, kernel_initializer=kernels)])


class AdversarialMFA:
    """WGAN-GP training of an MFAGenerator: `n_critic` critic steps a generator step."""

    def __init__(self, model: MFA, critic: keras.Model | None = None, gp_weight: float = 10.0,
                 n_critic: int = 5, learning_rate: float = 1e-4, seed: int = 0):
        if n_critic < 1 or not gp_weight >= 0 or not learning_rate > 0:
            raise ValueError(f"adversarial MFA needs n_critic >= 1, gp_weight >= 0, "
                             f"learning_rate > 0; got {n_critic}, {gp_weight}, {learning_rate}")
        self.generator = MFAGenerator(model)
        self.critic = critic if critic is not None else make_critic(model.dim, seed=seed)
        self.gp_weight, self.n_critic = float(gp_weight), int(n_critic)
        # Adam(beta1=0, beta2=0.9) as in the WGAN-GP paper.
        self.g_opt = keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.9)
        self.c_opt = keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.9)
        self.step_seed = tf.Variable([seed, 0], dtype=tf.int64, trainable=False)

    def _next_seed(self) -> tf.Tensor:
        self.step_seed.assign_add(tf.constant([0, 1], tf.int64))
        return tf.identity(self.step_seed)

    @tf.function
    def _critic_step(self, real):
        n = tf.shape(real)[0]
        fake = self.generator(n, self._next_seed())
        eps = tf.random.stateless_uniform([n, 1], seed=self._next_seed())
        with tf.GradientTape() as tape:
            loss = wasserstein_critic_loss(self.critic(real, training=True),
                                           self.critic(fake, training=True),
                                           gradient_penalty(self.critic, real, fake, eps),
                                           self.gp_weight)
        variables = self.critic.trainable_variables
        self.c_opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function
    def _generator_step(self, n):
        variables = [self.generator.mu, self.generator.A, self.generator.log_std]
        with tf.GradientTape() as tape:
            loss = wasserstein_generator_loss(
                self.critic(self.generator(n, self._next_seed()), training=True))
        self.g_opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def train(self, images, steps: int, batch_size: int = 64, seed: int = 0) -> list[dict]:
        """`steps` generator steps, each after `n_critic` critic steps on real batches; returns
        the losses of each step."""
        x = np.asarray(images, np.float32).reshape(len(images), -1)
        if x.shape[1] != int(self.generator.mu.shape[1]) or not np.all(np.isfinite(x)):
            raise ValueError(f"adversarial MFA needs finite images with d="
                             f"{int(self.generator.mu.shape[1])} values, got {x.shape}")
        if steps < 1 or not 1 <= batch_size <= len(x):
            raise ValueError(f"need steps >= 1 and 1 <= batch_size <= {len(x)}; got {steps}, "
                             f"{batch_size}")
        batches = iter(tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed)
                       .repeat().batch(batch_size, drop_remainder=True))
        history = []
        for _ in range(steps):
            c_loss = [float(self._critic_step(next(batches))) for _ in range(self.n_critic)]
            g_loss = float(self._generator_step(tf.constant(batch_size)))
            history.append({"critic_loss": float(np.mean(c_loss)), "generator_loss": g_loss})
        return history

    def to_mfa(self) -> MFA:
        """The trained generator as an MFA (D = std^2), for likelihoods and NDB."""
        g = self.generator
        return MFA(tf.nn.softmax(g.logits).numpy(), g.mu.numpy(), g.A.numpy(),
                   np.exp(2.0 * g.log_std.numpy()))
