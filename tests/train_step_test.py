"""One Algorithm 1 step against a by-hand recomputation on the same networks, weights and noise:
every logged loss and every variable group's gradient.

The reference calls the networks as train_step does (training=True, the same batches: the
generator's BatchNorm sees the same M*K latents), but builds everything else itself: z from the
prior's variables, Pr(k|z) from the Gaussian log-densities, head k's logit on component k's fake,
the paired fake of eq. 5 and the first fake of the gradient penalty by explicit indices into the
generator's flat output (row i*K + k is x^_i^k). The slides' loss formulas are the `losses`
functions, each tested against NumPy in losses_test.py; the terms not in the slides (mode
seeking, and with a warm start the real-image terms L^{x,warm}, L^{x,self} and L^{x,x'}; R1)
are written out here from their equations, so that a wrong sign, weight or input in train_step
shows. The augmenter's random view is replayed from its seed state, as the penalty's noise and
D's --diff_augment views (diff_augment_test.py checks the transforms) are.
"""
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from gmmgan_tf import diff_augment, losses
from gmmgan_tf.gan import GMMGAN

IMAGE_SHAPE = (28, 28, 1)
M, K, D = 4, 3, 4


def reference(model, real, eps, penalty_eps, targets=None, augmented=None, d_seeds=None):
    """(losses, gradients per group) of one step, by hand; `targets` are the warm start's
    responsibilities, `augmented` the augmenter's view of `real`, `d_seeds` the seeds of D's
    --diff_augment views of the reals and of the fakes."""
    c = model.config
    groups = model.variable_groups()
    per_component = c.discriminator_heads == "per_component" and c.uses_mixture_prior
    rows = np.arange(M)[:, None] * K + np.arange(K)[None, :]  # [M, K]: row of x^_i^k
    with tf.GradientTape(persistent=True) as tape:
        if c.uses_mixture_prior:
            mu = tf.convert_to_tensor(model.prior.means)
            sigma = tf.nn.softplus(model.prior.raw_scales) + c.prior_sigma_floor
        else:
            mu, sigma = tf.zeros((1, D)), tf.ones((1, D))
        z = mu + sigma * eps  # [M, K, d]
        fakes = model.generator(tf.reshape(z, (M * K, D)), training=True)
        d_real, d_fakes = real, fakes  # what D sees
        if c.diff_augmentations:
            d_real = diff_augment.augment(real, c.diff_augmentations, d_seeds[0])
            d_fakes = diff_augment.augment(fakes, c.diff_augmentations, d_seeds[1])
        d_fake_all = model.discriminator(d_fakes, training=True)  # [M*K, heads]
        heads = np.tile(np.arange(K), (M, 1)) if per_component else np.zeros_like(rows)
        fake_d = tf.gather_nd(d_fake_all, np.stack([rows, heads], -1))  # head k on x^_i^k
        real_d = model.discriminator(d_real, training=True)
        real_c = model.pcm(real, training=True) if model.pcm is not None else None
        r = tf.nn.softmax(real_c) if model.pcm is not None else tf.fill((M, K), 1.0 / K)
        out = {}
        if c.gan_loss == "wgan_gp":
            first = tf.gather(d_fakes, rows[:, 0])
            penalty = losses.gradient_penalty(model.discriminator, d_real,
                                              tf.stop_gradient(first), penalty_eps)
            out["d_loss"] = losses.wasserstein_critic_loss(real_d, fake_d, penalty)
            out["g_loss"] = losses.wasserstein_generator_loss(fake_d)
        else:
            out["d_loss"] = losses.discriminator_loss(real_d, fake_d, tf.stop_gradient(r),
                                                      per_component)
            out["g_loss"] = losses.generator_loss(
                fake_d, r if c.pcm_adversarial_update else tf.stop_gradient(r), per_component,
                non_saturating=c.gan_loss == "non_saturating")
            if c.r1_weight:
                # R1 = gamma/2 (1/H) sum_h sum_i a_ih |grad D_h(x_i)|^2 on D's view of the
                # reals, a_ih = r_ih / sum_i' r_i'h (K heads) or 1/M (one head); the gradients
                # from the batch Jacobian [M, H, 28, 28, 1].
                with tf.GradientTape() as inner:
                    inner.watch(d_real)
                    logits = model.discriminator(d_real, training=True)
                jacobian = inner.batch_jacobian(logits, d_real)
                squared = tf.reduce_sum(tf.reshape(jacobian ** 2, (M, logits.shape[1], -1)), -1)
                a = (tf.stop_gradient(r / tf.reduce_sum(r, 0)) if per_component
                     else tf.fill((M, 1), 1.0 / M))
                out["d_loss"] += c.r1_weight / 2 * tf.reduce_mean(tf.reduce_sum(a * squared, 0))
        # Mode seeking: mean_{i,k} 1 / (mean|x^_ik - x^_jk| / mean|z_ik - z_jk| + 1e-5), with
        # j = i - 1 (mod M).
        previous = (np.arange(M) - 1) % M
        neighbours = tf.gather(fakes, rows[previous].ravel())  # x^_jk, in the rows of `fakes`
        image_gap = tf.reshape(tf.reduce_mean(tf.abs(fakes - neighbours), [1, 2, 3]), (M, K))
        latent_gap = tf.reduce_mean(tf.abs(z - tf.gather(z, previous)), -1)
        out["diversity_loss"] = tf.reduce_mean(1.0 / (image_gap / latent_gap + 1e-5))
        g_objective = out["g_loss"] + c.diversity_weight * out["diversity_loss"]
        if c.reconstruction_weight:
            # Mode regulariser: G(mu_k + sigma_k E(x_i)), k = argmax_k r_ik, against x_i by
            # mean squared error, plus E's codes' distance to N(0, I)'s moments; the prior is
            # a constant here (it learns from L^{x^,z} alone).
            codes = model.noise_encoder(real, training=True)  # [M, d]
            chosen = np.argmax(r.numpy(), 1)
            z_hat = tf.gather(tf.stop_gradient(mu), chosen) + tf.gather(
                tf.stop_gradient(sigma), chosen) * codes
            # G in inference mode: BatchNorm's moving statistics, not the codes' batch ones.
            error = tf.reduce_mean((model.generator(z_hat, training=False) - real) ** 2)
            code_mean = tf.reduce_mean(codes, 0)
            code_variance = tf.reduce_mean((codes - code_mean) ** 2, 0)
            out["reconstruction_loss"] = error + tf.reduce_mean(
                code_mean ** 2 + (code_variance - 1) ** 2)
            g_objective += c.reconstruction_weight * out["reconstruction_loss"]
        if c.coverage_weight:
            # Each real x_i against every fake of its component k_i = argmax_k r_ik (rows
            # j*K + k_i), by the mean squared pixel error; the nearest one's error, summed over
            # the images whose max_k r_ik passes the threshold, divided by all M.
            chosen, confidence = np.argmax(r.numpy(), 1), np.max(r.numpy(), 1)
            nearest = []
            for i in np.flatnonzero(confidence > c.coverage_threshold):
                errors = [tf.reduce_mean((fakes[j * K + chosen[i]] - real[i]) ** 2)
                          for j in range(M)]
                nearest.append(errors[int(np.argmin([float(e) for e in errors]))])
            assert 0 < len(nearest) <= M and (len(nearest) < M or not c.coverage_threshold)
            out["coverage_loss"] = tf.add_n(nearest) / M
            g_objective += c.coverage_weight * out["coverage_loss"]
        if model.pcm is not None:
            log_density = (-0.5 * tf.reduce_sum(((z[:, :, None] - mu) / sigma) ** 2, -1)
                           - tf.reduce_sum(tf.math.log(sigma), -1) - 0.5 * D * np.log(2 * np.pi))
            w = tf.nn.softmax(tf.nn.log_softmax(model.prior.mixture_logits) + log_density)
            fake_c = model.pcm(fakes, training=True)
            out["latent_consistency_loss"] = losses.latent_consistency_loss(
                tf.reshape(w, (-1, K)), fake_c, c.consistency)
            detached = tf.stop_gradient(fakes)
            if c.real_fake_consistency == "paired_mi":
                chosen = rows[np.arange(M), np.argmax(r.numpy(), 1)]  # x^_i^{argmax_k r_ik}
                paired = tf.nn.softmax(model.pcm(tf.gather(detached, chosen), training=True))
                out["real_fake_consistency_loss"] = -losses.mutual_information(r, paired)
            else:
                probs = tf.nn.softmax(model.pcm(detached, training=True))
                out["real_fake_consistency_loss"] = losses.real_fake_consistency_loss(
                    r, tf.reshape(probs, (M, K, K)), "marginal_kl")
            consistency = (c.latent_consistency_weight * out["latent_consistency_loss"]
                           + c.real_fake_consistency_weight * out["real_fake_consistency_loss"])
            if targets is not None:  # L^{x,warm} = mean_i -sum_k t_ik log C(x_i)_k
                out["pseudo_label_loss"] = tf.reduce_mean(
                    -tf.reduce_sum(targets * tf.nn.log_softmax(real_c), -1))
                consistency += c.pseudo_label_weight * out["pseudo_label_loss"]
            if augmented is not None:
                augmented_c = model.pcm(augmented, training=True)
                # L^{x,self}: -log C(x_i')_{argmax_k p_ik}, p = C(x) a constant, over the images
                # with max_k p_ik above the threshold, divided by all M.
                p = r.numpy()
                passed = np.flatnonzero(p.max(1) > c.self_label_threshold)
                assert 0 < len(passed) < M, p.max(1)  # the threshold must matter
                log_q = tf.gather_nd(tf.nn.log_softmax(augmented_c),
                                     np.stack([passed, p.argmax(1)[passed]], -1))
                out["self_label_loss"] = -tf.reduce_sum(log_q) / M
                # L^{x,x'} = -I(C(x); C(x')).
                out["augment_consistency_loss"] = -losses.mutual_information(
                    r, tf.nn.softmax(augmented_c))
                consistency += (c.self_label_weight * out["self_label_loss"]
                                + c.real_augment_consistency_weight
                                * out["augment_consistency_loss"])
            if c.generator_consistency:
                g_objective += c.latent_consistency_weight * out["latent_consistency_loss"]
    grads = {"d": tape.gradient(out["d_loss"], groups["d"]),
             "g": tape.gradient(g_objective, groups["g"])}
    if model.pcm is None:
        grads["prior"] = tape.gradient(g_objective, groups["prior"])
    else:
        grads["prior"] = tape.gradient(consistency, groups["prior"])
        grads["c"] = tape.gradient(consistency, groups["c"])
        if c.pcm_adversarial_update:
            grads["c"] = [a + b for a, b in zip(grads["c"], tape.gradient(out["g_loss"],
                                                                          groups["c"]))]
    return {k: float(v) for k, v in out.items()}, grads


