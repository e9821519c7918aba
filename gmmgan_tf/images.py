"""Image grids and atomic PNG writing."""
from __future__ import annotations

import os
import tempfile

import numpy as np
from PIL import Image

from gmmgan_tf.errors import writing


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return np.clip(np.rint((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """Tiles rows*cols images [N, H, W, C] (row-major) into one uint8 image [H', W', C]."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    if n < rows * cols:
        images = np.concatenate([images, np.zeros((rows * cols - n, h, w, c), np.uint8)])
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i in range(rows * cols):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        canvas[y:y + h, x:x + w] = images[i]
    return canvas


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes to a temporary file beside `path`, then renames: readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with writing(path), os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_png(path: str, image: np.ndarray, upscale: int = 2) -> None:
    """Saves a uint8 [H, W, C] image, enlarged `upscale` times for viewing."""
    import io

    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if upscale > 1:
        pil = pil.resize((pil.width * upscale, pil.height * upscale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
