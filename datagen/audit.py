"""`datagen audit`: what a built corpus holds, computed from its manifests alone (no audio is read).

`audit(out)` reads only the needed columns of OUT/examples.parquet and OUT/sources.parquet (plus
OUT/build.json when present) and returns an `AuditResult`: counts and hours per split x source type x
corpus x noise type, distributions (summary statistics and histograms) of SNR, loudness, duration and
gains, the stationarity scores of the noise recordings used and excluded, group coverage per split,
the effective bandwidth of the clean examples against the output's Nyquist (`datagen.bandwidth`),
examples whose measured SNR departs from target, leakage between splits and missing examples.

Rendering is separate: `render_text`, `render_markdown`, `render_json` and `render_html` all draw the
same `sections(result)`; the HTML report embeds its PNG plots (and writes them next to the file).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.io import ManifestError, atomic_write_bytes, join, read_manifest, read_metadata
from manifests.schema import EXAMPLES_SCHEMA

from .bandwidth import FULL_BAND_MIN_NYQUIST_FRACTION, bandlimited_warning, full_band_min_hz, nyquist_hz, summarize_bandwidth
from .coverage import noise_type_gap_warnings, noise_types_by_split

SNR_TOLERANCE_DB = 0.1  # the build guarantees |measured - target| <= this; the audit checks it
HIST_BINS = 24
LIST_LIMIT = 20  # rows listed in the terminal for long lists (all of them are in the JSON)
DEFAULT_BY = ("split", "source_type", "corpus", "noise_type")
BY_ALIASES = {"corpus": "clean_corpus", "clean": "clean_corpus", "noise": "noise_corpus", "group": "group_key", "speaker": "group_key"}
LEAK_KEYS = ("clean_source_id", "group_key", "noise_source_id",  # a value in two splits is a leak
             "clean_content_sha256", "noise_content_sha256")  # copies of one recording (derived from sources.parquet)
CONTENT_OF = {"clean_content_sha256": "clean_source_id", "noise_content_sha256": "noise_source_id"}
METRICS = {  # column -> label; "snr_error_db" is derived (measured - target)
    "snr_measured_db": "measured SNR (dB)",
    "snr_error_db": "measured - target SNR (dB)",
    "clean_loudness_lufs": "clean loudness (LUFS)",
    "duration_s": "duration (s)",
    "clean_gain_db": "clean gain (dB)",
    "noise_gain_db": "noise gain (dB)",
    "ceiling_gain_db": "ceiling gain (dB)",
}
DIMENSIONS = ("source_type", "noise_type")
PERCENTILES = (5, 25, 50, 75, 95)
EXAMPLE_COLUMNS = [
    "example_id", "split", "index", "shard", "source_type", "clean_source_id", "clean_corpus", "group_key", "clean_bandwidth_hz",
    "noise_source_id", "noise_corpus", "noise_type", "snr_definition", "snr_target_db", "snr_measured_db",
    "clean_loudness_lufs", "clean_gain_db", "noise_gain_db", "ceiling_gain_db",
    "duration_s", "sample_rate", "channels", "audio_format", "synthetic",
]
SOURCE_COLUMNS = ["source_id", "path", "corpus", "source_type", "noise_type", "group_key", "synthetic", "sample_rate", "duration_s",
                  "stationarity_db", "error", "excluded_reason", "content_sha256"]
SPARK = "▁▂▃▄▅▆▇█"
NONE_LABEL = "(none)"


class AuditError(ValueError):
    """The audit cannot run as asked (e.g. an unknown --by column); the message says what is accepted."""


# ---------------------------------------------------------------- result types


@dataclass
class Distribution:
    """Summary statistics and a histogram (shared edges per metric) of one metric over one group of examples."""

    dimension: str  # "all" | "source_type" | "noise_type" | "stationarity" | "clean_corpus" (bandwidth)
    group: str
    metric: str
    count: int  # finite values
    missing: int  # null / NaN / infinite values
    mean: float | None
    std: float | None
    min: float | None
    p5: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None
    max: float | None
    edges: list[float]
    counts: list[int]


@dataclass
class Leak:
    """A clean recording, group key or noise recording found in more than one split."""

    key: str  # clean_source_id | group_key | noise_source_id
    value: str
    splits: dict[str, int]  # split -> examples using it
    examples: dict[str, list[str]]  # split -> a few example ids


@dataclass
class AuditResult:
    out: str
    header: dict
    by: list[str]  # as asked (aliases kept for display)
    counts: list[dict]  # by columns + examples + hours
    split_totals: list[dict]
    distributions: list[Distribution]
    coverage: list[dict]  # clean groups / recordings per split x source type x corpus
    noise_coverage: list[dict]  # noise recordings per split x noise type
    sources: list[dict]  # per source type x corpus: recordings used, unused, excluded, failed
    stationarity: dict  # threshold, per noise type summary, distributions of used and excluded, excluded list
    bandwidth: dict  # output rate, Nyquist, full-band threshold, per corpus x split summary, per corpus distributions
    snr: dict  # tolerance, count, max error, worst examples
    leaks: list[Leak]
    missing: list[str]  # missing / duplicated / dangling: each a hard failure
    warnings: list[str]
    config: dict | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return bool(self.leaks or self.missing)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["failed"] = self.failed
        return jsonable(data)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# ---------------------------------------------------------------- reading


def _read_json(path: str) -> dict | None:
    try:
        with fsspec.open(path, "rb") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); rebuild the corpus") from None


def build_info(out: str) -> tuple[dict | None, dict | None]:
    """(build.json report or None, resolved config dict or None) of a build folder."""
    report = _read_json(join(out, "build.json"))
    config = (report or {}).get("config")
    if config is None:
        state = _read_json(join(out, ".build", "config.json"))
        config = (state or {}).get("config")
    return report, config


def resolve_by(by: Iterable[str] | str | None) -> list[tuple[str, str]]:
    """(label, column) pairs of the --by grouping; labels may be aliases (corpus -> clean_corpus)."""
    if by is None:
        names = list(DEFAULT_BY)
    elif isinstance(by, str):
        names = [n.strip() for n in by.split(",") if n.strip()]
    else:
        names = list(by)
    allowed = {f.name for f in EXAMPLES_SCHEMA if not pa.types.is_list(f.type) and not f.name.endswith(("_sha256", "_offset", "_size"))}
    pairs = []
    for name in names:
        column = BY_ALIASES.get(name, name)
        if column not in allowed:
            raise AuditError(f"--by: unknown column '{name}'; use a comma-separated list of examples-manifest columns, e.g. "
                             f"split,source_type,corpus,noise_type (aliases: {', '.join(sorted(BY_ALIASES))})")
        pairs.append((name, column))
    if not pairs:
        raise AuditError("--by: give at least one column, e.g. split,source_type")
    return pairs


# ---------------------------------------------------------------- helpers


def _floats(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).cast(pa.float64())
    return pc.fill_null(column, float("nan")).to_numpy()


def _labels(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = table.column(name)
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return pc.fill_null(column, NONE_LABEL)


def _sort_key(row: dict, keys: Sequence[str]) -> tuple:
    return tuple((row[k] is None, str(row[k])) for k in keys)


def _edges(values: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram bin of each value for uniform `edges` (last bin closed, like np.histogram); -1: not finite or outside."""
    n = len(edges) - 1
    with np.errstate(invalid="ignore"):
        scaled = (values - edges[0]) / (edges[-1] - edges[0]) * n
        inside = np.isfinite(scaled) & (scaled >= 0) & (scaled <= n)
    return np.where(inside, np.minimum(np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0).astype(np.int64), n - 1), -1)


