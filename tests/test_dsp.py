"""Tests of the differentiable spectral gate and its parts (training/controls.py, stft.py, bandmap.py, blind.py,
gate.py, streaming.py; its MAC count in training/cost.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from manifests.bands import band_profile_db, erb_layout, power_spectrogram
from training import cost
from training.bandmap import bins_to_bands_power, floor_shape_db, in_band_shape_db, profile_to_bins
from training.blind import blind_noise_bins_db, blind_noise_profile_db
from training.controls import (
    CONTROL_NAMES,
    CONTROL_SPECS,
    NOISE_SHAPE_KEY,
    SPECS,
    control_table_markdown,
    denormalize_controls,
    make_controls,
    normalize_controls,
)
from training.gate import frequency_smoothing, gate_ballistics, spectral_gate, spectral_gate_with_gain
from training.stft import hann_window, istft, n_frames, power_density, power_to_db, stft
from training.streaming import denoise_long
from training.losses import si_sdr

torch.set_num_threads(1)

SR = 48000
LAYOUT = erb_layout(SR)


def colored_noise(channels: int, samples: int, seed: int, level: float = 0.05) -> np.ndarray:
    """Stationary noise with a sloped spectrum (one-pole low-pass of white noise plus a little white)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((channels, samples))
    brown = lfilter([1.0], [1.0, -0.95], white, axis=-1) * 0.3
    return (level * (brown + 0.3 * rng.standard_normal((channels, samples)))).astype(np.float32)


