"""gmmgan_tf: a GAN with a learned Gaussian-mixture latent prior and a posterior consistency
module (PCM) giving the responsibility Pr(k|x) of any image, plus the GMM-vs-GAN tools of
Richardson & Weiss (NDB, mixtures of factor analyzers)."""

__version__ = "0.1.0"