def _distribution(dimension: str, group: str, metric: str, values: np.ndarray, edges: np.ndarray, bins: np.ndarray | None = None) -> Distribution:
    """Statistics of the finite `values`; `bins`: their precomputed `_bin_index` (saves a pass on large groups)."""
    finite = values[np.isfinite(values)]
    bins = _bin_index(values, edges) if bins is None else bins
    counts = np.bincount(bins[bins >= 0], minlength=len(edges) - 1)
    if finite.size:
        pcts = np.percentile(finite, PERCENTILES)
        stats = dict(mean=float(finite.mean()), std=float(finite.std()), min=float(finite.min()), max=float(finite.max()),
                     **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts)})
    else:
        stats = dict(mean=None, std=None, min=None, max=None, **{f"p{p}": None for p in PERCENTILES})
    return Distribution(dimension=dimension, group=group, metric=metric, count=int(finite.size), missing=int(values.size - finite.size),
                        edges=[float(e) for e in edges], counts=[int(c) for c in counts], **stats)


def _grouped_indices(labels: pa.ChunkedArray) -> list[tuple[str, np.ndarray]]:
    """(label, row indices) for each distinct label, sorted by label; one stable sort for all groups."""
    encoded = labels.combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    names = encoded.dictionary.to_pylist()
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(names)))
    starts = np.concatenate([[0], bounds[:-1]])
    groups = [(names[i], order[starts[i] : bounds[i]]) for i in range(len(names))]
    return sorted(groups, key=lambda item: (item[0] == NONE_LABEL, item[0]))


# ---------------------------------------------------------------- the computation


def _counts(table: pa.Table, by: list[tuple[str, str]]) -> list[dict]:
    columns = [column for _, column in by]
    unique_columns = list(dict.fromkeys(columns))
    grouped = table.group_by(unique_columns).aggregate([("duration_s", "count"), ("duration_s", "sum")])
    total = max(table.num_rows, 1)
    rows = []
    for row in grouped.to_pylist():
        out = {label: row[column] for label, column in by}
        out["examples"] = row["duration_s_count"]
        out["hours"] = (row["duration_s_sum"] or 0.0) / 3600.0
        out["share"] = row["duration_s_count"] / total
        rows.append(out)
    return sorted(rows, key=lambda r: _sort_key(r, [label for label, _ in by]))


def _split_totals(table: pa.Table) -> list[dict]:
    grouped = table.group_by(["split", "source_type"]).aggregate([("duration_s", "count"), ("duration_s", "sum")]).to_pylist()
    rows = [{"split": r["split"], "source_type": r["source_type"], "examples": r["duration_s_count"], "hours": (r["duration_s_sum"] or 0.0) / 3600.0}
            for r in grouped]
    return sorted(rows, key=lambda r: _sort_key(r, ["split", "source_type"]))