def harmonic_bursts(channels: int, samples: int, seed: int, duty: float = 0.35, level: float = 0.3) -> np.ndarray:
    """Speech-like signal: harmonic tones with a random pitch, on in about `duty` of the time."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SR
    out = np.zeros(samples)
    seg = int(0.25 * SR)
    for start in range(0, samples, seg):
        if rng.random() < duty:
            f0 = rng.uniform(100, 300)
            piece = sum(np.sin(2 * np.pi * f0 * k * t[start:start + seg] + rng.uniform(0, 6.28)) / k
                        for k in range(1, 30) if f0 * k < SR / 2)
            env = np.hanning(len(piece))
            out[start:start + seg] = piece * env
    return np.tile(level * out / (np.abs(out).max() + 1e-9), (channels, 1)).astype(np.float32)


def profile_of(noise: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(band_profile_db(noise, LAYOUT))[None]


def power_db(x: torch.Tensor) -> float:
    return float(10 * torch.log10(x.double().square().mean()))


# -- controls table --------------------------------------------------------------------------------


def test_control_table_is_consistent():
    assert [s.name for s in CONTROL_SPECS][0] == "noise_profile_db"
    assert set(CONTROL_NAMES) == {"noise_profile_db", "threshold_db", "reduction_db", "knee_db", "attack_ms",
                                  "release_ms", "freq_smooth_hz", "tonal_detail"}
    for spec in CONTROL_SPECS:
        assert spec.unit and spec.description
        assert spec.min < spec.max and spec.min <= spec.default <= spec.max
        u = torch.linspace(0, 1, 11, dtype=torch.float64)
        v = spec.to_physical(u)
        assert torch.all(v[1:] > v[:-1])
        assert torch.allclose(v[[0, -1]], torch.tensor([spec.min, spec.max], dtype=torch.float64))
        assert torch.allclose(spec.to_normalized(v), u)
        assert 0.0 <= spec.default_normalized <= 1.0
    table = control_table_markdown()
    assert all(name in table for name in CONTROL_NAMES)


def test_readme_control_table_is_the_generated_one():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = control_table_markdown()
    header = table.splitlines()[0]
    assert readme.count(header) == 1, "README.md should hold the control table once"
    lines = readme[readme.index(header):].splitlines()
    copy = lines[:next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]
    assert "\n".join(copy) == table, "README.md's control table differs from control_table_markdown()"


def test_make_controls_shapes_and_normalization_round_trip():
    controls = make_controls(3, LAYOUT, noise_profile_db=-60.0, threshold_db=torch.tensor([1.0, 2.0, 3.0]))
    assert controls["noise_profile_db"].shape == (3, LAYOUT.n_bands)
    assert controls["threshold_db"].shape == (3, 1)
    assert controls["threshold_db"][:, 0].tolist() == [1.0, 2.0, 3.0]
    assert controls["release_ms"][0, 0].item() == SPECS["release_ms"].default
    back = denormalize_controls(normalize_controls(controls))
    for name in controls:
        assert torch.allclose(back[name], controls[name], rtol=1e-5, atol=1e-4)
    with pytest.raises(KeyError):
        make_controls(1, LAYOUT, treshold_db=3.0)


# -- STFT ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 2, SR + 123), (1, 1, 3000), (1, 1, 700), (1, 3, 4 * 512)])
def test_stft_perfect_reconstruction(shape):
    x = torch.randn(*shape) * 0.3
    spec = stft(x, LAYOUT)
    assert spec.shape == (shape[0], shape[1], LAYOUT.n_bins, n_frames(shape[-1], LAYOUT))
    y = istft(spec, LAYOUT, shape[-1])
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-5
    ref = torch.istft(spec.reshape(-1, *spec.shape[-2:]), LAYOUT.n_fft, LAYOUT.hop, window=hann_window(LAYOUT),
                      length=shape[-1]).reshape(shape)
    assert (y - ref).abs().max() < 1e-5


def test_power_density_matches_manifest_normalization():
    x = colored_noise(2, SR, seed=1)
    ref = power_spectrogram(x, LAYOUT.n_fft, LAYOUT.hop)  # (C, frames, bins), no padding
    # frame t of the manifest is frame t + 2 of the centred STFT (hop = n_fft / 4)
    spec = stft(torch.from_numpy(x)[None], LAYOUT)
    ours = power_density(spec, LAYOUT)[0].permute(0, 2, 1).double().numpy()
    offset = LAYOUT.n_fft // 2 // LAYOUT.hop
    np.testing.assert_allclose(ours[:, offset:offset + ref.shape[1]], ref, rtol=1e-3, atol=1e-10)
    # over the same frames, the same band profile as the manifest (the centred STFT only adds edge frames)
    power = power_density(spec, LAYOUT)[..., offset:offset + ref.shape[1]]
    banded = power_to_db(bins_to_bands_power(power.mean(dim=(1, 3)), LAYOUT))[0].numpy()
    np.testing.assert_allclose(banded, band_profile_db(x, LAYOUT), atol=1e-3)


def test_profile_to_bins():
    profile = torch.linspace(-100, -20, LAYOUT.n_bands)[None]
    step = profile_to_bins(profile, LAYOUT, "step")
    assert torch.equal(step[0], profile[0, torch.from_numpy(LAYOUT.bin_to_band())])
    linear = profile_to_bins(profile, LAYOUT, "linear")
    assert linear.shape == (1, LAYOUT.n_bins)
    assert torch.all(linear[0, 1:] >= linear[0, :-1] - 1e-4)  # monotone profile stays monotone
    assert linear[0, 0] == profile[0, 0] and linear[0, -1] == profile[0, -1]
    flat = profile_to_bins(torch.full((2, LAYOUT.n_bands), -50.0), LAYOUT)
    assert torch.allclose(flat, torch.full_like(flat, -50.0))


# -- gate ---------------------------------------------------------------------------------------------


def test_identity_when_reduction_is_zero():
    x = torch.from_numpy(harmonic_bursts(2, SR, 0) + colored_noise(2, SR, 1))[None]
    controls = make_controls(1, LAYOUT, noise_profile_db=profile_of(x[0].numpy()), reduction_db=0.0)
    y = spectral_gate(x, controls, LAYOUT)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-5


def test_identity_when_gate_fully_open():
    x = torch.from_numpy(colored_noise(1, SR, 2))[None]
    controls = make_controls(1, LAYOUT, noise_profile_db=-130.0, threshold_db=-6.0, reduction_db=40.0, knee_db=1.0)
    y = spectral_gate(x, controls, LAYOUT)
    assert (y - x).abs().max() < 1e-4


@pytest.mark.parametrize("reduction", [10.0, 25.0])
@pytest.mark.parametrize("channels", [1, 2])
def test_stationary_noise_is_attenuated_by_reduction(reduction, channels):
    noise = colored_noise(channels, 3 * SR, seed=3)
    x = torch.from_numpy(noise)[None]
    controls = make_controls(1, LAYOUT, noise_profile_db=profile_of(noise), threshold_db=20.0,
                             reduction_db=reduction, knee_db=4.0)
    y = spectral_gate(x, controls, LAYOUT)
    drop = power_db(x) - power_db(y)
    assert abs(drop - reduction) < 1.0, drop


def test_signal_is_kept_and_noise_is_reduced():
    """Apply the gain computed on the mixture to clean and noise separately (the gate is linear given its gain)."""
    clean = torch.from_numpy(harmonic_bursts(1, 3 * SR, seed=4, duty=0.5))[None]
    noise = torch.from_numpy(0.003 * np.random.default_rng(5).standard_normal((1, 3 * SR)).astype(np.float32))[None]
    controls = make_controls(1, LAYOUT, noise_profile_db=profile_of(noise[0].numpy()), threshold_db=6.0,
                             reduction_db=15.0)
    _, gain_db = spectral_gate_with_gain(clean + noise, controls, LAYOUT)
    gain = 10.0 ** (gain_db / 20.0)
    clean_out = istft(stft(clean, LAYOUT) * gain, LAYOUT, clean.shape[-1])
    noise_out = istft(stft(noise, LAYOUT) * gain, LAYOUT, clean.shape[-1])
    noise_reduction = power_db(noise) - power_db(noise_out)
    signal_distortion = power_db(clean) - power_db(clean_out - clean)
    assert noise_reduction > 8.0, noise_reduction  # the signal keeps the gate open half of the time
    assert signal_distortion > 35.0, signal_distortion


def test_gain_is_bounded_and_returned():
    x = torch.from_numpy(harmonic_bursts(2, SR, 6) + colored_noise(2, SR, 7))[None].repeat(2, 1, 1)
    controls = make_controls(2, LAYOUT, noise_profile_db=profile_of(x[0].numpy()),
                             reduction_db=torch.tensor([[12.0], [30.0]]))
    y, gain = spectral_gate_with_gain(x, controls, LAYOUT)
    assert gain.shape == (2, 1, LAYOUT.n_bins, n_frames(x.shape[-1], LAYOUT))
    assert gain.max() <= 1e-4
    assert gain[0].min() >= -12.0 - 1e-3 and gain[1].min() >= -30.0 - 1e-3
    assert gain[1].min() < -20.0
    _, per_channel = spectral_gate_with_gain(x, controls, LAYOUT, link_channels=False)
    assert per_channel.shape == (2, 2, LAYOUT.n_bins, gain.shape[-1])


@pytest.mark.parametrize("shape", [(1, 1, 1000), (3, 2, SR // 2 + 77), (2, 1, 4097)])
def test_shapes_and_link_modes(shape):
    x = torch.randn(*shape) * 0.1
    controls = make_controls(shape[0], LAYOUT, noise_profile_db=-20.0)
    for link in (True, False):
        y = spectral_gate(x, controls, LAYOUT, link_channels=link)
        assert y.shape == x.shape and torch.isfinite(y).all()
    y64 = spectral_gate(x.double(), controls, LAYOUT)
    assert y64.dtype == torch.float64


def test_gradients_reach_every_control():
    clean = torch.from_numpy(harmonic_bursts(1, SR, seed=8, duty=0.5))[None]
    noise = torch.from_numpy(colored_noise(1, SR, seed=9, level=0.02))[None]
    mid = {s.name: torch.full((1, LAYOUT.n_bands if s.per_band else 1), s.default_normalized, requires_grad=True)
           for s in CONTROL_SPECS}
    mid["noise_profile_db"] = SPECS["noise_profile_db"].to_normalized(profile_of(noise[0].numpy()) + 3.0)
    mid["noise_profile_db"].requires_grad_(True)
    mid["freq_smooth_hz"] = torch.full((1, 1), 0.4, requires_grad=True)
    mid["tonal_detail"] = torch.full((1, LAYOUT.n_bands), 0.5, requires_grad=True)
    controls = denormalize_controls(mid)
    controls[NOISE_SHAPE_KEY] = in_band_shape_db(
        blind_noise_bins_db(power_density(stft(clean + noise, LAYOUT), LAYOUT)), LAYOUT)
    y = spectral_gate(clean + noise, controls, LAYOUT)
    loss = (y - clean).square().mean()
    loss.backward()
    for name, u in mid.items():
        assert u.grad is not None, name
        assert torch.isfinite(u.grad).all(), name
        assert u.grad.abs().sum() > 0, name


def test_ballistics_gradcheck_and_time_constants():
    layout = erb_layout(SR)
    torch.manual_seed(0)
    x = torch.randn(40, 2, 5, dtype=torch.float64) * 5
    attack = torch.tensor([[3.0], [20.0]], dtype=torch.float64, requires_grad=True)
    release = torch.tensor([[50.0], [200.0]], dtype=torch.float64, requires_grad=True)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: gate_ballistics(a, b, c, layout), (x, attack, release))
    state = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s: gate_ballistics(a, attack, release, layout, s), (x, state))
    # step responses: after one time constant a rising step reaches 1 - 1/e, a falling one 1/e
    hop_ms = 1000.0 * layout.hop / layout.sample_rate
    steps = 60
    up = torch.cat([torch.zeros(1, 1, 1), torch.ones(steps, 1, 1)]).double()
    tau = 10 * hop_ms
    y = gate_ballistics(up, torch.tensor([[tau]]), torch.tensor([[1e4]]), layout)
    assert abs(y[10, 0, 0].item() - (1 - math.exp(-1))) < 1e-6
    down = 1.0 - up
    y = gate_ballistics(down, torch.tensor([[1e4]]), torch.tensor([[tau]]), layout)
    assert abs(y[10, 0, 0].item() - math.exp(-1)) < 1e-6


def test_frequency_smoothing_of_the_detector():
    g = torch.randn(7, 2, LAYOUT.n_bins)
    same = frequency_smoothing(g, torch.zeros(2, 1), LAYOUT)
    assert (same - g).abs().max() < 1e-4
    const = frequency_smoothing(torch.full((3, 2, LAYOUT.n_bins), -7.0), torch.tensor([[30.0], [250.0]]), LAYOUT)
    assert torch.allclose(const, torch.full_like(const, -7.0), atol=1e-4)
    smooth = frequency_smoothing(g, torch.tensor([[100.0], [100.0]]), LAYOUT)
    assert smooth.std() < 0.5 * g.std()
    # wider smoothing -> less spread of the gain over pure noise (less musical noise)
    noise = torch.from_numpy(colored_noise(1, 2 * SR, seed=16))[None]
    spreads = []
    for width in (0.0, 40.0, 200.0):
        controls = make_controls(1, LAYOUT, noise_profile_db=profile_of(noise[0].numpy()), freq_smooth_hz=width)
        spreads.append(spectral_gate_with_gain(noise, controls, LAYOUT)[1].std().item())
    assert spreads[0] > spreads[1] > spreads[2], spreads


# -- blind estimate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_blind_profile_on_noise_only(channels):
    noise = colored_noise(channels, 5 * SR, seed=10)
    est = blind_noise_profile_db(torch.from_numpy(noise)[None], LAYOUT)[0].numpy()
    err = est - band_profile_db(noise, LAYOUT)
    assert np.abs(err).mean() < 0.6 and np.abs(err).max() < 3.0, err


def test_blind_profile_on_gapped_signal_plus_noise():
    noise = colored_noise(1, 8 * SR, seed=11, level=0.02)
    clean = harmonic_bursts(1, 8 * SR, seed=12, duty=0.35)
    est = blind_noise_profile_db(torch.from_numpy(clean + noise)[None], LAYOUT)[0].numpy()
    err = est - band_profile_db(noise, LAYOUT)
    assert np.median(np.abs(err)) < 1.5 and np.abs(err).max() < 3.5, err


# -- streaming ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", [True, False])
def test_denoise_long_matches_one_shot(link):
    samples = 30 * SR + 333
    rng = np.random.default_rng(13)
    x = torch.from_numpy(np.concatenate([harmonic_bursts(1, samples, 14), colored_noise(1, samples, 15)])
                         + 0.02 * rng.standard_normal((2, samples)).astype(np.float32))[None]
    controls = make_controls(1, LAYOUT, noise_profile_db=profile_of(x[0, 1:].numpy()) + 3.0, threshold_db=6.0,
                             reduction_db=30.0, attack_ms=5.0, release_ms=500.0, freq_smooth_hz=120.0)
    whole = spectral_gate(x, controls, LAYOUT, link_channels=link)
    streamed = denoise_long(x, controls, LAYOUT, block_s=3.7, link_channels=link)
    assert streamed.shape == x.shape
    assert (whole - streamed).abs().max() < 1e-5


def test_denoise_long_short_input_single_block():
    x = torch.randn(1, 1, 900) * 0.1
    controls = make_controls(1, LAYOUT, noise_profile_db=-30.0)
    streamed = denoise_long(x, controls, LAYOUT, block_s=0.01)  # one frame per block
    assert (streamed - spectral_gate(x, controls, LAYOUT)).abs().max() < 1e-5


def test_macs_estimate():
    macs = cost.gate_macs_per_second(LAYOUT, channels=2)
    assert macs["total"] == pytest.approx(macs["stft"] + macs["gate"] + macs["istft"])
    assert 1e6 < macs["total"] < 1e9


def test_in_band_shape_is_zero_for_a_flat_floor_and_marks_a_tone():
    flat = torch.full((1, LAYOUT.n_bins), -60.0)
    assert in_band_shape_db(flat, LAYOUT).abs().max() < 1e-4
    band = int(np.argmax(np.diff(LAYOUT.band_edges_bin) >= 8))  # a band of several bins
    lo, hi = int(LAYOUT.band_edges_bin[band]), int(LAYOUT.band_edges_bin[band + 1])
    peaked = flat.clone()
    peaked[0, lo + 3] = -30.0
    shape = in_band_shape_db(peaked, LAYOUT)[0]
    assert shape[lo + 3] > 5.0  # the tone's bin stands above its band's level (10 log10 of the band's bins)
    assert torch.all(shape[lo:hi][torch.arange(lo, hi) != lo + 3] < -3.0)  # the rest of the band below it
    # the blind floor of white noise ripples around its band levels; the deadband of `floor_shape_db` removes that
    power = power_density(stft(0.05 * torch.randn(1, 1, 4 * SR, generator=torch.Generator().manual_seed(0)),
                               LAYOUT), LAYOUT)
    floor = blind_noise_bins_db(power, 0.1, 2)
    assert (in_band_shape_db(floor, LAYOUT).abs() > 0.1).float().mean() > 0.8
    assert (floor_shape_db(floor, LAYOUT, power.shape[-1], 2) == 0).float().mean() > 0.9


def test_tonal_detail_removes_a_whine_that_a_band_profile_misses():
    """Whine partials (in bands many bins wide) + harmonic bursts: with the oracle band profile, the band's
    mean level sits far below the partials' bins, so they pass as signal; following the blind per-bin
    floor inside each band (tonal_detail 1) gates them. Without the floor in the controls the control
    has no effect."""
    t = np.arange(3 * SR) / SR
    whine = sum(0.03 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate((1730.0, 3460.0, 5190.0, 6920.0)))
    whine = (whine + 0.0005 * np.random.default_rng(3).standard_normal(t.size)).astype(np.float32)
    clean = torch.from_numpy(harmonic_bursts(1, 3 * SR, seed=4, duty=0.5))[None]
    noisy = clean + torch.from_numpy(whine)[None, None]
    power = power_density(stft(noisy, LAYOUT), LAYOUT)
    shape = floor_shape_db(blind_noise_bins_db(power), LAYOUT, power.shape[-1])
    controls = make_controls(1, LAYOUT, noise_profile_db=profile_of(whine[None]), reduction_db=30.0)

    def sdr(detail: float, with_floor: bool = True) -> float:
        c = {**controls, "tonal_detail": torch.full((1, LAYOUT.n_bands), detail)}
        if with_floor:
            c[NOISE_SHAPE_KEY] = shape
        return float(si_sdr(spectral_gate(noisy, c, LAYOUT), clean))

    assert sdr(0.0) < 5.0  # measured 1.2 dB (input -0.6 dB)
    assert sdr(1.0) > sdr(0.0) + 10.0  # measured 21.3 dB
    assert sdr(1.0, with_floor=False) == sdr(0.0)
