"""Clean bandwidth against the output Nyquist: the pure summaries and warnings, and the audit of real builds."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datagen.audit import audit, render_markdown, render_text, status_line
from datagen.bandwidth import ALL_SPLITS, bandlimited_warnings, full_band_min_hz, summarize_bandwidth
from datagen.build import build
from datagen.cli import main as datagen_main
from datagen.config import load_config
from datagen.plan import plan_examples, split_sources
from manifests.io import read_manifest

from conftest import colored_noise, speechlike

BANDWIDTH_TITLE = "Clean bandwidth per corpus and split (effective bandwidth, kHz)"


def row(corpus: str, split: str, bandwidth_hz: float | None, native_hz: int | None = None, examples: int | None = None) -> dict:
    out = {"clean_corpus": corpus, "split": split, "clean_bandwidth_hz": bandwidth_hz, "clean_sample_rate": native_hz}
    return out if examples is None else {**out, "examples": examples}


# ---------------------------------------------------------------- pure functions


def test_full_band_threshold_is_three_quarters_of_the_output_nyquist():
    assert full_band_min_hz(48000) == 18000.0
    assert full_band_min_hz(44100) == pytest.approx(16537.5)


def test_summary_per_corpus_and_split():
    rows = [row("lofi", "train", 8000.0, 16000)] * 3 + [row("lofi", "test", 7900.0, 16000), row("hifi", "train", 24000.0, 48000),
                                                        row("hifi", "train", 20000.0, 44100), row("hifi", "train", 11025.0, 22050)]
    summaries = {(s.corpus, s.split): s for s in summarize_bandwidth(rows, 48000)}
    assert list(summaries) == [("hifi", "train"), ("lofi", "test"), ("lofi", "train")]
    hifi = summaries[("hifi", "train")]
    assert (hifi.examples, hifi.min_hz, hifi.median_hz, hifi.max_hz) == (3, 11025.0, 20000.0, 24000.0)
    assert (hifi.bandlimited, hifi.bandlimited_share, hifi.bandlimited_median_hz) == (1, pytest.approx(1 / 3), 11025.0)
    assert hifi.native_sample_rates_hz == [22050, 44100, 48000] and hifi.bandlimited_native_sample_rates_hz == [22050]
    assert summaries[("lofi", "train")].bandlimited_share == 1.0
    [lofi] = [s for s in summarize_bandwidth(rows, 48000, per_split=False) if s.corpus == "lofi"]
    assert (lofi.split, lofi.examples, lofi.median_hz, lofi.min_hz) == (ALL_SPLITS, 4, 8000.0, 7900.0)


def test_weighted_rows_equal_repeated_rows():
    values = [(8000.0, 3), (11025.0, 1), (22050.0, 2), (24000.0, 4)]
    weighted = summarize_bandwidth([row("c", "train", v, examples=n) for v, n in values], 48000)
    repeated = summarize_bandwidth([row("c", "train", v) for v, n in values for _ in range(n)], 48000)
    assert weighted == repeated
    assert weighted[0].median_hz == np.median([v for v, n in values for _ in range(n)])
    assert weighted[0].examples == 10 and weighted[0].bandlimited == 4


def test_bandwidth_counts_at_most_the_output_nyquist_and_unmeasured_is_not_bandlimited():
    [s] = summarize_bandwidth([row("hires", "train", 40000.0, 96000), row("hires", "train", None, 96000)], 48000)
    assert (s.max_hz, s.examples, s.unmeasured, s.bandlimited) == (24000.0, 2, 1, 0)
    assert bandlimited_warnings([row("hires", "train", 40000.0, 96000)], 48000) == []


def test_one_warning_per_bandlimited_corpus():
    rows = [row("librispeech", s, 7900.0, 16000) for s in ("train", "train", "valid", "test")]
    rows += [row("vctk", "train", 24000.0, 48000), row("mixed", "train", 8000.0, 16000), row("mixed", "test", 22050.0, 44100)]
    warnings = bandlimited_warnings(rows, 48000)
    assert len(warnings) == 2
    libri, mixed = warnings
    assert libri.startswith("clean corpus 'librispeech': 100 % of the clean examples (4 of 4) are band-limited")
    for text in ("median effective bandwidth 7.9 kHz < 18.0 kHz", "output Nyquist 24.0 kHz", "native sample rate(s) 16000 Hz",
                 "the targets are not full band", "filters.min_bandwidth_hz = 18000"):
        assert text in libri
    assert mixed.startswith("clean corpus 'mixed': 50 % of the clean examples (1 of 2)") and "those targets" in mixed
    assert not any("vctk" in w for w in warnings)
    assert bandlimited_warnings(rows, 16000) == []  # at a 16 kHz output, 8 kHz is the Nyquist: full band


# ---------------------------------------------------------------- real builds


def write_two_corpora(root: Path) -> Path:
    """lofi: 16 kHz speech (band-limited at 48 kHz); hifi: 48 kHz speech (full band); stationary noise at 48 kHz."""
    rng = np.random.default_rng(99)
    for corpus, rate in (("lofi", 16000), ("hifi", 48000)):
        for i in range(3):
            path = root / corpus / f"utt{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, speechlike(rng, rate, 3.0), rate)
    for noise_type, slope in (("white", 0.0), ("pink", -3.0)):
        for i in range(3):
            path = root / "noise" / noise_type / f"n{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, colored_noise(rng, 48000, 4.0, slope), 48000, subtype="PCM_24")
    return root


def config_text(corpus: Path, extra: str = "") -> str:
    return textwrap.dedent(f"""
        seed = 3
        [audio]
        clip_duration_s = 1.0
        [splits]
        fractions = {{ train = 0.5, valid = 0.25, test = 0.25 }}
        examples = {{ train = 8, valid = 4, test = 4 }}
        [shards]
        examples_per_shard = 8
        [dask]
        workers = 1
        [[corpora]]
        name = "lofi"
        type = "speech"
        path = "{corpus}/lofi"
        [[corpora]]
        name = "hifi"
        type = "speech"
        path = "{corpus}/hifi"
        [[corpora]]
        name = "noise"
        type = "noise"
        path = "{corpus}/noise"
    """) + textwrap.dedent(extra)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(config of the mixed build, the mixed build, the same corpus built with filters.min_bandwidth_hz = 18000)."""
    root = tmp_path_factory.mktemp("bandwidth")
    corpus = write_two_corpora(root / "corpus")
    outs = []
    for name, extra in (("mixed", ""), ("fullband", "[filters]\nmin_bandwidth_hz = 18000\n")):
        config = root / f"{name}.toml"
        config.write_text(config_text(corpus, extra))
        build(load_config(config), str(root / name), workers=1, progress=False)
        outs.append(root / name)
    return root / "mixed.toml", outs[0], outs[1]


