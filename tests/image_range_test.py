"""image_range: the one rule for image values (export, serving client, --mode=assign), by hand.
export_test feeds the same cases to the exported float signature."""
import numpy as np
import pytest

from gmmgan_tf import image_range
from gmmgan_tf.image_range import NOT_FINITE, OUTSIDE, TOLERANCE, UNIT_RANGE

SHAPE = (2, 28, 28, 1)
_rng = np.random.default_rng(0)
_unit = _rng.uniform(0, 1, SHAPE).astype(np.float32)
_unit_undershooting = _unit.copy()
_unit_undershooting[0, 0, 0, 0] = -TOLERANCE / 2
_nan = _rng.uniform(-1, 1, SHAPE).astype(np.float32)
_nan[1, 3, 3, 0] = np.nan

# (what, batch, the message refusing it or None)
CASES = [
    ("uint8 pixels", _rng.integers(0, 256, SHAPE).astype(np.uint8), None),
    ("[-1, 1] floats", _rng.uniform(-1, 1, SHAPE).astype(np.float32), None),
    ("[-1, 1] floats beyond it by rounding",
     np.resize(np.float32([-1 - TOLERANCE / 2, 1 + TOLERANCE / 2]), SHAPE), None),
    ("all-black [-1, 1] image", np.full(SHAPE, -1, np.float32), None),
    # White is 1 in [0, 1] and in [-1, 1]: the same image either way.
    ("all-white image", np.ones(SHAPE, np.float32), None),
    ("[0, 1] floats", _unit, UNIT_RANGE),
    ("[0, 1] floats below 0 by rounding", _unit_undershooting, UNIT_RANGE),
    # Black in [0, 1], but mid-grey in [-1, 1].
    ("all-zero floats", np.zeros(SHAPE, np.float32), UNIT_RANGE),
    ("0..255 floats", _rng.uniform(0, 255, SHAPE).astype(np.float32), OUTSIDE),
    ("[-1, 1] floats with a NaN", _nan, NOT_FINITE),
]


@pytest.mark.parametrize("what, batch, message", CASES, ids=[c[0] for c in CASES])
def test_rule_by_hand(what, batch, message):
    assert image_range.refusal(batch) == message


def test_messages_are_one_line_naming_the_fix():
    for message in (NOT_FINITE, OUTSIDE, UNIT_RANGE):
        assert "\n" not in message and "send uint8 pixels or floats in [-1, 1]" in message
    assert "x * 2 - 1 for [0, 1] images" in UNIT_RANGE


def test_other_dtypes_and_an_empty_batch():
    # Judged as the float32 the models see, whatever the float type.
    assert image_range.refusal(_unit.astype(np.float64)) == UNIT_RANGE
    assert image_range.refusal(np.zeros(SHAPE, np.int32)) == (
        "images must be uint8 pixels or floats in [-1, 1]; got int32")
    # The graph's check passes an empty batch too (TF's minimum of nothing is +inf).
    assert image_range.refusal(np.zeros((0, 28, 28, 1), np.float32)) is None
