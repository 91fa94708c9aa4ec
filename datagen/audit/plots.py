"""PNG plots of the HTML report (matplotlib on an Agg canvas, no pyplot state): hours per split and
source type, hours per noise type, every metric's histograms, stationarity and clean bandwidth.
"""
from __future__ import annotations

import io

import numpy as np

from .result import DIMENSIONS, METRICS, AuditResult, Distribution


def _figure(width: float = 7.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, 3.2), layout="constrained")


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
    """Overlaid histograms of the non-empty `dists`, one labelled line each."""
    for d in dists:
        if d.count:
            ax.stairs(d.counts, d.edges, label=f"{d.group} (n={d.count:,})")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("examples")
    _legend(ax)


def _hours_plot(split_totals: list[dict], splits: list[str]) -> bytes:
    """Stacked bars: hours per split, one layer per source type."""
    fig = _figure()
    ax = fig.add_subplot()
    bottom = np.zeros(len(splits))
    for source_type in sorted({r["source_type"] for r in split_totals}):
        heights = np.array([sum(r["hours"] for r in split_totals if r["split"] == s and r["source_type"] == source_type) for s in splits])
        ax.bar(splits, heights, bottom=bottom, label=source_type)
        bottom += heights
    ax.set_ylabel("hours")
    ax.set_title("hours per split and source type", fontsize=9)
    _legend(ax)
    return _png(fig)


def _noise_types_plot(noise_coverage: list[dict], splits: list[str]) -> bytes:
    """Grouped bars: hours per noise type, one bar per split."""
    fig = _figure()
    ax = fig.add_subplot()
    types = sorted({r["noise_type"] for r in noise_coverage}, key=str)
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        heights = [sum(r["hours"] for r in noise_coverage if r["split"] == split and r["noise_type"] == t) for t in types]
        ax.bar(np.arange(len(types)) + i * width, heights, width=width, label=split)
    ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2, [str(t) for t in types], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("hours")
    ax.set_title("hours per noise type and split", fontsize=9)
    _legend(ax)
    return _png(fig)


def _metric_plot(distributions: list[Distribution], metric: str, label: str) -> bytes:
    """Histograms of one metric, side by side per DIMENSIONS column."""
    fig = _figure(9.0)
    for i, dimension in enumerate(DIMENSIONS):
        ax = fig.add_subplot(1, 2, i + 1)
        _stairs(ax, [d for d in distributions if d.metric == metric and d.dimension == dimension], f"{label} by {dimension}")
        ax.set_xlabel(label, fontsize=8)
    return _png(fig)


def _stationarity_plot(stationarity: dict) -> bytes:
    """Stationarity scores of the used, unused and excluded noise recordings, with the threshold."""
    fig = _figure()
    ax = fig.add_subplot()
    _stairs(ax, stationarity["distributions"], "stationarity of the noise recordings")
    ax.set_ylabel("recordings")
    ax.set_xlabel("stationarity (dB)", fontsize=8)
    if stationarity["threshold_db"] is not None:
        ax.axvline(stationarity["threshold_db"], color="k", linestyle="--", linewidth=1)
    return _png(fig)


def _bandwidth_plot(bandwidth: dict) -> bytes:
    """Effective bandwidth (kHz) of the clean examples per corpus, with the full-band threshold."""
    fig = _figure()
    ax = fig.add_subplot()
    _stairs(ax, bandwidth["distributions"], "effective bandwidth of the clean examples per corpus")
    ax.set_xlabel("effective bandwidth (kHz)", fontsize=8)
    ax.axvline(bandwidth["full_band_min_hz"] / 1000.0, color="k", linestyle="--", linewidth=1)
    return _png(fig)


def plots(result: AuditResult) -> dict[str, bytes]:
    """name -> PNG bytes of every plot of the HTML report (the names `Section.plots` refers to)."""
    splits = sorted({r["split"] for r in result.split_totals})
    images = {"hours": _hours_plot(result.split_totals, splits), "noise_types": _noise_types_plot(result.noise_coverage, splits)}
    for metric, label in METRICS.items():
        images[metric] = _metric_plot(result.distributions, metric, label)
    images["stationarity"] = _stationarity_plot(result.stationarity)
    if result.bandwidth["distributions"]:
        images["bandwidth"] = _bandwidth_plot(result.bandwidth)
    return images
