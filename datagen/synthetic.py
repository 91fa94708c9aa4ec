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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.fft
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
    return -10.0 * np.log10(1.0 + (corner_hz / np.maximum(freq_hz, 1e-3 * corner_hz)) ** (2.0 * order))


def _db_sum(*levels_db: np.ndarray) -> np.ndarray:
    """Power sum of levels in dB."""
    return 10.0 * np.log10(sum(10.0 ** (np.asarray(level) / 10.0) for level in levels_db))


def _noise(
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


def _flat_db(freq_hz: np.ndarray) -> np.ndarray:
    return np.zeros_like(freq_hz)


def _slow_noise(rng: np.random.Generator, n_samples: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """(samples,) smooth random curve of about unit size, wandering at about `rate_hz` (raised-cosine
    interpolation between independent Gaussian knots)."""
    knots = rng.standard_normal(int(n_samples * rate_hz / sample_rate) + 2)
    grid = np.arange((len(knots) - 1) * 16 + 1) / 16.0  # raised cosine on a fine grid, then linear
    index = np.minimum(grid.astype(np.int64), len(knots) - 2)
    weight = 0.5 - 0.5 * np.cos(np.pi * (grid - index))
    curve = knots[index] * (1.0 - weight) + knots[index + 1] * weight
    return np.interp(np.arange(n_samples) * (rate_hz / sample_rate), grid, curve)


def _fraction(x: np.ndarray) -> np.ndarray:
    """x mod 1 for x >= 0 (faster than np.mod)."""
    return x - np.floor(x)


def _harmonic_table(amplitudes: np.ndarray, phases: np.ndarray, size: int = 16384) -> np.ndarray:
    """One period (size,) of sum_k amplitudes[k] * cos(2 pi (k+1) x + phases[k])."""
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amplitudes) + 1] = amplitudes * np.exp(1j * phases)
    return (np.fft.irfft(spectrum, n=size) * (size / 2.0)).astype(np.float32)


def _oscillator(table: np.ndarray, freq_hz: np.ndarray, sample_rate: int, phase0: float = 0.0) -> np.ndarray:
    """Play one period `table` at the per-sample frequency `freq_hz` (samples,) -> (samples,).

    Nearest-sample lookup: with a 16384-point table the phase error stays below -80 dB."""
    phase = _fraction(phase0 + np.cumsum(freq_hz) / sample_rate)
    return table[(phase * len(table)).astype(np.int32)]


