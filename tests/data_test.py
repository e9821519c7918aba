"""Data sets: splits, ranges, TFDS (mocked), offline failure, Debian IDX, imbalance, folders."""
import dataclasses
import gzip
import logging
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from gmmgan_tf import data, data_check, data_core, datasets_tfds
from gmmgan_tf.config import Config, ConfigError


def _config(**kwargs) -> Config:
    return dataclasses.replace(Config(), **kwargs)


def _rows(images: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in images.reshape(len(images), -1)}


# --- helpers and mnist_5k ---------------------------------------------------------------------

def test_to_unit_range_maps_0_255_to_minus1_1_with_channel_axis():
    x = np.array([[[0, 255], [51, 204]]], np.uint8)
    np.testing.assert_allclose(data.to_unit_range(x),
                               (x.astype(np.float64) / 127.5 - 1)[..., None], atol=1e-6)


def test_center_crop_resize_keeps_the_central_square():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255  # the central 40x40 square is white, the sides black
    out = data.center_crop_resize(tf.constant(image), 16).numpy()
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out, 1.0, atol=1e-5)


def test_mnist_5k_is_a_stratified_3600_400_1000_split():
    bundle = data.load(_config(dataset="mnist_5k"))
    assert bundle.train_images.shape == (3600, 28, 28, 1)
    assert bundle.val_images.shape == (400, 28, 28, 1)
    assert bundle.test_images.shape == (1000, 28, 28, 1)
    assert bundle.train_images.dtype == np.float32
    assert bundle.train_images.min() == -1.0 and bundle.train_images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(bundle.test_labels), [100] * 10)
    np.testing.assert_array_equal(np.bincount(bundle.val_labels), [40] * 10)
    np.testing.assert_array_equal(np.bincount(bundle.train_labels), [360] * 10)
    train, val, test = (_rows(x) for x in (bundle.train_images, bundle.val_images,
                                           bundle.test_images))
    assert not train & val and not train & test and not val & test


def test_the_validation_split_is_the_same_for_every_seed_and_none_at_fraction_0():
    a, b = (data.load(_config(dataset="mnist_5k", seed=s)) for s in (0, 3))
    np.testing.assert_array_equal(a.val_images, b.val_images)
    whole = data.load(_config(dataset="mnist_5k", validation_fraction=0.0))
    assert len(whole.train_images) == 4000 and whole.num_validation == 0
    assert _rows(whole.train_images) == _rows(a.train_images) | _rows(a.val_images)
    with pytest.raises(ConfigError, match="--validation_fraction: must be in"):
        _config(validation_fraction=0.5).validate()


def test_stratified_fraction_split_keeps_each_class_share_against_counting():
    labels = np.repeat([0, 1, 2, 3], [500, 50, 9, 1])  # imbalanced, one singleton class
    kept, carved = data.stratified_fraction_split(labels, 0.1, seed=0)
    assert sorted(np.concatenate([kept, carved]).tolist()) == list(range(len(labels)))
    # round(0.1 * n) of each class, but never a class's last image
    np.testing.assert_array_equal(np.bincount(labels[carved], minlength=4), [50, 5, 1, 0])


def test_validation_comes_from_what_is_trained_on_excluded_classes_never_in_it():
    bundle = data.load(_config(dataset="mnist_5k", exclude_classes="3"))
    assert 3 not in bundle.val_labels and 3 not in bundle.train_labels
    assert 3 in bundle.test_labels  # the novelties of the leave-one-class-out protocol
    np.testing.assert_array_equal(np.bincount(bundle.val_labels, minlength=10),
                                  [40, 40, 40, 0, 40, 40, 40, 40, 40, 40])
    imbalanced = data.load(_config(dataset="imbalanced_mnist_5k", dominant_class=0,
                                   minor_count=900))
    np.testing.assert_array_equal(np.bincount(imbalanced.val_labels), [40] + [10] * 9)