def _distributions(table: pa.Table) -> list[Distribution]:
    values = {m: _floats(table, m) for m in METRICS if m != "snr_error_db"}
    values["snr_error_db"] = values["snr_measured_db"] - _floats(table, "snr_target_db")
    values = {m: values[m] for m in METRICS}
    edges = {m: _edges(v) for m, v in values.items()}
    bins = {m: _bin_index(v, edges[m]) for m, v in values.items()}
    result = [_distribution("all", "all", m, v, edges[m], bins[m]) for m, v in values.items()]
    for dimension in DIMENSIONS:
        for group, index in _grouped_indices(_labels(table, dimension)):
            result.extend(_distribution(dimension, group, m, v[index], edges[m], bins[m][index]) for m, v in values.items())
    return result


def _coverage(table: pa.Table) -> list[dict]:
    keys = ["split", "source_type", "clean_corpus"]
    per_group = table.group_by(keys + ["group_key"]).aggregate([("duration_s", "count")])
    spread = {tuple(r[k] for k in keys): r for r in per_group.group_by(keys).aggregate(
        [("group_key", "count"), ("duration_s_count", "min"), ("duration_s_count", "max")]).to_pylist()}
    rows = []
    for r in table.group_by(keys).aggregate([("clean_source_id", "count_distinct"), ("duration_s", "count"), ("duration_s", "sum")]).to_pylist():
        s = spread[tuple(r[k] for k in keys)]
        rows.append({"split": r["split"], "source_type": r["source_type"], "corpus": r["clean_corpus"], "groups": s["group_key_count"],
                     "recordings": r["clean_source_id_count_distinct"], "examples": r["duration_s_count"],
                     "hours": (r["duration_s_sum"] or 0.0) / 3600.0,
                     "examples_per_group_min": s["duration_s_count_min"], "examples_per_group_max": s["duration_s_count_max"]})
    return sorted(rows, key=lambda r: _sort_key(r, ["split", "source_type", "corpus"]))


def _noise_coverage(table: pa.Table) -> list[dict]:
    keys = ["split", "noise_type"]
    rows = [{"split": r["split"], "noise_type": r["noise_type"], "recordings": r["noise_source_id_count_distinct"],
             "corpora": r["noise_corpus_count_distinct"], "examples": r["duration_s_count"], "hours": (r["duration_s_sum"] or 0.0) / 3600.0}
            for r in table.group_by(keys).aggregate([("noise_source_id", "count_distinct"), ("noise_corpus", "count_distinct"),
                                                     ("duration_s", "count"), ("duration_s", "sum")]).to_pylist()]
    return sorted(rows, key=lambda r: _sort_key(r, keys))


def _source_status(row: dict, used: set) -> str:
    if row["error"]:
        return "failed"
    if row["excluded_reason"]:
        return "excluded"
    return "used" if row["source_id"] in used else "unused"


def _sources(sources: list[dict], used: set) -> list[dict]:
    summary: dict[tuple, dict] = {}
    for row in sources:
        key = (row["source_type"], row["corpus"])
        entry = summary.setdefault(key, {"source_type": key[0], "corpus": key[1], "recordings": 0, "used": 0, "unused": 0, "excluded": 0,
                                         "failed": 0, "hours_usable": 0.0, "groups_usable": set(), "groups_used": set()})
        status = _source_status(row, used)
        entry["recordings"] += 1
        entry[status] += 1
        if status in ("used", "unused"):
            entry["hours_usable"] += (row["duration_s"] or 0.0) / 3600.0
            entry["groups_usable"].add(row["group_key"])
        if status == "used":
            entry["groups_used"].add(row["group_key"])
    rows = []
    for key in sorted(summary, key=lambda k: tuple(str(v) for v in k)):
        entry = summary[key]
        entry["groups_usable"], entry["groups_used"] = len(entry["groups_usable"]), len(entry["groups_used"])
        rows.append(entry)
    return rows


def _stationarity(sources: list[dict], used: set, config: dict | None) -> dict:
    noise = [r for r in sources if r["source_type"] == "noise"]
    threshold = ((config or {}).get("filters") or {}).get("stationarity_threshold_db")
    per_type: dict[str, dict[str, list]] = {}
    for row in noise:
        per_type.setdefault(row["noise_type"] or NONE_LABEL, {"used": [], "unused": [], "excluded": [], "failed": []})[
            _source_status(row, used)].append(row)
    rows = []
    for noise_type in sorted(per_type):
        groups = per_type[noise_type]
        entry = {"noise_type": noise_type, "recordings": sum(len(v) for v in groups.values()), **{k: len(v) for k, v in groups.items()}}
        for status in ("used", "excluded"):
            scores = np.array([r["stationarity_db"] for r in groups[status] if r["stationarity_db"] is not None], dtype=float)
            scores = scores[np.isfinite(scores)]
            entry[f"{status}_min_db"] = float(scores.min()) if scores.size else None
            entry[f"{status}_median_db"] = float(np.median(scores)) if scores.size else None
            entry[f"{status}_max_db"] = float(scores.max()) if scores.size else None
        rows.append(entry)
    scores = {status: np.array([r["stationarity_db"] if r["stationarity_db"] is not None else np.nan for r in noise
                                if _source_status(r, used) == status], dtype=float) for status in ("used", "unused", "excluded")}
    everything = np.concatenate(list(scores.values()) + ([np.array([threshold], dtype=float)] if threshold is not None else []))
    edges = _edges(everything)
    excluded = sorted(({"noise_type": r["noise_type"], "corpus": r["corpus"], "path": r["path"], "source_id": r["source_id"],
                        "stationarity_db": r["stationarity_db"], "reason": r["excluded_reason"]}
                       for r in noise if r["excluded_reason"] and not r["error"]), key=lambda r: (str(r["noise_type"]), r["path"]))
    return {"threshold_db": threshold, "per_noise_type": rows,
            "distributions": [_distribution("stationarity", status, "stationarity_db", v, edges) for status, v in scores.items()],
            "excluded": excluded}


