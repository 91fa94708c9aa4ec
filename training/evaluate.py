"""Evaluate a run on a split of its build: baselines, controller and mask network, with a report.

Methods, all run on the whole noisy clips of the split:

- ``noisy``: the input itself (SI-SDRi 0 by definition);
- ``dsp_blind``: the spectral gate with the classic blind noise estimate
  (`blind.blind_noise_profile_db`) and every other control at its default;
- ``dsp_oracle``: the same gate with the *true* noise profile, measured on the example's noise
  member with the gate's own STFT and power normalization, and default controls: the upper bound of
  a fixed rule that knows the noise;
- ``controller``: the run's `best.pt` (controller + gate);
- ``masknet``: the run's `masknet.pt`, when present.

Checkpoints are looked up in RUN_DIR, then RUN_DIR/checkpoints (where `training train` writes them);
the build folder is `data.build` of RUN_DIR/config.json (or --build).

Per example: SI-SDR of the input and the output, SI-SDRi, multi-resolution STFT distance to the
clean signal, PESQ (wideband) and STOI for speech when those packages are importable, and for the
gate methods the error of the noise profile used (mean |dB| over bands against the oracle profile).

Written to REPORT_DIR (default RUN_DIR/report_<split>): `results.parquet` (one row per example and
method, with the scalar controls and `tonal_detail_mean`, the mean over bands, of the gate methods),
`summary.csv` (means per method and source type / noise type / SNR bucket), `report.md`
(tables and the cost of every method: parameters, multiply-accumulates per second of audio, real-time
factor on one CPU core for 10 s of 48 kHz mono) and PNG plots.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from manifests.bands import BandLayout
from manifests.cli import Command, int_at_least
from manifests.io import open_example

from . import cost, metrics
from .blind import blind_noise_profile_db
from .controls import SCALAR_CONTROL_NAMES, make_controls
from .gate import spectral_gate
from .device import resolve_device
from .data import ExampleIndex, profile_target_db
from .run_folder import find_checkpoint, resolve_build
from .methods import LearnedModel, Method, NoisyInput, ProfileGate
from .report import (METRIC_COLUMNS, Kept, plot_profiles, plot_si_sdri, plot_spectrograms, snr_bucket, sort_key,
                     write_report, write_tables)

Tensor = torch.Tensor

METHODS = ("noisy", "dsp_blind", "dsp_oracle", "controller", "masknet")

class EvaluationError(ValueError):
    """A run, build or split that cannot be evaluated; the message names it and the fix."""



# --------------------------------------------------------------------------------------------------
# run folder
# --------------------------------------------------------------------------------------------------


def load_model(path: Path, device: torch.device):
    """(model in eval mode on `device`, checkpoint dict) via `training.checkpoint`."""
    from .checkpoint import build_model, load_checkpoint

    ckpt = load_checkpoint(str(path), map_location="cpu")
    model = build_model(ckpt).to(device).eval()
    return model, ckpt


# --------------------------------------------------------------------------------------------------
# evaluation loop
# --------------------------------------------------------------------------------------------------


def _batches(rows: list[dict], batch_size: int):
    """Consecutive rows of equal (channels, duration, rate), at most `batch_size` at a time."""
    batch: list[dict] = []
    batch_key = None
    for row in rows:
        key = (row["channels"], round(row["duration_s"] * row["sample_rate"]), row["sample_rate"])
        if batch and (len(batch) >= batch_size or key != batch_key):
            yield batch
            batch = []
        batch_key = key
        batch.append(row)
    if batch:
        yield batch


def _plot_choices(rows: list[dict]) -> list[str]:
    """Examples to plot: per source type, the one with the target SNR closest to 5 dB and one near 15 dB."""
    chosen = []
    for source in sorted({r["source_type"] for r in rows}, key=lambda s: (s != "speech", s)):
        of_type = [r for r in rows if r["source_type"] == source]
        for target in (5.0, 15.0):
            best = min(of_type, key=lambda r: (abs(r["snr_target_db"] - target), r["index"]))
            if best["example_id"] not in chosen:
                chosen.append(best["example_id"])
    return chosen


def methods_for(layout: BandLayout, models: dict) -> dict[str, Method]:
    """The baselines, then each loaded model (name -> model), as `methods.Method`s."""
    return {"noisy": NoisyInput(), "dsp_blind": ProfileGate(layout, oracle=False),
            "dsp_oracle": ProfileGate(layout, oracle=True), **{name: LearnedModel(m) for name, m in models.items()}}


@dataclass
class _Scores:
    """Per-item scores of one output (NaN where a metric does not apply)."""

    si_sdr: Tensor
    mrstft: Tensor
    pesq: np.ndarray
    stoi: np.ndarray


class _Batch:
    """One batch of equal-shaped examples, decoded, with its reference metrics."""

    def __init__(self, rows: list[dict], root: str, layout: BandLayout, device: torch.device):
        audio = [open_example(r, root) for r in rows]
        self.rows = rows
        self.noisy = torch.from_numpy(np.stack([a.noisy for a in audio])).to(device)
        self.clean = torch.from_numpy(np.stack([a.clean for a in audio])).to(device)
        self.noise = torch.from_numpy(np.stack([a.noise for a in audio])).to(device)
        self.rate = int(rows[0]["sample_rate"])
        if self.rate != layout.sample_rate:
            raise EvaluationError(f"{rows[0]['example_id']}: {self.rate} Hz, but the models run at {layout.sample_rate} Hz")
        self.is_speech = np.array([r["source_type"] == "speech" for r in rows])
        self.ref_mags = metrics.reference_magnitudes(self.clean)
        self.oracle_db = profile_target_db(self.noise, layout)
        self.input = self.score(self.noisy)

    def score(self, out: Tensor) -> _Scores:
        pesq = stoi = np.full(len(self.rows), np.nan)
        if (metrics.PESQ_AVAILABLE or metrics.STOI_AVAILABLE) and self.is_speech.any():
            pesq, stoi = metrics.pesq_wb(out, self.clean, self.rate), metrics.stoi(out, self.clean, self.rate)
        return _Scores(metrics.si_sdr(out, self.clean).cpu(), metrics.mr_stft_distance(out, ref_mags=self.ref_mags).cpu(),
                       pesq, stoi)


def _result_row(batch: _Batch, i: int, name: str, scores: _Scores, controls: dict, profile_err: Tensor | None) -> dict:
    row, before, speech = batch.rows[i], batch.input, bool(batch.is_speech[i])
    rec = {
        "example_id": row["example_id"], "method": name, "source_type": row["source_type"],
        "noise_type": row["noise_type"], "snr_target_db": float(row["snr_target_db"]),
        "snr_measured_db": float(row["snr_measured_db"]), "snr_bucket": snr_bucket(float(row["snr_target_db"])),
        "si_sdr_in": float(before.si_sdr[i]), "si_sdr_out": float(scores.si_sdr[i]),
        "si_sdri": float(scores.si_sdr[i] - before.si_sdr[i]),
        "mrstft_in": float(before.mrstft[i]), "mrstft_out": float(scores.mrstft[i]),
        "pesq_in": float(before.pesq[i]) if speech else math.nan, "pesq_out": float(scores.pesq[i]) if speech else math.nan,
        "stoi_in": float(before.stoi[i]) if speech else math.nan, "stoi_out": float(scores.stoi[i]) if speech else math.nan,
        "profile_err_db": math.nan if profile_err is None else float(profile_err[i]),
    }
    rec["worse"] = float(rec["si_sdri"] < 0.0)
    for control in SCALAR_CONTROL_NAMES:
        value = controls.get(control)
        rec[control] = float(value[i].reshape(-1)[0]) if value is not None else math.nan
    detail = controls.get("tonal_detail")
    rec["tonal_detail_mean"] = float(detail[i].mean()) if detail is not None else math.nan
    return rec


def _keep_for_plots(keep: Kept, batch: _Batch, i: int, name: str, out: Tensor, profile: Tensor | None) -> None:
    row = batch.rows[i]
    eid = row["example_id"]
    kept = keep.audio.setdefault(eid, {"noisy": batch.noisy[i, 0].cpu().numpy(), "clean": batch.clean[i, 0].cpu().numpy(),
                                       "row": row})
    if name != "noisy":
        kept[name] = out[i, 0].cpu().numpy()
    profiles = keep.profiles.setdefault(eid, {"manifest": np.asarray(row["noise_profile_db"], dtype=np.float32),
                                              "oracle": batch.oracle_db[i].cpu().numpy(), "row": row})
    if profile is not None and name != "dsp_oracle":
        profiles[name] = profile[i].detach().cpu().numpy()


def evaluate_examples(rows: list[dict], root: str, layout: BandLayout, models: dict, device: torch.device,
                      batch_size: int = 16, keep_ids: set | None = None, progress: bool = True) -> tuple[list[dict], Kept]:
    """Run every method on every row -> (result rows, kept audio/profiles for the plots)."""
    keep = Kept(set(keep_ids or ()), {}, {})
    results: list[dict] = []
    methods = methods_for(layout, models)
    with torch.no_grad():
        for rows_of_batch in _progress(list(_batches(rows, batch_size)), progress, "evaluate"):
            batch = _Batch(rows_of_batch, root, layout, device)
            for name, method in methods.items():
                out, controls = method(batch.noisy, batch.noise)
                scores = batch.input if name == "noisy" else batch.score(out)
                profile = controls.get("noise_profile_db")
                err = None if profile is None else (profile - batch.oracle_db).abs().mean(dim=-1).cpu()
                for i, row in enumerate(batch.rows):
                    results.append(_result_row(batch, i, name, scores, controls, err))
                    if row["example_id"] in keep.example_ids:
                        _keep_for_plots(keep, batch, i, name, out, profile)
    return results, keep


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="batch", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------------------

LEVELS = {
    "method": ("method",),
    "source": ("method", "source_type"),
    "source_noise": ("method", "source_type", "noise_type"),
    "source_snr": ("method", "source_type", "snr_bucket"),
    "source_noise_snr": ("method", "source_type", "noise_type", "snr_bucket"),
}


def aggregate(results: list[dict], method_order: list[str]) -> list[dict]:
    """Means per group at every level of `LEVELS` -> summary rows (missing keys read "all")."""
    summary = []
    for level, keys in LEVELS.items():
        groups: dict[tuple, list[dict]] = {}
        for rec in results:
            groups.setdefault(tuple(rec[k] for k in keys), []).append(rec)
        for group in sorted(groups, key=sort_key(method_order)):
            members = groups[group]
            row = {"level": level, "method": "all", "source_type": "all", "noise_type": "all", "snr_bucket": "all"}
            row.update(dict(zip(keys, group)))
            row["n"] = len(members)
            for column in METRIC_COLUMNS:
                values = np.array([m[column] for m in members], dtype=np.float64)
                finite = values[np.isfinite(values)]
                row[column] = float(finite.mean()) if finite.size else math.nan
            summary.append(row)
    return summary


# --------------------------------------------------------------------------------------------------
# cost
# --------------------------------------------------------------------------------------------------


def method_costs(layout: BandLayout, models: dict, seconds: float = 10.0, repeats: int = 5,
                 timing: bool = True) -> dict[str, dict]:
    """Parameters, MACs per second of audio and real-time factor (one CPU core, `seconds` of mono at
    the layout's rate, best of `repeats`) of every method."""
    from .controller import Denoiser

    frames_s = layout.sample_rate / layout.hop
    gate_macs = cost.gate_macs_per_second(layout)["total"]
    costs = {
        "noisy": {"params": 0, "macs_per_s": 0.0, "rtf": 0.0},
        # blind estimate: the quantile selection over frames ~ 2 MACs per bin-frame, then the band average
        "dsp_blind": {"params": 0, "macs_per_s": gate_macs + frames_s * 2 * layout.n_bins
                      + layout.n_bins * layout.n_bands / seconds},
        "dsp_oracle": {"params": 0, "macs_per_s": gate_macs},
    }

    def gate_fn(blind: bool):
        def run(audio):
            profile = (blind_noise_profile_db(audio, layout) if blind
                       else torch.full((1, layout.n_bands), -60.0))
            return spectral_gate(audio, make_controls(1, layout, noise_profile_db=profile), layout)
        return run

    if timing:
        costs["dsp_blind"]["rtf"] = cost.real_time_factor(gate_fn(True), layout.sample_rate, seconds, repeats=repeats)
        costs["dsp_oracle"]["rtf"] = cost.real_time_factor(gate_fn(False), layout.sample_rate, seconds, repeats=repeats)
    audio = torch.randn(1, 1, int(seconds * layout.sample_rate)) * 0.05
    for name, model in models.items():
        cpu_model = cost.cpu_copy(model)
        if isinstance(cpu_model, Denoiser):
            macs = cost.controller_macs_per_second(cpu_model.controller, 1, seconds)["total"]
        else:
            macs = cost.module_macs(cpu_model, lambda: cpu_model.denoise(audio)) / seconds
            macs += cost.stft_macs_per_second(getattr(cpu_model, "layout", layout))
        entry = {"params": cost.parameter_count(cpu_model), "macs_per_s": macs}
        if timing:
            entry["rtf"] = cost.real_time_factor(lambda x, m=cpu_model: m.denoise(x), layout.sample_rate, seconds,
                                                 repeats=repeats)
        costs[name] = entry
    for entry in costs.values():
        entry.setdefault("rtf", math.nan)
    return costs


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def evaluate(run_dir, split: str = "test", out_dir=None, max_examples: int | None = None, *, build: str | None = None,
             device: str = "auto", batch_size: int = 16, timing: bool = True, timing_repeats: int = 5,
             threads: int | None = 1, progress: bool = True) -> dict[str, Path]:
    """Evaluate every method on `split` of the run's build; returns the paths written
    ({"report", "results", "summary", "costs", "plots": [...]}).

    `threads`: torch CPU threads for the evaluation (default 1: on a shared machine, more threads
    than free cores make the recurrent mask network up to 10x slower; None keeps torch's setting).
    The real-time factors are always measured on one thread.
    """
    if threads is None:
        return _evaluate(run_dir, split, out_dir, max_examples, build, device, batch_size, timing, timing_repeats,
                         progress)
    with cost.torch_threads(threads):
        return _evaluate(run_dir, split, out_dir, max_examples, build, device, batch_size, timing, timing_repeats,
                         progress)


def _evaluate(run_dir, split, out_dir, max_examples, build, device, batch_size, timing, timing_repeats,
              progress) -> dict[str, Path]:
    started = time.perf_counter()
    run_dir = Path(run_dir)
    root = resolve_build(run_dir, build)
    out = Path(out_dir) if out_dir is not None else run_dir / f"report_{split}"
    dev = resolve_device(device)

    index = ExampleIndex(root)
    manifest, layout = index.path, index.layout
    rows = index.split(split)
    if not rows:
        raise EvaluationError(f"{manifest}: no examples in split {split!r} (splits: {', '.join(index.splits())})")
    if max_examples is not None:
        rows = rows[:max_examples]

    models = {}
    for name, filename in (("controller", "best.pt"), ("masknet", "masknet.pt")):
        path = find_checkpoint(run_dir, filename)
        if path is not None:
            model, _ = load_model(path, dev)
            model_layout = getattr(model, "layout", layout)
            if model_layout != layout:
                raise EvaluationError(f"{path}: model layout ({model_layout.sample_rate} Hz, {model_layout.n_bands} bands) "
                                 f"differs from the build's band layout ({manifest})")
            models[name] = model
        elif progress:
            print(f"evaluate: no {filename} in {run_dir} (or its checkpoints/); method '{name}' skipped", file=sys.stderr)
    methods = [m for m in METHODS if m in ("noisy", "dsp_blind", "dsp_oracle") or m in models]

    keep_ids = _plot_choices(rows)
    results, keep = evaluate_examples(rows, root, layout, models, dev, batch_size, set(keep_ids), progress)
    summary = aggregate(results, methods)
    costs = method_costs(layout, models, repeats=timing_repeats, timing=timing)

    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    results_path, summary_path = write_tables(out, results, summary)
    plots = plot_si_sdri(out, summary, methods)
    plots += plot_spectrograms(out, keep, methods, layout.sample_rate)
    plots += plot_profiles(out, keep, layout)
    info = {"run_dir": str(run_dir), "split": split, "build": root, "examples": len(rows),
            "duration_s": sum(r["duration_s"] for r in rows), "device": str(dev),
            "elapsed_s": time.perf_counter() - started, "timing_s": 10.0, "sample_rate": layout.sample_rate}
    report = write_report(out, summary, results, costs, methods, info, plots)
    (out / "costs.json").write_text(json.dumps(costs, indent=2))
    return {"report": report, "results": results_path, "summary": summary_path, "costs": out / "costs.json",
            "plots": plots}


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run folder (config.json, best.pt, masknet.pt)")
    parser.add_argument("--split", default="test", help="split of the build to evaluate (default: test)")
    parser.add_argument("--out", default=None, help="report folder (default: RUN_DIR/report_<split>)")
    parser.add_argument("--max-examples", type=int, default=None, help="evaluate only the first N examples")
    parser.add_argument("--build", default=None, help="build folder (default: data.build of RUN_DIR/config.json)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (inference; timing is always one CPU core)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int_at_least(0), default=1,
                        help="torch CPU threads for the evaluation (default 1; 0 = torch's default)")
    parser.add_argument("--no-timing", action="store_true", help="skip the real-time-factor measurements")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_evaluate(args) -> int:
    paths = evaluate(args.run_dir, args.split, args.out, args.max_examples, build=args.build, device=args.device,
                     batch_size=args.batch_size, timing=not args.no_timing, threads=args.threads or None,
                     progress=not args.quiet)
    print(f"report: {paths['report']}")
    print(f"results: {paths['results']}  summary: {paths['summary']}")
    return 0


COMMAND = Command("evaluate", "evaluate a run (baselines, controller, mask network) and write a report", _evaluate_arguments,
                  _run_evaluate, description=__doc__.split("\n\n")[0])
