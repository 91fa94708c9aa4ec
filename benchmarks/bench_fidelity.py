#!/usr/bin/env python3
"""Fidelity on real recordings: trained controller vs oracle-profile DSP vs noisereduce, in one run.

    pip install -e '.[bench]'        # noisereduce, the reference
    python benchmarks/bench_fidelity.py --speech DIR [...] --music DIR [...] --noise DIR [...]
                                        [--train-noise DIR [...]] [--train-config configs/train_real.toml] [--work DIR]
    python benchmarks/bench_fidelity.py --build BUILD --run RUN [--report FILE]   # steps 3-5 on a finished build and run

1. Builds a corpus from the given real speech, music and noise folders, plus the package's generated
   stationary noises, at 0 / 5 / 10 / 20 dB SNR (active-frame definition), 48 kHz, 4 s clips. Splits
   are grouped by recording, so the test split holds recordings the model never heard. Noise folders
   given with --train-noise go to the train split only, leaving valid and test as they were.
2. Trains the controller (both stages) and the mask network on the train split with --train-config.
3. Evaluates every method on the test split (`training evaluate`), and runs noisereduce 3 in its
   stationary mode on the same mixtures, given a 2 s clip of the same noise recording taken outside
   the mixed excerpt (at the same gain), as a user would select a noise-only region.
4. Runs the trained controller once more with that same 2 s clip (`controller+clip`): the profile
   and its per-bin shape inside bands are measured from the clip, with tonal detail 1 (as `training
   denoise --noise-profile CLIP` does), the other controls are predicted from the noisy input. This
   is the like-for-like comparison with noisereduce, which is given the clip; `controller` is blind.
5. Prints the mean SI-SDR improvement of each method and the share of mixtures it made worse, per
   source type x SNR, x noise type and x noise source (corpus), PESQ and STOI on speech, and the
   shipped model's targets (level with the oracle-profile gate on speech and within 1 dB of it on
   music at every SNR, nothing made worse at 20 dB, above noisereduce on average), for the blind
   controller and with the clip.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from datagen.build import build
from datagen.config import load_config as load_build_config
from datagen.render import read_segment
from manifests.io import open_example, read_manifest
from training.gate import spectral_gate
from training.stft import stft
from training.config import load_config as load_train_config
from training.config import with_overrides
from training.reducer import measure_noise, with_controls
from training.evaluate import evaluate, load_model
from training.run_folder import find_checkpoint
from training.metrics import si_sdr
from training.train import train

SNRS_DB = (0.0, 5.0, 10.0, 20.0)
NOISE_CLIP_S = 2.0


def write_build_config(path: Path, args: argparse.Namespace) -> Path:
    corpora = []
    for kind in ("speech", "music", "noise"):
        for i, folder in enumerate(getattr(args, kind)):
            corpora.append(f'[[corpora]]\nname = "{kind}{i}"\ntype = "{kind}"\npath = "{Path(folder).resolve()}"\n')
    for i, folder in enumerate(args.train_noise):  # training only: the valid and test splits stay as without them
        corpora.append(f'[[corpora]]\nname = "train_noise{i}"\ntype = "noise"\npath = "{Path(folder).resolve()}"\nsplit = "train"\n')
    corpora.append('[[corpora]]\nname = "generated_noise"\ntype = "noise"\ngenerator = "noise"\ncount = 4\nduration_s = 30.0\n')
    path.write_text(f"""
