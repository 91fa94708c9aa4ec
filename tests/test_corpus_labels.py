"""Labelling a corpus (groups, noise types, official splits) and splitting it without silent failure."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datagen.build import BuildError, build, scan_all
from datagen.config import ConfigError, demo_config, load_config
from datagen.plan import PlanError, assign_groups, split_sources

from conftest import colored_noise, speechlike


def touch_audio(root: Path, relative_paths: list[str], seconds: float = 1.2, rate: int = 16000) -> None:
    rng = np.random.default_rng(0)
    for relative in relative_paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speechlike(rng, rate, seconds), rate)


def config_for(tmp_path: Path, corpus_keys: str, extra_corpora: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent("""
        [splits]
        examples = { train = 4, valid = 2, test = 2 }
        [[corpora]]
        name = "c"
    """) + textwrap.dedent(corpus_keys) + textwrap.dedent(extra_corpora))
    return path


def scan(tmp_path: Path, corpus_keys: str, **kwargs):
    return {f.relative_path: f for f in scan_all(load_config(config_for(tmp_path, corpus_keys, **kwargs)), "c.toml") if f.corpus == "c"}


NOISE = '[[corpora]]\nname = "n"\ntype = "noise"\ngenerator = "noise"\ncount = 1\nduration_s = 2.0\n'


def test_a_group_pattern_that_misses_files_names_them_and_the_fix(tmp_path):
    touch_audio(tmp_path / "vctk", ["p225/p225_001_mic1.flac", "p226/p226_001_mic1.flac"])
    keys = f'type = "speech"\npath = "{tmp_path / "vctk"}"\ngroup_pattern = "^(q[0-9]+)_"\n'
    with pytest.raises(ConfigError, match=r"corpora 'c': group_pattern '\^\(q\[0-9\]\+\)_' does not match 2 of 2 files "
                                          r"\(e\.g\. p225/p225_001_mic1\.flac.*group_unmatched = \"own_group\""):
        scan(tmp_path, keys, extra_corpora=NOISE)
    files = scan(tmp_path, keys + 'group_unmatched = "own_group"\n', extra_corpora=NOISE)
    assert {f.group_key for f in files.values()} == set(files)


@pytest.mark.parametrize("pattern, message", [("^([^/]+/", "not a valid regular expression"), ("^[^/]+/", "has no capture group")])
def test_invalid_or_captureless_patterns_are_config_errors(tmp_path, pattern, message):
    path = config_for(tmp_path, f'type = "speech"\npath = "{tmp_path}"\ngroup_pattern = "{pattern}"\n', NOISE)
    with pytest.raises(ConfigError, match=rf"corpora\[0\] \(c\)\.group_pattern.*{message}"):
        load_config(path)


def test_noise_types_from_file_names_and_unmatched_names_refused(tmp_path):
    touch_audio(tmp_path / "dns", ["AirConditioner_1.wav", "Typing_22.wav", "Typing_23.wav"])
    keys = f'type = "noise"\npath = "{tmp_path / "dns"}"\nnoise_type_pattern = "^([A-Za-z]+)_"\n'
    speech = '[[corpora]]\nname = "s"\ntype = "speech"\ngenerator = "speech"\ncount = 1\nduration_s = 2.0\n'
    files = scan(tmp_path, keys, extra_corpora=speech)
    assert {k: f.noise_type for k, f in files.items()} == {"AirConditioner_1.wav": "AirConditioner", "Typing_22.wav": "Typing",
                                                           "Typing_23.wav": "Typing"}
    touch_audio(tmp_path / "dns", ["17.wav"])
    with pytest.raises(ConfigError, match=r"noise_type_pattern .* does not match 1 of 4 files \(e\.g\. 17\.wav\)"):
        scan(tmp_path, keys, extra_corpora=speech)


def test_labels_csv_gives_groups_types_and_splits_and_must_cover_every_file(tmp_path):
    touch_audio(tmp_path / "corpus", ["a/1.wav", "a/2.wav", "b/3.wav"])
    labels = tmp_path / "labels.csv"
    labels.write_text("path,group,split\na/1.wav,anna,test\na/2.wav,anna,\nb/3.wav,bert,train\n")
    keys = f'type = "speech"\npath = "{tmp_path / "corpus"}"\nlabels = "labels.csv"\n'
    files = scan(tmp_path, keys, extra_corpora=NOISE)
    assert {k: (f.group_key, f.split_pin) for k, f in files.items()} == {"a/1.wav": ("anna", "test"), "a/2.wav": ("anna", None),
                                                                         "b/3.wav": ("bert", "train")}
    labels.write_text("path,group\na/1.wav,anna\n")
    with pytest.raises(ConfigError, match=r"labels \(.*labels\.csv\) give no group for 2 of 3 files"):
        scan(tmp_path, keys, extra_corpora=NOISE)
    labels.write_text("file,speaker\na/1.wav,anna\n")
    with pytest.raises(ConfigError, match=r"needs a header with 'path'"):
        scan(tmp_path, keys, extra_corpora=NOISE)


def test_include_exclude_and_split_patterns_select_and_pin(tmp_path):
    touch_audio(tmp_path / "c", ["train/x - a/mixture.wav", "train/x - a/vocals.wav", "test/y - b/mixture.wav", "test/y - b/drums.wav"])
    keys = (f'type = "music"\npath = "{tmp_path / "c"}"\ninclude = ["*/mixture.wav"]\nexclude = ["test/y*"]\n'
            'group_pattern = "/([^/]+) - "\nsplit_patterns = { test = "^test/" }\n')
    files = scan(tmp_path, keys, extra_corpora=NOISE)
    assert list(files) == ["train/x - a/mixture.wav"] and files["train/x - a/mixture.wav"].group_key == "x"
    files = scan(tmp_path, keys.replace('exclude = ["test/y*"]\n', ""), extra_corpora=NOISE)
    assert {k: f.split_pin for k, f in files.items()} == {"train/x - a/mixture.wav": None, "test/y - b/mixture.wav": "test"}
    with pytest.raises(ConfigError, match=r"split_patterns\.eval' names a split missing from splits\.fractions"):
        load_config(config_for(tmp_path, keys.replace("test =", "eval ="), NOISE))


def _rows(kind: str, groups: dict[str, float], noise_type: str | None = None, pins: dict[str, str] | None = None) -> list[dict]:
    return [{"source_id": f"{kind}:{g}", "corpus": kind, "source_type": kind, "noise_type": noise_type, "group_key": g,
             "duration_s": d, "path": f"/{kind}/{g}.wav", "split_pin": (pins or {}).get(g)} for g, d in groups.items()]


def test_official_pins_count_toward_the_fractions_and_a_zero_share_split_keeps_only_its_pins(tmp_path):
    config = load_config(_fixed_fractions(tmp_path))
    rows = _rows("music", {f"artist{i}": 100.0 for i in range(10)}, pins={"artist0": "test", "artist1": "test"})
    split = split_sources(rows, config)
    assert split["music:artist0"] == split["music:artist1"] == "test"
    assert sorted(split[f"music:artist{i}"] for i in range(2, 10)).count("test") == 0
    assert "valid" in split.values()
    # pins count: 100 s pinned to train fills most of train's share of this small stratum
    preassigned = assign_groups({"a": 10.0, "b": 10.0}, {"train": 0.5, "valid": 0.5}, seed=0, preassigned_s={"train": 20.0})
    assert set(preassigned.values()) == {"valid"}


def _fixed_fractions(tmp_path: Path):
    path = tmp_path / "f.toml"
    path.write_text(textwrap.dedent(f"""
        [splits]
        fractions = {{ train = 0.9, valid = 0.1, test = 0.0 }}
        examples = {{ train = 4, valid = 2, test = 2 }}
        [[corpora]]
        name = "c"
        type = "music"
        path = "{tmp_path}"
    """) + NOISE)
    return path


def test_a_group_pinned_to_two_splits_is_refused(tmp_path):
    config = load_config(_fixed_fractions(tmp_path))
    rows = _rows("music", {"a": 1.0, "b": 1.0}, pins={"a": "test"}) + _rows("music", {"a": 1.0}, pins={"a": "train"})
    rows[-1]["source_id"] = "music:a2"
    with pytest.raises(PlanError, match=r"group 'a' \(clean\) has files pinned to several splits.*test.*train"):
        split_sources(rows, config)


def test_noise_types_with_one_scene_each_are_split_whole_by_scene(tmp_path):
    """DEMAND: one scene per noise type; every split still gets noise and no scene is in two splits."""
    config = load_config(_default_fractions(tmp_path))
    scenes = ["DKITCHEN", "DLIVING", "NPARK", "OOFFICE", "PCAFETER", "STRAFFIC", "TBUS", "TCAR", "TMETRO", "NRIVER"]
    rows = [row for scene in scenes for row in _rows("noise", {scene: 300.0}, noise_type=scene)]
    split = split_sources(rows, config)
    assert set(split.values()) == {"train", "valid", "test"}
    assert sum(v == "train" for v in split.values()) == 8


def _default_fractions(tmp_path: Path):
    path = tmp_path / "d.toml"
    path.write_text(f'[splits]\nexamples = {{ train = 4, valid = 2, test = 2 }}\n[[corpora]]\nname = "c"\ntype = "speech"\npath = "{tmp_path}"\n'
                    + NOISE)
    return path


def test_config_hash_of_configs_without_the_new_keys_is_unchanged():
    """Builds made before recipes and labels existed still resume: their config hash is the same."""
    assert demo_config().output_hash() == "26820f74279b40b2"


@pytest.mark.slow
def test_too_few_groups_say_why_and_the_fixed_config_builds_without_overwrite(tmp_path):
    """LibriSpeech grouped by subset: 2 groups for 3 splits. The error says so; the fix needs no --overwrite."""
    touch_audio(tmp_path / "ls", [f"{subset}/{spk}/1/{spk}-1-000{i}.flac" for subset, spks in
                                  (("train-clean-100", ("19", "26", "32")), ("test-clean", ("61", "121"))) for spk in spks for i in range(2)],
                seconds=1.5)
    noise_root = tmp_path / "noise" / "hum"
    noise_root.mkdir(parents=True)
    for i in range(3):
        sf.write(noise_root / f"n{i}.wav", colored_noise(np.random.default_rng(i), 16000, 3.0, -3.0), 16000)
    corpora = f"""
        [audio]
        clip_duration_s = 1.0
        [dask]
        workers = 1
        [splits]
        examples = {{ train = 4, valid = 2, test = 2 }}
        [[corpora]]
        name = "librispeech"
        type = "speech"
        path = "{tmp_path / 'ls'}"
        group_pattern = "GROUP"
        [[corpora]]
        name = "noise"
        type = "noise"
        path = "{tmp_path / 'noise'}"
        noise_type = "hum"
    """
    path = tmp_path / "ls.toml"
    out = str(tmp_path / "out")
    path.write_text(textwrap.dedent(corpora).replace("GROUP", "^([^/]+)/"))
    with pytest.raises(PlanError, match=r"split '(valid|test)' has no usable speech or music recordings: speech has 2 group\(s\) "
                                        r"\((test-clean, train-clean-100|train-clean-100, test-clean)\)"):
        build(load_config(path), out, workers=1, progress=False)
    path.write_text(textwrap.dedent(corpora).replace("GROUP", r"(\\d+)/\\d+/[^/]+$"))
    report = build(load_config(path), out, workers=1, progress=False)
    assert report["counts"]["examples"] == 8
    path.write_text(textwrap.dedent(corpora).replace("GROUP", r"/(\\d+)/").replace("train = 4", "train = 3"))
    with pytest.raises(BuildError, match="different config"):
        build(load_config(path), out, workers=1, progress=False)


def test_one_corpus_with_official_splits_does_not_push_another_out_of_train(tmp_path):
    """LibriSpeech's pinned train hours exceed train's share; VCTK (no official split) is still split by the fractions."""
    config = load_config(_default_fractions(tmp_path))
    libri = _rows("speech", {f"ls{i}": 3000.0 for i in range(40)}, pins={f"ls{i}": "train" for i in range(36)} |
                  {f"ls{i}": "test" for i in range(36, 40)})
    for row in libri:
        row["corpus"], row["source_id"] = "librispeech", "ls:" + row["group_key"]
    vctk = _rows("speech", {f"p{i}": 1500.0 for i in range(20)})
    split = split_sources(libri + vctk, config)
    vctk_splits = [split[r["source_id"]] for r in vctk]
    assert vctk_splits.count("train") == 16 and vctk_splits.count("valid") == 2 and vctk_splits.count("test") == 2


def test_labels_pinning_an_unknown_split_and_patterns_with_braces_give_clear_errors(tmp_path):
    touch_audio(tmp_path / "corpus", ["a/1.wav", "bb/2.wav"])
    (tmp_path / "labels.csv").write_text("path,group,split\na/1.wav,anna,eval\nbb/2.wav,bert,train\n")
    with pytest.raises(ConfigError, match=r"the labels pin 1 of 2 files to split\(s\) eval, which splits\.fractions lacks \(e\.g\. a/1\.wav\)"):
        scan(tmp_path, f'type = "speech"\npath = "{tmp_path / "corpus"}"\nlabels = "labels.csv"\n', extra_corpora=NOISE)
    with pytest.raises(ConfigError, match=r"group_pattern '\^\(\[a-z\]\{2\}\)/' does not match 1 of 2 files \(e\.g\. a/1\.wav\)"):
        scan(tmp_path, f'type = "speech"\npath = "{tmp_path / "corpus"}"\ngroup_pattern = "^([a-z]{{2}})/"\n', extra_corpora=NOISE)
