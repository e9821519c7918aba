"""The latent prior p(z) = sum_k alpha_k N(z; mu_k, diag(sigma_k^2)) with learnable mu and sigma.

The `gaussian` baseline uses the same class with one fixed component N(0, I), so every model
shares one sampling code path.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def _inverse_softplus(x: float) -> float:
    return float(np.log(np.expm1(x)))


class MixturePrior(keras.layers.Layer):
    """K diagonal Gaussians in d dimensions.

    sigma_k = softplus(raw_k) + floor keeps scales positive and bounded away from 0. Mixture
    logits log alpha_k are trainable only on request: sampling z_k = mu_k + sigma_k * eps carries
    no gradient to them, so when enabled they learn only through the responsibilities Pr(k|z)
    in the consistency loss L^{x^,z}.
    """

    def __init__(self, num_components: int, latent_dim: int, *, mean_init_std: float = 0.2,
                 sigma_init: float = 0.5, sigma_floor: float = 0.05, trainable_params: bool = True,
                 learn_mixture_logits: bool = False, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_components = num_components
        self.latent_dim = latent_dim
        self.sigma_floor = sigma_floor
        shape = (num_components, latent_dim)
        self.means = self.add_weight(
            name="means", shape=shape, trainable=trainable_params,
            initializer=keras.initializers.RandomNormal(stddev=mean_init_std, seed=seed))
        self.raw_scales = self.add_weight(
            name="raw_scales", shape=shape, trainable=trainable_params,
            initializer=keras.initializers.Constant(_inverse_softplus(sigma_init - sigma_floor)))
        self.mixture_logits = self.add_weight(
            name="mixture_logits", shape=(num_components,), initializer="zeros",
            trainable=trainable_params and learn_mixture_logits)
        # The weights exist now; Keras' fit under a tf.distribute strategy refuses unbuilt layers.
        self.built = True

    @classmethod
    def standard_normal(cls, latent_dim: int) -> "MixturePrior":
        """N(0, I) as a one-component, non-trainable mixture (the vanilla DCGAN's prior)."""
        return cls(1, latent_dim, mean_init_std=0.0, sigma_init=1.0, sigma_floor=0.0,
                   trainable_params=False)

    def scales(self) -> tf.Tensor:
        return tf.nn.softplus(tf.convert_to_tensor(self.raw_scales)) + self.sigma_floor

    def distribution(self) -> tfd.MixtureSameFamily:
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=tf.convert_to_tensor(self.mixture_logits)),
            components_distribution=tfd.MultivariateNormalDiag(
                loc=tf.convert_to_tensor(self.means), scale_diag=self.scales()))

    def reparameterize(self, eps: tf.Tensor) -> tf.Tensor:
        """z[..., k, :] = mu_k + sigma_k * eps[..., k, :]: one draw per component, differentiable
        in mu and sigma (the slides' z_k = Sigma_k eps + mu_k with a diagonal Sigma_k)."""
        return tf.convert_to_tensor(self.means) + self.scales() * eps

    def responsibilities(self, z: tf.Tensor) -> tf.Tensor:
        """w(z) = Pr(k|z) = softmax_k(log alpha_k + log N(z; mu_k, sigma_k)) (eq. 2-3), [..., K]."""
        return self.distribution().posterior_marginal(z).probs_parameter()
