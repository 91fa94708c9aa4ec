"""The synthetic corpus on disk: `materialize` writes generated speech, music or noise as 24-bit FLAC
files, deterministically, idempotently and atomically (the generators' only I/O).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from .music import artist_params, music_like
from .noise import NOISE_TYPES, NONSTATIONARY_TYPES, nonstationary_noise, stationary_noise
from .primitives import sample_count
from .speech import speaker_params, speech_like

# Bumped whenever a generator changes its output: part of every file's tag and of the `.complete` marker.
SYNTH_VERSION = 1

MATERIAL_KINDS = ("speech", "music", "noise", "nonstationary")
COMPLETE_MARKER = ".complete"


def stable_int(text: str) -> int:
    """A 64-bit integer of `text` that is the same in every process (unlike the salted `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _groups(kind: str, n_groups: int, noise_types: tuple[str, ...]) -> tuple[str, ...]:
    if kind == "speech":
        return tuple(f"spk{g:02d}" for g in range(n_groups))
    if kind == "music":
        return tuple(f"art{g:02d}" for g in range(n_groups))
    if kind == "noise":
        return tuple(noise_types)
    return NONSTATIONARY_TYPES


def _render(kind: str, group: str, index: int, seed: int, duration_s: float, sample_rate: int, channels: int) -> np.ndarray:
    """File `index` of `group`: a function of (seed, kind, group, index) and the format only."""
    rng = np.random.default_rng([seed, stable_int(kind), stable_int(group), index])
    if kind == "speech":
        speaker = speaker_params(np.random.default_rng([seed, stable_int(kind), stable_int(group)]))
        return speech_like(rng, speaker, sample_rate, duration_s, channels)
    if kind == "music":
        artist = artist_params(np.random.default_rng([seed, stable_int(kind), stable_int(group)]))
        return music_like(rng, artist, sample_rate, duration_s, channels)
    if kind == "noise":
        return stationary_noise(rng, group, sample_rate, duration_s, channels)
    return nonstationary_noise(rng, group, sample_rate, duration_s, channels)


def _is_done(path: Path, tag: str, n_samples: int) -> bool:
    """True if `path` is a complete file written for exactly this tag (files appear only whole)."""
    if not path.is_file():
        return False
    try:
        with sf.SoundFile(path) as existing:
            return existing.frames == n_samples and existing.comment == tag
    except (sf.LibsndfileError, RuntimeError):
        return False


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_flac(path: Path, audio: np.ndarray, sample_rate: int, channels: int, tag: str) -> None:
    """Write (channels, samples) `audio` as 24-bit FLAC tagged `tag` (FLAC comment), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(target: Path) -> None:
        with sf.SoundFile(target, "w", sample_rate, channels, subtype="PCM_24", format="FLAC") as out:
            out.comment = tag
            out.write(audio.T)

    _write_atomic(path, write)


def materialize(
    kind: str,
    out_dir: str | os.PathLike,
    count: int,
    duration_s: float,
    sample_rate: int,
    channels: int,
    seed: int,
    n_groups: int = 4,
    noise_types: tuple[str, ...] = NOISE_TYPES,
) -> list[Path]:
    """Write a synthetic corpus of 24-bit FLAC files and return their paths (sorted as generated).

    kind "speech": `count` files spread over `n_groups` talkers, out_dir/spkNN/spkNN_IIIII.flac;
    "music": likewise over artists, out_dir/artNN/...; "noise": `count` files per type in
    `noise_types`, out_dir/<noise_type>/<noise_type>_IIIII.flac (the folder names the type);
    "nonstationary": `count` files per NONSTATIONARY_TYPES kind, out_dir/<kind>/...

    File i's audio depends only on (seed, kind, group, i) and the format, so the same arguments give
    byte-identical files. Each file is written to a temporary name and renamed, and carries a tag
    (FLAC comment) of its parameters: an existing file with the right tag and length is kept, so an
    interrupted run resumes. `out_dir/.complete`, written last, records the arguments; when it
    matches, nothing is checked or written.
    """
    if kind not in MATERIAL_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {MATERIAL_KINDS}")
    if kind == "noise" and not set(noise_types) <= set(NOISE_TYPES):
        raise ValueError(f"unknown noise types {sorted(set(noise_types) - set(NOISE_TYPES))}")
    out_dir = Path(out_dir)
    groups = _groups(kind, n_groups, tuple(noise_types))
    per_group = kind in ("noise", "nonstationary")  # `count` files per group, else spread over groups
    jobs = [(group, i) for group in groups for i in range(count)] if per_group else [(groups[i % len(groups)], i) for i in range(count)]
    paths = [out_dir / group / f"{group}_{i:05d}.flac" for group, i in jobs]

    params = {
        "version": SYNTH_VERSION, "kind": kind, "count": int(count), "duration_s": float(duration_s),
        "sample_rate": int(sample_rate), "channels": int(channels), "seed": int(seed), "n_groups": int(n_groups),
        "noise_types": list(noise_types),
    }
    marker = out_dir / COMPLETE_MARKER
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return paths
    marker.unlink(missing_ok=True)  # from here on the folder is not what any marker describes
    n_samples = sample_count(sample_rate, duration_s)
    for (group, i), path in zip(jobs, paths):
        tag = json.dumps({**{key: params[key] for key in ("version", "kind", "seed", "duration_s", "sample_rate", "channels")},
                          "group": group, "index": i}, sort_keys=True)
        if not _is_done(path, tag, n_samples):
            _write_flac(path, _render(kind, group, i, seed, duration_s, sample_rate, channels), sample_rate, channels, tag)
    _write_atomic(marker, lambda target: target.write_text(json.dumps(params, indent=1, sort_keys=True)))
    return paths
