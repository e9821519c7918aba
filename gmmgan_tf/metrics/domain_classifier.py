"""The domain classifier: a small CNN trained on the labelled data set, for *domain* IS/FID.

InceptionV3 is an ImageNet model that cannot be downloaded here and says little about 28 x 28
digits, so the project trains its own classifier once per data set and caches it
(`<cache_dir>/domain_classifier_<dataset>_<size>.keras`, its test accuracy beside it in a
`.json`). Its class probabilities give the **domain IS** and mode coverage, its penultimate
layer (`features`, 128 units) the **domain FID**. These are not comparable with Inception
IS/FID numbers from papers; report them under their own names, with the test accuracy.

Architecture: [conv3x3 + ReLU, conv3x3 stride 2 + ReLU] blocks (32, 64, 128, ... channels)
until the side is <= 8, flatten, Dense(128, ReLU) = features, dropout 0.3, Dense(classes).
Input: float32 NHWC images in [-1, 1], integer labels.

Training is a function of the images, labels, options and the classifier's own `seed`: the
image order and the crop offsets are drawn in NumPy, so the run's global seed does not enter.
It still depends on TensorFlow's intra-op thread count (1 and 2 threads give classifiers of the
same accuracy with different features), so domain FIDs compare only under one classifier. The
cache stores a fingerprint of what the classifier was trained on (`training_fingerprint`) and is
retrained when it differs.
"""
from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from gmmgan_tf import caches
from gmmgan_tf.images import atomic_write_bytes

FEATURES_LAYER = "features"
FEATURE_DIM = 128
RECIPE = 2  # raise when training changes, so that cached classifiers are retrained


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """How a classifier is trained; part of its cache's fingerprint (training_fingerprint)."""
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


def build_classifier(image_shape: tuple[int, int, int], num_classes: int,
                     seed: int = 0) -> keras.Model:
    """The CNN above, returning logits."""
    init = iter(keras.initializers.GlorotUniform(seed=seed + i) for i in range(100))
    inputs = keras.Input(image_shape)
    x, side, channels = inputs, image_shape[0], 32
    while True:
        x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                                kernel_initializer=next(init))(x)
        x = keras.layers.Conv2D(channels, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=next(init))(x)
        side, channels = (side + 1) // 2, min(channels * 2, 256)
        if side <= 8:
            break
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(FEATURE_DIM, activation="relu", name=FEATURES_LAYER,
                           kernel_initializer=next(init))(x)
    x = keras.layers.Dropout(0.3, seed=seed)(x)
    logits = keras.layers.Dense(num_classes, name="logits", kernel_initializer=next(init))(x)
    return keras.Model(inputs, logits, name="domain_classifier")


def _check(images: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"need NHWC images, got shape {images.shape}")
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or infinite values")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return images


