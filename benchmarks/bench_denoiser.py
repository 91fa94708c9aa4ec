"""Cost of the controller + spectral gate against the mask-network baseline, measured in one run.

    python benchmarks/bench_denoiser.py                                  # models of configs/train_demo.toml
    python benchmarks/bench_denoiser.py --config my.toml --batch 8 --clip-s 4 --steps 3 --run RUN_DIR

Prints, for both models (untrained weights of the training config's architectures, or the
checkpoints of --run RUN_DIR):

* parameters and multiply-accumulates per second of audio;
* real-time factor: best-of-N wall time / duration of `Denoiser.denoise` / `MaskNet.denoise` on 10 s
  of 48 kHz mono, on ONE CPU core (torch.set_num_threads(1));
* training throughput: examples per second of forward + backward of the stage-2 loss
  (multi-resolution STFT - SI-SDR; the controller's profile/control terms are cheap and left out)
  on a batch of `--clip-s` clips, with `--train-threads` threads (default 1: on a shared machine,
  more threads than free cores slow both models several-fold, the recurrent one most; 0 = torch's
  default);

and the ratios, checked against the targets: controller+gate RTF <= 0.01, and at least 20x
cheaper than the mask network (checked on MACs and on CPU time).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manifests.bands import erb_layout  # noqa: E402
from training import cost  # noqa: E402
from training.controller import Controller, Denoiser  # noqa: E402
from training.losses import MultiResolutionSTFTLoss, si_sdr  # noqa: E402
from training.masknet import MaskNet  # noqa: E402

RTF_TARGET = 0.01
CHEAPER_TARGET = 20.0


def build_models(args):
    if args.run:
        from training.checkpoint import build_model, load_checkpoint
        from training.run_folder import find_checkpoint

        run = Path(args.run)
        paths = {name: find_checkpoint(run, f"{name}.pt") for name in ("best", "masknet")}
        missing = [n for n, p in paths.items() if p is None]
        if missing:
            sys.exit(f"{run}: no {', '.join(m + '.pt' for m in missing)} (nor under checkpoints/)")
        denoiser = build_model(load_checkpoint(paths["best"]))
        masknet = build_model(load_checkpoint(paths["masknet"]))
        return denoiser, masknet, f"checkpoints of {run}"
    from training.config import load_config

    config = load_config(args.config)
    layout = erb_layout(48000)
    c = config.controller
    controller = Controller(layout, hidden=c.hidden, n_blocks=c.n_blocks, kernel_size=c.kernel_size, mlp=c.mlp,
                            prior_quantile=c.prior_quantile)
    m = config.masknet
    masknet = MaskNet(layout, hidden=m.hidden, gru_layers=m.gru_layers)
    return Denoiser(controller), masknet, f"architectures of {args.config} (untrained weights)"


def training_throughput(model, forward, batch: int, clip_s: float, steps: int, rate: int) -> float:
    """Examples per second of forward + backward of the stage-2 audio loss (best step of `steps` after a warm-up)."""
    generator = torch.Generator().manual_seed(0)
    samples = int(clip_s * rate)
    t = torch.arange(samples) / rate
    clean = 0.2 * torch.sin(2 * math.pi * 220 * t) * (torch.sin(2 * math.pi * 0.7 * t) > 0)
    clean = clean.expand(batch, 1, samples).contiguous()
    noisy = clean + 0.03 * torch.randn(batch, 1, samples, generator=generator)
    loss_fn = MultiResolutionSTFTLoss()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    best = math.inf
    for step in range(steps + 1):
        for p in params:
            p.grad = None
        start = time.perf_counter()
        out = forward(noisy)
        loss = loss_fn(out, clean) - si_sdr(out, clean).mean()
        loss.backward()
        elapsed = time.perf_counter() - start
        if step > 0:  # the first step warms up
            best = min(best, elapsed)
    model.eval()
    return batch / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "train_demo.toml"), help="training config (model sizes)")
    parser.add_argument("--run", default=None, help="use the checkpoints of this run folder instead")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length of the RTF measurement")
    parser.add_argument("--repeats", type=int, default=5, help="RTF: best of this many runs")
    parser.add_argument("--batch", type=int, default=4, help="training batch size")
    parser.add_argument("--clip-s", type=float, default=4.0, help="training clip length (s)")
    parser.add_argument("--steps", type=int, default=2, help="training steps timed (after one warm-up)")
    parser.add_argument("--train-threads", type=int, default=1,
                        help="threads for the training measurement (default 1; 0 = torch's default)")
    args = parser.parse_args(argv)

    denoiser, masknet, source = build_models(args)
    layout = denoiser.layout
    rate = layout.sample_rate
    threads = args.train_threads or torch.get_num_threads()
    print(f"models: {source}; {rate} Hz; torch {torch.__version__}, {torch.get_num_threads()} threads available")

    rows = {}
    for name, model in (("controller+gate", denoiser), ("masknet", masknet)):
        model.eval()
        if isinstance(model, Denoiser):
            parts = cost.controller_macs_per_second(model.controller, 1, args.seconds)
            macs = parts["total"]
            breakdown = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in parts.items() if k != "total")
        else:
            audio = torch.randn(1, 1, int(args.seconds * rate)) * 0.05
            macs = cost.module_macs(model, lambda: model.denoise(audio)) / args.seconds + cost.stft_macs_per_second(layout)
        rtf = cost.real_time_factor(lambda x, m=model: m.denoise(x), rate, args.seconds, repeats=args.repeats, threads=1)
        forward = (lambda x, m=model: m(x)[0]) if isinstance(model, Denoiser) else (lambda x, m=model: m(x))
        with cost.torch_threads(threads):
            eps = training_throughput(model, forward, args.batch, args.clip_s, args.steps, rate)
        rows[name] = {"params": cost.parameter_count(model), "macs": macs, "rtf": rtf, "eps": eps}

    print()
    print(f"{'model':<16} {'params':>10} {'MMAC/s':>9} {'RTF (1 core)':>13} {'x realtime':>11} "
          f"{'train ex/s':>11}")
    for name, r in rows.items():
        print(f"{name:<16} {r['params']:>10,} {r['macs'] / 1e6:>9.1f} {r['rtf']:>13.4f} {1 / r['rtf']:>11.0f} "
              f"{r['eps']:>11.1f}")
    print(f"controller+gate MMAC/s by part: {breakdown}")
    c, m = rows["controller+gate"], rows["masknet"]
    mac_ratio, rtf_ratio, train_ratio = m["macs"] / c["macs"], m["rtf"] / c["rtf"], c["eps"] / m["eps"]
    print()
    print(f"RTF measured on 1 thread, {args.seconds:g} s mono, best of {args.repeats}; training: batch {args.batch} x "
          f"{args.clip_s:g} s clips, forward+backward of MR-STFT - SI-SDR, {threads} thread(s), best of {args.steps} steps")
    print(f"masknet / controller+gate: {mac_ratio:.1f}x MACs, {rtf_ratio:.1f}x inference CPU time, "
          f"controller trains {train_ratio:.1f}x more examples per second")
    ok_rtf = c["rtf"] <= RTF_TARGET
    print(f"target controller+gate RTF <= {RTF_TARGET}: {'met' if ok_rtf else 'NOT met'} ({c['rtf']:.4f})")
    for label, ratio in (("MACs", mac_ratio), ("inference CPU time", rtf_ratio)):
        print(f"target >= {CHEAPER_TARGET:g}x cheaper than the mask network ({label}): "
              f"{'met' if ratio >= CHEAPER_TARGET else 'NOT met'} ({ratio:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
