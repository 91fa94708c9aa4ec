"""Config loading: defaults, path resolution, and errors that name the key."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from datagen.config import ConfigError, demo_config, load_config, parse_config

from conftest import tiny_config_text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_demo_config_loads_with_generators():
    config = demo_config()
    assert config.audio.sample_rate == 48000 and config.audio.channels == 1
    assert {c.generator for c in config.corpora} == {"speech", "music", "noise", "nonstationary"}
    assert Path("configs/demo.toml").resolve() == Path("datagen/demo.toml").resolve()


def test_relative_corpus_paths_resolve_against_config_folder(tmp_path, corpus_dir):
    path = write(tmp_path, tiny_config_text(corpus_dir).replace(str(corpus_dir), "../" + corpus_dir.name) )
    (tmp_path / "sub").mkdir()
    moved = tmp_path / "sub" / "c.toml"
    path.rename(moved)
    config = load_config(moved)
    assert config.corpora[0].path == str((tmp_path / "sub" / ".." / corpus_dir.name / "speech").resolve())


@pytest.mark.parametrize("table, name, value, key, accepted", [
    ("audio", "sample_rte", 48000, "audio.sample_rte", "sample_rate"),
    ("", "bogus", 1, "bogus", "corpora"),
    ("snr", "definition", "peak", "snr.definition", "'active'"),
    ("audio", "format", "mp3", "audio.format", "'flac24'"),
    ("audio", "channels", 6, "audio.channels", "1 or 2"),
    ("snr", "min_db", "low", "snr.min_db", "number"),
    ("splits", "fractions", {"train": 0.9, "test": 0.3}, "splits.fractions", "sum to 1"),
])
def test_bad_keys_are_named(tmp_path, corpus_dir, table, name, value, key, accepted):
    config = tomllib.loads(tiny_config_text(corpus_dir))
    (config.setdefault(table, {}) if table else config)[name] = value
    with pytest.raises(ConfigError) as info:
        parse_config(config, "bad.toml", tmp_path)
    message = str(info.value)
    assert key in message and accepted in message and message.startswith("bad.toml:")


def test_unknown_corpus_key_is_named(tmp_path, corpus_dir):
    path = write(tmp_path, tiny_config_text(corpus_dir) + "weigth = 2\n")
    with pytest.raises(ConfigError, match=r"corpora\[2\].*weigth|weigth.*accepted"):
        load_config(path)


def test_exactly_one_of_examples_or_hours(tmp_path, corpus_dir):
    text = tiny_config_text(corpus_dir).replace("examples = { train = 12, valid = 6, test = 6 }", "")
    with pytest.raises(ConfigError, match="splits.examples"):
        load_config(write(tmp_path, text))


def test_output_hash_ignores_dask_settings(tmp_path, corpus_dir):
    a = load_config(write(tmp_path, tiny_config_text(corpus_dir)))
    b = load_config(write(tmp_path, tiny_config_text(corpus_dir).replace("workers = 1", "workers = 2")))
    c = load_config(write(tmp_path, tiny_config_text(corpus_dir).replace("seed = 7", "seed = 8")))
    assert a.output_hash() == b.output_hash() != c.output_hash()
