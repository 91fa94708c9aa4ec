"""The audit report as titled tables (`Section`s) in reading order, which every renderer draws, and
the value formatting they share (`fmt`, `sparkline`, `status_line`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .result import LIST_LIMIT, METRICS, AuditResult, Distribution

SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class Section:
    """One titled table of the report."""

    title: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""
    plots: list[str] = field(default_factory=list)  # names of the PNGs that belong here (HTML only)

    def cells(self) -> list[list[str]]:
        """The rows formatted with `fmt`."""
        return [[fmt(v) for v in row] for row in self.rows]


def sparkline(counts: Sequence[int]) -> str:
    """Counts as a row of block characters (blank: empty bin)."""
    top = max(counts) if len(counts) else 0
    if not top:
        return " " * len(counts)
    return "".join(" " if c == 0 else SPARK[min(len(SPARK) - 1, int(math.ceil(c / top * len(SPARK))) - 1)] for c in counts)


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: None as "-", bools as yes/no, ints with thousands separators, floats to `digits`."""
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
    """PASS, or FAIL with the number of leaks and missing/integrity problems."""
    if result.failed:
        parts = [f"{len(result.leaks)} leak(s) between splits"] if result.leaks else []
        parts += [f"{len(result.missing)} missing/integrity problem(s)"] if result.missing else []
        return f"FAIL: {'; '.join(parts)}"
    return f"PASS: no leakage between splits, nothing missing ({len(result.warnings)} warning(s))"


def _build_section(result: AuditResult) -> Section:
    h = result.header
    return Section("Build", ["field", "value"], [
        ["build folder", h["build"]], ["schema version", h["schema_version"]], ["config hash", h["config_hash"]],
        ["examples", h["examples"]], ["hours", f"{h['hours']:.3f}"], ["splits", h["splits"]], ["shards", h["shards"]],
        ["sample rate (Hz)", ", ".join(str(r) for r in h["sample_rate"])], ["channels", h["channels"]], ["format", h["audio_format"]],
        ["SNR definition", h["snr_definition"]],
        ["synthetic share", f"{_pct(h['synthetic_examples_share'])} of examples, {_pct(h['synthetic_hours_share'])} of hours"],
        ["source recordings indexed", h["sources"]], ["status", status_line(result)],
    ])


def _problem_sections(result: AuditResult) -> list[Section]:
    """Leaks and missing examples (hard failures), then warnings; only those that have rows."""
    out = []
    if result.leaks:
        out.append(Section("LEAKAGE between splits (hard failure)", ["key", "id", "examples per split", "example ids"],
                           [[leak.key, leak.value, ", ".join(f"{s}: {n}" for s, n in sorted(leak.splits.items())),
                             "; ".join(f"{s}: {' '.join(ids)}" for s, ids in sorted(leak.examples.items()))] for leak in result.leaks]))
    if result.missing:
        out.append(Section("MISSING or inconsistent examples (hard failure)", ["problem"], [[p] for p in result.missing]))
    if result.warnings:
        out.append(Section("Warnings", ["warning"], [[w] for w in result.warnings]))
    return out


def _count_sections(result: AuditResult) -> list[Section]:
    return [
        Section("Totals per split and source type", ["split", "source type", "examples", "hours"],
                [[r["split"], r["source_type"], r["examples"], f"{r['hours']:.3f}"] for r in result.split_totals], plots=["hours"]),
        Section(f"Counts by {', '.join(result.by)}", [*result.by, "examples", "hours", "share"],
                [[*(r[b] for b in result.by), r["examples"], f"{r['hours']:.3f}", _pct(r["share"])] for r in result.counts],
                plots=["noise_types"]),
    ]


def _distribution_sections(distributions: list[Distribution]) -> list[Section]:
    """One table per metric: a row per group with summary statistics and a sparkline histogram."""
    by_metric: dict[str, list[Distribution]] = {}
    for d in distributions:
        by_metric.setdefault(d.metric, []).append(d)
    out = []
    for metric, dists in by_metric.items():
        edges = dists[0].edges
        out.append(Section(f"Distribution: {METRICS[metric]}", ["group", "n", "mean", "std", "min", "p5", "p50", "p95", "max", "histogram"],
                           [[d.group if d.dimension == "all" else f"{d.dimension}={d.group}", d.count,
                             *(fmt(v, 4 if metric == "snr_error_db" else 2) for v in (d.mean, d.std, d.min, d.p5, d.p50, d.p95, d.max)),
                             sparkline(d.counts)] for d in dists],
                           note=f"histogram: {len(edges) - 1} bins from {edges[0]:.4g} to {edges[-1]:.4g}", plots=[metric]))
    return out


