"""An exclusive lock on a directory a command writes into (the workdir, --export_dir,
--assign_dir), so that two commands never write the same files.

<dir>/.lock is locked with flock(2), which the kernel (for NFS, the server) releases when its
holder ends, however it ends: a killed holder cannot block anyone. The file names the holder
(PID, host, mode) for a second writer's error; it is removed on release, so a lock file found
by a new holder was left by a process that died holding it (said in one line).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time

from gmmgan_tf.errors import DISK_FULL, ConfigError, DirectoryInUse, writing

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # directories this process holds -> nesting depth


@contextlib.contextmanager
def hold(directory: str, flag: str = "--workdir", mode: str = ""):
    """Holds the lock of `directory` (created if missing) for the `with` block; `flag` names the
    directory in errors. Raises DirectoryInUse when another command holds it and ConfigError when
    the directory cannot be written; a full disk raises the OSError (errors.write_failure)."""
    key = os.path.realpath(directory)
    if key in _held:  # e.g. --mode=evaluate --compare=W,... --workdir=W evaluates W
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    file = os.path.join(directory, LOCK_FILE)
    fd = _lock(file, directory, flag)
    try:
        left = _holder(fd)
        if left is not None:
            print(f"warning: {file}: taking over the lock of {_describe(left)}, which ended "
                  "without releasing it", flush=True)
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "mode": mode})
        with writing(file):
            os.ftruncate(fd, 0)
            os.pwrite(fd, me.encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(file)  # while locked: whoever opened it sees that it is gone (_lock)
        os.close(fd)  # releases the flock


def _lock(file: str, directory: str, flag: str) -> int:
    """An open descriptor of `file`, flock-ed, `file` being the path's current file."""
    while True:
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in DISK_FULL:  # errors.write_failure's line, as for any write
                raise
            raise ConfigError(f"{flag}: cannot write to {directory!r} ({e.strerror}); choose a "
                              "directory you own") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_holder(fd, wait=True))
            os.close(fd)
            raise DirectoryInUse(
                f"{flag}: {directory!r} is in use by {holder}; wait for that command to end (or "
                f"stop it), or use another {flag}") from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(file)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed it between our open and flock: lock the new one


def _holder(fd: int, wait: bool = False) -> dict | None:
    """What the lock file says of its holder; None when empty. With `wait`, gives a holder that
    has just taken the lock a moment to write its name."""
    for _ in range(20 if wait else 1):
        data = os.pread(fd, 4096, 0)
        if data:
            try:
                holder = json.loads(data)
                return holder if isinstance(holder, dict) else {}
            except ValueError:  # damaged: a holder all the same
                return {}
        if wait:
            time.sleep(0.05)
    return {} if wait else None


def _describe(holder: dict) -> str:
    if "pid" not in holder:
        return "another process"
    mode = f", --mode={holder['mode']}" if holder.get("mode") else ""
    return f"PID {holder['pid']} on host {holder.get('host', '?')}{mode}"
