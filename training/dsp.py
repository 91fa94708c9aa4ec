"""Differentiable STFT spectral gate with interpretable controls (functional, torch).

Signal flow of `spectral_gate` (all steps differentiable w.r.t. the audio and every control):

1. STFT with the shared `BandLayout` framing (periodic Hann, n_fft, hop, ``center=True`` with
   reflect padding); per-bin power density ``|X|^2 / sum(w^2)``, exactly the normalization of
   `manifests.bands.power_spectrogram`, so a band profile from the manifest and the detector
   level are directly comparable.
2. Detector: the power is averaged over channels (stereo-linked gate: one gain for all channels,
   the stereo image is kept; ``link_channels=False`` gates each channel on its own power), lightly
   smoothed by a fixed 3x3 binomial kernel over (frames, bins), then smoothed over frequency by a
   normalized Gaussian kernel whose standard deviation is ``freq_smooth_hz`` (a soft kernel,
   differentiable w.r.t. its width; edges replicate). Smoothing the *detector* (a local SNR
   estimate) rather than the gain is deliberate. Measured on harmonic bursts in white noise
   (threshold 6 dB, reduction 15 dB, 40 Hz): smoothing the dB gain pulls the harmonic peaks towards
   the closed gaps between them (signal-to-distortion 25 dB, vs 48 dB unsmoothed), smoothing the
   detector keeps strong peaks above threshold (46 dB) and removes the isolated noise-bin openings
   that make musical noise at least as well (spread of the dB gain over pure noise 0.63 dB, vs
   0.70 dB smoothing the gain and 1.07 dB unsmoothed).
3. Static curve: ``x = 10 log10(P) - (noise_bins_db + threshold_db)``;
   ``gain_db = -reduction_db * sigmoid(-x / tau)`` with ``tau = knee_db / (2 ln 9)``, i.e. the gain
   goes from 10 % to 90 % of its dB range over ``knee_db`` around the threshold. Fully open gives
   0 dB, fully closed ``-reduction_db``; no hard step anywhere. ``noise_bins_db`` is the per-band
   profile interpolated linearly (in dB) between band centres (constant beyond the outer centres),
   plus, when the controls carry the in-band shape of a per-bin noise floor (`NOISE_SHAPE_KEY`: the
   controller's blind floor, `floor_shape_db`, or a noise recording's mean, `mean_shape_db`),
   ``tonal_detail`` (interpolated the same way) times that shape: a band profile spreads a hum
   harmonic over its whole band, so the harmonic's bin passes as signal while quieter signal bins
   beside it are gated; the per-bin shape puts the threshold at the harmonic. On broadband noise the
   shape is estimation ripple (shrunk by a deadband), hence a per-band share, 0 by default.
4. Ballistics: an asymmetric one-pole smoother of the dB gain over frames, per bin,
   ``y[t] = a y[t-1] + (1 - a) x[t]`` with ``a = exp(-hop / (sample_rate * tau))``, using
   ``tau = attack_ms`` while the gain rises (the gate opens) and ``release_ms`` while it falls.
   It starts from the first frame's gain (no start-up transient). A custom autograd function runs
   the recursion as a tight loop and its exact adjoint backwards (the rise/fall decision itself is
   piecewise constant, as in any compressor).
5. ``X * 10^(gain_db / 20)`` and the inverse STFT (``length`` = input length). With a 0 dB gain the
   chain is an exact identity up to float rounding (perfect reconstruction).

The profile's range reaches +30 dB because a power *density* of low-frequency or tonal noise is
not bounded by 0 dB (white noise of variance 1 reads 0 dB, but a full-scale 50 Hz hum reads about
+25 dB in its bin); the manifest floors it at -120 dB.

Controls follow the dasp-pytorch conventions: audio is (batch, channels, samples); each control is
one tensor, (batch, 1) for scalars or (batch, n_bands) for the profile and the tonal detail, in
physical units. Neural networks produce values in (0, 1) which `denormalize_controls` maps to units
with `CONTROL_SPECS`.

`CONTROL_SPECS` (the single table of every control; "log" maps u in (0,1) geometrically):

==================  ====  =======  ======  =======  ======  ===============================================
name                unit  min      max     default  scale   meaning
==================  ====  =======  ======  =======  ======  ===============================================
noise_profile_db    dB    -130     30      -80      linear  per band noise power density (bands.py units)
threshold_db        dB    -6       24      6        linear  gate opens this far above the noise profile
reduction_db        dB    0        40      15       linear  depth of the closed gate (max attenuation)
knee_db             dB    1        24      8        linear  width of the soft knee (10 %..90 % of the gain)
attack_ms           ms    1        200     10       log     time constant of the gain rising (opening)
release_ms          ms    10       1000    100      log     time constant of the gain falling (closing)
freq_smooth_hz      Hz    0        250     40       linear  std of the Gaussian smoothing the detector in freq
tonal_detail        share 0        1       0        linear  per band share of the per-bin floor's in-band shape
==================  ====  =======  ======  =======  ======  ===============================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from manifests.bands import POWER_FLOOR_DB, BandLayout

Tensor = torch.Tensor

_POWER_FLOOR = 10.0 ** (POWER_FLOOR_DB / 10.0)
_LN9 = math.log(9.0)
_MIN_KERNEL_SIGMA_BINS = 0.2  # added in quadrature: at 0 Hz the Gaussian is a delta (neighbours < 4e-6)
_KERNEL_SPAN_SIGMAS = 4.0  # the frequency kernel is truncated at +-4 sigma (tail mass < 1e-4)


# --------------------------------------------------------------------------------------------------
# control table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlSpec:
    """One control: physical unit, range, default and the (0, 1) <-> unit mapping ("linear" or "log")."""

    name: str
    unit: str
    min: float
    max: float
    default: float
    scale: str = "linear"
    per_band: bool = False
    description: str = ""

    def to_physical(self, u: Tensor) -> Tensor:
        """Map normalized values in [0, 1] to units."""
        if self.scale == "log":
            return torch.exp(math.log(self.min) + u * math.log(self.max / self.min))
        return self.min + (self.max - self.min) * u

    def to_normalized(self, value: Tensor) -> Tensor:
        """Inverse of `to_physical` (not clamped)."""
        if self.scale == "log":
            return (torch.log(value) - math.log(self.min)) / math.log(self.max / self.min)
        return (value - self.min) / (self.max - self.min)

    @property
    def default_normalized(self) -> float:
        return float(self.to_normalized(torch.tensor(self.default, dtype=torch.float64)))


CONTROL_SPECS: tuple[ControlSpec, ...] = (
    ControlSpec("noise_profile_db", "dB", -130.0, 30.0, -80.0, "linear", True,
                "noise power density per band, |X|^2/sum(w^2) averaged over the band's bins (manifests/bands.py)"),
    ControlSpec("threshold_db", "dB", -6.0, 24.0, 6.0, "linear", False,
                "the gate is half open when the detector is this far above the noise profile"),
    ControlSpec("reduction_db", "dB", 0.0, 40.0, 15.0, "linear", False,
                "attenuation of the fully closed gate"),
    ControlSpec("knee_db", "dB", 1.0, 24.0, 8.0, "linear", False,
                "detector range over which the gain moves from 10 % to 90 % of its dB span"),
    ControlSpec("attack_ms", "ms", 1.0, 200.0, 10.0, "log", False,
                "one-pole time constant of the gain rising (gate opening), per bin, over frames"),
    ControlSpec("release_ms", "ms", 10.0, 1000.0, 100.0, "log", False,
                "one-pole time constant of the gain falling (gate closing), per bin, over frames"),
    ControlSpec("freq_smooth_hz", "Hz", 0.0, 250.0, 40.0, "linear", False,
                "standard deviation of the Gaussian smoothing the detector power over frequency"),
    ControlSpec("tonal_detail", "share", 0.0, 1.0, 0.0, "linear", True,
                "share of the per-bin noise floor's shape inside each band added to the threshold "
                "(1: follows hum and whine harmonics bin by bin; 0: the smooth band profile)"),
)
# Not a control: the in-band shape (batch, n_bins) dB of the noise floor that `tonal_detail` scales
# (`in_band_shape_db` of the controller's blind per-bin floor, or of a noise recording's per-bin mean).
# Carried in the controls mapping; ignored if absent.
NOISE_SHAPE_KEY = "noise_shape_bins_db"
# spread (std, dB) of `in_band_shape_db` of `blind_noise_bins_db` on white noise, times sqrt(frames used):
# measured 12.7-14.1 over 94-2,813 frames (2-60 s at 48 kHz, stride 2); sets the deadband of `floor_shape_db`
QUANTILE_RIPPLE_DB = 13.5
# the same for the per-bin mean power over frames (a noise recording's measured floor, `mean_shape_db`):
# measured 5.5-6.0 over 47-1,876 frames (0.5-20 s)
MEAN_RIPPLE_DB = 5.7
SPECS: dict[str, ControlSpec] = {spec.name: spec for spec in CONTROL_SPECS}
CONTROL_NAMES: tuple[str, ...] = tuple(SPECS)
SCALAR_CONTROL_NAMES: tuple[str, ...] = tuple(s.name for s in CONTROL_SPECS if not s.per_band)


def control_table_markdown() -> str:
    """The control table as Markdown (for reports and the README)."""
    rows = ["| control | unit | min | max | default | mapping | meaning |", "|---|---|---|---|---|---|---|"]
    for s in CONTROL_SPECS:
        width = " (per band)" if s.per_band else ""
        rows.append(f"| {s.name}{width} | {s.unit} | {s.min:g} | {s.max:g} | {s.default:g} | {s.scale} "
                    f"| {s.description} |")
    return "\n".join(rows)


def _as_batch(value, batch: int, width: int, device, dtype) -> Tensor:
    """Broadcast a float / array / tensor control to (batch, width)."""
    t = torch.as_tensor(value, device=device, dtype=dtype)
    if t.ndim == 0:
        t = t.reshape(1, 1)
    elif t.ndim == 1:
        t = t.reshape(-1, 1) if width == 1 else t.reshape(1, -1)
    if t.ndim != 2 or t.shape[1] not in (1, width) or t.shape[0] not in (1, batch):
        raise ValueError(f"control of shape {tuple(t.shape)} does not broadcast to ({batch}, {width})")
    return t.expand(batch, width)


def make_controls(batch: int, layout: BandLayout, device=None, dtype=torch.float32, **values) -> dict[str, Tensor]:
    """Controls in units, every missing one at its default; values may be floats, arrays or tensors."""
    unknown = set(values) - set(SPECS)
    if unknown:
        raise KeyError(f"unknown controls {sorted(unknown)}; known: {CONTROL_NAMES}")
    out = {}
    for s in CONTROL_SPECS:
        width = layout.n_bands if s.per_band else 1
        out[s.name] = _as_batch(values.get(s.name, s.default), batch, width, device, dtype).contiguous()
    return out


def denormalize_controls(normalized: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """(0, 1) values -> units, per `CONTROL_SPECS`."""
    return {name: SPECS[name].to_physical(u) for name, u in normalized.items()}


def normalize_controls(controls: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Units -> (0, 1) values, per `CONTROL_SPECS` (inverse of `denormalize_controls`)."""
    return {name: SPECS[name].to_normalized(v) for name, v in controls.items()}


