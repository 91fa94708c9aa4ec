"""How non-stationary a noise recording is, as one number in dB (lower = more stationary).

The denoiser must be trained on stationary noise only; recordings whose score exceeds a configured
threshold (by default DEFAULT_STATIONARITY_THRESHOLD_DB) are excluded.

The score measures how much the level of the noise moves over time, band by band:

1. Channels are averaged (the downmix of Gaussian noise is Gaussian, which step 4 relies on) and
   leading/trailing digital silence (padding) is trimmed. Digital silence inside the recording
   (dropouts, gating) is kept: it is non-stationarity.
2. Hann frames of FRAME_S (50 ms), hop half a frame; per frame, the power in each 1/3-octave band
   from LOWEST_BAND_HZ (100 Hz) up to min(20 kHz, Nyquist) (nominal centres 1000 * 2^(k/3) Hz;
   the top band is clipped at Nyquist).
3. Per band, the variance over time of the frame levels in dB. A frame whose band power is
   exactly zero is floored at FRAME_FLOOR_DB below the band's mean, so dropouts weigh heavily
   but finitely.
4. Estimator floor removed: even perfectly stationary Gaussian noise has fluctuating short-frame
   band levels. A band's frame power is a sum of |X_k|^2 over its bins, approximately Gamma
   distributed with shape k = (sum m)^2 / sum_ij rho_ij^2 m_i m_j, where m is the band's mean
   power spectrum over the recording and rho_ij the correlation that the window induces between
   bins i and j (Satterthwaite). The log of a Gamma variable has variance trigamma(k), so the
   estimator contributes (10/ln 10)^2 * trigamma(k) dB^2, which is subtracted. This makes the
   score comparable across sample rates (bins per band) and bands: stationary Gaussian noise of
   any colour scores ~0 dB at 16, 44.1 or 48 kHz alike. Stationary tones have less variance than
   the Gaussian model predicts (negative excess), so they read as stationary too.
5. Bands more than BAND_RANGE_DB (50 dB) below the loudest band are ignored (nothing there but
   leakage or the recording's own noise floor); the score is the square root of the median over
   the remaining bands of the excess variance (clamped at 0): an excess standard deviation of the
   band levels, in dB. The median makes it robust to a few bands with their own behaviour (one
   intermittent tone, a rumbling band).

Slow drift (gusts, swells, fades) is part of the score on purpose: the variance is taken over the
whole recording, so it counts level changes at every rate from 1/duration up to the frame rate
(~20 Hz) equally. A stationary-noise denoiser is hurt just as much by a noise floor that creeps
10 dB over a minute as by one that pumps at 4 Hz, so both are excluded the same way. For
reference, a sinusoidal level modulation of +-a dB scores a / sqrt(2); a linear 10 dB drift over the
recording scores 10 / sqrt(12) = 2.9 dB.

Threshold: generated stationary noises (white, pink, brown, hum, tape hiss, fan with its slow
wobble, HVAC) score 0.0-0.6 dB over 16/44.1/48 kHz, mono and stereo, 5-60 s; generated
non-stationary noises (bursts, syllable-rate modulation, door slams on a quiet floor, fade-in)
score 5 dB and up. DEFAULT_STATIONARITY_THRESHOLD_DB = 1.5 dB sits with a margin of >0.9 dB (the
stationary side's estimator spread at 1 s is ~0.5 dB) above the stationary noises and a factor
of three below the non-stationary ones; it admits level wobble up to about +-2 dB (sinusoidal).
"""
from __future__ import annotations

import numpy as np
from scipy.special import polygamma

FRAME_S = 0.05  # analysis frame length; hop is half of it
LOWEST_BAND_HZ = 100.0
HIGHEST_BAND_HZ = 20000.0
BAND_RANGE_DB = 50.0  # bands this far below the loudest are ignored
FRAME_FLOOR_DB = 60.0  # a frame's band level is floored this far below the band's mean power
MIN_BINS_PER_BAND = 8  # so that each band's frame power has >= ~4 degrees of freedom (see step 4)
MIN_DURATION_S = 1.0  # of non-silent audio
DIGITAL_SILENCE = 2.0**-24  # |sample| at or below this rounds to 0 in 24-bit PCM
DEFAULT_STATIONARITY_THRESHOLD_DB = 1.5
_DB2 = (10.0 / np.log(10.0)) ** 2  # variance of 10*log10(x) per unit variance of ln(x)


