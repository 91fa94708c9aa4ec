"""The perceptual band layout shared by the manifest's noise-profile targets and the denoiser.

Bands are contiguous groups of STFT bins, spaced uniformly on the ERB-rate scale
(Glasberg & Moore 1990, E(f) = 21.4 log10(1 + 0.00437 f)) from 0 Hz to Nyquist. Every band holds
at least one bin, so at low frequencies where an ERB is narrower than a bin the bands are one bin wide.

Power is a per-bin power density: |STFT|^2 / sum(window^2), so white noise of variance s^2 reads
10 log10(s^2) dB in every band whatever the FFT size. A band's level is the mean of that density
over its bins, over frames and over channels, in dB (floored at -120 dB).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

POWER_FLOOR_DB = -120.0
SAMPLE_RATE_RANGE_HZ = (8000, 192000)  # as `datagen`'s audio.sample_rate
N_FFT_RANGE = (64, 16384)  # as `datagen`'s profile.n_fft floor; 16384 = 0.34 s frames at 48 kHz


def hz_to_erb_rate(freq_hz: np.ndarray | float) -> np.ndarray:
    """ERB-rate (Cams) of a frequency in Hz."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(freq_hz, dtype=np.float64))


def erb_rate_to_hz(erb_rate: np.ndarray | float) -> np.ndarray:
    """Inverse of `hz_to_erb_rate`."""
    return (10.0 ** (np.asarray(erb_rate, dtype=np.float64) / 21.4) - 1.0) / 0.00437


@dataclass(frozen=True)
class BandLayout:
    """STFT framing plus band edges, as bin indices: band b covers bins [edges[b], edges[b+1])."""

    sample_rate: int
    n_fft: int
    hop: int
    band_edges_bin: tuple[int, ...]

    def __post_init__(self) -> None:
        low, high = SAMPLE_RATE_RANGE_HZ
        if not low <= self.sample_rate <= high:
            raise ValueError(f"band layout: sample_rate {self.sample_rate} Hz is outside {low}..{high} Hz")
        low, high = N_FFT_RANGE
        if not low <= self.n_fft <= high:
            raise ValueError(f"band layout: n_fft {self.n_fft} is outside {low}..{high}")
        if not 1 <= self.hop <= self.n_fft:
            raise ValueError(f"band layout: hop {self.hop} is outside 1..n_fft ({self.n_fft})")
        edges = self.band_edges_bin
        if len(edges) < 2 or edges[0] != 0 or edges[-1] != self.n_bins or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"band layout: band_edges_bin must rise strictly from 0 to n_fft // 2 + 1 = {self.n_bins}")

    @property
    def n_bands(self) -> int:
        return len(self.band_edges_bin) - 1

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def band_edges_hz(self) -> np.ndarray:
        """(n_bands + 1,) lower edge of each band in Hz, then the upper edge of the last (Nyquist+)."""
        return np.asarray(self.band_edges_bin, dtype=np.float64) * self.sample_rate / self.n_fft

    @property
    def band_centers_hz(self) -> np.ndarray:
        """(n_bands,) centre of each band's bin range in Hz."""
        edges = np.asarray(self.band_edges_bin, dtype=np.float64)
        return (edges[:-1] + edges[1:] - 1.0) / 2.0 * self.sample_rate / self.n_fft

    def bin_to_band(self) -> np.ndarray:
        """(n_bins,) band index of every STFT bin."""
        return np.repeat(np.arange(self.n_bands), np.diff(self.band_edges_bin))

    def band_matrix(self) -> np.ndarray:
        """(n_bands, n_bins) float32 averaging matrix: row b is 1/width on band b's bins."""
        matrix = np.zeros((self.n_bands, self.n_bins), dtype=np.float32)
        for band, (lo, hi) in enumerate(zip(self.band_edges_bin[:-1], self.band_edges_bin[1:])):
            matrix[band, lo:hi] = 1.0 / (hi - lo)
        return matrix

    def to_dict(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop": self.hop,
            "band_edges_bin": list(self.band_edges_bin),
            "scale": "erb",
            "window": "hann",
            "power": "|X|^2/sum(w^2), mean over bins, frames, channels; dB",
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BandLayout":
        """The layout `to_dict` wrote; ValueError says what is missing or out of range."""
        try:
            return cls(int(data["sample_rate"]), int(data["n_fft"]), int(data["hop"]), tuple(int(b) for b in data["band_edges_bin"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"band layout: missing or malformed entry {exc}; expected sample_rate, n_fft, hop, band_edges_bin") from None


def erb_layout(sample_rate: int, n_bands: int = 48, n_fft: int = 2048, hop: int = 512) -> BandLayout:
    """ERB-spaced layout of `n_bands` bands over the `n_fft` STFT at `sample_rate` Hz."""
    n_bins = n_fft // 2 + 1
    if not 1 <= n_bands <= n_bins:
        raise ValueError(f"n_bands must be between 1 and n_fft//2+1={n_bins}, got {n_bands}")
    nyquist_erb = hz_to_erb_rate(sample_rate / 2.0)
    edges_hz = erb_rate_to_hz(np.linspace(0.0, nyquist_erb, n_bands + 1))
    raw = np.round(edges_hz * n_fft / sample_rate).astype(int)
    edges = [0]
    for band in range(1, n_bands):
        # at least one bin per band, and leave at least one bin for every band still to come
        edges.append(int(min(max(raw[band], edges[-1] + 1), n_bins - (n_bands - band))))
    edges.append(n_bins)
    return BandLayout(int(sample_rate), int(n_fft), int(hop), tuple(edges))


def power_spectrogram(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Per-bin power density of a (channels, samples) float signal -> (channels, frames, n_fft//2+1) float32.

    Frames are Hann-windowed, hop `hop`, no padding; a signal shorter than `n_fft` is zero-padded
    to one frame. Computed in float32 (relative error ~1e-6, far below any use of the profile).
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if audio.shape[-1] < n_fft:
        audio = np.pad(audio, ((0, 0), (0, n_fft - audio.shape[-1])))
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft, axis=-1)[:, ::hop]
    spectrum = scipy.fft.rfft(frames * window.astype(np.float32), axis=-1)
    return (spectrum.real**2 + spectrum.imag**2) / np.float32(np.sum(window**2))


def band_profile_db(audio: np.ndarray, layout: BandLayout, frame_hop: int | None = None) -> np.ndarray:
    """Mean per-band power density in dB of a (channels, samples) signal -> (n_bands,) float32.

    Frames advance by `frame_hop` samples (default `layout.hop`). The mean over frames estimates the
    same quantity at any hop; `datagen` uses non-overlapping frames (hop = n_fft), four times cheaper.
    """
    power = power_spectrogram(audio, layout.n_fft, frame_hop or layout.hop).mean(axis=(0, 1)).astype(np.float64)  # pairwise float32 sums
    per_band = layout.band_matrix().astype(np.float64) @ power
    return (10.0 * np.log10(np.maximum(per_band, 10.0 ** (POWER_FLOOR_DB / 10.0)))).astype(np.float32)
