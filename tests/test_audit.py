"""`datagen audit` and `datagen diff`: totals match the manifest, planted leakage and missing rows fail, the HTML report renders."""
from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from datagen.audit import audit, render_markdown, render_text
from datagen.audit.sections import sparkline
from datagen.cli import main as datagen_main
from datagen.compare import diff_builds, render_markdown as diff_markdown, render_text as diff_text
from manifests.io import read_manifest, read_metadata, write_manifest


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def examples(out: Path) -> list[dict]:
    return read_manifest(str(out / "examples.parquet"), "examples").to_pylist()


def rewrite(out: Path, change) -> None:
    """Apply `change(rows) -> rows` to OUT/examples.parquet, keeping its metadata (band layout)."""
    path = str(out / "examples.parquet")
    extra = {k: v for k, v in read_metadata(path).items() if k not in ("kind", "version")}
    table = read_manifest(path, "examples")
    write_manifest(pa.Table.from_pylist(change(table.to_pylist()), schema=table.schema), path, "examples", extra)


def test_totals_equal_the_manifest(tiny_build):
    rows = examples(tiny_build)
    result = audit(str(tiny_build))
    assert not result.failed and not result.leaks and not result.missing, result.missing
    assert result.header["examples"] == len(rows) == 24
    assert result.header["hours"] == pytest.approx(sum(r["duration_s"] for r in rows) / 3600)
    assert result.header["shards"] == len({r["shard"] for r in rows})
    assert result.header["sample_rate"] == [48000] and result.header["audio_format"] == ["flac24"]
    assert result.header["config_hash"] == json.loads((tiny_build / "build.json").read_text())["output_hash"]

    direct_n, direct_s = Counter(), defaultdict(float)
    for r in rows:
        key = (r["split"], r["source_type"], r["clean_corpus"], r["noise_type"])
        direct_n[key] += 1
        direct_s[key] += r["duration_s"]
    audited = {(c["split"], c["source_type"], c["corpus"], c["noise_type"]): c for c in result.counts}
    assert set(audited) == set(direct_n)
    for key, count in direct_n.items():
        assert audited[key]["examples"] == count
        assert audited[key]["hours"] == pytest.approx(direct_s[key] / 3600)
    assert sum(c["examples"] for c in result.counts) == len(rows)

    by_split = audit(str(tiny_build), by="split").counts
    assert {c["split"]: c["examples"] for c in by_split} == dict(Counter(r["split"] for r in rows)) == {"train": 12, "valid": 6, "test": 6}

    snr = np.array([r["snr_measured_db"] for r in rows])
    overall = next(d for d in result.distributions if d.dimension == "all" and d.metric == "snr_measured_db")
    assert overall.count == 24 and sum(overall.counts) == 24
    assert overall.mean == pytest.approx(snr.mean()) and overall.p50 == pytest.approx(np.median(snr))
    assert overall.min == pytest.approx(snr.min()) and overall.max == pytest.approx(snr.max())
    for dimension in ("source_type", "noise_type"):
        for d in (d for d in result.distributions if d.dimension == dimension and d.metric == "clean_loudness_lufs"):
            values = [r["clean_loudness_lufs"] for r in rows if r[dimension] == d.group]
            assert d.count == len(values) and d.mean == pytest.approx(np.mean(values))

    for c in result.coverage:
        subset = [r for r in rows if (r["split"], r["source_type"], r["clean_corpus"]) == (c["split"], c["source_type"], c["corpus"])]
        assert c["groups"] == len({r["group_key"] for r in subset}) and c["recordings"] == len({r["clean_source_id"] for r in subset})
        assert c["examples"] == len(subset)
    for c in result.noise_coverage:
        subset = [r for r in rows if (r["split"], r["noise_type"]) == (c["split"], c["noise_type"])]
        assert c["recordings"] == len({r["noise_source_id"] for r in subset}) and c["examples"] == len(subset)

    sources = read_manifest(str(tiny_build / "sources.parquet"), "sources").to_pylist()
    noise = [s for s in sources if s["source_type"] == "noise"]
    stationarity = {r["noise_type"]: r for r in result.stationarity["per_noise_type"]}
    assert stationarity["bursts"]["excluded"] == 1 and stationarity["bursts"]["used"] == 0
    assert sum(r["used"] for r in stationarity.values()) == len({r["noise_source_id"] for r in rows})
    assert sum(r["recordings"] for r in stationarity.values()) == len(noise)
    assert [e["path"] for e in result.stationarity["excluded"]] == [s["path"] for s in noise if s["excluded_reason"]]
    assert result.stationarity["threshold_db"] == 3.0
    assert result.snr["count"] == 0 and result.snr["max_abs_error_db"] <= 0.1


