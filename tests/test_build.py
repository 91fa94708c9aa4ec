"""End to end: `datagen build` on a small real-file corpus; determinism, resume, clusters, bad input."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from datagen.build import BuildError, build
from datagen.cli import main as datagen_main
from datagen.config import load_config
from manifests.io import open_example, read_manifest

from conftest import tiny_config_text, write_bad_files

pytestmark = pytest.mark.slow


def output_digests(out: Path) -> dict[str, str]:
    """sha256 of every file that must be byte-identical between equivalent builds."""
    files = sorted(out.glob("*/*.tar")) + [out / "examples.parquet", out / "sources.parquet"]
    return {str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def reference_build(tmp_path_factory, corpus_dir):
    """One 1-worker build of the tiny config with a folder of bad files added as a corpus."""
    root = tmp_path_factory.mktemp("ref")
    bad = write_bad_files(root / "bad")
    config_path = root / "tiny.toml"
    config_path.write_text(tiny_config_text(corpus_dir, extra=f"""
        [[corpora]]
        name = "bad"
        type = "speech"
        path = "{root / 'bad'}"
    """))
    out = root / "out"
    report = build(load_config(config_path), str(out), workers=1, progress=False)
    return config_path, out, report, bad


def test_manifest_rows_are_accurate_and_open(reference_build):
    _, out, report, _ = reference_build
    examples = read_manifest(str(out / "examples.parquet"), "examples").to_pylist()
    assert len(examples) == 24 and report["counts"]["examples"] == 24
    assert {r["split"] for r in examples} == {"train", "valid", "test"}
    ceiling = 10 ** (-1.0 / 20)
    for row in examples:
        assert abs(row["snr_measured_db"] - row["snr_target_db"]) <= 0.1
        assert "." not in row["example_id"]
        audio = open_example(row, str(out))
        assert audio.noisy.shape == (1, 48000) and audio.sample_rate == 48000
        np.testing.assert_allclose(audio.noisy, audio.clean + audio.noise, atol=2e-7)
        assert max(np.max(np.abs(a)) for a in (audio.noisy, audio.clean, audio.noise)) <= ceiling
        assert audio.meta["snr_measured_db"] == pytest.approx(row["snr_measured_db"])
        assert len(row["noise_profile_db"]) == 48


def test_splits_are_grouped(reference_build):
    _, out, _, _ = reference_build
    table = pq.read_table(out / "examples.parquet").to_pylist()
    for key in ("clean_source_id", "group_key", "noise_source_id"):
        splits_of: dict[str, set] = {}
        for row in table:
            splits_of.setdefault(row[key], set()).add(row["split"])
        leaked = {k: v for k, v in splits_of.items() if len(v) > 1}
        assert not leaked, f"{key} in several splits: {leaked}"


def test_bad_and_nonstationary_inputs_are_reported_and_skipped(reference_build):
    _, out, report, bad = reference_build
    sources = {Path(r["path"]).name: r for r in read_manifest(str(out / "sources.parquet"), "sources").to_pylist()}
    expected = {"corrupt": "unreadable", "empty": "empty", "silent": "silent", "nan": "NaN", "short": "too short"}
    for name, reason in expected.items():
        assert reason in sources[f"{name}.wav"]["error"]
    failed = {Path(f["path"]).name for f in report["failed_files"]}
    assert failed == {f"{n}.wav" for n in expected}
    assert sources["b0.wav"]["excluded_reason"].startswith("non-stationary")
    assert report["counts"]["excluded_nonstationary"] == 1
    used = {r["noise_source_id"] for r in pq.read_table(out / "examples.parquet").to_pylist()}
    assert sources["b0.wav"]["source_id"] not in used


def test_two_workers_give_identical_bytes(reference_build, tmp_path):
    config_path, out, _, _ = reference_build
    other = tmp_path / "two"
    build(load_config(config_path), str(other), workers=2, progress=False)
    assert output_digests(other) == output_digests(out)


def test_rebuild_reuses_everything_and_refuses_other_config(reference_build, tmp_path):
    config_path, out, _, _ = reference_build
    before = output_digests(out)
    report = build(load_config(config_path), str(out), workers=1, progress=False)
    assert report["counts"]["shards_resumed"] == report["counts"]["shards"]
    assert output_digests(out) == before
    changed = tmp_path / "changed.toml"
    changed.write_text(config_path.read_text().replace("seed = 7", "seed = 8"))
    with pytest.raises(BuildError, match="different config"):
        build(load_config(changed), str(out), workers=1, progress=False)


def test_render_reproduces_bytes_and_changes_one_choice(reference_build, tmp_path, capsys):
    _, out, _, _ = reference_build
    row = read_manifest(str(out / "examples.parquet"), "examples").to_pylist()[3]
    assert datagen_main(["render", str(out), row["example_id"], "-o", str(tmp_path / "same")]) == 0
    assert "identical" in capsys.readouterr().out
    assert datagen_main(["render", str(out), row["example_id"], "-o", str(tmp_path / "snr"), "--snr-db", "17.5"]) == 0
    meta = json.loads((tmp_path / "snr" / f"{row['example_id']}.json").read_text())
    assert meta["snr_target_db"] == 17.5 and abs(meta["snr_measured_db"] - 17.5) <= 0.1


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "datagen.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, **kwargs)


def test_killed_build_resumes_to_identical_bytes(tmp_path, corpus_dir):
    config_path = tmp_path / "kill.toml"
    config_path.write_text(tiny_config_text(corpus_dir, examples="{ train = 48, valid = 8, test = 8 }"))
    reference = tmp_path / "ref"
    build(load_config(config_path), str(reference), workers=1, progress=False)
    out = tmp_path / "killed"
    process = _cli("build", str(config_path), "--out", str(out), "--workers", "1", "--no-progress")
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / ".build" / "parts").rglob("*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    parts = list((out / ".build" / "parts").rglob("*.parquet"))
    assert 3 <= len(parts) < 16 and not (out / "examples.parquet").exists(), "the kill must land mid-way"
    report = build(load_config(config_path), str(out), workers=1, progress=False)
    assert report["counts"]["shards_resumed"] >= 3
    assert not list(out.rglob("*.tmp-*"))
    assert output_digests(out) == output_digests(reference)


def test_loopback_scheduler_and_workers_give_identical_bytes(reference_build, tmp_path):
    config_path, out, _, _ = reference_build
    scheduler_file = tmp_path / "scheduler.json"
    bindir = Path(sys.executable).parent
    scheduler = subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(scheduler_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = subprocess.Popen([str(bindir / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                    "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        remote = tmp_path / "remote"
        build(load_config(config_path), str(remote), scheduler=address, progress=False)
        assert output_digests(remote) == output_digests(out)
    finally:
        for process in (workers, scheduler):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def test_stereo_build(tmp_path, corpus_dir):
    config_path = tmp_path / "stereo.toml"
    config_path.write_text(tiny_config_text(corpus_dir, examples="{ train = 4, valid = 2, test = 2 }").replace("clip_duration_s = 1.0", "clip_duration_s = 1.0\nchannels = 2"))
    out = tmp_path / "stereo"
    build(load_config(config_path), str(out), workers=1, progress=False)
    for row in read_manifest(str(out / "examples.parquet"), "examples").to_pylist():
        audio = open_example(row, str(out))
        assert row["channels"] == 2 and audio.noisy.shape == (2, 48000)
        assert abs(row["snr_measured_db"] - row["snr_target_db"]) <= 0.1


def test_build_report_lists_every_shard_with_its_digest(reference_build):
    _, out, report, _ = reference_build
    on_disk = {str(p.relative_to(out)): p for p in out.glob("*/*.tar")}
    assert {s["path"] for s in report["shards"]} == set(on_disk)
    for shard in report["shards"]:
        data = on_disk[shard["path"]].read_bytes()
        assert shard["size_bytes"] == len(data) and shard["sha256"] == hashlib.sha256(data).hexdigest()
    rows = read_manifest(str(out / "examples.parquet"), "examples").to_pylist()
    raw = (out / rows[0]["shard"]).read_bytes()
    assert hashlib.sha256(raw[rows[0]["json_offset"] : rows[0]["json_offset"] + rows[0]["json_size"]]).hexdigest() == rows[0]["json_sha256"]


def test_index_command_and_fsspec_url_output(tmp_path, corpus_dir, capsys):
    config_path = tmp_path / "small.toml"
    config_path.write_text(tiny_config_text(corpus_dir, examples="{ train = 4, valid = 2, test = 2 }"))
    out = tmp_path / "indexed"
    assert datagen_main(["index", str(config_path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "indexed 21 recordings" in printed and "non-stationary" in printed
    assert len(read_manifest(str(out / "sources.parquet"), "sources")) == 21
    url_out = f"file://{tmp_path / 'url'}"
    report = build(load_config(config_path), url_out, workers=1, progress=False)
    rows = read_manifest(f"{url_out}/examples.parquet", "examples").to_pylist()
    assert report["counts"]["examples"] == len(rows) == 8
    assert open_example(rows[0], url_out).noisy.shape == (1, 48000)


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import errno

    import datagen.cli

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "train" / "shard-000000.tar.tmp-1"))

    monkeypatch.setattr(datagen.cli, "build", full)
    assert datagen_main(["build", "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert "disk full" in message and "shard-000000" in message and "resumes" in message
