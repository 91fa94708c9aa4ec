#!/usr/bin/env python3
"""Memory and throughput of indexing long recordings (the probe of every source), measured in one run.

    python benchmarks/bench_index.py [--minutes 10] [--files 4] [--sample-rate 48000] [--channels 2]
                                     [--repeats 3] [--work DIR]

Generates two corpora of long multi-channel FLAC files (24-bit) under --work, half speech-like (syllables
and pauses), half stationary noise: --files files of L = --minutes each, and --files files of 2L. Each
corpus is indexed through `datagen.build.run_index` on a fresh LocalCluster (`datagen.build.dask_client`)
of 1 and of 2 workers, --repeats times each (the machine's shared cores make single runs noisy); the
table gives the median wall time (range in brackets), files/s and audio hours/s from it, and each
worker's peak resident memory (ru_maxrss, read with client.run) before indexing (imports and compiled
kernels) and after it, the highest over the trials.
Reference, measured in the same run in fresh processes on the longest noise file of each corpus:
the peak resident memory of the whole-file path the probe used before streaming (read the whole file,
then the whole-array measures) and of the streaming probe.

The build groups files into probe tasks of at most 8 files and 64 MB (`datagen.build.probe_batches`), so
long files spread over the workers.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from datagen import build
from datagen.config import load_config

CHUNK_S = 10  # generated and written at a time


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _chunk(kind: str, rng: np.random.Generator, start_s: float, sample_rate: int, channels: int) -> np.ndarray:
    """CHUNK_S seconds of speech-like or noise audio -> (samples, channels) float32."""
    n = CHUNK_S * sample_rate
    t = start_s + np.arange(n) / sample_rate
    if kind == "noise":  # white noise and a steady hum: stationary
        hum = 0.02 * np.sin(2 * np.pi * 50.0 * t)
        return np.stack([0.05 * rng.standard_normal(n) + hum for _ in range(channels)], axis=1).astype(np.float32)
    f0 = 140.0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    x = 0.2 * voiced * syllables
    return np.stack([x * (1.0 - 0.1 * c) + 1e-4 * rng.standard_normal(n) for c in range(channels)], axis=1).astype(np.float32)


def write_file(args: tuple[Path, str, int, int, int, int]) -> Path:
    """One generated FLAC file; kept if it already exists with the right length (reruns on the same --work)."""
    path, kind, seconds, sample_rate, channels, seed = args
    if path.exists():
        with sf.SoundFile(path) as sound:
            if (sound.frames, sound.samplerate, sound.channels) == (seconds * sample_rate, sample_rate, channels):
                return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp.flac")
    with sf.SoundFile(tmp, "w", sample_rate, channels, format="FLAC", subtype="PCM_24") as sound:
        for start in range(0, seconds, CHUNK_S):
            sound.write(_chunk(kind, rng, float(start), sample_rate, channels))
    tmp.rename(path)
    return path


def corpus_jobs(root: Path, files: int, seconds: int, sample_rate: int, channels: int) -> list[tuple]:
    return [(root / ("noise/hum" if i % 2 else "speech/spk") / f"{'noise' if i % 2 else 'speech'}{i:02d}.flac",
             "noise" if i % 2 else "speech", seconds, sample_rate, channels, seconds * 1000 + i) for i in range(files)]


def write_config(path: Path, root: Path) -> Path:
    path.write_text(f"""
