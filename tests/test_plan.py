"""Planning: grouped split assignment and seeded draws."""
from __future__ import annotations

from datagen.plan import assign_groups


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
