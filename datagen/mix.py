"""Pure mixing: level the clean, scale the noise to the SNR, protect the peak, quantize, measure.

All arrays are (channels, samples) float at one sample rate. Quantization is done here, exactly as
the encoder stores it, so every measured figure is a figure of the bytes written, and the written
noisy member is the exact integer sum of the written clean and noise members.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import kernels
from .config import SNR_TOLERANCE_DB
from .analysis import (activity_hop_samples, as_2d, gated_loudness_lufs, loudness_block_powers, mask_from_energies,
                       noise_gain_for_snr, noise_gain_from_energies, snr_db)

# full-scale integer of each output format (None: float, no quantization)
FORMAT_SCALE = {"flac16": 2**15, "flac24": 2**23, "wav_float": None}


class MixError(ValueError):
    """The requested mixture cannot be made (silent excerpt, SNR unreachable after quantization)."""


@dataclass(frozen=True)
class MixResult:
    """Quantized counts of the written members as `quantize` returns them (what the encoder stores),
    the gains and measures; `noisy`, `clean`, `noise`: the members as decoded ((channels, samples) float32)."""

    counts: dict[str, np.ndarray]
    audio_format: str
    clean_gain_db: float
    noise_gain_db: float
    ceiling_gain_db: float
    snr_measured_db: float
    clean_loudness_lufs: float
    noisy_peak_dbfs: float

    @cached_property
    def noisy(self) -> np.ndarray:
        return dequantize(self.counts["noisy"], self.audio_format)

    @cached_property
    def clean(self) -> np.ndarray:
        return dequantize(self.counts["clean"], self.audio_format)

    @cached_property
    def noise(self) -> np.ndarray:
        return dequantize(self.counts["noise"], self.audio_format)


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


def _stage(clean: np.ndarray, noise: np.ndarray, clean_gain: float, noise_gain: float, peaks: tuple[float, float], ceiling: float,
           audio_format: str, hop: int) -> tuple[dict[str, np.ndarray], float, np.ndarray, np.ndarray]:
    """Scale clean and noise by their gains and one common gain keeping every member under `ceiling`, quantize.

    `peaks`: max |x| of clean and of noise. -> (noisy, clean, noise) counts, the common gain, and the
    frame energies of the written clean and noise.
    """
    scale = FORMAT_SCALE[audio_format]
    margin = 1e-6 if scale is None else 2.0 / scale  # rounding of two members can add up to one step each
    limit = ceiling - margin
    if clean_gain * peaks[0] + noise_gain * peaks[1] <= limit:
        ceiling_gain = 1.0  # the bound already holds: no need for the exact peak of the sum
    else:
        peak = kernels.scaled_peak(clean, noise, clean_gain, noise_gain)
        ceiling_gain = min(1.0, limit / peak) if peak > 0 else 1.0
    counts = {name: np.empty(clean.shape, np.float32 if scale is None else np.int32) for name in ("noisy", "clean", "noise")}
    clean_energy, noise_energy = kernels.scale_pair(clean, noise, clean_gain * ceiling_gain, noise_gain * ceiling_gain,
                                                    float(scale or 0), hop, counts["noisy"], counts["clean"], counts["noise"])
    return counts, ceiling_gain, clean_energy, noise_energy


def _energy_snr_db(clean_energy: np.ndarray, noise_energy: np.ndarray, definition: str, active: np.ndarray) -> float:
    """SNR in dB from frame energies: over the active frames ("active") or all of them ("rms")."""
    if definition == "active":
        clean_energy, noise_energy = clean_energy[active], noise_energy[active]
    noise_total = float(noise_energy.sum())
    return float(10.0 * np.log10(float(clean_energy.sum()) / noise_total)) if noise_total > 0 else np.inf


def remove_dc(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) minus each channel's mean, contiguous. A recording's DC offset is not audio: kept,
    it would count as signal or noise power in the loudness, the SNR and the noise profile, and a
    stationary-noise gate reads it as noise, so a clean target holding it penalizes every denoiser."""
    return np.ascontiguousarray(audio - audio.mean(axis=-1, keepdims=True))


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

    Stages: the DC offset (per-channel mean) of each excerpt is removed (`remove_dc`); clean gain to the
    target loudness (BS.1770); noise gain to the target SNR under
    `snr_definition`; one common gain <= 0 dB so that no member exceeds `peak_ceiling_dbfs`;
    quantization to `audio_format`. The SNR is then measured on the quantized members; if rounding
    moved it by more than SNR_TOLERANCE_DB the noise gain is corrected once, else MixError.
    The stages are computed in float64 and fused (datagen/kernels.py): one pass per input for its
    frame energies and peak, one for quantization and the written members' frame energies, and a
    pass for the exact peak of the sum only when the bound from the two peaks exceeds the ceiling.
    """
    if clean.shape != noise.shape:
        raise MixError(f"clean {clean.shape} and noise {noise.shape} shapes differ")
    clean, noise = remove_dc(as_2d(clean)), remove_dc(as_2d(noise))
    # K-weighting is linear, so the block powers of the excerpt give the loudness at any gain
    block_powers = loudness_block_powers(clean, sample_rate)
    source_loudness = gated_loudness_lufs(block_powers)
    if not np.isfinite(source_loudness):
        raise MixError("the clean excerpt is silent (loudness -inf LUFS)")
    clean_gain = 10.0 ** ((clean_loudness_target_lufs - source_loudness) / 20.0)
    hop = activity_hop_samples(sample_rate)
    clean_frames, clean_peak = kernels.frame_energies_and_peak(clean, hop)
    noise_frames, noise_peak = kernels.frame_energies_and_peak(noise, hop)
    active = mask_from_energies(clean_frames, clean.shape, hop)  # gain invariant: the same frames at every stage
    if snr_definition == "loudness":
        noise_gain = noise_gain_for_snr(clean * clean_gain, noise, sample_rate, snr_definition, snr_target_db)
    else:
        noise_gain = noise_gain_from_energies(clean_frames * clean_gain**2, noise_frames, snr_definition, snr_target_db, active)
    ceiling = 10.0 ** (peak_ceiling_dbfs / 20.0)
    for _attempt in range(2):
        counts, ceiling_gain, clean_energy, noise_energy = _stage(clean, noise, clean_gain, noise_gain, (clean_peak, noise_peak), ceiling,
                                                                   audio_format, hop)
        if snr_definition == "loudness":
            measured = snr_db(dequantize(counts["clean"], audio_format), dequantize(counts["noise"], audio_format),
                              sample_rate, snr_definition)
        else:
            measured = _energy_snr_db(clean_energy, noise_energy, snr_definition, active)
        if not np.isfinite(measured):
            raise MixError(f"the noise at {snr_target_db:.1f} dB SNR rounds to silence in {audio_format}: use a higher-resolution format or a lower SNR")
        error_db = measured - snr_target_db
        if abs(error_db) <= SNR_TOLERANCE_DB:
            break
        noise_gain *= 10.0 ** (error_db / 20.0)
    else:
        raise MixError(f"measured SNR {measured:.3f} dB misses the target {snr_target_db:.3f} dB by more than {SNR_TOLERANCE_DB} dB "
                       f"after quantization to {audio_format}: the noise is too quiet for the format; use a higher-resolution format")
    noisy = counts["noisy"]
    noisy_peak = max(float(noisy.max()), -float(noisy.min())) / (FORMAT_SCALE[audio_format] or 1.0)
    total_clean_gain = clean_gain * ceiling_gain
    return MixResult(
        counts=counts,
        audio_format=audio_format,
        clean_gain_db=_db(clean_gain),
        noise_gain_db=_db(noise_gain),
        ceiling_gain_db=_db(ceiling_gain),
        snr_measured_db=float(measured),
        # the written clean is the excerpt times these gains, up to quantization (< 0.001 LU)
        clean_loudness_lufs=float(gated_loudness_lufs(block_powers * total_clean_gain**2)),
        noisy_peak_dbfs=_db(noisy_peak) if noisy_peak > 0 else -np.inf,
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
