"""`spectral_gate` on signals fed in pieces, with memory bounded by a block size (no gradients).

`StreamingGate` carries every state across pieces exactly (the start/end padding, one detector
context frame each side of a block, the ballistics' last gain, the overlap-add accumulator and its
window envelope), so its concatenated output equals the one-shot gate up to float rounding, with
the same length. `denoise_long` runs it over a whole tensor. Audio is (batch, channels, samples).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from manifests.bands import BandLayout

from .gate import apply_gain, detector_power, gain_from_detector, gate_params, smooth_detector
from .stft import hann_window, n_frames, power_density, synthesize, window_envelope

Tensor = torch.Tensor


class StreamingGate:
    """`spectral_gate` on a signal fed in pieces of any size, with memory bounded by the block size.

    ``process(chunk)`` takes the next (batch, channels, n) samples and returns the output samples
    that are final so far (it lags the input by about one FFT frame plus a hop); ``flush()`` ends
    the signal and returns the rest. The concatenated outputs equal the one-shot `spectral_gate` of
    the whole signal up to float rounding, with the same length. The start is reflect-padded as soon
    as more than n_fft/2 samples have arrived, the end at `flush` (a signal of at most n_fft/2
    samples is zero-padded, as `stft` does); the detector's time smoothing sees one context frame
    each side of every block; the ballistics continue from the previous block's last gain;
    synthesis frames are overlap-added into a small accumulator normalized by the window envelope
    as `torch.istft` does. Gains are computed in blocks of about `block_s` seconds of frames, so a
    huge chunk does not need a huge spectrogram. No gradients.
    """

    def __init__(self, controls: Mapping[str, Tensor], layout: BandLayout, batch: int, channels: int, *,
                 block_s: float = 10.0, link_channels: bool = True, interpolation: str = "linear",
                 device=None, dtype=None):
        ref = controls.get("noise_profile_db")
        device = device if device is not None else (ref.device if isinstance(ref, Tensor) else None)
        dtype = dtype if dtype is not None else (ref.dtype if isinstance(ref, Tensor) and ref.is_floating_point()
                                                 else torch.float32)
        self.layout, self.batch, self.channels, self.link_channels = layout, batch, channels, link_channels
        self.device, self.dtype = device, dtype
        self.block = max(1, int(round(block_s * layout.sample_rate / layout.hop)))
        units_per_item = 1 if link_channels else channels
        self.params = gate_params(controls, batch, units_per_item, layout, interpolation, device, dtype)
        self.window = hann_window(layout, device, dtype)
        half = layout.n_fft // 2
        rows = batch * channels
        self._head = torch.zeros(rows, 0, device=device, dtype=dtype)  # input before the start pad is decided
        self._buf: Tensor | None = None  # padded input from padded position _buf_start
        self._buf_start = 0
        self._received = 0
        self._next = 0  # next frame whose gain is computed
        self._acc = torch.zeros(rows, 0, device=device, dtype=dtype)  # overlap-add accumulator from _acc_start
        self._env = torch.zeros(0, device=device, dtype=dtype)
        self._acc_start = 0
        self._emitted = half  # padded position of the next output sample
        self._state: Tensor | None = None
        self._samples: int | None = None  # known at flush

    def _empty(self) -> Tensor:
        return torch.zeros(self.batch, self.channels, 0, device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def process(self, audio: Tensor) -> Tensor:
        """Feed (batch, channels, n) samples -> the (batch, channels, m) output samples now final."""
        if self._samples is not None:
            raise RuntimeError("StreamingGate: process() after flush()")
        if audio.shape[:2] != (self.batch, self.channels):
            raise ValueError(f"expected ({self.batch}, {self.channels}, n) audio, got {tuple(audio.shape)}")
        x = audio.to(self.device, self.dtype).reshape(self.batch * self.channels, -1)
        self._received += x.shape[-1]
        half = self.layout.n_fft // 2
        if self._buf is None:
            self._head = torch.cat([self._head, x], dim=-1)
            if self._head.shape[-1] <= half:
                return self._empty()
            self._buf = torch.cat([self._head[:, 1:half + 1].flip(-1), self._head], dim=-1)  # reflect
            self._head = None
        else:
            self._buf = torch.cat([self._buf, x], dim=-1)
        return self._run(final=False)

    @torch.no_grad()
    def flush(self) -> Tensor:
        """End of the signal: the remaining output samples."""
        if self._samples is not None:
            return self._empty()
        half = self.layout.n_fft // 2
        self._samples = self._received
        if self._samples == 0:
            return self._empty()
        if self._buf is None:  # at most n_fft/2 samples: zero padding, as `stft`
            self._buf = F.pad(self._head, (half, half))
            self._head = None
        else:
            last = half + self._samples - 1 - self._buf_start  # buffer index of the last input sample
            self._buf = torch.cat([self._buf, self._buf[:, last - half:last].flip(-1)], dim=-1)  # reflect
        return self._run(final=True)

    def _run(self, final: bool) -> Tensor:
        layout = self.layout
        n_fft, hop, half = layout.n_fft, layout.hop, layout.n_fft // 2
        buf_end = self._buf_start + self._buf.shape[-1]
        if final:
            avail = n_frames(self._samples, layout)
            last = avail
        else:
            avail = (buf_end - n_fft) // hop + 1 if buf_end >= n_fft else 0
            last = avail - 1  # a frame's detector needs the next frame
        pieces = []
        while self._next < last:
            f0 = self._next
            f1 = min(f0 + self.block, last)
            self._gate_block(f0, f1, avail)
            self._next = f1
            end = half + self._samples if final and f1 == avail else min(f1 * hop, half + self._received)
            pieces.append(self._emit(end))
            keep = max(0, (self._next - 1) * hop)  # the next block's context frame starts here
            self._buf = self._buf[:, keep - self._buf_start:]
            self._buf_start = keep
        if not pieces:
            return self._empty()
        return torch.cat(pieces, dim=-1).reshape(self.batch, self.channels, -1)

    def _gate_block(self, f0: int, f1: int, avail: int) -> None:
        """Gate frames [f0, f1) (with one context frame each side where available) into the accumulator."""
        layout = self.layout
        n_fft, hop = layout.n_fft, layout.hop
        e0, e1 = max(f0 - 1, 0), min(f1 + 1, avail)
        chunk = self._buf[:, e0 * hop - self._buf_start:(e1 - 1) * hop + n_fft - self._buf_start]
        spec = torch.stft(chunk, n_fft, hop, n_fft, window=self.window, center=False, normalized=False,
                          onesided=True, return_complex=True)
        spec = spec.reshape(self.batch, self.channels, spec.shape[-2], spec.shape[-1])
        power = smooth_detector(detector_power(power_density(spec, layout), self.link_channels))
        power = power[f0 - e0:f0 - e0 + (f1 - f0)]
        gain_db = gain_from_detector(power, self.params, layout, self._state)
        self._state = gain_db[-1]
        gated = apply_gain(spec[..., f0 - e0:f0 - e0 + (f1 - f0)], gain_db, self.link_channels)
        frames = synthesize(gated.reshape(self.batch * self.channels, layout.n_bins, -1), layout)
        envelope = window_envelope(layout, f1 - f0, self.device, self.dtype)
        lo = f0 * hop - self._acc_start
        grow = lo + frames.shape[-1] - self._acc.shape[-1]
        if grow > 0:
            self._acc = F.pad(self._acc, (0, grow))
            self._env = F.pad(self._env, (0, grow))
        self._acc[:, lo:lo + frames.shape[-1]] += frames
        self._env[lo:lo + frames.shape[-1]] += envelope

    def _emit(self, end: int) -> Tensor:
        start = self._emitted
        if end <= start:
            return self._acc[:, :0]
        lo, hi = start - self._acc_start, end - self._acc_start
        out = self._acc[:, lo:hi] / self._env[lo:hi].clamp_min(1e-11)
        self._emitted = end
        drop = min(self._emitted, self._next * self.layout.hop) - self._acc_start
        if drop > 0:
            self._acc, self._env = self._acc[:, drop:], self._env[drop:]
            self._acc_start += drop
        return out


@torch.no_grad()
def denoise_long(
    audio: Tensor,
    controls: Mapping[str, Tensor],
    layout: BandLayout,
    block_s: float = 10.0,
    *,
    link_channels: bool = True,
    interpolation: str = "linear",
) -> Tensor:
    """Streaming `spectral_gate` for long signals, with memory bounded by the block size.

    Runs `StreamingGate` over the whole tensor (blocks of whole STFT frames of about `block_s`
    seconds; every state carried exactly across blocks). The result equals the one-shot
    `spectral_gate` up to float rounding. Only the input and output (plus one block of spectra)
    are held in memory. No gradients. To read and write files in pieces, use `StreamingGate` directly.
    """
    batch, channels, _ = audio.shape
    gate = StreamingGate(controls, layout, batch, channels, block_s=block_s, link_channels=link_channels,
                         interpolation=interpolation, device=audio.device, dtype=audio.dtype)
    return torch.cat([gate.process(audio), gate.flush()], dim=-1)
