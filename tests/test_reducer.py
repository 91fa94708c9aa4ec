"""The Python API (training/reducer.py): `reduce_noise(y, sr)` and `NoiseReducer` with its stream."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from training import NoiseReducer, reduce_noise
from training.reducer import ReducerError, measure_noise

from test_denoise import LAYOUT, checkpoints, noisy_music  # noqa: F401  (checkpoints is a fixture)

STREAM_TOLERANCE = 1e-5  # the README's stated bound: a stream equals one call up to float rounding


@pytest.fixture(scope="module")
def reducer(checkpoints):
    return NoiseReducer(checkpoints["controller"], device="cpu")


@pytest.mark.parametrize("rate,shape", [
    (48000, (96000,)), (44100, (2, 44100)), (16000, (3, 8000)), (22050, (1, 22050)),
    (48000, (100,)), (8000, (1,)), (48000, (0,)), (48000, (2, 0)),
])
def test_any_rate_shape_and_length_comes_back_the_same(reducer, rate, shape):
    y = (0.1 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)
    out, controls = reducer.reduce(y, rate, return_controls=True)
    assert out.shape == y.shape and out.dtype == y.dtype and np.isfinite(out).all()
    if y.size:
        assert set(controls) >= {"reduction_db", "threshold_db", "noise_profile_db"}
        assert controls["noise_profile_db"].shape == (LAYOUT.n_bands,)
        assert isinstance(controls["reduction_db"], float)


def test_float64_in_float64_out(reducer):
    y = noisy_music(48000, 1.0, 1)[:, 0].astype(np.float64)
    out = reducer.reduce(y, 48000)
    assert out.dtype == np.float64 and out.shape == y.shape


@pytest.mark.parametrize("rate,block", [(48000, 480), (48000, 4801), (44100, 441), (16000, 16000)])
def test_a_stream_equals_one_call(reducer, rate, block):
    y = noisy_music(rate, 3.0, 2).T.copy()
    controls = reducer.predict_controls(y, rate)
    whole = reducer.reduce(y, rate)
    stream = reducer.stream(rate, 2, controls)
    pieces = [stream.process(y[:, i:i + block]) for i in range(0, y.shape[1], block)]
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces, axis=1)
    assert streamed.shape == y.shape
    assert np.abs(streamed - whole).max() < STREAM_TOLERANCE


def test_stream_lag_stays_within_the_stated_latency_at_the_model_rate(reducer):
    y = noisy_music(48000, 2.0, 1)[:, 0]
    stream = reducer.stream(48000, 1, reducer.predict_controls(y, 48000))
    worst, emitted = 0, 0
    for i in range(0, y.size, 256):
        emitted += stream.process(y[i:i + 256]).size
        worst = max(worst, stream.pending_samples)
    assert 0 < worst <= stream.latency_samples
    assert emitted + stream.flush().size == y.size and stream.pending_samples == 0


def test_a_noise_clip_sets_the_profile_and_a_deep_gate_removes_that_noise(reducer):
    rng = np.random.default_rng(3)
    noise = (0.05 * rng.standard_normal(3 * 48000)).astype(np.float32)
    clip = (0.05 * rng.standard_normal(48000)).astype(np.float32)
    out, controls = reducer.reduce(noise, 48000, return_controls=True, noise_clip=clip, reduction_db=40.0,
                                   threshold_db=6.0)
    expected = measure_noise(clip[:, None], 48000, LAYOUT)["noise_profile_db"]
    assert np.allclose(controls["noise_profile_db"], expected, atol=1e-4)
    assert np.all(controls["tonal_detail"] == 1.0) and controls["reduction_db"] == 40.0
    removed_db = 10 * np.log10(np.mean(noise ** 2) / np.mean(out ** 2))
    assert removed_db > 20.0


@pytest.mark.parametrize("kwargs,message", [
    ({"reduction_db": 1e9}, "outside the trained range 0..40 dB"),
    ({"attack_ms": 0.0}, "outside the trained range 1..200 ms"),
    ({"loudness": 3.0}, "unknown control 'loudness'"),
    ({"noise_profile_db": -40.0}, "unknown control 'noise_profile_db'"),
])
def test_bad_controls_are_refused_with_the_range(reducer, kwargs, message):
    with pytest.raises(ReducerError, match=message):
        reducer.reduce(np.zeros(4800, np.float32), 48000, **kwargs)


@pytest.mark.parametrize("audio,rate,message", [
    (np.zeros(100, np.int16), 48000, "floating-point"),
    (np.zeros((1, 2, 100), np.float32), 48000, "expected \\(samples,\\) or \\(channels, samples\\)"),
    (np.zeros(100, np.float32), 0, "positive whole number"),
    (np.zeros(100, np.float32), 44100.0, "positive whole number"),
])
def test_bad_audio_is_refused(reducer, audio, rate, message):
    with pytest.raises(ReducerError, match=message):
        reducer.reduce(audio, rate)


def test_non_finite_input_is_zeroed_with_a_warning(reducer):
    y = noisy_music(48000, 1.0, 1)[:, 0].copy()
    y[100:200] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = reducer.reduce(y, 48000)
    assert np.isfinite(out).all()
    assert any("100 non-finite" in str(w.message) for w in caught)


def test_reduce_noise_loads_the_model_once(checkpoints, monkeypatch):
    from training import reducer as module

    y = noisy_music(44100, 1.0, 2).T.copy()
    first = reduce_noise(y, 44100, checkpoint=checkpoints["controller"], device="cpu")
    loads = []
    monkeypatch.setattr(module.NoiseReducer, "__init__", lambda *a, **k: loads.append(1))
    second = reduce_noise(y, 44100, checkpoint=checkpoints["controller"], device="cpu")
    assert loads == [] and np.array_equal(first, second) and first.shape == y.shape


def test_mask_network_reduces_but_has_no_controls_or_stream(checkpoints):
    masknet = NoiseReducer(checkpoints["masknet"], device="cpu")
    y = noisy_music(44100, 1.0, 2).T.copy()
    out = masknet.reduce(y, 44100)
    assert out.shape == y.shape and np.isfinite(out).all()
    with pytest.raises(ReducerError, match="controller checkpoint"):
        masknet.reduce(y, 44100, reduction_db=10.0)
    with pytest.raises(ReducerError, match="controller checkpoint"):
        masknet.stream(44100, 2, {})


def test_the_model_runs_on_the_chosen_device(checkpoints):
    reducer = NoiseReducer(checkpoints["controller"], device="cpu")
    assert next(reducer.model.parameters()).device == torch.device("cpu")
    with pytest.raises(ValueError, match="tpu"):
        NoiseReducer(checkpoints["controller"], device="tpu")


def test_without_a_checkpoint_a_missing_shipped_model_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from training import reducer as module
    from training.cli import main

    monkeypatch.setattr(module, "SHIPPED_MODEL", "no-such-model.pt")
    src = tmp_path / "noisy.wav"
    sf.write(str(src), noisy_music(48000, 0.5, 1), 48000)
    assert main(["denoise", str(src), "-o", str(tmp_path / "clean.flac"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no-such-model.pt: the shipped model is missing" in err and "--checkpoint" in err
    assert not (tmp_path / "clean.flac").exists()
    with pytest.raises(ReducerError, match="shipped model is missing"):
        NoiseReducer()
