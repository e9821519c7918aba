"""TFDS data sets held in memory, and Fashion-MNIST offline.

`load_tfds` first asks `data_check` (file system and at most a one-second reachability probe)
where the data set comes from, so missing data offline is a one-line `DataError` instead of
minutes of TFDS download retries; only then is `tensorflow_datasets` imported. A set that is not
prepared is downloaded and prepared by TFDS itself (`download_and_prepare`, which removes what a
failed attempt leaves), then read like any prepared set, with download disabled.

Fashion-MNIST also comes from Debian's `dataset-fashion-mnist` (gzip IDX files): `read_idx` parses
them, `load_fashion_mnist_idx` uses them directly when TFDS data is missing, and
`prepare_fashion_mnist` writes the TFDS data set from them so that `tfds.load` works offline too.
"""
from __future__ import annotations

import fnmatch
import gzip
import os
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from absl import logging

from gmmgan_tf import data_check
from gmmgan_tf.config import Config
from gmmgan_tf.data_core import (DataBundle, center_crop_resize, resize, stratified_split,
                                 to_unit_range)
from gmmgan_tf.errors import DataError

FLOWERS_CLASSES = 10  # the paper uses labels 0-9 of Oxford Flowers 102
FLOWERS_TEST_PER_CLASS = 10  # held out a class: a quarter of the smallest of the 10 (40 images)
# IDX type byte -> big-endian dtype (http://yann.lecun.com/exdb/mnist/ "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_tfds(config: Config) -> DataBundle:
    """mnist, fashion_mnist, cifar10 or oxford_flowers102 from TFDS (Fashion-MNIST: or Debian)."""
    name = config.dataset
    data_dir = config.data_dir or data_check.default_data_dir()
    source = data_check.tfds_source(name, data_dir, config.download)
    if source == "debian":
        logging.info("fashion_mnist: no TFDS data in %s; reading Debian's IDX files in %s",
                     data_dir, data_check.DEBIAN_FASHION_MNIST_DIR)
        return load_fashion_mnist_idx(data_check.DEBIAN_FASHION_MNIST_DIR, config.image_size)
    if source == "download":
        download_and_prepare(name, data_dir)
    version = data_check.prepared_version(name, data_dir)
    if name == "oxford_flowers102":
        return _load_flowers(f"{name}:{version}", data_dir, config.image_size, config.seed)
    (x_train, y_train), (x_test, y_test) = (
        _read_split(f"{name}:{version}", data_dir, split) for split in ("train", "test"))
    return DataBundle(name, resize(to_unit_range(x_train), config.image_size), y_train,
                      resize(to_unit_range(x_test), config.image_size), y_test, num_classes=10)


def download_and_prepare(name: str, data_dir: str) -> str:
    """TFDS downloads and prepares `name` (the version this code expects) in `data_dir`, with its
    progress bars; returns the prepared directory. TFDS prepares in an `incomplete.*` directory
    that it renames into place at the end, and removes on an exception; what it does not remove
    (a half-downloaded file in downloads/**/*.tmp.*, a half-extracted downloads/**/incomplete.*)
    is removed here, so a failed attempt leaves only the files it downloaded whole,
    which the next attempt reuses. A failure is a one-line DataError."""
    import tensorflow_datasets as tfds

    before = set(_partial_files(name, data_dir))
    builder = tfds.builder(f"{name}:{data_check.TFDS_VERSIONS[name]}", data_dir=data_dir)
    try:
        builder.download_and_prepare()
    except BaseException as e:  # Ctrl-C and SIGTERM too: they re-raise below
        for path in set(_partial_files(name, data_dir)) - before:
            shutil.rmtree(path, ignore_errors=True)
        if not isinstance(e, Exception):
            raise
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{name}: TFDS could not download and prepare it in {data_dir} "
                        f"({type(e).__name__}: {first_line}); nothing half-done is kept, run "
                        "again to retry") from None
    return str(builder.data_path)


def _partial_files(name: str, data_dir: str) -> list[pathlib.Path]:
    """What TFDS writes while it downloads, extracts and prepares `name` before renaming it into
    place (tensorflow_datasets/core: download_manager, extractor, file_utils.incomplete_dir)."""
    root = pathlib.Path(data_dir)
    # os.walk, not glob: TFDS's other download threads may still rename their *.tmp.* folders
    # into place while this looks (glob's scandir then raised FileNotFoundError in CI).
    downloads = [pathlib.Path(top, entry) for top, folders, files in os.walk(root / "downloads")
                 for entry in folders + files
                 if fnmatch.fnmatch(entry, "*.tmp.*") or fnmatch.fnmatch(entry, "incomplete.*")]
    return [*downloads, *root.glob(f"{name}/incomplete.*")]


def _tfds_dataset(name: str, data_dir: str, split: str) -> tf.data.Dataset:
    import tensorflow_datasets as tfds  # imported only once the data is known to be there

    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False,
                         as_supervised=True)
    except Exception as e:  # TFDS raises assorted types for damaged or mismatched data
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{name}: cannot read the TFDS data in {data_dir} ({first_line}); "
                        "prepare it again") from None


