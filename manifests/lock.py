"""One writer per output folder: a lock file naming its holder (host, pid, command, start time).

Taking the lock creates `<folder>/.lock` exclusively (O_EXCL). A lock left by a process that no
longer runs on this host is stale and taken over, with a message; a live holder, or one on another
host (whose liveness cannot be checked from here), makes the second writer fail with a `LockError`
that names it. Shared here because both `datagen build` and `training train` write folders.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = ".lock"


class LockError(RuntimeError):
    """Another process holds the folder; the message names it and what to do."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _holder_text(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started_s", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command', '?')}, since {started})"


class FolderLock:
    """Context manager: exclusive writer of `folder` (a local path) for `purpose` (e.g. "datagen build")."""

    def __init__(self, folder: str | os.PathLike, purpose: str, announce=print):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.purpose = purpose
        self.announce = announce
        self._held = False

    def _record(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.purpose,
                           "argv": sys.argv, "started_s": time.time()}).encode()

    def _read_holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read_holder()
                if not holder and time.time() - self._mtime() < 5.0:
                    time.sleep(0.2)  # being written by its holder right now
                    continue
                if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
                    self.announce(f"{self.purpose}: taking over the stale lock {self.path} of {_holder_text(holder)}, which no longer runs")
                    self.path.unlink(missing_ok=True)
                    continue
                if not holder:
                    raise LockError(f"{self.path}: an unreadable lock file; if no other process writes {self.folder}, delete it and rerun")
                raise LockError(f"{self.folder} is being written by {_holder_text(holder)}; wait for it to finish, or use another "
                                f"folder (if that process is gone, e.g. on a crashed machine, delete {self.path})")
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._record())
            self._held = True
            return
        raise LockError(f"{self.path}: could not take the lock (it keeps changing); another writer is starting, try again")

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def release(self) -> None:
        if self._held:
            holder = self._read_holder()
            if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
                self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