class DomainClassifier:
    """A trained classifier: probabilities, predicted classes and penultimate features."""

    def __init__(self, model: keras.Model, test_accuracy: float, fingerprint: str = ""):
        self.model = model
        self.test_accuracy = float(test_accuracy)
        self.fingerprint = fingerprint  # of what it was trained on: training_fingerprint
        self._both = keras.Model(model.input, [model.get_layer(FEATURES_LAYER).output,
                                               model.output])

    @property
    def num_classes(self) -> int:
        return int(self.model.output.shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.model.input.shape[1:])

    def features_and_probabilities(self, images: np.ndarray, batch_size: int = 500
                                   ) -> tuple[np.ndarray, np.ndarray]:
        """(features [N, 128], softmax probabilities [N, classes])."""
        images = _check(images)
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"the domain classifier takes {self.image_shape} images, got "
                             f"{images.shape[1:]}")
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            f, logits = self._both(images[start:start + batch_size], training=False)
            feats.append(np.asarray(f))
            probs.append(np.asarray(tf.nn.softmax(logits)))
        return np.concatenate(feats), np.concatenate(probs)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """The share of `images` whose most probable class is their label."""
        return float(np.mean(self.probabilities(images).argmax(axis=1) == np.asarray(labels)))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.features_and_probabilities(images)[1]

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.features_and_probabilities(images)[0]

    def save(self, path: str) -> None:
        """`path` (.keras) and `path + '.json'` with the test accuracy and the training
        fingerprint, each written atomically (temporary file, then rename)."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}.keras"  # keras wants the suffix
        self.model.save(tmp)
        os.replace(tmp, path)
        atomic_write_bytes(path + ".json", json.dumps({"test_accuracy": self.test_accuracy,
                                                       "fingerprint": self.fingerprint}).encode())

    @classmethod
    def load(cls, path: str) -> "DomainClassifier":
        if not os.path.isfile(path) or not os.path.isfile(path + ".json"):
            raise FileNotFoundError(f"no domain classifier at {path!r} (and {path}.json); "
                                    "train one with train_domain_classifier")
        with open(path + ".json") as f:
            meta = json.load(f)
        return cls(keras.models.load_model(path), meta["test_accuracy"],
                   meta.get("fingerprint", ""))


def train_domain_classifier(train_images: np.ndarray, train_labels: np.ndarray,
                            test_images: np.ndarray, test_labels: np.ndarray,
                            num_classes: int, options: TrainingOptions = TrainingOptions(),
                            verbose: int = 0) -> DomainClassifier:
    """Adam on the cross-entropy; the test accuracy is measured on the held-out images."""
    train_images = _check(train_images, train_labels)
    test_images = _check(test_images, test_labels)
    labels = np.asarray(train_labels, np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got [{labels.min()}, "
                         f"{labels.max()}]")
    model = build_classifier(train_images.shape[1:], num_classes, options.seed)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    # The order of every epoch and each image's crop are drawn here from `seed` alone, and the
    # epochs run as one pass: no shuffle or random op depends on TensorFlow's global seed.
    rng = np.random.default_rng(options.seed)
    order = np.concatenate([rng.permutation(len(labels)) for _ in range(options.epochs)])
    crop_seeds = rng.integers(0, 2**31 - 1, size=(len(order), 2))
    images, targets = tf.constant(train_images), tf.constant(labels)
    data = (tf.data.Dataset.from_tensor_slices((order, crop_seeds))
            .map(lambda i, s: (_random_shift(tf.gather(images, i), s), tf.gather(targets, i)),
                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(options.batch_size).prefetch(tf.data.AUTOTUNE))
    model.fit(data, epochs=1, verbose=verbose, shuffle=False)
    classifier = DomainClassifier(model, 0.0, training_fingerprint(
        train_images, train_labels, num_classes, options))
    classifier.test_accuracy = classifier.accuracy(test_images, test_labels)
    return classifier


def training_fingerprint(train_images: np.ndarray, train_labels: np.ndarray, num_classes: int,
                         options: TrainingOptions) -> str:
    """What a classifier is a function of: its training images, labels, options and RECIPE."""
    return caches.fingerprint(train_images, caches.fingerprint(np.ravel(train_labels)),
                              num_classes, RECIPE, sorted(dataclasses.asdict(options).items()))


def _random_shift(image: tf.Tensor, seed: tf.Tensor, pixels: int = 2) -> tf.Tensor:
    """Shifts one image by up to `pixels` (mirrored border): a cheap augmentation that helps
    when only a few thousand labelled images are available. `seed`: a stateless seed [2]."""
    padded = tf.pad(image, [[pixels, pixels], [pixels, pixels], [0, 0]], mode="SYMMETRIC")
    return tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed)


def cache_path(cache_dir: str, dataset: str, image_size: int) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset)
    return os.path.join(cache_dir, f"domain_classifier_{safe}_{image_size}.keras")


def load_or_train(cache_dir: str, dataset: str, train_images: np.ndarray,
                  train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray,
                  num_classes: int, options: TrainingOptions = TrainingOptions()
                  ) -> DomainClassifier:
    """The cached classifier of this data set and image size, trained and saved on first use
    and again whenever the training images, labels, options or RECIPE differ from the cached
    one's. Its `test_accuracy` is measured on the `test_images` given (a run scoring on the
    validation split reuses the cache)."""
    path = cache_path(cache_dir, dataset, int(np.shape(train_images)[1]))
    if os.path.isfile(path) and os.path.isfile(path + ".json"):
        try:
            classifier = DomainClassifier.load(path)
        except caches.READ_ERRORS as e:
            caches.note_rebuild(path, e, "training the domain classifier again")
        else:
            if classifier.fingerprint == training_fingerprint(train_images, train_labels,
                                                              num_classes, options):
                classifier.test_accuracy = classifier.accuracy(test_images, test_labels)
                return classifier
    classifier = train_domain_classifier(train_images, train_labels, test_images, test_labels,
                                         num_classes, options)
    classifier.save(path)
    return classifier