def test_for_scoring_validation_holds_no_test_image():
    bundle = data.load(_config(dataset="mnist_5k"))
    validation = bundle.for_scoring("validation")
    assert validation.held_out == "validation" and bundle.for_scoring("test") is bundle
    np.testing.assert_array_equal(validation.test_images, bundle.val_images)
    np.testing.assert_array_equal(validation.test_labels, bundle.val_labels)
    assert not _rows(validation.test_images) & _rows(bundle.test_images)
    with pytest.raises(data.DataError, match="no validation split; set --validation_fraction"):
        data.load(_config(dataset="mnist_5k", validation_fraction=0.0)).for_scoring("validation")


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match="--dataset"):
        data.load(_config(dataset="svhn"))


# --- TFDS, mocked -----------------------------------------------------------------------------

def _mark_prepared(data_dir: pathlib.Path, name: str) -> str:
    """Makes the on-disk check pass; mock_data serves the examples."""
    version_dir = data_dir / name / data_check.TFDS_VERSIONS[name]
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text("{}")
    return str(data_dir)


def _fake_split(shape, values_by_split):
    """An `_as_dataset` replacement: split s holds images filled with values_by_split[s]."""
    def as_dataset(self, split, **kwargs):
        images, labels = [], []
        for part in str(split).split("+"):
            for i, v in enumerate(values_by_split[part]):
                images.append(np.full(shape, v, np.uint8))
                labels.append(i % 10)
        return tf.data.Dataset.from_tensor_slices(
            {"image": np.stack(images), "label": np.array(labels, np.int64)})
    return as_dataset


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)),
                                        ("cifar10", (32, 32, 3))])
def test_tfds_sets_keep_train_and_test_apart_in_minus1_1(tmp_path, name, shape):
    data_dir = _mark_prepared(tmp_path, name)
    fake = _fake_split(shape, {"train": [0, 255] * 6, "test": [51] * 4})
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE, as_dataset_fn=fake):
        bundle = data.load(_config(dataset=name, data_dir=data_dir, image_size=shape[0]))
    assert bundle.train_images.shape == (12,) + shape
    assert bundle.test_images.shape == (4,) + shape
    assert bundle.train_images.dtype == np.float32 and bundle.num_classes == 10
    assert sorted(np.unique(bundle.train_images)) == [-1.0, 1.0]
    np.testing.assert_allclose(bundle.test_images, 51 / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(bundle.train_labels, np.arange(12) % 10)


@pytest.mark.parametrize("name,channels", [("mnist", 1), ("cifar10", 3)])
def test_tfds_sets_resize_to_image_size_with_random_mock(tmp_path, name, channels):
    data_dir = _mark_prepared(tmp_path, name)
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        bundle = data.load(_config(dataset=name, data_dir=data_dir, image_size=64))
    assert bundle.image_shape == (64, 64, channels)
    assert len(bundle.train_images) == 6 and len(bundle.test_images) == 6
    assert -1.0 <= bundle.train_images.min() and bundle.train_images.max() <= 1.0


def _fake_flowers(per_split: int):
    """`_as_dataset` for oxford_flowers102: per_split landscape 30x60 images a split, labels 0-11
    in turn; the central square holds the split's value, the sides 60, so a correct crop leaves
    one value an image."""
    def as_dataset(self, split, **kwargs):
        def gen():
            for part in str(split).split("+"):
                for i in range(per_split):
                    image = np.full((30, 60, 3), 60, np.uint8)
                    image[:, 15:45] = FLOWER_SPLIT_VALUES[part]
                    yield {"image": image, "label": np.int64(i % 12)}
        return tf.data.Dataset.from_generator(gen, output_signature={
            "image": tf.TensorSpec((None, None, 3), tf.uint8),
            "label": tf.TensorSpec((), tf.int64)})
    return as_dataset


FLOWER_SPLIT_VALUES = {"train": 255, "validation": 128, "test": 0}


def test_flowers_keeps_labels_0_to_9_of_all_splits_center_cropped(tmp_path):
    data_dir = _mark_prepared(tmp_path, "oxford_flowers102")
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE,
                                as_dataset_fn=_fake_flowers(per_split=120)):
        bundle = data.load(_config(dataset="oxford_flowers102", data_dir=data_dir,
                                   image_size=64, validation_fraction=0.0))
    assert bundle.num_classes == 10 and bundle.image_shape == (64, 64, 3)
    # 10 classes x 3 splits x 10 images; 10 a class held out.
    np.testing.assert_array_equal(np.bincount(bundle.test_labels), [10] * 10)
    np.testing.assert_array_equal(np.bincount(bundle.train_labels), [20] * 10)
    images = np.concatenate([bundle.train_images, bundle.test_images])
    np.testing.assert_allclose(images.min(axis=(1, 2, 3)), images.max(axis=(1, 2, 3)), atol=1e-5)
    expected = {round(v / 127.5 - 1, 4) for v in FLOWER_SPLIT_VALUES.values()}
    assert {round(float(v), 4) for v in images[:, 0, 0, 0]} == expected


