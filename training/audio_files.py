"""Audio files in and out of `training denoise`: which inputs become which outputs, and the output's format.

The output's extension decides its format; a file in its own format keeps its subtype, in another the
input's subtype where that format has it (else 24-bit PCM for float input, else the format's default).
Outputs are written to a temporary sibling and renamed into place, so a failed file leaves nothing.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# extension -> (soundfile format, subtype when the format has no use for the input's; None = the format's default)
FORMATS = {
    ".wav": ("WAV", None), ".flac": ("FLAC", None), ".ogg": ("OGG", "VORBIS"), ".oga": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", None), ".aif": ("AIFF", None), ".aiff": ("AIFF", None),
    ".aifc": ("AIFF", None), ".w64": ("W64", None), ".rf64": ("RF64", None), ".caf": ("CAF", None),
    ".au": ("AU", None), ".snd": ("AU", None),
}
AUDIO_EXTENSIONS = tuple(FORMATS)

def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def format_extension(text: str) -> str:
    """`--format` value ("flac", ".FLAC") -> ".flac"; ValueError naming the accepted ones."""
    ext = "." + text.lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"--format {text}: use one of {', '.join(e[1:] for e in AUDIO_EXTENSIONS)}")
    return ext


@dataclass
class Job:
    src: Path
    dst: Path | None
    error: str | None = None


def plan_jobs(inputs: list[str], out: str, extension: str | None = None) -> list[Job]:
    """Source -> destination for every input file: one input file and an audio-named `out` is a file output
    (its extension is the format); anything else goes into the folder `out`, named as the inputs, with the
    suffix `extension` when given. ValueError for an audio-named `out` with several inputs or a folder input;
    per-job errors for missing inputs, name clashes and outputs that would replace an input."""
    out_path = Path(out)
    singles = [Path(p) for p in inputs]
    if is_audio(out_path) and not out_path.is_dir():
        if len(singles) != 1 or not singles[0].is_file():
            what = f"{len(singles)} inputs" if len(singles) != 1 else f"the folder {singles[0]}"
            raise ValueError(f"-o {out} names one audio file, but {what} were given; give an output folder "
                             "(with --format to choose the files' format)")
        if extension is not None and out_path.suffix.lower() != extension:
            raise ValueError(f"-o {out} and --format {extension[1:]} disagree; the output's extension decides "
                             "the format of a single file")
        return _check_jobs([Job(singles[0], out_path)])

    def target(path: Path) -> Path:
        return path.with_suffix(extension) if extension else path

    jobs: list[Job] = []
    for given in singles:
        if given.is_dir():
            files = sorted(p for p in given.rglob("*") if p.is_file() and is_audio(p) and not p.name.startswith("."))
            if not files:
                jobs.append(Job(given, None, f"{given}: no audio files found (extensions {' '.join(AUDIO_EXTENSIONS)})"))
            jobs += [Job(p, out_path / target(p.relative_to(given))) for p in files]
        elif given.is_file():
            jobs.append(Job(given, out_path / target(Path(given.name))))
        else:
            jobs.append(Job(given, None, f"{given}: no such file or folder"))
    return _check_jobs(jobs)


def _check_jobs(jobs: list[Job]) -> list[Job]:
    """Mark jobs whose output is an input file (there is no in-place mode) or another job's output."""
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


def output_format(dst: Path, info) -> tuple[str, str]:
    """(format, subtype) for writing `dst` from an input described by `soundfile.info`: the input's own when the
    extension names its format, else the input's subtype where the new format has it, else 24-bit PCM for a
    float input where it can, else the format's default."""
    fmt, fixed_subtype = FORMATS[dst.suffix.lower()]
    if fmt == info.format and (fixed_subtype is None or fixed_subtype == info.subtype):
        return fmt, info.subtype
    if fixed_subtype is not None:
        return fmt, fixed_subtype
    if sf.check_format(fmt, info.subtype):
        return fmt, info.subtype
    if info.subtype in ("FLOAT", "DOUBLE") and sf.check_format(fmt, "PCM_24"):
        return fmt, "PCM_24"
    return fmt, sf.default_subtype(fmt)


class AudioWriter:
    """Writes exactly `frames` frames (trims the excess, pads the shortfall with zeros) to a temporary
    sibling of `dst`, renamed into place by `commit`."""

    def __init__(self, dst: Path, info, frames: int):
        self.format, self.subtype = output_format(dst, info)
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.dst = dst
        self.tmp = dst.with_name(f".{dst.stem}.tmp-{uuid.uuid4().hex[:8]}{dst.suffix}")
        self.remaining = frames
        self.clip = self.subtype not in ("FLOAT", "DOUBLE")
        self.channels = info.channels
        endian = info.endian if self.format == info.format else "FILE"
        try:
            self.handle = sf.SoundFile(str(self.tmp), "w", samplerate=info.samplerate, channels=info.channels,
                                       subtype=self.subtype, format=self.format, endian=endian)
        except BaseException:
            self.tmp.unlink(missing_ok=True)  # libsndfile may have created it before refusing the parameters
            raise

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
