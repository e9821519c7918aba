"""Which run an exported version came from, so that a served model can be traced and a running
server is not switched to a model of another data set by mistake.

Each export writes <version>/assets.extra/provenance.json (TF Serving ignores assets.extra/):
the run's workdir, data set, image shape, model and K, the code's commit and the UTC date; the
versions are listed with it as comments in models.config. Before a new export (and before the
model loads), `check_export` refuses a run of another data set or image size than the newest
version already in --export_dir, unless --export_replace_model says that is meant. Reads and
writes JSON only: no TensorFlow.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.run_options import config_from_saved, load_saved_config_dict

FILE = os.path.join("assets.extra", "provenance.json")


def code_version() -> str:
    """The commit of this code (with -dirty for uncommitted changes), or 'unknown'."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def record(workdir: str, trained: Config, image_shape: tuple[int, int, int]) -> dict:
    return {"workdir": os.path.abspath(workdir), "dataset": trained.dataset,
            "image_shape": list(image_shape), "model": trained.model,
            "num_components": trained.num_components, "code": code_version(),
            "exported": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def write(version_dir: str, entry: dict) -> None:
    """Into a version's (temporary) directory, before it is renamed into place."""
    os.makedirs(os.path.dirname(os.path.join(version_dir, FILE)), exist_ok=True)
    with open(os.path.join(version_dir, FILE), "w") as f:
        json.dump(entry, f, indent=2, sort_keys=True)


def read(version_dir: str) -> dict | None:
    """A version's record; None for an export made before records were written (or damaged)."""
    try:
        with open(os.path.join(version_dir, FILE)) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def versions(model_dir: str) -> list[int]:
    """The numeric versions under a model directory, oldest first."""
    names = os.listdir(model_dir) if os.path.isdir(model_dir) else []
    return sorted(int(name) for name in names if name.isdigit())


def comment(version: int, entry: dict | None) -> str:
    """One models.config comment line describing a version."""
    if entry is None:
        return f"# version {version}: exported before provenance was recorded"
    shape = "x".join(str(n) for n in entry.get("image_shape", []))
    return (f"# version {version}: {entry.get('workdir')} (dataset {entry.get('dataset')}, "
            f"{shape}, --model={entry.get('model')}, K={entry.get('num_components')}), code "
            f"{entry.get('code')}, exported {entry.get('exported')}")


def check_export(config: Config) -> None:
    """Refuses, in one line, to export --workdir's run into an --export_dir whose newest
    recorded version is of another data set or image size (unless --export_replace_model)."""
    saved = load_saved_config_dict(config.workdir)
    if saved is None or config.export_replace_model:
        return
    run = config_from_saved(saved)
    names = os.listdir(config.export_dir) if os.path.isdir(config.export_dir) else []
    newest = None
    for name in names:  # every model directory (generator, PCM)
        model_dir = os.path.join(config.export_dir, name)
        for version in versions(model_dir):
            entry = read(os.path.join(model_dir, str(version)))
            if entry and (newest is None or version > newest[0]):
                newest = version, entry
    if newest is None:
        return
    version, entry = newest
    served_size = (entry.get("image_shape") or [None])[0]
    if (entry.get("dataset"), served_size) != (run.dataset, run.image_size):
        raise ConfigError(
            f"--export_dir: {config.export_dir!r} serves version {version} of "
            f"{entry.get('workdir')} (dataset {entry.get('dataset')}, {served_size} pixels); "
            f"{config.workdir!r} is dataset {run.dataset}, {run.image_size} pixels, and a running "
            "server would switch to it: use another --export_dir, or add "
            "--export_replace_model if that is meant")