CASES = {
    "default_recipe": {},  # per-component heads, mi+xent, paired_mi, diversity on
    "single_head_literal": dict(discriminator_heads="single", real_fake_consistency="marginal_kl",
                                pcm_adversarial_update=True, generator_consistency=True,
                                learn_mixture_logits=True, gan_loss="minimax"),
    "gmm": dict(model="gmm"),
    "gaussian_wgan_gp": dict(model="gaussian", gan_loss="wgan_gp"),
    # The default recipe's real-image terms: the warm start's targets (L^{x,warm}), L^{x,self} at
    # the default threshold, plus L^{x,x'}; weights other than 1 and each other, so that a
    # dropped or swapped weight shows.
    "warm_start": dict(pcm_init="embedding", pseudo_label_weight=0.7, self_label_weight=0.5,
                       real_augment_consistency_weight=0.3),
    # The levers: D's DiffAugment views, R1 with per-component heads, and G's moving average
    # (which must not make the fakes); one head with the shared encoder (which then runs once
    # for D's views and once for the PCM's images).
    "levers": dict(diff_augment="color,translation,cutout", r1_weight=2.0, ema_decay=0.999),
    # Che et al.'s mode regulariser: E joins G's group; a weight other than 1.
    "reconstruction": dict(reconstruction_weight=0.7, ema_decay=0.999),
    # The nearest-fake coverage term: a weight other than 1.
    "coverage": dict(coverage_weight=0.6),
    # Only the confident real images pull (a warm-started PCM: some pass, not all).
    "coverage_confident": dict(pcm_init="embedding", coverage_weight=0.6,
                               coverage_threshold=0.95),
    "levers_single_head": dict(discriminator_heads="single", shared_encoder=True,
                               diff_augment="translation,cutout", r1_weight=0.5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_step_computes_the_losses_and_gradients_of_a_by_hand_recomputation(case):
    model = GMMGAN(tiny_config(batch_size=M, num_components=K, latent_dim=D,
                               diversity_weight=0.1, **CASES[case]), IMAGE_SHAPE)
    model.compile()
    rng = np.random.default_rng(0)
    if model.prior.mixture_logits.trainable:  # log alpha must enter Pr(k|z)
        model.prior.mixture_logits.assign([0.5, -1.0, 0.2])
    real = tf.constant(rng.uniform(-1, 1, (M, *IMAGE_SHAPE)), tf.float32)
    eps = tf.constant(rng.standard_normal((M, K, D)), tf.float32)
    data, targets = (real, eps), None
    if model.config.uses_warm_start:
        targets = tf.constant(rng.dirichlet(np.full(K, 0.5), M), tf.float32)  # soft, peaked
        data = {"images": real, "targets": targets, "eps": eps}
        # A warm-started PCM is confident: sharpened, some images (not all) pass L^{x,self}'s
        # threshold.
        model.pcm.dense.kernel.assign(30.0 * model.pcm.dense.kernel)
    if model.generator_ema is not None:  # fakes from the average would differ from G's
        bias = model.generator_ema.variables[-1]
        bias.assign(bias + 1.0)
    # The step's other noise: the penalty's interpolation weights, from the model's seed, and
    # the augmenter's view, from its layers' seeds.
    seeds = [model.noise_seed.state] + (model.augmenter.variables
                                        if model.augmenter is not None else [])
    # And G's BatchNorm moving statistics, which the step's G call moves and which the mode
    # regulariser's inference-mode call reads after it.
    seeds += model.generator.non_trainable_variables
    seed_states = [v.numpy() for v in seeds]
    recorded = {}
    model._apply = lambda group, grads: recorded.setdefault(group, grads)  # record, don't step
    logs = model.train_step(data)
    for v, state in zip(seeds, seed_states):
        v.assign(state)
    # The model seed's draws in the step's order: D's views of the reals and of the fakes, then
    # the penalty's interpolation weights.
    d_seeds = [model.replica_seed() for _ in range(2)] if model.config.diff_augment else None
    penalty_eps = model.replica_noise((M, 1, 1, 1), tf.random.stateless_uniform)
    augmented = model.augmenter(real, training=True) if model.augmenter is not None else None

    want_losses, want_grads = reference(model, real, eps, penalty_eps, targets, augmented,
                                        d_seeds)
    for name, value in want_losses.items():
        assert float(logs[name]) == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert set(recorded) == set(want_grads) | ({"c"} if model.pcm is not None else set())
    for group, want in want_grads.items():
        variables = model.variable_groups()[group]
        assert len(recorded[group]) == len(want) == len(variables)
        dense = lambda g, v: np.zeros(v.shape) if g is None else np.asarray(g)  # noqa: E731
        assert not variables or any(np.any(dense(e, v)) for e, v in zip(want, variables))
        for v, got, expected in zip(variables, recorded[group], want):
            got, expected = dense(got, v), dense(expected, v)
            scale = max(np.abs(expected).max(), 1e-8)
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale,
                                       err_msg=f"{group}: {v.path}")
