"""What an audit returns: `AuditResult` with its `Distribution`s and `Leak`s, the metrics it
summarizes, and `jsonable` to turn it into plain JSON values.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LIST_LIMIT = 20  # rows listed in the terminal for long lists (all of them are in the JSON)
METRICS = {  # column -> label; "snr_error_db" is derived (measured - target)
    "snr_measured_db": "measured SNR (dB)",
    "snr_error_db": "measured - target SNR (dB)",
    "clean_loudness_lufs": "clean loudness (LUFS)",
    "duration_s": "duration (s)",
    "clean_gain_db": "clean gain (dB)",
    "noise_gain_db": "noise gain (dB)",
    "ceiling_gain_db": "ceiling gain (dB)",
}
DIMENSIONS = ("source_type", "noise_type")  # every metric is also summarized per value of these columns


class AuditError(ValueError):
    """The audit cannot run as asked (e.g. an unknown --by column); the message says what is accepted."""


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
    """Everything `datagen audit` reports about one build folder; `failed` on any leak or missing example."""

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
    """`value` with dict keys as strings, tuples as lists, numpy scalars as Python ones, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value