# --------------------------------------------------------------------------------------------------
# STFT and power
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# bands <-> bins
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _interp_matrix_np(layout: BandLayout, mode: str) -> np.ndarray:
    if mode == "step":
        matrix = np.zeros((layout.n_bins, layout.n_bands), dtype=np.float64)
        matrix[np.arange(layout.n_bins), layout.bin_to_band()] = 1.0
        return matrix
    if mode != "linear":
        raise ValueError(f"unknown profile interpolation {mode!r}; use 'linear' or 'step'")
    edges = np.asarray(layout.band_edges_bin, dtype=np.float64)
    centres = (edges[:-1] + edges[1:] - 1.0) / 2.0
    bins = np.arange(layout.n_bins, dtype=np.float64)
    eye = np.eye(layout.n_bands)
    return np.stack([np.interp(bins, centres, eye[b]) for b in range(layout.n_bands)], axis=1)


def profile_to_bins(profile_db: Tensor, layout: BandLayout, mode: str = "linear") -> Tensor:
    """(batch, n_bands) dB -> (batch, n_bins) dB: linear interpolation between band centres
    (constant beyond the first/last centre), or "step" (every bin takes its band's value)."""
    matrix = torch.as_tensor(_interp_matrix_np(layout, mode), device=profile_db.device, dtype=profile_db.dtype)
    return profile_db @ matrix.T


