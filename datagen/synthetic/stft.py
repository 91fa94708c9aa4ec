"""Short-time Fourier processing for time-varying filters: sine-windowed frames at hop n_fft/2
(exact reconstruction) and minimum-phase spectra from magnitudes.
"""
from __future__ import annotations

import numpy as np
import scipy.fft


def _sine_window(n_fft: int) -> np.ndarray:
    """Square root of a periodic Hann window: as analysis and synthesis window at hop n_fft/2 it
    reconstructs exactly."""
    return np.sin(np.pi * np.arange(n_fft) / n_fft).astype(np.float32)


def stft(signal: np.ndarray, n_fft: int) -> np.ndarray:
    """(frames, n_fft//2+1) complex spectra of sine-windowed frames at hop n_fft/2; frame j is
    centred on sample (j-1)*n_fft/2, and every sample lies in two frames."""
    hop = n_fft // 2
    padded = np.pad(signal.astype(np.float32), (n_fft, n_fft + (-len(signal)) % hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return scipy.fft.rfft(frames * _sine_window(n_fft), axis=-1)


def istft(spectra: np.ndarray, n_fft: int, n_samples: int) -> np.ndarray:
    """Overlap-add inverse of `stft` -> (n_samples,)."""
    frames = scipy.fft.irfft(spectra, n=n_fft, axis=-1) * _sine_window(n_fft)
    out = np.zeros((len(frames) + 1) * (n_fft // 2), dtype=np.float32)
    for offset in range(2):  # even frames, then odd frames, each tile the signal without overlap
        tiled = frames[offset::2].ravel()
        out[offset * n_fft // 2 : offset * n_fft // 2 + tiled.size] += tiled
    return out[n_fft : n_fft + n_samples]


def minimum_phase(magnitude: np.ndarray, n_fft: int) -> np.ndarray:
    """Minimum-phase spectra (..., n_fft//2+1) with the given positive magnitude (folded cepstrum)."""
    cepstrum = scipy.fft.irfft(np.log(magnitude), n=n_fft, axis=-1)
    fold = np.zeros(n_fft, dtype=cepstrum.dtype)
    fold[0] = fold[n_fft // 2] = 1.0
    fold[1 : n_fft // 2] = 2.0
    phase = scipy.fft.rfft(cepstrum * fold, axis=-1).imag
    return magnitude * (np.cos(phase) + 1j * np.sin(phase))
