"""Procedural noises: stationary ones (the noise corpus) and clearly non-stationary ones (which the
pipeline's stationarity filter must reject).

Each call draws its own variant from the passed generator; output is (channels, samples) float32
with partially correlated channels, RMS NOISE_RMS_DBFS +- NOISE_RMS_SPREAD_DB dBFS, peak at most MAX_PEAK_DBFS.
"""
from __future__ import annotations

import numpy as np

from .primitives import (
    db_sum, envelope, flat_db, gain_to, highpass_db, harmonic_table, lowpass_db, oscillator, place, sample_count,
    shaped_noise, slow_noise, tilt_db, trapezoids,
)

NOISE_RMS_DBFS = -30.0  # stationary and non-stationary noises: RMS drawn in NOISE_RMS_DBFS +- NOISE_RMS_SPREAD_DB
NOISE_RMS_SPREAD_DB = 6.0
MAX_PEAK_DBFS = -1.0  # no generated noise peaks above this


def _noise_level_dbfs(rng: np.random.Generator) -> float:
    return NOISE_RMS_DBFS + rng.uniform(-NOISE_RMS_SPREAD_DB, NOISE_RMS_SPREAD_DB)


# --------------------------------------------------------------------------------------------
# stationary noises


def _broadband(rng: np.random.Generator, sample_rate: int, n_samples: int, channels: int, gain_db) -> np.ndarray:
    """Noise shaped by `gain_db` with channels correlated by 0.3-0.9."""
    return shaped_noise(rng, sample_rate, n_samples, channels, gain_db, rng.uniform(0.3, 0.9))


def _white(rng, sample_rate, n_samples, channels):
    return _broadband(rng, sample_rate, n_samples, channels, flat_db)


def _pink(rng, sample_rate, n_samples, channels):
    slope, corner = rng.uniform(-3.5, -2.5), rng.uniform(10.0, 20.0)
    return _broadband(rng, sample_rate, n_samples, channels, lambda f: tilt_db(f, slope) + highpass_db(f, corner, 1))


def _brown(rng, sample_rate, n_samples, channels):
    slope, corner = rng.uniform(-6.5, -5.5), rng.uniform(10.0, 20.0)
    return _broadband(rng, sample_rate, n_samples, channels, lambda f: tilt_db(f, slope) + highpass_db(f, corner, 1))


def _hiss(rng, sample_rate, n_samples, channels):
    """Tape hiss: white noise lifted by a high shelf above a few kHz, rolled off near the top."""
    corner, lift_db, top = rng.uniform(1500.0, 4000.0), rng.uniform(8.0, 15.0), rng.uniform(14000.0, 20000.0)
    return _broadband(
        rng, sample_rate, n_samples, channels,
        lambda f: db_sum(highpass_db(f, corner, 1), np.full_like(f, -lift_db)) + lowpass_db(f, top, 2),
    )


def _tones(rng, sample_rate, n_samples, channels, freq_hz: np.ndarray, levels_db: np.ndarray) -> np.ndarray:
    """(channels, samples) harmonic tone complex on the fundamental track `freq_hz` (samples,), with
    harmonic k at levels_db[k-1], band-limited below Nyquist, slight level differences between channels."""
    n_harmonics = min(len(levels_db), int(0.45 * sample_rate / np.max(freq_hz)))
    amplitudes = 10.0 ** (levels_db[:n_harmonics] / 20.0)
    table = harmonic_table(amplitudes, rng.uniform(0.0, 2.0 * np.pi, n_harmonics))
    tone = oscillator(table, freq_hz, sample_rate, rng.uniform())
    return tone * 10.0 ** (rng.normal(0.0, 0.5, (channels, 1)) / 20.0)


def _hum(rng, sample_rate, n_samples, channels):
    """Mains hum: 50 or 60 Hz and harmonics (the second often strongest) over a faint pink floor."""
    mains_hz = rng.choice([50.0, 60.0]) * (1.0 + rng.normal(0.0, 0.001))
    harmonic = np.arange(1, 41)
    levels_db = -rng.uniform(3.0, 9.0) * np.log2(harmonic) + rng.normal(0.0, 3.0, harmonic.size)
    levels_db[1] += rng.uniform(0.0, 8.0)
    tones = _tones(rng, sample_rate, n_samples, channels, np.full(n_samples, mains_hz), levels_db)
    floor = _broadband(rng, sample_rate, n_samples, channels, lambda f: tilt_db(f, -3.0))
    floor *= np.std(tones) / np.std(floor) * 10.0 ** (-rng.uniform(25.0, 35.0) / 20.0)
    return tones + floor


def _fan(rng, sample_rate, n_samples, channels):
    """Fan: lowpassed broadband air noise plus blade-pass tones, both with a slow subtle wobble."""
    corner, slope = rng.uniform(600.0, 2500.0), rng.uniform(-3.0, -1.0)
    air = _broadband(rng, sample_rate, n_samples, channels, lambda f: tilt_db(f, slope) + lowpass_db(f, corner, 1.5))
    blade_hz = rng.integers(5, 10) * rng.uniform(900.0, 2400.0) / 60.0
    wobble_rate_hz = rng.uniform(0.1, 0.5)
    blade_track = blade_hz * (1.0 + rng.uniform(0.001, 0.004) * slow_noise(rng, n_samples, sample_rate, wobble_rate_hz))
    levels_db = np.array([0.0, -6.0, -10.0, -14.0]) + rng.normal(0.0, 2.0, 4)
    tones = _tones(rng, sample_rate, n_samples, channels, blade_track, levels_db)
    tones *= np.std(air) / np.std(tones) * 10.0 ** (-rng.uniform(6.0, 15.0) / 20.0)
    level_wobble_db = rng.uniform(0.2, 0.5) * slow_noise(rng, n_samples, sample_rate, wobble_rate_hz)
    return (air + tones) * 10.0 ** (level_wobble_db / 20.0)


