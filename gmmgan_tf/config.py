"""The typed, validated, frozen run configuration.

Every field is also a command-line flag (`main.py` defines one absl flag per field from the
metadata below), so this dataclass is the single place where an option is declared, documented
and checked. `validate()` turns bad values into one-line `ConfigError`s that name the flag and the
fix; `main.py` prints them and exits non-zero.
"""
from __future__ import annotations

import dataclasses
import glob
import os
from typing import Any

from gmmgan_tf.errors import ConfigError

MODES = ("train", "evaluate", "sample", "interpolate", "export", "assign", "mfa_figures",
         "mfa_pix2pix", "mfa_adversarial")  # the last three: --model=mfa workdirs (mfa/train.py)
MODELS = ("gmmgan", "gmm", "gaussian", "mfa")
TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "oxford_flowers102")
BUILTIN_DATASETS = ("mnist_5k",) + TFDS_DATASETS
# Sizes the DCGAN networks can make: a 4x4 (or 7x7) seed doubled by stride-2 layers.
SUPPORTED_IMAGE_SIZES = (28, 32, 64, 128)
NATIVE_IMAGE_SIZES = {"mnist_5k": 28, "mnist": 28, "fashion_mnist": 28, "cifar10": 32,
                      "oxford_flowers102": 64}
FOLDER_IMAGE_SIZE = 64
DIFF_AUGMENTATIONS = ("color", "translation", "cutout")  # gmmgan_tf/diff_augment.py


