"""Is the clean material full band at the output rate? Effective bandwidth against the output's Nyquist.

A recording resampled to `audio.sample_rate` keeps its effective bandwidth (README, *Definitions*):
16 kHz material written at 48 kHz gives targets with nothing above 8 kHz. The build (from its example
plans) and the audit (from examples.parquet) call the same functions on rows of one clean example
each, keyed as in the examples manifest (a recording's bandwidth is measured at its native rate and
counts at most the output Nyquist: resampling removes the rest):

    clean_corpus, split, clean_bandwidth_hz   required
    clean_sample_rate                         the recording's native rate in Hz (optional; ExamplePlan has it)
    examples                                  examples the row stands for (optional, default 1; lets a caller
                                              pass pre-aggregated rows)

`datagen.plan.ExamplePlan` objects fit as `map(vars, plans)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

# effective bandwidth below this fraction of the output's Nyquist is "band-limited" (18 kHz at 48 kHz)
FULL_BAND_MIN_NYQUIST_FRACTION = 0.75
ALL_SPLITS = "all"


@dataclass(frozen=True)
class BandwidthSummary:
    """Effective bandwidth of the clean examples of one corpus in one split (or ALL_SPLITS)."""

    corpus: str
    split: str
    examples: int
    unmeasured: int  # examples whose recording has no bandwidth (not counted as band-limited)
    min_hz: float | None
    median_hz: float | None
    max_hz: float | None
    bandlimited: int  # examples below full_band_min_hz
    bandlimited_share: float  # of `examples`
    bandlimited_median_hz: float | None  # median over the band-limited examples only
    native_sample_rates_hz: list[int]  # of the recordings used (empty when the rows carry none)
    bandlimited_native_sample_rates_hz: list[int]
    output_sample_rate_hz: int
    full_band_min_hz: float


def nyquist_hz(output_sample_rate_hz: float) -> float:
    return output_sample_rate_hz / 2.0


def full_band_min_hz(output_sample_rate_hz: float) -> float:
    """The lowest effective bandwidth that counts as full band at this output rate."""
    return FULL_BAND_MIN_NYQUIST_FRACTION * nyquist_hz(output_sample_rate_hz)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    """np.median of `values` each repeated `weights` times."""
    if not weights.sum():
        return None
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(weights[order])
    total = int(cumulative[-1])
    low = values[np.searchsorted(cumulative, (total - 1) // 2, side="right")]
    high = values[np.searchsorted(cumulative, total // 2, side="right")]
    return float((low + high) / 2.0)


def _rates(rates: np.ndarray) -> list[int]:
    return sorted({int(r) for r in rates if r > 0})


def _summary(corpus: str, split: str, bandwidth_hz: np.ndarray, weights: np.ndarray, rates: np.ndarray,
             output_sample_rate_hz: int) -> BandwidthSummary:
    threshold_hz = full_band_min_hz(output_sample_rate_hz)
    bandwidth_hz = np.minimum(bandwidth_hz, nyquist_hz(output_sample_rate_hz))
    measured = np.isfinite(bandwidth_hz) & (weights > 0)
    limited = measured & (bandwidth_hz < threshold_hz)
    examples, n_limited = int(weights.sum()), int(weights[limited].sum())
    values = bandwidth_hz[measured]
    return BandwidthSummary(
        corpus=corpus, split=split, examples=examples, unmeasured=examples - int(weights[measured].sum()),
        min_hz=float(values.min()) if values.size else None, median_hz=_weighted_median(values, weights[measured]),
        max_hz=float(values.max()) if values.size else None, bandlimited=n_limited,
        bandlimited_share=n_limited / examples if examples else 0.0,
        bandlimited_median_hz=_weighted_median(bandwidth_hz[limited], weights[limited]),
        native_sample_rates_hz=_rates(rates[weights > 0]), bandlimited_native_sample_rates_hz=_rates(rates[limited]),
        output_sample_rate_hz=int(output_sample_rate_hz), full_band_min_hz=threshold_hz)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def summarize_bandwidth(rows: Iterable[Mapping[str, Any]], output_sample_rate_hz: int, per_split: bool = True) -> list[BandwidthSummary]:
    """One summary per (clean corpus, split), or per clean corpus over all splits; sorted by corpus, split."""
    groups: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for row in rows:
        key = (str(row["clean_corpus"]), str(row["split"]) if per_split else ALL_SPLITS)
        groups.setdefault(key, []).append((_number(row["clean_bandwidth_hz"]), _number(row.get("examples", 1)),
                                           _number(row.get("clean_sample_rate"))))
    summaries = []
    for (corpus, split), values in sorted(groups.items()):
        bandwidth_hz, weights, rates = np.array(values, dtype=np.float64).T
        summaries.append(_summary(corpus, split, bandwidth_hz, weights, np.nan_to_num(rates), output_sample_rate_hz))
    return summaries


def _khz(value_hz: float) -> str:
    return f"{value_hz / 1000.0:.1f} kHz"


def _percent(share: float) -> str:
    return f"{100.0 * share:.3g} %"


def bandlimited_warning(summary: BandwidthSummary) -> str:
    """The warning for one corpus summary that has band-limited examples."""
    rates = summary.bandlimited_native_sample_rates_hz
    native = f"; native sample rate(s) {', '.join(str(r) for r in rates)} Hz" if rates else ""
    which = "the" if summary.bandlimited == summary.examples else "those"
    return (f"clean corpus '{summary.corpus}': {_percent(summary.bandlimited_share)} of the clean examples "
            f"({summary.bandlimited:,} of {summary.examples:,}) are band-limited (median effective bandwidth "
            f"{_khz(summary.bandlimited_median_hz)} < {_khz(summary.full_band_min_hz)}, output Nyquist "
            f"{_khz(nyquist_hz(summary.output_sample_rate_hz))}{native}): {which} targets are not full band; "
            f"keep only full-band material with filters.min_bandwidth_hz = {math.ceil(summary.full_band_min_hz)}")


def bandlimited_warnings(rows: Iterable[Mapping[str, Any]], output_sample_rate_hz: int) -> list[str]:
    """One warning per clean corpus with band-limited examples (see the module docstring for `rows`)."""
    return [bandlimited_warning(s) for s in summarize_bandwidth(rows, output_sample_rate_hz, per_split=False) if s.bandlimited]
