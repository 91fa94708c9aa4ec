"""What a recipe is: the layout, metadata and defaults of one public corpus as distributed.

A recipe turns `[[corpora]] recipe = "NAME"` with a `path` (the corpus root) into one or more corpus
tables (one per `Part`: MUSAN gives music, speech and noise), filling the keys the user leaves out:
type, include/exclude patterns, group pattern, noise type, official splits. Metadata the corpus
ships (CSV, annotation files) is read by the recipe's `labels` function at scan time.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable, Mapping

from manifests.typed_config import ConfigError

# macOS resource-fork files ("._<name>", left by archives unpacked on a Mac; one ships inside LibriTTS-R): never audio
APPLEDOUBLE = ("._*", "*/._*")


@dataclass(frozen=True)
class FileLabels:
    """What a corpus's own metadata says of one file; None: the metadata does not say."""

    group: str | None = None  # speaker / artist / scene
    noise_type: str | None = None
    split: str | None = None  # official split, one of the configured split names


@dataclass(frozen=True)
class Part:
    """One corpus table a recipe expands to; its fields are the defaults of the same-named config keys."""

    type: str  # speech | music | noise
    suffix: str = ""  # the corpus is named "<name>_<suffix>" when a recipe has several parts
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    group_pattern: str = ""
    group_namespace: str = ""  # "": the recipe's name; corpora sharing speakers (LibriSpeech, LibriTTS-R) share one
    group_unmatched: str = "error"
    noise_type: str = "from_folder"
    noise_type_pattern: str = ""
    split_patterns: Mapping[str, str] = field(default_factory=dict)
    extensions: tuple[str, ...] = ()  # () keeps the config default
    uses_labels: bool = False  # the recipe's `labels` reader supplies group / noise type / split


# labels(fs, root, relative_paths, part) -> {relative_path: FileLabels}; `fs` is an fsspec filesystem
LabelReader = Callable[[object, str, list[str], Part], dict[str, FileLabels]]


@dataclass(frozen=True)
class Recipe:
    """A public corpus: how it is laid out, what it is, and how to read it."""

    name: str
    title: str
    licence: str
    citation: str
    url: str
    native_rate: str  # e.g. "16 kHz"
    bandwidth: str  # effective audio bandwidth as distributed, e.g. "8 kHz"
    hours: str  # size as distributed, e.g. "982 h (train 961 h)"
    layout: str  # the expected tree, one example path per line, relative to the root
    variants: Mapping[str, str]  # variant -> what it selects; the first is the default
    parts: Callable[[str], tuple[Part, ...]]  # variant -> the corpora it expands to
    markers: tuple[str, ...] = ()  # patterns (relative paths) of which at least one file must exist under the root
    labels: LabelReader | None = None
    notes: str = ""

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(part.type for variant in self.variants for part in self.parts(variant)))


def matches_any(relative_path: str, patterns: tuple[str, ...]) -> bool:
    """Shell-style match of a '/'-separated relative path against any pattern (`*` also crosses '/')."""
    return any(fnmatchcase(relative_path, pattern) for pattern in patterns)


def check_root(recipe: Recipe, root: str, relative_paths: list[str], where: str, corpus: str) -> None:
    """Raise ConfigError unless the files under `root` look like the recipe's corpus."""
    if not recipe.markers or any(matches_any(p, recipe.markers) for p in relative_paths):
        return
    tops = sorted({p.split("/", 1)[0] + ("/" if "/" in p else "") for p in relative_paths})
    found = ", ".join(tops[:8]) + (f" and {len(tops) - 8} more" if len(tops) > 8 else "") if tops else "no audio files"
    expected = "\n    ".join(recipe.layout.strip().splitlines())
    raise ConfigError(f"{where}: corpora '{corpus}' (recipe '{recipe.name}'): {root} does not look like {recipe.title}; "
                      f"expected the corpus root as distributed, laid out like\n    {expected}\n  found at the top: {found}; "
                      "fix 'path' (point it at the folder that holds the layout above)")


def read_csv_rows(fs, path: str) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts (first line: header), read through fsspec."""
    import csv
    import io

    with fs.open(path, "rb") as handle:
        text = handle.read().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def stem(relative_path: str) -> str:
    """File name without folder and extension."""
    return posixpath.splitext(posixpath.basename(relative_path))[0]


def within_official_splits(keys: dict[str, str], splits: dict[str, str | None]) -> dict[str, str]:
    """relative path -> group key: `keys` (an artist, a location, an uploader), except that the files of a key the
    official split spreads over several splits get the key with their split, so that no group is pinned to two
    splits (and the official split is kept)."""
    spread: dict[str, set[str]] = {}
    for relative, key in keys.items():
        if splits.get(relative):
            spread.setdefault(key, set()).add(splits[relative])
    return {relative: key if len(spread.get(key, ())) <= 1 else f"{key} [{splits.get(relative) or 'no official split'}]"
            for relative, key in keys.items()}
