"""Compute cost of the denoisers: parameters, multiply-accumulates per second of audio, real-time factor.

Shared by `training.evaluate` (the report's cost table) and `benchmarks/bench_denoiser.py`.
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from manifests.bands import BandLayout

from .controls import SPECS
from .gate import kernel_half_width

if TYPE_CHECKING:
    from .controller import Controller

Tensor = torch.Tensor


@contextmanager
def torch_threads(n: int):
    """Temporarily run torch's intra-op work on `n` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _rnn_macs(module: nn.RNNBase, output) -> float:
    out = output[0] if isinstance(output, tuple) else output
    if hasattr(out, "data") and isinstance(out, nn.utils.rnn.PackedSequence):
        steps_x_batch = out.data.shape[0]
    else:
        steps_x_batch = out.shape[0] * out.shape[1] if out.ndim == 3 else out.shape[0]
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    dirs = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    per_step = 0
    for layer in range(module.num_layers):
        inp = module.input_size if layer == 0 else hidden * dirs
        per_step += dirs * gates * (inp * hidden + hidden * (module.proj_size or hidden))
    return float(steps_x_batch * per_step)


def module_macs(model: nn.Module, run: Callable[[], object]) -> float:
    """Multiply-accumulates of the learned layers while `run()` executes, counted by forward hooks:
    convolutions (1-3 d, transposed too), linear layers, GRU/LSTM/RNN, multi-head attention
    (projections + QK^T + AV). Elementwise work, FFTs and normalizations are not counted here."""
    total = 0.0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            x = inputs[0]
            total += x.numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, nn.RNNBase):
            total += _rnn_macs(module, output)
        elif isinstance(module, nn.MultiheadAttention):
            q = inputs[0]
            k = inputs[1] if len(inputs) > 1 else q
            seq_q = q.shape[1 if module.batch_first else 0]
            seq_k = k.shape[1 if module.batch_first else 0]
            batch = q.numel() // (seq_q * module.embed_dim)
            e = module.embed_dim
            total += batch * (seq_q * e * e + 2 * seq_k * e * e + 2 * seq_q * seq_k * e + seq_q * e * e)

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
             nn.Linear, nn.RNNBase, nn.MultiheadAttention)
    # nn.MultiheadAttention uses its out_proj weights functionally (no hook fires): counted in the formula
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return total


def gate_macs_per_second(layout: BandLayout, channels: int = 1, freq_smooth_hz: float | None = None,
                         link_channels: bool = True) -> dict[str, float]:
    """Analytic multiply-accumulates per second of audio of `gate.spectral_gate` (one MAC per multiply-add;
    comparisons, exp/log/sigmoid counted as one each): dict "stft", "gate", "istft", "total".

    Real FFT of size N ~ N log2 N MACs (half-size complex radix-2). `freq_smooth_hz` sets the kernel
    length (default: the spec's default).
    """
    frames_s = layout.sample_rate / layout.hop
    n, bins = layout.n_fft, layout.n_bins
    units = 1 if link_channels else channels
    sigma = SPECS["freq_smooth_hz"].default if freq_smooth_hz is None else freq_smooth_hz
    taps = 2 * kernel_half_width(sigma / (layout.sample_rate / n)) + 1
    fft = n * math.log2(n) + n  # transform + windowing
    stft_macs = channels * frames_s * fft
    istft_macs = channels * frames_s * (fft + n)  # + overlap-add
    per_bin = 3 * channels / units + 6 + taps + 1 + 3 + 3 + 1  # power, 3x3, Gaussian, log, curve, ballistics, exp
    gate_macs = units * frames_s * bins * per_bin + channels * frames_s * bins * 2  # + complex gain
    return {"stft": stft_macs, "gate": gate_macs, "istft": istft_macs, "total": stft_macs + gate_macs + istft_macs}


def stft_macs_per_second(layout: BandLayout, channels: int = 1) -> float:
    """Analysis STFT + synthesis (inverse + overlap-add) per second of audio, as `gate_macs_per_second`."""
    parts = gate_macs_per_second(layout, channels)
    return parts["stft"] + parts["istft"]


def controller_macs_per_second(controller: Controller, channels: int = 1, seconds: float = 10.0) -> dict[str, float]:
    """Multiply-accumulates per second of audio of `controller.Controller` + gate (dict of parts and "total").

    Network layers are counted by `module_macs` on a `seconds`-long input (the per-clip MLP is
    amortised over it); the analysis (band matrix, channel mean, quantile selection ~ 2 per
    bin-frame) and the gate (`gate_macs_per_second`, with the default frequency smoothing) are
    analytic. The STFT is shared between controller and gate and counted once.
    """
    layout = controller.layout
    device = next(controller.parameters()).device
    audio = torch.randn(1, channels, int(seconds * layout.sample_rate), device=device) * 0.05
    nn_macs = module_macs(controller, lambda: controller(audio)) / seconds
    frames_s = layout.sample_rate / layout.hop
    analysis = frames_s * (layout.n_bins + channels * layout.n_bins * 3)  # banding (segment sums), channel mean, quantile
    gate = gate_macs_per_second(layout, channels)
    parts = {"controller_nn": nn_macs, "controller_analysis": analysis, "stft": gate["stft"], "gate": gate["gate"],
             "istft": gate["istft"]}
    parts["total"] = sum(parts.values())
    return parts


def real_time_factor(fn: Callable[[Tensor], object], sample_rate: int, seconds: float = 10.0, channels: int = 1,
                     repeats: int = 5, max_time_s: float = 20.0, threads: int | None = 1, seed: int = 0) -> float:
    """Best-of-`repeats` wall time of `fn(audio)` / audio duration, on CPU noise of `seconds` s
    (one warm-up call; stops early once `max_time_s` is spent). `threads` = 1: one CPU core."""
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(1, channels, int(seconds * sample_rate), generator=generator) * 0.05
    best = math.inf
    with torch_threads(threads or torch.get_num_threads()), torch.no_grad():
        fn(audio)
        spent = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            fn(audio)
            elapsed = time.perf_counter() - start
            best = min(best, elapsed)
            spent += elapsed
            if spent > max_time_s:
                break
    return best / seconds


def cpu_copy(model: nn.Module) -> nn.Module:
    """The model itself when on CPU, else a CPU copy (for timing on one CPU core)."""
    try:
        device = next(model.parameters()).device
    except StopIteration:
        return model
    return model if device.type == "cpu" else copy.deepcopy(model).cpu()


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those requiring gradients with `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
