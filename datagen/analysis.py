"""Signal measurements: activity, loudness, peak, SNR and effective bandwidth.

Pure numpy/scipy functions, no I/O. Audio is float, shaped (channels, samples), full scale [-1, 1]
(a 1-D array is read as mono); `sample_rate` is in Hz.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.signal

from . import kernels

ACTIVITY_HOP_S = 0.02
ACTIVITY_PERCENTILE = 95.0
ACTIVITY_RANGE_DB = 40.0

SNR_DEFINITIONS = ("active", "rms", "loudness")

# ITU-R BS.1770-4 gating
LOUDNESS_BLOCK_S = 0.4
LOUDNESS_STEP_S = 0.1  # 75 % block overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_LOUDNESS_OFFSET_DB = -0.691
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs
_LOUDNESS_TOLERANCE_LU = 1e-9
_LOUDNESS_MAX_CORRECTIONS = 8

# effective bandwidth
BANDWIDTH_NFFT = 4096
BANDWIDTH_SMOOTHING_OCT = 1 / 6
BANDWIDTH_FLOOR_MARGIN_DB = 65.0
BANDWIDTH_CLIFF_DB = 30.0
BANDWIDTH_CLIFF_SPAN_OCT = 1 / 6
BANDWIDTH_EDGE_DB = 3.0
_BANDWIDTH_REFERENCE_MIN_HZ = 20.0
_BANDWIDTH_FRAMES_PER_BATCH = 256


def as_2d(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) float32/float64 view of `audio` (1-D input is mono; other dtypes become float64).

    Per-sample products stay in the input precision; every sum over samples accumulates in float64.
    """
    audio = np.asarray(audio)
    if audio.dtype not in (np.float32, np.float64):
        audio = audio.astype(np.float64)
    if audio.ndim == 1:
        return audio[np.newaxis]
    if audio.ndim != 2:
        raise ValueError(f"audio must be shaped (channels, samples), got {audio.shape}")
    return audio


def _db(power_ratio: float) -> float:
    """10 log10 of a power ratio; -inf for 0, +inf for inf, no warnings."""
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(power_ratio))


# ---------------------------------------------------------------- activity

def activity_hop_samples(sample_rate: float, hop_s: float = ACTIVITY_HOP_S) -> int:
    """Samples per activity frame."""
    return max(1, int(round(hop_s * sample_rate)))


def frame_energies(audio: np.ndarray, hop_samples: int) -> np.ndarray:
    """(n_frames,) sum of squares over each non-overlapping frame of `hop_samples` and over channels.

    n_frames = ceil(samples / hop_samples); the last frame may be partial. Products and sums in float64.
    """
    return kernels.frame_energies_and_peak(np.ascontiguousarray(as_2d(audio)), hop_samples)[0]


def activity_mask(audio: np.ndarray, sample_rate: float, hop_s: float = ACTIVITY_HOP_S) -> np.ndarray:
    """(n_frames,) bool: which non-overlapping `hop_s` frames are active.

    n_frames = ceil(samples / hop_samples), the last partial frame included. A frame's level is its
    mean square over its samples and all channels. A frame is active if it is not digitally silent
    (some sample != 0) and its level is at most ACTIVITY_RANGE_DB (40 dB) below the
    ACTIVITY_PERCENTILE (95th) percentile of the non-silent frames' levels. The rule is relative,
    so the mask does not change with the audio's gain.
    """
    audio = as_2d(audio)
    hop = activity_hop_samples(sample_rate, hop_s)
    return mask_from_energies(frame_energies(audio, hop), audio.shape, hop)


def mask_from_energies(energy: np.ndarray, shape: tuple[int, int], hop_samples: int) -> np.ndarray:
    """`activity_mask` from the `frame_energies` of audio shaped `shape` = (channels, samples)."""
    channels, samples = shape
    lengths = np.full(energy.size, hop_samples)
    if energy.size:
        lengths[-1] = samples - hop_samples * (energy.size - 1)
    mean_square = energy / (lengths * channels)
    sounding = mean_square > 0
    if not sounding.any():
        return sounding
    reference = np.percentile(mean_square[sounding], ACTIVITY_PERCENTILE)
    return sounding & (mean_square >= reference * 10.0 ** (-ACTIVITY_RANGE_DB / 10.0))


# ---------------------------------------------------------------- levels

def peak_dbfs(audio: np.ndarray) -> float:
    """Sample peak in dBFS (-inf for silence or empty audio)."""
    audio = np.asarray(audio)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return _db(peak * peak)


