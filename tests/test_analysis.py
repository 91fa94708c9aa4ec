"""datagen.analysis: activity mask, BS.1770 loudness, peak, SNR definitions and effective bandwidth."""
from __future__ import annotations

import warnings

import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import soxr

from datagen.analysis import (
    ACTIVITY_HOP_S,
    SNR_DEFINITIONS,
    activity_mask,
    integrated_loudness_lufs,
    noise_gain_for_snr,
    peak_dbfs,
    snr_db,
)
from datagen.spectrum_bandwidth import bandwidth_hz

RATE = 48000
SYLLABLE_S, PAUSE_S = 0.3, 0.2  # speech-like pattern: 0.3 s voiced, 0.2 s pause, repeated


def sine(freq_hz: float, level_dbfs: float, duration_s: float, sample_rate: int = RATE) -> np.ndarray:
    """(samples,) sine with peak `level_dbfs`."""
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    return 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq_hz * t)


def white(seed: int, shape: tuple[int, ...], rms: float = 0.1) -> np.ndarray:
    return rms * np.random.default_rng(seed).standard_normal(shape)


def pink(seed: int, channels: int, duration_s: float, sample_rate: int = RATE) -> np.ndarray:
    """(channels, samples) 1/f noise, rms 0.1."""
    n = int(duration_s * sample_rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal((channels, n)))
    spectrum[:, 1:] /= np.sqrt(np.arange(1, spectrum.shape[1]))
    spectrum[:, 0] = 0
    x = np.fft.irfft(spectrum, n)
    return 0.1 * x / x.std()


def speech_like(seed: int, channels: int, duration_s: float = 2.0, pause_level_db: float | None = None) -> np.ndarray:
    """(channels, samples) harmonic syllables (f0 150 Hz, 1/k partials, Hann envelope) and pauses.

    Pauses are exact zeros, or white noise `pause_level_db` below the syllables' rms.
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * RATE)
    t = np.arange(n) / RATE
    voiced = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 40))
    phase = np.mod(t, SYLLABLE_S + PAUSE_S)
    envelope = np.where(phase < SYLLABLE_S, np.sin(np.pi * phase / SYLLABLE_S), 0.0)
    x = voiced * envelope
    x = np.stack([x * (1.0 - 0.3 * c) for c in range(channels)])
    x = 0.3 * x / np.abs(x).max()
    if pause_level_db is not None:
        rms = np.sqrt(np.mean(x[:, phase < SYLLABLE_S] ** 2))
        x = x + (phase >= SYLLABLE_S) * white(seed + 1, x.shape, rms * 10 ** (pause_level_db / 20))
    return x


def frame_phase(n_frames: int) -> np.ndarray:
    """(n_frames,) position of each activity frame's centre within the syllable/pause period, in s."""
    return np.mod((np.arange(n_frames) + 0.5) * ACTIVITY_HOP_S, SYLLABLE_S + PAUSE_S)


# ---------------------------------------------------------------- activity

@pytest.mark.parametrize("pause_level_db", [None, -60.0])
def test_activity_mask_marks_pauses_inactive_and_syllables_active(pause_level_db):
    audio = speech_like(0, 1, pause_level_db=pause_level_db)
    mask = activity_mask(audio, RATE)
    phase = frame_phase(mask.size)
    assert mask.shape == (100,) and mask.dtype == bool
    assert not mask[phase > SYLLABLE_S + 0.02].any()  # every frame fully inside a pause
    assert mask[(phase > 0.03) & (phase < SYLLABLE_S - 0.03)].all()  # syllable frames off the fade ends


def test_activity_mask_is_gain_invariant():
    audio = speech_like(1, 2, pause_level_db=-50.0)
    mask = activity_mask(audio, RATE)
    assert 0.4 < mask.mean() < 0.8
    for gain in (1e-4, 0.05, 3.0):
        np.testing.assert_array_equal(activity_mask(gain * audio, RATE), mask)


