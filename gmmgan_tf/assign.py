"""`--mode=assign`: sorts a user's images by the PCM's components ("cluster my folder").

    python main.py --mode=assign --workdir=RUN --images=DIR     # or --images=batch.npy

Reads the images under DIR (PNG/JPEG/BMP/GIF, recursively) or a .npy batch with image_input.py
(as the serving client does), which brings each to the training size exactly as the folder data
set does (center crop, antialiased resize, [-1, 1]), and writes, under --assign_dir (default
RUN/assign):

    assignments.csv              file, component (argmax Pr(k|x)), responsibility (that Pr),
                                 p_0 .. p_{K-1} (every Pr(k|x)), then the served PCM's novelty
                                 and is_novel (1 above its threshold; docs/NOVELTY.md)
    clusters/component_<k>.png   the images of component k, most responsible first (at most
                                 SHEET_IMAGES, SHEET_COLUMNS a row); a blank tile when it has none

Files that cannot be decoded, colour images for a greyscale model, or .npy images with a NaN or
inf, are skipped and listed with the reason at the end; a progress bar is shown on a terminal.
A .npy batch of floats that image_range.py refuses ([0, 1] or 0..255 floats) is refused whole,
and so are an empty folder, a folder of which no file decodes and a damaged or wrongly shaped
.npy: the CLI checks them (image_input.check) before TensorFlow is imported.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys

import numpy as np

from gmmgan_tf import image_input
from gmmgan_tf import images as images_lib
from gmmgan_tf import novelty, run_options
from gmmgan_tf import workdir as wd
from gmmgan_tf.config import Config, ConfigError

SHEET_IMAGES = 100
SHEET_COLUMNS = 10


def write_csv(path: str, names: list[str], responsibilities: np.ndarray,
              **extra_scores: np.ndarray) -> None:
    """assignments.csv; every keyword (e.g. novelty=scores [N]) becomes one more column."""
    k = responsibilities.shape[1]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "component", "responsibility"] + [f"p_{j}" for j in range(k)]
                    + list(extra_scores))
    components = responsibilities.argmax(axis=1)
    for i, (name, c) in enumerate(zip(names, components)):
        writer.writerow([name, int(c)] + [f"{p:.7g}" for p in (responsibilities[i, c],
                                                               *responsibilities[i])]
                        + [f"{extra_scores[s][i]:.7g}" for s in extra_scores])
    images_lib.atomic_write_bytes(path, out.getvalue().encode())


def write_contact_sheets(out_dir: str, pictures: np.ndarray, responsibilities: np.ndarray
                         ) -> list[str]:
    """clusters/component_<k>.png for every component k; returns the paths."""
    components = responsibilities.argmax(axis=1)
    paths = []
    for k in range(responsibilities.shape[1]):
        members = np.flatnonzero(components == k)
        members = members[np.argsort(-responsibilities[members, k], kind="stable")]
        members = members[:SHEET_IMAGES]
        tiles = pictures[members] if len(members) else np.ones((1, *pictures.shape[1:]))
        rows = math.ceil(len(tiles) / SHEET_COLUMNS)
        path = os.path.join(out_dir, "clusters", f"component_{k}.png")
        images_lib.save_png(path, images_lib.grid(tiles, rows, min(len(tiles), SHEET_COLUMNS)))
        paths.append(path)
    return paths


def novelty_columns(model, bundle, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The served PCM's novelty outputs of the images of `outputs`, calibrated as the export
    does; none, with a warning, for a run without a validation split to calibrate on (the
    assignments do not need it)."""
    try:
        calibration = novelty.calibrate(model, bundle)
    except ConfigError as e:
        print(f"warning: no novelty columns: {e}")
        return {}
    scores = novelty.score(calibration.scorer, outputs, calibration.fitted)
    print(f"novelty: the served scorer {calibration.scorer!r} (docs/NOVELTY.md); is_novel = "
          f"novelty > {calibration.threshold:.3f}, which flags {novelty.FLAG_SHARE:.0%} of the "
          f"run's {calibration.calibration_images} validation images")
    return {"novelty": scores, "is_novel": (scores > calibration.threshold).astype(int)}


def assign(config: Config) -> None:
    """The mode: loads RUN's PCM, assigns --images, writes the CSV and sheets, reports skips."""
    trained, bundle, model = wd.load_trained_model(config.workdir,
                                                   **run_options.overrides(config))
    if model.pcm is None:
        raise ConfigError(f"--mode=assign: {config.workdir!r} is a --model={trained.model} run, "
                          "which has no PCM to assign images with; use a --model=gmmgan run")
    out = config.assign_dir or wd.path(config.workdir, "assign")
    loaded = image_input.read([config.images], model.image_shape, progress=sys.stdout.isatty())
    pictures = np.stack(loaded.images)
    outputs = novelty.gmmgan_outputs(model, pictures)
    responsibilities = outputs[novelty.RESPONSIBILITIES]
    write_csv(os.path.join(out, "assignments.csv"), loaded.names, responsibilities,
              **novelty_columns(model, bundle, outputs))
    write_contact_sheets(out, pictures, responsibilities)
    counts = np.bincount(responsibilities.argmax(axis=1), minlength=model.num_components)
    print(f"Assigned {len(loaded.names)} images to {model.num_components} components (images "
          f"per component: {counts.tolist()}). Wrote {out}/assignments.csv and "
          f"{out}/clusters/component_<k>.png")
    loaded.print_skipped()
