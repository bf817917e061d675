"""Advisory file locks (POSIX ``flock``): held while the holder's file is open, released when the holder dies.

The lock file is removed on release, so folders do not fill with one lock file per key. Removing a lock file is
racy unless a waiter checks, once it holds the lock, that the path still names the file it locked (the previous
holder may have removed it, and a third process made a new one): ``hold_lock`` checks and retries.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from narch.core.errors import NarchError


class LockBusy(NarchError, BlockingIOError):
    """Another process holds the lock (and the caller asked not to wait)."""


def _try_flock(fd: int, *, blocking: bool) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the open file ``fd`` (not removed, not replaced by a new lock file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


@contextmanager
def hold_lock(path: str | Path, *, wait: bool = True, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock ``path`` for the ``with`` body. ``wait`` False (or a ``timeout_s`` passed) raises
    LockBusy when another process holds it; an OSError (read-only folder, no permission) propagates."""
    path = Path(path)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_flock(fd, blocking=wait and deadline is None):
            os.close(fd)
            if not _retry(wait=wait, deadline=deadline):
                raise LockBusy(f"{path}: held by another process")
            continue
        if _same_file(path, fd):
            break
        os.close(fd)  # locked a file the previous holder removed: lock the current one
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before closing: a waiter that gets the old file sees it removed and retries
        os.close(fd)


def _retry(*, wait: bool, deadline: float | None) -> bool:
    """Whether a non-blocking attempt should try again (after a short sleep)."""
    if not wait or (deadline is not None and time.monotonic() >= deadline):
        return False
    time.sleep(0.05)
    return True
