"""`datagen verify`: a clean build passes; truncation, a flipped byte, a missing member, orphans and hostile tars are caught."""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest

from datagen.build import dask_client
from datagen.cli import main as datagen_main
from datagen.shards import BLOCK, RECORD, TarShardWriter, member_header
from datagen.verify import scan_tar, split_member_name, unsafe_shard_path, verify, verify_shard
from manifests.io import read_manifest, read_metadata, write_manifest



@pytest.fixture(scope="module")
def client():
    with dask_client(1, 1, "") as client:
        yield client


def rows(out: Path) -> list[dict]:
    return read_manifest(str(out / "examples.parquet"), "examples").to_pylist()


def members_of(path: Path):
    with open(path, "rb") as handle:
        members, problems, stopped = scan_tar(handle, path.stat().st_size)
    assert not problems and stopped is None
    return members


def kinds(report) -> set[tuple[str, str | None, str]]:
    return {(p.shard, p.example_id, p.kind) for p in report.problems}


def test_clean_build_verifies(tiny_build, client):
    report = verify(str(tiny_build), client=client)
    assert report.ok, [p.line() for p in report.problems]
    assert report.shards == len(list(tiny_build.glob("*/*.tar"))) == 7
    assert report.examples == 24 and report.members == 96
    assert report.bytes_read == sum(r[f"{m}_size"] for r in rows(tiny_build) for m in ("noisy", "clean", "noise", "json"))


