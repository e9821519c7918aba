"""Shared test set-up: quiet TF, a tiny config, deterministic seeds."""
import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from gmmgan_tf.config import Config  # noqa: E402


def tiny_config(**overrides) -> Config:
    """A model small enough for a train step in well under a second."""
    # No mode-seeking term, warm start or self-labelling: tests of single Algorithm 1 lines must
    # see only that line's loss.
    base = dict(num_components=3, latent_dim=4, batch_size=6, width_multiplier=0.125,
                eval_samples=30, sample_rows=2, diversity_weight=0.0, pcm_init="none",
                self_label_weight=0.0)
    base.update(overrides)
    return dataclasses.replace(Config(), **base).validate()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
