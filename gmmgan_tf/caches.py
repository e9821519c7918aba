"""Caches: files the project can compute again (NDB bins, domain classifiers). One that cannot
be read (truncated, zeroed, random bytes) is rebuilt with a one-line note, never trusted and
never fatal (docs/FAULTS.md)."""
from __future__ import annotations

import zipfile

# What numpy's (.npz), keras's (.keras) and json's readers raise on a damaged file.
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def note_rebuild(path: str, error: Exception, action: str) -> None:
    """One line saying that the cache at `path` is damaged and what is done instead."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
    print(f"warning: cache {path} cannot be read ({reason}); {action}", flush=True)
