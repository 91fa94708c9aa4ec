"""The model that ships in the package (training/models/default.pt): present, the one its run record
describes, and it denoises through the CLI and the Python API with no checkpoint given."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datagen.synthetic.music import artist_params, music_like
from datagen.synthetic.noise import stationary_noise
from datagen.synthetic.speech import speaker_params, speech_like
from training import NoiseReducer, reduce_noise
from training.checkpoint import load_checkpoint
from training.cli import main as training_main
from training.metrics import si_sdr
from training.reducer import shipped_model_path

RUN_RECORD = Path(__file__).resolve().parents[1] / "training" / "models" / "default_run"


def mixture(kind: str, noise_type: str, snr_db: float, rate: int = 48000, seconds: float = 6.0, channels: int = 1,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy), each (channels, samples) float32: generated speech or music plus generated stationary noise."""
    rng = np.random.default_rng(seed)
    if kind == "speech":
        clean = speech_like(rng, speaker_params(rng), rate, seconds, channels)
    else:
        clean = music_like(rng, artist_params(rng), rate, seconds, channels)
    noise = stationary_noise(rng, noise_type, rate, seconds, channels)
    gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return clean, (clean + gain * noise).astype(np.float32)


def improvement_db(out: np.ndarray, clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(si_sdr(out[None], clean[None])[0] - si_sdr(noisy[None], clean[None])[0])


@pytest.fixture(scope="module")
def shipped():
    return NoiseReducer(device="cpu")


def test_the_shipped_model_is_the_recorded_run_best_checkpoint():
    path = shipped_model_path()
    checkpoint = load_checkpoint(path)
    assert checkpoint["kind"] == "controller" and checkpoint["layout"]["sample_rate"] == 48000
    results = json.loads((RUN_RECORD / "results.json").read_text())
    assert checkpoint["metrics"]["score"] == pytest.approx(results["best"]["score"], abs=1e-9)
    assert checkpoint["extra"]["config_hash"] == json.loads((RUN_RECORD / "run.json").read_text())["config_hash"]
    card = json.loads((RUN_RECORD / "model.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
    assert path.stat().st_size < 2_000_000  # package data: small


@pytest.mark.parametrize("kind,noise_type,snr_db,least_db", [
    ("speech", "pink", 5.0, 3.0), ("speech", "hum", 10.0, 1.0), ("music", "hiss", 5.0, 3.0), ("music", "white", 10.0, 1.0),
])
def test_reduce_noise_without_a_checkpoint_removes_stationary_noise(kind, noise_type, snr_db, least_db):
    clean, noisy = mixture(kind, noise_type, snr_db)
    out = reduce_noise(noisy, 48000)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert improvement_db(out, clean, noisy) > least_db


@pytest.mark.parametrize("noise_type", ["fan", "hvac", "brown"])
def test_music_under_low_frequency_noise_is_not_made_worse(shipped, noise_type):
    clean, noisy = mixture("music", noise_type, 10.0)
    assert improvement_db(shipped.reduce(noisy, 48000), clean, noisy) > -0.5


def test_the_shipped_model_leaves_a_clean_recording_nearly_unchanged(shipped):
    clean, _ = mixture("music", "white", 20.0, seed=1)
    out = shipped.reduce(clean, 48000)
    assert float(si_sdr(out[None], clean[None])[0]) > 20.0


def test_other_rates_and_channels_with_the_shipped_model(shipped):
    clean, noisy = mixture("speech", "pink", 5.0, rate=44100, seconds=4.0, channels=2, seed=2)
    out, controls = shipped.reduce(noisy, 44100, return_controls=True)
    assert out.shape == noisy.shape
    assert improvement_db(out, clean, noisy) > 3.0
    assert 0.0 < controls["reduction_db"] and controls["noise_profile_db"].ndim == 1


def test_cli_denoise_without_checkpoint_writes_the_format_of_the_output_name(tmp_path, capsys):
    clean, noisy = mixture("speech", "hvac", 5.0, seed=3)
    src, dst = tmp_path / "noisy.wav", tmp_path / "clean.flac"
    sf.write(str(src), noisy.T, 48000, subtype="PCM_24")
    assert training_main(["denoise", str(src), "-o", str(dst)]) == 0
    assert "clean.flac" in capsys.readouterr().out
    info = sf.info(str(dst))
    assert info.format == "FLAC" and info.samplerate == 48000 and info.frames == noisy.shape[1]
    out = sf.read(str(dst), dtype="float32", always_2d=True)[0].T
    assert improvement_db(out, clean, noisy) > 3.0