def _output_sample_rate_hz(table: pa.Table, config: dict | None) -> int | None:
    """The rate the examples were written at (the highest, should a manifest mix several), else the config's."""
    rates = _distinct(table, "sample_rate")
    configured = ((config or {}).get("audio") or {}).get("sample_rate")
    return int(rates[-1]) if rates else int(configured) if configured else None


def _bandwidth(table: pa.Table, sources: list[dict], config: dict | None) -> tuple[dict, list[str]]:
    """(effective bandwidth of the clean examples per corpus x split and per corpus, band-limited warnings)."""
    rate_hz = _output_sample_rate_hz(table, config)
    if rate_hz is None:
        return {"output_sample_rate_hz": None, "nyquist_hz": None, "full_band_min_hz": None,
                "full_band_min_nyquist_fraction": FULL_BAND_MIN_NYQUIST_FRACTION, "per_corpus_split": [], "per_corpus": [], "distributions": []}, []
    native = {r["source_id"]: r["sample_rate"] for r in sources}
    keys = ["clean_corpus", "split", "clean_source_id", "clean_bandwidth_hz"]
    rows = [{**r, "examples": r["duration_s_count"], "clean_sample_rate": native.get(r["clean_source_id"])}
            for r in table.group_by(keys).aggregate([("duration_s", "count")]).to_pylist()]
    per_corpus = summarize_bandwidth(rows, rate_hz, per_split=False)
    nyquist_khz = nyquist_hz(rate_hz) / 1000.0
    khz = np.minimum(_floats(table, "clean_bandwidth_hz") / 1000.0, nyquist_khz)
    edges = np.linspace(0.0, nyquist_khz, HIST_BINS + 1)
    bins = _bin_index(khz, edges)
    summary = {"output_sample_rate_hz": rate_hz, "nyquist_hz": nyquist_hz(rate_hz), "full_band_min_hz": full_band_min_hz(rate_hz),
               "full_band_min_nyquist_fraction": FULL_BAND_MIN_NYQUIST_FRACTION,
               "per_corpus_split": [asdict(s) for s in summarize_bandwidth(rows, rate_hz)], "per_corpus": [asdict(s) for s in per_corpus],
               "distributions": [_distribution("clean_corpus", corpus, "clean_bandwidth_khz", khz[index], edges, bins[index])
                                 for corpus, index in _grouped_indices(_labels(table, "clean_corpus"))]}
    return summary, [bandlimited_warning(s) for s in per_corpus if s.bandlimited]


def _snr(table: pa.Table, tolerance_db: float) -> dict:
    error = _floats(table, "snr_measured_db") - _floats(table, "snr_target_db")
    bad = ~(np.abs(error) <= tolerance_db)  # NaN counts as a departure
    index = np.flatnonzero(bad)
    worst = index[np.argsort(-np.nan_to_num(np.abs(error[index]), nan=np.inf), kind="stable")][:200]
    picked = table.select(["example_id", "split", "source_type", "noise_type", "snr_definition", "snr_target_db", "snr_measured_db"]).take(worst).to_pylist()
    for row, i in zip(picked, worst):
        row["error_db"] = float(error[i])
    finite = np.abs(error[np.isfinite(error)])
    return {"tolerance_db": tolerance_db, "count": int(index.size), "max_abs_error_db": float(finite.max()) if finite.size else None,
            "worst": picked}


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


def _leaks(table: pa.Table) -> list[Leak]:
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


def expected_split_counts(report: dict | None, config: dict | None) -> dict[str, int]:
    """Examples per split the build was asked for (config splits.examples or .hours), else what build.json counted."""
    splits = (config or {}).get("splits") or {}
    if splits.get("examples"):
        return {k: int(v) for k, v in splits["examples"].items()}
    clip = ((config or {}).get("audio") or {}).get("clip_duration_s")
    if splits.get("hours") and clip:
        return {k: int(round(float(h) * 3600.0 / float(clip))) for k, h in splits["hours"].items()}
    counted = ((report or {}).get("counts") or {}).get("examples_by_split")
    return {k: int(v) for k, v in counted.items()} if counted else {}


