"""Mixture of factor analyzers (MFA) over flattened images, in float32 TensorFlow.

    p(x) = sum_j pi_j N(x; mu_j, Sigma_j),   Sigma_j = A_j A_j^T + diag(D_j),
    x = A_j z + mu_j + eps,  z ~ N(0, I_l),  eps ~ N(0, diag(D_j)),  j ~ Cat(pi),

with K components, l factors and d pixels (Richardson & Weiss 2018, seed 001; Ghahramani & Hinton
1996). No d x d matrix is ever formed: with M_j = I_l + A_j^T D_j^-1 A_j = L_j L_j^T,

    Sigma_j^-1 = D_j^-1 - D_j^-1 A_j M_j^-1 A_j^T D_j^-1          (Woodbury identity)
    log|Sigma_j| = sum_i log D_ji + 2 sum_a log (L_j)_aa            (matrix determinant lemma)

so a sample costs O(K d l) after an O(K d l^2) precomputation. D is floored (`noise_floor`) so that
constant pixels (MNIST borders) do not give infinite densities.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)
DEFAULT_NOISE_FLOOR = 1e-4


class Factors(NamedTuple):
    """Per-component quantities shared by the likelihood and the latent posterior."""
    center: tf.Tensor  # [d] reference point subtracted from x and mu (float32 cancellation)
    mu_c: tf.Tensor  # [K, d] mu_j - center
    inv_d: tf.Tensor  # [K, d] 1 / D_j
    chol: tf.Tensor  # [K, l, l] L_j, cholesky of M_j
    proj: tf.Tensor  # [K, l, d] B_j = L_j^-1 A_j^T D_j^-1
    log_det: tf.Tensor  # [K] log|Sigma_j|


def factorize(mu: tf.Tensor, A: tf.Tensor, D: tf.Tensor) -> Factors:
    """M_j = I + A_j^T D_j^-1 A_j = L_j L_j^T, B_j = L_j^-1 A_j^T D_j^-1, log|Sigma_j| (lemma)."""
    l = tf.shape(A)[-1]
    inv_d = 1.0 / D
    a_over_d = A * inv_d[:, :, None]  # D^-1 A, [K, d, l]
    m = tf.eye(l, dtype=A.dtype) + tf.einsum("kdl,kdm->klm", A, a_over_d)
    chol = tf.linalg.cholesky(m)
    proj = tf.linalg.triangular_solve(chol, tf.transpose(a_over_d, [0, 2, 1]), lower=True)
    log_det = (tf.reduce_sum(tf.math.log(D), axis=1)
               + 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)), axis=1))
    center = tf.reduce_mean(mu, axis=0)
    return Factors(center, mu - center, inv_d, chol, proj, log_det)


def projected_residuals(x: tf.Tensor, f: Factors) -> tf.Tensor:
    """u_nj = B_j (x_n - mu_j), [N, K, l]; B x is one [N, d] x [d, K*l] matmul."""
    bx = tf.einsum("nd,kld->nkl", x - f.center, f.proj)
    return bx - tf.einsum("kld,kd->kl", f.proj, f.mu_c)


def component_log_density(x: tf.Tensor, f: Factors) -> tuple[tf.Tensor, tf.Tensor]:
    """log N(x_n; mu_j, Sigma_j) [N, K] and the projected residuals u [N, K, l].

    (x - mu)^T Sigma^-1 (x - mu) = r^T D^-1 r - ||u||^2 with r = x - mu, u = B r; the first term
    is expanded into three matmuls, on coordinates centred at `f.center` so that float32 does not
    cancel large equal terms.
    """
    d = tf.cast(tf.shape(x)[-1], x.dtype)
    xc = x - f.center
    r_d_r = ((xc * xc) @ tf.transpose(f.inv_d)
             - 2.0 * xc @ tf.transpose(f.mu_c * f.inv_d)
             + tf.reduce_sum(f.mu_c * f.mu_c * f.inv_d, axis=1))
    u = projected_residuals(x, f)
    maha = r_d_r - tf.reduce_sum(u * u, axis=-1)
    return -0.5 * (d * LOG_2PI + f.log_det + maha), u


def check_parameters(pi, mu, A, D) -> None:
    """One-line ValueErrors for inconsistent MFA parameter shapes or values."""
    if mu.ndim != 2 or A.ndim != 3 or D.ndim != 2 or pi.ndim != 1:
        raise ValueError(f"MFA parameters need pi [K], mu [K, d], A [K, d, l], D [K, d]; got "
                         f"{pi.shape}, {mu.shape}, {A.shape}, {D.shape}")
    k, d = mu.shape
    l = A.shape[2]
    if A.shape[:2] != (k, d) or D.shape != (k, d) or pi.shape != (k,):
        raise ValueError(f"MFA parameter shapes disagree: pi {pi.shape}, mu {mu.shape}, "
                         f"A {A.shape}, D {D.shape}; expected K={k}, d={d}")
    check_sizes(k, l, d)
    for name, value in (("pi", pi), ("mu", mu), ("A", A), ("D", D)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"MFA parameter {name} has NaN or infinite entries")
    if np.any(pi < 0) or not np.isclose(pi.sum(), 1.0, atol=1e-4):
        raise ValueError(f"MFA weights pi must be >= 0 and sum to 1 (sum is {pi.sum():.6g})")
    if np.any(D <= 0):
        raise ValueError("MFA noise variances D must be > 0")


def check_sizes(num_components: int, num_factors: int, dim: int) -> None:
    if num_components < 1:
        raise ValueError(f"MFA needs K >= 1 components, got {num_components}")
    if not 1 <= num_factors < dim:
        raise ValueError(f"MFA needs 1 <= l < d factors (l={num_factors}, d={dim}); with l >= d "
                         "use a full-covariance GMM or fewer factors")


class MFA(tf.Module):
    """MFA parameters as tf.Variables: logits (log pi up to a constant), mu, A, log D.

    D = max(exp(log_D), noise_floor) everywhere, so EM (which writes D) and Adam (which moves
    log_D) both respect the floor.
    """

    def __init__(self, pi, mu, A, D, noise_floor: float = DEFAULT_NOISE_FLOOR, name: str = "mfa"):
        super().__init__(name=name)
        pi, mu, A, D = (np.asarray(v, np.float64) for v in (pi, mu, A, D))
        check_parameters(pi, mu, A, D)
        if not noise_floor > 0:
            raise ValueError(f"noise_floor must be > 0, got {noise_floor}")
        self.noise_floor = float(noise_floor)
        self.logits = tf.Variable(np.log(np.maximum(pi, 1e-30)), dtype=tf.float32, name="logits")
        self.mu = tf.Variable(mu, dtype=tf.float32, name="mu")
        self.A = tf.Variable(A, dtype=tf.float32, name="A")
        self.log_D = tf.Variable(np.log(np.maximum(D, noise_floor)), dtype=tf.float32,
                                 name="log_D")

    @property
    def num_components(self) -> int:
        return int(self.mu.shape[0])

    @property
    def dim(self) -> int:
        return int(self.mu.shape[1])

    @property
    def num_factors(self) -> int:
        return int(self.A.shape[2])

    def log_pi(self) -> tf.Tensor:
        return tf.nn.log_softmax(self.logits)

    def noise_variance(self) -> tf.Tensor:
        return tf.maximum(tf.exp(self.log_D), self.noise_floor)

    def factors(self) -> Factors:
        return factorize(self.mu, self.A, self.noise_variance())

    def parameters(self) -> dict[str, np.ndarray]:
        """pi, mu, A, D as float64 NumPy arrays (D floored)."""
        return {"pi": tf.nn.softmax(self.logits).numpy().astype(np.float64),
                "mu": self.mu.numpy().astype(np.float64), "A": self.A.numpy().astype(np.float64),
                "D": self.noise_variance().numpy().astype(np.float64)}

    def assign(self, pi, mu, A, D) -> None:
        """Overwrite all parameters (EM's M-step); same checks as the constructor."""
        pi, mu, A, D = (np.asarray(v, np.float64) for v in (pi, mu, A, D))
        check_parameters(pi, mu, A, D)
        if mu.shape != tuple(self.mu.shape) or A.shape != tuple(self.A.shape):
            raise ValueError(f"cannot assign shapes mu {mu.shape}, A {A.shape} to an MFA with "
                             f"mu {tuple(self.mu.shape)}, A {tuple(self.A.shape)}")
        self.logits.assign(np.log(np.maximum(pi, 1e-30)))
        self.mu.assign(mu)
        self.A.assign(A)
        self.log_D.assign(np.log(np.maximum(D, self.noise_floor)))

    def as_batch(self, x) -> tf.Tensor:
        """Images [N, H, W, C] or vectors [N, d] -> finite float32 [N, d]; ValueError otherwise."""
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape.rank is None or x.shape.rank < 2 or x.shape[0] == 0:
            raise ValueError(f"MFA input must be a non-empty batch [N, d] or [N, H, W, C], got "
                             f"{x.shape}")
        x = tf.reshape(x, [x.shape[0], -1])
        if x.shape[1] != self.dim:
            raise ValueError(f"MFA input has {x.shape[1]} values a sample, the model has "
                             f"d={self.dim}; resize the images to the training size")
        if not bool(tf.reduce_all(tf.math.is_finite(x))):
            raise ValueError("MFA input has NaN or infinite values")
        return x

    @tf.function
    def _joint(self, x):
        log_n, _ = component_log_density(x, self.factors())
        return log_n + self.log_pi()

    def joint_log_prob(self, x) -> tf.Tensor:
        """log pi_j + log N(x_n; mu_j, Sigma_j) = log p(x_n, j), [N, K]."""
        return self._joint(self.as_batch(x))

    def log_prob(self, x) -> tf.Tensor:
        """log p(x_n) = logsumexp_j log p(x_n, j), [N]."""
        return tf.reduce_logsumexp(self.joint_log_prob(x), axis=1)

    def responsibilities(self, x) -> tf.Tensor:
        """p(j | x_n) = softmax_j log p(x_n, j), [N, K]."""
        return tf.nn.softmax(self.joint_log_prob(x), axis=1)

    def latent_posterior(self, x) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """log p(x_n, j) [N, K]; E[z | x_n, j] = M_j^-1 A_j^T D_j^-1 (x_n - mu_j) [N, K, l];
        Cov[z | x_n, j] = M_j^-1 [K, l, l]."""
        return self._latent_posterior(self.as_batch(x))

    @tf.function
    def _latent_posterior(self, x):
        f = self.factors()
        log_n, u = component_log_density(x, f)
        # M^-1 A^T D^-1 r = L^-T u.
        ez = tf.linalg.triangular_solve(f.chol, tf.transpose(u, [1, 2, 0]), lower=True,
                                        adjoint=True)
        cov = tf.linalg.cholesky_solve(f.chol, tf.eye(self.num_factors,
                                                      batch_shape=[self.num_components]))
        return log_n + self.log_pi(), tf.transpose(ez, [2, 0, 1]), cov

    def sample(self, n: int, seed: int = 0, noise: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
        """n draws x = A_c z + mu_c + sqrt(D_c) eps, c ~ Cat(pi); noise=False drops the eps term
        (the noise-free images shown as "MFA samples"). Returns (x [n, d], c [n])."""
        if n < 1:
            raise ValueError(f"number of MFA samples must be >= 1, got {n}")
        seeds = tf.random.split(tf.constant([seed, 0], tf.int64), 3)
        c = tf.random.stateless_categorical(self.logits[None], n, seed=seeds[0])[0]
        z = tf.random.stateless_normal([n, self.num_factors], seed=seeds[1])
        x = tf.einsum("ndl,nl->nd", tf.gather(self.A, c), z) + tf.gather(self.mu, c)
        if noise:
            eps = tf.random.stateless_normal([n, self.dim], seed=seeds[2])
            x += tf.sqrt(tf.gather(self.noise_variance(), c)) * eps
        return x, c
