"""Entry points for `--model=mfa`: fit an MFA on images, write the standard figures and numbers.

    model, history = fit_mfa_on_images(images, num_components=100, num_factors=10)
    model, history = fit_mfa_from_config(config, images)  # the --mfa_* flags
    report = write_figures(model, train_images, out_dir, test_images=...)
"""
from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np

from gmmgan_tf.mfa import fit as mfa_fit
from gmmgan_tf.mfa import inference, plots
from gmmgan_tf.mfa.model import DEFAULT_NOISE_FLOOR, MFA


def fit_mfa_on_images(images, num_components: int, num_factors: int, method: str = "em",
                      iterations: int = 20, batch_size: int | None = None,
                      learning_rate: float = 1e-3, component_model: str = "fa",
                      noise_floor: float = DEFAULT_NOISE_FLOOR, seed: int = 0,
                      callback: Callable[[int, float], None] | None = None
                      ) -> tuple[MFA, list[float]]:
    """K-means + FA/PPCA initialisation, then `iterations` EM steps (method="em") or Adam steps
    (method="sgd"). Returns the model and its history: mean log-likelihood per EM iteration, or
    the -log-likelihood loss per Adam step. callback(step, value) is called for each entry."""
    if method not in mfa_fit.FIT_METHODS:
        raise ValueError(f"MFA fit method must be one of {mfa_fit.FIT_METHODS}, got {method!r}")
    model = mfa_fit.init_mfa(images, num_components, num_factors, component_model,
                             noise_floor=noise_floor, seed=seed)
    history = mfa_fit.fit(model, images, method, iterations, batch_size, learning_rate, seed,
                          callback)
    return model, history


def fit_mfa_from_config(config, images, callback: Callable[[int, float], None] | None = None
                        ) -> tuple[MFA, list[float]]:
    """fit_mfa_on_images with the --mfa_* flags of a Config (Adam uses --batch_size; EM sums its
    statistics over batches of 1000)."""
    return fit_mfa_on_images(
        images, config.mfa_components, config.mfa_factors, method=config.mfa_fit,
        iterations=config.mfa_iterations,
        batch_size=config.batch_size if config.mfa_fit == "sgd" else None,
        learning_rate=config.mfa_learning_rate, component_model=config.mfa_init,
        noise_floor=config.mfa_noise_floor, seed=config.seed, callback=callback)


def centre_block_mask(image_shape: tuple[int, ...], fraction: float = 0.5) -> np.ndarray:
    """Observed-pixel mask (True = seen) hiding a centred square of `fraction` of each side."""
    h, w = image_shape[:2]
    mask = np.ones(tuple(image_shape), bool)
    bh, bw = max(1, int(h * fraction)), max(1, int(w * fraction))
    mask[(h - bh) // 2:(h - bh) // 2 + bh, (w - bw) // 2:(w - bw) // 2 + bw] = False
    return mask


def write_figures(model: MFA, images, out_dir: str, test_images=None, num_samples: int = 100,
                  num_outliers: int = 50, num_inpaint: int = 9, components=None,
                  seed: int = 0) -> dict:
    """Write samples.png, outliers.png, inpainting.png, components.png and mfa_report.json into
    out_dir. Outliers come from `test_images` (or `images`); in-painting hides a centred block of
    `test_images`' first images; components default to the 4 heaviest. Returns the report: log-likelihoods, outlier indices, in-painting
    error on the hidden pixels, paths."""
    images = np.asarray(images, np.float32)
    held_out = images if test_images is None else np.asarray(test_images, np.float32)
    if images.ndim != 4 or held_out.shape[1:] != images.shape[1:]:
        raise ValueError(f"write_figures needs images [N, H, W, C] of one shape, got "
                         f"{images.shape} and {held_out.shape}")
    shape = images.shape[1:]
    if components is None:
        components = np.argsort(-model.parameters()["pi"], kind="stable")[:4].tolist()
    os.makedirs(out_dir, exist_ok=True)
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731

    ll = inference.log_likelihood(model, held_out)
    idx, worst = inference.outliers(model, held_out, min(num_outliers, len(held_out)))
    observed = centre_block_mask(shape)
    originals = held_out[:num_inpaint]
    filled, _ = inference.inpaint(model, originals, observed)
    hidden = ~np.broadcast_to(observed, originals.shape)
    report = {
        "num_components": model.num_components, "num_factors": model.num_factors,
        "train_mean_log_likelihood": float(inference.log_likelihood(model, images).mean()),
        "heldout_mean_log_likelihood": float(ll.mean()),
        "outlier_indices": idx.tolist(), "outlier_log_likelihoods": worst.tolist(),
        "inpainting_hidden_pixel_rmse": float(np.sqrt(np.mean(
            (filled[hidden] - originals[hidden]) ** 2))),
        "figures": {
            "samples": plots.save_samples(model, shape, path("samples.png"), num_samples, seed),
            "outliers": plots.save_outliers(held_out[idx], worst, shape, path("outliers.png")),
            "inpainting": plots.save_inpainting(originals, observed, filled, shape,
                                                path("inpainting.png")),
            "components": plots.save_components(model, shape, path("components.png"),
                                                components, min(5, model.num_factors)),
        },
    }
    with open(path("mfa_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report
