"""The one place a device name ("auto", "cpu", "cuda", "cuda:N") becomes a `torch.device`."""
from __future__ import annotations

import torch

DEVICE_NAMES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device that does not exist here; the message says which ones do."""


def resolve_device(name: str) -> torch.device:
    """"auto" -> the first CUDA device if there is one, else the CPU; "cpu"; "cuda" or "cuda:N" if available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"device {name!r}: use one of auto, cpu, cuda (or cuda:N)")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {name!r}: no CUDA device is available here; use auto or cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)
