"""Inference with a fitted MFA: per-image likelihood, outliers, in-painting, MAP reconstruction,
component visualisation arrays (Richardson & Weiss 2018, Figs. 6-7)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gmmgan_tf.mfa.model import LOG_2PI, MFA

# Images a batch for in-painting: it builds [batch, K, l, l] posterior precisions.
INPAINT_BATCH = 32


def _batched(fn, model: MFA, images, batch_size: int) -> np.ndarray:
    x = model.as_batch(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return np.concatenate([np.asarray(fn(x[i:i + batch_size]))
                           for i in range(0, int(x.shape[0]), batch_size)])


def log_likelihood(model: MFA, images, batch_size: int = 1000) -> np.ndarray:
    """log p(x_n) for each image, float64 [N] (computed in float32)."""
    return _batched(model.log_prob, model, images, batch_size).astype(np.float64)


def responsibilities(model: MFA, images, batch_size: int = 1000) -> np.ndarray:
    """p(j | x_n), [N, K]."""
    return _batched(model.responsibilities, model, images, batch_size)


def outliers(model: MFA, images, count: int, batch_size: int = 1000
             ) -> tuple[np.ndarray, np.ndarray]:
    """Indices and log-likelihoods of the `count` least likely images, least likely first."""
    ll = log_likelihood(model, images, batch_size)
    if not 1 <= count <= len(ll):
        raise ValueError(f"outlier count must be in [1, {len(ll)}], got {count}")
    order = np.argsort(ll, kind="stable")[:count]
    return order, ll[order]


def _observed_mask(model: MFA, mask, n: int) -> np.ndarray:
    """Mask (True = observed) of shape [d], an image shape or [N, ...] -> float32 [N, d]."""
    m = np.asarray(mask, bool)
    if m.size == model.dim:
        m = np.broadcast_to(m.reshape(1, -1), (n, model.dim))
    elif m.size == n * model.dim:
        m = m.reshape(n, model.dim)
    else:
        raise ValueError(f"in-painting mask has {m.size} entries; it needs d={model.dim} (one "
                         f"mask for all images) or N*d={n * model.dim} (one an image)")
    seen = m.sum(axis=1)
    if np.any(seen == 0):
        raise ValueError("in-painting mask hides every pixel of an image; keep some observed "
                         "(True) pixels")
    if np.any(seen == model.dim):
        raise ValueError("in-painting mask observes every pixel of an image; mark the pixels to "
                         "fill as False")
    return m.astype(np.float32)


@tf.function
def _observed_posterior(x, o, log_pi, mu, A, D):
    """For observed pixels o (0/1) of x: log pi_j + log N(x_o; mu_jo, Sigma_j,oo) [N, K] and
    E[z | x_o, j] [N, K, l].

    Woodbury on the observed block with weights w = o / D (zero on hidden pixels):
    M_nj = I + A_j^T diag(w) A_j = L L^T, log|Sigma_oo| = sum_o log D + log|M_nj|,
    r^T Sigma_oo^-1 r = r^T diag(w) r - v^T M^-1 v with v = A_j^T diag(w) r, E[z] = M^-1 v.
    """
    l = tf.shape(A)[2]
    w = o[:, None, :] / D[None]  # [N, K, d]
    r = x[:, None, :] - mu[None]  # [N, K, d]
    m = tf.eye(l) + tf.einsum("nkd,kdl,kdm->nklm", w, A, A)
    chol = tf.linalg.cholesky(m)
    v = tf.einsum("nkd,kdl->nkl", w * r, A)
    ez = tf.linalg.cholesky_solve(chol, v[..., None])[..., 0]
    log_det = (tf.reduce_sum(o[:, None, :] * tf.math.log(D)[None], axis=2)
               + 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)), axis=2))
    maha = tf.reduce_sum(w * r * r, axis=2) - tf.reduce_sum(v * ez, axis=2)
    d_obs = tf.reduce_sum(o, axis=1, keepdims=True)
    return log_pi - 0.5 * (d_obs * LOG_2PI + log_det + maha), ez


def inpaint(model: MFA, images, observed) -> tuple[np.ndarray, np.ndarray]:
    """Fill hidden pixels with their posterior mean under the MFA; observed pixels are kept.

        E[x_h | x_o] = sum_j p(j | x_o) (mu_jh + A_jh E[z | x_o, j]),
        E[z | x_o, j] = A_jo^T Sigma_j,oo^-1 (x_o - mu_jo),
        p(j | x_o) proportional to pi_j N(x_o; mu_jo, Sigma_j,oo).

    observed: bool, True where a pixel is seen; one mask ([d] or the image shape) or one an image.
    Returns (filled images in the input's shape, p(j | x_o) [N, K]).
    """
    shape = np.shape(images)
    x = model.as_batch(images)
    n = int(x.shape[0])
    o = _observed_mask(model, observed, n)
    params = (model.log_pi(), model.mu, model.A, model.noise_variance())
    filled, posts = [], []
    for i in range(0, n, INPAINT_BATCH):
        xb, ob = x[i:i + INPAINT_BATCH], tf.constant(o[i:i + INPAINT_BATCH])
        log_joint, ez = _observed_posterior(xb, ob, *params)
        post = tf.nn.softmax(log_joint, axis=1)
        mean = tf.einsum("nk,nkd->nd", post,
                         model.mu[None] + tf.einsum("kdl,nkl->nkd", model.A, ez))
        filled.append((ob * xb + (1.0 - ob) * mean).numpy())
        posts.append(post.numpy())
    return np.concatenate(filled).reshape(shape), np.concatenate(posts)


def map_reconstruction(model: MFA, images, batch_size: int = 1000
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint MAP (c, z) = argmax p(c, z | x) and x_hat = A_c z_hat + mu_c (seed 001, MFA+pix2pix).

    z | x, c is Gaussian with mean E[z | x, c] and covariance M_c^-1, so its peak density is
    (2 pi)^(-l/2) |M_c|^(1/2) and c_hat = argmax_c log p(x, c) + 1/2 log|M_c|, z_hat = E[z | x, c].
    Returns (x_hat in the input's shape, c_hat [N], z_hat [N, l]).
    """
    shape = np.shape(images)
    x = model.as_batch(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    half_log_det_m = tf.reduce_sum(tf.math.log(tf.linalg.diag_part(model.factors().chol)), axis=1)
    xs, cs, zs = [], [], []
    for i in range(0, int(x.shape[0]), batch_size):
        log_joint, ez, _ = model.latent_posterior(x[i:i + batch_size])
        c = tf.argmax(log_joint + half_log_det_m, axis=1)
        z = tf.gather(ez, c, batch_dims=1)
        xs.append((tf.einsum("ndl,nl->nd", tf.gather(model.A, c), z)
                   + tf.gather(model.mu, c)).numpy())
        cs.append(c.numpy())
        zs.append(z.numpy())
    return np.concatenate(xs).reshape(shape), np.concatenate(cs), np.concatenate(zs)


def component_visualization(model: MFA, component: int, num_columns: int = 5,
                            scale: float = 1.0, mid: float = 0.0) -> dict[str, np.ndarray]:
    """Seed 001 Fig. 6 for one component: mean mu, noise variance D, and for its `num_columns`
    largest-norm columns a_i of A: mu + s a_i, mid + s a_i (mid-grey plus the direction),
    mu - s a_i. Flat [d] / [num_columns, d] arrays; reshape to the image shape to show them."""
    if not 0 <= component < model.num_components:
        raise ValueError(f"component must be in [0, {model.num_components}), got {component}")
    if not 1 <= num_columns <= model.num_factors:
        raise ValueError(f"num_columns must be in [1, {model.num_factors}], got {num_columns}")
    mu = model.mu[component].numpy()
    a = model.A[component].numpy()
    order = np.argsort(-np.linalg.norm(a, axis=0), kind="stable")[:num_columns]
    cols = scale * a[:, order].T
    return {"mean": mu, "noise_variance": model.noise_variance()[component].numpy(),
            "plus": mu + cols, "direction": mid + cols, "minus": mu - cols,
            "columns": order}

