"""Pure mixing: level the clean, scale the noise to the SNR, protect the peak, quantize, measure.

All arrays are (channels, samples) float at one sample rate. Quantization is done here, exactly as
the encoder stores it, so every measured figure is a figure of the bytes written, and the written
noisy member is the exact integer sum of the written clean and noise members.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis import activity_mask, gated_loudness_lufs, loudness_block_powers, noise_gain_for_snr, snr_db

SNR_TOLERANCE_DB = 0.1
# full-scale integer of each output format (None: float, no quantization)
FORMAT_SCALE = {"flac16": 2**15, "flac24": 2**23, "wav_float": None}


class MixError(ValueError):
    """The requested mixture cannot be made (silent excerpt, SNR unreachable after quantization)."""


@dataclass(frozen=True)
class MixResult:
    """Written members ((channels, samples), float32 values exactly as decoded), their quantized
    counts as `quantize` returns them (what the encoder stores), and the gains and measures."""

    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    counts: dict[str, np.ndarray]
    clean_gain_db: float
    noise_gain_db: float
    ceiling_gain_db: float
    snr_measured_db: float
    clean_loudness_lufs: float
    noisy_peak_dbfs: float


def quantize(audio: np.ndarray, audio_format: str) -> np.ndarray:
    """Round to the format's integer grid; returns int32 counts (PCM) or float32 (wav_float)."""
    scale = FORMAT_SCALE[audio_format]
    if scale is None:
        return audio.astype(np.float32)
    counts = audio * np.float32(scale)
    np.rint(counts, out=counts)
    np.clip(counts, -scale, scale - 1, out=counts)
    return counts.astype(np.int32)


def dequantize(counts: np.ndarray, audio_format: str) -> np.ndarray:
    """Float32 values of quantized samples, as a decoder returns them."""
    scale = FORMAT_SCALE[audio_format]
    return counts.astype(np.float32) if scale is None else counts.astype(np.float32) * np.float32(1.0 / scale)  # exact: |counts| <= 2^23


def _db(gain: float) -> float:
    return float(20.0 * np.log10(gain))


def _abs_max(audio: np.ndarray) -> float:
    return max(float(audio.max()), -float(audio.min()))


