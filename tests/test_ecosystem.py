"""A build opens in the loaders users already have: the shards in `webdataset`, examples.parquet in duckdb and polars."""
from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import soundfile as sf
import webdataset as wds

from manifests.schema import AUDIO_FORMATS
from manifests.io import open_example, read_manifest, read_metadata
from manifests.schema import AUDIO_MEMBERS, METADATA_KEY


def rows_by_split(out: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in read_manifest(str(out / "examples.parquet"), "examples").to_pylist():
        rows.setdefault(row["split"], []).append(row)
    return {split: sorted(r, key=lambda row: row["index"]) for split, r in rows.items()}


def shard_urls(out: Path, split: str) -> list[str]:
    return [str(p) for p in sorted((out / split).glob("shard-*.tar"))]


def decode_audio_member(key: str, data: bytes):
    """A webdataset decoder handler, as a user writes it: audio members -> (channels, samples) float32."""
    if key.rsplit(".", 1)[-1] in ("flac", "wav"):
        audio, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return np.ascontiguousarray(audio.T)
    return None


def payload(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if not k.startswith("__")}


def test_shards_iterate_in_webdataset_as_the_manifest_says(tiny_build):
    for split, rows in rows_by_split(tiny_build).items():
        raw = list(wds.WebDataset(shard_urls(tiny_build, split), shardshuffle=False))
        assert [s["__key__"] for s in raw] == [r["example_id"] for r in rows]
        for sample, row in zip(raw, rows):
            ext = AUDIO_FORMATS[row["audio_format"]][2]
            assert set(payload(sample)) == {f"{m}.{ext}" for m in AUDIO_MEMBERS} | {"json"}
            assert sample["__url__"] == str(tiny_build / row["shard"])
            for member in (*AUDIO_MEMBERS, "json"):
                data = sample["json" if member == "json" else f"{member}.{ext}"]
                assert len(data) == row[f"{member}_size"] and hashlib.sha256(data).hexdigest() == row[f"{member}_sha256"]

        decoded = wds.WebDataset(shard_urls(tiny_build, split), shardshuffle=False).decode(decode_audio_member)
        for sample, row in zip(decoded, rows, strict=True):
            ext = AUDIO_FORMATS[row["audio_format"]][2]
            expected = open_example(row, str(tiny_build))
            for member in AUDIO_MEMBERS:
                assert sample[f"{member}.{ext}"].dtype == np.float32
                np.testing.assert_array_equal(sample[f"{member}.{ext}"], getattr(expected, member))
            assert sample["json"] == expected.meta


def test_examples_manifest_loads_in_duckdb(tiny_build):
    path = str(tiny_build / "examples.parquet")
    table = read_manifest(path, "examples")
    expected = sorted((r["split"], r["source_type"], r["duration_s_count"])
                      for r in table.group_by(["split", "source_type"]).aggregate([("duration_s", "count")]).to_pylist())
    con = duckdb.connect()
    counted = con.execute("SELECT split, source_type, count(*) FROM read_parquet(?) GROUP BY split, source_type ORDER BY split, source_type",
                          [path]).fetchall()
    assert counted == expected and sum(n for *_, n in counted) == table.num_rows
    bands = len(table.column("noise_profile_db")[0])
    assert con.execute("SELECT min(len(noise_profile_db)), max(len(noise_profile_db)) FROM read_parquet(?)", [path]).fetchone() == (bands, bands)
    [(meta,)] = con.execute("SELECT value FROM parquet_kv_metadata(?) WHERE key = ?", [path, METADATA_KEY]).fetchall()
    assert json.loads(meta) == read_metadata(path)  # the manifest's kind, version and band layout
    assert con.execute("SELECT count(DISTINCT example_id) FROM read_parquet(?)", [path]).fetchone() == (table.num_rows,)


def test_examples_manifest_loads_in_polars(tiny_build):
    path = str(tiny_build / "examples.parquet")
    table = read_manifest(path, "examples")
    frame = pl.read_parquet(path)
    assert frame.columns == table.schema.names and frame.height == table.num_rows
    counted = {(split, source_type): n for split, source_type, n in frame.group_by(["split", "source_type"]).len().rows()}
    assert counted == dict(Counter(zip(table.column("split").to_pylist(), table.column("source_type").to_pylist())))
    lazy = pl.scan_parquet(path).filter(pl.col("split") == "train").select(pl.col("snr_measured_db").mean()).collect().item()
    train = [r["snr_measured_db"] for r in table.to_pylist() if r["split"] == "train"]
    assert lazy == pytest.approx(np.mean(train))
