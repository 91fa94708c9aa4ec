"""`datagen audit`: what a built corpus holds, computed from its manifests alone (no audio is read).

`audit(out)` reads only the needed columns of OUT/examples.parquet and OUT/sources.parquet (plus
OUT/build.json when present) and returns an `AuditResult`: counts and hours per split x source type x
corpus x noise type, distributions (summary statistics and histograms) of SNR, loudness, duration and
gains, the stationarity scores of the noise recordings used and excluded, group coverage per split,
the effective bandwidth of the clean examples against the output's Nyquist (`datagen.bandwidth`),
examples whose measured SNR departs from target, leakage between splits and missing examples.

Rendering is separate: `render_text`, `render_markdown`, `render_json` and `render_html` all draw the
same `sections(result)`; the HTML report embeds its PNG plots (and writes them next to the file).

Modules: `inputs` (what is read), `stats`, `tables` and `leakage` (the computation), `compute`
(`audit`), `result` (the result types), `sections`, `report`, `plots` and `html_report` (rendering).
"""
from .compute import audit
from .html_report import write_html
from .inputs import DEFAULT_BY
from .report import render_json, render_markdown, render_text
from .result import AuditError, AuditResult
from .sections import status_line

__all__ = ["audit", "write_html", "DEFAULT_BY", "render_json", "render_markdown", "render_text", "AuditError", "AuditResult", "status_line"]
