"""PNG figures for an MFA: sample grids, outliers, in-painting triples, component panels (Agg)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gmmgan_tf.mfa.inference import component_visualization  # noqa: E402
from gmmgan_tf.mfa.model import MFA  # noqa: E402


def _as_images(images, image_shape: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(images, np.float32)
    shape = tuple(image_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or x.size % int(np.prod(shape)) != 0:
        raise ValueError(f"cannot show arrays of shape {x.shape} as images of shape {image_shape}")
    return x.reshape((-1,) + shape)


def image_grid(images, image_shape, path: str, ncols: int = 10,
               value_range: tuple[float, float] = (-1.0, 1.0),
               row_titles: list[str] | None = None, title: str | None = None) -> str:
    """Write images (flat or shaped) as a grid PNG, row-major, scaled from value_range to [0, 1]
    and clipped; returns path."""
    x = _as_images(images, image_shape)
    if len(x) == 0 or ncols < 1:
        raise ValueError(f"image_grid needs at least one image and ncols >= 1, got {len(x)}, "
                         f"{ncols}")
    lo, hi = value_range
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    nrows = -(-len(x) // ncols)
    title_h = 0.4 if title else 0.0
    height = nrows * 0.9 + title_h
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(ncols * 0.9, 4.0), height),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("on" if i < len(x) else "off")
        if i < len(x):
            img = x[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0.0, vmax=1.0)
    if row_titles:
        for r, name in enumerate(row_titles[:nrows]):
            axes[r, 0].set_ylabel(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.2, rect=(0.0, 0.0, 1.0, 1.0 - title_h / height))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_samples(model: MFA, image_shape, path: str, count: int = 100, seed: int = 0,
                 noise: bool = False) -> str:
    """A grid of `count` random MFA samples, noise-free (A_c z + mu_c) unless noise=True."""
    kind = "with" if noise else "without"
    return image_grid(model.sample(count, seed=seed, noise=noise)[0].numpy(), image_shape, path,
                      title=f"MFA samples (K={model.num_components}, l={model.num_factors}), "
                            f"{kind} pixel noise")


def save_outliers(images, log_likelihoods, image_shape, path: str) -> str:
    """The given images (least likely first), titled with their log-likelihood range."""
    ll = np.asarray(log_likelihoods)
    return image_grid(images, image_shape, path,
                      title=f"{len(ll)} least likely images, log p(x) in "
                            f"[{ll.min():.0f}, {ll.max():.0f}]")


def save_inpainting(originals, observed, filled, image_shape, path: str,
                    hidden_value: float = -1.0) -> str:
    """Rows of (original, masked, filled) triples; hidden pixels are drawn as hidden_value."""
    x = _as_images(originals, image_shape)
    f = _as_images(filled, image_shape)
    o = np.broadcast_to(np.asarray(observed, bool).reshape((-1,) + x.shape[1:]), x.shape)
    masked = np.where(o, x, hidden_value)
    triples = np.stack([x, masked, f], axis=1).reshape((-1,) + x.shape[1:])
    return image_grid(triples, image_shape, path, ncols=9 if len(x) >= 3 else 3 * len(x),
                      title="in-painting: original | masked | filled")


def save_components(model: MFA, image_shape, path: str, components=range(4),
                    num_columns: int = 5, scale: float = 1.0) -> str:
    """Seed 001 Fig. 6, one 3-image-wide block a component, side by side: top row mu and D
    (scaled to the image range), then a row [mu + a_i, mid + a_i, mu - a_i] for each of its
    `num_columns` largest columns a_i of A."""
    components = list(components)
    blocks = []
    for c in components:
        v = component_visualization(model, c, num_columns, scale)
        noise = v["noise_variance"]
        noise_img = 2.0 * noise / max(float(noise.max()), 1e-12) - 1.0
        top = np.stack([v["mean"], noise_img, np.full_like(noise, -1.0)])
        blocks.append(np.concatenate([top[None], np.stack(
            [v["plus"], v["direction"], v["minus"]], axis=1)]))  # [1 + num_columns, 3, d]
    grid = np.concatenate(blocks, axis=1)  # rows, 3 * len(components), d
    return image_grid(grid.reshape(-1, grid.shape[-1]), image_shape, path,
                      ncols=3 * len(components),
                      title=f"MFA components {components}: top mu, D; rows mu + a_i | a_i | "
                            f"mu - a_i")
