"""`datagen build`: index -> plan -> render shards on Dask -> finalize manifests.

A shard is written under a temporary name and renamed when complete; its manifest part is written
after it, so a shard counts as done only when its part exists. A killed build started again renders
the shards that have no part and gives the same bytes as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import platform
import posixpath
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import fsspec
import pyarrow as pa
from tqdm.auto import tqdm

from manifests.bands import BandLayout, erb_layout
from manifests.io import ManifestError, atomic_write_bytes, join, read_manifest, table_from_rows, write_manifest
from manifests.lock import LOCK_NAME, FolderLock
from manifests.schema import METADATA_KEY, SCHEMA_VERSION

from .bandwidth import bandlimited_warnings
from .config import RENDER_VERSION, BuildConfig
from .filetypes import STATE_DIR
from .coverage import noise_type_gap_warnings, noise_types_by_split
from .plan import ExamplePlan, plan_examples, split_sources
from .render import render_example
from .resume import InputsChanged, check_inputs, inputs_snapshot, plan_digest
from .shards import TarShardWriter
from .probe import probe
from .sources import SourceFile, exclusion_reason, index_sources, scan_corpus

# Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 for workers, which also turns off glibc's dynamic mmap
# threshold: every array above 128 KiB is then mmapped and unmapped, and page faults made rendering 1.5x
# slower (42-46 vs 28-29 ms per 4 s example, measured). Arrays up to 32 MiB come from the heap instead.
WORKER_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": 256 * 2**20, "MALLOC_MMAP_THRESHOLD_": 32 * 2**20}
# Local workers run without Dask's statistical profiler (a stack sample of the task thread every 10 ms,
# for the dashboard's profile page): rendering was 1.5 % faster without it (3 of 3 paired trials).
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
PROBES_PER_TASK = 8  # files per probe task at most ...
PROBE_BYTES_PER_TASK = 64 * 2**20  # ... and this many bytes, so long files spread over the workers


class BuildError(RuntimeError):
    """The build cannot start or finish; the message says why and what to do."""


def synthetic_dir() -> Path:
    """Where generator corpora are materialized: $HIFI_DENOISE_CACHE or ~/.cache/hifi-denoise (content is a pure function of the config)."""
    return Path(os.environ.get("HIFI_DENOISE_CACHE", Path.home() / ".cache" / "hifi-denoise")) / "synthetic"


def band_layout_of(config: BuildConfig) -> BandLayout:
    return erb_layout(config.audio.sample_rate, config.profile.bands, config.profile.n_fft, config.profile.hop)


# ---------------------------------------------------------------- output folder state


def _fs(out: str):
    return fsspec.core.url_to_fs(out)


def prepare_output(out: str, config: BuildConfig, overwrite: bool) -> None:
    """Refuse a folder holding another config's build (unless `overwrite`) or foreign files; record this config.

    A folder whose earlier build stopped before any shard was written (e.g. a config error found
    while planning) holds nothing to lose: it is taken over without `overwrite`, keeping its probe
    rows (sources.parquet) when they were measured by the same RENDER_VERSION.
    """
    fs, root = _fs(out)
    state = join(out, STATE_DIR, "config.json")
    entries = [e for e in fs.ls(root, detail=False) if posixpath.basename(e.rstrip("/")) != LOCK_NAME] if fs.exists(root) else []
    if entries:
        if not fs.exists(_fs(state)[1]):
            raise BuildError(f"{out}: the folder is not empty and holds no datagen build; choose an empty or new folder")
        previous = json.loads(fs.cat_file(_fs(state)[1]))
        if previous.get("output_hash") != config.output_hash():
            rendered = fs.glob(_fs(join(out, STATE_DIR, "parts", "**", "*.parquet"))[1]) or fs.exists(_fs(join(out, "examples.parquet"))[1])
            if rendered and not overwrite:
                raise BuildError(f"{out}: holds a build of a different config (hash {previous.get('output_hash')} vs {config.output_hash()}); "
                                 "use another folder, or pass --overwrite to replace it")
            clear_output(out, keep_probes=not rendered and previous.get("render_version") == RENDER_VERSION)
    record_config(out, config)
    for stale in fs.glob(posixpath.join(root, "**", "*.tmp-*")):  # leftovers of a killed build
        fs.rm(stale)


def record_config(out: str, config: BuildConfig) -> None:
    """Write the state file that marks `out` as a build of `config`."""
    record = {"output_hash": config.output_hash(), "render_version": RENDER_VERSION, "config": config.to_dict()}
    atomic_write_bytes(join(out, STATE_DIR, "config.json"), json.dumps(record, indent=2, sort_keys=True).encode())


def clear_output(out: str, keep_probes: bool) -> None:
    """Delete everything of the build in `out` but its lock (and its probe rows, sources.parquet, if `keep_probes`)."""
    fs, root = _fs(out)
    keep = {LOCK_NAME} | ({"sources.parquet"} if keep_probes else set())
    for entry in fs.ls(root, detail=False):
        if posixpath.basename(entry.rstrip("/")) not in keep:
            fs.rm(entry, recursive=True)


def part_path(out: str, shard: str) -> str:
    return join(out, STATE_DIR, "parts", shard.replace(".tar", ".parquet"))


# ---------------------------------------------------------------- work done on the workers


def _prepare_worker() -> None:
    """Load the audio stack and the compiled kernels now, not in the first task."""
    importlib.import_module("datagen.render")
    importlib.import_module("datagen.kernels").warm_up()


def probe_batch(sources: list[SourceFile], min_duration_s: float) -> list[dict]:
    return [probe(source, min_duration_s) for source in sources]


@dataclass(frozen=True)
class ShardResult:
    shard: str
    examples: int
    audio_s: float
    elapsed_s: float
    peak_rss_mb: float  # the worker process's peak resident memory so far


def render_shard(out: str, shard: str, plans: list[ExamplePlan], config: BuildConfig) -> ShardResult:
    """Render all examples of one shard into `out/shard` (atomically) and write its manifest part."""
    started = time.perf_counter()
    layout = band_layout_of(config)
    fs, final = _fs(join(out, shard))
    fs.makedirs(posixpath.dirname(final), exist_ok=True)
    tmp = f"{final}.tmp-{uuid.uuid4().hex}"
    records = []
    try:
        with fs.open(tmp, "wb") as stream:
            writer = TarShardWriter(stream)
            for plan in plans:
                rendered = render_example(plan, config, layout)
                record = dict(rendered.record)
                for (name, data) in rendered.members:
                    location = writer.add(name, data)
                    member = name[len(plan.example_id) + 1 :].split(".")[0]  # noisy | clean | noise | json
                    record[f"{member}_offset"], record[f"{member}_size"] = location.offset, location.size
                records.append(record)
            size = writer.close()
        fs.mv(tmp, final)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)
    shard_info = {"path": shard, "size_bytes": size, "sha256": writer.sha256}
    write_manifest(table_from_rows(records, "examples"), part_path(out, shard), "examples", {"band_layout": layout.to_dict(), "shard": shard_info})
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    return ShardResult(shard, len(plans), sum(r["duration_s"] for r in records), time.perf_counter() - started, peak_rss_mb)


# ---------------------------------------------------------------- orchestration


@contextlib.contextmanager
def dask_client(workers: int, threads_per_worker: int, scheduler: str) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a LocalCluster with `workers` processes (0: one per core)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_MALLOC_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ, **LOCAL_WORKER_CONFIG}), \
            LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                         dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def _materialize_generators(config: BuildConfig) -> dict[str, Path]:
    from . import synthetic

    roots = {}
    for corpus in config.corpora:
        if not corpus.generator:
            continue
        params = f"{corpus.generator}-{corpus.count}-{corpus.duration_s}-{corpus.groups}-{config.audio.sample_rate}-{config.audio.channels}-{config.seed}"
        root = synthetic_dir() / corpus.name / params
        synthetic.materialize(corpus.generator, root, count=corpus.count, duration_s=corpus.duration_s, sample_rate=config.audio.sample_rate,
                              channels=config.audio.channels, seed=config.seed, n_groups=corpus.groups)
        roots[corpus.name] = root
    return roots


def scan_all(config: BuildConfig, where: str) -> list[SourceFile]:
    roots = _materialize_generators(config)
    files: list[SourceFile] = []
    for corpus in config.corpora:
        path = str(roots[corpus.name]) if corpus.generator else corpus.path
        files.extend(scan_corpus(corpus, path, bool(corpus.generator), list(config.splits.fractions), where))
    return files


def probe_batches(files: list[SourceFile]) -> list[list[SourceFile]]:
    """Consecutive files grouped into probe tasks of at most PROBES_PER_TASK files and PROBE_BYTES_PER_TASK bytes (at least one file)."""
    batches: list[list[SourceFile]] = []
    size = 0
    for source in files:
        if not batches or len(batches[-1]) >= PROBES_PER_TASK or size + source.file_size_bytes > PROBE_BYTES_PER_TASK:
            batches.append([])
            size = 0
        batches[-1].append(source)
        size += source.file_size_bytes
    return batches


def run_index(config: BuildConfig, out: str, client, where: str, progress: bool) -> list[dict]:
    """Probe every source (reusing unchanged rows of `out/sources.parquet`) and apply the build policy."""
    files = scan_all(config, where)
    sources_path = join(out, "sources.parquet")
    previous = None
    if _fs(sources_path)[0].exists(_fs(sources_path)[1]):
        with contextlib.suppress(ManifestError):  # another schema version: a cache only, probed again
            previous = read_manifest(sources_path, "sources")

    def run_probes(todo: list[SourceFile], min_duration_s: float) -> list[dict]:
        from distributed import as_completed

        batches = probe_batches(todo)
        futures = {client.submit(probe_batch, batch, min_duration_s, pure=False): i for i, batch in enumerate(batches)}
        results: dict[int, list[dict]] = {}
        with tqdm(total=len(todo), desc="probing sources", unit="file", disable=not progress) as bar:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(len(results[futures[future]]))
        return [row for i in range(len(batches)) for row in results[i]]

    rows = index_sources(files, config.filters.min_duration_s, previous, run_probes)
    for row in rows:
        row["excluded_reason"] = exclusion_reason(row, config)
    write_manifest(table_from_rows(rows, "sources"), sources_path, "sources")
    return rows


def composition_warnings(plans: list[ExamplePlan], config: BuildConfig) -> list[str]:
    """What the planned corpus lacks without being wrong: band-limited clean targets, noise types a split misses."""
    rows = [plan.to_dict() for plan in plans]
    return bandlimited_warnings(rows, config.audio.sample_rate) + noise_type_gap_warnings(noise_types_by_split(rows))


def _versions() -> dict:
    import soundfile

    names = ["hifi-denoise", "numpy", "soundfile", "soxr", "pyloudnorm", "pyarrow", "dask", "distributed", "fsspec", "scipy"]
    versions = {"python": platform.python_version(), "libsndfile": soundfile.__libsndfile_version__}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _counts(records: list[dict], *keys: str) -> dict:
    counter = Counter(tuple(r[k] for k in keys) for r in records)
    return {"/".join(str(v) for v in key): n for key, n in sorted(counter.items())}


def output_lock(out: str, purpose: str) -> contextlib.AbstractContextManager:
    """The one-writer lock of a local build folder (object stores have no exclusive create: not locked)."""
    if "://" in out and not out.startswith("file://"):
        return contextlib.nullcontext()
    return FolderLock(_fs(out)[1], purpose, announce=lambda text: print(f"datagen: {text}", file=sys.stderr))


def build(config: BuildConfig, out: str, where: str = "config", workers: int | None = None, scheduler: str | None = None,
          overwrite: bool = False, progress: bool = True) -> dict:
    """Run a whole build into `out` (holding its lock); returns the build report (also written to out/build.json)."""
    fs, root = _fs(out)
    fresh = not fs.exists(root)
    try:
        with output_lock(out, "datagen build"):
            return _build(config, out, where, workers, scheduler, overwrite, progress)
    except Exception:
        if fresh and fs.exists(root) and not fs.exists(posixpath.join(root, "sources.parquet")):
            fs.rm(root, recursive=True)  # this run made the folder and wrote nothing worth keeping into it
        raise


def _build(config: BuildConfig, out: str, where: str, workers: int | None, scheduler: str | None, overwrite: bool, progress: bool) -> dict:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    prepare_output(out, config, overwrite)
    workers = config.dask.workers if workers is None else workers
    scheduler = config.dask.scheduler if scheduler is None else scheduler
    with dask_client(workers, config.dask.threads_per_worker, scheduler) as client:
        client.run(_prepare_worker)
        timings["start_cluster_s"] = time.perf_counter() - started
        mark = time.perf_counter()
        rows = run_index(config, out, client, where, progress)
        timings["index_s"] = time.perf_counter() - mark
        usable = [r for r in rows if not r.get("error") and not r.get("excluded_reason")]
        mark = time.perf_counter()
        plans = plan_examples(usable, split_sources(usable, config), config)
        timings["plan_s"] = time.perf_counter() - mark
        warnings = composition_warnings(plans, config)
        for warning in warnings if progress else ():
            print(f"datagen: warning: {warning}", file=sys.stderr, flush=True)
        by_shard: dict[str, list[ExamplePlan]] = {}
        for plan in plans:
            by_shard.setdefault(plan.shard, []).append(plan)
        fs = _fs(out)[0]
        todo = [shard for shard in by_shard if not fs.exists(_fs(part_path(out, shard))[1])]
        rendered_any = bool(fs.glob(_fs(join(out, STATE_DIR, "parts", "**", "*.parquet"))[1]))
        try:
            check_inputs(out, fs, inputs_snapshot(rows), plan_digest(plans), rendered_any)
        except InputsChanged as exc:
            if not overwrite:
                raise BuildError(str(exc)) from None
            print(f"datagen: {exc}: --overwrite given, rendering every shard again", file=sys.stderr)
            clear_output(out, keep_probes=True)
            record_config(out, config)
            check_inputs(out, fs, inputs_snapshot(rows), plan_digest(plans), rendered_any=False)
            todo = list(by_shard)
        mark = time.perf_counter()
        results = _render_shards(client, out, {s: by_shard[s] for s in todo}, config, progress)
        timings["render_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    records, shard_infos = finalize(out, list(by_shard), config)
    timings["finalize_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    report = _report(config, rows, records, results, len(by_shard) - len(todo), timings)
    report["shards"] = shard_infos
    report["warnings"] = warnings
    atomic_write_bytes(join(out, "build.json"), json.dumps(report, indent=2, sort_keys=True).encode())
    return report


def _render_shards(client, out: str, shards: dict[str, list[ExamplePlan]], config: BuildConfig, progress: bool) -> list[ShardResult]:
    from distributed import as_completed

    total_examples = sum(len(p) for p in shards.values())
    futures = [client.submit(render_shard, out, shard, plans, config, pure=False, key=f"render-{shard}-{uuid.uuid4().hex[:8]}")
               for shard, plans in shards.items()]
    results = []
    with tqdm(total=len(futures), desc="rendering shards", unit="shard", disable=not progress) as bar:
        examples = audio_s = 0.0
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            examples += result.examples
            audio_s += result.audio_s
            bar.set_postfix_str(f"{int(examples)}/{total_examples} examples, {audio_s / 3600:.2f} h audio")
            bar.update(1)
    return results


def finalize(out: str, shards: list[str], config: BuildConfig) -> tuple[list[dict], list[dict]]:
    """Concatenate the shard parts in plan order into out/examples.parquet -> (summary rows, shard sizes and digests)."""
    tables = [read_manifest(part_path(out, shard), "examples") for shard in shards]
    shard_infos = [json.loads(t.schema.metadata[METADATA_KEY])["shard"] for t in tables]
    table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables]) if tables else table_from_rows([], "examples")
    write_manifest(table, join(out, "examples.parquet"), "examples", {"band_layout": band_layout_of(config).to_dict()})
    rows = table.select(["split", "source_type", "noise_type", "duration_s", "snr_target_db", "snr_measured_db", "synthetic"]).to_pylist()
    return rows, shard_infos


def _report(config: BuildConfig, rows: list[dict], records: list[dict], results: list[ShardResult], resumed: int, timings: dict) -> dict:
    rendered_s = sum(r.audio_s for r in results)
    render_s = timings.get("render_s", 0.0)
    errors = [{"path": r["path"], "corpus": r["corpus"], "reason": r["error"]} for r in rows if r.get("error")]
    excluded = [{"path": r["path"], "corpus": r["corpus"], "reason": r["excluded_reason"]} for r in rows if r.get("excluded_reason")]
    deviation = max((abs(r["snr_measured_db"] - r["snr_target_db"]) for r in records), default=0.0)
    return {
        "schema_version": SCHEMA_VERSION,
        "config": config.to_dict(),
        "output_hash": config.output_hash(),
        "versions": _versions(),
        "counts": {
            "sources": len(rows),
            "sources_used": len(rows) - len(errors) - len(excluded),
            "sources_failed": len(errors),
            "sources_excluded": len(excluded),
            "excluded_nonstationary": sum(1 for e in excluded if e["reason"].startswith("non-stationary")),
            "examples": len(records),
            "hours": sum(r["duration_s"] for r in records) / 3600.0,
            "examples_by_split": _counts(records, "split"),
            "examples_by_split_source_type": _counts(records, "split", "source_type"),
            "examples_by_noise_type": _counts(records, "noise_type"),
            "synthetic_examples": sum(1 for r in records if r["synthetic"]),
            "shards": len(results) + resumed,
            "shards_resumed": resumed,
        },
        "max_snr_error_db": deviation,
        "failed_files": errors,
        "excluded_files": excluded,
        "timings": {**timings, "render_audio_s_per_s": rendered_s / render_s if render_s else None},
        "worker_peak_rss_mb": max((r.peak_rss_mb for r in results), default=None),
    }