def _collect(ds: tf.data.Dataset, name: str, data_dir: str, batch: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """All (image, label) pairs of `ds` as two arrays; a DataError when there are none."""
    images, labels = [], []
    try:
        for x, y in ds.batch(batch).as_numpy_iterator():
            images.append(x)
            labels.append(y)
    except tf.errors.OpError as e:  # a damaged record shows up only when read
        raise DataError(f"{name}: cannot read the TFDS data in {data_dir} "
                        f"({e.message.splitlines()[0]}); prepare it again") from None
    if not images:
        raise DataError(f"{name}: no images read from the TFDS data in {data_dir}; prepare it "
                        "again")
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def _read_split(name: str, data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and int64 labels of one split of a fixed-shape data set."""
    return _collect(_tfds_dataset(name, data_dir, split), name, data_dir, batch=4096)


def _load_flowers(name: str, data_dir: str, size: int, seed: int) -> DataBundle:
    """Labels 0-9 of all three splits, center-cropped and resized; 10 a class held out."""
    ds = (_tfds_dataset(name, data_dir, "train+validation+test")
          .filter(lambda x, y: y < FLOWERS_CLASSES)
          .map(lambda x, y: (center_crop_resize(x, size), y),
               num_parallel_calls=tf.data.AUTOTUNE))
    images, labels = _collect(ds, name, data_dir, batch=256)
    counts = np.bincount(labels, minlength=FLOWERS_CLASSES)
    if counts.min() <= FLOWERS_TEST_PER_CLASS:
        raise DataError(f"{name}: class {counts.argmin()} has {counts.min()} images, too few to "
                        f"hold out {FLOWERS_TEST_PER_CLASS}; the data in {data_dir} is incomplete")
    train, test = stratified_split(labels, FLOWERS_CLASSES * FLOWERS_TEST_PER_CLASS, seed)
    return DataBundle("oxford_flowers102", images[train], labels[train], images[test],
                      labels[test], num_classes=FLOWERS_CLASSES)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzip or not) as an array.

    Layout: 2 zero bytes, a type byte, the number of dimensions n, n big-endian uint32 sizes,
    then the values in C order, big-endian.
    """
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read IDX file {path} ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise DataError(f"{path}: {len(raw) - offset} data bytes for shape {shape}; the file is "
                        "truncated or corrupt")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_path(source_dir: str, stem: str) -> str:
    """The file `stem` in `source_dir`, gzip-compressed (as Debian ships it) or not."""
    for candidate in (f"{stem}.gz", stem):
        path = os.path.join(source_dir, candidate)
        if os.path.exists(path):
            return path
    raise DataError(f"fashion_mnist: {stem}[.gz] is missing in {source_dir}; install the Debian "
                    "package dataset-fashion-mnist (`make data`)")


def read_fashion_mnist_split(source_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 28, 28] images and int64 [N] labels of one split from IDX files."""
    image_stem, label_stem = data_check.IDX_FILES[split]
    images = read_idx(_idx_path(source_dir, image_stem))
    labels = read_idx(_idx_path(source_dir, label_stem)).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"fashion_mnist: {split} images {images.shape} and labels {labels.shape} "
                        f"in {source_dir} do not match")
    return images.astype(np.uint8), labels


def load_fashion_mnist_idx(source_dir: str, image_size: int) -> DataBundle:
    """Fashion-MNIST (60k/10k) straight from IDX files, no TFDS involved."""
    (x_train, y_train), (x_test, y_test) = (
        read_fashion_mnist_split(source_dir, split) for split in ("train", "test"))
    return DataBundle("fashion_mnist", resize(to_unit_range(x_train), image_size), y_train,
                      resize(to_unit_range(x_test), image_size), y_test, num_classes=10)


def prepare_fashion_mnist(data_dir: str, source_dir: str) -> str:
    """Writes TFDS `fashion_mnist` into `data_dir` from local IDX files; returns its directory.

    TFDS's own builder would download the same files; this subclass of it (same name, version and
    features, so `tfds.load('fashion_mnist', data_dir=...)` reads the result) only swaps the
    download for the local files.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    class FashionMNIST(tfds_mnist.FashionMNIST, skip_registration=True):
        def _split_generators(self, dl_manager):
            del dl_manager  # nothing to download
            return {split: self._examples(split) for split in data_check.IDX_FILES}

        def _examples(self, split):
            images, labels = read_fashion_mnist_split(source_dir, split)
            for i, (image, label) in enumerate(zip(images, labels)):
                yield i, {"image": image[..., None], "label": label}

    builder = FashionMNIST(data_dir=data_dir)
    with tempfile.TemporaryDirectory() as downloads:  # stays empty: nothing is downloaded
        builder.download_and_prepare(
            download_dir=downloads,
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return str(builder.data_path)