seed = 3
[audio]
clip_duration_s = 4.0
[snr]
distribution = "choice"
values_db = {list(SNRS_DB)}
[mix]
noise_loop = "crossfade"
[splits]
fractions = {{ train = 0.7, valid = 0.1, test = 0.2 }}
examples = {{ train = {args.train_examples}, valid = 128, test = {args.test_examples} }}
""" + "\n".join(corpora))
    return path


def noise_clip(row: dict, source: dict, clip_s: float = NOISE_CLIP_S) -> np.ndarray:
    """2 s of the example's noise recording outside the mixed excerpt, at the example's noise gain."""
    duration_s = source["duration_s"]
    start_s = row["noise_start_s"] + row["duration_s"]
    if start_s + clip_s > duration_s:
        start_s = max(0.0, row["noise_start_s"] - clip_s)
    clip = read_segment(source["path"], source["sample_rate"], start_s, min(clip_s, duration_s), row["sample_rate"], row["channels"])
    return clip * 10.0 ** ((row["noise_gain_db"] + row["ceiling_gain_db"]) / 20.0)


def with_noise_clips(build_dir: Path, split: str) -> Iterator[tuple[dict, Any, np.ndarray]]:
    """(manifest row, its audio, its 2 s noise clip (channels, samples)) for every example of `split`."""
    rows = [r for r in read_manifest(str(build_dir / "examples.parquet"), "examples").to_pylist() if r["split"] == split]
    sources = {r["source_id"]: r for r in read_manifest(str(build_dir / "sources.parquet"), "sources").to_pylist()}
    for row in rows:
        yield row, open_example(row, str(build_dir)), noise_clip(row, sources[row["noise_source_id"]])


def _result(row: dict, method: str, out: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> dict:
    gain = float(si_sdr(out[None], clean[None])[0] - si_sdr(noisy[None], clean[None])[0])
    return {"example_id": row["example_id"], "method": method, "source_type": row["source_type"],
            "snr_target_db": row["snr_target_db"], "noise_type": row["noise_type"], "noise_corpus": row["noise_corpus"],
            "si_sdri": gain}


def noisereduce_results(build_dir: Path, split: str) -> list[dict]:
    import noisereduce

    results = []
    for row, audio, clip in with_noise_clips(build_dir, split):
        out = np.stack([noisereduce.reduce_noise(y=audio.noisy[c], sr=row["sample_rate"], y_noise=clip[c], stationary=True)
                        for c in range(audio.noisy.shape[0])]).astype(np.float32)
        results.append(_result(row, "noisereduce", out[:, : audio.clean.shape[1]], audio.noisy, audio.clean))
    return results


@torch.no_grad()
def controller_clip_results(build_dir: Path, run_dir: Path, split: str) -> list[dict]:
    """The trained controller with the noise profile and in-band shape measured from the same 2 s clip noisereduce
    gets (`training denoise --noise-profile CLIP`)."""
    model, _ = load_model(find_checkpoint(run_dir, "best.pt"), torch.device("cpu"))
    results = []
    for row, audio, clip in with_noise_clips(build_dir, split):
        noisy = torch.from_numpy(audio.noisy)[None]
        spec = stft(noisy, model.layout)  # one STFT for the controller's analysis and the gate, as in Denoiser
        controls = with_controls(model.controller(noisy, spec=spec), measure_noise(clip.T, row["sample_rate"], model.layout))
        out = spectral_gate(noisy, controls, model.layout, spec=spec, link_channels=model.link_channels)[0].numpy()
        results.append(_result(row, "controller+clip", out, audio.noisy, audio.clean))
    return results


def _cell(values: list[float]) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{np.mean(values):+.2f} ({np.mean(values < 0):.0%})" if values.size else "–"


def breakdown(results: list[dict], methods: list[str], key: str, title: str) -> list[str]:
    """Markdown table: mean SI-SDRi (share made worse) per source type x `key` for every method."""
    table: dict[tuple, list[float]] = {}
    for r in results:
        table.setdefault((r["source_type"], r[key], r["method"]), []).append(r["si_sdri"])
    lines = [f"\n### SI-SDRi (dB) per source type and {title}; in brackets: share of mixtures made worse\n",
             f"| source | {title} | n | " + " | ".join(methods) + " |", "|---|---|---:|" + "---:|" * len(methods)]
    for source in ("speech", "music"):
        for value in sorted({k[1] for k in table if k[0] == source}, key=lambda v: (isinstance(v, str), v)):
            label = f"{value:g} dB" if isinstance(value, float) else str(value)
            n = len(table.get((source, value, methods[0]), []))
            lines.append(f"| {source} | {label} | {n} | " + " | ".join(_cell(table.get((source, value, m), [])) for m in methods) + " |")
    return lines


def speech_quality(results: list[dict], methods: list[str]) -> list[str]:
    """Markdown table of mean wideband PESQ and STOI on speech (rows without them are skipped)."""
    lines = ["\n### Speech quality (mean over speech mixtures)\n", "| method | PESQ | STOI |", "|---|---:|---:|"]
    for method in methods:
        rows = [r for r in results if r["method"] == method and r["source_type"] == "speech" and r.get("pesq_out") is not None]
        if rows:
            lines.append(f"| {method} | {np.nanmean([r['pesq_out'] for r in rows]):.2f} | {np.nanmean([r['stoi_out'] for r in rows]):.3f} |")
    return lines


def checks(results: list[dict], methods: list[str], candidates: tuple[str, ...] = ("controller", "controller+clip")) -> list[str]:
    """The shipped model's targets, met or not, with the measured margins."""
    table: dict[tuple, list[float]] = {}
    for r in results:
        table.setdefault((r["source_type"], r["snr_target_db"], r["method"]), []).append(r["si_sdri"])
    mean = lambda source, snr, m: float(np.mean(table.get((source, snr, m), [np.nan])))  # noqa: E731
    lines = []
    for candidate in (m for m in candidates if m in methods):
        # np.min: a missing cell (NaN) makes its target "NOT met", whatever its position
        speech_gap = float(np.min([mean("speech", snr, candidate) - mean("speech", snr, "dsp_oracle") for snr in SNRS_DB]))
        music_gap = float(np.min([mean("music", snr, candidate) - mean("music", snr, "dsp_oracle") for snr in SNRS_DB]))
        worse_at_20 = sum(int(np.sum(np.array(table.get((source, 20.0, candidate), [])) < 0)) for source in ("speech", "music"))
        vs_reference = float(np.nanmean([mean(source, snr, candidate) - mean(source, snr, "noisereduce")
                                         for source in ("speech", "music") for snr in SNRS_DB]))
        lines += [f"\n{candidate}:",
                  f"  {'met' if speech_gap >= 0 else 'NOT met'}: level with the oracle-profile gate on speech at every SNR (worst SNR {speech_gap:+.2f} dB)",
                  f"  {'met' if music_gap >= -1 else 'NOT met'}: within 1 dB of it on music at every SNR (worst SNR {music_gap:+.2f} dB)",
                  f"  {'met' if worse_at_20 == 0 else 'NOT met'}: no mixture made worse at 20 dB ({worse_at_20} made worse)"]
        if "noisereduce" in methods:
            lines.append(f"  {'met' if vs_reference > 0 else 'NOT met'}: above noisereduce-with-a-clip on average ({vs_reference:+.2f} dB)")
    return lines