def bandwidth_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "band-limited" in w]


def test_audit_names_the_bandlimited_corpus_and_still_passes(two_builds, capsys):
    _, mixed, _ = two_builds
    result = audit(str(mixed))
    assert not result.failed
    [warning] = bandwidth_warnings(result.warnings)
    assert warning.startswith("clean corpus 'lofi': 100 % of the clean examples") and "native sample rate(s) 16000 Hz" in warning
    assert "filters.min_bandwidth_hz = 18000" in warning
    assert status_line(result) == f"PASS: no leakage between splits, nothing missing ({len(result.warnings)} warning(s))"

    bandwidth = result.bandwidth
    assert (bandwidth["output_sample_rate_hz"], bandwidth["nyquist_hz"], bandwidth["full_band_min_hz"]) == (48000, 24000.0, 18000.0)
    rows = read_manifest(str(mixed / "examples.parquet"), "examples").to_pylist()
    for s in bandwidth["per_corpus_split"]:
        subset = [r for r in rows if (r["clean_corpus"], r["split"]) == (s["corpus"], s["split"])]
        assert s["examples"] == len(subset) and s["median_hz"] == pytest.approx(np.median([r["clean_bandwidth_hz"] for r in subset]))
        assert s["bandlimited_share"] == (1.0 if s["corpus"] == "lofi" else 0.0)
        assert s["native_sample_rates_hz"] == [16000 if s["corpus"] == "lofi" else 48000]
        assert s["max_hz"] <= (9000.0 if s["corpus"] == "lofi" else 24000.0) and s["min_hz"] >= (7000.0 if s["corpus"] == "lofi" else 18000.0)
    assert {s["corpus"] for s in bandwidth["per_corpus_split"]} == {"lofi", "hifi"}
    assert sum(d.count for d in bandwidth["distributions"]) == len(rows)

    text = render_text(result)
    assert BANDWIDTH_TITLE in text and warning in text
    section = text.split(BANDWIDTH_TITLE)[1].split("\n\n")[0]
    assert any(line.startswith("lofi ") and "100.0%" in line and "16000" in line for line in section.splitlines())
    assert any(line.startswith("hifi ") and "0.0% (0)" in line and "48000" in line for line in section.splitlines())
    assert f"## {BANDWIDTH_TITLE}" in render_markdown(result)

    assert datagen_main(["audit", str(mixed)]) == 0
    assert "clean corpus 'lofi'" in capsys.readouterr().out
    assert datagen_main(["audit", str(mixed), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] is False and bandwidth_warnings(data["warnings"]) == [warning]
    assert {r["corpus"] for r in data["bandwidth"]["per_corpus"] if r["bandlimited"]} == {"lofi"}


def test_html_report_has_the_bandwidth_section_and_plot(two_builds, tmp_path, capsys):
    _, mixed, _ = two_builds
    page = tmp_path / "report.html"
    assert datagen_main(["audit", str(mixed), "--format", "html", "-o", str(page)]) == 0
    capsys.readouterr()
    content = page.read_text(encoding="utf-8")
    assert f"<h2>{BANDWIDTH_TITLE}</h2>" in content and "clean corpus &#x27;lofi&#x27;" in content
    assert (tmp_path / "report-bandwidth.png").stat().st_size > 1000 and 'alt="bandwidth"' in content


def test_full_band_only_build_has_no_bandwidth_warning(two_builds):
    _, _, fullband = two_builds
    result = audit(str(fullband))
    assert not result.failed and bandwidth_warnings(result.warnings) == []
    assert {s["corpus"] for s in result.bandwidth["per_corpus_split"]} == {"hifi"}
    assert all(s["bandlimited"] == 0 for s in result.bandwidth["per_corpus_split"])
    sources = read_manifest(str(fullband / "sources.parquet"), "sources").to_pylist()
    assert all((s["excluded_reason"] or "").startswith("band-limited") for s in sources if s["corpus"] == "lofi")


def test_build_time_warnings_from_the_plans_equal_the_audit(two_builds):
    """What the build can say from its plans (before rendering) is what the audit says from the manifests."""
    config_path, mixed, _ = two_builds
    config = load_config(config_path)
    sources = read_manifest(str(mixed / "sources.parquet"), "sources").to_pylist()
    usable = [r for r in sources if not r["error"] and not r["excluded_reason"]]
    plans = plan_examples(usable, split_sources(usable, config), config)
    assert bandlimited_warnings(map(vars, plans), config.audio.sample_rate) == bandwidth_warnings(audit(str(mixed)).warnings)