def _band_edges_bin(sample_rate: int, frame: int) -> np.ndarray:
    """(bands + 1,) rfft bin edges of the analysis bands: 1/3-octave bands (centres 1000 * 2^(k/3) Hz)
    from LOWEST_BAND_HZ to min(HIGHEST_BAND_HZ, Nyquist), the top one clipped at Nyquist, and
    low bands narrower than MIN_BINS_PER_BAND bins merged upwards until they are not."""
    nyquist_hz = sample_rate / 2.0
    k = np.arange(round(3.0 * np.log2(LOWEST_BAND_HZ / 1000.0)), round(3.0 * np.log2(HIGHEST_BAND_HZ / 1000.0)) + 1)
    centres_hz = 1000.0 * 2.0 ** (k / 3.0)
    centres_hz = centres_hz[centres_hz < nyquist_hz]
    edges_hz = np.append(centres_hz * 2.0 ** (-1.0 / 6.0), min(centres_hz[-1] * 2.0 ** (1.0 / 6.0), nyquist_hz))
    edges = [int(e) for e in np.ceil(edges_hz * frame / sample_rate - 1e-9)]  # first bin at or above each edge
    merged = [edges[0]]
    for edge in edges[1:]:
        if edge - merged[-1] >= MIN_BINS_PER_BAND:
            merged.append(edge)
    merged[-1] = edges[-1]  # a too-narrow top band joins the one below
    return np.array(merged)


def _bin_correlation_sq(window: np.ndarray, max_lag: int = 8) -> np.ndarray:
    """(max_lag+1,) squared correlation between the powers of DFT bins `lag` apart, for white
    Gaussian noise under `window`: |DFT(window^2)[lag] / sum(window^2)|^2."""
    spectrum = np.fft.fft(window**2)[: max_lag + 1]
    return np.abs(spectrum / spectrum[0]) ** 2


def _gamma_shape(mean_power: np.ndarray, correlation_sq: np.ndarray) -> float:
    """Shape k of the Gamma law approximating the sum of correlated bin powers with means `mean_power`."""
    n = mean_power.size
    lag = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    rho_sq = np.where(lag < correlation_sq.size, correlation_sq[np.minimum(lag, correlation_sq.size - 1)], 0.0)
    return float(np.sum(mean_power) ** 2 / (mean_power @ rho_sq @ mean_power))


def _band_excess_variance(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per analysis band: mean power (dB) and variance of the frame levels in excess of the
    estimator's own (dB^2, may be negative) -> two (bands,) arrays. Steps 1-4 of the module docstring."""
    mono = np.atleast_2d(np.asarray(audio, dtype=np.float64)).mean(axis=0)
    loud = np.flatnonzero(np.abs(mono) > DIGITAL_SILENCE)
    if loud.size == 0:
        raise ValueError("stationarity_db: the audio is digitally silent")
    mono = mono[loud[0] : loud[-1] + 1]
    if mono.size < MIN_DURATION_S * sample_rate:
        raise ValueError(
            f"stationarity_db: {mono.size / sample_rate:.2f} s of non-silent audio, need at least {MIN_DURATION_S} s"
        )

    frame = int(round(FRAME_S * sample_rate))
    window = np.hanning(frame + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(mono, frame)[:: frame // 2]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # (frames, bins)
    mean_power = power.mean(axis=0)
    correlation_sq = _bin_correlation_sq(window)

    band_power_db, excess_var_db2 = [], []
    edges = _band_edges_bin(sample_rate, frame)
    for lo, hi in zip(edges[:-1], edges[1:]):
        band_mean = mean_power[lo:hi].sum()
        if band_mean <= 0.0:
            continue  # nothing at all in this band
        band = power[:, lo:hi].sum(axis=1)
        level_db = 10.0 * np.log10(np.maximum(band, band_mean * 10.0 ** (-FRAME_FLOOR_DB / 10.0)))
        expected_var = _DB2 * float(polygamma(1, _gamma_shape(mean_power[lo:hi], correlation_sq)))
        band_power_db.append(10.0 * np.log10(band_mean))
        excess_var_db2.append(np.var(level_db, ddof=1) - expected_var)
    return np.array(band_power_db), np.array(excess_var_db2)


def stationarity_db(audio: np.ndarray, sample_rate: int) -> float:
    """Non-stationarity score in dB of a noise recording (lower = more stationary; 0 = as steady as
    stationary Gaussian noise). See the module docstring for the definition.

    audio: (channels, samples) or (samples,) float; sample_rate in Hz.
    Raises ValueError if the audio is digitally silent or shorter than MIN_DURATION_S once leading
    and trailing silence is trimmed.
    """
    band_power_db, excess_var_db2 = _band_excess_variance(audio, sample_rate)
    kept = band_power_db >= band_power_db.max() - BAND_RANGE_DB
    return float(np.sqrt(max(0.0, np.median(excess_var_db2[kept]))))
