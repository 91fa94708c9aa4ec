"""Procedural demo corpus: stationary noises, non-stationary noises, speech-like and music-like audio.

Lets the whole pipeline run on a fresh machine with no recordings. Every generator is a pure
function of its arguments, with randomness only from the passed `numpy.random.Generator`, and is
vectorized numpy (Python loops run over notes, syllables or partials, never over samples).
Audio is float32 shaped (channels, samples) in [-1, 1]. `materialize` is the only I/O: it writes
the corpus as 24-bit FLAC files, idempotently and atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

# Bumped whenever a generator changes its output: part of every file's tag and of the `.complete` marker.
SYNTH_VERSION = 1

NOISE_RMS_DBFS = -30.0  # stationary and non-stationary noises: RMS drawn in NOISE_RMS_DBFS +- NOISE_RMS_SPREAD_DB
NOISE_RMS_SPREAD_DB = 6.0
PEAK_DBFS = -3.0  # speech and music are peak-normalized to this
MAX_PEAK_DBFS = -1.0  # no generated noise peaks above this


# --------------------------------------------------------------------------------------------
# shared building blocks


def _n_samples(sample_rate: int, duration_s: float) -> int:
    n = int(round(duration_s * sample_rate))
    if n < 1:
        raise ValueError(f"duration_s={duration_s} gives no samples at {sample_rate} Hz")
    return n


def _gain_to(audio: np.ndarray, peak_dbfs: float, rms_dbfs: float | None = None) -> np.ndarray:
    """Scale `audio` to `rms_dbfs` RMS (if given) but never above `peak_dbfs` peak -> float32."""
    peak = np.max(np.abs(audio))
    if peak == 0.0:
        return audio.astype(np.float32)
    gain = 10.0 ** (peak_dbfs / 20.0) / peak
    if rms_dbfs is not None:
        gain = min(gain, 10.0 ** (rms_dbfs / 20.0) / np.sqrt(np.mean(np.square(audio))))
    return (audio * gain).astype(np.float32)


def _noise_level_dbfs(rng: np.random.Generator) -> float:
    return NOISE_RMS_DBFS + rng.uniform(-NOISE_RMS_SPREAD_DB, NOISE_RMS_SPREAD_DB)


def _tilt_db(freq_hz: np.ndarray, db_per_octave: float, ref_hz: float = 1000.0) -> np.ndarray:
    """Spectral slope of `db_per_octave` through 0 dB at `ref_hz` (held below 1 Hz)."""
    return db_per_octave * np.log2(np.maximum(freq_hz, 1.0) / ref_hz)


def _lowpass_db(freq_hz: np.ndarray, corner_hz: float, order: float) -> np.ndarray:
    """Butterworth-like magnitude (dB) of a lowpass, -6*order dB/octave above `corner_hz`."""
    return -10.0 * np.log10(1.0 + (freq_hz / corner_hz) ** (2.0 * order))


def _highpass_db(freq_hz: np.ndarray, corner_hz: float, order: float) -> np.ndarray:
    """Butterworth-like magnitude (dB) of a highpass, -6*order dB/octave below `corner_hz`."""
    return -10.0 * np.log10(1.0 + (corner_hz / np.maximum(freq_hz, 1e-3)) ** (2.0 * order))


def _db_sum(*levels_db: np.ndarray) -> np.ndarray:
    """Power sum of levels in dB."""
    return 10.0 * np.log10(sum(10.0 ** (np.asarray(level) / 10.0) for level in levels_db))


def _shape(noise: np.ndarray, sample_rate: int, gain_db: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter (..., samples) `noise` by the zero-phase magnitude `gain_db(freq_hz)` (dB), DC removed."""
    n = noise.shape[-1]
    freq_hz = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gain = 10.0 ** (gain_db(freq_hz) / 20.0)
    gain[0] = 0.0
    return np.fft.irfft(np.fft.rfft(noise, axis=-1) * gain, n=n, axis=-1)


def _correlated_noise(rng: np.random.Generator, channels: int, n_samples: int, correlation: float) -> np.ndarray:
    """(channels, samples) unit-variance white Gaussian noise; any two channels correlate by `correlation`."""
    common = rng.standard_normal(n_samples)
    own = rng.standard_normal((channels, n_samples))
    return np.sqrt(correlation) * common + np.sqrt(1.0 - correlation) * own


