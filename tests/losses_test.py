"""Each loss against a NumPy reference on small inputs."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from gmmgan_tf import losses


def np_mutual_information(p, q):
    joint = p.T @ q / len(p)
    joint = (joint + joint.T) / 2
    joint = np.maximum(joint, losses.JOINT_FLOOR)
    joint /= joint.sum()
    row, col = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    return float(np.sum(joint * np.log(joint / (row * col))))


def np_log_sigmoid(x):
    return -np.logaddexp(0, -x)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_mutual_information_of_independent_pairs_is_zero():
    p = np.full((8, 4), 0.25, np.float32)
    assert float(losses.mutual_information(p, p)) == pytest.approx(0.0, abs=1e-6)


def test_mutual_information_of_identical_balanced_one_hots_is_log_k():
    k = 5
    p = np.eye(k, dtype=np.float32)[np.arange(20) % k]
    assert float(losses.mutual_information(p, p)) == pytest.approx(np.log(k), rel=1e-4)


def test_mutual_information_matches_numpy_on_random_probabilities():
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=(16, 4))).astype(np.float32)
    q = softmax(rng.normal(size=(16, 4))).astype(np.float32)
    assert float(losses.mutual_information(p, q)) == pytest.approx(np_mutual_information(p, q),
                                                                  rel=1e-4)


def test_soft_cross_entropy_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 3)).astype(np.float32)
    target = softmax(rng.normal(size=(6, 3))).astype(np.float32)
    expected = np.mean(-(target * np.log(softmax(logits))).sum(1))
    assert float(losses.soft_cross_entropy(target, logits)) == pytest.approx(expected, rel=1e-5)


def test_latent_consistency_modes_combine():
    rng = np.random.default_rng(2)
    w = softmax(rng.normal(size=(12, 3))).astype(np.float32)
    logits = rng.normal(size=(12, 3)).astype(np.float32)
    mi = float(losses.latent_consistency_loss(w, logits, "mi"))
    xent = float(losses.latent_consistency_loss(w, logits, "xent"))
    both = float(losses.latent_consistency_loss(w, logits, "mi+xent"))
    assert mi == pytest.approx(-np_mutual_information(w, softmax(logits)), rel=1e-4)
    assert both == pytest.approx(mi + xent, rel=1e-5)


def test_paired_mi_pairs_each_real_with_its_argmax_components_fake():
    rng = np.random.default_rng(3)
    real = softmax(rng.normal(size=(5, 3))).astype(np.float32)
    fake = softmax(rng.normal(size=(5, 3, 3))).astype(np.float32)
    paired = fake[np.arange(5), real.argmax(1)]
    got = float(losses.real_fake_consistency_loss(real, fake, "paired_mi"))
    assert got == pytest.approx(-np_mutual_information(real, paired), rel=1e-4)


def test_marginal_kl_is_zero_for_equal_marginals_and_positive_otherwise():
    real = np.array([[0.5, 0.5], [0.5, 0.5]], np.float32)
    same = np.full((2, 2, 2), 0.5, np.float32)
    assert float(losses.real_fake_consistency_loss(real, same, "marginal_kl")) == pytest.approx(0)
    skewed = np.tile(np.array([0.9, 0.1], np.float32), (2, 2, 1))
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    expected = float(np.sum(p * np.log(p / q)))
    assert float(losses.real_fake_consistency_loss(real, skewed, "marginal_kl")) == pytest.approx(
        expected, rel=1e-5)


def test_single_head_adversarial_loss_is_eq6_weighted_by_r():
    rng = np.random.default_rng(4)
    m, k = 4, 3
    real_logits = rng.normal(size=(m, 1)).astype(np.float32)
    fake_logits = rng.normal(size=(m, k)).astype(np.float32)
    r = softmax(rng.normal(size=(m, k))).astype(np.float32)
    # eq. 6 times K: mean_i sum_k r_ik [log D(x_i) + log(1 - D(x^_ik))]; D minimises its negative
    eq6 = np.mean(np.sum(r * (np_log_sigmoid(real_logits) + np_log_sigmoid(-fake_logits)), 1))
    got = float(losses.discriminator_loss(real_logits, fake_logits, r, per_component=False))
    assert got == pytest.approx(-eq6, rel=1e-5)
    ns = np.mean(np.sum(r * -np_log_sigmoid(fake_logits), 1))
    assert float(losses.generator_loss(fake_logits, r, False)) == pytest.approx(ns, rel=1e-5)
    mm = np.mean(np.sum(r * np_log_sigmoid(-fake_logits), 1))
    assert float(losses.generator_loss(fake_logits, r, False, non_saturating=False)
                 ) == pytest.approx(mm, rel=1e-5)


def test_per_component_heads_weight_reals_by_normalised_responsibility():
    rng = np.random.default_rng(5)
    m, k = 6, 3
    real_logits = rng.normal(size=(m, k)).astype(np.float32)
    fake_logits = rng.normal(size=(m, k)).astype(np.float32)
    r = softmax(rng.normal(size=(m, k))).astype(np.float32)
    a = r / r.sum(0, keepdims=True)
    expected = -np.mean(np.sum(a * np_log_sigmoid(real_logits), 0)
                        + np.mean(np_log_sigmoid(-fake_logits), 0))
    got = float(losses.discriminator_loss(real_logits, fake_logits, r, per_component=True))
    assert got == pytest.approx(expected, rel=1e-5)


def test_discriminator_loss_falls_when_d_separates_real_from_fake():
    r = np.full((4, 2), 0.5, np.float32)
    confused = float(losses.discriminator_loss(np.zeros((4, 1), np.float32),
                                               np.zeros((4, 2), np.float32), r, False))
    right = float(losses.discriminator_loss(np.full((4, 1), 5, np.float32),
                                            np.full((4, 2), -5, np.float32), r, False))
    assert right < confused
    assert confused == pytest.approx(2 * np.log(2), rel=1e-5)


def test_log_d_uses_logits_so_extreme_logits_stay_finite():
    r = np.full((2, 2), 0.5, np.float32)
    big = np.full((2, 2), 200.0, np.float32)
    assert np.isfinite(float(losses.discriminator_loss(-big[:, :1], big, r, False)))
    assert np.isfinite(float(losses.generator_loss(-big, r, False)))


def test_zero_weight_component_receives_no_real_weight():
    r = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    a = losses.adversarial_weights(r, per_component=True).numpy()
    np.testing.assert_allclose(a[:, 0], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(a[:, 1], [0.0, 0.0], atol=1e-6)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    # f(x) = w.x + b has gradient w at every interpolate: the penalty is (|w|_2 - 1)^2.
    critic = keras.Sequential([keras.Input((2, 2, 2)), keras.layers.Flatten(),
                               keras.layers.Dense(1)])
    w = np.arange(8, dtype=np.float32)[:, None] / 10
    critic.layers[-1].set_weights([w, np.ones(1, np.float32)])
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.normal(size=(5, 2, 2, 2)), tf.float32) for _ in range(2))
    eps = tf.constant(rng.uniform(size=(5, 1, 1, 1)), tf.float32)
    gp = losses.gradient_penalty(critic, real, fake, eps)
    np.testing.assert_allclose(float(gp), (np.linalg.norm(w) - 1) ** 2, rtol=1e-5)


def test_wasserstein_losses_reward_a_critic_that_scores_real_above_fake():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(2.0, 1.0, (8, 1)), rng.normal(-1.0, 1.0, (8, 3))
    penalty = 0.25
    loss = float(losses.wasserstein_critic_loss(tf.constant(real), tf.constant(fake),
                                                tf.constant(penalty, tf.float64)))
    np.testing.assert_allclose(loss, fake.mean() - real.mean() + 10 * penalty, rtol=1e-12)
    np.testing.assert_allclose(float(losses.wasserstein_generator_loss(tf.constant(fake))),
                               -fake.mean(), rtol=1e-12)


def test_per_component_generator_loss_averages_every_heads_fakes_equally():
    rng = np.random.default_rng(6)
    m, k = 5, 3
    fake_logits = rng.normal(size=(m, k)).astype(np.float32)
    # r must not matter: every component's GAN counts 1/(M K), whatever C thinks of the reals.
    r = softmax(rng.normal(size=(m, k)) * 3).astype(np.float32)
    ns = np.mean(-np_log_sigmoid(fake_logits))
    mm = np.mean(np_log_sigmoid(-fake_logits))
    assert float(losses.generator_loss(fake_logits, r, True)) == pytest.approx(ns, rel=1e-5)
    assert float(losses.generator_loss(fake_logits, r, True, non_saturating=False)
                 ) == pytest.approx(mm, rel=1e-5)


def np_mode_seeking(fakes, z):
    m, k = fakes.shape[:2]
    terms = [1 / (np.mean(np.abs(fakes[i, c] - fakes[i - 1, c]))
                  / np.mean(np.abs(z[i, c] - z[i - 1, c])) + 1e-5)
             for i in range(m) for c in range(k)]
    return float(np.mean(terms))


def test_mode_seeking_loss_is_the_mean_inverse_gap_ratio_of_neighbouring_pairs():
    rng = np.random.default_rng(7)
    fakes = rng.normal(size=(4, 3, 2, 2, 1)).astype(np.float32)
    z = rng.normal(size=(4, 3, 5)).astype(np.float32)
    got = float(losses.mode_seeking_loss(tf.constant(fakes), tf.constant(z)))
    assert got == pytest.approx(np_mode_seeking(fakes, z), rel=1e-5)
    # Closed form: image gaps a, latent gaps b for every pair -> 1 / (a / b + 1e-5).
    two = np.stack([np.zeros((3, 4)), np.full((3, 4), 0.5)]).astype(np.float32)
    codes = np.stack([np.zeros((3, 2)), np.full((3, 2), 2.0)]).astype(np.float32)
    assert float(losses.mode_seeking_loss(two, codes)) == pytest.approx(1 / (0.25 + 1e-5))
    # A collapsed component (same image for different noise) costs 1e5.
    collapsed = np.zeros((2, 1, 4), np.float32)
    assert float(losses.mode_seeking_loss(collapsed, codes[:, :1])) == pytest.approx(1e5)


def test_mode_seeking_loss_of_a_batch_of_one_is_zero_with_a_zero_gradient():
    fakes = tf.Variable(np.ones((1, 3, 4), np.float32))
    z = tf.Variable(np.ones((1, 3, 2), np.float32))
    with tf.GradientTape() as tape:
        loss = losses.mode_seeking_loss(fakes, z)
    grads = tape.gradient(loss, [fakes, z])
    assert float(loss) == 0.0
    for g in grads:
        assert g is None or np.array_equal(tf.convert_to_tensor(g).numpy(), np.zeros_like(g))


def test_reconstruction_loss_is_the_mean_squared_pixel_error():
    rng = np.random.default_rng(8)
    images, reconstructions = rng.uniform(-1, 1, (2, 5, 3, 4, 1)).astype(np.float32)
    got = float(losses.reconstruction_loss(images, reconstructions))
    want = sum((a - b) ** 2 for a, b in zip(images.ravel(), reconstructions.ravel())) / images.size
    assert got == pytest.approx(want, rel=1e-5)


def test_nearest_fake_loss_pulls_each_real_image_to_the_nearest_fake_of_its_component():
    rng = np.random.default_rng(10)
    m, k, n = 5, 3, 4
    fakes = rng.uniform(-1, 1, (m, k, 3, 2, 1)).astype(np.float32)
    real = rng.uniform(-1, 1, (n, 3, 2, 1)).astype(np.float32)
    components = np.array([2, 0, 2, 1])
    # By hand: the smallest mean squared error over the M fakes of x_i's component.
    want = np.mean([min(np.mean((fakes[j, components[i]] - real[i]) ** 2) for j in range(m))
                    for i in range(n)])
    fakes_t = tf.constant(fakes)
    with tf.GradientTape() as tape:
        tape.watch(fakes_t)
        loss = losses.nearest_fake_loss(real, fakes_t, components)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    # Only the nearest fakes move, and only fakes of components that real images hold.
    grad = tape.gradient(loss, fakes_t).numpy()
    moved = {(j, kk) for j, kk in zip(*np.nonzero(np.abs(grad).sum((2, 3, 4))))}
    nearest = {(int(np.argmin([np.mean((fakes[j, components[i]] - real[i]) ** 2)
                               for j in range(m)])), components[i]) for i in range(n)}
    assert moved == nearest
    # With `pulls`, the unpulled images' terms drop out of the sum, the mean still over all N.
    pulls = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    want = sum(min(np.mean((fakes[j, components[i]] - real[i]) ** 2) for j in range(m))
               for i in (0, 3)) / n
    got = float(losses.nearest_fake_loss(real, fakes, components, pulls))
    assert got == pytest.approx(want, rel=1e-5)


def test_code_moment_penalty_measures_the_distance_to_standard_normal_moments():
    rng = np.random.default_rng(9)
    codes = rng.normal(0.3, 2.0, (6, 4)).astype(np.float32)
    mean, variance = codes.mean(0), codes.var(0)  # the biased variance, as tf.nn.moments
    want = np.mean(mean ** 2 + (variance - 1) ** 2)
    assert float(losses.code_moment_penalty(codes)) == pytest.approx(want, rel=1e-5)
    # Codes with mean 0 and variance 1 in every dimension cost nothing: +-1 in each column.
    standard = np.array([[1, -1], [-1, 1], [1, 1], [-1, -1]], np.float32)
    assert float(losses.code_moment_penalty(standard)) == pytest.approx(0.0, abs=1e-7)
    # Collapsed codes (all at 0) cost (0 - 1)^2 = 1 a dimension.
    assert float(losses.code_moment_penalty(np.zeros((5, 3), np.float32))) == pytest.approx(1.0)


def linear_critic(kernel):
    """D_h(x) = w_h . vec(x) + b_h: its input gradient is w_h at every image."""
    critic = keras.Sequential([keras.Input((2, 2, 2)), keras.layers.Flatten(),
                               keras.layers.Dense(kernel.shape[1])])
    critic.layers[-1].set_weights([kernel, np.linspace(-1, 1, kernel.shape[1], dtype=np.float32)])
    return critic


def test_r1_penalty_of_a_linear_critic_is_closed_form_and_differentiable_in_its_weights():
    # Heads h = 0..2 have |grad_x D_h(x_n)|^2 = |w_h|^2 at every image n, so
    # R1 = gamma/2 (1/H) sum_h (sum_n a_nh) |w_h|^2, whose gradient in w_h is
    # gamma (1/H) (sum_n a_nh) w_h.
    rng = np.random.default_rng(8)
    kernel = rng.normal(size=(8, 3)).astype(np.float32)
    critic = linear_critic(kernel)
    images = tf.constant(rng.normal(size=(5, 2, 2, 2)), tf.float32)
    weights = rng.uniform(size=(5, 3)).astype(np.float32)  # column sums != 1: the weights count
    gamma = 3.0
    squared_norms = (kernel ** 2).sum(0)  # [H]
    with tf.GradientTape() as tape:
        squared = losses.squared_input_gradients(critic, images)
        r1 = losses.r1_penalty(squared, weights, gamma)
    np.testing.assert_allclose(squared.numpy(), np.tile(squared_norms, (5, 1)), rtol=1e-5)
    np.testing.assert_allclose(float(r1), gamma / 2 * np.mean(weights.sum(0) * squared_norms),
                               rtol=1e-5)
    grad = tape.gradient(r1, critic.layers[-1].kernel)
    np.testing.assert_allclose(grad.numpy(), gamma / 3 * weights.sum(0) * kernel, rtol=1e-5)
    # One head, no weights: the paper's gamma/2 mean_n |grad_x D(x_n)|^2.
    single = linear_critic(kernel[:, :1])
    np.testing.assert_allclose(
        float(losses.r1_penalty(losses.squared_input_gradients(single, images), None, gamma)),
        gamma / 2 * squared_norms[0], rtol=1e-5)


def test_r1_squared_gradients_are_per_image_and_per_head():
    # D_h(x) = (w_h . vec(x))^2 / 2 has input gradient (w_h . x) w_h: its squared norm
    # (w_h . x_n)^2 |w_h|^2 differs between images and heads, so a gradient of the wrong image
    # or of the heads' sum shows.
    rng = np.random.default_rng(9)
    kernel = rng.normal(size=(8, 3)).astype(np.float32)
    critic = keras.Sequential([keras.Input((2, 2, 2)), keras.layers.Flatten(),
                               keras.layers.Dense(3, use_bias=False),
                               keras.layers.Lambda(lambda s: s ** 2 / 2)])
    critic.layers[1].set_weights([kernel])
    images = rng.normal(size=(4, 2, 2, 2)).astype(np.float32)
    projections = images.reshape(4, -1) @ kernel  # [N, H]: w_h . x_n
    np.testing.assert_allclose(losses.squared_input_gradients(critic, tf.constant(images)).numpy(),
                               projections ** 2 * (kernel ** 2).sum(0), rtol=1e-4)
