#!/usr/bin/env python3
"""Throughput of `datagen build` on real recordings against the decode+encode limit, measured in one run.

    python benchmarks/bench_build.py --speech DIR [DIR ...] --music DIR [...] --noise DIR [...]
                                     [--examples 512] [--clip-s 4] [--format flac24] [--repeats 3] [--work DIR]

Noise folders hold one sub-folder per noise type (or files directly: the folder name is the type).
For 1 and 2 workers it prints, as seconds of mixture audio written per wall second:
  - build:  the render phase of `datagen build` (read, resample, level, SNR, ceiling, encode, tar, manifest)
  - limit:  decoding the same source regions and encoding the same output members in the same format,
            nothing else (1 process; 2 processes for the 2-worker row)
  - plain:  a plain numpy mixer in the DNS-Challenge style (decode, resample, RMS SNR, peak normalize,
            encode), for reference
and the worker's peak resident memory, for the full example count and for half of it. Each worker count
is measured `--repeats` times (build, limit, plain in turn); the table gives medians and ranges.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soxr

from datagen.build import build
from datagen.config import load_config
from datagen.render import RESAMPLE_MARGIN_S, encode, match_channels, read_frames
from manifests.io import open_example, read_manifest


def write_config(path: Path, args: argparse.Namespace, examples: int) -> Path:
    corpora = []
    for kind in ("speech", "music", "noise"):
        for i, folder in enumerate(getattr(args, kind)):
            corpora.append(f'[[corpora]]\nname = "{kind}{i}"\ntype = "{kind}"\npath = "{Path(folder).resolve()}"\n'
                           + ('group_pattern = "^([^/]+)/"\n' if kind != "noise" else ""))
    path.write_text(f"""
