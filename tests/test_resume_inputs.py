"""Resume knows its inputs: a corpus changed under a half-done build is a clear error, never a silent mix."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from datagen.build import BuildError, build, part_path, probe_batches
from datagen.config import load_config
from datagen.sources import SourceFile

from conftest import speechlike, tiny_config_text

pytestmark = pytest.mark.slow


def half_done_build(tmp_path, corpus_dir):
    """A finished build of a private copy of the test corpus with one shard's part removed (as if killed)."""
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    config = tmp_path / "c.toml"
    config.write_text(tiny_config_text(corpus))
    out = tmp_path / "out"
    build(load_config(config), str(out), workers=1, progress=False)
    (out / "examples.parquet").unlink()
    part = (out / ".build" / "parts" / "train" / "shard-000001.parquet")
    part.unlink()
    return config, out, corpus


def test_an_added_removed_or_replaced_file_stops_the_resume_by_name(tmp_path, corpus_dir):
    config, out, corpus = half_done_build(tmp_path, corpus_dir)
    sf.write(corpus / "speech" / "spk1" / "utt9.flac", speechlike(np.random.default_rng(9), 44100, 4.0), 44100)
    (corpus / "music" / "art2" / "piece.flac").unlink()
    with pytest.raises(BuildError, match=r"corpus 'music' changed since this build started: 1 removed \(e\.g\. .*art2/piece\.flac removed\)"
                                         r".*corpus 'speech' changed since this build started: 1 added.*rebuild with --overwrite"):
        build(load_config(config), str(out), workers=1, progress=False)
    report = build(load_config(config), str(out), workers=1, progress=False, overwrite=True)
    assert report["counts"]["shards_resumed"] == 0 and report["counts"]["examples"] == 24  # every shard made again from the new files
    assert build(load_config(config), str(out), workers=1, progress=False)["counts"]["shards_resumed"] == report["counts"]["shards"]


def test_an_unchanged_corpus_resumes(tmp_path, corpus_dir):
    config, out, _ = half_done_build(tmp_path, corpus_dir)
    report = build(load_config(config), str(out), workers=1, progress=False)
    assert report["counts"]["shards_resumed"] == report["counts"]["shards"] - 1


def test_probe_tasks_hold_few_long_files():
    files = [SourceFile(f"/f{i}", f"f{i}", "c", "speech", None, f"f{i}", False, size, 0) for i, size in
             enumerate([200 * 2**20, 10, 10, 10, 10, 10, 10, 10, 10, 10, 50 * 2**20, 30 * 2**20])]
    assert [len(batch) for batch in probe_batches(files)] == [1, 8, 2, 1]
