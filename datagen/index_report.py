"""What `datagen index` says per corpus: files, usable, excluded and failed by reason, groups, splits."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .text_table import aligned


@dataclass
class CorpusSummary:
    corpus: str
    source_type: str
    files: int = 0
    usable: int = 0
    usable_hours: float = 0.0
    groups: set = field(default_factory=set)
    noise_types: set = field(default_factory=set)
    reasons: Counter = field(default_factory=Counter)  # "failed: unreadable" / "excluded: non-stationary" -> files
    groups_by_split: dict[str, set] = field(default_factory=dict)
    pinned: Counter = field(default_factory=Counter)  # split -> usable files pinned there by official splits


def reason_kind(reason: str) -> str:
    """The kind of a probe error or exclusion reason: the text before its first ':' or '('."""
    return reason.split(":", 1)[0].split(" (", 1)[0].strip()


def summarize(rows: list[dict], split_of: dict[str, str]) -> list[CorpusSummary]:
    """Per corpus, in first-seen order; `split_of` maps usable source ids to their split."""
    summaries: dict[str, CorpusSummary] = {}
    for row in rows:
        summary = summaries.setdefault(row["corpus"], CorpusSummary(row["corpus"], row["source_type"]))
        summary.files += 1
        if row.get("error"):
            summary.reasons[f"failed: {reason_kind(row['error'])}"] += 1
        elif row.get("excluded_reason"):
            summary.reasons[f"excluded: {reason_kind(row['excluded_reason'])}"] += 1
        else:
            summary.usable += 1
            summary.usable_hours += row["duration_s"] / 3600.0
            summary.groups.add(row["group_key"])
            if row.get("noise_type"):
                summary.noise_types.add(row["noise_type"])
            if row.get("split_pin"):
                summary.pinned[row["split_pin"]] += 1
            split = split_of.get(row["source_id"])
            if split is not None:
                summary.groups_by_split.setdefault(split, set()).add(row["group_key"])
    return list(summaries.values())


def render_summary(summaries: list[CorpusSummary], splits: list[str]) -> str:
    """A plain-text table, one line per corpus, then its exclusion reasons."""
    header = ["corpus", "type", "files", "usable", "hours", "groups", f"groups {'/'.join(splits)}", "noise types", "official splits"]
    lines = []
    for s in summaries:
        lines.append([s.corpus, s.source_type, f"{s.files:,}", f"{s.usable:,}", f"{s.usable_hours:.2f}", f"{len(s.groups):,}",
                      "/".join(str(len(s.groups_by_split.get(split, ()))) for split in splits),
                      str(len(s.noise_types)) if s.source_type == "noise" else "-",
                      ", ".join(f"{split} {n:,}" for split, n in sorted(s.pinned.items())) or "-"])
    table = aligned(header, lines)
    text = table[:1]
    for s, line in zip(summaries, table[1:]):
        text.append(line)
        text += [f"    {count:,} {reason}" for reason, count in sorted(s.reasons.items())]
    return "\n".join(text) + "\n"