def test_flowers_with_too_few_images_a_class_is_a_data_error(tmp_path):
    data_dir = _mark_prepared(tmp_path, "oxford_flowers102")
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE,
                                as_dataset_fn=_fake_flowers(per_split=36)):
        with pytest.raises(data.DataError, match="class 0 has 9 images, too few"):
            data.load(_config(dataset="oxford_flowers102", data_dir=data_dir, image_size=32))


# --- missing data -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", data_check.TFDS_VERSIONS)
@pytest.mark.parametrize("download", ["auto", "never"])
def test_missing_tfds_data_offline_fails_after_one_short_probe_with_guidance(
        tmp_path, monkeypatch, name, download):
    monkeypatch.setattr(data_check, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no_debian"))
    # Offline: nothing listens at the download host (refused at once, like an unknown name).
    monkeypatch.setitem(data_check.DOWNLOAD_URLS, name, "http://127.0.0.1:1/")
    probes = []
    monkeypatch.setattr(data_check, "reachable", lambda url: probes.append(url) or False)
    # What takes minutes offline is TFDS's own retrying download: it must not be asked.
    for entry in ("builder", "load", "data_source"):
        monkeypatch.setattr(tfds, entry, lambda *a, **k: pytest.fail("TFDS was asked"))
    with pytest.raises(data.DataError) as error:
        data.load(_config(dataset=name, data_dir=str(tmp_path), download=download))
    # At most one probe, bounded by its timeout (a second); none with --download=never.
    assert probes == ([] if download == "never" else ["http://127.0.0.1:1/"])
    assert data_check.REACHABILITY_TIMEOUT <= 1
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{name}: no prepared TFDS data set in "
                                                      f"{tmp_path}, and ")
    assert ("--download=never" if download == "never" else "127.0.0.1 cannot be reached") \
        in message
    assert f"tfds build {name}" in message
    if name == "fashion_mnist":
        assert "make data" in message
    assert not any(tmp_path.iterdir())  # nothing written


