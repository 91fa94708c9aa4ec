"""Losses: multi-resolution STFT, SI-SDR, SI-SDR lost against the input, the stage-1 profile loss and a control regularizer.

All take (batch, channels, samples) audio (channels are folded into the batch) and return a scalar
mean over the batch unless stated otherwise.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .controls import SCALAR_CONTROL_NAMES, SPECS

Tensor = torch.Tensor


def si_sdr(estimate: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SDR in dB per item: (batch, channels, samples) -> (batch,).

    Both signals are made zero-mean; channels are concatenated (one SI-SDR per item). A silent target
    gives a very low value rather than NaN.
    """
    est = (estimate - estimate.mean(dim=-1, keepdim=True)).reshape(estimate.shape[0], -1).to(torch.float64)
    ref = (target - target.mean(dim=-1, keepdim=True)).reshape(target.shape[0], -1).to(torch.float64)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.square().sum(-1, keepdim=True) + eps)
    projection = scale * ref
    error = est - projection
    ratio = (projection.square().sum(-1) + eps) / (error.square().sum(-1) + eps)
    return (10.0 * torch.log10(ratio)).to(estimate.dtype)


def harm_loss(estimate: Tensor, noisy: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of the SI-SDR (dB) lost against the noisy input: max(0, SI-SDR(noisy) - SI-SDR(estimate))."""
    return torch.relu(si_sdr(noisy, target) - si_sdr(estimate, target)).mean()


def si_sdr_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """-SI-SDR (dB), mean over the batch."""
    return -si_sdr(estimate, target).mean()


class MultiResolutionSTFTLoss(torch.nn.Module):
    """Sum over FFT sizes of spectral convergence + mean |log |S| - log |S_hat|| (Yamamoto et al. 2020).

    Periodic Hann windows, hop = n_fft / 4, frames from the first sample (no padding). Magnitudes are floored at
    sqrt(`power_floor`) inside the log so silent passages do not dominate. Averaged over resolutions.
    """

    def __init__(self, fft_sizes: Sequence[int] = (512, 1024, 2048), hop_divisor: int = 4, power_floor: float = 1e-8,
                 w_sc: float = 1.0, w_log: float = 1.0):
        super().__init__()
        self.fft_sizes = tuple(int(n) for n in fft_sizes)
        self.hop_divisor = int(hop_divisor)
        self.power_floor = float(power_floor)
        self.w_sc, self.w_log = float(w_sc), float(w_log)

    def _mag(self, x: Tensor, n_fft: int) -> Tensor:
        # frames by `unfold` + rfft (no padding): the same spectrogram as an uncentred torch.stft, with
        # a backward about twice as fast on CPU
        x = x.reshape(-1, x.shape[-1])
        if x.shape[-1] < n_fft:
            x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
        window = torch.hann_window(n_fft, periodic=True, device=x.device, dtype=x.dtype)
        spec = torch.fft.rfft(x.unfold(-1, n_fft, max(1, n_fft // self.hop_divisor)) * window, dim=-1)
        return (spec.real.square() + spec.imag.square()).clamp_min(self.power_floor).sqrt()

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        total = estimate.new_zeros(())
        batch = estimate.shape[0]
        for n_fft in self.fft_sizes:
            est, ref = self._mag(estimate, n_fft), self._mag(target, n_fft)
            est, ref = est.reshape(batch, -1), ref.reshape(batch, -1)
            sc = torch.linalg.vector_norm(ref - est, dim=-1) / torch.linalg.vector_norm(ref, dim=-1).clamp_min(1e-8)
            log = (torch.log(ref) - torch.log(est)).abs().mean(dim=-1)
            total = total + (self.w_sc * sc + self.w_log * log).mean()
        return total / len(self.fft_sizes)


def profile_loss(predicted_db: Tensor, target_db: Tensor, band_weights: Tensor | None = None) -> Tensor:
    """Mean L1 (dB) between (batch, n_bands) profiles, optionally weighted per band (weights normalized)."""
    error = (predicted_db - target_db).abs()
    if band_weights is None:
        return error.mean()
    w = band_weights.to(error) / band_weights.sum()
    return (error * w).sum(dim=-1).mean()


def control_regularizer(normalized: Mapping[str, Tensor], names: Sequence[str] = SCALAR_CONTROL_NAMES) -> Tensor:
    """Mean squared distance of normalized (0..1) scalar controls to their defaults' normalized values."""
    terms = [(normalized[n] - SPECS[n].default_normalized).square().mean() for n in names if n in normalized]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).mean()
