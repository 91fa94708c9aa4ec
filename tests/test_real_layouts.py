"""The six layouts a new user tried (LibriSpeech, VCTK 0.92, MUSDB18-HQ, DEMAND, DNS-Challenge noise, MUSAN) in one build
with recipes only: groups are speakers / artists / scenes, no leakage, and the band-limited corpora are warned about."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from datagen.audit import audit
from datagen.build import build
from datagen.cli import main as datagen_main
from datagen.config import load_config
from datagen.recipes import RECIPES
from manifests.io import read_manifest

from test_recipes_music import write_musan, write_musdb
from test_recipes_noise import write_demand, write_dns
from test_recipes_speech import write_librispeech, write_vctk

ALL_RECIPES = {"librispeech", "libritts_r", "vctk", "daps", "ears", "musdb18hq", "fma", "musan", "demand", "dns_noise", "wham_noise", "fsd50k"}


def test_datagen_recipes_lists_every_recipe_and_shows_one(capsys):
    assert set(RECIPES) == ALL_RECIPES
    assert datagen_main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(f"\n{name} " in listing for name in ALL_RECIPES)
    assert datagen_main(["recipes", "vctk"]) == 0
    shown = capsys.readouterr().out
    assert "wav48_silence_trimmed/p225/p225_001_mic1.flac" in shown and "mic2" in shown and "CC BY 4.0" in shown
    assert datagen_main(["recipes", "timit"]) == 2
    assert "not a known recipe" in capsys.readouterr().err


@pytest.fixture(scope="module")
def six_layouts(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("layouts")
    trees = {"librispeech": write_librispeech(root / "LibriSpeech"), "vctk": write_vctk(root / "VCTK-Corpus-0.92"),
             "musdb18hq": write_musdb(root / "musdb18hq"), "musan": write_musan(root / "musan"),
             "demand": write_demand(root / "demand"), "dns_noise": write_dns(root / "noise")}
    config = root / "corpus.toml"
    config.write_text(textwrap.dedent("""
        seed = 3
        [audio]
        clip_duration_s = 1.0
        [mix]
        noise_loop = "crossfade"
        noise_crossfade_s = 0.1
        [splits]
        examples = { train = 24, valid = 12, test = 12 }
        [shards]
        examples_per_shard = 12
        [dask]
        workers = 1
    """) + "".join(f'[[corpora]]\nrecipe = "{name}"\npath = "{path}"\n' for name, path in trees.items()))
    return config, root / "out"


@pytest.mark.slow
def test_six_real_layouts_build_with_recipes_only(six_layouts, capsys):
    config, out = six_layouts
    assert datagen_main(["index", str(config), "--out", str(out), "--no-progress"]) == 0
    index = capsys.readouterr().out
    for corpus in ("librispeech", "vctk", "musdb18hq", "musan_music", "musan_speech", "musan_noise", "demand", "dns_noise"):
        assert f"\n{corpus} " in index
    report = build(load_config(config), str(out), workers=1, progress=False)
    assert report["counts"]["examples"] == 48
    result = audit(str(out))
    assert not result.failed and not result.leaks
    examples = read_manifest(str(out / "examples.parquet"), "examples").to_pylist()
    sources = read_manifest(str(out / "sources.parquet"), "sources").to_pylist()
    used = [s for s in sources if not s["error"] and not s["excluded_reason"]]
    namespace = {"librispeech": "librispeech", "vctk": "vctk", "musdb18hq": "musdb18hq", "demand": "demand", "dns_noise": "dns_noise"}
    for row in used:
        assert row["group_key"].startswith(namespace.get(row["corpus"], "musan") + ":"), row
        if row["corpus"] == "vctk":
            assert row["path"].endswith("_mic1.flac") and row["group_key"] == "vctk:" + Path(row["path"]).parent.name
        if row["corpus"] == "musdb18hq":
            assert row["path"].endswith("/mixture.wav")
            artist = Path(row["path"]).parent.name.split(" - ")[0]
            assert artist.startswith(row["group_key"].removeprefix("musdb18hq:"))  # "Triviul feat. The Fiend" is Triviul
        if row["corpus"] == "demand":
            assert row["group_key"] == "demand:" + Path(row["path"]).parent.name == "demand:" + row["noise_type"]
    for row in examples:  # official splits: LibriSpeech's test-* and MUSDB's test/ only ever in test
        subset = Path(row["clean_path"]).parts[-4] if row["clean_corpus"] == "librispeech" else ""
        if subset.startswith("test-") or (row["clean_corpus"] == "musdb18hq" and "/test/" in row["clean_path"]):
            assert row["split"] == "test", row
    for key in ("group_key", "noise_source_id", "clean_source_id"):
        splits_of: dict[str, set] = {}
        for row in examples:
            splits_of.setdefault(row[key], set()).add(row["split"])
        assert all(len(s) == 1 for s in splits_of.values()), key
    warnings = " ".join(result.warnings)
    for band_limited in ("librispeech", "musan_music"):  # 16 kHz corpora mixed at 48 kHz
        assert f"clean corpus '{band_limited}'" in warnings and "min_bandwidth_hz = 18000" in warnings
    assert "clean corpus 'vctk'" not in warnings
    assert report["warnings"] == [w for w in result.warnings if w in report["warnings"]] and report["warnings"]
    assert json.loads((out / "build.json").read_text())["warnings"] == report["warnings"]
