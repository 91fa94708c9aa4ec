"""Per-file labels of a corpus: group key, noise type and pinned split, from patterns, metadata or folders.

For each label the first source that applies wins:
- group: `group_pattern` (group 1 of a regex search in the path relative to the corpus root), else
  the labels (a CSV file or the recipe's metadata reader), else the recording itself; prefixed
  with `group_namespace` when one is set (recipes set their own, so corpora never share keys by chance).
- noise type (noise corpora): `noise_type_pattern`, else the labels, else `noise_type` (a fixed name,
  or "from_folder": the parent folder's name).
- split: the first of `split_patterns` that matches, else the labels' split, else none (the
  fractions decide).
A pattern or labels file that leaves files without a group or noise type is an error naming the
corpus, the key, a few of the files and the fix, unless `group_unmatched = "own_group"`.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Iterable

from .config import NOISE_TYPE_FROM_FOLDER, ConfigError, CorpusConfig
from .recipes import FileLabels

SHOWN_UNMATCHED = 5
LABEL_COLUMNS = ("group", "noise_type", "split")


@dataclass(frozen=True)
class Labelled:
    group_key: str
    noise_type: str | None
    split_pin: str | None


def read_labels_csv(fs, path: str, where: str, corpus: str) -> dict[str, FileLabels]:
    """A labels CSV -> {relative path: FileLabels}: column `path` (relative to the corpus root) and any of LABEL_COLUMNS."""
    from .recipes.base import read_csv_rows

    key = f"corpora '{corpus}' labels"
    if not fs.exists(path):
        raise ConfigError(f"{where}: {key} file '{path}' does not exist; fix 'labels'")
    rows = read_csv_rows(fs, path)
    columns = set(rows[0]) if rows else set()
    if "path" not in columns or not columns & set(LABEL_COLUMNS):
        raise ConfigError(f"{where}: {key} file '{path}' needs a header with 'path' and at least one of {', '.join(LABEL_COLUMNS)}; "
                          f"found {', '.join(sorted(columns)) or 'no rows'}")
    return {row["path"].strip().removeprefix("./"): FileLabels(**{c: (row.get(c) or "").strip() or None for c in LABEL_COLUMNS}) for row in rows}


def _unmatched_error(where: str, corpus: CorpusConfig, what: str, missed: list[str], total: int, fix: str) -> ConfigError:
    """`what` holds '{files}', replaced by 'N of M files'."""
    shown = ", ".join(missed[:SHOWN_UNMATCHED]) + (", ..." if len(missed) > SHOWN_UNMATCHED else "")
    return ConfigError(f"{where}: corpora '{corpus.name}': {what.replace('{files}', f'{len(missed)} of {total} files')} (e.g. {shown}); {fix}")


def _search(pattern: re.Pattern, relative_path: str) -> str | None:
    match = pattern.search(relative_path)
    return match.group(1) if match and match.group(1) else None


def label_files(corpus: CorpusConfig, relative_paths: list[str], labels: dict[str, FileLabels] | None, split_names: Iterable[str],
                where: str) -> list[Labelled]:
    """Labels of each relative path of one corpus, in order; raises ConfigError for files left unlabelled or pinned to an unknown split."""
    labels = labels if labels is not None else {}
    use_label_splits = corpus.official_splits or corpus.labels not in ("", "recipe")
    group_re = re.compile(corpus.group_pattern) if corpus.group_pattern else None
    noise_re = re.compile(corpus.noise_type_pattern) if corpus.noise_type_pattern else None
    split_res = [(split, re.compile(pattern)) for split, pattern in corpus.split_patterns.items()]
    result, no_group, no_noise_type = [], [], []
    for relative in relative_paths:
        label = labels.get(relative, FileLabels())
        if group_re is not None:
            group = _search(group_re, relative)
        elif corpus.labels:
            group = label.group
        else:
            group = relative
        if group is None:
            no_group.append(relative)
            group = relative
        if corpus.group_namespace:
            group = f"{corpus.group_namespace}:{group}"
        noise_type = None
        if corpus.type == "noise":
            if noise_re is not None:
                noise_type = _search(noise_re, relative)
                if noise_type is None:
                    no_noise_type.append(relative)
            else:
                noise_type = label.noise_type or _configured_noise_type(corpus, relative)
        split = next((s for s, pattern in split_res if pattern.search(relative)), None)
        if split is None and use_label_splits:
            split = label.split
        result.append(Labelled(group, noise_type, split))
    total = len(relative_paths)
    unknown = sorted({label.split_pin for label in result if label.split_pin is not None} - set(split_names))
    if unknown:
        pinned = [rel for rel, label in zip(relative_paths, result) if label.split_pin in unknown]
        raise _unmatched_error(where, corpus, f"the labels pin {{files}} to split(s) {', '.join(unknown)}, which splits.fractions lacks",
                               pinned, total, f"add them to splits.fractions (a share of 0 is allowed: {', '.join(split_names)} now)"
                               + (", or set official_splits = false" if corpus.labels == "recipe" else ", or fix the labels' split column"))
    if no_group and corpus.group_unmatched == "error":
        what = f"group_pattern {corpus.group_pattern!r} does not match {{files}}" if group_re is not None else \
            f"labels ({corpus.labels if corpus.labels != 'recipe' else 'the recipe metadata'}) give no group for {{files}}"
        raise _unmatched_error(where, corpus, what, no_group, total,
                               "fix the pattern (it is searched in the path relative to the corpus root, group 1 is the key), leave those "
                               "files out with 'exclude', or set group_unmatched = \"own_group\" to make each such file its own group")
    if no_noise_type:
        raise _unmatched_error(where, corpus, f"noise_type_pattern {corpus.noise_type_pattern!r} does not match {{files}}", no_noise_type,
                               total, "fix the pattern (group 1 is the noise type) or leave those files out with 'exclude'")
    return result


def _configured_noise_type(corpus: CorpusConfig, relative_path: str) -> str:
    if corpus.noise_type != NOISE_TYPE_FROM_FOLDER:
        return corpus.noise_type
    return posixpath.basename(posixpath.dirname(relative_path)) or corpus.name
