"""The one check of image values, shared by the export's float signature (in the graph), the
serving client and `--mode=assign`'s .npy batches.

Accepted: uint8 pixels in [0, 255], and float batches whose values are all in [-1, 1] (within
TOLERANCE), the models' input. Refused, with one line naming the problem and the fix:

- floats that are not finite;
- floats beyond [-1, 1] by more than TOLERANCE, e.g. 0..255 pixels as floats;
- floats that look like [0, 1] images: none below -TOLERANCE. Such a batch is valid [-1, 1] and
  would be read as other, greyer images: a [0, 1] image has its minimum at 0 or above, while a
  [-1, 1] batch with no pixel darker than mid-grey is rare (and can always be sent as uint8).
  Except when every value is within TOLERANCE of 1: white is 1 in both ranges, so an all-white
  image means the same either way and is accepted; any other constant image in [0, 1) (an
  all-zero one, say) is refused, since black in [0, 1] would be mid-grey in [-1, 1].

The rule judges a whole batch (a request, a .npy file): how images were scaled is a property of
the batch, and a batch's minimum tells much more than one light image's.
"""
from __future__ import annotations

import numpy as np

# Float inputs may overshoot [-1, 1] by rounding (e.g. after a uint8 round trip), and [0, 1]
# images may undershoot 0 by as much.
TOLERANCE = 1e-3

FIX = "send uint8 pixels or floats in [-1, 1]"
NOT_FINITE = f"float images must be finite (no NaN or inf): {FIX}"
OUTSIDE = f"float images must be in [-1, 1] (0..255 pixels as floats?): {FIX} (x / 127.5 - 1)"
UNIT_RANGE = (f"float images look like [0, 1] images (no value below 0), which [-1, 1] would "
              f"misread: {FIX} (x * 2 - 1 for [0, 1] images)")


def float_checks(finite, low, high) -> list:
    """[(passed, message)] of the rule for a float batch, given whether all its values are
    finite, its minimum and its maximum. Only comparisons, & and |, so that the same code runs
    on NumPy scalars (refusal) and on TF tensors (export's graph)."""
    return [
        (finite, NOT_FINITE),
        ((low >= -1 - TOLERANCE) & (high <= 1 + TOLERANCE), OUTSIDE),
        ((low < -TOLERANCE) | (low >= 1 - TOLERANCE), UNIT_RANGE),
    ]


def refusal(images) -> str | None:
    """None when `images` (a batch of any shape) are uint8 pixels or floats the rule accepts;
    else the one-line message. Floats are judged as the float32 the models see; an empty batch
    passes (its minimum is +inf, as TF's reduce_min gives)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return None
    if not np.issubdtype(images.dtype, np.floating):
        return f"images must be uint8 pixels or floats in [-1, 1]; got {images.dtype}"
    images = images.astype(np.float32, copy=False)
    checks = float_checks(np.isfinite(images).all(), images.min(initial=np.inf),
                          images.max(initial=-np.inf))
    return next((message for passed, message in checks if not passed), None)
