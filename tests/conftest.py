"""Shared fixtures: a small on-disk corpus of mixed rates, channel counts and formats, plus bad files."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def speechlike(rng: np.random.Generator, sample_rate: int, duration_s: float) -> np.ndarray:
    """Harmonic syllables with fricative noise and true pauses -> (samples,)."""
    n = int(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30) if k * f0.max() < sample_rate / 2)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.5, 5) * t), 0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6)) > -0.3).astype(float)
    fricative = rng.standard_normal(n) * (np.sin(2 * np.pi * 2.1 * t) > 0.8)
    x = (0.3 * voiced + 0.05 * fricative) * syllables * pauses
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def musiclike(rng: np.random.Generator, sample_rate: int, duration_s: float, channels: int) -> np.ndarray:
    """Sustained chords with note changes -> (channels, samples)."""
    n = int(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    notes = rng.choice([220.0, 261.6, 329.6, 392.0, 440.0, 523.3], size=3, replace=False)
    x = sum(np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.cos(2 * np.pi * 0.5 * t + i)) for i, f in enumerate(notes))
    x = x + 0.02 * rng.standard_normal(n)
    out = np.stack([x * (0.8 + 0.2 * c) for c in range(channels)])
    return (0.4 * out / np.max(np.abs(out))).astype(np.float32)


def colored_noise(rng: np.random.Generator, sample_rate: int, duration_s: float, slope_db_per_oct: float) -> np.ndarray:
    n = int(duration_s * sample_rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 20.0)
    spectrum *= (freqs / 1000.0) ** (slope_db_per_oct / 20.0 / np.log10(2))
    x = np.fft.irfft(spectrum, n)
    return (0.05 * x / np.std(x)).astype(np.float32)


def write_corpus(root: Path) -> Path:
    """Write the test corpus under `root` and return it."""
    rng = np.random.default_rng(1234)
    for speaker, rate, ext in [("spk1", 44100, "flac"), ("spk2", 16000, "wav"), ("spk3", 48000, "flac"), ("spk4", 22050, "ogg")]:
        for i in range(2):
            path = root / "speech" / speaker / f"utt{i}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, speechlike(rng, rate, 4.0 + i), rate)
    for artist, rate, channels in [("art1", 44100, 2), ("art2", 48000, 1), ("art3", 32000, 2)]:
        path = root / "music" / artist / "piece.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, musiclike(rng, rate, 6.0, channels).T, rate)
    for noise_type, slope, rate, channels in [("white", 0.0, 48000, 1), ("pink", -3.0, 16000, 1), ("brown", -6.0, 44100, 2)]:
        for i in range(3):
            path = root / "noise" / noise_type / f"n{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = np.stack([colored_noise(rng, rate, 5.0, slope) for _ in range(channels)])
            sf.write(path, audio.T, rate, subtype="PCM_24")
    bursts = colored_noise(rng, 48000, 5.0, 0.0) * np.repeat(rng.random(10) > 0.6, 24000)[: 5 * 48000] + 1e-4 * rng.standard_normal(5 * 48000)
    (root / "noise" / "bursts").mkdir(parents=True, exist_ok=True)
    sf.write(root / "noise" / "bursts" / "b0.wav", bursts.astype(np.float32), 48000)
    return root


def write_bad_files(folder: Path) -> dict[str, Path]:
    """One file per failure mode, in `folder`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f"{name}.wav" for name in ("corrupt", "empty", "silent", "nan", "short")}
    files["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" * 3)
    sf.write(files["empty"], np.zeros(0, dtype=np.float32), 16000)
    sf.write(files["silent"], np.zeros(48000 * 3, dtype=np.float32), 48000)
    nan = speechlike(np.random.default_rng(5), 16000, 3.0)
    nan[100:200] = np.nan
    sf.write(files["nan"], nan, 16000, subtype="FLOAT")
    sf.write(files["short"], speechlike(np.random.default_rng(6), 16000, 0.3), 16000)
    return files


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_config_text(corpus: Path, examples: str = "{ train = 12, valid = 6, test = 6 }", extra: str = "") -> str:
    """A small, fast build config over the test corpus (1 s clips at 48 kHz)."""
    return textwrap.dedent(f"""
        seed = 7
        [audio]
        clip_duration_s = 1.0
        [splits]
        fractions = {{ train = 0.5, valid = 0.25, test = 0.25 }}
        examples = {examples}
        [shards]
        examples_per_shard = 4
        [dask]
        workers = 1
        [[corpora]]
        name = "speech"
        type = "speech"
        path = "{corpus}/speech"
        group_pattern = "^([^/]+)/"
        [[corpora]]
        name = "music"
        type = "music"
        path = "{corpus}/music"
        group_pattern = "^([^/]+)/"
        [[corpora]]
        name = "noise"
        type = "noise"
        path = "{corpus}/noise"
    """) + textwrap.dedent(extra)


@pytest.fixture
def tiny_config(tmp_path, corpus_dir) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_config_text(corpus_dir))
    return path


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, corpus_dir) -> Path:
    """One 1-worker build of the tiny config, shared by tests that only read it (copy it to change it)."""
    from datagen.build import build
    from datagen.config import load_config

    root = tmp_path_factory.mktemp("tiny_build")
    config = root / "tiny.toml"
    config.write_text(tiny_config_text(corpus_dir))
    out = root / "out"
    build(load_config(config), str(out), workers=1, progress=False)
    return out


@pytest.fixture
def tiny_build_copy(tiny_build, tmp_path) -> Path:
    """A private copy of `tiny_build` that a test may corrupt."""
    target = tmp_path / "copy"
    shutil.copytree(tiny_build, target)
    return target
