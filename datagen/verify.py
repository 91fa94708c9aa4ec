"""`datagen verify`: check every manifest row against the tar shards and every shard against the manifest.

Shards are untrusted input. They are walked by reading their 512-byte USTAR headers and seeking from
header to header; nothing is extracted to disk and no shard is read whole: a member's data is read
only to checksum and decode it, and only if its size is plausible. Member names with a path
separator, `..`, a dot in the key or an unknown suffix, non-regular members, corrupt headers, a
truncated archive or a file that is not a tar are reported as problems.

One Dask task per shard; `verify(out, ...)` returns a `VerifyReport` listing every problem found.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import posixpath
import re
import stat
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import soundfile as sf
from tqdm.auto import tqdm

from manifests.io import join, read_manifest
from manifests.schema import AUDIO_FORMATS, AUDIO_MEMBERS, EXAMPLES_SCHEMA

from .filetypes import STATE_DIR, special_kind

BLOCK = 512
MAX_MEMBER_BYTES = 64 * 2**20  # a member larger than this is never read
SIZE_SLACK = 2.0  # ... nor one larger than this many times what the manifest says
SUFFIXES = tuple(f".{m}.{ext}" for m in AUDIO_MEMBERS for ext in sorted({f[2] for f in AUDIO_FORMATS.values()})) + (".json",)
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
MEMBER_KINDS = (*AUDIO_MEMBERS, "json")
SKIP_JSON_FIELDS = {"noise_profile_db"}  # lists; the audio checksums cover what matters


@dataclass(frozen=True)
class Problem:
    shard: str
    member: str | None  # tar member name, when the problem is about one member
    example_id: str | None
    kind: str  # short category: missing member, checksum, truncated, orphan shard, ...
    detail: str

    def line(self) -> str:
        where = self.shard + (f" :: {self.member}" if self.member else "") + (f" [{self.example_id}]" if self.example_id else "")
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class TarMember:
    name: str
    header_offset: int
    offset: int  # data offset
    size: int
    typeflag: str


@dataclass
class ShardCheck:
    shard: str
    examples: int = 0
    members: int = 0
    bytes_read: int = 0
    shard_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass
class VerifyReport:
    out: str
    shards: int
    examples: int
    members: int
    bytes_read: int
    shard_bytes: int
    elapsed_s: float
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "by_kind": self.by_kind()}


# ---------------------------------------------------------------- tar headers, parsed by hand


class HeaderError(ValueError):
    pass


def _octal(field_bytes: bytes, what: str) -> int:
    if field_bytes and field_bytes[0] & 0x80:  # GNU base-256 (sizes >= 8 GiB)
        if field_bytes[0] & 0x40:
            raise HeaderError(f"negative {what}")
        return int.from_bytes(bytes([field_bytes[0] & 0x7F]) + field_bytes[1:], "big")
    text = field_bytes.replace(b"\0", b" ").strip()
    if not text:
        return 0
    if not all(48 <= c <= 55 for c in text):
        raise HeaderError(f"{what} field is not octal ({field_bytes!r})")
    return int(text, 8)


def parse_header(block: bytes) -> tuple[str, int, str]:
    """(name, size, typeflag) of a 512-byte tar header; raises HeaderError if it is not a valid header."""
    stored = _octal(block[148:156], "checksum")
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(b - 256 if b > 127 else b for b in block[:148]) + 8 * 32 + sum(b - 256 if b > 127 else b for b in block[156:])
    if stored not in (computed, signed):
        raise HeaderError(f"header checksum {stored} does not match the header bytes ({computed})")
    size = _octal(block[124:136], "size")
    typeflag = chr(block[156]) if block[156] else "0"
    raw_name = block[0:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            raw_name = prefix + b"/" + raw_name
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        name = raw_name.decode("utf-8", "backslashreplace")
        raise HeaderError(f"member name is not UTF-8: {name!r}") from None
    return name, size, typeflag


def scan_tar(handle: BinaryIO, file_size: int) -> tuple[list[TarMember], list[tuple[str | None, str, str]], int | None]:
    """Walk an archive header to header -> (members, problems as (member, kind, detail), byte where the walk stopped early or None).

    Reads 512 bytes per member; never reads member data.
    """
    members: list[TarMember] = []
    problems: list[tuple[str | None, str, str]] = []
    position = 0
    while True:
        if position + BLOCK > file_size:
            what = "not a tar archive" if position == 0 else "truncated"
            detail = "file is shorter than one tar header" if position == 0 else f"archive ends at byte {file_size} with no end-of-archive marker"
            problems.append((None, what, detail))
            return members, problems, position
        handle.seek(position)
        block = handle.read(BLOCK)
        if len(block) < BLOCK:
            problems.append((None, "truncated", f"short read at byte {position}"))
            return members, problems, position
        if block == b"\0" * BLOCK:
            return members, problems, None
        try:
            name, size, typeflag = parse_header(block)
        except HeaderError as exc:
            if position == 0:
                problems.append((None, "not a tar archive", f"the first 512 bytes are not a tar header ({exc})"))
            else:
                problems.append((None, "corrupt header", f"at byte {position}: {exc}; members after it cannot be located"))
            return members, problems, position
        data = position + BLOCK
        if data + size > file_size:
            problems.append((name, "truncated", f"member data at byte {data} needs {size} bytes, the file has {max(0, file_size - data)}"))
            return members, problems, position
        members.append(TarMember(name, position, data, size, typeflag))
        position = data + size + (-size) % BLOCK


def split_member_name(name: str) -> tuple[str, str]:
    """(key, kind) of a valid member name `<key>.<kind>[.<ext>]`; raises ValueError saying what is wrong."""
    if not name:
        raise ValueError("empty member name")
    if ".." in name:
        raise ValueError("member name holds '..'")
    if "/" in name or "\\" in name:
        raise ValueError("member name holds a path separator")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("member name holds a control character")
    suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"unknown member suffix (expected one of {', '.join(SUFFIXES)})")
    key = name[: -len(suffix)]
    if "." in key:
        raise ValueError(f"key '{key}' holds a dot")
    if not KEY_PATTERN.match(key):
        raise ValueError(f"key '{key}' is empty or holds characters other than letters, digits, '-' and '_'")
    return key, suffix.split(".")[1]


def unsafe_shard_path(shard: Any) -> str | None:
    """Why a manifest `shard` value must not be opened under the build folder, or None."""
    if not isinstance(shard, str) or not shard:
        return "empty shard path"
    if shard.startswith("/") or "\\" in shard or "://" in shard or "\0" in shard:
        return "shard path is not relative"
    if ".." in shard.split("/") or shard != posixpath.normpath(shard):
        return "shard path is not normalized or climbs out of the build folder"
    if not shard.endswith(".tar"):
        return "shard path does not end in .tar"
    return None


# ---------------------------------------------------------------- one shard (runs on a Dask worker)


def member_names(row: dict) -> dict[str, str]:
    """kind -> expected member name of one manifest row."""
    ext = AUDIO_FORMATS.get(row.get("audio_format"), AUDIO_FORMATS["flac24"])[2]
    return {**{m: f"{row['example_id']}.{m}.{ext}" for m in AUDIO_MEMBERS}, "json": f"{row['example_id']}.json"}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return (math.isnan(a) and math.isnan(b)) or math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except TypeError:
            return False
    return a == b


def _check_audio(data: bytes, row: dict, kind: str) -> list[tuple[str, str]]:
    """(kind, detail) of what is wrong with one encoded audio member."""
    errors = []
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.get(f"{kind}_sha256"):
        errors.append(("checksum", f"sha256 {digest[:16]}..., manifest says {str(row.get(f'{kind}_sha256'))[:16]}..."))
    try:
        with sf.SoundFile(io.BytesIO(data)) as sound:
            rate, channels, frames, container, subtype = sound.samplerate, sound.channels, sound.frames, sound.format, sound.subtype
            decoded = sound.read(dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding, not a crash
        return errors + [("decode", f"does not decode: {type(exc).__name__}: {exc}")]
    expected_frames = int(round(float(row["duration_s"]) * int(row["sample_rate"])))
    if rate != row["sample_rate"]:
        errors.append(("audio format", f"sample rate {rate} Hz, manifest {row['sample_rate']} Hz"))
    if channels != row["channels"]:
        errors.append(("audio format", f"{channels} channels, manifest {row['channels']}"))
    if frames != expected_frames or decoded.shape[0] != frames:
        errors.append(("length", f"{decoded.shape[0]} frames decoded ({frames} in the header), manifest duration {row['duration_s']} s = {expected_frames} frames"))
    if row.get("audio_format") in AUDIO_FORMATS and (container, subtype) != AUDIO_FORMATS[row["audio_format"]][:2]:
        errors.append(("audio format", f"encoded as {container}/{subtype}, manifest format {row['audio_format']}"))
    return errors


def _check_json(data: bytes, row: dict) -> list[tuple[str, str]]:
    """(kind, detail) of what is wrong with a `<key>.json` member: its checksum, and its fields against the row."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.get("json_sha256"):
        return [("checksum", f"sha256 {digest[:16]}..., manifest says {str(row.get('json_sha256'))[:16]}...")]
    try:
        meta = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [("json", f"not valid JSON ({exc})")]
    if not isinstance(meta, dict):
        return [("json", "JSON is not an object")]
    differ = sorted(k for k, v in meta.items() if k in row and k not in SKIP_JSON_FIELDS and not _same(v, row[k]))
    return [("json", f"fields differ from the manifest: {', '.join(differ)}")] if differ else []