def _missing(table: pa.Table, sources: list[dict], expected: dict[str, int], limit: int) -> tuple[list[str], list[str]]:
    """(hard problems, warnings) about examples that are missing, duplicated or point at unknown sources."""
    problems, warnings = [], []

    def listed(items: list[str]) -> str:
        return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")

    ids = table.column("example_id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        counted = table.group_by(["example_id"]).aggregate([("split", "count")])
        dupes = counted.filter(pc.greater(counted.column("split_count"), 1)).column("example_id").to_pylist()
        problems.append(f"duplicate example ids ({len(dupes)}): {listed(sorted(dupes))}")
    splits = table.column("split")
    indexes = table.column("index")
    all_indexes = pc.fill_null(indexes, -1).to_numpy()
    for split, rows in _grouped_indices(pc.fill_null(splits, NONE_LABEL)):
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
                            f"{listed([f'{split}-{i:08d}' for i in absent.tolist()])}")
        if extra.size:
            problems.append(f"split '{split}': {extra.size} examples with an index outside 0..{want - 1}: {listed([str(i) for i in extra.tolist()])}")
    for split in sorted(set(expected) - set(pc.unique(splits).to_pylist())):
        if expected[split]:
            problems.append(f"split '{split}': all {expected[split]} examples missing from the manifest")
    formatted = pc.binary_join_element_wise(splits, pc.utf8_lpad(indexes.cast(pa.string()), 8, "0"), "-")
    malformed = table.filter(pc.invert(pc.fill_null(pc.equal(ids, formatted), False))).column("example_id").to_pylist()
    if malformed:
        problems.append(f"example ids that are not '<split>-<index:08d>' ({len(malformed)}): {listed([str(m) for m in malformed])}")
    known = pa.array([r["source_id"] for r in sources], pa.string())
    status = {r["source_id"]: ("failed" if r["error"] else "excluded" if r["excluded_reason"] else None) for r in sources}
    for column in ("clean_source_id", "noise_source_id"):
        used = pc.unique(table.column(column))
        dangling = used.filter(pc.invert(pc.is_in(used, value_set=known))).to_pylist()
        if dangling:
            problems.append(f"{column} not in sources.parquet ({len(dangling)}): {listed([str(d) for d in dangling])}")
        flagged = sorted(f"{sid} ({status[sid]})" for sid in used.to_pylist() if status.get(sid))
        if flagged:
            warnings.append(f"{column}: examples use recordings that sources.parquet marks failed/excluded ({len(flagged)}): {listed(flagged)}")
    return problems, warnings


def _distinct(table: pa.Table, name: str) -> list:
    return sorted(v for v in pc.unique(table.column(name)).to_pylist() if v is not None)


def audit(out: str, by: Iterable[str] | str | None = None, snr_tolerance_db: float = SNR_TOLERANCE_DB, limit: int = LIST_LIMIT) -> AuditResult:
    """Audit the build folder `out` from its manifests (see the module docstring)."""
    pairs = resolve_by(by)
    examples_path, sources_path = join(out, "examples.parquet"), join(out, "sources.parquet")
    columns = list(dict.fromkeys(EXAMPLE_COLUMNS + [column for _, column in pairs]))
    table = read_manifest(examples_path, "examples", columns=columns)
    sources = read_manifest(sources_path, "sources", columns=SOURCE_COLUMNS).to_pylist()
    report, config = build_info(out)
    warnings = [] if report else [f"{join(out, 'build.json')}: missing; the build did not finish (config hash and expected counts unavailable)"]
    used = set(pc.unique(table.column("clean_source_id")).to_pylist()) | set(pc.unique(table.column("noise_source_id")).to_pylist())
    durations = _floats(table, "duration_s")
    hours = float(np.nansum(durations)) / 3600.0
    synthetic = pc.fill_null(table.column("synthetic"), False).to_numpy(zero_copy_only=False).astype(bool)
    header = {
        "build": out,
        "schema_version": read_metadata(examples_path).get("version"),
        "config_hash": (report or {}).get("output_hash"),
        "examples": table.num_rows,
        "hours": hours,
        "splits": _distinct(table, "split"),
        "shards": pc.count_distinct(table.column("shard")).as_py(),
        "sample_rate": _distinct(table, "sample_rate"),
        "channels": _distinct(table, "channels"),
        "audio_format": _distinct(table, "audio_format"),
        "snr_definition": _distinct(table, "snr_definition"),
        "synthetic_examples_share": float(synthetic.mean()) if synthetic.size else 0.0,
        "synthetic_hours_share": float(np.nansum(durations[synthetic]) / 3600.0 / hours) if hours else 0.0,
        "sources": len(sources),
    }
    missing, more_warnings = _missing(table, sources, expected_split_counts(report, config), limit)
    snr = _snr(table, snr_tolerance_db)
    bandwidth, bandwidth_warnings = _bandwidth(table, sources, config)
    if snr["count"]:
        more_warnings.append(f"{snr['count']} examples whose measured SNR departs from target by more than {snr_tolerance_db} dB "
                             f"(max {snr['max_abs_error_db']:.3f} dB)")
    more_warnings.extend(bandwidth_warnings)
    noise_coverage = _noise_coverage(table)
    more_warnings.extend(noise_type_gap_warnings(noise_types_by_split(noise_coverage)))
    more_warnings.extend(duplicate_warnings(sources))
    table = with_content_columns(table, sources)
    return AuditResult(
        out=out, header=header, by=[label for label, _ in pairs], counts=_counts(table, pairs), split_totals=_split_totals(table),
        distributions=_distributions(table), coverage=_coverage(table), noise_coverage=noise_coverage,
        sources=_sources(sources, used), stationarity=_stationarity(sources, used, config),
        bandwidth=bandwidth, snr=snr, leaks=_leaks(table),
        missing=missing, warnings=warnings + more_warnings, config=config,
    )


