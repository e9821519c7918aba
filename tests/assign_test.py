"""`--mode=assign`: a folder (or .npy batch) of images sorted by the PCM's components."""
import csv
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

from cli_test import main_py
from conftest import tiny_config
from gmmgan_tf import assign, data, image_input, images, novelty, train
from gmmgan_tf import workdir as wd
from gmmgan_tf.config import ConfigError
from gmmgan_tf.image_input import UnreadableImage
from gmmgan_tf.errors import DataError

N = 50


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained workdir, its model and the held-out digits: (workdir, model, images)."""
    workdir = str(tmp_path_factory.mktemp("run"))
    config = dataclasses.replace(tiny_config(), workdir=workdir, epochs=1, steps_per_epoch=3,
                                 eval_every=0, eval_quality=False)
    train.train_and_evaluate(config)
    _, bundle, model = wd.load_trained_model(workdir)
    return workdir, model, bundle.test_images[:N]


def _write_folder(root, held_out):
    """N held-out digits as PNGs, half of them in a sub-folder, and one corrupt file."""
    names = []
    for i, digit in enumerate(images.to_uint8(held_out)):
        path = root / ("nested/deeper" if i % 2 else ".") / f"digit_{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digit[..., 0]).save(path)
        names.append(os.path.normpath(path))
    (root / "nested" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    return names


def test_assign_a_folder_writes_the_csv_sheets_and_reports_the_broken_file(run, tmp_path):
    workdir, model, held_out = run
    names = _write_folder(tmp_path / "pictures", held_out)
    result = main_py("--mode=assign", f"--workdir={workdir}", f"--images={tmp_path}/pictures")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    broken = os.path.join(str(tmp_path), "pictures", "nested", "broken.png")
    assert f"Skipped 1 of {N + 1} images:" in result.stdout
    assert f"  {broken}: not a decodable PNG/JPEG/BMP/GIF image" in result.stdout

    with open(os.path.join(workdir, "assign", "assignments.csv")) as f:
        rows = list(csv.reader(f))
    k = model.num_components
    assert rows[0] == (["file", "component", "responsibility"] + [f"p_{j}" for j in range(k)]
                       + ["novelty", "is_novel"])
    by_file = {os.path.normpath(r[0]): r for r in rows[1:]}
    assert sorted(by_file) == sorted(names)
    expected = model.responsibilities(held_out)
    got = np.array([[float(x) for x in by_file[name][3:3 + k]] for name in names])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The served novelty score, fitted and calibrated on the run's training and validation
    # images as the export does.
    calibration = novelty.calibrate(model, data.load(tiny_config()))
    served = novelty.score(calibration.scorer, novelty.gmmgan_outputs(model, held_out),
                           calibration.fitted)
    np.testing.assert_allclose([float(by_file[name][-2]) for name in names], served,
                               rtol=1e-4, atol=1e-4)
    novel = [by_file[name][-1] for name in names]
    np.testing.assert_array_equal(novel, np.where(served > calibration.threshold, "1", "0"))
    components = np.array([int(by_file[name][1]) for name in names])
    np.testing.assert_array_equal(components, expected.argmax(1))
    np.testing.assert_allclose([float(by_file[name][2]) for name in names], expected.max(1),
                               atol=1e-5)

    counts = np.bincount(components, minlength=k)
    for c in range(k):
        sheet = Image.open(os.path.join(workdir, "assign", "clusters", f"component_{c}.png"))
        tiles = max(counts[c], 1)  # an empty component gets one blank tile
        rows_, cols = -(-tiles // assign.SHEET_COLUMNS), min(tiles, assign.SHEET_COLUMNS)
        assert sheet.size == (2 * (cols * 29 + 1), 2 * (rows_ * 29 + 1)), c  # 28 px + 1 pad, x2


def test_npy_batches_read_like_the_folder_and_bad_images_are_skipped(run, tmp_path):
    _, model, held_out = run
    shape = model.image_shape
    floats = held_out[:4].copy()
    floats[2, 0, 0, 0] = np.nan
    np.save(tmp_path / "floats.npy", floats)
    np.save(tmp_path / "uint8.npy", images.to_uint8(held_out[:4])[..., 0])  # [N, H, W]
    from_floats = image_input.read([str(tmp_path / "floats.npy")], shape)
    from_uint8 = image_input.read([str(tmp_path / "uint8.npy")], shape)
    assert from_floats.skipped == [(f"{tmp_path}/floats.npy[2]",
                                    "values not finite")]
    assert from_floats.names == [f"{tmp_path}/floats.npy[{i}]" for i in (0, 1, 3)]
    np.testing.assert_allclose(np.stack(from_floats.images), held_out[[0, 1, 3]], atol=1e-5)
    np.testing.assert_allclose(np.stack(from_uint8.images), held_out[:4], atol=1e-5)
    np.save(tmp_path / "nan.npy", np.full((2, 28, 28), np.nan, np.float32))
    with pytest.raises(DataError, match=r"none of the 2 images could be used \(the first, "):
        image_input.read([str(tmp_path / "nan.npy")], shape)
    np.save(tmp_path / "wrong.npy", np.zeros((2, 28, 28, 4), np.uint8))
    with pytest.raises(DataError, match=r"shape \(2, 28, 28, 4\); expected"):
        image_input.read([str(tmp_path / "wrong.npy")], shape)


@pytest.mark.parametrize("batch, fragment", [
    (np.random.default_rng(0).uniform(0, 1, (3, 28, 28)), r"look like \[0, 1\] images"),
    (np.random.default_rng(0).uniform(0, 255, (3, 28, 28)), r"must be in \[-1, 1\]"),
])
def test_npy_floats_outside_the_rule_refuse_the_batch(tmp_path, batch, fragment):
    """[0, 1] or 0..255 floats are a whole batch encoded wrongly: refused with the fix, not
    assigned as other images (nor skipped one by one)."""
    np.save(tmp_path / "batch.npy", batch)
    with pytest.raises(DataError, match=fr"batch.npy': float images {fragment}.*send uint8 pixels"):
        image_input.read([str(tmp_path / "batch.npy")], (28, 28, 1))


def test_channels_follow_the_model():
    grey = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 2, 3)[..., :1]
    rgb = np.concatenate([grey] * 3, -1)
    np.testing.assert_array_equal(image_input.fit_channels(grey, 3), rgb)
    np.testing.assert_array_equal(image_input.fit_channels(rgb, 1), grey)
    colour = np.concatenate([grey, -grey, grey], -1)
    with pytest.raises(UnreadableImage, match="colour image"):
        image_input.fit_channels(colour, 1)


def test_extra_scores_become_columns(tmp_path):
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    assign.write_csv(str(tmp_path / "a.csv"), ["a.png", "b.png"], p, novelty=np.array([1.5, 2.0]))
    rows = list(csv.reader(open(tmp_path / "a.csv")))
    assert rows == [["file", "component", "responsibility", "p_0", "p_1", "novelty"],
                    ["a.png", "1", "0.8", "0.2", "0.8", "1.5"],
                    ["b.png", "0", "0.6", "0.6", "0.4", "2"]]


def test_images_flag_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="--images: --mode=assign needs"):
        tiny_config(mode="assign")
    with pytest.raises(ConfigError, match="--images: .* does not exist"):
        tiny_config(mode="assign", images=str(tmp_path / "missing.npy"))
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="--images: .* is neither a folder nor a .npy file"):
        tiny_config(mode="assign", images=str(tmp_path / "a.png"))


def test_a_run_without_a_validation_split_gets_no_novelty_columns(run, capsys):
    """The assignments do not need the novelty score, so a run trained without a validation
    split (nothing unseen to calibrate on) is assigned, with a warning, instead of refused."""
    _, model, held_out = run
    labels = np.zeros(len(held_out), np.int64)
    legacy = data.DataBundle("old", held_out, labels, held_out, labels, num_classes=10)
    assert assign.novelty_columns(model, legacy, {}) == {}
    assert capsys.readouterr().out.startswith(
        "warning: no novelty columns: old: this run has no validation split")