def test_cli_table_markdown_json(tiny_build, capsys):
    assert datagen_main(["audit", str(tiny_build)]) == 0
    text = capsys.readouterr().out
    assert "Counts by split, source_type, corpus, noise_type" in text and "PASS" in text and "Noise stationarity" in text
    assert datagen_main(["audit", str(tiny_build), "--format", "json", "--by", "split,noise_type"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] is False and data["by"] == ["split", "noise_type"]
    assert sum(c["examples"] for c in data["counts"]) == 24
    assert datagen_main(["audit", str(tiny_build), "--format", "markdown"]) == 0
    assert "| split | source_type | corpus | noise_type | examples | hours | share |" in capsys.readouterr().out
    assert datagen_main(["audit", str(tiny_build), "--by", "split,nonsense"]) == 2
    assert "unknown column 'nonsense'" in capsys.readouterr().err


def test_planted_leakage_fails_with_the_offending_ids(tiny_build_copy, capsys):
    rows = examples(tiny_build_copy)
    train = next(r for r in rows if r["split"] == "train")
    valid = next(r for r in rows if r["split"] == "valid")
    test = next(r for r in rows if r["split"] == "test" and r["noise_source_id"] != train["noise_source_id"])

    def plant(rows):
        for r in rows:
            if r["example_id"] == valid["example_id"]:
                r["clean_source_id"], r["group_key"] = train["clean_source_id"], train["group_key"]
            if r["example_id"] == test["example_id"]:
                r["noise_source_id"] = train["noise_source_id"]
        return rows

    rewrite(tiny_build_copy, plant)
    result = audit(str(tiny_build_copy))
    assert result.failed
    leaks = {(leak.key, leak.value): leak for leak in result.leaks}
    assert set(leaks) == {("clean_source_id", train["clean_source_id"]), ("group_key", train["group_key"]),
                          ("noise_source_id", train["noise_source_id"])}
    assert set(leaks[("clean_source_id", train["clean_source_id"])].splits) == {"train", "valid"}
    assert valid["example_id"] in leaks[("group_key", train["group_key"])].examples["valid"]
    assert test["example_id"] in leaks[("noise_source_id", train["noise_source_id"])].examples["test"]

    assert datagen_main(["audit", str(tiny_build_copy)]) == 1
    captured = capsys.readouterr()
    assert "LEAKAGE" in captured.out and "FAIL" in captured.err
    for value in (train["clean_source_id"], train["group_key"], train["noise_source_id"], valid["example_id"]):
        assert value in captured.out
    assert datagen_main(["audit", str(tiny_build_copy), "--format", "json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["leaks"]) == 3


def test_missing_and_duplicated_rows_fail(tiny_build_copy, capsys):
    rows = examples(tiny_build_copy)
    dropped = next(r for r in rows if r["split"] == "valid")["example_id"]
    rewrite(tiny_build_copy, lambda rows: [r for r in rows if r["example_id"] != dropped] + [rows[0]])
    result = audit(str(tiny_build_copy))
    assert result.failed and not result.leaks
    assert any(dropped in problem and "missing" in problem for problem in result.missing)
    assert any("duplicate example ids" in problem and rows[0]["example_id"] in problem for problem in result.missing)
    assert datagen_main(["audit", str(tiny_build_copy)]) == 1
    assert dropped in capsys.readouterr().out


def test_snr_departure_is_listed_but_not_fatal(tiny_build_copy):
    victim = examples(tiny_build_copy)[5]["example_id"]

    def shift(rows):
        for r in rows:
            if r["example_id"] == victim:
                r["snr_measured_db"] = r["snr_target_db"] + 0.5
        return rows

    rewrite(tiny_build_copy, shift)
    result = audit(str(tiny_build_copy))
    assert not result.failed
    assert result.snr["count"] == 1 and result.snr["worst"][0]["example_id"] == victim
    assert result.snr["worst"][0]["error_db"] == pytest.approx(0.5)
    assert victim in render_text(result) and victim in render_markdown(result)
    assert audit(str(tiny_build_copy), snr_tolerance_db=1.0).snr["count"] == 0


class ReportParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self.cells, self._in = [], 0, [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables += 1
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "h2":
            self.headings.append(data)
        elif self._in == "td":
            self.cells.append(data)


def test_html_report_renders(tiny_build_copy, tmp_path, capsys):
    assert datagen_main(["audit", str(tiny_build_copy), "--format", "html"]) == 0
    page = tiny_build_copy / "audit" / "report.html"
    assert str(page) in capsys.readouterr().out
    parser = ReportParser()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    assert parser.tables >= 10 and "Build" in parser.headings and any(h.startswith("Counts by") for h in parser.headings)
    assert "24" in parser.cells
    assert len(parser.images) >= 10
    for image in parser.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1]).startswith(PNG_SIGNATURE)
    pngs = sorted((tiny_build_copy / "audit").glob("report-*.png"))
    assert len(pngs) == len(parser.images)
    for png in pngs:
        assert png.stat().st_size > 1000 and png.read_bytes().startswith(PNG_SIGNATURE)
    assert {"report-snr_measured_db.png", "report-stationarity.png", "report-hours.png"} <= {p.name for p in pngs}

    elsewhere = tmp_path / "reports" / "corpus.html"
    assert datagen_main(["audit", str(tiny_build_copy), "--format", "html", "-o", str(elsewhere)]) == 0
    assert elsewhere.stat().st_size > 10000 and (elsewhere.parent / "corpus-snr_measured_db.png").stat().st_size > 1000


def test_diff_of_two_builds(tiny_build, tiny_build_copy, capsys):
    same = diff_builds(str(tiny_build), str(tiny_build))
    assert same.identical and "identical" in diff_text(same)

    rewrite(tiny_build_copy, lambda rows: [r for r in rows if not (r["split"] == "test" and r["source_type"] == "speech")])
    report = json.loads((tiny_build_copy / "build.json").read_text())
    report["config"]["snr"]["max_db"] = 40.0
    (tiny_build_copy / "build.json").write_text(json.dumps(report))
    test_speech = Counter(r["noise_type"] for r in examples(tiny_build) if r["split"] == "test" and r["source_type"] == "speech")
    result = diff_builds(str(tiny_build), str(tiny_build_copy))
    assert not result.identical
    changed = {(r["split"], r["source_type"], r["noise_type"]): r for r in result.counts if r["changed"]}
    assert set(changed) == {("test", "speech", t) for t in test_speech}
    for noise_type, n in test_speech.items():
        row = changed[("test", "speech", noise_type)]
        assert (row["examples_a"], row["examples_b"], row["examples_delta"]) == (n, 0, -n)
    assert [c["key"] for c in result.config] == ["snr.max_db"] and result.config[0]["b"] == 40.0
    examples_row = next(r for r in result.header if r["field"] == "examples")
    assert examples_row["delta"] == -sum(test_speech.values())
    assert any(r["changed"] and r["metric"] == "snr_measured_db" and r["group"] == "speech" for r in result.distributions)
    assert "snr.max_db" in diff_markdown(result)

    assert datagen_main(["diff", str(tiny_build), str(tiny_build_copy)]) == 0
    out = capsys.readouterr().out
    assert "snr.max_db" in out and "Counts and hours" in out
    assert datagen_main(["diff", str(tiny_build), str(tiny_build_copy), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["identical"] is False


def test_sparkline():
    assert sparkline([0, 1, 2, 4]) == " ▂▄█"
    assert sparkline([0, 0]) == "  "
