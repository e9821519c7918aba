"""Mixtures of factor analyzers for full images (Richardson & Weiss 2018): model, EM/Adam fit,
inference (likelihood, outliers, in-painting, MAP reconstruction) and figures."""
