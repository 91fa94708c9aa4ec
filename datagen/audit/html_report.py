"""The HTML report: a self-contained page of the audit's sections with their PNG plots embedded,
written with the PNGs next to it.
"""
from __future__ import annotations

import base64
import html
import posixpath

from manifests.io import atomic_write_bytes, join

from .plots import plots
from .result import AuditResult
from .sections import sections, status_line

HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f0f0f0; }
td.spark { font-family: monospace; white-space: pre; }
.fail { color: #b00; font-weight: bold; } .pass { color: #070; font-weight: bold; }
.note { color: #555; font-size: 0.85em; } img { max-width: 100%; }
"""


def render_html(result: AuditResult, images: dict[str, bytes], image_files: dict[str, str] | None = None, limit: int = 200) -> str:
    """A self-contained HTML page: every PNG is embedded as a data URI (`image_files` names copies on disk)."""
    esc = html.escape
    status = status_line(result)
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>Corpus audit: {esc(result.out)}</title>",
             f"<style>{HTML_STYLE}</style></head><body>", f"<h1>Corpus audit: {esc(result.out)}</h1>",
             f"<p class=\"{'fail' if result.failed else 'pass'}\">{esc(status)}</p>"]
    for section in sections(result, limit):
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in section.headers) + "</tr></thead><tbody>")
        for row in section.cells():
            parts.append("<tr>" + "".join(("<td class=\"spark\">" if h == "histogram" else "<td>") + f"{esc(c)}</td>"
                                          for h, c in zip(section.headers, row)) + "</tr>")
        parts.append("</tbody></table>")
        if section.note:
            parts.append(f"<p class=\"note\">{esc(section.note)}</p>")
        for name in section.plots:
            if name in images:
                data = base64.b64encode(images[name]).decode("ascii")
                source = f" (also {esc(image_files[name])})" if image_files and name in image_files else ""
                parts.append(f"<figure><img alt=\"{esc(name)}\" src=\"data:image/png;base64,{data}\">"
                             f"<figcaption class=\"note\">{esc(name)}{source}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(result: AuditResult, path: str | None = None) -> tuple[str, list[str]]:
    """Write the HTML report (default OUT/audit/report.html) and its PNGs next to it -> (html path, png paths)."""
    path = path or join(result.out, "audit", "report.html")
    folder, stem = posixpath.dirname(path), posixpath.splitext(posixpath.basename(path))[0]
    images = plots(result)
    files = {name: join(folder, f"{stem}-{name}.png") if folder else f"{stem}-{name}.png" for name in images}
    for name, data in images.items():
        atomic_write_bytes(files[name], data)
    atomic_write_bytes(path, render_html(result, images, {n: posixpath.basename(f) for n, f in files.items()}).encode("utf-8"))
    return path, list(files.values())
