"""Is the data of --dataset there? Answered from the file system alone, in milliseconds.

TFDS retries a missing download for minutes and TensorFlow takes seconds to import, so the CLI
calls `check_available` before either: a prepared TFDS data set is the directory
`<data_dir>/<name>/<version>/` holding `dataset_info.json` (TFDS writes it last, then renames
the directory into place). This module imports neither TensorFlow nor TFDS.
"""
from __future__ import annotations

import os
import pathlib

from gmmgan_tf import image_input
from gmmgan_tf.config import TFDS_DATASETS, Config
from gmmgan_tf.errors import DataError

# The versions this code was written against (oxford_flowers102 2.1.1 is the paper's).
TFDS_VERSIONS = {"mnist": "3.0.1", "fashion_mnist": "3.0.1", "cifar10": "3.0.2",
                 "oxford_flowers102": "2.1.1"}
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def default_data_dir() -> str:
    """TFDS's own default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def prepared_version(name: str, data_dir: str) -> str | None:
    """The version of `name` prepared in `data_dir` (the expected one first), or None."""
    found = sorted((p.parent.name for p in (pathlib.Path(data_dir) / name).glob(
        "*/dataset_info.json")), key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
    if TFDS_VERSIONS.get(name) in found:
        return TFDS_VERSIONS[name]
    return found[-1] if found else None


def debian_fashion_mnist_available(source_dir: str) -> bool:
    """Whether all four IDX files are in `source_dir` (gzip-compressed or not)."""
    return all(os.path.exists(os.path.join(source_dir, stem + ".gz"))
               or os.path.exists(os.path.join(source_dir, stem))
               for stems in IDX_FILES.values() for stem in stems)


def missing_data_message(name: str, data_dir: str) -> str:
    how = (f"on a machine with network run `tfds build {name} --data_dir={data_dir}` (or "
           f"`python -m gmmgan_tf.prepare_data {name} --data_dir={data_dir}`) and copy that "
           "directory here")
    if name == "fashion_mnist":
        how = (f"run `make data` (apt-get install dataset-fashion-mnist, then `python -m "
               f"gmmgan_tf.prepare_data fashion_mnist --data_dir={data_dir}`), or {how}")
    elif name == "mnist":
        how += "; offline, use --dataset=mnist_5k (or imbalanced_mnist_5k)"
    return f"{name}: no prepared TFDS data set in {data_dir}; {how}"


def tfds_source(name: str, data_dir: str) -> str:
    """'tfds' when `name` is prepared in `data_dir`, 'debian' for Fashion-MNIST from Debian's
    IDX files, else a one-line DataError saying how to prepare it."""
    if prepared_version(name, data_dir) is not None:
        return "tfds"
    if name == "fashion_mnist" and debian_fashion_mnist_available(DEBIAN_FASHION_MNIST_DIR):
        return "debian"
    raise DataError(missing_data_message(name, data_dir))


def check_available(config: Config) -> None:
    """Raises DataError at once when the data of config.dataset, or the images that
    --mode=assign sorts (image_input.check: a few ms, or one image decoded), cannot be used."""
    name = config.dataset.removeprefix("imbalanced_")
    if name in TFDS_DATASETS:
        tfds_source(name, config.data_dir or default_data_dir())
    elif name.startswith("folder:"):
        readable_folder(name[len("folder:"):])
    if config.mode == "assign":
        image_input.check([config.images])


def readable_folder(path: str) -> pathlib.Path:
    """`path` as a Path, or a DataError when it is not a directory this process can list."""
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"folder:{path}: not a readable directory")
    return folder
