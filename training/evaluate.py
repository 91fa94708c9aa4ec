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
import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from manifests.bands import BandLayout
from manifests.cli_errors import int_at_least
from manifests.io import band_layout, join, open_example, read_manifest

from . import cost, metrics
from .bandmap import bins_to_bands_power
from .blind import blind_noise_profile_db
from .controls import SCALAR_CONTROL_NAMES, SPECS, make_controls
from .gate import spectral_gate
from .stft import power_density, power_to_db, stft
from .device import resolve_device

Tensor = torch.Tensor

METHODS = ("noisy", "dsp_blind", "dsp_oracle", "controller", "masknet")
SNR_EDGES = (0.0, 5.0, 10.0, 15.0, 20.0)
SNR_BUCKETS = ("<0", "0-5", "5-10", "10-15", "15-20", ">=20")
GATE_METHODS = ("dsp_blind", "dsp_oracle", "controller")
METRIC_COLUMNS = ("si_sdr_in", "si_sdr_out", "si_sdri", "mrstft_in", "mrstft_out", "worse", "pesq_in", "pesq_out",
                  "stoi_in", "stoi_out", "profile_err_db")
MANIFEST_COLUMNS = ["example_id", "split", "index", "shard", "noisy_offset", "noisy_size", "clean_offset", "clean_size",
                    "noise_offset", "noise_size", "json_offset", "json_size", "source_type", "noise_type",
                    "snr_target_db", "snr_measured_db", "sample_rate", "channels", "duration_s", "noise_profile_db"]


class EvaluationError(ValueError):
    """A run, build or split that cannot be evaluated; the message names it and the fix."""


def snr_bucket(snr_db: float) -> str:
    """Bucket label of a target SNR: <0, 0-5, 5-10, 10-15, 15-20, >=20 dB."""
    return SNR_BUCKETS[int(np.searchsorted(SNR_EDGES, snr_db, side="right"))]


def oracle_profile_db(noise: Tensor, layout: BandLayout) -> Tensor:
    """True band profile (batch, n_bands) dB of the noise member, with the gate's own STFT and power
    density (mean over frames and channels, then over each band's bins)."""
    power = power_density(stft(noise, layout), layout).mean(dim=(1, 3))  # (B, F)
    return power_to_db(bins_to_bands_power(power, layout))


# --------------------------------------------------------------------------------------------------
# run folder
# --------------------------------------------------------------------------------------------------


def resolve_build(run_dir: Path, build: str | None = None) -> str:
    """The build folder: `build` if given, else `data.build` of RUN_DIR/config.json (as written, or
    relative to the run folder)."""
    if build is None:
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise EvaluationError(f"{config_path}: no config.json in the run folder; pass --build BUILD_DIR")
        config = json.loads(config_path.read_text())
        build = (config.get("data") or {}).get("build")
        if not build:
            raise EvaluationError(f"{config_path}: no data.build; pass --build BUILD_DIR")
    if "://" in str(build):
        return str(build)
    for candidate in (Path(build), run_dir / build):
        if (candidate / "examples.parquet").exists():
            return str(candidate)
    raise EvaluationError(f"build folder {build!r} (from the run's config) has no examples.parquet, "
                            f"neither as given nor relative to {run_dir}; pass --build BUILD_DIR")


def find_checkpoint(run_dir: Path, filename: str) -> Path | None:
    """RUN_DIR/filename, else RUN_DIR/checkpoints/filename, else None."""
    for path in (run_dir / filename, run_dir / "checkpoints" / filename):
        if path.is_file():
            return path
    return None


def load_model(path: Path, device: torch.device):
    """(model in eval mode on `device`, checkpoint dict) via `training.checkpoint`."""
    from .checkpoint import build_model, load_checkpoint

    ckpt = load_checkpoint(str(path), map_location="cpu")
    model = build_model(ckpt).to(device).eval()
    return model, ckpt


def run_model(model, audio: Tensor) -> tuple[Tensor, dict]:
    """`model.denoise(audio, return_controls=True)` -> (audio, controls), tolerant of a plain Tensor."""
    try:
        result = model.denoise(audio, return_controls=True)
    except TypeError:
        result = model.denoise(audio)
    if isinstance(result, tuple):
        return result[0], (result[1] or {})
    return result, {}


