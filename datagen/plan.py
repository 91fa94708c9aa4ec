"""Planning: grouped splits, then one plan per example with every random choice drawn up front.

Example `index` of split `split` draws from `numpy.random.default_rng([seed, split_code, index])`
alone, so its choices do not depend on worker count, order or on any other example; its shard is
`index // examples_per_shard`.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import asdict, dataclass

import numpy as np

from .config import BuildConfig


class PlanError(ValueError):
    """The usable sources cannot fill the requested splits; the message says what is missing."""


@dataclass(frozen=True)
class ExamplePlan:
    """Every choice that makes one example, plus what rendering needs to read its sources."""

    example_id: str
    split: str
    index: int
    shard: str
    source_type: str
    clean_source_id: str
    clean_path: str
    clean_corpus: str
    group_key: str
    clean_start_s: float
    clean_sample_rate: int
    clean_frames: int
    clean_bandwidth_hz: float
    noise_source_id: str
    noise_path: str
    noise_corpus: str
    noise_type: str
    noise_start_s: float
    noise_sample_rate: int
    noise_frames: int
    noise_loop: bool
    noise_stationarity_db: float
    snr_target_db: float
    clean_loudness_target_lufs: float
    synthetic: bool

    def to_dict(self) -> dict:
        return asdict(self)


def stable_code(text: str) -> int:
    """A process-independent integer for a string (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode())


def _rank(seed: int, key: str) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def assign_groups(durations: dict[str, float], fractions: dict[str, float], seed: int,
                  preassigned_s: dict[str, float] | None = None) -> dict[str, str]:
    """Map each group to a split so split durations follow `fractions`; groups never straddle splits.

    Largest groups first (ties by seeded hash), each to the split furthest below its target share
    relative to that share, so that every split with a share gets a group while groups last.
    `preassigned_s` (split -> seconds already in it, e.g. official splits) counts toward the shares.
    """
    preassigned_s = preassigned_s or {}
    assigned = {name: preassigned_s.get(name, 0.0) for name in fractions}
    total = sum(durations.values()) + sum(assigned.values())
    result = {}

    def relative_deficit(split: str) -> tuple:
        if fractions[split] <= 0:
            return (-np.inf, 0.0, split)
        target = fractions[split] * total
        return ((target - assigned[split]) / target, fractions[split], split)

    for group in sorted(durations, key=lambda g: (-durations[g], _rank(seed, g))):
        split = max(fractions, key=relative_deficit)
        result[group] = split
        assigned[split] += durations[group]
    return result


SMALL_NOISE_TYPES = "(noise types with fewer groups than splits)"


def _kind(row: dict) -> str:
    return "noise" if row["source_type"] == "noise" else "clean"


