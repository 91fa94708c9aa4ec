"""Column access and statistics over manifest tables: float and label columns, histogram edges and
bins, `Distribution` summaries, and row indices grouped by label.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .result import Distribution

HIST_BINS = 24
PERCENTILES = (5, 25, 50, 75, 95)
NONE_LABEL = "(none)"  # the label of a null value


def floats(table: pa.Table, name: str) -> np.ndarray:
    """Column `name` as float64, nulls as NaN."""
    column = table.column(name).cast(pa.float64())
    return pc.fill_null(column, float("nan")).to_numpy()


def labels(table: pa.Table, name: str) -> pa.ChunkedArray:
    """Column `name` as strings, nulls as NONE_LABEL."""
    column = table.column(name)
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return pc.fill_null(column, NONE_LABEL)


def distinct(table: pa.Table, name: str) -> list:
    """Sorted distinct non-null values of column `name`."""
    return sorted(v for v in pc.unique(table.column(name)).to_pylist() if v is not None)


def sort_key(row: dict, keys: Sequence[str]) -> tuple:
    """Order rows by `keys` as text, None last."""
    return tuple((row[k] is None, str(row[k])) for k in keys)


def histogram_edges(values: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """`bins`+1 uniform edges over the finite `values` (a unit range around a constant, [0, 1] if none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram bin of each value for uniform `edges` (last bin closed, like np.histogram); -1: not finite or outside."""
    n = len(edges) - 1
    with np.errstate(invalid="ignore"):
        scaled = (values - edges[0]) / (edges[-1] - edges[0]) * n
        inside = np.isfinite(scaled) & (scaled >= 0) & (scaled <= n)
    return np.where(inside, np.minimum(np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0).astype(np.int64), n - 1), -1)


def distribution(dimension: str, group: str, metric: str, values: np.ndarray, edges: np.ndarray, bins: np.ndarray | None = None) -> Distribution:
    """Statistics of the finite `values`; `bins`: their precomputed `bin_index` (saves a pass on large groups)."""
    finite = values[np.isfinite(values)]
    bins = bin_index(values, edges) if bins is None else bins
    counts = np.bincount(bins[bins >= 0], minlength=len(edges) - 1)
    if finite.size:
        pcts = np.percentile(finite, PERCENTILES)
        stats = dict(mean=float(finite.mean()), std=float(finite.std()), min=float(finite.min()), max=float(finite.max()),
                     **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts)})
    else:
        stats = dict(mean=None, std=None, min=None, max=None, **{f"p{p}": None for p in PERCENTILES})
    return Distribution(dimension=dimension, group=group, metric=metric, count=int(finite.size), missing=int(values.size - finite.size),
                        edges=[float(e) for e in edges], counts=[int(c) for c in counts], **stats)


def grouped_indices(column: pa.ChunkedArray) -> list[tuple[str, np.ndarray]]:
    """(label, row indices) for each distinct label of `column`, sorted by label; one stable sort for all groups."""
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    names = encoded.dictionary.to_pylist()
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(names)))
    starts = np.concatenate([[0], bounds[:-1]])
    groups = [(names[i], order[starts[i] : bounds[i]]) for i in range(len(names))]
    return sorted(groups, key=lambda item: (item[0] == NONE_LABEL, item[0]))