def _coverage_sections(result: AuditResult) -> list[Section]:
    """Clean group coverage, clean bandwidth, noise coverage and source recordings."""
    return [
        Section("Group coverage (speakers / artists per split)",
                ["split", "source type", "corpus", "groups", "recordings", "examples", "hours", "examples/group"],
                [[r["split"], r["source_type"], r["corpus"], r["groups"], r["recordings"], r["examples"], f"{r['hours']:.3f}",
                  f"{r['examples_per_group_min']}-{r['examples_per_group_max']}"] for r in result.coverage]),
        _bandwidth_section(result.bandwidth),
        Section("Noise coverage per split", ["split", "noise type", "recordings", "corpora", "examples", "hours"],
                [[r["split"], r["noise_type"], r["recordings"], r["corpora"], r["examples"], f"{r['hours']:.3f}"] for r in result.noise_coverage]),
        Section("Source recordings", ["source type", "corpus", "recordings", "used", "unused", "excluded", "failed", "usable hours",
                                      "groups used/usable"],
                [[r["source_type"], r["corpus"], r["recordings"], r["used"], r["unused"], r["excluded"], r["failed"],
                  f"{r['hours_usable']:.3f}", f"{r['groups_used']}/{r['groups_usable']}"] for r in result.sources],
                note="unused: usable recordings no example draws from"),
    ]


def _stationarity_sections(st: dict, limit: int) -> list[Section]:
    """Scores per noise type, their distribution, and (if any) the excluded recordings, `limit` of them."""
    out = [Section("Noise stationarity (dB, lower is more stationary)",
                   ["noise type", "recordings", "used", "unused", "excluded", "failed", "used min/median/max", "excluded min/median/max"],
                   [[r["noise_type"], r["recordings"], r["used"], r["unused"], r["excluded"], r["failed"],
                     "/".join(fmt(r[f"used_{k}_db"]) for k in ("min", "median", "max")),
                     "/".join(fmt(r[f"excluded_{k}_db"]) for k in ("min", "median", "max"))] for r in st["per_noise_type"]],
                   note=f"threshold (filters.stationarity_threshold_db): {fmt(st['threshold_db'])} dB")]
    edges = st["distributions"][0].edges
    out.append(Section("Noise stationarity distribution (dB)", ["recordings", "n", "missing", "min", "p50", "max", "histogram"],
                       [[d.group, d.count, d.missing, d.min, d.p50, d.max, sparkline(d.counts)] for d in st["distributions"]],
                       note=f"histogram: {len(edges) - 1} bins from {edges[0]:.4g} to {edges[-1]:.4g} dB", plots=["stationarity"]))
    if st["excluded"]:
        shown = st["excluded"][:limit]
        out.append(Section("Excluded noise recordings", ["noise type", "path", "score (dB)", "reason"],
                           [[r["noise_type"], r["path"], r["stationarity_db"], r["reason"]] for r in shown],
                           note=f"{len(st['excluded']) - len(shown)} more in --format json" if len(st["excluded"]) > len(shown) else ""))
    return out


def _snr_section(snr: dict, limit: int) -> Section:
    shown = snr["worst"][:limit]
    return Section(f"SNR departures (|measured - target| > {snr['tolerance_db']} dB)",
                   ["example", "split", "source type", "noise type", "target", "measured", "error"],
                   [[r["example_id"], r["split"], r["source_type"], r["noise_type"], r["snr_target_db"], r["snr_measured_db"], r["error_db"]]
                    for r in shown],
                   note=f"{snr['count']} departures; max |error| {fmt(snr['max_abs_error_db'], 4)} dB"
                   + (f"; worst {len(shown)} listed" if snr["count"] > len(shown) else ""))


def sections(result: AuditResult, limit: int = LIST_LIMIT) -> list[Section]:
    """The report as titled tables, in reading order; every renderer draws these."""
    return [
        _build_section(result), *_problem_sections(result), *_count_sections(result), *_distribution_sections(result.distributions),
        *_coverage_sections(result), *_stationarity_sections(result.stationarity, limit), _snr_section(result.snr, limit),
    ]