def test_activity_mask_counts_partial_last_frame_and_never_marks_digital_silence():
    audio = white(2, (1, RATE + 100))
    audio[:, : RATE // 2] = 0.0
    audio[:, RATE:] *= 10 ** (-35 / 20)  # 100-sample last frame, 35 dB down: active only if its level is its own
    mask = activity_mask(audio, RATE)
    assert mask.size == 51  # ceil(48100 / 960)
    assert not mask[:25].any() and mask[25:].all()
    assert not activity_mask(np.zeros((2, RATE)), RATE).any()


def test_activity_mask_of_continuous_music_is_all_active():
    t = np.arange(2 * RATE) / RATE
    chords = sum(np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.cos(2 * np.pi * 0.5 * t + i)) for i, f in enumerate((220.0, 277.2, 329.6)))
    assert activity_mask(0.2 * chords, RATE).mean() == 1.0


# ---------------------------------------------------------------- loudness and peak

@pytest.mark.parametrize("sample_rate", [48000, 44100])
@pytest.mark.parametrize("level_dbfs", [0.0, -20.0])
def test_loudness_of_997hz_sine_in_one_channel(sample_rate, level_dbfs):
    """BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS."""
    audio = sine(997.0, level_dbfs, 3.0, sample_rate)[np.newaxis]
    assert integrated_loudness_lufs(audio, sample_rate) == pytest.approx(level_dbfs - 3.01, abs=0.01)


def test_loudness_of_stereo_sine_at_minus_23_dbfs_is_minus_23_lufs():
    """EBU Tech 3341 case 1: a 1 kHz sine at -23 dBFS in both channels reads -23.0 LUFS."""
    audio = np.stack([sine(1000.0, -23.0, 3.0)] * 2)
    assert integrated_loudness_lufs(audio, RATE) == pytest.approx(-23.0, abs=0.05)


def test_loudness_gates_out_quiet_passages():
    """EBU Tech 3341 case 3: 10 s / 60 s / 10 s of a stereo 1 kHz tone at -36 / -23 / -36 dBFS read -23.0 LUFS."""
    levels = np.repeat([-36.0, -23.0, -36.0], [10 * RATE, 60 * RATE, 10 * RATE])
    audio = np.stack([10 ** (levels / 20) * sine(1000.0, 0.0, 80.0)] * 2)
    assert integrated_loudness_lufs(audio, RATE) == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize("name", ["white mono", "pink stereo", "tone stereo", "gated mono", "noise 44.1 kHz stereo"])
def test_loudness_matches_pyloudnorm(name):
    sample_rate = 44100 if "44.1" in name else RATE
    audio = {
        "white mono": white(3, (1, 4 * RATE)),
        "pink stereo": pink(4, 2, 4.0) * [[1.0], [0.3]],
        "tone stereo": np.stack([sine(440.0, -12.0, 3.0), sine(5000.0, -30.0, 3.0)]),
        "gated mono": np.concatenate([white(5, 2 * RATE, 1e-5), white(6, 3 * RATE, 0.05), white(7, RATE, 0.002)])[np.newaxis],
        "noise 44.1 kHz stereo": white(8, (2, 3 * 44100)),
    }[name]
    reference = pyloudnorm.Meter(sample_rate, filter_class="DeMan").integrated_loudness(audio.T)
    assert integrated_loudness_lufs(audio, sample_rate) == pytest.approx(reference, abs=0.01)


def test_loudness_of_silence_is_minus_inf_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert integrated_loudness_lufs(np.zeros((2, RATE)), RATE) == -np.inf
        assert integrated_loudness_lufs(white(9, (1, RATE), 1e-6), RATE) == -np.inf  # under the -70 LUFS gate


def test_loudness_rejects_input_shorter_than_one_block():
    with pytest.raises(ValueError, match="400 ms"):
        integrated_loudness_lufs(white(10, (1, int(0.39 * RATE))), RATE)


def test_peak_dbfs():
    audio = np.zeros((2, 100))
    assert peak_dbfs(audio) == -np.inf
    audio[1, 50] = -0.5
    assert peak_dbfs(audio) == pytest.approx(-6.0206, abs=1e-4)


