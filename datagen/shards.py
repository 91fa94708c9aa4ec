"""Deterministic tar shards in the WebDataset layout (`<key>.<member>` files, grouped by key).

Headers carry no time, owner or host: the same members give the same bytes anywhere. The writer
records each member's data offset and size so readers can seek straight to it.
"""
from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = 512
RECORD = 20 * BLOCK  # tar record size (what GNU tar and Python's tarfile pad archives to)


@dataclass(frozen=True)
class MemberLocation:
    name: str
    offset: int  # byte offset of the data in the archive
    size: int


def member_header(name: str, size: int) -> bytes:
    """A fixed-field USTAR header for a regular file (mode 0644, mtime 0, uid/gid 0)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")


class TarShardWriter:
    """Appends members to a binary stream as an uncompressed tar; `close()` writes the end-of-archive blocks."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._position = 0
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str:
        """Digest of every byte written so far (the whole archive after `close()`)."""
        return self._digest.hexdigest()

    def _write(self, data: bytes) -> None:
        self._stream.write(data)
        self._digest.update(data)

    def add(self, name: str, data: bytes) -> MemberLocation:
        header = member_header(name, len(data))
        padding = (-len(data)) % BLOCK
        self._write(header)
        self._write(data)
        self._write(b"\0" * padding)
        location = MemberLocation(name, self._position + len(header), len(data))
        self._position += len(header) + len(data) + padding
        return location

    def close(self) -> int:
        """Write the two zero blocks and pad to a whole record; returns the archive size in bytes."""
        end = self._position + 2 * BLOCK
        end += (-end) % RECORD
        self._write(b"\0" * (end - self._position))
        self._position = end
        return end
