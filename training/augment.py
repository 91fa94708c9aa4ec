"""Training augmentation: small transforms of a clean + noise mix, applied in order, each drawing from
the item's random generator (so a given seed, epoch and draw always give the same item).

With probability `AugmentConfig.prob` an example is augmented by `augmentations(...)`, in this order:


1. colouring: a smooth random EQ on the noise (tilt in dB/octave around 1 kHz plus Gaussian bumps on
   a log-frequency axis), renormalized to the noise's RMS;
2. a slow random level wander per band (`fluctuate`, std up to fluctuation_max_db): real
   stationary noise wanders, generated noise does not;
3. a drifting harmonic tone (`drifting_tone`: engines, motors, whine) at a random level relative
   to the noise (the sum renormalized to the noise's RMS);
4. band-limiting (`lowpass`, cutoff log-uniform in [bandlimit_min_hz, bandlimit_max_hz]): of the noise
   (renormalized to its RMS; noise with no content above some frequency), and separately of the clean
   (material upsampled from a lower rate), so the controller learns that the quiet frames of a band
   can hold signal and no noise;
5. a second noise, from an example of another noise type, at a random level relative to the first
   (the sum renormalized to the first's RMS);
6. a new SNR drawn uniformly in [snr_min_db, snr_max_db], applied relative to the stored measured
   SNR (the noise is scaled by ``10^((snr_measured - snr_new) / 20)``), up to about 40 dB so the
   controller learns to back off on nearly clean input;
7. an overall gain on clean and noise together.

Each transform draws its own "apply?" number first, then its parameters, whether or not the others
ran; the noise transforms keep the noise's level as read (`Mix.level`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np

from .config import AugmentConfig


@dataclass(frozen=True)
class Mix:
    """One example being augmented: clean and noise (channels, samples) float arrays, the nominal SNR of
    clean + noise (dB), the stored mix's measured SNR that the noise's level as read gives (dB), the noise
    type ("a+b" once a second noise is added) and the noise's RMS as read."""

    clean: np.ndarray
    noise: np.ndarray
    snr_db: float
    measured_snr_db: float
    noise_type: str
    level: float


class Transform(Protocol):
    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix: ...


# A source of a second noise: (rng, noise type to avoid) -> (noise (channels, samples), its type), or None.
OtherNoise = Callable[[np.random.Generator, str], "tuple[np.ndarray, str] | None"]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def at_rms(x: np.ndarray, level: float) -> np.ndarray:
    """`x` scaled to RMS `level` (silence stays silent)."""
    now = rms(x)
    return x * (level / now if now > 0 else 0.0)