# ---------------------------------------------------------------- SNR

@pytest.mark.parametrize("target_db", [-5.0, 0.0, 10.0, 30.0])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("definition", SNR_DEFINITIONS)
def test_noise_gain_for_snr_hits_the_target(definition, channels, target_db):
    clean = speech_like(11, channels, pause_level_db=-70.0)
    noise = pink(12, channels, 2.0) * 0.03
    gain = noise_gain_for_snr(clean, noise, RATE, definition, target_db)
    assert snr_db(clean, gain * noise, RATE, definition) == pytest.approx(target_db, abs=1e-6)


def test_loudness_gain_corrects_for_the_absolute_gate():
    """The noise fades by 9 dB; at -67 LUFS its quiet end falls under the -70 LUFS gate."""
    clean = white(13, (1, 4 * RATE), 0.01)  # -36.8 LUFS
    noise = white(14, (1, 4 * RATE)) * 10 ** (np.linspace(0, -9, 4 * RATE) / 20)
    gain = noise_gain_for_snr(clean, noise, RATE, "loudness", 30.0)
    naive_gain = 10 ** ((integrated_loudness_lufs(clean, RATE) - 30.0 - integrated_loudness_lufs(noise, RATE)) / 20)
    assert abs(snr_db(clean, naive_gain * noise, RATE, "loudness") - 30.0) > 0.05  # the gate does interfere
    assert snr_db(clean, gain * noise, RATE, "loudness") == pytest.approx(30.0, abs=1e-6)
    quiet = 1e-6 * noise  # reads -inf LUFS before gain
    assert snr_db(clean, noise_gain_for_snr(clean, quiet, RATE, "loudness", 20.0) * quiet, RATE, "loudness") == pytest.approx(20.0, abs=1e-6)


