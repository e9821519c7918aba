"""--ema_decay: G's moving average follows NumPy's update, and everything generated for the user
(GMMGAN.generate/sample/sample_from_prior, samples.png, evaluation, --mode=sample, interpolate and
export) comes from it. The average is made to generate visibly other images than G, so that a
path that uses G shows."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from gmmgan_tf import data as data_lib
from gmmgan_tf import evaluation, export, images, modes, run_options, train, workdir as wd
from gmmgan_tf.data_core import DataBundle
from gmmgan_tf.errors import ConfigError
from gmmgan_tf.gan import GMMGAN
from gmmgan_tf.metrics import report

IMAGE_SHAPE = (28, 28, 1)
K, D = 3, 4  # tiny_config's components and latent dimension


def values(variables):
    return [v.numpy().copy() for v in variables]


def test_the_average_starts_at_g_and_follows_numpy_after_every_g_step():
    model = GMMGAN(tiny_config(ema_decay=0.9), IMAGE_SHAPE)
    model.compile()
    g, ema = model.generator.variables, model.generator_ema.variables
    # Variable by variable (BatchNorm's moving statistics too), none of them trained.
    assert [v.path.rsplit("/", 1)[1] for v in g] == [v.path.rsplit("/", 1)[1] for v in ema]
    assert not model.generator_ema.trainable_variables
    for a, b in zip(values(g), values(ema)):
        np.testing.assert_array_equal(a, b)
    batch = tf.random.uniform((6, *IMAGE_SHAPE), -1, 1, seed=0)
    # d_n = min(d, n / (n + 9)) after G's n-th step: 0.1 after the first, d = 0.9 after the 1000th.
    for done, decay in ((0, 0.1), (999, 0.9)):
        model.optimizers["g"].iterations.assign(done)
        before, g_before = values(ema), values(g)
        model.train_step(batch)
        assert all(not np.array_equal(a, b) for a, b in zip(g_before, values(g)))  # G moved
        for average, old, new in zip(ema, before, values(g)):
            np.testing.assert_allclose(average.numpy(), decay * old + (1 - decay) * new,
                                       rtol=1e-5, atol=1e-7, err_msg=average.path)


def distinguishable(model):
    """Shifts the average's output bias by 1, so that it generates other images than G."""
    bias = model.generator_ema.variables[-1]
    assert bias.path.endswith("bias")
    bias.assign(bias + 1.0)


def ema_and_g(model, components, eps):
    """(images of the average, images of G) for these components and noise."""
    z = model.latents(components, eps)
    ema, g = (net(z, training=False).numpy() for net in (model.generator_ema, model.generator))
    assert np.abs(ema - g).max() > 0.1
    return ema, g


def sample_draws(per_component, seed):
    """GMMGAN.sample's components and noise."""
    components = np.repeat(np.arange(K), per_component)
    return components, np.random.default_rng(seed).standard_normal((len(components), D)).astype(
        np.float32)


def evaluated_fakes(model, config, monkeypatch, num=9):
    """(the images evaluation scores, their components, their noise): sample_from_prior's draws,
    component k with probability alpha_k, redrawn here in NumPy."""
    scored = {}
    monkeypatch.setattr(evaluation, "cached_ndb", lambda *args: None)
    monkeypatch.setattr(evaluation, "load_or_train", lambda *args: None)
    monkeypatch.setattr(report, "evaluate_samples",
                        lambda train_images, test_images, fakes, **kw: scored.update(fakes=fakes)
                        or {})
    evaluation.evaluate(model, bundle(), config, num_fakes=num)
    alpha = tf.nn.softmax(model.prior.mixture_logits).numpy().astype(np.float64)
    rng = np.random.default_rng(config.seed)
    drawn = np.sort(rng.choice(K, num, p=alpha / alpha.sum()))
    return scored["fakes"], drawn, rng.standard_normal((num, D)).astype(np.float32)


