"""The run directory: where everything a run writes lives, and how a model is read back from it.

    <workdir>/flags.cfg       the full resolved flag set (replay: --flagfile=<workdir>/flags.cfg)
    <workdir>/config.json     the same, machine-readable
    <workdir>/.lock           while a command writes into it: which one (lock.py)
    <workdir>/checkpoints/    tf.train.CheckpointManager (model, optimizers, epoch, step)
    <workdir>/tensorboard/    train/ (Keras scalars), eval/ (metrics, per-component grids)
    <workdir>/samples.png     one row per component
    <workdir>/metrics.json    final quality numbers

Checkpoints are atomic: TF writes the new files first and then atomically renames the
`checkpoint` index that points at them, so a kill at any moment leaves the last complete one;
a save that fails (a full disk) removes its temporary files. ckpt-<n> holds epoch n complete,
or, written when a signal stopped training (train.py), epoch n up to the step it had reached.
Damage from outside (a full disk, a partial copy, a crashed sync) is survived too: restoring
skips every checkpoint that cannot be read, with one line each, and uses the newest intact one;
a damaged `checkpoint` state file is rebuilt from the ckpt-* files present (docs/FAULTS.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import logging
import os
import re
import shutil

import tensorflow as tf

from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.errors import writing
from gmmgan_tf.images import atomic_write_bytes
from gmmgan_tf.run_options import config_from_saved, load_saved_config_dict

# Options that may change between an interrupted run and its resumption.
RESUMABLE_OPTIONS = frozenset({
    "mode", "workdir", "data_dir", "download", "epochs", "eval_every", "eval_samples", "eval_quality",
    "compare", "sample_rows", "metrics_cache_dir", "inception_weights", "export_dir",
    "jit_compile", "strategy", "num_virtual_devices", "images", "assign_dir", "raw_generator",
    "export_replace_model", "sampling_temperature"})


# Checkpoint paths of random-number states (GMMGAN.noise_seed_state and augmenter_seed_states,
# checkpointed since resume became bit-exact): older checkpoints lack them, and restore without
# them.
RANDOM_STATES = re.compile(r"seed_generator(_\d+)?/seed_generator_state$")


def path(workdir: str, *parts: str) -> str:
    return os.path.join(workdir, *parts)


def save_config(config: Config) -> None:
    """Writes flags.cfg and config.json, refusing to mix two different runs in one workdir."""
    saved = load_saved_config_dict(config.workdir)
    if saved is not None:
        current = dataclasses.asdict(config)
        for name, value in saved.items():
            if name not in RESUMABLE_OPTIONS and name in current and current[name] != value:
                flagfile = path(config.workdir, "flags.cfg")
                problem = f"--{name}: {current[name]!r} differs from the run already in " \
                          f"{config.workdir!r} ({value!r})"
                if not _flagfile_matches(flagfile, saved):  # replaying it would fail the same way
                    raise ConfigError(
                        f"{problem}, and {flagfile} no longer matches config.json (damaged, or "
                        "from an older version): resume with the command that started the run, "
                        "which rewrites it")
                raise ConfigError(f"{problem}; use a new --workdir, or replay the run with "
                                  f"--flagfile={flagfile}")
    atomic_write_bytes(path(config.workdir, "flags.cfg"), config.as_flagfile().encode())
    write_json(path(config.workdir, "config.json"), dataclasses.asdict(config))


def _flagfile_matches(flagfile: str, saved: dict) -> bool:
    """Whether `flagfile` is the one save_config wrote for the saved config.json."""
    try:
        expected = config_from_saved(saved).as_flagfile()
        with open(flagfile, "rb") as f:
            return f.read() == expected.encode()
    except (OSError, TypeError):
        return False


def load_config(workdir: str, **overrides) -> Config:
    """The config a run was trained with (for evaluate/sample/export), with overrides."""
    saved = load_saved_config_dict(workdir)
    if saved is None and os.path.exists(path(workdir, "flags.cfg")):
        raise ConfigError(
            f"--workdir: {path(workdir, 'config.json')} is missing; run the training command "
            f"again with --flagfile={path(workdir, 'flags.cfg')} to rewrite it (the "
            "checkpoints are kept)")
    if saved is None:
        raise ConfigError(f"--workdir: {workdir!r} holds no trained run (no config.json); "
                          "train one first with --mode=train")
    return dataclasses.replace(config_from_saved(saved), **overrides).validate()


def write_json(file: str, obj) -> None:
    atomic_write_bytes(file, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


# What reading a damaged checkpoint raises: OpError (checksum mismatch, "not an sstable", a
# missing file) and IndexError ("Read less bytes than requested" from a truncated data file).
CHECKPOINT_READ_ERRORS = (tf.errors.OpError, IndexError)
CHECKPOINT_NAME = "ckpt"


class Checkpointer:
    """Model + optimizers + the number of completed epochs + the steps done in the next one
    (0 but in a checkpoint written when a signal stopped training mid-epoch)."""

    def __init__(self, model, workdir: str, max_to_keep: int = 3, restore_from: str = ""):
        """Saves under <workdir>/checkpoints and resumes from <restore_from or workdir>/checkpoints
        (a non-chief worker saves to scratch and resumes from the chief's)."""
        self.restore_dir = path(restore_from or workdir, "checkpoints")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(model=model, epoch=self.epoch, step=self.step,
                                              **getattr(model, "optimizers", {}))
        self.restored: str | None = None  # the prefix restore_latest used
        save_dir = path(workdir, "checkpoints")
        repair_state_file(save_dir)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, save_dir, max_to_keep=max_to_keep, checkpoint_name=CHECKPOINT_NAME)

    def candidates(self) -> list[str]:
        """Checkpoint prefixes to restore from, newest first: those the `checkpoint` state file
        lists and those whose index file is present (the state file may be damaged)."""
        return checkpoint_prefixes(self.restore_dir)

    def restore_latest(self) -> int:
        """Restores the newest checkpoint that can be read, skipping damaged ones with one line
        each; returns the number of completed epochs (0 without checkpoints; `step` holds the
        steps done after them). Raises ConfigError, deleting nothing, when there are
        checkpoints and none can be read."""
        prefixes = self.candidates()
        for prefix in prefixes:
            self.step.assign(0)  # checkpoints from before `step` was saved lack it
            try:
                self.restore(prefix)
            except CHECKPOINT_READ_ERRORS as e:
                print(f"warning: skipping checkpoint {prefix}: {_damaged_file(prefix)} cannot be "
                      f"read ({_first_line(e)}); trying the one before", flush=True)
                continue
            self.restored = prefix
            return int(self.epoch.numpy())
        if prefixes:
            raise ConfigError(
                f"--workdir: none of the {len(prefixes)} checkpoints in {self.restore_dir} can "
                "be read (damaged, see above); restore them from a backup, or move "
                f"{self.restore_dir} aside to train from scratch")
        return 0

    def restore_trained(self, missing: str) -> int:
        """restore_latest for a mode that needs a trained model: ConfigError(missing) when there
        is no checkpoint; says which checkpoint it used."""
        if not self.candidates():
            raise ConfigError(missing)
        done = self.restore_latest()
        print(f"Using {self.restored} ({self.position()}).", flush=True)
        return done

    def position(self) -> str:
        """Where the restored checkpoint is: 'epoch e', or 'step s of epoch e' mid-epoch."""
        epoch, step = int(self.epoch.numpy()), int(self.step.numpy())
        return f"step {step} of epoch {epoch + 1}" if step else f"epoch {epoch}"

    def restore(self, checkpoint_path: str) -> None:
        """Restores every variable of the model (and of its optimizers, when built) from one
        checkpoint; raises one of CHECKPOINT_READ_ERRORS when it is damaged, or ConfigError when
        it lacks a variable of the model (which would silently keep its fresh initial value).
        Values the model does not use (the optimizers' state, for an evaluation that builds
        none) are allowed, and so is a checkpoint written before the random states (noise,
        augmentations) were saved: it restores with a warning (a resumed run then draws other
        random numbers)."""
        status = self.checkpoint.restore(checkpoint_path).expect_partial()
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            count = re.search(r"Found (\d+)", str(e))
            # Keras variables show as path=..., tf.Variables (epoch, step) as <tf.Variable 'step:0'.
            named = ["".join(groups) for groups in
                     re.findall(r"path=([^,\s]+)|<tf\.Variable '([^':]+)", str(e))]
            # Checkpoints from before `step` was saved lack it: all are of an epoch's end.
            missing = [name for name in named if name != "step"]
            listed = count and int(count.group(1)) == len(named)
            if listed and not missing:
                return
            if listed and all(RANDOM_STATES.match(name) for name in missing):
                print(f"warning: {checkpoint_path} predates the saved random states; a resumed "
                      "run draws other noise and augmentations than an uninterrupted one would",
                      flush=True)
                return
            names = ", ".join(missing[:3])
            raise ConfigError(
                f"--workdir: {checkpoint_path} lacks {count.group(1) if count else 'some'} objects "
                f"of this model (e.g. {names or 'see the TensorFlow log'}); it was "
                "written by another model or version: train into a new --workdir") from None

    def save(self, completed_epochs: int, step: int = 0) -> str:
        """Saves ckpt-<completed_epochs>, or with `step` steps of the next epoch done,
        ckpt-<completed_epochs + 1> (which that epoch's end overwrites)."""
        self.epoch.assign(completed_epochs)
        self.step.assign(step)
        number = completed_epochs + (1 if step else 0)
        prefix = path(self.manager.directory, f"{CHECKPOINT_NAME}-{number}")
        try:
            with writing(prefix):
                return self.manager.save(checkpoint_number=number)
        except BaseException:
            # SaveV2's partial data (a full disk, a signal): space the rerun will need.
            shutil.rmtree(f"{prefix}_temp", ignore_errors=True)
            raise


