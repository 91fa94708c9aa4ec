"""Evaluation metrics (per example): SI-SDR, SI-SDR improvement, multi-resolution STFT distance,
and, when their packages are importable, wideband PESQ and STOI (speech only; never installed here).

Audio is (batch, channels, samples) (numpy or torch); every metric returns one value per example,
the channels averaged (SI-SDR in dB is computed per channel, then averaged).
"""
from __future__ import annotations

import importlib.util
import math
import numpy as np
import torch

from .losses import MultiResolutionSTFTLoss
from .losses import si_sdr as _si_sdr

Tensor = torch.Tensor

PESQ_AVAILABLE = importlib.util.find_spec("pesq") is not None
STOI_AVAILABLE = importlib.util.find_spec("pystoi") is not None
PESQ_RATE = 16000  # wideband PESQ runs at 16 kHz


def _as_tensor(x) -> Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 1:
        t = t[None, None]
    elif t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"audio must be (batch, channels, samples), got {tuple(t.shape)}")
    return t


def si_sdr(estimate, reference) -> Tensor:
    """Scale-invariant SDR in dB (Le Roux et al. 2019) -> (batch,): `losses.si_sdr` (zero-mean,
    float64 inside) per channel, then averaged over channels."""
    est = _as_tensor(estimate).float()
    ref = _as_tensor(reference).float().to(est.device)
    if est.shape != ref.shape:
        raise ValueError(f"estimate {tuple(est.shape)} and reference {tuple(ref.shape)} differ")
    batch, channels, samples = est.shape
    per_channel = _si_sdr(est.reshape(batch * channels, 1, samples), ref.reshape(batch * channels, 1, samples))
    return per_channel.reshape(batch, channels).mean(dim=-1)


def si_sdr_improvement(estimate, reference, noisy) -> Tensor:
    """SI-SDR(estimate) - SI-SDR(noisy), dB, (batch,)."""
    return si_sdr(estimate, reference) - si_sdr(noisy, reference)


# multi-resolution STFT distance ------------------------------------------------------------------

_MRSTFT = MultiResolutionSTFTLoss()


def reference_magnitudes(reference, loss: MultiResolutionSTFTLoss = _MRSTFT) -> list[Tensor]:
    """Magnitudes of the reference at every resolution of `loss`, (batch, -1) each: compute them
    once and pass them to `mr_stft_distance` for several estimates of the same references."""
    ref = _as_tensor(reference).float()
    with torch.no_grad():
        return [loss._mag(ref, n_fft).reshape(ref.shape[0], -1) for n_fft in loss.fft_sizes]


def mr_stft_distance(estimate, reference=None, *, ref_mags: list[Tensor] | None = None,
                     loss: MultiResolutionSTFTLoss = _MRSTFT) -> Tensor:
    """Multi-resolution STFT distance per example -> (batch,): the training loss
    `losses.MultiResolutionSTFTLoss` (its resolutions, magnitudes and weights: spectral convergence
    + mean |log-magnitude difference|, averaged over resolutions) for each example alone, i.e. its
    batch mean equals the loss. 0 for a perfect estimate. `ref_mags`: `reference_magnitudes(reference)`."""
    est = _as_tensor(estimate).float()
    if ref_mags is None:
        ref_mags = reference_magnitudes(reference, loss)
    total = torch.zeros(est.shape[0], device=est.device)
    with torch.no_grad():
        for n_fft, ref in zip(loss.fft_sizes, ref_mags):
            mag = loss._mag(est, n_fft).reshape(est.shape[0], -1)
            ref = ref.to(mag.device)
            sc = torch.linalg.vector_norm(ref - mag, dim=-1) / torch.linalg.vector_norm(ref, dim=-1).clamp_min(1e-8)
            log = (torch.log(ref) - torch.log(mag)).abs().mean(dim=-1)
            total = total + loss.w_sc * sc + loss.w_log * log
    return total / len(loss.fft_sizes)


# optional perceptual metrics -------------------------------------------------------------------


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return x
    import soxr

    return soxr.resample(x.T, rate, target).T


def pesq_wb(estimate, reference, sample_rate: int) -> np.ndarray:
    """Wideband PESQ (MOS-LQO) per example (channels averaged), resampled to 16 kHz; NaN where
    PESQ fails (e.g. no utterance found) or when the `pesq` package is not importable."""
    est = _as_tensor(estimate).double().cpu().numpy()
    ref = _as_tensor(reference).double().cpu().numpy()
    out = np.full(est.shape[0], np.nan)
    if not PESQ_AVAILABLE:
        return out
    from pesq import pesq

    for b in range(est.shape[0]):
        e16, r16 = _resample(est[b], sample_rate, PESQ_RATE), _resample(ref[b], sample_rate, PESQ_RATE)
        scores = []
        for c in range(est.shape[1]):
            try:
                scores.append(pesq(PESQ_RATE, r16[c], e16[c], "wb"))
            except Exception:  # the pesq package raises on silent / too-short input
                scores.append(math.nan)
        out[b] = float(np.mean(scores))
    return out


def stoi(estimate, reference, sample_rate: int, extended: bool = False) -> np.ndarray:
    """STOI per example (channels averaged); NaN when the `pystoi` package is not importable."""
    est = _as_tensor(estimate).double().cpu().numpy()
    ref = _as_tensor(reference).double().cpu().numpy()
    out = np.full(est.shape[0], np.nan)
    if not STOI_AVAILABLE:
        return out
    from pystoi import stoi as _stoi

    for b in range(est.shape[0]):
        out[b] = float(np.mean([_stoi(ref[b, c], est[b, c], sample_rate, extended=extended)
                                for c in range(est.shape[1])]))
    return out


def availability() -> dict[str, bool]:
    """Which optional metric packages are importable."""
    return {"pesq": PESQ_AVAILABLE, "stoi": STOI_AVAILABLE}
