"""`datagen diff`: what changed in the composition of a corpus between two builds (to review a config change).

`diff_builds(a, b)` audits both build folders (manifests only) and returns a `BuildDiff`: headline
figures, counts and hours per split x source type x noise type with deltas, distribution summaries
(mean and percentiles of SNR, loudness, duration, gains) with deltas, and the config keys that differ.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from .audit import AuditResult, audit
from .audit.result import METRICS, jsonable
from .audit.sections import fmt
from .text_table import aligned

DIFF_BY = ("split", "source_type", "noise_type")
DIST_FIELDS = ("count", "mean", "p5", "p50", "p95")


@dataclass
class BuildDiff:
    a: str
    b: str
    header: list[dict]  # field, a, b, delta (numeric fields)
    counts: list[dict]  # split, source_type, noise_type, examples_a/_b/_delta, hours_a/_b/_delta
    distributions: list[dict]  # dimension, group, metric, <field>_a/_b/_delta for DIST_FIELDS
    config: list[dict]  # key, a, b (flattened dotted keys; absent: None)
    status: list[dict]  # failed, leaks, missing of each build

    @property
    def identical(self) -> bool:
        return not (any(r["changed"] for r in self.header) or any(r["changed"] for r in self.counts)
                    or any(r["changed"] for r in self.distributions) or self.config)

    def to_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}


def _delta(a: Any, b: Any) -> float | None:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return None
    return b - a


def _changed(a: Any, b: Any, tolerance: float = 1e-9) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    return a != b


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {dotted.key: leaf}; lists of dicts are indexed (corpora[0].name)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def config_changes(a: dict | None, b: dict | None) -> list[dict]:
    fa, fb = flatten(a or {}), flatten(b or {})
    return [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


HEADER_FIELDS = ("schema_version", "config_hash", "examples", "hours", "shards", "sample_rate", "channels", "audio_format", "snr_definition",
                 "synthetic_examples_share", "synthetic_hours_share", "sources")


def _headline(ra: AuditResult, rb: AuditResult) -> list[dict]:
    def extra(result: AuditResult) -> dict:
        used = sum(r["used"] for r in result.stationarity["per_noise_type"])
        excluded = sum(r["excluded"] for r in result.stationarity["per_noise_type"])
        return {"noise_recordings_used": used, "noise_recordings_excluded": excluded,
                "clean_recordings_used": sum(r["used"] for r in result.sources if r["source_type"] != "noise"),
                "snr_departures": result.snr["count"], "leaks": len(result.leaks), "missing_problems": len(result.missing)}

    a, b = {**{k: ra.header[k] for k in HEADER_FIELDS}, **extra(ra)}, {**{k: rb.header[k] for k in HEADER_FIELDS}, **extra(rb)}
    return [{"field": k, "a": a[k], "b": b[k], "delta": _delta(a[k], b[k]), "changed": _changed(a[k], b[k])} for k in a]


def _count_rows(ra: AuditResult, rb: AuditResult) -> list[dict]:
    def index(result: AuditResult) -> dict[tuple, dict]:
        return {tuple(r[k] for k in DIFF_BY): r for r in result.counts}

    ia, ib = index(ra), index(rb)
    rows = []
    for key in sorted(set(ia) | set(ib), key=lambda k: tuple((v is None, str(v)) for v in k)):
        a, b = ia.get(key, {}), ib.get(key, {})
        row = dict(zip(DIFF_BY, key))
        for field in ("examples", "hours"):
            va, vb = a.get(field, 0), b.get(field, 0)
            row.update({f"{field}_a": va, f"{field}_b": vb, f"{field}_delta": vb - va})
        row["changed"] = row["examples_delta"] != 0 or abs(row["hours_delta"]) > 1e-12
        rows.append(row)
    return rows


def _distribution_rows(ra: AuditResult, rb: AuditResult) -> list[dict]:
    def index(result: AuditResult) -> dict[tuple, Any]:
        return {(d.dimension, d.group, d.metric): d for d in result.distributions}

    ia, ib = index(ra), index(rb)
    order = {m: i for i, m in enumerate(METRICS)}
    rows = []
    for key in sorted(set(ia) | set(ib), key=lambda k: (order.get(k[2], 99), k[0] != "all", k[0], str(k[1]))):
        a, b = ia.get(key), ib.get(key)
        row = {"dimension": key[0], "group": key[1], "metric": key[2]}
        changed = False
        for field in DIST_FIELDS:
            va, vb = getattr(a, field) if a else None, getattr(b, field) if b else None
            row.update({f"{field}_a": va, f"{field}_b": vb, f"{field}_delta": _delta(va, vb)})
            changed |= (va is None) != (vb is None) or (va is not None and _changed(float(va), float(vb), 1e-6))
        row["changed"] = changed
        rows.append(row)
    return rows


def diff_audits(ra: AuditResult, rb: AuditResult) -> BuildDiff:
    return BuildDiff(a=ra.out, b=rb.out, header=_headline(ra, rb), counts=_count_rows(ra, rb), distributions=_distribution_rows(ra, rb),
                     config=config_changes(ra.config, rb.config),
                     status=[{"build": r.out, "failed": r.failed, "leaks": len(r.leaks), "missing": len(r.missing)} for r in (ra, rb)])


def diff_builds(a: str, b: str) -> BuildDiff:
    """Compare the composition of build folders `a` and `b` (manifests only)."""
    return diff_audits(audit(a, by=DIFF_BY), audit(b, by=DIFF_BY))


# ---------------------------------------------------------------- rendering


def _signed(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:+,}"
    return f"{value:+.{digits}f}"


def _tables(diff: BuildDiff, show_all: bool) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = [("Builds", ["", "A", "B"], [["folder", diff.a, diff.b]] + [
        ["status", *("FAIL" if s["failed"] else "PASS" for s in diff.status)]])]
    tables.append(("Headline", ["field", "A", "B", "delta"],
                   [[r["field"], fmt(r["a"], 3), fmt(r["b"], 3), _signed(r["delta"], 3)] for r in diff.header if show_all or r["changed"]]))
    tables.append(("Counts and hours per split x source type x noise type",
                   ["split", "source type", "noise type", "examples A", "examples B", "delta", "hours A", "hours B", "delta h"],
                   [[fmt(r["split"]), fmt(r["source_type"]), fmt(r["noise_type"]), fmt(r["examples_a"]), fmt(r["examples_b"]),
                     _signed(r["examples_delta"]), f"{r['hours_a']:.3f}", f"{r['hours_b']:.3f}", _signed(r["hours_delta"], 3)]
                    for r in diff.counts if show_all or r["changed"]]))
    rows = []
    for r in diff.distributions:
        if not (show_all or r["changed"]):
            continue
        digits = 4 if r["metric"] == "snr_error_db" else 2
        rows.append([r["metric"], r["group"] if r["dimension"] == "all" else f"{r['dimension']}={r['group']}",
                     *(f"{fmt(r[f'{f}_a'], digits)} -> {fmt(r[f'{f}_b'], digits)} ({_signed(r[f'{f}_delta'], digits)})" for f in DIST_FIELDS)])
    tables.append(("Distributions (A -> B (delta))", ["metric", "group", *DIST_FIELDS], rows))
    tables.append(("Config keys that differ", ["key", "A", "B"],
                   [[c["key"], json.dumps(c["a"]), json.dumps(c["b"])] for c in diff.config]))
    return tables


def summary_line(diff: BuildDiff) -> str:
    if diff.identical:
        return "identical composition and config"
    changed = sum(r["changed"] for r in diff.counts)
    return (f"{changed} of {len(diff.counts)} split/source/noise cells changed, "
            f"{sum(r['changed'] for r in diff.distributions)} distribution rows changed, {len(diff.config)} config keys differ")


def render_text(diff: BuildDiff, show_all: bool = False) -> str:
    lines = []
    for title, headers, rows in _tables(diff, show_all):
        lines += [f"== {title} ==", *aligned(headers, rows, rule=True)] + ([] if rows else ["(no changes)"])
        lines.append("")
    lines.append(summary_line(diff))
    return "\n".join(lines) + "\n"


def render_markdown(diff: BuildDiff, show_all: bool = False) -> str:
    lines = [f"# Build diff: {diff.a} -> {diff.b}", "", f"**{summary_line(diff)}**", ""]
    for title, headers, rows in _tables(diff, show_all):
        lines += [f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows] or ["_(no changes)_"]
        lines.append("")
    return "\n".join(lines)


def render_json(diff: BuildDiff) -> str:
    return json.dumps(jsonable(diff.to_dict()), indent=2, sort_keys=True) + "\n"
