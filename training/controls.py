"""The spectral gate's controls: one table (`CONTROL_SPECS`) of names, units, ranges and defaults.

Conventions follow dasp-pytorch: each control is one tensor in physical units, (batch, 1) for a
scalar and (batch, n_bands) for a per-band control (`noise_profile_db`, `tonal_detail`). Neural
networks produce values in (0, 1), which `denormalize_controls` maps to units ("linear" or, for
time constants, "log": geometric). `control_table_markdown` renders the table for the README and
reports, so every description of the controls comes from here.

`noise_profile_db` is a power density per band, the units of `manifests.bands` (white noise of
variance 1 reads 0 dB). Its range reaches above 0 dB because the density of tonal or low-frequency
noise concentrates in few bins and is not bounded by 0 dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from manifests.bands import BandLayout

Tensor = torch.Tensor


@dataclass(frozen=True)
class ControlSpec:
    """One control: physical unit, range, default and the (0, 1) <-> unit mapping ("linear" or "log")."""

    name: str
    unit: str
    min: float
    max: float
    default: float
    scale: str = "linear"
    per_band: bool = False
    description: str = ""

    def to_physical(self, u: Tensor) -> Tensor:
        """Map normalized values in [0, 1] to units."""
        if self.scale == "log":
            return torch.exp(math.log(self.min) + u * math.log(self.max / self.min))
        return self.min + (self.max - self.min) * u

    def to_normalized(self, value: Tensor) -> Tensor:
        """Inverse of `to_physical` (not clamped)."""
        if self.scale == "log":
            return (torch.log(value) - math.log(self.min)) / math.log(self.max / self.min)
        return (value - self.min) / (self.max - self.min)

    @property
    def default_normalized(self) -> float:
        return float(self.to_normalized(torch.tensor(self.default, dtype=torch.float64)))


CONTROL_SPECS: tuple[ControlSpec, ...] = (
    ControlSpec("noise_profile_db", "dB", -130.0, 30.0, -80.0, "linear", True,
                "noise power density per band, |X|^2/sum(w^2) averaged over the band's bins (manifests/bands.py)"),
    ControlSpec("threshold_db", "dB", -6.0, 24.0, 6.0, "linear", False,
                "the gate is half open when the detector is this far above the noise profile"),
    ControlSpec("reduction_db", "dB", 0.0, 40.0, 15.0, "linear", False,
                "attenuation of the fully closed gate"),
    ControlSpec("knee_db", "dB", 1.0, 24.0, 8.0, "linear", False,
                "detector range over which the gain moves from 10 % to 90 % of its dB span"),
    ControlSpec("attack_ms", "ms", 1.0, 200.0, 10.0, "log", False,
                "one-pole time constant of the gain rising (gate opening), per bin, over frames"),
    ControlSpec("release_ms", "ms", 10.0, 1000.0, 100.0, "log", False,
                "one-pole time constant of the gain falling (gate closing), per bin, over frames"),
    ControlSpec("freq_smooth_hz", "Hz", 0.0, 250.0, 40.0, "linear", False,
                "standard deviation of the Gaussian smoothing the detector power over frequency"),
    ControlSpec("tonal_detail", "share", 0.0, 1.0, 0.0, "linear", True,
                "share of the per-bin noise floor's shape inside each band added to the threshold "
                "(1: follows hum and whine harmonics bin by bin; 0: the smooth band profile)"),
)
# Not a control: the in-band shape (batch, n_bins) dB of the noise floor that `tonal_detail` scales
# (`bandmap.in_band_shape_db` of the controller's blind per-bin floor, or of a noise recording's per-bin mean).
# Carried in the controls mapping; ignored if absent.
NOISE_SHAPE_KEY = "noise_shape_bins_db"
SPECS: dict[str, ControlSpec] = {spec.name: spec for spec in CONTROL_SPECS}
CONTROL_NAMES: tuple[str, ...] = tuple(SPECS)
SCALAR_CONTROL_NAMES: tuple[str, ...] = tuple(s.name for s in CONTROL_SPECS if not s.per_band)


def control_table_markdown() -> str:
    """The control table as Markdown (for reports and the README; a "|" in a description is escaped)."""
    rows = ["| control | unit | min | max | default | mapping | meaning |", "|---|---|---|---|---|---|---|"]
    for s in CONTROL_SPECS:
        width = " (per band)" if s.per_band else ""
        meaning = s.description.replace("|", "\\|")
        rows.append(f"| {s.name}{width} | {s.unit} | {s.min:g} | {s.max:g} | {s.default:g} | {s.scale} "
                    f"| {meaning} |")
    return "\n".join(rows)


def check_known(names, extra: frozenset[str] = frozenset()) -> None:
    """KeyError naming the controls in `names` that are neither in `CONTROL_SPECS` nor in `extra`."""
    unknown = set(names) - set(SPECS) - extra
    if unknown:
        raise KeyError(f"unknown controls {sorted(unknown)}; known: {CONTROL_NAMES}")


def as_batch(value, batch: int, width: int, device, dtype) -> Tensor:
    """Broadcast a float / array / tensor control to (batch, width)."""
    t = torch.as_tensor(value, device=device, dtype=dtype)
    if t.ndim == 0:
        t = t.reshape(1, 1)
    elif t.ndim == 1:
        t = t.reshape(-1, 1) if width == 1 else t.reshape(1, -1)
    if t.ndim != 2 or t.shape[1] not in (1, width) or t.shape[0] not in (1, batch):
        raise ValueError(f"control of shape {tuple(t.shape)} does not broadcast to ({batch}, {width})")
    return t.expand(batch, width)


def make_controls(batch: int, layout: BandLayout, device=None, dtype=torch.float32, **values) -> dict[str, Tensor]:
    """Controls in units, every missing one at its default; values may be floats, arrays or tensors."""
    check_known(values)
    out = {}
    for s in CONTROL_SPECS:
        width = layout.n_bands if s.per_band else 1
        out[s.name] = as_batch(values.get(s.name, s.default), batch, width, device, dtype).contiguous()
    return out


def denormalize_controls(normalized: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """(0, 1) values -> units, per `CONTROL_SPECS`."""
    return {name: SPECS[name].to_physical(u) for name, u in normalized.items()}


def normalize_controls(controls: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Units -> (0, 1) values, per `CONTROL_SPECS` (inverse of `denormalize_controls`)."""
    return {name: SPECS[name].to_normalized(v) for name, v in controls.items()}
