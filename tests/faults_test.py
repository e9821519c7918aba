"""Fault injection: each file kind the project writes is damaged four ways (cut to half its size,
overwritten with zero bytes, with random bytes, deleted) and each mode that reads it is run through
the command line's entry functions (in-process: `cli.parse_flags` + `cli.main`, as `main.py`).

Every cell expects a one-line error (exit 2, nothing changed on disk) or a documented fallback
(exit 0, outputs equal to those of an undamaged run of the epoch it falls back to); a traceback
fails the cell. SITUATIONS do the same for faults of a run's surroundings: another command
holding the workdir, a full disk, a read-only workdir, a signal. docs/FAULTS.md is generated from
FAULTS and SITUATIONS: `python tests/faults_test.py` rewrites it, and
test_docs_table_is_up_to_date checks it. Cells not in FAST run under `make test-slow` (the table
marks them).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import glob
import hashlib
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import fresh_cli_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs", "FAULTS.md")


def _truncate(file: str) -> None:
    os.truncate(file, os.path.getsize(file) // 2)


def _zeros(file: str) -> None:
    size = os.path.getsize(file)
    with open(file, "wb") as f:
        f.write(b"\0" * size)


def _random(file: str) -> None:
    size = os.path.getsize(file)
    with open(file, "wb") as f:
        f.write(np.random.default_rng(17).bytes(size))


DAMAGES = {"truncate": _truncate, "zeros": _zeros, "random": _random, "delete": os.remove}


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str    # "error": exit `code`, one line, no file changed; "ok": exit 0, the outputs of an
    #              undamaged run at `epoch`; "new_version": an export beside the damaged one;
    #              "disk_full" and "stopped": see _check_situation
    expect: str  # a fragment of stderr (error; "a||b": either) or of stdout (the others); "" none
    docs: str    # the table's words
    epoch: int = 0  # the checkpoint the outputs must come from (GAN: 1 or 2, MFA: 3 or 4)
    code: int = 2  # of an error


def error(fragment: str, docs: str) -> Outcome:
    return Outcome("error", fragment, docs)


GAN_FALLBACK = Outcome("ok", "warning: skipping checkpoint", "skips it (one line), uses epoch 1",
                       epoch=1)
MFA_FALLBACK = Outcome("ok", "warning: skipping checkpoint", "skips it (one line), uses "
                       "iteration 3", epoch=3)
NONE_READABLE = error("can be read (damaged, see above); restore them from a backup",
                      "one line per checkpoint, then an error naming the workdir and the fix")
GAN_STATE_REBUILT = Outcome("ok", "rebuilt it from the 2 checkpoint(s) present",
                            "state file rebuilt from the ckpt-* files (one line), uses epoch 2",
                            epoch=2)
MFA_STATE_REBUILT = Outcome("ok", "rebuilt it from the 3 checkpoint(s) present",
                            "state file rebuilt (one line), uses iteration 4", epoch=4)
CONFIG_DAMAGED = error("config.json is damaged", "error: move it aside, retrain with "
                       "--flagfile=W/flags.cfg to rewrite it")
CONFIG_MISSING = error("config.json is missing", "error: retrain with --flagfile=W/flags.cfg "
                       "to rewrite it")
FLAGFILE_ERRORS = {
    # Half the file may end inside a flag's name or between two flags: either the cut flag is
    # unknown, or the config it replays lacks the dropped flags and differs from config.json
    # (then the error says flags.cfg is damaged and how to rewrite it, not to replay it).
    "truncate": error("Unknown command line flag||no longer matches config.json||has no value",
                      "error: unknown flag (the cut one), a flag without its value, or "
                      "flags.cfg damaged: resume with the original command to rewrite it"),
    "zeros": error("every line of a --flagfile must be one", "error: unexpected arguments"),
    "random": error("a --flagfile is not text", "error: not text; training rewrites it"),
    "delete": error("Unable to open flagfile", "error: cannot open the flagfile"),
}
CACHE_REBUILT = Outcome("ok", "cannot be read", "rebuilt (one line); the same numbers", epoch=2)
CACHE_REFILLED = Outcome("ok", "", "rebuilt; the same numbers", epoch=2)
MFA_CACHE_REBUILT = dataclasses.replace(CACHE_REBUILT, epoch=4)
MFA_CACHE_REFILLED = dataclasses.replace(CACHE_REFILLED, epoch=4)
NEW_VERSION = Outcome("new_version", "gmmgan_pcm/2", "version 2 written beside it; version 1 "
                      "left as it is")

# Modes: command lines, with {W} the workdir, {C} the metrics cache, {ROOT} the repository.
GAN_CACHE = "--metrics_cache_dir={C} --ndb_bins=10 --ndb_samples=200"
MFA_OPTIONS = "--ndb_bins=10 --ndb_samples=200 --metrics_cache_dir={C}"
MODES = {
    "train": "--flagfile={ROOT}/flags/smoke.cfg --workdir={W} --epochs=3 --eval_every=0",
    "replay flags.cfg": "--flagfile={W}/flags.cfg --workdir={W} --epochs=3",
    "evaluate": "--mode=evaluate --workdir={W} --noeval_quality",
    "evaluate (quality)": "--mode=evaluate --workdir={W} " + GAN_CACHE,
    "sample": "--mode=sample --workdir={W}",
    "interpolate": "--mode=interpolate --workdir={W}",
    "export": "--mode=export --workdir={W} --export_dir={W}/saved_models",
    "assign": "--mode=assign --workdir={W} --images={I}/digits.npy",
    "mfa train": "--model=mfa --dataset=mnist_5k --workdir={W} --mfa_components=5 "
                 "--mfa_factors=3 --mfa_iterations=4 --batch_size=250 " + MFA_OPTIONS,
    "mfa evaluate": "--mode=evaluate --workdir={W} " + MFA_OPTIONS,
    "mfa_figures": "--mode=mfa_figures --workdir={W}",
    "mfa_pix2pix": "--mode=mfa_pix2pix --workdir={W} --pix2pix_epochs=1 " + MFA_OPTIONS,
    "mfa_adversarial": "--mode=mfa_adversarial --workdir={W} --adversarial_steps=2 "
                       + MFA_OPTIONS,
}
GAN_LOADING = ("evaluate", "sample", "interpolate", "export")
MFA_LOADING = ("mfa evaluate", "mfa_figures", "mfa_pix2pix", "mfa_adversarial")
# What each mode writes that an undamaged run of the same checkpoint must reproduce.
OUTPUTS = {"evaluate": ["eval/metrics.json"], "evaluate (quality)": ["eval/metrics.json"],
           "sample": ["samples/samples_seed0.png"],
           "interpolate": ["samples/interpolate_2way.png", "samples/interpolate_3way.png"],
           "mfa evaluate": ["eval/metrics.json"], "mfa_figures": ["figures/metrics.json"]}


def _workdir_kind(mode: str) -> str:
    return "mfa" if mode.startswith("mfa") else "gan"


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    pattern: str            # glob of the damaged file(s): {W}/... or {C}/... (metrics cache)
    outcomes: dict          # mode -> Outcome
    by_damage: dict = dataclasses.field(default_factory=dict)  # damage -> {mode -> Outcome}
    tested_in: str = ""     # its cells run in another test module, from this row

    def modes(self, damage: str) -> dict:
        return {**self.outcomes, **self.by_damage.get(damage, {})}


def _each(modes, outcome: Outcome) -> dict:
    return {mode: outcome for mode in modes}


FAULTS = [
    Fault("checkpoint data (newest)", "{W}/checkpoints/ckpt-2.data-*",
          _each(("train",) + GAN_LOADING, GAN_FALLBACK)),
    Fault("checkpoint index (newest)", "{W}/checkpoints/ckpt-2.index",
          _each(("train",) + GAN_LOADING, GAN_FALLBACK)),
    Fault("`checkpoint` state file", "{W}/checkpoints/checkpoint",
          _each(("train",) + GAN_LOADING, GAN_STATE_REBUILT)),
    Fault("every checkpoint (data and index)", "{W}/checkpoints/ckpt-*",
          _each(("train",) + GAN_LOADING, NONE_READABLE)),
    Fault("config.json", "{W}/config.json", _each(("train",) + GAN_LOADING, CONFIG_DAMAGED),
          {"delete": dict(_each(GAN_LOADING, CONFIG_MISSING), train=Outcome(
              "ok", "Resuming", "rewritten from the flags; resumes after epoch 2", epoch=2))}),
    Fault("flags.cfg", "{W}/flags.cfg",
          {"train": Outcome("ok", "Resuming", "rewritten; resumes after epoch 2", epoch=2),
           "sample": Outcome("ok", "", "not read", epoch=2)},
          {damage: {"replay flags.cfg": outcome} for damage, outcome in FLAGFILE_ERRORS.items()}),
    Fault("NDB bins cache", "{C}/ndb_*.npz",
          {"evaluate (quality)": CACHE_REBUILT, "mfa evaluate": MFA_CACHE_REBUILT},
          {"delete": {"evaluate (quality)": CACHE_REFILLED, "mfa evaluate": MFA_CACHE_REFILLED}}),
    Fault("domain classifier cache (.keras)", "{C}/domain_classifier_*.keras",
          {"evaluate (quality)": CACHE_REBUILT}, {"delete": {"evaluate (quality)": CACHE_REFILLED}}),
    Fault("domain classifier cache (.json)", "{C}/domain_classifier_*.keras.json",
          {"evaluate (quality)": CACHE_REBUILT}, {"delete": {"evaluate (quality)": CACHE_REFILLED}}),
    Fault("export version (saved_model.pb)", "{W}/saved_models/gmmgan_pcm/1/saved_model.pb",
          {"export": NEW_VERSION}),
    Fault("export version (variables data)",
          "{W}/saved_models/gmmgan_pcm/1/variables/variables.data-*", {"export": NEW_VERSION}),
    Fault("models.config", "{W}/saved_models/models.config",
          {"export": Outcome("new_version", "models.config", "rewritten")}),
    Fault("MFA checkpoint data (newest)", "{W}/checkpoints/ckpt-4.data-*",
          _each(("mfa train",) + MFA_LOADING, MFA_FALLBACK)),
    Fault("MFA checkpoint index (newest)", "{W}/checkpoints/ckpt-4.index",
          _each(("mfa train",) + MFA_LOADING, MFA_FALLBACK)),
    Fault("MFA `checkpoint` state file", "{W}/checkpoints/checkpoint",
          _each(("mfa train",) + MFA_LOADING, MFA_STATE_REBUILT)),
    Fault("every MFA checkpoint", "{W}/checkpoints/ckpt-*",
          _each(("mfa train",) + MFA_LOADING, NONE_READABLE)),
    # The smoke run has no warm start (it would cost the whole matrix a UMAP fit): its cells
    # run in tests/warm_start_test.py, on this row's pattern and damages, through the function
    # training calls (warm_start.load_or_compute).
    Fault("warm-start cache", "{W}/warm_start/*",
          {"train": Outcome("ok", "rebuilding", "rebuilt (one line); the same clustering")},
          tested_in="tests/warm_start_test.py::test_damaged_warm_start_cache_is_rebuilt"),
]


# ---------------------------------------------------------------------------------------------
# Situations: faults of a run's surroundings, not of one of its files. A cell runs a mode on a
# copy of the GAN workdir while `during` (a context manager factory, given the copy's paths and
# the tmpfs it is on) sets the situation up: another command holding W's lock, a lock left by a
# killed command, a read-only W (a read-only bind mount), a full disk (the tmpfs fills up just
# before the mode writes a file kind), a signal at a chosen moment.

@dataclasses.dataclass(frozen=True)
class Situation:
    name: str          # the table's "file" column
    files: tuple       # the file kind concerned, as globs relative to W ("" for none)
    fault: str         # the table's "damage" column
    outcomes: dict     # mode -> Outcome
    during: object     # (paths, disk) -> context manager
    fast: tuple = ()   # the modes `make test` runs; the others run under `make test-slow`
    tested_in: str = ""  # its cells run in another test module, from this row


def _holding_lock(*directories):
    """Another process holds the locks of `directories` (under W) during the cell."""
    @contextlib.contextmanager
    def during(paths, disk):
        code = ("import sys, time, contextlib; from gmmgan_tf import lock\n"
                "with contextlib.ExitStack() as stack:\n"
                "    for d in sys.argv[1:]: stack.enter_context(lock.hold(d, mode='train'))\n"
                "    print('held', flush=True); time.sleep(600)\n")
        holder = subprocess.Popen(
            [sys.executable, "-c", code, *(d.format(**paths) for d in directories)], cwd=ROOT,
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline() == "held\n"
            yield
        finally:
            holder.kill()
            holder.wait()
    return during


@contextlib.contextmanager
def _lock_left_by_a_killed_command(paths, disk):
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(paths["W"], ".lock"), "w") as f:
        json.dump({"pid": dead.pid, "host": socket.gethostname(), "mode": "train"}, f)
    yield


@contextlib.contextmanager
def _read_only(paths, disk):
    workdir = paths["W"]
    if subprocess.run(["mount", "--bind", workdir, workdir], capture_output=True).returncode:
        pytest.skip("cannot bind-mount (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", workdir], check=True)
        yield
    finally:
        subprocess.run(["umount", "--lazy", workdir], check=True)


FILLER = "filler"  # on the tmpfs beside the cell's directories


def _fill(disk: str) -> None:
    with open(os.path.join(disk, FILLER), "ab") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass


def _full_disk(writer: str = "", when=lambda *args, **kwargs: True):
    """The disk fills up just before `writer` ("module:attribute[.method]") writes (when
    `when(*its arguments)`), or, without a writer, before the command starts."""
    @contextlib.contextmanager
    def during(paths, disk):
        if not writer:
            _fill(disk)
            yield
            return
        module, _, name = writer.partition(":")
        owner = importlib.import_module(module)
        *parents, attribute = name.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, attribute)

        def fill_then_write(*args, **kwargs):
            if when(*args, **kwargs):
                _fill(disk)
            return original(*args, **kwargs)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(owner, attribute, fill_then_write)
            yield
    return during


def _signal_at_first_step(signum):
    """`signum` arrives during the first training step of the command."""
    @contextlib.contextmanager
    def during(paths, disk):
        from gmmgan_tf import train

        batch_end = train.NonFiniteGuard.on_train_batch_end
        sent = []

        def signal_once(self, batch, logs=None):
            batch_end(self, batch, logs)
            if not sent:
                sent.append(os.kill(os.getpid(), signum))

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(train.NonFiniteGuard, "on_train_batch_end", signal_once)
            yield
    return during


@contextlib.contextmanager
def _sigterm_during_export(paths, disk):
    """SIGTERM arrives when the generator's version is written, before the PCM's."""
    import keras

    archive = type(keras.export.ExportArchive())  # the backend's class
    write_out = archive.write_out
    calls = []

    def write_then_signal(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return write_out(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(archive, "write_out", write_then_signal)
        yield


def disk_full(file: str, docs: str = "") -> Outcome:
    return Outcome("disk_full", f"cannot write {file}: the disk is full",
                   docs or f"one line naming {file.replace('{W}', 'W')}, the earlier files "
                           "intact; after freeing space it completes")


IN_USE = error("is in use by PID", "error naming the holder's PID and host")
READER = Outcome("ok", "", "runs (a reader: takes no lock)", epoch=2)
STOPPED = Outcome("stopped", "training stopped after step 1 of epoch 3",
                  "the step ends, ckpt-3 holds it, exit 0 with one line; the same command "
                  "resumes at step 2")
CANNOT_WRITE = error("cannot write to", "error: cannot write to the directory")
READ_ONLY = error("Read-only file system", "error naming the file it could not write")
SITUATIONS = [
    Situation("workdir", ("",), "another command holds it",
              {**_each(("train", "evaluate", "export", "assign"), IN_USE),
               **_each(("sample", "interpolate"), READER)},
              _holding_lock("{W}", "{W}/saved_models"), fast=("train", "export", "sample")),
    Situation("workdir", (".lock",), "lock left by a killed command",
              _each(("train", "evaluate"), Outcome(
                  "ok", "taking over the lock of PID", "taken over (one line); runs", epoch=2)),
              _lock_left_by_a_killed_command, fast=("evaluate",)),
    Situation("workdir", ("",), "read-only",
              {**_each(("train", "evaluate", "export", "assign"), CANNOT_WRITE),
               **_each(("sample", "interpolate"), READ_ONLY)},
              _read_only, fast=("train", "sample")),
    Situation("workdir", ("",), "disk full before the command",
              {"train": disk_full("{W}/.lock"), "evaluate": disk_full("{W}/.lock"),
               "export": disk_full("{W}/saved_models/.lock"),
               "sample": disk_full("{W}/samples/samples_seed0.png")},
              _full_disk(), fast=("evaluate",)),
    Situation("checkpoint", ("checkpoints/ckpt-*",), "disk full while writing it",
              {"train": disk_full("{W}/checkpoints/ckpt-3")},
              _full_disk("gmmgan_tf.workdir:Checkpointer.save")),
    Situation("TensorBoard events", ("tensorboard/*",),
              "disk full while writing them",
              {"train": disk_full("{W}/samples.png", "dropped without an error by TensorFlow's "
                                  "writer; the next file written (samples.png) ends the run "
                                  "with one line; after freeing space it completes")},
              _full_disk("keras.callbacks:TensorBoard.on_epoch_end")),
    Situation("Projector", ("tensorboard/projector/*",), "disk full while writing it",
              _each(("train", "evaluate"), disk_full("{W}/tensorboard/projector")),
              _full_disk("gmmgan_tf.projector:write"), fast=("evaluate",)),
    Situation("samples", ("samples.png", "samples/*"), "disk full while writing them",
              {"train": disk_full("{W}/samples.png"),
               "sample": disk_full("{W}/samples/samples_seed0.png")},
              _full_disk("gmmgan_tf.images:save_png",
                         lambda path, *args, **kwargs: "samples" in os.path.basename(path))),
    Situation("metrics", ("metrics.json", "eval/metrics.json"), "disk full while writing them",
              {"train": disk_full("{W}/metrics.json"),
               "evaluate": disk_full("{W}/eval/metrics.json")},
              _full_disk("gmmgan_tf.workdir:write_json",
                         lambda path, *args: path.endswith("metrics.json")), fast=("train",)),
    Situation("warm-start cache", ("warm_start/*",), "disk full while writing it",
              {"train": disk_full("{W}/warm_start")}, None,
              tested_in="tests/warm_start_test.py::test_a_full_disk_keeps_the_cache_it_replaces"),
    Situation("export", ("saved_models/*",), "disk full while writing it",
              {"export": disk_full("{W}/saved_models/gmmgan_generator/2")},
              _full_disk("gmmgan_tf.export:write_versions")),
    Situation("assign output", ("assign/*",), "disk full while writing it",
              {"assign": disk_full("{W}/assign/assignments.csv")},
              _full_disk("gmmgan_tf.assign:write_csv")),
    Situation("training", ("",), "SIGTERM", {"train": STOPPED},
              _signal_at_first_step(signal.SIGTERM), fast=("train",)),
    Situation("training", ("",), "SIGINT (Ctrl-C)", {"train": STOPPED},
              _signal_at_first_step(signal.SIGINT)),
    Situation("export", ("saved_models/*",), "SIGTERM",
              {"export": Outcome("error", "SIGTERM: stopped, keeping no half-written file",
                                 "no new version, nothing half-written (one line, exit 143)",
                                 code=143)},
              _sigterm_during_export, fast=("export",)),
]


def cells():
    """(fault, damage, mode, outcome) of every cell, those tested elsewhere included."""
    for fault in FAULTS:
        for damage in DAMAGES:
            for mode, outcome in fault.modes(damage).items():
                yield fault, damage, mode, outcome


# Modes that take a second or two a cell; the others train (seconds to tens of seconds).
QUICK_MODES = ("replay flags.cfg", "mfa evaluate", "evaluate", "sample", "interpolate")
# Cells of these modes train a domain classifier again: minutes on busy cores, slow only.
SLOW_ONLY_MODES = ("evaluate (quality)",)


def is_fast(fault: Fault, damage: str, mode: str) -> bool:
    """`make test` runs, for each (file, damage), one quick mode (rotating through them with the
    damages); for a file only slow modes read, one damage (rotating with the files) unless the
    mode is in SLOW_ONLY_MODES; and the issue's own cells (a cut data file; train and evaluate).
    The rest runs in `make test-slow`."""
    if fault is FAULTS[0] and damage == "truncate" and mode in ("train", "evaluate"):
        return True
    modes = [m for m in MODES if m in fault.modes(damage)]
    quick = [m for m in modes if m in QUICK_MODES]
    if quick:
        return mode == quick[list(DAMAGES).index(damage) % len(quick)]
    return (mode == modes[0] and mode not in SLOW_ONLY_MODES
            and damage == list(DAMAGES)[FAULTS.index(fault) % len(DAMAGES)])


# ---------------------------------------------------------------------------------------------
# Running the cells.

def run_cli(command: str, **paths) -> tuple[int, str, str]:
    """`main.py <command>` in this process: (exit code, stdout, stderr). Any exception other than
    the CLI's own exit escapes and fails the test: a traceback is never an expected outcome."""
    import contextlib
    import io

    from gmmgan_tf import cli

    fresh_cli_flags()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(cli.parse_flags(["main.py", *command.format(ROOT=ROOT, **paths).split()]))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def _ok(command: str, **paths) -> str:
    code, out, err = run_cli(command, **paths)
    assert code == 0, (command, err[-2000:])
    return out


