"""--model=mfa through the CLI dispatch: fit, interrupt, resume to the same parameters as an
uninterrupted fit, no refit on re-runs, TensorBoard scalars, figures, metrics, evaluate and the
mfa_figures / mfa_pix2pix / mfa_adversarial modes, clear errors."""
import dataclasses
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from gmmgan_tf import cli, data as data_lib, workdir as wd
from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.metrics.ndb import NDB
from gmmgan_tf.mfa import fit as mfa_fit, inference
from gmmgan_tf.mfa import train as mfa_train

K, L, ITERATIONS = 5, 3, 3


def _config(tmp_path, **overrides):
    tmp_path = tmp_path or "unused"
    base = dict(model="mfa", dataset="mnist_5k", workdir=os.path.join(tmp_path, "run"),
                mfa_components=K, mfa_factors=L, mfa_iterations=ITERATIONS, ndb_bins=10,
                ndb_samples=500, metrics_cache_dir=os.path.join(tmp_path, "cache"),
                batch_size=250, pix2pix_epochs=1, adversarial_steps=3)
    base.update(overrides)
    return dataclasses.replace(Config(), **base).resolved().validate()


def _scalars(logdir, tag):
    out = {}
    for file in glob.glob(os.path.join(logdir, "events.*")):
        for event in tf.compat.v1.train.summary_iterator(file):
            for value in event.summary.value:
                if value.tag == tag:
                    out[event.step] = float(tf.make_ndarray(value.tensor))
    return out