# ---------------------------------------------------------------- rendering: shared sections


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""
    plots: list[str] = field(default_factory=list)  # names of the PNGs that belong here (HTML only)


def sparkline(counts: Sequence[int]) -> str:
    """Counts as a row of block characters (blank: empty bin)."""
    top = max(counts) if len(counts) else 0
    if not top:
        return " " * len(counts)
    return "".join(" " if c == 0 else SPARK[min(len(SPARK) - 1, int(math.ceil(c / top * len(SPARK))) - 1)] for c in counts)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):  # distinct values (rates, formats): no thousands separators
        return ", ".join(str(v) if isinstance(v, (int, np.integer)) else fmt(v, digits) for v in value) or "-"
    return str(value)


def _pct(share: float) -> str:
    return f"{100.0 * share:.1f}%"


def _khz(value_hz: float | None) -> str:
    return fmt(None if value_hz is None else value_hz / 1000.0, 1)


def _bandwidth_section(bandwidth: dict) -> Section:
    rate_hz = bandwidth["output_sample_rate_hz"]
    note = "output sample rate unknown" if rate_hz is None else (
        f"band-limited: effective bandwidth below {_khz(bandwidth['full_band_min_hz'])} kHz = "
        f"{bandwidth['full_band_min_nyquist_fraction']} x the output Nyquist ({_khz(bandwidth['nyquist_hz'])} kHz at {rate_hz} Hz; "
        f"a recording's bandwidth counts at most that); keep only full-band material with "
        f"filters.min_bandwidth_hz = {math.ceil(bandwidth['full_band_min_hz'])}")
    return Section("Clean bandwidth per corpus and split (effective bandwidth, kHz)",
                   ["corpus", "split", "examples", "min", "median", "max", "band-limited", "native rates (Hz)"],
                   [[r["corpus"], r["split"], r["examples"], *(_khz(r[k]) for k in ("min_hz", "median_hz", "max_hz")),
                     f"{_pct(r['bandlimited_share'])} ({r['bandlimited']:,})", r["native_sample_rates_hz"]] for r in bandwidth["per_corpus_split"]],
                   note=note, plots=["bandwidth"])


def status_line(result: AuditResult) -> str:
    if result.failed:
        parts = [f"{len(result.leaks)} leak(s) between splits"] if result.leaks else []
        parts += [f"{len(result.missing)} missing/integrity problem(s)"] if result.missing else []
        return f"FAIL: {'; '.join(parts)}"
    return f"PASS: no leakage between splits, nothing missing ({len(result.warnings)} warning(s))"


