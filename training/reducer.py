"""The Python API: a loaded denoiser applied to numpy audio at any rate, whole or as a stream.

    from training import reduce_noise, NoiseReducer

    clean = reduce_noise(noisy, sample_rate)                 # the shipped model; same shape as `noisy`
    clean, controls = reduce_noise(noisy, 44100, return_controls=True, reduction_db=12)

    reducer = NoiseReducer()                                 # load once (or NoiseReducer("run/checkpoints/best.pt"))
    controls = reducer.predict_controls(first_seconds, 48000)
    stream = reducer.stream(48000, channels=2, controls=controls)
    for block in blocks:                                     # (channels, n) or (n,) float arrays, any n
        out = stream.process(block)                          # what is final so far
    out = stream.flush()                                     # the rest

Audio is ``(samples,)`` (mono) or ``(channels, samples)``, floating point, any length and rate: the
model runs at its layout's rate (48 kHz) and other rates are resampled with soxr (HQ) on the way in
and back. The gate is stereo-linked: one gain for all channels. Controls are in their units
(`controls.CONTROL_SPECS`); any given as keyword arguments replace the prediction, within the range the
controller was trained on. A stream's output lags its input by at most `ReducerStream.latency_samples`
(one FFT frame plus a hop) at the model's rate; at other rates the resamplers' buffering, which
depends on the block size, adds to it (`ReducerStream.pending_samples` is the lag at any moment).
The concatenated output has the input's length.
"""
from __future__ import annotations

import math
import warnings
from importlib import resources
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from manifests.bands import POWER_FLOOR_DB, BandLayout

from .bandmap import bins_to_bands_power, mean_shape_db
from .controls import CONTROL_NAMES, NOISE_SHAPE_KEY, SPECS
from .stft import power_to_db
from .streaming import StreamingGate
from .data import noise_power_bins
from .device import resolve_device

Tensor = torch.Tensor

SHIPPED_MODEL = "default.pt"  # inside the package folder training/models/


class ReducerError(ValueError):
    """Audio, controls or a model that the reducer cannot use; the message says how to fix it."""


def shipped_model_path() -> Path:
    """The model that ships with the package (training/models/default.pt)."""
    path = Path(str(resources.files("training") / "models" / SHIPPED_MODEL))
    if not path.is_file():
        raise ReducerError(f"{path}: the shipped model is missing from this installation; reinstall the package "
                           "or give a checkpoint of your own (checkpoint=... / --checkpoint)")
    return path


# --------------------------------------------------------------------------------------------------
# controls
# --------------------------------------------------------------------------------------------------


def check_overrides(overrides: Mapping[str, float], labels: Mapping[str, str] | None = None) -> None:
    """Refuse a control value outside the range the controller was trained to predict (`controls.CONTROL_SPECS`);
    `labels` names the controls in messages (e.g. command-line flags)."""
    for name, value in overrides.items():
        spec = SPECS.get(name)
        if spec is None or name == "noise_profile_db":
            known = ", ".join(n for n in CONTROL_NAMES if n != "noise_profile_db")
            raise ReducerError(f"unknown control {name!r}; the controls that can be set are {known} "
                               "(the noise profile comes from a noise clip)")
        if not math.isfinite(value) or not spec.min <= value <= spec.max:
            raise ReducerError(f"{(labels or {}).get(name, name)} {value:g}: outside the trained range {spec.min:g}..{spec.max:g} {spec.unit}; "
                               "give a value in it")


def check_noise_profile(profile_db: np.ndarray, what: str) -> None:
    """Refuse a per-band noise profile (dB) that is not finite, is silent, or leaves the control's range."""
    spec = SPECS["noise_profile_db"]
    if not np.isfinite(profile_db).all():
        raise ReducerError(f"{what}: the noise profile holds non-finite values; give a noise recording or finite dB values")
    if float(np.max(profile_db)) <= POWER_FLOOR_DB + 1e-3:
        raise ReducerError(f"{what}: the noise is digital silence (every band at the {POWER_FLOOR_DB:g} dB floor); "
                           "give a recording of the noise itself")
    if not (spec.min <= float(np.min(profile_db)) and float(np.max(profile_db)) <= spec.max):
        raise ReducerError(f"{what}: band levels {float(np.min(profile_db)):.1f}..{float(np.max(profile_db)):.1f} dB "
                           f"leave the range of the noise profile control, {spec.min:g}..{spec.max:g} dB")