# --------------------------------------------------------------------------------------------------
# evaluation loop
# --------------------------------------------------------------------------------------------------


@dataclass
class _Keep:
    """Audio and profiles kept for the plots."""

    example_ids: set
    audio: dict  # example_id -> {"noisy": ..., "clean": ..., method: ...} (channel 0, numpy)
    profiles: dict  # example_id -> {"manifest": ..., "oracle": ..., "dsp_blind": ..., "controller": ...}


def _batches(rows: list[dict], batch_size: int):
    """Consecutive rows of equal (channels, duration, rate), at most `batch_size` at a time."""
    batch: list[dict] = []
    for row in rows:
        key = (row["channels"], round(row["duration_s"] * row["sample_rate"]), row["sample_rate"])
        if batch and (len(batch) >= batch_size or key != batch[0]["_key"]):
            yield batch
            batch = []
        row["_key"] = key
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


def evaluate_examples(rows: list[dict], root: str, layout: BandLayout, models: dict, device: torch.device,
                      batch_size: int = 16, keep_ids: set | None = None, progress: bool = True) -> tuple[list[dict], _Keep]:
    """Run every method on every row -> (result rows, kept audio/profiles for the plots)."""
    keep = _Keep(set(keep_ids or ()), {}, {})
    results: list[dict] = []
    perceptual = metrics.PESQ_AVAILABLE or metrics.STOI_AVAILABLE
    methods: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None, dict]]] = {}

    def gate(profile: Tensor, noisy: Tensor) -> Tensor:
        controls = make_controls(noisy.shape[0], layout, device=noisy.device, noise_profile_db=profile)
        return spectral_gate(noisy, controls, layout)

    methods["noisy"] = lambda noisy, noise: (noisy, None, {})

    def blind(noisy, noise):
        profile = blind_noise_profile_db(noisy, layout)
        return gate(profile, noisy), profile, {}

    def oracle(noisy, noise):
        profile = oracle_profile_db(noise, layout)
        return gate(profile, noisy), profile, {}

    methods["dsp_blind"], methods["dsp_oracle"] = blind, oracle
    for name, model in models.items():
        def learned(noisy, noise, model=model):
            out, controls = run_model(model, noisy)
            return out, controls.get("noise_profile_db"), controls
        methods[name] = learned

    iterator = list(_batches(rows, batch_size))
    bar = _progress(iterator, progress, "evaluate")
    with torch.no_grad():
        for batch in bar:
            audio = [open_example(r, root) for r in batch]
            noisy = torch.from_numpy(np.stack([a.noisy for a in audio])).to(device)
            clean = torch.from_numpy(np.stack([a.clean for a in audio])).to(device)
            noise = torch.from_numpy(np.stack([a.noise for a in audio])).to(device)
            rate = int(batch[0]["sample_rate"])
            if rate != layout.sample_rate:
                raise EvaluationError(f"{batch[0]['example_id']}: {rate} Hz, but the models run at {layout.sample_rate} Hz")
            sdr_in = metrics.si_sdr(noisy, clean).cpu()
            ref_mags = metrics.reference_magnitudes(clean)
            mr_in = metrics.mr_stft_distance(noisy, ref_mags=ref_mags).cpu()
            is_speech = np.array([r["source_type"] == "speech" for r in batch])
            pesq_in = stoi_in = np.full(len(batch), np.nan)
            if perceptual and is_speech.any():
                pesq_in = metrics.pesq_wb(noisy, clean, rate)
                stoi_in = metrics.stoi(noisy, clean, rate)
            oracle_db = oracle_profile_db(noise, layout)
            for name, method in methods.items():
                out, profile, controls = method(noisy, noise)
                if name == "noisy":
                    sdr_out, mr_out, pesq_out, stoi_out = sdr_in, mr_in, pesq_in, stoi_in
                else:
                    sdr_out = metrics.si_sdr(out, clean).cpu()
                    mr_out = metrics.mr_stft_distance(out, ref_mags=ref_mags).cpu()
                    pesq_out = stoi_out = np.full(len(batch), np.nan)
                    if perceptual and is_speech.any():
                        pesq_out = metrics.pesq_wb(out, clean, rate)
                        stoi_out = metrics.stoi(out, clean, rate)
                err = None if profile is None else (profile - oracle_db).abs().mean(dim=-1).cpu()
                for i, row in enumerate(batch):
                    rec = {
                        "example_id": row["example_id"], "method": name, "source_type": row["source_type"],
                        "noise_type": row["noise_type"], "snr_target_db": float(row["snr_target_db"]),
                        "snr_measured_db": float(row["snr_measured_db"]),
                        "snr_bucket": snr_bucket(float(row["snr_target_db"])),
                        "si_sdr_in": float(sdr_in[i]), "si_sdr_out": float(sdr_out[i]),
                        "si_sdri": float(sdr_out[i] - sdr_in[i]),
                        "mrstft_in": float(mr_in[i]), "mrstft_out": float(mr_out[i]),
                        "pesq_in": float(pesq_in[i]) if is_speech[i] else math.nan,
                        "pesq_out": float(pesq_out[i]) if is_speech[i] else math.nan,
                        "stoi_in": float(stoi_in[i]) if is_speech[i] else math.nan,
                        "stoi_out": float(stoi_out[i]) if is_speech[i] else math.nan,
                        "profile_err_db": math.nan if err is None else float(err[i]),
                    }
                    rec["worse"] = float(rec["si_sdri"] < 0.0)
                    for control in SCALAR_CONTROL_NAMES:
                        value = controls.get(control)
                        rec[control] = float(value[i].reshape(-1)[0]) if value is not None else math.nan
                    detail = controls.get("tonal_detail")
                    rec["tonal_detail_mean"] = float(detail[i].mean()) if detail is not None else math.nan
                    results.append(rec)
                    eid = row["example_id"]
                    if eid in keep.example_ids:
                        kept = keep.audio.setdefault(eid, {"noisy": noisy[i, 0].cpu().numpy(),
                                                           "clean": clean[i, 0].cpu().numpy(), "row": row})
                        if name != "noisy":
                            kept[name] = out[i, 0].cpu().numpy()
                        prof = keep.profiles.setdefault(eid, {
                            "manifest": np.asarray(row["noise_profile_db"], dtype=np.float32),
                            "oracle": oracle_db[i].cpu().numpy(), "row": row})
                        if profile is not None and name != "dsp_oracle":
                            prof[name] = profile[i].detach().cpu().numpy()
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