def sections(result: AuditResult, limit: int = LIST_LIMIT) -> list[Section]:
    """The report as titled tables, in reading order; every renderer draws these."""
    h = result.header
    out = [Section("Build", ["field", "value"], [
        ["build folder", h["build"]], ["schema version", h["schema_version"]], ["config hash", h["config_hash"]],
        ["examples", h["examples"]], ["hours", f"{h['hours']:.3f}"], ["splits", h["splits"]], ["shards", h["shards"]],
        ["sample rate (Hz)", ", ".join(str(r) for r in h["sample_rate"])], ["channels", h["channels"]], ["format", h["audio_format"]],
        ["SNR definition", h["snr_definition"]],
        ["synthetic share", f"{_pct(h['synthetic_examples_share'])} of examples, {_pct(h['synthetic_hours_share'])} of hours"],
        ["source recordings indexed", h["sources"]], ["status", status_line(result)],
    ])]
    if result.leaks:
        out.append(Section("LEAKAGE between splits (hard failure)", ["key", "id", "examples per split", "example ids"],
                           [[leak.key, leak.value, ", ".join(f"{s}: {n}" for s, n in sorted(leak.splits.items())),
                             "; ".join(f"{s}: {' '.join(ids)}" for s, ids in sorted(leak.examples.items()))] for leak in result.leaks]))
    if result.missing:
        out.append(Section("MISSING or inconsistent examples (hard failure)", ["problem"], [[p] for p in result.missing]))
    if result.warnings:
        out.append(Section("Warnings", ["warning"], [[w] for w in result.warnings]))
    out.append(Section("Totals per split and source type", ["split", "source type", "examples", "hours"],
                       [[r["split"], r["source_type"], r["examples"], f"{r['hours']:.3f}"] for r in result.split_totals], plots=["hours"]))
    out.append(Section(f"Counts by {', '.join(result.by)}", [*result.by, "examples", "hours", "share"],
                       [[*(r[b] for b in result.by), r["examples"], f"{r['hours']:.3f}", _pct(r["share"])] for r in result.counts],
                       plots=["noise_types"]))
    by_metric: dict[str, list[Distribution]] = {}
    for d in result.distributions:
        by_metric.setdefault(d.metric, []).append(d)
    for metric, dists in by_metric.items():
        edges = dists[0].edges
        out.append(Section(f"Distribution: {METRICS[metric]}", ["group", "n", "mean", "std", "min", "p5", "p50", "p95", "max", "histogram"],
                           [[d.group if d.dimension == "all" else f"{d.dimension}={d.group}", d.count,
                         *(fmt(v, 4 if metric == "snr_error_db" else 2) for v in (d.mean, d.std, d.min, d.p5, d.p50, d.p95, d.max)),
                         sparkline(d.counts)] for d in dists],
                           note=f"histogram: {len(edges) - 1} bins from {edges[0]:.4g} to {edges[-1]:.4g}", plots=[metric]))
    out.append(Section("Group coverage (speakers / artists per split)",
                       ["split", "source type", "corpus", "groups", "recordings", "examples", "hours", "examples/group"],
                       [[r["split"], r["source_type"], r["corpus"], r["groups"], r["recordings"], r["examples"], f"{r['hours']:.3f}",
                         f"{r['examples_per_group_min']}-{r['examples_per_group_max']}"] for r in result.coverage]))
    out.append(_bandwidth_section(result.bandwidth))
    out.append(Section("Noise coverage per split", ["split", "noise type", "recordings", "corpora", "examples", "hours"],
                       [[r["split"], r["noise_type"], r["recordings"], r["corpora"], r["examples"], f"{r['hours']:.3f}"] for r in result.noise_coverage]))
    out.append(Section("Source recordings", ["source type", "corpus", "recordings", "used", "unused", "excluded", "failed", "usable hours",
                                             "groups used/usable"],
                       [[r["source_type"], r["corpus"], r["recordings"], r["used"], r["unused"], r["excluded"], r["failed"],
                         f"{r['hours_usable']:.3f}", f"{r['groups_used']}/{r['groups_usable']}"] for r in result.sources],
                       note="unused: usable recordings no example draws from"))
    st = result.stationarity
    dists = {d.group: d for d in st["distributions"]}
    out.append(Section("Noise stationarity (dB, lower is more stationary)",
                       ["noise type", "recordings", "used", "unused", "excluded", "failed", "used min/median/max", "excluded min/median/max"],
                       [[r["noise_type"], r["recordings"], r["used"], r["unused"], r["excluded"], r["failed"],
                         "/".join(fmt(r[f"used_{k}_db"]) for k in ("min", "median", "max")),
                         "/".join(fmt(r[f"excluded_{k}_db"]) for k in ("min", "median", "max"))] for r in st["per_noise_type"]],
                       note=f"threshold (filters.stationarity_threshold_db): {fmt(st['threshold_db'])} dB"))
    edges = st["distributions"][0].edges
    out.append(Section("Noise stationarity distribution (dB)", ["recordings", "n", "missing", "min", "p50", "max", "histogram"],
                       [[d.group, d.count, d.missing, d.min, d.p50, d.max, sparkline(d.counts)] for d in st["distributions"]],
                       note=f"histogram: {len(edges) - 1} bins from {edges[0]:.4g} to {edges[-1]:.4g} dB", plots=["stationarity"]))
    if st["excluded"]:
        shown = st["excluded"][:limit]
        out.append(Section("Excluded noise recordings", ["noise type", "path", "score (dB)", "reason"],
                           [[r["noise_type"], r["path"], r["stationarity_db"], r["reason"]] for r in shown],
                           note=f"{len(st['excluded']) - len(shown)} more in --format json" if len(st["excluded"]) > len(shown) else ""))
    snr = result.snr
    shown = snr["worst"][:limit]
    out.append(Section(f"SNR departures (|measured - target| > {snr['tolerance_db']} dB)",
                       ["example", "split", "source type", "noise type", "target", "measured", "error"],
                       [[r["example_id"], r["split"], r["source_type"], r["noise_type"], r["snr_target_db"], r["snr_measured_db"], r["error_db"]]
                        for r in shown],
                       note=f"{snr['count']} departures; max |error| {fmt(snr['max_abs_error_db'], 4)} dB"
                       + (f"; worst {len(shown)} listed" if snr["count"] > len(shown) else "")))
    return out


def _cells(section: Section) -> list[list[str]]:
    return [[fmt(v) for v in row] for row in section.rows]


