#!/usr/bin/env python3
"""Make a finished training run the shipped model: copy its selected checkpoint to training/models/default.pt
and its record (config.json, results.json, run.json, plus model.json: sha256 and provenance) to
training/models/default_run/, the folder `training reproduce` re-runs.

    python corpora/pretrained/ship_model.py RUN_DIR
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from training.run_folder import examples_content_sha256, file_sha256, find_checkpoint

MODELS = Path(__file__).resolve().parents[2] / "training" / "models"
RECORD_FILES = ("config.json", "results.json", "run.json")


def ship(run_dir: Path, models: Path = MODELS) -> dict:
    """Copy `run_dir`'s best.pt and record into `models` (everything checked first); returns what model.json holds."""
    checkpoint = find_checkpoint(run_dir, "best.pt") or run_dir / "checkpoints" / "best.pt"
    missing = [p for p in (checkpoint, *(run_dir / name for name in RECORD_FILES)) if not p.is_file()]
    if missing:
        raise SystemExit(f"{run_dir}: not a finished run of `training train` (missing {', '.join(map(str, missing))})")
    run = json.loads((run_dir / "run.json").read_text())
    if "examples_content_sha256" not in run:  # a run recorded before run.json carried it: add it from the same build
        manifest = Path(json.loads((run_dir / "config.json").read_text())["data"]["build"]) / "examples.parquet"
        if not manifest.is_file() or file_sha256(str(manifest)) != run.get("examples_sha256"):
            raise SystemExit(f"{manifest}: not the build {run_dir} was trained on; cannot record its content sha256")
        run["examples_content_sha256"] = examples_content_sha256(str(manifest))
    card = {"file": "training/models/default.pt", "sha256": file_sha256(str(checkpoint)),
            "bytes": checkpoint.stat().st_size, "trained_from": run.get("git", {}), "config_hash": run.get("config_hash"),
            "examples_sha256": run.get("examples_sha256"), "examples_content_sha256": run["examples_content_sha256"]}
    record = models / "default_run"
    record.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, models / "default.pt")
    for name in ("config.json", "results.json"):
        shutil.copyfile(run_dir / name, record / name)
    (record / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
    (record / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    card = ship(parser.parse_args().run_dir)
    print(json.dumps(card, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
