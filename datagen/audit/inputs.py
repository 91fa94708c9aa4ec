"""What the audit reads: the --by grouping it is asked for, the manifest columns it needs, and the
build's report and config (OUT/build.json, else OUT/.build/config.json).
"""
from __future__ import annotations

import json
from typing import Iterable

import fsspec
import pyarrow as pa

from manifests.io import ManifestError, join
from manifests.schema import EXAMPLES_SCHEMA

from ..filetypes import STATE_DIR
from .result import AuditError

DEFAULT_BY = ("split", "source_type", "corpus", "noise_type")
BY_ALIASES = {"corpus": "clean_corpus", "clean": "clean_corpus", "noise": "noise_corpus", "group": "group_key", "speaker": "group_key"}
EXAMPLE_COLUMNS = [
    "example_id", "split", "index", "shard", "source_type", "clean_source_id", "clean_corpus", "group_key", "clean_bandwidth_hz",
    "noise_source_id", "noise_corpus", "noise_type", "snr_definition", "snr_target_db", "snr_measured_db",
    "clean_loudness_lufs", "clean_gain_db", "noise_gain_db", "ceiling_gain_db",
    "duration_s", "sample_rate", "channels", "audio_format", "synthetic",
]
SOURCE_COLUMNS = ["source_id", "path", "corpus", "source_type", "noise_type", "group_key", "synthetic", "sample_rate", "duration_s",
                  "stationarity_db", "error", "excluded_reason", "content_sha256"]


def _read_json(path: str) -> dict | None:
    try:
        with fsspec.open(path, "rb") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); rebuild the corpus") from None


def build_info(out: str) -> tuple[dict | None, dict | None]:
    """(build.json report or None, resolved config dict or None) of a build folder."""
    report = _read_json(join(out, "build.json"))
    config = (report or {}).get("config")
    if config is None:
        state = _read_json(join(out, STATE_DIR, "config.json"))
        config = (state or {}).get("config")
    return report, config


def resolve_by(by: Iterable[str] | str | None) -> list[tuple[str, str]]:
    """(label, column) pairs of the --by grouping; labels may be aliases (corpus -> clean_corpus)."""
    if by is None:
        names = list(DEFAULT_BY)
    elif isinstance(by, str):
        names = [n.strip() for n in by.split(",") if n.strip()]
    else:
        names = list(by)
    allowed = {f.name for f in EXAMPLES_SCHEMA if not pa.types.is_list(f.type) and not f.name.endswith(("_sha256", "_offset", "_size"))}
    pairs = []
    for name in names:
        column = BY_ALIASES.get(name, name)
        if column not in allowed:
            raise AuditError(f"--by: unknown column '{name}'; use a comma-separated list of examples-manifest columns, e.g. "
                             f"split,source_type,corpus,noise_type (aliases: {', '.join(sorted(BY_ALIASES))})")
        pairs.append((name, column))
    if not pairs:
        raise AuditError("--by: give at least one column, e.g. split,source_type")
    return pairs



def expected_split_counts(report: dict | None, config: dict | None) -> dict[str, int]:
    """Examples per split the build was asked for (config splits.examples or .hours), else what build.json counted."""
    splits = (config or {}).get("splits") or {}
    if splits.get("examples"):
        return {k: int(v) for k, v in splits["examples"].items()}
    clip = ((config or {}).get("audio") or {}).get("clip_duration_s")
    if splits.get("hours") and clip:
        return {k: int(round(float(h) * 3600.0 / float(clip))) for k, h in splits["hours"].items()}
    counted = ((report or {}).get("counts") or {}).get("examples_by_split")
    return {k: int(v) for k, v in counted.items()} if counted else {}

