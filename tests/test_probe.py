"""datagen.probe: streaming measures equal the whole-file ones, memory stays flat, bad files become error rows."""
from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datagen import analysis, kernels, spectrum_bandwidth
from datagen.probe import PROBE_BLOCK_S, measure_audio, probe, read_audio
from datagen.sources import SourceFile
from datagen.stationarity import StationarityAccumulator, stationarity_db

from conftest import colored_noise, musiclike, speechlike

MEASURED = ("loudness_lufs", "peak_dbfs", "active_ratio", "active_mask", "activity_hop_s", "bandwidth_hz", "stationarity_db")


def source(path: Path, source_type: str = "noise") -> SourceFile:
    return SourceFile(str(path), path.name, "test", source_type, "white" if source_type == "noise" else None, path.stem, False,
                      path.stat().st_size if path.exists() else 0, 0)


def padded(audio: np.ndarray, lead: int, trail: int) -> np.ndarray:
    """(channels, samples) with `lead` and `trail` samples of digital silence around it."""
    return np.pad(audio, ((0, 0), (lead, trail)))


def generated(name: str) -> tuple[np.ndarray, int, str, str, str]:
    """A test recording -> ((channels, samples) float32, sample_rate, file suffix, subtype, source type)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "speech_48k_mono_padded":  # interior pauses and edge padding: stationarity trims and frames across gaps
        return padded(speechlike(rng, 48000, 7.3)[None], 12345, 29281), 48000, "flac", "PCM_24", "noise"
    if name == "music_44k_stereo":
        return musiclike(rng, 44100, 9.01, 2), 44100, "wav", "FLOAT", "music"
    if name == "noise_11k_3ch":  # 100 ms step = 1102.5 samples: step edges fall on half samples
        return np.stack([colored_noise(rng, 11025, 5.37, slope) for slope in (0.0, -3.0, -6.0)]), 11025, "wav", "PCM_16", "noise"
    if name == "noise_22k_stereo_short":  # shorter than one probe block
        return np.stack([colored_noise(rng, 22050, 1.3, -3.0) for _ in range(2)]), 22050, "flac", "PCM_24", "noise"
    if name == "speech_8k_tiny":  # shorter than one bandwidth frame (4096 samples)
        return speechlike(rng, 8000, 0.45)[None], 8000, "wav", "PCM_16", "speech"
    raise KeyError(name)


def write(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> Path:
    sf.write(path, audio.T, sample_rate, subtype=subtype)
    return path


@pytest.mark.parametrize("block_s", [0.0137, 0.5, PROBE_BLOCK_S, 1000.0])
@pytest.mark.parametrize("name", ["speech_48k_mono_padded", "music_44k_stereo", "noise_11k_3ch", "noise_22k_stereo_short", "speech_8k_tiny"])
def test_streaming_probe_equals_the_whole_file_measures(tmp_path, name, block_s):
    audio, sample_rate, suffix, subtype, source_type = generated(name)
    path = write(tmp_path / f"{name}.{suffix}", audio, sample_rate, subtype)
    row = probe(source(path, source_type), min_duration_s=0.1, block_s=block_s)
    whole, whole_rate = read_audio(str(path))
    expected = measure_audio(whole, whole_rate, source_type)
    assert row.get("error") is None
    assert (row["sample_rate"], row["channels"], row["frames"]) == (whole_rate, whole.shape[0], whole.shape[1])
    assert {key: row[key] for key in MEASURED} == expected  # bit for bit, the mask bytes included
    assert (row["stationarity_db"] is None) == (source_type != "noise")


def _cuts(rng: np.random.Generator, samples: int) -> list[int]:
    """Irregular block boundaries: empty and one-sample blocks, and blocks of many frames."""
    lengths = rng.choice([0, 1, 7, 479, 4095, 4800, 37519], size=samples // 1000 + 8)
    return sorted({0, samples, *np.minimum(np.cumsum(lengths), samples).tolist()})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulators_do_not_depend_on_where_the_stream_is_cut(dtype):
    rng = np.random.default_rng(11)
    sample_rate = 44100
    noise = np.stack([colored_noise(rng, sample_rate, 4.1, -3.0) for _ in range(2)])
    gap = np.zeros((2, 30001), np.float32)  # digital silence inside: stationarity frames straddle it
    audio = padded(np.concatenate([noise, gap, noise[:, ::-1] * 0.3], axis=1), 777, 5000).astype(dtype)
    meters = [analysis.ActivityAccumulator(sample_rate), analysis.LoudnessAccumulator(sample_rate),
              spectrum_bandwidth.LongTermSpectrumAccumulator(), StationarityAccumulator(sample_rate), analysis.LevelAccumulator()]
    cuts = _cuts(rng, audio.shape[1])
    for start, stop in zip(cuts[:-1], cuts[1:]):
        for meter in meters:
            meter.update(audio[:, start:stop])
    activity, loudness, spectrum, stationarity, level = meters
    assert np.array_equal(activity.mask(), analysis.activity_mask(audio, sample_rate))
    assert np.array_equal(loudness.block_powers(), analysis.loudness_block_powers(audio, sample_rate))
    assert spectrum_bandwidth.bandwidth_from_spectrum(*spectrum.spectrum(), sample_rate) == spectrum_bandwidth.bandwidth_hz(audio, sample_rate)
    assert stationarity.result() == stationarity_db(audio, sample_rate)
    assert analysis.amplitude_dbfs(level.peak()) == analysis.peak_dbfs(audio)


def test_measure_errors_are_those_of_the_whole_file(tmp_path):
    rng = np.random.default_rng(4)
    short = write(tmp_path / "short.wav", speechlike(rng, 16000, 0.3)[None], 16000, "PCM_16")
    brief = write(tmp_path / "brief.flac", padded(colored_noise(rng, 16000, 0.8, 0.0)[None], 8000, 8000), 16000, "PCM_24")
    for path in (short, brief):
        row = probe(source(path), min_duration_s=0.0, block_s=0.05)
        with pytest.raises(ValueError) as whole_error:
            measure_audio(*read_audio(str(path)), "noise")
        assert row["error"] == f"cannot be measured: {whole_error.value}"
    assert "400 ms gating block" in probe(source(short), 0.0)["error"]
    assert "0.80 s of non-silent audio" in probe(source(brief), 0.0)["error"]


def _write_long(path: Path, seconds: int, sample_rate: int = 48000) -> Path:
    """`seconds` of stereo noise, written 10 s at a time."""
    rng = np.random.default_rng(seconds)
    with sf.SoundFile(path, "w", sample_rate, 2, subtype="PCM_16") as sound:
        for _ in range(seconds // 10):
            sound.write((0.05 * rng.standard_normal((10 * sample_rate, 2))).astype(np.float32))
    return path


def _traced_peak(function, *args) -> int:
    """Peak bytes allocated (as tracemalloc sees numpy's buffers) while `function(*args)` runs."""
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_probe_memory_does_not_grow_with_the_file_length(tmp_path):
    kernels.warm_up()
    short, long = _write_long(tmp_path / "short.wav", 10), _write_long(tmp_path / "long.wav", 120)
    probe(source(short), 1.0, 0.5)  # first call: caches and lazily created state
    short_peak = _traced_peak(probe, source(short), 1.0, 0.5)
    long_peak = _traced_peak(probe, source(long), 1.0, 0.5)
    audio_growth = 110 * 48000 * 2 * 4  # the extra float32 audio of the long file
    assert long_peak - short_peak < 0.1 * audio_growth, (short_peak, long_peak)
    assert long_peak < 0.5 * (audio_growth + 10 * 48000 * 2 * 4)
    assert _traced_peak(read_audio, str(long)) > audio_growth  # the whole-file read holds it all: the test can tell


def test_dc_offset_without_signal_is_rejected(tmp_path):
    rate, n = 48000, 3 * 48000
    rng = np.random.default_rng(5)
    offsets = np.array([[0.1], [-0.05]], np.float32)
    cases = {
        "dc.flac": (np.repeat(offsets, n, axis=1), "PCM_24"),
        "dc_and_silence.wav": (offsets + 1e-6 * rng.standard_normal((2, n)).astype(np.float32), "FLOAT"),  # -120 dBFS under the offset
        "dc_and_zero_padding.flac": (padded(np.repeat(offsets, n, axis=1), rate, rate), "PCM_24"),
    }
    for name, (audio, subtype) in cases.items():
        row = probe(source(write(tmp_path / name, audio, rate, subtype), "speech"), 1.0, block_s=0.7)
        assert row["error"].startswith("silent: only a DC offset (per-channel mean up to -20.0 dBFS)"), (name, row["error"])
        assert "below -100 dBFS" in row["error"]
    speech = speechlike(rng, rate, 3.0)[None] + np.float32(0.1)  # an offset under a real signal is fine
    row = probe(source(write(tmp_path / "speech_dc.wav", speech, rate, "FLOAT"), "speech"), 1.0)
    assert row.get("error") is None
    assert row["loudness_lufs"] == measure_audio(speech, rate, "speech")["loudness_lufs"]


def test_truncated_or_corrupt_files_become_error_rows(tmp_path):
    rng = np.random.default_rng(9)
    audio = np.stack([colored_noise(rng, 48000, 6.0, 0.0) for _ in range(2)])
    flac = write(tmp_path / "full.flac", audio, 48000, "PCM_24").read_bytes()
    (tmp_path / "truncated.flac").write_bytes(flac[: len(flac) * 6 // 10])
    corrupt = bytearray(flac)
    corrupt[len(flac) // 2 : len(flac) // 2 + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (tmp_path / "corrupt.flac").write_bytes(bytes(corrupt))
    wav = write(tmp_path / "full.wav", audio, 48000, "PCM_16").read_bytes()
    (tmp_path / "header_only.wav").write_bytes(wav[:30])
    for name in ("truncated.flac", "corrupt.flac"):
        row = probe(source(tmp_path / name), 1.0, block_s=0.25)
        assert row["error"].startswith("unreadable: LibsndfileError: ") and " frames)" in row["error"], row["error"]
        assert row.get("loudness_lufs") is None
    for name in ("header_only.wav", "missing.wav"):
        assert probe(source(tmp_path / name), 1.0)["error"].startswith("unreadable: ")
    # libsndfile reads a WAV cut inside its data as the frames present: usable, as the renderer reads the same frames
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav[: len(wav) // 2])
    row = probe(source(cut), 1.0)
    assert row.get("error") is None and 0 < row["frames"] < audio.shape[1]
    with sf.SoundFile(cut) as sound:
        sound.seek(row["frames"] - 100)
        assert sound.frames == row["frames"] and len(sound.read(200)) == 100


def test_fewer_frames_than_the_header_declares_records_what_decodes(tmp_path, monkeypatch):
    """An MP3 header's frame count is an estimate: the row holds the decoded frames; the renderer pads the rest."""
    path = write(tmp_path / "n.flac", colored_noise(np.random.default_rng(2), 16000, 3.0, 0.0)[None], 16000, "PCM_24")
    import datagen.probe as probe_module

    full = probe_module.read_blocks
    monkeypatch.setattr(probe_module, "read_blocks", lambda sound, frames: (b for i, b in enumerate(full(sound, frames)) if i < 2))
    row = probe(source(path), 1.0, block_s=0.5)
    assert row.get("error") is None and row["frames"] == 16000 and row["duration_s"] == 1.0
    from datagen.render import read_frames

    audio = read_frames(str(path), 47000, 49000)
    assert audio.shape == (1, 2000) and not audio[:, 1000:].any() and audio[:, :1000].any()


def test_any_channel_count_is_measured(tmp_path):
    """A 6-channel (5.1) recording is probed like any other; channels past the fifth weigh 1.0 in the loudness."""
    rng = np.random.default_rng(3)
    six = write(tmp_path / "six.wav", np.stack([colored_noise(rng, 16000, 2.0, 0.0) for _ in range(6)]), 16000, "PCM_16")
    row = probe(source(six), 0.0)
    assert row.get("error") is None and row["channels"] == 6 and np.isfinite(row["loudness_lufs"])
    assert row == {**probe(source(six), 0.0, block_s=0.05)}
