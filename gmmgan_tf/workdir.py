"""The run directory: where everything a run writes lives, and how a model is read back from it.

    <workdir>/flags.cfg       the full resolved flag set (replay: --flagfile=<workdir>/flags.cfg)
    <workdir>/config.json     the same, machine-readable
    <workdir>/checkpoints/    tf.train.CheckpointManager (model, optimizers, epoch)
    <workdir>/tensorboard/    train/ (Keras scalars), eval/ (metrics, per-component grids)
    <workdir>/samples.png     one row per component
    <workdir>/metrics.json    final quality numbers

Checkpoints are atomic: TF writes the new files first and then atomically renames the
`checkpoint` index that points at them, so a kill at any moment leaves the last complete one.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re

import tensorflow as tf

from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.images import atomic_write_bytes

# Options that may change between an interrupted run and its resumption.
RESUMABLE_OPTIONS = frozenset({
    "mode", "workdir", "data_dir", "epochs", "eval_every", "eval_samples", "eval_quality",
    "compare", "sample_rows", "metrics_cache_dir", "inception_weights", "export_dir",
    "jit_compile", "strategy", "num_virtual_devices"})


def path(workdir: str, *parts: str) -> str:
    return os.path.join(workdir, *parts)


def save_config(config: Config) -> None:
    """Writes flags.cfg and config.json, refusing to mix two different runs in one workdir."""
    saved = load_saved_config_dict(config.workdir)
    if saved is not None:
        current = dataclasses.asdict(config)
        for name, value in saved.items():
            if name not in RESUMABLE_OPTIONS and name in current and current[name] != value:
                raise ConfigError(
                    f"--{name}: {current[name]!r} differs from the run already in "
                    f"{config.workdir!r} ({value!r}); use a new --workdir, or replay the run with "
                    f"--flagfile={path(config.workdir, 'flags.cfg')}")
    atomic_write_bytes(path(config.workdir, "flags.cfg"), config.as_flagfile().encode())
    write_json(path(config.workdir, "config.json"), dataclasses.asdict(config))


def load_saved_config_dict(workdir: str) -> dict | None:
    try:
        with open(path(workdir, "config.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def load_config(workdir: str, **overrides) -> Config:
    """The config a run was trained with (for evaluate/sample/export), with overrides."""
    saved = load_saved_config_dict(workdir)
    if saved is None:
        raise ConfigError(f"--workdir: {workdir!r} holds no trained run (no config.json); "
                          "train one first with --mode=train")
    known = {f.name for f in dataclasses.fields(Config)}
    saved = {k: v for k, v in saved.items() if k in known}
    return dataclasses.replace(Config(**saved), **overrides).validate()


def write_json(file: str, obj) -> None:
    atomic_write_bytes(file, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


class Checkpointer:
    """Model + optimizers + the number of completed epochs."""

    def __init__(self, model, workdir: str, max_to_keep: int = 3, restore_from: str = ""):
        """Saves under <workdir>/checkpoints and resumes from <restore_from or workdir>/checkpoints
        (a non-chief worker saves to scratch and resumes from the chief's)."""
        self.restore_dir = path(restore_from or workdir, "checkpoints")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(model=model, epoch=self.epoch,
                                              **getattr(model, "optimizers", {}))
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, path(workdir, "checkpoints"), max_to_keep=max_to_keep)

    def restore_latest(self) -> int:
        """Restores the newest checkpoint if any; returns the number of completed epochs."""
        latest = tf.train.latest_checkpoint(self.restore_dir)
        if latest:
            self.restore(latest)
        return int(self.epoch.numpy())

    def restore(self, checkpoint_path: str) -> None:
        """Restores every variable of the model (and of its optimizers, when built) from one
        checkpoint, or raises ConfigError: a variable the checkpoint lacks would silently keep
        its fresh initial value. Values the model does not use (the optimizers' state, for an
        evaluation that builds none) are allowed."""
        status = self.checkpoint.restore(checkpoint_path).expect_partial()
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            count = re.search(r"Found (\d+)", str(e))
            names = ", ".join(re.findall(r"path=([^,\s]+)", str(e))[:3])
            raise ConfigError(
                f"--workdir: {checkpoint_path} lacks {count.group(1) if count else 'some'} objects "
                f"of this model (e.g. {names or 'see the TensorFlow log'}); it was "
                "written by another model or version: train into a new --workdir") from None

    def save(self, completed_epochs: int) -> str:
        self.epoch.assign(completed_epochs)
        return self.manager.save(checkpoint_number=completed_epochs)


def load_trained_model(workdir: str, **overrides):
    """(config, data, model) of the latest checkpoint in `workdir`; fails clearly if none."""
    from gmmgan_tf import data as data_lib
    from gmmgan_tf.gan import GMMGAN

    config = load_config(workdir, **overrides)
    bundle = data_lib.load(config)
    model = GMMGAN(config, bundle.image_shape)
    checkpointer = Checkpointer(model, workdir)
    if not checkpointer.manager.latest_checkpoint:
        raise ConfigError(f"--workdir: {workdir!r} has no checkpoint yet; train first")
    checkpointer.restore_latest()
    return config, bundle, model
