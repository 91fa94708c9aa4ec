"""Each training augmentation alone (training/augment.py): what it changes, what it keeps, what it draws."""
from __future__ import annotations

import numpy as np
import pytest

from training.augment import (AddDriftingTone, AddSecondNoise, BandlimitClean, BandlimitNoise, ColourNoise,
                              FluctuateNoise, Mix, RandomGain, RandomSnr, augmentations, rms)
from training.config import AugmentConfig

RATE = 48000
ALWAYS = AugmentConfig(color_prob=1, fluctuation_prob=1, tone_prob=1, bandlimit_noise_prob=1, bandlimit_clean_prob=1,
                       mix_noise_prob=1)
NEVER = AugmentConfig(color_prob=0, fluctuation_prob=0, tone_prob=0, bandlimit_noise_prob=0, bandlimit_clean_prob=0,
                      mix_noise_prob=0)


def a_mix(seed: int = 0, channels: int = 2) -> Mix:
    rng = np.random.default_rng(seed)
    clean = (0.1 * rng.standard_normal((channels, RATE))).astype(np.float32)
    noise = (0.03 * rng.standard_normal((channels, RATE))).astype(np.float32)
    return Mix(clean, noise, snr_db=10.0, measured_snr_db=10.5, noise_type="fan", level=rms(noise))


def other_noise(rng, avoid):
    assert avoid == "fan"
    return (0.2 * rng.standard_normal((1, RATE))).astype(np.float32), "hum"


NOISE_TRANSFORMS = [ColourNoise(ALWAYS, RATE), FluctuateNoise(ALWAYS, RATE), AddDriftingTone(ALWAYS, RATE),
                    BandlimitNoise(ALWAYS, RATE), AddSecondNoise(ALWAYS, other_noise)]


@pytest.mark.parametrize("transform", NOISE_TRANSFORMS, ids=lambda t: type(t).__name__)
def test_noise_transforms_change_the_noise_keep_its_level_and_leave_the_clean(transform):
    mix = a_mix()
    out = transform(np.random.default_rng(1), mix)
    assert not np.allclose(out.noise, mix.noise)
    assert out.noise.shape == mix.noise.shape
    assert rms(out.noise) == pytest.approx(mix.level, rel=1e-4)
    assert out.clean is mix.clean and out.snr_db == mix.snr_db


def test_a_second_noise_names_both_types_and_is_spread_over_the_channels():
    out = AddSecondNoise(ALWAYS, other_noise)(np.random.default_rng(2), a_mix())
    assert out.noise_type == "fan+hum"
    assert AddSecondNoise(ALWAYS, lambda rng, avoid: None)(np.random.default_rng(2), a_mix()).noise_type == "fan"


def test_bandlimit_clean_removes_what_lies_above_the_cutoff():
    mix = a_mix()
    out = BandlimitClean(AugmentConfig(bandlimit_clean_prob=1, bandlimit_min_hz=4000, bandlimit_max_hz=4000), RATE)(
        np.random.default_rng(0), mix)
    spectrum = np.abs(np.fft.rfft(out.clean[0])) ** 2
    freqs_hz = np.fft.rfftfreq(RATE, 1 / RATE)
    assert spectrum[freqs_hz > 4500].sum() < 1e-6 * spectrum[freqs_hz < 4000].sum()
    assert out.noise is mix.noise


def test_random_snr_sets_the_snr_relative_to_the_measured_one():
    mix = a_mix()
    out = RandomSnr(AugmentConfig(snr_min_db=3.0, snr_max_db=3.0))(np.random.default_rng(0), mix)
    assert out.snr_db == 3.0
    assert 20 * np.log10(rms(out.noise) / rms(mix.noise)) == pytest.approx(mix.measured_snr_db - 3.0, abs=1e-4)  # 7.5 dB louder


def test_random_gain_moves_clean_and_noise_together():
    mix = a_mix()
    out = RandomGain(AugmentConfig(gain_min_db=-6.0, gain_max_db=-6.0))(np.random.default_rng(0), mix)
    assert np.allclose(out.clean, mix.clean * 10 ** (-6 / 20)) and np.allclose(out.noise, mix.noise * 10 ** (-6 / 20))


def test_a_transform_that_does_not_apply_draws_one_number_and_changes_nothing():
    for transform in augmentations(NEVER, RATE, other_noise)[:6]:
        rng, reference = np.random.default_rng(5), np.random.default_rng(5)
        mix = a_mix()
        assert transform(rng, mix) is mix
        reference.random()
        assert rng.random() == reference.random(), type(transform).__name__


def test_the_pipeline_is_a_pure_function_of_the_generator():
    first, second = (augmentations(ALWAYS, RATE, other_noise) for _ in range(2))
    a, b = a_mix(), a_mix()
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for ta, tb in zip(first, second):
        a, b = ta(rng_a, a), tb(rng_b, b)
    assert np.array_equal(a.noise, b.noise) and np.array_equal(a.clean, b.clean) and a.noise_type == b.noise_type
