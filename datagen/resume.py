"""Resume knows its inputs: the source files and the plan the rendered shards were made from.

Before the first shard is rendered, the build records every source file (size and mtime per
corpus) and a digest of the plan in `.build/inputs.json`. A rerun that finds shards already
rendered compares both: a changed corpus or plan is a `BuildError` that says what changed, never
a silent mix of old and new shards.
"""
from __future__ import annotations

import hashlib
import json

from manifests.io import atomic_write_bytes, join

from .filetypes import STATE_DIR

SHOWN_CHANGES = 3


class InputsChanged(RuntimeError):
    """Raised with a message naming each changed corpus and what to do."""


def inputs_snapshot(rows: list[dict]) -> dict[str, dict[str, list]]:
    """corpus -> path -> [size_bytes, mtime_ns] of every source file found (generated files: size only, their
    content is a function of the config)."""
    snapshot: dict[str, dict[str, list]] = {}
    for row in rows:
        snapshot.setdefault(row["corpus"], {})[row["path"]] = [row["file_size_bytes"], None if row["synthetic"] else row["mtime_ns"]]
    return snapshot


def plan_digest(plans: list) -> str:
    """sha256 over every example's plan, in order."""
    digest = hashlib.sha256()
    for plan in plans:
        digest.update(json.dumps(plan.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()


def _changes(before: dict[str, list], after: dict[str, list]) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    modified = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    parts = [f"{len(items)} {word}" for items, word in ((added, "added"), (removed, "removed"), (modified, "modified")) if items]
    examples = [f"{p} {word}" for items, word in ((added, "added"), (removed, "removed"), (modified, "modified")) for p in items[:SHOWN_CHANGES]]
    return f"{', '.join(parts)} (e.g. {'; '.join(examples[:SHOWN_CHANGES])})"


def check_inputs(out: str, fs, snapshot: dict, digest: str, rendered_any: bool) -> None:
    """Record the inputs when nothing is rendered yet; otherwise refuse to resume over changed inputs."""
    path = join(out, STATE_DIR, "inputs.json")
    fs_path = path.split("://", 1)[-1] if "://" in path else path
    if not rendered_any or not fs.exists(fs_path):
        atomic_write_bytes(path, json.dumps({"sources": snapshot, "plan_sha256": digest}, sort_keys=True).encode())
        return
    recorded = json.loads(fs.cat_file(fs_path))
    changed = [f"corpus '{corpus}' changed since this build started: {_changes(recorded['sources'].get(corpus, {}), snapshot.get(corpus, {}))}"
               for corpus in sorted(set(recorded["sources"]) | set(snapshot))
               if recorded["sources"].get(corpus, {}) != snapshot.get(corpus, {})]
    if changed:
        raise InputsChanged("; ".join(changed) + f"; the shards in {out} were made from the old files: restore them, or rebuild with --overwrite")
    if recorded["plan_sha256"] != digest:
        raise InputsChanged(f"{out}: the plan differs from the one its rendered shards were made from, though no source file changed "
                            "(a labels file or a corpus's metadata changed?); restore it, or rebuild with --overwrite")
