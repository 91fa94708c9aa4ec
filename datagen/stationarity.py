"""How non-stationary a noise recording is, as one number in dB (lower = more stationary).

The denoiser must be trained on stationary noise only; recordings scoring above a configured
threshold (DEFAULT_STATIONARITY_THRESHOLD_DB unless configured otherwise) are excluded.

The score is the standard deviation over time of the noise's short-term band levels, in dB, in
excess of what a perfectly stationary Gaussian noise would show:

1. Channels are averaged (a downmix of Gaussian noise is Gaussian, which step 4 relies on) and
   leading/trailing digital silence (padding) is trimmed. Digital silence inside the recording
   (dropouts, gating) is kept: it is non-stationarity.
2. Hann frames of FRAME_S (50 ms), hop half a frame; per frame, the power in each analysis band:
   1/3-octave bands (centres 1000 * 2^(k/3) Hz) from LOWEST_BAND_HZ (100 Hz) to
   min(HIGHEST_BAND_HZ (20 kHz), Nyquist), the low ones merged upwards until each spans at least
   MIN_BINS_PER_BAND rfft bins (at 50 ms: 100-300, 300-460, 460-720 Hz, then true 1/3 octaves).
3. Per band, the variance over frames of the frame level in dB (a frame with exactly zero power is
   floored FRAME_FLOOR_DB below the band's mean, so dropouts weigh heavily but finitely).
4. The estimator's own variance is subtracted. Even stationary Gaussian noise has fluctuating
   short-frame band levels (std ~2-5 dB in narrow bands, ~0.5 dB in wide ones, depending on band
   width, frame length and hence sample rate). A band's frame power, a sum of |X_i|^2 over its
   bins, is close to Gamma distributed with shape k = (sum_i m_i)^2 / sum_ij rho_ij^2 m_i m_j
   (Satterthwaite), where m is the band's mean power spectrum over the recording and rho_ij the
   correlation the window induces between bins i and j; the log of a Gamma variable has variance
   trigamma(k), so the estimator contributes (10/ln 10)^2 trigamma(k) dB^2. Bands are at least
   MIN_BINS_PER_BAND bins wide because this approximation overstates the variance of very narrow
   bands. Stationary tones fluctuate less than Gaussian noise (negative excess): they read as
   stationary too.
5. Bands more than BAND_RANGE_DB (50 dB) below the loudest are ignored. Two medians of the excess
   variance: the plain median over the bands (is the fluctuation widespread?) and the power-weighted
   median over runs of ENERGY_SPAN_BANDS (3) adjacent bands, an octave, each run's frame power summed
   and its estimator variance computed as in step 4 (does half of the noise energy fluctuate?). The
   score is the square root of the larger, clamped at 0. Both are robust to a few quiet bands with a
   life of their own (one faint intermittent tone, a rumbling band); the weighted one also catches a
   dominant component that moves while the broadband floor stays put: an aircraft flyby's Doppler
   whine sweeping 1-3.5 kHz, 25 dB above the rest, fluctuates in 4 of its 12 bands and read 2.4 dB
   on the plain median alone (admitted), 13.9 dB now. The runs are an octave wide so that a whine
   wobbling +-5 % across a band edge does not read as a level swing (7-11 dB on single bands, 0 on runs).

So stationary Gaussian noise of any colour scores 0 (up to ~0.7 dB for 1-2 s, ~0.5 dB at 4 s) at any
sample rate, and a level modulation reads directly: a sinusoidal level modulation of +-a dB
scores a / sqrt(2) at any rate from 1/duration up to ~10 Hz (slightly less above, the frames
average it).

Slow drift (gusts, swells, fades) is part of the score on purpose: the variance is taken over the
whole recording, so level changes at every rate count alike, and a linear creep of D dB over the
recording scores D / sqrt(12). A stationary-noise denoiser is hurt as much by a floor that creeps
10 dB over a minute as by one that pumps at 4 Hz (its noise estimate is wrong either way), so both
are excluded alike rather than through a separate drift term.

Threshold: on the generated noises of `datagen.synthetic`, 40 draws each at 20 s and 3 sample
rates x mono/stereo at 1-60 s, the stationary types (white, pink, brown, hum, tape hiss, fan with
its slow wobble, HVAC) score 0.00-0.65 dB (the fan's deliberate +-0.2-0.5 dB wobble is the top)
and the non-stationary ones (bursts, syllable-rate modulation, door slams on a quiet floor,
fade-in; at least 8 s, so that an event occurs) score 5.6 dB and up. Any threshold in that gap
separates the generated sets; DEFAULT_STATIONARITY_THRESHOLD_DB = 3.0 dB is chosen for its physical
meaning: band levels whose fluctuation (beyond the estimator's own) has a standard deviation under
3 dB, i.e. sinusoidal wobble up to about +-4.2 dB or a drift of about 10 dB across the recording.
That admits real hum, hiss, fans, HVAC, rain and steady wind, whose levels always wander a little,
and rejects crackle, bursts, door slams, speech-like modulation and busy ambiences. A stricter
threshold (e.g. 1.5 dB, about 2x the generated stationary maximum) keeps only near-perfect noise.

Cost: one FFT pass; a 60 s 48 kHz stereo file takes ~0.1 s.

Streaming: `StationarityAccumulator` computes the same score from consecutive blocks of a recording,
keeping a remainder of less than one frame, the running sum of the frame power spectra and each
frame's band powers (one float64 per band and frame), so its memory does not grow with the audio
beyond those per-frame band powers. `stationarity_db` is the accumulator fed one block.
"""
from __future__ import annotations

