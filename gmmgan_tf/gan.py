"""The model of seed 000 and its baselines, one Keras model whose `train_step` is Algorithm 1.

`--model=gmmgan`: learned GMM prior + PCM (the proposed model); `gmm`: learned GMM prior, no PCM,
unweighted adversarial loss; `gaussian`: N(0, I) prior, vanilla DCGAN. All three draw the same
number of fakes a step (K per real image) through the same code, so their costs compare.

Every gradient of a step is taken at the step's starting point in one forward pass
(simultaneous updates: one generator call, one pass of D and C over the fakes), then applied in
the order of Algorithm 1. The PCM's gradients from lines 12-15 are summed and applied once, so
its Adam state advances once a step.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gmmgan_tf import diff_augment, losses
from gmmgan_tf.config import Config
from gmmgan_tf.data_core import unpack_targets
from gmmgan_tf.networks import Encoder, Generator, Head, augmenter, build_networks
from gmmgan_tf.prior import MixturePrior

LOSS_NAMES = ("d_loss", "g_loss", "latent_consistency_loss", "real_fake_consistency_loss",
              "augment_consistency_loss", "diversity_loss", "pseudo_label_loss",
              "self_label_loss", "reconstruction_loss", "coverage_loss")


class GMMGAN(keras.Model):

    def __init__(self, config: Config, image_shape: tuple[int, int, int], **kwargs):
        super().__init__(name=config.model, **kwargs)
        self.config = config
        self.image_shape = tuple(image_shape)
        self.num_components = config.num_components
        self.latent_dim = config.latent_dim
        self.per_component_heads = (config.discriminator_heads == "per_component"
                                    and config.uses_mixture_prior)
        if config.uses_mixture_prior:
            self.prior = MixturePrior(
                config.num_components, config.latent_dim,
                mean_init_std=config.prior_mean_init_std, sigma_init=config.prior_sigma_init,
                sigma_floor=config.prior_sigma_floor,
                learn_mixture_logits=config.learn_mixture_logits, seed=config.seed, name="prior")
        else:
            self.prior = MixturePrior.standard_normal(config.latent_dim)
        self.generator, self.discriminator, self.pcm = build_networks(
            self.image_shape, latent_dim=config.latent_dim,
            num_components=config.num_components,
            discriminator_units=config.num_components if self.per_component_heads else 1,
            with_pcm=config.uses_pcm, shared_encoder=config.shared_encoder,
            width_multiplier=config.width_multiplier, bn_momentum=config.bn_momentum)
        # --ema_decay: a second generator that holds G's moving average (_update_ema). Not
        # trainable, so no optimizer moves it; an attribute, so checkpoints and strategies
        # carry it.
        self.generator_ema = None
        if config.ema_decay:
            self.generator_ema = Generator(self.image_shape, config.width_multiplier,
                                           config.bn_momentum, name="generator_ema")
            self.generator_ema(keras.ops.zeros((1, config.latent_dim)))
            self.generator_ema.set_weights(self.generator.get_weights())
            self.generator_ema.trainable = False
        # --reconstruction_weight: E, real image -> G's noise eps^, trained with G (group "g").
        self.noise_encoder = None
        if config.reconstruction_weight:
            self.noise_encoder = Head(Encoder(self.image_shape, config.width_multiplier,
                                              name="e_encoder"), config.latent_dim,
                                      name="noise_encoder")
            self.noise_encoder(keras.ops.zeros((1, *self.image_shape)))
        self.noise_seed = keras.random.SeedGenerator(config.seed)
        self.augmenter = None
        if config.uses_pcm and (config.real_augment_consistency_weight
                                or config.self_label_weight):
            self.augmenter = augmenter(config.seed)
            self.augmenter.build((None, *self.image_shape))  # fit under a strategy needs it built
        # Attributes, so that checkpoints (which do not see Keras' seed generators) carry them
        # and a resumed run draws the noise and augmentations an uninterrupted one would (a
        # tuple: TF's checkpoint tracks it, not a list). The augmenter's only variables are its
        # random layers' seed states.
        self.noise_seed_state = self.noise_seed.state
        if self.augmenter is not None:
            self.augmenter_seed_states = tuple(self.augmenter.variables)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        self.built = True

    # --- set-up ------------------------------------------------------------------------------
    def compile(self, **kwargs):
        """Creates one Adam optimizer per variable group (D, G, C, prior) and builds each on its
        variables outside the traced step, as Keras 3 needs for several optimizers."""
        super().compile(**kwargs)
        c = self.config
        adam = lambda lr: keras.optimizers.Adam(lr, beta_1=c.adam_beta1)  # noqa: E731
        self.optimizers = {"d": adam(c.learning_rate_d), "g": adam(c.learning_rate_g),
                           "c": adam(c.learning_rate_c), "prior": adam(c.learning_rate_prior)}
        for group, optimizer in self.optimizers.items():
            optimizer.build(self.variable_groups()[group])

    def variable_groups(self) -> dict[str, list]:
        return {"d": self.discriminator.trainable_variables,
                "g": self.generator.trainable_variables + (
                    self.noise_encoder.trainable_variables if self.noise_encoder else []),
                "c": self.pcm.trainable_variables if self.pcm is not None else [],
                "prior": self.prior.trainable_variables}

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator of everything made for the user (samples, evaluation, --mode=sample,
        interpolate and export): G's moving average with --ema_decay (unless --raw_generator),
        else G. Training's fakes always come from G."""
        if self.generator_ema is None or self.config.raw_generator:
            return self.generator
        return self.generator_ema

    # --- Algorithm 1 -------------------------------------------------------------------------
    def train_step(self, data):
        # `data`: real images [M, H, W, C]; or images packed with the warm start's
        # responsibilities [M, K] (train_dataset: [M, H*W*C + K]); tests can inject the noise
        # eps [M, K, d] as (images, eps) or {"images", "targets", "eps"}.
        targets, eps = None, None
        if isinstance(data, dict):
            real_images, targets, eps = data["images"], data.get("targets"), data.get("eps")
        elif isinstance(data, (tuple, list)):
            real_images, eps = data
        elif data.shape.rank == 2:
            real_images, targets = unpack_targets(data, self.image_shape)
        else:
            real_images = data
        c = self.config
        groups = self.variable_groups()
        batch = tf.shape(real_images)[0]
        k, d = self.num_components, self.latent_dim
        if eps is None:
            eps = self.replica_noise((batch, k, d))

        with tf.GradientTape(persistent=True) as tape:
            # Lines 1-7: for every real x_i and component k, z_i^k = mu_k + sigma_k * eps and
            # x^_i^k = G(z_i^k), all M*K fakes in one generator call; classify x_i and x^_i^k.
            z = self.prior.reparameterize(eps)  # [M, K, d]
            fakes = self.generator(tf.reshape(z, (-1, d)), training=True)
            # Not in the slides: D sees --diff_augment's random transforms of both (the PCM
            # sees the images themselves), and G's gradient passes through them.
            d_real = self._discriminator_view(real_images)
            d_fakes = self._discriminator_view(fakes)
            real_d, real_c = self._classify(real_images, d_real)
            fake_d, fake_c = self._classify(fakes, d_fakes)  # fake_c: [M*K, K] logits
            fake_d = tf.reshape(fake_d, (batch, k, -1))
            # Head k judges the fakes of component k; a single head judges them all.
            fake_d = tf.linalg.diag_part(fake_d) if self.per_component_heads else fake_d[..., 0]
            if self.pcm is not None:
                r = tf.nn.softmax(real_c)
                xx_fake_probs = self._real_fake_consistency_inputs(fakes, r)
                w = self.prior.responsibilities(z)  # analytic Pr(k|z), [M, K, K]
            else:
                r = tf.fill((batch, k), 1.0 / k)
            # The losses below see the global batch, not this replica's share.
            real_d, fake_d, r = (self._global_batch(t) for t in (real_d, fake_d, r))
            if self.pcm is not None:
                fake_c, w = self._global_batch(fake_c), self._global_batch(w)

            # Line 8: L^adversarial (eq. 6); r carries C's gradient only with the literal
            # lines 12-13 (--pcm_adversarial_update).
            r_for_g = r if c.pcm_adversarial_update else tf.stop_gradient(r)
            if c.gan_loss == "wgan_gp":
                # --model=gaussian only (config): one critic head and uniform r, so eq. 6's
                # weights drop out. The penalty interpolates each real image with its first fake.
                # One critic step a generator step (n_critic = 1, the simultaneous update of the
                # other losses) rather than the paper's 5, so that every step costs the same.
                # Both are D's views (--diff_augment): the critic is constrained where it looks.
                first_fakes = tf.reshape(d_fakes, (batch, k, *self.image_shape))[:, 0]
                penalty = losses.gradient_penalty(
                    self.discriminator, d_real, tf.stop_gradient(first_fakes),
                    self.replica_noise((batch, 1, 1, 1), tf.random.stateless_uniform))
                d_loss = losses.wasserstein_critic_loss(real_d, fake_d, penalty)
                g_loss = losses.wasserstein_generator_loss(fake_d)
            else:
                d_loss = losses.discriminator_loss(real_d, fake_d, tf.stop_gradient(r),
                                                   self.per_component_heads)
                if c.r1_weight:
                    # Not in the slides: R1 on D's view of the reals, part of D's logged loss
                    # as WGAN-GP's penalty is of the critic's. Each head on the reals eq. 6
                    # weights for it (losses.r1_penalty).
                    weights = (losses.adversarial_weights(tf.stop_gradient(r), True)
                               if self.per_component_heads else None)
                    d_loss += losses.r1_penalty(self._global_batch(
                        losses.squared_input_gradients(self.discriminator, d_real)), weights,
                        c.r1_weight)
                g_loss = losses.generator_loss(fake_d, r_for_g, self.per_component_heads,
                                               non_saturating=c.gan_loss == "non_saturating")
            if self.pcm is not None:
                # Line 9: L^{x^,z} (eq. 4) over all M*K pairs (w(z_i^k), C(x^_i^k)).
                xz_loss = losses.latent_consistency_loss(tf.reshape(w, (-1, k)), fake_c,
                                                         c.consistency)
                # Line 10: L^{x^,x} (eq. 5).
                xx_loss = losses.real_fake_consistency_loss(r, xx_fake_probs,
                                                            c.real_fake_consistency)
                # Not in the slides, terms on real images only (docs/DESIGN.md): IIC between C(x)
                # and C(augmented x); the warm start's responsibilities; self-labelling.
                aug_loss = self_loss = tf.constant(0.0)
                if self.augmenter is not None:
                    augmented = self.augmenter(real_images, training=True)
                    aug_logits = self._global_batch(self.pcm(augmented, training=True))
                    aug_loss = losses.augmentation_consistency_loss(r, tf.nn.softmax(aug_logits))
                    self_loss = losses.self_label_loss(r, aug_logits, c.self_label_threshold)
                pl_loss = (losses.pseudo_label_loss(self._global_batch(targets),
                                                    self._global_batch(real_c))
                           if targets is not None else tf.constant(0.0))
            else:
                xz_loss = xx_loss = aug_loss = self_loss = pl_loss = tf.constant(0.0)
            rec_loss = (self._reconstruction_loss(real_images, r) if self.noise_encoder
                        else tf.constant(0.0))
            # The fakes by component [M, K, H, W, C] over the global batch, gathered once for
            # the two terms that compare them.
            fakes_by_component = (
                self._global_batch(tf.reshape(fakes, (batch, k, *self.image_shape)))
                if c.coverage_weight or c.diversity_weight else None)
            # Not in the slides: each real image pulls the nearest fake of its component.
            cover_loss = (self._coverage_loss(real_images, fakes_by_component, r)
                          if c.coverage_weight else tf.constant(0.0))
            div_loss = (losses.mode_seeking_loss(fakes_by_component, self._global_batch(z))
                        if c.diversity_weight else tf.constant(0.0))
            adv_d = self._scale(c.adversarial_weight * d_loss)
            adv_g = self._scale(c.adversarial_weight * g_loss)
            xz = self._scale(c.latent_consistency_weight * xz_loss)
            xx = self._scale(c.real_fake_consistency_weight * xx_loss
                             + c.real_augment_consistency_weight * aug_loss
                             + c.pseudo_label_weight * pl_loss
                             + c.self_label_weight * self_loss)
            consistency = xx + xz  # lines 14-15 share one backward pass (below)
            # G optionally also takes L^{x^,z}, as InfoGAN's generator takes its code term,
            # and the mode-seeking diversity term.
            g_objective = adv_g + self._scale(c.diversity_weight * div_loss
                                              + c.reconstruction_weight * rec_loss
                                              + c.coverage_weight * cover_loss)
            if c.generator_consistency:
                g_objective += xz

        # Line 11: update D with L^adversarial.
        self._apply("d", tape.gradient(adv_d, groups["d"]))
        # Lines 12-13: update G (and, literally, C) with L^adversarial. Without a PCM there is
        # no L^{x^,z}: the `gmm` baseline learns its prior through the generator's adversarial
        # gradient instead (as DeLiGAN does).
        g_sources = groups["g"] + (groups["prior"] if self.pcm is None else [])
        g_grads = tape.gradient(g_objective, g_sources)
        self._apply("g", g_grads[:len(groups["g"])])
        if self.generator_ema is not None:  # not in the slides: G's average follows G
            self._update_ema()
        if self.pcm is None:
            self._apply("prior", g_grads[len(groups["g"]):])
        else:
            # Lines 14-15 in one backward pass: L^{x^,x} (and the real-image terms) reaches C
            # only, as it sees detached fakes; L^{x^,z} reaches C and the prior (mu, sigma) through w(z)
            # and z -> G -> C.
            consistency_grads = tape.gradient(consistency, groups["c"] + groups["prior"])
            n_c = len(groups["c"])
            self._apply("c", _sum_grads(
                consistency_grads[:n_c],
                tape.gradient(adv_g, groups["c"]) if c.pcm_adversarial_update else None))
            self._apply("prior", consistency_grads[n_c:])
        del tape

        for name, value in zip(LOSS_NAMES,
                               (d_loss, g_loss, xz_loss, xx_loss, aug_loss, div_loss, pl_loss,
                                self_loss, rec_loss, cover_loss)):
            self.trackers[name].update_state(value)
        results = {name: t.result() for name, t in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 fit reduces multi-worker outputs over axis 0, which scalars lack
            # (tensorflow/tensorflow#72388); every replica holds the same global-batch values.
            results = {name: value[None] for name, value in results.items()}
        return results

    def _classify(self, images, d_images):
        """D's logits of `d_images` (D's view of the images) and the PCM's logits of `images`
        (None without a PCM); with --shared_encoder and no --diff_augment the encoder runs once
        for both heads."""
        if self.pcm is None:
            return self.discriminator(d_images, training=True), None
        if self.pcm.encoder is self.discriminator.encoder and d_images is images:
            features = self.discriminator.encoder(images, training=True)
            return self.discriminator.dense(features), self.pcm.dense(features)
        return self.discriminator(d_images, training=True), self.pcm(images, training=True)

    def _discriminator_view(self, images):
        """What D sees of a batch: --diff_augment's random transforms of it (fresh draws every
        call, different on every replica), or the images themselves."""
        policy = self.config.diff_augmentations
        return diff_augment.augment(images, policy, self.replica_seed()) if policy else images

    def _update_ema(self) -> None:
        """--ema_decay d: after G's n-th step, w_ema <- d_n w_ema + (1 - d_n) w for every variable
        of G, with d_n = min(d, n / (n + 9)) (tf.train.ExponentialMovingAverage's num_updates):
        the average forgets G's random initialisation in short runs (a plain d = 0.999 keeps
        0.999^625 = 53 % of it after 5 epochs of mnist_5k), and d_n reaches d after 9d/(1-d)
        steps. BatchNorm's moving statistics are averaged like the weights, so that both cover
        the same steps: the first layer's pre-BatchNorm activations are linear in its weights,
        so their mean under the averaged weights is the average of G's means."""
        n = tf.cast(self.optimizers["g"].iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, n / (n + 9.0))
        for average, value in zip(self.generator_ema.variables, self.generator.variables,
                                  strict=True):
            average.assign(decay * average + (1.0 - decay) * value)

    def _reconstruction_loss(self, real_images, r):
        """--reconstruction_weight's term, which G and E minimise (losses.reconstruction_loss +
        losses.code_moment_penalty): G reproduces each real x_i from z^_i = mu_k + sigma_k E(x_i),
        k = argmax_k r_ik, the prior held fixed (it learns from L^{x^,z} alone). G runs in
        inference mode here, as it samples: its BatchNorm uses and keeps the moving statistics of
        the prior's draws (a training-mode call would average the codes' statistics into them)."""
        codes = self._global_batch(self.noise_encoder(real_images, training=True))
        # r is the global batch's; only G's group takes this term's gradient, so the prior in
        # `latents` stays a constant here.
        z_hat = self.latents(tf.argmax(r, axis=-1, output_type=tf.int32), codes)
        images = self._global_batch(real_images)
        reconstructions = self.generator(z_hat, training=False)
        return (losses.reconstruction_loss(images, reconstructions)
                + losses.code_moment_penalty(codes))

    def _coverage_loss(self, real_images, fakes_by_component, r):
        """--coverage_weight's term (losses.nearest_fake_loss) over the global batch (r and
        fakes_by_component [M, K, ...] are already the global batch's): each real x_i searches
        the fakes of its component k_i = argmax_k r_ik (r a constant here); with
        --coverage_threshold only the real images with max_k r_ik above it pull."""
        r = tf.stop_gradient(r)
        pulls = (tf.cast(tf.reduce_max(r, axis=-1) > self.config.coverage_threshold, r.dtype)
                 if self.config.coverage_threshold else None)
        return losses.nearest_fake_loss(self._global_batch(real_images), fakes_by_component,
                                        tf.argmax(r, axis=-1, output_type=tf.int32), pulls)

    def _real_fake_consistency_inputs(self, fakes, r):
        """C's probabilities [M, K, K] on the fakes that L^{x^,x} (eq. 5) reads, computed on
        detached fakes: line 14 moves C only, never the prior through x^ = G(z), which lets
        lines 14 and 15 share one backward pass. paired_mi reads, for each real x_i, only the
        fake of component k_i = argmax_k r_ik: C runs on those M fakes alone and their
        probabilities fill all K rows (the loss reads row k_i). marginal_kl reads all M*K."""
        mode, k = self.config.real_fake_consistency, self.num_components
        if mode == "none":
            return None
        if mode == "paired_mi":
            chosen = tf.argmax(r, axis=-1)  # this replica's share of the loss's k_i
            fakes = tf.gather(tf.reshape(fakes, (-1, k, *self.image_shape)), chosen, axis=1,
                              batch_dims=1)
        probs = self._global_batch(tf.nn.softmax(self.pcm(tf.stop_gradient(fakes),
                                                          training=True)))
        if mode == "paired_mi":
            return tf.repeat(probs[:, None], k, axis=1)
        return tf.reshape(probs, (-1, k, k))

    def replica_noise(self, shape, sampler=tf.random.stateless_normal) -> tf.Tensor:
        """N(0, I) noise (or another stateless sampler's), different on every replica."""
        return sampler(shape, self.replica_seed())

    def replica_seed(self) -> tf.Tensor:
        """A fresh stateless seed from the model's seed generator, different on every replica:
        the generator's state is mirrored (the same on all replicas), so the replica id is
        folded in."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.random.experimental.stateless_fold_in(self.noise_seed.next(), replica)

    def _global_batch(self, x: tf.Tensor) -> tf.Tensor:
        """This replica's per-example outputs -> the global batch's (concatenated in replica
        order), so that batch statistics (eq. 6's sum_i r_ik, the IIC joints) are the global
        batch's and every replica computes the same global losses. all_gather's gradient is
        the replicas' summed gradients of the gathered slice, so with `_scale` the summed
        gradients equal a single device's on the global batch (the mode-seeking term too: it
        pairs fakes across the global batch, as one device does)."""
        context = tf.distribute.get_replica_context()
        if context.num_replicas_in_sync == 1:
            return x

        @tf.custom_gradient
        def keep_shape(x):
            # all_gather's gradient loses the static shape, which diag_part's gradient needs.
            return tf.identity(x), lambda dy: tf.reshape(dy, tf.shape(x))

        return context.all_gather(keep_shape(x), axis=0)

    def _scale(self, loss):
        """The one place where losses are scaled for distribution: each replica's mean loss is
        divided by the replica count so that the summed gradients equal the global-batch mean
        (Keras' built-in losses do the same). Logged values stay unscaled."""
        return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)

    def _apply(self, group: str, grads) -> None:
        variables = self.variable_groups()[group]
        if not variables:
            return
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        self.optimizers[group].apply(grads, variables)

    # --- inference (evaluation, sampling, export) --------------------------------------------
    def latents(self, components, eps):
        """z = mu_c + sigma_c * eps for component ids c [N] and noise eps [N, d]."""
        components = tf.convert_to_tensor(components, tf.int32)
        if not self.config.uses_mixture_prior:
            components = tf.zeros_like(components)
        means = tf.gather(tf.convert_to_tensor(self.prior.means), components)
        return means + tf.gather(self.prior.scales(), components) * eps

    def sampling_latents(self, components, eps):
        """The z of what is generated for the user: mu_c + sigma_c * tau * eps, tau the run's
        --sampling_temperature (training's fakes and reconstructions use `latents`, tau = 1)."""
        return self.latents(components, self.config.noise_temperature * eps)

    def generate(self, components, eps, batch_size: int = 500) -> np.ndarray:
        """Images [N, H, W, C] in [-1, 1] of the given components and noise, in batches."""
        z = self.sampling_latents(components, eps)
        return np.concatenate([self.sampling_generator(z[i:i + batch_size], training=False)
                               .numpy() for i in range(0, len(z), batch_size)])

    def sample(self, per_component: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`per_component` images of every component (component-major) and their ids."""
        components = np.repeat(np.arange(self.num_components), per_component)
        eps = np.random.default_rng(seed).standard_normal(
            (len(components), self.latent_dim)).astype(np.float32)
        return self.generate(components, eps), components

    def sample_from_prior(self, num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`num` draws of what the model generates: component k with probability alpha_k, then
        one of its images (sorted by component). sample() gives every component the same count,
        which misstates the class shares of a model whose alpha_k are not uniform."""
        alpha = tf.nn.softmax(tf.convert_to_tensor(self.prior.mixture_logits)).numpy()
        alpha = alpha.astype(np.float64) / alpha.sum(dtype=np.float64)  # numpy wants sum 1
        rng = np.random.default_rng(seed)
        # One N(0, I) component for the models without a mixture prior, so all ids are 0 there.
        components = np.sort(rng.choice(len(alpha), num, p=alpha))
        eps = rng.standard_normal((num, self.latent_dim)).astype(np.float32)
        return self.generate(components, eps), components

    def responsibilities(self, images, batch_size: int = 500) -> np.ndarray:
        """The PCM's Pr(k|x) [N, K] for images in [-1, 1]."""
        if self.pcm is None:
            raise ValueError(f"--model={self.config.model} has no PCM; use --model=gmmgan")
        return np.concatenate([tf.nn.softmax(self.pcm(images[i:i + batch_size])).numpy()
                               for i in range(0, len(images), batch_size)])


def _sum_grads(a, b):
    if a is None or b is None:
        return a if b is None else b
    return [x if y is None else y if x is None else x + y for x, y in zip(a, b)]