def measure_noise(noise: np.ndarray, rate: int, layout: BandLayout) -> dict[str, np.ndarray]:
    """Gate controls measured from noise-only audio, (frames, channels) at `rate`, resampled to the model's rate:

    - ``noise_profile_db`` (n_bands,) dB, as the training targets are measured (`data.profile_target_db`);
    - its in-band shape (`controls.NOISE_SHAPE_KEY`, (n_bins,) dB): the per-bin mean power relative to the band
      levels, with the deadband of `bandmap.mean_shape_db`;
    - ``tonal_detail`` 1 in every band: a measured shape is not a blind guess, so the gate follows it fully.
    """
    noise = np.asarray(noise, dtype=np.float32)
    if not np.isfinite(noise).any():
        raise ReducerError("the noise holds no finite sample")
    data = resample(np.nan_to_num(noise, nan=0.0, posinf=0.0, neginf=0.0), rate, layout.sample_rate)
    mean, frames = noise_power_bins(torch.from_numpy(np.ascontiguousarray(data.T))[None], layout)
    profile = power_to_db(bins_to_bands_power(mean, layout)).to(torch.float32)
    shape = mean_shape_db(power_to_db(mean), layout, frames).to(torch.float32)
    return {"noise_profile_db": profile[0].numpy(), NOISE_SHAPE_KEY: shape[0].numpy(),
            "tonal_detail": np.ones(layout.n_bands, dtype=np.float32)}


def with_controls(controls: Mapping[str, Tensor], values: Mapping[str, float | np.ndarray]) -> dict[str, Tensor]:
    """`controls` (units, batch 1) with entries replaced: a number fills every band, an array gives each
    band (or bin) its value."""
    out = dict(controls)
    for name, value in values.items():
        ref = controls[name]
        new = torch.as_tensor(np.asarray(value, dtype=np.float32), dtype=ref.dtype, device=ref.device)
        out[name] = new.expand_as(ref).clone() if new.ndim == 0 else new.reshape(1, -1)
    return out


def controls_in_units(controls: Mapping[str, Tensor]) -> dict[str, float | np.ndarray]:
    """Batch-1 control tensors -> plain values: floats for the scalars, (n_bands,) arrays for the per-band ones."""
    values: dict[str, float | np.ndarray] = {}
    for name in CONTROL_NAMES:
        if name in controls:
            flat = controls[name].detach().reshape(-1).cpu().double().numpy()
            values[name] = float(flat[0]) if not SPECS[name].per_band else flat.astype(np.float32)
    return values


# --------------------------------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------------------------------


def resample(data: np.ndarray, rate: int, target: int) -> np.ndarray:
    """(frames, channels) float32 at `rate` -> at `target` (soxr HQ)."""
    if rate == target or data.shape[0] == 0:
        return data
    import soxr

    return np.asarray(soxr.resample(data, rate, target), dtype=np.float32).reshape(-1, data.shape[1])