def _sort_key(method_order: list[str]):
    def key(group: tuple) -> tuple:
        out = []
        for value in group:
            if value in method_order:
                out.append((0, method_order.index(value), ""))
            elif value in SNR_BUCKETS:
                out.append((1, SNR_BUCKETS.index(value), ""))
            else:
                out.append((2, 0 if value == "speech" else 1, str(value)))
        return tuple(out)
    return key


def aggregate(results: list[dict], method_order: list[str]) -> list[dict]:
    """Means per group at every level of `LEVELS` -> summary rows (missing keys read "all")."""
    summary = []
    for level, keys in LEVELS.items():
        groups: dict[tuple, list[dict]] = {}
        for rec in results:
            groups.setdefault(tuple(rec[k] for k in keys), []).append(rec)
        for group in sorted(groups, key=_sort_key(method_order)):
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


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text  # no "-0.00"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _pivot_table(summary: list[dict], level: str, keys: tuple[str, ...], methods: list[str], column: str,
                 digits: int = 2, scale: float = 1.0) -> str:
    cells: dict[tuple, dict] = {}
    counts: dict[tuple, int] = {}
    for row in summary:
        if row["level"] != level:
            continue
        group = tuple(row[k] for k in keys)
        cells.setdefault(group, {})[row["method"]] = row[column] * scale
        counts[group] = row["n"]
    order = sorted(cells, key=_sort_key(methods))
    header = list(keys) + ["n"] + methods
    body = [[str(g) for g in group] + [str(counts[group])] + [_fmt(cells[group].get(m), digits) for m in methods]
            for group in order]
    return _table(header, body)


