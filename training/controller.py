"""Neural controller: predicts the spectral gate's controls (per clip) from the noisy audio.

Architecture (all analysis in torch, on the input's device; its size and cost per second of audio:
`cost.parameter_count`, `cost.controller_macs_per_second`, figures in the README).

1. Analysis on the gate's own STFT (`stft.stft`, shareable with the gate): per-bin power density,
   averaged over channels, averaged over each band of the shared ERB `BandLayout` (segment sums) and
   over groups of `frame_pool` frames -> log band levels (batch, n_bands, ceil(frames / frame_pool)).
2. Prior: the classic blind estimate `blind.blind_noise_bins_db` (bias-corrected low quantile over
   frames per bin, banded) computed in-graph (no gradient). The frame features are the band levels
   *relative to the prior* (dB / 10), so the network sees a local-SNR map and is invariant to the
   overall input level; the prior's absolute level is given to the heads separately.
3. A 1-D conv stack over frames (bands as channels): 1x1 input projection, `n_blocks` pre-norm
   residual blocks with dilated kernels (dilations 1, 2, 4, 8, ...), GELU.
4. Temporal pooling to one vector per clip (the noise is stationary, the controls are per clip):
   mean, learned attention pooling and a per-channel soft minimum (the noise floor shows in the
   quiet frames), concatenated with the normalized prior, then a 2-layer MLP.
5. Heads, all through a sigmoid to (0, 1) and mapped to units by `controls.CONTROL_SPECS`:
   - profile: residual on the prior in logit space,
     ``u = sigmoid(logit((prior_db - min) / (max - min)) + z)``, ``profile_db = min + (max - min) u``,
     where z is the sum of a clip-level head and a per-band path (`band_hidden` channels, 0 = off):
     each band's quantiles over time of its level relative to the prior and its spectral shape (how
     flat the per-bin noise floor is inside the band: sustained partials make it peaky, and the
     valleys between them still show the noise), plus clip context and a band embedding, through
     convolutions over neighbouring bands with weights shared by all bands.
     The head is initialised near zero, so an untrained controller outputs the blind estimate; it
     learns only the correction (e.g. the upward bias of the quantile when signal is present in
     most frames, as in dense music), which is easier to learn than absolute levels.
   - tonal detail (per band): ``u = sigmoid(z)`` from a clip-level head plus the per-band path's second
     output, initialised near 0 (`_DETAIL_INIT`). The gate adds this share of the blind per-bin floor's
     shape inside each band to its threshold (`bandmap.in_band_shape_db`), so it can follow hum, whine and
     engine harmonics bin by bin where the noise is tonal and keep the smooth band profile where the
     floor's in-band ripple is only estimation noise or sustained partials of the music.
   - scalars: ``u = sigmoid(z)``, the bias initialised at each control's default, so an untrained
     controller outputs the table's defaults.
   The controls also carry that floor's in-band shape with its deadband (`controls.NOISE_SHAPE_KEY`, as
   `bandmap.floor_shape_db`, (batch, n_bins) dB, no gradient) for the gate: an analysis product, not a control.

Checkpoints: save `controller.config` and `controller.layout.to_dict()` with the state dict and
rebuild with ``Controller(BandLayout.from_dict(layout), **config)``.

Long inputs: when the signal is longer than `max_analysis_s`, the controller analyses evenly
spaced excerpts of `excerpt_s` seconds totalling about `max_analysis_s` (bounded memory; the noise
is stationary so the estimate does not suffer).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from manifests.bands import BandLayout, erb_layout

from .bandmap import floor_shape_db
from .blind import blind_noise_bins_db
from .controls import NOISE_SHAPE_KEY, SCALAR_CONTROL_NAMES, SPECS, denormalize_controls
from .gate import spectral_gate
from .stft import power_density, power_to_db, stft
from .streaming import denoise_long

Tensor = torch.Tensor

_PROFILE = SPECS["noise_profile_db"]
_PRIOR_EPS = 1e-4  # keeps the prior's logit finite at the ends of the profile range
# quantiles over time of each band's level relative to the prior: the per-band path's view of a band's distribution
BAND_QUANTILES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
_BAND_CONTEXT = 16  # clip-level context channels given to the per-band path
_BAND_EMBEDDING = 8  # learned per-band embedding channels of the per-band path
_BAND_SPECTRAL = 3  # within-band spectral-shape features of the per-band path (see `_spectral_features`)
_DETAIL = SPECS["tonal_detail"]
_DETAIL_INIT = 0.02  # the untrained tonal-detail head's output (its default, 0, is out of a sigmoid's reach)


class _ChannelNorm(nn.Module):
    """LayerNorm over channels of a (batch, channels, frames) tensor, per frame."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class _ResBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.norm = _ChannelNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(F.gelu(self.norm(x)))


