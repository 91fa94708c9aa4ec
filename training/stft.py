"""STFT analysis and synthesis on the shared `BandLayout` framing, and the per-bin power density.

Framing is that of `manifests.bands.power_spectrogram` (periodic Hann of n_fft, hop, frame t
centred on sample t*hop with reflect padding), and `power_density` uses its normalization
``|X|^2 / sum(w^2)``, so a manifest band profile and a level computed here are directly comparable.
`istft` inverts `stft` exactly up to float rounding. Audio is (batch, channels, samples); spectra
are (batch, channels, n_bins, frames) complex. Everything is differentiable.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manifests.bands import POWER_FLOOR_DB, BandLayout

Tensor = torch.Tensor

_POWER_FLOOR = 10.0 ** (POWER_FLOOR_DB / 10.0)


def hann_window(layout: BandLayout, device=None, dtype=torch.float32) -> Tensor:
    """Periodic Hann window of n_fft samples (as `manifests.bands.power_spectrogram`)."""
    return torch.hann_window(layout.n_fft, periodic=True, device=device, dtype=dtype)


def n_frames(n_samples: int, layout: BandLayout) -> int:
    """Frames of `stft` for a signal of `n_samples` (centre framing)."""
    return 1 + n_samples // layout.hop


def _pad_mode(n_samples: int, layout: BandLayout) -> str:
    # reflect needs more samples than the pad; very short signals are zero-padded instead
    return "reflect" if n_samples > layout.n_fft // 2 else "constant"


def stft(audio: Tensor, layout: BandLayout) -> Tensor:
    """(batch, channels, samples) real -> (batch, channels, n_bins, frames) complex.

    Frame t is centred on sample t*hop (reflect padding at the ends), periodic Hann, no scaling.
    """
    batch, channels, samples = audio.shape
    spec = torch.stft(
        audio.reshape(batch * channels, samples), layout.n_fft, layout.hop, layout.n_fft,
        window=hann_window(layout, audio.device, audio.dtype), center=True,
        pad_mode=_pad_mode(samples, layout), normalized=False, onesided=True, return_complex=True,
    )
    return spec.reshape(batch, channels, spec.shape[-2], spec.shape[-1])


def overlap_add(frames: Tensor, hop: int) -> Tensor:
    """Overlap-add (..., n_fft, frames) -> (..., (frames - 1) * hop + n_fft), frame t starting at t*hop.

    Frames are cut into ceil(n_fft / hop) hop-long pieces added with shifted slices (much faster than
    `F.fold` on CPU); differentiable.
    """
    *lead, n_fft, count = frames.shape
    pieces = -(-n_fft // hop)
    frames = F.pad(frames, (0, 0, 0, pieces * hop - n_fft)).reshape(*lead, pieces, hop, count)
    out = frames.new_zeros(*lead, count + pieces - 1, hop)
    for i in range(pieces):
        out[..., i:i + count, :] += frames[..., i, :, :].transpose(-1, -2)
    return out.reshape(*lead, (count + pieces - 1) * hop)[..., :(count - 1) * hop + n_fft]


def window_envelope(layout: BandLayout, count: int, device=None, dtype=torch.float32) -> Tensor:
    """Overlap-added squared window of `count` frames ((count - 1) * hop + n_fft,)."""
    window = hann_window(layout, device, dtype).square()
    return overlap_add(window[:, None].expand(layout.n_fft, count), layout.hop)


def synthesize(spec: Tensor, layout: BandLayout) -> Tensor:
    """Windowed inverse FFT of every frame, overlap-added (not yet divided by the envelope).

    (..., n_bins, frames) complex -> (..., (frames - 1) * hop + n_fft) on the padded time axis.
    """
    frames = torch.fft.irfft(spec, n=layout.n_fft, dim=-2)
    frames = frames * hann_window(layout, frames.device, frames.dtype)[:, None]
    return overlap_add(frames, layout.hop)


def istft(spec: Tensor, layout: BandLayout, length: int) -> Tensor:
    """Inverse of `stft`: (batch, channels, n_bins, frames) -> (batch, channels, length).

    Weighted overlap-add divided by the squared-window envelope (as `torch.istft`, same result up to
    rounding), trimmed of the centre padding.
    """
    half = layout.n_fft // 2
    audio = synthesize(spec, layout)
    if audio.shape[-1] < half + length:
        raise ValueError(f"{spec.shape[-1]} frames cannot produce {length} samples")
    envelope = window_envelope(layout, spec.shape[-1], audio.device, audio.dtype)
    return audio[..., half:half + length] / envelope[half:half + length].clamp_min(1e-11)


def power_density(spec: Tensor, layout: BandLayout) -> Tensor:
    """Per-bin power density |X|^2 / sum(w^2) of a complex STFT (same shape, real)."""
    norm = float(np.sum(np.hanning(layout.n_fft + 1)[:-1] ** 2))
    return (spec.real.square() + spec.imag.square()) / norm


def power_to_db(power: Tensor) -> Tensor:
    """10 log10, floored at POWER_FLOOR_DB (as the manifest profiles)."""
    return 10.0 * torch.log10(power.clamp_min(_POWER_FLOOR))
