"""Checkpoints of this project: one self-describing file per model, loadable with ``weights_only=True``.

A checkpoint is a plain dict (tensors, dicts, lists, tuples, strings, numbers, bools, None only):

=================  ================================================================================
key                value
=================  ================================================================================
format             "hifi_denoise.checkpoint"
format_version     1
kind               "controller" (a `training.controller.Denoiser`) or "masknet" (`training.masknet.MaskNet`)
model_config       constructor keyword arguments (controller: `Controller.config` + "link_channels")
layout             `BandLayout.to_dict()` of the STFT/bands the model works on
state_dict         the model's state dict (controller: the `Controller`'s, not the Denoiser's)
optimizer_state    optimizer state dict or None
stage              "stage1" | "stage2" | "masknet" (+ anything a caller chooses)
epoch, step        last completed epoch (0-based) and optimizer steps so far
metrics            validation metrics at that point (plain dict)
extra              free-form plain dict (training uses: complete, elapsed_s, best, config_hash ...)
=================  ================================================================================

Usage::

    ckpt = load_checkpoint("runs/x/checkpoints/best.pt")
    model = build_model(ckpt)            # eval mode, on CPU
    out = model.denoise(noisy)           # (batch, channels, samples) -> same shape, any length
    model.layout                         # BandLayout (sample_rate, ...)
"""
from __future__ import annotations

import math
import os
import pickle
import uuid
from pathlib import Path
from typing import Any, Mapping

import torch

from manifests.bands import BandLayout

FORMAT = "hifi_denoise.checkpoint"
FORMAT_VERSION = 4
KINDS = ("controller", "masknet")
REQUIRED_KEYS = ("format", "format_version", "kind", "model_config", "layout", "state_dict", "optimizer_state", "stage",
                 "epoch", "step", "metrics", "extra")


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint of this project; the message names the file."""


def plain(obj: Any, where: str = "value") -> Any:
    """`obj` converted to types `torch.load(weights_only=True)` accepts (numpy scalars -> Python numbers,
    numpy arrays -> tensors, Path -> str); raises TypeError naming the offending entry otherwise."""
    import numpy as np

    if isinstance(obj, np.generic):  # before the Python types: np.float64 is a float subclass
        return obj.item()
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    for base in (bool, int, float, str):  # subclasses (IntEnum, str enums ...) -> the plain value
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {(k if isinstance(k, (str, int)) else str(k)): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return tuple(items) if isinstance(obj, tuple) else items
    raise TypeError(f"{where}: {type(obj).__name__} cannot be stored in a checkpoint (plain types only)")


def save_checkpoint(path, *, kind: str, model_config: Mapping, layout: BandLayout | Mapping, state_dict: Mapping,
                    optimizer_state: Mapping | None = None, stage: str, epoch: int, step: int, metrics: Mapping,
                    extra: Mapping | None = None) -> Path:
    """Write a checkpoint atomically (temporary sibling, then `os.replace`); returns the path."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    layout_dict = layout.to_dict() if isinstance(layout, BandLayout) else dict(layout)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model_config": plain(dict(model_config), "model_config"),
        "layout": plain(layout_dict, "layout"),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "optimizer_state": None if optimizer_state is None else plain(optimizer_state, "optimizer_state"),
        "stage": str(stage),
        "epoch": int(epoch),
        "step": int(step),
        "metrics": plain(dict(metrics), "metrics"),
        "extra": plain(dict(extra or {}), "extra"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load and check a checkpoint (always ``weights_only=True``); CheckpointError names the file if it
    is missing, unreadable, not a checkpoint of this project or of another format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError, ImportError,
            KeyError, IndexError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable hifi-denoise checkpoint (torch.load with weights_only=True "
                              f"failed: {first[:300]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a hifi-denoise checkpoint (no 'format': '{FORMAT}' entry); "
                              "use a .pt written by `training train`")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt.get('format_version')!r}, this package reads "
                              f"version {FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    validate_checkpoint(ckpt, str(path))
    ckpt["path"] = str(path)
    return ckpt


def validate_checkpoint(ckpt: Mapping, where: str) -> None:
    """Everything a checkpoint must hold to be run, checked before a model is built from it: the kind, the
    entry types, a band layout in range, finite non-negative model settings and finite weights."""
    if ckpt["kind"] not in KINDS:
        raise CheckpointError(f"{where}: unknown checkpoint kind {ckpt['kind']!r}; expected one of {KINDS}")
    for key in ("model_config", "layout", "state_dict", "metrics", "extra"):
        if not isinstance(ckpt[key], Mapping):
            raise CheckpointError(f"{where}: entry {key!r} is a {type(ckpt[key]).__name__}, not a dict")
    try:
        BandLayout.from_dict(ckpt["layout"])
    except ValueError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    for key, value in ckpt["model_config"].items():
        if isinstance(value, bool) or value is None:
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise CheckpointError(f"{where}: model_config[{key!r}] = {value!r} is not a finite number >= 0")
    quantile = ckpt["model_config"].get("prior_quantile", 0.5)
    if not 0.0 < quantile < 1.0:
        raise CheckpointError(f"{where}: model_config['prior_quantile'] = {quantile!r} is outside (0, 1)")
    tensors = ckpt["state_dict"]
    if not tensors or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise CheckpointError(f"{where}: state_dict must map parameter names to tensors")
    bad = _non_finite(tensors)
    if bad:
        raise CheckpointError(f"{where}: non-finite weights (NaN or inf) in {bad[:3]}; this model cannot be used. "
                              "Training keeps the last good checkpoint: use that one")


def build_model(ckpt: Mapping) -> torch.nn.Module:
    """The model of a loaded checkpoint, weights loaded, in eval mode (on the checkpoint tensors' device).

    kind "controller" -> `training.controller.Denoiser`; kind "masknet" -> `training.masknet.MaskNet`.
    Both have ``.denoise(audio (batch, channels, samples)) -> Tensor`` and ``.enhance(audio) -> (Tensor,
    controls)`` (any length) and ``.layout`` (`methods.DenoisingModel`).
    """
    where = ckpt.get("path", "checkpoint")
    layout = BandLayout.from_dict(ckpt["layout"])
    config = dict(ckpt["model_config"])
    try:
        if ckpt["kind"] == "controller":
            from .controller import Controller, Denoiser

            link = bool(config.pop("link_channels", True))
            model = Denoiser(Controller(layout, **config), link_channels=link)
            model.controller.load_state_dict(ckpt["state_dict"])
        elif ckpt["kind"] == "masknet":
            from .masknet import MaskNet

            model = MaskNet(layout, **config)
            model.load_state_dict(ckpt["state_dict"])
        else:
            raise CheckpointError(f"{where}: unknown checkpoint kind {ckpt['kind']!r}")
    except (TypeError, RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: the weights do not fit the model it describes ({str(exc).splitlines()[0]})") from None
    first = next(iter(ckpt["state_dict"].values()), None)
    if isinstance(first, torch.Tensor):
        model.to(first.device)
    return model.eval()


def is_finite_state(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when every floating tensor of a state dict is finite."""
    return not _non_finite(state_dict)


def _non_finite(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state_dict.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
            and not bool(torch.isfinite(v).all())]
