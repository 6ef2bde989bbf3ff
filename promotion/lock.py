"""One promotion or rollback at a time per stack file, on this machine.

The lock is a BSD ``flock`` on ``.Pulumi.<stack>.yaml.lock`` next to the stack file. The
kernel drops it when its holder exits, however it exits, so a killed run never blocks the
next one. It is not taken on the stack file itself: the atomic write replaces that file's
inode, and a lock on the old inode would guard nothing. The lock file is never deleted
(a waiter could then lock a deleted inode while a newcomer locks a new one); it only holds
a line saying who holds the lock, for the message of whoever waits.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_WAIT_SECONDS = 120.0
_POLL_SECONDS = 0.1
_HOLDER_LIMIT = 1024


class LockError(Exception):
    """The lock file cannot be opened (a read-only folder, say)."""


class LockBusyError(LockError):
    """Another process held the lock for longer than this one would wait."""

    def __init__(self, lock_path: Path, holder: str, waited: float) -> None:
        super().__init__(f"{lock_path.name} is held by {holder}")
        self.lock_path, self.holder, self.waited = lock_path, holder, waited


def _ignore(_: str) -> None:
    return None


@dataclass(frozen=True)
class Wait:
    """How long to wait for a busy lock, and whom to tell (once) that this run waits."""

    seconds: float = DEFAULT_WAIT_SECONDS
    notify: Callable[[str], None] = _ignore


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextmanager
def holding(path: Path, what: str, wait: Wait) -> Iterator[None]:
    """Hold ``path``'s lock for the block; ``what`` says what the holder does."""
    where = lock_path(path)
    try:
        handle = os.open(where, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise LockError(f"cannot open the lock file {where}: {exc.strerror}") from None
    try:
        _acquire(handle, where, wait)
        _write_holder(handle, what)
        try:
            yield
        finally:
            os.ftruncate(handle, 0)
    finally:
        os.close(handle)  # releases the lock


def _acquire(handle: int, where: Path, wait: Wait) -> None:
    deadline = time.monotonic() + wait.seconds
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _read_holder(handle)
        if time.monotonic() >= deadline:
            raise LockBusyError(where, holder, wait.seconds)
        if not told:
            wait.notify(f"{where.name} is held by {holder}; waiting up to {wait.seconds:g} s")
            told = True
        # flock has no timeout of its own; polling keeps the wait bounded.
        time.sleep(_POLL_SECONDS)


def _write_holder(handle: int, what: str) -> None:
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"pid {os.getpid()} on {socket.gethostname()} ({what}, since {since})\n"
    os.ftruncate(handle, 0)
    os.pwrite(handle, line.encode()[:_HOLDER_LIMIT], 0)


def _read_holder(handle: int) -> str:
    # Empty for the moment between a holder's flock and its write.
    text = os.pread(handle, _HOLDER_LIMIT, 0).decode(errors="replace").strip()
    return text or "another process"