def bins_to_bands_power(power: Tensor, layout: BandLayout) -> Tensor:
    """Mean of a power over each band's bins: (..., n_bins) -> (..., n_bands)."""
    matrix = torch.as_tensor(layout.band_matrix(), device=power.device, dtype=power.dtype)
    return power @ matrix.T


def in_band_shape_db(bins_db: Tensor, layout: BandLayout, deadband_db: float = 0.0) -> Tensor:
    """(batch, n_bins) dB -> its deviation from the interpolated profile of its band means (in power), dB,
    shrunk towards 0 by `deadband_db` (soft threshold: deviations within it are taken as estimation ripple).

    Zero for a spectrum that follows its interpolated band levels (a flat one, as white noise expects); a hum
    harmonic gives a peak at its bin and dips elsewhere in its band. Scaled by `tonal_detail`, it shapes
    the gate's threshold inside bands.
    """
    band_db = power_to_db(bins_to_bands_power(10.0 ** (bins_db / 10.0), layout))
    shape = bins_db - profile_to_bins(band_db, layout)
    return torch.sign(shape) * (shape.abs() - deadband_db).clamp_min(0.0) if deadband_db > 0 else shape


def floor_shape_db(floor_bins_db: Tensor, layout: BandLayout, frames: int, frame_stride: int = 1) -> Tensor:
    """`in_band_shape_db` of a `blind_noise_bins_db(power, q, frame_stride)` floor of a power with `frames` frames,
    with a deadband of twice that estimate's ripple on white noise (`QUANTILE_RIPPLE_DB` / sqrt(frames used)):
    a broadband floor gives ~0, a tone's bin stands out. (batch, n_bins) dB."""
    frames_used = len(range(0, max(1, frames), max(1, frame_stride)))  # as power[..., ::frame_stride]
    return in_band_shape_db(floor_bins_db, layout, 2.0 * QUANTILE_RIPPLE_DB / math.sqrt(frames_used))