@pytest.fixture(scope="module", autouse=True)
def small_data():
    """mnist_5k loaded once, cut to 1,000 training and 300 held-out digits (test speed)."""
    full = data_lib.load(_config(None))
    small = dataclasses.replace(full, train_images=full.train_images[:1000],
                                train_labels=full.train_labels[:1000],
                                test_images=full.test_images[:300],
                                test_labels=full.test_labels[:300])
    mp = pytest.MonkeyPatch()
    mp.setattr(data_lib, "load", lambda config: small)
    yield small
    mp.undo()


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_data):
    """An EM fit interrupted after its first M-step, then resumed by the same command."""
    tmp_path = tmp_path_factory.mktemp("mfa")
    config = _config(tmp_path)
    real_m_step = mfa_fit.m_step
    calls = []

    def interrupting_m_step(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_m_step(*args)

    mp = pytest.MonkeyPatch()
    mp.setattr(mfa_fit, "m_step", interrupting_m_step)
    with pytest.raises(KeyboardInterrupt):
        cli.dispatch(config)
    mp.undo()
    assert not os.path.exists(os.path.join(config.workdir, "metrics.json"))
    cli.dispatch(config)
    return config


def test_resumed_fit_equals_an_uninterrupted_one(run, small_data):
    bundle = small_data
    reference = mfa_fit.init_mfa(bundle.train_images, K, L, seed=run.seed)
    history = mfa_fit.fit_em(reference, bundle.train_images, ITERATIONS)
    _, _, model = mfa_train.load_trained_mfa(dataclasses.replace(run, mode="evaluate"))
    for name, value in reference.parameters().items():
        np.testing.assert_allclose(model.parameters()[name], value, rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    logged = _scalars(os.path.join(run.workdir, "tensorboard", "mfa"), "mfa/log_likelihood")
    assert sorted(logged) == list(range(ITERATIONS + 1))
    np.testing.assert_allclose([logged[i] for i in range(ITERATIONS + 1)], history, rtol=1e-4)


def test_workdir_holds_figures_and_ndb_metrics(run, small_data):
    names = ("flags.cfg", "config.json", "samples.png", "outliers.png", "inpainting.png",
             "components.png", "reconstructions.png", "metrics.json")
    for name in names:
        assert os.path.getsize(os.path.join(run.workdir, name)) > 0, name
    metrics = json.load(open(os.path.join(run.workdir, "metrics.json")))
    # Independent recomputation from the cached bins and regenerated noise-free samples.
    bundle = small_data
    _, _, model = mfa_train.load_trained_mfa(dataclasses.replace(run, mode="evaluate"))
    ndb = NDB.load(glob.glob(os.path.join(run.metrics_cache_dir, "ndb_mnist_5k_*k10_*.npz"))[0])
    samples = np.clip(model.sample(500, seed=0, noise=False)[0].numpy(), -1, 1)
    assert metrics["ndb_over_k"] == ndb.evaluate(samples)["ndb_over_k"]
    assert metrics["ref_ndb_over_k"] == ndb.evaluate(bundle.test_images)["ndb_over_k"]
    assert metrics["ndb_bins"] == 10 and metrics["ndb_samples"] == 500
    assert 0 <= metrics["ndb_js"] and 0 <= metrics["noisy_ndb_over_k"] <= 1
    np.testing.assert_allclose(metrics["heldout_mean_log_likelihood"],
                               inference.log_likelihood(model, bundle.test_images).mean(),
                               rtol=1e-5)


def test_rerun_does_not_refit(run, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("refitted")

    monkeypatch.setattr(mfa_fit, "init_mfa", fail)
    monkeypatch.setattr(mfa_fit, "fit", fail)
    before = json.load(open(os.path.join(run.workdir, "metrics.json")))
    cli.dispatch(run)
    assert json.load(open(os.path.join(run.workdir, "metrics.json"))) == before


def test_evaluate_figures_and_pix2pix_modes(run):
    cli.dispatch(dataclasses.replace(run, mode="evaluate", ndb_bins=12))
    scores = json.load(open(os.path.join(run.workdir, "eval", "metrics.json")))
    assert scores["ndb_bins"] == 12 and 0 <= scores["ref_ndb_over_k"] <= 1
    cli.dispatch(dataclasses.replace(run, mode="mfa_figures"))
    out = os.path.join(run.workdir, "figures")
    for name in ("samples.png", "samples_with_noise.png", "outliers.png", "inpainting.png",
                 "components.png", "reconstructions.png", "responsibilities.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    arrays = np.load(os.path.join(out, "inference.npz"))
    assert arrays["responsibilities"].shape == (300, K)
    np.testing.assert_allclose(arrays["responsibilities"].sum(axis=1), 1.0, rtol=1e-5)
    cli.dispatch(dataclasses.replace(run, mode="mfa_pix2pix"))
    scores = json.load(open(os.path.join(run.workdir, "pix2pix", "metrics.json")))
    for key in ("mfa_sharpness", "mfa_pix2pix_sharpness", "mfa_ndb_over_k",
                "mfa_pix2pix_ndb_over_k", "heldout_l1_pix2pix"):
        assert np.isfinite(scores[key]), key
    assert os.path.exists(os.path.join(run.workdir, "pix2pix", "samples.png"))
    assert tf.train.latest_checkpoint(os.path.join(run.workdir, "pix2pix", "checkpoints"))


def test_adversarial_mode(run):
    # This command's --adversarial_steps, not the fitted run's.
    cli.dispatch(dataclasses.replace(run, mode="mfa_adversarial", adversarial_steps=2))
    out = os.path.join(run.workdir, "adversarial")
    scores = json.load(open(os.path.join(out, "metrics.json")))
    assert scores["adversarial_steps"] == 2 and scores["ndb_bins"] == 10
    for name in ("mfa", "adversarial"):
        for key in ("ndb_over_k", "ndb_js", "noisy_ndb_over_k", "noisy_ndb_js",
                    "heldout_mean_log_likelihood"):
            assert np.isfinite(scores[f"{name}_{key}"]), f"{name}_{key}"
    for key in ("critic_loss", "generator_loss", "mean_abs_mu_change"):
        assert np.isfinite(scores[key]), key
    assert scores["mean_abs_mu_change"] > 0
    # The fitted MFA's row is the one --mode=train wrote (same bins, samples and seed).
    trained = json.load(open(os.path.join(run.workdir, "metrics.json")))
    assert scores["mfa_ndb_over_k"] == trained["ndb_over_k"]
    assert scores["mfa_noisy_ndb_over_k"] == trained["noisy_ndb_over_k"]
    np.testing.assert_allclose(scores["mfa_heldout_mean_log_likelihood"],
                               trained["heldout_mean_log_likelihood"], rtol=1e-5)
    assert os.path.getsize(os.path.join(out, "samples.png")) > 0


def test_clear_errors(run, tmp_path):
    with pytest.raises(ConfigError, match="--mode=sample: .* holds an MFA"):
        cli.dispatch(dataclasses.replace(run, mode="sample"))
    with pytest.raises(ConfigError, match="--mfa_factors: 784 factors"):
        cli.dispatch(_config(tmp_path, mfa_factors=784))
    with pytest.raises(ConfigError, match="no trained run"):
        cli.dispatch(_config(tmp_path, workdir=str(tmp_path / "empty"), mode="mfa_figures"))
    with pytest.raises(ConfigError, match="--adversarial_steps: must be >= 1"):
        _config(tmp_path, adversarial_steps=0)
    gan = dataclasses.replace(Config(), workdir=str(tmp_path / "gan"))
    wd.save_config(gan)
    with pytest.raises(ConfigError, match="--mode=mfa_adversarial: .* holds a --model=gmmgan run"):
        cli.dispatch(dataclasses.replace(gan, mode="mfa_adversarial"))