seed = 1
[audio]
clip_duration_s = {args.clip_s}
format = "{args.format}"
[mix]
noise_loop = "crossfade"
[filters]
stationarity_threshold_db = 1000.0  # benchmark every noise recording given, stationary or not
[splits]
fractions = {{ train = 1.0 }}
examples = {{ train = {examples} }}
[shards]
examples_per_shard = 32
""" + "\n".join(corpora))
    return path


def _regions(out: Path) -> list[tuple]:
    """Per example: the source frames the renderer decodes, and where its written members are."""
    sources = {r["source_id"]: r for r in read_manifest(str(out / "sources.parquet"), "sources").to_pylist()}
    jobs = []
    for row in read_manifest(str(out / "examples.parquet"), "examples").to_pylist():
        reads = []
        for prefix in ("clean", "noise"):
            source = sources[row[f"{prefix}_source_id"]]
            rate = source["sample_rate"]
            start = int(round(row[f"{prefix}_start_s"] * rate))
            stop = start + int(np.ceil(row["duration_s"] * rate))
            margin = 0 if rate == row["sample_rate"] else int(round(RESAMPLE_MARGIN_S * rate))
            reads.append((source["path"], start - margin, stop + margin, rate))
        jobs.append((reads, str(out), row))
    return jobs


def _members(jobs: list[tuple]) -> list[list[np.ndarray]]:
    """The written members of each job, decoded before any timing starts."""
    members = []
    for _, out, row in jobs:
        audio = open_example(row, out)
        members.append([audio.noisy, audio.clean, audio.noise])
    return members


def limit_work(jobs: list[tuple], members: list[list[np.ndarray]]) -> None:
    """Decode the source regions and encode the members, nothing else."""
    for (reads, _, row), written in zip(jobs, members):
        for path, start, stop, _ in reads:
            read_frames(path, start, stop)
        for member in written:
            encode(member, row["sample_rate"], row["audio_format"])


def plain_work(jobs: list[tuple], _members_unused: list) -> None:
    """A plain numpy mixer: decode, resample, RMS-SNR mix at a fixed SNR, peak-normalize, encode."""
    for reads, _, row in jobs:
        rate, length = row["sample_rate"], int(round(row["duration_s"] * row["sample_rate"]))
        parts = []
        for path, start, stop, source_rate in reads:
            audio = read_frames(path, start, stop)
            if source_rate != rate:
                audio = soxr.resample(np.ascontiguousarray(audio.T), source_rate, rate).T
            parts.append(match_channels(audio, row["channels"])[:, :length])
        clean, noise = parts
        noise = noise * np.sqrt(np.mean(clean**2) / max(np.mean(noise**2), 1e-20) / 10.0)
        noisy = clean + noise
        scale = 0.89 / max(np.abs(noisy).max(), 1e-9)
        for member in (noisy * scale, clean * scale, noise * scale):
            encode(member, rate, row["audio_format"])


def _timed(work, jobs: list[tuple], barrier, results) -> None:
    members = _members(jobs) if work is limit_work else []
    barrier.wait()  # all processes start their timed work together
    started = time.perf_counter()
    work(jobs, members)
    results.put(time.perf_counter() - started)


def run_parallel(work, jobs: list[tuple], processes: int) -> float:
    """Wall seconds for `processes` processes to run `work` side by side over a share of `jobs` each."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_timed, args=(work, jobs[i::processes], barrier, results)) for i in range(processes)]
    for worker in workers:
        worker.start()
    elapsed = max(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech", nargs="+", required=True)
    parser.add_argument("--music", nargs="+", required=True)
    parser.add_argument("--noise", nargs="+", required=True)
    # 512 = 16 shards of 32: the 2-worker build splits evenly, like the 2-process limit (no worker idles at the end)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--clip-s", type=float, default=4.0)
    parser.add_argument("--format", default="flac24", choices=["flac16", "flac24", "wav_float"])
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3, help="trials per worker count (the machine's shared cores make single runs noisy)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_build_"))
    work.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(work / "bench.toml", args, args.examples))
    half = load_config(write_config(work / "half.toml", args, args.examples // 2))

    print(f"benchmark: {args.examples} examples x {args.clip_s} s, {config.audio.sample_rate} Hz, {args.format}; work folder {work}", flush=True)
    # a first build warms the OS file cache, so every timed run below reads the sources from memory
    build(half, str(work / "warmup"), workers=2, progress=False)
    rows = []
    for workers in (1, 2):
        half_report = build(half, str(work / f"half_{workers}w"), workers=workers, progress=False)
        trials = []  # (render, end to end, limit, plain) in s/s; build, limit and plain alternate so drifts hit all three
        for trial in range(args.repeats):
            out = work / f"build_{workers}w_{trial}"
            report = build(config, str(out), workers=workers, progress=False)
            audio_s = report["counts"]["hours"] * 3600.0
            jobs = _regions(out)
            limit_s = run_parallel(limit_work, jobs, workers)
            plain_s = run_parallel(plain_work, jobs, workers)
            trials.append((audio_s / report["timings"]["render_s"], audio_s / report["timings"]["total_s"], audio_s / limit_s, audio_s / plain_s))
            print(f"  {workers} worker(s), trial {trial + 1}: build {trials[-1][0]:.1f} s/s = {trials[-1][0] / trials[-1][2]:.0%} of the limit "
                  f"{trials[-1][2]:.1f} s/s; plain mixer {trials[-1][3] / trials[-1][2]:.0%}", flush=True)
        rows.append((workers, trials, report["worker_peak_rss_mb"], half_report["worker_peak_rss_mb"]))
    print()
    print(f"median of {args.repeats} trials (range in brackets)")
    print()
    print("| workers | build (render) | build (end to end) | decode+encode limit | build / limit | plain numpy mixer / limit | peak RSS per worker (N / N/2 examples) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for workers, trials, rss, rss_half in rows:
        render, total, limit, plain = (float(np.median(column)) for column in zip(*trials))
        ratio = [t[0] / t[2] for t in trials]
        plain_ratio = [t[3] / t[2] for t in trials]
        print(f"| {workers} | {render:.1f} s/s | {total:.1f} s/s | {limit:.1f} s/s | {np.median(ratio):.0%} ({min(ratio):.0%}-{max(ratio):.0%}) "
              f"| {np.median(plain_ratio):.0%} ({min(plain_ratio):.0%}-{max(plain_ratio):.0%}) | {rss:.0f} / {rss_half:.0f} MB |")
    print("\n(s/s = seconds of mixture audio written per wall second; limit for 2 workers = 2 processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
