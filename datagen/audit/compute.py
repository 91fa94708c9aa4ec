"""`audit(out)`: reads a build's manifests (never audio) and assembles the `AuditResult`."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.io import join, read_manifest, read_metadata

from ..config import SNR_TOLERANCE_DB
from ..coverage import noise_type_gap_warnings, noise_types_by_split
from .inputs import EXAMPLE_COLUMNS, SOURCE_COLUMNS, build_info, expected_split_counts, resolve_by
from .leakage import duplicate_warnings, find_leaks, integrity_problems, with_content_columns
from .result import LIST_LIMIT, AuditResult
from .stats import distinct, floats
from .tables import (
    bandwidth_summary, count_rows, group_coverage_rows, metric_distributions, noise_coverage_rows, snr_summary, source_rows,
    split_total_rows, stationarity_summary,
)



def _header(out: str, examples_path: str, table: pa.Table, sources: list[dict], report: dict | None) -> dict:
    """The build's headline figures: schema, config hash, examples, hours, splits, formats, synthetic share."""
    durations = floats(table, "duration_s")
    hours = float(np.nansum(durations)) / 3600.0
    synthetic = pc.fill_null(table.column("synthetic"), False).to_numpy(zero_copy_only=False).astype(bool)
    return {
        "build": out,
        "schema_version": read_metadata(examples_path).get("version"),
        "config_hash": (report or {}).get("output_hash"),
        "examples": table.num_rows,
        "hours": hours,
        "splits": distinct(table, "split"),
        "shards": pc.count_distinct(table.column("shard")).as_py(),
        "sample_rate": distinct(table, "sample_rate"),
        "channels": distinct(table, "channels"),
        "audio_format": distinct(table, "audio_format"),
        "snr_definition": distinct(table, "snr_definition"),
        "synthetic_examples_share": float(synthetic.mean()) if synthetic.size else 0.0,
        "synthetic_hours_share": float(np.nansum(durations[synthetic]) / 3600.0 / hours) if hours else 0.0,
        "sources": len(sources),
    }


def audit(out: str, by: Iterable[str] | str | None = None, snr_tolerance_db: float = SNR_TOLERANCE_DB, limit: int = LIST_LIMIT) -> AuditResult:
    """Audit the build folder `out` from its manifests (see the `datagen.audit` docstring)."""
    pairs = resolve_by(by)
    examples_path, sources_path = join(out, "examples.parquet"), join(out, "sources.parquet")
    columns = list(dict.fromkeys(EXAMPLE_COLUMNS + [column for _, column in pairs]))
    table = read_manifest(examples_path, "examples", columns=columns)
    sources = read_manifest(sources_path, "sources", columns=SOURCE_COLUMNS).to_pylist()
    report, config = build_info(out)
    warnings = [] if report else [f"{join(out, 'build.json')}: missing; the build did not finish (config hash and expected counts unavailable)"]
    used = set(pc.unique(table.column("clean_source_id")).to_pylist()) | set(pc.unique(table.column("noise_source_id")).to_pylist())
    header = _header(out, examples_path, table, sources, report)
    missing, more_warnings = integrity_problems(table, sources, expected_split_counts(report, config), limit)
    snr = snr_summary(table, snr_tolerance_db)
    bandwidth, bandwidth_warnings = bandwidth_summary(table, sources, config)
    if snr["count"]:
        more_warnings.append(f"{snr['count']} examples whose measured SNR departs from target by more than {snr_tolerance_db} dB "
                             f"(max {snr['max_abs_error_db']:.3f} dB)")
    more_warnings.extend(bandwidth_warnings)
    noise_coverage = noise_coverage_rows(table)
    more_warnings.extend(noise_type_gap_warnings(noise_types_by_split(noise_coverage)))
    more_warnings.extend(duplicate_warnings(sources))
    table = with_content_columns(table, sources)
    return AuditResult(
        out=out, header=header, by=[label for label, _ in pairs], counts=count_rows(table, pairs), split_totals=split_total_rows(table),
        distributions=metric_distributions(table), coverage=group_coverage_rows(table), noise_coverage=noise_coverage,
        sources=source_rows(sources, used), stationarity=stationarity_summary(sources, used, config),
        bandwidth=bandwidth, snr=snr, leaks=find_leaks(table),
        missing=missing, warnings=warnings + more_warnings, config=config,
    )