def test_active_snr_ignores_the_cleans_silence():
    """Half the clean is silent: active SNR exceeds rms SNR by 10 log10(2) dB for stationary noise."""
    clean = white(15, (1, 4 * RATE)) * np.tile(np.repeat([1.0, 0.0], RATE // 2), 4)
    noise = white(16, (1, 4 * RATE))
    difference = snr_db(clean, noise, RATE, "active") - snr_db(clean, noise, RATE, "rms")
    assert difference == pytest.approx(10 * np.log10(2), abs=0.05)


def test_snr_accepts_a_precomputed_mask():
    clean, noise = speech_like(17, 2), pink(18, 2, 2.0)
    mask = activity_mask(clean, RATE)
    assert snr_db(clean, noise, RATE, "active", active_mask=mask) == snr_db(clean, noise, RATE, "active")
    assert noise_gain_for_snr(clean, noise, RATE, "active", 5.0, active_mask=mask) == noise_gain_for_snr(clean, noise, RATE, "active", 5.0)


@pytest.mark.parametrize("definition", SNR_DEFINITIONS)
def test_silent_noise_or_clean_is_an_error(definition):
    clean = speech_like(19, 1)
    with pytest.raises(ValueError, match="noise is silent"):
        noise_gain_for_snr(clean, np.zeros_like(clean), RATE, definition, 10.0)
    with pytest.raises(ValueError, match="clean is silent"):
        noise_gain_for_snr(np.zeros_like(clean), white(20, clean.shape), RATE, definition, 10.0)
    assert snr_db(clean, np.zeros_like(clean), RATE, definition) == np.inf


def test_noise_silent_only_during_the_cleans_pauses():
    clean = white(21, (1, 2 * RATE)) * np.repeat([1.0, 0.0], RATE)
    noise = white(22, (1, 2 * RATE)) * np.repeat([0.0, 1.0], RATE)
    with pytest.raises(ValueError, match="silent over the clean's active frames"):
        noise_gain_for_snr(clean, noise, RATE, "active", 10.0)
    gain = noise_gain_for_snr(clean, noise, RATE, "rms", 10.0)
    assert snr_db(clean, gain * noise, RATE, "rms") == pytest.approx(10.0, abs=1e-6)


def test_loudness_snr_unreachable_under_the_absolute_gate():
    clean = 10 ** (-50 / 20) * white(23, (1, RATE))
    with pytest.raises(ValueError, match="absolute gate"):
        noise_gain_for_snr(clean, white(24, (1, RATE)), RATE, "loudness", 30.0)


def test_unknown_definition_and_shape_mismatch():
    clean = white(25, (1, RATE))
    with pytest.raises(ValueError, match="unknown SNR definition"):
        snr_db(clean, clean, RATE, "segmental")
    with pytest.raises(ValueError, match="shapes differ"):
        noise_gain_for_snr(clean, white(26, (2, RATE)), RATE, "rms", 0.0)


# ---------------------------------------------------------------- bandwidth

def lowpass(audio: np.ndarray, cutoff_hz: float, sample_rate: int = RATE) -> np.ndarray:
    """Steep elliptic low pass: 0.1 dB ripple to `cutoff_hz`, 120 dB stopband."""
    sos = scipy.signal.ellip(12, 0.1, 120, cutoff_hz, fs=sample_rate, output="sos")
    return scipy.signal.sosfilt(sos, audio, axis=-1)


def upsampled_from_16k(seed: int, rms: float) -> np.ndarray:
    """(1, samples) white noise at 16 kHz, resampled to 48 kHz by soxr (content up to ~8 kHz)."""
    return soxr.resample(white(seed, 4 * 16000, rms), 16000, RATE)[np.newaxis]


@pytest.mark.parametrize("name", ["white", "pink stereo"])
def test_bandwidth_of_full_band_noise_is_nyquist(name):
    audio = white(27, (1, 4 * RATE)) if name == "white" else pink(28, 2, 4.0)
    assert bandwidth_hz(audio, RATE) >= 0.95 * RATE / 2


@pytest.mark.parametrize("cutoff_hz", [8000.0, 16000.0])
def test_bandwidth_of_steeply_lowpassed_noise(cutoff_hz):
    assert bandwidth_hz(lowpass(white(29, (1, 4 * RATE)), cutoff_hz), RATE) == pytest.approx(cutoff_hz, rel=0.1)


def test_bandwidth_of_mp3_like_44k_stereo_with_16k_lowpass():
    audio = lowpass(pink(30, 2, 4.0, 44100), 16000.0, 44100)
    assert bandwidth_hz(audio, 44100) == pytest.approx(16000.0, rel=0.1)


def test_bandwidth_of_16k_material_upsampled_to_48k():
    assert bandwidth_hz(upsampled_from_16k(31, 0.1), RATE) == pytest.approx(8000.0, rel=0.1)


def test_bandwidth_ignores_a_dither_floor_past_the_cliff():
    """-50 dBFS content over a -90 dBFS white dither: the floor is only ~45 dB down, yet the cliff at 8 kHz wins."""
    audio = upsampled_from_16k(32, 10 ** (-50 / 20)) + white(33, (1, 4 * RATE), 10 ** (-90 / 20))
    assert bandwidth_hz(audio, RATE) == pytest.approx(8000.0, rel=0.1)


def test_bandwidth_of_speech_like_signal_reaching_20k():
    t = np.arange(2 * RATE) / RATE
    voiced = sum(np.sin(2 * np.pi * 125 * k * t) / k for k in range(1, 161))  # partials up to 20 kHz
    audio = (0.05 * voiced * np.clip(np.sin(2 * np.pi * 4 * t), 0, None))[np.newaxis]
    assert bandwidth_hz(audio, RATE) == pytest.approx(20000.0, rel=0.05)


def test_bandwidth_is_gain_invariant_and_zero_for_silence():
    audio = lowpass(white(34, (1, 2 * RATE)), 12000.0)
    assert bandwidth_hz(1e-4 * audio, RATE) == bandwidth_hz(audio, RATE) == pytest.approx(12000.0, rel=0.1)
    assert bandwidth_hz(np.zeros((1, RATE)), RATE) == 0.0
