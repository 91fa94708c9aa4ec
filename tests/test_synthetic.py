import json
import os

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import find_peaks, welch

from datagen import synthetic as syn
from datagen.synthetic.corpus import stable_int

SR = 48000


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _frame_levels_db(audio: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    mono = audio.mean(axis=0)
    frame = int(frame_s * sample_rate)
    frames = mono[: mono.size // frame * frame].reshape(-1, frame)
    return 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-30)


def _slope_db_per_octave(audio: np.ndarray, sample_rate: int, lo_hz: float, hi_hz: float) -> float:
    freq_hz, psd = welch(audio.mean(axis=0), sample_rate, nperseg=8192)
    band = (freq_hz >= lo_hz) & (freq_hz <= hi_hz)
    return float(np.polyfit(np.log2(freq_hz[band]), 10.0 * np.log10(psd[band]), 1)[0])


def _all_generators(channels: int, sample_rate: int = SR, duration_s: float = 1.5):
    for noise_type in syn.NOISE_TYPES:
        yield noise_type, syn.stationary_noise(_rng(1), noise_type, sample_rate, duration_s, channels)
    for kind in syn.NONSTATIONARY_TYPES:
        yield kind, syn.nonstationary_noise(_rng(2), kind, sample_rate, duration_s, channels)
    yield "speech", syn.speech_like(_rng(3), syn.speaker_params(_rng(4)), sample_rate, duration_s, channels)
    yield "music", syn.music_like(_rng(5), syn.artist_params(_rng(6)), sample_rate, duration_s, channels)


@pytest.mark.parametrize("channels", [1, 2])
def test_every_generator_gives_finite_float32_in_range(channels):
    for name, audio in _all_generators(channels):
        assert audio.shape == (channels, int(1.5 * SR)), name
        assert audio.dtype == np.float32, name
        assert np.all(np.isfinite(audio)), name
        assert np.max(np.abs(audio)) <= 1.0, name
        assert np.max(np.abs(audio)) > 1e-3, name


def test_generators_are_deterministic_and_vary_with_the_generator():
    for draw in (
        lambda rng: syn.stationary_noise(rng, "fan", 16000, 1.0, 2),
        lambda rng: syn.nonstationary_noise(rng, "door_slams", 16000, 1.0),
        lambda rng: syn.speech_like(rng, syn.SpeakerParams(120.0, 5.0, 1.0, 4.5, 0.2), 16000, 1.0),
        lambda rng: syn.music_like(rng, syn.ArtistParams(120.0, 2, "minor", ("pluck", "organ"), True), 16000, 1.0),
    ):
        assert np.array_equal(draw(_rng(7)), draw(_rng(7)))
        assert not np.array_equal(draw(_rng(7)), draw(_rng(8)))
    assert syn.speaker_params(_rng(1)) == syn.speaker_params(_rng(1))
    assert syn.artist_params(_rng(1)) == syn.artist_params(_rng(1))


def test_noise_levels_are_moderate():
    for noise_type in syn.NOISE_TYPES:
        audio = syn.stationary_noise(_rng(9), noise_type, SR, 1.0)
        rms_dbfs = 10.0 * np.log10(np.mean(audio.astype(np.float64) ** 2))
        assert syn.NOISE_RMS_DBFS - syn.NOISE_RMS_SPREAD_DB - 0.1 <= rms_dbfs <= syn.NOISE_RMS_DBFS + syn.NOISE_RMS_SPREAD_DB + 0.1


@pytest.mark.parametrize(("noise_type", "lo", "hi"), [("white", -0.5, 0.5), ("pink", -4.0, -2.0), ("brown", -7.0, -5.0)])
@pytest.mark.parametrize("sample_rate", [16000, 48000])
def test_coloured_noise_slopes(noise_type, lo, hi, sample_rate):
    audio = syn.stationary_noise(_rng(10), noise_type, sample_rate, 3.0)
    assert lo <= _slope_db_per_octave(audio, sample_rate, 100.0, 6000.0) <= hi


def test_hiss_is_tilted_up_and_hum_has_mains_harmonics():
    hiss = syn.stationary_noise(_rng(11), "hiss", SR, 3.0)
    assert _slope_db_per_octave(hiss, SR, 200.0, 8000.0) > 1.0
    for seed in range(4):
        hum = syn.stationary_noise(_rng(12, seed), "hum", SR, 3.0)[0]
        freq_hz, psd = welch(hum, SR, nperseg=SR)  # 1 Hz resolution
        peaks, _ = find_peaks(10.0 * np.log10(psd), prominence=20.0)
        peak_hz = freq_hz[peaks][:6]
        mains_hz = 50.0 if abs(peak_hz[0] - 50.0) < 2.0 else 60.0
        assert abs(peak_hz[0] - mains_hz) < 2.0
        assert np.allclose(peak_hz, mains_hz * np.arange(1, 7), atol=2.0)


def test_stereo_noise_channels_are_partially_correlated():
    for noise_type in ("white", "pink", "hvac"):
        left, right = syn.stationary_noise(_rng(13), noise_type, SR, 1.0, 2)
        assert 0.2 < np.corrcoef(left, right)[0, 1] < 0.95


def test_speech_has_pauses_and_high_frequency_energy():
    for seed in range(3):
        speaker = syn.speaker_params(_rng(14, seed))
        audio = syn.speech_like(_rng(15, seed), speaker, SR, 8.0)
        levels_db = _frame_levels_db(audio, SR)
        pause_fraction = np.mean(levels_db < np.percentile(levels_db, 95) - 40.0)
        assert 0.10 <= pause_fraction <= 0.50
        assert np.isclose(np.max(np.abs(audio)), 10.0 ** (syn.PEAK_DBFS / 20.0), rtol=1e-3)
        freq_hz, psd = welch(audio[0], SR, nperseg=4096)
        total = psd.sum()
        assert psd[(freq_hz >= 8000) & (freq_hz < 16000)].sum() > 10.0 ** (-4.0) * total  # above -40 dB
        assert psd[(freq_hz >= 16000) & (freq_hz < 20000)].sum() > 10.0 ** (-6.0) * total  # above -60 dB


def test_speech_stereo_is_the_same_voice_in_both_channels():
    audio = syn.speech_like(_rng(16), syn.speaker_params(_rng(17)), 16000, 2.0, 2)
    assert np.corrcoef(audio)[0, 1] > 0.999


def test_music_is_polyphonic_and_mostly_active():
    for seed in range(3):
        artist = syn.artist_params(_rng(18, seed))
        audio = syn.music_like(_rng(19, seed), artist, SR, 6.0, 2)
        levels_db = _frame_levels_db(audio, SR)
        assert np.mean(levels_db > np.percentile(levels_db, 95) - 40.0) > 0.9
        # half a second from the middle of a bar: several simultaneous pitches between 60 Hz and 2 kHz
        bar_s = 240.0 / artist.tempo_bpm
        start = int((bar_s + 0.1) * SR)
        segment = audio.mean(axis=0)[start : start + SR // 2] * np.hanning(SR // 2)
        spectrum_db = 20.0 * np.log10(np.abs(np.fft.rfft(segment)) + 1e-12)
        freq_hz = np.fft.rfftfreq(segment.size, 1.0 / SR)
        peaks, _ = find_peaks(spectrum_db, prominence=15.0, height=spectrum_db.max() - 40.0)
        assert np.sum((freq_hz[peaks] > 60.0) & (freq_hz[peaks] < 2000.0)) >= 4


def test_music_stereo_is_panned():
    artist = syn.ArtistParams(100.0, 0, "major", ("keys", "strings"), True)
    left, right = syn.music_like(_rng(20), artist, 16000, 3.0, 2)
    assert not np.allclose(left, right)
    assert np.corrcoef(left, right)[0, 1] > 0.3


def test_unknown_types_are_rejected():
    with pytest.raises(ValueError):
        syn.stationary_noise(_rng(0), "jet_engine", SR, 1.0)
    with pytest.raises(ValueError):
        syn.nonstationary_noise(_rng(0), "white", SR, 1.0)
    with pytest.raises(ValueError):
        syn.materialize("video", "unused", 1, 1.0, SR, 1, 0)


def test_stable_int_is_not_the_salted_hash():
    assert stable_int("speech") == stable_int("speech") != stable_int("music")
    assert stable_int("speech") == 0x7C8043D57A61FB05  # the same in every process and release


def _materialize(out_dir, kind="speech", count=3, seed=1, **kwargs):
    args = dict(count=count, duration_s=0.6, sample_rate=16000, channels=1, seed=seed, n_groups=2)
    return syn.materialize(kind, out_dir, **{**args, **kwargs})


def test_materialize_layout_and_marker(tmp_path):
    speech = _materialize(tmp_path / "speech")
    assert [p.relative_to(tmp_path / "speech").as_posix() for p in speech] == [
        "spk00/spk00_00000.flac", "spk01/spk01_00001.flac", "spk00/spk00_00002.flac"]
    noise = _materialize(tmp_path / "noise", "noise", count=2, noise_types=("pink", "hum"))
    assert sorted(p.relative_to(tmp_path / "noise").as_posix() for p in noise) == [
        "hum/hum_00000.flac", "hum/hum_00001.flac", "pink/pink_00000.flac", "pink/pink_00001.flac"]
    music = _materialize(tmp_path / "music", "music", count=2)
    assert {p.parent.name for p in music} == {"art00", "art01"}
    bad = _materialize(tmp_path / "bad", "nonstationary", count=1)
    assert {p.parent.name for p in bad} == set(syn.NONSTATIONARY_TYPES)
    for path in speech + noise + music + bad:
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("FLAC", "PCM_24", 16000, 1, 9600)
    marker = json.loads((tmp_path / "speech" / syn.COMPLETE_MARKER).read_text())
    assert marker["seed"] == 1 and marker["kind"] == "speech" and marker["count"] == 3
    assert not list(tmp_path.rglob("*.tmp"))


def test_materialize_is_deterministic_and_depends_only_on_seed_kind_group_index(tmp_path):
    first = _materialize(tmp_path / "a")
    again = _materialize(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    more = _materialize(tmp_path / "c", count=4)
    assert [p.read_bytes() for p in more[:3]] == [p.read_bytes() for p in first]
    other_seed = _materialize(tmp_path / "d", seed=2)
    assert first[0].read_bytes() != other_seed[0].read_bytes()
    assert first[0].read_bytes() != first[2].read_bytes()  # same talker, different file


def test_materialize_is_idempotent_and_resumes(tmp_path):
    paths = _materialize(tmp_path)
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert _materialize(tmp_path) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps

    # an interrupted run: marker and one file missing -> only that file is written
    (tmp_path / syn.COMPLETE_MARKER).unlink()
    content = paths[1].read_bytes()
    paths[1].unlink()
    assert _materialize(tmp_path) == paths
    assert [p.stat().st_mtime_ns for p in (paths[0], paths[2])] == [stamps[0], stamps[2]]
    assert paths[1].read_bytes() == content
    assert (tmp_path / syn.COMPLETE_MARKER).is_file()

    # other parameters: stale files are rewritten, the marker is replaced
    reseeded = _materialize(tmp_path, seed=5)
    assert reseeded == paths and paths[1].read_bytes() != content
    assert json.loads((tmp_path / syn.COMPLETE_MARKER).read_text())["seed"] == 5
    assert not [name for name in os.listdir(tmp_path / "spk00") if name.endswith(".tmp")]