def test_truncated_shard(tiny_build_copy, client):
    shard = tiny_build_copy / "train" / "shard-000001.tar"
    size = shard.stat().st_size
    with open(shard, "r+b") as handle:
        handle.truncate(size // 2)
    report = verify(str(tiny_build_copy), client=client)
    assert not report.ok
    assert {p.shard for p in report.problems} == {"train/shard-000001.tar"}
    found = {p.kind for p in report.problems}
    assert "truncated" in found and "unreachable members" in found
    lost = [r["example_id"] for r in rows(tiny_build_copy) if r["shard"] == "train/shard-000001.tar" and r["json_offset"] + r["json_size"] > size // 2]
    assert lost and all(i in " ".join(p.detail for p in report.problems) for i in lost)


def test_flipped_byte_in_data_and_in_a_header(tiny_build_copy, client):
    row = next(r for r in rows(tiny_build_copy) if r["shard"] == "valid/shard-000000.tar" and r["index"] == 1)
    shard = tiny_build_copy / row["shard"]
    position = row["clean_offset"] + row["clean_size"] // 2
    with open(shard, "r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ 0x01]))
    report = verify(str(tiny_build_copy), client=client)
    checksum = [p for p in report.problems if p.kind == "checksum"]
    assert [(p.example_id, p.member) for p in checksum] == [(row["example_id"], f"{row['example_id']}.clean.flac")]
    assert {p.shard for p in report.problems} == {row["shard"]}

    other = next(r for r in rows(tiny_build_copy) if r["shard"] == "test/shard-000000.tar" and r["index"] == 2)
    with open(tiny_build_copy / other["shard"], "r+b") as handle:  # a byte of the name field in the noisy member's header
        handle.seek(other["noisy_offset"] - BLOCK + 3)
        byte = handle.read(1)
        handle.seek(other["noisy_offset"] - BLOCK + 3)
        handle.write(bytes([byte[0] ^ 0x04]))
    report = verify(str(tiny_build_copy), client=client)
    corrupt = [p for p in report.problems if p.shard == other["shard"]]
    assert any(p.kind == "corrupt header" and str(other["noisy_offset"] - BLOCK) in p.detail for p in corrupt)
    assert any(p.kind == "unreachable members" and other["example_id"] in p.detail for p in corrupt)


def test_missing_member(tiny_build_copy, client):
    shard = tiny_build_copy / "train" / "shard-000000.tar"
    last = members_of(shard)[-1]  # the last example's .json
    with open(shard, "r+b") as handle:  # cut it off and close the archive properly
        handle.truncate(last.header_offset)
        end = last.header_offset + 2 * BLOCK
        handle.seek(last.header_offset)
        handle.write(b"\0" * (end + (-end) % RECORD - last.header_offset))
    # and in another shard, rename one member so that its name is no longer the expected one
    other = tiny_build_copy / "valid" / "shard-000001.tar"
    victim = next(m for m in members_of(other) if m.name.endswith(".noise.flac"))
    with open(other, "r+b") as handle:
        handle.seek(victim.header_offset)
        handle.write(member_header(victim.name.replace(".noise.", ".noize."), victim.size))
    report = verify(str(tiny_build_copy), client=client)
    missing = {(p.shard, p.member) for p in report.problems if p.kind == "missing member"}
    assert missing == {("train/shard-000000.tar", last.name), ("valid/shard-000001.tar", victim.name)}
    assert any(p.kind == "bad member name" and p.member == victim.name.replace(".noise.", ".noize.") for p in report.problems)
    assert len(report.problems) == 3, [p.line() for p in report.problems]


def test_orphan_shard_and_orphan_member(tiny_build_copy, client):
    shutil.copy(tiny_build_copy / "train" / "shard-000000.tar", tiny_build_copy / "train" / "shard-000099.tar")
    (tiny_build_copy / "extra").mkdir()
    (tiny_build_copy / "extra" / "stray.tar").write_bytes(b"\0" * RECORD)
    shard = tiny_build_copy / "test" / "shard-000001.tar"
    members = members_of(shard)
    data = shard.read_bytes()
    with open(shard, "wb") as stream:
        writer = TarShardWriter(stream)
        for member in members:
            writer.add(member.name, data[member.offset : member.offset + member.size])
        writer.add("test-00000999.json", b"{}")
        writer.close()
    report = verify(str(tiny_build_copy), client=client)
    assert {(p.shard, p.kind) for p in report.problems} == {
        ("train/shard-000099.tar", "orphan shard"), ("extra/stray.tar", "orphan shard"), ("test/shard-000001.tar", "orphan member")}
    assert next(p for p in report.problems if p.kind == "orphan member").member == "test-00000999.json"


def test_unsafe_shard_path_in_the_manifest_is_not_opened(tiny_build_copy, client):
    path = str(tiny_build_copy / "examples.parquet")
    extra = {k: v for k, v in read_metadata(path).items() if k not in ("kind", "version")}
    table = read_manifest(path, "examples")
    rows_ = table.to_pylist()
    for row in rows_:
        if row["shard"] == "test/shard-000000.tar":
            row["shard"] = "../../outside/shard-000000.tar"
    write_manifest(pa.Table.from_pylist(rows_, schema=table.schema), path, "examples", extra)
    report = verify(str(tiny_build_copy), client=client)
    assert {(p.shard, p.kind) for p in report.problems} == {("../../outside/shard-000000.tar", "unsafe shard path"),
                                                             ("test/shard-000000.tar", "orphan shard")}


def test_cli_exit_codes_and_listing(tiny_build, tiny_build_copy, capsys):
    assert datagen_main(["verify", str(tiny_build), "--workers", "1", "--no-progress"]) == 0
    assert "OK" in capsys.readouterr().out
    (tiny_build_copy / "valid" / "shard-000000.tar").unlink()
    shutil.copy(tiny_build_copy / "train" / "shard-000000.tar", tiny_build_copy / "orphan.tar")
    assert datagen_main(["verify", str(tiny_build_copy), "--workers", "1", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "valid/shard-000000.tar: missing shard" in out and "orphan.tar: orphan shard" in out
    assert datagen_main(["verify", str(tiny_build_copy), "--workers", "1", "--no-progress", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["by_kind"] == {"missing shard": 1, "orphan shard": 1}


# ---------------------------------------------------------------- hostile shards (no Dask, no build)


def raw_member(name: str, data: bytes, typeflag: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime = len(data), typeflag, 0
    if typeflag == tarfile.SYMTYPE:
        info.size, info.linkname, data = 0, "/etc/passwd", b""
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * ((-len(data)) % BLOCK)


def fake_row(example_id: str, shard: str, **sizes) -> dict:
    row = {"example_id": example_id, "shard": shard, "audio_format": "flac24", "sample_rate": 48000, "channels": 1, "duration_s": 1.0}
    for member in ("noisy", "clean", "noise", "json"):
        row[f"{member}_offset"], row[f"{member}_size"], row[f"{member}_sha256"] = 512, sizes.get(member, 10), "0" * 64
    return row


def test_hostile_member_names_are_reported_not_extracted(tmp_path):
    out = tmp_path / "build"
    (out / "train").mkdir(parents=True)
    archive = b"".join([raw_member("../evil.json", b"{}"), raw_member("a/b.noisy.flac", b"x"), raw_member("train.1.noisy.flac", b"x"),
                        raw_member("train-00000001.exe", b"x"), raw_member("train-00000002.json", b"", tarfile.SYMTYPE)])
    (out / "train" / "shard-000000.tar").write_bytes(archive + b"\0" * (2 * BLOCK))
    before = sorted(p for p in tmp_path.rglob("*"))
    check = verify_shard(str(out), "train/shard-000000.tar", [])
    problems = {p.member: p for p in check.problems}
    assert "'..'" in problems["../evil.json"].detail
    assert "path separator" in problems["a/b.noisy.flac"].detail
    assert "holds a dot" in problems["train.1.noisy.flac"].detail
    assert "unknown member suffix" in problems["train-00000001.exe"].detail
    assert {p.kind for p in check.problems if p.member == "train-00000002.json"} == {"not a regular file", "orphan member"}
    assert sorted(p for p in tmp_path.rglob("*")) == before and not (tmp_path / "evil.json").exists()
    for name in ("../x.json", "a/b.json", "a.b.json", "x.txt", "", ".json", "k\x00.json"):
        with pytest.raises(ValueError):
            split_member_name(name)
    assert split_member_name("train-00000012.noisy.flac") == ("train-00000012", "noisy")
    assert unsafe_shard_path("../../etc/x.tar") and unsafe_shard_path("/abs.tar") and unsafe_shard_path("a/./b.tar")
    assert unsafe_shard_path("train/shard-000000.tar") is None


def test_oversized_member_and_not_a_tar(tmp_path):
    out = tmp_path / "build"
    (out / "train").mkdir(parents=True)
    big = b"\x01" * (3 * 2**20)
    archive = raw_member("train-00000000.noisy.flac", big) + b"\0" * (2 * BLOCK)
    (out / "train" / "shard-000000.tar").write_bytes(archive)
    row = fake_row("train-00000000", "train/shard-000000.tar", noisy=1000)
    check = verify_shard(str(out), "train/shard-000000.tar", [row])
    assert any(p.kind == "implausible size" and p.member == "train-00000000.noisy.flac" for p in check.problems)
    assert check.bytes_read == 0, "an oversized member must not be read"
    row = fake_row("train-00000000", "train/shard-000000.tar", noisy=len(big))  # manifest agrees, but above the absolute limit
    check = verify_shard(str(out), "train/shard-000000.tar", [row], max_member_bytes=2**20)
    assert any(p.kind == "implausible size" for p in check.problems) and check.bytes_read == 0

    (out / "train" / "shard-000001.tar").write_bytes(b"PK\x03\x04 this is a zip file, not a tar" * 40)
    check = verify_shard(str(out), "train/shard-000001.tar", [fake_row("train-00000001", "train/shard-000001.tar")])
    assert [p.kind for p in check.problems][:1] == ["not a tar archive"]
    assert any(p.kind == "unreachable members" for p in check.problems)
    # a header claiming a huge member in a small file: reported as truncated, nothing allocated
    header = bytearray(raw_member("train-00000002.noisy.flac", b"")[:BLOCK])
    header[124:136] = b"77777777777\0"
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    (out / "train" / "shard-000002.tar").write_bytes(bytes(header) + b"\0" * (4 * BLOCK))
    check = verify_shard(str(out), "train/shard-000002.tar", [])
    assert [p.kind for p in check.problems] == ["truncated"]