def _slow_noise(rng: np.random.Generator, n_samples: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """(samples,) smooth random curve of about unit size, wandering at about `rate_hz` (raised-cosine
    interpolation between independent Gaussian knots)."""
    position = np.arange(n_samples) * (rate_hz / sample_rate)
    knots = rng.standard_normal(int(position[-1]) + 2)
    index = position.astype(np.int64)
    weight = 0.5 - 0.5 * np.cos(np.pi * (position - index))
    return knots[index] * (1.0 - weight) + knots[index + 1] * weight


def _harmonic_table(amplitudes: np.ndarray, phases: np.ndarray, size: int = 4096) -> np.ndarray:
    """One period (size,) of sum_k amplitudes[k] * cos(2 pi (k+1) x + phases[k])."""
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amplitudes) + 1] = amplitudes * np.exp(1j * phases)
    return np.fft.irfft(spectrum, n=size) * (size / 2.0)


def _oscillator(table: np.ndarray, freq_hz: np.ndarray, sample_rate: int, phase0: float = 0.0) -> np.ndarray:
    """Play one period `table` at the per-sample frequency `freq_hz` (samples,) -> (samples,)."""
    phase = (phase0 + np.cumsum(freq_hz) / sample_rate) % 1.0
    size = len(table)
    return np.interp(phase * size, np.arange(size + 1), np.append(table, table[0]))


