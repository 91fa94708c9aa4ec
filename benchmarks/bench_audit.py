"""Times `datagen audit` on a large synthetic manifest and `datagen verify` on a real small build.

    python benchmarks/bench_audit.py                      # 1,000,000-row manifest, 256-example demo build
    python benchmarks/bench_audit.py --rows 200000 --examples 64 --workers 2 --workdir /tmp/bench

The audit manifest is random but plausible (every column of the schema filled, 48-band noise profiles
included, no leakage between splits) and written with `manifests.io.write_manifest`; it has no
shards, since the audit reads manifests only. The verify build is the embedded demo corpus with the
example counts reduced; an existing build in --workdir is reused. Prints a table of the figures and
the command lines used.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manifests.io import table_from_rows, write_manifest  # noqa: E402
from manifests.schema import EXAMPLES_SCHEMA, SOURCES_SCHEMA  # noqa: E402

SPLITS = {"train": 0.8, "valid": 0.1, "test": 0.1}
CLEAN = {"speech": ["libritts", "vctk", "daps"], "music": ["musdb", "fma"]}
NOISE_TYPES = ["hum", "hiss", "fan", "hvac", "fridge", "traffic_far", "rain", "pink", "brown", "white"]
BANDS = 48


def _hex(rng: np.random.Generator, n: int, chars: int) -> pa.Array:
    digits = np.frombuffer(b"0123456789abcdef", dtype="S1")
    return pa.array(digits[rng.integers(0, 16, (n, chars))].view(f"S{chars}").ravel()).cast(pa.string())


def _join(*parts) -> pa.Array:
    arrays = [p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(p) for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


def make_corpus(out: Path, rows: int, seed: int = 0) -> dict:
    """Write OUT/examples.parquet (`rows` rows), OUT/sources.parquet and OUT/build.json; returns sizes."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {s: int(round(rows * f)) for s, f in SPLITS.items()}
    counts["train"] += rows - sum(counts.values())

    # sources: per split disjoint pools of clean groups/recordings and noise recordings (no leakage)
    sources = []
    pools: dict[str, dict] = {}
    for split in SPLITS:
        pools[split] = {"clean": [], "noise": {t: [] for t in NOISE_TYPES}}
    for source_type, corpora in CLEAN.items():
        for corpus in corpora:
            for group in range(400 if source_type == "speech" else 120):
                split = list(SPLITS)[0 if group % 10 < 8 else 1 if group % 10 == 8 else 2]
                for rec in range(10):
                    sid = hashlib.sha1(f"{corpus}:{group}:{rec}".encode()).hexdigest()[:16]
                    row = {"source_id": sid, "path": f"/data/{corpus}/g{group:04d}/r{rec:03d}.flac", "corpus": corpus, "source_type": source_type,
                           "group_key": f"{corpus}-g{group:04d}", "synthetic": False, "sample_rate": 48000, "channels": 1,
                           "duration_s": float(rng.uniform(8, 300)), "loudness_lufs": float(rng.uniform(-35, -18)), "peak_dbfs": -3.0,
                           "active_ratio": float(rng.uniform(0.5, 1)), "bandwidth_hz": 20000.0, "file_size_bytes": 10**6, "mtime_ns": 0}
                    sources.append(row)
                    pools[split]["clean"].append(row)
    for noise_type in NOISE_TYPES:
        for rec in range(60):
            score = float(rng.gamma(2.0, 0.6)) if rec < 54 else float(rng.uniform(3.5, 25))
            row = {"source_id": hashlib.sha1(f"noise:{noise_type}:{rec}".encode()).hexdigest()[:16], "path": f"/data/noise/{noise_type}/n{rec:03d}.flac",
                   "corpus": "noise", "source_type": "noise", "noise_type": noise_type, "group_key": f"{noise_type}/n{rec:03d}.flac",
                   "synthetic": False, "sample_rate": 48000, "channels": 1, "duration_s": float(rng.uniform(10, 120)), "stationarity_db": score,
                   "excluded_reason": f"non-stationary: score {score:.2f} dB > filters.stationarity_threshold_db = 3.0 dB" if score > 3.0 else None}
            sources.append(row)
            if not row["excluded_reason"]:
                pools[list(SPLITS)[0 if rec % 10 < 8 else 1 if rec % 10 == 8 else 2]]["noise"][noise_type].append(row)
    sources.append({"source_id": "f" * 16, "path": "/data/vctk/broken.wav", "corpus": "vctk", "source_type": "speech", "group_key": "broken",
                    "synthetic": False, "error": "unreadable: LibsndfileError: Format not recognised"})
    write_manifest(table_from_rows(sources, "sources"), str(out / "sources.parquet"), "sources")

    # examples: vectorized, one block per split
    blocks = []
    for split, n in counts.items():
        clean, noise = pools[split]["clean"], pools[split]["noise"]
        clean_table = pa.Table.from_pylist(clean, schema=SOURCES_SCHEMA)
        pick = pa.array(rng.integers(0, len(clean), n))
        picked = clean_table.take(pick)
        noise_rows = [r for t in NOISE_TYPES for r in noise[t]]
        noise_table = pa.Table.from_pylist(noise_rows, schema=SOURCES_SCHEMA)
        npicked = noise_table.take(pa.array(rng.integers(0, len(noise_rows), n)))
        index = np.arange(n)
        target = rng.uniform(-5, 25, n)
        measured = target + np.clip(rng.normal(0, 0.02, n), -0.09, 0.09)
        loud_target = rng.uniform(-35, -20, n)
        clean_loud = loud_target + rng.normal(0, 0.05, n)
        ceiling = np.where(rng.random(n) < 0.05, -rng.exponential(1.5, n), 0.0)
        sizes = {m: rng.integers(150_000, 450_000, n) for m in ("noisy", "clean", "noise")}
        sizes["json"] = rng.integers(1500, 1900, n)
        # tar layout: 4 members per example (header + padded data), 64 examples per shard
        per_example = sum(512 + ((sizes[m] + 511) // 512) * 512 for m in sizes)
        start = np.concatenate([[0], np.cumsum(per_example)[:-1]])
        position = start - start[(index // 64) * 64]
        offsets = {}
        for m in ("noisy", "clean", "noise", "json"):
            offsets[m] = position + 512
            position = position + 512 + ((sizes[m] + 511) // 512) * 512
        index_str = pc.utf8_lpad(pa.array(index).cast(pa.string()), 8, "0")
        shard_str = pc.utf8_lpad(pa.array(index // 64).cast(pa.string()), 6, "0")
        columns = {
            "example_id": _join(f"{split}-", index_str), "split": pa.array([split] * n), "index": pa.array(index),
            "shard": _join(f"{split}/shard-", shard_str, ".tar"),
            **{f"{m}_offset": pa.array(offsets[m]) for m in offsets}, **{f"{m}_size": pa.array(sizes[m]) for m in sizes},
            **{f"{m}_sha256": _hex(rng, n, 64) for m in ("noisy", "clean", "noise")},
            "source_type": picked.column("source_type"), "clean_source_id": picked.column("source_id"), "clean_path": picked.column("path"),
            "clean_corpus": picked.column("corpus"), "group_key": picked.column("group_key"),
            "clean_start_s": pa.array(rng.uniform(0, 100, n)), "clean_bandwidth_hz": pa.array(np.full(n, 20000.0)),
            "noise_source_id": npicked.column("source_id"), "noise_path": npicked.column("path"), "noise_corpus": npicked.column("corpus"),
            "noise_type": npicked.column("noise_type"), "noise_start_s": pa.array(rng.uniform(0, 60, n)),
            "noise_loop_count": pa.array(np.zeros(n, dtype=np.int16)), "noise_crossfade_s": pa.array(np.zeros(n)),
            "noise_stationarity_db": npicked.column("stationarity_db"), "snr_definition": pa.array(["active"] * n),
            "snr_target_db": pa.array(target), "snr_measured_db": pa.array(measured), "clean_loudness_target_lufs": pa.array(loud_target),
            "clean_loudness_lufs": pa.array(clean_loud),
            "clean_gain_db": pa.array(rng.normal(-4, 5, n)), "noise_gain_db": pa.array(rng.normal(-10, 8, n)), "ceiling_gain_db": pa.array(ceiling),
            "noisy_peak_dbfs": pa.array(rng.uniform(-20, -1, n)), "duration_s": pa.array(np.full(n, 4.0)),
            "sample_rate": pa.array(np.full(n, 48000, dtype=np.int32)), "channels": pa.array(np.ones(n, dtype=np.int16)),
            "audio_format": pa.array(["flac24"] * n), "synthetic": pa.array(np.zeros(n, dtype=bool)),
            "noise_profile_db": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * BANDS),
                                                         pa.array(rng.normal(-70, 10, n * BANDS).astype(np.float32))),
        }
        blocks.append(pa.table({name: columns[name] for name in EXAMPLES_SCHEMA.names}).cast(EXAMPLES_SCHEMA))
    table = pa.concat_tables(blocks)
    write_manifest(table, str(out / "examples.parquet"), "examples")
    config = {"seed": 0, "audio": {"sample_rate": 48000, "channels": 1, "clip_duration_s": 4.0, "format": "flac24"},
              "filters": {"stationarity_threshold_db": 3.0}, "splits": {"fractions": SPLITS, "examples": counts, "hours": {}}}
    report = {"schema_version": 1, "output_hash": "bench0000000000", "config": config, "counts": {"examples": rows, "examples_by_split": counts}}
    (out / "build.json").write_text(json.dumps(report))
    return {"examples_mb": (out / "examples.parquet").stat().st_size / 1e6, "sources": len(sources)}


def demo_build(out: Path, examples: int, workers: int) -> float:
    """Build the demo corpus with `examples` examples into `out` (reused if already there); returns seconds (0 if reused)."""
    from datagen.build import build
    from datagen.config import parse_config

    if (out / "build.json").exists():
        return 0.0
    demo = ROOT / "datagen" / "demo.toml"
    table = tomllib.loads(demo.read_text())
    n_valid = n_test = max(4, examples // 8)
    table["splits"]["examples"] = {"train": examples - n_valid - n_test, "valid": n_valid, "test": n_test}
    started = time.perf_counter()
    build(parse_config(table, f"{demo} (examples={examples})", demo.parent), str(out), workers=workers, progress=False)
    return time.perf_counter() - started


def timed(command: list[str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic manifest for audit (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=256, help="examples of the real demo build for verify (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers for the build and verify (default: %(default)s)")
    parser.add_argument("--workdir", help="where to write (default: a temporary folder, deleted afterwards)")
    args = parser.parse_args()

    from datagen import audit as audit_mod
    from datagen.build import dask_client
    from datagen.verify import verify

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-audit-"))
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    results = []

    big = workdir / f"manifest-{args.rows}"
    started = time.perf_counter()
    reused = (big / "build.json").exists()
    if not reused:
        make_corpus(big, args.rows)
    print(f"synthetic manifest: {args.rows:,} rows, examples.parquet {(big / 'examples.parquet').stat().st_size / 1e6:.0f} MB, "
          + ("reused" if reused else f"written in {time.perf_counter() - started:.1f} s"), file=sys.stderr)

    started = time.perf_counter()
    result = audit_mod.audit(str(big))
    compute_s = time.perf_counter() - started
    started = time.perf_counter()
    audit_mod.render_text(result)
    render_s = time.perf_counter() - started
    results.append(("audit (library: compute)", f"datagen.audit.audit('{big}')", args.rows, compute_s, "rows"))
    results.append(("audit (library: render table)", "datagen.audit.render_text(result)", args.rows, render_s, None))
    assert not result.failed, result.missing
    for fmt in ("table", "json", "html"):
        command = [python, "-m", "datagen.cli", "audit", str(big), "--format", fmt]
        if fmt != "table":
            command += ["-o", str(workdir / f"audit.{fmt}")]
        seconds, code, _ = timed(command)
        assert code == 0, f"{' '.join(command)} exited {code}"
        results.append((f"audit --format {fmt}", " ".join(command), args.rows, seconds, "rows"))

    small = workdir / f"demo-{args.examples}"
    build_s = demo_build(small, args.examples, args.workers)
    print(f"demo build: {args.examples} examples in {small}" + (f", built in {build_s:.1f} s" if build_s else " (reused)"), file=sys.stderr)
    with dask_client(args.workers, 1, "") as client:
        verify(str(small), client=client)  # warm the workers (imports)
        report = verify(str(small), client=client)
    assert report.ok, [p.line() for p in report.problems]
    results.append((f"verify (library, warm {args.workers}-worker cluster)", f"datagen.verify.verify('{small}', client=client)", report.examples,
                    report.elapsed_s, "examples", report.bytes_read))
    command = [python, "-m", "datagen.cli", "verify", str(small), "--workers", str(args.workers), "--no-progress"]
    seconds, code, _ = timed(command)
    assert code == 0, f"{' '.join(command)} exited {code}"
    results.append(("verify (CLI, incl. cluster start)", " ".join(command), report.examples, seconds, "examples", report.bytes_read))

    print(f"\n{'step':44} {'items':>10} {'seconds':>8} {'rate':>26}   command")
    for row in results:
        name, command, items, seconds, unit = row[:5]
        rate = f"{items / seconds:,.0f} {unit}/s" if unit else ""
        if len(row) > 5:
            rate = f"{items / seconds:,.1f} {unit}/s, {row[5] / 1e6 / seconds:,.1f} MB/s"
        print(f"{name:44} {items:>10,} {seconds:>8.2f} {rate:>26}   {command}")
    print(f"\n(cpu count {os.cpu_count()}; verify read {report.bytes_read / 1e6:.1f} MB of member data from {report.shard_bytes / 1e6:.1f} MB of shards)")
    if not args.workdir:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