@lru_cache(maxsize=None)
def _k_weighting_sos(sample_rate: float) -> np.ndarray:
    """(2, 6) K-weighting second-order sections (high shelf, then RLB high pass).

    Brecht De Man's parametrisation of the BS.1770-4 filters (pyloudnorm's "DeMan" filter class):
    it reproduces the standard's 48 kHz coefficients exactly and carries them to other rates.
    """
    k = np.tan(np.pi * 1681.9744509555319 / sample_rate)
    q = 0.7071752369554193
    gain_high = 10.0 ** (3.99984385397 / 20.0)
    gain_band = gain_high ** 0.499666774155
    norm = 1.0 + k / q + k * k
    shelf = [(gain_high + gain_band * k / q + k * k) / norm, 2.0 * (k * k - gain_high) / norm,
             (gain_high - gain_band * k / q + k * k) / norm, 1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - k / q + k * k) / norm]
    k = np.tan(np.pi * 38.13547087613982 / sample_rate)
    q = 0.5003270373253953
    norm = 1.0 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - k / q + k * k) / norm]
    return np.array([shelf, high_pass])


def loudness_block_powers(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """(n_blocks,) channel-weighted mean square of the K-weighted audio in each BS.1770 gating block.

    Blocks are 400 ms with 75 % overlap, only complete blocks (n_blocks = floor((T - 0.4) / 0.1) + 1).
    Raises ValueError if the audio is shorter than one block or has more than 5 channels.
    """
    audio = as_2d(audio)
    channels, samples = audio.shape
    if samples < LOUDNESS_BLOCK_S * sample_rate:
        raise ValueError(f"loudness needs at least one {LOUDNESS_BLOCK_S * 1000:.0f} ms gating block: "
                         f"got {samples} samples = {samples / sample_rate * 1000:.1f} ms at {sample_rate} Hz")
    if channels > len(_CHANNEL_WEIGHTS):
        raise ValueError(f"loudness supports at most {len(_CHANNEL_WEIGHTS)} channels, got {channels}")
    step = LOUDNESS_STEP_S * sample_rate
    steps_per_block = int(round(LOUDNESS_BLOCK_S / LOUDNESS_STEP_S))
    edges = np.round(np.arange(int(samples / step + 1e-9) + 1) * step).astype(np.int64)
    step_sums = kernels.k_weighted_step_sums(np.ascontiguousarray(audio), _k_weighting_sos(float(sample_rate)),
                                             np.asarray(_CHANNEL_WEIGHTS[:channels]), edges)
    n_blocks = step_sums.size - steps_per_block + 1
    block_sums = sum(step_sums[k:k + n_blocks] for k in range(steps_per_block))
    return block_sums / (edges[steps_per_block:] - edges[:n_blocks])


def gated_loudness_lufs(block_powers: np.ndarray) -> float:
    """BS.1770-4 integrated loudness (LUFS) from `loudness_block_powers`; -inf if no block passes the gates.

    Absolute gate -70 LUFS, then relative gate 10 LU below the absolute-gated loudness.
    """
    with np.errstate(divide="ignore"):
        block_lufs = _LOUDNESS_OFFSET_DB + 10.0 * np.log10(block_powers)
    gated = block_lufs > ABSOLUTE_GATE_LUFS
    if not gated.any():
        return -np.inf
    relative_gate = _LOUDNESS_OFFSET_DB + _db(block_powers[gated].mean()) + RELATIVE_GATE_LU
    gated &= block_lufs > relative_gate
    return _LOUDNESS_OFFSET_DB + _db(block_powers[gated].mean())


def integrated_loudness_lufs(audio: np.ndarray, sample_rate: float) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (-inf for silence).

    Vectorized equivalent of pyloudnorm's `Meter(rate, filter_class="DeMan").integrated_loudness`
    (the standard's exact 48 kHz K-weighting; pyloudnorm's default RBJ filters read a 997 Hz tone
    0.04 LU low). Lengths that are not a whole number of 100 ms steps use complete blocks only,
    where pyloudnorm may add a final block running past the end. Raises ValueError if shorter than
    one 400 ms block.
    """
    return gated_loudness_lufs(loudness_block_powers(audio, sample_rate))


# ---------------------------------------------------------------- SNR

def _check_definition(definition: str) -> None:
    if definition not in SNR_DEFINITIONS:
        raise ValueError(f"unknown SNR definition {definition!r}; expected one of {SNR_DEFINITIONS}")


def _check_shapes(clean: np.ndarray, noise: np.ndarray) -> None:
    if np.shape(clean) != np.shape(noise):
        raise ValueError(f"clean {np.shape(clean)} and noise {np.shape(noise)} shapes differ")


def _energies(clean: np.ndarray, noise: np.ndarray, sample_rate: float, definition: str,
              active_mask: np.ndarray | None) -> tuple[float, float]:
    """(clean, noise) sums of squares over the clean's active frames ("active") or everything ("rms")."""
    clean = as_2d(clean)
    hop = activity_hop_samples(sample_rate)
    if definition == "rms":
        return float(frame_energies(clean, hop).sum()), float(frame_energies(noise, hop).sum())
    clean_frames = frame_energies(clean, hop)
    mask = mask_from_energies(clean_frames, clean.shape, hop) if active_mask is None else np.asarray(active_mask, dtype=bool)
    return float(clean_frames[mask].sum()), float(frame_energies(noise, hop)[mask].sum())


def snr_db(clean: np.ndarray, noise: np.ndarray, sample_rate: float, definition: str,
           active_mask: np.ndarray | None = None) -> float:
    """SNR in dB of `clean` over `noise` (same shape) under one of SNR_DEFINITIONS.

    "active": clean energy / noise energy, both summed over the clean's active frames
    (`activity_mask(clean)`; pass it as `active_mask` to reuse it); "rms": whole-segment energy
    ratio; "loudness": integrated loudness of clean minus that of noise (LU).
    Returns +inf if the noise is silent where measured. Raises ValueError if the clean is silent
    (no active frames, no energy, or loudness -inf).
    """
    _check_definition(definition)
    _check_shapes(clean, noise)
    if definition == "loudness":
        clean_lufs = integrated_loudness_lufs(clean, sample_rate)
        if clean_lufs == -np.inf:
            raise ValueError("the clean is silent (loudness -inf LUFS): SNR is undefined")
        return clean_lufs - integrated_loudness_lufs(noise, sample_rate)
    clean_energy, noise_energy = _energies(clean, noise, sample_rate, definition, active_mask)
    if clean_energy == 0:
        raise ValueError(f"the clean is silent ({definition} SNR): SNR is undefined")
    return _db(clean_energy / noise_energy) if noise_energy else np.inf


def _loudness_gain(clean: np.ndarray, noise: np.ndarray, sample_rate: float, target_db: float) -> float:
    """Linear noise gain giving loudness(clean) - loudness(gain * noise) = target_db.

    Loudness shifts 1:1 with gain unless a block crosses the -70 LUFS absolute gate; the gain is
    corrected on the noise's block powers until the gated loudness hits the target (at most
    _LOUDNESS_MAX_CORRECTIONS times: a block landing exactly on a gate can leave a tiny residual).
    """
    clean_lufs = integrated_loudness_lufs(clean, sample_rate)
    if clean_lufs == -np.inf:
        raise ValueError("the clean is silent (loudness -inf LUFS): no noise gain gives a loudness SNR")
    wanted_lufs = clean_lufs - target_db
    if wanted_lufs <= ABSOLUTE_GATE_LUFS:
        raise ValueError(f"the noise would have to measure {wanted_lufs:.2f} LUFS, at or below the "
                         f"{ABSOLUTE_GATE_LUFS:.0f} LUFS absolute gate where loudness reads -inf")
    block_powers = loudness_block_powers(noise, sample_rate)
    if not block_powers.any():
        raise ValueError("the noise is silent: no noise gain reaches a finite loudness SNR")
    noise_lufs = gated_loudness_lufs(block_powers)
    if noise_lufs == -np.inf:  # everything under the absolute gate: start from the ungated loudness
        noise_lufs = _LOUDNESS_OFFSET_DB + _db(block_powers.mean())
    gain_db = wanted_lufs - noise_lufs
    for _ in range(_LOUDNESS_MAX_CORRECTIONS):
        error_lu = wanted_lufs - gated_loudness_lufs(block_powers * 10.0 ** (gain_db / 10.0))
        if abs(error_lu) <= _LOUDNESS_TOLERANCE_LU:
            break
        gain_db += error_lu
    return 10.0 ** (gain_db / 20.0)


def noise_gain_for_snr(clean: np.ndarray, noise: np.ndarray, sample_rate: float, definition: str, snr_db: float,
                       active_mask: np.ndarray | None = None) -> float:
    """Linear gain g such that `snr_db(clean, g * noise, sample_rate, definition)` equals `snr_db` (dB).

    Analytic: every definition moves 1:1 with the noise gain in dB (for "loudness", up to the
    -70 LUFS absolute gate, which is corrected for). `active_mask` as in `snr_db`.
    Raises ValueError if the noise is silent where measured, the clean is silent (no active frames),
    or ("loudness") the noise would have to sit at or below the -70 LUFS absolute gate.
    """
    _check_definition(definition)
    _check_shapes(clean, noise)
    if definition == "loudness":
        return _loudness_gain(clean, noise, sample_rate, snr_db)
    return _gain_for_energies(*_energies(clean, noise, sample_rate, definition, active_mask), definition, snr_db)


def noise_gain_from_energies(clean_frames: np.ndarray, noise_frames: np.ndarray, definition: str, snr_db: float,
                             active_mask: np.ndarray) -> float:
    """`noise_gain_for_snr` ("active" or "rms") from the `frame_energies` of the clean and the noise."""
    if definition == "active":
        clean_frames, noise_frames = clean_frames[active_mask], noise_frames[active_mask]
    return _gain_for_energies(float(clean_frames.sum()), float(noise_frames.sum()), definition, snr_db)


def _gain_for_energies(clean_energy: float, noise_energy: float, definition: str, snr_db: float) -> float:
    if clean_energy == 0:
        raise ValueError(f"the clean is silent ({definition} SNR): no noise gain defines an SNR")
    if noise_energy == 0:
        where = "over the clean's active frames" if definition == "active" else "everywhere"
        raise ValueError(f"the noise is silent {where}: no noise gain reaches {snr_db} dB SNR")
    return float(np.sqrt(clean_energy / (noise_energy * 10.0 ** (snr_db / 10.0))))


# ---------------------------------------------------------------- bandwidth

def _octave_smoothed_db(power: np.ndarray, width_oct: float) -> np.ndarray:
    """Mean of `power` (per linear-frequency bin) over a `width_oct`-octave band centred on each bin, in dB."""
    bins = np.arange(power.size)
    low = np.floor(bins * 2.0 ** (-width_oct / 2)).astype(np.int64)
    high = np.minimum(np.ceil(bins * 2.0 ** (width_oct / 2)).astype(np.int64), power.size - 1)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10((cumulative[high + 1] - cumulative[low]) / (high + 1 - low))


def _long_term_spectrum(audio: np.ndarray, n_fft: int) -> np.ndarray:
    """(n_fft // 2 + 1,) unscaled Welch power spectrum, averaged over frames and channels.

    Hann frames of `n_fft` samples, 50 % overlap, mean removed; transformed in batches to bound memory.
    """
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft, axis=-1)[:, :: max(1, n_fft // 2)]
    window = scipy.signal.get_window("hann", n_fft)
    total = np.zeros(n_fft // 2 + 1)
    for start in range(0, frames.shape[1], _BANDWIDTH_FRAMES_PER_BATCH):
        batch = frames[:, start:start + _BANDWIDTH_FRAMES_PER_BATCH]
        spectrum = np.fft.rfft((batch - batch.mean(axis=-1, keepdims=True)) * window, axis=-1)
        total += np.square(np.abs(spectrum)).sum(axis=(0, 1))
    return total / (frames.shape[0] * frames.shape[1])


def bandwidth_hz(audio: np.ndarray, sample_rate: float) -> float:
    """Effective bandwidth in Hz: the frequency above which the audio has essentially no content.

    From the long-term average spectrum (Welch, 4096-point Hann frames, channels averaged),
    smoothed over 1/6 octave (S, dB):
    - cliff: a frequency f is a cliff if S(f) is within 65 dB of the reference (max of S above 20 Hz)
      and lies >= 30 dB above everything from 1/6 octave above f up to Nyquist. If there is one,
      take the highest run of cliff frequencies, the plateau level 1/6 octave below its start, and
      return the highest frequency of the run still within 3 dB of the plateau: the cliff's -3 dB
      edge. Any noise or dither floor past the cliff is ignored, whatever its level.
    - otherwise: the highest frequency where S is within 65 dB of the reference (sample_rate / 2
      when content reaches Nyquist).
    Returns 0.0 for digital silence. Gain invariant.
    """
    audio = as_2d(audio)
    n_fft = min(BANDWIDTH_NFFT, audio.shape[1])
    power = _long_term_spectrum(audio, n_fft)
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    if not power.any():
        return 0.0
    level_db = _octave_smoothed_db(power, BANDWIDTH_SMOOTHING_OCT)
    reference_db = level_db[freqs_hz >= _BANDWIDTH_REFERENCE_MIN_HZ].max()
    content = level_db >= reference_db - BANDWIDTH_FLOOR_MARGIN_DB
    tail_max_db = np.maximum.accumulate(level_db[::-1])[::-1]
    above = np.ceil(np.arange(level_db.size) * 2.0 ** BANDWIDTH_CLIFF_SPAN_OCT).astype(np.int64)
    checkable = above < level_db.size
    cliff = np.zeros_like(content)
    cliff[checkable] = content[checkable] & (level_db[checkable] >= tail_max_db[above[checkable]] + BANDWIDTH_CLIFF_DB)
    if not cliff.any():
        return float(freqs_hz[np.flatnonzero(content)[-1]])
    top = np.flatnonzero(cliff)[-1]
    below_run = np.flatnonzero(~cliff[:top])
    run_start = below_run[-1] + 1 if below_run.size else 0
    plateau = int(np.floor(run_start * 2.0 ** -BANDWIDTH_CLIFF_SPAN_OCT))
    edge = plateau + np.flatnonzero(level_db[plateau:top + 1] >= level_db[plateau] - BANDWIDTH_EDGE_DB)[-1]
    return float(freqs_hz[edge])
