"""Tests of the evaluation report (training/evaluate.py) and the metrics (training/metrics.py)."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import tiny_config_text
from datagen.build import build
from datagen.config import load_config
from manifests.bands import erb_layout
from manifests.io import band_layout
from training import metrics
from training.checkpoint import save_checkpoint
from training.controller import Controller
from training.evaluate import METHODS, evaluate, snr_bucket
from training.masknet import MaskNet


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus_dir):
    """A tiny build (1 s clips, 12 test examples) and a run folder with untrained checkpoints."""
    root = tmp_path_factory.mktemp("evalrun")
    config_path = root / "tiny.toml"
    config_path.write_text(tiny_config_text(corpus_dir, examples="{ train = 4, valid = 2, test = 12 }"))
    out = root / "build"
    build(load_config(config_path), str(out), workers=1, progress=False)
    layout = band_layout(str(out / "examples.parquet"))
    run = root / "run"
    torch.manual_seed(0)
    controller = Controller(layout)
    save_checkpoint(run / "checkpoints" / "best.pt", kind="controller",
                    model_config={**controller.config, "link_channels": True}, layout=layout,
                    state_dict=controller.state_dict(), stage="stage2", epoch=0, step=0, metrics={})
    masknet = MaskNet(layout, hidden=32, gru_layers=1)
    save_checkpoint(run / "checkpoints" / "masknet.pt", kind="masknet", model_config=masknet.config, layout=layout,
                    state_dict=masknet.state_dict(), stage="masknet", epoch=0, step=0, metrics={})
    (run / "config.json").write_text(json.dumps({"data": {"build": str(out)}}))
    return run


@pytest.fixture(scope="module")
def report(run_dir):
    return evaluate(run_dir, "test", progress=False, timing_repeats=1)


def test_metrics_basic():
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((3, 2, 8000)).astype(np.float32)
    noisy = clean + 0.1 * rng.standard_normal((3, 2, 8000)).astype(np.float32)
    sdr = metrics.si_sdr(noisy, clean)
    assert sdr.shape == (3,) and torch.allclose(sdr, torch.full((3,), 20.0), atol=0.3)
    assert torch.allclose(metrics.si_sdr(3.0 * noisy, clean), sdr, atol=1e-3)  # scale invariant
    assert (metrics.si_sdr_improvement(noisy, clean, noisy) == 0).all()
    dist = metrics.mr_stft_distance(noisy, clean)
    assert dist.shape == (3,) and (dist > 0).all()
    assert (metrics.mr_stft_distance(clean, clean) == 0).all()
    from training.losses import MultiResolutionSTFTLoss
    assert float(dist.mean()) == pytest.approx(float(MultiResolutionSTFTLoss()(torch.as_tensor(noisy), torch.as_tensor(clean))), rel=1e-5)


def test_snr_buckets():
    assert [snr_bucket(v) for v in (-3, 0, 4.9, 5, 12, 19.99, 20, 35)] == ["<0", "0-5", "0-5", "5-10", "10-15",
                                                                           "15-20", ">=20", ">=20"]


def test_report_files_exist(report):
    for key in ("report", "results", "summary", "costs"):
        assert report[key].exists() and report[key].stat().st_size > 0
    names = {p.name for p in report["plots"]}
    assert {"si_sdri_by_snr.png", "si_sdri_by_noise.png", "noise_profiles.png", "spectrograms_speech.png",
            "spectrograms_music.png"} <= names
    for path in report["plots"]:
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_hold_every_method_and_source(report):
    results = pq.read_table(report["results"]).to_pylist()
    assert {r["method"] for r in results} == set(METHODS)
    sources = {r["source_type"] for r in results}
    assert sources == {"speech", "music"}
    ids = {r["example_id"] for r in results}
    assert len(ids) == 12 and len(results) == 12 * len(METHODS)
    with open(report["summary"]) as handle:
        summary = list(csv.DictReader(handle))
    per_source = {(r["method"], r["source_type"]) for r in summary if r["level"] == "source"}
    assert per_source == {(m, s) for m in METHODS for s in sources}
    text = report["report"].read_text()
    for method in METHODS:
        assert f"| {method} | speech |" in text and f"| {method} | music |" in text
    cost_rows = [line for line in text.splitlines() if line.startswith("| controller |") and "," in line]
    assert cost_rows, "cost table lists the controller's parameter count"
    costs = json.loads(report["costs"].read_text())
    assert costs["controller"]["params"] > 0 and 0 < costs["controller"]["rtf"] < 1
    assert costs["masknet"]["macs_per_s"] > 0 and costs["dsp_oracle"]["params"] == 0


def test_noisy_is_exactly_zero_and_oracle_helps_at_low_snr(report):
    results = pq.read_table(report["results"]).to_pylist()
    noisy = [r for r in results if r["method"] == "noisy"]
    assert all(r["si_sdri"] == 0.0 and r["worse"] == 0.0 for r in noisy)
    low = [r for r in results if r["method"] == "dsp_oracle" and r["snr_target_db"] < 10]
    assert len(low) >= 3
    assert np.mean([r["si_sdri"] for r in low]) > 0.5
    # the oracle's profile error is zero by construction; the blind one's is not
    assert all(r["profile_err_db"] == 0 for r in results if r["method"] == "dsp_oracle")
    assert all(math.isfinite(r["profile_err_db"]) for r in results if r["method"] == "dsp_blind")
    # an untrained controller outputs the default scalar controls
    ctl = [r for r in results if r["method"] == "controller"]
    assert all(abs(r["reduction_db"] - 15.0) < 0.5 for r in ctl)


def test_evaluate_cli_max_examples(run_dir, tmp_path):
    from training.cli import main

    out = tmp_path / "rep"
    assert main(["evaluate", str(run_dir), "--out", str(out), "--max-examples", "3", "--no-timing", "--quiet"]) == 0
    results = pq.read_table(out / "results.parquet").to_pylist()
    assert len({r["example_id"] for r in results}) == 3
    assert (out / "report.md").exists()


def test_a_split_without_examples_is_one_line_and_leaves_no_report_folder(run_dir, tmp_path, capsys):
    from training.cli import main

    out = tmp_path / "rep"
    assert main(["evaluate", str(run_dir), "--split", "nope", "--out", str(out), "--no-timing", "--quiet"]) == 2
    assert "no examples in split 'nope'" in capsys.readouterr().err
    assert not out.exists()


def test_mask_network_inference_keeps_no_graph():
    masknet = MaskNet(erb_layout(48000), hidden=16, gru_layers=1).eval()
    audio = torch.zeros(1, 1, 4800, requires_grad=True)
    assert not masknet.denoise(audio).requires_grad and not masknet.enhance(audio)[0].requires_grad


def test_pesq_and_stoi_rank_a_cleaner_estimate_higher():
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from conftest import speechlike
    from training import metrics

    rate = 16000
    rng = np.random.default_rng(0)
    clean = speechlike(rng, rate, 3.0).astype(np.float32)[None, None]
    noise = rng.standard_normal(clean.shape).astype(np.float32)
    level = np.sqrt(np.mean(clean ** 2))
    light, heavy = clean + 0.05 * level * noise, clean + 1.0 * level * noise
    pesq_light, pesq_heavy = metrics.pesq_wb(light, clean, rate)[0], metrics.pesq_wb(heavy, clean, rate)[0]
    stoi_light, stoi_heavy = metrics.stoi(light, clean, rate)[0], metrics.stoi(heavy, clean, rate)[0]
    assert 1.0 <= pesq_heavy < pesq_light <= 4.65
    assert 0.0 < stoi_heavy < stoi_light <= 1.0
