"""Algorithm 1: which variables each line moves, and that a few real steps learn."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from gmmgan_tf.errors import ConfigError
from gmmgan_tf.gan import GMMGAN
from gmmgan_tf.networks import build_networks

IMAGE_SHAPE = (28, 28, 1)


def easy_batch(n=6, seed=0):
    """Bright squares on dark background at three positions: easy for D and C."""
    rng = np.random.default_rng(seed)
    images = -np.ones((n, 28, 28, 1), np.float32)
    for i in range(n):
        y, x = [(2, 2), (14, 14), (2, 16)][i % 3]
        images[i, y:y + 10, x:x + 10] = 1.0 - 0.1 * rng.random()
    return images


def make_model(**overrides):
    model = GMMGAN(tiny_config(**overrides), IMAGE_SHAPE)
    model.compile()
    return model


def changed_groups(model, batch):
    before = {g: [v.numpy().copy() for v in vs] for g, vs in model.variable_groups().items()}
    model.train_step(tf.constant(batch))
    return {g for g, vs in model.variable_groups().items()
            if any(not np.array_equal(b, v.numpy()) for b, v in zip(before[g], vs))}


@pytest.mark.parametrize("weights, flags, expected", [
    # Line 11 and 12-13: L^adversarial moves D and G only (C gets it only literally, below).
    ((1, 0, 0), {}, {"d", "g"}),
    ((1, 0, 0), {"pcm_adversarial_update": True, "discriminator_heads": "single"},
     {"d", "g", "c"}),
    # Line 14: L^{x^,x} moves the PCM only.
    ((0, 0, 1), {}, {"c"}),
    # Line 15: L^{x^,z} moves the PCM and the prior (and G only with --generator_consistency).
    ((0, 1, 0), {}, {"c", "prior"}),
    ((0, 1, 0), {"generator_consistency": True}, {"c", "prior", "g"}),
])
def test_each_line_moves_exactly_its_variable_groups(weights, flags, expected):
    adv, xz, xx = weights
    model = make_model(adversarial_weight=adv, latent_consistency_weight=xz,
                       real_fake_consistency_weight=xx, **flags)
    assert changed_groups(model, easy_batch()) == expected


@pytest.mark.parametrize("model_name, expected", [("gmm", {"d", "g", "prior"}),
                                                  ("gaussian", {"d", "g"})])
def test_baselines_train_d_and_g_and_learn_a_mixture_prior_adversarially(model_name, expected):
    model = make_model(model=model_name)
    assert model.pcm is None
    assert changed_groups(model, easy_batch()) == expected


def test_shared_encoder_is_one_set_of_weights():
    model = make_model(shared_encoder=True)
    separate = make_model()
    assert model.pcm.encoder is model.discriminator.encoder
    assert {id(v) for v in model.pcm.encoder.variables} <= {
        id(v) for v in model.discriminator.trainable_variables}
    assert model.count_params() == (separate.count_params()
                                    - separate.pcm.encoder.count_params())
    assert separate.pcm.encoder.count_params() > 0


@pytest.mark.parametrize("model_name", ["gmmgan", "gaussian"])
def test_component_c_with_noise_eps_is_generated_from_mu_c_plus_sigma_c_eps(model_name):
    model = make_model(model=model_name, prior_mean_init_std=2.0)
    if model.config.uses_mixture_prior:  # scales differ between components (init: equal)
        model.prior.raw_scales.assign(np.random.default_rng(2).normal(size=(3, 4)))
    floor = model.config.prior_sigma_floor if model.config.uses_mixture_prior else 0.0
    means = model.prior.means.numpy()
    scales = np.log1p(np.exp(model.prior.raw_scales.numpy())) + floor  # softplus, by hand
    components = np.array([2, 0, 1, 2, 1])
    eps = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    if model_name == "gaussian":  # one N(0, I) for every requested component
        assert means.shape == (1, 4) and np.all(means == 0) and np.allclose(scales, 1)
    row = np.zeros_like if model_name == "gaussian" else np.asarray
    z = means[row(components)] + scales[row(components)] * eps
    np.testing.assert_allclose(model.latents(components, eps).numpy(), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.generate(components, eps, batch_size=2),
                               model.generator(z, training=False).numpy(), atol=1e-5)
    # sample(): component-major, with N(0, I) noise from numpy's generator of that seed.
    images, ids = model.sample(2, seed=1)
    np.testing.assert_array_equal(ids, [0, 0, 1, 1, 2, 2])
    eps = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    by_hand = model.generator(means[row(ids)] + scales[row(ids)] * eps, training=False).numpy()
    np.testing.assert_allclose(images, by_hand, atol=1e-5)


def test_sample_from_prior_draws_components_by_their_weights():
    """What the model generates: component k in proportion alpha_k (as the imbalanced study's
    class shares need), each image generated from its component's latent."""
    model = make_model(prior_mean_init_std=2.0)
    alpha = np.array([0.7, 0.2, 0.1])
    model.prior.mixture_logits.assign(np.log(alpha))
    _, ids = model.sample_from_prior(20000, seed=0)
    np.testing.assert_allclose(np.bincount(ids, minlength=3) / 20000, alpha, atol=0.01)
    images, ids = model.sample_from_prior(6, seed=1)
    rng = np.random.default_rng(1)
    expected_ids = np.sort(rng.choice(3, 6, p=alpha))
    eps = rng.standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(images, model.generate(expected_ids, eps), atol=1e-5)


