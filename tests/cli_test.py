"""The command line end to end: flag errors, a smoke run, resume after kill -9, NaN guard, the
workdir's lock, a full disk."""
import dataclasses
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import fresh_cli_flags, tiny_config, without_tensorflow
from gmmgan_tf import data as data_lib
from gmmgan_tf import train
from gmmgan_tf.config import Config
from gmmgan_tf.errors import TrainingDiverged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# main.py's own TensorFlow log level, as a user gets it (conftest.py sets one for this process).
ENV = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}


def main_py(*args, timeout=300, env=ENV):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def main_py_before_tensorflow(*args):
    """main.py where importing TensorFlow fails: its answer must come before TensorFlow loads."""
    return main_py(*args, timeout=60, env=without_tensorflow(ENV))


@pytest.mark.parametrize("flag, fragment", [
    ("--dataset=nope", "--dataset: unknown dataset 'nope'"),
    ("--num_components=0", "--num_components: must be >= 1"),
    ("--batch_size=-4", "--batch_size: must be >= 1"),
    ("--image_size=30", "--image_size: the networks cannot make 30-pixel images"),
    ("--warm_start_neighbour_epochs=-1", "--warm_start_neighbour_epochs: must be >= 0"),
    ("--workdir=/proc/forbidden", "--workdir: cannot write to '/proc/forbidden'"),
])
def test_bad_flags_exit_fast_with_one_line(flag, fragment):
    result = main_py_before_tensorflow(flag)
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, line", [
    *[([f"--mode={mode}", "--workdir={run}/config.json", "--images={run}"],
       "--workdir: '{run}/config.json' is a file, not a run directory; pass the run's folder, "
       "--workdir={run}") for mode in ("evaluate", "sample", "export", "assign")],
    (["--mode=evaluate", "--compare={run}/config.json,{run}", "--workdir={run}/cmp"],
     "--compare: '{run}/config.json' is a file, not a run directory; pass the run's folder, "
     "{run}"),
    (["--mode=assign", "--workdir={run}", "--images={run}/missing"],
     "--images: '{run}/missing' does not exist; pass a folder of images or a .npy batch"),
    (["--flagfile={run}/missing.cfg"],
     "--flagfile: cannot open '{run}/missing.cfg' (No such file or directory); see --helpshort"),
], ids=["evaluate", "sample", "export", "assign", "compare", "images", "flagfile"])
def test_a_wrong_path_is_one_line_at_once(args, line, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    result = main_py_before_tensorflow(*[arg.format(run=run) for arg in args])
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: " + line.format(run=run)]


def _bad_images(root):
    """--images that cannot give one image, by name: (path, the error line's tail)."""
    (root / "empty" / "sub").mkdir(parents=True)
    (root / "bad").mkdir()
    for name in ("a.png", "b.jpg"):
        (root / "bad" / name).write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    (root / "corrupt.npy").write_bytes(b"PK\x03\x04 a zip, say" * 10)
    np.save(root / "shape.npy", np.zeros((2, 28, 28, 4), np.uint8))
    np.save(root / "unit.npy", np.full((2, 28, 28), 0.5, np.float32))
    np.save(root / "objects.npy", np.array([{"a": 1}], dtype=object))
    return {
        "empty_folder": ("empty", "no image files (.png, .jpg, .jpeg, .bmp, .gif) in '{p}' or its "
                         "sub-folders"),
        "only_bad_files": ("bad", "none of the 2 image files could be used (the first, {p}/a.png: "
                           "not a decodable PNG/JPEG/BMP/GIF image)"),
        "corrupt_npy": ("corrupt.npy", "'{p}' is not a .npy file (no NumPy header); save the batch "
                        "with numpy.save"),
        "object_npy": ("objects.npy", "'{p}' cannot be read as a .npy batch (it holds Python "
                       "objects, not numbers)"),
        "wrong_shape_npy": ("shape.npy", "'{p}' holds an array of shape (2, 28, 28, 4); expected a "
                            "batch [N, H, W] or [N, H, W, 1|3]"),
        "unit_range_npy": ("unit.npy", "'{p}': float images look like [0, 1] images (no value "
                           "below 0), which [-1, 1] would misread: send uint8 pixels or floats in "
                           "[-1, 1] (x * 2 - 1 for [0, 1] images)"),
    }


@pytest.mark.parametrize("case", ["empty_folder", "only_bad_files", "corrupt_npy", "object_npy",
                                  "wrong_shape_npy", "unit_range_npy"])
def test_assign_refuses_bad_images_before_loading_the_model(case, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")  # never read: the images fail first
    name, tail = _bad_images(tmp_path)[case]
    path = tmp_path / name
    result = main_py_before_tensorflow("--mode=assign", f"--workdir={run}", f"--images={path}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: --images: " + tail.format(p=path)]


@pytest.mark.parametrize("args, line", [
    (["--mode=sample", "--num_components=5"],
     "--num_components: 5 differs from the run in '{run}' (10), and --mode=sample uses the run's "
     "own; drop --num_components (another value needs a run trained with it)"),
    *[([f"--mode={mode}", "--dataset=fashion_mnist", "--images={run}"],
       "--dataset: 'fashion_mnist' differs from the run in '{run}' ('mnist_5k'), and "
       f"--mode={mode} uses the run's own; drop --dataset (another value needs a run trained "
       "with it)") for mode in ("evaluate", "sample", "export", "assign")],
    (["--mode=interpolate", "--sample_rows=3"],
     "--sample_rows: 3 differs from the run in '{run}' (10), and --mode=interpolate uses the "
     "run's own; drop --sample_rows (another value needs a run trained with it)"),
    (["--mode=sample", "--workdir={run}/missing"],
     "--workdir: '{run}/missing' does not exist; pass the folder of a trained run (--mode=train "
     "makes one)"),
], ids=["num_components", "evaluate", "sample", "export", "assign", "interpolate", "missing"])
def test_an_option_the_mode_cannot_honour_is_refused_at_once(args, line, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(Config().resolved())))
    result = main_py_before_tensorflow(f"--workdir={run}", *[arg.format(run=run) for arg in args])
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: " + line.format(run=run)]


def test_options_the_mode_takes_or_that_agree_with_the_run_are_allowed(tmp_path):
    from gmmgan_tf import run_options

    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(Config().resolved())))
    config = Config(mode="evaluate", workdir=str(tmp_path), ndb_bins=10, seed=3, num_components=10,
                    dataset="mnist_5k", image_size=28)
    run_options.check_command(config, {"mode", "workdir", "ndb_bins", "seed", "num_components",
                                       "dataset", "image_size", "data_dir"})
    assert run_options.overrides(config)["ndb_bins"] == 10
    assert "data_dir" not in run_options.overrides(config)  # empty: the run's own


