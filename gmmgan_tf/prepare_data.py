"""Prepares a TFDS data set in --data_dir so that training can run offline.

    python -m gmmgan_tf.prepare_data fashion_mnist [--data_dir=DIR] [--source_dir=DIR]
    python -m gmmgan_tf.prepare_data mnist|cifar10|oxford_flowers102 [--data_dir=DIR]

fashion_mnist is written from the IDX files of Debian's dataset-fashion-mnist (no network); the
other names are downloaded and built by TFDS, so run those on a connected machine and copy
--data_dir. Exits non-zero with a one-line message when it cannot.
"""
from __future__ import annotations

import sys
import time

from absl import app, flags, logging

from gmmgan_tf.config import TFDS_DATASETS
from gmmgan_tf.errors import DataError
from gmmgan_tf.data_check import DEBIAN_FASHION_MNIST_DIR, default_data_dir, prepared_version

_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data directory ('' = TFDS's default).")
_SOURCE_DIR = flags.DEFINE_string("source_dir", DEBIAN_FASHION_MNIST_DIR,
                                  "fashion_mnist: directory of the IDX files.")


def prepare(name: str, data_dir: str, source_dir: str) -> str:
    """Builds `name` in `data_dir` unless it is there already; returns a one-line report."""
    version = prepared_version(name, data_dir)
    if version is not None:
        return f"{name} {version} is already prepared in {data_dir}"
    start = time.time()
    # TensorFlow only for real work
    from gmmgan_tf.datasets_tfds import download_and_prepare, prepare_fashion_mnist

    if name == "fashion_mnist":
        path = prepare_fashion_mnist(data_dir, source_dir)
    else:
        path = download_and_prepare(name, data_dir)
    return f"{name} prepared in {path} in {time.time() - start:.0f} s"


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in TFDS_DATASETS:
        sys.exit(f"usage: python -m gmmgan_tf.prepare_data {{{'|'.join(TFDS_DATASETS)}}} "
                 "[--data_dir=DIR]")
    try:
        logging.info(prepare(argv[1], _DATA_DIR.value or default_data_dir(), _SOURCE_DIR.value))
    except DataError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
