"""Scanning the configured corpora into source files, reusing probe rows of unchanged files, and the build policy.

Rows of files whose size and mtime are unchanged are reused from a previous index; the rest are
probed (`datagen.probe`).
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Callable, Iterable

import fsspec
import pyarrow as pa

from .config import BuildConfig, ConfigError, CorpusConfig
from .labels import label_files, read_labels_csv
from .filetypes import special_kind
from .recipes import LABELS_FROM_RECIPE, FileLabels, check_root, get_recipe, matches_any, part_of

GLOB_CHARS = "*?["
TOO_SHORT = "too short"  # the error of a probe row that depends on filters.min_duration_s: such rows are probed again


@dataclass(frozen=True)
class SourceFile:
    """A file found in a corpus, with what the config says about it."""

    path: str
    relative_path: str
    corpus: str
    source_type: str
    noise_type: str | None
    group_key: str
    synthetic: bool
    file_size_bytes: int
    mtime_ns: int
    split_pin: str | None = None  # official split from the corpus's metadata or split_patterns; None: the fractions decide
    problem: str | None = None  # why it is not read at all (a special file, a folder that cannot be listed)

    @property
    def source_id(self) -> str:
        return hashlib.sha1(f"{self.corpus}:{self.relative_path}".encode()).hexdigest()[:16]


def _mtime_ns(info: dict) -> int:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    return int(float(mtime) * 1e9)


def _walk_local(root: str) -> dict[str, dict]:
    """{path: info} of everything under a local folder: regular files (links followed), special files
    (type "other", never opened) and folders that cannot be listed (type "unreadable", with the error)."""
    found: dict[str, dict] = {}

    def unreadable(error: OSError) -> None:
        found[error.filename] = {"type": "unreadable", "error": f"a folder that cannot be read ({error.strerror})", "size": 0, "mtime": 0}

    for folder, _, names in os.walk(root, onerror=unreadable, followlinks=True):
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError as exc:
                found[path] = {"type": "unreadable", "error": f"cannot be read ({exc.strerror})", "size": 0, "mtime": 0}
                continue
            regular = stat.S_ISREG(info.st_mode)
            found[path] = {"type": "file" if regular else "other", "size": info.st_size, "mtime": info.st_mtime,
                           **({} if regular else {"error": f"not a regular file ({special_kind(info.st_mode)}): never read"})}
    return found


def _list_files(corpus: CorpusConfig, path: str, where: str) -> tuple[object, str, dict[str, dict]]:
    """(filesystem, root, {fs path: info}) of everything under a folder, glob or single file.

    A path that exists is taken literally, even with glob characters in its name ('[live] takes/').
    """
    fs, fs_path = fsspec.core.url_to_fs(path)
    local = "file" in fs.protocol
    if not fs.exists(fs_path) and any(ch in fs_path for ch in GLOB_CHARS):
        root = fs_path[: min(fs_path.index(ch) for ch in GLOB_CHARS if ch in fs_path)].rsplit("/", 1)[0]
        return fs, root, {p: fs.info(p) for p in fs.glob(fs_path)}
    if fs.isdir(fs_path):
        return fs, fs_path.rstrip("/"), _walk_local(fs_path) if local else fs.find(fs_path, detail=True)
    if fs.isfile(fs_path):
        return fs, posixpath.dirname(fs_path), {fs_path: fs.info(fs_path)}
    raise ConfigError(f"{where}: corpora '{corpus.name}' path '{path}' does not exist; fix 'path'")


def _corpus_labels(corpus: CorpusConfig, fs, root: str, relative_paths: list[str], where: str) -> dict[str, FileLabels] | None:
    if corpus.labels == LABELS_FROM_RECIPE:
        recipe = get_recipe(corpus.recipe, where, f"corpora '{corpus.name}' recipe")
        if recipe.labels is None:
            return {}
        try:
            return recipe.labels(fs, root, relative_paths, part_of(recipe, corpus.variant, corpus.type))
        except ConfigError as exc:  # the recipe's reader names the metadata file and the fix; add the config and corpus
            raise ConfigError(f"{where}: corpora '{corpus.name}': {exc}") from None
    if corpus.labels:
        labels_fs, labels_path = fsspec.core.url_to_fs(corpus.labels)
        return read_labels_csv(labels_fs, labels_path, where, corpus.name)
    return None


def scan_corpus(corpus: CorpusConfig, path: str, synthetic: bool, split_names: Iterable[str], where: str) -> list[SourceFile]:
    """Every audio file of one corpus under `path` (folder, glob or single file) that its patterns select, sorted by path.

    Raises ConfigError when nothing is found, a recipe's root does not look like its corpus, or files are left unlabelled.
    """
    fs, root, found = _list_files(corpus, path, where)
    extensions = tuple("." + ext.lower().lstrip(".") for ext in corpus.extensions)
    audio, problems = {}, []
    for fs_file in sorted(found):
        info = found[fs_file]
        relative = posixpath.relpath(fs_file, root) if root else fs_file
        if info.get("type") == "unreadable" or (info.get("type") == "other" and fs_file.lower().endswith(extensions)):
            problems.append(SourceFile(fs_file, relative, corpus.name, corpus.type, None, relative, synthetic, 0, 0, problem=info["error"]))
        elif info.get("type") != "directory" and fs_file.lower().endswith(extensions):
            audio[relative] = fs_file
    if corpus.recipe:
        check_root(get_recipe(corpus.recipe, where, f"corpora '{corpus.name}' recipe"), path, list(audio), where, corpus.name)
    relative_paths = [rel for rel in audio if (not corpus.include or matches_any(rel, corpus.include)) and not matches_any(rel, corpus.exclude)]
    if not relative_paths and not problems:
        selection = f" matching include {list(corpus.include)}" if corpus.include else ""
        raise ConfigError(f"{where}: corpora '{corpus.name}' path '{path}' holds no audio files with extensions "
                          f"{', '.join(corpus.extensions)}{selection}{' (after exclude)' if corpus.exclude else ''}; fix 'path'"
                          + (", 'include' or 'exclude'" if corpus.include or corpus.exclude else ""))
    labelled = label_files(corpus, relative_paths, _corpus_labels(corpus, fs, root, relative_paths, where), split_names, where)
    files = []
    for relative, label in zip(relative_paths, labelled):
        fs_file = audio[relative]
        info = found[fs_file]
        full = fs_file if "://" not in path else fs.unstrip_protocol(fs_file)
        files.append(SourceFile(full, relative, corpus.name, corpus.type, label.noise_type, label.group_key, synthetic,
                                int(info.get("size") or 0), _mtime_ns(info), label.split_pin))
    return files + problems


def reusable_rows(previous: pa.Table | None) -> dict[tuple[str, int, int], dict]:
    """Rows of a previous index by (path, size, mtime): unchanged files are not probed again."""
    if previous is None:
        return {}
    return {(row["path"], row["file_size_bytes"], row["mtime_ns"]): row for row in previous.to_pylist()}


def index_sources(
    files: Iterable[SourceFile],
    min_duration_s: float,
    previous: pa.Table | None,
    run_probes: Callable[[list[SourceFile], float], list[dict]],
) -> list[dict]:
    """Probe rows for `files` in order: reused where unchanged, the rest through `run_probes` (e.g. on Dask)."""
    files = list(files)
    cached = reusable_rows(previous)
    keep: dict[int, dict] = {}
    todo = []
    for i, source in enumerate(files):
        if source.problem:
            keep[i] = {"source_id": source.source_id, "path": source.path, "corpus": source.corpus, "source_type": source.source_type,
                       "group_key": source.group_key, "synthetic": source.synthetic, "file_size_bytes": 0, "mtime_ns": 0,
                       "error": source.problem}
            continue
        row = cached.get((source.path, source.file_size_bytes, source.mtime_ns))
        if row is not None and not (row.get("error") or "").startswith(TOO_SHORT) and row.get("corpus") == source.corpus and row.get("group_key") == source.group_key \
                and row.get("noise_type") == source.noise_type and row.get("source_type") == source.source_type:
            keep[i] = {**row, "excluded_reason": None}
        else:
            todo.append(i)
    for i, row in zip(todo, run_probes([files[i] for i in todo], min_duration_s)):
        keep[i] = row
    return [{**keep[i], "split_pin": source.split_pin} for i, source in enumerate(files)]


def exclusion_reason(row: dict, config: BuildConfig) -> str | None:
    """Why the build policy leaves a probed recording out (None: it is used)."""
    if row.get("error"):
        return None
    filters, clip_s = config.filters, config.audio.clip_duration_s
    if row["source_type"] == "noise":
        if row["stationarity_db"] > filters.stationarity_threshold_db:
            return f"non-stationary: score {row['stationarity_db']:.2f} dB > filters.stationarity_threshold_db = {filters.stationarity_threshold_db} dB"
        if config.mix.noise_loop == "never" and row["duration_s"] < clip_s:
            return f"shorter than the clip ({row['duration_s']:.2f} s < {clip_s} s) and mix.noise_loop = 'never'"
        if row["duration_s"] <= 2 * config.mix.noise_crossfade_s:
            return f"too short to loop ({row['duration_s']:.2f} s <= 2 x mix.noise_crossfade_s)"
        return None
    if row["bandwidth_hz"] < filters.min_bandwidth_hz:
        return f"band-limited: {row['bandwidth_hz']:.0f} Hz < filters.min_bandwidth_hz = {filters.min_bandwidth_hz:.0f} Hz"
    if row["duration_s"] < clip_s:
        return f"shorter than the clip ({row['duration_s']:.2f} s < audio.clip_duration_s = {clip_s} s)"
    return None
