"""Scanning the configured corpora and probing each recording once (-> sources.parquet rows).

Probing reads a whole file and measures what planning and auditing need. A file that cannot be used
(unreadable, empty, NaN, silent, too short) becomes a row with an `error` and is skipped later; it
never stops the run. Rows of files whose size and mtime are unchanged are reused from a previous index.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Iterable

import fsspec
import numpy as np
import pyarrow as pa
import soundfile as sf

from .analysis import ACTIVITY_HOP_S, activity_mask, bandwidth_hz, integrated_loudness_lufs, peak_dbfs
from .config import NOISE_TYPE_FROM_FOLDER, BuildConfig, ConfigError, CorpusConfig
from .stationarity import stationarity_db

SILENCE_PEAK_DBFS = -100.0
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class SourceFile:
    """A file found in a corpus, with what the config says about it."""

    path: str
    relative_path: str
    corpus: str
    source_type: str
    noise_type: str | None
    group_key: str
    synthetic: bool
    file_size_bytes: int
    mtime_ns: int

    @property
    def source_id(self) -> str:
        return hashlib.sha1(f"{self.corpus}:{self.relative_path}".encode()).hexdigest()[:16]


def _mtime_ns(info: dict) -> int:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    return int(float(mtime) * 1e9)


def _group_key(corpus: CorpusConfig, relative_path: str) -> str:
    if corpus.group_pattern:
        match = re.search(corpus.group_pattern, relative_path)
        if match and match.groups():
            return match.group(1)
    return relative_path


def _noise_type(corpus: CorpusConfig, relative_path: str) -> str | None:
    if corpus.type != "noise":
        return None
    if corpus.noise_type != NOISE_TYPE_FROM_FOLDER:
        return corpus.noise_type
    folder = posixpath.basename(posixpath.dirname(relative_path))
    return folder or corpus.name


def scan_corpus(corpus: CorpusConfig, path: str, synthetic: bool, where: str) -> list[SourceFile]:
    """Every audio file of one corpus under `path` (folder, glob or single file), sorted by path."""
    fs, fs_path = fsspec.core.url_to_fs(path)
    if any(ch in fs_path for ch in GLOB_CHARS):
        root = fs_path[: min(fs_path.index(ch) for ch in GLOB_CHARS if ch in fs_path)].rsplit("/", 1)[0]
        found = {p: fs.info(p) for p in fs.glob(fs_path)}
    elif fs.isdir(fs_path):
        root = fs_path.rstrip("/")
        found = fs.find(fs_path, detail=True)
    elif fs.isfile(fs_path):
        root = posixpath.dirname(fs_path)
        found = {fs_path: fs.info(fs_path)}
    else:
        raise ConfigError(f"{where}: corpora '{corpus.name}' path '{path}' does not exist; fix 'path'")
    extensions = tuple("." + ext.lower().lstrip(".") for ext in corpus.extensions)
    files = []
    for fs_file in sorted(found):
        info = found[fs_file]
        if info.get("type") == "directory" or not fs_file.lower().endswith(extensions):
            continue
        relative = posixpath.relpath(fs_file, root) if root else fs_file
        full = fs_file if "://" not in path else fs.unstrip_protocol(fs_file)
        files.append(SourceFile(full, relative, corpus.name, corpus.type, _noise_type(corpus, relative), _group_key(corpus, relative),
                                synthetic, int(info.get("size") or 0), _mtime_ns(info)))
    if not files:
        raise ConfigError(f"{where}: corpora '{corpus.name}' path '{path}' holds no audio files with extensions {', '.join(corpus.extensions)}")
    return files


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """A whole file -> ((channels, frames) float32, sample_rate)."""
    with fsspec.open(path, "rb") as handle:
        audio, sample_rate = sf.read(handle, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), int(sample_rate)


def _measure(audio: np.ndarray, sample_rate: int, source_type: str) -> dict:
    mask = activity_mask(audio, sample_rate)
    return {
        "loudness_lufs": float(integrated_loudness_lufs(audio, sample_rate)),
        "peak_dbfs": float(peak_dbfs(audio)),
        "active_ratio": float(mask.mean()) if mask.size else 0.0,
        "active_mask": np.packbits(mask).tobytes(),
        "activity_hop_s": ACTIVITY_HOP_S,
        "bandwidth_hz": float(bandwidth_hz(audio, sample_rate)),
        "stationarity_db": float(stationarity_db(audio, sample_rate)) if source_type == "noise" else None,
    }


def probe(source: SourceFile, min_duration_s: float) -> dict:
    """Measure one file -> a sources row; failures become an `error`, never an exception."""
    row = {
        "source_id": source.source_id, "path": source.path, "corpus": source.corpus, "source_type": source.source_type,
        "noise_type": source.noise_type, "group_key": source.group_key, "synthetic": source.synthetic,
        "file_size_bytes": source.file_size_bytes, "mtime_ns": source.mtime_ns,
    }
    try:
        audio, sample_rate = read_audio(source.path)
    except Exception as exc:  # any decoder failure is a property of the file, reported per file
        # libsndfile's own text, not str(exc): that names the in-memory file object, which differs per process
        detail = getattr(exc, "error_string", None) or str(exc)
        return {**row, "error": f"unreadable: {type(exc).__name__}: {detail}".strip()}
    frames = audio.shape[1]
    row.update(sample_rate=sample_rate, channels=audio.shape[0], frames=frames, duration_s=frames / sample_rate)
    if frames == 0:
        return {**row, "error": "empty: no audio frames"}
    if not np.all(np.isfinite(audio)):
        return {**row, "error": "contains NaN or infinite samples"}
    if peak_dbfs(audio) < SILENCE_PEAK_DBFS:
        return {**row, "error": f"silent: peak below {SILENCE_PEAK_DBFS:.0f} dBFS"}
    if frames / sample_rate < min_duration_s:
        return {**row, "error": f"too short: {frames / sample_rate:.3f} s < filters.min_duration_s = {min_duration_s} s"}
    try:
        row.update(_measure(audio, sample_rate, source.source_type))
    except ValueError as exc:
        return {**row, "error": f"cannot be measured: {exc}"}
    return row


def reusable_rows(previous: pa.Table | None) -> dict[tuple[str, int, int], dict]:
    """Rows of a previous index by (path, size, mtime): unchanged files are not probed again."""
    if previous is None:
        return {}
    return {(row["path"], row["file_size_bytes"], row["mtime_ns"]): row for row in previous.to_pylist()}


def index_sources(
    files: Iterable[SourceFile],
    min_duration_s: float,
    previous: pa.Table | None,
    run_probes: Callable[[list[SourceFile], float], list[dict]],
) -> list[dict]:
    """Probe rows for `files` in order: reused where unchanged, the rest through `run_probes` (e.g. on Dask)."""
    files = list(files)
    cached = reusable_rows(previous)
    keep: dict[int, dict] = {}
    todo = []
    for i, source in enumerate(files):
        row = cached.get((source.path, source.file_size_bytes, source.mtime_ns))
        if row is not None and row.get("corpus") == source.corpus and row.get("group_key") == source.group_key \
                and row.get("noise_type") == source.noise_type and row.get("source_type") == source.source_type:
            keep[i] = {**row, "excluded_reason": None}
        else:
            todo.append(i)
    for i, row in zip(todo, run_probes([files[i] for i in todo], min_duration_s)):
        keep[i] = row
    return [keep[i] for i in range(len(files))]


def exclusion_reason(row: dict, config: BuildConfig) -> str | None:
    """Why the build policy leaves a probed recording out (None: it is used)."""
    if row.get("error"):
        return None
    filters, clip_s = config.filters, config.audio.clip_duration_s
    if row["source_type"] == "noise":
        if row["stationarity_db"] > filters.stationarity_threshold_db:
            return f"non-stationary: score {row['stationarity_db']:.2f} dB > filters.stationarity_threshold_db = {filters.stationarity_threshold_db} dB"
        if config.mix.noise_loop == "never" and row["duration_s"] < clip_s:
            return f"shorter than the clip ({row['duration_s']:.2f} s < {clip_s} s) and mix.noise_loop = 'never'"
        if row["duration_s"] <= 2 * config.mix.noise_crossfade_s:
            return f"too short to loop ({row['duration_s']:.2f} s <= 2 x mix.noise_crossfade_s)"
        return None
    if row["bandwidth_hz"] < filters.min_bandwidth_hz:
        return f"band-limited: {row['bandwidth_hz']:.0f} Hz < filters.min_bandwidth_hz = {filters.min_bandwidth_hz:.0f} Hz"
    if row["duration_s"] < clip_s:
        return f"shorter than the clip ({row['duration_s']:.2f} s < audio.clip_duration_s = {clip_s} s)"
    return None