def bundle(n=40):
    rng = np.random.default_rng(5)
    pictures = rng.uniform(-1, 1, (n, *IMAGE_SHAPE)).astype(np.float32)
    labels = np.arange(n) % K
    # The export calibrates the novelty threshold on a validation split: the same pictures.
    return DataBundle("stub", pictures, labels, pictures, labels, K, val_images=pictures,
                      val_labels=labels)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workdir holding one trained step of a model whose average differs from G."""
    config = dataclasses.replace(tiny_config(ema_decay=0.9),
                                 workdir=str(tmp_path_factory.mktemp("ema_run")))
    model = GMMGAN(config, IMAGE_SHAPE)
    model.compile()
    model.train_step(tf.random.uniform((6, *IMAGE_SHAPE), -1, 1, seed=1))
    distinguishable(model)
    wd.save_config(config)
    wd.Checkpointer(model, config.workdir).save(1)
    return config, model


def test_samples_and_evaluation_come_from_the_average(trained, monkeypatch):
    config, model = trained
    components, eps = sample_draws(config.sample_rows, config.seed)
    want, g = ema_and_g(model, components, eps)
    np.testing.assert_allclose(model.generate(components, eps, batch_size=4), want, atol=1e-6)
    got, ids = model.sample(config.sample_rows, seed=config.seed)
    np.testing.assert_array_equal(ids, components)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # samples.png and the TensorBoard grid of every epoch.
    np.testing.assert_array_equal(train.sample_grid(model, config),
                                  images.grid(want, K, config.sample_rows))
    # Evaluation's sample quality scores sample_from_prior's draws.
    fakes, drawn, noise = evaluated_fakes(model, config, monkeypatch)
    want, g = ema_and_g(model, drawn, noise)
    np.testing.assert_allclose(fakes, want, atol=1e-6)


def test_evaluate_with_raw_generator_scores_g_itself(trained, monkeypatch):
    config, _ = trained
    monkeypatch.setattr(data_lib, "load", lambda config: bundle())
    _, _, model = wd.load_trained_model(config.workdir, raw_generator=True)
    components, eps = sample_draws(config.sample_rows, config.seed)
    _, g = ema_and_g(model, components, eps)  # they differ, so the check is not vacuous
    np.testing.assert_allclose(model.sample(config.sample_rows, seed=config.seed)[0], g,
                               atol=1e-6)


def test_sample_and_interpolate_modes_draw_from_the_restored_average(trained, monkeypatch):
    config, model = trained
    monkeypatch.setattr(data_lib, "load", lambda config: bundle())
    written = {}
    monkeypatch.setattr(images, "save_png", lambda path, image: written.update({path: image}))
    modes.sample(dataclasses.replace(config, mode="sample"))
    components, eps = sample_draws(config.sample_rows, config.seed)
    want, g = ema_and_g(model, components, eps)
    [(path, grid)] = written.items()
    assert path.endswith(f"samples_seed{config.seed}.png")
    np.testing.assert_array_equal(grid, images.grid(want, K, config.sample_rows))
    written.clear()
    modes.interpolate(dataclasses.replace(config, mode="interpolate"))
    noise = np.random.default_rng(config.seed).standard_normal(D).astype(np.float32)
    steps = modes.INTERPOLATION_STEPS
    for corners, name, rows in (([0, 1], "interpolate_2way.png", 1),
                                ([0, 1, 2], "interpolate_3way.png", steps)):
        z = modes.interpolation_latents(model, corners, noise, steps).astype(np.float32)
        want = model.generator_ema(z, training=False).numpy()
        assert np.abs(want - model.generator(z, training=False).numpy()).max() > 0.1
        grid = next(image for path, image in written.items() if path.endswith(name))
        # The 2-way grid's first row runs from component 0 to 1.
        np.testing.assert_array_equal(grid[:rows * (IMAGE_SHAPE[0] + 1) + 1],
                                      images.grid(want, rows, steps))


def test_the_exported_generator_is_the_restored_average(trained, monkeypatch, tmp_path):
    config, model = trained
    monkeypatch.setattr(data_lib, "load", lambda config: bundle())
    export.export(dataclasses.replace(config, mode="export", export_dir=str(tmp_path)))
    served = tf.saved_model.load(str(tmp_path / export.GENERATOR / "1")).signatures
    components, eps = np.array([2, 0, 1], np.int32), sample_draws(1, 3)[1]
    want, g = ema_and_g(model, components, eps)
    got = served["sample_component"](component=tf.constant(components), eps=tf.constant(eps))
    np.testing.assert_allclose(got["images"].numpy(), want, atol=1e-5)
    z = model.latents(components, eps)
    got = served["serving_default"](z=z)["images"].numpy()
    np.testing.assert_allclose(got, model.generator_ema(z, training=False).numpy(), atol=1e-5)


def test_ema_decay_must_be_below_one():
    assert GMMGAN(tiny_config(), IMAGE_SHAPE).generator_ema is None  # off by default
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=r"--ema_decay: must be in \[0, 1\)"):
            tiny_config(ema_decay=bad)


# --- --sampling_temperature: tau scales the noise of everything generated for the user --------
TAU = 1.5


def tempered(model, components, eps, tau):
    """The average's images of mu_c + sigma_c * tau * eps, z computed in NumPy."""
    means = model.prior.means.numpy()[components]
    scales = model.prior.scales().numpy()[components]
    return model.generator_ema(means + scales * tau * eps, training=False).numpy()


