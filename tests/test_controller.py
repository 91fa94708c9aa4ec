"""Tests of the neural controller (training/controller.py)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from manifests.bands import band_profile_db, erb_layout
from training.controls import CONTROL_NAMES, CONTROL_SPECS, NOISE_SHAPE_KEY, SCALAR_CONTROL_NAMES, SPECS
from training.gate import spectral_gate
from training.stft import power_density, stft
from training.controller import Controller, Denoiser, analysis_excerpts
from training.cost import controller_macs_per_second, parameter_count

torch.set_num_threads(1)

SR = 48000
LAYOUT = erb_layout(SR)


def make_batch(batch: int, channels: int, seconds: float, seed: int):
    """Dense 'music' (sustained random chords) + coloured stationary noise; -> noisy, clean, true profile."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SR)
    t = np.arange(samples) / SR
    noisy, clean, profiles = [], [], []
    for _ in range(batch):
        sig = np.zeros(samples)
        for _ in range(4):
            f0 = rng.uniform(80, 1000)
            sig += sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k**1.5
                       for k in range(1, 12) if f0 * k < SR / 2)
        sig *= 0.05 * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        pole = rng.uniform(0.0, 0.97)
        noise = lfilter([1.0], [1.0, -pole], rng.standard_normal((channels, samples)), axis=-1)
        noise *= 10 ** (rng.uniform(-45, -25) / 20) / noise.std()
        c = np.tile(sig, (channels, 1)).astype(np.float32)
        n = noise.astype(np.float32)
        noisy.append(c + n)
        clean.append(c)
        profiles.append(band_profile_db(n, LAYOUT))
    return torch.from_numpy(np.stack(noisy)), torch.from_numpy(np.stack(clean)), torch.from_numpy(np.stack(profiles))


def test_parameter_count():
    controller = Controller(LAYOUT)
    n = parameter_count(controller, trainable_only=True)
    assert 100_000 < n < 1_000_000, n


@pytest.mark.parametrize("channels,samples", [(1, SR), (2, SR + 333), (1, 777), (3, 12_345)])
def test_outputs_within_the_table(channels, samples):
    torch.manual_seed(0)
    controller = Controller(LAYOUT)
    audio = torch.randn(2, channels, samples) * 0.05
    controls, normalized = controller.predict(audio)
    assert set(controls) - {NOISE_SHAPE_KEY} == set(CONTROL_NAMES) == set(normalized)
    assert controls[NOISE_SHAPE_KEY].shape == (2, LAYOUT.n_bins)
    for spec in CONTROL_SPECS:
        width = LAYOUT.n_bands if spec.per_band else 1
        value, u = controls[spec.name], normalized[spec.name]
        assert value.shape == u.shape == (2, width)
        assert torch.isfinite(value).all()
        assert (u > 0).all() and (u < 1).all()
        assert (value >= spec.min - 1e-3).all() and (value <= spec.max + 1e-3).all(), spec.name


def test_untrained_controller_outputs_prior_and_defaults():
    controller = Controller(LAYOUT)
    noisy, _, _ = make_batch(2, 1, 1.0, seed=1)
    controls = controller(noisy)
    prior = controller.prior_profile_db(noisy)
    assert (controls["noise_profile_db"] - prior).abs().max() < 1.0
    for name in SCALAR_CONTROL_NAMES:
        default = SPECS[name].default
        assert torch.allclose(controls[name], torch.full_like(controls[name], default), rtol=0.02, atol=0.05), name


def test_denoiser_shapes_and_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    controller = Controller(LAYOUT)
    denoiser = Denoiser(controller)
    for channels in (1, 2):
        noisy, clean, _ = make_batch(2, channels, 0.5, seed=2)
        noisy = noisy[..., :-11]  # odd length
        clean = clean[..., :-11]
        out, controls = denoiser(noisy)
        assert out.shape == noisy.shape
        controller.zero_grad()
        (out - clean).square().mean().backward()
        grads = {name: p.grad for name, p in controller.named_parameters()}
        assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
        assert all(g.abs().sum() > 0 for g in grads.values()), [n for n, g in grads.items() if g.abs().sum() == 0]


def test_quick_overfit_reduces_profile_error():
    torch.manual_seed(0)
    start = time.perf_counter()
    controller = Controller(LAYOUT)
    noisy, _, truth = make_batch(4, 1, 1.0, seed=3)
    spec = stft(noisy, LAYOUT)  # fixed batch: compute the analysis once
    optimizer = torch.optim.Adam(controller.parameters(), lr=3e-3)
    errors = []
    for _ in range(40):
        profile = controller(noisy, spec=spec)["noise_profile_db"]
        loss = (profile - truth).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        errors.append(loss.item() ** 0.5)
    assert errors[-1] < 0.5 * errors[0], errors
    assert time.perf_counter() - start < 10.0