def verify_shard(out: str, shard: str, rows: list[dict] | pa.Table, max_member_bytes: int = MAX_MEMBER_BYTES) -> ShardCheck:
    """Check the manifest `rows` that point into `shard` against it, and the shard's members against the rows."""
    if isinstance(rows, pa.Table):
        rows = rows.to_pylist()
    check = ShardCheck(shard, examples=len(rows))

    def report(member: str | None, example_id: str | None, kind: str, detail: str) -> None:
        check.problems.append(Problem(shard, member, example_id, kind, detail))

    fs, path = fsspec.core.url_to_fs(join(out, shard))
    not_regular = not_a_regular_file(fs, path)
    if not_regular:
        report(None, None, "not a regular file", f"{not_regular}; never opened, {len(rows)} examples not checked")
        return check
    try:
        check.shard_bytes = int(fs.size(path))
        handle = fs.open(path, "rb")
    except FileNotFoundError:
        report(None, None, "missing shard", f"the manifest references it for {len(rows)} examples, but there is no such file")
        return check
    except OSError as exc:
        report(None, None, "unreadable shard", f"{type(exc).__name__}: {exc}")
        return check
    try:
        with handle:
            _check_members(handle, rows, check, report, max_member_bytes)
    except OSError as exc:  # an I/O failure mid-way is a finding about this shard, not a crash of the whole run
        report(None, None, "unreadable shard", f"{type(exc).__name__}: {exc}")
    return check


