"""corpora/pretrained: the corpus config build.py writes, and the leave-packages-out folds of it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from datagen.config import load_config

HERE = Path(__file__).resolve().parents[1] / "corpora" / "pretrained"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"pretrained_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUMMARY = [
    {"type": "speech", "package": "voices", "hours": "1.0", "version": "1", "files": 3, "licence": "GPL-2"},
    {"type": "music", "package": "tunes", "hours": "4.0", "version": "2", "files": 5, "licence": "CC-BY-3.0"},
    {"type": "noise", "package": "rain-pack", "hours": "0.1", "version": "1", "files": 2, "licence": "CC0"},
    {"type": "noise", "package": "fan-pack", "hours": "0.4", "version": "1", "files": 2, "licence": "CC0"},
    {"type": "noise", "package": "sonic-pi-samples", "hours": "0.01", "version": "1", "files": 1, "licence": "CC0"},
]


@pytest.fixture()
def corpus_toml(tmp_path) -> Path:
    path = tmp_path / "corpus.toml"
    path.write_text(load_script("build").render_config(SUMMARY, ""))
    return path


def test_the_rendered_config_loads_with_generated_noise_for_training_only(corpus_toml):
    config = load_config(corpus_toml)
    by_name = {c.name: c for c in config.corpora}
    assert set(by_name) == {"speech-voices", "music-tunes", "noise-rain-pack", "noise-fan-pack", "noise-sonic-pi-samples", "noise-generated"}
    assert by_name["noise-generated"].generator == "noise" and by_name["noise-generated"].split == "train"
    assert by_name["noise-sonic-pi-samples"].split == "train" and by_name["noise-fan-pack"].split == ""
    real_noise = [c.weight for c in config.corpora if c.type == "noise" and c.path]
    assert sum(real_noise) == pytest.approx(1.0, abs=1e-3)
    assert by_name["noise-fan-pack"].weight == pytest.approx(2 * by_name["noise-rain-pack"].weight, rel=1e-2)  # sqrt(hours)


def test_a_fold_pins_every_real_noise_package(corpus_toml, tmp_path):
    fold = tmp_path / "fold.toml"
    fold.write_text(load_script("folds").fold_config(corpus_toml.read_text(), valid=["rain-pack"], test=["sonic-pi-samples"]))
    by_name = {c.name: c for c in load_config(fold).corpora}
    assert by_name["noise-rain-pack"].split == "valid"
    assert by_name["noise-sonic-pi-samples"].split == "test"  # its train pin is replaced
    assert by_name["noise-fan-pack"].split == "train" and by_name["noise-generated"].split == "train"
    assert by_name["speech-voices"].split == "" and by_name["music-tunes"].split == ""


@pytest.mark.parametrize("valid,test,message", [
    (["rain-pack"], ["rain-pack"], "in both --valid and --test: rain-pack"),
    (["no-such-pack"], ["fan-pack"], "no noise corpus for package(s) no-such-pack"),
    (["voices"], ["fan-pack"], "no noise corpus for package(s) voices"),
])
def test_a_bad_fold_is_refused_with_the_packages_it_has(corpus_toml, valid, test, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_script("folds").fold_config(corpus_toml.read_text(), valid=valid, test=test)
    assert "fan-pack" in str(error.value) or "both" in str(error.value)
