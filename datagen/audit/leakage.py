"""Checks that fail an audit or warn: recordings, groups or copies of a recording shared between
splits (leaks), examples missing, duplicated or misnamed, and examples that point at unknown,
failed or excluded source recordings.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .result import Leak
from .stats import NONE_LABEL, grouped_indices

LEAK_KEYS = ("clean_source_id", "group_key", "noise_source_id",  # a value in two splits is a leak
             "clean_content_sha256", "noise_content_sha256")  # copies of one recording (derived from sources.parquet)
CONTENT_OF = {"clean_content_sha256": "clean_source_id", "noise_content_sha256": "noise_source_id"}


def with_content_columns(table: pa.Table, sources: list[dict]) -> pa.Table:
    """`table` plus clean_content_sha256 and noise_content_sha256: each example's recordings' content hashes (null if unknown)."""
    ids = pa.array([row["source_id"] for row in sources], pa.string())
    hashes = pa.array([row.get("content_sha256") for row in sources], pa.string())
    for member in ("clean", "noise"):
        table = table.append_column(f"{member}_content_sha256", pc.take(hashes, pc.index_in(table.column(f"{member}_source_id"), value_set=ids)))
    return table


def duplicate_warnings(sources: list[dict], shown: int = 3) -> list[str]:
    """One warning naming the usable recordings that are copies of one another (same content_sha256)."""
    by_content: dict[str, list[str]] = {}
    for row in sources:
        if row.get("content_sha256") and not row["error"] and not row["excluded_reason"]:
            by_content.setdefault(row["content_sha256"], []).append(row["path"])
    copies = [sorted(paths) for paths in by_content.values() if len(paths) > 1]
    if not copies:
        return []
    listed = "; ".join(" = ".join(paths) for paths in sorted(copies)[:shown]) + (" ..." if len(copies) > shown else "")
    return [f"{len(copies)} recording(s) used under several names (identical decoded audio), each kept in one split "
            f"as one group: {listed}"]


def find_leaks(table: pa.Table) -> list[Leak]:
    """Every LEAK_KEYS value found in more than one split, with examples per split and a few ids;
    `table` needs the content columns of `with_content_columns`."""
    leaks = []
    for key in LEAK_KEYS:
        source = CONTENT_OF.get(key)  # a content leak counts only between different recordings: one recording is its own key
        counted = table.group_by([key]).aggregate([("split", "count_distinct")] + ([(source, "count_distinct")] if source else []))
        leaking = pc.and_(pc.is_valid(counted.column(key)), pc.greater(counted.column("split_count_distinct"), 1))
        if source:
            leaking = pc.and_(leaking, pc.greater(counted.column(f"{source}_count_distinct"), 1))
        values = counted.filter(leaking).column(key)
        if len(values) == 0:
            continue
        rows = table.filter(pc.is_in(table.column(key), value_set=values.combine_chunks())).select([key, "split", "example_id"]).to_pylist()
        found: dict[str, Leak] = {}
        for row in rows:
            leak = found.setdefault(row[key], Leak(key, row[key], {}, {}))
            leak.splits[row["split"]] = leak.splits.get(row["split"], 0) + 1
            sample = leak.examples.setdefault(row["split"], [])
            if len(sample) < 3:
                sample.append(row["example_id"])
        leaks.extend(sorted(found.values(), key=lambda leak: str(leak.value)))
    return leaks


def _listed(items: list[str], limit: int) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _duplicate_ids(table: pa.Table, limit: int) -> list[str]:
    ids = table.column("example_id")
    if pc.count_distinct(ids).as_py() == table.num_rows:
        return []
    counted = table.group_by(["example_id"]).aggregate([("split", "count")])
    dupes = counted.filter(pc.greater(counted.column("split_count"), 1)).column("example_id").to_pylist()
    return [f"duplicate example ids ({len(dupes)}): {_listed(sorted(dupes), limit)}"]


def _index_gaps(table: pa.Table, expected: dict[str, int], limit: int) -> list[str]:
    """Per split: examples absent from 0..expected-1, indexes outside it, splits not configured or left empty."""
    problems = []
    splits = table.column("split")
    all_indexes = pc.fill_null(table.column("index"), -1).to_numpy()
    for split, rows in grouped_indices(pc.fill_null(splits, NONE_LABEL)):
        index = all_indexes[rows]
        want = expected.get(split)
        if want is None and expected:
            problems.append(f"split '{split}' ({index.size} examples) is not one the build was configured with ({', '.join(sorted(expected))})")
            continue
        if want is None:
            want = int(index.max()) + 1 if index.size else 0
        inside = (index >= 0) & (index < want)
        seen = np.zeros(want, dtype=bool)
        seen[index[inside]] = True
        absent = np.flatnonzero(~seen)
        extra = np.unique(index[~inside])
        if absent.size:
            problems.append(f"split '{split}': {absent.size} of {want} examples missing from the manifest: "
                            f"{_listed([f'{split}-{i:08d}' for i in absent.tolist()], limit)}")
        if extra.size:
            problems.append(f"split '{split}': {extra.size} examples with an index outside 0..{want - 1}: "
                            f"{_listed([str(i) for i in extra.tolist()], limit)}")
    for split in sorted(set(expected) - set(pc.unique(splits).to_pylist())):
        if expected[split]:
            problems.append(f"split '{split}': all {expected[split]} examples missing from the manifest")
    return problems


def _malformed_ids(table: pa.Table, limit: int) -> list[str]:
    formatted = pc.binary_join_element_wise(table.column("split"), pc.utf8_lpad(table.column("index").cast(pa.string()), 8, "0"), "-")
    malformed = table.filter(pc.invert(pc.fill_null(pc.equal(table.column("example_id"), formatted), False))).column("example_id").to_pylist()
    if not malformed:
        return []
    return [f"example ids that are not '<split>-<index:08d>' ({len(malformed)}): {_listed([str(m) for m in malformed], limit)}"]


def _source_references(table: pa.Table, sources: list[dict], limit: int) -> tuple[list[str], list[str]]:
    """(source ids not in sources.parquet: problems, recordings marked failed/excluded yet used: warnings)."""
    problems, warnings = [], []
    known = pa.array([r["source_id"] for r in sources], pa.string())
    status = {r["source_id"]: ("failed" if r["error"] else "excluded" if r["excluded_reason"] else None) for r in sources}
    for column in ("clean_source_id", "noise_source_id"):
        used = pc.unique(table.column(column))
        dangling = used.filter(pc.invert(pc.is_in(used, value_set=known))).to_pylist()
        if dangling:
            problems.append(f"{column} not in sources.parquet ({len(dangling)}): {_listed([str(d) for d in dangling], limit)}")
        flagged = sorted(f"{sid} ({status[sid]})" for sid in used.to_pylist() if status.get(sid))
        if flagged:
            warnings.append(f"{column}: examples use recordings that sources.parquet marks failed/excluded ({len(flagged)}): "
                            f"{_listed(flagged, limit)}")
    return problems, warnings


def integrity_problems(table: pa.Table, sources: list[dict], expected: dict[str, int], limit: int) -> tuple[list[str], list[str]]:
    """(hard problems, warnings) about examples that are missing, duplicated or point at unknown sources;
    `expected`: examples per split the build was asked for; lists are cut at `limit` items."""
    problems = _duplicate_ids(table, limit) + _index_gaps(table, expected, limit) + _malformed_ids(table, limit)
    reference_problems, warnings = _source_references(table, sources, limit)
    return problems + reference_problems, warnings