def _field(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Config:
    # --- run ---------------------------------------------------------------------------------
    mode: str = _field("train", "What to do with --workdir.", MODES)
    workdir: str = _field("runs/default", "Run directory: checkpoints, events, flags, metrics, PNGs.")
    seed: int = _field(0, "Global random seed (data split, initialisation, noise).")

    # --- data --------------------------------------------------------------------------------
    dataset: str = _field(
        "mnist_5k",
        "mnist_5k (embedded, offline) | mnist | fashion_mnist | cifar10 | oxford_flowers102 | "
        "imbalanced_<name> | folder:<path>.")
    data_dir: str = _field("", "TFDS data directory (default: ~/tensorflow_datasets).")
    download: str = _field(
        "auto", "TFDS sets not prepared in --data_dir: auto = download and prepare them (TFDS's "
        "own download_and_prepare) when their download host answers within a second, else fail "
        "at once | always = download without that check | never = fail at once.",
        ("auto", "always", "never"))
    image_size: int = _field(
        0, f"Image side in pixels, one of {SUPPORTED_IMAGE_SIZES}; 0 = the data set's own size "
        "(28 for the MNIST family, 32 for cifar10, 64 for oxford_flowers102 and folders).")
    dominant_class: int = _field(0, "imbalanced_*: the class kept whole.")
    minor_count: int = _field(1000, "imbalanced_*: images kept from the other classes.")
    minor_count_mode: str = _field(
        "total", "imbalanced_*: --minor_count counts all minor classes together or each one.",
        ("total", "per_class"))
    validation_fraction: float = _field(
        0.1, "Share of the training images (stratified by label, the same images for every "
        "--seed) carved out as the validation split: never trained on, scored by --eval_every "
        "and used to choose settings; the test split is scored only at the end of a run and by "
        "--mode=evaluate. 0 = no validation split (no per-epoch evaluation).")
    exclude_classes: str = _field(
        "", "Comma-separated class ids left out of the training images (e.g. 3 or 3,5); the "
        "held-out images keep every class, so --mode=evaluate scores them as novelties "
        "(leave-one-class-out protocol, gmmgan_tf/novelty.py).")

    # --- model -------------------------------------------------------------------------------
    model: str = _field(
        "gmmgan", "gmmgan: GMM prior + PCM (proposed) | gmm: GMM prior, no PCM | "
        "gaussian: N(0, I) prior (vanilla DCGAN) | mfa: mixture of factor analyzers on pixels "
        "(--mfa_* flags).", MODELS)
    num_components: int = _field(10, "K, the number of Gaussians in the latent mixture.")
    latent_dim: int = _field(32, "d, the latent dimension.")
    prior_mean_init_std: float = _field(
        0.2, "Std of the N(0, s^2) initialisation of the component means mu_k. Small values start "
        "the components overlapping so that Pr(k|z) is not one-hot from step 0.")
    prior_sigma_init: float = _field(0.5, "Initial per-dimension std sigma_k of every component.")
    prior_sigma_floor: float = _field(0.05, "Lower bound on sigma_k (softplus + floor).")
    learn_mixture_logits: bool = _field(
        False, "Train log alpha_k (they get gradients only through Pr(k|z), never through sampling).")
    width_multiplier: float = _field(1.0, "Scales the channels of G, D and C (compression study).")
    shared_encoder: bool = _field(False, "D and the PCM share one image encoder.")
    discriminator_heads: str = _field(
        "per_component", "single: one real/fake logit | per_component: one logit per component "
        "(the mixture-of-GANs reading of eq. 6).", ("single", "per_component"))
    bn_momentum: float = _field(0.9, "BatchNorm momentum (Keras' 0.99 lags badly in short runs).")

    # --- real-data warm start (gmmgan_tf/warm_start.py; gmmgan only) ---------------------------
    pcm_init: str = _field(
        "embedding", "embedding: before GAN training, cluster the training images (autoencoder -> "
        "UMAP -> GaussianMixture, cached in <workdir>/warm_start/), pre-train the PCM on those "
        "responsibilities and start alpha_k from the mixture weights | none: random PCM (the "
        "slides). Other models ignore it.", ("none", "embedding"))
    warm_start_autoencoder_steps: int = _field(
        1500, "Warm start: autoencoder training steps (batch 256).")
    warm_start_fit_images: int = _field(
        20000, "Warm start: fit the autoencoder and UMAP on at most this many training images "
        "(a random subset); UMAP's transform embeds the rest.")
    warm_start_neighbors: int = _field(10, "Warm start: UMAP n_neighbors.")
    warm_start_dims: int = _field(10, "Warm start: UMAP embedding dimensions.")
    warm_start_augment: bool = _field(
        False, "Warm start: train the autoencoder on random shifts, rotations and zooms of the "
        "images (DEC-DA), not on the images themselves.")
    warm_start_neighbour_epochs: int = _field(
        0, "Warm start stage 4: epochs of SCAN's clustering step (a PCM-shaped network trained so "
        "that each image and its 20 nearest neighbours in pixel space share a confident cluster, "
        "all clusters in use) on the --warm_start_fit_images images; its clusters replace the "
        "GaussianMixture's. 0 = off. It favours clusters of equal size: for balanced sets whose "
        "embedding merges classes (flags/fashion_mnist.cfg).")
    pcm_pretrain_epochs: int = _field(
        10, "Warm start: epochs of PCM cross-entropy training on the warm start's "
        "responsibilities before the GAN starts (Adam, --learning_rate_c, batch 64).")

    # --- losses ------------------------------------------------------------------------------
    gan_loss: str = _field(
        "non_saturating", "Generator side of eq. 6: non_saturating -log D(G(z)) or the literal "
        "minimax log(1 - D(G(z))); wgan_gp: Wasserstein critic with gradient penalty "
        "(--model=gaussian only).", ("non_saturating", "minimax", "wgan_gp"))
    consistency: str = _field(
        "mi+xent", "L^{x^,z} (eq. 4): mutual information (IIC), cross-entropy against Pr(k|z), "
        "or both.", ("mi", "xent", "mi+xent"))
    real_fake_consistency: str = _field(
        "paired_mi", "L^{x^,x} (eq. 5) reading.", ("paired_mi", "marginal_kl", "none"))
    pcm_adversarial_update: bool = _field(
        False, "Algorithm 1 lines 12-13 literally: the PCM also takes the adversarial gradient.")
    generator_consistency: bool = _field(
        False, "The generator also takes the L^{x^,z} gradient (as InfoGAN's G does).")
    real_augment_consistency_weight: float = _field(
        0.0, "Weight of L^{x,x'}: mutual information between the PCM's outputs on a real image "
        "and on a random augmentation of it (IIC on real data; not in the slides).")
    diversity_weight: float = _field(
        0.3, "Weight of the generator's mode-seeking term against collapse inside a component "
        "(not in the slides; 0 turns it off: --model=gaussian --diversity_weight=0 is the vanilla "
        "DCGAN baseline).")
    pseudo_label_weight: float = _field(
        1.0, "Weight of L^{x,warm}: cross-entropy of C(x) on real images against the warm start's "
        "responsibilities, every step (keeps the loop from forgetting them; --pcm_init=embedding "
        "only, not in the slides).")
    self_label_weight: float = _field(
        1.0, "Weight of L^{x,self}: cross-entropy of C on an augmented view of a real image "
        "against the PCM's own confident prediction on the image (self-labelling, which refines "
        "the clusters; not in the slides).")
    self_label_threshold: float = _field(
        0.95, "L^{x,self} uses a real image only when max_k C(x)_k exceeds this.")
    adversarial_weight: float = _field(1.0, "Weight of L^adversarial.")
    latent_consistency_weight: float = _field(1.0, "Weight of L^{x^,z} (eq. 4).")
    real_fake_consistency_weight: float = _field(1.0, "Weight of L^{x^,x} (eq. 5).")

    # --- levers from the GAN literature (not in the slides; off until measured, DESIGN.md) ---
    ema_decay: float = _field(
        0.999, "Keep an exponential moving average of G's variables (Karras et al. 2018, Yazici "
        "et al. 2019) with this decay (typical 0.999; min(d, n/(n+9)) at G step n), which "
        "samples, evaluation, --mode=sample/interpolate and the exported generator then use; "
        "training's fakes still come from G. 0 = off (docs/RESULTS.md: on over three seeds of "
        "flags/quick.cfg, NDB/K 0.71 -> 0.60, domain FID 37 -> 26).")
    raw_generator: bool = _field(
        False, "Generate (samples, evaluation, --mode=sample/interpolate/export) with G itself, "
        "not with its moving average, in a run trained with --ema_decay: e.g. --mode=evaluate "
        "--raw_generator compares the two on the same run.")
    sampling_temperature: float = _field(
        0.0, "Scale the noise of everything generated for the user (samples, evaluation, "
        "--mode=sample/interpolate and the exported sample_component): G(mu_k + sigma_k * tau * "
        "eps) with tau this value; training's fakes keep tau = 1. 0 = the run's own: 1 for a new "
        "run (the learned prior), the trained run's value for the other modes. Above 1 widens "
        "every component (docs/RESULTS.md, \"A sampling temperature\").")
    diff_augment: str = _field(
        "", "DiffAugment (Zhao et al. 2020): comma list of color, translation, cutout (e.g. "
        "translation,cutout), random differentiable transforms applied in that order to real and "
        "fake images before D (not the PCM). Empty = off.")
    r1_weight: float = _field(
        0.0, "gamma of the R1 penalty gamma/2 E|grad_x D(x)|^2 on real images (Mescheder et al. "
        "2018), added to D's loss; with per-component heads each head is penalised on the real "
        "images eq. 6 weights for it. 0 = off.")
    reconstruction_weight: float = _field(
        0.0, "Weight of the mode regulariser (Che et al. 2017): an encoder E maps each real image "
        "x to noise eps^ = E(x), and G is trained to reproduce x from mu_k + sigma_k eps^ (k the "
        "PCM's component of x) by mean squared error, so that every training image stays "
        "reachable from its component; E's codes are held to N(0, I)'s mean and variance. "
        "--model=gmmgan only. 0 = off.")

    coverage_weight: float = _field(
        0.0, "Weight of a nearest-fake coverage term for G (implicit maximum likelihood, Li & "
        "Malik 2018): each real image x pulls the nearest of its component's fakes in the batch "
        "towards it by mean squared error (k the PCM's component of x), so that the rarer styles "
        "of a class get samples. --model=gmmgan only. 0 = off.")
    coverage_threshold: float = _field(
        0.0, "With --coverage_weight, only the real images whose largest responsibility "
        "max_k C(x)_k exceeds this pull a fake (0 = all): the PCM's doubtful images, more often "
        "of another class, then do not pull its component's fakes towards that class.")

    # --- optimisation ------------------------------------------------------------------------
    batch_size: int = _field(32, "M, real images a step (global, over all replicas).")
    epochs: int = _field(5, "Training epochs.")
    steps_per_epoch: int = _field(0, "Steps an epoch; 0 = one pass over the training images.")
    learning_rate_d: float = _field(2e-4, "Adam learning rate of D.")
    learning_rate_g: float = _field(2e-4, "Adam learning rate of G.")
    learning_rate_c: float = _field(1e-3, "Adam learning rate of the PCM C.")
    learning_rate_prior: float = _field(1e-3, "Adam learning rate of the prior (mu, sigma).")
    adam_beta1: float = _field(0.5, "Adam beta_1 of every optimizer.")
    jit_compile: bool = _field(False, "XLA-compile the train step (not with --strategy=mirrored).")
    strategy: str = _field(
        "default", "tf.distribute strategy.", ("default", "mirrored", "multi_worker"))
    num_virtual_devices: int = _field(
        0, "Split the CPU into N logical devices (tests and demos of --strategy=mirrored).")

    # --- evaluation --------------------------------------------------------------------------
    eval_every: int = _field(1, "Evaluate (and log) every N epochs; 0 = only at the end.")
    eval_samples: int = _field(
        1000, "Generated images per evaluation during training (--mode=evaluate and the final "
        "metrics use --ndb_samples).")
    eval_quality: bool = _field(
        True, "Also compute sample quality (NDB/K, domain IS/FID/KID, mode coverage, sharpness) "
        "when evaluating; the first use trains and caches the data set's domain classifier.")
    compare: str = _field(
        "", "--mode=evaluate: comma-separated workdirs to compare side by side (table + plots "
        "written under --workdir).")
    sample_rows: int = _field(10, "Images per component row in samples.png.")

    # --- evaluation metrics (gmmgan_tf/metrics/) ---------------------------------------------
    ndb_bins: int = _field(100, "NDB bins K (K-means on the training images; paper: 100/200/300).")
    ndb_samples: int = _field(
        20000, "Generated images for NDB/K and IS/FID in --mode=evaluate (paper: 20,000).")
    ndb_whitening: str = _field(
        "auto", "Per-dimension whitening before NDB's K-means: auto = on for RGB, off for grey "
        "(as the authors did).", ("auto", "on", "off"))
    ndb_significance: float = _field(0.05, "NDB two-tailed two-proportion z-test level alpha.")
    ndb_z_threshold: float = _field(
        0.0, "NDB: a bin differs when |z| > this instead of the alpha test (0 = use alpha).")
    inception_weights: str = _field(
        "", "Keras InceptionV3 weights file (.h5) for the standard IS/FID; empty = only the "
        "domain IS/FID from the project's own classifier.")
    metrics_cache_dir: str = _field(
        "", "Where NDB bins and domain classifiers are cached per data set "
        "(default ~/.cache/gmmgan_tf).")

    # --- mixture of factor analyzers, --model=mfa (gmmgan_tf/mfa/) ----------------------------
    mfa_components: int = _field(100, "MFA: number of factor analyzers K (seed 001 MNIST: 100).")
    mfa_factors: int = _field(10, "MFA: latent factors l a component (l < pixels; seed 001: 10).")
    mfa_fit: str = _field("em", "MFA fit: closed-form EM or Adam on -log-likelihood.",
                          ("em", "sgd"))
    mfa_iterations: int = _field(20, "MFA: EM iterations (--mfa_fit=em) or Adam steps (sgd).")
    mfa_init: str = _field("fa", "MFA init after K-means: FactorAnalysis or PPCA a cluster.",
                           ("fa", "ppca"))
    mfa_noise_floor: float = _field(1e-4, "MFA: floor on the noise variances D (pixels in [-1, 1]).")
    mfa_learning_rate: float = _field(1e-3, "MFA: Adam learning rate for --mfa_fit=sgd.")
    pix2pix_epochs: int = _field(5, "--mode=mfa_pix2pix: epochs over the (MFA reconstruction, "
                                 "real) training pairs.")
    pix2pix_l1_weight: float = _field(100.0, "--mode=mfa_pix2pix: lambda of the L1 term.")
    adversarial_steps: int = _field(2000, "--mode=mfa_adversarial: generator steps of the WGAN-GP "
                                    "fine-tuning of the fitted MFA.")

    # --- export and serving (gmmgan_tf/export.py) --------------------------------------------
    export_dir: str = _field(
        "saved_models", "--mode=export: writes <dir>/gmmgan_generator/<v>/, "
        "<dir>/gmmgan_pcm/<v>/ and <dir>/models.config (TF Serving layout).")
    export_replace_model: bool = _field(
        False, "--mode=export: allow a run of another data set or image size than the newest "
        "version in --export_dir (a running server then switches to it); refused without.")

    # --- clustering a user's images, --mode=assign (gmmgan_tf/assign.py) -----------------------
    images: str = _field(
        "", "--mode=assign: a folder of PNG/JPEG/BMP/GIF images (searched recursively) or a .npy "
        "batch [N, H, W(, C)] (uint8, or floats in [-1, 1]) to sort by the PCM's components.")
    assign_dir: str = _field(
        "", "--mode=assign: where assignments.csv and clusters/component_<k>.png go "
        "(default <workdir>/assign).")

    def resolved(self) -> "Config":
        """Fills in what defaults to the data set (--image_size=0)."""
        if self.image_size:
            return self
        name = self.dataset.removeprefix("imbalanced_")
        return dataclasses.replace(self, image_size=NATIVE_IMAGE_SIZES.get(name, FOLDER_IMAGE_SIZE))

    def validate(self) -> "Config":
        """Returns self, or raises ConfigError naming the first bad flag and its fix."""
        _check(self.mode in MODES, "mode", f"unknown mode {self.mode!r}; use one of {MODES}")
        _check_not_a_file("workdir", self.workdir, "--workdir=")
        if self.mode == "evaluate":  # every run, before the first one is evaluated
            for entry in self.compare_entries:
                _check_not_a_file("compare", entry)
                _check(os.path.isdir(entry), "compare", f"{entry!r} does not exist")
                _check(_holds_scores_or_run(entry), "compare", f"{entry!r} holds no trained run "
                       "(no config.json with a checkpoint, nor eval/metrics.json); train it "
                       "first or leave it out")
        _check(_known_dataset(self.dataset), "dataset",
               f"unknown dataset {self.dataset!r}; use one of {BUILTIN_DATASETS}, "
               "imbalanced_<name> or folder:<path>")
        _check(self.image_size in (0,) + SUPPORTED_IMAGE_SIZES, "image_size",
               f"the networks cannot make {self.image_size}-pixel images; use one of "
               f"{SUPPORTED_IMAGE_SIZES}")
        _check(self.num_components >= 1, "num_components",
               f"must be >= 1 (got {self.num_components})")
        _check(self.latent_dim >= 1, "latent_dim", f"must be >= 1 (got {self.latent_dim})")
        _check(self.batch_size >= 1, "batch_size", f"must be >= 1 (got {self.batch_size})")
        _check(self.epochs >= 0, "epochs", f"must be >= 0 (got {self.epochs})")
        _check(self.steps_per_epoch >= 0, "steps_per_epoch",
               f"must be >= 0 (got {self.steps_per_epoch})")
        _check(0 <= self.validation_fraction < 0.5, "validation_fraction",
               f"must be in [0, 0.5) (got {self.validation_fraction})")
        _check(self.eval_every >= 0, "eval_every", f"must be >= 0 (got {self.eval_every})")
        _check(self.eval_samples >= 1, "eval_samples", f"must be >= 1 (got {self.eval_samples})")
        _check(self.sample_rows >= 1, "sample_rows", f"must be >= 1 (got {self.sample_rows})")
        _check(self.ndb_bins >= 2, "ndb_bins", f"must be >= 2 (got {self.ndb_bins})")
        _check(self.ndb_samples >= self.ndb_bins, "ndb_samples",
               f"{self.ndb_samples} samples cannot fill {self.ndb_bins} NDB bins; use "
               "--ndb_samples >= --ndb_bins")
        _check(0 < self.ndb_significance < 1, "ndb_significance", "must be in (0, 1)")
        _check(self.ndb_z_threshold >= 0, "ndb_z_threshold", "must be >= 0 (0 = use alpha)")
        _check(not self.inception_weights or os.path.isfile(self.inception_weights),
               "inception_weights", f"no file at {self.inception_weights!r}; pass the Keras "
               "InceptionV3 .h5 weights or leave it empty for the domain IS/FID only")
        _check(self.width_multiplier > 0, "width_multiplier",
               f"must be > 0 (got {self.width_multiplier})")
        _check(self.prior_sigma_init > self.prior_sigma_floor > 0, "prior_sigma_init",
               "need prior_sigma_init > prior_sigma_floor > 0 "
               f"(got {self.prior_sigma_init} and {self.prior_sigma_floor})")
        _check(self.prior_mean_init_std >= 0, "prior_mean_init_std", "must be >= 0")
        _check(0 <= self.bn_momentum < 1, "bn_momentum", "must be in [0, 1)")
        _check(0 <= self.adam_beta1 < 1, "adam_beta1", "must be in [0, 1)")
        for name in ("learning_rate_d", "learning_rate_g", "learning_rate_c",
                     "learning_rate_prior"):
            _check(getattr(self, name) > 0, name, f"must be > 0 (got {getattr(self, name)})")
        for name in ("adversarial_weight", "latent_consistency_weight",
                     "real_fake_consistency_weight", "real_augment_consistency_weight",
                     "diversity_weight", "pseudo_label_weight", "self_label_weight",
                     "reconstruction_weight", "coverage_weight"):
            _check(getattr(self, name) >= 0, name, f"must be >= 0 (got {getattr(self, name)})")
        for name in ("warm_start_autoencoder_steps", "warm_start_dims"):
            _check(getattr(self, name) >= 1, name, f"must be >= 1 (got {getattr(self, name)})")
        _check(self.warm_start_neighbors >= 2, "warm_start_neighbors",
               f"UMAP needs >= 2 neighbours (got {self.warm_start_neighbors})")
        _check(self.warm_start_fit_images >= self.warm_start_neighbors + 1,
               "warm_start_fit_images", f"must exceed --warm_start_neighbors "
               f"({self.warm_start_neighbors}); got {self.warm_start_fit_images}")
        _check(self.warm_start_neighbour_epochs >= 0, "warm_start_neighbour_epochs",
               f"must be >= 0 (got {self.warm_start_neighbour_epochs})")
        _check(self.pcm_pretrain_epochs >= 0, "pcm_pretrain_epochs",
               f"must be >= 0 (got {self.pcm_pretrain_epochs})")
        _check(0 <= self.self_label_threshold < 1, "self_label_threshold", "must be in [0, 1)")
        _check(0 <= self.sampling_temperature < float("inf"), "sampling_temperature",
               f"must be a number >= 0 (0 = the run's own; got {self.sampling_temperature})")
        _check(0 <= self.ema_decay < 1, "ema_decay",
               f"must be in [0, 1) (0 = off, typical 0.999; got {self.ema_decay})")
        augmentations = self.diff_augmentations
        _check(set(augmentations) <= set(DIFF_AUGMENTATIONS)
               and len(set(augmentations)) == len(augmentations), "diff_augment",
               f"want a comma list of distinct names from {DIFF_AUGMENTATIONS} such as "
               f"translation,cutout, or empty for none; got {self.diff_augment!r}")
        _check(self.r1_weight >= 0, "r1_weight", f"must be >= 0 (got {self.r1_weight})")
        _check(not (self.r1_weight and self.gan_loss == "wgan_gp"), "r1_weight",
               "wgan_gp has its own gradient penalty; drop --r1_weight or use "
               "--gan_loss=non_saturating or minimax")
        for name in ("reconstruction_weight", "coverage_weight"):
            _check(not getattr(self, name) or self.uses_pcm, name,
                   "needs the PCM to pick each real image's component; add --model=gmmgan or "
                   f"drop --{name}")
        _check(0 <= self.coverage_threshold < 1, "coverage_threshold",
               f"must be in [0, 1) (got {self.coverage_threshold})")
        _check(_parse_classes(self.exclude_classes) is not None, "exclude_classes",
               f"want comma-separated distinct class ids >= 0 such as 3 or 3,5; got "
               f"{self.exclude_classes!r}")
        _check(self.minor_count >= 1, "minor_count", f"must be >= 1 (got {self.minor_count})")
        _check(self.num_virtual_devices >= 0, "num_virtual_devices", "must be >= 0")
        _check(not (self.pcm_adversarial_update and self.discriminator_heads == "per_component"),
               "pcm_adversarial_update", "with per-component heads the generator side of eq. 6 "
               "does not depend on the PCM; add --discriminator_heads=single")
        _check(self.gan_loss != "wgan_gp" or self.model == "gaussian", "gan_loss",
               "wgan_gp is implemented for the Gaussian-latent baseline only; add "
               "--model=gaussian or use non_saturating/minimax")
        _check(not (self.jit_compile and self.strategy != "default"), "jit_compile",
               "XLA does not work with a distribution strategy; drop --jit_compile or use "
               "--strategy=default")
        _check(self.mode != "assign" or bool(self.images), "images",
               "--mode=assign needs the images to sort: --images=<folder or .npy file>")
        _check(not self.images or os.path.exists(self.images), "images",
               f"{self.images!r} does not exist; pass a folder of images or a .npy batch")
        _check(not self.images or os.path.isdir(self.images) or self.images.endswith(".npy"),
               "images", f"{self.images!r} is neither a folder nor a .npy file; pass a folder of "
               "images or a .npy batch")
        # MFA (gmmgan_tf/mfa/); l < pixels is checked against the data by the MFA itself.
        for name in ("mfa_components", "mfa_factors"):
            _check(getattr(self, name) >= 1, name, f"must be >= 1 (got {getattr(self, name)})")
        _check(self.mfa_iterations >= (1 if self.mfa_fit == "sgd" else 0), "mfa_iterations",
               f"must be >= 0 for em, >= 1 for sgd (got {self.mfa_iterations})")
        _check(self.pix2pix_epochs >= 0, "pix2pix_epochs",
               f"must be >= 0 (got {self.pix2pix_epochs})")
        _check(self.pix2pix_l1_weight >= 0, "pix2pix_l1_weight",
               f"must be >= 0 (got {self.pix2pix_l1_weight})")
        _check(self.adversarial_steps >= 1, "adversarial_steps",
               f"must be >= 1 (got {self.adversarial_steps})")
        for name in ("mfa_noise_floor", "mfa_learning_rate"):
            _check(getattr(self, name) > 0, name, f"must be > 0 (got {getattr(self, name)})")
        for name, value in dataclasses.asdict(self).items():
            choices = _CHOICES.get(name)
            _check(choices is None or value in choices, name,
                   f"{value!r} is not one of {choices}")
        return self

    @property
    def excluded_classes(self) -> tuple[int, ...]:
        """--exclude_classes as sorted ints (validate() has checked the text)."""
        return _parse_classes(self.exclude_classes) or ()

    @property
    def compare_entries(self) -> list[str]:
        """--compare's workdirs, in order."""
        return [w.strip() for w in self.compare.split(",") if w.strip()]

    @property
    def diff_augmentations(self) -> tuple[str, ...]:
        """--diff_augment as a tuple of names, in their order ("" -> ())."""
        parts = self.diff_augment.split(",") if self.diff_augment.strip() else []
        return tuple(p.strip() for p in parts)

    @property
    def uses_pcm(self) -> bool:
        return self.model == "gmmgan"

    @property
    def uses_warm_start(self) -> bool:
        return self.uses_pcm and self.pcm_init == "embedding"

    @property
    def noise_temperature(self) -> float:
        """tau of the noise of what is generated for the user: --sampling_temperature, whose 0
        (the run's own) means 1 in a run that never set it."""
        return self.sampling_temperature or 1.0

    @property
    def uses_mixture_prior(self) -> bool:
        return self.model in ("gmmgan", "gmm")

    @property
    def num_prior_components(self) -> int:
        """Components of the latent prior: K for mixture priors, 1 for N(0, I)."""
        return self.num_components if self.uses_mixture_prior else 1

    def as_flagfile(self) -> str:
        """The full resolved flag set, replayable with `main.py --flagfile=...`."""
        lines = []
        for name, value in dataclasses.asdict(self).items():
            if isinstance(value, bool):
                lines.append(f"--{name}" if value else f"--no{name}")
            else:
                lines.append(f"--{name}={value}")
        return "\n".join(lines) + "\n"


_CHOICES = {f.name: f.metadata["choices"] for f in dataclasses.fields(Config)
            if f.metadata.get("choices")}


def _known_dataset(name: str) -> bool:
    if name.startswith("folder:"):
        return len(name) > len("folder:")
    if name.startswith("imbalanced_"):
        name = name[len("imbalanced_"):]
    return name in BUILTIN_DATASETS


def _parse_classes(text: str) -> tuple[int, ...] | None:
    """"3,5" -> (3, 5); "" -> (); None when the text is not distinct ints >= 0."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not all(p.isdigit() for p in parts) or len(set(map(int, parts))) != len(parts):
        return None
    return tuple(sorted(int(p) for p in parts))


def _check_not_a_file(flag: str, path: str, fix_prefix: str = "") -> None:
    """A run directory given as one of its files (runs/x/config.json) would fail later with
    NotADirectoryError on <file>/config.json."""
    _check(not os.path.isfile(path), flag, f"{path!r} is a file, not a run directory; pass the "
           f"run's folder, {fix_prefix}{os.path.dirname(path) or '.'}")


def _holds_scores_or_run(workdir: str) -> bool:
    """What --compare can use: saved scores, or a run to evaluate (a config.json and a
    checkpoint, as workdir.py names them; that module imports TensorFlow, seconds away)."""
    return os.path.isfile(os.path.join(workdir, "eval", "metrics.json")) or (
        os.path.isfile(os.path.join(workdir, "config.json"))
        and bool(glob.glob(os.path.join(workdir, "checkpoints", "ckpt-*.index"))))


def _check(ok: bool, flag: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"--{flag}: {message}")