@pytest.fixture(scope="module")
def tempered_run(tmp_path_factory):
    """A trained run (as `trained`) saved with --sampling_temperature=1.5."""
    config = dataclasses.replace(tiny_config(ema_decay=0.9, sampling_temperature=TAU),
                                 workdir=str(tmp_path_factory.mktemp("tau_run")))
    model = GMMGAN(config, IMAGE_SHAPE)
    model.compile()
    model.train_step(tf.random.uniform((6, *IMAGE_SHAPE), -1, 1, seed=1))
    wd.save_config(config)
    wd.Checkpointer(model, config.workdir).save(1)
    return config, model


def test_samples_evaluation_interpolation_and_export_use_the_temperature(tempered_run,
                                                                          monkeypatch, tmp_path):
    config, model = tempered_run
    components, eps = sample_draws(config.sample_rows, config.seed)
    want = tempered(model, components, eps, TAU)
    assert np.abs(want - tempered(model, components, eps, 1.0)).max() > 1e-2  # tau shows
    np.testing.assert_allclose(model.sample(config.sample_rows, seed=config.seed)[0], want,
                               atol=1e-5)
    fakes, drawn, noise = evaluated_fakes(model, config, monkeypatch)
    np.testing.assert_allclose(fakes, tempered(model, drawn, noise, TAU), atol=1e-5)
    # Interpolation's corners are the tempered latents of the same noise.
    noise = sample_draws(1, 3)[1][0]
    anchors = modes.interpolation_latents(model, [0, 1], noise, 2)
    np.testing.assert_allclose(anchors[[0, -1]], model.prior.means.numpy()[[0, 1]]
                               + model.prior.scales().numpy()[[0, 1]] * TAU * noise, atol=1e-5)
    # The exported sample_component: a served request draws what the run scored.
    monkeypatch.setattr(data_lib, "load", lambda config: bundle())
    export.export(dataclasses.replace(config, mode="export", sampling_temperature=0.0,
                                      export_dir=str(tmp_path)))
    served = tf.saved_model.load(str(tmp_path / export.GENERATOR / "1")).signatures
    got = served["sample_component"](component=tf.constant(components, tf.int32),
                                     eps=tf.constant(eps))
    np.testing.assert_allclose(got["images"].numpy(), want, atol=1e-5)


def test_a_mode_uses_the_runs_temperature_unless_the_command_sets_one(tempered_run,
                                                                        monkeypatch):
    config, model = tempered_run
    monkeypatch.setattr(data_lib, "load", lambda config: bundle())
    components, eps = sample_draws(config.sample_rows, config.seed)
    for given, tau in ((0.0, TAU), (1.0, 1.0), (2.0, 2.0)):
        command = dataclasses.replace(config, mode="sample", sampling_temperature=given)
        loaded, _, restored = wd.load_trained_model(config.workdir,
                                                    **run_options.overrides(command))
        assert loaded.noise_temperature == tau
        np.testing.assert_allclose(restored.sample(config.sample_rows, seed=config.seed)[0],
                                   tempered(model, components, eps, tau), atol=1e-5)


def test_training_fakes_and_a_run_without_the_option_keep_tau_one(tmp_path):
    model = GMMGAN(tiny_config(sampling_temperature=TAU), IMAGE_SHAPE)
    components, eps = np.array([0, 2]), sample_draws(1, 4)[1][:2]
    np.testing.assert_allclose(model.latents(components, eps), model.prior.means.numpy()[
        components] + model.prior.scales().numpy()[components] * eps, atol=1e-6)
    # A config.json written before the option existed reads back as tau = 1.
    saved = dataclasses.asdict(tiny_config())
    del saved["sampling_temperature"]
    assert run_options.config_from_saved(saved).noise_temperature == 1.0


@pytest.mark.parametrize("bad", [-0.5, float("inf"), float("nan")])
def test_a_bad_temperature_is_one_line(bad):
    with pytest.raises(ConfigError, match=r"--sampling_temperature: must be a number >= 0"):
        tiny_config(sampling_temperature=bad)
