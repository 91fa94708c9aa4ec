"""The evaluation report: `report.md` (tables of every method per source type, noise type and SNR bucket, the
controller's controls, the costs), `results.parquet` / `summary.csv`, and the PNG plots."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from manifests.bands import BandLayout

from . import metrics
from .controls import SCALAR_CONTROL_NAMES, SPECS

SNR_BUCKETS = ("<0", "0-5", "5-10", "10-15", "15-20", ">=20")
SNR_EDGES_DB = (0.0, 5.0, 10.0, 15.0, 20.0)  # the edges between SNR_BUCKETS


def snr_bucket(snr_db: float) -> str:
    """Bucket label of a target SNR: <0, 0-5, 5-10, 10-15, 15-20, >=20 dB."""
    return SNR_BUCKETS[int(np.searchsorted(SNR_EDGES_DB, snr_db, side="right"))]
METRIC_COLUMNS = ("si_sdr_in", "si_sdr_out", "si_sdri", "mrstft_in", "mrstft_out", "worse", "pesq_in", "pesq_out",
                  "stoi_in", "stoi_out", "profile_err_db")


@dataclass
class Kept:
    """Audio and profiles kept for the plots."""

    example_ids: set
    audio: dict  # example_id -> {"noisy": ..., "clean": ..., method: ...} (channel 0, numpy)
    profiles: dict  # example_id -> {"manifest": ..., "oracle": ..., "dsp_blind": ..., "controller": ...}


def sort_key(method_order: list[str]):
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
    order = sorted(cells, key=sort_key(methods))
    header = list(keys) + ["n"] + methods
    body = [[str(g) for g in group] + [str(counts[group])] + [_fmt(cells[group].get(m), digits) for m in methods]
            for group in order]
    return _table(header, body)


def _report_header(methods: list[str], info: dict) -> list[str]:
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
    return parts


def _overall_section(summary: list[dict], results: list[dict], methods: list[str]) -> list[str]:
    has_pesq = any(math.isfinite(r["pesq_out"]) for r in results)
    has_stoi = any(math.isfinite(r["stoi_out"]) for r in results)
    parts: list[str] = []
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

    return parts


def _pivot_sections(summary: list[dict], methods: list[str]) -> list[str]:
    parts: list[str] = []
    parts += ["## SI-SDRi (dB) per source and noise type", "",
              _pivot_table(summary, "source_noise", ("source_type", "noise_type"), methods, "si_sdri"), ""]
    parts += ["## SI-SDRi (dB) per source type and SNR bucket (target SNR, dB)", "",
              _pivot_table(summary, "source_snr", ("source_type", "snr_bucket"), methods, "si_sdri"), ""]
    parts += ["## Share of examples made worse (SI-SDRi < 0, %) per source type and SNR bucket", "",
              _pivot_table(summary, "source_snr", ("source_type", "snr_bucket"), methods, "worse", 0, 100.0), ""]
    parts += ["## MR-STFT distance per source type and SNR bucket (lower is better)", "",
              _pivot_table(summary, "source_snr", ("source_type", "snr_bucket"), methods, "mrstft_out", 3), ""]

    return parts


def _controls_section(results: list[dict], methods: list[str]) -> list[str]:
    parts: list[str] = []
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

    return parts


def _cost_section(costs: dict, methods: list[str], info: dict) -> list[str]:
    parts: list[str] = []
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

    return parts


def write_report(out_dir: Path, summary: list[dict], results: list[dict], costs: dict, methods: list[str],
                 info: dict, plots: list[Path]) -> Path:
    """report.md: the header and notes, the overall table, the pivots, the controller's controls, the costs, the plots."""
    parts = (_report_header(methods, info) + _overall_section(summary, results, methods)
             + _pivot_sections(summary, methods) + _controls_section(results, methods) + _cost_section(costs, methods, info))
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


def plot_spectrograms(out_dir: Path, keep: Kept, methods: list[str], rate: int) -> list[Path]:
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


def plot_profiles(out_dir: Path, keep: Kept, layout: BandLayout) -> list[Path]:
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
