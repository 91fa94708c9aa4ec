"""The audit's tables, each computed from the examples manifest (a pyarrow table) and/or the
sources manifest (a list of row dicts): counts and hours, metric distributions, group and noise
coverage, source recordings, noise stationarity, clean bandwidth and SNR departures.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pyarrow as pa

from ..bandwidth import FULL_BAND_MIN_NYQUIST_FRACTION, bandlimited_warning, full_band_min_hz, nyquist_hz, summarize_bandwidth
from .result import DIMENSIONS, METRICS, Distribution
from .stats import HIST_BINS, NONE_LABEL, bin_index, distinct, distribution, floats, grouped_indices, histogram_edges, labels, sort_key


def count_rows(table: pa.Table, by: list[tuple[str, str]]) -> list[dict]:
    """Examples, hours and share of all examples per combination of the --by (label, column) pairs."""
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
    return sorted(rows, key=lambda r: sort_key(r, [label for label, _ in by]))


def split_total_rows(table: pa.Table) -> list[dict]:
    """Examples and hours per split x source type."""
    grouped = table.group_by(["split", "source_type"]).aggregate([("duration_s", "count"), ("duration_s", "sum")]).to_pylist()
    rows = [{"split": r["split"], "source_type": r["source_type"], "examples": r["duration_s_count"], "hours": (r["duration_s_sum"] or 0.0) / 3600.0}
            for r in grouped]
    return sorted(rows, key=lambda r: sort_key(r, ["split", "source_type"]))


def metric_distributions(table: pa.Table) -> list[Distribution]:
    """Every METRICS column over all examples and per DIMENSIONS value, on histogram edges shared per metric."""
    values = {m: floats(table, m) for m in METRICS if m != "snr_error_db"}
    values["snr_error_db"] = values["snr_measured_db"] - floats(table, "snr_target_db")
    values = {m: values[m] for m in METRICS}
    edges = {m: histogram_edges(v) for m, v in values.items()}
    bins = {m: bin_index(v, edges[m]) for m, v in values.items()}
    result = [distribution("all", "all", m, v, edges[m], bins[m]) for m, v in values.items()]
    for dimension in DIMENSIONS:
        for group, index in grouped_indices(labels(table, dimension)):
            result.extend(distribution(dimension, group, m, v[index], edges[m], bins[m][index]) for m, v in values.items())
    return result


def group_coverage_rows(table: pa.Table) -> list[dict]:
    """Clean groups (speakers, artists), recordings, examples and hours per split x source type x corpus."""
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
    return sorted(rows, key=lambda r: sort_key(r, ["split", "source_type", "corpus"]))


def noise_coverage_rows(table: pa.Table) -> list[dict]:
    """Noise recordings, corpora, examples and hours per split x noise type."""
    keys = ["split", "noise_type"]
    rows = [{"split": r["split"], "noise_type": r["noise_type"], "recordings": r["noise_source_id_count_distinct"],
             "corpora": r["noise_corpus_count_distinct"], "examples": r["duration_s_count"], "hours": (r["duration_s_sum"] or 0.0) / 3600.0}
            for r in table.group_by(keys).aggregate([("noise_source_id", "count_distinct"), ("noise_corpus", "count_distinct"),
                                                     ("duration_s", "count"), ("duration_s", "sum")]).to_pylist()]
    return sorted(rows, key=lambda r: sort_key(r, keys))


def _source_status(row: dict, used: set) -> str:
    """"failed", "excluded", "used" (by some example; `used`: source ids) or "unused"."""
    if row["error"]:
        return "failed"
    if row["excluded_reason"]:
        return "excluded"
    return "used" if row["source_id"] in used else "unused"


def source_rows(sources: list[dict], used: set) -> list[dict]:
    """Per source type x corpus: recordings by status, usable hours, groups usable and used."""
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


def _stationarity_per_type(noise: list[dict], used: set) -> list[dict]:
    """Per noise type: recordings by status, min / median / max score (dB) of the used and the excluded."""
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
    return rows


def stationarity_summary(sources: list[dict], used: set, config: dict | None) -> dict:
    """Stationarity scores of the noise recordings: threshold, per noise type summary, distributions
    of the used, unused and excluded (histogram edges cover the threshold), and the excluded list."""
    noise = [r for r in sources if r["source_type"] == "noise"]
    threshold = ((config or {}).get("filters") or {}).get("stationarity_threshold_db")
    scores = {status: np.array([r["stationarity_db"] if r["stationarity_db"] is not None else np.nan for r in noise
                                if _source_status(r, used) == status], dtype=float) for status in ("used", "unused", "excluded")}
    everything = np.concatenate(list(scores.values()) + ([np.array([threshold], dtype=float)] if threshold is not None else []))
    edges = histogram_edges(everything)
    excluded = sorted(({"noise_type": r["noise_type"], "corpus": r["corpus"], "path": r["path"], "source_id": r["source_id"],
                        "stationarity_db": r["stationarity_db"], "reason": r["excluded_reason"]}
                       for r in noise if r["excluded_reason"] and not r["error"]), key=lambda r: (str(r["noise_type"]), r["path"]))
    return {"threshold_db": threshold, "per_noise_type": _stationarity_per_type(noise, used),
            "distributions": [distribution("stationarity", status, "stationarity_db", v, edges) for status, v in scores.items()],
            "excluded": excluded}


def _output_sample_rate_hz(table: pa.Table, config: dict | None) -> int | None:
    """The rate the examples were written at (the highest, should a manifest mix several), else the config's."""
    rates = distinct(table, "sample_rate")
    configured = ((config or {}).get("audio") or {}).get("sample_rate")
    return int(rates[-1]) if rates else int(configured) if configured else None


