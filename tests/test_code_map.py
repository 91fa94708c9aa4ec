"""docs/code-map.md lists every module of the three packages with the first paragraph of its docstring."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("manifests", "datagen", "datagen/audit", "datagen/synthetic", "datagen/recipes", "training")


def first_paragraph(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split())


def expected_tables() -> dict[str, list[tuple[str, str]]]:
    """section -> [(module file name, first docstring paragraph)] in file-name order (an `__init__.py` whose
    docstring is only the package's name is left out)."""
    return {section: [(p.name, first_paragraph(p)) for p in sorted((ROOT / section).glob("*.py"))
                      if len(first_paragraph(p).split()) > 1] for section in SECTIONS}


def listed_tables(text: str) -> dict[str, list[tuple[str, str]]]:
    tables, section = {}, None
    for line in text.splitlines():
        heading = re.fullmatch(r"## `([^`]+)`", line)
        if heading:
            section = tables.setdefault(heading.group(1), [])
        row = re.fullmatch(r"\| `([^`]+\.py)` \| (.*) \|", line)
        if row and section is not None:
            section.append((row.group(1), row.group(2)))
    return tables


def test_the_code_map_lists_every_module_with_its_docstring():
    listed = listed_tables((ROOT / "docs" / "code-map.md").read_text())
    for section, rows in expected_tables().items():
        assert listed.get(section) == rows, f"docs/code-map.md, section {section}: regenerate its rows from the docstrings"
