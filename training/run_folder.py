"""A run folder of `training train`: where its files are, what it records, and whether it may be resumed.

    config.json          resolved config (absolute data path); `training reproduce` re-runs it
    run.json             seed, package versions (headline and every installed one), git commit, sha256 of
                         examples.parquet, threads, device, platform
    metrics.jsonl        one JSON object per event (baseline, every epoch of every stage, stops)
    results.json         final valid metrics of each stage and of the baselines (what `reproduce` compares)
    train.log            the console log
    checkpoints/         stage1_last.pt, stage2_last.pt, best.pt (the controller to use), masknet.pt
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from manifests.io import atomic_write_bytes, join, read_manifest

from .config import TrainConfig, parse_config


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, a run folder of another config, ...); the message says why."""


def checkpoint_paths(run_dir) -> dict[str, Path]:
    """Where a run keeps its checkpoints: keys stage1, stage2, best, masknet."""
    folder = Path(run_dir) / "checkpoints"
    return {"stage1": folder / "stage1_last.pt", "stage2": folder / "stage2_last.pt", "best": folder / "best.pt",
            "masknet": folder / "masknet.pt"}


def build_location(text: str) -> str:
    """A build folder given on the command line: a local path made absolute, an fsspec URL as given."""
    return text if "://" in text else os.path.abspath(text)


CONTENT_COLUMNS = ["example_id", "split", "noisy_sha256", "clean_sha256", "noise_sha256"]


def examples_content_sha256(manifest: str) -> str:
    """sha256 of what a build's examples are, wherever it lives: ids, splits and the sha256 of every audio member,
    in manifest order (the manifest's path columns, absolute paths of the recordings, are left out)."""
    table = read_manifest(manifest, "examples", columns=CONTENT_COLUMNS)
    digest = hashlib.sha256()
    for row in zip(*(table.column(name).to_pylist() for name in CONTENT_COLUMNS)):
        digest.update(("\t".join(map(str, row)) + "\n").encode())
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "pyarrow", "soundfile", "fsspec", "hifi-denoise"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def installed_packages() -> dict[str, str]:
    """Every distribution installed in this environment -> its version (what `pip freeze` lists)."""
    from importlib import metadata

    return dict(sorted((dist.metadata["Name"].lower(), dist.version) for dist in metadata.distributions()
                       if dist.metadata["Name"]))


def git_commit() -> dict[str, Any] | None:
    """HEAD of the repository holding this package, and whether the work tree has changes (None if no git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON, written atomically."""
    atomic_write_bytes(str(path), (json.dumps(data, indent=2, sort_keys=True, default=float) + "\n").encode())


def _config_diff(a: Mapping, b: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}{key}"
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            keys += _config_diff(va, vb, path + ".")
        elif va != vb:
            keys.append(f"{path}: {va!r} -> {vb!r}")
    return keys


class RunFolder:
    """Files of one run folder."""

    def __init__(self, run_dir, config: TrainConfig, device: torch.device, log: Callable[[str], None] | None):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.paths = checkpoint_paths(self.dir)
        self.config = config
        self.metrics_path = self.dir / "metrics.jsonl"
        self._echo = log if log is not None else (lambda msg: print(msg, flush=True))
        manifest = join(config.data.build, "examples.parquet")
        sha = file_sha256(manifest)
        config_path, info_path = self.dir / "config.json", self.dir / "run.json"
        self.resumed = False
        if config_path.exists():
            previous = parse_config(json.loads(config_path.read_text()), str(config_path))
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
            diff = _config_diff(previous.result_dict(), config.result_dict())
            changes = [f"another config ({'; '.join(diff)})"] if diff else []
            if info.get("examples_sha256") not in (None, sha):
                changes.append(f"another {manifest} (sha256 {info['examples_sha256'][:12]}.. -> {sha[:12]}..)")
            if changes and self.has_checkpoints():
                raise TrainingError(f"{self.dir}: this run folder was started with {' and '.join(changes)}; "
                                    "use a new --run folder, or the same config and data to resume")
            if changes:  # nothing was trained yet: start afresh rather than demand a new folder
                self._echo(f"{self.dir}: holds no checkpoint yet; starting afresh with this config and data "
                           f"(it was started with {' and '.join(changes)})")
                self.metrics_path.unlink(missing_ok=True)
                info_path.unlink(missing_ok=True)
            else:
                self.resumed = True
        write_json(config_path, config.to_dict())
        info = {
            "seed": config.seed,
            "config_hash": config.result_hash(),
            "examples_parquet": manifest,
            "examples_sha256": sha,
            "examples_content_sha256": examples_content_sha256(manifest),
            "package_versions": package_versions(),
            "installed_packages": installed_packages(),
            "git": git_commit(),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "command": sys.argv,
        }
        if info_path.exists():
            old = json.loads(info_path.read_text())
            info["started"] = old.get("started")
            info["resumed"] = old.get("resumed", 0) + 1
        else:
            info["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            info["resumed"] = 0
        write_json(info_path, info)
        self.info = info

    def has_checkpoints(self) -> bool:
        """True once a stage has saved a checkpoint (something to resume)."""
        return any(self.paths[k].exists() for k in ("stage1", "stage2", "masknet"))

    def log(self, message: str) -> None:
        self._echo(message)
        with open(self.dir / "train.log", "a") as handle:
            handle.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def append_metrics(self, entry: Mapping) -> None:
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=float) + "\n")

    def sync_metrics(self, stage: str, last_epoch: int, checkpoint_metrics: Mapping | None) -> None:
        """Make the log agree with the checkpoint of `stage` after an interruption: drop the stage's
        entries beyond `last_epoch`, and restore the entry of `last_epoch` from the checkpoint if missing."""
        entries = self.read_metrics()
        kept = [e for e in entries if not (e.get("stage") == stage and e.get("event") == "epoch" and e.get("epoch", -1) > last_epoch)]
        present = any(e.get("stage") == stage and e.get("event") == "epoch" and e.get("epoch") == last_epoch for e in kept)
        if not present and checkpoint_metrics is not None and last_epoch >= 0:
            kept.append(dict(checkpoint_metrics))
        if kept != entries:
            text = "".join(json.dumps(e, sort_keys=True, default=float) + "\n" for e in kept)
            atomic_write_bytes(str(self.metrics_path), text.encode())


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def resolve_build(run_dir: Path, build: str | None = None) -> str:
    """The build folder: `build` if given, else `data.build` of RUN_DIR/config.json (as written, or
    relative to the run folder)."""
    if build is None:
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise TrainingError(f"{config_path}: no config.json in the run folder; pass --build BUILD_DIR")
        config = json.loads(config_path.read_text())
        build = (config.get("data") or {}).get("build")
        if not build:
            raise TrainingError(f"{config_path}: no data.build; pass --build BUILD_DIR")
    if "://" in str(build):
        return str(build)
    for candidate in (Path(build), run_dir / build):
        if (candidate / "examples.parquet").exists():
            return str(candidate)
    raise TrainingError(f"build folder {build!r} (from the run's config) has no examples.parquet, "
                            f"neither as given nor relative to {run_dir}; pass --build BUILD_DIR")


def find_checkpoint(run_dir: Path, filename: str) -> Path | None:
    """RUN_DIR/filename, else RUN_DIR/checkpoints/filename, else None."""
    for path in (run_dir / filename, run_dir / "checkpoints" / filename):
        if path.is_file():
            return path
    return None