def _digest(root: str) -> dict[str, str]:
    """relative path -> SHA-1 of every file under `root`."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            file = os.path.join(folder, name)
            with open(file, "rb") as f:
                out[os.path.relpath(file, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trained workdirs and their metrics caches, shared by the cells: {"gan"|"mfa": {"W": workdir,
    "C": cache}}. A GAN smoke run of 2 epochs on 1,000 mnist_5k digits (exported, evaluated), an
    MFA (5 components, 3 factors, 4 EM iterations)."""
    from gmmgan_tf import data as data_lib
    from gmmgan_tf.config import Config
    from gmmgan_tf.metrics import domain_classifier

    base = tmp_path_factory.mktemp("faults")
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)  # smoke.cfg names flags/base.cfg relative to the repository
    full = data_lib.load(Config())  # mnist_5k
    small = dataclasses.replace(full, train_images=full.train_images[:1000],
                                train_labels=full.train_labels[:1000],
                                test_images=full.test_images[:300],
                                test_labels=full.test_labels[:300])
    mp.setattr(data_lib, "load", lambda config: small)
    # One epoch of the domain classifier: these tests check that it is rebuilt, not its accuracy.
    fast = domain_classifier.train_domain_classifier
    mp.setattr(domain_classifier, "train_domain_classifier",
               lambda *args: fast(*args[:5], domain_classifier.TrainingOptions(epochs=1)))
    runs = {}
    for kind, command in (("gan", MODES["train"].replace("--epochs=3", "--epochs=2")),
                          ("mfa", MODES["mfa train"])):
        runs[kind] = dict(W=str(base / kind), C=str(base / f"{kind}_cache"))
        os.makedirs(runs[kind]["C"])
        _ok(command, **runs[kind])
    runs["gan"]["I"] = str(base / "images")  # --mode=assign's input
    os.makedirs(runs["gan"]["I"])
    np.save(os.path.join(runs["gan"]["I"], "digits.npy"),
            np.rint((small.test_images[:20] + 1) * 127.5).astype(np.uint8))
    _ok(MODES["export"], **runs["gan"])
    _ok(MODES["evaluate (quality)"], **runs["gan"])  # fills the cache
    _ok(MODES["assign"], **runs["gan"])
    yield runs
    mp.undo()