def mean_shape_db(mean_bins_db: Tensor, layout: BandLayout, frames: int) -> Tensor:
    """`in_band_shape_db` of a noise recording's per-bin mean power over `frames` frames (dB), with a deadband
    of twice the mean's ripple on white noise (`MEAN_RIPPLE_DB` / sqrt(frames)). (batch, n_bins) dB."""
    return in_band_shape_db(mean_bins_db, layout, 2.0 * MEAN_RIPPLE_DB / math.sqrt(max(1, frames)))


def power_to_db(power: Tensor) -> Tensor:
    """10 log10, floored at POWER_FLOOR_DB (as the manifest profiles)."""
    return 10.0 * torch.log10(power.clamp_min(_POWER_FLOOR))


# --------------------------------------------------------------------------------------------------
# blind noise estimate (baseline / prior)
# --------------------------------------------------------------------------------------------------


def _quantile_bias(q: float, dof1: bool) -> float:
    """Ratio quantile/mean of a power bin: exponential (complex Gaussian bin) or chi2(1) (DC, Nyquist)."""
    if dof1:
        return 2.0 * float(torch.special.erfinv(torch.tensor(q, dtype=torch.float64))) ** 2
    return -math.log1p(-q)


def blind_noise_bins_db(power: Tensor, quantile: float = 0.1, frame_stride: int = 1) -> Tensor:
    """Per-bin noise power estimate from a (batch, channels, n_bins, frames) power density -> (batch, n_bins) dB.

    The `quantile` of each bin over frames (an order statistic, k = floor(q (T-1)) + 1), divided by
    the quantile/mean ratio of the bin's distribution under stationary Gaussian noise (exponential;
    chi-square with one degree of freedom at DC and Nyquist), then averaged over channels.
    Uses the order statistic's expected level k / (T + 1) for the correction. `frame_stride` > 1
    uses every n-th frame only (faster; with 75 % overlap stride 2 loses little information).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be in (0, 1)")
    if frame_stride > 1:
        power = power[..., ::frame_stride]
    frames = power.shape[-1]
    k = int(math.floor(quantile * (frames - 1))) + 1
    q_eff = k / (frames + 1.0)
    order = torch.kthvalue(power.detach(), k, dim=-1).values  # (B, C, F)
    ratio = torch.full((power.shape[-2],), _quantile_bias(q_eff, False), dtype=power.dtype, device=power.device)
    ratio[0] = ratio[-1] = _quantile_bias(q_eff, True)
    mean_power = (order / ratio).mean(dim=1)  # (B, F)
    return power_to_db(mean_power)


def blind_noise_profile_db(audio: Tensor, layout: BandLayout, quantile: float = 0.1, spec: Tensor | None = None,
                           frame_stride: int = 1) -> Tensor:
    """Classic blind estimate of the stationary noise's band profile -> (batch, n_bands) dB.

    Quantile (minimum-statistics-like) tracking per bin over frames, bias-corrected for the
    distribution of a noise-only bin (see `blind_noise_bins_db`), averaged in power over channels
    and over each band's bins. Comparable to the manifest's `noise_profile_db`. Signal present in a
    fraction p < 1 - q of a bin's frames biases the estimate up by about -10 log10(1 - p) dB
    (+1.5 dB at p = 0.3, +3 dB at p = 0.5); a dense signal (most music) biases it more, which is
    what the controller's profile head learns to correct. Not differentiable (detached).
    """
    if spec is None:
        spec = stft(audio, layout)
    bins_db = blind_noise_bins_db(power_density(spec, layout), quantile, frame_stride)
    return power_to_db(bins_to_bands_power(10.0 ** (bins_db / 10.0), layout))


# --------------------------------------------------------------------------------------------------
# gate internals (time-major layout: (frames, units, bins), units = batch [x channels if unlinked])
# --------------------------------------------------------------------------------------------------


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


def frequency_smoothing(values: Tensor, sigma_hz: Tensor, layout: BandLayout) -> Tensor:
    """Normalized Gaussian smoothing over bins of (frames, units, bins) values; sigma_hz (units, 1).

    The kernel is truncated at +-4 sigma of the largest sigma in the batch; at 0 Hz it is a delta.
    """
    bin_hz = layout.sample_rate / layout.n_fft
    sigma_bins = sigma_hz.reshape(-1) / bin_hz
    max_sigma = float(sigma_bins.detach().max()) if sigma_bins.numel() else 0.0
    half = int(math.ceil(_KERNEL_SPAN_SIGMAS * math.sqrt(max_sigma**2 + _MIN_KERNEL_SIGMA_BINS**2)))
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


@dataclass
class _GateParams:
    threshold_bins_db: Tensor  # (units, bins)
    reduction_db: Tensor  # (units, 1)
    knee_db: Tensor
    attack_ms: Tensor
    release_ms: Tensor
    freq_smooth_hz: Tensor


def _gate_params(controls: Mapping[str, Tensor], batch: int, units_per_item: int, layout: BandLayout,
                 interpolation: str, device, dtype) -> _GateParams:
    unknown = set(controls) - set(SPECS) - {NOISE_SHAPE_KEY}
    if unknown:
        raise KeyError(f"unknown controls {sorted(unknown)}; known: {CONTROL_NAMES}")
    if "noise_profile_db" not in controls:
        raise KeyError("spectral_gate needs controls['noise_profile_db'] (batch, n_bands)")
    def per_unit(value, width: int) -> Tensor:  # (batch, width) -> (units, width)
        t = _as_batch(value, batch, width, device, dtype)
        return t.repeat_interleave(units_per_item, dim=0) if units_per_item > 1 else t

    full = {s.name: per_unit(controls.get(s.name, s.default), layout.n_bands if s.per_band else 1) for s in CONTROL_SPECS}
    threshold = profile_to_bins(full["noise_profile_db"], layout, interpolation) + full["threshold_db"]
    if controls.get(NOISE_SHAPE_KEY) is not None:
        shape = per_unit(controls[NOISE_SHAPE_KEY], layout.n_bins)
        threshold = threshold + profile_to_bins(full["tonal_detail"], layout, interpolation) * shape
    return _GateParams(threshold, full["reduction_db"], full["knee_db"], full["attack_ms"], full["release_ms"],
                       full["freq_smooth_hz"])


def _gain_from_detector(smoothed_power: Tensor, p: _GateParams, layout: BandLayout, state: Tensor | None) -> Tensor:
    detector = frequency_smoothing(smoothed_power, p.freq_smooth_hz, layout)
    gain = static_gain_db(power_to_db(detector), p.threshold_bins_db, p.reduction_db, p.knee_db)
    gain = gate_ballistics(gain, p.attack_ms, p.release_ms, layout, state)
    return gain


def _apply_gain(spec: Tensor, gain_db: Tensor, link_channels: bool) -> Tensor:
    """spec (B, C, F, T); gain_db (T, units, F) -> gated spec."""
    batch, channels, bins, frames = spec.shape
    gain = torch.exp(gain_db * (math.log(10.0) / 20.0)).permute(1, 2, 0)  # (units, F, T)
    gain = gain.unsqueeze(1) if link_channels else gain.reshape(batch, channels, bins, frames)
    return spec * gain


# --------------------------------------------------------------------------------------------------
# public gate
# --------------------------------------------------------------------------------------------------


def spectral_gate(
    audio: Tensor,
    controls: Mapping[str, Tensor],
    layout: BandLayout,
    *,
    spec: Tensor | None = None,
    power: Tensor | None = None,
    link_channels: bool = True,
    interpolation: str = "linear",
    return_gain: bool = False,
):
    """Denoise (batch, channels, samples) audio with a spectral gate -> same shape.

    controls: dict name -> tensor in units, (batch, 1) scalars and (batch, n_bands)
    `noise_profile_db` (see `CONTROL_SPECS`; missing scalars take their defaults, floats broadcast).
    spec, power: `stft(audio, layout)` and its `power_density` if already computed (shared with the
    controller; pass the same tensors, they are not checked).
    link_channels: one gain for all channels from the channel-mean power (default) or a gate per channel.
    return_gain: also return the applied gain in dB, (batch, units, n_bins, frames) with units = 1 if linked.
    """
    batch, channels, samples = audio.shape
    if spec is None:
        spec = stft(audio, layout)
    units_per_item = 1 if link_channels else channels
    params = _gate_params(controls, batch, units_per_item, layout, interpolation, audio.device, audio.dtype)
    if power is None:
        power = power_density(spec, layout)
    detector = smooth_detector(detector_power(power, link_channels))
    gain_db = _gain_from_detector(detector, params, layout, None)
    out = istft(_apply_gain(spec, gain_db, link_channels), layout, samples)
    if return_gain:
        units = 1 if link_channels else channels
        return out, gain_db.permute(1, 2, 0).reshape(batch, units, layout.n_bins, -1)
    return out


def spectral_gate_normalized(audio: Tensor, normalized: Mapping[str, Tensor], layout: BandLayout, **kwargs):
    """`spectral_gate` with controls given in (0, 1) (mapped to units by `CONTROL_SPECS`)."""
    return spectral_gate(audio, denormalize_controls(normalized), layout, **kwargs)


class StreamingGate:
    """`spectral_gate` on a signal fed in pieces of any size, with memory bounded by the block size.

    ``process(chunk)`` takes the next (batch, channels, n) samples and returns the output samples
    that are final so far (it lags the input by about one FFT frame plus a hop); ``flush()`` ends
    the signal and returns the rest. The concatenated outputs equal the one-shot `spectral_gate` of
    the whole signal up to float rounding (~1e-6), with the same length: every state is carried
    exactly. The start is reflect-padded as soon as more than n_fft/2 samples have arrived, the end
    at `flush` (a signal of at most n_fft/2 samples is zero-padded, as `stft` does); the detector's
    time smoothing sees one context frame each side of every block; the ballistics continue from
    the previous block's last gain; synthesis frames are overlap-added into a small accumulator
    normalized by the window envelope as `torch.istft` does. Gains are computed in blocks of about
    `block_s` seconds of frames, so a huge chunk does not need a huge spectrogram. No gradients.
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
        self.params = _gate_params(controls, batch, units_per_item, layout, interpolation, device, dtype)
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
            e0, e1 = max(f0 - 1, 0), min(f1 + 1, avail)
            chunk = self._buf[:, e0 * hop - self._buf_start:(e1 - 1) * hop + n_fft - self._buf_start]
            spec = torch.stft(chunk, n_fft, hop, n_fft, window=self.window, center=False, normalized=False,
                              onesided=True, return_complex=True)
            spec = spec.reshape(self.batch, self.channels, spec.shape[-2], spec.shape[-1])
            power = smooth_detector(detector_power(power_density(spec, layout), self.link_channels))
            power = power[f0 - e0:f0 - e0 + (f1 - f0)]
            gain_db = _gain_from_detector(power, self.params, layout, self._state)
            self._state = gain_db[-1]
            gated = _apply_gain(spec[..., f0 - e0:f0 - e0 + (f1 - f0)], gain_db, self.link_channels)
            frames = synthesize(gated.reshape(self.batch * self.channels, layout.n_bins, -1), layout)
            envelope = window_envelope(layout, f1 - f0, self.device, self.dtype)
            lo = f0 * hop - self._acc_start
            grow = lo + frames.shape[-1] - self._acc.shape[-1]
            if grow > 0:
                self._acc = F.pad(self._acc, (0, grow))
                self._env = F.pad(self._env, (0, grow))
            self._acc[:, lo:lo + frames.shape[-1]] += frames
            self._env[lo:lo + frames.shape[-1]] += envelope
            self._next = f1
            end = half + self._samples if final and f1 == avail else min(f1 * hop, half + self._received)
            pieces.append(self._emit(end))
            keep = max(0, (self._next - 1) * hop)  # the next block's context frame starts here
            self._buf = self._buf[:, keep - self._buf_start:]
            self._buf_start = keep
        if not pieces:
            return self._empty()
        return torch.cat(pieces, dim=-1).reshape(self.batch, self.channels, -1)

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
    `spectral_gate` up to float rounding (~1e-6). Only the input and output (plus one block of
    spectra) are held in memory. No gradients. To read and write files in pieces, use
    `StreamingGate` directly.
    """
    batch, channels, _ = audio.shape
    gate = StreamingGate(controls, layout, batch, channels, block_s=block_s, link_channels=link_channels,
                         interpolation=interpolation, device=audio.device, dtype=audio.dtype)
    return torch.cat([gate.process(audio), gate.flush()], dim=-1)


def dsp_macs_per_second(layout: BandLayout, channels: int = 1, freq_smooth_hz: float | None = None,
                        link_channels: bool = True) -> dict[str, float]:
    """Analytic multiply-accumulates per second of audio of `spectral_gate` (one MAC per multiply-add;
    comparisons, exp/log/sigmoid counted as one each).

    Real FFT of size N ~ N log2 N MACs (half-size complex radix-2). `freq_smooth_hz` sets the kernel
    length (default: the spec's default).
    """
    frames_s = layout.sample_rate / layout.hop
    n, bins = layout.n_fft, layout.n_bins
    units = 1 if link_channels else channels
    sigma = SPECS["freq_smooth_hz"].default if freq_smooth_hz is None else freq_smooth_hz
    sigma_bins = sigma / (layout.sample_rate / n)
    taps = 2 * int(math.ceil(_KERNEL_SPAN_SIGMAS * math.sqrt(sigma_bins**2 + _MIN_KERNEL_SIGMA_BINS**2))) + 1
    fft = n * math.log2(n) + n  # transform + windowing
    stft_macs = channels * frames_s * fft
    istft_macs = channels * frames_s * (fft + n)  # + overlap-add
    per_bin = 3 * channels / units + 6 + taps + 1 + 3 + 3 + 1  # power, 3x3, Gaussian, log, curve, ballistics, exp
    gate_macs = units * frames_s * bins * per_bin + channels * frames_s * bins * 2  # + complex gain
    return {"stft": stft_macs, "gate": gate_macs, "istft": istft_macs, "total": stft_macs + gate_macs + istft_macs}
