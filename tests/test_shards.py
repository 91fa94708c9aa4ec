"""Tar shards: standard tar readable by tarfile, deterministic, members addressable by offset."""
from __future__ import annotations

import io
import tarfile

from datagen.shards import TarShardWriter


def test_tar_is_standard_and_offsets_point_at_data():
    members = [("ex-00000000.noisy.flac", b"a" * 1000), ("ex-00000000.json", b"{}"), ("ex-00000001.noisy.flac", b"b" * 513)]
    buffer = io.BytesIO()
    writer = TarShardWriter(buffer)
    locations = [writer.add(name, data) for name, data in members]
    size = writer.close()
    raw = buffer.getvalue()
    assert size == len(raw) and size % 10240 == 0
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        infos = archive.getmembers()
        assert [i.name for i in infos] == [m[0] for m in members]
        for info, (name, data), location in zip(infos, members, locations):
            assert archive.extractfile(info).read() == data
            assert info.offset_data == location.offset and info.mtime == 0 and info.uid == 0
            assert raw[location.offset : location.offset + location.size] == data


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    writer = TarShardWriter(buffer)
    for name, data in members:
        writer.add(name, data)
    writer.close()
    return buffer.getvalue()


def test_same_members_same_bytes():
    members = [("k.clean.flac", bytes(range(256)) * 7)]
    assert tar_bytes(members) == tar_bytes(members)


def test_writer_digest_is_the_archive_sha256():
    import hashlib

    buffer = io.BytesIO()
    writer = TarShardWriter(buffer)
    writer.add("k.json", b"{}")
    writer.close()
    assert writer.sha256 == hashlib.sha256(buffer.getvalue()).hexdigest()
