"""`training denoise`: denoise audio files with a trained checkpoint, in one process.

    training denoise IN [IN ...] -o OUT --checkpoint CKPT [--reduction-db X] [--threshold-db X]
                     [--knee-db X] [--attack-ms X] [--release-ms X] [--freq-smooth-hz X]
                     [--noise-profile FILE | --noise-region START:END]

IN: audio files and/or folders (searched recursively for audio extensions). OUT: a folder that
mirrors the input names (a folder input's files keep their path relative to it), or, for a single
input file, an output file name with an audio extension. The model is loaded once for all files.

Every file is written at its own sample rate, channel count, length, container format and subtype
(`soundfile.info`). The model runs at its layout's rate (48 kHz): other rates are resampled with
soxr on the way in and back on the way out. Any channel count works: the gate is stereo-linked (one
gain for all channels).

Controller checkpoints: the controller predicts the gate's controls from the file (the whole file up
to `max_analysis_s`, else evenly spaced excerpts read by seeking), they are printed in their units,
and any control given on the command line replaces the prediction (as an engineer adjusts a plugin;
`--noise-profile` takes a noise-only recording, whose band profile and per-bin shape inside bands the
gate then follows with tonal detail 1, or a JSON / .npy / text file of per-band dB values;
`--noise-region START:END` measures the same from a noise-only stretch of each input file itself).
The gate then streams through the file in blocks (`dsp.StreamingGate`, soxr streams, soundfile
block reads and writes): memory is bounded whatever the length, and the result equals the one-shot
gate. Mask-network checkpoints have no controls; each file is processed whole (`MaskNet.denoise`).

A file that cannot be read or written is reported with its name and skipped; the exit status is
then 1 (2 for a bad command line or checkpoint).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile as sf
import torch

from manifests.bands import POWER_FLOOR_DB, BandLayout
from manifests.cli_errors import int_at_least

from . import dsp
from .data import noise_power_bins
from .device import DEVICE_NAMES, resolve_device

Tensor = torch.Tensor

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".w64", ".rf64",
                    ".caf", ".au", ".snd")
# command-line flag -> control name; units come from dsp.CONTROL_SPECS
OVERRIDE_FLAGS = {
    "reduction_db": "--reduction-db",
    "threshold_db": "--threshold-db",
    "knee_db": "--knee-db",
    "attack_ms": "--attack-ms",
    "release_ms": "--release-ms",
    "freq_smooth_hz": "--freq-smooth-hz",
    "tonal_detail": "--tonal-detail",  # per band; the flag sets every band
}
_LABELS = {"reduction_db": "reduction", "threshold_db": "threshold", "knee_db": "knee", "attack_ms": "attack",
           "release_ms": "release", "freq_smooth_hz": "freq smoothing", "tonal_detail": "tonal detail"}


# shortest noise-only recording `--noise-profile` measures: ~24 STFT frames at 48 kHz, where the profile of a
# one-bin band still scatters by ~1.2 dB (`dsp.MEAN_RIPPLE_DB` / sqrt(frames))
MIN_NOISE_CLIP_S = 0.25
MAX_BLOCK_S = 600.0  # longest streaming block (memory: a block of 48 kHz stereo float32 takes 0.4 MB/s)
MAX_NOISE_CLIP_S = 60.0  # longest stretch read from a noise recording or region (memory; a minute is plenty)


class DenoiseError(Exception):
    """A problem with one file; the message names it."""


# --------------------------------------------------------------------------------------------------
# inputs and outputs
# --------------------------------------------------------------------------------------------------


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


@dataclass
class Job:
    src: Path
    dst: Path | None
    error: str | None = None


def plan_jobs(inputs: list[str], out: str) -> list[Job]:
    """Source -> destination for every input file (errors for missing inputs, name clashes and outputs that
    would replace an input: there is no in-place mode)."""
    out_path = Path(out)
    singles = [Path(p) for p in inputs]
    jobs: list[Job] = []
    if len(singles) == 1 and singles[0].is_file() and is_audio(out_path) and not out_path.is_dir():
        jobs.append(Job(singles[0], out_path))
    else:
        for given in singles:
            if given.is_dir():
                files = sorted(p for p in given.rglob("*") if p.is_file() and is_audio(p) and not p.name.startswith("."))
                if not files:
                    jobs.append(Job(given, None, f"{given}: no audio files found (extensions {' '.join(AUDIO_EXTENSIONS)})"))
                jobs += [Job(p, out_path / p.relative_to(given)) for p in files]
            elif given.is_file():
                jobs.append(Job(given, out_path / given.name))
            else:
                jobs.append(Job(given, None, f"{given}: no such file or folder"))
    sources = {job.src.resolve(): job.src for job in jobs if job.dst is not None}
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.dst is None:
            continue
        key = job.dst.resolve()
        if key in sources:
            job.error = (f"{job.src}: output {job.dst} is the input file {sources[key]}; the input is never replaced, "
                         "choose another output folder or file name")
        elif key in seen:
            job.error = f"{job.src}: output {job.dst} would overwrite the output of {seen[key]}; skipped"
        else:
            seen[key] = job.src
    return jobs


# --------------------------------------------------------------------------------------------------
# controls
# --------------------------------------------------------------------------------------------------


def check_overrides(overrides: Mapping[str, float]) -> None:
    """Refuse a control value outside the range the controller was trained to predict (`dsp.CONTROL_SPECS`)."""
    for name, value in overrides.items():
        spec = dsp.SPECS[name]
        if not math.isfinite(value) or not spec.min <= value <= spec.max:
            raise ValueError(f"{OVERRIDE_FLAGS[name]} {value:g}: outside the trained range {spec.min:g}..{spec.max:g} "
                             f"{spec.unit}; give a value in it")


def check_noise_profile(profile_db: np.ndarray, what: str) -> None:
    """Refuse a per-band noise profile (dB) that is not finite, is silent, or leaves the control's range."""
    spec = dsp.SPECS["noise_profile_db"]
    if not np.isfinite(profile_db).all():
        raise ValueError(f"{what}: the noise profile holds non-finite values; give a noise recording or finite dB values")
    if float(np.max(profile_db)) <= POWER_FLOOR_DB + 1e-3:
        raise ValueError(f"{what}: the noise is digital silence (every band at the {POWER_FLOOR_DB:g} dB floor); "
                         "give a recording of the noise itself")
    if not (spec.min <= float(np.min(profile_db)) and float(np.max(profile_db)) <= spec.max):
        raise ValueError(f"{what}: band levels {float(np.min(profile_db)):.1f}..{float(np.max(profile_db)):.1f} dB leave "
                         f"the range of the noise profile control, {spec.min:g}..{spec.max:g} dB")