def excerpt_starts(samples: int, sample_rate: int, max_analysis_s: float | None,
                   excerpt_s: float = 5.0) -> tuple[list[int], int]:
    """(start samples, length) of what the controller analyses of `samples` samples: all of it up to
    `max_analysis_s`, else evenly spaced excerpts of `excerpt_s` totalling about `max_analysis_s`."""
    if max_analysis_s is None or samples <= max_analysis_s * sample_rate:
        return [0], samples
    length = int(excerpt_s * sample_rate)
    count = max(1, int(max_analysis_s // excerpt_s))
    return torch.linspace(0, samples - length, count, dtype=torch.float64).round().long().tolist(), length


def analysis_excerpts(audio: Tensor, sample_rate: int, max_analysis_s: float | None, excerpt_s: float = 5.0) -> Tensor:
    """Evenly spaced excerpts (concatenated) totalling about `max_analysis_s` if the audio is longer."""
    starts, length = excerpt_starts(audio.shape[-1], sample_rate, max_analysis_s, excerpt_s)
    if starts == [0] and length == audio.shape[-1]:
        return audio
    return torch.cat([audio[..., s:s + length] for s in starts], dim=-1)


class Controller(nn.Module):
    """Noisy audio (batch, channels, samples) at `layout.sample_rate` -> controls of the spectral gate.

    forward(audio, spec=None, power=None) returns a dict name -> tensor in
    units ((batch, 1) scalars, (batch, n_bands) `noise_profile_db` and `tonal_detail`, plus the in-band shape
    of the blind per-bin floor under `controls.NOISE_SHAPE_KEY`); `predict` returns them with the (0, 1)
    values before the mapping. `spec` is `stft.stft(audio, layout)` and `power` its
    `stft.power_density` if already computed (the whole signal is then analysed, whatever its length).
    `prior_profile_db(...)` exposes the blind prior the profile head refines.
    """

    def __init__(
        self,
        layout: BandLayout | None = None,
        hidden: int = 64,
        n_blocks: int = 4,
        kernel_size: int = 3,
        mlp: int = 256,
        prior_quantile: float = 0.1,
        prior_frame_stride: int = 2,
        frame_pool: int = 4,
        band_hidden: int = 32,
        max_analysis_s: float | None = 60.0,
        excerpt_s: float = 5.0,
    ):
        super().__init__()
        self.layout = layout if layout is not None else erb_layout(48000)
        self.prior_quantile = float(prior_quantile)
        self.prior_frame_stride = int(prior_frame_stride)
        self.frame_pool = int(frame_pool)
        if self.frame_pool < 1:
            raise ValueError(f"frame_pool must be >= 1, got {frame_pool}")
        self.max_analysis_s = max_analysis_s
        self.excerpt_s = float(excerpt_s)
        n_bands = self.layout.n_bands
        self.config = dict(hidden=hidden, n_blocks=n_blocks, kernel_size=kernel_size, mlp=mlp,
                           prior_quantile=prior_quantile,
                           prior_frame_stride=prior_frame_stride, frame_pool=frame_pool, band_hidden=band_hidden,
                           max_analysis_s=max_analysis_s,
                           excerpt_s=excerpt_s)
        self.register_buffer("bin_to_band", torch.as_tensor(self.layout.bin_to_band(), dtype=torch.long), persistent=False)
        self.register_buffer("band_sizes", torch.bincount(self.bin_to_band, minlength=n_bands), persistent=False)
        self.inp = nn.Conv1d(n_bands, hidden, 1)
        self.blocks = nn.ModuleList(_ResBlock(hidden, kernel_size, 2 ** (i % 4)) for i in range(n_blocks))
        self.out_norm = _ChannelNorm(hidden)
        self.attention = nn.Conv1d(hidden, 1, 1)
        self.trunk = nn.Sequential(nn.Linear(3 * hidden + n_bands, mlp), nn.GELU(), nn.Linear(mlp, mlp), nn.GELU())
        self.profile_head = nn.Linear(mlp, n_bands)
        self.band_hidden = int(band_hidden)
        if self.band_hidden > 0:
            self.register_buffer("band_quantiles", torch.tensor(BAND_QUANTILES), persistent=False)
            self.band_context = nn.Linear(mlp, _BAND_CONTEXT)
            self.band_embedding = nn.Parameter(0.1 * torch.randn(1, _BAND_EMBEDDING, n_bands, generator=torch.Generator().manual_seed(0)))
            self.band_net = nn.Sequential(
                nn.Conv1d(len(BAND_QUANTILES) + _BAND_SPECTRAL + _BAND_CONTEXT + _BAND_EMBEDDING, band_hidden, 3,
                          padding=1), nn.GELU(),
                nn.Conv1d(band_hidden, band_hidden, 3, padding=1), nn.GELU(),
                nn.Conv1d(band_hidden, 2, 1))  # profile correction, tonal-detail logit
        self.detail_head = nn.Linear(mlp, n_bands)
        self.scalar_names = SCALAR_CONTROL_NAMES
        self.scalar_head = nn.Linear(mlp, len(self.scalar_names))
        with torch.no_grad():
            for head in (self.profile_head, self.detail_head, self.scalar_head) + ((self.band_net[-1],) if self.band_hidden > 0 else ()):
                head.weight.mul_(0.01)
                head.bias.zero_()
            defaults = torch.tensor([SPECS[n].default_normalized for n in self.scalar_names])
            self.scalar_head.bias.copy_(torch.logit(defaults))
            self.detail_head.bias.fill_(math.log(_DETAIL_INIT / (1.0 - _DETAIL_INIT)))

    # -- analysis -------------------------------------------------------------------------------

    def analysis_spec(self, audio: Tensor) -> Tensor:
        """The STFT the controller analyses (excerpts of long inputs)."""
        audio = analysis_excerpts(audio, self.layout.sample_rate, self.max_analysis_s, self.excerpt_s)
        return stft(audio, self.layout)

    def _band_means(self, per_bin: Tensor) -> Tensor:
        """Mean over each band's bins: (..., n_bins, T) -> (..., n_bands, T) (a segment sum, not a matrix product)."""
        sums = per_bin.new_zeros(*per_bin.shape[:-2], self.layout.n_bands, per_bin.shape[-1])
        sums.index_add_(per_bin.ndim - 2, self.bin_to_band, per_bin)
        return sums / self.band_sizes.to(per_bin.dtype).unsqueeze(-1)

    def _band_db_means(self, bins_db: Tensor) -> tuple[Tensor, Tensor]:
        """(B, n_bins) dB -> each band's (mean in power, mean in dB), both (B, n_bands) dB."""
        power_mean = self._band_means((10.0 ** (bins_db / 10.0)).unsqueeze(-1)).squeeze(-1)
        return power_to_db(power_mean), self._band_means(bins_db.unsqueeze(-1)).squeeze(-1)

    def _features(self, power: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """power density (B, C, F, T) -> relative band levels (B, n_bands, ceil(T / frame_pool)), prior (B, n_bands) dB,
        per-bin prior (B, F) dB.

        Band powers are averaged over groups of `frame_pool` frames before the network (its frame rate
        is the STFT's divided by `frame_pool`: the controls are per clip, and ~40 ms still resolves pauses).
        """
        prior_bins_db = blind_noise_bins_db(power, self.prior_quantile, self.prior_frame_stride)  # detached
        prior_db = self._band_db_means(prior_bins_db)[0]  # (B, n_bands)
        bands = self._band_means(power.mean(dim=1))  # (B, n_bands, T)
        if self.frame_pool > 1:
            bands = F.avg_pool1d(bands, self.frame_pool, ceil_mode=True)
        rel = (power_to_db(bands) - prior_db.unsqueeze(-1)) / 10.0
        return rel, prior_db, prior_bins_db

    def _spectral_features(self, power: Tensor, prior_bins_db: Tensor, prior_db: Tensor) -> Tensor:
        """Within-band spectral shape -> (B, _BAND_SPECTRAL, n_bands), dB / 10, all <= 0 (0 for one-bin bands).

        A band's per-bin noise-floor estimates are flat when noise sets the floor and peaky when sustained
        partials prop it up (dense music): the valleys between partials still show the noise. Features:
        flatness of the per-bin prior (mean in dB minus mean in power), its minimum bin relative to the
        band's prior, and the flatness of the per-bin median spectrum over time.
        """
        frames = power[..., ::self.prior_frame_stride].mean(dim=1).detach()  # (B, F, T')
        median_bins_db = power_to_db(torch.kthvalue(frames, (frames.shape[-1] + 1) // 2, dim=-1).values)
        floor_log_db = self._band_means(prior_bins_db.unsqueeze(-1)).squeeze(-1)  # its mean in power is prior_db
        median_power_db, median_log_db = self._band_db_means(median_bins_db)
        index = self.bin_to_band.expand_as(prior_bins_db)
        floor_min_db = prior_bins_db.new_full(prior_db.shape, float("inf")).scatter_reduce(
            1, index, prior_bins_db, reduce="amin")
        return torch.stack([floor_log_db - prior_db, floor_min_db - prior_db,
                            median_log_db - median_power_db], dim=1) / 10.0

    def prior_profile_db(self, audio: Tensor, spec: Tensor | None = None) -> Tensor:
        """The blind prior (batch, n_bands) dB, as used by forward."""
        if spec is None:
            spec = self.analysis_spec(audio)
        return self._features(power_density(spec, self.layout))[1]

    def _band_correction(self, rel: Tensor, spectral: Tensor, z: Tensor) -> Tensor:
        """Per-band path: each band's level distribution over time (BAND_QUANTILES of `rel`) and its spectral
        shape (`_spectral_features`), with the clip context and a band embedding, through convolutions over
        neighbouring bands -> (B, 2, n_bands) logits: the profile correction and the tonal detail.

        The weights are shared by all bands, so how far a band's noise sits from its quiet frames is read
        from that band's own statistics (a narrow cluster near the prior: noise; a wide spread: signal
        above it) rather than from the clip's overall look, which a small set of training noises can teach
        to recognize instead of measure.
        """
        stats = torch.quantile(rel, self.band_quantiles, dim=-1).permute(1, 0, 2)  # (B, K, n_bands)
        context = self.band_context(z).unsqueeze(-1).expand(-1, -1, rel.shape[1])
        embedding = self.band_embedding.expand(rel.shape[0], -1, -1)
        return self.band_net(torch.cat([stats, spectral, context, embedding], dim=1))

    # -- forward --------------------------------------------------------------------------------

    def forward(self, audio: Tensor, spec: Tensor | None = None, power: Tensor | None = None) -> dict[str, Tensor]:
        """The controls in units (what the gate takes)."""
        return self.predict(audio, spec=spec, power=power)[0]

    def predict(self, audio: Tensor, spec: Tensor | None = None,
                power: Tensor | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(controls in units, their (0, 1) values before the mapping): training regularizes the latter."""
        if audio.ndim != 3:
            raise ValueError(f"audio must be (batch, channels, samples), got {tuple(audio.shape)}")
        if power is None:
            if spec is None:
                spec = self.analysis_spec(audio)
            power = power_density(spec, self.layout)
        rel, prior_db, prior_bins_db = self._features(power)
        h = self.inp(rel)
        for block in self.blocks:
            h = block(h)
        h = F.gelu(self.out_norm(h))  # (B, H, T)
        mean = h.mean(dim=-1)
        attention = (h * torch.softmax(self.attention(h), dim=-1)).sum(dim=-1)
        softmin = (h * torch.softmax(-h, dim=-1)).sum(dim=-1)
        prior_feature = (prior_db + 65.0) / 30.0
        z = self.trunk(torch.cat([mean, attention, softmin, prior_feature], dim=-1))

        prior_u = ((prior_db - _PROFILE.min) / (_PROFILE.max - _PROFILE.min)).clamp(_PRIOR_EPS, 1.0 - _PRIOR_EPS)
        correction, detail = self.profile_head(z), self.detail_head(z)
        if self.band_hidden > 0:
            spectral = self._spectral_features(power, prior_bins_db, prior_db)
            band = self._band_correction(rel, spectral, z)
            correction, detail = correction + band[:, 0], detail + band[:, 1]
        normalized = {_PROFILE.name: torch.sigmoid(torch.logit(prior_u) + correction),
                      _DETAIL.name: torch.sigmoid(detail)}
        scalars = torch.sigmoid(self.scalar_head(z))
        for i, name in enumerate(self.scalar_names):
            normalized[name] = scalars[:, i:i + 1]
        controls = denormalize_controls(normalized)
        controls[NOISE_SHAPE_KEY] = floor_shape_db(prior_bins_db, self.layout, power.shape[-1], self.prior_frame_stride)
        return controls, normalized


class Denoiser(nn.Module):
    """Controller + spectral gate, sharing one STFT: audio -> (denoised audio, controls in units)."""

    def __init__(self, controller: Controller, link_channels: bool = True):
        super().__init__()
        self.controller = controller
        self.layout = controller.layout
        self.link_channels = link_channels

    def forward(self, audio: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(denoised audio, controls in units)."""
        out, controls, _ = self.predict(audio)
        return out, controls

    def predict(self, audio: Tensor) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """(denoised audio, controls in units, their (0, 1) values), differentiable: the stage-2 step."""
        spec = stft(audio, self.layout)
        power = power_density(spec, self.layout)
        analysed = power if self._analyse_whole(audio) else None
        controls, normalized = self.controller.predict(audio, power=analysed)
        out = spectral_gate(audio, controls, self.layout, spec=spec, power=power, link_channels=self.link_channels)
        return out, controls, normalized

    def _analyse_whole(self, audio: Tensor) -> bool:
        limit = self.controller.max_analysis_s
        return limit is None or audio.shape[-1] <= limit * self.layout.sample_rate

    @torch.no_grad()
    def enhance(self, audio: Tensor, block_s: float = 10.0) -> tuple[Tensor, dict[str, Tensor]]:
        """Inference on any length -> (denoised (batch, channels, samples), controls in units): one shot up to
        `block_s`, else streaming (`streaming.denoise_long`). The interface shared with `masknet.MaskNet`."""
        if audio.shape[-1] <= block_s * self.layout.sample_rate:
            return self.forward(audio)
        controls = self.controller(audio)
        return denoise_long(audio, controls, self.layout, block_s, link_channels=self.link_channels), controls

    def denoise(self, audio: Tensor, block_s: float = 10.0) -> Tensor:
        """`enhance` without the controls."""
        return self.enhance(audio, block_s)[0]
