"""Shared test set-up: quiet TF, a tiny config, deterministic seeds, clean command-line flags."""
import dataclasses
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from gmmgan_tf.config import Config  # noqa: E402


def tiny_config(**overrides) -> Config:
    """A model small enough for a train step in well under a second."""
    # No mode-seeking term, warm start, self-labelling or G's moving average: tests of single
    # Algorithm 1 lines must see only that line's loss, and samples come from G itself.
    base = dict(num_components=3, latent_dim=4, batch_size=6, width_multiplier=0.125,
                eval_samples=30, sample_rows=2, diversity_weight=0.0, pcm_init="none",
                self_label_weight=0.0, ema_decay=0.0)
    base.update(overrides)
    return dataclasses.replace(Config(), **base).validate()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


def fresh_cli_flags():
    """absl's FLAGS with main.py's flags defined and nothing parsed, for in-process CLI runs."""
    from absl import flags

    from gmmgan_tf import cli

    if "mode" not in flags.FLAGS:
        cli.define_flags()
    flags.FLAGS.unparse_flags()
    return flags.FLAGS


def without_tensorflow(env=None) -> dict[str, str]:
    """`env` (default: this process's) for a subprocess in which importing tensorflow or keras
    fails: a command that must answer before loading TensorFlow (a bad flag, path or image, a
    busy workdir) is checked by order, not by a clock. Its answer is then the whole stderr, and
    an ImportError means TensorFlow was on the way first."""
    env = dict(os.environ if env is None else env)
    stub = os.path.join(os.path.dirname(os.path.abspath(__file__)), "without_tensorflow")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [stub, env.get("PYTHONPATH", "")]))
    return env


_ABSL_LOGGER_LEVEL = logging.getLogger("absl").level  # before any test (or fixture) ran


@pytest.fixture(autouse=True)
def _absl_logger_level():
    """Setting --verbosity (parsing or unparsing flags, cli.main; in a test or a module's
    fixture) sets the 'absl' logger's level; reset it after every test, or a later test's
    caplog no longer sees absl's INFO lines."""
    yield
    logging.getLogger("absl").setLevel(_ABSL_LOGGER_LEVEL)