import numpy as np
from scipy.special import polygamma

from .analysis import DIGITAL_SILENCE, StreamTail, accumulate_in_order

FRAME_S = 0.05  # analysis frame length; hop is half of it
LOWEST_BAND_HZ = 100.0
HIGHEST_BAND_HZ = 20000.0
BAND_RANGE_DB = 50.0  # bands this far below the loudest are ignored
FRAME_FLOOR_DB = 60.0  # a frame's band level is floored this far below the band's mean power
MIN_BINS_PER_BAND = 8  # so that each band's frame power has >= ~4 degrees of freedom (see step 4)
MIN_DURATION_S = 1.0  # of non-silent audio
DEFAULT_STATIONARITY_THRESHOLD_DB = 3.0
ENERGY_SPAN_BANDS = 3  # adjacent 1/3-octave bands per run of the power-weighted term (one octave)
_FRAMES_PER_BATCH = 512  # frames transformed at once (bounds the memory of a long block)
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
    for edge in edges[1:-1]:
        if edge - merged[-1] >= MIN_BINS_PER_BAND:
            merged.append(edge)
    if edges[-1] - merged[-1] < MIN_BINS_PER_BAND and len(merged) > 1:
        merged.pop()  # a too-narrow top band joins the one below
    return np.array([*merged, edges[-1]])


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


