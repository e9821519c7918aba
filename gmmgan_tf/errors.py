"""User-facing errors: each message is one line naming the problem and the fix. The CLI prints
them without a traceback. This module imports nothing heavy, so bad flags fail in milliseconds."""
from __future__ import annotations

import contextlib
import errno
import os
import re


class UserError(Exception):
    """Base of every error caused by input the user can fix."""


class ConfigError(UserError, ValueError):
    """A bad option."""


class DataError(UserError, RuntimeError):
    """Data that cannot be loaded; the message says what is missing and how to get it."""


class TrainingDiverged(UserError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class DirectoryInUse(UserError, RuntimeError):
    """Another command holds the lock of the directory this one would write into."""


class Stopped(Exception):
    """Training stopped on SIGTERM or SIGINT after checkpointing its last step: not a failure
    (the CLI prints the message and exits 0), and the same command resumes from there."""


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop, raised like Ctrl-C's KeyboardInterrupt so that every
    cleanup (temporary files, half-written export versions) runs before the process ends."""


# Write failures that no retry or other input fixes, only space or a writable file system.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
WRITE_FAILURES = {code: os.strerror(code) for code in (*DISK_FULL, errno.EROFS)}
# TensorFlow's file system reports them as ResourceExhaustedError and friends, whose message is
# "<path>; <strerror>" (SaveV2: "... /w/checkpoints/ckpt-3_temp/part-0...; No space left on
# device [Op:SaveV2]").
_TF_PATH = re.compile(r"(\S+); (" + "|".join(map(re.escape, WRITE_FAILURES.values())) + ")")


def _write_failure(error: BaseException | None) -> tuple[int, str | None] | None:
    """(errno, the file it names) of a write failure among `error` and its causes, else None."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in WRITE_FAILURES:
            return error.errno, error.filename
        match = _TF_PATH.search(getattr(error, "message", "") or "")
        if match:
            file, reason = match.groups()
            return next(c for c, text in WRITE_FAILURES.items() if text == reason), file
        error = error.__cause__ or error.__context__
    return None


def write_failure(error: BaseException) -> str | None:
    """The one-line message for a write that failed for want of space (ENOSPC, EDQUOT) or on a
    read-only file system (EROFS), from an OSError or a TensorFlow error anywhere in the chain
    of `error`'s causes; None for any other error."""
    found = _write_failure(error)
    if found is None:
        return None
    code, file = found
    where = f"cannot write {file}" if file else "a write failed"
    if code in DISK_FULL:
        return (f"{where}: the disk is full ({os.strerror(code)}); free some space and run the "
                "same command again (finished files and checkpoints are kept)")
    return f"{where}: {os.strerror(code)}; run the command on a writable copy"


@contextlib.contextmanager
def writing(path: str):
    """Turns a write failure (see write_failure) in the block into an OSError naming `path`:
    the file or directory the user knows, not a temporary one, nor none (a failed write() of an
    open file names no file)."""
    try:
        yield
    except Exception as e:
        found = _write_failure(e)
        if found is None:
            raise
        raise OSError(found[0], os.strerror(found[0]), path) from e
