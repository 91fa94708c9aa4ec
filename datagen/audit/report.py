"""The audit as text: aligned plain-text tables for the terminal, Markdown, and JSON."""
from __future__ import annotations

import json

from ..text_table import aligned
from .result import LIST_LIMIT, AuditResult
from .sections import sections, status_line


def render_text(result: AuditResult, limit: int = LIST_LIMIT) -> str:
    """The terminal report: aligned plain-text tables."""
    lines = []
    for section in sections(result, limit):
        cells = section.cells()
        lines += [f"== {section.title} ==", *aligned(section.headers, cells, rule=True)]
        if not cells:
            lines.append("(none)")
        if section.note:
            lines.append(section.note)
        lines.append("")
    lines.append(status_line(result))
    return "\n".join(lines) + "\n"


def render_markdown(result: AuditResult, limit: int = LIST_LIMIT) -> str:
    """The report as Markdown: a heading and a table per section."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# Corpus audit: {result.out}", "", f"**{status_line(result)}**", ""]
    for section in sections(result, limit):
        lines += [f"## {section.title}", "", "| " + " | ".join(section.headers) + " |", "|" + "---|" * len(section.headers)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in section.cells()]
        lines += (["", f"_{section.note}_"] if section.note else []) + [""]
    return "\n".join(lines)


def render_json(result: AuditResult) -> str:
    """The whole result (every list in full) as indented JSON with sorted keys."""
    return json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"
