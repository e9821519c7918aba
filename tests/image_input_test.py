"""One image reader: --mode=assign and the serving client read the same inputs the same way, and
the client's bad inputs end with one line at once."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import without_tensorflow
from gmmgan_tf import image_input, serving_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (28, 28, 1)


@pytest.fixture
def digits():
    """Three 28x28 greyscale digits-like uint8 images."""
    return np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)


def _save(path, pixels, mode):
    """`pixels` [H, W] as a PNG in Pillow mode L, RGB or RGBA (a greyscale image either way)."""
    Image.fromarray(pixels).convert(mode).save(path)
    return str(path)


def test_a_greyscale_png_saved_as_rgb_or_rgba_is_sent_as_one_channel(tmp_path, digits):
    paths = [_save(tmp_path / f"{mode}.png", digits[0], mode) for mode in ("L", "RGB", "RGBA")]
    batch = serving_client.load_images(paths).images
    assert batch.shape == (3, 28, 28, 1) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch, np.stack([digits[0][..., None]] * 3))


def test_the_client_takes_a_folder_and_an_nhw_npy_as_assign_does(tmp_path, digits):
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    _save(tmp_path / "folder" / "a.png", digits[0], "L")
    _save(tmp_path / "folder" / "sub" / "b.png", digits[1], "RGB")
    (tmp_path / "folder" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    np.save(tmp_path / "batch.npy", digits)  # [N, H, W]
    for source in (str(tmp_path / "folder"), str(tmp_path / "batch.npy")):
        assigned = image_input.read([source], SHAPE)  # what --mode=assign feeds the model
        sent = serving_client.load_images([source], SHAPE)
        assert sent.names == assigned.names
        assert sent.skipped == assigned.skipped
        np.testing.assert_array_equal(sent.images, np.stack(assigned.images))
        assert sent.images.shape[1:] == SHAPE
    folder = serving_client.load_images([str(tmp_path / "folder")], SHAPE)
    assert folder.skipped == [(str(tmp_path / "folder" / "broken.png"),
                               "not a decodable PNG/JPEG/BMP/GIF image")]
    np.testing.assert_allclose(folder.images[:, ..., 0], digits[:2] / 127.5 - 1, atol=1e-5)
    batch = serving_client.load_images([str(tmp_path / "batch.npy")])  # no shape: as saved
    np.testing.assert_array_equal(batch.images, digits[..., None])


def test_images_of_another_size_are_resized_as_assign_resizes_them(tmp_path, digits):
    big = np.kron(digits[0], np.ones((2, 2), np.uint8))  # 56x56
    path = _save(tmp_path / "big.png", big, "RGB")
    sent = serving_client.load_images([path], SHAPE).images
    np.testing.assert_array_equal(sent, np.stack(image_input.read([path], SHAPE).images))
    with pytest.raises(serving_client.ClientError, match=r"different shapes .* pass "
                       r"--image_shape=H,W,C \(the training shape\)"):
        serving_client.load_images([path, _save(tmp_path / "small.png", digits[0], "L")])


def client_before_tensorflow(*args):
    """The serving client where importing TensorFlow fails: its answer must come first."""
    return subprocess.run([sys.executable, "-m", "gmmgan_tf.serving_client", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=without_tensorflow())


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, line", [
    (["--image_shape=28x28", "--images={tmp}/a.png"],
     "--image_shape: want H,W,C, three positive integers such as 28,28,1 (the training shape); "
     "got '28x28'"),
    (["--images={tmp}/missing.png"],
     "--images: '{tmp}/missing.png' does not exist; pass image files, a folder of images or a "
     ".npy batch"),
    (["--images={tmp}/corrupt.npy"],
     "--images: '{tmp}/corrupt.npy' is not a .npy file (no NumPy header); save the batch with "
     "numpy.save"),
    (["--images={tmp}/empty"],
     "--images: no image files (.png, .jpg, .jpeg, .bmp, .gif) in '{tmp}/empty' or its "
     "sub-folders"),
], ids=["image_shape", "missing", "corrupt_npy", "empty_folder"])
def test_the_clients_bad_inputs_are_one_line_at_once(args, line, tmp_path, digits):
    _save(tmp_path / "a.png", digits[0], "L")
    (tmp_path / "corrupt.npy").write_bytes(os.urandom(200))
    (tmp_path / "empty").mkdir()
    result = client_before_tensorflow("--rest=http://127.0.0.1:1",
                                      *[arg.format(tmp=tmp_path) for arg in args])
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: " + line.format(tmp=tmp_path)]


@pytest.mark.parametrize("target", ["--rest=http://127.0.0.1:{port}", "--server=127.0.0.1:{port}"],
                         ids=["rest", "grpc"])
def test_with_the_server_down_the_client_asks_whether_it_runs(target, tmp_path, digits,
                                                              capsys):
    port = _closed_port()
    address = target.split("=", 1)[1].format(port=port)
    code = serving_client.main([target.format(port=port),
                                f"--images={_save(tmp_path / 'a.png', digits[0], 'L')}"])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach ")
    assert err[0].endswith(f"is tensorflow_model_server running at {address}?")
