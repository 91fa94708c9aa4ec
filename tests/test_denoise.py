"""Tests of `training denoise` (training/denoise.py) and the streaming gate it uses."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from manifests.bands import erb_layout
from training.controls import NOISE_SHAPE_KEY, make_controls
from training.gate import spectral_gate
from training.streaming import StreamingGate
from training.checkpoint import build_model, load_checkpoint, save_checkpoint
from training.controller import Controller
from training.cli import main
from training.audio_files import plan_jobs
from training.denoise import DenoiseSetupError, denoise_files
from training.reducer import measure_noise
from training.masknet import MaskNet

LAYOUT = erb_layout(48000)


def noisy_music(rate: int, seconds: float, channels: int, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Gated chords plus white noise -> (frames, channels) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    gate = (np.sin(2 * np.pi * 0.7 * t) > 0).astype(float)
    out = np.stack([level * chord * gate * (1 - 0.2 * c) + 0.02 * rng.standard_normal(t.size) for c in range(channels)], 1)
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    controller = Controller(LAYOUT)
    ctl = save_checkpoint(root / "best.pt", kind="controller", model_config={**controller.config, "link_channels": True},
                          layout=LAYOUT, state_dict=controller.state_dict(), stage="stage2", epoch=0, step=0, metrics={})
    masknet = MaskNet(LAYOUT, hidden=32, gru_layers=1)
    mask = save_checkpoint(root / "masknet.pt", kind="masknet", model_config=masknet.config, layout=LAYOUT,
                           state_dict=masknet.state_dict(), stage="masknet", epoch=0, step=0, metrics={})
    return {"controller": str(ctl), "masknet": str(mask)}


def read(path):
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data, rate


def assert_same_format(src, dst):
    a, b = sf.info(str(src)), sf.info(str(dst))
    assert (b.samplerate, b.channels, b.frames, b.format, b.subtype) == (a.samplerate, a.channels, a.frames, a.format,
                                                                        a.subtype)


@pytest.mark.parametrize("rate,channels,subtype,ext,seconds", [
    (48000, 1, "PCM_16", "wav", 2.0),
    (44100, 2, "PCM_24", "flac", 2.0),
    (22050, 1, "FLOAT", "wav", 1.5),
    (48000, 3, "PCM_16", "wav", 0.5),
    (44100, 2, "VORBIS", "ogg", 1.0),
])
def test_formats_rates_channels_are_kept(tmp_path, checkpoints, rate, channels, subtype, ext, seconds):
    src = tmp_path / f"in.{ext}"
    sf.write(str(src), noisy_music(rate, seconds, channels), rate, subtype=subtype)
    out = tmp_path / "out"
    assert denoise_files([str(src)], str(out), checkpoints["controller"], progress=False, quiet=True) == 0
    assert_same_format(src, out / src.name)
    x, _ = read(src)
    y, _ = read(out / src.name)
    assert np.isfinite(y).all()
    if subtype != "VORBIS":  # the gate removes noise: less energy where the chord is off
        assert np.mean(y**2) < np.mean(x**2)


def test_single_file_to_named_output_matches_one_shot(tmp_path, checkpoints, capsys):
    src = tmp_path / "a.wav"
    audio = noisy_music(48000, 6.0, 2, seed=3)
    sf.write(str(src), audio, 48000, subtype="FLOAT")
    dst = tmp_path / "sub" / "clean.wav"
    # small blocks: many streaming steps
    assert denoise_files([str(src)], str(dst), checkpoints["controller"], progress=False, block_s=0.7) == 0
    line = capsys.readouterr().out
    for word in ("reduction", "threshold", "attack", "release", "noise profile", "dB", "ms"):
        assert word in line
    y, _ = read(dst)
    model = build_model(load_checkpoint(checkpoints["controller"]))
    ref = model.denoise(torch.from_numpy(audio.T.copy())[None])[0].numpy().T
    assert np.abs(y - ref).max() < 1e-4


def test_overrides_change_the_output(tmp_path, checkpoints, capsys):
    src = tmp_path / "in.wav"
    audio = noisy_music(48000, 2.0, 1, seed=5)
    sf.write(str(src), audio, 48000, subtype="FLOAT")
    plain = tmp_path / "plain.wav"
    assert denoise_files([str(src)], str(plain), checkpoints["controller"], progress=False) == 0
    open_gate = tmp_path / "open.wav"
    assert denoise_files([str(src)], str(open_gate), checkpoints["controller"], overrides={"reduction_db": 0.0},
                         progress=False) == 0
    assert "reduction 0.0 dB (set)" in capsys.readouterr().out
    y, _ = read(open_gate)
    assert np.abs(y - audio).max() < 1e-4  # 0 dB reduction: the identity
    deep = tmp_path / "deep.wav"
    assert denoise_files([str(src)], str(deep), checkpoints["controller"],
                         overrides={"reduction_db": 35.0, "threshold_db": 10.0, "attack_ms": 2.0}, progress=False) == 0
    p, _ = read(plain)
    d, _ = read(deep)
    t = np.arange(len(audio)) / 48000
    off = np.sin(2 * np.pi * 0.7 * t) < -0.3  # the chord is off: noise only
    assert np.mean(d[off] ** 2) < 0.3 * np.mean(p[off] ** 2)  # deeper reduction: less residual noise
    # a noise profile from a noise-only recording, and from a JSON list
    noise = tmp_path / "noise.wav"
    sf.write(str(noise), (0.02 * np.random.default_rng(1).standard_normal(48000)).astype(np.float32), 48000)
    assert denoise_files([str(src)], str(tmp_path / "np.wav"), checkpoints["controller"], noise_profile=str(noise),
                         progress=False) == 0
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps([-20.0] * LAYOUT.n_bands))
    assert denoise_files([str(src)], str(tmp_path / "js.wav"), checkpoints["controller"], noise_profile=str(profile),
                         progress=False) == 0
    assert "noise profile (set): mean -20.0 dB" in capsys.readouterr().out
    # the per-band tonal detail, set for every band: the threshold follows the blind per-bin floor inside
    # bands, so a steady whine is gated; on white noise alone the floor's in-band shape is within the deadband
    assert denoise_files([str(src)], str(tmp_path / "tonal.wav"), checkpoints["controller"],
                         overrides={"tonal_detail": 1.0}, progress=False) == 0
    assert "tonal detail (set): mean 1.00, max 1.00" in capsys.readouterr().out
    assert np.abs(read(tmp_path / "tonal.wav")[0] - p).max() < 0.02
    t = np.arange(len(audio)) / 48000
    whine = np.exp(2j * np.pi * np.outer(t, (3460.0, 5190.0)))  # (frames, 2) analysis tones
    whiny = tmp_path / "whiny.wav"
    sf.write(str(whiny), audio + 0.02 * np.sin(2 * np.pi * np.outer(t, (3460.0, 5190.0))).sum(1, keepdims=True).astype(np.float32),
             48000, subtype="FLOAT")
    residual = {}
    for detail in (0.0, 1.0):
        assert denoise_files([str(whiny)], str(tmp_path / f"whiny{detail:g}.wav"), checkpoints["controller"],
                             overrides={"tonal_detail": detail, "freq_smooth_hz": 0.0}, progress=False) == 0
        residual[detail] = np.abs((read(tmp_path / f"whiny{detail:g}.wav")[0][:, :1] * whine).sum(0))
    assert np.all(residual[1.0] < 0.9 * residual[0.0])  # less of the whine left
    # a noise clip of the whine over hiss: its measured in-band shape, followed fully (tonal detail 1) unless
    # --tonal-detail says otherwise, gates the whine better than its band profile alone
    clip = tmp_path / "whine_clip.wav"
    sf.write(str(clip), (0.02 * np.random.default_rng(4).standard_normal(len(t))
                         + 0.02 * np.sin(2 * np.pi * np.outer(t, (3460.0, 5190.0))).sum(1)).astype(np.float32), 48000)
    for name, overrides in (("clip", {}), ("clip_flat", {"tonal_detail": 0.0})):
        assert denoise_files([str(whiny)], str(tmp_path / f"{name}.wav"), checkpoints["controller"], noise_profile=str(clip),
                             overrides={"freq_smooth_hz": 0.0, **overrides}, progress=False) == 0
        residual[name] = np.abs((read(tmp_path / f"{name}.wav")[0][:, :1] * whine).sum(0))
    assert "tonal detail (set): mean 1.00, max 1.00" in capsys.readouterr().out.splitlines()[-2]
    assert np.all(residual["clip"] < 0.5 * residual["clip_flat"])
    # invalid overrides: exit status 2, nothing written
    for bad in ({"knee_db": 0.0}, {"tonal_detail": -0.5}):
        with pytest.raises(DenoiseSetupError, match="outside the trained range"):
            denoise_files([str(src)], str(tmp_path / "bad.wav"), checkpoints["controller"], overrides=bad, progress=False)
        assert not (tmp_path / "bad.wav").exists()
    # a noise clip too short to measure, or an empty one: exit status 2 naming the file and the minimum
    for seconds in (0.1, 0.0):
        short = tmp_path / f"short{seconds:g}.wav"
        sf.write(str(short), np.zeros((int(seconds * 48000), 1), np.float32), 48000)
        with pytest.raises(DenoiseSetupError) as refused:
            denoise_files([str(src)], str(tmp_path / "bad.wav"), checkpoints["controller"], noise_profile=str(short),
                          progress=False)
        assert str(short) in str(refused.value) and "too short" in str(refused.value) and "0.25 s" in str(refused.value)
        assert not (tmp_path / "bad.wav").exists()


def test_noise_region_is_measured_in_each_file(tmp_path, checkpoints, capsys):
    """--noise-region START:END measures the profile and in-band shape from each input's own noise-only
    stretch: the same output as --noise-profile given that stretch as a file; a louder noise reads a higher
    profile; a region outside a file fails that file only; malformed regions are refused up front."""
    rate = 44100
    files = []
    for name, noise_level in (("quiet", 0.01), ("loud", 0.05)):
        audio = noisy_music(rate, 3.0, 2, seed=11)
        audio[: rate] = 0.0  # a noise-only second before the music
        audio += noise_level * np.random.default_rng(12).standard_normal(audio.shape).astype(np.float32)
        path = tmp_path / "in" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), audio, rate, subtype="FLOAT")
        files.append((path, audio))
    assert denoise_files([str(tmp_path / "in")], str(tmp_path / "region"), checkpoints["controller"],
                         noise_region="0:1", progress=False) == 0
    lines = capsys.readouterr().out.splitlines()
    means = {name: float(next(ln for ln in lines if f"{name}.wav ->" in ln).split("noise profile (set): mean ")[1].split()[0])
             for name in ("quiet", "loud")}
    assert 12.0 < means["loud"] - means["quiet"] < 16.0  # 14 dB more noise
    path, audio = files[0]
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), audio[:rate], rate, subtype="FLOAT")
    assert denoise_files([str(path)], str(tmp_path / "from_clip.wav"), checkpoints["controller"], noise_profile=str(clip),
                         progress=False) == 0
    assert np.abs(read(tmp_path / "region" / "quiet.wav")[0] - read(tmp_path / "from_clip.wav")[0]).max() < 1e-6
    # a region past the end of one file: that file fails (named, nothing written), the others are written
    short = tmp_path / "in2" / "short.wav"
    short.parent.mkdir()
    sf.write(str(short), audio[: rate // 2], rate, subtype="FLOAT")
    sf.write(str(tmp_path / "in2" / "long.wav"), audio, rate, subtype="FLOAT")
    assert denoise_files([str(tmp_path / "in2")], str(tmp_path / "out2"), checkpoints["controller"], noise_region="1:2",
                         progress=False) == 1
    err = capsys.readouterr().err
    assert str(short) in err and "--noise-region 1:2" in err
    assert (tmp_path / "out2" / "long.wav").exists() and not (tmp_path / "out2" / "short.wav").exists()
    for bad, profile in (("1.5", None), ("2:1", None), ("a:b", None), ("0:1", str(clip))):
        with pytest.raises(DenoiseSetupError, match="--noise-region"):
            denoise_files([str(path)], str(tmp_path / "bad.wav"), checkpoints["controller"], noise_region=bad,
                          noise_profile=profile, progress=False)
        assert not (tmp_path / "bad.wav").exists()


def test_long_file_streams(tmp_path, checkpoints):
    src = tmp_path / "long.flac"
    rate, seconds = 44100, 70.0
    sf.write(str(src), noisy_music(rate, seconds, 2, seed=7), rate, subtype="PCM_16")
    out = tmp_path / "out"
    assert denoise_files([str(src)], str(out), checkpoints["controller"], progress=False, quiet=True) == 0
    assert_same_format(src, out / "long.flac")
    y, _ = read(out / "long.flac")
    assert np.isfinite(y).all() and np.abs(y).max() > 0.05


def test_folder_in_one_call_with_a_corrupt_file(tmp_path, checkpoints, capsys):
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    names = ["a.wav", "b.flac", "nested/c.wav"]
    for i, name in enumerate(names):
        sf.write(str(folder / name), noisy_music(48000 if i != 1 else 32000, 1.0, 1 + i % 2, seed=i),
                 48000 if i != 1 else 32000)
    (folder / "nested" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" * 3)
    (folder / "notes.txt").write_text("not audio")
    out = tmp_path / "out"
    status = denoise_files([str(folder)], str(out), checkpoints["controller"], progress=True)
    captured = capsys.readouterr()
    assert status == 1
    assert "broken.wav" in captured.err and "1 of 4 file(s) failed" in captured.err
    for name in names:
        assert_same_format(folder / name, out / name)
    assert not (out / "nested" / "broken.wav").exists()
    assert not list(out.rglob(".*tmp*"))


def test_masknet_checkpoint_and_cli(tmp_path, checkpoints, capsys):
    src = tmp_path / "x.wav"
    sf.write(str(src), noisy_music(16000, 1.0, 2), 16000, subtype="PCM_16")
    out = tmp_path / "out"
    assert main(["denoise", str(src), "-o", str(out), "--checkpoint", checkpoints["masknet"], "--quiet"]) == 0
    assert_same_format(src, out / "x.wav")
    # a masknet has no controls to override
    assert main(["denoise", str(src), "-o", str(out), "--checkpoint", checkpoints["masknet"], "--reduction-db", "3"]) == 2
    assert "controller checkpoint" in capsys.readouterr().err
    # controller via the CLI, with an override
    assert main(["denoise", str(src), "-o", str(tmp_path / "y.wav"), "--checkpoint", checkpoints["controller"],
                 "--release-ms", "250"]) == 0
    assert "release 250 ms (set)" in capsys.readouterr().out


def test_plan_jobs(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.wav").write_bytes(b"")
    (tmp_path / "y.wav").write_bytes(b"")
    jobs = plan_jobs([str(tmp_path / "d"), str(tmp_path / "y.wav"), str(tmp_path / "missing.wav")], str(tmp_path / "o"))
    assert [(j.dst.name if j.dst else None, bool(j.error)) for j in jobs] == [("x.wav", False), ("y.wav", False),
                                                                              (None, True)]
    clash = plan_jobs([str(tmp_path / "d" / "x.wav"), str(tmp_path / "d")], str(tmp_path / "o"))
    assert clash[1].error and "overwrite" in clash[1].error
    same = plan_jobs([str(tmp_path / "y.wav")], str(tmp_path))
    assert same[0].error and "input" in same[0].error


@pytest.mark.parametrize("samples", [300, 1024, 1025, 5000, 100_003])
def test_streaming_gate_equals_one_shot(samples):
    rng = np.random.default_rng(samples)
    x = torch.from_numpy(rng.standard_normal((1, 2, samples)).astype(np.float32) * 0.1)
    controls = make_controls(1, LAYOUT, noise_profile_db=-25.0, reduction_db=20.0, attack_ms=3.0)
    gate = StreamingGate(controls, LAYOUT, 1, 2, block_s=0.1)
    pieces, pos = [], 0
    while pos < samples:
        n = int(rng.integers(1, 7000))
        pieces.append(gate.process(x[..., pos:pos + n]))
        pos += n
    pieces.append(gate.flush())
    y = torch.cat(pieces, dim=-1)
    assert y.shape == x.shape
    assert (y - spectral_gate(x, controls, LAYOUT)).abs().max() < 1e-5


def test_noise_measured_from_a_noise_clip_at_another_rate():
    """The profile measured from a stereo 44.1 kHz white-noise clip: in every band the resampled clip
    covers, its power density (the variance spread over 0-22.05 kHz instead of 0-24 kHz), far below in
    the bands above its Nyquist frequency. Its in-band shape is within the deadband (0) in the covered
    bands; a hum partial added to the clip stands out at its bin."""
    std = 0.05
    clip = (std * np.random.default_rng(2).standard_normal((2 * 44100, 2))).astype(np.float32)
    measured = measure_noise(clip, 44100, LAYOUT)
    profile, shape = measured["noise_profile_db"], measured[NOISE_SHAPE_KEY]
    assert shape.shape == (LAYOUT.n_bins,) and np.all(measured["tonal_detail"] == 1.0)
    covered_bins = np.arange(LAYOUT.n_bins) * 48000 / LAYOUT.n_fft < 18000.0
    assert np.mean(shape[covered_bins] == 0.0) > 0.97
    hum_hz = 1500.0
    t = np.arange(clip.shape[0]) / 44100
    hummed = measure_noise(clip + 0.05 * np.sin(2 * np.pi * hum_hz * t)[:, None].astype(np.float32), 44100, LAYOUT)
    hum_bin = round(hum_hz * LAYOUT.n_fft / 48000)
    assert hummed[NOISE_SHAPE_KEY][hum_bin] > 6.0
    assert int(np.argmax(hummed[NOISE_SHAPE_KEY])) in (hum_bin - 1, hum_bin, hum_bin + 1)
    edges_hz = LAYOUT.band_edges_hz
    assert profile.shape == (LAYOUT.n_bands,)
    covered = edges_hz[1:] < 20000.0
    np.testing.assert_allclose(profile[covered], 20 * np.log10(std) + 10 * np.log10(24000 / 22050), atol=0.5)
    assert np.all(profile[edges_hz[:-1] > 22500.0] < 20 * np.log10(std) - 40.0)


# -- file handling: the output's extension decides the format ------------------------------------------


def _write(path, rate=44100, seconds=1.0, channels=2, subtype="PCM_16"):
    sf.write(str(path), noisy_music(rate, seconds, channels), rate, subtype=subtype)
    return path


@pytest.mark.parametrize("src_subtype,out_name,format_,subtype", [
    ("PCM_16", "clean.flac", "FLAC", "PCM_16"),
    ("FLOAT", "clean.flac", "FLAC", "PCM_24"),
    ("PCM_24", "clean.ogg", "OGG", "VORBIS"),
    ("PCM_16", "clean.aiff", "AIFF", "PCM_16"),
])
def test_the_output_extension_decides_the_format(tmp_path, checkpoints, capsys, src_subtype, out_name, format_, subtype):
    src = _write(tmp_path / "noisy.wav", subtype=src_subtype)
    out = tmp_path / out_name
    assert denoise_files([str(src)], str(out), checkpoints["controller"], progress=False) == 0
    info, given = sf.info(str(out)), sf.info(str(src))
    assert (info.format, info.subtype) == (format_, subtype)
    assert (info.samplerate, info.channels, info.frames) == (given.samplerate, given.channels, given.frames)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and f"-> {out} ({format_} {subtype}, 1.0 s, 2 ch, 44.1 kHz;" in lines[0]


def test_format_for_a_folder_and_one_summary_line_per_file(tmp_path, checkpoints, capsys):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _write(tmp_path / "in" / "a.wav")
    _write(tmp_path / "in" / "sub" / "b.flac", subtype="PCM_24")
    assert denoise_files([str(tmp_path / "in")], str(tmp_path / "out"), checkpoints["controller"], file_format="flac",
                         progress=False) == 0
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
                  if p.is_file()) == ["a.flac", "sub/b.flac"]
    assert sf.info(str(tmp_path / "out" / "sub" / "b.flac")).subtype == "PCM_24"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("x real time): reduction" in line for line in lines)


@pytest.mark.parametrize("inputs,out,file_format,message", [
    (["a.wav", "b.wav"], "clean.wav", None, "-o {out} names one audio file, but 2 inputs were given"),
    (["in"], "clean.wav", None, "but the folder"),
    (["a.wav"], "clean.flac", "wav", "disagree"),
    (["a.wav"], "out", "mp4", "--format mp4: use one of"),
])
def test_output_mistakes_exit_2_and_write_nothing(tmp_path, checkpoints, capsys, inputs, out, file_format, message):
    (tmp_path / "in").mkdir()
    _write(tmp_path / "in" / "c.wav")
    for name in ("a.wav", "b.wav"):
        _write(tmp_path / name)
    out_path = tmp_path / out
    argv = ["denoise", *(str(tmp_path / name) for name in inputs), "-o", str(out_path), "--checkpoint",
            checkpoints["controller"], *(["--format", file_format] if file_format else [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("training: error: ") and message.format(out=out_path) in err and "Traceback" not in err
    assert not out_path.exists()


def test_unwritable_format_for_the_rate_is_reported_per_file(tmp_path, checkpoints, capsys):
    src = _write(tmp_path / "noisy.wav", rate=44100)
    assert denoise_files([str(src)], str(tmp_path / "clean.opus"), checkpoints["controller"], progress=False) == 1
    assert "cannot write" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.opus")) and not list(tmp_path.glob(".*tmp*"))