def merge_duplicate_groups(rows: list[dict]) -> list[dict]:
    """`rows` with the group key of recordings of identical content (`content_sha256`) made one: the smallest of
    their groups' keys, so that copies of a recording (another name, folder or format) never straddle splits.
    Rows without duplicates are returned unchanged."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(key: tuple[str, str]) -> tuple[str, str]:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    first_of: dict[tuple[str, str], tuple[str, str]] = {}
    for row in rows:
        if row.get("content_sha256"):
            group = (_kind(row), row["group_key"])
            other = first_of.setdefault((_kind(row), row["content_sha256"]), group)
            a, b = find(group), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    if not parent:
        return rows
    return [{**row, "group_key": find((_kind(row), row["group_key"]))[1]} for row in rows]


def group_pins(rows: list[dict]) -> dict[tuple[str, str], str]:
    """(kind, group) -> the split its files are pinned to (official splits); a group pinned to two splits is a PlanError."""
    pins: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        if row.get("split_pin"):
            pins.setdefault((_kind(row), row["group_key"]), {}).setdefault(row["split_pin"], row["path"])
    conflicts = {key: paths for key, paths in pins.items() if len(paths) > 1}
    if conflicts:
        (kind, group), paths = next(iter(sorted(conflicts.items())))
        raise PlanError(f"group '{group}' ({kind}) has files pinned to several splits by official splits: "
                        + ", ".join(f"{split} (e.g. {path})" for split, path in sorted(paths.items()))
                        + f"; {len(conflicts)} group(s) like this. A group must stay in one split: fix group_pattern or split_patterns, "
                          "or set official_splits = false")
    return {key: next(iter(paths)) for key, paths in pins.items()}


def _strata(rows: list[dict], fractions: dict[str, float]) -> dict[tuple[str, str], list[dict]]:
    """Rows by splitting stratum: clean by source type; noise by noise type, types too small to split pooled."""
    strata: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        strata.setdefault(("noise", row["noise_type"]) if _kind(row) == "noise" else ("clean", row["source_type"]), []).append(row)
    splits_with_share = sum(1 for v in fractions.values() if v > 0)
    pooled: dict[tuple[str, str], list[dict]] = {}
    for (kind, name), members in sorted(strata.items()):
        small = kind == "noise" and len({r["group_key"] for r in members}) < splits_with_share
        pooled.setdefault((kind, SMALL_NOISE_TYPES) if small else (kind, name), []).extend(members)
    return pooled


def split_sources(rows: list[dict], config: BuildConfig) -> dict[str, str]:
    """source_id -> split for every usable source; no group key of a kind (clean / noise) is in two splits.

    Clean sources are split by group key per source type, noise per noise type; noise types with
    fewer groups than splits cannot be split and are pooled, whole groups to a split. A group with a
    file pinned to a split (official splits) goes there whole; copies of one recording are one group; a
    corpus with pins is split on its own,
    its pinned durations counting toward that split's share, so that one corpus's official splits do
    not push another's groups out of a split.
    Sources of a corpus with a `split` all go to that split and take no part in the grouping, so adding
    such a corpus (e.g. extra noise recordings for training only) leaves every other source's split as it was.
    """
    pinned_corpora = {c.name: c.split for c in config.corpora if c.split}
    rows = merge_duplicate_groups(rows)
    free = [row for row in rows if row["corpus"] not in pinned_corpora]
    pins = group_pins(free)
    corpora_with_pins = {row["corpus"] for row in free if (_kind(row), row["group_key"]) in pins}
    group_split: dict[tuple[str, str], str] = {}
    for (kind, name), members in sorted(_strata(free, config.splits.fractions).items()):
        by_corpus: dict[str, list[dict]] = {}
        for row in members:
            by_corpus.setdefault(row["corpus"] if row["corpus"] in corpora_with_pins else "", []).append(row)
        for corpus, corpus_rows in sorted(by_corpus.items()):
            durations: dict[str, float] = {}
            preassigned: dict[str, float] = {}
            for row in corpus_rows:
                pin = pins.get((kind, row["group_key"]))
                if pin is not None:
                    preassigned[pin] = preassigned.get(pin, 0.0) + row["duration_s"]
                    group_split.setdefault((kind, row["group_key"]), pin)
                else:
                    durations[row["group_key"]] = durations.get(row["group_key"], 0.0) + row["duration_s"]
            seed = config.seed + stable_code(f"{kind}:{name}" + (f":{corpus}" if corpus else ""))
            for group, split in assign_groups(durations, config.splits.fractions, seed, preassigned).items():
                group_split.setdefault((kind, group), split)  # a group key shared by two strata keeps its first split
    return {row["source_id"]: pinned_corpora[row["corpus"]] if row["corpus"] in pinned_corpora
            else group_split[(_kind(row), row["group_key"])] for row in rows}


def describe_groups(rows: list[dict], split_of: dict[str, str], kind: str) -> str:
    """Why a split lacks `kind` ("clean" or "noise") sources: groups per stratum and the splits they went to."""
    parts = []
    strata: dict[str, dict[str, set]] = {}
    for row in rows:
        if _kind(row) == kind:
            name = row["source_type"] if kind == "clean" else row["noise_type"]
            strata.setdefault(name, {}).setdefault(row["group_key"], set()).add(split_of[row["source_id"]])
    for name, groups in sorted(strata.items()):
        splits = sorted({s for splits in groups.values() for s in splits})
        shown = ", ".join(sorted(groups)[:5]) + (", ..." if len(groups) > 5 else "")
        parts.append(f"{name} has {len(groups)} group(s) ({shown}), in split(s) {', '.join(splits)}")
    return "; ".join(parts) if parts else f"there are no usable {'speech or music' if kind == 'clean' else 'noise'} recordings at all"


def examples_per_split(config: BuildConfig) -> dict[str, int]:
    if config.splits.examples:
        return dict(config.splits.examples)
    return {name: int(round(hours * 3600.0 / config.audio.clip_duration_s)) for name, hours in config.splits.hours.items()}


class _Pool:
    """The sources of one split, indexed for drawing."""

    def __init__(self, rows: list[dict], clip_s: float, config: BuildConfig):
        self.clip_s = clip_s
        self.weights = {c.name: c.weight for c in config.corpora}
        self.min_active_ratio = config.mix.min_active_ratio
        self.clean: dict[str, list[dict]] = {}
        self.noise: dict[str, dict[str, list[dict]]] = {}
        for row in rows:
            if row["source_type"] == "noise":
                self.noise.setdefault(row["corpus"], {}).setdefault(row["noise_type"], []).append(row)
            else:
                self.clean.setdefault(row["corpus"], []).append(row)
        self._starts: dict[str, np.ndarray] = {}

    def _pick_corpus(self, rng: np.random.Generator, corpora: list[str]) -> str:
        weights = np.array([self.weights[c] for c in corpora])
        return corpora[int(rng.choice(len(corpora), p=weights / weights.sum()))]

    @staticmethod
    def _pick_by_duration(rng: np.random.Generator, rows: list[dict]) -> dict:
        durations = np.array([r["duration_s"] for r in rows])
        return rows[int(rng.choice(len(rows), p=durations / durations.sum()))]

    def clean_starts(self, row: dict) -> np.ndarray:
        """Candidate excerpt starts (s) of a clean source whose window is active enough."""
        if row["source_id"] not in self._starts:
            hop = row["activity_hop_s"]
            n_frames = int(np.ceil(row["duration_s"] / hop - 1e-9))
            mask = np.unpackbits(np.frombuffer(row["active_mask"], dtype=np.uint8))[:n_frames].astype(np.float64)
            window = max(1, int(round(self.clip_s / hop)))
            last = max(0, int(np.floor((row["duration_s"] - self.clip_s) / hop)))
            sums = np.concatenate([[0.0], np.cumsum(mask)])
            starts = np.arange(last + 1)
            ratio = (sums[np.minimum(starts + window, n_frames)] - sums[starts]) / window
            good = starts[ratio >= min(self.min_active_ratio, ratio.max())]
            self._starts[row["source_id"]] = good * hop
        return self._starts[row["source_id"]]

    def draw_clean(self, rng: np.random.Generator) -> tuple[dict, float]:
        row = self._pick_by_duration(rng, self.clean[self._pick_corpus(rng, sorted(self.clean))])
        starts = self.clean_starts(row)
        return row, float(starts[int(rng.integers(len(starts)))])

    def draw_noise(self, rng: np.random.Generator) -> tuple[dict, float]:
        by_type = self.noise[self._pick_corpus(rng, sorted(self.noise))]
        types = sorted(by_type)
        row = self._pick_by_duration(rng, by_type[types[int(rng.integers(len(types)))]])
        span = row["duration_s"] - self.clip_s
        start = rng.uniform(0.0, span) if span > 0 else rng.uniform(0.0, row["duration_s"])
        return row, float(start)


def noise_needs_loop(noise_row: dict, clip_s: float) -> bool:
    """A noise recording shorter than the clip is crossfade-looped (only allowed with mix.noise_loop = "crossfade")."""
    return noise_row["duration_s"] < clip_s


def _draw_snr_db(rng: np.random.Generator, config: BuildConfig) -> float:
    snr = config.snr
    if snr.distribution == "choice":
        return float(snr.values_db[int(rng.integers(len(snr.values_db)))])
    return float(rng.uniform(snr.min_db, snr.max_db))


def plan_examples(rows: list[dict], split_of: dict[str, str], config: BuildConfig) -> list[ExamplePlan]:
    """Plans of every example of every split, in (split order, index) order."""
    clip_s = config.audio.clip_duration_s
    plans: list[ExamplePlan] = []
    for split, count in examples_per_split(config).items():
        if count == 0:
            continue
        pool = _Pool([r for r in rows if split_of[r["source_id"]] == split], clip_s, config)
        if not pool.clean or not pool.noise:
            kind = "clean" if not pool.clean else "noise"
            raise PlanError(f"split '{split}' has no usable {'speech or music' if kind == 'clean' else 'noise'} recordings: "
                            f"{describe_groups(rows, split_of, kind)}. Groups come from each corpus's group_pattern or labels "
                            "(a pattern that captures a folder above the speaker, e.g. a subset name, gives too few); check them, "
                            f"add recordings, or set splits.examples.{split} = 0 (see the excluded files in build.json and sources.parquet)")
        for index in range(count):
            rng = np.random.default_rng([config.seed, stable_code(split), index])
            clean, clean_start = pool.draw_clean(rng)
            noise, noise_start = pool.draw_noise(rng)
            snr_db = _draw_snr_db(rng, config)
            loudness = float(rng.uniform(config.mix.clean_loudness_min_lufs, config.mix.clean_loudness_max_lufs))
            plans.append(ExamplePlan(
                example_id=f"{split}-{index:08d}", split=split, index=index,
                shard=f"{split}/shard-{index // config.shards.examples_per_shard:06d}.tar",
                source_type=clean["source_type"], clean_source_id=clean["source_id"], clean_path=clean["path"], clean_corpus=clean["corpus"],
                group_key=clean["group_key"], clean_start_s=clean_start, clean_sample_rate=clean["sample_rate"], clean_frames=clean["frames"],
                clean_bandwidth_hz=clean["bandwidth_hz"],
                noise_source_id=noise["source_id"], noise_path=noise["path"], noise_corpus=noise["corpus"], noise_type=noise["noise_type"],
                noise_start_s=noise_start, noise_sample_rate=noise["sample_rate"], noise_frames=noise["frames"],
                noise_loop=noise_needs_loop(noise, clip_s), noise_stationarity_db=noise["stationarity_db"],
                snr_target_db=snr_db, clean_loudness_target_lufs=loudness, synthetic=bool(clean["synthetic"] or noise["synthetic"]),
            ))
    return plans
