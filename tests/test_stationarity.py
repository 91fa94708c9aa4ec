import numpy as np
import pytest

from datagen import synthetic as syn
from datagen.stationarity import (
    DEFAULT_STATIONARITY_THRESHOLD_DB,
    MIN_DURATION_S,
    stationarity_db,
)

RATES = [16000, 44100, 48000]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_stationary_noises_score_below_threshold(sample_rate, channels):
    for index, noise_type in enumerate(syn.NOISE_TYPES):
        audio = syn.stationary_noise(_rng(sample_rate, channels, index), noise_type, sample_rate, 4.0, channels)
        assert stationarity_db(audio, sample_rate) < DEFAULT_STATIONARITY_THRESHOLD_DB / 2, noise_type


@pytest.mark.parametrize("sample_rate", RATES)
def test_nonstationary_noises_score_above_threshold(sample_rate):
    for index, kind in enumerate(syn.NONSTATIONARY_TYPES):
        for channels in (1, 2):
            audio = syn.nonstationary_noise(_rng(sample_rate, channels, index), kind, sample_rate, 8.0, channels)
            assert stationarity_db(audio, sample_rate) > 2 * DEFAULT_STATIONARITY_THRESHOLD_DB, kind


def test_score_is_gain_invariant():
    for audio in (
        syn.stationary_noise(_rng(1), "fan", 48000, 3.0, 2),
        syn.nonstationary_noise(_rng(2), "babble_modulated", 48000, 3.0, 2),
    ):
        reference = stationarity_db(audio, 48000)
        for gain in (1e-4, 0.05, 20.0):
            assert stationarity_db(audio * gain, 48000) == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize("rate_hz", [0.2, 4.0])
def test_score_reads_the_level_modulation_in_db(rate_hz):
    """A sinusoidal level modulation of +-a dB (any rate up to the syllable rate) scores a / sqrt(2)."""
    audio = syn.stationary_noise(_rng(3), "pink", 44100, 10.0)
    t = np.arange(audio.shape[-1]) / 44100
    for depth_db in (1.0, 3.0):
        modulated = audio * 10.0 ** (depth_db * np.sin(2.0 * np.pi * rate_hz * t) / 20.0)
        assert stationarity_db(modulated, 44100) == pytest.approx(depth_db / np.sqrt(2.0), abs=0.15)


def test_slow_drift_counts():
    audio = syn.stationary_noise(_rng(4), "white", 16000, 20.0)
    drift_db = 10.0 * np.linspace(0.0, 1.0, audio.shape[-1])  # a 10 dB creep: std 10/sqrt(12) = 2.9 dB
    assert stationarity_db(audio * 10.0 ** (drift_db / 20.0), 16000) == pytest.approx(10.0 / np.sqrt(12.0), abs=0.2)


def test_edge_silence_is_trimmed_but_dropouts_count():
    sample_rate = 16000
    audio = syn.stationary_noise(_rng(5), "hvac", sample_rate, 6.0)
    padded = np.pad(audio, ((0, 0), (2 * sample_rate, sample_rate)))
    assert stationarity_db(padded, sample_rate) < DEFAULT_STATIONARITY_THRESHOLD_DB / 2
    dropout = audio.copy()
    dropout[:, 3 * sample_rate : 3 * sample_rate + sample_rate // 4] = 0.0
    assert stationarity_db(dropout, sample_rate) > DEFAULT_STATIONARITY_THRESHOLD_DB


def test_one_dimensional_input_is_mono():
    audio = syn.stationary_noise(_rng(6), "pink", 16000, 2.0)
    assert stationarity_db(audio[0], 16000) == stationarity_db(audio, 16000)


def test_short_or_silent_input_is_rejected():
    sample_rate = 16000
    with pytest.raises(ValueError, match="silent"):
        stationarity_db(np.zeros((2, 5 * sample_rate), dtype=np.float32), sample_rate)
    short = syn.stationary_noise(_rng(7), "white", sample_rate, 0.9 * MIN_DURATION_S)
    with pytest.raises(ValueError, match="need at least"):
        stationarity_db(short, sample_rate)
    with pytest.raises(ValueError, match="need at least"):  # long, but mostly padding
        stationarity_db(np.pad(short, ((0, 0), (sample_rate, sample_rate))), sample_rate)


def _with_tone(noise: np.ndarray, sample_rate: int, freq_hz: np.ndarray, level_db: float) -> np.ndarray:
    """`noise` (1, samples) plus a sinusoid of instantaneous frequency `freq_hz` (samples,), `level_db` re its power."""
    tone = np.sqrt(2.0) * np.sin(2.0 * np.pi * np.cumsum(freq_hz) / sample_rate)
    return noise + np.sqrt(np.mean(noise**2)) * 10.0 ** (level_db / 20.0) * tone


def test_a_dominant_sweeping_tone_is_non_stationary():
    """A flyby's whine over a steady floor: few bands fluctuate, but they hold most of the energy."""
    sample_rate, duration_s = 44100, 8.0
    noise = syn.stationary_noise(_rng(8), "pink", sample_rate, duration_s)
    t = np.arange(noise.shape[-1]) / sample_rate
    sweep_hz = 1000.0 * 3.0 ** (t / duration_s)  # 1 -> 3 kHz
    assert stationarity_db(_with_tone(noise, sample_rate, sweep_hz, 10.0), sample_rate) > 2 * DEFAULT_STATIONARITY_THRESHOLD_DB
    # the same sweep 15 dB under the floor's power is a quiet band with a life of its own: still stationary
    assert stationarity_db(_with_tone(noise, sample_rate, sweep_hz, -15.0), sample_rate) < DEFAULT_STATIONARITY_THRESHOLD_DB / 2


@pytest.mark.parametrize("centre_hz", [1000.0, 1122.5, 1414.2])  # a 1/3-octave band centre, then two band edges
def test_a_dominant_tone_with_slight_pitch_wobble_is_stationary(centre_hz):
    """A motor whine wobbling +-5 % stays stationary wherever it sits relative to the analysis bands."""
    sample_rate = 44100
    noise = syn.stationary_noise(_rng(9), "pink", sample_rate, 8.0)
    t = np.arange(noise.shape[-1]) / sample_rate
    wobble_hz = centre_hz * (1.0 + 0.05 * np.sin(2.0 * np.pi * 0.5 * t))
    assert stationarity_db(_with_tone(noise, sample_rate, wobble_hz, 10.0), sample_rate) < DEFAULT_STATIONARITY_THRESHOLD_DB / 2
