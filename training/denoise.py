"""`training denoise`: denoise audio files with the shipped model or a trained checkpoint, in one process.

    training denoise IN [IN ...] -o OUT [--checkpoint CKPT] [--format EXT] [--reduction-db X] [--threshold-db X]
                     [--knee-db X] [--attack-ms X] [--release-ms X] [--freq-smooth-hz X] [--tonal-detail X]
                     [--noise-profile FILE | --noise-region START:END]

IN: audio files and/or folders (searched recursively for audio extensions). OUT: for one input file, an
output file whose extension decides its format (`-o clean.flac` writes FLAC whatever the input); otherwise
a folder that mirrors the input names (a folder input's files keep their path relative to it), each file
in its own format unless `--format` names one. Without `--checkpoint` the model that ships with the
package is used; it is loaded once for all files.

Every file is written at its own sample rate, channel count and length; in its own format the subtype
is kept, in another the input's subtype where that format has it (else 24-bit PCM for float input, else
the format's default). The model runs at its layout's rate (48 kHz): other rates are resampled with soxr
on the way in and back on the way out. Any channel count works: the gate is stereo-linked (one gain for
all channels).

Controller checkpoints: the controller predicts the gate's controls from the file (the whole file up
to `max_analysis_s`, else evenly spaced excerpts read by seeking), they are printed in their units,
and any control given on the command line replaces the prediction (as an engineer adjusts a plugin;
`--noise-profile` takes a noise-only recording, whose band profile and per-bin shape inside bands the
gate then follows with tonal detail 1, or a JSON / .npy / text file of per-band dB values;
`--noise-region START:END` measures the same from a noise-only stretch of each input file itself).
The gate then streams through the file in blocks (`training.reducer.ReducerStream`, soundfile block
reads and writes): memory is bounded whatever the length, and the result equals the one-shot gate.
Mask-network checkpoints have no controls; each file is processed whole (`MaskNet.denoise`).

Each file ends with one line: input -> output, format, duration, time taken and the controls used. A
file that cannot be read or written is reported with its name and skipped; the exit status is then 1.
A bad option, output or checkpoint ends the command before any file is touched (exit 2).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile as sf
import torch

from manifests.bands import BandLayout
from manifests.cli import Command, int_at_least

from .controls import SCALAR_CONTROL_NAMES, SPECS
from .audio_files import AUDIO_EXTENSIONS, AudioWriter, format_extension, is_audio, plan_jobs
from .device import DEVICE_NAMES
from .reducer import NoiseReducer, check_noise_profile, check_overrides, measure_noise, resample

Tensor = torch.Tensor

# command-line flag -> control name; units come from controls.CONTROL_SPECS
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
# one-bin band still scatters by ~1.2 dB (`bandmap.MEAN_RIPPLE_DB` / sqrt(frames))
MIN_NOISE_CLIP_S = 0.25
MAX_BLOCK_S = 600.0  # longest streaming block (memory: a block of 48 kHz stereo float32 takes 0.4 MB/s)
MAX_NOISE_CLIP_S = 60.0  # longest stretch read from a noise recording or region (memory; a minute is plenty)


class DenoiseError(Exception):
    """A problem with one file; the message names it."""


class DenoiseSetupError(ValueError):
    """A checkpoint, option or output that no file can be denoised with; the message says how to fix it."""


# --------------------------------------------------------------------------------------------------
# controls
# --------------------------------------------------------------------------------------------------


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
    order = ["reduction_db", "threshold_db"] + [n for n in SCALAR_CONTROL_NAMES if n not in ("reduction_db", "threshold_db")]
    for name in order:
        if name not in controls:
            continue
        value = float(controls[name].reshape(-1)[0])
        unit = SPECS[name].unit
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


class FileDenoiser:
    """A `NoiseReducer` applied to files: `run(src, dst) -> the file's summary line`."""

    def __init__(self, reducer: NoiseReducer, overrides: Mapping[str, float] | None = None,
                 noise_controls: Mapping[str, np.ndarray] | None = None,
                 noise_region_s: tuple[float, float] | None = None):
        self.reducer = reducer
        self.layout: BandLayout = reducer.layout
        self.overrides = dict(overrides or {})
        self.noise_controls = dict(noise_controls or {})  # from --noise-profile (`load_noise_profile`)
        self.noise_region_s = noise_region_s  # from --noise-region: measured in each file
        shortest_s = self.layout.n_fft / self.layout.sample_rate
        if not shortest_s <= reducer.block_s <= MAX_BLOCK_S:
            raise ValueError(f"--block-s {reducer.block_s:g}: give {shortest_s:.3f}..{MAX_BLOCK_S:g} s (at least one "
                             f"STFT frame of {self.layout.n_fft} samples; memory grows with the block)")
        if self.noise_controls and noise_region_s is not None:
            raise ValueError("give --noise-profile or --noise-region, not both")
        if not reducer.is_controller and (self.overrides or self.noise_controls or noise_region_s is not None):
            raise ValueError("control overrides need a controller checkpoint (a mask network has no controls)")
        check_overrides(self.overrides, OVERRIDE_FLAGS)

    # -- controller ---------------------------------------------------------------------------------

    def _analysis_audio(self, handle: sf.SoundFile) -> Tensor:
        """What the controller analyses, (1, channels, n) at the model's rate: the whole file up to
        max_analysis_s, else evenly spaced excerpts (as `controller.analysis_excerpts`), read by seeking."""
        from .controller import excerpt_starts

        controller = self.reducer.model.controller
        rate = handle.samplerate
        starts, length = excerpt_starts(handle.frames, rate, controller.max_analysis_s, controller.excerpt_s)
        pieces = []
        for start in starts:
            handle.seek(start)
            pieces.append(resample(handle.read(length, dtype="float32", always_2d=True), rate, self.layout.sample_rate))
        analysis = np.nan_to_num(np.concatenate(pieces))
        return torch.from_numpy(np.ascontiguousarray(analysis.T))[None].to(self.reducer.device)

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

    def _stream(self, handle: sf.SoundFile, writer: AudioWriter, controls: Mapping[str, Tensor]) -> int:
        """Gate the whole file in blocks; returns the number of non-finite input samples replaced by 0."""
        stream = self.reducer.stream(handle.samplerate, handle.channels, controls)
        block = max(1, int(self.reducer.block_s * handle.samplerate))
        handle.seek(0)
        while True:
            data = handle.read(block, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                break
            writer.write(stream.process_frames(data))
        writer.write(stream.flush_frames())
        return stream.non_finite

    def _controlled(self, handle: sf.SoundFile, writer: AudioWriter, src: Path) -> str:
        measured = self._region_noise(handle, src) if self.noise_region_s is not None else self.noise_controls
        controls = self.reducer.controls_for(self._analysis_audio(handle), measured, self.overrides)
        text = describe_controls(controls, self.layout, set(self.overrides) | set(measured))
        bad = self._stream(handle, writer, controls)
        return text + (f" [warning: {bad} non-finite input samples replaced by 0]" if bad else "")

    def _whole(self, handle: sf.SoundFile, writer: AudioWriter) -> str:
        data = handle.read(dtype="float32", always_2d=True)
        bad = int((~np.isfinite(data)).sum())
        writer.write(self.reducer.reduce(np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0).T, handle.samplerate).T)
        return "mask network (no controls)" + (f" [warning: {bad} non-finite input samples replaced by 0]" if bad else "")

    # -- any model ----------------------------------------------------------------------------------

    def run(self, src: Path, dst: Path) -> str:
        """Denoise `src` into `dst` (same rate, channels and length; format from `dst`'s extension)."""
        started = time.perf_counter()
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
                writer = AudioWriter(dst, info, frames)
            except (OSError, sf.LibsndfileError, TypeError, ValueError) as exc:
                raise DenoiseError(f"{src}: cannot write {dst} ({_first_line(exc)}); nothing written") from None
            try:
                if frames == 0:
                    text = "empty file (written unchanged)"
                elif self.reducer.is_controller:
                    text = self._controlled(handle, writer, src)
                else:
                    text = self._whole(handle, writer)
                writer.commit()
            except DenoiseError:
                writer.abort()
                raise
            except Exception as exc:
                writer.abort()
                raise DenoiseError(f"{src}: {type(exc).__name__}: {_first_line(exc)}") from None
        took_s = time.perf_counter() - started
        duration_s = frames / info.samplerate
        speed = f", {duration_s / took_s:.0f}x real time" if took_s > 0 and duration_s > 0 else ""
        return (f"{src} -> {dst} ({writer.format} {writer.subtype}, {duration_s:.1f} s, {info.channels} ch, "
                f"{info.samplerate / 1000:g} kHz; {took_s:.1f} s{speed}): {text}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------


def denoise_files(inputs: list[str], out: str, checkpoint: str | None = None, *,
                  overrides: Mapping[str, float] | None = None, noise_profile: str | None = None,
                  noise_region: str | None = None, device: str = "auto", block_s: float = 10.0,
                  file_format: str | None = None, progress: bool = True, quiet: bool = False,
                  stdout=None, stderr=None) -> int:
    """Denoise every input into `out` with the checkpoint (None: the shipped model); returns the exit status,
    0 when every file was written, 1 when some failed (each reported on `stderr`). An unusable checkpoint,
    option or output raises `DenoiseSetupError` (or `CheckpointError`) before any file is touched."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        extension = format_extension(file_format) if file_format else None
        jobs = plan_jobs(inputs, out, extension)
        reducer = NoiseReducer(checkpoint, device=device, block_s=block_s)
        measured = load_noise_profile(noise_profile, reducer.layout) if noise_profile else None
        region = parse_region(noise_region) if noise_region else None
        runner = FileDenoiser(reducer, overrides, measured, region)
    except ValueError as exc:
        raise DenoiseSetupError(str(exc)) from None
    failures = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="file", desc="denoise", file=stderr, disable=None)

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
                say(text, stdout)
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


def _denoise_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="audio files and/or folders (recursive)")
    parser.add_argument("-o", "--out", required=True, metavar="OUT",
                        help="an audio file name for a single input file (its extension decides the format), "
                             "else an output folder (mirrors input names)")
    parser.add_argument("--checkpoint", default=None, metavar="CKPT",
                        help="best.pt (controller) or masknet.pt of `training train` (default: the shipped model)")
    parser.add_argument("--format", default=None, dest="file_format", metavar="EXT",
                        help="format of the files written into an output folder, by extension: "
                             f"{', '.join(e[1:] for e in AUDIO_EXTENSIONS)} (default: each input's own)")
    for name, flag in OVERRIDE_FLAGS.items():
        spec = SPECS[name]
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


def _run_denoise(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {name: getattr(args, name) for name in OVERRIDE_FLAGS if getattr(args, name) is not None}
    return denoise_files(args.inputs, args.out, args.checkpoint, overrides=overrides, noise_profile=args.noise_profile,
                         noise_region=args.noise_region, device=args.device, block_s=args.block_s,
                         file_format=args.file_format, progress=not args.quiet, quiet=args.quiet)


COMMAND = Command("denoise", "denoise audio files or folders (the shipped model, or a checkpoint)", _denoise_arguments,
                  _run_denoise, description=__doc__.split("\n\n")[0], raw_description=True)