def report(results: list[dict], methods: list[str]) -> str:
    lines = ["mean SI-SDR improvement (dB) on held-out recordings and noise sources, one run"]
    lines += breakdown(results, methods, "snr_target_db", "SNR")
    lines += breakdown(results, methods, "noise_type", "noise type")
    lines += breakdown(results, methods, "noise_corpus", "noise source")
    lines += speech_quality(results, methods)
    lines += checks(results, methods)
    return "\n".join(lines) + "\n"


def evaluate_all(build_dir: Path, run_dir: Path, work: Path) -> list[dict]:
    """Every method on the test split: `training evaluate`'s methods, noisereduce and controller+clip, one row each
    per (example, method) with its noise type and noise source (corpus)."""
    report_dir = work / "report_test"
    evaluate(str(run_dir), split="test", out_dir=str(report_dir), build=str(build_dir))
    results = pq.read_table(report_dir / "results.parquet").to_pylist()
    table = read_manifest(str(build_dir / "examples.parquet"), "examples", columns=["example_id", "noise_corpus"])
    noise_corpus = dict(zip(table.column("example_id").to_pylist(), table.column("noise_corpus").to_pylist()))
    for r in results:  # evaluate's rows carry the noise type, not the noise corpus
        r["noise_corpus"] = noise_corpus[r["example_id"]]
    return results + noisereduce_results(build_dir, "test") + controller_clip_results(build_dir, run_dir, "test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech", nargs="+", default=[])
    parser.add_argument("--music", nargs="+", default=[])
    parser.add_argument("--noise", nargs="+", default=[])
    parser.add_argument("--train-noise", nargs="+", default=[],
                        help="more noise folders, for training only (every recording in the train split; valid and test unchanged)")
    parser.add_argument("--train-config", default=str(Path(__file__).resolve().parents[1] / "configs" / "train_real.toml"))
    parser.add_argument("--train-examples", type=int, default=1536)
    parser.add_argument("--test-examples", type=int, default=320)
    parser.add_argument("--build", default=None, help="evaluate this finished `datagen build` instead of building one from folders")
    parser.add_argument("--run", default=None, help="with --build: the finished `training train` run folder to evaluate")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one); reruns resume")
    parser.add_argument("--report", default=None, help="also write the tables (markdown) to this file")
    args = parser.parse_args()
    folders = args.speech or args.music or args.noise or args.train_noise
    if bool(args.build) != bool(args.run) or bool(args.build) == bool(folders) or \
            (folders and not (args.speech and args.music and args.noise)):
        parser.error("give --speech, --music and --noise folders, or an existing --build and --run (not both)")
    if importlib.util.find_spec("noisereduce") is None:  # checked before an hour of building and training
        parser.error("needs noisereduce, the reference: .venv/bin/pip install -e '.[bench]'")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_fidelity_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work} (pass it as --work to resume)", flush=True)
    if args.build:
        build_dir, run_dir = Path(args.build), Path(args.run)
    else:
        build_dir, run_dir = work / "data", work / "run"
        build(load_build_config(write_build_config(work / "corpus.toml", args)), str(build_dir), workers=0, progress=True)
        train(with_overrides(load_train_config(args.train_config), **{"data.build": str(build_dir)}), str(run_dir))
    results = evaluate_all(build_dir, run_dir, work)
    methods = [m for m in ("noisy", "dsp_blind", "noisereduce", "masknet", "dsp_oracle", "controller", "controller+clip")
               if any(r["method"] == m for r in results)]
    text = report(results, methods)
    print("\n" + text)
    if args.report:
        Path(args.report).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