def bandwidth_summary(table: pa.Table, sources: list[dict], config: dict | None) -> tuple[dict, list[str]]:
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
    khz = np.minimum(floats(table, "clean_bandwidth_hz") / 1000.0, nyquist_khz)
    edges = np.linspace(0.0, nyquist_khz, HIST_BINS + 1)
    bins = bin_index(khz, edges)
    summary = {"output_sample_rate_hz": rate_hz, "nyquist_hz": nyquist_hz(rate_hz), "full_band_min_hz": full_band_min_hz(rate_hz),
               "full_band_min_nyquist_fraction": FULL_BAND_MIN_NYQUIST_FRACTION,
               "per_corpus_split": [asdict(s) for s in summarize_bandwidth(rows, rate_hz)], "per_corpus": [asdict(s) for s in per_corpus],
               "distributions": [distribution("clean_corpus", corpus, "clean_bandwidth_khz", khz[index], edges, bins[index])
                                 for corpus, index in grouped_indices(labels(table, "clean_corpus"))]}
    return summary, [bandlimited_warning(s) for s in per_corpus if s.bandlimited]


def snr_summary(table: pa.Table, tolerance_db: float) -> dict:
    """Examples whose |measured - target SNR| exceeds `tolerance_db` (or is NaN): count, max error, worst 200."""
    error = floats(table, "snr_measured_db") - floats(table, "snr_target_db")
    bad = ~(np.abs(error) <= tolerance_db)  # NaN counts as a departure
    index = np.flatnonzero(bad)
    worst = index[np.argsort(-np.nan_to_num(np.abs(error[index]), nan=np.inf), kind="stable")][:200]
    picked = table.select(["example_id", "split", "source_type", "noise_type", "snr_definition", "snr_target_db", "snr_measured_db"]).take(worst).to_pylist()
    for row, i in zip(picked, worst):
        row["error_db"] = float(error[i])
    finite = np.abs(error[np.isfinite(error)])
    return {"tolerance_db": tolerance_db, "count": int(index.size), "max_abs_error_db": float(finite.max()) if finite.size else None,
            "worst": picked}