class Resampler:
    """soxr stream of (frames, channels) float32, or a pass-through at equal rates."""

    def __init__(self, rate: int, target: int, channels: int):
        self.channels = channels
        self.stream = None
        if rate != target:
            import soxr

            self.stream = soxr.ResampleStream(rate, target, channels, dtype="float32", quality="HQ")

    def __call__(self, data: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return data
        out = self.stream.resample_chunk(np.ascontiguousarray(data, dtype=np.float32), last=last)
        return out.reshape(-1, self.channels)


# --------------------------------------------------------------------------------------------------
# the reducer
# --------------------------------------------------------------------------------------------------


def _as_frames(audio, what: str = "audio") -> tuple[np.ndarray, int]:
    """(samples,) or (channels, samples) floating array -> ((samples, channels) float32 with non-finite
    samples replaced by 0, count of those replaced)."""
    array = np.asarray(audio)
    if not np.issubdtype(array.dtype, np.floating):
        raise ReducerError(f"{what}: expected floating-point samples in -1..1, got dtype {array.dtype} "
                           "(e.g. convert int16 with `y / 32768`)")
    if array.ndim not in (1, 2):
        raise ReducerError(f"{what}: expected (samples,) or (channels, samples), got shape {array.shape}")
    frames = (array[:, None] if array.ndim == 1 else array.T).astype(np.float32)
    if frames.shape[1] < 1:
        raise ReducerError(f"{what}: no channels (shape {array.shape})")
    bad = int((~np.isfinite(frames)).sum())
    if bad:
        frames = np.nan_to_num(frames, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(frames), bad


def _check_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ReducerError(f"sample rate {sample_rate!r}: give a positive whole number of Hz, e.g. 48000")
    return int(sample_rate)


class NoiseReducer:
    """A denoiser loaded once: `reduce` whole arrays, `stream` block by block.

    `checkpoint`: a controller ``best.pt`` or a ``masknet.pt`` of `training train`; None takes the shipped
    model. `device`: "auto" (a GPU if there is one), "cpu" or "cuda[:N]". `block_s`: the streaming gate's
    block in seconds (memory bound; the result does not depend on it).
    """

    def __init__(self, checkpoint: str | Path | None = None, device: str = "auto", block_s: float = 10.0,
                 model: torch.nn.Module | None = None):
        from .checkpoint import build_model, load_checkpoint
        from .controller import Denoiser

        if model is None:
            model = build_model(load_checkpoint(checkpoint if checkpoint is not None else shipped_model_path()))
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.layout: BandLayout = model.layout
        self.is_controller = isinstance(model, Denoiser)
        self.block_s = float(block_s)

    @property
    def sample_rate(self) -> int:
        """The rate the model runs at (Hz); audio at other rates is resampled."""
        return self.layout.sample_rate

    def _require_controller(self, what: str) -> None:
        if not self.is_controller:
            raise ReducerError(f"{what} needs a controller checkpoint (a mask network has no controls)")

    def _to_model_tensor(self, frames: np.ndarray, rate: int) -> Tensor:
        data = resample(frames, rate, self.sample_rate)
        return torch.from_numpy(np.ascontiguousarray(data.T))[None].to(self.device)

    def analysis_audio(self, frames: np.ndarray, rate: int) -> Tensor:
        """What the controller analyses of (samples, channels) audio: all of it up to ``max_analysis_s``, else
        evenly spaced excerpts (`controller.analysis_excerpts`), as (1, channels, n) at the model's rate."""
        from .controller import analysis_excerpts

        controller = self.model.controller
        return analysis_excerpts(self._to_model_tensor(frames, rate), self.sample_rate, controller.max_analysis_s,
                                 controller.excerpt_s)

    def controls_for(self, analysis: Tensor, measured: Mapping[str, np.ndarray] | None = None,
                     overrides: Mapping[str, float] | None = None) -> dict[str, Tensor]:
        """The controller's prediction from `analysis` ((1, channels, n) at the model's rate), with `measured`
        noise controls (`measure_noise`) and then `overrides` (units) replacing it; tensors (1, ...)."""
        self._require_controller("predicting controls")
        overrides = dict(overrides or {})
        check_overrides(overrides)
        with torch.no_grad():
            controls = {k: v.detach() for k, v in self.model.controller(analysis).items()}
        return with_controls(with_controls(controls, measured or {}), overrides)

    def predict_controls(self, audio, sample_rate: int, *, noise_clip=None, **overrides: float) -> dict[str, Tensor]:
        """Controls (tensors in units, batch 1) for `audio` ((samples,) or (channels, samples) at `sample_rate`):
        predicted, the noise profile and its shape measured from `noise_clip` (noise-only audio at the same rate)
        when given, and `overrides` (e.g. ``reduction_db=12``) applied. Pass them to `stream`."""
        rate = _check_rate(sample_rate)
        return self._controls_of_frames(_as_frames(audio)[0], rate, noise_clip, overrides)

    def _controls_of_frames(self, frames: np.ndarray, rate: int, noise_clip, overrides: Mapping[str, float]):
        measured = None
        if noise_clip is not None:
            clip, _ = _as_frames(noise_clip, "noise_clip")
            measured = measure_noise(clip, rate, self.layout)
            check_noise_profile(measured["noise_profile_db"], "noise_clip")
        return self.controls_for(self.analysis_audio(frames, rate), measured, overrides)

    def reduce(self, audio, sample_rate: int, *, return_controls: bool = False, noise_clip=None, **overrides: float):
        """Denoise `audio` ((samples,) or (channels, samples), floating point, at `sample_rate` Hz) -> an array of
        the same shape and dtype; with `return_controls`, (array, controls in units: floats and (n_bands,) arrays).
        Non-finite input samples are replaced by 0 with a warning."""
        rate = _check_rate(sample_rate)
        frames, bad = _as_frames(audio)
        if bad:
            warnings.warn(f"{bad} non-finite input samples replaced by 0", RuntimeWarning, stacklevel=2)
        values: dict[str, float | np.ndarray] = {}
        if frames.shape[0] == 0:
            out = frames
        elif self.is_controller:
            controls = self._controls_of_frames(frames, rate, noise_clip, overrides)
            stream = self.stream(rate, frames.shape[1], controls)
            out = np.concatenate([stream.process_frames(frames), stream.flush_frames()])
            values = controls_in_units(controls)
        else:
            if noise_clip is not None or overrides:
                self._require_controller("noise_clip and control overrides")
            with torch.no_grad():
                y = self.model.denoise(self._to_model_tensor(frames, rate), block_s=self.block_s)
            out = resample(np.ascontiguousarray(y[0].T.cpu().numpy(), dtype=np.float32), self.sample_rate, rate)
            out = _fit_length(out, frames.shape[0])
        shaped = (out[:, 0] if np.ndim(audio) == 1 else out.T).astype(np.asarray(audio).dtype, copy=False)
        return (shaped, values) if return_controls else shaped

    __call__ = reduce

    def stream(self, sample_rate: int, channels: int, controls: Mapping[str, Tensor]) -> "ReducerStream":
        """A stream that gates blocks of `channels`-channel audio at `sample_rate` with fixed `controls`
        (from `predict_controls`)."""
        self._require_controller("streaming")
        return ReducerStream(self, _check_rate(sample_rate), int(channels), controls)


def _fit_length(frames: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad (frames, channels) to `length` frames (resampling round trips may differ by a sample)."""
    if frames.shape[0] >= length:
        return frames[:length]
    return np.concatenate([frames, np.zeros((length - frames.shape[0], frames.shape[1]), np.float32)])


class ReducerStream:
    """The gate over audio fed in blocks, state carried: `process(block)` returns the output now final,
    `flush()` the rest; together they have exactly the input's length and equal one `reduce` call with the
    same controls up to float rounding and resampler edge effects."""

    def __init__(self, reducer: NoiseReducer, sample_rate: int, channels: int, controls: Mapping[str, Tensor]):
        if channels < 1:
            raise ReducerError(f"channels {channels}: give at least 1")
        layout = reducer.layout
        self.reducer, self.sample_rate, self.channels = reducer, sample_rate, channels
        self.gate = StreamingGate(controls, layout, 1, channels, block_s=reducer.block_s,
                                  link_channels=reducer.model.link_channels, device=reducer.device,
                                  dtype=torch.float32)
        self.to_model = Resampler(sample_rate, layout.sample_rate, channels)
        self.from_model = Resampler(layout.sample_rate, sample_rate, channels)
        self.received = 0
        self.emitted = 0
        self.non_finite = 0
        # the gate's own lag (one FFT frame plus a hop) at the stream's rate; resampling adds soxr's buffering
        self.latency_samples = math.ceil((layout.n_fft + layout.hop) * sample_rate / layout.sample_rate)

    @property
    def pending_samples(self) -> int:
        """Input samples given that have not come out yet (the lag right now)."""
        return self.received - self.emitted

    def _gate(self, x: np.ndarray, last: bool) -> np.ndarray:
        y = (self.gate.process(torch.from_numpy(np.ascontiguousarray(x.T))[None].to(self.reducer.device))
             if x.shape[0] else None)
        if last:
            tail = self.gate.flush()
            y = tail if y is None else torch.cat([y, tail], dim=-1)
        if y is None:
            return np.zeros((0, self.channels), np.float32)
        return np.ascontiguousarray(y[0].T.cpu().numpy(), dtype=np.float32)

    def _push(self, frames: np.ndarray, last: bool) -> np.ndarray:
        out = self.from_model(self._gate(self.to_model(frames, last=last), last), last=last)
        if last:
            out = _fit_length(out, self.received - self.emitted)
        else:
            out = out[: max(0, self.received - self.emitted)]
        self.emitted += out.shape[0]
        return out

    def process_frames(self, frames: np.ndarray) -> np.ndarray:
        """(n, channels) float32 at the stream's rate -> (m, channels) output now final."""
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ReducerError(f"expected ({self.channels} channels) blocks, got shape {frames.shape}")
        if not np.isfinite(frames).all():
            self.non_finite += int((~np.isfinite(frames)).sum())
            frames = np.nan_to_num(frames, nan=0.0, posinf=0.0, neginf=0.0)
        self.received += frames.shape[0]
        return self._push(frames, last=False)

    def flush_frames(self) -> np.ndarray:
        """End of the input: the remaining (m, channels) output."""
        return self._push(np.zeros((0, self.channels), np.float32), last=True)

    def process(self, block) -> np.ndarray:
        """A block shaped like the `reduce` input ((n,) mono or (channels, n)) -> the output now final, same layout."""
        mono = np.ndim(block) == 1
        frames, _ = _as_frames(block, "block")
        out = self.process_frames(frames) if frames.shape[0] else np.zeros((0, self.channels), np.float32)
        return out[:, 0] if mono else out.T

    def flush(self, mono: bool | None = None) -> np.ndarray:
        """The rest of the output, as (channels, m), or (m,) for a mono stream unless `mono` is False."""
        out = self.flush_frames()
        return out[:, 0] if (self.channels == 1 if mono is None else mono) else out.T


_DEFAULT: dict[tuple[str, str], NoiseReducer] = {}


def reduce_noise(y, sr: int, *, checkpoint: str | Path | None = None, return_controls: bool = False,
                 noise_clip=None, device: str = "auto", **overrides: float):
    """Denoise `y` ((samples,) or (channels, samples), floating point) at `sr` Hz -> the same shape, with the
    shipped model or `checkpoint`; the model is loaded once per (checkpoint, device) and kept.

    `noise_clip`: noise-only audio at `sr` (e.g. a pause before the music): the gate then follows its measured
    profile instead of the blind estimate. Keyword controls (``reduction_db=12``, ``threshold_db``, ``knee_db``,
    ``attack_ms``, ``release_ms``, ``freq_smooth_hz``, ``tonal_detail``) replace the prediction. With
    `return_controls`, returns (array, controls in units)."""
    key = (str(checkpoint) if checkpoint is not None else "", device)
    if key not in _DEFAULT:
        _DEFAULT[key] = NoiseReducer(checkpoint, device=device)
    return _DEFAULT[key].reduce(y, sr, return_controls=return_controls, noise_clip=noise_clip, **overrides)
