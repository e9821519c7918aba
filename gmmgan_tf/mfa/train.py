"""`--model=mfa` on the command line: fit, evaluate, figures, MFA+pix2pix and adversarial MFA,
all on a workdir.

    python main.py --model=mfa --workdir=W                  # fit (resumable), figures, metrics.json
    python main.py --mode=evaluate --workdir=W              # W/eval/metrics.json (NDB/K, JS)
    python main.py --mode=mfa_figures --workdir=W           # W/figures/: every inference figure
    python main.py --mode=mfa_pix2pix --workdir=W           # W/pix2pix/: MFA+pix2pix, before/after
    python main.py --mode=mfa_adversarial --workdir=W       # W/adversarial/: WGAN-GP fine-tuning

The workdir is the GAN's layout (workdir.py): flags.cfg, config.json, checkpoints/ (here the MFA
parameters and the number of completed EM iterations, or Adam steps, saved atomically after each
one), tensorboard/mfa (log-likelihood per iteration, final metrics), PNGs and metrics.json.
Running the same command again resumes the fit, or only redoes the figures and metrics.
"""
from __future__ import annotations

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from gmmgan_tf import data as data_lib, images as image_files, novelty, run_options
from gmmgan_tf import workdir as wd
from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.metrics import plots, report, sharpness
from gmmgan_tf.metrics.ndb import NDB, cached_ndb
from gmmgan_tf.mfa import fit as mfa_fit, inference, pipeline
from gmmgan_tf.mfa.adversarial import AdversarialMFA
from gmmgan_tf.mfa.model import MFA
from gmmgan_tf.mfa.pix2pix import Pix2Pix

# Adam (--mfa_fit=sgd) is checkpointed every this many steps; its moments restart on resumption.
SGD_CHECKPOINT_EVERY = 100
# Held-out images shown in reconstruction figures.
NUM_SHOWN = 30
# Images a batch of the adversarial fine-tuning (docs/MFA.md's mnist_5k numbers used 64).
ADVERSARIAL_BATCH = 64


