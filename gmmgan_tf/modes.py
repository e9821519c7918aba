"""The non-training modes; each reads a trained workdir and writes files under it."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np

from gmmgan_tf import evaluation, images, lock, projector, run_options, workdir as wd
from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.metrics import plots, report

INTERPOLATION_STEPS = 10


def evaluate(config: Config) -> None:
    """W/eval/metrics.json and plots; with --compare, a table and plots over several runs."""
    if config.compare:
        return compare(config)
    scores = evaluate_workdir(config.workdir, config)
    written = sorted(os.listdir(wd.path(config.workdir, "eval")))
    print(f"Wrote {wd.path(config.workdir, 'eval')}/: {', '.join(written)}")
    if os.path.isdir(projector.directory(config.workdir)):
        print(f"Projector: tensorboard --logdir={config.workdir}, Projector tab "
              f"({projector.directory(config.workdir)})")
    print(evaluation.headline(scores))


def evaluate_workdir(workdir: str, config: Config) -> dict:
    if _is_mfa_run(workdir):
        from gmmgan_tf.mfa import train as mfa_train

        mfa_train.evaluate(dataclasses.replace(config, workdir=workdir))
        with open(wd.path(workdir, "eval", "metrics.json")) as f:
            return json.load(f)
    trained, bundle, model = wd.load_trained_model(workdir, **run_options.overrides(config))
    scores = evaluation.evaluate(model, bundle, trained, trained.ndb_samples,
                                   progress=sys.stdout.isatty())
    wd.write_json(wd.path(workdir, "eval", "metrics.json"), scores)
    if model.pcm is not None:
        projector.write(model, bundle.test_images, bundle.test_labels, workdir)
    _plots([(os.path.basename(os.path.normpath(workdir)), scores)],
           wd.path(workdir, "eval"), bundle.train_labels, bundle.num_classes)
    return scores


def compare(config: Config) -> None:
    """Evaluates each run of --compare (reusing its eval/metrics.json when present, saying so) and
    writes comparison.md and plots under --workdir (held by the caller's lock); validate() has
    checked every run first."""
    runs = []
    for workdir in config.compare_entries:
        saved = wd.path(workdir, "eval", "metrics.json")
        if os.path.exists(saved):
            written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(saved)))
            print(f"reusing {saved} from {written} (delete it to evaluate again)")
            with open(saved) as f:
                scores = json.load(f)
        else:
            with lock.hold(workdir, "--compare", config.mode):  # evaluating writes into it
                scores = evaluate_workdir(workdir, config)
        runs.append((os.path.basename(os.path.normpath(workdir)), scores))
    table = plots.compare_table([(name, report.scalars(s)) for name, s in runs])
    images.atomic_write_bytes(wd.path(config.workdir, "comparison.md"), table.encode())
    _plots(runs, config.workdir)
    print(table)
    print(f"Wrote {config.workdir}/comparison.md and plots")


def _plots(runs, out_dir: str, train_labels=None, num_classes: int = 0) -> None:
    if any("ndb_proportions" in s for _, s in runs):
        plots.plot_ndb_bins(runs, os.path.join(out_dir, "ndb_bins.png"))
    if len(runs) == 1 and "ndb_component_proportions" in runs[0][1]:  # runs share no components
        plots.plot_ndb_bins_by_component(
            *runs[0], os.path.join(out_dir, "ndb_bins_by_component.png"))
    if any("coverage_shares" in s for _, s in runs):
        training = (np.bincount(train_labels, minlength=num_classes) / len(train_labels)
                    if train_labels is not None else None)
        plots.plot_class_histogram(runs, os.path.join(out_dir, "class_histogram.png"), training)
    if any(k.startswith("novelty_roc_") for _, s in runs for k in s):
        plots.plot_novelty_roc(runs, os.path.join(out_dir, "novelty_roc.png"))


def sample(config: Config) -> None:
    trained, _, model = wd.load_trained_model(config.workdir, **run_options.overrides(config))
    samples, _ = model.sample(trained.sample_rows, seed=trained.seed)
    out = wd.path(config.workdir, "samples", f"samples_seed{trained.seed}.png")
    images.save_png(out, images.grid(samples, model.num_components, trained.sample_rows))
    print(f"Wrote {out} ({model.num_components} rows, one per component)")


def interpolation_latents(model, corners: list[int], eps: np.ndarray, steps: int) -> np.ndarray:
    """Latents on the segment (2 corners) or triangle (3 corners) between component draws
    mu_c + sigma_c * tau * eps with the same eps (tau: --sampling_temperature), as in seed 000
    §B: [rows * steps, d]."""
    anchors = model.sampling_latents(np.array(corners),
                                     np.repeat(eps[None], len(corners), 0)).numpy()
    t = np.linspace(0.0, 1.0, steps)
    if len(corners) == 2:
        weights = np.stack([1 - t, t], axis=1)
    else:  # barycentric grid, row i walks from corner a toward c as it moves toward b
        weights = np.array([[(1 - u) * (1 - v), u * (1 - v), v] for v in t for u in t])
    return weights @ anchors


def interpolate(config: Config) -> None:
    trained, _, model = wd.load_trained_model(config.workdir, **run_options.overrides(config))
    k = model.num_components
    if k < 2:
        raise ConfigError("--mode=interpolate: needs a mixture prior with >= 2 components")
    eps = np.random.default_rng(trained.seed).standard_normal(model.latent_dim).astype(np.float32)
    two_way = np.concatenate([interpolation_latents(model, [a, (a + 1) % k], eps,
                                                    INTERPOLATION_STEPS) for a in range(k)])
    outputs = {"interpolate_2way.png": (two_way, k)}
    if k >= 3:
        outputs["interpolate_3way.png"] = (
            interpolation_latents(model, [0, 1, 2], eps, INTERPOLATION_STEPS), INTERPOLATION_STEPS)
    for name, (z, rows) in outputs.items():
        pictures = model.sampling_generator(z.astype(np.float32), training=False).numpy()
        out = wd.path(config.workdir, "samples", name)
        images.save_png(out, images.grid(pictures, rows, INTERPOLATION_STEPS))
        print(f"Wrote {out}")


def _is_mfa_run(workdir: str) -> bool:
    return (run_options.load_saved_config_dict(workdir) or {}).get("model") == "mfa"


def run(config: Config) -> None:
    from gmmgan_tf.assign import assign
    from gmmgan_tf.export import export
    from gmmgan_tf.mfa import train as mfa_train

    handlers = {"evaluate": evaluate, "sample": sample, "interpolate": interpolate,
                "export": export, "assign": assign, "mfa_figures": mfa_train.figures,
                "mfa_pix2pix": mfa_train.run_pix2pix, "mfa_adversarial": mfa_train.run_adversarial}
    if _is_mfa_run(config.workdir) and config.mode in ("sample", "interpolate", "export",
                                                         "assign"):
        raise ConfigError(f"--mode={config.mode}: {config.workdir!r} holds an MFA; use "
                          "--mode=mfa_figures (samples, outliers, in-painting, components), "
                          "mfa_pix2pix, mfa_adversarial or evaluate")
    if config.mode not in handlers:
        raise ConfigError(f"--mode: {config.mode!r} is not available in this build; "
                          f"use one of {sorted(handlers) + ['train']}")
    handlers[config.mode](config)
