"""`training reproduce`: re-run a run folder from its saved config and compare the results."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from manifests.io import join

from .config import parse_config, with_overrides
from .run_folder import TrainingError, build_location, examples_content_sha256, file_sha256, flatten
from .train import train


NONDETERMINISTIC_RESULT_KEYS = ("timings", "checkpoints")


def compare_results(original: Mapping, new: Mapping, tolerance: float = 0.0) -> list[tuple[str, Any, Any]]:
    """(key, original, new) for every result that differs (numbers by more than `tolerance`)."""
    a = flatten({k: v for k, v in original.items() if k not in NONDETERMINISTIC_RESULT_KEYS})
    b = flatten({k: v for k, v in new.items() if k not in NONDETERMINISTIC_RESULT_KEYS})
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool):
            if not (abs(va - vb) <= tolerance or (math.isnan(va) and math.isnan(vb))):
                diffs.append((key, va, vb))
        elif va != vb:
            diffs.append((key, va, vb))
    return diffs


def reproduce(run_dir, new_run=None, tolerance: float = 0.0, data=None,
              log: Callable[[str], None] | None = None) -> tuple[dict, list[str], bool]:
    """Re-run `run_dir` from its saved resolved config into `new_run` (default: ``<run_dir>-reproduce``), on the
    build folder `data` if given (it must hold the same examples.parquet as the recorded run: checked by sha256);
    returns (new results, `reproduction_report` lines, whether the results agree)."""
    run_dir = Path(run_dir)
    config_path, results_path = run_dir / "config.json", run_dir / "results.json"
    if not config_path.exists():
        raise TrainingError(f"{run_dir}: no config.json; not a run folder of `training train`")
    if not results_path.exists():
        raise TrainingError(f"{run_dir}: no results.json; the original run did not finish (rerun `training train` on it first)")
    config = parse_config(json.loads(config_path.read_text()), str(config_path))
    original = json.loads(results_path.read_text())
    info = run_info(run_dir)
    if data is not None:
        config = with_overrides(config, **{"data.build": build_location(data)})
    _check_same_examples(join(config.data.build, "examples.parquet"), info, run_dir)
    threads = info.get("torch_threads")
    if config.threads == 0 and threads and threads != torch.get_num_threads():
        torch.set_num_threads(int(threads))  # the original run used torch's default: match its thread count
    new_run = Path(new_run) if new_run is not None else run_dir.with_name(run_dir.name + "-reproduce")
    if new_run.resolve() == run_dir.resolve():
        raise TrainingError("the reproduction needs its own folder (--run NEW_DIR)")
    results = train(config, new_run, log=log)
    return (results, *reproduction_report(original, results, info, run_info(new_run), tolerance))


def _check_same_examples(manifest: str, info: Mapping, run_dir: Path) -> None:
    """Refuse a build whose examples are not the recorded run's: by their content where run.json records it
    (the same wherever the corpus lives), else by the manifest file's bytes; refuse a run that records neither."""
    key = "examples_content_sha256" if info.get("examples_content_sha256") else "examples_sha256"
    recorded = info.get(key)
    if not recorded:
        raise TrainingError(f"{run_dir}: run.json records no checksum of the examples, so the build cannot be checked; "
                            "reproduce a run folder written by `training train`")
    measure = examples_content_sha256 if key == "examples_content_sha256" else file_sha256
    try:
        sha = measure(manifest)
    except FileNotFoundError:
        raise TrainingError(f"{manifest}: no such file; the build must be a finished `datagen build` folder (--data)") from None
    if sha != recorded:
        raise TrainingError(f"{manifest}: not the build the run was trained on ({key} {sha[:12]}.., recorded "
                            f"{recorded[:12]}..); rebuild it from the same corpus config and recordings")


# Across CPUs and library builds a run does not give the same bits: float rounding differs in the first
# step and training amplifies it. What a reproduction elsewhere is expected to stay within (dB of SI-SDR).
CROSS_MACHINE_TOLERANCE_DB = 0.3


def run_info(run_dir) -> dict:
    """run.json of a run folder ({} if it has none)."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def reproduction_report(original: dict, new: dict, old_info: dict, new_info: dict, tolerance: float) -> tuple[list[str], bool]:
    """Lines comparing a run's recorded results with a reproduction's, side by side, and whether they agree:
    within `tolerance` when the platform and the installed packages are the same, else within
    `CROSS_MACHINE_TOLERANCE_DB` on the SI-SDR figures (and `tolerance` on the rest)."""
    old_flat = flatten({k: v for k, v in original.items() if k not in NONDETERMINISTIC_RESULT_KEYS})
    new_flat = flatten({k: v for k, v in new.items() if k not in NONDETERMINISTIC_RESULT_KEYS})
    old_pkgs, new_pkgs = old_info.get("installed_packages", {}), new_info.get("installed_packages", {})
    changed = sorted(n for n in set(old_pkgs) | set(new_pkgs) if old_pkgs.get(n) != new_pkgs.get(n))
    same_machine = not changed and old_info.get("platform") == new_info.get("platform")
    lines = [f"{'result':<44} {'recorded':>12} {'new':>12} {'diff':>10}"]
    agree = True
    for key in sorted(set(old_flat) | set(new_flat)):
        old, value = old_flat.get(key, "<missing>"), new_flat.get(key, "<missing>")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, value))
        if numbers:
            in_db = "si_sdr" in key or key.endswith("score")
            allowed = tolerance if same_machine or not in_db else max(tolerance, CROSS_MACHINE_TOLERANCE_DB)
            diff = value - old
            ok = abs(diff) <= allowed or (old != old and value != value)
            lines.append(f"{key:<44} {old:>12.4g} {value:>12.4g} {diff:>+10.3g}{'' if ok else '  <- differs'}")
        else:
            ok = old == value
            if not ok:
                lines.append(f"{key:<44} {str(old):>12} {str(value):>12}  <- differs")
        agree &= ok
    if same_machine:
        lines.append(f"same platform and packages as the recorded run: tolerance {tolerance:g}")
    else:
        what = f"{len(changed)} package version(s) differ ({', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''})" \
            if changed else "another platform"
        lines.append(f"{what}: SI-SDR figures are expected within {CROSS_MACHINE_TOLERANCE_DB:g} dB, others within "
                     f"{tolerance:g}")
    return lines, agree
