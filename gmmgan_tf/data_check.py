"""Is the data of --dataset there, or can TFDS download it? Answered in about a second at most.

TFDS retries a missing download for minutes and TensorFlow takes seconds to import, so the CLI
calls `check_available` before either: a prepared TFDS data set is the directory
`<data_dir>/<name>/<version>/` holding `dataset_info.json` (TFDS prepares it in
`<name>/incomplete.XXXXXX_<version>/`, writes that file last, then renames the directory into
place). Where it is missing, --download=auto opens one TCP connection to the data set's download
host (or the proxy that TFDS's `requests` would use) with a one-second limit. This module imports
neither TensorFlow nor TFDS.
"""
from __future__ import annotations

import os
import pathlib
import re
import socket
import threading
import urllib.parse
import urllib.request

from gmmgan_tf import image_input
from gmmgan_tf.config import TFDS_DATASETS, Config
from gmmgan_tf.errors import DataError

# The versions this code was written against (oxford_flowers102 2.1.1 is the paper's).
TFDS_VERSIONS = {"mnist": "3.0.1", "fashion_mnist": "3.0.1", "cifar10": "3.0.2",
                 "oxford_flowers102": "2.1.1"}
# Where TFDS's builders of those versions download from (their registered URLs; a test checks).
DOWNLOAD_URLS = {"mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                 "oxford_flowers102": "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"}
REACHABILITY_TIMEOUT = 1.0  # seconds
_VERSION = re.compile(r"\d+\.\d+\.\d+")
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def default_data_dir() -> str:
    """TFDS's own default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def prepared_version(name: str, data_dir: str) -> str | None:
    """The version of `name` prepared in `data_dir` (the expected one first), or None. Only
    directories named like a version count: an `incomplete.XXXXXX_<version>` left by a killed
    download may hold dataset_info.json too."""
    found = sorted((p.parent.name for p in (pathlib.Path(data_dir) / name).glob(
        "*/dataset_info.json") if _VERSION.fullmatch(p.parent.name)),
        key=lambda v: tuple(map(int, v.split("."))))
    if TFDS_VERSIONS.get(name) in found:
        return TFDS_VERSIONS[name]
    return found[-1] if found else None


def debian_fashion_mnist_available(source_dir: str) -> bool:
    """Whether all four IDX files are in `source_dir` (gzip-compressed or not)."""
    return all(os.path.exists(os.path.join(source_dir, stem + ".gz"))
               or os.path.exists(os.path.join(source_dir, stem))
               for stems in IDX_FILES.values() for stem in stems)


def missing_data_message(name: str, data_dir: str, why: str) -> str:
    how = (f"run again where {_host(DOWNLOAD_URLS[name])} is reachable, or on a machine with "
           f"network run `tfds build {name} --data_dir={data_dir}` (or `python -m "
           f"gmmgan_tf.prepare_data {name} --data_dir={data_dir}`) and copy that directory here")
    if name == "fashion_mnist":
        how = (f"run `make data` (apt-get install dataset-fashion-mnist, then `python -m "
               f"gmmgan_tf.prepare_data fashion_mnist --data_dir={data_dir}`), or {how}")
    elif name == "mnist":
        how += "; offline, use --dataset=mnist_5k (or imbalanced_mnist_5k)"
    return f"{name}: no prepared TFDS data set in {data_dir}, {why}; {how}"


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname


def reachable(url: str, timeout: float = REACHABILITY_TIMEOUT) -> bool:
    """Whether a TCP connection to `url`'s host, or to the proxy the environment names for it
    (as `requests` would use), opens within `timeout` seconds. The connection is made in a
    thread because a name lookup cannot be given a timeout; a hung one is left to finish."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    address = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    outcome, done = [], threading.Event()

    def connect():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(True)
        except OSError:  # no route, refused, unknown name: offline answers come in milliseconds
            pass
        finally:
            done.set()

    threading.Thread(target=connect, daemon=True).start()
    done.wait(timeout)
    return bool(outcome)


def tfds_source(name: str, data_dir: str, download: str) -> str:
    """Where `name` comes from: 'tfds' when it is prepared in `data_dir`, 'debian' for
    Fashion-MNIST from Debian's IDX files, 'download' when TFDS is to download and prepare it
    (--download=always, or auto with its host reachable), else a one-line DataError saying how
    to get it."""
    if prepared_version(name, data_dir) is not None:
        return "tfds"
    if name == "fashion_mnist" and debian_fashion_mnist_available(DEBIAN_FASHION_MNIST_DIR):
        return "debian"
    if download == "always" or (download == "auto" and reachable(DOWNLOAD_URLS[name])):
        return "download"
    why = ("and --download=never" if download == "never" else
           f"and {_host(DOWNLOAD_URLS[name])} cannot be reached to download it "
           "in a second (--download=always skips this check, for a slow network)")
    raise DataError(missing_data_message(name, data_dir, why))


def check_available(config: Config) -> None:
    """Raises DataError at once when the data of config.dataset, or the images that
    --mode=assign sorts (image_input.check: a few ms, or one image decoded), cannot be had."""
    name = config.dataset.removeprefix("imbalanced_")
    if name in TFDS_DATASETS:
        tfds_source(name, config.data_dir or default_data_dir(), config.download)
    elif name.startswith("folder:"):
        readable_folder(name[len("folder:"):])
    if config.mode == "assign":
        image_input.check([config.images])


def readable_folder(path: str) -> pathlib.Path:
    """`path` as a Path, or a DataError when it is not a directory this process can list."""
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"folder:{path}: not a readable directory")
    return folder
