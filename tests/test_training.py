"""Tests of the training package: config, data, losses, checkpoints, the two-stage run (resume, NaN guard).

A tiny corpus (24 one-second examples) is built once per module with `datagen` (the tests may use
datagen to make a fixture; the training package itself never imports it).
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from datagen.build import build
from datagen.config import load_config as load_build_config
from manifests.bands import erb_layout
from manifests.io import ManifestError
from manifests.schema import METADATA_KEY
from training.stft import stft
from training.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint
from training.cli import main as training_main
from training.config import ConfigError, load_config, parse_config
from training.controller import Controller, Denoiser
from training.augment import drifting_tone, fluctuate, lowpass
from training.data import EpochSampler, EvalSet, ExampleIndex, TrainDataset, profile_target_db, profile_target_np
from training.ema import WeightAverage
from training.losses import MultiResolutionSTFTLoss, harm_loss, profile_loss, si_sdr
from training.masknet import MaskNet
from training.reproduce import compare_results
from training.run_folder import examples_content_sha256, file_sha256
from training.train import TrainingError, checkpoint_paths, train

from conftest import tiny_config_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory, corpus_dir) -> Path:
    root = tmp_path_factory.mktemp("train_corpus")
    config_path = root / "tiny.toml"
    config_path.write_text(tiny_config_text(corpus_dir, examples="{ train = 12, valid = 6, test = 6 }"))
    out = root / "build"
    build(load_build_config(config_path), str(out), workers=1, progress=False)
    return out


def tiny_train_config(build_dir: Path, **sections):
    """A TrainConfig that trains every stage in a couple of seconds."""
    table = {
        "seed": 3,
        "device": "cpu",
        "threads": 1,
        "data": {"build": str(build_dir), "crop_s": 0.5, "batch_size": 4, "num_workers": 0, "epoch_size": 8},
        "controller": {"hidden": 16, "n_blocks": 1, "mlp": 32},
        "stage1": {"epochs": 1, "lr": 3e-3},
        "stage2": {"epochs": 1, "lr": 1e-3},
        "masknet": {"enabled": False, "epochs": 1, "hidden": 16},
    }
    for name, values in sections.items():
        table[name] = {**table.get(name, {}), **values} if isinstance(values, dict) else values
    return parse_config(table, "test")


def quiet(_msg: str) -> None:
    pass


# -- config ------------------------------------------------------------------------------------------


def test_demo_config_loads_and_unknown_keys_are_named(tmp_path):
    config = load_config(REPO / "configs" / "train_demo.toml")
    assert config.data.build == str((REPO / "runs" / "demo" / "data").resolve())
    assert config.stage1.epochs > 0 and config.stage2.epochs > 0 and config.masknet.enabled
    bad = tmp_path / "bad.toml"
    bad.write_text("[stage2]\nepochz = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'stage2.epochz'.*accepted keys here: .*epochs"):
        load_config(bad)
    bad.write_text("[data]\nsource_weights = { speech = 1.0, noise = 1.0 }\n")
    with pytest.raises(ConfigError, match="data.source_weights.noise"):
        load_config(bad)
    bad.write_text("device = 'tpu'\n")
    with pytest.raises(ConfigError, match="device"):
        load_config(bad)
    for section, text, key in [("data.augment", "bandlimit_min_hz = 9000.0\nbandlimit_max_hz = 4000.0", "bandlimit_min_hz"),
                               ("data.augment", "tone_prob = 1.5", "tone_prob"),
                               ("data.augment", "fluctuation_max_db = -1.0", "fluctuation_max_db"),
                               ("controller", "frame_pool = 0", "frame_pool"),
                               ("controller", "band_hidden = -1", "band_hidden"),
                               ("stage2", "weight_harm = -1.0", "weight_harm")]:
        bad.write_text(f"[{section}]\n{text}\n")
        with pytest.raises(ConfigError, match=f"{section}.{key}"):
            load_config(bad)
    # the keys that do not change results are left out of the result hash
    a = parse_config({"device": "cpu", "stage1": {"max_minutes": 1.0}}, "a")
    b = parse_config({"device": "auto", "stage1": {"max_minutes": 9.0}}, "b")
    assert a.result_hash() == b.result_hash() != parse_config({"seed": 1}, "c").result_hash()


# -- data --------------------------------------------------------------------------------------------


def test_dataset_items_are_deterministic_and_targets_match_the_gate(tiny_build):
    index = ExampleIndex(str(tiny_build))
    config = tiny_train_config(tiny_build, data={"augment": {"prob": 1.0, "mix_noise_prob": 1.0, "color_prob": 1.0}})
    data = TrainDataset(index, "train", 0.5, config.data.augment, seed=1)
    a, b, c = data[(2, 5, 3)], data[(2, 5, 3)], data[(3, 5, 3)]
    assert torch.equal(a["noisy"], b["noisy"]) and not torch.equal(a["noisy"], c["noisy"])
    assert a["noisy"].shape == (1, 24000) and a["augmented"] and "+" in a["noise_type"]
    assert torch.allclose(a["noisy"], a["clean"] + a["noise"])
    # the target is the profile of the augmented noise as the gate's STFT sees it
    assert torch.allclose(a["profile_db"], profile_target_db(a["noise"], index.layout), atol=1e-3)
    np.testing.assert_allclose(profile_target_np(a["noise"].numpy(), index.layout), a["profile_db"].numpy(), atol=1e-6)
    # without augmentation the crop is the stored mix
    plain = TrainDataset(index, "train", 0.5, None, seed=1)[(0, 0, 3)]
    assert not plain["augmented"] and plain["snr_db"] == index.split("train")[3]["snr_target_db"]


def test_lowpass_passes_below_the_cutoff_and_removes_above():
    rate = 48000
    t = np.arange(rate) / rate
    tones = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 10000 * t)])
    out = lowpass(tones, rate, cutoff_hz=4000.0)
    level_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2, axis=-1)) / np.sqrt(0.5))
    assert abs(level_db[0]) < 0.01 and level_db[1] < -80.0


def test_drifting_tone_is_a_unit_rms_harmonic_drone_near_its_f0():
    from training.config import AugmentConfig

    rate = 48000
    cfg = AugmentConfig(tone_min_hz=200.0, tone_max_hz=200.0)
    tone = drifting_tone(np.random.default_rng(5), 4 * rate, rate, cfg)
    assert np.sqrt(np.mean(tone**2)) == pytest.approx(1.0)
    spectrum = np.abs(np.fft.rfft(tone)) ** 2
    freqs = np.fft.rfftfreq(tone.size, 1 / rate)
    # the energy sits at the harmonics of 200 Hz (within the 5 % wobble), not in between
    near = np.zeros_like(freqs, dtype=bool)
    for k in range(1, 9):
        near |= np.abs(freqs - 200.0 * k) <= 0.06 * 200.0 * k
    assert spectrum[near].sum() > 0.99 * spectrum.sum()
    assert spectrum[np.abs(freqs - 200.0) <= 12.0].sum() > 0.2 * spectrum.sum()


def test_fluctuate_wanders_the_band_levels_by_the_requested_std_and_keeps_the_rms():
    from datagen.stationarity import stationarity_db

    rate = 48000
    noise = np.random.default_rng(3).standard_normal((2, 4 * rate)).astype(np.float32)
    assert fluctuate(np.random.default_rng(0), noise, rate, 0.0) is noise
    # the band masks sum to one: a vanishing wander gives the input back
    np.testing.assert_allclose(fluctuate(np.random.default_rng(0), noise, rate, 1e-9), noise, atol=1e-6)
    assert stationarity_db(noise, rate) < 0.3
    for std_db in (1.0, 2.5):
        scores = []
        for seed in range(4):
            out = fluctuate(np.random.default_rng(seed), noise, rate, std_db)
            assert out.shape == noise.shape and out.dtype == np.float32
            assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(noise.astype(np.float64) ** 2)), rel=1e-5)
            scores.append(stationarity_db(out, rate))
        # the corpus filter reads the wander (within the spread of the random envelopes)
        assert 0.6 * std_db < np.mean(scores) < 1.2 * std_db, scores


def test_bandlimit_augmentation_removes_the_noise_above_the_cutoff(tiny_build):
    index = ExampleIndex(str(tiny_build))
    config = tiny_train_config(tiny_build, data={"augment": {"prob": 1.0, "mix_noise_prob": 0.0, "color_prob": 0.0,
                                                             "bandlimit_noise_prob": 1.0, "bandlimit_clean_prob": 1.0,
                                                             "bandlimit_min_hz": 3000.0, "bandlimit_max_hz": 3000.0}})
    item = TrainDataset(index, "train", 0.5, config.data.augment, seed=1)[(0, 1, 2)]
    for name in ("clean", "noise"):
        spectrum = np.abs(np.fft.rfft(item[name].numpy().astype(np.float64), axis=-1)) ** 2
        freqs = np.fft.rfftfreq(item[name].shape[-1], 1 / index.layout.sample_rate)
        assert spectrum[..., freqs > 3000 * 2 ** (1 / 6)].sum() < 1e-6 * spectrum.sum(), name
    assert torch.allclose(item["noisy"], item["clean"] + item["noise"])


def test_sampler_weights_and_determinism():
    types = ["speech"] * 30 + ["music"] * 10
    sampler = EpochSampler(types, {"speech": 1.0, "music": 1.0}, 2000, seed=0)
    drawn = sampler.indices(0)
    assert drawn == sampler.indices(0) and drawn != sampler.indices(1)
    share = np.mean([types[i] == "music" for i in drawn])
    assert 0.45 < share < 0.55  # balanced although the split holds 25 % music
    only = EpochSampler(types, {"speech": 1.0, "music": 0.0}, 100, seed=0)
    assert all(types[i] == "speech" for i in only.indices(0))
    sampler.set_epoch(4)
    assert [k[0] for k in sampler][:3] == [4, 4, 4]


def test_eval_set_is_fixed(tiny_build):
    index = ExampleIndex(str(tiny_build))
    a, b = EvalSet(index, "valid", 0.5), EvalSet(index, "valid", 0.0)
    assert a.noisy.shape == (6, 1, 24000) and b.noisy.shape == (6, 1, 48000)
    assert torch.equal(a.noisy, b.noisy[..., :24000]) and len(a.source_type) == 6


# -- losses ------------------------------------------------------------------------------------------


def test_losses():
    torch.manual_seed(0)
    clean = torch.randn(2, 1, 8000)
    noisy = clean + 0.1 * torch.randn(2, 1, 8000)
    assert torch.allclose(si_sdr(noisy, clean), torch.full((2,), 20.0), atol=0.5)
    assert torch.allclose(si_sdr(3.0 * noisy, clean), si_sdr(noisy, clean), atol=1e-4)
    mr = MultiResolutionSTFTLoss()
    assert float(mr(clean, clean)) < 1e-6 < float(mr(noisy, clean)) < float(mr(clean + torch.randn(2, 1, 8000), clean))
    assert float(profile_loss(torch.zeros(1, 4), torch.tensor([[1.0, -1.0, 2.0, 0.0]]))) == pytest.approx(1.0)
    # SI-SDR lost against the input: zero for an improvement, the loss in dB (batch mean) for a degradation
    worse = clean + 0.3 * torch.randn(2, 1, 8000)  # about 10.5 dB, 9.5 dB below the 20 dB input
    assert float(harm_loss(clean, noisy, clean)) == 0.0
    lost = (si_sdr(noisy, clean) - si_sdr(worse, clean)).mean()
    assert 8.0 < float(lost) < 11.0 and float(harm_loss(worse, noisy, clean)) == pytest.approx(float(lost), abs=1e-4)


def test_stage1_objective_drives_the_profile_error_down(tiny_build):
    """A few steps of the stage-1 loss on a fixed tiny batch: the profile error falls well below the blind prior's."""
    torch.manual_seed(0)
    index = ExampleIndex(str(tiny_build))
    data = TrainDataset(index, "train", 1.0, None, seed=0)
    items = [data[(0, i, i)] for i in range(6)]
    noisy = torch.stack([x["noisy"] for x in items])
    target = torch.stack([x["profile_db"] for x in items])
    controller = Controller(index.layout, hidden=32, n_blocks=1, mlp=64)
    spec = stft(noisy, index.layout)
    optimizer = torch.optim.Adam(controller.parameters(), lr=3e-3)
    errors = []
    for _ in range(40):
        loss = profile_loss(controller(noisy, spec=spec)["noise_profile_db"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        errors.append(float(loss.detach()))
    assert errors[-1] < 0.5 * errors[0], errors


# -- checkpoints -------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_round_trip_and_refusals(tmp_path):
    layout = erb_layout(48000)
    controller = Controller(layout, hidden=16, n_blocks=1, mlp=32)
    path = save_checkpoint(tmp_path / "c.pt", kind="controller", model_config={**controller.config, "link_channels": True},
                           layout=layout, state_dict=controller.state_dict(), stage="stage2", epoch=3, step=40,
                           metrics={"score": np.float64(1.5), "per_source_type": {"speech": {"si_sdri": 2.0}}},
                           extra={"path": tmp_path, "arr": np.arange(3)})
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "controller" and raw["metrics"]["score"] == 1.5
    model = build_model(load_checkpoint(path))
    assert isinstance(model, Denoiser) and model.layout == layout and not model.training
    audio = torch.randn(1, 2, 30000) * 0.05
    out = model.denoise(audio)
    assert isinstance(out, torch.Tensor) and out.shape == audio.shape
    masknet = MaskNet(layout, hidden=16)
    mpath = save_checkpoint(tmp_path / "m.pt", kind="masknet", model_config=masknet.config, layout=layout,
                            state_dict=masknet.state_dict(), stage="masknet", epoch=0, step=1, metrics={})
    m = build_model(load_checkpoint(mpath))
    assert isinstance(m, MaskNet) and m.denoise(audio).shape == audio.shape
    assert m.denoise(torch.randn(1, 1, 5 * 48000) * 0.05, block_s=2.0).shape == (1, 1, 5 * 48000)  # blockwise

    torch.save({"state_dict": controller.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a hifi-denoise checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with open(tmp_path / "evil.pt", "wb") as handle:  # an arbitrary pickled object: refused by weights_only
        pickle.dump({"format": "hifi_denoise.checkpoint", "x": Path("/etc")}, handle)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


# -- training runs -----------------------------------------------------------------------------------


def test_end_to_end_run_then_reproduce(tiny_build, tmp_path, capsys):
    config = tiny_train_config(tiny_build, masknet={"enabled": True})
    run = tmp_path / "run"
    results = train(config, run, log=quiet)
    paths = checkpoint_paths(run)
    assert all(paths[k].exists() for k in ("stage1", "stage2", "best", "masknet"))
    for name in ("config.json", "run.json", "metrics.jsonl", "results.json", "train.log"):
        assert (run / name).exists(), name
    info = json.loads((run / "run.json").read_text())
    assert len(info["examples_sha256"]) == len(info["examples_content_sha256"]) == 64 and info["seed"] == 3 and "torch" in info["package_versions"]
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(e.get("stage"), e.get("epoch")) for e in events if e["event"] == "epoch"] == [("stage1", 0), ("stage2", 0), ("masknet", 0)]
    for key in ("baseline_blind_dsp", "stage1", "stage2", "best", "masknet"):
        assert {"speech", "music"} <= set(results[key]["per_source_type"]), key
        assert np.isfinite(results[key]["score"])
    best = build_model(load_checkpoint(paths["best"]))
    assert isinstance(best, Denoiser)
    # reproduce through the CLI, on a copy of the build elsewhere (--data): same numbers, exit 0
    moved = tmp_path / "moved_build"
    shutil.copytree(tiny_build, moved)
    code = training_main(["reproduce", str(run), "--run", str(tmp_path / "again"), "--data", str(moved)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "reproduced" in out and "same platform and packages" in out
    row = next(line for line in out.splitlines() if line.startswith("best.score "))
    assert row.split()[1] == row.split()[2] and "+0" in row.split()[3]  # recorded, new, diff side by side
    assert "torch" in info["installed_packages"] and "numpy" in info["installed_packages"]
    # another build is refused before any training, naming the file
    other = tmp_path / "other_build"
    other.mkdir()
    examples = pq.read_table(moved / "examples.parquet")
    pq.write_table(examples.slice(1), other / "examples.parquet")  # one example fewer, same schema
    assert training_main(["reproduce", str(run), "--run", str(tmp_path / "third"), "--data", str(other)]) == 2
    assert "not the build the run was trained on" in capsys.readouterr().err and not (tmp_path / "third").exists()
    # a run folder whose run.json records no checksum is refused, not reproduced unchecked
    bare = tmp_path / "bare_run"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("checkpoints"))
    (bare / "run.json").write_text("{}")
    assert training_main(["reproduce", str(bare), "--run", str(tmp_path / "fourth")]) == 2
    assert "records no checksum of the examples" in capsys.readouterr().err
    # the check is by content: the same examples with the recordings elsewhere (other path columns) pass it
    relocated = examples.set_column(examples.schema.get_field_index("clean_path"), examples.schema.field("clean_path"),
                                    pa.array(["/elsewhere/" + p for p in examples.column("clean_path").to_pylist()]))
    pq.write_table(relocated, other / "examples.parquet")
    assert examples_content_sha256(str(other / "examples.parquet")) == info["examples_content_sha256"]
    assert file_sha256(str(other / "examples.parquet")) != info["examples_sha256"]


def test_reproduction_report_allows_the_cross_machine_spread_only_elsewhere():
    from training.reproduce import CROSS_MACHINE_TOLERANCE_DB, reproduction_report

    original = {"best": {"score": 7.9, "per_source_type": {"music": {"si_sdri_db": 2.66}}}, "timings": {"x": 1}}
    new = {"best": {"score": 7.9, "per_source_type": {"music": {"si_sdri_db": 2.66 + CROSS_MACHINE_TOLERANCE_DB / 2}}},
           "timings": {"x": 2}}
    here = {"platform": "p", "installed_packages": {"torch": "2.13.0"}}
    elsewhere = {"platform": "p", "installed_packages": {"torch": "2.14.1"}}
    lines, agree = reproduction_report(original, new, here, here, 0.0)
    assert not agree and any("<- differs" in line and "music" in line for line in lines)
    lines, agree = reproduction_report(original, new, here, elsewhere, 0.0)
    assert agree and "1 package version(s) differ (torch)" in lines[-1]
    far = {"best": {"score": 7.9, "per_source_type": {"music": {"si_sdri_db": 3.5}}}}
    assert not reproduction_report(original, far, here, elsewhere, 0.0)[1]


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_continues_and_matches_an_uninterrupted_run(tiny_build, tmp_path, ema_decay):
    config = tiny_train_config(tiny_build, stage1={"epochs": 2}, stage2={"epochs": 2, "ema_decay": ema_decay})
    reference = train(config, tmp_path / "ref", log=quiet)

    class Interrupt(Exception):
        pass

    def stop_at(stage, epoch):
        def hook(s, e):
            if (s, e) == (stage, epoch):
                raise Interrupt

        return {"epoch_end": hook}

    run = tmp_path / "run"
    with pytest.raises(Interrupt):  # after stage 1 is complete
        train(config, run, hooks=stop_at("stage1", 1), log=quiet)
    with pytest.raises(Interrupt):  # mid stage 2
        train(config, run, hooks=stop_at("stage2", 0), log=quiet)
    interrupted = load_checkpoint(checkpoint_paths(run)["stage2"])
    assert interrupted["epoch"] == 0
    if ema_decay:  # the checkpoint ships the average and keeps the optimizer's raw weights to resume from
        shipped, raw = interrupted["state_dict"], interrupted["extra"]["raw_state_dict"]
        assert shipped.keys() == raw.keys()
        assert not all(torch.equal(shipped[k], raw[k]) for k in shipped)
    messages = []
    resumed = train(config, run, log=messages.append)
    assert any("[stage1] already complete" in m for m in messages)
    assert any("[stage2] resuming after epoch 1/2" in m for m in messages)
    assert not any("[stage2] epoch 1/2" in m for m in messages)  # not redone
    assert compare_results(reference, resumed) == []
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [(e["stage"], e["epoch"]) for e in events if e["event"] == "epoch"]
    assert epochs == [("stage1", 0), ("stage1", 1), ("stage2", 0), ("stage2", 1)]
    # another config in the same folder is refused
    other = tiny_train_config(tiny_build, stage1={"epochs": 2}, stage2={"epochs": 2, "lr": 5e-4})
    with pytest.raises(TrainingError, match="stage2.lr"):
        train(other, run, log=quiet)


def test_weight_average_tracks_the_weights_and_restores_the_raw_ones():
    module = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in module.state_dict().items()}
    average = WeightAverage(module, decay=0.75)
    assert [average.decay_at(t) for t in (0, 1, 40)] == [0.1, 2 / 11, 0.75]  # warm-up, then the set decay
    with torch.no_grad():
        for t in range(3):  # the weights move by +1, +1, +1; the average by 1 - decay_at(t) of the remaining gap
            for p in module.parameters():
                p.add_(1.0)
            average.update(40 + t)
    expected = sum(0.25 * 0.75 ** (3 - k) * k for k in (1, 2, 3))  # offset of the average from the start
    assert torch.allclose(average.state_dict()["weight"], start["weight"] + expected)
    with average.applied():
        assert torch.allclose(module.weight, start["weight"] + expected)
    assert torch.allclose(module.weight, start["weight"] + 3.0)  # raw weights back after the block
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(module, decay=1.0)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_build, tmp_path):
    config = tiny_train_config(tiny_build, stage1={"epochs": 1}, stage2={"epochs": 3})
    run = tmp_path / "run"

    def poison(stage, epoch, batch, loss):
        return loss * float("nan") if (stage, epoch, batch) == ("stage2", 1, 1) else loss

    with pytest.raises(TrainingError, match=r"\[stage2\] non-finite loss \(nan\) at epoch 2, batch 2.*stage2_last.pt"):
        train(config, run, hooks={"loss": poison}, log=quiet)
    ckpt = load_checkpoint(checkpoint_paths(run)["stage2"])
    assert ckpt["epoch"] == 0 and not ckpt["extra"]["complete"]
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "error" and "non-finite loss" in events[-1]["message"]


def test_wrong_manifest_version_is_refused(tiny_build, tmp_path):
    copy = tmp_path / "build"
    shutil.copytree(tiny_build, copy)
    table = pq.read_table(copy / "examples.parquet")
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta["version"] = 999
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), copy / "examples.parquet")
    config = tiny_train_config(copy)
    with pytest.raises(ManifestError, match="schema version 999"):
        train(config, tmp_path / "run", log=quiet)
    assert not (tmp_path / "run").exists()
    code = training_main(["train", str(REPO / "configs" / "train_demo.toml"), "--run", str(tmp_path / "run2"), "--data", str(copy)])
    assert code == 2


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import errno

    import training.cli
    import training.train

    def full(config, run_dir, log=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "checkpoints" / "stage2_last.pt.tmp"))

    monkeypatch.setattr(training.train, "train", full)
    assert training.cli.main(["train", "configs/train_demo.toml", "--run", str(tmp_path / "run")]) == 2
    message = capsys.readouterr().err
    assert "disk full" in message and "stage2_last.pt" in message and "resumes" in message