def save_grid(path: str, images, cols: int) -> str:
    """Images [N, H, W, C] in [-1, 1] as a PNG grid, row-major (PIL: a 100-subplot matplotlib
    figure takes seconds on a busy CPU)."""
    x = np.asarray(images, np.float32)
    image_files.save_png(path, image_files.grid(x, -(-len(x) // cols), cols))
    return path


def _verbose() -> int:
    return 1 if sys.stdout.isatty() else 2


def empty_mfa(num_components: int, num_factors: int, dim: int, noise_floor: float) -> MFA:
    """An MFA of the right shapes (uniform pi, mu = A = 0, D = 1) to restore a checkpoint into."""
    return MFA(np.full(num_components, 1.0 / num_components), np.zeros((num_components, dim)),
               np.zeros((num_components, dim, num_factors)), np.ones((num_components, dim)),
               noise_floor=noise_floor)


def _check_sizes(config: Config, bundle) -> int:
    """ConfigErrors for --mfa_components/--mfa_factors the data cannot support; returns d."""
    dim = int(np.prod(bundle.image_shape))
    if not config.mfa_factors < dim:
        raise ConfigError(f"--mfa_factors: {config.mfa_factors} factors need images of more than "
                          f"{config.mfa_factors} pixels ({bundle.image_shape} has {dim}); use "
                          "fewer factors")
    if config.mfa_components > len(bundle.train_images):
        raise ConfigError(f"--mfa_components: {config.mfa_components} components need at least "
                          f"as many training images ({len(bundle.train_images)}); use fewer")
    return dim


def mfa_images(model: MFA, count: int, image_shape, seed: int = 0, noise: bool = False
               ) -> np.ndarray:
    """`count` MFA samples as images [N, H, W, C] clipped to [-1, 1] (the stored pixel range),
    noise-free (A_c z + mu_c, the paper's "MFA samples") unless noise=True."""
    x, _ = model.sample(count, seed=seed, noise=noise)
    return np.clip(x.numpy(), -1.0, 1.0).reshape((count,) + tuple(image_shape))


def data_ndb(config: Config, bundle) -> NDB:
    """The data set's NDB bins (--ndb_bins, cached per data set under --metrics_cache_dir; keyed
    by the bundle's name, which names --exclude_classes too)."""
    return cached_ndb(report.default_cache_dir(config.metrics_cache_dir), bundle.name,
                      bundle.train_images, config.ndb_bins, config.ndb_whitening, config.seed)


def sample_metrics(config: Config, bundle, model: MFA, ndb: NDB | None = None) -> dict:
    """NDB/K, JS and sharpness of --ndb_samples noise-free MFA samples against the training
    images, the TEST row (held-out images, `ref_*`), and NDB/K, JS of samples with pixel noise
    (`noisy_*`)."""
    ndb = ndb or data_ndb(config, bundle)
    z = config.ndb_z_threshold or None
    samples = mfa_images(model, config.ndb_samples, bundle.image_shape, config.seed)
    out = report.scalars(report.evaluate_samples(
        bundle.train_images, bundle.test_images, samples, ndb=ndb,
        ndb_significance=config.ndb_significance, ndb_z_threshold=z, seed=config.seed))
    noisy = ndb.evaluate(mfa_images(model, config.ndb_samples, bundle.image_shape, config.seed,
                                    noise=True), config.ndb_significance, z)
    out.update(noisy_ndb_over_k=noisy["ndb_over_k"], noisy_ndb_js=noisy["js"],
               train_sharpness=sharpness.sharpness(bundle.train_images))
    return out


def novelty_metrics(bundle, model: MFA, out_dir: str) -> dict:
    """With --exclude_classes: AUROC/AUPRC of the MFA's novelty scorers (-log p(x), and its
    responsibilities' max and entropy) on the held-out images, and out_dir/novelty_roc.png."""
    if not bundle.excluded_classes:
        return {}
    scores = novelty.score_all(novelty.mfa_outputs(model, bundle.test_images))
    metrics = novelty.detection_metrics(scores, bundle.test_labels, bundle.excluded_classes)
    os.makedirs(out_dir, exist_ok=True)
    plots.plot_novelty_roc([("mfa", metrics)], wd.path(out_dir, "novelty_roc.png"))
    return metrics


def _log_scalars(writer, scalars: dict, step: int, prefix: str) -> None:
    with writer.as_default():
        for name, value in scalars.items():
            tf.summary.scalar(f"{prefix}/{name}", value, step=step)
    writer.flush()


def fit_resumable(config: Config, bundle, model: MFA, checkpointer: wd.Checkpointer,
                  open_writer) -> int:
    """Initialise (K-means + FA/PPCA) unless a checkpoint exists, then run the EM iterations
    (or Adam steps) not done yet, checkpointing as it goes; returns the iterations done before.
    `open_writer()` gives the TensorBoard writer, opened only after a restore that can fail (it
    creates an event file, and a failing command must leave the workdir as it was)."""
    if checkpointer.candidates():
        done = checkpointer.restore_latest()
        print(f"Resuming {config.workdir}: {done} of {config.mfa_iterations} {config.mfa_fit} "
              "iterations done.", flush=True)
    else:
        print(f"Initialising {config.mfa_components} components: K-means, then "
              f"{config.mfa_init.upper()} a cluster ({config.mfa_factors} factors).", flush=True)
        fresh = mfa_fit.init_mfa(bundle.train_images, config.mfa_components, config.mfa_factors,
                                 config.mfa_init, config.mfa_noise_floor, config.seed)
        for target, source in zip(model.trainable_variables, fresh.trainable_variables):
            target.assign(source)
        done = 0
        checkpointer.save(0)
    remaining = config.mfa_iterations - done
    if remaining <= 0:
        return done
    em = config.mfa_fit == "em"
    name = "log_likelihood" if em else "neg_log_likelihood"
    bar = keras.utils.Progbar(config.mfa_iterations, verbose=_verbose(), stateful_metrics=[name])
    bar.update(done)

    def on_step(i: int, value: float) -> None:
        # EM reports the model after i M-steps; Adam the loss of step i (then applied).
        step = done + (i if em else i + 1)
        _log_scalars(open_writer(), {name: value}, step, "mfa")
        if step > done and (em or step % SGD_CHECKPOINT_EVERY == 0 or step == done + remaining):
            checkpointer.save(step)
        bar.update(step, values=[(name, value)])

    mfa_fit.fit(model, bundle.train_images, config.mfa_fit, remaining,
                config.batch_size if config.mfa_fit == "sgd" else None,
                config.mfa_learning_rate, config.seed + done, on_step)
    return done


def write_reconstructions(model: MFA, images, path: str) -> float:
    """Rows of 10 real images, each followed by a row of their MAP reconstructions
    A_c z + mu_c; returns the RMSE."""
    x = np.asarray(images, np.float32)
    recon, _, _ = inference.map_reconstruction(model, x)
    rows = np.concatenate([np.stack([x[i:i + 10], recon[i:i + 10]]).reshape((-1,) + x.shape[1:])
                           for i in range(0, len(x), 10)])
    save_grid(path, rows, 10)
    return float(np.sqrt(np.mean((recon - x) ** 2)))


def write_standard_figures(model: MFA, bundle, out_dir: str, seed: int) -> dict:
    """samples, outliers, inpainting, components, reconstructions (PNG) and mfa_report.json."""
    figures = pipeline.write_figures(model, bundle.train_images, out_dir,
                                     test_images=bundle.test_images, seed=seed)
    shown = bundle.test_images[:NUM_SHOWN]
    rmse = write_reconstructions(model, shown, wd.path(out_dir, "reconstructions.png"))
    return {"train_mean_log_likelihood": figures["train_mean_log_likelihood"],
            "heldout_mean_log_likelihood": figures["heldout_mean_log_likelihood"],
            "inpainting_hidden_pixel_rmse": figures["inpainting_hidden_pixel_rmse"],
            "reconstruction_rmse": rmse}


def train_mfa(config: Config) -> dict:
    """`--model=mfa --mode=train`: fit (resumable), write figures and metrics.json; returns it."""
    wd.save_config(config)
    keras.utils.set_random_seed(config.seed)
    bundle = data_lib.load(config)
    dim = _check_sizes(config, bundle)
    print(f"Data: {bundle.name}, {len(bundle.train_images)} training images "
          f"{bundle.image_shape}, {len(bundle.test_images)} held out.", flush=True)
    model = empty_mfa(config.mfa_components, config.mfa_factors, dim, config.mfa_noise_floor)
    checkpointer = wd.Checkpointer(model, config.workdir)
    writers = []

    def open_writer():
        if not writers:
            writers.append(tf.summary.create_file_writer(
                wd.path(config.workdir, "tensorboard", "mfa")))
        return writers[0]

    fit_resumable(config, bundle, model, checkpointer, open_writer)
    writer = open_writer()
    print("Figures and NDB/K ...", flush=True)
    metrics = {"model": "mfa", "dataset": config.dataset,
               "mfa_components": config.mfa_components, "mfa_factors": config.mfa_factors,
               "mfa_fit": config.mfa_fit, "mfa_iterations": config.mfa_iterations}
    metrics.update(write_standard_figures(model, bundle, config.workdir, config.seed))
    metrics.update(sample_metrics(config, bundle, model))
    metrics.update(novelty_metrics(bundle, model, config.workdir))
    _log_scalars(writer, {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                 config.mfa_iterations, "eval")
    wd.write_json(wd.path(config.workdir, "metrics.json"), metrics)
    return metrics


def load_trained_mfa(config: Config) -> tuple[Config, object, MFA]:
    """(saved config with this run's evaluation options, data, MFA) of --workdir's checkpoint."""
    trained = wd.load_config(config.workdir, **run_options.overrides(config))
    if trained.model != "mfa":
        raise ConfigError(f"--mode={config.mode}: {config.workdir!r} holds a --model="
                          f"{trained.model} run; MFA modes need a --model=mfa workdir")
    # As trained, whatever this --seed (only where the data is prepared may differ).
    bundle = data_lib.load(wd.load_config(config.workdir, data_dir=trained.data_dir))
    model = empty_mfa(trained.mfa_components, trained.mfa_factors, _check_sizes(trained, bundle),
                      trained.mfa_noise_floor)
    wd.Checkpointer(model, config.workdir).restore_trained(
        f"--workdir: {config.workdir!r} has no MFA checkpoint yet; fit one with --model=mfa "
        "--mode=train")
    return trained, bundle, model


def _report(out: str, scores: dict) -> None:
    wd.write_json(out, scores)
    print(f"Wrote {out}")
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in scores.items() if not isinstance(v, list)))  # not ROC curves


def evaluate(config: Config) -> None:
    """`--mode=evaluate` on an MFA workdir: W/eval/metrics.json (NDB/K, JS, sharpness, TEST row)."""
    trained, bundle, model = load_trained_mfa(config)
    scores = {"model": "mfa", "dataset": trained.dataset}
    scores.update(sample_metrics(trained, bundle, model))
    scores.update(novelty_metrics(bundle, model, wd.path(config.workdir, "eval")))
    _report(wd.path(config.workdir, "eval", "metrics.json"), scores)


def figures(config: Config) -> None:
    """`--mode=mfa_figures`: every inference output under W/figures/: samples.png (noise-free),
    samples_with_noise.png, outliers.png (least likely held-out images), inpainting.png,
    components.png (seed 001 Fig. 6), reconstructions.png (MAP), responsibilities.png (held-out
    images grouped by their most responsible component), mfa_report.json and inference.npz
    (per-image log-likelihood, responsibilities, MAP component of every held-out image)."""
    trained, bundle, model = load_trained_mfa(config)
    out = wd.path(config.workdir, "figures")
    scores = write_standard_figures(model, bundle, out, trained.seed)
    save_grid(wd.path(out, "samples_with_noise.png"),
              mfa_images(model, 100, bundle.image_shape, trained.seed, noise=True), 10)
    test = bundle.test_images
    resp = inference.responsibilities(model, test)
    _, c_map, _ = inference.map_reconstruction(model, test)
    np.savez(wd.path(out, "inference.npz"), log_likelihood=inference.log_likelihood(model, test),
             responsibilities=resp, map_component=c_map)
    scores.update(write_responsibilities(resp, test, wd.path(out, "responsibilities.png")))
    _report(wd.path(out, "metrics.json"), scores)


def write_responsibilities(resp: np.ndarray, images: np.ndarray, path: str, rows: int = 10,
                           per_row: int = 10) -> dict:
    """A row per most used component (argmax_j p(j | x)): its held-out members, most confident
    first. Returns the mean max responsibility and the number of components used."""
    top = resp.argmax(axis=1)
    counts = np.bincount(top, minlength=resp.shape[1])
    grid = np.full((rows, per_row) + images.shape[1:], -1.0, np.float32)
    for r, j in enumerate(np.argsort(-counts, kind="stable")[:rows]):
        members = np.flatnonzero(top == j)
        members = members[np.argsort(-resp[members, j], kind="stable")][:per_row]
        grid[r, :len(members)] = images[members]
    save_grid(path, grid.reshape((-1,) + images.shape[1:]), per_row)
    return {"mean_max_responsibility": float(resp.max(axis=1).mean()),
            "components_used": int(np.count_nonzero(counts))}


def run_pix2pix(config: Config) -> None:
    """`--mode=mfa_pix2pix`: train pix2pix on (MAP reconstruction, real) training pairs for
    --pix2pix_epochs (resumable, W/pix2pix/checkpoints), apply it to --ndb_samples MFA samples,
    and write W/pix2pix/metrics.json (sharpness, NDB/K and JS before and after; held-out L1 of the
    reconstructions before and after), samples.png (rows of MFA samples, each followed by the
    same samples after pix2pix) and reconstructions.png (triples: held-out image, its MFA MAP
    reconstruction, pix2pix of that)."""
    trained, bundle, model = load_trained_mfa(config)
    out = wd.path(config.workdir, "pix2pix")
    train, test = bundle.train_images, bundle.test_images
    recon_train = np.clip(inference.map_reconstruction(model, train)[0], -1.0, 1.0)
    p2p = Pix2Pix(bundle.image_shape, l1_weight=trained.pix2pix_l1_weight)
    checkpointer = wd.Checkpointer(p2p, out)
    start = checkpointer.restore_latest()
    print(f"pix2pix on {len(train)} (MFA reconstruction, real) pairs: epochs {start} -> "
          f"{trained.pix2pix_epochs}", flush=True)
    p2p.fit(recon_train, train, trained.pix2pix_epochs, trained.batch_size, trained.seed,
            initial_epoch=start, verbose=_verbose(),
            on_epoch_end=lambda epoch, logs: checkpointer.save(epoch))
    samples = mfa_images(model, trained.ndb_samples, bundle.image_shape, trained.seed)
    refined = p2p.translate(samples)
    recon_test = np.clip(inference.map_reconstruction(model, test)[0], -1.0, 1.0)
    refined_test = p2p.translate(recon_test)
    ndb = data_ndb(trained, bundle)
    z = trained.ndb_z_threshold or None
    scores = {"pix2pix_epochs": trained.pix2pix_epochs,
              "train_sharpness": sharpness.sharpness(train),
              "test_sharpness": sharpness.sharpness(test)}
    for name, images in (("mfa", samples), ("mfa_pix2pix", refined)):
        result = ndb.evaluate(images, trained.ndb_significance, z)
        scores.update({f"{name}_sharpness": sharpness.sharpness(images),
                       f"{name}_ndb_over_k": result["ndb_over_k"], f"{name}_ndb_js": result["js"]})
    scores.update(ndb_bins=ndb.num_bins, ndb_samples=len(samples),
                  heldout_l1_mfa_reconstruction=float(np.mean(np.abs(recon_test - test))),
                  heldout_l1_pix2pix=float(np.mean(np.abs(refined_test - test))))
    pairs = np.stack([samples[:50].reshape(5, 10, -1), refined[:50].reshape(5, 10, -1)], 1)
    save_grid(wd.path(out, "samples.png"), pairs.reshape((100,) + bundle.image_shape), 10)
    shown = np.stack([test[:NUM_SHOWN], recon_test[:NUM_SHOWN], refined_test[:NUM_SHOWN]], 1)
    save_grid(wd.path(out, "reconstructions.png"), shown.reshape((-1,) + bundle.image_shape), 9)
    _report(wd.path(out, "metrics.json"), scores)


def run_adversarial(config: Config) -> None:
    """`--mode=mfa_adversarial`: train the fitted MFA as a generator against a WGAN-GP critic
    (mfa/adversarial.py) for --adversarial_steps generator steps, and write W/adversarial/
    metrics.json (NDB/K and JS of --ndb_samples samples, noise-free and with pixel noise, of the
    fitted and the fine-tuned MFA on the same bins; held-out mean log-likelihood of both; the last
    step's losses) and samples.png (100 noise-free samples of the fine-tuned MFA)."""
    trained, bundle, model = load_trained_mfa(config)
    out = wd.path(config.workdir, "adversarial")
    train, test = bundle.train_images, bundle.test_images
    adv = AdversarialMFA(model, seed=trained.seed)
    batch = min(ADVERSARIAL_BATCH, len(train))
    print(f"Adversarial MFA: {trained.adversarial_steps} generator steps of {batch} images "
          f"({adv.n_critic} critic steps each) on {len(train)} training images", flush=True)
    last = adv.train(train, trained.adversarial_steps, batch, trained.seed)[-1]
    tuned = adv.to_mfa()
    ndb = data_ndb(trained, bundle)
    z = trained.ndb_z_threshold or None
    scores = {"adversarial_steps": trained.adversarial_steps, "batch_size": batch,
              "ndb_bins": ndb.num_bins, "ndb_samples": trained.ndb_samples,
              "critic_loss": last["critic_loss"], "generator_loss": last["generator_loss"],
              "mean_abs_mu_change": float(np.mean(np.abs(tuned.mu.numpy() - model.mu.numpy())))}
    for name, mfa in (("mfa", model), ("adversarial", tuned)):
        for prefix, noise in (("", False), ("noisy_", True)):
            images = mfa_images(mfa, trained.ndb_samples, bundle.image_shape, trained.seed, noise)
            result = ndb.evaluate(images, trained.ndb_significance, z)
            scores.update({f"{name}_{prefix}ndb_over_k": result["ndb_over_k"],
                           f"{name}_{prefix}ndb_js": result["js"]})
        scores[f"{name}_heldout_mean_log_likelihood"] = float(
            inference.log_likelihood(mfa, test).mean())
    save_grid(wd.path(out, "samples.png"), mfa_images(tuned, 100, bundle.image_shape,
                                                      trained.seed), 10)
    _report(wd.path(out, "metrics.json"), scores)