def _envelope(times_s: np.ndarray, levels: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """Piecewise-linear envelope (samples,) through breakpoints; zero outside them.

    times_s, levels: (segments, points) with segments in time order and not overlapping.
    """
    t = np.arange(n_samples) / sample_rate
    return np.interp(t, times_s.ravel(), levels.ravel(), left=0.0, right=0.0)


def _pan_gains(position: float, channels: int) -> np.ndarray:
    """(channels,) constant-power gains placing a source at `position` in [0, 1] (left to right)."""
    distance = np.abs(position * (channels - 1) - np.arange(channels))
    return np.cos(0.5 * np.pi * np.clip(distance, 0.0, 1.0))


def _place(track: np.ndarray, template: np.ndarray, starts: np.ndarray, gains: np.ndarray) -> None:
    """Add `gains[j] * template` into `track` (in place) at sample offsets `starts[j]`, cut at the end."""
    for start, gain in zip(starts, gains):
        length = min(len(template), len(track) - start)
        if length > 0:
            track[start : start + length] += gain * template[:length]


# --------------------------------------------------------------------------------------------
# stationary noises


def _broadband(rng: np.random.Generator, sample_rate: int, n_samples: int, channels: int, gain_db) -> np.ndarray:
    return _shape(_correlated_noise(rng, channels, n_samples, rng.uniform(0.3, 0.9)), sample_rate, gain_db)


def _white(rng, sample_rate, n_samples, channels):
    return _correlated_noise(rng, channels, n_samples, rng.uniform(0.3, 0.9))


def _pink(rng, sample_rate, n_samples, channels):
    slope, corner = rng.uniform(-3.5, -2.5), rng.uniform(10.0, 20.0)
    return _broadband(rng, sample_rate, n_samples, channels, lambda f: _tilt_db(f, slope) + _highpass_db(f, corner, 1))


def _brown(rng, sample_rate, n_samples, channels):
    slope, corner = rng.uniform(-6.5, -5.5), rng.uniform(10.0, 20.0)
    return _broadband(rng, sample_rate, n_samples, channels, lambda f: _tilt_db(f, slope) + _highpass_db(f, corner, 1))


def _hiss(rng, sample_rate, n_samples, channels):
    """Tape hiss: white noise lifted by a high shelf above a few kHz, rolled off near the top."""
    corner, lift_db, top = rng.uniform(1500.0, 4000.0), rng.uniform(8.0, 15.0), rng.uniform(14000.0, 20000.0)
    return _broadband(
        rng, sample_rate, n_samples, channels,
        lambda f: _db_sum(_highpass_db(f, corner, 1), np.full_like(f, -lift_db)) + _lowpass_db(f, top, 2),
    )


def _tones(rng, sample_rate, n_samples, channels, freq_hz: np.ndarray, levels_db: np.ndarray) -> np.ndarray:
    """(channels, samples) harmonic tone complex on the fundamental track `freq_hz` (samples,), with
    harmonic k at levels_db[k-1], band-limited below Nyquist, slight level differences between channels."""
    n_harmonics = min(len(levels_db), int(0.45 * sample_rate / np.max(freq_hz)))
    amplitudes = 10.0 ** (levels_db[:n_harmonics] / 20.0)
    table = _harmonic_table(amplitudes, rng.uniform(0.0, 2.0 * np.pi, n_harmonics))
    tone = _oscillator(table, freq_hz, sample_rate, rng.uniform())
    return tone * 10.0 ** (rng.normal(0.0, 0.5, (channels, 1)) / 20.0)


def _hum(rng, sample_rate, n_samples, channels):
    """Mains hum: 50 or 60 Hz and harmonics (the second often strongest) over a faint pink floor."""
    mains_hz = rng.choice([50.0, 60.0]) * (1.0 + rng.normal(0.0, 0.001))
    harmonic = np.arange(1, 41)
    levels_db = -rng.uniform(3.0, 9.0) * np.log2(harmonic) + rng.normal(0.0, 3.0, harmonic.size)
    levels_db[1] += rng.uniform(0.0, 8.0)
    tones = _tones(rng, sample_rate, n_samples, channels, np.full(n_samples, mains_hz), levels_db)
    floor = _broadband(rng, sample_rate, n_samples, channels, lambda f: _tilt_db(f, -3.0))
    floor *= np.std(tones) / np.std(floor) * 10.0 ** (-rng.uniform(25.0, 35.0) / 20.0)
    return tones + floor


def _fan(rng, sample_rate, n_samples, channels):
    """Fan: lowpassed broadband air noise plus blade-pass tones, both with a slow subtle wobble."""
    corner, slope = rng.uniform(600.0, 2500.0), rng.uniform(-3.0, -1.0)
    air = _broadband(rng, sample_rate, n_samples, channels, lambda f: _tilt_db(f, slope) + _lowpass_db(f, corner, 1.5))
    blade_hz = rng.integers(5, 10) * rng.uniform(900.0, 2400.0) / 60.0
    wobble_rate_hz = rng.uniform(0.1, 0.5)
    blade_track = blade_hz * (1.0 + rng.uniform(0.001, 0.004) * _slow_noise(rng, n_samples, sample_rate, wobble_rate_hz))
    levels_db = np.array([0.0, -6.0, -10.0, -14.0]) + rng.normal(0.0, 2.0, 4)
    tones = _tones(rng, sample_rate, n_samples, channels, blade_track, levels_db)
    tones *= np.std(air) / np.std(tones) * 10.0 ** (-rng.uniform(6.0, 15.0) / 20.0)
    level_wobble_db = rng.uniform(0.2, 0.5) * _slow_noise(rng, n_samples, sample_rate, wobble_rate_hz)
    return (air + tones) * 10.0 ** (level_wobble_db / 20.0)


def _hvac(rng, sample_rate, n_samples, channels):
    """Air handling / room tone: low rumble below a few hundred Hz plus a softer broadband hush."""
    rumble_hz, hush_db = rng.uniform(80.0, 300.0), -rng.uniform(15.0, 25.0)
    top_hz = rng.uniform(3000.0, 10000.0)
    return _broadband(
        rng, sample_rate, n_samples, channels,
        lambda f: _db_sum(
            _lowpass_db(f, rumble_hz, 2) + _highpass_db(f, 25.0, 2),
            hush_db + _tilt_db(f, -2.0, rumble_hz) + _lowpass_db(f, top_hz, 1),
        ),
    )


_NOISES = {"white": _white, "pink": _pink, "brown": _brown, "hum": _hum, "hiss": _hiss, "fan": _fan, "hvac": _hvac}
NOISE_TYPES: tuple[str, ...] = tuple(_NOISES)


def stationary_noise(
    rng: np.random.Generator, noise_type: str, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Stationary noise of `noise_type` (one of NOISE_TYPES) -> (channels, samples) float32.

    Each call draws its own variant (tilt, mains frequency and harmonic weights, blade rate...);
    channels are partially correlated; RMS is NOISE_RMS_DBFS +- NOISE_RMS_SPREAD_DB dBFS.
    """
    if noise_type not in _NOISES:
        raise ValueError(f"unknown noise type {noise_type!r}; expected one of {NOISE_TYPES}")
    noise = _NOISES[noise_type](rng, sample_rate, _n_samples(sample_rate, duration_s), channels)
    return _gain_to(noise, MAX_PEAK_DBFS, _noise_level_dbfs(rng))


# --------------------------------------------------------------------------------------------
# non-stationary noises (for showing that the pipeline rejects them)


def _trapezoids(onsets_s, durations_s, peaks, attack_s, release_s) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (segments, 4) of trapezoids rising over attack_s, falling over release_s."""
    times = np.stack([onsets_s, onsets_s + attack_s, onsets_s + durations_s - release_s, onsets_s + durations_s], axis=1)
    levels = np.stack([np.zeros_like(peaks), peaks, peaks, np.zeros_like(peaks)], axis=1)
    return times, levels


def _bursts(rng, sample_rate, n_samples, duration_s):
    """Pink-ish noise bursts of 0.1-0.8 s separated by 0.2-1.5 s gaps 30-45 dB down."""
    count = int(duration_s / 0.3) + 2
    on_s, gap_s = rng.uniform(0.1, 0.8, count), rng.uniform(0.2, 1.5, count)
    onsets_s = np.cumsum(on_s + gap_s) - on_s
    times, levels = _trapezoids(onsets_s, on_s, np.ones(count), 0.01, 0.02)
    floor = 10.0 ** (-rng.uniform(30.0, 45.0) / 20.0)
    return _envelope(times, levels, n_samples, sample_rate) + floor


def _babble_modulated(rng, sample_rate, n_samples, duration_s):
    """Speech-shaped noise amplitude-modulated by syllable-like bumps at 3-6 per second, 20-30 dB deep."""
    count = int(duration_s * 6.0) + 2
    period_s = 1.0 / rng.uniform(3.0, 6.0) * rng.lognormal(0.0, 0.2, count)
    onsets_s = np.cumsum(period_s) - period_s
    times, levels = _trapezoids(onsets_s, 0.8 * period_s, rng.uniform(0.4, 1.0, count), 0.25 * period_s, 0.35 * period_s)
    return _envelope(times, levels, n_samples, sample_rate) + 10.0 ** (-rng.uniform(20.0, 30.0) / 20.0)


def _fade_in(rng, sample_rate, n_samples, duration_s):
    """Level rising 30-50 dB (linearly in dB) over the whole recording."""
    rise_db = rng.uniform(30.0, 50.0)
    return 10.0 ** (rise_db * (np.arange(n_samples) / n_samples - 1.0) / 20.0)


_MODULATIONS = {"bursts": _bursts, "babble_modulated": _babble_modulated, "fade_in": _fade_in}


def _door_slams(rng, sample_rate, n_samples, channels):
    """Decaying thud-and-rattle impulses (one per 2-6 s) on a floor 50-65 dB below their peaks."""
    duration_s = n_samples / sample_rate
    onsets_s = np.cumsum(rng.uniform(2.0, 6.0, int(duration_s / 2.0) + 1)) - rng.uniform(1.0, 2.0)
    onsets = (np.clip(onsets_s, 0.0, None) * sample_rate).astype(np.int64)
    t = np.arange(int(0.6 * sample_rate)) / sample_rate
    thud = np.sin(2.0 * np.pi * rng.uniform(40.0, 90.0) * t) * np.exp(-t / rng.uniform(0.05, 0.12))
    rattle = _shape(rng.standard_normal(t.size), sample_rate, lambda f: _lowpass_db(f, rng.uniform(2000.0, 6000.0), 1))
    slam = thud + 0.5 * rattle / np.std(rattle) * np.exp(-t / rng.uniform(0.03, 0.1))
    out = 10.0 ** (-rng.uniform(50.0, 65.0) / 20.0) * _pink(rng, sample_rate, n_samples, channels)
    track = np.zeros(n_samples)
    _place(track, slam, onsets, rng.uniform(0.5, 1.0, onsets.size))
    return out + track * 10.0 ** (rng.normal(0.0, 1.0, (channels, 1)) / 20.0)


NONSTATIONARY_TYPES: tuple[str, ...] = (*_MODULATIONS, "door_slams")


def nonstationary_noise(
    rng: np.random.Generator, kind: str, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Clearly non-stationary noise of `kind` (one of NONSTATIONARY_TYPES) -> (channels, samples) float32.

    "bursts": noise bursts on a floor 30-45 dB down; "babble_modulated": noise modulated at syllable
    rate like speech; "fade_in": noise rising 30-50 dB over the recording; "door_slams": impulses on a
    quiet floor. Level as `stationary_noise` (RMS around NOISE_RMS_DBFS), peaks held below MAX_PEAK_DBFS.
    """
    n_samples = _n_samples(sample_rate, duration_s)
    if kind == "door_slams":
        noise = _door_slams(rng, sample_rate, n_samples, channels)
    elif kind in _MODULATIONS:
        noise = _pink(rng, sample_rate, n_samples, channels) * _MODULATIONS[kind](rng, sample_rate, n_samples, duration_s)
    else:
        raise ValueError(f"unknown non-stationary kind {kind!r}; expected one of {NONSTATIONARY_TYPES}")
    return _gain_to(noise, MAX_PEAK_DBFS, _noise_level_dbfs(rng))