seed = 1
[splits]
fractions = {{ train = 1.0 }}
examples = {{ train = 1 }}
[[corpora]]
name = "speech"
type = "speech"
path = "{root / 'speech'}"
[[corpora]]
name = "noise"
type = "noise"
path = "{root / 'noise'}"
""")
    return path


def index_once(config_path: Path, out: Path, workers: int) -> tuple[float, list[dict], list[float], list[float]]:
    """Index on a fresh cluster -> (wall s, rows, per-worker peak RSS MB before and after indexing)."""
    config = load_config(config_path)
    with build.dask_client(workers, 1, "") as client:
        client.run(build._prepare_worker)
        before = list(client.run(_peak_rss_mb).values())
        started = time.perf_counter()
        rows = build.run_index(config, str(out), client, "bench", progress=False)
        elapsed = time.perf_counter() - started
        after = list(client.run(_peak_rss_mb).values())
    return elapsed, rows, before, after


def _reference(mode: str, path: str, results) -> None:
    """In a fresh process: probe `path` the old whole-file way or by streaming; report the peak RSS."""
    from datagen import kernels
    from datagen.probe import measure_audio, probe, read_audio
    from datagen.sources import SourceFile

    kernels.warm_up()
    baseline = _peak_rss_mb()
    if mode == "whole":
        audio, sample_rate = read_audio(path)
        measure_audio(audio, sample_rate, "noise")
    else:
        row = probe(SourceFile(path, Path(path).name, "bench", "noise", "hum", "g", False, 0, 0), 1.0)
        assert not row.get("error"), row["error"]
    results.put((baseline, _peak_rss_mb()))


def reference_rss(mode: str, path: Path) -> tuple[float, float]:
    """(peak RSS MB after imports and kernels, peak RSS MB after probing) of a fresh spawned process."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_reference, args=(mode, str(path), results))
    process.start()
    value = results.get()
    process.join()
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length L of the files of the first corpus (the second: 2L)")
    parser.add_argument("--files", type=int, default=4, help="files per corpus (half speech-like, half noise)")
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="trials per corpus and worker count")
    parser.add_argument("--work", default=None, help="folder for the generated corpora and indexes (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_index_"))
    work.mkdir(parents=True, exist_ok=True)

    lengths_s = [int(round(args.minutes * 60)), 2 * int(round(args.minutes * 60))]
    print(f"benchmark: {args.repeats} trials; {args.files} files x {lengths_s[0] / 60:.1f} and x {lengths_s[1] / 60:.1f} min, {args.sample_rate} Hz, "
          f"{args.channels} channels, FLAC 24-bit; work folder {work}", flush=True)
    started = time.perf_counter()
    corpora = []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for seconds in lengths_s:
            root = work / f"corpus_{seconds}s"
            pool.map(write_file, corpus_jobs(root, args.files, seconds, args.sample_rate, args.channels))
            corpora.append((seconds, root, write_config(work / f"index_{seconds}s.toml", root)))
    print(f"  corpora ready in {time.perf_counter() - started:.0f} s", flush=True)

    rows = []
    for seconds, root, config_path in corpora:
        for workers in (1, 2):
            times, before, after = [], [0.0] * workers, [0.0] * workers
            for trial in range(args.repeats):
                elapsed, index, trial_before, trial_after = index_once(config_path, work / f"index_{seconds}s_{workers}w_{trial}", workers)
                errors = [r["error"] for r in index if r.get("error")]
                if errors:
                    raise SystemExit(f"probe errors in {root}: {errors}")
                times.append(elapsed)
                before, after = [max(pair) for pair in zip(before, trial_before)], [max(pair) for pair in zip(after, trial_after)]
                print(f"  {len(index)} files x {seconds / 60:g} min, {workers} worker(s), trial {trial + 1}: {elapsed:.1f} s", flush=True)
            hours = sum(r["duration_s"] for r in index) / 3600.0
            rows.append((seconds, len(index), hours, workers, times, before, after))

    references = []
    for seconds, root, _ in corpora:
        noise_file = sorted((root / "noise").rglob("*.flac"))[0]
        audio_mb = seconds * args.sample_rate * args.channels * 4 / 2**20
        references.append((seconds, audio_mb, reference_rss("whole", noise_file), reference_rss("stream", noise_file)))

    print()
    print("| files x length | audio | workers | wall | files/s | audio h/s | peak RSS per worker: before -> after indexing |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for seconds, files, hours, workers, times, before, after in rows:
        elapsed = float(np.median(times))
        rss = ", ".join(f"{b:.0f} -> {a:.0f} MB" for b, a in zip(before, after))
        print(f"| {files} x {seconds / 60:g} min | {hours:.2f} h | {workers} | {elapsed:.1f} s ({min(times):.1f}-{max(times):.1f}) "
              f"| {files / elapsed:.3f} | {hours / elapsed:.2f} | {rss} |")
    print()
    print("reference, one noise file in a fresh process: peak RSS after imports and kernels -> after probing")
    print()
    print("| file length | its float32 audio | whole-file read + whole-array measures (before streaming) | streaming probe |")
    print("|---|---:|---:|---:|")
    for seconds, audio_mb, whole, stream in references:
        print(f"| {seconds / 60:g} min | {audio_mb:.0f} MB | {whole[0]:.0f} -> {whole[1]:.0f} MB | {stream[0]:.0f} -> {stream[1]:.0f} MB |")
    print(f"\n(total {time.perf_counter() - started:.0f} s including generation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
