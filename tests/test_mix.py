"""Mixing: SNR under every definition and loudness hit their targets on the written (quantized) members."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from datagen.analysis import integrated_loudness_lufs, snr_db
from datagen.mix import MixError, crossfade_loop, mix
from datagen.render import encode

from conftest import colored_noise, musiclike, speechlike

RATE = 48000


def clean_and_noise(channels: int, kind: str = "speech"):
    rng = np.random.default_rng(3)
    if kind == "speech":
        clean = np.stack([speechlike(rng, RATE, 3.0)] * channels)
    else:
        clean = musiclike(rng, RATE, 3.0, channels)
    noise = np.stack([colored_noise(rng, RATE, 3.0, -3.0) for _ in range(channels)])
    return clean.astype(np.float64), noise.astype(np.float64)


@pytest.mark.parametrize("definition", ["active", "rms", "loudness"])
@pytest.mark.parametrize("audio_format", ["flac16", "flac24", "wav_float"])
@pytest.mark.parametrize("snr_target", [-5.0, 0.0, 12.5, 30.0])
def test_measured_snr_and_loudness_hit_targets(definition, audio_format, snr_target):
    clean, noise = clean_and_noise(1)
    result = mix(clean, noise, RATE, snr_target, -27.0, definition, -1.0, audio_format)
    measured = snr_db(result.clean, result.noise, RATE, definition)
    assert abs(measured - snr_target) <= 0.1
    assert measured == pytest.approx(result.snr_measured_db, abs=1e-9)
    # the recorded loudness is a measurement of the written clean, and the target where no ceiling gain was needed
    assert result.clean_loudness_lufs == pytest.approx(integrated_loudness_lufs(result.clean, RATE), abs=0.001)
    assert result.clean_loudness_lufs == pytest.approx(-27.0 + result.ceiling_gain_db, abs=0.001)


@pytest.mark.parametrize("audio_format", ["flac16", "flac24", "wav_float"])
def test_no_member_exceeds_the_ceiling_and_decoded_bytes_match(audio_format):
    clean, noise = clean_and_noise(2, "music")
    # a loud target and a low SNR force the ceiling stage
    result = mix(clean, noise, RATE, -5.0, -8.0, "active", -1.0, audio_format)
    assert result.ceiling_gain_db < 0.0
    ceiling = 10 ** (-1.0 / 20)
    for name in ("noisy", "clean", "noise"):
        member = getattr(result, name)
        assert np.max(np.abs(member)) <= ceiling
        decoded, rate = sf.read(io.BytesIO(encode(member, RATE, audio_format)), dtype="float32", always_2d=True)
        assert rate == RATE and decoded.shape == member.T.shape
        np.testing.assert_array_equal(decoded.T, member)
    assert abs(snr_db(result.clean, result.noise, RATE, "active") + 5.0) <= 0.1


def test_noisy_is_exact_sum_of_written_clean_and_noise():
    clean, noise = clean_and_noise(1)
    result = mix(clean, noise, RATE, 3.0, -23.0, "active", -1.0, "flac24")
    np.testing.assert_array_equal(result.noisy.astype(np.float64), result.clean.astype(np.float64) + result.noise.astype(np.float64))


def test_active_definition_ignores_pauses():
    clean, noise = clean_and_noise(1)
    active = mix(clean, noise, RATE, 10.0, -25.0, "active", -1.0, "wav_float")
    rms = mix(clean, noise, RATE, 10.0, -25.0, "rms", -1.0, "wav_float")
    # speech with pauses: the whole-segment clean power is lower than its active power, so for the
    # same target the rms definition puts in less noise
    assert rms.noise_gain_db < active.noise_gain_db - 0.5


def test_dc_offsets_are_removed_before_mixing():
    """Recordings with DC offsets mix exactly as their DC-free versions: the written members have no offset,
    and the loudness and SNR are those of the audio, not of the offset. A clean that is only an offset is silent."""
    clean, noise = clean_and_noise(2, "music")
    offset = np.array([[0.05], [-0.2]])
    shifted = mix(clean + offset, noise - 2 * offset, RATE, 5.0, -23.0, "active", -1.0, "flac24")
    reference = mix(clean - clean.mean(-1, keepdims=True), noise - noise.mean(-1, keepdims=True), RATE, 5.0, -23.0,
                    "active", -1.0, "flac24")
    for name in ("clean", "noise", "noisy"):
        np.testing.assert_array_equal(shifted.counts[name], reference.counts[name])
        assert np.all(np.abs(getattr(shifted, name).mean(axis=-1)) < 1e-4)
    assert abs(snr_db(shifted.clean, shifted.noise, RATE, "active") - 5.0) <= 0.1
    with pytest.raises(MixError, match="silent"):
        mix(np.full_like(noise, 0.3), noise, RATE, 10.0, -25.0, "active", -1.0, "flac24")


def test_silent_clean_is_refused():
    _, noise = clean_and_noise(1)
    with pytest.raises(MixError, match="silent"):
        mix(np.zeros_like(noise), noise, RATE, 10.0, -25.0, "active", -1.0, "flac24")


def test_quiet_noise_at_16_bit_is_refused_not_mismeasured():
    clean, noise = clean_and_noise(1)
    with pytest.raises(MixError, match="higher-resolution format"):
        mix(clean, noise, RATE, 95.0, -35.0, "rms", -1.0, "flac16")


def test_crossfade_loop_is_continuous_and_counts_wraps():
    rng = np.random.default_rng(0)
    recording = colored_noise(rng, RATE, 1.0, 0.0)[None].astype(np.float64)
    looped, wraps = crossfade_loop(recording, 30000, int(2.5 * RATE), 4800)
    assert looped.shape == (1, int(2.5 * RATE)) and wraps >= 2
    # level stays that of the recording (equal-power crossfade of uncorrelated noise)
    frame_rms = np.sqrt(np.mean(looped[0, : (looped.shape[1] // 4800) * 4800].reshape(-1, 4800) ** 2, axis=1))
    assert np.all(np.abs(20 * np.log10(frame_rms / np.std(recording))) < 1.5)
    same, none = crossfade_loop(recording, 1000, 20000, 4800)
    assert none == 0 and np.array_equal(same, recording[:, 1000:21000])
    assert integrated_loudness_lufs(looped, RATE) == pytest.approx(integrated_loudness_lufs(recording, RATE), abs=0.5)


def test_fused_quantization_rounds_half_to_even_and_clips_like_numpy():
    from datagen import kernels
    from datagen.mix import quantize

    steps = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, 3.49, 2**23 + 5.0, -(2**23) - 5.0, 0.0, 7.0]])
    clean = steps / 2**23
    noise = -steps[:, ::-1] / 2**23
    noisy_q, clean_q, noise_q = (np.empty(clean.shape, np.int32) for _ in range(3))
    clean_energy, noise_energy = kernels.scale_pair(clean, noise, 1.0, 1.0, float(2**23), 4, noisy_q, clean_q, noise_q)
    np.testing.assert_array_equal(clean_q, quantize(clean, "flac24"))
    np.testing.assert_array_equal(noise_q, quantize(noise, "flac24"))
    np.testing.assert_array_equal(noisy_q, clean_q + noise_q)
    assert clean_q[0, :6].tolist() == [0, 2, 2, 0, -2, 3] and clean_q[0, 6] == 2**23 - 1 and clean_q[0, 7] == -(2**23)
    # frame energies (frames of 4 samples, the last partial) of the decoded values
    decoded = clean_q[0].astype(np.float64) / 2**23
    expected = [np.sum(decoded[i:i + 4] ** 2) for i in range(0, 10, 4)]
    np.testing.assert_allclose(clean_energy, expected, rtol=1e-15)