def not_a_regular_file(fs, path: str) -> str | None:
    """Why a shard of a local build is not to be opened: a symlink (it may point anywhere) or a special file (a FIFO
    would block the reader forever); None for a regular file, or on a filesystem with neither."""
    if "file" not in fs.protocol:
        return None
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None  # reported as missing when opened
    if stat.S_ISLNK(mode):
        return f"a symbolic link to {os.readlink(path)}"
    if not stat.S_ISREG(mode):
        return f"a special file ({special_kind(mode)})"
    return None


def _check_members(handle: BinaryIO, rows: list[dict], check: ShardCheck, report, max_member_bytes: int) -> None:
    """Walk the open shard, then check each row's members (location, size, checksum, decoding) and look for orphans."""
    members, tar_problems, stopped = scan_tar(handle, check.shard_bytes)
    for member, kind, detail in tar_problems:
        report(member, None, kind, detail)
    by_name: dict[str, TarMember] = {}
    for member in members:
        if member.name in by_name:
            report(member.name, None, "duplicate member", f"second copy at byte {member.header_offset}")
            continue
        by_name[member.name] = member
    expected: dict[str, tuple[dict, str]] = {}
    unreachable: list[str] = []
    for row in rows:
        for kind, name in member_names(row).items():
            expected[name] = (row, kind)
            member = by_name.get(name)
            manifest_offset, manifest_size = row.get(f"{kind}_offset"), row.get(f"{kind}_size")
            if member is None:
                if stopped is not None and (manifest_offset is None or manifest_offset > stopped):
                    unreachable.append(name)
                else:
                    report(name, row["example_id"], "missing member", "not in the shard")
                continue
            check.members += 1
            if member.typeflag not in ("0", "7"):
                report(name, row["example_id"], "not a regular file", f"tar type '{member.typeflag}'")
                continue
            limit = min(max_member_bytes, SIZE_SLACK * (manifest_size or 0))
            if member.size > limit:
                report(name, row["example_id"], "implausible size", f"{member.size} bytes in the tar, manifest says {manifest_size}; not read")
                continue
            if (member.offset, member.size) != (manifest_offset, manifest_size):
                report(name, row["example_id"], "location", f"tar has offset {member.offset} size {member.size}, "
                                                              f"manifest says offset {manifest_offset} size {manifest_size}")
                continue
            handle.seek(member.offset)
            data = handle.read(member.size)
            check.bytes_read += len(data)
            if len(data) != member.size:
                report(name, row["example_id"], "truncated", f"read {len(data)} of {member.size} bytes")
                continue
            for what, detail in (_check_json(data, row) if kind == "json" else _check_audio(data, row, kind)):
                report(name, row["example_id"], what, detail)
    if unreachable:
        ids = sorted({n.split(".")[0] for n in unreachable})
        report(None, None, "unreachable members", f"{len(unreachable)} members of {len(ids)} examples lie after byte {stopped} "
                                                  f"where the archive could not be read further: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
    for member in members:
        if member.name in expected:
            continue
        try:
            split_member_name(member.name)
        except ValueError as exc:
            report(member.name, None, "bad member name", str(exc))
            continue
        if member.typeflag not in ("0", "7"):
            report(member.name, None, "not a regular file", f"tar type '{member.typeflag}'")
        report(member.name, None, "orphan member", "no manifest row references it")


# ---------------------------------------------------------------- the whole build


VERIFY_COLUMNS_SKIP = {"noise_profile_db"}


def shard_files(out: str) -> tuple[list[str], list[str]]:
    """(tar files, leftover temporaries) under the build folder, relative to it; .build/ is skipped."""
    fs, root = fsspec.core.url_to_fs(out)
    root = root.rstrip("/")
    tars, temporaries = [], []
    for path in sorted(fs.find(root)):
        relative = posixpath.relpath(path, root)
        if relative.split("/")[0] == STATE_DIR:
            continue
        if relative.endswith(".tar"):
            tars.append(relative)
        elif ".tar.tmp-" in relative:
            temporaries.append(relative)
    return tars, temporaries


def duplicate_rows(table: pa.Table) -> list[Problem]:
    """A problem per example id listed more than once in the manifest."""
    counted = table.group_by(["example_id"]).aggregate([("example_id", "count")])
    repeated = counted.filter(pc.greater(counted.column("example_id_count"), 1)).to_pylist()
    return [Problem("examples.parquet", None, row["example_id"], "duplicate manifest row", f"listed {row['example_id_count']} times")
            for row in sorted(repeated, key=lambda r: str(r["example_id"]))]


def _rows_by_shard(table: pa.Table) -> dict[str, pa.Table]:
    """shard -> its manifest rows (an Arrow slice: cheap to ship to a worker, turned into dicts there)."""
    encoded = pc.fill_null(table.column("shard"), "").combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(encoded.dictionary)))
    starts = np.concatenate([[0], bounds[:-1]])
    return {shard: table.take(pa.array(order[start:stop])) for shard, start, stop in zip(encoded.dictionary.to_pylist(), starts, bounds)}


