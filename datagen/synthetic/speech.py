"""Speech-like audio: a synthetic talker's glottal source through gliding vowel formants, with
fricatives and release bursts, in syllables grouped into words and phrases.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import (
    PEAK_DBFS, envelope, gain_to, highpass_db, lowpass_db, oscillator, pan_gains, sample_count, slow_noise, trapezoids,
)
from .stft import istft, minimum_phase, stft


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
    return lowpass_db(f, 10000.0, 2) + np.stack([
        highpass_db(f, 4000.0 * s, 4) + lowpass_db(f, 8000.0 * s, 1),
        highpass_db(f, 2200.0 * s, 4) + lowpass_db(f, 4500.0 * s, 1),
        highpass_db(f, 1200.0, 2) - 10.0,
        highpass_db(f, 500.0 * s, 1) + lowpass_db(f, 3000.0 * s, 1) - 8.0,
        highpass_db(f, 2500.0 * s, 2) + lowpass_db(f, 6000.0 * s, 1) - 3.0,
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


def _glottal_source(rng, speaker: SpeakerParams, syl: _Syllables, center_s: np.ndarray,
                    n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) jittered glottal pulses on a declining intonation contour with accents (pitch
    targets at the vowel centres `center_s`), plus aspiration noise."""
    count = len(syl.onset_s)
    t = np.arange(n_samples) / sample_rate
    first = np.searchsorted(syl.phrase, syl.phrase, "left")
    last = np.searchsorted(syl.phrase, syl.phrase, "right") - 1
    start_s, end_s = syl.onset_s[first], syl.vowel_off_s[last]
    position = (center_s - start_s) / np.maximum(end_s - start_s, 1e-3)
    accent_st = np.where(rng.random(count) < 0.3, rng.uniform(1.0, 3.0, count), 0.0)
    pitch_st = np.interp(t, center_s, speaker.f0_range_st * (0.5 - position) + accent_st)
    pitch_st += 0.3 * slow_noise(rng, n_samples, sample_rate, 6.0) + 0.1 * slow_noise(rng, n_samples, sample_rate, 80.0)
    f0_hz = speaker.f0_hz * 2.0 ** (pitch_st / 12.0)
    table = _glottal_table(int(0.45 * sample_rate / np.max(f0_hz)), 0.5 + 0.4 * speaker.breathiness)
    return oscillator(table, f0_hz, sample_rate) + speaker.breathiness * rng.standard_normal(n_samples, dtype=np.float32)


def _vowel_envelope(rng, syl: _Syllables, n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) voicing envelope: one trapezoid per vowel, each 0 to -8 dB."""
    vowel_s = syl.vowel_off_s - syl.vowel_on_s
    peaks = 10.0 ** (rng.uniform(-8.0, 0.0, len(syl.onset_s)) / 20.0)
    times, levels = trapezoids(syl.vowel_on_s, vowel_s, peaks, np.minimum(0.025, vowel_s / 4.0), np.minimum(0.05, vowel_s / 3.0))
    return envelope(times, levels, n_samples, sample_rate)


def _fricative_envelope(syl: _Syllables, n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) fricative noise envelope: one trapezoid before each vowel that has a fricative."""
    has = syl.fricative >= 0
    fricative_s = syl.vowel_on_s[has] - syl.onset_s[has]
    times, levels = trapezoids(syl.onset_s[has], fricative_s, np.ones(has.sum()), 0.25 * fricative_s, 0.35 * fricative_s)
    return envelope(times, levels, n_samples, sample_rate)


def _formant_magnitude(rng, speaker: SpeakerParams, syl: _Syllables, center_s: np.ndarray,
                       frame_s: np.ndarray, freq_hz: np.ndarray) -> np.ndarray:
    """(frames, bins) vocal-tract magnitude: five formants gliding between the vowel targets at `center_s`."""
    count = len(syl.onset_s)
    targets_hz = np.column_stack([
        _VOWELS_HZ[syl.vowel] * rng.normal(1.0, 0.03, (count, 3)),
        np.tile(_UPPER_FORMANTS_HZ, (count, 1)),
    ]) * speaker.formant_scale
    magnitude = np.full((len(frame_s), freq_hz.size), 0.001, dtype=np.float32)  # -60 dB between formants
    for k in range(targets_hz.shape[1]):
        formant_hz = np.interp(frame_s, center_s, targets_hz[:, k]).astype(np.float32)[:, None]
        half_bandwidth_hz = 0.5 * _FORMANT_BANDWIDTHS_HZ[k] * (1.0 + speaker.breathiness)
        magnitude += 10.0 ** (_FORMANT_LEVELS_DB[k] / 20.0) / np.sqrt(1.0 + ((freq_hz - formant_hz) / half_bandwidth_hz) ** 2)
    return magnitude


def _fricative_colour(speaker: SpeakerParams, syl: _Syllables, frame_s: np.ndarray, freq_hz: np.ndarray) -> np.ndarray:
    """(frames, bins) linear gain of each frame's noise: the spectrum of its syllable's fricative."""
    syllable = np.clip(np.searchsorted(syl.onset_s, frame_s, "right") - 1, 0, len(syl.onset_s) - 1)
    spectra = (10.0 ** (_fricative_spectra_db(freq_hz, speaker.formant_scale) / 20.0)).astype(np.float32)
    return spectra[np.maximum(syl.fricative[syllable], 0)]


def speech_like(
    rng: np.random.Generator, speaker: SpeakerParams, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Speech-like audio of one talker -> (channels, samples) float32, peak PEAK_DBFS dBFS.

    A jittered glottal-pulse source on a declining intonation contour with accents, filtered by
    formants gliding between vowel targets; fricatives and release bursts of shaped noise reaching
    up to ~20 kHz; ~4-5 syllables/s grouped into words and phrases separated by digital silence.
    Channels carry the same voice, panned slightly off centre.
    """
    n_samples = sample_count(sample_rate, duration_s)
    syl = _syllables(rng, speaker, duration_s)
    center_s = 0.5 * (syl.vowel_on_s + syl.vowel_off_s)
    source = _glottal_source(rng, speaker, syl, center_s, n_samples, sample_rate)
    voicing = _vowel_envelope(rng, syl, n_samples, sample_rate)
    hiss = _fricative_envelope(syl, n_samples, sample_rate)

    # time-varying filters, frame by frame: formants gliding between vowel targets, fricative colour
    n_fft = 2 ** int(round(np.log2(0.02 * sample_rate)))
    voiced = stft(source * voicing, n_fft)
    noise = stft(rng.standard_normal(n_samples, dtype=np.float32) * hiss, n_fft)
    frame_s = (np.arange(len(voiced)) - 1.0) * (n_fft // 2) / sample_rate
    freq_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    voiced *= minimum_phase(_formant_magnitude(rng, speaker, syl, center_s, frame_s, freq_hz), n_fft)
    noise *= _fricative_colour(speaker, syl, frame_s, freq_hz)
    # fricatives 6-14 dB below the vowels, as power per active sample
    voiced_power = np.sum(np.abs(voiced) ** 2) / np.sum(voicing**2)
    noise_power = np.sum(np.abs(noise) ** 2) / max(np.sum(hiss**2), 1e-12)
    noise_gain = np.sqrt(voiced_power / max(noise_power, 1e-30)) * 10.0 ** (-rng.uniform(6.0, 14.0) / 20.0)
    mono = istft(voiced + noise_gain * noise, n_fft, n_samples)
    return gain_to(pan_gains(rng.uniform(0.4, 0.6), channels)[:, None] * mono, PEAK_DBFS)
