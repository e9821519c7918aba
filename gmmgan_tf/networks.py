"""DCGAN-style networks: generator G, image encoder E, discriminator D = E + Dense, PCM C = E + Dense.

Spatial sizes: G starts from a 7x7 (28-pixel images) or 4x4 seed and doubles it with stride-2
transposed convolutions; E halves the image the same number of times. `width_multiplier` scales
every channel count (the compression study).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

BASE_CHANNELS = 64


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(seed side, number of stride-2 layers) that make `image_size` pixels."""
    seed = 7 if image_size % 7 == 0 else 4
    steps = math.log2(image_size / seed)
    if steps < 1 or not steps.is_integer():
        raise ValueError(f"image size {image_size} is not 7*2^n or 4*2^n with n >= 1")
    return seed, int(steps)


def _channels(width_multiplier: float, level: int) -> int:
    return max(1, int(round(BASE_CHANNELS * width_multiplier * 2 ** level)))


class Generator(keras.Model):
    """z [N, d] -> images [N, H, W, C] in [-1, 1] (tanh)."""

    def __init__(self, image_shape, width_multiplier=1.0, bn_momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        size, _, channels = image_shape
        seed, steps = upsampling_plan(size)
        top = _channels(width_multiplier, steps - 1)
        # Built under a multi-replica strategy, BatchNorm takes its statistics over the global
        # batch, so that a step on R replicas equals a step on one device.
        synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
        norm = lambda: layers.BatchNormalization(momentum=bn_momentum,  # noqa: E731
                                                 synchronized=synchronized)
        stack = [layers.Dense(seed * seed * top, use_bias=False), norm(), layers.ReLU(),
                 layers.Reshape((seed, seed, top))]
        for level in reversed(range(steps - 1)):
            stack += [layers.Conv2DTranspose(_channels(width_multiplier, level), 4, strides=2,
                                             padding="same", use_bias=False),
                      norm(), layers.ReLU()]
        stack.append(layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                            activation="tanh"))
        self.net = keras.Sequential(stack, name="generator_stack")

    def call(self, z, training=False):
        return self.net(z, training=training)


def kernel_initializer(seed: keras.random.SeedGenerator | None):
    """Keras's default Glorot-uniform kernels, drawn from `seed` when given (a network of its
    own, reproducible without touching the global generators), else from the global ones that
    the run's entry point seeds (keras.utils.set_random_seed)."""
    return "glorot_uniform" if seed is None else keras.initializers.GlorotUniform(seed=seed)


class Encoder(keras.Model):
    """images -> flat features: stride-2 convolutions with LeakyReLU, no batch statistics
    (real and fake batches pass separately, and BatchNorm would let D tell them apart by them)."""

    def __init__(self, image_shape, width_multiplier=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        _, steps = upsampling_plan(image_shape[0])
        stack = []
        for level in range(steps):
            stack += [layers.Conv2D(_channels(width_multiplier, level), 4, strides=2,
                                    padding="same", kernel_initializer=kernel_initializer(seed)),
                      layers.LeakyReLU(0.2)]
        stack.append(layers.Flatten())
        self.net = keras.Sequential(stack, name="encoder_stack")
        self.channels = _channels(width_multiplier, steps - 1)  # c of the last convolution

    def call(self, images, training=False):
        return self.net(images, training=training)

    def channel_moments(self, flat):
        """[N, 2c]: the mean and the standard deviation of each map of the last convolution
        over its positions, from the flat features self(images) [N, h * w * c] (Flatten keeps
        the channels last). The novelty scorers fit Gaussians to these (Lee et al. 2018 pool
        a classifier's maps by their mean; the spread tells an image with strokes from a blank
        or constant one, whose maps are flat): the flat features are too many for a
        covariance."""
        maps = tf.reshape(flat, [tf.shape(flat)[0], -1, self.channels])
        return tf.concat([tf.reduce_mean(maps, axis=1), tf.math.reduce_std(maps, axis=1)],
                         axis=-1)


class Head(keras.Model):
    """Encoder + Dense(units): D's real/fake logits (1 or K heads) or the PCM's K logits."""

    def __init__(self, encoder: Encoder, units: int, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.dense = layers.Dense(units, kernel_initializer=kernel_initializer(seed))

    def call(self, images, training=False):
        return self.dense(self.encoder(images, training=training))


def build_networks(image_shape, *, latent_dim: int, num_components: int, discriminator_units: int,
                   with_pcm: bool, shared_encoder: bool, width_multiplier: float,
                   bn_momentum: float):
    """(generator, discriminator, pcm or None), called once on zeros so that weights exist."""
    generator = Generator(image_shape, width_multiplier, bn_momentum, name="generator")
    d_encoder = Encoder(image_shape, width_multiplier, name="d_encoder")
    discriminator = Head(d_encoder, discriminator_units, name="discriminator")
    pcm = None
    if with_pcm:
        c_encoder = d_encoder if shared_encoder else Encoder(image_shape, width_multiplier,
                                                              name="c_encoder")
        pcm = Head(c_encoder, num_components, name="pcm")
    generator(keras.ops.zeros((1, latent_dim)))
    images = keras.ops.zeros((1, *image_shape))
    discriminator(images)
    if pcm is not None:
        pcm(images)
    return generator, discriminator, pcm


def augmenter(seed: int, background: float = -1.0) -> keras.Sequential:
    """Small random shifts, rotations and zooms that keep an image's class (for the PCM's
    augmentation consistency on real images); new pixels take the background value."""
    fill = dict(fill_mode="constant", fill_value=background)
    return keras.Sequential([
        layers.RandomTranslation(0.1, 0.1, seed=seed, **fill),
        layers.RandomRotation(0.04, seed=seed + 1, **fill),
        layers.RandomZoom(0.1, seed=seed + 2, **fill),
    ], name="augmenter")
