"""Probing one recording (-> a sources.parquet row): what planning and auditing need to know of it.

A file that cannot be used (unreadable, empty, NaN, silent, too short) becomes a row with an `error`
and is skipped later; it never stops the run.
"""
from __future__ import annotations

import fsspec
import numpy as np
import soundfile as sf

from .analysis import ACTIVITY_HOP_S, activity_mask, bandwidth_hz, integrated_loudness_lufs, peak_dbfs
from .sources import SourceFile
from .stationarity import stationarity_db

SILENCE_PEAK_DBFS = -100.0


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
