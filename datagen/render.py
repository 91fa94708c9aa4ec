"""Rendering one planned example: read the two source segments, resample, mix, encode.

Only the needed frames of each source are read (plus a short margin for the resampler). The result
is a pure function of the plan and the output settings, so re-rendering gives the same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import fsspec
import numpy as np
import soundfile as sf
import soxr

from manifests.bands import BandLayout, band_profile_db
from manifests.schema import AUDIO_FORMATS

from .config import BuildConfig
from .mix import crossfade_loop, mix, quantize
from .plan import ExamplePlan

RESAMPLE_MARGIN_S = 0.05  # extra source audio read on each side so resampler edges fall outside the clip


@dataclass(frozen=True)
class RenderedExample:
    """Encoded members in tar order (name suffix, bytes) and the manifest fields measured while mixing."""

    members: list[tuple[str, bytes]]
    record: dict


def read_frames(path: str, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) of a file, zero-padded outside it -> (channels, stop - start) float32.

    Frames past what decodes are zeros too, whatever the header declares (an MP3's frame count is an estimate).
    """
    with fsspec.open(path, "rb") as handle, sf.SoundFile(handle) as sound:
        lo = min(max(0, start), sound.frames)
        sound.seek(lo)
        audio = sound.read(max(0, min(stop, sound.frames) - lo), dtype="float32", always_2d=True).T
    if lo == start and audio.shape[1] == stop - start:
        return audio
    return np.pad(audio, ((0, 0), (lo - start, stop - lo - audio.shape[1])))


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Downmix to mono by averaging, or duplicate mono to stereo (sources with more channels: first two)."""
    if audio.shape[0] == channels:
        return audio
    if channels == 1:
        downmix = audio[0].copy()
        for channel in audio[1:]:  # row sums: several times faster than mean(axis=0) on (channels, samples)
            downmix += channel
        return (downmix * np.float32(1.0 / audio.shape[0]))[np.newaxis]
    return np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio[:2]


def read_segment(path: str, source_rate: int, start_s: float, duration_s: float, sample_rate: int, channels: int) -> np.ndarray:
    """`duration_s` of a source from `start_s`, resampled to `sample_rate` -> (channels, samples) float32."""
    length = int(round(duration_s * sample_rate))
    if source_rate == sample_rate:
        start = int(round(start_s * source_rate))
        return match_channels(read_frames(path, start, start + length), channels)
    margin = int(round(RESAMPLE_MARGIN_S * source_rate))
    start = int(round(start_s * source_rate))
    stop = start + int(np.ceil(duration_s * source_rate))
    audio = read_frames(path, start - margin, stop + margin)
    if channels <= audio.shape[0]:  # resampling is linear: downmix first, half the work for stereo sources
        audio = match_channels(audio, channels)
    resampled = soxr.resample(np.ascontiguousarray(audio.T), source_rate, sample_rate, quality="HQ").T
    skip = int(round(margin * sample_rate / source_rate))
    return match_channels(resampled[:, skip : skip + length], channels)


def read_noise(plan: ExamplePlan, config: BuildConfig) -> tuple[np.ndarray, int]:
    """The noise segment of a plan; a recording shorter than the clip is crossfade-looped -> (audio, wraps)."""
    sample_rate, channels, clip_s = config.audio.sample_rate, config.audio.channels, config.audio.clip_duration_s
    if not plan.noise_loop:
        return read_segment(plan.noise_path, plan.noise_sample_rate, plan.noise_start_s, clip_s, sample_rate, channels), 0
    whole = read_segment(plan.noise_path, plan.noise_sample_rate, 0.0, plan.noise_frames / plan.noise_sample_rate, sample_rate, channels)
    return crossfade_loop(whole, int(round(plan.noise_start_s * sample_rate)), int(round(clip_s * sample_rate)),
                          int(round(config.mix.noise_crossfade_s * sample_rate)))


def encode_counts(counts: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    """Encode (channels, samples) counts from `mix.quantize` to file bytes, losslessly."""
    container, subtype, _ = AUDIO_FORMATS[audio_format]
    if audio_format == "flac16":
        counts = counts.astype(np.int16)
    elif audio_format == "flac24":
        counts = counts << 8  # libsndfile maps int32 to 24-bit by its top 24 bits
    buffer = io.BytesIO()
    sf.write(buffer, counts.T, sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()


def encode(audio_float: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    """Encode (channels, samples) float audio on the format's grid (see mix.quantize) to file bytes."""
    return encode_counts(quantize(audio_float, audio_format), sample_rate, audio_format)


def render_example(plan: ExamplePlan, config: BuildConfig, layout: BandLayout) -> RenderedExample:
    """Mix and encode one example -> members `<id>.noisy|clean|noise.<ext>`, `<id>.json`, and its record."""
    audio = config.audio
    clean = read_segment(plan.clean_path, plan.clean_sample_rate, plan.clean_start_s, audio.clip_duration_s, audio.sample_rate, audio.channels)
    noise, wraps = read_noise(plan, config)
    result = mix(clean, noise, audio.sample_rate, plan.snr_target_db, plan.clean_loudness_target_lufs,
                 config.snr.definition, audio.peak_ceiling_dbfs, audio.format)
    ext = AUDIO_FORMATS[audio.format][2]
    encoded = {name: encode_counts(counts, audio.sample_rate, audio.format) for name, counts in result.counts.items()}
    record = {
        **{k: v for k, v in plan.to_dict().items() if k not in {"clean_sample_rate", "clean_frames", "noise_sample_rate", "noise_frames", "noise_loop"}},
        "noise_loop_count": wraps,
        "noise_crossfade_s": config.mix.noise_crossfade_s if plan.noise_loop else 0.0,
        "snr_definition": config.snr.definition,
        "snr_measured_db": result.snr_measured_db,
        "clean_loudness_lufs": result.clean_loudness_lufs,
        "clean_gain_db": result.clean_gain_db,
        "noise_gain_db": result.noise_gain_db,
        "ceiling_gain_db": result.ceiling_gain_db,
        "noisy_peak_dbfs": result.noisy_peak_dbfs,
        "duration_s": result.clean.shape[1] / audio.sample_rate,
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "audio_format": audio.format,
        "noise_profile_db": [round(float(v), 4) for v in band_profile_db(result.noise, layout, frame_hop=layout.n_fft)],
        **{f"{name}_sha256": hashlib.sha256(data).hexdigest() for name, data in encoded.items()},
    }
    members = [(f"{plan.example_id}.{name}.{ext}", data) for name, data in encoded.items()]
    meta = json.dumps(record, sort_keys=True).encode()
    members.append((f"{plan.example_id}.json", meta))
    return RenderedExample(members, {**record, "json_sha256": hashlib.sha256(meta).hexdigest()})
