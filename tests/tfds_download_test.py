"""--download: TFDS's real oxford_flowers102 builder downloading from a loopback HTTP server
(tests/flowers_loopback.py), the reachability probe, and what a failed or killed download
leaves behind. data_test.py checks the offline one-line errors of every TFDS set."""
import dataclasses
import functools
import http.server
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

import flowers_loopback
from conftest import without_tensorflow
from gmmgan_tf import data, data_check
from gmmgan_tf.config import Config
from gmmgan_tf.errors import DataError

BUILDER = tfds.builder_cls("oxford_flowers102")
PER_CLASS = 15  # the loader holds out 10 a class: 5 a class are left to train on


def _config(**kwargs) -> Config:
    return dataclasses.replace(Config(), dataset="oxford_flowers102", image_size=32, **kwargs)


def _closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: refused at once, as offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def _leftovers(data_dir: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for pattern in ("**/incomplete.*", "**/*.tmp.*")
                  for p in data_dir.glob(pattern))


@pytest.fixture
def archive(tmp_path):
    flowers_loopback.write_archive(tmp_path / "site", PER_CLASS)
    return tmp_path / "site"


@pytest.fixture
def from_loopback(monkeypatch):
    """Points this process's builder and probe at a URL, as the subprocesses' sitecustomize."""
    def point_at(url: str) -> None:
        monkeypatch.setattr(sys.modules[BUILDER.__module__], "_BASE_URL", url)
        monkeypatch.setitem(data_check.DOWNLOAD_URLS, "oxford_flowers102", url)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return point_at


def test_download_urls_are_where_the_tfds_builders_download_from():
    for name, url in data_check.DOWNLOAD_URLS.items():
        builder = tfds.builder_cls(name)
        assert str(builder.VERSION) == data_check.TFDS_VERSIONS[name]
        assert builder.url_infos and all(u.startswith(url) for u in builder.url_infos), name