@pytest.mark.parametrize("make_second, problem", [
    (lambda b: None, "does not exist"),
    (lambda b: b.mkdir(), "holds no trained run (no config.json with a checkpoint, nor "
     "eval/metrics.json); train it first or leave it out"),
])
def test_compare_checks_every_run_before_evaluating_any(make_second, problem, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "checkpoints").mkdir(parents=True)  # looks trained: it would be evaluated first
    (first / "config.json").write_text("{}")
    (first / "checkpoints" / "ckpt-1.index").write_text("")
    make_second(second)
    result = main_py_before_tensorflow("--mode=evaluate", f"--compare={first},{second}",
                                       f"--workdir={tmp_path}/cmp")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: --compare: {str(second)!r} {problem}"]
    assert not (first / "eval").exists()


def test_compare_says_which_saved_scores_it_reuses(tmp_path):
    for name, ndb in (("a", 0.1), ("b", 0.2)):
        (tmp_path / name / "eval").mkdir(parents=True)
        (tmp_path / name / "eval" / "metrics.json").write_text(json.dumps({"ndb_over_k": ndb}))
    os.utime(tmp_path / "a" / "eval" / "metrics.json", (0, 1767225600))  # 2026-01-01 00:00 UTC
    result = main_py("--mode=evaluate", f"--compare={tmp_path}/a,{tmp_path}/b",
                     f"--workdir={tmp_path}/cmp", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"reusing {tmp_path}/a/eval/metrics.json from 2026-01-01 00:00 UTC" in result.stdout
    assert f"reusing {tmp_path}/b/eval/metrics.json from " in result.stdout


def test_unknown_flag_is_refused():
    result = main_py("--nonexistent_flag=1", timeout=60)
    assert result.returncode != 0
    assert "nonexistent_flag" in result.stderr


FIELDS = {field.name for field in dataclasses.fields(Config)}


def test_helpshort_lists_every_option_grouped_as_in_config_py():
    result = main_py("--helpshort", timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in FIELDS:
        assert f"--{name}:" in result.stdout or f"--[no]{name}:" in result.stdout, name
    assert "(default: 'runs/default')" in result.stdout
    sections = [line for line in result.stdout.splitlines() if line.endswith(":")
                and not line.startswith(" ")]
    assert sections[:2] == ["run:", "data:"] and "export and serving (gmmgan_tf/export.py):" \
        in sections
    # A section's flags follow its heading in config.py's order.
    out = result.stdout
    assert out.index("data:") < out.index("--dataset:") < out.index("--data_dir:") \
        < out.index("model:")


def _own_settings(flagfile: str) -> dict[str, str]:
    """The `--name=value` / `--name` / `--noname` lines of a flagfile itself (not of the
    flagfiles it includes), read by hand: name -> value as written."""
    settings = {}
    for line in open(flagfile):
        line = line.strip()
        if not line.startswith("--") or line.startswith("--flagfile="):
            continue
        name, _, value = line[2:].partition("=")
        if not value:
            name, value = (name[2:], "false") if name.startswith("no") and name[2:] in FIELDS \
                else (name, "true")
        settings[name] = value
    return settings


@pytest.mark.parametrize("flagfile", sorted(glob.glob(os.path.join(ROOT, "flags", "*.cfg"))),
                         ids=os.path.basename)
def test_every_flagfile_validates_and_its_own_lines_win(flagfile, tmp_path, monkeypatch):
    """A flagfile's lines override what it includes (flags/base.cfg), and give a valid Config."""
    from gmmgan_tf import cli

    monkeypatch.chdir(ROOT)  # flagfiles include flags/base.cfg by a relative path
    flags = fresh_cli_flags()
    try:
        cli.parse_flags(["main.py", f"--flagfile={flagfile}", f"--workdir={tmp_path}"])
        config = cli.config_from_flags()
    finally:
        flags.unparse_flags()
    own = _own_settings(flagfile)
    assert own and set(own) <= FIELDS
    for name, written in own.items():
        if name == "workdir":
            continue
        value = getattr(config, name)
        expected = (written == "true" if isinstance(value, bool)
                    else type(value)(written))
        assert value == expected, (name, value, written)


def test_smoke_run_end_to_end_then_sample_and_interpolate(tmp_path):
    workdir = str(tmp_path / "run")
    result = main_py("--flagfile=flags/smoke.cfg", f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-2000:]
    if not os.path.exists("/proc/driver/nvidia"):  # a CPU machine: no cuInit or grappler alarms
        assert not [line for line in result.stderr.splitlines()
                    if line.startswith(("E0000", "W0000"))], result.stderr
    for name in ("samples.png", "metrics.json", "flags.cfg", "config.json"):
        assert os.path.exists(os.path.join(workdir, name)), name
    metrics = json.load(open(os.path.join(workdir, "metrics.json")))
    assert 0.0 <= metrics["pcm_acc"] <= 1.0 and 0.0 <= metrics["agreement_identity"] <= 1.0
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    # The saved flag set replays the run exactly (here: nothing left to train, same numbers).
    replay = main_py(f"--flagfile={workdir}/flags.cfg")
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert "Resuming" in replay.stdout
    replayed = json.load(open(os.path.join(workdir, "metrics.json")))
    for scores in (metrics, replayed):
        del scores["train_seconds_this_session"]
    assert json.dumps(replayed, sort_keys=True) == json.dumps(metrics, sort_keys=True)
    for mode in ("sample", "interpolate"):
        result = main_py(f"--mode={mode}", f"--workdir={workdir}")
        assert result.returncode == 0, (mode, result.stderr[-2000:])
    assert os.path.exists(os.path.join(workdir, "samples", "interpolate_3way.png"))


def test_evaluate_writes_every_metric_and_compare_writes_a_table(tmp_path):
    workdir, out = str(tmp_path / "run"), str(tmp_path / "cmp")
    assert main_py("--flagfile=flags/smoke.cfg", f"--workdir={workdir}").returncode == 0
    quality = ["--ndb_bins=10", "--ndb_samples=200", f"--metrics_cache_dir={tmp_path}/cache"]
    result = main_py("--mode=evaluate", f"--workdir={workdir}", *quality)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.load(open(os.path.join(workdir, "eval", "metrics.json")))
    for key in ("pcm_acc", "agreement_identity", "ndb_over_k", "ref_ndb_over_k", "domain_is",
                "domain_fid", "coverage_classes", "sharpness", "domain_classifier_accuracy",
                "component_purity", "component_classes_generated", "copy_ratio",
                "ndb_component_proportions", "component_alpha", "component_pixel_ink",
                "ref_pixel_ink"):
        assert key in metrics, key
    assert metrics["domain_classifier_accuracy"] > 0.9
    for plot in ("ndb_bins.png", "ndb_bins_by_component.png", "class_histogram.png"):
        assert os.path.exists(os.path.join(workdir, "eval", plot)), plot
    result = main_py("--mode=evaluate", f"--compare={workdir},{workdir}", f"--workdir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    table = open(os.path.join(out, "comparison.md")).read()
    assert "NDB/K" in table and len(table.strip().splitlines()) == 4  # header, rule, 2 runs


def test_a_workdir_refuses_a_different_run(tmp_path):
    workdir = str(tmp_path / "run")
    assert main_py("--flagfile=flags/smoke.cfg", f"--workdir={workdir}", "--epochs=1"
                   ).returncode == 0
    result = main_py("--flagfile=flags/smoke.cfg", f"--workdir={workdir}", "--latent_dim=9")
    assert result.returncode != 0
    assert "--latent_dim: 9 differs from the run already in" in result.stderr
    assert f"replay the run with --flagfile={workdir}/flags.cfg" in result.stderr


def test_a_damaged_flags_cfg_is_named_and_the_original_command_rewrites_it(tmp_path):
    workdir = str(tmp_path / "run")
    original = ["--flagfile=flags/smoke.cfg", f"--workdir={workdir}", "--epochs=1"]
    assert main_py(*original).returncode == 0
    flagfile = os.path.join(workdir, "flags.cfg")
    written = open(flagfile).read()
    lines = written.splitlines(keepends=True)
    with open(flagfile, "w") as f:  # cut between two flags: the replay lacks the later ones
        f.writelines(lines[:len(lines) // 3])
    result = main_py(f"--flagfile={flagfile}", f"--workdir={workdir}", "--epochs=1")
    assert result.returncode == 2
    assert f"{flagfile} no longer matches config.json" in result.stderr  # not "replay it"
    assert "resume with the command that started the run" in result.stderr
    assert "Traceback" not in result.stderr
    assert main_py(*original).returncode == 0
    assert open(flagfile).read() == written


def test_kill_9_during_training_then_the_same_command_resumes_from_the_last_epoch(tmp_path):
    workdir = str(tmp_path / "run")
    args = ["--flagfile=flags/smoke.cfg", f"--workdir={workdir}", "--steps_per_epoch=20",
            "--eval_every=0"]
    # 1000 epochs cannot end before the kill, so the kill lands during training.
    process = subprocess.Popen([sys.executable, "main.py", *args, "--epochs=1000"], cwd=ROOT,
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = os.path.join(workdir, "checkpoints", "checkpoint")
    deadline = time.time() + 240
    while time.time() < deadline and not os.path.exists(index) and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "training ended before the kill"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert os.path.exists(index), "no checkpoint was written before the kill"
    done = int(open(index).readline().split('"')[1].rsplit("-", 1)[1])  # ckpt-<epochs done>
    assert 1 <= done < 1000
    # --epochs may change on resumption: one more epoch than the kill left.
    result = main_py(*args, f"--epochs={done + 1}")
    assert result.returncode == 0, result.stderr[-2000:]
    # The killed process could not release the workdir's lock: taken over, with one line.
    assert f"taking over the lock of PID {process.pid} on host" in result.stdout
    assert f"after epoch {done}." in result.stdout
    assert f"ckpt-{done + 1}" in open(index).readline()


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path):
    workdir = str(tmp_path / "run")
    first = subprocess.Popen([sys.executable, "main.py", "--flagfile=flags/smoke.cfg",
                              f"--workdir={workdir}", "--epochs=1000"], cwd=ROOT, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lock_file = os.path.join(workdir, ".lock")
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and not (
                os.path.exists(lock_file) and os.path.getsize(lock_file)):
            time.sleep(0.1)
        assert first.poll() is None and os.path.getsize(lock_file), "the first never held it"
        second = main_py_before_tensorflow("--flagfile=flags/smoke.cfg", f"--workdir={workdir}")
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"error: --workdir: {workdir!r} is in use by PID {first.pid} on host "
            f"{socket.gethostname()}, --mode=train; wait for that command to end (or stop it), "
            "or use another --workdir"]
        assert first.poll() is None  # untouched
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=120)
    assert first.returncode in (0, 143), stderr[-2000:]  # in training, or still loading
    assert not os.path.exists(lock_file)  # released


@pytest.mark.slow
def test_a_full_disk_ends_with_one_line_and_a_rerun_after_freeing_space_finishes(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs (needs root)")
    try:
        workdir = str(disk / "run")
        args = ["--flagfile=flags/smoke.cfg", f"--workdir={workdir}"]
        full = main_py(*args)
        assert full.returncode == 2, full.stderr[-2000:]
        assert "Traceback" not in full.stderr
        line, = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
        assert line.startswith(f"error: cannot write {workdir}/") and "the disk is full" in line
        assert not os.path.exists(os.path.join(workdir, "metrics.json"))
        assert not glob.glob(os.path.join(workdir, "**", "*_temp"), recursive=True)
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        rerun = main_py(*args)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "warning: skipping checkpoint" not in rerun.stdout  # every one was complete
        assert json.load(open(os.path.join(workdir, "metrics.json")))["epochs"] == 2
    finally:
        # Lazy: a failing run can leave files open on it (TF's event writers).
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def test_nan_losses_stop_training_and_keep_the_last_good_checkpoint(tmp_path, monkeypatch):
    config = dataclasses.replace(tiny_config(), workdir=str(tmp_path), epochs=2,
                                 steps_per_epoch=2, eval_every=0)
    good = data_lib.load(config)
    poisoned = dataclasses.replace(good, train_images=np.full_like(good.train_images, np.nan))
    monkeypatch.setattr(data_lib, "load", lambda _: poisoned)
    with pytest.raises(TrainingDiverged, match="became nan in epoch 1"):
        train.train_and_evaluate(config)
    assert not os.path.exists(tmp_path / "checkpoints" / "checkpoint")
