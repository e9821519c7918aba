"""A synthetic Oxford Flowers 102 download on a loopback HTTP server, for TFDS's real builder.

`write_archive` writes the three files TFDS's `oxford_flowers102` builder downloads, in their
real layout: 102flowers.tgz (a tar of jpg/image_00001.jpg, ...), imagelabels.mat (`labels`,
1-based classes, one per image id) and setid.mat (`trnid`, `valid`, `tstid`, 1-based image ids).
`serve` serves a directory on 127.0.0.1. `loopback_env` makes a `main.py` subprocess download
from that server: flowers_loopback_site/sitecustomize.py points the builder's base URL, and the
host that --download=auto probes, at it. Nothing of this is in the package: production code
only ever sees the real URL.

As a command, it measures `main.py` on such a download (docs/RESULTS.md):

    python tests/flowers_loopback.py [--per_class=N] -- <main.py flags>

writes an archive of N images a class for classes 0-9 (and a few of classes 10-11, which the
loader filters out), serves it, runs `main.py --dataset=oxford_flowers102 --data_dir=<fresh>
<flags>` and prints its wall time and peak memory.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import io
import os
import pathlib
import resource
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import numpy as np
import scipy.io
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
SITE = pathlib.Path(__file__).resolve().parent / "flowers_loopback_site"
URL_VARIABLE = "GMMGAN_TEST_FLOWERS_URL"  # read by flowers_loopback_site/sitecustomize.py
# Base colours of classes 0-11 (RGB): the synthetic classes differ in hue, so clusterings have
# something to find; noise and brightness vary within a class.
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40], [200, 40, 200],
                    [40, 200, 200], [240, 140, 30], [120, 60, 20], [230, 230, 230],
                    [30, 30, 30], [130, 130, 130], [90, 160, 250]], np.float64)


def write_archive(directory: pathlib.Path, per_class: int, extra_classes: int = 2,
                  extra_per_class: int = 3, seed: int = 0) -> dict[str, int]:
    """The three downloads in `directory`: `per_class` images of each of classes 0-9 and
    `extra_per_class` of the next `extra_classes` classes, landscape or portrait JPEGs (a square
    of the class colour on a darker ground); ids are shuffled and dealt to the three splits in
    turn. Returns the number of images of each split."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(per_class, c) for c in range(10)] +
                            [np.full(extra_per_class, 10 + c) for c in range(extra_classes)])
    rng.shuffle(labels)
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(directory / "102flowers.tgz", "w") as tar:  # the real one is not gzipped
        for image_id, label in enumerate(labels, start=1):
            height, width = (48, 72) if image_id % 2 else (72, 48)
            colour = COLOURS[label] * rng.uniform(0.7, 1.0)
            pixels = np.broadcast_to(colour * 0.4, (height, width, 3)).copy()
            side = min(height, width) * 2 // 3
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            pixels[top:top + side, left:left + side] = colour
            pixels += rng.normal(0, 12, pixels.shape)
            jpeg = io.BytesIO()
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(jpeg, "JPEG")
            info = tarfile.TarInfo(f"jpg/image_{image_id:05d}.jpg")
            info.size = jpeg.tell()
            jpeg.seek(0)
            tar.addfile(info, jpeg)
    ids = np.arange(1, len(labels) + 1)
    splits = {"trnid": ids[0::3], "valid": ids[1::3], "tstid": ids[2::3]}
    scipy.io.savemat(directory / "imagelabels.mat", {"labels": (labels + 1)[None, :]})
    scipy.io.savemat(directory / "setid.mat", {k: v[None, :] for k, v in splits.items()})
    return {name: len(v) for name, v in zip(("train", "validation", "test"), splits.values())}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(directory: pathlib.Path):
    """Serves `directory` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def loopback_env(url: str) -> dict[str, str]:
    """The environment of a `main.py` that downloads Oxford Flowers 102 from `url`: the hook
    first on PYTHONPATH, no proxy (TFDS's `requests` would send loopback requests to one)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), str(ROOT), env.get("PYTHONPATH", "")])
    env[URL_VARIABLE] = url
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per_class", type=int, default=30)
    parser.add_argument("flags", nargs="*", help="main.py flags, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = write_archive(pathlib.Path(tmp, "site"), args.per_class)
        print(f"archive: {sum(counts.values())} images {counts}", flush=True)
        with serve(pathlib.Path(tmp, "site")) as url:
            command = [sys.executable, "main.py", "--dataset=oxford_flowers102",
                       f"--data_dir={tmp}/tfds", *args.flags]
            start = time.time()
            code = subprocess.run(command, cwd=ROOT, env=loopback_env(url)).returncode
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"main.py exited {code} after {time.time() - start:.0f} s wall; peak resident "
              f"memory {peak:.0f} MiB")
    sys.exit(code)


if __name__ == "__main__":
    main()