def test_reachable_is_true_for_a_listener_and_false_within_its_timeout(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert data_check.reachable(f"http://127.0.0.1:{server.getsockname()[1]}/")
    assert not data_check.reachable(_closed_port_url())
    # A name lookup or connect that hangs (a black-holed network) is cut off at the timeout:
    # the answer comes while the connection is still hanging, and the connection was given the
    # same timeout.
    entered, release, timeouts = threading.Event(), threading.Event(), []

    def hang(address, timeout):
        timeouts.append(timeout)
        entered.set()
        release.wait(60)
        raise TimeoutError

    monkeypatch.setattr(data_check.socket, "create_connection", hang)
    try:
        assert not data_check.reachable("https://example.org/", timeout=0.05)
        assert entered.is_set() and not release.is_set() and timeouts == [0.05]
    finally:
        release.set()


def test_reachable_probes_the_proxy_the_environment_names(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as proxy:
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        assert data_check.reachable("https://host.invalid/data.tgz")


def test_a_killed_preparation_is_not_taken_for_prepared_data(tmp_path):
    # What `kill -9` leaves after TFDS wrote dataset_info.json, before its rename.
    killed = tmp_path / "oxford_flowers102" / "incomplete.Y0CQ65_2.1.1"
    killed.mkdir(parents=True)
    (killed / "dataset_info.json").write_text("{}")
    assert data_check.prepared_version("oxford_flowers102", str(tmp_path)) is None
    with pytest.raises(DataError, match="--download=never"):
        data_check.tfds_source("oxford_flowers102", str(tmp_path), "never")


def test_the_real_builder_downloads_prepares_and_the_loader_keeps_classes_0_to_9(
        tmp_path, archive, from_loopback):
    data_dir = tmp_path / "tfds"
    with flowers_loopback.serve(archive) as url:
        from_loopback(url)
        bundle = data.load(_config(data_dir=str(data_dir), validation_fraction=0.0))
    assert data_check.prepared_version("oxford_flowers102", str(data_dir)) == "2.1.1"
    assert _leftovers(data_dir) == []
    assert bundle.num_classes == 10 and bundle.image_shape == (32, 32, 3)
    np.testing.assert_array_equal(np.bincount(bundle.train_labels), [PER_CLASS - 10] * 10)
    np.testing.assert_array_equal(np.bincount(bundle.test_labels), [10] * 10)
    # The server is gone: the prepared copy is read without the network.
    again = data.load(_config(data_dir=str(data_dir), validation_fraction=0.0, download="never"))
    np.testing.assert_array_equal(again.train_images, bundle.train_images)


class _TruncatingHandler(flowers_loopback._QuietHandler):
    """Sends half of 102flowers.tgz under its full Content-Length, then hangs up."""

    def copyfile(self, source, outputfile):
        if self.path.endswith("102flowers.tgz"):
            outputfile.write(source.read()[:os.fstat(source.fileno()).st_size // 2])
            self.close_connection = True
        else:
            super().copyfile(source, outputfile)


def test_a_download_that_fails_half_way_leaves_nothing_and_the_next_run_prepares(
        tmp_path, archive, from_loopback):
    data_dir = tmp_path / "tfds"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_TruncatingHandler, directory=str(archive)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from_loopback(f"http://127.0.0.1:{server.server_address[1]}/")
        with pytest.raises(DataError) as error:
            data.load(_config(data_dir=str(data_dir)))
    finally:
        server.shutdown()
        server.server_close()
    message = str(error.value)
    assert "\n" not in message and "could not download and prepare it" in message
    assert data_check.prepared_version("oxford_flowers102", str(data_dir)) is None
    assert _leftovers(data_dir) == []
    with flowers_loopback.serve(archive) as url:
        from_loopback(url)
        bundle = data.load(_config(data_dir=str(data_dir)))
    assert bundle.num_classes == 10 and _leftovers(data_dir) == []


def _main_py(url: str, *args: str, timeout: int = 600,
             before_tensorflow: bool = False) -> subprocess.CompletedProcess:
    """main.py on Oxford Flowers 102 from `url`; with `before_tensorflow`, importing TensorFlow
    fails, so its answer must come first."""
    env = flowers_loopback.loopback_env(url)
    return subprocess.run([sys.executable, "main.py", "--dataset=oxford_flowers102", *args],
                          cwd=flowers_loopback.ROOT,
                          env=without_tensorflow(env) if before_tensorflow else env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_command_with_the_server_stopped_is_one_line_at_once(tmp_path):
    result = _main_py(_closed_port_url(), f"--data_dir={tmp_path}", f"--workdir={tmp_path}/run",
                      before_tensorflow=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: oxford_flowers102: no prepared TFDS data set in "
                                    f"{tmp_path}, and 127.0.0.1 cannot be reached")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "oxford_flowers102").exists()


@pytest.mark.slow  # about a minute on 2 busy cores: download, warm start, training, export
def test_the_headline_command_downloads_prepares_trains_evaluates_and_exports(tmp_path, archive):
    data_dir, workdir = tmp_path / "tfds", tmp_path / "run"
    tiny = ["--epochs=1", "--steps_per_epoch=2", "--batch_size=8", "--width_multiplier=0.125",
            "--warm_start_autoencoder_steps=20", "--pcm_pretrain_epochs=1", "--eval_samples=40",
            "--sample_rows=2", "--noeval_quality"]
    with flowers_loopback.serve(archive) as url:
        trained = _main_py(url, f"--data_dir={data_dir}", f"--workdir={workdir}", *tiny)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "Dataset oxford_flowers102 downloaded and prepared" in trained.stdout
    assert f"training class counts {[PER_CLASS - 10] * 10}" in trained.stdout
    assert "Warm start: PCM pre-trained" in trained.stdout
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert 0 <= metrics["pcm_acc"] <= 1 and (workdir / "samples.png").exists()
    assert _leftovers(data_dir) == []
    # Export reloads the run's data: prepared now, so with the server stopped.
    exported = _main_py(_closed_port_url(), "--mode=export", f"--workdir={workdir}",
                        f"--data_dir={data_dir}", f"--export_dir={tmp_path}/export")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (tmp_path / "export" / "gmmgan_pcm" / "1" / "saved_model.pb").exists()
    assert (tmp_path / "export" / "models.config").exists()