def write_report(out_dir: Path, summary: list[dict], results: list[dict], costs: dict, methods: list[str],
                 info: dict, plots: list[Path]) -> Path:
    has_pesq = any(math.isfinite(r["pesq_out"]) for r in results)
    has_stoi = any(math.isfinite(r["stoi_out"]) for r in results)
    parts = [f"# Evaluation: {info['run_dir']} ({info['split']} split)", ""]
    parts.append(f"{info['examples']} examples from `{info['build']}` ({info['duration_s']:.0f} s of audio), "
                 f"whole clips; methods: {', '.join(methods)}. Evaluated in {info['elapsed_s']:.0f} s on "
                 f"{info['device']}.")
    parts.append("")
    notes = ["`dsp_blind`: spectral gate, blind (quantile) noise estimate, default controls. "
             "`dsp_oracle`: same gate with the true noise profile (measured on the noise member), default controls. "
             "SI-SDRi = SI-SDR(out) - SI-SDR(noisy); worse = share of examples with SI-SDRi < 0; "
             "MR-STFT = multi-resolution STFT distance to the clean signal (lower is better); "
             "profile err = mean |dB| over bands of the noise profile used against the true one."]
    missing = [name for name, ok in metrics.availability().items() if not ok]
    if missing:
        notes.append(f"PESQ/STOI: package(s) {', '.join(missing)} not importable, so "
                     f"{'these metrics are' if len(missing) == 2 else 'that metric is'} not reported.")
    parts += notes + [""]

    parts += ["## Overall, per method and source type", ""]
    header = ["method", "source", "n", "SI-SDR in", "SI-SDR out", "SI-SDRi", "worse %", "MR-STFT in", "MR-STFT out",
              "profile err dB"]
    if has_pesq:
        header += ["PESQ in", "PESQ out"]
    if has_stoi:
        header += ["STOI in", "STOI out"]
    body = []
    rows = [r for r in summary if r["level"] in ("source", "method")]
    rows.sort(key=lambda r: (methods.index(r["method"]), r["source_type"] == "all",
                             r["source_type"] != "speech", r["source_type"]))
    for r in rows:
        line = [r["method"], r["source_type"], str(r["n"]), _fmt(r["si_sdr_in"]), _fmt(r["si_sdr_out"]),
                _fmt(r["si_sdri"]), _fmt(100 * r["worse"], 0), _fmt(r["mrstft_in"], 3), _fmt(r["mrstft_out"], 3),
                _fmt(r["profile_err_db"], 1)]
        if has_pesq:
            line += [_fmt(r["pesq_in"]), _fmt(r["pesq_out"])]
        if has_stoi:
            line += [_fmt(r["stoi_in"], 3), _fmt(r["stoi_out"], 3)]
        body.append(line)
    parts += [_table(header, body), ""]

    parts += ["## SI-SDRi (dB) per source and noise type", "",
              _pivot_table(summary, "source_noise", ("source_type", "noise_type"), methods, "si_sdri"), ""]
    parts += ["## SI-SDRi (dB) per source type and SNR bucket (target SNR, dB)", "",
              _pivot_table(summary, "source_snr", ("source_type", "snr_bucket"), methods, "si_sdri"), ""]
    parts += ["## Share of examples made worse (SI-SDRi < 0, %) per source type and SNR bucket", "",
              _pivot_table(summary, "source_snr", ("source_type", "snr_bucket"), methods, "worse", 0, 100.0), ""]
    parts += ["## MR-STFT distance per source type and SNR bucket (lower is better)", "",
              _pivot_table(summary, "source_snr", ("source_type", "snr_bucket"), methods, "mrstft_out", 3), ""]

    if "controller" in methods:
        parts += ["## Controls predicted by the controller (mean ± std)", ""]
        header = ["source"] + [f"{n} ({SPECS[n].unit})" for n in SCALAR_CONTROL_NAMES]
        body = []
        for source in sorted({r["source_type"] for r in results}, key=lambda s: (s != "speech", s)):
            recs = [r for r in results if r["method"] == "controller" and r["source_type"] == source]
            line = [source]
            for n in SCALAR_CONTROL_NAMES:
                v = np.array([r[n] for r in recs])
                line.append(f"{v.mean():.1f} ± {v.std():.1f}")
            body.append(line)
        parts += [_table(header, body), ""]

    parts += ["## Cost", "",
              f"Real-time factor: best-of-N wall time / audio duration for {info['timing_s']:.0f} s of "
              f"{info['sample_rate']} Hz mono on ONE CPU core (torch.set_num_threads(1)); MACs: multiply-"
              "accumulates per second of audio (network layers by hooks, STFT/gate analytic).", ""]
    header = ["method", "parameters", "MMAC/s", "RTF (1 core)", "x real time"]
    body = []
    for m in methods:
        c = costs.get(m, {})
        rtf = c.get("rtf", math.nan)
        body.append([m, f"{c.get('params', 0):,}", _fmt(c.get("macs_per_s", math.nan) / 1e6, 1),
                     "–" if not (rtf and math.isfinite(rtf)) else f"{rtf:.4f}",
                     "–" if not (rtf and math.isfinite(rtf)) else f"{1 / rtf:.0f}"])
    parts += [_table(header, body), ""]
    if "controller" in costs and "masknet" in costs:
        c, k = costs["controller"], costs["masknet"]
        ratio_macs = k["macs_per_s"] / max(c["macs_per_s"], 1e-9)
        line = f"Mask network / controller+gate: {ratio_macs:.1f}x the MACs"
        if math.isfinite(c["rtf"]) and math.isfinite(k["rtf"]):
            line += f", {k['rtf'] / c['rtf']:.1f}x the CPU time"
        parts += [line + ".", ""]

    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    path = out_dir / "report.md"
    path.write_text("\n".join(parts))
    return path


