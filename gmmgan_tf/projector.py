"""The TensorBoard Projector view of a trained PCM: its penultimate features of held-out images.

<workdir>/tensorboard/projector/ is a TensorBoard run of its own (a text summary makes
TensorBoard list it) holding

    checkpoint, features-1.*    tf.train.Checkpoint of `features` [N, F] float32: the PCM
                                encoder's output, the input of its last Dense layer
    metadata.tsv                a header row, then one row an image: label (the data set's),
                                component (argmax Pr(k|x)), responsibility (that Pr(k|x))
    sprite.png                  the N images tiled row-major, ceil(sqrt(N)) a row, no padding
    projector_config.pbtxt      the embedding with its metadata and sprite

The Projector reads projector_config.pbtxt in every run directory and finds the checkpoint
through the `checkpoint` file beside it; every path is relative, so a moved workdir still opens.
`tensorboard --logdir=<workdir>` -> Projector tab.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins import projector

from gmmgan_tf import images as images_lib
from gmmgan_tf.errors import writing

MAX_IMAGES = 1000
TENSOR_NAME = "features/.ATTRIBUTES/VARIABLE_VALUE"  # tf.train.Checkpoint(features=...)
CONFIG_FILE = "projector_config.pbtxt"  # what the Projector looks for in a run directory


def directory(workdir: str) -> str:
    return os.path.join(workdir, "tensorboard", "projector")


def pcm_features(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The PCM's penultimate features [N, F]: its encoder's flat output, before Dense(K)."""
    return np.concatenate([model.pcm.encoder(images[i:i + batch_size], training=False).numpy()
                           for i in range(0, len(images), batch_size)])


def write(model, images: np.ndarray, labels: np.ndarray, workdir: str,
          max_images: int = MAX_IMAGES) -> str:
    """Writes the Projector run of the first `max_images` images; returns its directory.

    Written to a hidden directory beside it and renamed into place, so TensorBoard never reads
    half a run."""
    images, labels = images[:max_images], labels[:max_images]
    responsibilities = model.responsibilities(images)
    parent = os.path.dirname(directory(workdir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".projector-")
    try:
        with writing(directory(workdir)):
            _write_run(staging, pcm_features(model, images), images, labels, responsibilities)
        _replace_dir(staging, directory(workdir))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory(workdir)


def _write_run(out: str, features: np.ndarray, images: np.ndarray, labels: np.ndarray,
               responsibilities: np.ndarray) -> None:
    tf.train.Checkpoint(features=tf.Variable(features)).save(
        os.path.join(out, "features"))
    components = responsibilities.argmax(axis=1)
    rows = ["label\tcomponent\tresponsibility"] + [
        f"{label}\t{k}\t{p[k]:.4f}" for label, k, p in zip(labels, components, responsibilities)]
    with open(os.path.join(out, "metadata.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    side = math.ceil(math.sqrt(len(images)))
    images_lib.save_png(os.path.join(out, "sprite.png"),
                        images_lib.grid(images, side, side, pad=0), upscale=1)
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.metadata_path = "metadata.tsv"
    embedding.sprite.image_path = "sprite.png"
    embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])  # width, height
    with open(os.path.join(out, CONFIG_FILE), "w") as f:
        f.write(text_format.MessageToString(config))
    writer = tf.summary.create_file_writer(out)
    with writer.as_default(step=0):
        tf.summary.text("projector", f"The PCM's penultimate features of {len(images)} held-out "
                        "images: open the Projector tab (color by label or component).")
    writer.close()


def _replace_dir(new: str, target: str) -> None:
    """Moves `new` to `target`, replacing an older `target` (renamed away first, then removed)."""
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".projector-old-")
        os.rename(target, os.path.join(old, "run"))
    os.rename(new, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)
