"""A trained run's options (its config.json) against a command's, read without TensorFlow.

Training resumes with the run's options (workdir.save_config refuses a different model). The
other modes read a trained run: its model, data and training options come from config.json, and
only the options of MODE_OPTIONS come from the command line. An option given on the command line
that the mode cannot honour, because it differs from the run's, is refused in one line naming
the flag (check_command), rather than ignored in silence: `--mode=sample --num_components=5`, or
`--dataset=fashion_mnist` on an MNIST run.
"""
from __future__ import annotations

import dataclasses
import json
import os

from gmmgan_tf.config import Config, ConfigError

# What evaluation obeys of the evaluating command (not of the trained run).
EVALUATION_OPTIONS = ("eval_samples", "eval_quality", "ndb_bins", "ndb_samples", "ndb_whitening",
                      "ndb_significance", "ndb_z_threshold", "inception_weights",
                      "metrics_cache_dir", "seed", "raw_generator", "sampling_temperature")
MFA_OPTIONS = ("seed", "ndb_bins", "ndb_samples", "ndb_whitening", "ndb_significance",
               "ndb_z_threshold", "metrics_cache_dir")
# Where and how this machine gets the run's data set: --data_dir (where it is prepared here) and
# --download (whether TFDS may fetch it).
DATA_OPTIONS = ("data_dir", "download")
# Per mode, the options it takes from the command line (besides --mode, --workdir and
# evaluate's --compare, which say what to do to which runs).
MODE_OPTIONS = {
    "evaluate": DATA_OPTIONS + EVALUATION_OPTIONS,
    "sample": DATA_OPTIONS + ("sample_rows", "seed", "raw_generator", "sampling_temperature"),
    "interpolate": DATA_OPTIONS + ("seed", "raw_generator", "sampling_temperature"),
    "export": DATA_OPTIONS + ("export_dir", "export_replace_model", "raw_generator",
                              "sampling_temperature"),
    "assign": DATA_OPTIONS + ("images", "assign_dir"),
    "mfa_figures": DATA_OPTIONS + MFA_OPTIONS,
    "mfa_pix2pix": DATA_OPTIONS + ("pix2pix_epochs", "pix2pix_l1_weight") + MFA_OPTIONS,
    "mfa_adversarial": DATA_OPTIONS + ("adversarial_steps",) + MFA_OPTIONS,
}
TARGET_OPTIONS = ("mode", "workdir", "compare")

# Options added since runs were first saved, with the value a run saved before them had (when
# it differs from today's default): such a run is read back as it was trained.
LEGACY_VALUES = {"validation_fraction": 0.0, "ema_decay": 0.0}


def load_saved_config_dict(workdir: str) -> dict | None:
    """The saved config.json (None when there is none); a damaged one is a ConfigError."""
    file = os.path.join(workdir, "config.json")
    try:
        with open(file, "rb") as f:
            saved = json.loads(f.read().decode())
    except FileNotFoundError:
        return None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError: a damaged file
        saved = e
    if not isinstance(saved, dict):
        raise ConfigError(
            f"--workdir: {file} is damaged ({str(saved)[:80]}); move it aside and run the "
            f"training command again with --flagfile={os.path.join(workdir, 'flags.cfg')} to "
            "rewrite it (the checkpoints are kept)")
    return saved


def config_from_saved(saved: dict) -> Config:
    """The Config of a saved config.json, leaving out options this version no longer has."""
    known = {f.name for f in dataclasses.fields(Config)}
    return Config(**{**LEGACY_VALUES, **{k: v for k, v in saved.items() if k in known}})


# Options whose unset value (empty, 0) means the trained run's own.
RUNS_OWN_WHEN_UNSET = ("data_dir", "sampling_temperature")


def overrides(config: Config) -> dict:
    """What a mode's command changes of the run it reads (workdir.load_config's overrides);
    the options of RUNS_OWN_WHEN_UNSET only when set."""
    return {name: getattr(config, name) for name in ("mode",) + MODE_OPTIONS[config.mode]
            if name not in RUNS_OWN_WHEN_UNSET or getattr(config, name)}


def check_command(config: Config, given: set[str]) -> None:
    """For a mode that reads trained runs: --workdir exists (unless it is --compare's output),
    and each option in `given` (set on the command line) that the mode does not take has the
    value of every run read; else a one-line ConfigError naming the flag and the fix."""
    if config.mode not in MODE_OPTIONS:
        return
    runs = config.compare_entries if config.mode == "evaluate" else []
    if not runs:
        runs = [config.workdir]
        if not os.path.isdir(config.workdir):
            raise ConfigError(f"--workdir: {config.workdir!r} does not exist; pass the folder "
                              "of a trained run (--mode=train makes one)")
    fixed = sorted(given - set(MODE_OPTIONS[config.mode]) - set(TARGET_OPTIONS))
    for run in runs:
        saved = load_saved_config_dict(run)
        if saved is None:  # no run to compare with: loading it says so
            continue
        trained = config_from_saved(saved)
        for name in fixed:
            value, run_value = getattr(config, name), getattr(trained, name)
            if value != run_value:
                raise ConfigError(
                    f"--{name}: {value!r} differs from the run in {run!r} ({run_value!r}), and "
                    f"--mode={config.mode} uses the run's own; drop --{name} (another value "
                    "needs a run trained with it)")
