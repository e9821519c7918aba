"""Caches: files the project can compute again (NDB bins, domain classifiers). One that cannot
be read (truncated, zeroed, random bytes) is rebuilt with a one-line note, never trusted and
never fatal (docs/FAULTS.md)."""
from __future__ import annotations

import hashlib
import zipfile

import numpy as np

# What numpy's (.npz), keras's (.keras) and json's readers raise on a damaged file.
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def note_rebuild(path: str, error: Exception, action: str) -> None:
    """One line saying that the cache at `path` is damaged and what is done instead."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
    print(f"warning: cache {path} cannot be read ({reason}); {action}", flush=True)


def fingerprint(samples: np.ndarray, *options) -> str:
    """SHA-1 of the samples (as float32) and the options a cache was built with: a cache whose
    stored fingerprint differs is stale and rebuilt."""
    h = hashlib.sha1(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
    h.update(repr((np.shape(samples),) + options).encode())
    return h.hexdigest()
