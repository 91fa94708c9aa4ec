"""Hostile and careless use of `training train` and `training denoise`: each case ends in one clear message
and an exit code, loses no input and leaves nothing half-written (the training side of tests/test_hostile.py).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from manifests.bands import erb_layout
from manifests.lock import LOCK_NAME, LockError
from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from training.cli import main as training_main
from training.controller import Controller
from training.train import TrainingError, checkpoint_paths, train

from test_denoise import noisy_music
from test_training import quiet, tiny_build, tiny_train_config  # noqa: F401  (tiny_build is a fixture)

LAYOUT = erb_layout(48000)


@pytest.fixture(scope="module")
def controller_checkpoint(tmp_path_factory) -> dict:
    torch.manual_seed(0)
    controller = Controller(LAYOUT, hidden=16, n_blocks=1, mlp=32)
    fields = dict(kind="controller", model_config={**controller.config, "link_channels": True}, layout=LAYOUT.to_dict(),
                  state_dict=controller.state_dict(), stage="stage2", epoch=0, step=0, metrics={})
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", **fields)
    return {"path": str(path), "fields": fields}


def write_audio(path: Path, seconds: float = 1.0, rate: int = 48000, seed: int = 0) -> Path:
    sf.write(str(path), noisy_music(rate, seconds, 1, seed=seed), rate, subtype="PCM_16")
    return path


def denoise(*argv) -> int:
    try:
        return training_main(["denoise", "--quiet", *map(str, argv)])
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code)


# -- denoise: inputs and outputs ----------------------------------------------------------------------


def test_output_that_is_the_input_is_refused_and_the_input_is_kept(tmp_path, controller_checkpoint, capsys):
    take = write_audio(tmp_path / "take.wav")
    before = take.read_bytes()
    assert denoise(take, "-o", take, "--checkpoint", controller_checkpoint["path"]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert take.read_bytes() == before
    # a folder denoised into itself: every file refused, none touched
    write_audio(tmp_path / "other.wav", seed=1)
    sizes = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert denoise(tmp_path, "-o", tmp_path, "--checkpoint", controller_checkpoint["path"]) == 1
    assert capsys.readouterr().err.count("is the input file") == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == sizes


def test_an_unwritable_output_is_reported_and_the_rest_is_written(tmp_path, controller_checkpoint, capsys):
    inputs = tmp_path / "in"
    (inputs / "a").mkdir(parents=True)
    write_audio(inputs / "a" / "one.wav")
    write_audio(inputs / "two.wav", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("a file where the output needs a folder")
    assert denoise(inputs, "-o", out, "--checkpoint", controller_checkpoint["path"]) == 1
    err = capsys.readouterr().err
    assert "one.wav: cannot write" in err and "1 of 2 file(s) failed" in err
    assert sf.info(str(out / "two.wav")).frames == 48000
    assert sorted(p.name for p in out.rglob("*")) == ["a", "two.wav"]  # no temporary file left behind


@pytest.mark.parametrize("argv,message", [
    (["--threads", "-1"], "must be >= 1"),
    (["--threads", "0"], "must be >= 1"),
    (["--device", "tpu"], "invalid choice"),
    (["--block-s", "0"], "--block-s 0: give"),
    (["--block-s", "1e9"], "--block-s 1e+09: give"),
    (["--reduction-db", "1e9"], "outside the trained range 0..40 dB"),
    (["--attack-ms", "0"], "outside the trained range 1..200 ms"),
    (["--tonal-detail", "nan"], "outside the trained range"),
])
def test_bad_options_exit_2_with_the_accepted_range(tmp_path, controller_checkpoint, capsys, argv, message):
    take = write_audio(tmp_path / "take.wav")
    assert denoise(take, "-o", tmp_path / "out", "--checkpoint", controller_checkpoint["path"], *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, controller_checkpoint, capsys):
    take = write_audio(tmp_path / "take.wav")
    assert denoise(take, "-o", tmp_path / "out", "--checkpoint", controller_checkpoint["path"], "--device", "cuda") == 2
    assert "no CUDA device is available here" in capsys.readouterr().err


@pytest.mark.parametrize("kind,message", [
    ("nan_audio", "holds no finite sample"),
    ("silent_audio", "digital silence"),
    ("nan_json", "non-finite values"),
    ("loud_json", "leave the range of the noise profile control"),
])
def test_unusable_noise_profiles_are_refused(tmp_path, controller_checkpoint, capsys, kind, message):
    take = write_audio(tmp_path / "take.wav")
    if kind.endswith("audio"):
        profile = tmp_path / "noise.wav"
        value = np.nan if kind == "nan_audio" else 0.0
        sf.write(str(profile), np.full((48000, 1), value, np.float32), 48000, subtype="FLOAT")
    else:
        profile = tmp_path / "noise.json"
        profile.write_text(json.dumps([float("nan") if kind == "nan_json" else 90.0] * LAYOUT.n_bands))
    assert denoise(take, "-o", tmp_path / "out", "--checkpoint", controller_checkpoint["path"], "--noise-profile", profile) == 2
    assert message in capsys.readouterr().err


def test_a_silent_noise_region_fails_that_file_only(tmp_path, controller_checkpoint, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    silent_start = noisy_music(48000, 2.0, 1)
    silent_start[:48000] = 0.0
    sf.write(str(inputs / "a.wav"), silent_start, 48000, subtype="PCM_16")
    write_audio(inputs / "b.wav", seconds=2.0, seed=2)
    assert denoise(inputs, "-o", tmp_path / "out", "--checkpoint", controller_checkpoint["path"], "--noise-region", "0:0.5") == 1
    assert "a.wav: --noise-region 0:0.5: the noise is digital silence" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.wav"]


# -- checkpoints ----------------------------------------------------------------------------------------


def _damaged(fields: dict, damage: str) -> dict:
    fields = {**fields, "model_config": dict(fields["model_config"]), "layout": dict(fields["layout"]),
              "state_dict": dict(fields["state_dict"])}
    if damage == "layout_key":
        del fields["layout"]["n_fft"]
    elif damage == "huge_n_fft":
        fields["layout"]["n_fft"] = 2 ** 24
    elif damage == "nan_weights":
        name = next(iter(fields["state_dict"]))
        fields["state_dict"][name] = torch.full_like(fields["state_dict"][name], float("nan"))
    elif damage == "quantile":
        fields["model_config"]["prior_quantile"] = 5.0
    elif damage == "negative_setting":
        fields["model_config"]["excerpt_s"] = -1.0
    elif damage == "missing_weight":
        fields["state_dict"].pop(next(iter(fields["state_dict"])))
    elif damage == "unknown_setting":
        fields["model_config"]["wings"] = 2
    return fields


@pytest.mark.parametrize("damage,message", [
    ("layout_key", "missing or malformed entry 'n_fft'"),
    ("huge_n_fft", "n_fft 16777216 is outside 64..16384"),
    ("nan_weights", "non-finite weights"),
    ("quantile", "prior_quantile"),
    ("negative_setting", "excerpt_s"),
    ("missing_weight", "the weights do not fit"),
    ("unknown_setting", "the weights do not fit"),
])
def test_damaged_checkpoints_are_refused_by_name(tmp_path, controller_checkpoint, capsys, damage, message):
    path = save_checkpoint(tmp_path / "bad.pt", **_damaged(controller_checkpoint["fields"], damage))
    take = write_audio(tmp_path / "take.wav")
    assert denoise(take, "-o", tmp_path / "out.wav", "--checkpoint", path) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.pt" in err and "Traceback" not in err
    assert not (tmp_path / "out.wav").exists()


def test_a_sound_checkpoint_passes_the_same_checks(controller_checkpoint):
    ckpt = load_checkpoint(controller_checkpoint["path"])
    assert ckpt["layout"]["n_fft"] == 2048 and ckpt["kind"] == "controller"
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(controller_checkpoint["path"] + ".missing")


# -- training runs --------------------------------------------------------------------------------------


def test_a_second_trainer_on_the_same_run_folder_is_refused(tiny_build, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                 "command": "training train", "started_s": time.time()}))
        with pytest.raises(LockError, match=f"being written by pid {holder.pid}"):
            train(tiny_train_config(tiny_build), run, log=quiet)
        config = tmp_path / "train.json"
        config.write_text(json.dumps(tiny_train_config(tiny_build).to_dict()))
        assert training_main(["train", str(config), "--run", str(run)]) == 2
        assert f"being written by pid {holder.pid}" in capsys.readouterr().err
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the holder's folder is untouched
    finally:
        holder.kill()
        holder.wait()
    messages = []  # the holder is gone: its lock is stale, taken over with a message, and the run goes on
    train(tiny_train_config(tiny_build), run, log=messages.append)
    assert any("taking over the stale lock" in m for m in messages)
    assert not (run / LOCK_NAME).exists() and checkpoint_paths(run)["best"].exists()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tiny_build, tmp_path):
    run = tmp_path / "run"
    too_big = tiny_train_config(tiny_build, data={"batch_size": 64})
    with pytest.raises(TrainingError, match="an epoch holds no whole batch"):
        train(too_big, run, log=quiet)
    assert not run.exists()
    # a folder the user made: the failed attempt's files stay, and the fixed config starts afresh in it
    run.mkdir()
    with pytest.raises(TrainingError):
        train(too_big, run, log=quiet)
    assert (run / "config.json").exists()
    messages = []
    train(tiny_train_config(tiny_build), run, log=messages.append)
    assert any("holds no checkpoint yet; starting afresh" in m for m in messages)
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("baseline") == 1


def test_non_finite_validation_metrics_stop_the_run_and_keep_the_last_good_checkpoint(tiny_build, tmp_path, monkeypatch):
    import training.train as train_module

    real = train_module.evaluate_model
    calls = []

    def poisoned(model, eval_set, device, **kwargs):
        metrics = real(model, eval_set, device, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # stage 1 epoch 1, stage 2 epoch 1, then stage 2 epoch 2
            metrics = {**metrics, "score": float("nan")}
        return metrics

    monkeypatch.setattr(train_module, "evaluate_model", poisoned)
    run = tmp_path / "run"
    config = tiny_train_config(tiny_build, stage2={"epochs": 3})
    with pytest.raises(TrainingError, match=r"\[stage2\] non-finite validation metrics \(score\) after epoch 2"):
        train(config, run, log=quiet)
    paths = checkpoint_paths(run)
    last, best = load_checkpoint(paths["stage2"]), load_checkpoint(paths["best"])
    assert last["epoch"] == 0 and best["epoch"] == 0 and np.isfinite(best["metrics"]["score"])
    monkeypatch.setattr(train_module, "evaluate_model", real)
    resumed = []
    train(config, run, log=resumed.append)  # the rerun resumes after the last good epoch
    assert any("[stage2] resuming after epoch 1/3" in m for m in resumed)


def test_evaluate_refuses_negative_threads(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        training_main(["evaluate", str(tmp_path), "--threads", "-2"])
    assert exit_info.value.code == 2 and "must be >= 0" in capsys.readouterr().err