def _stage(clean: np.ndarray, noise: np.ndarray, ceiling: float, audio_format: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Scale clean and noise together under the ceiling, quantize; -> (noisy, clean, noise) counts, ceiling gain."""
    scale = FORMAT_SCALE[audio_format]
    margin = 1e-6 if scale is None else 2.0 / scale  # rounding of two members can add up to one step each
    noisy = clean + noise
    peak = max(_abs_max(noisy), _abs_max(clean), _abs_max(noise))
    ceiling_gain = min(1.0, (ceiling - margin) / peak) if peak > 0 else 1.0
    clean_q = quantize(clean * ceiling_gain, audio_format)
    noise_q = quantize(noise * ceiling_gain, audio_format)
    return clean_q + noise_q, clean_q, noise_q, ceiling_gain


def mix(
    clean: np.ndarray,
    noise: np.ndarray,
    sample_rate: int,
    snr_target_db: float,
    clean_loudness_target_lufs: float,
    snr_definition: str,
    peak_ceiling_dbfs: float,
    audio_format: str,
) -> MixResult:
    """Mix a clean and a noise excerpt of the same shape at a target SNR and clean loudness.

    Stages: clean gain to the target loudness (BS.1770); noise gain to the target SNR under
    `snr_definition`; one common gain <= 0 dB so that no member exceeds `peak_ceiling_dbfs`;
    quantization to `audio_format`. The SNR is then measured on the quantized members; if rounding
    moved it by more than SNR_TOLERANCE_DB the noise gain is corrected once, else MixError.
    """
    if clean.shape != noise.shape:
        raise MixError(f"clean {clean.shape} and noise {noise.shape} shapes differ")
    # K-weighting is linear, so the block powers of the excerpt give the loudness at any gain
    block_powers = loudness_block_powers(clean, sample_rate)
    source_loudness = gated_loudness_lufs(block_powers)
    if not np.isfinite(source_loudness):
        raise MixError("the clean excerpt is silent (loudness -inf LUFS)")
    clean_gain = 10.0 ** ((clean_loudness_target_lufs - source_loudness) / 20.0)
    levelled = clean * clean_gain
    active = activity_mask(levelled, sample_rate)  # gain invariant: the same frames before and after quantization
    noise_gain = noise_gain_for_snr(levelled, noise, sample_rate, snr_definition, snr_target_db, active_mask=active)
    ceiling = 10.0 ** (peak_ceiling_dbfs / 20.0)
    for _attempt in range(2):
        noisy_q, clean_q, noise_q, ceiling_gain = _stage(levelled, noise * noise_gain, ceiling, audio_format)
        clean_out, noise_out = dequantize(clean_q, audio_format), dequantize(noise_q, audio_format)
        measured = snr_db(clean_out, noise_out, sample_rate, snr_definition, active_mask=active)
        if not np.isfinite(measured):
            raise MixError(f"the noise at {snr_target_db:.1f} dB SNR rounds to silence in {audio_format}: use a higher-resolution format or a lower SNR")
        error_db = measured - snr_target_db
        if abs(error_db) <= SNR_TOLERANCE_DB:
            break
        noise_gain *= 10.0 ** (error_db / 20.0)
    else:
        raise MixError(f"measured SNR {measured:.3f} dB misses the target {snr_target_db:.3f} dB by more than {SNR_TOLERANCE_DB} dB "
                       f"after quantization to {audio_format}: the noise is too quiet for the format; use a higher-resolution format")
    noisy_out = dequantize(noisy_q, audio_format)
    total_clean_gain = clean_gain * ceiling_gain
    return MixResult(
        noisy=noisy_out,
        clean=clean_out,
        noise=noise_out,
        counts={"noisy": noisy_q, "clean": clean_q, "noise": noise_q},
        clean_gain_db=_db(clean_gain),
        noise_gain_db=_db(noise_gain),
        ceiling_gain_db=_db(ceiling_gain),
        snr_measured_db=float(measured),
        # the written clean is the excerpt times these gains, up to quantization (< 0.001 LU)
        clean_loudness_lufs=float(gated_loudness_lufs(block_powers * total_clean_gain**2)),
        noisy_peak_dbfs=_db(_abs_max(noisy_out)) if noisy_q.any() else -np.inf,
    )


def crossfade_loop(recording: np.ndarray, start_frame: int, length: int, crossfade: int) -> tuple[np.ndarray, int]:
    """`length` frames of `recording` from `start_frame`, looping with an equal-power crossfade.

    Each wrap overlaps the recording's tail and head over `crossfade` frames.
    Returns ((channels, length) audio, number of wraps).
    """
    frames = recording.shape[-1]
    if frames <= 2 * crossfade:
        raise MixError(f"a recording of {frames} frames is too short to loop with a {crossfade}-frame crossfade")
    ramp = np.linspace(0.0, np.pi / 2, crossfade, endpoint=False)
    fade_in, fade_out = np.sin(ramp), np.cos(ramp)
    # one period of the loop: body without the tail, whose end crossfades into the head
    period = recording[:, : frames - crossfade].copy()
    period[:, :crossfade] = recording[:, :crossfade] * fade_in + recording[:, frames - crossfade :] * fade_out
    period_len = period.shape[-1]
    start = start_frame % period_len
    if start + length <= frames and start_frame < frames - crossfade:
        return recording[:, start_frame : start_frame + length], 0
    repeats = int(np.ceil((start + length) / period_len))
    tiled = np.tile(period, (1, repeats))
    return tiled[:, start : start + length], repeats - 1
