"""Pixel statistics by hand and per group against direct NumPy computations."""
import numpy as np
import pytest

from gmmgan_tf.metrics import pixels
from gmmgan_tf.metrics.sharpness import sharpness


def test_pixel_statistics_by_hand():
    image = np.array([[-1.0, 1.0], [0.0, 0.5]]).reshape(1, 2, 2, 1)
    # u = (x + 1) / 2 = 0, 1, 0.5, 0.75; ink: x > 0 for 1 and 0.5 (mid-grey 0 is not ink).
    assert pixels.pixel_statistics(image) == {"intensity": 0.5625, "ink": 0.5}


def test_group_statistics_match_numpy_per_group():
    rng = np.random.default_rng(0)
    x = np.tanh(rng.normal(size=(30, 6, 6, 1)) + 0.3).astype(np.float32)
    groups = rng.choice([0, 2, 3], size=30)  # group 1 has no image
    out = pixels.group_statistics(x, groups, num_groups=4)
    for g in (0, 2, 3):
        members = x[groups == g].astype(np.float64)
        assert out["intensity"][g] == pytest.approx(((members + 1) / 2).mean(), rel=1e-12)
        assert out["ink"][g] == np.count_nonzero(members > 0) / members.size
        assert out["sharpness"][g] == sharpness(x[groups == g])
    assert np.isnan(out["intensity"][1]) and np.isnan(out["ink"][1])
    assert np.isnan(out["sharpness"][1])


def test_refusals():
    with pytest.raises(ValueError, match="NHWC"):
        pixels.pixel_statistics(np.zeros((0, 2, 2, 1)))
    with pytest.raises(ValueError, match="one group id per image"):
        pixels.group_statistics(np.zeros((3, 4, 4, 1)), np.zeros(2, int), 1)
