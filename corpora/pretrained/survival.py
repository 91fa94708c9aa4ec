#!/usr/bin/env python3
"""What `datagen index` kept of the pretrained corpus, per (type, package).

    datagen index corpus.toml --out INDEX_DIR
    python corpora/pretrained/survival.py INDEX_DIR/sources.parquet --sources OUT/sources.csv [--write PATH]

Reads the index's sources.parquet (pyarrow, which datagen installs) and prints, per corpus of
corpus.toml (one per type and package): files, usable files and hours, and the exclusion reasons
(non-stationary noise, too short, band-limited, errors) with counts; for noise also the stationarity
scores (min/median/max) and the noise kinds that survived. With --write it fills the
`stationary_files` / `stationary_hours` columns of sources.csv (usable noise; for speech and music
the usable files and hours) and writes it to PATH (may be the same file).
"""
from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from collections import Counter, defaultdict

import pyarrow.parquet as pq


def reason_key(row: dict) -> str | None:
    if row["error"]:
        return "failed: " + re.sub(r"[\d.]+", "N", row["error"].split(":")[0])
    if row["excluded_reason"]:
        return row["excluded_reason"].split(":")[0]
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parquet", help="sources.parquet written by datagen index / build")
    ap.add_argument("--sources", help="sources.csv written by build.py (its rows are matched by type and package)")
    ap.add_argument("--write", metavar="PATH", help="write sources.csv with the stationary_* columns filled to PATH")
    args = ap.parse_args(argv)
    if bool(args.sources) != bool(args.write):
        ap.error("--sources and --write go together (the sources.csv to read and the one to write)")
    rows = pq.read_table(args.parquet, columns=["path", "corpus", "source_type", "noise_type", "duration_s", "stationarity_db",
                                                 "bandwidth_hz", "error", "excluded_reason"]).to_pylist()
    per = defaultdict(list)
    for r in rows:
        per[r["corpus"]].append(r)
    print("%-38s %6s %6s %8s %8s  %-18s %s" % ("corpus", "files", "usable", "hours", "usable_h", "stationarity dB", "excluded / kinds kept"))
    usable_by = {}
    for corpus in sorted(per, key=lambda c: ({"speech": 0, "music": 1, "noise": 2}.get(c.split("-")[0], 3), c)):
        sel = per[corpus]
        ok = [r for r in sel if reason_key(r) is None]
        hours = sum(r["duration_s"] or 0.0 for r in sel) / 3600
        ok_h = sum(r["duration_s"] for r in ok) / 3600
        usable_by[corpus] = (len(ok), ok_h)
        reasons = Counter(k for k in map(reason_key, sel) if k)
        st = [r["stationarity_db"] for r in sel if r["stationarity_db"] is not None]
        st_txt = "%.2f/%.2f/%.2f" % (min(st), statistics.median(st), max(st)) if st else "-"
        kinds = sorted({r["noise_type"] for r in ok if r["noise_type"]})
        extra = ", ".join("%d %s" % (n, k) for k, n in sorted(reasons.items()))
        if kinds:
            extra = (extra + "; " if extra else "") + "kept: " + ",".join(kinds)
        if sel[0]["source_type"] != "noise":
            bw = [r["bandwidth_hz"] for r in ok if r["bandwidth_hz"]]
            st_txt = ("bw %.1f/%.1f kHz" % (statistics.median(bw) / 1000, min(bw) / 1000)) if bw else "-"
        print("%-38s %6d %6d %8.3f %8.3f  %-18s %s" % (corpus, len(sel), len(ok), hours, ok_h, st_txt, extra))
    for kind in ("speech", "music", "noise"):
        tot = [v for c, v in usable_by.items() if c.startswith(kind + "-")]
        print("%-38s %6s %6d %8s %8.3f" % (kind + " TOTAL usable", "", sum(n for n, _ in tot), "", sum(h for _, h in tot)))
    if args.write:
        with open(args.sources, newline="") as fh:
            src = list(csv.DictReader(fh))
            fields = list(src[0].keys()) if src else []
        for s in src:
            n, h = usable_by.get("%s-%s" % (s["type"], s["package"].replace(".", "_")), (0, 0.0))
            s["stationary_files"], s["stationary_hours"] = str(n), "%.3f" % h
        with open(args.write, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows(src)
        print("wrote", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