def write_tables(out_dir: Path, results: list[dict], summary: list[dict]) -> tuple[Path, Path]:
    results_path = out_dir / "results.parquet"
    columns = list(results[0].keys()) if results else ["example_id", "method"]
    table = pa.table({c: [r.get(c) for r in results] for c in columns})
    pq.write_table(table, results_path)
    summary_path = out_dir / "summary.csv"
    fields = ["level", "method", "source_type", "noise_type", "snr_bucket", "n", *METRIC_COLUMNS]
    with open(summary_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in summary:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in fields})
    return results_path, summary_path


# --------------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_si_sdri(out_dir: Path, summary: list[dict], methods: list[str]) -> list[Path]:
    """SI-SDRi vs SNR bucket (lines per method), one panel per source type; and per noise type (bars)."""
    plt = _plt()
    paths = []
    sources = sorted({r["source_type"] for r in summary if r["level"] == "source_snr"},
                     key=lambda s: (s != "speech", s))
    methods_out = [m for m in methods if m != "noisy"]
    for level, key, name, title in (("source_snr", "snr_bucket", "si_sdri_by_snr.png", "target SNR bucket (dB)"),
                                    ("source_noise", "noise_type", "si_sdri_by_noise.png", "noise type")):
        fig, axes = plt.subplots(1, len(sources), figsize=(5.5 * len(sources), 4), squeeze=False, sharey=True)
        for ax, source in zip(axes[0], sources):
            rows = [r for r in summary if r["level"] == level and r["source_type"] == source]
            cats = sorted({r[key] for r in rows}, key=lambda v: SNR_BUCKETS.index(v) if v in SNR_BUCKETS else 0)
            if key == "noise_type":
                cats = sorted(cats)
            x = np.arange(len(cats))
            width = 0.8 / max(1, len(methods_out))
            for j, m in enumerate(methods_out):
                values = [next((r["si_sdri"] for r in rows if r["method"] == m and r[key] == c), np.nan) for c in cats]
                if key == "snr_bucket":
                    ax.plot(x, values, marker="osD^v"[j % 5], ls=("-", "--", "-.", ":")[j % 4], label=m)
                else:
                    ax.bar(x - 0.4 + width * (j + 0.5), values, width, label=m)
            ax.axhline(0.0, color="k", lw=0.8)
            ax.set_xticks(x, cats, rotation=30 if key == "noise_type" else 0)
            ax.set_title(source)
            ax.set_xlabel(title)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("SI-SDRi (dB)")
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_spectrograms(out_dir: Path, keep: _Keep, methods: list[str], rate: int) -> list[Path]:
    """Noisy / clean / every method's output for the first kept example of each source type."""
    plt = _plt()
    paths = []
    seen = set()
    for eid, kept in keep.audio.items():
        row = kept["row"]
        if row["source_type"] in seen:
            continue
        seen.add(row["source_type"])
        panels = [("noisy", kept["noisy"]), ("clean", kept["clean"])]
        panels += [(m, kept[m]) for m in methods if m != "noisy" and m in kept]
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.6 * len(panels)), sharex=True, squeeze=False)
        spectra = [_spectrogram_db(x, rate) for _, x in panels]
        vmax = float(np.percentile(spectra[0][0], 99.5))  # the noisy input sets the colour range
        for ax, (label, _), (db, extent) in zip(axes[:, 0], panels, spectra):
            ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=vmax - 90.0, vmax=vmax, cmap="magma",
                      interpolation="nearest")
            ax.set_ylabel("kHz")
            ax.set_title(label, fontsize=9, loc="left")
        axes = axes[:, 0]
        axes[-1].set_xlabel("s")
        fig.suptitle(f"{eid}: {row['source_type']}, {row['noise_type']} noise, target SNR {row['snr_target_db']:.1f} dB",
                     fontsize=10)
        fig.tight_layout()
        path = out_dir / f"spectrograms_{row['source_type']}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def _spectrogram_db(x: np.ndarray, rate: int, n_fft: int = 2048, hop: int = 512, max_frames: int = 800):
    """Power density (dB, floored) of a mono signal -> ((bins, frames) array, imshow extent in s/kHz)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    hop = max(hop, (x.size - n_fft) // max_frames + 1)
    window = np.hanning(n_fft + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * window
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2 / np.sum(window**2)
    db = 10.0 * np.log10(np.maximum(power.T, 1e-14))
    return db, (0.0, x.size / rate, 0.0, rate / 2000.0)


def plot_profiles(out_dir: Path, keep: _Keep, layout: BandLayout) -> list[Path]:
    """Noise profile used by each method against the true one, for the kept examples."""
    if not keep.profiles:
        return []
    plt = _plt()
    items = list(keep.profiles.items())
    cols = min(2, len(items))
    rows_n = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 3.6 * rows_n), squeeze=False)
    centres = np.maximum(layout.band_centers_hz, 10.0)
    styles = {"manifest": ("k", "-", "true (manifest)"), "oracle": ("0.5", "--", "true (gate STFT)"),
              "dsp_blind": ("tab:blue", "-", "blind estimate"), "controller": ("tab:red", "--", "controller")}
    for ax, (eid, prof) in zip(axes.flat, items):
        for key, (color, ls, label) in styles.items():
            if key in prof:
                ax.semilogx(centres, prof[key], color=color, ls=ls, label=label, lw=1.4)
        row = prof["row"]
        ax.set_title(f"{eid}: {row['source_type']}, {row['noise_type']}, SNR {row['snr_target_db']:.1f} dB", fontsize=9)
        ax.set_xlabel("Hz")
        ax.set_ylabel("noise power density (dB)")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "noise_profiles.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


# --------------------------------------------------------------------------------------------------
# entry points
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
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)

    manifest = join(root, "examples.parquet")
    layout = band_layout(manifest)
    table = read_manifest(manifest, "examples", columns=MANIFEST_COLUMNS)
    rows = [r for r in table.to_pylist() if r["split"] == split]
    if not rows:
        splits = sorted(set(table.column("split").to_pylist()))
        raise EvaluationError(f"{manifest}: no examples in split {split!r} (splits: {splits})")
    rows.sort(key=lambda r: r["index"])
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


def add_evaluate_parser(sub) -> argparse.ArgumentParser:
    """Register `training evaluate` on an argparse subparsers object."""
    parser = sub.add_parser("evaluate", help="evaluate a run (baselines, controller, mask network) and write a report",
                            description=__doc__.split("\n\n")[0])
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
    parser.set_defaults(func=_run_evaluate)
    return parser


def _run_evaluate(args) -> int:
    paths = evaluate(args.run_dir, args.split, args.out, args.max_examples, build=args.build, device=args.device,
                     batch_size=args.batch_size, timing=not args.no_timing, threads=args.threads or None,
                     progress=not args.quiet)
    print(f"report: {paths['report']}")
    print(f"results: {paths['results']}  summary: {paths['summary']}")
    return 0

