"""Reading and writing manifests, and opening one example's audio straight out of its tar shard.

Paths are local paths or fsspec URLs. Writes go to a temporary name and are renamed into place, so a
reader never sees a half-written manifest.
"""
from __future__ import annotations

import io
import json
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from .bands import BandLayout
from .schema import AUDIO_MEMBERS, METADATA_KEY, SCHEMA_VERSIONS, SCHEMAS


class ManifestError(ValueError):
    """A manifest or shard that cannot be used as it is; the message names the file and the fix."""


def join(root: str, *parts: str) -> str:
    """Join a local path or URL with relative parts using '/'."""
    return posixpath.join(str(root), *parts)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling, then rename it into place."""
    fs, fs_path = fsspec.core.url_to_fs(str(path))
    fs.makedirs(posixpath.dirname(fs_path) or ".", exist_ok=True)
    tmp = f"{fs_path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, "wb") as handle:
            handle.write(data)
        fs.mv(tmp, fs_path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def table_from_rows(rows: Iterable[Mapping[str, Any]], kind: str) -> pa.Table:
    """Build a table of the `kind` schema ("sources" or "examples") from dict rows."""
    schema = SCHEMAS[kind]
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def write_manifest(table: pa.Table, path: str, kind: str, extra: Mapping[str, Any] | None = None) -> None:
    """Validate `table` against the `kind` schema and write it atomically as Parquet.

    `extra` goes into the file's metadata next to the schema name and version (e.g. the band layout).
    """
    schema = SCHEMAS[kind]
    if not table.schema.equals(schema):
        table = table.select(schema.names).cast(schema)
    meta = {"kind": kind, "version": SCHEMA_VERSIONS[kind], **(extra or {})}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=65536)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_metadata(path: str) -> dict:
    """The manifest metadata (kind, version, extras) of a Parquet file; checks the version."""
    with fsspec.open(str(path), "rb") as handle:
        schema = pq.read_schema(handle)
    return _checked_metadata(schema, str(path))


def _checked_metadata(schema: pa.Schema, path: str) -> dict:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ManifestError(f"{path}: not a hifi-denoise manifest (no '{METADATA_KEY.decode()}' metadata); build it with `datagen build`")
    meta = json.loads(raw)
    expected = SCHEMA_VERSIONS.get(meta.get("kind"))
    if meta.get("version") != expected:
        raise ManifestError(
            f"{path}: '{meta.get('kind')}' manifest schema version {meta.get('version')!r}, but this package reads version {expected}; "
            "rebuild the corpus with this version's `datagen build`, or install the version that wrote it"
        )
    return meta


def read_manifest(path: str, kind: str, columns: list[str] | None = None) -> pa.Table:
    """Read a manifest of the given kind, refusing a wrong kind or schema version."""
    unknown = sorted(set(columns or ()) - set(SCHEMAS[kind].names))
    if unknown:
        raise ManifestError(f"{path}: no column {', '.join(repr(c) for c in unknown)} in a version-{SCHEMA_VERSIONS[kind]} '{kind}' manifest")
    try:
        with fsspec.open(str(path), "rb") as handle:
            table = pq.read_table(handle, columns=columns)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest; run `datagen build` first") from None
    except pa.ArrowInvalid as exc:
        raise ManifestError(f"{path}: not a readable Parquet file ({exc}); rebuild it") from None
    meta = _checked_metadata(table.schema, str(path))
    if meta.get("kind") != kind:
        raise ManifestError(f"{path}: holds a '{meta.get('kind')}' manifest, expected '{kind}'")
    return table


def band_layout(path: str) -> BandLayout:
    """The band layout of the noise profiles stored in an examples manifest."""
    meta = read_metadata(path)
    if "band_layout" not in meta:
        raise ManifestError(f"{path}: no band layout in the metadata; rebuild it with `datagen build`")
    try:
        return BandLayout.from_dict(meta["band_layout"])
    except ValueError as exc:
        raise ManifestError(f"{path}: {exc}; rebuild it with `datagen build`") from None


def read_member(root: str, shard: str, offset: int, size: int) -> bytes:
    """Bytes of one tar member, read by seeking to its data offset (the shard is never unpacked)."""
    with fsspec.open(join(root, shard), "rb") as handle:
        handle.seek(int(offset))
        data = handle.read(int(size))
    if len(data) != int(size):
        raise ManifestError(f"{join(root, shard)}: member at byte {offset} is truncated ({len(data)} of {size} bytes); run `datagen verify`")
    return data


@dataclass(frozen=True)
class ExampleAudio:
    """One example's audio, each (channels, samples) float32, at `sample_rate` Hz."""

    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    sample_rate: int
    meta: dict


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode an encoded audio member -> ((channels, samples) float32, sample_rate)."""
    audio, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), int(sample_rate)


def open_example(row: Mapping[str, Any], root: str, members: Iterable[str] = AUDIO_MEMBERS) -> ExampleAudio:
    """Audio of one examples-manifest row, read from its shard under build folder `root`.

    Only the requested `members` are read; the others are empty arrays.
    """
    wanted = set(members)
    arrays: dict[str, np.ndarray] = {}
    sample_rate = int(row["sample_rate"])
    for name in AUDIO_MEMBERS:
        if name not in wanted:
            arrays[name] = np.zeros((int(row["channels"]), 0), dtype=np.float32)
            continue
        data = read_member(root, row["shard"], row[f"{name}_offset"], row[f"{name}_size"])
        arrays[name], rate = decode_audio(data)
        if rate != sample_rate:
            raise ManifestError(f"{join(root, row['shard'])}: member {row['example_id']}.{name} is at {rate} Hz, manifest says {sample_rate} Hz")
    meta = json.loads(read_member(root, row["shard"], row["json_offset"], row["json_size"]))
    return ExampleAudio(arrays["noisy"], arrays["clean"], arrays["noise"], sample_rate, meta)