def verify(out: str, workers: int = 0, scheduler: str | None = None, client=None, progress: bool = False,
           max_member_bytes: int = MAX_MEMBER_BYTES) -> VerifyReport:
    """Verify build folder `out` on Dask (an existing `client`, the cluster at `scheduler`, or a local one with `workers`)."""
    started = time.perf_counter()
    path = join(out, "examples.parquet")
    table = read_manifest(path, "examples", columns=[n for n in EXAMPLES_SCHEMA.names if n not in VERIFY_COLUMNS_SKIP])
    problems: list[Problem] = duplicate_rows(table)
    grouped = _rows_by_shard(table)
    for shard in [s for s in grouped if unsafe_shard_path(s)]:
        rows = grouped.pop(shard)
        problems.append(Problem(str(shard), None, None, "unsafe shard path", f"{unsafe_shard_path(shard)}; {rows.num_rows} examples not checked"))
    tars, temporaries = shard_files(out)
    problems += [Problem(t, None, None, "orphan shard", "no manifest row references this tar") for t in tars if t not in grouped]
    problems += [Problem(t, None, None, "leftover temporary", "a killed build's partial shard; delete it or rerun `datagen build`") for t in temporaries]
    checks = _run(out, grouped, workers, scheduler, client, progress, max_member_bytes)
    for check in checks:
        problems.extend(check.problems)
    return VerifyReport(out=out, shards=len(checks), examples=sum(c.examples for c in checks), members=sum(c.members for c in checks),
                        bytes_read=sum(c.bytes_read for c in checks), shard_bytes=sum(c.shard_bytes for c in checks),
                        elapsed_s=time.perf_counter() - started, problems=problems)


