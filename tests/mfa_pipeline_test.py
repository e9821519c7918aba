"""MFA driver and figures: fit on small synthetic images, write the PNGs and the report."""
import dataclasses
import json

import matplotlib.image
import numpy as np
import pytest

from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.mfa import inference, pipeline, plots
from gmmgan_tf.mfa.model import MFA


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    truth = MFA(np.full(3, 1 / 3), rng.uniform(-0.8, 0.8, (3, 36)), rng.normal(size=(3, 36, 2))
                * 0.3, np.full((3, 36), 0.01))
    return np.clip(truth.sample(600, seed=1)[0].numpy(), -1, 1).reshape(600, 6, 6, 1)


@pytest.mark.parametrize("method,iterations", [("em", 3), ("sgd", 20)])
def test_fit_mfa_on_images(images, method, iterations):
    seen = []
    model, history = pipeline.fit_mfa_on_images(
        images[:500], 3, 2, method=method, iterations=iterations, batch_size=128,
        callback=lambda step, value: seen.append(value))
    assert (model.num_components, model.num_factors, model.dim) == (3, 2, 36)
    assert history == seen and len(history) == iterations + (method == "em")
    assert np.all(np.isfinite(history))
    with pytest.raises(ValueError, match="method"):
        pipeline.fit_mfa_on_images(images, 3, 2, method="adam")


def test_fit_mfa_from_config_uses_the_mfa_flags(images):
    config = dataclasses.replace(Config(), mfa_components=2, mfa_factors=3, mfa_fit="sgd",
                                 mfa_iterations=4, batch_size=50, mfa_init="ppca").validate()
    model, history = pipeline.fit_mfa_from_config(config, images[:200])
    assert (model.num_components, model.num_factors, len(history)) == (2, 3, 4)


def test_write_figures(images, tmp_path):
    model, _ = pipeline.fit_mfa_on_images(images[:500], 3, 2, iterations=5)
    test = images[500:].copy()
    test[7] = 1.0 - test[7]  # an inverted image: the least likely one
    report = pipeline.write_figures(model, images[:500], str(tmp_path), test_images=test,
                                    num_samples=20, num_outliers=5, num_inpaint=4)
    for name in ("samples", "outliers", "inpainting", "components"):
        png = matplotlib.image.imread(report["figures"][name])
        assert png.ndim == 3 and png.shape[0] > 50 and png.std() > 0.01, name
    assert report["outlier_indices"][0] == 7
    np.testing.assert_array_equal(report["outlier_indices"], inference.outliers(model, test, 5)[0])
    # The model's fill beats filling the hidden block with the training mean.
    hidden = ~np.broadcast_to(pipeline.centre_block_mask((6, 6, 1)), test[:4].shape)
    mean_fill = np.broadcast_to(images[:500].mean(axis=0), test[:4].shape)
    mean_rmse = np.sqrt(np.mean((mean_fill[hidden] - test[:4][hidden]) ** 2))
    assert report["inpainting_hidden_pixel_rmse"] < 0.8 * mean_rmse
    assert json.loads((tmp_path / "mfa_report.json").read_text())["num_components"] == 3


def test_centre_block_mask_and_grid_errors(tmp_path):
    mask = pipeline.centre_block_mask((4, 6, 1))
    assert mask.sum() == 24 - 2 * 3 and not mask[1:3, 1:4].any()
    with pytest.raises(ValueError, match="cannot show"):
        plots.image_grid(np.zeros((3, 10)), (3, 3), str(tmp_path / "x.png"))


@pytest.mark.parametrize("bad, flag", [
    (dict(mfa_fit="adam"), "--mfa_fit"), (dict(mfa_factors=0), "--mfa_factors"),
    (dict(mfa_fit="sgd", mfa_iterations=0), "--mfa_iterations"),
    (dict(mfa_noise_floor=0.0), "--mfa_noise_floor")])
def test_config_rejects_bad_mfa_options(bad, flag):
    with pytest.raises(ConfigError, match=flag):
        dataclasses.replace(Config(), **bad).validate()
