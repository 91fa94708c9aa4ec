"""Plain-text tables for the terminal: columns padded to their widest cell."""
from __future__ import annotations

from typing import Sequence


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], rule: bool = False) -> list[str]:
    """Lines of a table with left-aligned columns two spaces apart (and a dashed rule under the header)."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    if rule:
        lines.append("  ".join("-" * w for w in widths))
    return lines + ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
