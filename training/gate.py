"""Differentiable STFT spectral gate with interpretable controls (functional, torch).

`spectral_gate(audio, controls, layout)`, differentiable w.r.t. the audio and every control:

1. `stft.stft` and the per-bin power density (the manifest's units, so the detector and a band
   profile compare directly).
2. Detector: power averaged over channels (stereo-linked: one gain for all channels keeps the
   image; ``link_channels=False`` gates each channel on its own power), a fixed 3x3 binomial
   smoothing over (frames, bins), then a normalized Gaussian over frequency of standard deviation
   ``freq_smooth_hz`` (edges replicate). The detector, a local SNR estimate, is smoothed rather
   than the gain: that keeps strong harmonic peaks open while still removing the isolated
   noise-bin openings that make musical noise (docs/fidelity-notes.md).
3. Static curve: ``x = 10 log10(P) - (noise_bins_db + threshold_db)``,
   ``gain_db = -reduction_db * sigmoid(-x / tau)`` with ``tau = knee_db / (2 ln 9)``: the gain
   moves from 10 % to 90 % of its dB range over ``knee_db``; 0 dB fully open, ``-reduction_db``
   fully closed, no hard step. ``noise_bins_db`` is the band profile interpolated in dB between
   band centres (`bandmap.profile_to_bins`), plus ``tonal_detail`` times the in-band shape of a
   per-bin floor when the controls carry one (`controls.NOISE_SHAPE_KEY`): that puts the threshold
   at a hum harmonic's bin rather than spreading it over the band.
4. Ballistics: an asymmetric one-pole smoother of the dB gain over frames, per bin,
   ``y[t] = a y[t-1] + (1 - a) x[t]``, ``a = exp(-hop / (sample_rate * tau))`` with
   ``tau = attack_ms`` while the gain rises (opening) and ``release_ms`` while it falls; it starts
   from the first frame's gain. A custom autograd function runs the recursion and its exact adjoint.
5. ``X * 10^(gain_db / 20)`` and `stft.istft`; a 0 dB gain reconstructs the input exactly up to rounding.

Internals work time-major, (frames, units, bins) with units = batch (x channels if unlinked).
The streaming form is `training.streaming`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from manifests.bands import BandLayout

from .bandmap import profile_to_bins
from .controls import CONTROL_SPECS, NOISE_SHAPE_KEY, as_batch, check_known
from .stft import istft, power_density, power_to_db, stft

Tensor = torch.Tensor

_LN9 = math.log(9.0)
_MIN_KERNEL_SIGMA_BINS = 0.2  # added in quadrature: at 0 Hz the Gaussian is a delta (neighbours < 4e-6)
_KERNEL_SPAN_SIGMAS = 4.0  # the frequency kernel is truncated at +-4 sigma (tail mass < 1e-4)


# -- ballistics -------------------------------------------------------------------------------------


class _Ballistics(torch.autograd.Function):
    """Asymmetric one-pole smoother y[t] = a_t y[t-1] + (1 - a_t) x[t] over dim 0, with
    a_t = a_down where x[t] < y[t-1] (falling) else a_up. Exact adjoint in backward."""

    @staticmethod
    def forward(ctx, x: Tensor, y0: Tensor, a_up: Tensor, a_down: Tensor) -> Tensor:
        # y = x + a_up d + (a_down - a_up) relu(d), d = y[t-1] - x[t]: the same recursion, written
        # with preallocated outputs and no boolean tensors (4 small kernels per frame)
        out = torch.empty_like(x)
        diff, falling_part = torch.empty_like(y0), torch.empty_like(y0)
        delta = a_down - a_up
        prev = y0
        for t in range(x.shape[0]):
            xt = x[t]
            torch.sub(prev, xt, out=diff)
            torch.clamp_min(diff, 0.0, out=falling_part)
            prev = out[t]
            torch.addcmul(xt, a_up, diff, out=prev)
            prev.addcmul_(delta, falling_part)
        ctx.save_for_backward(x, out, y0, a_up, a_down)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        x, y, y0, a_up, a_down = ctx.saved_tensors
        y_prev = torch.cat([y0.unsqueeze(0), y[:-1]], dim=0)
        rising = ~(y_prev > x)  # exactly the forward's decision
        a = torch.where(rising, a_up, a_down)
        # g[t] = dL/dy[t] including the recursion: g[t] = grad[t] + a[t+1] g[t+1]
        g = torch.empty_like(grad_out)
        g[-1] = grad_out[-1]
        for t in range(x.shape[0] - 2, -1, -1):
            torch.addcmul(grad_out[t], a[t + 1], g[t + 1], out=g[t])
        grad_x = (1.0 - a) * g
        grad_a = g * (y_prev - x)
        grad_up = grad_down = None
        if ctx.needs_input_grad[2]:
            grad_up = torch.where(rising, grad_a, 0.0).sum(0)
        if ctx.needs_input_grad[3]:
            grad_down = torch.where(rising, 0.0, grad_a).sum(0)
        return grad_x, a[0] * g[0], grad_up, grad_down


def one_pole_coefficient(time_ms: Tensor, layout: BandLayout) -> Tensor:
    """a = exp(-hop / (sample_rate * tau)): the per-frame pole of a one-pole with time constant tau."""
    return torch.exp(-(layout.hop * 1000.0 / layout.sample_rate) / time_ms)


def gate_ballistics(gain_db: Tensor, attack_ms: Tensor, release_ms: Tensor, layout: BandLayout,
                    state: Tensor | None = None) -> Tensor:
    """Attack/release smoothing over frames of a (frames, units, bins) dB gain; attack/release (units, 1).

    `state` (units, bins) is the smoother's output at the previous frame (streaming); None starts
    from the first frame's value.
    """
    frames, units, bins = gain_db.shape
    a_up = one_pole_coefficient(attack_ms, layout).expand(units, bins).reshape(-1)
    a_down = one_pole_coefficient(release_ms, layout).expand(units, bins).reshape(-1)
    x = gain_db.reshape(frames, units * bins)
    y0 = x[0] if state is None else state.reshape(units * bins)
    return _Ballistics.apply(x, y0, a_up, a_down).reshape(frames, units, bins)


# -- detector and static curve ----------------------------------------------------------------------


def _smooth_121(x: Tensor, dim: int) -> Tensor:
    """[1, 2, 1] / 4 along `dim` with replicated edges."""
    n = x.shape[dim]
    if n == 1:
        return x
    out = 0.5 * x
    out.narrow(dim, 1, n - 1).add_(x.narrow(dim, 0, n - 1), alpha=0.25)
    out.narrow(dim, 0, n - 1).add_(x.narrow(dim, 1, n - 1), alpha=0.25)
    out.narrow(dim, 0, 1).add_(x.narrow(dim, 0, 1), alpha=0.25)
    out.narrow(dim, n - 1, 1).add_(x.narrow(dim, n - 1, 1), alpha=0.25)
    return out


def detector_power(power: Tensor, link_channels: bool = True) -> Tensor:
    """(batch, channels, bins, frames) power density -> (frames, units, bins), unsmoothed."""
    if link_channels:
        power = power.mean(dim=1)
    else:
        power = power.reshape(-1, power.shape[-2], power.shape[-1])
    return power.permute(2, 0, 1)


def smooth_detector(power: Tensor) -> Tensor:
    """Fixed 3x3 binomial smoothing over (frames, bins) of a (frames, units, bins) power."""
    return _smooth_121(_smooth_121(power, 0), 2)


def static_gain_db(level_db: Tensor, threshold_bins_db: Tensor, reduction_db: Tensor, knee_db: Tensor) -> Tensor:
    """Soft-knee gate curve: 0 dB well above threshold, -reduction_db well below.

    level_db (frames, units, bins); threshold_bins_db (units, bins); reduction/knee (units, 1).
    """
    tau = knee_db / (2.0 * _LN9)
    return -reduction_db * torch.sigmoid((threshold_bins_db - level_db) / tau)


def kernel_half_width(sigma_bins: float) -> int:
    """Half length in bins of the truncated frequency kernel for a Gaussian of `sigma_bins` bins
    (before clipping to the spectrum): the kernel has 2 * half + 1 taps."""
    return int(math.ceil(_KERNEL_SPAN_SIGMAS * math.sqrt(sigma_bins**2 + _MIN_KERNEL_SIGMA_BINS**2)))


def frequency_smoothing(values: Tensor, sigma_hz: Tensor, layout: BandLayout) -> Tensor:
    """Normalized Gaussian smoothing over bins of (frames, units, bins) values; sigma_hz (units, 1).

    The kernel is truncated at +-4 sigma of the largest sigma in the batch; at 0 Hz it is a delta.
    """
    bin_hz = layout.sample_rate / layout.n_fft
    sigma_bins = sigma_hz.reshape(-1) / bin_hz
    max_sigma = float(sigma_bins.detach().max()) if sigma_bins.numel() else 0.0
    half = kernel_half_width(max_sigma)
    half = max(1, min(half, values.shape[-1] - 1)) if values.shape[-1] > 1 else 0
    if half == 0:
        return values
    offsets = torch.arange(-half, half + 1, device=values.device, dtype=values.dtype)
    var = sigma_bins.square() + _MIN_KERNEL_SIGMA_BINS**2
    kernel = torch.exp(-0.5 * offsets.square() / var[:, None])  # (units, K)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.unsqueeze(-1)  # (units, K, 1): broadcasts over (frames, units, bins)
    bins = values.shape[-1]
    padded = F.pad(values, (half, half), mode="replicate")  # (frames, units, bins + 2 half)
    out = padded[..., half:half + bins] * kernel[:, half]
    for k in range(1, half + 1):  # symmetric kernel: one multiply-add per pair of taps
        pair = padded[..., half + k:half + k + bins] + padded[..., half - k:half - k + bins]
        out = out.addcmul_(kernel[:, half + k], pair)
    return out


# -- controls -> gain -------------------------------------------------------------------------------


@dataclass
class GateParams:
    """The controls broadcast per gated unit, with the threshold spread over bins."""

    threshold_bins_db: Tensor  # (units, bins): noise profile (+ tonal detail x shape) + threshold
    reduction_db: Tensor  # (units, 1)
    knee_db: Tensor
    attack_ms: Tensor
    release_ms: Tensor
    freq_smooth_hz: Tensor


def gate_params(controls: Mapping[str, Tensor], batch: int, units_per_item: int, layout: BandLayout,
                interpolation: str, device, dtype) -> GateParams:
    """Controls in units ((batch, 1) / (batch, n_bands), missing ones at their defaults) -> `GateParams`
    with batch * units_per_item rows."""
    check_known(controls, frozenset({NOISE_SHAPE_KEY}))
    if "noise_profile_db" not in controls:
        raise KeyError("spectral_gate needs controls['noise_profile_db'] (batch, n_bands)")
    def per_unit(value, width: int) -> Tensor:  # (batch, width) -> (units, width)
        t = as_batch(value, batch, width, device, dtype)
        return t.repeat_interleave(units_per_item, dim=0) if units_per_item > 1 else t

    full = {s.name: per_unit(controls.get(s.name, s.default), layout.n_bands if s.per_band else 1) for s in CONTROL_SPECS}
    threshold = profile_to_bins(full["noise_profile_db"], layout, interpolation) + full["threshold_db"]
    if controls.get(NOISE_SHAPE_KEY) is not None:
        shape = per_unit(controls[NOISE_SHAPE_KEY], layout.n_bins)
        threshold = threshold + profile_to_bins(full["tonal_detail"], layout, interpolation) * shape
    return GateParams(threshold, full["reduction_db"], full["knee_db"], full["attack_ms"], full["release_ms"],
                      full["freq_smooth_hz"])


def gain_from_detector(smoothed_power: Tensor, p: GateParams, layout: BandLayout, state: Tensor | None) -> Tensor:
    """(frames, units, bins) `smooth_detector` power -> the smoothed dB gain, same shape; `state` as
    `gate_ballistics`."""
    detector = frequency_smoothing(smoothed_power, p.freq_smooth_hz, layout)
    gain = static_gain_db(power_to_db(detector), p.threshold_bins_db, p.reduction_db, p.knee_db)
    gain = gate_ballistics(gain, p.attack_ms, p.release_ms, layout, state)
    return gain


def apply_gain(spec: Tensor, gain_db: Tensor, link_channels: bool) -> Tensor:
    """spec (B, C, F, T); gain_db (T, units, F) -> gated spec."""
    batch, channels, bins, frames = spec.shape
    gain = torch.exp(gain_db * (math.log(10.0) / 20.0)).permute(1, 2, 0)  # (units, F, T)
    gain = gain.unsqueeze(1) if link_channels else gain.reshape(batch, channels, bins, frames)
    return spec * gain


# -- public gate ------------------------------------------------------------------------------------


def _gate(audio: Tensor, controls: Mapping[str, Tensor], layout: BandLayout, spec: Tensor | None,
          power: Tensor | None, link_channels: bool, interpolation: str) -> tuple[Tensor, Tensor]:
    """-> (gated audio, gain dB (frames, units, bins))."""
    batch, channels, samples = audio.shape
    if spec is None:
        spec = stft(audio, layout)
    units_per_item = 1 if link_channels else channels
    params = gate_params(controls, batch, units_per_item, layout, interpolation, audio.device, audio.dtype)
    if power is None:
        power = power_density(spec, layout)
    detector = smooth_detector(detector_power(power, link_channels))
    gain_db = gain_from_detector(detector, params, layout, None)
    return istft(apply_gain(spec, gain_db, link_channels), layout, samples), gain_db


def spectral_gate(audio: Tensor, controls: Mapping[str, Tensor], layout: BandLayout, *, spec: Tensor | None = None,
                  power: Tensor | None = None, link_channels: bool = True, interpolation: str = "linear") -> Tensor:
    """Denoise (batch, channels, samples) audio with a spectral gate -> same shape.

    controls: dict name -> tensor in units, (batch, 1) scalars and (batch, n_bands)
    `noise_profile_db` (see `CONTROL_SPECS`; missing scalars take their defaults, floats broadcast).
    spec, power: `stft(audio, layout)` and its `power_density` if already computed (shared with the
    controller; pass the same tensors, they are not checked).
    link_channels: one gain for all channels from the channel-mean power (default) or a gate per channel.
    interpolation: how the band profile spreads over bins, "linear" or "step" (`bandmap.profile_to_bins`).
    """
    return _gate(audio, controls, layout, spec, power, link_channels, interpolation)[0]


def spectral_gate_with_gain(audio: Tensor, controls: Mapping[str, Tensor], layout: BandLayout, *,
                            spec: Tensor | None = None, power: Tensor | None = None, link_channels: bool = True,
                            interpolation: str = "linear") -> tuple[Tensor, Tensor]:
    """`spectral_gate` -> (audio, the applied gain in dB (batch, units, n_bins, frames)), units = 1 if linked
    else channels."""
    batch, channels, _ = audio.shape
    out, gain_db = _gate(audio, controls, layout, spec, power, link_channels, interpolation)
    units = 1 if link_channels else channels
    return out, gain_db.permute(1, 2, 0).reshape(batch, units, layout.n_bins, -1)

