"""A user's images, read one way by `--mode=assign`, the serving client and the folder data set:
image files (PNG/JPEG/BMP/GIF, decoded by Pillow), folders of them (searched recursively) and
.npy batches [N, H, W(, C)] of uint8 pixels or floats in [-1, 1].

`check` is the cheap part, run before TensorFlow is imported and a model is loaded: every path
exists, a .npy batch loads with a valid shape and range (image_range.py's rule, judged on the
whole batch), and some file decodes. `read` brings every image to a model's [H, W, C] exactly
as the folder data set does (data_core.center_crop_resize, then fit_channels), skipping with a
reason the files that do not decode, colour images for a greyscale model and .npy images with a
NaN or inf.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib

import numpy as np

from gmmgan_tf import image_range
from gmmgan_tf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
NPY_MAGIC = b"\x93NUMPY"
# Pillow modes of greyscale images (bilevel, 8-bit, 8-bit with alpha, 16/32-bit integers).
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")


class UnreadableImage(Exception):
    """An image that cannot be used; the message says why, in a few words."""


def image_files(folder: pathlib.Path, recursive: bool = False) -> list[pathlib.Path]:
    """The image files (by suffix) in `folder`, or under it with `recursive`, sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in found if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def decode(path) -> np.ndarray:
    """An image file -> uint8 [H, W, 1] (greyscale) or [H, W, 3] (colour): alpha dropped, a
    palette expanded, 16-bit scaled to 8, the first frame of an animation. Raises
    UnreadableImage."""
    from PIL import Image

    try:
        with Image.open(path) as pil:
            if pil.mode.startswith("I"):  # 16-bit greyscale, scaled as TF's decoders do
                array = (np.asarray(pil, np.int64).clip(0, 65535) >> 8).astype(np.uint8)
            else:
                array = np.asarray(pil.convert("L" if pil.mode in GREY_MODES else "RGB"))
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        raise UnreadableImage(f"cannot read it ({e.strerror})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UnreadableImage("not a decodable PNG/JPEG/BMP/GIF image") from None
    return array[..., None] if array.ndim == 2 else array


def load_npy(path: str, mmap: bool = False) -> np.ndarray:
    """A .npy batch as [N, H, W, C] (a channel axis added to [N, H, W]), or a one-line DataError:
    not a .npy file, damaged, another shape, or floats scaled wrongly (image_range's rule on its
    finite images; an image with a NaN or inf is only skipped, by `read`)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
        if magic != NPY_MAGIC:
            raise DataError(f"--images: {path!r} is not a .npy file (no NumPy header); save the "
                            "batch with numpy.save")
        batch = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as e:  # an object array (np.load's allow_pickle or mmap message), damage
        objects = "allow_pickle" in str(e) or "Python objects" in str(e)
        reason = "it holds Python objects, not numbers" if objects else str(e).splitlines()[0]
        raise DataError(f"--images: {path!r} cannot be read as a .npy batch ({reason})") from None
    except OSError as e:
        raise DataError(f"--images: cannot read {path!r} ({e.strerror or e})") from None
    if batch.ndim == 3:
        batch = batch[..., None]
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3) or not len(batch):
        raise DataError(f"--images: {path!r} holds an array of shape {batch.shape}; expected "
                        "a batch [N, H, W] or [N, H, W, 1|3]")
    # How the file was scaled is a property of the whole batch, so the rule (the served PCM's
    # too) refuses the file.
    judged = batch
    if batch.dtype.kind == "f":
        judged = batch[np.isfinite(batch).reshape(len(batch), -1).all(axis=1)]
    problem = image_range.refusal(judged)
    if problem:
        raise DataError(f"--images: {path!r}: {problem}")
    return batch


def _npy_image(batch: np.ndarray, i: int) -> np.ndarray:
    image = np.asarray(batch[i])
    if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
        raise UnreadableImage("values not finite")
    return image


def _is_npy(path: str) -> bool:
    return path.endswith(".npy") and os.path.isfile(path)


def _files(path: str) -> list[pathlib.Path]:
    """The image files of a folder (recursively), or the file itself."""
    if not os.path.isdir(path):
        return [pathlib.Path(path)]
    files = image_files(pathlib.Path(path), recursive=True)
    if not files:
        raise DataError(f"--images: no image files ({', '.join(IMAGE_SUFFIXES)}) in {path!r} "
                        "or its sub-folders")
    return files


def check(paths: list[str]) -> None:
    """Raises a one-line DataError when `paths` cannot give a single image, without
    TensorFlow: a path that does not exist, an empty folder, a bad .npy batch, or files of which
    none decodes (decoding stops at the first that does)."""
    files, batches = [], 0
    for path in paths:
        if not os.path.exists(path):
            raise DataError(f"--images: {path!r} does not exist; pass image files, a folder of "
                            "images or a .npy batch")
        if _is_npy(path):
            load_npy(path, mmap=True)
            batches += 1
        else:
            files += _files(path)
    if files and not batches:
        _first_image(files)


def _first_image(files: list[pathlib.Path]) -> None:
    first = None
    for file in files:
        try:
            decode(file)
            return
        except UnreadableImage as e:
            first = first or (file, e)
    raise DataError(f"--images: none of the {len(files)} image files could be used (the first, "
                    f"{first[0]}: {first[1]})")


def _entries(paths: list[str]) -> list[tuple[str, functools.partial]]:
    """(name, a call that returns the image) for every image: uint8 [H, W, C] pixels, or a
    .npy's floats in [-1, 1]."""
    entries = []
    for path in paths:
        if _is_npy(path):
            batch = load_npy(path)
            entries += [(f"{path}[{i}]", functools.partial(_npy_image, batch, i))
                        for i in range(len(batch))]
        else:
            entries += [(str(f), functools.partial(decode, f)) for f in _files(path)]
    return entries


def fit_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An [H, W, 1|3] image with `channels`: grey -> RGB by repetition (as the folder data set
    does), RGB -> grey only when its three channels are equal (a greyscale image saved as
    RGB or RGBA)."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    if is_grey(image):
        return image[..., :1]
    raise UnreadableImage("colour image, but the model was trained on greyscale (1 channel)")


def is_grey(image: np.ndarray) -> bool:
    return image.shape[-1] == 1 or (np.array_equal(image[..., :1], image[..., 1:2])
                                    and np.array_equal(image[..., :1], image[..., 2:]))


def to_shape(image: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """An image of `_entries` -> float32 image_shape in [-1, 1], as the folder data set makes
    its images (data_core.center_crop_resize of the 0..255 pixels)."""
    from gmmgan_tf.data_core import center_crop_resize  # TensorFlow

    size, _, channels = image_shape
    pixels = image.astype(np.float32)
    if image.dtype != np.uint8:
        pixels = (pixels + 1.0) * 127.5  # [-1, 1] -> 0..255
    return fit_channels(center_crop_resize(pixels, size).numpy(), channels)


@dataclasses.dataclass
class Loaded:
    names: list[str]  # a path, or <file.npy>[i]
    images: list[np.ndarray]  # image_shape float32 in [-1, 1], or as read (no image_shape)
    skipped: list[tuple[str, str]]  # (name, reason)
    total: int  # images looked at

    def print_skipped(self) -> None:
        """'Skipped n of m images:' and a line each with its reason; nothing when none was."""
        if self.skipped:
            print(f"Skipped {len(self.skipped)} of {self.total} images:")
            for name, reason in self.skipped:
                print(f"  {name}: {reason}")


def read(paths: list[str], image_shape: tuple[int, int, int] | None, progress: bool = False
         ) -> Loaded:
    """Every image of `paths` at `image_shape` (to_shape); without one, as read: uint8 pixels,
    or a .npy's floats. DataError when none can be used."""
    entries = _entries(paths)
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(len(entries), unit_name="image")
    loaded = Loaded([], [], [], len(entries))
    for i, (name, get) in enumerate(entries):
        try:
            image = get()
            loaded.images.append(to_shape(image, image_shape) if image_shape else image)
            loaded.names.append(name)
        except UnreadableImage as e:
            loaded.skipped.append((name, str(e)))
        if bar:
            bar.update(i + 1)
    if not loaded.images:
        name, reason = loaded.skipped[0]
        raise DataError(f"--images: none of the {len(entries)} images could be used (the "
                        f"first, {name}: {reason})")
    return loaded