def _copy(run: dict, target) -> dict:
    paths = {}
    for key, source in run.items():
        paths[key] = str(target / key)
        shutil.copytree(source, paths[key])
    return paths


@pytest.fixture(scope="module")
def reference(trained, tmp_path_factory):
    """The outputs of a mode run on an undamaged copy of a checkpoint, computed once each."""
    done = {}

    def outputs(mode: str, epoch: int) -> dict:
        if (mode, epoch) not in done:
            paths = _copy(trained[_workdir_kind(mode)], tmp_path_factory.mktemp("ref"))
            _keep_checkpoints_up_to(os.path.join(paths["W"], "checkpoints"), epoch)
            _ok(MODES[mode], **paths)
            done[mode, epoch] = _read_outputs(paths["W"], mode)
        return done[mode, epoch]

    return outputs


def _keep_checkpoints_up_to(directory: str, epoch: int) -> None:
    """An undamaged workdir whose newest checkpoint is ckpt-<epoch>: the later ones removed and
    the state file written by TF's own function, so that restoring takes the plain path."""
    import tensorflow as tf

    kept = []
    for index in sorted(glob.glob(os.path.join(directory, "ckpt-*.index"))):
        prefix = index[:-len(".index")]
        if int(prefix.rsplit("-", 1)[1]) > epoch:
            for file in glob.glob(prefix + ".*"):
                os.remove(file)
        else:
            kept.append(prefix)
    kept.sort(key=lambda p: int(p.rsplit("-", 1)[1]))
    tf.compat.v1.train.update_checkpoint_state(directory, kept[-1], kept)