def test_check_available_needs_no_tensorflow_and_fails_fast(tmp_path):
    # What the CLI runs before importing TensorFlow: a fresh process, which must not load it.
    script = ("import dataclasses, sys\n"
              "from gmmgan_tf import data_check\n"
              "from gmmgan_tf.config import Config\n"
              "data_check.DOWNLOAD_URLS['oxford_flowers102'] = 'http://127.0.0.1:1/'\n"
              f"config = dataclasses.replace(Config(), dataset='imbalanced_oxford_flowers102', "
              f"data_dir={str(tmp_path)!r})\n"
              "try:\n"
              "    data_check.check_available(config)\n"
              "except Exception as e:\n"
              "    sys.exit(f'{type(e).__name__}: {e} | tf: {\"tensorflow\" in sys.modules}')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parents[1])
    assert result.returncode == 1
    assert result.stderr.startswith("DataError: oxford_flowers102: no prepared TFDS data set")
    assert result.stderr.strip().endswith("| tf: False")


def test_check_available_accepts_offline_sets_and_rejects_bad_folders(tmp_path):
    data_check.check_available(_config(dataset="mnist_5k", data_dir=str(tmp_path)))
    data_check.check_available(_config(dataset="imbalanced_mnist_5k", data_dir=str(tmp_path)))
    data_check.check_available(_config(dataset=f"folder:{tmp_path}"))
    with pytest.raises(data.DataError, match="not a readable directory"):
        data_check.check_available(_config(dataset=f"folder:{tmp_path / 'nope'}"))
    _mark_prepared(tmp_path, "cifar10")
    data_check.check_available(_config(dataset="cifar10", data_dir=str(tmp_path)))


def test_tfds_data_of_an_unknown_version_is_found(tmp_path):
    (tmp_path / "mnist" / "1.0.0").mkdir(parents=True)
    (tmp_path / "mnist" / "1.0.0" / "dataset_info.json").write_text("{}")
    assert data_check.prepared_version("mnist", str(tmp_path)) == "1.0.0"
    assert data_check.prepared_version("mnist", str(tmp_path / "other")) is None


# --- Fashion-MNIST from Debian's IDX files ----------------------------------------------------

def _write_idx(path: pathlib.Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.fixture
def idx_dir(tmp_path):
    """A small Fashion-MNIST in Debian's layout: 12 train and 5 test images, gzip'd."""
    rng = np.random.default_rng(0)
    source = tmp_path / "fashion-mnist"
    source.mkdir()
    arrays = {}
    for split, n in (("train", 12), ("test", 5)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        image_stem, label_stem = data_check.IDX_FILES[split]
        _write_idx(source / image_stem, images, compress=True)
        _write_idx(source / label_stem, labels, compress=split == "train")  # plain works too
        arrays[split] = images, labels
    return source, arrays


def test_read_idx_parses_the_header_and_values(idx_dir):
    source, arrays = idx_dir
    images = datasets_tfds.read_idx(source / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(images, arrays["train"][0])
    path = source / "int32-idx"
    values = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + np.array([2, 3], ">u4").tobytes()
                     + values.tobytes())
    np.testing.assert_array_equal(datasets_tfds.read_idx(path), values)


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    truncated = tmp_path / "truncated"
    truncated.write_bytes(bytes([0, 0, 0x08, 1]) + np.array([10], ">u4").tobytes() + b"abc")
    with pytest.raises(data.DataError, match="truncated"):
        datasets_tfds.read_idx(truncated)
    foreign = tmp_path / "foreign.gz"
    foreign.write_bytes(b"not gzip at all")
    with pytest.raises(data.DataError, match="foreign.gz"):
        datasets_tfds.read_idx(foreign)


def test_fashion_mnist_falls_back_to_debian_idx_files(idx_dir, tmp_path, monkeypatch):
    source, arrays = idx_dir
    monkeypatch.setattr(data_check, "DEBIAN_FASHION_MNIST_DIR", str(source))
    bundle = data.load(_config(dataset="fashion_mnist", data_dir=str(tmp_path / "tfds")))
    np.testing.assert_allclose(bundle.train_images, data.to_unit_range(arrays["train"][0]))
    np.testing.assert_array_equal(bundle.test_labels, arrays["test"][1])
    assert bundle.image_shape == (28, 28, 1) and bundle.num_classes == 10


def test_prepare_fashion_mnist_writes_a_tfds_data_set(idx_dir, tmp_path):
    source, arrays = idx_dir
    data_dir = str(tmp_path / "tfds")
    datasets_tfds.prepare_fashion_mnist(data_dir, str(source))
    assert data_check.prepared_version("fashion_mnist", data_dir) == "3.0.1"
    x, y = tfds.as_numpy(tfds.load("fashion_mnist", split="test", data_dir=data_dir,
                                   batch_size=-1, as_supervised=True, download=False))
    # TFDS stores examples in a hashed order: compare as sets of (image, label).
    pairs = lambda xs, ys: sorted(zip((r.tobytes() for r in xs), ys.tolist()))
    assert pairs(x[..., 0], y) == pairs(*arrays["test"])
    bundle = data.load(_config(dataset="fashion_mnist", data_dir=data_dir, image_size=32))
    assert bundle.train_images.shape == (12, 32, 32, 1) and len(bundle.test_images) == 5


# --- imbalanced sets --------------------------------------------------------------------------

def _bundle(per_class: int = 50) -> data.DataBundle:
    labels = np.repeat(np.arange(10), per_class).astype(np.int64)
    images = np.arange(len(labels), dtype=np.float32).reshape(-1, 1, 1, 1)
    return data.DataBundle("toy", images, labels, images[:7], labels[:7], num_classes=10)


def test_imbalanced_total_spreads_minor_count_over_the_other_classes():
    bundle = _bundle()
    out = data.make_imbalanced(bundle, dominant_class=3, minor_count=22, mode="total", seed=0)
    # 22 = 9 * 2 + 4: the first four minor classes (0, 1, 2, 4) get one more.
    np.testing.assert_array_equal(np.bincount(out.train_labels),
                                  [3, 3, 3, 50, 3, 2, 2, 2, 2, 2])
    assert out.name == "imbalanced_toy"
    # Kept images are the original (image, label) pairs; the held-out set is untouched.
    np.testing.assert_array_equal(bundle.train_labels[out.train_images.ravel().astype(int)],
                                  out.train_labels)
    assert out.test_images is bundle.test_images


def test_imbalanced_runs_share_the_balanced_domain_classifier_data():
    from gmmgan_tf.evaluation import classifier_data

    config = _config(dataset="imbalanced_mnist_5k", dominant_class=4)
    imbalanced = data.load(config)
    balanced = classifier_data(imbalanced, config)
    assert balanced.name == "mnist_5k" and len(balanced.train_images) == 3600
    assert len(imbalanced.train_images) < len(balanced.train_images)
    plain = data.load(_config(dataset="mnist_5k"))
    assert classifier_data(plain, _config(dataset="mnist_5k")) is plain


def test_imbalanced_per_class_and_seed():
    bundle = _bundle()
    a = data.make_imbalanced(bundle, 0, 7, "per_class", seed=1)
    np.testing.assert_array_equal(np.bincount(a.train_labels), [50] + [7] * 9)
    b = data.make_imbalanced(bundle, 0, 7, "per_class", seed=1)
    c = data.make_imbalanced(bundle, 0, 7, "per_class", seed=2)
    np.testing.assert_array_equal(a.train_images, b.train_images)
    assert not np.array_equal(a.train_images, c.train_images)


def test_imbalanced_rejects_a_missing_class_and_too_many_images():
    with pytest.raises(ConfigError, match="--dominant_class: class 10 does not exist"):
        data.make_imbalanced(_bundle(), 10, 5, "total", seed=0)
    with pytest.raises(ConfigError, match="--minor_count.*at most 450 in total"):
        data.make_imbalanced(_bundle(), 0, 451, "total", seed=0)
    with pytest.raises(ConfigError, match="--minor_count.*at most 50 per class"):
        data.make_imbalanced(_bundle(), 0, 51, "per_class", seed=0)


def test_imbalanced_mnist_5k_offline_logs_class_counts(caplog):
    with caplog.at_level(logging.INFO):
        bundle = data.load(_config(dataset="imbalanced_mnist_5k", dominant_class=7,
                                   minor_count=90, minor_count_mode="total",
                                   validation_fraction=0.0))
    np.testing.assert_array_equal(np.bincount(bundle.train_labels),
                                  [10] * 7 + [400] + [10] * 2)
    assert len(bundle.test_images) == 1000  # the normal held-out set
    assert "imbalanced_mnist_5k: training class counts" in caplog.text


# --- folder:<path> ----------------------------------------------------------------------------

def _write_png(path: pathlib.Path, image: np.ndarray) -> None:
    path.write_bytes(tf.io.encode_png(image).numpy())


def test_folder_with_class_subfolders_skips_corrupt_files(tmp_path, caplog):
    for c, value in (("cats", 40), ("dogs", 200)):
        (tmp_path / c).mkdir()
        for i in range(12):
            _write_png(tmp_path / c / f"{i}.png", np.full((20 + i, 30, 1), value, np.uint8))
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        bundle = data.load(_config(dataset=f"folder:{tmp_path}", image_size=32,
                                   validation_fraction=0.0))
    assert "skipped 1 unreadable or corrupt image file(s) of 25" in caplog.text
    assert bundle.num_classes == 2 and bundle.image_shape == (32, 32, 1)
    assert len(bundle.train_images) + len(bundle.test_images) == 24
    np.testing.assert_array_equal(np.bincount(bundle.test_labels), [1, 1])
    for images, labels in ((bundle.train_images, bundle.train_labels),
                           (bundle.test_images, bundle.test_labels)):
        expected = np.where(labels == 0, 40, 200) / 127.5 - 1
        np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), expected, atol=1e-5)


def test_flat_folder_is_one_class_and_rgb_if_any_image_is(tmp_path):
    for i in range(4):
        _write_png(tmp_path / f"{i}.png", np.full((16, 16, 1), 10 * i, np.uint8))
    _write_png(tmp_path / "color.png", np.zeros((16, 16, 4), np.uint8))  # RGBA: alpha dropped
    bundle = data.load(_config(dataset=f"folder:{tmp_path}", image_size=28))
    assert bundle.num_classes == 1 and bundle.image_shape == (28, 28, 3)
    assert len(bundle.train_images) == 4 and len(bundle.test_images) == 1
    assert set(bundle.train_labels) == {0}


def test_folder_errors_are_one_line(tmp_path):
    with pytest.raises(data.DataError, match="not a readable directory"):
        data.load(_config(dataset=f"folder:{tmp_path / 'missing'}"))
    with pytest.raises(data.DataError, match="no image files"):
        data.load(_config(dataset=f"folder:{tmp_path}"))
    (tmp_path / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(data.DataError, match="none of its 1 image files could be decoded"):
        data.load(_config(dataset=f"folder:{tmp_path}"))


def test_headline_flowers_command_trains_on_mock_data(tmp_path):
    """`main.py --dataset=oxford_flowers102` end to end on mocked data: 64x64 RGB by default."""
    from conftest import tiny_config
    from gmmgan_tf import train

    data_dir = _mark_prepared(tmp_path / "tfds", "oxford_flowers102")
    config = dataclasses.replace(
        tiny_config(), dataset="oxford_flowers102", image_size=0, data_dir=data_dir,
        workdir=str(tmp_path / "run"), epochs=1, steps_per_epoch=2, eval_quality=False,
        eval_every=0).resolved().validate()
    assert config.image_size == 64
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE,
                                as_dataset_fn=_fake_flowers(per_split=120)):
        metrics = train.train_and_evaluate(config)
    assert 0.0 <= metrics["pcm_acc"] <= 1.0
    assert (tmp_path / "run" / "samples.png").exists()


def test_training_batches_carry_each_images_own_warm_start_targets():
    # Image i is filled with i; its targets row is (i, i + 0.5, -i): after the shuffle each
    # unpacked batch row must still pair them.
    n, shape = 50, (4, 3, 2)
    images = np.repeat(np.arange(n, dtype=np.float32), np.prod(shape)).reshape(n, *shape)
    index = np.arange(n, dtype=np.float32)
    targets = np.stack([index, index + 0.5, -index], axis=1)
    bundle = data.DataBundle("toy", images, np.zeros(n, np.int64), images[:1],
                             np.zeros(1, np.int64), num_classes=1)
    batch = next(iter(bundle.train_dataset(16, seed=3, targets=targets)))
    got_images, got_targets = data_core.unpack_targets(batch, shape)
    assert got_images.shape == (16, *shape) and got_targets.shape == (16, 3)
    ids = got_images.numpy()[:, 0, 0, 0]
    assert not np.array_equal(ids, np.arange(16))  # shuffled
    np.testing.assert_array_equal(got_images.numpy(), images[ids.astype(int)])
    np.testing.assert_array_equal(got_targets.numpy(), targets[ids.astype(int)])
