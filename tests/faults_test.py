"""Fault injection: each file kind the project writes is damaged four ways (cut to half its size,
overwritten with zero bytes, with random bytes, deleted) and each mode that reads it is run through
the command line's entry functions (in-process: `cli.parse_flags` + `cli.main`, as `main.py`).

Every cell expects a one-line error (exit 2, nothing changed on disk) or a documented fallback
(exit 0, outputs equal to those of an undamaged run of the epoch it falls back to); a traceback
fails the cell. docs/FAULTS.md is generated from FAULTS below: `python tests/faults_test.py`
rewrites it, and test_docs_table_is_up_to_date checks it. Cells not in FAST run under
`make test-slow` (the table marks them).
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import shutil
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
    kind: str    # "error": exit 2, one line, no file changed; "ok": exit 0, the outputs of an
    #              undamaged run at `epoch`; "new_version": an export beside the damaged one
    expect: str  # a fragment of stderr (error; "a||b": either) or of stdout (the others); "" none
    docs: str    # the table's words
    epoch: int = 0  # the checkpoint the outputs must come from (GAN: 1 or 2, MFA: 3 or 4)


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
    "truncate": error("Unknown command line flag||no longer matches config.json",
                      "error: unknown flag (the cut one), or flags.cfg damaged: resume with "
                      "the original command to rewrite it"),
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
               lambda *args, **kwargs: fast(*args, **{**kwargs, "epochs": 1}))
    runs = {}
    for kind, command in (("gan", MODES["train"].replace("--epochs=3", "--epochs=2")),
                          ("mfa", MODES["mfa train"])):
        runs[kind] = dict(W=str(base / kind), C=str(base / f"{kind}_cache"))
        os.makedirs(runs[kind]["C"])
        _ok(command, **runs[kind])
    _ok(MODES["export"], **runs["gan"])
    _ok(MODES["evaluate (quality)"], **runs["gan"])  # fills the cache
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


# ---------------------------------------------------------------------------------------------
# The table in docs/FAULTS.md.

def faults_table() -> str:
    modes = [m for m in MODES if any(m in f.modes(d) for f in FAULTS for d in DAMAGES)]
    lines = [
        "# What happens when a file is damaged",
        "",
        "Generated by `python tests/faults_test.py` from the parameters of `tests/faults_test.py`,",
        "whose cells run every entry below (`make test`; those marked † under `make test-slow`).",
        "Damages: **truncate** (cut to half its size, as a full disk or a partial copy leaves it),",
        "**zeros** (same size, zero bytes), **random** (same size, random bytes), **delete**.",
        "W is the workdir; the caches live under `--metrics_cache_dir`. Every cell also checks",
        "that no intact checkpoint was changed, that a failing command changed no file, and that",
        "a mode that goes on writes the same outputs as an undamaged run of the checkpoint it",
        "used. A traceback fails the cell.",
        "",
        "Commands (`main.py ...`):",
        "",
    ]
    lines += [f"- **{mode}**: `{MODES[mode].format(ROOT='.', W='W', C='C')}`" for mode in modes]
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
