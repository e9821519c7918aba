"""--diff_augment (DiffAugment, Zhao et al. 2020): each transform against NumPy for given draws,
the draws' ranges, reproducible draws, and G's gradient through the transforms."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from gmmgan_tf import diff_augment
from gmmgan_tf.config import DIFF_AUGMENTATIONS
from gmmgan_tf.errors import ConfigError
from gmmgan_tf.gan import GMMGAN

# Not square, so that a swap of rows and columns shows.
IMAGES = np.random.default_rng(0).uniform(-1, 1, (3, 8, 10, 3)).astype(np.float32)


def numpy_translate(x, dy, dx):
    out = np.zeros_like(x)
    n, h, w, _ = x.shape
    for k in range(n):
        for i in range(h):
            for j in range(w):
                if 0 <= i + dy[k] < h and 0 <= j + dx[k] < w:
                    out[k, i, j] = x[k, i + dy[k], j + dx[k]]
    return out


def numpy_cutout(x, top, left, size):
    out = x.copy()
    n, h, w, _ = x.shape
    for k in range(n):
        for i in range(max(top[k], 0), min(top[k] + size[0], h)):
            for j in range(max(left[k], 0), min(left[k] + size[1], w)):
                out[k, i, j] = 0.0
    return out


def test_color_transforms_match_numpy():
    x = IMAGES
    shift = np.array([0.3, -0.5, 0.1], np.float32)
    factor = np.array([0.0, 1.7, 0.6], np.float32)[:, None, None, None]
    np.testing.assert_allclose(diff_augment.brightness(x, shift).numpy(),
                               x + shift[:, None, None, None], atol=1e-6)
    pixel_mean = x.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(diff_augment.saturation(x, factor[:, 0, 0, 0]).numpy(),
                               (x - pixel_mean) * factor + pixel_mean, atol=1e-6)
    image_mean = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(diff_augment.contrast(x, factor[:, 0, 0, 0]).numpy(),
                               (x - image_mean) * factor + image_mean, atol=1e-6)


def test_translation_by_known_offsets_is_zero_filled():
    dy, dx = np.array([2, -3, 0]), np.array([-1, 4, 12])  # the last moves the image out
    got = diff_augment.translate(tf.constant(IMAGES), tf.constant(dy, tf.int32),
                                 tf.constant(dx, tf.int32)).numpy()
    np.testing.assert_array_equal(got, numpy_translate(IMAGES, dy, dx))
    assert not got[2].any()


def test_cutout_of_known_boxes_is_cut_by_the_border():
    # Inside; cut at the top and right; entirely left of the image (no change).
    top, left, size = np.array([1, -2, 6]), np.array([3, 7, -10]), (4, 5)
    got = diff_augment.cutout(tf.constant(IMAGES), tf.constant(top, tf.int32),
                              tf.constant(left, tf.int32), size).numpy()
    np.testing.assert_array_equal(got, numpy_cutout(IMAGES, top, left, size))
    assert (got[0] == 0).all(axis=-1).sum() == 20 and (got[1] == 0).all(axis=-1).sum() == 6
    np.testing.assert_array_equal(got[2], IMAGES[2])


def test_the_gradient_through_translation_and_cutout_is_their_transpose():
    # Both are linear: the gradient of sum(T(x) * v) is T^T v (the opposite shift; v masked).
    v = np.random.default_rng(1).normal(size=IMAGES.shape).astype(np.float32)
    dy, dx = np.array([2, -3, 0]), np.array([-1, 4, 5])
    top, left = np.array([1, -2, 6]), np.array([3, 7, 0])
    x = tf.Variable(IMAGES)
    with tf.GradientTape(persistent=True) as tape:
        shifted = diff_augment.translate(x, tf.constant(dy, tf.int32), tf.constant(dx, tf.int32))
        cut = diff_augment.cutout(x, tf.constant(top, tf.int32), tf.constant(left, tf.int32),
                                  (4, 5))
        losses = [tf.reduce_sum(shifted * v), tf.reduce_sum(cut * v)]
    np.testing.assert_array_equal(tape.gradient(losses[0], x).numpy(), numpy_translate(v, -dy, -dx))
    np.testing.assert_array_equal(tape.gradient(losses[1], x).numpy(),
                                  numpy_cutout(v, top, left, (4, 5)))


def _augment_copies(image, name, n=3000, seed=(4, 2)):
    return diff_augment.augment(tf.constant(np.repeat(image[None], n, 0)), (name,),
                                tf.constant(seed)).numpy()


def test_the_draws_span_the_reference_ranges():
    # Translation: one lit pixel at (14, 14) lands at (14 - dy, 14 - dx), dy and dx in
    # [-s, s] with s = round(28 / 8) = 4.
    dot = np.zeros((28, 28, 1), np.float32)
    dot[14, 14] = 1.0
    n, rows, cols, _ = np.nonzero(_augment_copies(dot, "translation"))
    assert len(n) == 3000
    assert set(14 - rows) == set(14 - cols) == set(range(-4, 5))
    # Cutout: a 14 x 14 box (round(28 / 2)) whose top-left corner is in [-7, 21].
    cut = _augment_copies(np.ones((28, 28, 1), np.float32), "cutout")[..., 0] == 0
    for axis in (1, 2):
        hit = cut.any(axis=3 - axis)  # rows (or columns) the box covers
        first, last = hit.argmax(1), 27 - hit[:, ::-1].argmax(1)
        start = np.where(first > 0, first, last + 1 - 14)
        assert set(start) == set(range(-7, 22))
        inside = (first > 0) & (last < 27)
        assert (last - first + 1)[inside].min() == (last - first + 1)[inside].max() == 14
    # Color on two RGB pixels: brightness b moves the image mean, contrast c scales the gap
    # between pixel means, saturation s (then c) the gap between a pixel's channels.
    pixels = np.array([[[0.3, -0.3, 0.0], [0.5, 0.5, 0.5]]], np.float32)
    out = _augment_copies(pixels, "color")
    b = out.mean(axis=(1, 2, 3)) - pixels.mean()
    c = (out[:, 0, 1].mean(-1) - out[:, 0, 0].mean(-1)) / 0.5
    s = (out[:, 0, 0, 0] - out[:, 0, 0, 1]) / 0.6 / c
    for draws, low, high in ((b, -0.5, 0.5), (c, 0.5, 1.5), (s, 0.0, 2.0)):
        assert low - 1e-5 <= draws.min() < low + 0.01 and high - 0.01 < draws.max() < high + 1e-5


def test_one_seed_gives_one_set_of_draws():
    x = tf.constant(IMAGES)
    every = tuple(DIFF_AUGMENTATIONS)
    first = diff_augment.augment(x, every, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(first, diff_augment.augment(x, every, tf.constant([1, 2])))
    assert not np.allclose(first, diff_augment.augment(x, every, tf.constant([1, 3])))
    assert diff_augment.augment(x, (), tf.constant([1, 2])) is x


def test_g_learns_through_the_transforms():
    # tiny_config has no term but L^adversarial for G, whose only path is D(augment(G(z))).
    model = GMMGAN(tiny_config(diff_augment="color,translation,cutout"), (28, 28, 1))
    model.compile()
    before = [v.numpy().copy() for v in model.generator.trainable_variables]
    model.train_step(tf.random.uniform((6, 28, 28, 1), -1, 1, seed=0))
    for old, v in zip(before, model.generator.trainable_variables):
        assert not np.array_equal(old, v.numpy()), v.path


def test_the_flag_names_the_transforms():
    assert set(diff_augment.TRANSFORMS) == set(DIFF_AUGMENTATIONS)
    assert tiny_config(diff_augment=" translation, cutout").diff_augmentations == (
        "translation", "cutout")
    assert tiny_config().diff_augmentations == ()
    for bad in ("flip", "translation,translation", "translation,,cutout"):
        with pytest.raises(ConfigError, match=r"--diff_augment: want a comma list of distinct "
                                              r"names from \('color', 'translation', 'cutout'\)"):
            tiny_config(diff_augment=bad)
