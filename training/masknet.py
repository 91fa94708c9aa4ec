"""The black-box baseline: a convolutional-recurrent mask estimator on the gate's own STFT.

Noisy audio -> `stft.stft` (the shared `BandLayout` framing) -> per-bin log power density averaged
over channels (dB, minus the clip's mean dB, / 20: invariant to the input level) -> a 1-D conv over
frames with the bins as channels (kernel 3, `hidden` channels) + LayerNorm + GELU -> a bidirectional
GRU (`gru_layers`, `hidden` units per direction) -> a linear layer to one mask value per bin ->
sigmoid. The mask (one per bin and frame, shared by all channels) multiplies the complex STFT and
`stft.istft` resynthesizes. 2.1 M parameters with the defaults (hidden 256, 1 GRU layer); a training
step costs about as much as one of the controller + gate (the recurrent layer dominates on CPU).

It is trained with the stage-2 audio loss on the same data (training/train.py). It has no
interpretable controls: that is the comparison the paper makes.

`denoise(audio)` handles any length: up to `block_s` in one shot, longer inputs in overlapping
blocks (1 s of overlap, linear crossfade; bounded memory; the bidirectional GRU only sees its block).
"""
from __future__ import annotations

import torch
from torch import nn

from manifests.bands import BandLayout, erb_layout

from .stft import istft, power_density, power_to_db, stft

Tensor = torch.Tensor


class MaskNet(nn.Module):
    def __init__(self, layout: BandLayout | None = None, hidden: int = 256, gru_layers: int = 1):
        super().__init__()
        self.layout = layout if layout is not None else erb_layout(48000)
        self.config = dict(hidden=int(hidden), gru_layers=int(gru_layers))
        bins = self.layout.n_bins
        units = int(hidden)
        self.conv = nn.Conv1d(bins, hidden, 3, padding=1)
        self.norm = nn.LayerNorm(hidden)
        self.gru = nn.GRU(hidden, units, num_layers=gru_layers, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * units, bins)
        with torch.no_grad():  # start near an open mask (sigmoid(3) = 0.95): the identity is a good start
            self.out.bias.fill_(3.0)
            self.out.weight.mul_(0.1)

    def mask(self, power: Tensor) -> Tensor:
        """(batch, channels, n_bins, frames) power density -> (batch, n_bins, frames) mask in (0, 1)."""
        db = power_to_db(power.mean(dim=1))  # (B, F, T)
        x = (db - db.mean(dim=(1, 2), keepdim=True)) / 20.0
        h = torch.nn.functional.gelu(self.norm(self.conv(x).transpose(1, 2)))  # (B, T, H)
        h, _ = self.gru(h)
        return torch.sigmoid(self.out(h)).transpose(1, 2)

    def forward(self, audio: Tensor) -> Tensor:
        """(batch, channels, samples) -> denoised, same shape."""
        if audio.ndim != 3:
            raise ValueError(f"audio must be (batch, channels, samples), got {tuple(audio.shape)}")
        spec = stft(audio, self.layout)
        mask = self.mask(power_density(spec, self.layout))
        return istft(spec * mask.unsqueeze(1), self.layout, audio.shape[-1])

    @torch.no_grad()
    def enhance(self, audio: Tensor, block_s: float = 10.0) -> tuple[Tensor, dict[str, Tensor]]:
        """(denoised audio, {}): the interface shared with `controller.Denoiser` (a mask has no controls)."""
        return self.denoise(audio, block_s), {}

    @torch.no_grad()
    def denoise(self, audio: Tensor, block_s: float = 10.0, overlap_s: float = 1.0) -> Tensor:
        """Inference on any length -> denoised Tensor (overlapping blocks of `block_s` cross-faded over `overlap_s`)."""
        rate = self.layout.sample_rate
        samples = audio.shape[-1]
        block = max(int(block_s * rate), 4 * self.layout.n_fft)
        if samples <= block:
            out = self.forward(audio)
        else:
            overlap = min(int(overlap_s * rate), block // 2)
            step = block - overlap
            out = torch.zeros_like(audio)
            weight = torch.zeros(samples, device=audio.device, dtype=audio.dtype)
            ramp = torch.linspace(0.0, 1.0, overlap + 2, device=audio.device, dtype=audio.dtype)[1:-1]
            starts = list(range(0, max(samples - overlap, 1), step))
            for k, start in enumerate(starts):
                end = min(start + block, samples)
                piece = self.forward(audio[..., start:end])
                w = torch.ones(end - start, device=audio.device, dtype=audio.dtype)
                if k > 0:
                    w[:overlap] = ramp[:min(overlap, end - start)]
                if end < samples:
                    w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
                out[..., start:end] += piece * w
                weight[start:end] += w
            out = out / weight.clamp_min(1e-6)
        return out
