"""Probing one recording (-> a sources.parquet row): what planning and auditing need to know of it.

A file that cannot be used (unreadable, empty, NaN, silent, only a DC offset, too short)
becomes a row with an `error` and is skipped later; it never stops the run.

The file is decoded in blocks of PROBE_BLOCK_S and every measure is a streaming accumulator
(`datagen.analysis`, `datagen.stationarity`), so a worker's memory does not grow with the file's
length beyond small per-frame statistics (activity frame energies, loudness step sums, the band
powers of the stationarity frames). The results are those of the whole-array functions on the whole
file (`measure_audio` on `read_audio`), bit for bit.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

import fsspec
import numpy as np
import soundfile as sf

from .analysis import (ACTIVITY_HOP_S, ActivityAccumulator, LevelAccumulator, LoudnessAccumulator, activity_mask,
                       amplitude_dbfs, gated_loudness_lufs, integrated_loudness_lufs, peak_dbfs)
from .sources import SourceFile
from .spectrum_bandwidth import LongTermSpectrumAccumulator, bandwidth_from_spectrum, bandwidth_hz
from .stationarity import StationarityAccumulator, stationarity_db

SILENCE_PEAK_DBFS = -100.0
PROBE_BLOCK_S = 4.0  # decoded at a time; also fixes the summation order of the DC offset


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """A whole file -> ((channels, frames) float32, sample_rate). Memory grows with the file: the probe streams instead."""
    with fsspec.open(path, "rb") as handle:
        audio, sample_rate = sf.read(handle, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), int(sample_rate)


def read_blocks(sound: sf.SoundFile, block_frames: int) -> Iterator[np.ndarray]:
    """Consecutive (channels, <= block_frames) contiguous float32 blocks of `sound` from its position to its end."""
    while True:
        block = sound.read(block_frames, dtype="float32", always_2d=True)
        if not len(block):
            return
        yield np.ascontiguousarray(block.T)


def _row_measures(mask: np.ndarray, loudness_lufs: float, peak: float, bandwidth: float, stationarity: float | None) -> dict:
    return {
        "loudness_lufs": float(loudness_lufs),
        "peak_dbfs": float(peak),
        "active_ratio": float(mask.mean()) if mask.size else 0.0,
        "active_mask": np.packbits(mask).tobytes(),
        "activity_hop_s": ACTIVITY_HOP_S,
        "bandwidth_hz": float(bandwidth),
        "stationarity_db": None if stationarity is None else float(stationarity),
    }


def measure_audio(audio: np.ndarray, sample_rate: int, source_type: str) -> dict:
    """The measured fields of a sources row from a whole (channels, frames) array (the whole-array
    functions; the probe's streaming reference). Raises ValueError if a measure is undefined."""
    mask = activity_mask(audio, sample_rate)
    return _row_measures(mask, integrated_loudness_lufs(audio, sample_rate), peak_dbfs(audio), bandwidth_hz(audio, sample_rate),
                         stationarity_db(audio, sample_rate) if source_type == "noise" else None)


class ContentHash:
    """sha256 of a recording's decoded sample-to-sample differences: the same for copies of one recording under
    other names, formats (lossless) or DC offsets, fed in consecutive (channels, n) blocks."""

    def __init__(self, channels: int) -> None:
        self._digest = hashlib.sha256(f"channels={channels};".encode())
        self._last: np.ndarray | None = None

    def update(self, block: np.ndarray) -> None:
        samples = block.astype(np.float64)
        if self._last is not None:
            samples = np.concatenate([self._last, samples], axis=1)
        if samples.shape[1] > 1:
            # frame-major bytes, so that the digest does not depend on the block sizes; float32 differences are exact in float64
            self._digest.update(np.ascontiguousarray(np.diff(samples, axis=1).T).tobytes())
        self._last = samples[:, -1:]

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class SourceMeter:
    """Every probe measure of one recording, fed in consecutive (channels, n) blocks.

    Once a non-finite sample is seen only the levels are kept up (the row is an error anyway).
    """

    def __init__(self, sample_rate: int, channels: int, noise: bool) -> None:
        self.sample_rate = sample_rate
        self.content = ContentHash(channels)
        self.level = LevelAccumulator()
        self.activity = ActivityAccumulator(sample_rate)
        self.loudness = LoudnessAccumulator(sample_rate)
        self.spectrum = LongTermSpectrumAccumulator()
        self.stationarity = StationarityAccumulator(sample_rate) if noise else None

    def update(self, block: np.ndarray) -> None:
        """Feed the next (channels, n) float32 samples."""
        self.content.update(block)
        self.level.update(block)
        if not self.level.finite:
            return
        for meter in (self.activity, self.loudness, self.spectrum, self.stationarity):
            if meter is not None:
                meter.update(block)

    def measures(self) -> dict:
        """The measured fields of the sources row, as `measure_audio` (raises ValueError like it)."""
        mask = self.activity.mask()
        return _row_measures(mask, gated_loudness_lufs(self.loudness.block_powers()), amplitude_dbfs(self.level.peak()),
                             bandwidth_from_spectrum(*self.spectrum.spectrum(), self.sample_rate),
                             None if self.stationarity is None else self.stationarity.result())


def _decoder_message(exc: Exception) -> str:
    # libsndfile's own text, not str(exc): that names the in-memory file object, which differs per process
    detail = getattr(exc, "error_string", None) or str(exc)
    return f"{type(exc).__name__}: {detail}".strip()


def _decode_into(meter: SourceMeter, sound: sf.SoundFile, block_frames: int) -> tuple[int, str | None]:
    """Feed `meter` the rest of `sound`, `block_frames` at a time -> (frames fed, None or why decoding stopped early)."""
    blocks, frames = read_blocks(sound, block_frames), 0
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            return frames, None
        except Exception as exc:  # truncated or corrupt data in the middle of the file
            return frames, _decoder_message(exc)
        meter.update(block)  # outside the try: a failing measure is a bug, not a property of the file
        frames += block.shape[1]


def _level_error(level: LevelAccumulator) -> str | None:
    """Why a fully decoded recording has nothing to measure (None: it has)."""
    if not level.finite:
        return "contains NaN or infinite samples"
    if amplitude_dbfs(level.peak()) < SILENCE_PEAK_DBFS:
        return f"silent: peak below {SILENCE_PEAK_DBFS:.0f} dBFS"
    if amplitude_dbfs(level.peak_without_dc()) < SILENCE_PEAK_DBFS:
        dc_dbfs = amplitude_dbfs(float(np.max(np.abs(level.dc()))))
        return (f"silent: only a DC offset (per-channel mean up to {dc_dbfs:.1f} dBFS); "
                f"without it the peak is below {SILENCE_PEAK_DBFS:.0f} dBFS")
    return None


def probe(source: SourceFile, min_duration_s: float, block_s: float = PROBE_BLOCK_S) -> dict:
    """Measure one file, decoding `block_s` seconds at a time -> a sources row; failures become an `error`, never an exception."""
    row = {
        "source_id": source.source_id, "path": source.path, "corpus": source.corpus, "source_type": source.source_type,
        "noise_type": source.noise_type, "group_key": source.group_key, "synthetic": source.synthetic,
        "file_size_bytes": source.file_size_bytes, "mtime_ns": source.mtime_ns,
    }
    with contextlib.ExitStack() as stack:
        try:
            sound = stack.enter_context(sf.SoundFile(stack.enter_context(fsspec.open(source.path, "rb"))))
        except Exception as exc:  # any decoder failure is a property of the file, reported per file
            return {**row, "error": f"unreadable: {_decoder_message(exc)}"}
        sample_rate, channels, declared = int(sound.samplerate), int(sound.channels), int(sound.frames)
        meter = SourceMeter(sample_rate, channels, source.source_type == "noise")
        frames, failure = _decode_into(meter, sound, max(1, int(round(block_s * sample_rate))))
    if failure:
        return {**row, "error": f"unreadable: {failure} (after {frames} of {declared} frames)"}
    row.update(sample_rate=sample_rate, channels=channels, frames=frames, duration_s=frames / sample_rate,
               content_sha256=meter.content.hexdigest())
    # frames: what decodes (an MP3 header's count is an estimate; the renderer pads what does not decode)
    if frames == 0:
        return {**row, "error": "empty: no audio frames"}
    error = _level_error(meter.level)
    if error:
        return {**row, "error": error}
    if frames / sample_rate < min_duration_s:
        return {**row, "error": f"too short: {frames / sample_rate:.3f} s < filters.min_duration_s = {min_duration_s} s"}
    try:
        row.update(meter.measures())
    except ValueError as exc:
        return {**row, "error": f"cannot be measured: {exc}"}
    return row