def random_eq_db(rng: np.random.Generator, freqs_hz: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """A smooth random EQ curve (dB) at `freqs_hz`: tilt around 1 kHz plus Gaussian bumps in octaves."""
    octaves = np.log2(np.maximum(freqs_hz, 20.0) / 1000.0)
    curve = rng.uniform(-cfg.color_tilt_db_per_oct, cfg.color_tilt_db_per_oct) * octaves
    top = math.log2(max(freqs_hz[-1], 40.0) / 1000.0)
    for _ in range(cfg.color_bumps):
        centre = rng.uniform(math.log2(40.0 / 1000.0), top)
        width = rng.uniform(0.25, 1.5)
        curve = curve + rng.uniform(-cfg.color_bump_db, cfg.color_bump_db) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    return np.clip(curve, -24.0, 24.0)


def colour_noise(rng: np.random.Generator, noise: np.ndarray, sample_rate: int, cfg: AugmentConfig) -> np.ndarray:
    """Apply `random_eq_db` to (channels, samples) noise (zero phase, FFT domain), keeping its RMS."""
    n = noise.shape[-1]
    spectrum = np.fft.rfft(noise.astype(np.float64), axis=-1)
    gain = 10.0 ** (random_eq_db(rng, np.fft.rfftfreq(n, 1.0 / sample_rate), cfg) / 20.0)
    out = np.fft.irfft(spectrum * gain, n=n, axis=-1)
    return at_rms(out, rms(noise)).astype(np.float32)


def drifting_tone(rng: np.random.Generator, samples: int, sample_rate: int, cfg: AugmentConfig) -> np.ndarray:
    """A harmonic tone with slow pitch wobble and amplitude modulation, unit RMS -> (samples,) float64.

    f0 log-uniform in [tone_min_hz, tone_max_hz], 1 to 8 harmonics below 0.45 * sample_rate with
    amplitudes k^-(0.5..2), pitch wobble up to 5 % at 0.05-1 Hz, amplitude modulation depth up to 0.5
    at 0.2-4 Hz: the drone of an engine, a motor or a fan's blade tone.
    """
    t = np.arange(samples) / sample_rate
    f0 = float(np.exp(rng.uniform(np.log(cfg.tone_min_hz), np.log(cfg.tone_max_hz))))
    depth = rng.uniform(0.0, 0.05)
    freq_hz = f0 * (1.0 + depth * np.sin(2 * np.pi * rng.uniform(0.05, 1.0) * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(freq_hz) / sample_rate
    slope = rng.uniform(0.5, 2.0)
    harmonics = [k for k in range(1, int(rng.integers(1, 9)) + 1) if k * f0 * (1 + depth) < 0.45 * sample_rate] or [1]
    tone = sum(k ** -slope * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in harmonics)
    tone = tone * (1.0 + rng.uniform(0.0, 0.5) * np.sin(2 * np.pi * rng.uniform(0.2, 4.0) * t + rng.uniform(0, 2 * np.pi)))
    rms = np.sqrt(np.mean(tone**2))
    return tone / rms if rms > 0 else tone


FLUCTUATION_BANDS = 6  # log-spaced bands of `fluctuate`, each with its own level envelope
FLUCTUATION_LOW_HZ = 100.0  # lowest band edge of `fluctuate` (everything below is in the first band)
FLUCTUATION_CONTROL_STEP = 64  # samples between the computed points of the level envelopes


@lru_cache(maxsize=4)
def _fluctuation_masks(n: int, sample_rate: int) -> np.ndarray:
    """(FLUCTUATION_BANDS, n // 2 + 1) rfft masks of `fluctuate`'s bands, log-spaced from FLUCTUATION_LOW_HZ to
    Nyquist, with cos^2 / sin^2 crossfades one band wide centred on the edges, so they sum to one."""
    freqs_hz = np.fft.rfftfreq(n, 1.0 / sample_rate)
    edges_oct = np.linspace(np.log2(FLUCTUATION_LOW_HZ), np.log2(sample_rate / 2.0), FLUCTUATION_BANDS + 1)
    position = (np.log2(np.maximum(freqs_hz, 1e-9)) - edges_oct[0]) / (edges_oct[1] - edges_oct[0])  # in band widths
    masks = []
    for band in range(FLUCTUATION_BANDS):
        d = position - band
        rise = np.clip(d + 0.5, 0.0, 1.0) if band > 0 else np.ones_like(d)
        fall = np.clip(d - 0.5, 0.0, 1.0) if band < FLUCTUATION_BANDS - 1 else np.zeros_like(d)
        masks.append(np.sin(0.5 * np.pi * rise) ** 2 - np.sin(0.5 * np.pi * fall) ** 2)
    return np.stack(masks)


def fluctuate(rng: np.random.Generator, audio: np.ndarray, sample_rate: int, std_db: float) -> np.ndarray:
    """Slow random level wander of (channels, samples) noise, per frequency band, keeping its RMS.

    Real "stationary" noise is never as steady as generated Gaussian noise: wind gusts, rain swells,
    an engine's load varies, a fan beats. The noise is split into FLUCTUATION_BANDS log-spaced bands
    by complementary raised-cosine masks (they sum to one) and each band's level follows its own
    smooth random envelope in dB, the sum of a component shared by all bands and one of its own
    (shared weight uniform in 0..1), each a sum of three sinusoids at 0.1-8 Hz (log-uniform), scaled
    to a standard deviation of `std_db`. A level wander of std s dB scores about s on
    `datagen.stationarity` (3 dB is its default threshold), so training noise covers the range of
    real noise the corpus filter admits.
    """
    n = audio.shape[-1]
    if std_db <= 0.0 or n < 2:
        return audio
    # envelopes at a control rate of sample_rate / FLUCTUATION_CONTROL_STEP (they are below 8 Hz), then linear
    # interpolation of the gains to every sample
    control = np.arange(0, n + FLUCTUATION_CONTROL_STEP, FLUCTUATION_CONTROL_STEP)
    t = control / sample_rate

    def envelope() -> np.ndarray:
        freqs_hz = np.exp(rng.uniform(np.log(0.1), np.log(8.0), 3))
        wave = sum(rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs_hz)
        std = np.std(wave)
        return wave / std if std > 0 else wave

    shared_weight = rng.uniform(0.0, 1.0)
    shared = envelope()
    spectrum = np.fft.rfft(audio.astype(np.float64), axis=-1)
    samples = np.arange(n)
    out = np.zeros((audio.shape[0], n))
    for mask in _fluctuation_masks(n, sample_rate):
        level_db = std_db * (shared_weight * shared + np.sqrt(1.0 - shared_weight**2) * envelope())
        gain = np.interp(samples, control, 10.0 ** (level_db / 20.0))
        out += np.fft.irfft(spectrum * mask, n=n, axis=-1) * gain
    return at_rms(out, rms(audio)).astype(np.float32)


BANDLIMIT_TRANSITION_OCT = 1 / 6  # raised-cosine roll-off of `lowpass`, above the cutoff
BANDLIMIT_STOP_DB = -90.0  # stop-band gain of `lowpass`


def lowpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase steep low-pass of (channels, samples) audio: unity gain up to `cutoff_hz`, a
    raised-cosine roll-off over BANDLIMIT_TRANSITION_OCT octave, BANDLIMIT_STOP_DB above (FFT domain)."""
    n = audio.shape[-1]
    freqs_hz = np.fft.rfftfreq(n, 1.0 / sample_rate)
    position = np.clip(np.log2(np.maximum(freqs_hz, 1e-9) / cutoff_hz) / BANDLIMIT_TRANSITION_OCT, 0.0, 1.0)
    stop = 10.0 ** (BANDLIMIT_STOP_DB / 20.0)
    gain = stop + (1.0 - stop) * 0.5 * (1.0 + np.cos(np.pi * position))
    return np.fft.irfft(np.fft.rfft(audio.astype(np.float64), axis=-1) * gain, n=n, axis=-1).astype(np.float32)


def random_cutoff_hz(rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> float:
    high = min(cfg.bandlimit_max_hz, 0.45 * sample_rate)
    return float(np.exp(rng.uniform(np.log(min(cfg.bandlimit_min_hz, high)), np.log(high))))


# --------------------------------------------------------------------------------------------------
# the transforms
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColourNoise:
    """A smooth random EQ on the noise (`colour_noise`), with probability `cfg.color_prob`."""

    cfg: AugmentConfig
    sample_rate: int

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        if rng.random() < self.cfg.color_prob:
            return replace(mix, noise=colour_noise(rng, mix.noise, self.sample_rate, self.cfg))
        return mix


@dataclass(frozen=True)
class FluctuateNoise:
    """A slow level wander of the noise per band (`fluctuate`), std uniform in [0, fluctuation_max_db]."""

    cfg: AugmentConfig
    sample_rate: int

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        if rng.random() < self.cfg.fluctuation_prob:
            return replace(mix, noise=fluctuate(rng, mix.noise, self.sample_rate, rng.uniform(0.0, self.cfg.fluctuation_max_db)))
        return mix


@dataclass(frozen=True)
class AddDriftingTone:
    """A `drifting_tone` at tone_min_db..tone_max_db relative to the noise; the sum at the noise's level."""

    cfg: AugmentConfig
    sample_rate: int

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        if rng.random() < self.cfg.tone_prob:
            tone = (drifting_tone(rng, mix.noise.shape[-1], self.sample_rate, self.cfg) * mix.level
                    * 10.0 ** (rng.uniform(self.cfg.tone_min_db, self.cfg.tone_max_db) / 20.0))
            return replace(mix, noise=at_rms(mix.noise + tone.astype(np.float32), mix.level))
        return mix


@dataclass(frozen=True)
class BandlimitNoise:
    """A steep `lowpass` of the noise at a random cutoff, kept at the noise's level."""

    cfg: AugmentConfig
    sample_rate: int

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        if rng.random() < self.cfg.bandlimit_noise_prob:
            cutoff_hz = random_cutoff_hz(rng, self.cfg, self.sample_rate)
            return replace(mix, noise=at_rms(lowpass(mix.noise, self.sample_rate, cutoff_hz), mix.level))
        return mix


@dataclass(frozen=True)
class BandlimitClean:
    """A steep `lowpass` of the clean at a random cutoff (material upsampled from a lower rate)."""

    cfg: AugmentConfig
    sample_rate: int

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        if rng.random() < self.cfg.bandlimit_clean_prob:
            return replace(mix, clean=lowpass(mix.clean, self.sample_rate, random_cutoff_hz(rng, self.cfg, self.sample_rate)))
        return mix


@dataclass(frozen=True)
class AddSecondNoise:
    """The noise of an example of another type (`other_noise`) at mix_noise_min_db..mix_noise_max_db
    relative to the first; the sum at the first's level."""

    cfg: AugmentConfig
    other_noise: OtherNoise

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        if not rng.random() < self.cfg.mix_noise_prob:
            return mix
        picked = self.other_noise(rng, mix.noise_type)
        if picked is None:
            return mix
        other, other_type = picked
        if other.shape[0] != mix.noise.shape[0]:
            other = np.broadcast_to(other.mean(axis=0, keepdims=True), mix.noise.shape)
        relative = 10.0 ** (rng.uniform(self.cfg.mix_noise_min_db, self.cfg.mix_noise_max_db) / 20.0)
        other_level = rms(other)
        if other_level <= 0:
            return mix
        noise = at_rms(mix.noise + other * (relative * mix.level / other_level), mix.level)
        return replace(mix, noise=noise, noise_type=f"{mix.noise_type}+{other_type}")


@dataclass(frozen=True)
class RandomSnr:
    """A new SNR uniform in [snr_min_db, snr_max_db], set relative to the stored measured SNR."""

    cfg: AugmentConfig

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        snr_db = float(rng.uniform(self.cfg.snr_min_db, self.cfg.snr_max_db))
        return replace(mix, noise=mix.noise * 10.0 ** ((mix.measured_snr_db - snr_db) / 20.0), snr_db=snr_db)


@dataclass(frozen=True)
class RandomGain:
    """One gain uniform in [gain_min_db, gain_max_db] dB on clean and noise together."""

    cfg: AugmentConfig

    def __call__(self, rng: np.random.Generator, mix: Mix) -> Mix:
        gain = 10.0 ** (rng.uniform(self.cfg.gain_min_db, self.cfg.gain_max_db) / 20.0)
        return replace(mix, clean=mix.clean * gain, noise=mix.noise * gain)


def augmentations(cfg: AugmentConfig, sample_rate: int, other_noise: OtherNoise) -> list[Transform]:
    """The training augmentation, in its order (the module docstring)."""
    return [ColourNoise(cfg, sample_rate), FluctuateNoise(cfg, sample_rate), AddDriftingTone(cfg, sample_rate),
            BandlimitNoise(cfg, sample_rate), BandlimitClean(cfg, sample_rate), AddSecondNoise(cfg, other_noise),
            RandomSnr(cfg), RandomGain(cfg)]
