"""DiffAugment (Zhao et al. 2020): random, differentiable transforms of the images D sees.

`--diff_augment` lists transforms (`color`, `translation`, `cutout`), applied in the order given
as in the reference code (mit-han-lab/data-efficient-gans, DiffAugment_tf.py), to real and fake
images alike before D; G's gradient flows through them. Since both sides are transformed, G is
not taught to make transformed images, while D cannot memorise the few real images.

Each transform is a pure function of the images [N, H, W, C] in [-1, 1] and its random draws
(tested against NumPy); `augment` draws them from a stateless seed, so that a resumed run draws
what an uninterrupted one would. Draws, one set an image, as in the reference:
  color: brightness + U(-0.5, 0.5), then saturation: (x - channel mean) * U(0, 2) + channel
    mean (a no-op on grey images), then contrast: (x - image mean) * U(0.5, 1.5) + image mean;
  translation: a shift by an integer in [-s, s] on each axis, s = round(side / 8), zero-filled;
  cutout: zeros in a box of round(side / 2) pixels a side whose centre is uniform over the
    image, so that the border cuts up to half of it.
"""
from __future__ import annotations

import tensorflow as tf

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _per_image(values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(values, (-1, 1, 1, 1))


def brightness(images: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """x + shift_n for every pixel of image n."""
    return images + _per_image(shift)


def saturation(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """(x - m) * factor_n + m, m the mean over the channels of each pixel."""
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    return (images - mean) * _per_image(factor) + mean


def contrast(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """(x - m) * factor_n + m, m the mean of image n."""
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * _per_image(factor) + mean


def translate(images: tf.Tensor, dy: tf.Tensor, dx: tf.Tensor) -> tf.Tensor:
    """out[n, i, j] = x[n, i + dy_n, j + dx_n], 0 where that is outside the image. A product
    with one-hot shift matrices (one_hot of an index outside the image is a zero row), so the
    gradient is the opposite shift."""
    height, width = images.shape[1], images.shape[2]
    rows = tf.one_hot(tf.range(height)[None] + dy[:, None], height, dtype=images.dtype)
    cols = tf.one_hot(tf.range(width)[None] + dx[:, None], width, dtype=images.dtype)
    return tf.einsum("nip,njq,npqc->nijc", rows, cols, images)


def cutout(images: tf.Tensor, top: tf.Tensor, left: tf.Tensor, size: tuple[int, int]
           ) -> tf.Tensor:
    """Zeros in rows [top_n, top_n + size[0]) and columns [left_n, left_n + size[1]) of image n
    (the part of the box inside the image)."""
    def inside(start, length, side):
        index = tf.range(side)[None]
        return (index >= start[:, None]) & (index < start[:, None] + length)  # [N, side]

    box = (inside(top, size[0], images.shape[1])[:, :, None]
           & inside(left, size[1], images.shape[2])[:, None, :])
    return images * (1.0 - tf.cast(box, images.dtype))[..., None]


def _random_color(images, seed):
    draws = tf.random.stateless_uniform((3, tf.shape(images)[0]), seed, dtype=images.dtype)
    images = brightness(images, draws[0] - 0.5)
    images = saturation(images, 2.0 * draws[1])
    return contrast(images, draws[2] + 0.5)


def _integers(images, seed, low, high):
    """One integer an image from [low[a], high[a]) for each image axis a (rows, columns)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    return [tf.random.stateless_uniform((tf.shape(images)[0],), seeds[a], low[a], high[a],
                                        dtype=tf.int32) for a in range(2)]


def _random_translation(images, seed):
    shift = [int(side * TRANSLATION_RATIO + 0.5) for side in images.shape[1:3]]
    dy, dx = _integers(images, seed, [-s for s in shift], [s + 1 for s in shift])
    return translate(images, dy, dx)


def _random_cutout(images, seed):
    size = [int(side * CUTOUT_RATIO + 0.5) for side in images.shape[1:3]]
    # The box's centre (its top-left + size // 2) anywhere in [0, side + 1 - size % 2).
    top, left = _integers(images, seed, [-(c // 2) for c in size],
                          [side + 1 - c % 2 - c // 2 for side, c in zip(images.shape[1:3], size)])
    return cutout(images, top, left, size)


TRANSFORMS = {"color": _random_color, "translation": _random_translation,
              "cutout": _random_cutout}


def augment(images: tf.Tensor, policy: tuple[str, ...], seed: tf.Tensor) -> tf.Tensor:
    """The transforms named in `policy`, in its order, each with draws from its own fold of the
    stateless `seed` [2]; the images themselves for an empty policy."""
    for index, name in enumerate(policy):
        images = TRANSFORMS[name](images, tf.random.experimental.stateless_fold_in(seed, index))
    return images
