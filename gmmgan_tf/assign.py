"""`--mode=assign`: sorts a user's images by the PCM's components ("cluster my folder").

    python main.py --mode=assign --workdir=RUN --images=DIR     # or --images=batch.npy

Reads the images under DIR (PNG/JPEG/BMP/GIF, recursively) or a .npy batch, brings each to the
training size exactly as the folder data set does (data_core.read_image_file: center crop,
antialiased resize, [-1, 1]) and writes, under --assign_dir (default RUN/assign):

    assignments.csv              file, component (argmax Pr(k|x)), responsibility (that Pr),
                                 p_0 .. p_{K-1} (every Pr(k|x)), then the served PCM's novelty
                                 and is_novel (1 above its threshold; docs/NOVELTY.md)
    clusters/component_<k>.png   the images of component k, most responsible first (at most
                                 SHEET_IMAGES, SHEET_COLUMNS a row); a blank tile when it has none

Files that cannot be decoded, colour images for a greyscale model, or .npy images with a NaN or
inf, are skipped and listed with the reason at the end; a progress bar is shown on a terminal.
A .npy batch of floats that image_range.py refuses ([0, 1] or 0..255 floats) is refused whole.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import pathlib
import sys

import keras
import numpy as np

from gmmgan_tf import image_range
from gmmgan_tf import images as images_lib
from gmmgan_tf import novelty
from gmmgan_tf import workdir as wd
from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.data_core import (IMAGE_SUFFIXES, UnreadableImage, center_crop_resize,
                                 image_files, read_image_file)
from gmmgan_tf.errors import DataError

SHEET_IMAGES = 100
SHEET_COLUMNS = 10


@dataclasses.dataclass
class Loaded:
    names: list[str]  # a path, or <file.npy>[i]
    images: np.ndarray  # float32 [N, H, W, C] in [-1, 1]
    skipped: list[tuple[str, str]]  # (name, reason)
    total: int  # images looked at


def fit_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An [H, W, 1|3] image with the model's channels: grey -> RGB by repetition (as the folder
    data set does), RGB -> grey only when its three channels are equal."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    if np.array_equal(image[..., :1], image[..., 1:2]) and np.array_equal(image[..., :1],
                                                                         image[..., 2:]):
        return image[..., :1]
    raise UnreadableImage("colour image, but the model was trained on greyscale (1 channel)")


def read_images(source: str, image_shape: tuple[int, int, int], progress: bool) -> Loaded:
    """The images of a folder (recursively) or a .npy batch at the model's size and channels."""
    size, _, channels = image_shape
    if source.endswith(".npy") and os.path.isfile(source):
        names, items = _npy_items(source)
        read = lambda item: _npy_image(item, size)  # noqa: E731
    else:
        files = image_files(pathlib.Path(source), recursive=True)
        if not files:
            raise DataError(f"--images: no image files ({', '.join(IMAGE_SUFFIXES)}) in "
                            f"{source!r} or its sub-folders")
        names, items = [str(f) for f in files], files
        read = lambda item: read_image_file(item, size)  # noqa: E731
    bar = keras.utils.Progbar(len(items), unit_name="image") if progress else None
    loaded, kept, skipped = [], [], []
    for i, (name, item) in enumerate(zip(names, items)):
        try:
            loaded.append(fit_channels(read(item), channels))
            kept.append(name)
        except UnreadableImage as e:
            skipped.append((name, str(e)))
        if bar:
            bar.update(i + 1)
    if not loaded:
        name, reason = skipped[0]
        raise DataError(f"--images: none of the {len(items)} images could be used (the first, "
                        f"{name}: {reason})")
    return Loaded(kept, np.stack(loaded), skipped, len(items))


def _npy_items(path: str) -> tuple[list[str], np.ndarray]:
    """(names, images as 0..255 floats [N, H, W, C]) of a .npy batch."""
    try:
        batch = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"--images: cannot read {path!r} as a .npy array ({e})") from None
    if batch.ndim == 3:
        batch = batch[..., None]
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3) or not len(batch):
        raise DataError(f"--images: {path!r} holds an array of shape {batch.shape}; expected "
                        "a batch [N, H, W] or [N, H, W, 1|3]")
    # How the file was scaled is a property of the whole batch, so the rule (the served PCM's
    # too) refuses the file; an image with a NaN or inf is only skipped (_npy_image).
    judged = batch
    if batch.dtype.kind == "f":
        judged = batch[np.isfinite(batch).reshape(len(batch), -1).all(axis=1)]
    problem = image_range.refusal(judged)
    if problem:
        raise DataError(f"--images: {path!r}: {problem}")
    pixels = batch.astype(np.float32)
    if batch.dtype != np.uint8:
        pixels = (pixels + 1.0) * 127.5  # [-1, 1] -> 0..255
    return [f"{path}[{i}]" for i in range(len(batch))], pixels


def _npy_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """One image of a .npy batch (0..255 floats) -> the training size, as a folder image."""
    if not np.all(np.isfinite(pixels)):
        raise UnreadableImage("values not finite")
    return center_crop_resize(pixels, size).numpy()


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
    return {"novelty": scores, "is_novel": (scores > calibration.threshold).astype(int)}


def assign(config: Config) -> None:
    """The mode: loads RUN's PCM, assigns --images, writes the CSV and sheets, reports skips."""
    trained, bundle, model = wd.load_trained_model(config.workdir, mode=config.mode,
                                              images=config.images)
    if model.pcm is None:
        raise ConfigError(f"--mode=assign: {config.workdir!r} is a --model={trained.model} run, "
                          "which has no PCM to assign images with; use a --model=gmmgan run")
    out = config.assign_dir or wd.path(config.workdir, "assign")
    loaded = read_images(config.images, model.image_shape, progress=sys.stdout.isatty())
    outputs = novelty.gmmgan_outputs(model, loaded.images)
    responsibilities = outputs[novelty.RESPONSIBILITIES]
    write_csv(os.path.join(out, "assignments.csv"), loaded.names, responsibilities,
              **novelty_columns(model, bundle, outputs))
    write_contact_sheets(out, loaded.images, responsibilities)
    counts = np.bincount(responsibilities.argmax(axis=1), minlength=model.num_components)
    print(f"Assigned {len(loaded.names)} images to {model.num_components} components (images "
          f"per component: {counts.tolist()}). Wrote {out}/assignments.csv and "
          f"{out}/clusters/component_<k>.png")
    if loaded.skipped:
        print(f"Skipped {len(loaded.skipped)} of {loaded.total} images:")
        for name, reason in loaded.skipped:
            print(f"  {name}: {reason}")