def _envelope(times_s: np.ndarray, levels: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """Piecewise-linear envelope (samples,) through breakpoints; zero outside them.

    times_s, levels: (segments, points) with segments in time order and not overlapping.
    """
    if times_s.size == 0:
        return np.zeros(n_samples)
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
    """Noise shaped by `gain_db` with channels correlated by 0.3-0.9."""
    return _noise(rng, sample_rate, n_samples, channels, gain_db, rng.uniform(0.3, 0.9))


def _white(rng, sample_rate, n_samples, channels):
    return _broadband(rng, sample_rate, n_samples, channels, _flat_db)


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
    """Envelope (samples,): bursts of 0.1-0.8 s separated by 0.2-1.5 s gaps 30-45 dB down."""
    count = int(duration_s / 0.3) + 2
    on_s, gap_s = rng.uniform(0.1, 0.8, count), rng.uniform(0.2, 1.5, count)
    onsets_s = np.cumsum(on_s + gap_s) - on_s
    times, levels = _trapezoids(onsets_s, on_s, np.ones(count), 0.01, 0.02)
    floor = 10.0 ** (-rng.uniform(30.0, 45.0) / 20.0)
    return _envelope(times, levels, n_samples, sample_rate) + floor


def _babble_modulated(rng, sample_rate, n_samples, duration_s):
    """Envelope (samples,): syllable-like bumps at 3-6 per second, 20-30 dB deep."""
    count = int(duration_s * 6.0) + 2
    period_s = 1.0 / rng.uniform(3.0, 6.0) * rng.lognormal(0.0, 0.2, count)
    onsets_s = np.cumsum(period_s) - period_s
    times, levels = _trapezoids(onsets_s, 0.8 * period_s, rng.uniform(0.4, 1.0, count), 0.25 * period_s, 0.35 * period_s)
    return _envelope(times, levels, n_samples, sample_rate) + 10.0 ** (-rng.uniform(20.0, 30.0) / 20.0)


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
    rattle = _noise(rng, sample_rate, t.size, 1, lambda f: _lowpass_db(f, rattle_hz, 1))[0]
    slam = thud + 0.5 * rattle / np.std(rattle) * np.exp(-t / rng.uniform(0.03, 0.1))
    floor = _pink(rng, sample_rate, n_samples, channels)
    track = np.zeros(n_samples)
    _place(track, slam, onsets, rng.uniform(0.5, 1.0, onsets.size))
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
    n_samples = _n_samples(sample_rate, duration_s)
    if kind == "door_slams":
        noise = _door_slams(rng, sample_rate, n_samples, channels)
    elif kind in _MODULATIONS:
        noise = _pink(rng, sample_rate, n_samples, channels) * _MODULATIONS[kind](rng, sample_rate, n_samples, duration_s)
    else:
        raise ValueError(f"unknown non-stationary kind {kind!r}; expected one of {NONSTATIONARY_TYPES}")
    return _gain_to(noise, MAX_PEAK_DBFS, _noise_level_dbfs(rng))


# --------------------------------------------------------------------------------------------
# short-time Fourier processing (time-varying filters)


def _sine_window(n_fft: int) -> np.ndarray:
    """Square root of a periodic Hann window: as analysis and synthesis window at hop n_fft/2 it
    reconstructs exactly."""
    return np.sin(np.pi * np.arange(n_fft) / n_fft).astype(np.float32)


def _stft(signal: np.ndarray, n_fft: int) -> np.ndarray:
    """(frames, n_fft//2+1) complex spectra of sine-windowed frames at hop n_fft/2; frame j is
    centred on sample (j-1)*n_fft/2, and every sample lies in two frames."""
    hop = n_fft // 2
    padded = np.pad(signal.astype(np.float32), (n_fft, n_fft + (-len(signal)) % hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return scipy.fft.rfft(frames * _sine_window(n_fft), axis=-1)


def _istft(spectra: np.ndarray, n_fft: int, n_samples: int) -> np.ndarray:
    """Overlap-add inverse of `_stft` -> (n_samples,)."""
    frames = scipy.fft.irfft(spectra, n=n_fft, axis=-1) * _sine_window(n_fft)
    out = np.zeros((len(frames) + 1) * (n_fft // 2), dtype=np.float32)
    for offset in range(2):  # even frames, then odd frames, each tile the signal without overlap
        tiled = frames[offset::2].ravel()
        out[offset * n_fft // 2 : offset * n_fft // 2 + tiled.size] += tiled
    return out[n_fft : n_fft + n_samples]


def _minimum_phase(magnitude: np.ndarray, n_fft: int) -> np.ndarray:
    """Minimum-phase spectra (..., n_fft//2+1) with the given positive magnitude (folded cepstrum)."""
    cepstrum = scipy.fft.irfft(np.log(magnitude), n=n_fft, axis=-1)
    fold = np.zeros(n_fft, dtype=cepstrum.dtype)
    fold[0] = fold[n_fft // 2] = 1.0
    fold[1 : n_fft // 2] = 2.0
    phase = scipy.fft.rfft(cepstrum * fold, axis=-1).imag
    return magnitude * (np.cos(phase) + 1j * np.sin(phase))


# --------------------------------------------------------------------------------------------
# speech-like


@dataclass(frozen=True)
class SpeakerParams:
    """One synthetic talker."""

    f0_hz: float  # median fundamental frequency
    f0_range_st: float  # intonation range over a phrase (declination plus accents), semitones
    formant_scale: float  # formant frequencies relative to an adult male vocal tract
    syllables_per_s: float  # speaking rate
    breathiness: float  # aspiration noise relative to the voiced source (linear, 0..1)


def speaker_params(rng: np.random.Generator) -> SpeakerParams:
    """Draw a talker: half low-pitched (85-140 Hz), half high-pitched (165-255 Hz) with shorter vocal tract."""
    high = bool(rng.random() < 0.5)
    f0_lo, f0_hi = (165.0, 255.0) if high else (85.0, 140.0)
    return SpeakerParams(
        f0_hz=float(np.exp(rng.uniform(np.log(f0_lo), np.log(f0_hi)))),
        f0_range_st=float(rng.uniform(3.0, 8.0)),
        formant_scale=float((1.17 if high else 1.0) * rng.uniform(0.95, 1.05)),
        syllables_per_s=float(rng.uniform(3.8, 5.5)),
        breathiness=float(rng.uniform(0.05, 0.35)),
    )


# F1..F3 (Hz) of ten vowels of an adult male (Peterson & Barney 1952 averages); F4, F5 fixed.
_VOWELS_HZ = np.array(
    [[270, 2290, 3010], [390, 1990, 2550], [530, 1840, 2480], [660, 1720, 2410], [730, 1090, 2440],
     [570, 840, 2410], [440, 1020, 2240], [300, 870, 2240], [640, 1190, 2390], [490, 1350, 1690]],
    dtype=np.float64,
)
_UPPER_FORMANTS_HZ = (3500.0, 4500.0)
_FORMANT_BANDWIDTHS_HZ = np.array([70.0, 100.0, 140.0, 220.0, 300.0])
_FORMANT_LEVELS_DB = np.array([0.0, -4.0, -10.0, -16.0, -22.0])
# fricatives /s/, /sh/, /f/, /h/ and a plosive release burst: duration range (s) of each
_FRICATIVE_DURATIONS_S = np.array([[0.06, 0.14], [0.06, 0.14], [0.05, 0.12], [0.04, 0.09], [0.012, 0.03]])


def _fricative_spectra_db(freq_hz: np.ndarray, formant_scale: float) -> np.ndarray:
    """(fricatives, bins) noise-shaping gains in dB; /s/ and /f/ reach the top of the band."""
    f, s = freq_hz, formant_scale
    return _lowpass_db(f, 10000.0, 2) + np.stack([
        _highpass_db(f, 4000.0 * s, 4) + _lowpass_db(f, 8000.0 * s, 1),
        _highpass_db(f, 2200.0 * s, 4) + _lowpass_db(f, 4500.0 * s, 1),
        _highpass_db(f, 1200.0, 2) - 10.0,
        _highpass_db(f, 500.0 * s, 1) + _lowpass_db(f, 3000.0 * s, 1) - 8.0,
        _highpass_db(f, 2500.0 * s, 2) + _lowpass_db(f, 6000.0 * s, 1) - 3.0,
    ])


@dataclass(frozen=True)
class _Syllables:
    """Timing (s) and content of each syllable: an optional fricative, then a vowel."""

    onset_s: np.ndarray
    vowel_on_s: np.ndarray
    vowel_off_s: np.ndarray
    fricative: np.ndarray  # index into _FRICATIVE_DURATIONS_S, -1 for none
    vowel: np.ndarray  # index into _VOWELS_HZ
    phrase: np.ndarray  # phrase number, non-decreasing


def _syllables(rng: np.random.Generator, speaker: SpeakerParams, duration_s: float) -> _Syllables:
    """Syllables at the talker's rate grouped into words (40-150 ms silent gaps) and phrases (0.3-0.8 s pauses)."""
    count = int(duration_s * speaker.syllables_per_s * 1.5) + 2
    length_s = np.maximum(rng.lognormal(0.0, 0.25, count) / speaker.syllables_per_s, 0.12)
    word_end = rng.random(count) < 0.4
    phrase_end = word_end & (rng.random(count) < 0.3)
    gap_s = np.where(phrase_end, rng.uniform(0.3, 0.8, count), np.where(word_end, rng.uniform(0.04, 0.15, count), 0.0))
    lead_s = rng.uniform(0.05, 0.3) * min(1.0, duration_s / 2.0)
    onset_s = lead_s + np.cumsum(length_s + gap_s) - (length_s + gap_s)
    offset_s = np.minimum(onset_s + length_s, duration_s - 0.01)  # the last syllable may be cut short
    fricative = np.where(rng.random(count) < 0.5, rng.integers(0, len(_FRICATIVE_DURATIONS_S), count), -1)
    lo_s, hi_s = _FRICATIVE_DURATIONS_S[np.maximum(fricative, 0)].T
    fricative_s = np.where(fricative >= 0, np.minimum(rng.uniform(lo_s, hi_s), offset_s - onset_s - 0.07), 0.0)
    vowel = rng.integers(0, len(_VOWELS_HZ), count)
    keep = onset_s < duration_s - 0.15
    if not keep.any():
        raise ValueError(f"duration_s={duration_s} is too short for a syllable")
    return _Syllables(
        onset_s[keep], (onset_s + fricative_s)[keep], offset_s[keep],
        fricative[keep], vowel[keep], (np.cumsum(phrase_end) - phrase_end)[keep],
    )


def _glottal_table(n_harmonics: int, open_quotient: float, size: int = 16384) -> np.ndarray:
    """One period of a Rosenberg glottal-flow derivative, band-limited to `n_harmonics`, unit RMS."""
    x = np.arange(size) / size
    rise, fall = 0.65 * open_quotient, 0.35 * open_quotient
    flow = np.where(x < rise, 0.5 - 0.5 * np.cos(np.pi * x / rise), np.cos(0.5 * np.pi * (x - rise) / fall))
    flow[x >= rise + fall] = 0.0
    spectrum = np.fft.rfft(np.diff(flow, append=flow[0]))
    spectrum[0] = 0.0
    spectrum[n_harmonics + 1 :] = 0.0
    table = np.fft.irfft(spectrum, n=size)
    return (table / np.std(table)).astype(np.float32)


def speech_like(
    rng: np.random.Generator, speaker: SpeakerParams, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Speech-like audio of one talker -> (channels, samples) float32, peak PEAK_DBFS dBFS.

    A jittered glottal-pulse source on a declining intonation contour with accents, filtered by
    formants gliding between vowel targets; fricatives and release bursts of shaped noise reaching
    up to ~20 kHz; ~4-5 syllables/s grouped into words and phrases separated by digital silence.
    Channels carry the same voice, panned slightly off centre.
    """
    n_samples = _n_samples(sample_rate, duration_s)
    syl = _syllables(rng, speaker, duration_s)
    count = len(syl.onset_s)
    t = np.arange(n_samples) / sample_rate

    # voiced source: glottal pulses on an f0 contour, plus aspiration noise, under vowel envelopes
    center_s = 0.5 * (syl.vowel_on_s + syl.vowel_off_s)
    first = np.searchsorted(syl.phrase, syl.phrase, "left")
    last = np.searchsorted(syl.phrase, syl.phrase, "right") - 1
    start_s, end_s = syl.onset_s[first], syl.vowel_off_s[last]
    position = (center_s - start_s) / np.maximum(end_s - start_s, 1e-3)
    accent_st = np.where(rng.random(count) < 0.3, rng.uniform(1.0, 3.0, count), 0.0)
    pitch_st = np.interp(t, center_s, speaker.f0_range_st * (0.5 - position) + accent_st)
    pitch_st += 0.3 * _slow_noise(rng, n_samples, sample_rate, 6.0) + 0.1 * _slow_noise(rng, n_samples, sample_rate, 80.0)
    f0_hz = speaker.f0_hz * 2.0 ** (pitch_st / 12.0)
    table = _glottal_table(int(0.45 * sample_rate / np.max(f0_hz)), 0.5 + 0.4 * speaker.breathiness)
    source = _oscillator(table, f0_hz, sample_rate) + speaker.breathiness * rng.standard_normal(n_samples, dtype=np.float32)
    vowel_s = syl.vowel_off_s - syl.vowel_on_s
    voicing = _envelope(
        *_trapezoids(syl.vowel_on_s, vowel_s, 10.0 ** (rng.uniform(-8.0, 0.0, count) / 20.0),
                     np.minimum(0.025, vowel_s / 4.0), np.minimum(0.05, vowel_s / 3.0)),
        n_samples, sample_rate,
    )
    # fricative noise under its own envelopes
    has = syl.fricative >= 0
    fricative_s = syl.vowel_on_s[has] - syl.onset_s[has]
    hiss = _envelope(
        *_trapezoids(syl.onset_s[has], fricative_s, np.ones(has.sum()), 0.25 * fricative_s, 0.35 * fricative_s),
        n_samples, sample_rate,
    )

    # time-varying filters, frame by frame: formants gliding between vowel targets, fricative colour
    n_fft = 2 ** int(round(np.log2(0.02 * sample_rate)))
    voiced = _stft(source * voicing, n_fft)
    noise = _stft(rng.standard_normal(n_samples, dtype=np.float32) * hiss, n_fft)
    frame_s = (np.arange(len(voiced)) - 1.0) * (n_fft // 2) / sample_rate
    freq_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    targets_hz = np.column_stack([
        _VOWELS_HZ[syl.vowel] * rng.normal(1.0, 0.03, (count, 3)),
        np.tile(_UPPER_FORMANTS_HZ, (count, 1)),
    ]) * speaker.formant_scale
    magnitude = np.full((len(voiced), freq_hz.size), 0.001, dtype=np.float32)  # -60 dB between formants
    for k in range(targets_hz.shape[1]):
        formant_hz = np.interp(frame_s, center_s, targets_hz[:, k]).astype(np.float32)[:, None]
        half_bandwidth_hz = 0.5 * _FORMANT_BANDWIDTHS_HZ[k] * (1.0 + speaker.breathiness)
        magnitude += 10.0 ** (_FORMANT_LEVELS_DB[k] / 20.0) / np.sqrt(1.0 + ((freq_hz - formant_hz) / half_bandwidth_hz) ** 2)
    voiced *= _minimum_phase(magnitude, n_fft)
    syllable = np.clip(np.searchsorted(syl.onset_s, frame_s, "right") - 1, 0, count - 1)
    noise *= (10.0 ** (_fricative_spectra_db(freq_hz, speaker.formant_scale) / 20.0)).astype(np.float32)[
        np.maximum(syl.fricative[syllable], 0)
    ]
    # fricatives 6-14 dB below the vowels, as power per active sample
    voiced_power = np.sum(np.abs(voiced) ** 2) / np.sum(voicing**2)
    noise_power = np.sum(np.abs(noise) ** 2) / max(np.sum(hiss**2), 1e-12)
    noise_gain = np.sqrt(voiced_power / max(noise_power, 1e-30)) * 10.0 ** (-rng.uniform(6.0, 14.0) / 20.0)
    mono = _istft(voiced + noise_gain * noise, n_fft, n_samples)
    return _gain_to(_pan_gains(rng.uniform(0.4, 0.6), channels)[:, None] * mono, PEAK_DBFS)


# --------------------------------------------------------------------------------------------
# music-like


@dataclass(frozen=True)
class _Instrument:
    """Synthesis recipe: sustained (harmonic wavetable, ADSR, vibrato) or struck (decaying partials)."""

    sustained: bool
    octave: int  # octave of its notes (MIDI, middle C = C4 = 60)
    rolloff_db_per_octave: float  # partial amplitude slope over partial number
    decay_s: float  # struck: decay time constant of the fundamental at middle C; sustained: release
    inharmonicity: float = 0.0  # B in f_k = k f0 sqrt(1 + B k^2)
    attack_s: float = 0.003
    vibrato_cents: float = 0.0


_INSTRUMENTS = {
    "pluck": _Instrument(False, 4, -9.0, 0.5, inharmonicity=1e-4),
    "keys": _Instrument(False, 4, -7.0, 1.0, inharmonicity=4e-4),
    "bell": _Instrument(False, 5, -4.0, 1.2, inharmonicity=2e-3, attack_s=0.001),
    "organ": _Instrument(True, 4, -6.0, 0.05, attack_s=0.01),
    "strings": _Instrument(True, 3, -5.0, 0.3, attack_s=0.15, vibrato_cents=15.0),
}
_BASS = _Instrument(False, 2, -12.0, 0.8, inharmonicity=2e-4, attack_s=0.005)
INSTRUMENTS: tuple[str, ...] = tuple(_INSTRUMENTS)
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
# four-bar chord progressions as scale degrees (0 = tonic)
_PROGRESSIONS = np.array([[0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4], [1, 4, 0, 0], [0, 3, 0, 4]])


@dataclass(frozen=True)
class ArtistParams:
    """One synthetic artist's style."""

    tempo_bpm: float
    key: int  # pitch class of the tonic, 0 = C
    scale: str  # one of "major", "minor", "dorian"
    instruments: tuple[str, ...]  # from INSTRUMENTS
    percussion: bool


def artist_params(rng: np.random.Generator) -> ArtistParams:
    """Draw an artist: tempo 70-160 BPM, random key and scale, 2-3 instruments, drums 3 times in 4."""
    count = int(rng.integers(2, 4))
    return ArtistParams(
        tempo_bpm=float(rng.uniform(70.0, 160.0)),
        key=int(rng.integers(12)),
        scale=str(rng.choice(list(_SCALES))),
        instruments=tuple(str(name) for name in rng.choice(INSTRUMENTS, size=count, replace=False)),
        percussion=bool(rng.random() < 0.75),
    )


def _midi_hz(midi: np.ndarray | int) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _struck_note(rng: np.random.Generator, instrument: _Instrument, midi: int, sample_rate: int) -> np.ndarray:
    """(samples,) one struck note: inharmonic partials, higher ones decaying faster, plus a pick click."""
    f0_hz = float(_midi_hz(midi))
    partial = np.arange(1, 41)
    freq_hz = partial * f0_hz * np.sqrt(1.0 + instrument.inharmonicity * partial**2)
    partial, freq_hz = partial[freq_hz < 0.45 * sample_rate], freq_hz[freq_hz < 0.45 * sample_rate]
    amplitude = 10.0 ** ((instrument.rolloff_db_per_octave * np.log2(partial) + rng.normal(0.0, 2.0, partial.size)) / 20.0)
    decay_s = instrument.decay_s * np.sqrt(261.6 / f0_hz) / (1.0 + 0.4 * (partial - 1))
    t = np.arange(int(min(3.0, 5.0 * decay_s[0]) * sample_rate)) / sample_rate
    t32 = t.astype(np.float32)
    note = np.zeros(t.size, dtype=np.float32)
    for k in range(partial.size):  # each partial only until it has decayed by 40 dB
        n = min(t.size, int(4.6 * decay_s[k] * sample_rate))
        cycles = _fraction(freq_hz[k] * t[:n] + rng.uniform()).astype(np.float32)
        note[:n] += np.float32(amplitude[k]) * np.exp(t32[:n] * np.float32(-1.0 / decay_s[k])) * np.sin(np.float32(2.0 * np.pi) * cycles)
    click_n = min(t.size, int(0.01 * sample_rate))
    click = _noise(rng, sample_rate, click_n, 1, lambda f: _highpass_db(f, 2000.0, 2))[0]
    note[:click_n] += 0.3 * amplitude[0] * click / np.std(click) * np.exp(-t[:click_n] / 0.002)
    attack_n = max(1, int(instrument.attack_s * sample_rate))
    note[:attack_n] *= np.linspace(0.0, 1.0, attack_n, dtype=np.float32)
    fade_n = t.size // 10
    note[t.size - fade_n :] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade_n))).astype(np.float32)
    return note


def _struck_track(rng, instrument: _Instrument, notes_s: np.ndarray, notes_midi: np.ndarray, gains: np.ndarray,
                  n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) the notes (onset s, MIDI, gain) of one struck instrument, one template per pitch."""
    track = np.zeros(n_samples, dtype=np.float32)
    for midi in np.unique(notes_midi):
        mine = notes_midi == midi
        _place(track, _struck_note(rng, instrument, int(midi), sample_rate),
               (notes_s[mine] * sample_rate).astype(np.int64), gains[mine])
    return track


def _sustained_track(rng, instrument: _Instrument, chords_midi: np.ndarray, bar_s: float,
                     n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) held chords (bars, voices), re-attacked every bar (ADSR), with vibrato and slight detune."""
    bars = len(chords_midi)
    t = np.arange(n_samples, dtype=np.float32) / np.float32(sample_rate)
    bar = np.minimum((t / np.float32(bar_s)).astype(np.int64), bars - 1)
    vibrato_cycles = _fraction(rng.uniform(4.5, 6.0) * np.arange(n_samples) / sample_rate + rng.uniform())
    vibrato = 2.0 ** (instrument.vibrato_cents / 1200.0 * np.sin(2.0 * np.pi * vibrato_cycles.astype(np.float32)))
    n_harmonics = int(0.45 * sample_rate / _midi_hz(chords_midi.max()))
    harmonic = np.arange(1, n_harmonics + 1)
    table = _harmonic_table(10.0 ** (instrument.rolloff_db_per_octave * np.log2(harmonic) / 20.0), rng.uniform(0.0, 6.3, n_harmonics))
    voices = sum(
        _oscillator(table, (_midi_hz(chords_midi[:, voice]) * (1.0 + rng.normal(0.0, 0.001)))[bar] * vibrato, sample_rate, rng.uniform())
        for voice in range(chords_midi.shape[1])
    )
    start_s = np.arange(bars) * bar_s
    attack_s, release_s = instrument.attack_s, instrument.decay_s
    times = np.stack([start_s, start_s + attack_s, start_s + attack_s + 0.1, start_s + bar_s - release_s, start_s + bar_s], axis=1)
    levels = np.tile([0.0, 1.0, 0.7, 0.7, 0.0], (bars, 1))
    return (voices * _envelope(times, levels, n_samples, sample_rate)).astype(np.float32)


def _drums(rng, bar_s: float, bars: int, n_samples: int, sample_rate: int) -> list[tuple[np.ndarray, float, float]]:
    """Kick (pitched decaying sine), snare (tone plus noise) and hi-hat (high noise): (track, pan, level dB)."""
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    kick_hz = rng.uniform(45.0, 60.0) + rng.uniform(60.0, 120.0) * np.exp(-t / 0.03)
    kick = np.sin(2.0 * np.pi * np.cumsum(kick_hz) / sample_rate) * np.exp(-t / rng.uniform(0.12, 0.3))
    body = np.sin(2.0 * np.pi * rng.uniform(170.0, 230.0) * t) * np.exp(-t / 0.05)
    rattle = _noise(rng, sample_rate, t.size, 1, lambda f: _highpass_db(f, 1500.0, 2) + _lowpass_db(f, 9000.0, 1))[0]
    snare = body + rattle / np.std(rattle) * np.exp(-t / rng.uniform(0.08, 0.15))
    hat_hz = rng.uniform(6000.0, 9000.0)
    hat = _noise(rng, sample_rate, t.size, 1, lambda f: _highpass_db(f, hat_hz, 2))[0]
    hat *= np.exp(-t / rng.uniform(0.03, 0.06)) / np.std(hat)
    beat_s = bar_s / 4.0
    bar_start_s = np.arange(bars)[:, None] * bar_s
    kick_s = (bar_start_s + np.array([0.0, 2.0]) * beat_s).ravel()
    extra_s = (bar_start_s[:, 0] + 2.5 * beat_s)[rng.random(bars) < 0.3]
    kick_s = np.concatenate([kick_s, extra_s])
    snare_s = (bar_start_s + np.array([1.0, 3.0]) * beat_s).ravel()
    hat_s = (bar_start_s + np.arange(8) * beat_s / 2.0).ravel()
    hat_gain = np.tile([1.0, 0.6], hat_s.size // 2) * rng.uniform(0.8, 1.0, hat_s.size)
    tracks = []
    for template, onsets_s, gains, pan, level_db in (
        (kick, kick_s, np.ones(kick_s.size), 0.5, -3.0),
        (snare, snare_s, rng.uniform(0.8, 1.0, snare_s.size), 0.5, -6.0),
        (hat, hat_s, hat_gain, rng.uniform(0.3, 0.7), -14.0),
    ):
        track = np.zeros(n_samples, dtype=np.float32)
        _place(track, template.astype(np.float32), (onsets_s * sample_rate).astype(np.int64), gains)
        tracks.append((track, pan, level_db))
    return tracks


def music_like(
    rng: np.random.Generator, artist: ArtistParams, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Music-like audio in the artist's style -> (channels, samples) float32, peak PEAK_DBFS dBFS.

    A four-bar chord progression in the artist's key: every instrument plays the chords (held or
    strummed), the first struck one adds an eighth-note arpeggio, a bass plays roots and fifths,
    and drums (if any) play kick, snare and eighth-note hi-hats. Instruments are panned.
    """
    n_samples = _n_samples(sample_rate, duration_s)
    beat_s = 60.0 / artist.tempo_bpm
    bar_s = 4.0 * beat_s
    bars = int(np.ceil(duration_s / bar_s))
    scale = np.array(_SCALES[artist.scale])
    degrees = np.resize(_PROGRESSIONS[rng.integers(len(_PROGRESSIONS))], bars)[:, None] + np.array([0, 2, 4])
    chord = artist.key + scale[degrees % 7] + 12 * (degrees // 7)  # (bars, 3) pitch above C-1, octave 0

    tracks = []  # (mono track, pan position, level dB)
    arpeggio_played = False
    for name in artist.instruments:
        instrument = _INSTRUMENTS[name]
        chords_midi = chord + 12 * (instrument.octave + 1)
        if instrument.sustained:
            track = _sustained_track(rng, instrument, chords_midi, bar_s, n_samples, sample_rate)
        else:
            onsets_s = np.arange(bars)[:, None] * bar_s + np.arange(3) * rng.uniform(0.005, 0.02)  # strum
            notes_s, notes_midi, gains = onsets_s.ravel(), chords_midi.ravel(), np.full(chords_midi.size, 0.7)
            if not arpeggio_played:
                arpeggio_played = True
                eighth_s = (np.arange(bars * 8) * beat_s / 2.0)
                play = rng.random(eighth_s.size) < 0.7
                arp_midi = chords_midi[(eighth_s / bar_s).astype(np.int64), rng.integers(0, 3, eighth_s.size)] + 12
                notes_s = np.concatenate([notes_s, eighth_s[play]])
                notes_midi = np.concatenate([notes_midi, arp_midi[play]])
                gains = np.concatenate([gains, rng.uniform(0.4, 0.8, play.sum())])
            track = _struck_track(rng, instrument, notes_s, notes_midi, gains, n_samples, sample_rate)
        tracks.append((track, rng.uniform(0.15, 0.85), -4.0))
    # bass: the root on beats 1 and 3, in some bars the fifth on beat 4
    bar_start_s = np.arange(bars) * bar_s
    fifth = np.flatnonzero(rng.random(bars) < 0.3)
    bass_s = np.concatenate([bar_start_s, bar_start_s + 2.0 * beat_s, bar_start_s[fifth] + 3.0 * beat_s])
    bass_midi = np.concatenate([chord[:, 0], chord[:, 0], chord[fifth, 2]]) + 12 * (_BASS.octave + 1)
    bass_gain = np.concatenate([np.ones(bars), np.full(bars, 0.8), np.full(fifth.size, 0.7)])
    tracks.append((_struck_track(rng, _BASS, bass_s, bass_midi, bass_gain, n_samples, sample_rate), 0.5, -3.0))
    if artist.percussion:
        tracks += _drums(rng, bar_s, bars, n_samples, sample_rate)

    mix = np.zeros((channels, n_samples), dtype=np.float32)
    for track, pan, level_db in tracks:
        rms = np.sqrt(np.mean(np.square(track, dtype=np.float64)))
        mix += (_pan_gains(pan, channels)[:, None] * (10.0 ** (level_db / 20.0) / max(rms, 1e-12))).astype(np.float32) * track
    return _gain_to(mix, PEAK_DBFS)


# --------------------------------------------------------------------------------------------
# corpus on disk

MATERIAL_KINDS = ("speech", "music", "noise", "nonstationary")
COMPLETE_MARKER = ".complete"


def _stable_int(text: str) -> int:
    """A 64-bit integer of `text` that is the same in every process (unlike the salted `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _groups(kind: str, n_groups: int, noise_types: tuple[str, ...]) -> tuple[str, ...]:
    if kind == "speech":
        return tuple(f"spk{g:02d}" for g in range(n_groups))
    if kind == "music":
        return tuple(f"art{g:02d}" for g in range(n_groups))
    if kind == "noise":
        return tuple(noise_types)
    return NONSTATIONARY_TYPES


def _render(kind: str, group: str, index: int, seed: int, duration_s: float, sample_rate: int, channels: int) -> np.ndarray:
    """File `index` of `group`: a function of (seed, kind, group, index) and the format only."""
    rng = np.random.default_rng([seed, _stable_int(kind), _stable_int(group), index])
    if kind == "speech":
        speaker = speaker_params(np.random.default_rng([seed, _stable_int(kind), _stable_int(group)]))
        return speech_like(rng, speaker, sample_rate, duration_s, channels)
    if kind == "music":
        artist = artist_params(np.random.default_rng([seed, _stable_int(kind), _stable_int(group)]))
        return music_like(rng, artist, sample_rate, duration_s, channels)
    if kind == "noise":
        return stationary_noise(rng, group, sample_rate, duration_s, channels)
    return nonstationary_noise(rng, group, sample_rate, duration_s, channels)


def _is_done(path: Path, tag: str, n_samples: int) -> bool:
    """True if `path` is a complete file written for exactly this tag (files appear only whole)."""
    if not path.is_file():
        return False
    try:
        with sf.SoundFile(path) as existing:
            return existing.frames == n_samples and existing.comment == tag
    except (sf.LibsndfileError, RuntimeError):
        return False


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def materialize(
    kind: str,
    out_dir: str | os.PathLike,
    count: int,
    duration_s: float,
    sample_rate: int,
    channels: int,
    seed: int,
    n_groups: int = 4,
    noise_types: tuple[str, ...] = NOISE_TYPES,
) -> list[Path]:
    """Write a synthetic corpus of 24-bit FLAC files and return their paths (sorted as generated).

    kind "speech": `count` files spread over `n_groups` talkers, out_dir/spkNN/spkNN_IIIII.flac;
    "music": likewise over artists, out_dir/artNN/...; "noise": `count` files per type in
    `noise_types`, out_dir/<noise_type>/<noise_type>_IIIII.flac (the folder names the type);
    "nonstationary": `count` files per NONSTATIONARY_TYPES kind, out_dir/<kind>/...

    File i's audio depends only on (seed, kind, group, i) and the format, so the same arguments give
    byte-identical files. Each file is written to a temporary name and renamed, and carries a tag
    (FLAC comment) of its parameters: an existing file with the right tag and length is kept, so an
    interrupted run resumes. `out_dir/.complete`, written last, records the arguments; when it
    matches, nothing is checked or written.
    """
    if kind not in MATERIAL_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {MATERIAL_KINDS}")
    if kind == "noise" and not set(noise_types) <= set(NOISE_TYPES):
        raise ValueError(f"unknown noise types {sorted(set(noise_types) - set(NOISE_TYPES))}")
    out_dir = Path(out_dir)
    groups = _groups(kind, n_groups, tuple(noise_types))
    per_group = kind in ("noise", "nonstationary")  # `count` files per group, else spread over groups
    jobs = [(group, i) for group in groups for i in range(count)] if per_group else [(groups[i % len(groups)], i) for i in range(count)]
    paths = [out_dir / group / f"{group}_{i:05d}.flac" for group, i in jobs]

    params = {
        "version": SYNTH_VERSION, "kind": kind, "count": int(count), "duration_s": float(duration_s),
        "sample_rate": int(sample_rate), "channels": int(channels), "seed": int(seed), "n_groups": int(n_groups),
        "noise_types": list(noise_types),
    }
    marker = out_dir / COMPLETE_MARKER
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return paths
    marker.unlink(missing_ok=True)  # from here on the folder is not what any marker describes
    n_samples = _n_samples(sample_rate, duration_s)
    for (group, i), path in zip(jobs, paths):
        tag = json.dumps({**{key: params[key] for key in ("version", "kind", "seed", "duration_s", "sample_rate", "channels")},
                          "group": group, "index": i}, sort_keys=True)
        if _is_done(path, tag, n_samples):
            continue
        audio = _render(kind, group, i, seed, duration_s, sample_rate, channels)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(target: Path, audio: np.ndarray = audio, tag: str = tag) -> None:
            with sf.SoundFile(target, "w", sample_rate, channels, subtype="PCM_24", format="FLAC") as out:
                out.comment = tag
                out.write(audio.T)

        _write_atomic(path, write)
    _write_atomic(marker, lambda target: target.write_text(json.dumps(params, indent=1, sort_keys=True)))
    return paths