def _first_line(error: Exception) -> str:
    message = error.message if isinstance(error, tf.errors.OpError) else str(error)
    return (message.strip().splitlines() or [type(error).__name__])[0][:200]


def _damaged_file(prefix: str) -> str:
    """Which file of a checkpoint that failed to restore is at fault: a missing one, else the
    index when even the variable list cannot be read, else the data."""
    data = glob.glob(f"{prefix}.data-*") or [f"{prefix}.data-00000-of-00001"]
    for file in [f"{prefix}.index", *data]:
        if not os.path.exists(file):
            return f"{os.path.basename(file)} (missing)"
    try:
        tf.train.load_checkpoint(prefix)
    except CHECKPOINT_READ_ERRORS:
        return f"{os.path.basename(prefix)}.index"
    return ", ".join(os.path.basename(file) for file in data)


def _checkpoint_number(prefix: str) -> int:
    match = re.fullmatch(re.escape(CHECKPOINT_NAME) + r"-(\d+)", os.path.basename(prefix))
    return int(match.group(1)) if match else -1


@contextlib.contextmanager
def _quiet_tf_logger():
    """TensorFlow's Python logger at ERROR within the block."""
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def _listed_prefixes(directory: str) -> list[str] | None:
    """The prefixes the `checkpoint` state file lists; None when it is missing or damaged."""
    try:
        with _quiet_tf_logger():  # TF's own two warning lines about a damaged file
            state = tf.train.get_checkpoint_state(directory)
    except ValueError:  # UnicodeDecodeError, or a state naming no checkpoint
        state = None
    if state is None:
        return None
    return list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]