def test_a_few_dozen_steps_lower_d_and_c_losses():
    model = make_model(num_components=3, latent_dim=4, learning_rate_c=3e-3)
    history = {"d_loss": [], "latent_consistency_loss": []}
    for step in range(40):
        logs = model.train_step(tf.constant(easy_batch(seed=step)))
        for name in model.trackers.values():
            name.reset_state()
        for key in history:
            history[key].append(float(logs[key]))
    for key, values in history.items():
        assert np.mean(values[-5:]) < np.mean(values[:5]), (key, values[:5], values[-5:])


def test_the_mode_regulariser_trains_its_encoder_with_g_and_learns_to_reconstruct():
    model = make_model(num_components=3, latent_dim=4, reconstruction_weight=1.0,
                       adversarial_weight=0, learning_rate_g=3e-3)
    encoder = {id(v) for v in model.noise_encoder.trainable_variables}
    assert encoder and encoder <= {id(v) for v in model.variable_groups()["g"]}
    assert changed_groups(model, easy_batch()) == {"g", "c", "prior"}
    assert_training_halves(model, "reconstruction_loss")
    assert_needs_the_pcm_and_a_weight_of_at_least_0("reconstruction_weight")


def assert_training_halves(model, loss_name, steps=40):
    """`steps` train steps on easy batches halve the logged `loss_name` (mean of 5 steps)."""
    values = []
    for step in range(steps):
        logs = model.train_step(tf.constant(easy_batch(seed=step)))
        model.trackers[loss_name].reset_state()
        values.append(float(logs[loss_name]))
    assert np.mean(values[-5:]) < 0.5 * np.mean(values[:5]), (values[:5], values[-5:])


def assert_needs_the_pcm_and_a_weight_of_at_least_0(flag):
    with pytest.raises(ConfigError, match=f"--{flag}: needs the PCM"):
        tiny_config(model="gaussian", **{flag: 1.0})
    with pytest.raises(ConfigError, match=f"--{flag}: must be >= 0"):
        tiny_config(**{flag: -1.0})


def test_the_coverage_term_brings_the_fakes_to_the_real_images():
    model = make_model(num_components=3, latent_dim=4, coverage_weight=1.0,
                       adversarial_weight=0, learning_rate_g=3e-3)
    assert_training_halves(model, "coverage_loss")
    assert_needs_the_pcm_and_a_weight_of_at_least_0("coverage_weight")
    with pytest.raises(ConfigError, match=r"--coverage_threshold: must be in \[0, 1\)"):
        tiny_config(coverage_weight=1.0, coverage_threshold=1.0)


def test_responsibilities_are_distributions():
    model = make_model()
    probs = model.responsibilities(easy_batch())
    assert probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (64, 3)])
def test_networks_make_the_image_size_they_are_asked_for(size, channels):
    g, d, c = build_networks((size, size, channels), latent_dim=4, num_components=3,
                             discriminator_units=3, with_pcm=True, shared_encoder=False,
                             width_multiplier=0.125, bn_momentum=0.9)
    assert g(tf.zeros((2, 4))).shape == (2, size, size, channels)
    assert d(tf.zeros((2, size, size, channels))).shape == (2, 3)
    assert c(tf.zeros((2, size, size, channels))).shape == (2, 3)


def test_wgan_gp_gaussian_step_trains_critic_and_generator():
    model = make_model(model="gaussian", gan_loss="wgan_gp")
    assert changed_groups(model, easy_batch()) == {"d", "g"}
    assert np.isfinite(float(model.trackers["d_loss"].result()))
    with pytest.raises(ConfigError, match="--gan_loss: wgan_gp .* --model=gaussian"):
        tiny_config(model="gmmgan", gan_loss="wgan_gp")
