"""Which noise types each split lacks: a warning, not a failure (noise types too small to split sit in one split)."""
from __future__ import annotations

from typing import Iterable

SHOWN_TYPES = 8


def noise_types_by_split(rows: Iterable[dict]) -> dict[str, set[str]]:
    """split -> the noise types its examples use, from rows with `split` and `noise_type`."""
    by_split: dict[str, set[str]] = {}
    for row in rows:
        by_split.setdefault(row["split"], set()).add(row["noise_type"])
    return by_split


def noise_type_gap_warnings(by_split: dict[str, set[str]]) -> list[str]:
    """One warning per split that lacks noise types other splits have, naming them."""
    every = set().union(*by_split.values()) if by_split else set()
    warnings = []
    for split, present in sorted(by_split.items()):
        lacking = sorted(every - present)
        if lacking:
            shown = ", ".join(lacking[:SHOWN_TYPES]) + (f" and {len(lacking) - SHOWN_TYPES} more" if len(lacking) > SHOWN_TYPES else "")
            warnings.append(f"split '{split}': no example has noise of {len(lacking)} of the {len(every)} noise types: {shown} "
                            "(a noise type with fewer groups than splits goes whole to one split; few examples may also miss a type)")
    return warnings
