"""Signal building blocks shared by the generators: spectral shapes in dB, shaped Gaussian noise,
wavetable oscillators, envelopes, panning and gain staging.

Audio is float32 shaped (channels, samples) or (samples,); frequencies in Hz, levels in dB.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.fft

PEAK_DBFS = -3.0  # speech and music are peak-normalized to this


def sample_count(sample_rate: int, duration_s: float) -> int:
    """Samples in `duration_s` at `sample_rate` (rounded); refuses durations that give none."""
    n = int(round(duration_s * sample_rate))
    if n < 1:
        raise ValueError(f"duration_s={duration_s} gives no samples at {sample_rate} Hz")
    return n


def gain_to(audio: np.ndarray, peak_dbfs: float, rms_dbfs: float | None = None) -> np.ndarray:
    """Scale `audio` to `rms_dbfs` RMS (if given) but never above `peak_dbfs` peak -> float32."""
    peak = np.max(np.abs(audio))
    if peak == 0.0:
        return audio.astype(np.float32)
    gain = 10.0 ** (peak_dbfs / 20.0) / peak
    if rms_dbfs is not None:
        gain = min(gain, 10.0 ** (rms_dbfs / 20.0) / np.sqrt(np.mean(np.square(audio))))
    return (audio * gain).astype(np.float32)


def tilt_db(freq_hz: np.ndarray, db_per_octave: float, ref_hz: float = 1000.0) -> np.ndarray:
    """Spectral slope of `db_per_octave` through 0 dB at `ref_hz` (held below 1 Hz)."""
    return db_per_octave * np.log2(np.maximum(freq_hz, 1.0) / ref_hz)


def lowpass_db(freq_hz: np.ndarray, corner_hz: float, order: float) -> np.ndarray:
    """Butterworth-like magnitude (dB) of a lowpass, -6*order dB/octave above `corner_hz`."""
    return -10.0 * np.log10(1.0 + (freq_hz / corner_hz) ** (2.0 * order))


def highpass_db(freq_hz: np.ndarray, corner_hz: float, order: float) -> np.ndarray:
    """Butterworth-like magnitude (dB) of a highpass, -6*order dB/octave below `corner_hz`."""
    return -10.0 * np.log10(1.0 + (corner_hz / np.maximum(freq_hz, 1e-3 * corner_hz)) ** (2.0 * order))


def db_sum(*levels_db: np.ndarray) -> np.ndarray:
    """Power sum of levels in dB."""
    return 10.0 * np.log10(sum(10.0 ** (np.asarray(level) / 10.0) for level in levels_db))


def flat_db(freq_hz: np.ndarray) -> np.ndarray:
    """0 dB at every frequency (white)."""
    return np.zeros_like(freq_hz)


def shaped_noise(
    rng: np.random.Generator, sample_rate: int, n_samples: int, channels: int,
    gain_db: Callable[[np.ndarray], np.ndarray], correlation: float = 0.0,
) -> np.ndarray:
    """(channels, samples) stationary Gaussian noise with power spectrum shaped by `gain_db(freq_hz)`
    (dB, DC removed); any two channels correlate by `correlation`. Synthesized in the frequency domain."""
    spectra = rng.standard_normal((channels + 1, 2 * (n_samples // 2 + 1)), dtype=np.float32).view(np.complex64)
    gain = 10.0 ** (gain_db(np.fft.rfftfreq(n_samples, 1.0 / sample_rate).astype(np.float32)) / np.float32(20.0))
    gain[0] = 0.0
    spectra[1:] *= np.float32(np.sqrt(1.0 - correlation))
    spectra[1:] += np.float32(np.sqrt(correlation)) * spectra[0]
    spectra[1:] *= gain * np.float32(np.sqrt(n_samples / 2.0))
    return scipy.fft.irfft(spectra[1:], n=n_samples, axis=-1)


def slow_noise(rng: np.random.Generator, n_samples: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """(samples,) smooth random curve of about unit size, wandering at about `rate_hz` (raised-cosine
    interpolation between independent Gaussian knots)."""
    knots = rng.standard_normal(int(n_samples * rate_hz / sample_rate) + 2)
    grid = np.arange((len(knots) - 1) * 16 + 1) / 16.0  # raised cosine on a fine grid, then linear
    index = np.minimum(grid.astype(np.int64), len(knots) - 2)
    weight = 0.5 - 0.5 * np.cos(np.pi * (grid - index))
    curve = knots[index] * (1.0 - weight) + knots[index + 1] * weight
    return np.interp(np.arange(n_samples) * (rate_hz / sample_rate), grid, curve)


def fraction(x: np.ndarray) -> np.ndarray:
    """x mod 1 for x >= 0 (faster than np.mod)."""
    return x - np.floor(x)


def harmonic_table(amplitudes: np.ndarray, phases: np.ndarray, size: int = 16384) -> np.ndarray:
    """One period (size,) of sum_k amplitudes[k] * cos(2 pi (k+1) x + phases[k])."""
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amplitudes) + 1] = amplitudes * np.exp(1j * phases)
    return (np.fft.irfft(spectrum, n=size) * (size / 2.0)).astype(np.float32)


def oscillator(table: np.ndarray, freq_hz: np.ndarray, sample_rate: int, phase0: float = 0.0) -> np.ndarray:
    """Play one period `table` at the per-sample frequency `freq_hz` (samples,) -> (samples,).

    Nearest-sample lookup: with a 16384-point table the phase error stays below -80 dB."""
    phase = fraction(phase0 + np.cumsum(freq_hz) / sample_rate)
    return table[(phase * len(table)).astype(np.int32)]


def envelope(times_s: np.ndarray, levels: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """Piecewise-linear envelope (samples,) through breakpoints; zero outside them.

    times_s, levels: (segments, points) with segments in time order and not overlapping.
    """
    if times_s.size == 0:
        return np.zeros(n_samples)
    t = np.arange(n_samples) / sample_rate
    return np.interp(t, times_s.ravel(), levels.ravel(), left=0.0, right=0.0)


def trapezoids(onsets_s, durations_s, peaks, attack_s, release_s) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (segments, 4) of trapezoids rising over attack_s, falling over release_s."""
    times = np.stack([onsets_s, onsets_s + attack_s, onsets_s + durations_s - release_s, onsets_s + durations_s], axis=1)
    levels = np.stack([np.zeros_like(peaks), peaks, peaks, np.zeros_like(peaks)], axis=1)
    return times, levels


def pan_gains(position: float, channels: int) -> np.ndarray:
    """(channels,) constant-power gains placing a source at `position` in [0, 1] (left to right)."""
    distance = np.abs(position * (channels - 1) - np.arange(channels))
    return np.cos(0.5 * np.pi * np.clip(distance, 0.0, 1.0))


def place(track: np.ndarray, template: np.ndarray, starts: np.ndarray, gains: np.ndarray) -> None:
    """Add `gains[j] * template` into `track` (in place) at sample offsets `starts[j]`, cut at the end."""
    for start, gain in zip(starts, gains):
        length = min(len(template), len(track) - start)
        if length > 0:
            track[start : start + length] += gain * template[:length]
