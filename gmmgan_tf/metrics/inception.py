"""Standard InceptionV3 features and class probabilities, for the usual IS and FID.

InceptionV3 weights cannot be downloaded here, so the standard numbers need
`--inception_weights=PATH`: a Keras InceptionV3 weights file (with the classification top,
`inception_v3_weights_tf_dim_ordering_tf_kernels.h5`, for IS and FID; without it, `..._notop.h5`,
for FID only). Without weights the project reports only the *domain* IS/FID
(`domain_classifier.py`).

Inputs are images in [-1, 1] NHWC (what the generator makes): grey images are repeated to three
channels and everything is resized bilinearly to 299 x 299. Keras' InceptionV3 preprocessing
maps [0, 255] to [-1, 1], so images already in [-1, 1] go in unchanged.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

INCEPTION_SIZE = 299
FEATURE_DIM = 2048


def to_inception_input(images: np.ndarray | tf.Tensor) -> tf.Tensor:
    """[N, H, W, 1 or 3] in [-1, 1] -> float32 [N, 299, 299, 3] in [-1, 1]."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"need NHWC images with 1 or 3 channels, got shape {images.shape}")
    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    images = tf.image.resize(images, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
    return tf.clip_by_value(images, -1.0, 1.0)


class InceptionExtractor:
    """Pool features [N, 2048] and, with the top, ImageNet probabilities [N, 1000]."""

    def __init__(self, weights_path: str):
        if not weights_path or not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"--inception_weights: no file at {weights_path!r}; download the Keras "
                "InceptionV3 weights (inception_v3_weights_tf_dim_ordering_tf_kernels.h5) on a "
                "connected machine and pass their path, or leave the flag empty to report only "
                "the domain IS/FID")
        try:
            base = keras.applications.InceptionV3(weights=weights_path, include_top=True)
            self.has_top = True
            outputs = [base.get_layer("avg_pool").output, base.output]
        except ValueError:
            # A no-top file does not fit the classification head: features (FID) only.
            base = keras.applications.InceptionV3(weights=weights_path, include_top=False,
                                                  pooling="avg")
            self.has_top = False
            outputs = [base.output]
        self.model = keras.Model(base.input, outputs)

    def __call__(self, images: np.ndarray, batch_size: int = 64
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """(features, probabilities or None without the top) of images in [-1, 1]."""
        features, probs = [], []
        for start in range(0, len(images), batch_size):
            out = self.model(to_inception_input(images[start:start + batch_size]),
                             training=False)
            out = out if isinstance(out, (list, tuple)) else [out]
            features.append(np.asarray(out[0]))
            if self.has_top:
                probs.append(np.asarray(out[1]))
        return np.concatenate(features), (np.concatenate(probs) if self.has_top else None)
