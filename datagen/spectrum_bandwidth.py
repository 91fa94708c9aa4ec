"""Effective bandwidth of a recording, from its long-term power spectrum (smoothed over 1/6 octave).

The top of the content (levels within `BANDWIDTH_FLOOR_MARGIN_DB` of the loudest one above 20 Hz), or,
where the spectrum falls by `BANDWIDTH_CLIFF_DB` within `BANDWIDTH_CLIFF_SPAN_OCT` and stays below (a
low-pass cliff), the last frequency within `BANDWIDTH_EDGE_DB` of the plateau before it. The probe
streams the spectrum (`LongTermSpectrumAccumulator`); `datagen.bandwidth` turns the figure into a policy.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

from .analysis import StreamTail, accumulate_in_order, as_2d
BANDWIDTH_NFFT = 4096
BANDWIDTH_SMOOTHING_OCT = 1 / 6
BANDWIDTH_FLOOR_MARGIN_DB = 65.0
BANDWIDTH_CLIFF_DB = 30.0
BANDWIDTH_CLIFF_SPAN_OCT = 1 / 6
BANDWIDTH_EDGE_DB = 3.0
_BANDWIDTH_REFERENCE_MIN_HZ = 20.0
_BANDWIDTH_FRAMES_PER_BATCH = 256


def _octave_smoothed_db(power: np.ndarray, width_oct: float) -> np.ndarray:
    """Mean of `power` (per linear-frequency bin) over a `width_oct`-octave band centred on each bin, in dB."""
    bins = np.arange(power.size)
    low = np.floor(bins * 2.0 ** (-width_oct / 2)).astype(np.int64)
    high = np.minimum(np.ceil(bins * 2.0 ** (width_oct / 2)).astype(np.int64), power.size - 1)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10((cumulative[high + 1] - cumulative[low]) / (high + 1 - low))


def _add_frame_powers(totals: np.ndarray, audio: np.ndarray, n_fft: int, count: int) -> np.ndarray:
    """`totals` ((channels, n_fft // 2 + 1) float64) plus the power spectra of the first `count` frames of
    `audio` ((channels, samples)): Hann frames of `n_fft` samples, hop max(1, n_fft // 2), each frame's mean
    removed, added per channel in frame order; transformed in batches to bound memory -> the new totals."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft, axis=-1)[:, :: max(1, n_fft // 2)][:, :count]
    window = scipy.signal.get_window("hann", n_fft)
    for start in range(0, count, _BANDWIDTH_FRAMES_PER_BATCH):
        batch = frames[:, start:start + _BANDWIDTH_FRAMES_PER_BATCH]
        spectrum = np.fft.rfft((batch - batch.mean(axis=-1, keepdims=True)) * window, axis=-1)
        totals = accumulate_in_order(totals, np.moveaxis(np.square(np.abs(spectrum)), 1, 0))[-1].copy()
    return totals


class LongTermSpectrumAccumulator:
    """The long-term spectrum of `bandwidth_hz` for a stream of (channels, n) blocks fed in order.

    Frames are aligned across blocks (a remainder of less than one frame waits for the next block) and
    their powers summed in frame order, so the spectrum equals the whole-audio one bit for bit.
    A stream shorter than one BANDWIDTH_NFFT frame is one frame of its own length.
    State: the remainder and one float64 spectrum per channel.
    """

    def __init__(self, n_fft: int = BANDWIDTH_NFFT) -> None:
        self.n_fft = n_fft
        self.shape = (0, 0)  # (channels, samples) fed so far
        self._tail = StreamTail()
        self._frames = 0
        self._totals: np.ndarray | None = None  # (channels, n_fft // 2 + 1)

    def update(self, block: np.ndarray) -> None:
        """Feed the next (channels, n) samples."""
        block = as_2d(block)
        self.shape = (block.shape[0], self.shape[1] + block.shape[1])
        buffer = self._tail.join(block)
        hop = max(1, self.n_fft // 2)
        count = (buffer.shape[1] - self.n_fft) // hop + 1 if buffer.shape[1] >= self.n_fft else 0
        if count:
            if self._totals is None:
                self._totals = np.zeros((buffer.shape[0], self.n_fft // 2 + 1))
            self._totals = _add_frame_powers(self._totals, buffer, self.n_fft, count)
            self._frames += count
        self._tail.keep(buffer, count * hop)

    def spectrum(self) -> tuple[np.ndarray, int]:
        """((n_fft // 2 + 1,) unscaled Welch power spectrum averaged over frames and channels, n_fft).

        Raises ValueError if nothing was fed.
        """
        channels, samples = self.shape
        if not samples:
            raise ValueError("bandwidth needs at least one sample, got none")
        if not self._frames:  # shorter than one frame: the tail is the whole stream
            totals = _add_frame_powers(np.zeros((channels, samples // 2 + 1)), self._tail.samples, samples, 1)
            return totals.sum(axis=0) / channels, samples
        return self._totals.sum(axis=0) / (channels * self._frames), self.n_fft


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
    Returns 0.0 for digital silence. Gain invariant. Raises ValueError for empty audio.
    """
    meter = LongTermSpectrumAccumulator()
    meter.update(audio)
    return bandwidth_from_spectrum(*meter.spectrum(), sample_rate)


def bandwidth_from_spectrum(power: np.ndarray, n_fft: int, sample_rate: float) -> float:
    """`bandwidth_hz` from the long-term spectrum: (n_fft // 2 + 1,) powers of `n_fft`-point frames
    (`LongTermSpectrumAccumulator.spectrum`)."""
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