def measure_noise(noise: np.ndarray, rate: int, layout: BandLayout) -> dict[str, np.ndarray]:
    """Gate controls measured from noise-only audio, (frames, channels) at `rate`, resampled to the model's rate:

    - ``noise_profile_db`` (n_bands,) dB, as the training targets are measured (`data.profile_target_db`);
    - its in-band shape (`dsp.NOISE_SHAPE_KEY`, (n_bins,) dB): the per-bin mean power relative to the band
      levels, with the deadband of `dsp.mean_shape_db`;
    - ``tonal_detail`` 1 in every band: a measured shape is not a blind guess, so the gate follows it fully.
    """
    noise = np.asarray(noise, dtype=np.float32)
    if not np.isfinite(noise).any():
        raise ValueError("the noise holds no finite sample")
    data = _resample(np.nan_to_num(noise, nan=0.0, posinf=0.0, neginf=0.0), rate, layout.sample_rate)
    mean, frames = noise_power_bins(torch.from_numpy(np.ascontiguousarray(data.T))[None], layout)
    profile = dsp.power_to_db(dsp.bins_to_bands_power(mean, layout)).to(torch.float32)
    shape = dsp.mean_shape_db(dsp.power_to_db(mean), layout, frames).to(torch.float32)
    return {"noise_profile_db": profile[0].numpy(), dsp.NOISE_SHAPE_KEY: shape[0].numpy(),
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


def parse_region(text: str) -> tuple[float, float]:
    """`--noise-region START:END` (seconds, 0 <= START < END) -> (start_s, end_s)."""
    try:
        start_s, end_s = (float(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"--noise-region {text!r}: expected START:END in seconds, e.g. 0:1.5") from None
    if not (0.0 <= start_s < end_s and math.isfinite(end_s)):
        raise ValueError(f"--noise-region {text!r}: need 0 <= START < END (seconds)")
    return start_s, end_s


def load_noise_profile(path: str, layout: BandLayout) -> dict[str, np.ndarray]:
    """Controls for `--noise-profile`: from a noise-only recording, `measure_noise` of its first `MAX_NOISE_CLIP_S`
    (profile, in-band shape and full tonal detail); from a JSON list / {"noise_profile_db": [...]}, a .npy array
    or a text file of numbers, the (n_bands,) dB profile alone."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--noise-profile {path}: no such file")
    if is_audio(p):
        try:
            with sf.SoundFile(str(p)) as handle:
                data = handle.read(int(MAX_NOISE_CLIP_S * handle.samplerate), dtype="float32", always_2d=True)
                rate = handle.samplerate
        except Exception as exc:
            raise ValueError(f"--noise-profile {path}: unreadable audio ({exc})") from None
        if data.shape[0] < MIN_NOISE_CLIP_S * rate:
            raise ValueError(f"--noise-profile {path}: {data.shape[0] / rate:.3f} s of audio is too short to measure a "
                             f"noise profile; give at least {MIN_NOISE_CLIP_S:g} s of noise-only audio")
        try:
            measured = measure_noise(data, rate, layout)
        except ValueError as exc:
            raise ValueError(f"--noise-profile {path}: {exc}") from None
        check_noise_profile(measured["noise_profile_db"], f"--noise-profile {path}")
        return measured
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                data = data.get("noise_profile_db")
            values = np.asarray(data, dtype=np.float64).reshape(-1)
        elif p.suffix.lower() == ".npy":
            values = np.load(p).astype(np.float64).reshape(-1)
        else:
            values = np.asarray(p.read_text().replace(",", " ").split(), dtype=np.float64)
    except Exception as exc:
        raise ValueError(f"--noise-profile {path}: not a profile ({exc}); give a noise recording or "
                         f"{layout.n_bands} dB values (JSON list, .npy, or text)") from None
    if values.shape != (layout.n_bands,):
        raise ValueError(f"--noise-profile {path}: expected {layout.n_bands} per-band dB values, got {values.size}")
    check_noise_profile(values, f"--noise-profile {path}")
    return {"noise_profile_db": values.astype(np.float32)}


def describe_controls(controls: Mapping[str, Tensor], layout: BandLayout, overridden: set[str]) -> str:
    """One line of the controls in units; overridden ones are marked '(set)'."""
    parts = []
    order = ["reduction_db", "threshold_db"] + [n for n in dsp.SCALAR_CONTROL_NAMES if n not in ("reduction_db", "threshold_db")]
    for name in order:
        if name not in controls:
            continue
        value = float(controls[name].reshape(-1)[0])
        unit = dsp.SPECS[name].unit
        digits = 1 if unit == "dB" or (unit == "ms" and value < 9.95) else 0
        parts.append(f"{_LABELS.get(name, name)} {value:.{digits}f} {unit}" + (" (set)" if name in overridden else ""))
    centres = layout.band_centers_hz
    detail = controls.get("tonal_detail")
    if detail is not None:
        share = detail.reshape(-1).double().cpu().numpy()
        top = int(np.argmax(share))
        parts.append(f"tonal detail{' (set)' if 'tonal_detail' in overridden else ''}: mean {share.mean():.2f}, "
                     f"max {share[top]:.2f} at {_hz(centres[top])}")
    profile = controls.get("noise_profile_db")
    if profile is not None:
        db = profile.reshape(-1).double().cpu().numpy()
        peak = int(np.argmax(db))
        picks = [int(np.argmin(np.abs(centres - f))) for f in (125.0, 1000.0, 8000.0) if f < layout.sample_rate / 2]
        level = 10.0 * np.log10(np.mean(10.0 ** (db / 10.0)))
        bands = ", ".join(f"{_hz(centres[i])} {db[i]:.0f}" for i in picks)
        parts.append(f"noise profile{' (set)' if 'noise_profile_db' in overridden else ''}: mean {level:.1f} dB, "
                     f"max {db[peak]:.1f} dB at {_hz(centres[peak])}; {bands} dB")
    return ", ".join(parts)


def _hz(value: float) -> str:
    return f"{value / 1000:.3g} kHz" if value >= 1000 else f"{value:.0f} Hz"


# --------------------------------------------------------------------------------------------------
# processing
# --------------------------------------------------------------------------------------------------


def _resample(data: np.ndarray, rate: int, target: int) -> np.ndarray:
    """(frames, channels) float32 at `rate` -> at `target` (soxr HQ)."""
    if rate == target or data.shape[0] == 0:
        return data
    import soxr

    return np.asarray(soxr.resample(data, rate, target), dtype=np.float32).reshape(-1, data.shape[1])


class _Resampler:
    """soxr stream (frames, channels) float32, or a pass-through at equal rates."""

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


def _is_float_subtype(subtype: str) -> bool:
    return subtype in ("FLOAT", "DOUBLE")


class _Writer:
    """Writes exactly `frames` frames (trims the excess, pads the shortfall with zeros) to a temporary
    sibling of `dst`, renamed into place by `commit`."""

    def __init__(self, dst: Path, info, frames: int):
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.dst = dst
        self.tmp = dst.with_name(f".{dst.stem}.tmp-{uuid.uuid4().hex[:8]}{dst.suffix}")
        self.remaining = frames
        self.clip = not _is_float_subtype(info.subtype)
        self.channels = info.channels
        self.handle = sf.SoundFile(str(self.tmp), "w", samplerate=info.samplerate, channels=info.channels,
                                   subtype=info.subtype, format=info.format, endian=info.endian)

    def write(self, data: np.ndarray) -> None:
        data = data[:self.remaining]
        if data.shape[0]:
            if self.clip:
                data = np.clip(data, -1.0, 1.0)
            self.handle.write(data)
            self.remaining -= data.shape[0]

    def commit(self) -> None:
        if self.remaining > 0:
            self.handle.write(np.zeros((self.remaining, self.channels), dtype=np.float32))
            self.remaining = 0
        self.handle.close()
        os.replace(self.tmp, self.dst)

    def abort(self) -> None:
        try:
            self.handle.close()
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


class FileDenoiser:
    """A loaded model applied to files: `run(src, dst) -> description of the controls used`."""

    def __init__(self, model: torch.nn.Module, device: torch.device, overrides: Mapping[str, float] | None = None,
                 noise_controls: Mapping[str, np.ndarray] | None = None, block_s: float = 10.0,
                 noise_region_s: tuple[float, float] | None = None):
        from .controller import Denoiser

        self.model = model.to(device).eval()
        self.device = device
        self.layout: BandLayout = model.layout
        self.is_controller = isinstance(model, Denoiser)
        self.overrides = dict(overrides or {})
        self.noise_controls = dict(noise_controls or {})  # from --noise-profile (`load_noise_profile`)
        self.noise_region_s = noise_region_s  # from --noise-region: measured in each file
        self.block_s = float(block_s)
        shortest_s = self.layout.n_fft / self.layout.sample_rate
        if not shortest_s <= self.block_s <= MAX_BLOCK_S:
            raise ValueError(f"--block-s {block_s:g}: give {shortest_s:.3f}..{MAX_BLOCK_S:g} s (at least one STFT "
                             f"frame of {self.layout.n_fft} samples; memory grows with the block)")
        if self.noise_controls and noise_region_s is not None:
            raise ValueError("give --noise-profile or --noise-region, not both")
        if not self.is_controller and (self.overrides or self.noise_controls or noise_region_s is not None):
            raise ValueError("control overrides need a controller checkpoint (a mask network has no controls)")
        check_overrides(self.overrides)

    # -- controller ---------------------------------------------------------------------------------

    def _analysis_audio(self, handle: sf.SoundFile) -> np.ndarray:
        """What the controller analyses, at the model's rate: the whole file up to max_analysis_s, else
        evenly spaced excerpts (as `controller.analysis_excerpts`), read by seeking."""
        controller = self.model.controller
        rate, frames = handle.samplerate, handle.frames
        limit = controller.max_analysis_s
        if limit is None or frames <= limit * rate:
            handle.seek(0)
            data = handle.read(dtype="float32", always_2d=True)
            return _resample(data, rate, self.layout.sample_rate)
        length = int(controller.excerpt_s * rate)
        count = max(1, int(limit // controller.excerpt_s))
        pieces = []
        for start in np.linspace(0, frames - length, count).round().astype(int):
            handle.seek(int(start))
            pieces.append(_resample(handle.read(length, dtype="float32", always_2d=True), rate, self.layout.sample_rate))
        return np.concatenate(pieces)

    def _region_noise(self, handle: sf.SoundFile, src: Path) -> dict[str, np.ndarray]:
        """`measure_noise` of the file's own noise-only region (`noise_region_s`, clipped to the file and to
        `MAX_NOISE_CLIP_S`)."""
        rate = handle.samplerate
        start_s, end_s = self.noise_region_s
        start = min(round(start_s * rate), handle.frames)
        end = min(round(end_s * rate), handle.frames, start + round(MAX_NOISE_CLIP_S * rate))
        if end - start < MIN_NOISE_CLIP_S * rate:
            raise DenoiseError(f"{src}: --noise-region {start_s:g}:{end_s:g} holds {(end - start) / rate:.3f} s of this "
                               f"{handle.frames / rate:.3f} s file; give a noise-only region of at least "
                               f"{MIN_NOISE_CLIP_S:g} s inside it")
        handle.seek(start)
        what = f"{src}: --noise-region {start_s:g}:{end_s:g}"
        try:
            measured = measure_noise(handle.read(end - start, dtype="float32", always_2d=True), rate, self.layout)
            check_noise_profile(measured["noise_profile_db"], what)
        except ValueError as exc:
            raise DenoiseError(str(exc) if str(exc).startswith(what) else f"{what}: {exc}") from None
        return measured

    def predict_controls(self, handle: sf.SoundFile, measured: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
        """Controller prediction for the open file, with the `measured` noise controls and then the overrides
        applied (units, (1, ...))."""
        analysis = np.nan_to_num(self._analysis_audio(handle))
        audio = torch.from_numpy(np.ascontiguousarray(analysis.T))[None].to(self.device)
        with torch.no_grad():
            controls = {k: v.detach() for k, v in self.model.controller(audio).items()}
        return with_controls(with_controls(controls, measured), self.overrides)

    def _stream(self, handle: sf.SoundFile, writer: _Writer, controls: Mapping[str, Tensor]) -> int:
        """Gate the whole file in blocks; returns the number of non-finite input samples replaced by 0."""
        rate, channels = handle.samplerate, handle.channels
        model_rate = self.layout.sample_rate
        gate = dsp.StreamingGate(controls, self.layout, 1, channels, block_s=self.block_s,
                                 link_channels=self.model.link_channels, device=self.device, dtype=torch.float32)
        to_model, from_model = _Resampler(rate, model_rate, channels), _Resampler(model_rate, rate, channels)
        block = max(1, int(self.block_s * rate))
        bad = 0

        def push(data: np.ndarray, last: bool) -> None:
            x = to_model(data, last=last)
            y = gate.process(torch.from_numpy(np.ascontiguousarray(x.T))[None].to(self.device)) if x.shape[0] else None
            if last:
                tail = gate.flush()
                y = tail if y is None else torch.cat([y, tail], dim=-1)
            out = (np.zeros((0, channels), np.float32) if y is None
                   else np.ascontiguousarray(y[0].T.cpu().numpy(), dtype=np.float32))
            writer.write(from_model(out, last=last))

        handle.seek(0)
        while True:
            data = handle.read(block, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                break
            if not np.isfinite(data).all():
                bad += int((~np.isfinite(data)).sum())
                data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
            push(data, last=False)
        push(np.zeros((0, channels), np.float32), last=True)
        return bad

    # -- any model ----------------------------------------------------------------------------------

    def run(self, src: Path, dst: Path) -> str:
        """Denoise `src` into `dst` (same rate, channels, length, format, subtype)."""
        try:
            info = sf.info(str(src))
            handle = sf.SoundFile(str(src))
        except Exception as exc:
            raise DenoiseError(f"{src}: cannot read audio ({_first_line(exc)})") from None
        with handle:
            frames = handle.frames
            if handle.channels < 1:
                raise DenoiseError(f"{src}: no channels")
            try:
                writer = _Writer(dst, info, frames)
            except (OSError, sf.LibsndfileError) as exc:
                raise DenoiseError(f"{src}: cannot write {dst} ({_first_line(exc)}); nothing written") from None
            try:
                if frames == 0:
                    text = "empty file (written unchanged)"
                elif self.is_controller:
                    measured = self._region_noise(handle, src) if self.noise_region_s is not None else self.noise_controls
                    controls = self.predict_controls(handle, measured)
                    set_names = set(self.overrides) | set(measured)
                    text = describe_controls(controls, self.layout, set_names)
                    bad = self._stream(handle, writer, controls)
                    if bad:
                        text += f" [warning: {bad} non-finite input samples replaced by 0]"
                else:
                    text = self._whole(handle, writer)
                writer.commit()
            except DenoiseError:
                writer.abort()
                raise
            except Exception as exc:
                writer.abort()
                raise DenoiseError(f"{src}: {type(exc).__name__}: {_first_line(exc)}") from None
        return text

    def _whole(self, handle: sf.SoundFile, writer: _Writer) -> str:
        rate = handle.samplerate
        data = handle.read(dtype="float32", always_2d=True)
        bad = int((~np.isfinite(data)).sum())
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        x = _resample(data, rate, self.layout.sample_rate)
        audio = torch.from_numpy(np.ascontiguousarray(x.T))[None].to(self.device)
        with torch.no_grad():
            out = self.model.denoise(audio)
        out = out[0] if isinstance(out, tuple) else out
        y = np.ascontiguousarray(out[0].T.cpu().numpy(), dtype=np.float32)
        writer.write(_resample(y, self.layout.sample_rate, rate))
        return "mask network (no controls)" + (f" [warning: {bad} non-finite input samples replaced by 0]" if bad else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------


def denoise_files(inputs: list[str], out: str, checkpoint: str, *, overrides: Mapping[str, float] | None = None,
                  noise_profile: str | None = None, noise_region: str | None = None, device: str = "auto",
                  block_s: float = 10.0, progress: bool = True, quiet: bool = False, stdout=None, stderr=None) -> int:
    """Denoise every input into `out` with the checkpoint; returns the exit status (0 all written,
    1 some files failed, 2 unusable checkpoint or arguments)."""
    from .checkpoint import build_model, load_checkpoint

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        dev = resolve_device(device)
        model = build_model(load_checkpoint(checkpoint, map_location="cpu"))
        measured = load_noise_profile(noise_profile, model.layout) if noise_profile else None
        region = parse_region(noise_region) if noise_region else None
        runner = FileDenoiser(model, dev, overrides, measured, block_s, region)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=stderr)
        return 2
    jobs = plan_jobs(inputs, out)
    failures = 0
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), unit="file", desc="denoise", file=stderr, disable=None)
        except ImportError:
            bar = None

    def say(text: str, stream) -> None:
        if bar is not None:
            bar.write(text, file=stream)
        else:
            print(text, file=stream)

    for job in jobs:
        try:
            if job.error:
                raise DenoiseError(job.error)
            text = runner.run(job.src, job.dst)
            if not quiet:
                say(f"{job.src} -> {job.dst}: {text}", stdout)
        except DenoiseError as exc:
            failures += 1
            say(f"error: {exc}", stderr)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if failures:
        print(f"{failures} of {len(jobs)} file(s) failed", file=stderr)
    return 1 if failures else 0


def add_denoise_parser(sub) -> argparse.ArgumentParser:
    """Register `training denoise` on an argparse subparsers object."""
    parser = sub.add_parser("denoise", help="denoise audio files or folders with a checkpoint",
                            description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="IN", help="audio files and/or folders (recursive)")
    parser.add_argument("-o", "--out", required=True, metavar="OUT",
                        help="output folder (mirrors input names), or an audio file name for a single input file")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="best.pt (controller) or masknet.pt")
    for name, flag in OVERRIDE_FLAGS.items():
        spec = dsp.SPECS[name]
        parser.add_argument(flag, type=float, default=None, dest=name, metavar=spec.unit.upper(),
                            help=f"replace the predicted {name} ({spec.unit}; trained range {spec.min:g}..{spec.max:g}, "
                                 f"default {spec.default:g}): " + spec.description.replace("%", "%%"))
    parser.add_argument("--noise-profile", default=None, metavar="FILE",
                        help="replace the predicted noise profile: a noise-only recording (its band profile and "
                             "its per-bin shape inside bands, with tonal detail 1 unless --tonal-detail is given), "
                             "or per-band dB values (JSON list, .npy or text)")
    parser.add_argument("--noise-region", default=None, metavar="START:END",
                        help="like --noise-profile, from a noise-only stretch of each input itself (seconds, "
                             f"e.g. 0:1.5 for a pause before the music starts; at least {MIN_NOISE_CLIP_S:g} s)")
    parser.add_argument("--device", default="auto", choices=DEVICE_NAMES, help="auto (a GPU if there is one) | cpu | cuda")
    parser.add_argument("--block-s", type=float, default=10.0, help="streaming block length in seconds (memory bound)")
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="torch CPU threads (default: torch's default; 1 is often faster on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no per-file lines, no progress bar")
    parser.set_defaults(func=_run_denoise)
    return parser


add_subcommand = add_denoise_parser  # the hook `training.cli.add_subcommands` looks for


def _run_denoise(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {name: getattr(args, name) for name in OVERRIDE_FLAGS if getattr(args, name) is not None}
    return denoise_files(args.inputs, args.out, args.checkpoint, overrides=overrides, noise_profile=args.noise_profile,
                         noise_region=args.noise_region, device=args.device, block_s=args.block_s,
                         progress=not args.quiet, quiet=args.quiet)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="training-denoise")
    sub = parser.add_subparsers(dest="command", required=True)
    add_denoise_parser(sub)
    args = parser.parse_args(["denoise", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
