"""Planning: grouped split assignment and seeded draws."""
from __future__ import annotations

import pytest
from conftest import tiny_config_text

from datagen.config import load_config
from datagen.plan import assign_groups, split_sources
from manifests.typed_config import ConfigError


def test_every_split_gets_a_group_when_groups_suffice():
    durations = {f"spk{i}": 80.0 for i in range(6)}
    result = assign_groups(durations, {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=0)
    counts = {s: sum(1 for v in result.values() if v == s) for s in ("train", "valid", "test")}
    assert counts == {"train": 4, "valid": 1, "test": 1}


def test_many_groups_follow_fractions_and_zero_share_gets_none():
    durations = {f"g{i}": 10.0 + (i % 7) for i in range(300)}
    result = assign_groups(durations, {"train": 0.7, "valid": 0.2, "test": 0.1, "unused": 0.0}, seed=3)
    total = sum(durations.values())
    share = {s: sum(durations[g] for g, v in result.items() if v == s) / total for s in ("train", "valid", "test", "unused")}
    assert abs(share["train"] - 0.7) < 0.02 and abs(share["valid"] - 0.2) < 0.02 and abs(share["test"] - 0.1) < 0.02
    assert share["unused"] == 0.0
    assert assign_groups(durations, {"train": 0.7, "valid": 0.2, "test": 0.1}, seed=3) == {g: v for g, v in result.items()}


def _source_rows(corpus: str, source_type: str, count: int, noise_type: str | None = None) -> list[dict]:
    return [{"source_id": f"{corpus}:{i}", "corpus": corpus, "source_type": source_type, "noise_type": noise_type,
             "group_key": f"{corpus}/g{i}", "duration_s": 30.0 + i} for i in range(count)]


def _config_with_extra_noise(tmp_path, split: str):
    """The tiny test config plus a fourth corpus, "more_noise", pinned to `split`."""
    path = tmp_path / "c.toml"
    path.write_text(tiny_config_text(tmp_path) + f'[[corpora]]\nname = "more_noise"\ntype = "noise"\n'
                                                  f'path = "{tmp_path}/more"\nsplit = "{split}"\n')
    return load_config(path)


def test_a_corpus_pinned_to_a_split_goes_there_and_leaves_the_others_as_they_were(tmp_path):
    config = _config_with_extra_noise(tmp_path, "train")
    rows = _source_rows("speech", "speech", 8) + _source_rows("noise", "noise", 8, "hum")
    pinned = _source_rows("more_noise", "noise", 5, "hum")
    with_pinned = split_sources(rows + pinned, config)
    assert {with_pinned[r["source_id"]] for r in pinned} == {"train"}
    without = split_sources(rows, config)
    assert {k: v for k, v in with_pinned.items() if k in without} == without
    assert {"train", "valid", "test"} <= set(without.values())


def test_a_split_that_is_not_in_the_fractions_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"corpora\[3\] \(more_noise\)\.split.*train, valid, test.*'training'"):
        _config_with_extra_noise(tmp_path, "training")
