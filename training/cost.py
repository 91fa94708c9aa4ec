"""Compute cost of the denoisers: parameters, multiply-accumulates per second of audio, real-time factor.

Shared by `training.evaluate` (the report's cost table) and `benchmarks/bench_denoiser.py`.
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

from manifests.bands import BandLayout

from . import dsp

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


def stft_macs_per_second(layout: BandLayout, channels: int = 1) -> float:
    """Analysis STFT + synthesis (inverse + overlap-add) per second of audio, as `dsp.dsp_macs_per_second`."""
    parts = dsp.dsp_macs_per_second(layout, channels)
    return parts["stft"] + parts["istft"]


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


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
