"""Initialising and fitting an MFA: K-means + per-cluster FA/PPCA, then EM or Adam.

EM is the closed-form algorithm of Ghahramani & Hinton (1996) with one diagonal D_j a component.
The E-step runs in mini-batches in TensorFlow (float32) and its sufficient statistics are summed in
float64; the M-step solves K small (l+1) x (l+1) systems in NumPy. With the augmented loading
A~_j = [A_j, mu_j] and z~ = [z; 1] (h_nj = p(j | x_n), E-steps use the current parameters):

    A~_j <- (sum_n h_nj x_n E[z~ | x_n, j]^T) (sum_n h_nj E[z~ z~^T | x_n, j])^-1
    D_j  <- diag(sum_n h_nj x_n x_n^T - A~_j sum_n h_nj E[z~ | x_n, j] x_n^T) / N_j,  floored
    pi_j <- N_j / N,   N_j = sum_n h_nj

E[z | x, j] = M_j^-1 A_j^T D_j^-1 (x - mu_j) and E[z z^T | x, j] = M_j^-1 + E[z] E[z]^T. Each EM
iteration cannot decrease the log-likelihood of the data it is fitted on (up to float32 rounding).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import keras
import tensorflow as tf
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FactorAnalysis
from threadpoolctl import threadpool_limits

from gmmgan_tf.mfa.model import (DEFAULT_NOISE_FLOOR, MFA, check_sizes, component_log_density,
                                 factorize)

FIT_METHODS = ("em", "sgd")
COMPONENT_MODELS = ("fa", "ppca")
# Components with less responsibility mass than this keep their A, mu, D (their M-step system is
# singular); pi_j still becomes N_j / N, so they carry no weight.
MIN_COMPONENT_MASS = 1e-3


def as_data(images, num_components: int | None = None) -> np.ndarray:
    """Images [N, ...] -> finite float32 [N, d]; one-line ValueError for bad data."""
    x = np.asarray(images, np.float32)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"MFA data must be a non-empty batch [N, d] or [N, H, W, C], got "
                         f"{x.shape}")
    x = x.reshape(len(x), -1)
    if not np.all(np.isfinite(x)):
        raise ValueError("MFA data has NaN or infinite values")
    if num_components is not None and num_components > len(x):
        raise ValueError(f"MFA with K={num_components} components needs at least K images, got "
                         f"{len(x)}; use fewer components")
    return x


def init_mfa(images, num_components: int, num_factors: int, component_model: str = "fa",
             noise_floor: float = DEFAULT_NOISE_FLOOR, seed: int = 0,
             kmeans_init: int = 1) -> MFA:
    """K-means clusters, then a FactorAnalysis (or PPCA) of each cluster (seed 001's
    `gmm_initial_guess`); pi_j = cluster size / N.

    PPCA (Tipping & Bishop): A = V_l sqrt(lambda_l - sigma^2), D = sigma^2 (mean discarded
    eigenvalue). Clusters of fewer than 2 images get A = 0 and the data's pixel variance as D.
    """
    if component_model not in COMPONENT_MODELS:
        raise ValueError(f"component_model must be one of {COMPONENT_MODELS}, got "
                         f"{component_model!r}")
    x = as_data(images, num_components)
    n, d = x.shape
    check_sizes(num_components, num_factors, d)
    labels = KMeans(num_components, n_init=kmeans_init, random_state=seed).fit_predict(x)
    fallback_d = np.maximum(x.var(axis=0, dtype=np.float64), noise_floor)
    pi = np.zeros(num_components)
    mu = np.zeros((num_components, d))
    A = np.zeros((num_components, d, num_factors))
    D = np.tile(fallback_d, (num_components, 1))
    # One BLAS thread: the per-cluster matrices are small, and threaded BLAS spin-waiting on a
    # busy 2-core machine made FactorAnalysis ~50x slower.
    with threadpool_limits(1, user_api="blas"):
        for j in range(num_components):
            xj = x[labels == j].astype(np.float64)
            pi[j] = len(xj) / n
            mu[j] = xj.mean(axis=0)
            if len(xj) < 2:
                continue
            factors = min(num_factors, len(xj) - 1)
            if component_model == "fa":
                fa = FactorAnalysis(factors, random_state=seed).fit(xj)
                A[j, :, :factors] = fa.components_.T
                D[j] = fa.noise_variance_
            else:
                pca = PCA(factors, random_state=seed).fit(xj)
                scale = np.sqrt(np.maximum(pca.explained_variance_ - pca.noise_variance_, 0.0))
                A[j, :, :factors] = pca.components_.T * scale
                D[j] = pca.noise_variance_
    return MFA(pi, mu, A, np.maximum(D, noise_floor), noise_floor=noise_floor)


# One trace per shape: a shape-relaxed trace (reduce_retracing) mixed the component counts of
# two models fitted in one process (batch dimensions [3,2,2] vs [4,2,2] in cholesky_solve).
@tf.function
def _e_step(x, center, log_pi, mu, A, D):
    """Sufficient statistics of one batch, on coordinates x - center (float32 cancellation)."""
    f = factorize(mu - center, A, D)
    xc = x - center
    log_n, u = component_log_density(xc, f)
    log_joint = log_n + log_pi
    log_px = tf.reduce_logsumexp(log_joint, axis=1)
    h = tf.exp(log_joint - log_px[:, None])  # [N, K]
    ez = tf.transpose(tf.linalg.triangular_solve(
        f.chol, tf.transpose(u, [1, 2, 0]), lower=True, adjoint=True), [2, 0, 1])  # [N, K, l]
    hez = h[:, :, None] * ez
    m_inv = tf.linalg.cholesky_solve(
        f.chol, tf.broadcast_to(tf.eye(tf.shape(A)[2]), tf.shape(f.chol)))
    nk = tf.reduce_sum(h, axis=0)
    return {
        "log_px": tf.reduce_sum(log_px),
        "n": nk,
        "x": tf.transpose(h) @ xc,
        "x2": tf.transpose(h) @ (xc * xc),
        "z": tf.reduce_sum(hez, axis=0),
        "xz": tf.einsum("nd,nkl->kdl", xc, hez),
        "zz": tf.einsum("nkl,nkm->klm", hez, ez) + nk[:, None, None] * m_inv,
    }


def em_statistics(model: MFA, x: np.ndarray, center: np.ndarray, batch_size: int
                  ) -> dict[str, np.ndarray]:
    """E-step over all of x in batches, summed in float64; "log_px" is sum_n log p(x_n)."""
    args = (tf.constant(center, tf.float32), model.log_pi(), model.mu, model.A,
            model.noise_variance())
    total: dict[str, np.ndarray] = {}
    for start in range(0, len(x), batch_size):
        stats = _e_step(tf.constant(x[start:start + batch_size]), *args)
        for key, value in stats.items():
            total[key] = total.get(key, 0.0) + value.numpy().astype(np.float64)
    return total


def m_step(stats: dict[str, np.ndarray], old: dict[str, np.ndarray], center: np.ndarray,
           noise_floor: float) -> dict[str, np.ndarray]:
    """Closed-form pi, mu, A, D from summed statistics (module docstring), in float64."""
    nk = stats["n"]
    k, d, l = stats["xz"].shape
    ezz = np.zeros((k, l + 1, l + 1))
    ezz[:, :l, :l] = stats["zz"]
    ezz[:, :l, l] = ezz[:, l, :l] = stats["z"]
    ezz[:, l, l] = nk
    xzt = np.concatenate([stats["xz"], stats["x"][:, :, None]], axis=2)  # [K, d, l+1]
    alive = nk > MIN_COMPONENT_MASS
    a_aug = np.transpose(np.linalg.solve(ezz[alive], np.transpose(xzt[alive], [0, 2, 1])),
                         [0, 2, 1])
    d_new = (stats["x2"][alive] - np.sum(a_aug * xzt[alive], axis=2)) / nk[alive, None]
    mu, A, D = old["mu"].copy(), old["A"].copy(), old["D"].copy()
    A[alive] = a_aug[:, :, :l]
    mu[alive] = a_aug[:, :, l] + center
    D[alive] = np.maximum(d_new, noise_floor)
    return {"pi": nk / nk.sum(), "mu": mu, "A": A, "D": D}


def fit_em(model: MFA, images, iterations: int, batch_size: int = 1000,
           callback: Callable[[int, float], None] | None = None) -> list[float]:
    """`iterations` EM steps on all images; returns the mean log-likelihood before each step and
    after the last (len = iterations + 1). callback(iteration, mean_log_likelihood) per step."""
    if iterations < 0 or batch_size < 1:
        raise ValueError(f"EM needs iterations >= 0 and batch_size >= 1, got {iterations}, "
                         f"{batch_size}")
    x = as_data(images, model.num_components)
    center = x.mean(axis=0, dtype=np.float64)
    history = []
    for it in range(iterations + 1):
        stats = em_statistics(model, x, center.astype(np.float32), batch_size)
        history.append(float(stats["log_px"] / len(x)))
        if callback is not None:
            callback(it, history[-1])
        if it == iterations:
            break
        model.assign(**m_step(stats, model.parameters(), center, model.noise_floor))
    return history


def fit_sgd(model: MFA, images, steps: int, batch_size: int = 256, learning_rate: float = 1e-3,
            seed: int = 0, callback: Callable[[int, float], None] | None = None) -> list[float]:
    """Adam on -mean log p(x) over shuffled mini-batches; returns the loss of each step."""
    if steps < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(f"SGD needs steps >= 1, batch_size >= 1, learning_rate > 0; got "
                         f"{steps}, {batch_size}, {learning_rate}")
    x = as_data(images, model.num_components)
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = [model.logits, model.mu, model.A, model.log_D]

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            log_n, _ = component_log_density(batch, model.factors())
            loss = -tf.reduce_mean(tf.reduce_logsumexp(log_n + model.log_pi(), axis=1))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    data = (tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed).repeat()
            .batch(min(batch_size, len(x)), drop_remainder=True))
    losses = []
    for i, batch in enumerate(data.take(steps)):
        losses.append(float(step(batch)))
        if callback is not None:
            callback(i, losses[-1])
    return losses


def fit(model: MFA, images, method: str = "em", iterations: int = 20,
        batch_size: int | None = None, learning_rate: float = 1e-3, seed: int = 0,
        callback: Callable[[int, float], None] | None = None) -> list[float]:
    """`iterations` EM iterations (method="em", batches of 1000 by default) or Adam steps
    (method="sgd", batches of 256 by default); returns fit_em's or fit_sgd's history."""
    if method == "em":
        return fit_em(model, images, iterations, batch_size or 1000, callback)
    if method == "sgd":
        return fit_sgd(model, images, iterations, batch_size or 256, learning_rate, seed, callback)
    raise ValueError(f"MFA fit method must be one of {FIT_METHODS}, got {method!r}")