class StationarityAccumulator:
    """Steps 1-2 of the module docstring for a stream of (channels, n) blocks fed in order, then the score.

    Framing starts at the first non-silent sample of the downmix and runs across blocks (a remainder of
    less than one frame waits for the next block); frames ending after the last non-silent sample are
    dropped at the end. The frame power spectra are summed in frame order, so the score equals the
    whole-audio one bit for bit however the stream is cut. State: the remainder, two running spectra
    and the (frames, bands) band powers.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.frame = int(round(FRAME_S * sample_rate))
        self.hop = self.frame // 2
        self.window = np.hanning(self.frame + 1)[:-1]
        self.edges = _band_edges_bin(sample_rate, self.frame)
        self._seen = 0  # samples fed
        self._first: int | None = None  # stream index of the first and last non-silent downmix sample
        self._last: int | None = None
        self._tail = StreamTail()  # the downmix (float64) from the first non-silent sample on
        self._frames = 0  # frames transformed
        self._sum = np.zeros(self.frame // 2 + 1)  # their power spectra summed in frame order
        self._kept = 0  # frames ending at or before the last non-silent sample seen
        self._kept_sum = self._sum.copy()  # the running sum after the last of those
        self._band_power: list[np.ndarray] = []  # (frames, bands) chunks

    def update(self, audio: np.ndarray) -> None:
        """Feed the next (channels, n) samples (or (n,) mono)."""
        mono = np.atleast_2d(np.asarray(audio, dtype=np.float64)).mean(axis=0)
        start = self._seen
        self._seen += mono.size
        loud = np.flatnonzero(np.abs(mono) > DIGITAL_SILENCE)
        if loud.size:
            if self._first is None:
                self._first = self._tail.offset = start + int(loud[0])
                mono = mono[loud[0]:]
            self._last = start + int(loud[-1])
        if self._first is None:
            return  # leading silence
        kept = self._frames_ending_by_last()
        if kept >= self._frames > self._kept:  # every earlier frame ends before this block's sounding samples
            self._kept, self._kept_sum = self._frames, self._sum.copy()
        buffer = self._tail.join(mono)
        count = (buffer.size - self.frame) // self.hop + 1 if buffer.size >= self.frame else 0
        if count:
            frames = np.lib.stride_tricks.sliding_window_view(buffer, self.frame)[:: self.hop]
            for begin in range(0, count, _FRAMES_PER_BATCH):
                self._add_frames(frames[begin:min(count, begin + _FRAMES_PER_BATCH)], kept)
        self._tail.keep(buffer, count * self.hop)

    def _add_frames(self, frames: np.ndarray, kept: int) -> None:
        """Transform the next (n, frame) frames: keep their band powers, add their power spectra to the
        running sum in order, and note the sum after frame number `kept` - 1 if it is one of them."""
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        power = spectrum.real**2 + spectrum.imag**2  # (frames, bins)
        self._band_power.append(np.stack([power[:, lo:hi].sum(axis=1) for lo, hi in zip(self.edges[:-1], self.edges[1:])], axis=1))
        first_frame = self._frames
        running = accumulate_in_order(self._sum, power)
        self._frames += running.shape[0]
        self._sum = running[-1].copy()
        if kept > first_frame:
            self._kept = min(kept, self._frames)
            self._kept_sum = running[self._kept - first_frame - 1].copy()

    def _frames_ending_by_last(self) -> int:
        """How many frames from the first non-silent sample fit before the last one (inclusive)."""
        if self._last is None:
            return 0
        length = self._last - self._first + 1
        return (length - self.frame) // self.hop + 1 if length >= self.frame else 0

    def result(self) -> float:
        """`stationarity_db` of everything fed (raises ValueError like it)."""
        if self._first is None:
            raise ValueError("stationarity_db: the audio is digitally silent")
        length = self._last - self._first + 1
        if length < MIN_DURATION_S * self.sample_rate:
            raise ValueError(
                f"stationarity_db: {length / self.sample_rate:.2f} s of non-silent audio, need at least {MIN_DURATION_S} s"
            )
        band_power = np.concatenate(self._band_power)[: self._kept]
        mean_power = self._kept_sum / self._kept
        correlation_sq = _bin_correlation_sq(self.window)
        narrow, wide = (_excess_variances(band_power, mean_power, self.edges, correlation_sq, span) for span in (1, ENERGY_SPAN_BANDS))
        spread = float(np.median(_kept(*narrow)[0]))
        energy = weighted_median(*_kept(*wide))
        return float(np.sqrt(max(0.0, spread, energy)))


def _excess_variances(band_power: np.ndarray, mean_power: np.ndarray, edges: np.ndarray, correlation_sq: np.ndarray,
                      span: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps 3-4 for every run of `span` adjacent analysis bands (span 1: the bands themselves): its mean
    power (dB) and the variance of its frame levels in excess of the estimator's own (dB^2, may be
    negative) -> two (runs,) arrays. `band_power`: (frames, bands) power of each frame in each band;
    `mean_power`: (bins,) mean frame power spectrum; `edges`: (bands + 1,) bin edges of the bands."""
    bands = edges.size - 1
    band_power_db, excess_var_db2 = [], []
    for first in range(max(1, bands + 1 - span)):
        last = min(first + span, bands)
        lo, hi = edges[first], edges[last]
        band_mean = mean_power[lo:hi].sum()
        if band_mean <= 0.0:
            continue  # nothing at all in these bands
        band = band_power[:, first:last].sum(axis=1)
        level_db = 10.0 * np.log10(np.maximum(band, band_mean * 10.0 ** (-FRAME_FLOOR_DB / 10.0)))
        expected_var = _DB2 * float(polygamma(1, _gamma_shape(mean_power[lo:hi], correlation_sq)))
        band_power_db.append(10.0 * np.log10(band_mean))
        excess_var_db2.append(np.var(level_db, ddof=1) - expected_var)
    return np.array(band_power_db), np.array(excess_var_db2)


def _kept(band_power_db: np.ndarray, excess_var_db2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Excess variances and linear powers of the bands within BAND_RANGE_DB of the loudest."""
    kept = band_power_db >= band_power_db.max() - BAND_RANGE_DB
    return excess_var_db2[kept], 10.0 ** ((band_power_db[kept] - band_power_db.max()) / 10.0)


def stationarity_db(audio: np.ndarray, sample_rate: int) -> float:
    """Non-stationarity score in dB of a noise recording (lower = more stationary; 0 = as steady as
    stationary Gaussian noise). See the module docstring for the definition.

    audio: (channels, samples) or (samples,) float; sample_rate in Hz.
    Raises ValueError if the audio is digitally silent or shorter than MIN_DURATION_S once leading
    and trailing silence is trimmed.
    """
    meter = StationarityAccumulator(sample_rate)
    meter.update(audio)
    return meter.result()


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value at which the cumulative weight of the sorted values reaches half the total."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