def _read_outputs(workdir: str, mode: str) -> dict:
    out = {}
    for name in OUTPUTS.get(mode, []):
        with open(os.path.join(workdir, name), "rb") as f:
            data = f.read()
        out[name] = json.loads(data) if name.endswith(".json") else data
    return out


def _epoch_of(prefix: str) -> int:
    import tensorflow as tf

    return int(tf.train.load_checkpoint(prefix).get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def _params(fast: bool):
    for fault, damage, mode, outcome in cells():
        if fault.tested_in:
            continue
        marks = [] if is_fast(fault, damage, mode) else [pytest.mark.slow]
        if is_fast(fault, damage, mode) == fast:
            yield pytest.param(fault, damage, mode, outcome, marks=marks,
                               id=f"{fault.name}-{damage}-{mode}".replace(" ", "_"))


def _check_cell(trained, reference, tmp_path, fault, damage, mode, outcome):
    paths = _copy(trained[_workdir_kind(mode)], tmp_path)
    targets = sorted(glob.glob(fault.pattern.format(**paths)))
    assert targets, fault.pattern
    for target in targets:
        DAMAGES[damage](target)
    before = {key: _digest(path) for key, path in paths.items()}
    code, out, err = run_cli(MODES[mode], **paths)
    after = {key: _digest(path) for key, path in paths.items()}
    if outcome.kind == "error":
        assert code == 2, (out[-2000:], err[-2000:])
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        expected = outcome.expect.split("||")  # alternatives
        assert len(lines) == 1 and any(e in lines[0] for e in expected), err[-2000:]
        if mode.endswith("train"):  # training records its command's flags first (save_config
            for files in (before["W"], after["W"]):  # refuses other runs): not the run's data
                files.pop("flags.cfg", None), files.pop("config.json", None)
        assert after == before, "a failing command changed files"
        return
    assert code == 0, err[-2000:]
    assert outcome.expect in out, out[-3000:]
    # No other checkpoint was touched (training may rewrite the damaged one and add newer ones).
    damaged = {os.path.basename(t).split(".")[0] for t in targets if "ckpt-" in t}
    for key, files in before.items():
        for name, digest in files.items():
            if "ckpt-" in name and os.path.basename(name).split(".")[0] not in damaged:
                assert after[key].get(name) == digest, name
    if outcome.kind == "new_version":
        versions = os.path.join(paths["W"], "saved_models", "gmmgan_pcm")
        assert sorted(os.listdir(versions)) == ["1", "2"]
        assert {n: d for n, d in after["W"].items() if "/1/" in n} == {
            n: d for n, d in before["W"].items() if "/1/" in n}, "version 1 was changed"
        return
    if mode == "train":
        assert f"Resuming {paths['W']} after epoch {outcome.epoch}." in out
        assert _epoch_of(os.path.join(paths["W"], "checkpoints", "ckpt-3")) == 3
    elif mode == "mfa train":
        assert f"Resuming {paths['W']}: {outcome.epoch} of 4" in out
    else:
        assert f"ckpt-{outcome.epoch} (epoch {outcome.epoch})" in out
    want = reference(mode, outcome.epoch)
    assert _read_outputs(paths["W"], mode) == want


@pytest.mark.parametrize("fault, damage, mode, outcome", list(_params(fast=True)))
def test_fault(trained, reference, tmp_path, fault, damage, mode, outcome):
    _check_cell(trained, reference, tmp_path, fault, damage, mode, outcome)


@pytest.mark.parametrize("fault, damage, mode, outcome", list(_params(fast=False)))
def test_fault_slow(trained, reference, tmp_path, fault, damage, mode, outcome):
    _check_cell(trained, reference, tmp_path, fault, damage, mode, outcome)


def _situation_params(fast: bool):
    for situation in SITUATIONS:
        if situation.tested_in:
            continue
        for mode, outcome in situation.outcomes.items():
            if (mode in situation.fast) == fast:
                yield pytest.param(situation, mode, outcome, marks=[] if fast else [
                    pytest.mark.slow], id=f"{situation.name}-{situation.fault}-{mode}".replace(
                    " ", "_"))


@contextlib.contextmanager
def _tmpfs(tmp_path, run: dict):
    """A tmpfs holding `run`'s directories and some room; yields its mount point."""
    disk = tmp_path / "disk"
    disk.mkdir()
    used = sum(os.path.getsize(os.path.join(folder, name)) for root in run.values()
               for folder, _, names in os.walk(root) for name in names)
    size = used // 1024 + 32 * 1024  # KiB: room for what the modes write, then filled
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs (needs root)")
    try:
        yield str(disk)
    finally:
        # Lazy: a failing cell can leave files open on it (TF's event writers).
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _temporaries(root: str) -> list[str]:
    """What an interrupted write leaves: atomic writes' .tmp-*, staging .projector-* and
    .tmp-warm_start-*, SaveV2's *_temp."""
    return [os.path.join(folder, name) for folder, dirs, files in os.walk(root)
            for name in dirs + files if name.startswith((".tmp", ".projector-"))
            or name.endswith("_temp")]


def _check_situation(trained, reference, tmp_path, situation, mode, outcome):
    with _tmpfs(tmp_path, trained["gan"]) as disk:
        paths = _copy(trained["gan"], tmp_path / "disk")
        with situation.during(paths, disk):
            before = {key: _digest(path) for key, path in paths.items()}
            code, out, err = run_cli(MODES[mode], **paths)
            after = {key: _digest(path) for key, path in paths.items()}
        assert "Traceback" not in err, err[-3000:]
        if outcome.kind in ("error", "disk_full"):
            assert code == outcome.code, (out[-2000:], err[-2000:])
            lines = [line for line in err.splitlines() if line.startswith("error: ")]
            assert len(lines) == 1 and outcome.expect.format(**paths) in lines[0], err[-2000:]
        if outcome.kind == "error":
            assert after == before, "a failing command changed files"
            assert not _temporaries(paths["W"])
            return
        if outcome.kind == "ok":
            assert code == 0, err[-2000:]
            assert outcome.expect in out, out[-3000:]
            if mode == "train":
                assert f"Resuming {paths['W']} after epoch {outcome.epoch}." in out
            else:
                assert f"ckpt-{outcome.epoch} (epoch {outcome.epoch})" in out
                assert _read_outputs(paths["W"], mode) == reference(mode, outcome.epoch)
            return
        if outcome.kind == "disk_full":
            # The files of the kind it failed to write are as they were, and nothing
            # half-written is left to fill the disk again.
            for name, digest in before["W"].items():
                if any(fnmatch.fnmatch(name, pattern) for pattern in situation.files):
                    assert after["W"].get(name) == digest, name
            assert not _temporaries(paths["W"])
            os.remove(os.path.join(disk, FILLER))
        else:  # stopped
            assert code == 0, err[-2000:]
            assert outcome.expect in out, out[-3000:]
            assert _epoch_of(os.path.join(paths["W"], "checkpoints", "ckpt-3")) == 2
        code, out, err = run_cli(MODES[mode], **paths)  # the same command, again
        assert code == 0, err[-2000:]
        if outcome.kind == "stopped":
            assert f"Resuming {paths['W']} after step 1 of epoch 3." in out
            assert _epoch_of(os.path.join(paths["W"], "checkpoints", "ckpt-3")) == 3
        # The kind is written this time, and a training run finishes.
        assert any(glob.glob(os.path.join(paths["W"], files)) for files in situation.files)
        if mode == "train":
            with open(os.path.join(paths["W"], "metrics.json")) as f:
                assert json.load(f)["epochs"] == 3


@pytest.mark.parametrize("situation, mode, outcome", list(_situation_params(fast=True)))
def test_situation(trained, reference, tmp_path, situation, mode, outcome):
    _check_situation(trained, reference, tmp_path, situation, mode, outcome)


@pytest.mark.parametrize("situation, mode, outcome", list(_situation_params(fast=False)))
def test_situation_slow(trained, reference, tmp_path, situation, mode, outcome):
    _check_situation(trained, reference, tmp_path, situation, mode, outcome)


# ---------------------------------------------------------------------------------------------
# The table in docs/FAULTS.md.

def faults_table() -> str:
    modes = [m for m in MODES if any(m in f.modes(d) for f in FAULTS for d in DAMAGES)
             or any(m in s.outcomes for s in SITUATIONS)]
    lines = [
        "# What happens when a file is damaged, or the run's surroundings fail",
        "",
        "Generated by `python tests/faults_test.py` from the parameters of `tests/faults_test.py`,",
        "whose cells run every entry below (`make test`; those marked † under `make test-slow`).",
        "Damages: **truncate** (cut to half its size, as a full disk or a partial copy leaves it),",
        "**zeros** (same size, zero bytes), **random** (same size, random bytes), **delete**.",
        "W is the workdir; the caches live under `--metrics_cache_dir`, C here; I holds 20",
        "test digits for `--mode=assign`. Every cell also checks",
        "that no intact checkpoint was changed, that a failing command changed no file, and that",
        "a mode that goes on writes the same outputs as an undamaged run of the checkpoint it",
        "used. A traceback fails the cell.",
        "",
        "The rows after the damaged files are faults of the surroundings, each cell on a copy of",
        "W on a tmpfs: another command holding W's lock (W/.lock; a reader takes none), a lock",
        "left by a killed command, W mounted read-only, the disk filling up just before the",
        "command writes a file kind, a signal during training or export. A full disk's cell also",
        "checks that the files of that kind are as they were and that no temporary file is left,",
        "then frees the space and runs the same command again, which must complete.",
        "",
        "Commands (`main.py ...`):",
        "",
    ]
    lines += [f"- **{mode}**: `{MODES[mode].format(ROOT='.', W='W', C='C', I='I')}`"
              for mode in modes]
    lines += ["", "| file | damage | " + " | ".join(modes) + " |",
              "|---|---|" + "---|" * len(modes)]
    for fault in FAULTS:
        for damage in DAMAGES:
            row = []
            for mode in modes:
                outcome = fault.modes(damage).get(mode)
                if fault.tested_in:
                    row.append(f"{outcome.docs} (`{fault.tested_in}`)" if outcome else "")
                elif outcome:
                    slow = "" if is_fast(fault, damage, mode) else " †"
                    row.append(outcome.docs + slow)
                else:
                    row.append("")
            pattern = fault.pattern.format(W="W", C="C")
            lines.append(f"| {fault.name} (`{pattern}`) | {damage} | " + " | ".join(row) + " |")
    for situation in SITUATIONS:
        row = []
        for mode in modes:
            outcome = situation.outcomes.get(mode)
            if outcome is None:
                row.append("")
            elif situation.tested_in:
                row.append(f"{outcome.docs} (`{situation.tested_in}`)")
            else:
                row.append(outcome.docs + ("" if mode in situation.fast else " †"))
        files = ", ".join(f"`W/{files}`" for files in situation.files if files) or "`W`"
        lines.append(f"| {situation.name} ({files}) | {situation.fault} | " + " | ".join(row)
                     + " |")
    lines += ["", "Served side: `tests/export_test.py::test_concurrent_requests_with_malformed_ones` "
              "drives the exported PCM from several threads at once through the TF1 loader "
              "TF Serving uses, with malformed requests mixed in.", ""]
    return "\n".join(lines)


def test_docs_table_is_up_to_date():
    with open(DOCS) as f:
        assert f.read() == faults_table(), "run: python tests/faults_test.py"


if __name__ == "__main__":
    with open(DOCS, "w") as f:
        f.write(faults_table())
    print(f"Wrote {DOCS}")