def test_long_input_uses_excerpts_and_streaming():
    audio = torch.arange(100 * 10, dtype=torch.float32).reshape(1, 1, -1)
    short = analysis_excerpts(audio, 10, max_analysis_s=200.0)
    assert short is audio
    ex = analysis_excerpts(audio, 10, max_analysis_s=30.0, excerpt_s=10.0)
    assert ex.shape[-1] == 300 and ex[0, 0, 0] == 0 and ex[0, 0, -1] == 999
    controller = Controller(LAYOUT, max_analysis_s=2.0, excerpt_s=1.0)
    denoiser = Denoiser(controller)
    noisy, _, _ = make_batch(1, 2, 5.0, seed=4)
    out, controls = denoiser.enhance(noisy, block_s=1.5)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    reference = spectral_gate(noisy, controls, LAYOUT)
    assert (out - reference).abs().max() < 1e-5


def test_cost_estimate():
    controller = Controller(LAYOUT)
    macs = controller_macs_per_second(controller, channels=1, seconds=2.0)
    assert macs["total"] == pytest.approx(sum(v for k, v in macs.items() if k != "total"))
    assert 1e6 < macs["total"] < 1e9


def test_frame_pooling_divides_the_network_frame_rate():
    audio = torch.randn(2, 1, SR) * 0.05
    pooled, unpooled = Controller(LAYOUT, frame_pool=4), Controller(LAYOUT, frame_pool=1)
    power = power_density(stft(audio, LAYOUT), LAYOUT)
    frames = power.shape[-1]
    rel_pooled, prior_pooled, _ = pooled._features(power)
    rel, prior, _ = unpooled._features(power)
    assert rel.shape[-1] == frames and rel_pooled.shape[-1] == -(-frames // 4)
    assert torch.equal(prior, prior_pooled)
    # a pooled frame is the power mean of its 4 frames
    expected = torch.log10((10 ** rel[..., :4]).mean(dim=-1))  # rel is (dB - prior dB) / 10
    assert torch.allclose(rel_pooled[..., 0], expected, atol=1e-4)
    ratio = controller_macs_per_second(unpooled)["controller_nn"] / controller_macs_per_second(pooled)["controller_nn"]
    assert 3.5 < ratio < 4.5


def test_state_dict_round_trip():
    a, b = Controller(LAYOUT), Controller(LAYOUT)
    b.load_state_dict(a.state_dict())
    audio = torch.randn(1, 1, SR // 2) * 0.1
    assert all(torch.equal(a(audio)[k], b(audio)[k]) for k in CONTROL_NAMES)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    denoiser = Denoiser(Controller(LAYOUT)).cuda()
    audio = torch.randn(2, 2, SR, device="cuda") * 0.1
    out, controls = denoiser(audio)
    assert out.device.type == "cuda" and all(v.device.type == "cuda" for v in controls.values())


def test_per_band_path_reads_each_band_and_its_neighbours_only():
    torch.manual_seed(0)
    controller = Controller(LAYOUT)
    for layer in controller.band_net:  # leave the zero initialisation of the last layer: make the path visible
        if isinstance(layer, torch.nn.Conv1d):
            torch.nn.init.normal_(layer.weight, std=0.3)
    rel = torch.randn(1, LAYOUT.n_bands, 40)
    spectral = -torch.rand(1, 3, LAYOUT.n_bands)
    z = torch.randn(1, controller.config["mlp"])
    moved = rel.clone()
    moved[0, 20] += 1.0  # one band's level distribution shifts by 10 dB
    change = (controller._band_correction(moved, spectral, z) - controller._band_correction(rel, spectral, z)).abs()[0, 0]
    assert change[20] > 0
    # two kernel-3 convolutions over bands: bands more than two away do not see band 20
    assert torch.all(change[:18] == 0) and torch.all(change[23:] == 0)


def test_spectral_features_tell_sustained_partials_from_a_noise_floor():
    """Within a wide band, noise gives a flat per-bin floor; sustained partials over a quiet floor a peaky one."""
    controller = Controller(LAYOUT)
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    noise = 0.01 * rng.standard_normal(t.size)
    partials = sum(0.05 * np.sin(2 * np.pi * f * t) for f in np.arange(220.0, 20000.0, 220.0))
    features = {}
    for name, audio in {"noise": noise, "partials": partials + 0.001 * rng.standard_normal(t.size)}.items():
        power = power_density(stft(torch.tensor(audio, dtype=torch.float32)[None, None], LAYOUT), LAYOUT)
        _, prior_db, prior_bins_db = controller._features(power)
        features[name] = controller._spectral_features(power, prior_bins_db, prior_db)[0] * 10.0  # (3, n_bands) dB
    wide = torch.as_tensor(np.diff(LAYOUT.band_edges_bin) >= 20)  # bands holding several partials
    assert torch.all(features["noise"] <= 1e-4) and torch.all(features["partials"] <= 1e-4)
    # flatness of the per-bin floor, its deepest valley below the band's prior, flatness of the median spectrum
    for feature, noise_floor_db in enumerate((-1.0, -6.0, -1.0)):
        assert features["noise"][feature, wide].mean() > noise_floor_db
        assert features["partials"][feature, wide].mean() < noise_floor_db - 10.0