def render_text(result: AuditResult, limit: int = LIST_LIMIT) -> str:
    """The terminal report: aligned plain-text tables."""
    lines = []
    for section in sections(result, limit):
        cells = _cells(section)
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(section.headers)]
        lines.append(f"== {section.title} ==")
        lines.append("  ".join(h.ljust(w) for h, w in zip(section.headers, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)
        if not cells:
            lines.append("(none)")
        if section.note:
            lines.append(section.note)
        lines.append("")
    lines.append(status_line(result))
    return "\n".join(lines) + "\n"


def render_markdown(result: AuditResult, limit: int = LIST_LIMIT) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# Corpus audit: {result.out}", "", f"**{status_line(result)}**", ""]
    for section in sections(result, limit):
        lines += [f"## {section.title}", "", "| " + " | ".join(section.headers) + " |", "|" + "---|" * len(section.headers)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _cells(section)]
        lines += (["", f"_{section.note}_"] if section.note else []) + [""]
    return "\n".join(lines)


def render_json(result: AuditResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- rendering: HTML with PNG plots


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _stairs(ax, dists: list[Distribution], title: str) -> None:
    for d in dists:
        if d.count:
            ax.stairs(d.counts, d.edges, label=f"{d.group} (n={d.count:,})")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("examples")
    _legend(ax)


def plots(result: AuditResult) -> dict[str, bytes]:
    """name -> PNG bytes of every plot of the HTML report (matplotlib, Agg canvas, no pyplot state)."""
    from matplotlib.figure import Figure

    images = {}
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    splits = sorted({r["split"] for r in result.split_totals})
    bottom = np.zeros(len(splits))
    for source_type in sorted({r["source_type"] for r in result.split_totals}):
        heights = np.array([sum(r["hours"] for r in result.split_totals if r["split"] == s and r["source_type"] == source_type) for s in splits])
        ax.bar(splits, heights, bottom=bottom, label=source_type)
        bottom += heights
    ax.set_ylabel("hours")
    ax.set_title("hours per split and source type", fontsize=9)
    _legend(ax)
    images["hours"] = _png(fig)

    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    types = sorted({r["noise_type"] for r in result.noise_coverage}, key=str)
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        heights = [sum(r["hours"] for r in result.noise_coverage if r["split"] == split and r["noise_type"] == t) for t in types]
        ax.bar(np.arange(len(types)) + i * width, heights, width=width, label=split)
    ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2, [str(t) for t in types], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("hours")
    ax.set_title("hours per noise type and split", fontsize=9)
    _legend(ax)
    images["noise_types"] = _png(fig)

    for metric, label in METRICS.items():
        fig = Figure(figsize=(9, 3.2), layout="constrained")
        for i, dimension in enumerate(DIMENSIONS):
            ax = fig.add_subplot(1, 2, i + 1)
            _stairs(ax, [d for d in result.distributions if d.metric == metric and d.dimension == dimension], f"{label} by {dimension}")
            ax.set_xlabel(label, fontsize=8)
        images[metric] = _png(fig)

    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    _stairs(ax, result.stationarity["distributions"], "stationarity of the noise recordings")
    ax.set_ylabel("recordings")
    ax.set_xlabel("stationarity (dB)", fontsize=8)
    if result.stationarity["threshold_db"] is not None:
        ax.axvline(result.stationarity["threshold_db"], color="k", linestyle="--", linewidth=1)
    images["stationarity"] = _png(fig)

    bandwidth = result.bandwidth
    if bandwidth["distributions"]:
        fig = Figure(figsize=(7, 3.2), layout="constrained")
        ax = fig.add_subplot()
        _stairs(ax, bandwidth["distributions"], "effective bandwidth of the clean examples per corpus")
        ax.set_xlabel("effective bandwidth (kHz)", fontsize=8)
        ax.axvline(bandwidth["full_band_min_hz"] / 1000.0, color="k", linestyle="--", linewidth=1)
        images["bandwidth"] = _png(fig)
    return images


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f0f0f0; }
td.spark { font-family: monospace; white-space: pre; }
.fail { color: #b00; font-weight: bold; } .pass { color: #070; font-weight: bold; }
.note { color: #555; font-size: 0.85em; } img { max-width: 100%; }
"""


def render_html(result: AuditResult, images: dict[str, bytes], image_files: dict[str, str] | None = None, limit: int = 200) -> str:
    """A self-contained HTML page: every PNG is embedded as a data URI (`image_files` names copies on disk)."""
    esc = html.escape
    status = status_line(result)
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>Corpus audit: {esc(result.out)}</title>",
             f"<style>{HTML_STYLE}</style></head><body>", f"<h1>Corpus audit: {esc(result.out)}</h1>",
             f"<p class=\"{'fail' if result.failed else 'pass'}\">{esc(status)}</p>"]
    for section in sections(result, limit):
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in section.headers) + "</tr></thead><tbody>")
        for row in _cells(section):
            parts.append("<tr>" + "".join(("<td class=\"spark\">" if h == "histogram" else "<td>") + f"{esc(c)}</td>"
                                          for h, c in zip(section.headers, row)) + "</tr>")
        parts.append("</tbody></table>")
        if section.note:
            parts.append(f"<p class=\"note\">{esc(section.note)}</p>")
        for name in section.plots:
            if name in images:
                data = base64.b64encode(images[name]).decode("ascii")
                source = f" (also {esc(image_files[name])})" if image_files and name in image_files else ""
                parts.append(f"<figure><img alt=\"{esc(name)}\" src=\"data:image/png;base64,{data}\">"
                             f"<figcaption class=\"note\">{esc(name)}{source}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(result: AuditResult, path: str | None = None) -> tuple[str, list[str]]:
    """Write the HTML report (default OUT/audit/report.html) and its PNGs next to it -> (html path, png paths)."""
    path = path or join(result.out, "audit", "report.html")
    folder, stem = posixpath.dirname(path), posixpath.splitext(posixpath.basename(path))[0]
    images = plots(result)
    files = {name: join(folder, f"{stem}-{name}.png") if folder else f"{stem}-{name}.png" for name in images}
    for name, data in images.items():
        atomic_write_bytes(files[name], data)
    atomic_write_bytes(path, render_html(result, images, {n: posixpath.basename(f) for n, f in files.items()}).encode("utf-8"))
    return path, list(files.values())