def _hvac(rng, sample_rate, n_samples, channels):
    """Air handling / room tone: low rumble below a few hundred Hz plus a softer broadband hush."""
    rumble_hz, hush_db = rng.uniform(80.0, 300.0), -rng.uniform(15.0, 25.0)
    top_hz = rng.uniform(3000.0, 10000.0)
    return _broadband(
        rng, sample_rate, n_samples, channels,
        lambda f: db_sum(
            lowpass_db(f, rumble_hz, 2) + highpass_db(f, 25.0, 2),
            hush_db + tilt_db(f, -2.0, rumble_hz) + lowpass_db(f, top_hz, 1),
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
    noise = _NOISES[noise_type](rng, sample_rate, sample_count(sample_rate, duration_s), channels)
    return gain_to(noise, MAX_PEAK_DBFS, _noise_level_dbfs(rng))


# --------------------------------------------------------------------------------------------
# non-stationary noises (for showing that the pipeline rejects them)


def _bursts(rng, sample_rate, n_samples, duration_s):
    """Envelope (samples,): bursts of 0.1-0.8 s separated by 0.2-1.5 s gaps 30-45 dB down."""
    count = int(duration_s / 0.3) + 2
    on_s, gap_s = rng.uniform(0.1, 0.8, count), rng.uniform(0.2, 1.5, count)
    onsets_s = np.cumsum(on_s + gap_s) - on_s
    times, levels = trapezoids(onsets_s, on_s, np.ones(count), 0.01, 0.02)
    floor = 10.0 ** (-rng.uniform(30.0, 45.0) / 20.0)
    return envelope(times, levels, n_samples, sample_rate) + floor


def _babble_modulated(rng, sample_rate, n_samples, duration_s):
    """Envelope (samples,): syllable-like bumps at 3-6 per second, 20-30 dB deep."""
    count = int(duration_s * 6.0) + 2
    period_s = 1.0 / rng.uniform(3.0, 6.0) * rng.lognormal(0.0, 0.2, count)
    onsets_s = np.cumsum(period_s) - period_s
    times, levels = trapezoids(onsets_s, 0.8 * period_s, rng.uniform(0.4, 1.0, count), 0.25 * period_s, 0.35 * period_s)
    return envelope(times, levels, n_samples, sample_rate) + 10.0 ** (-rng.uniform(20.0, 30.0) / 20.0)


def _fade_in(rng, sample_rate, n_samples, duration_s):
    """Envelope (samples,): rising 30-50 dB (linearly in dB) over the whole recording."""
    rise_db = rng.uniform(30.0, 50.0)
    return 10.0 ** (rise_db * (np.arange(n_samples) / n_samples - 1.0) / 20.0)


_MODULATIONS = {"bursts": _bursts, "babble_modulated": _babble_modulated, "fade_in": _fade_in}  # of pink noise


def _door_slams(rng, sample_rate, n_samples, channels):
    """Decaying thud-and-rattle impulses (one per 1-4 s, the first within 4 s) on a pink floor whose
    RMS is 50-65 dB below the peak of a full-strength slam."""
    duration_s = n_samples / sample_rate
    onsets_s = np.cumsum(rng.uniform(1.0, 4.0, int(duration_s) + 1)) - rng.uniform(0.0, 1.0)
    onsets = (np.clip(onsets_s, 0.0, None) * sample_rate).astype(np.int64)
    t = np.arange(int(0.6 * sample_rate)) / sample_rate
    thud = np.sin(2.0 * np.pi * rng.uniform(40.0, 90.0) * t) * np.exp(-t / rng.uniform(0.05, 0.12))
    rattle_hz = rng.uniform(2000.0, 6000.0)
    rattle = shaped_noise(rng, sample_rate, t.size, 1, lambda f: lowpass_db(f, rattle_hz, 1))[0]
    slam = thud + 0.5 * rattle / np.std(rattle) * np.exp(-t / rng.uniform(0.03, 0.1))
    floor = _pink(rng, sample_rate, n_samples, channels)
    track = np.zeros(n_samples)
    place(track, slam, onsets, rng.uniform(0.5, 1.0, onsets.size))
    floor *= np.max(np.abs(slam)) / np.std(floor) * 10.0 ** (-rng.uniform(50.0, 65.0) / 20.0)
    return floor + track * 10.0 ** (rng.normal(0.0, 1.0, (channels, 1)) / 20.0)


NONSTATIONARY_TYPES: tuple[str, ...] = (*_MODULATIONS, "door_slams")


def nonstationary_noise(
    rng: np.random.Generator, kind: str, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Clearly non-stationary noise of `kind` (one of NONSTATIONARY_TYPES) -> (channels, samples) float32.

    "bursts": noise bursts on a floor 30-45 dB down; "babble_modulated": noise modulated at syllable
    rate like speech; "fade_in": noise rising 30-50 dB over the recording; "door_slams": impulses on a
    quiet floor. Level as `stationary_noise` (RMS around NOISE_RMS_DBFS), peaks held below MAX_PEAK_DBFS.
    """
    n_samples = sample_count(sample_rate, duration_s)
    if kind == "door_slams":
        noise = _door_slams(rng, sample_rate, n_samples, channels)
    elif kind in _MODULATIONS:
        noise = _pink(rng, sample_rate, n_samples, channels) * _MODULATIONS[kind](rng, sample_rate, n_samples, duration_s)
    else:
        raise ValueError(f"unknown non-stationary kind {kind!r}; expected one of {NONSTATIONARY_TYPES}")
    return gain_to(noise, MAX_PEAK_DBFS, _noise_level_dbfs(rng))
