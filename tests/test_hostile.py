"""A catalogue of hostile and careless inputs to `datagen`, each with what the user gets now.

Every case ends in a clear message naming the file, key or option, or in a build that goes on without
the bad input and says so; nothing hangs, nothing of another run is lost, nothing wrong passes as clean.
Cases covered elsewhere: a second writer (test_lock.py), a corpus changed under a half-done build
(test_resume_inputs.py), patterns that miss files and bad labels (test_corpus_labels.py), SIGKILL and
resume, full disk, corrupt/empty/silent/NaN/short files (test_build.py), damaged shards (test_verify.py).
"""
from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from datagen.audit import audit
from datagen.build import build, scan_all
from datagen.cli import main as datagen_main
from datagen.config import load_config
from datagen.sources import _walk_local
from datagen.verify import verify
from manifests.io import read_manifest, read_metadata, write_manifest

from conftest import colored_noise, speechlike, tiny_config_text

pytestmark = pytest.mark.slow


def sources_by_name(out: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in read_manifest(str(out / "sources.parquet"), "sources").to_pylist()}


def copy_corpus(corpus_dir: Path, tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    return corpus


def build_tiny(tmp_path: Path, corpus: Path, extra: str = "") -> tuple[Path, dict]:
    config = tmp_path / "c.toml"
    config.write_text(tiny_config_text(corpus, extra=extra))
    out = tmp_path / "out"
    return out, build(load_config(config), str(out), workers=1, progress=False)


# ---------------------------------------------------------------- inputs that must not end the run


def test_a_copy_of_a_recording_under_another_name_stays_in_its_split(tmp_path, corpus_dir):
    """A user keeps the same take in two folders (spk1/ and spk9/): one group, one split, and the audit names the pair."""
    corpus = copy_corpus(corpus_dir, tmp_path)
    (corpus / "speech" / "spk9").mkdir()
    shutil.copy(corpus / "speech" / "spk1" / "utt0.flac", corpus / "speech" / "spk9" / "copy.flac")
    sf.write(corpus / "speech" / "spk9" / "copy.wav", sf.read(corpus / "speech" / "spk1" / "utt1.flac")[0], 44100, subtype="PCM_24")
    out, _ = build_tiny(tmp_path, corpus)
    sources = read_manifest(str(out / "sources.parquet"), "sources").to_pylist()
    by_hash: dict[str, set] = {}
    for row in sources:
        by_hash.setdefault(row["content_sha256"], set()).add(row["path"].split("/speech/")[-1])
    assert {"spk1/utt0.flac", "spk9/copy.flac"} in by_hash.values() and {"spk1/utt1.flac", "spk9/copy.wav"} in by_hash.values()
    split_of = {}
    for row in read_manifest(str(out / "examples.parquet"), "examples").to_pylist():
        split_of.setdefault(row["clean_path"].split("/corpus/")[-1], set()).add(row["split"])
    for original, copy in (("speech/spk1/utt0.flac", "speech/spk9/copy.flac"), ("speech/spk1/utt1.flac", "speech/spk9/copy.wav")):
        assert len(split_of.get(original, set()) | split_of.get(copy, set())) <= 1
    result = audit(str(out))
    assert not result.failed
    assert any(w.startswith("2 recording(s) used under several names") and "spk9/copy.flac" in w for w in result.warnings)


def test_copies_planted_in_two_splits_fail_the_audit(tiny_build_copy):
    """A manifest whose train and test examples use two files of identical audio is a leak, not a pass."""
    path = str(tiny_build_copy / "sources.parquet")
    table = read_manifest(path, "sources")
    examples = read_manifest(str(tiny_build_copy / "examples.parquet"), "examples").to_pylist()
    train = next(r["clean_source_id"] for r in examples if r["split"] == "train")
    test = next(r["clean_source_id"] for r in examples if r["split"] == "test")
    rows = table.to_pylist()
    shared = next(r["content_sha256"] for r in rows if r["source_id"] == train)
    for row in rows:
        if row["source_id"] == test:
            row["content_sha256"] = shared
    write_manifest(pa.Table.from_pylist(rows, schema=table.schema), path, "sources")
    result = audit(str(tiny_build_copy))
    assert result.failed and any(leak.key == "clean_content_sha256" and leak.value == shared for leak in result.leaks)


def test_special_files_and_odd_folder_names_in_a_corpus(tmp_path, corpus_dir):
    """A FIFO named like audio is reported and never opened (no hang); a folder named '[live] takes?' is read literally;
    a 6-channel recording and a DC-only one are handled: the first used, the second excluded by name."""
    corpus = copy_corpus(corpus_dir, tmp_path)
    os.mkfifo(corpus / "speech" / "spk1" / "stream.wav")
    odd = corpus / "speech" / "[live] takes?"
    odd.mkdir()
    sf.write(odd / "take.flac", speechlike(np.random.default_rng(1), 48000, 4.0), 48000)
    rng = np.random.default_rng(2)
    sf.write(corpus / "music" / "art1" / "surround.wav", np.stack([speechlike(rng, 48000, 6.0) for _ in range(6)]).T, 48000)
    sf.write(corpus / "noise" / "white" / "dc.wav", np.full(48000 * 5, 0.25, dtype=np.float32), 48000, subtype="PCM_16")
    out, report = build_tiny(tmp_path, corpus)
    sources = sources_by_name(out)
    assert sources["stream.wav"]["error"] == "not a regular file (a FIFO): never read"
    assert sources["take.flac"]["error"] is None and sources["take.flac"]["group_key"] == "[live] takes?"
    assert sources["surround.wav"]["error"] is None and sources["surround.wav"]["channels"] == 6
    assert sources["dc.wav"]["error"].startswith("silent: only a DC offset")
    assert any(f["path"].endswith("stream.wav") for f in report["failed_files"])
    config = tmp_path / "literal.toml"
    config.write_text(f'[splits]\nexamples = {{ train = 1 }}\nfractions = {{ train = 1.0 }}\n[[corpora]]\nname = "live"\ntype = "speech"\n'
                      f'path = "{odd}"\n[[corpora]]\nname = "n"\ntype = "noise"\npath = "{corpus / "noise"}"\n')
    assert [f.relative_path for f in scan_all(load_config(config), "literal.toml") if f.corpus == "live"] == ["take.flac"]


def test_an_unreadable_subfolder_is_reported_not_skipped(tmp_path, monkeypatch):
    """A folder the build cannot list (permissions on shared storage) becomes a failed row naming it."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "ok" / "a.wav").write_bytes(b"")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = _walk_local(str(tmp_path))
    assert found[str(tmp_path / "locked")] == {"type": "unreadable", "error": "a folder that cannot be read (Permission denied)",
                                               "size": 0, "mtime": 0}
    assert found[str(tmp_path / "ok" / "a.wav")]["type"] == "file"


# ---------------------------------------------------------------- verify treats the folder as untrusted


def test_verify_reports_duplicated_rows_symlinked_and_special_shards(tiny_build_copy, tmp_path):
    """A manifest row listed twice, a shard replaced by a symlink to elsewhere, a FIFO in a shard's place: each reported, no hang."""
    path = str(tiny_build_copy / "examples.parquet")
    extra = {k: v for k, v in read_metadata(path).items() if k not in ("kind", "version")}
    table = read_manifest(path, "examples")
    write_manifest(pa.concat_tables([table, table.slice(0, 1)]), path, "examples", extra)
    first, second = sorted(tiny_build_copy.glob("train/*.tar"))[:2]
    elsewhere = tmp_path / "elsewhere.tar"
    shutil.move(first, elsewhere)
    first.symlink_to(elsewhere)
    second.unlink()
    os.mkfifo(second)
    report = verify(str(tiny_build_copy), workers=1)
    found = {(p.kind, p.shard) for p in report.problems}
    assert ("duplicate manifest row", "examples.parquet") in found
    assert ("not a regular file", f"train/{first.name}") in found and ("not a regular file", f"train/{second.name}") in found
    details = " ".join(p.detail for p in report.problems)
    assert f"a symbolic link to {elsewhere}" in details and "a special file (a FIFO)" in details


# ---------------------------------------------------------------- bad configuration: exit 2 naming the key


@pytest.mark.parametrize("change, key", [
    (("[snr]\nmin_db = -inf\n", ""), "snr.min_db"),
    (("[snr]\nmax_db = inf\n", ""), "snr.max_db"),
    (("[snr]\ndistribution = \"choice\"\nvalues_db = [0.0, nan]\n", ""), "snr.values_db[1]"),
    (("", "seed = -1"), "seed"),
    (("", "examples = { train = 1000000000000, valid = 6, test = 6 }"), "splits.examples.train"),
    (("[mix]\nclean_loudness_min_lufs = -inf\n", ""), "mix.clean_loudness_min_lufs"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, corpus_dir, capsys, change, key):
    prefix, replace = change
    text = tiny_config_text(corpus_dir)
    if replace.startswith("seed"):
        text = text.replace("seed = 7", replace)
    elif replace:
        text = text.replace("examples = { train = 12, valid = 6, test = 6 }", replace)
    config = tmp_path / "bad.toml"
    config.write_text(text.replace("[audio]", prefix + "[audio]", 1) if prefix else text)
    assert datagen_main(["build", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"'{key}'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_build_stopped_by_a_corpus_error_leaves_no_folder(tmp_path, corpus_dir):
    """A recipe pointed at the wrong root fails while scanning: the new --out folder is not left behind half made."""
    config = tmp_path / "c.toml"
    config.write_text(tiny_config_text(corpus_dir) + f'[[corpora]]\nrecipe = "vctk"\npath = "{corpus_dir / "speech"}"\n')
    with pytest.raises(Exception, match="does not look like CSTR VCTK"):
        build(load_config(config), str(tmp_path / "out"), workers=1, progress=False)
    assert not (tmp_path / "out").exists()