def _run(out: str, grouped: dict[str, pa.Table], workers: int, scheduler: str | None, client, progress: bool,
         max_member_bytes: int) -> list[ShardCheck]:
    if client is None:
        from .build import dask_client

        with dask_client(workers, 1, scheduler or "") as own:
            return _run(out, grouped, workers, scheduler, own, progress, max_member_bytes)
    from distributed import as_completed

    futures = [client.submit(verify_shard, out, shard, rows, max_member_bytes, pure=False) for shard, rows in grouped.items()]
    checks = []
    with tqdm(total=len(futures), desc="verifying shards", unit="shard", disable=not progress) as bar:
        for future in as_completed(futures):
            checks.append(future.result())
            bar.update(1)
    return sorted(checks, key=lambda c: c.shard)


def render_text(report: VerifyReport, max_problems: int = 100) -> str:
    mb = report.bytes_read / 1e6
    rate = f"{report.examples / report.elapsed_s:.1f} examples/s, {mb / report.elapsed_s:.1f} MB/s" if report.elapsed_s else ""
    lines = [f"verified {report.examples} examples ({report.members} members, {mb:.1f} MB read) in {report.shards} shards "
             f"of {report.out} in {report.elapsed_s:.1f} s ({rate})"]
    if report.ok:
        lines.append("OK: every manifest row matches its shard, and every shard member is in the manifest")
        return "\n".join(lines) + "\n"
    lines.append(f"FAIL: {len(report.problems)} problem(s): " + ", ".join(f"{k}: {n}" for k, n in report.by_kind().items()))
    lines += [f"  {p.line()}" for p in report.problems[:max_problems]]
    if len(report.problems) > max_problems:
        lines.append(f"  ... and {len(report.problems) - max_problems} more (--max-problems, or --format json for all)")
    return "\n".join(lines) + "\n"


def render_json(report: VerifyReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"

