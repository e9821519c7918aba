"""What every data source shares: the DataBundle type and the image conversions.

`data` (mnist_5k, folders, imbalance, dispatch) and `datasets_tfds` (TFDS, Debian IDX files) both
import from here, so neither imports the other's internals; `image_input` reads a user's images
(--mode=assign, the serving client) with the same decoding and `center_crop_resize` as the
folder data set, so they are resized the way training saw them.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf
from absl import logging

from gmmgan_tf.config import ConfigError
from gmmgan_tf.errors import DataError
from gmmgan_tf.image_input import decode

SPLITS = ("validation", "test")
VALIDATION_SEED = 0  # one validation split a data set, whatever the run's --seed


@dataclasses.dataclass(frozen=True)
class DataBundle:
    """Train / validation / test images of a data set. The test split is scored once, at the end
    of a run and by --mode=evaluate; everything chosen (settings, epochs, scorers) is chosen on
    the validation split, which is carved from the training images (carve_validation).

    The evaluation code scores `test_images`/`test_labels`, the bundle's held-out pair: use
    `for_scoring("validation")` for a bundle whose held-out pair is the validation split (it
    holds no test images or labels at all)."""
    name: str
    train_images: np.ndarray  # float32 [N, H, W, C] in [-1, 1]
    train_labels: np.ndarray  # int64 [N], evaluation only
    test_images: np.ndarray  # float32 [N', H, W, C] in [-1, 1], held out
    test_labels: np.ndarray  # int64 [N']
    num_classes: int
    excluded_classes: tuple[int, ...] = ()  # left out of train_images only (--exclude_classes)
    val_images: np.ndarray | None = None  # float32 [V, H, W, C], carved from the training images
    val_labels: np.ndarray | None = None  # int64 [V]
    held_out: str = "test"  # which split test_images/test_labels hold (for_scoring)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def num_validation(self) -> int:
        return 0 if self.val_images is None else len(self.val_images)

    def for_scoring(self, split: str) -> "DataBundle":
        """This bundle with `split`'s images and labels as the held-out pair that the evaluation
        code scores; the "validation" bundle has no test split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split == "test":
            return self
        images, labels = self.validation()
        return dataclasses.replace(self, test_images=images, test_labels=labels,
                                   held_out="validation")

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """The validation split's images and labels (what a script that chooses scores)."""
        if not self.num_validation:
            raise DataError(f"{self.name} has no validation split; set --validation_fraction > 0")
        return self.val_images, self.val_labels

    def train_dataset(self, global_batch_size: int, seed: int,
                      targets: np.ndarray | None = None) -> tf.data.Dataset:
        """Shuffled, repeated batches of training images (no labels); with `targets` (the warm
        start's responsibilities, one row an image) each image packed with its targets in one
        tensor (pack_with_targets): Keras cannot distribute a batch of several tensors under
        MultiWorkerMirroredStrategy (fit's first batch fails: keras-team/keras#20329)."""
        if len(self.train_images) < global_batch_size:
            raise ConfigError(
                f"--batch_size: {global_batch_size} is larger than the {len(self.train_images)} "
                f"training images of {self.name}; use a smaller batch")
        elements = (self.train_images if targets is None
                    else pack_with_targets(self.train_images, targets))
        return (tf.data.Dataset.from_tensor_slices(elements)
                .cache()
                .shuffle(len(self.train_images), seed=seed, reshuffle_each_iteration=True)
                .repeat()
                .batch(global_batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))


def pack_with_targets(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[N, H, W, C] images and their [N, K] targets as one float32 array [N, H*W*C + K]."""
    return np.concatenate([images.reshape(len(images), -1), targets], axis=1).astype(np.float32)


def unpack_targets(batch: tf.Tensor, image_shape: tuple[int, int, int]
                   ) -> tuple[tf.Tensor, tf.Tensor]:
    """pack_with_targets undone on a batch: (images [B, H, W, C], targets [B, K])."""
    pixels = int(np.prod(image_shape))
    return tf.reshape(batch[:, :pixels], (-1, *image_shape)), batch[:, pixels:]


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


def stratified_fraction_split(labels: np.ndarray, fraction: float, seed: int
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (kept, carved) indices: round(fraction * n_c) images of each class c carved out
    (proportional, so an imbalanced set keeps its class shares in both parts), but at least one
    image of each class stays in the kept part."""
    rng = np.random.default_rng(seed)
    kept, carved = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        count = min(int(round(fraction * len(idx))), len(idx) - 1)
        carved.append(idx[:count])
        kept.append(idx[count:])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(carved))


def carve_validation(bundle: DataBundle, fraction: float) -> DataBundle:
    """`bundle` with `fraction` of its training images (stratified by label, VALIDATION_SEED)
    moved to the validation split; they take no part in training or in the warm start."""
    if not fraction:
        return bundle
    kept, carved = stratified_fraction_split(bundle.train_labels, fraction, VALIDATION_SEED)
    if not len(carved):  # too few images a class: no validation split rather than an error
        logging.warning("--validation_fraction: %g of %d training images of %s is no image of "
                        "any class; no validation split", fraction, len(bundle.train_images),
                        bundle.name)
        return bundle
    return dataclasses.replace(
        bundle, train_images=bundle.train_images[kept], train_labels=bundle.train_labels[kept],
        val_images=bundle.train_images[carved], val_labels=bundle.train_labels[carved])


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """[N, h, w, c] images in [-1, 1] -> [N, size, size, c], bilinear, in chunks (memory).

    Antialiasing only changes downscaling; upscaling (28 -> 64) skips its 4x slower kernel.
    """
    if images.shape[1] == size and images.shape[2] == size:
        return images
    antialias = size < max(images.shape[1:3])
    chunks = [tf.image.resize(images[i:i + 8192], (size, size), antialias=antialias).numpy()
              for i in range(0, len(images), 8192)]
    return np.concatenate(chunks).clip(-1, 1)


def center_crop_resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """The central min(h, w) square of an [h, w, c] image of 0..255 values (uint8 or float)
    -> [size, size, c] in [-1, 1]."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2,
                                          (shape[1] - side) // 2, side, side)
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)


def read_image_file(path: pathlib.Path, image_size: int) -> np.ndarray:
    """An image file -> float32 [image_size, image_size, 1 or 3] in [-1, 1]: decoded as every
    user image is (image_input.decode), center-cropped to a square and resized (the folder data
    set's preprocessing). Raises image_input.UnreadableImage."""
    return center_crop_resize(decode(path), image_size).numpy()
