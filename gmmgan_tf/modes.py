"""The non-training modes; each reads a trained workdir and writes files under it."""
from __future__ import annotations

import numpy as np

from gmmgan_tf import evaluation, images, workdir as wd
from gmmgan_tf.config import Config, ConfigError

INTERPOLATION_STEPS = 10


def evaluate(config: Config) -> None:
    _, bundle, model = wd.load_trained_model(config.workdir, mode=config.mode)
    scores = evaluation.evaluate(model, bundle, config.eval_samples, config.seed)
    out = wd.path(config.workdir, "eval", "metrics.json")
    wd.write_json(out, scores)
    print(f"Wrote {out}")
    print(" ".join(f"{k}={v:.4g}" for k, v in scores.items()))


def sample(config: Config) -> None:
    trained, _, model = wd.load_trained_model(config.workdir, mode=config.mode,
                                              sample_rows=config.sample_rows, seed=config.seed)
    samples, _ = model.sample(trained.sample_rows, seed=trained.seed)
    out = wd.path(config.workdir, "samples", f"samples_seed{trained.seed}.png")
    images.save_png(out, images.grid(samples, model.num_components, trained.sample_rows))
    print(f"Wrote {out} ({model.num_components} rows, one per component)")


def interpolation_latents(model, corners: list[int], eps: np.ndarray, steps: int) -> np.ndarray:
    """Latents on the segment (2 corners) or triangle (3 corners) between component draws
    mu_c + sigma_c * eps with the same eps, as in seed 000 §B: [rows * steps, d]."""
    anchors = model.latents(np.array(corners), np.repeat(eps[None], len(corners), 0)).numpy()
    t = np.linspace(0.0, 1.0, steps)
    if len(corners) == 2:
        weights = np.stack([1 - t, t], axis=1)
    else:  # barycentric grid, row i walks from corner a toward c as it moves toward b
        weights = np.array([[(1 - u) * (1 - v), u * (1 - v), v] for v in t for u in t])
    return weights @ anchors


def interpolate(config: Config) -> None:
    trained, _, model = wd.load_trained_model(config.workdir, mode=config.mode, seed=config.seed)
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
        pictures = model.generator(z.astype(np.float32), training=False).numpy()
        out = wd.path(config.workdir, "samples", name)
        images.save_png(out, images.grid(pictures, rows, INTERPOLATION_STEPS))
        print(f"Wrote {out}")


def run(config: Config) -> None:
    from gmmgan_tf.export import export

    handlers = {"evaluate": evaluate, "sample": sample, "interpolate": interpolate,
                "export": export}
    if config.mode not in handlers:
        raise ConfigError(f"--mode: {config.mode!r} is not available in this build; "
                          f"use one of {sorted(handlers) + ['train']}")
    handlers[config.mode](config)