def checkpoint_prefixes(directory: str) -> list[str]:
    """Checkpoint prefixes in `directory`, newest first, from the state file and the files."""
    present = [index[:-len(".index")]
               for index in glob.glob(path(directory, f"{CHECKPOINT_NAME}-*.index"))]
    prefixes = {os.path.join(directory, os.path.basename(p))
                for p in (_listed_prefixes(directory) or []) + present}
    return sorted((p for p in prefixes if _checkpoint_number(p) >= 0),
                  key=_checkpoint_number, reverse=True)


def repair_state_file(directory: str) -> None:
    """Rewrites a missing or damaged `checkpoint` state file from the checkpoint files present,
    so that tf.train.CheckpointManager can start and keeps rotating the old checkpoints."""
    state_file = path(directory, "checkpoint")
    if _listed_prefixes(directory) is not None:
        return
    present = sorted(glob.glob(path(directory, f"{CHECKPOINT_NAME}-*.index")),
                     key=lambda index: _checkpoint_number(index[:-len(".index")]))
    if not present:
        return
    print(f"warning: {state_file} is {'damaged' if os.path.exists(state_file) else 'missing'}; "
          f"rebuilt it from the {len(present)} checkpoint(s) present", flush=True)
    times = [os.path.getmtime(index) for index in present]
    # Given a relative directory, TF writes the names relative to it, as CheckpointManager does,
    # so the workdir can move; it writes a temporary file and renames it into place. The manager
    # rotates checkpoints newer than last_preserved_timestamp, so the old ones go as new ones
    # are saved.
    relative = os.path.relpath(directory)
    prefixes = [os.path.join(relative, os.path.basename(index[:-len(".index")]))
                for index in present]
    with _quiet_tf_logger():  # its deprecation notice: CheckpointManager cannot adopt files
        tf.compat.v1.train.update_checkpoint_state(
            relative, prefixes[-1], prefixes, all_model_checkpoint_timestamps=times,
            last_preserved_timestamp=min(times) - 1)


def load_trained_model(workdir: str, **overrides):
    """(config, data, model) of the latest checkpoint in `workdir`; fails clearly if none. The
    config's workdir is where the run is now (its caches too), wherever it was trained."""
    from gmmgan_tf import data as data_lib
    from gmmgan_tf.gan import GMMGAN

    # The data exactly as the run was trained (its own --seed splits folder and flowers sets;
    # only where it is prepared may differ); the overrides change only what this command does
    # with the model.
    config = dataclasses.replace(load_config(workdir, **overrides), workdir=workdir)
    bundle = data_lib.load(load_config(workdir, data_dir=config.data_dir))
    model = GMMGAN(config, bundle.image_shape)
    Checkpointer(model, workdir).restore_trained(
        f"--workdir: {workdir!r} has no checkpoint yet; train first")
    return config, bundle, model
