"""Bands <-> bins of the shared `BandLayout`, and the in-band shape of a per-bin noise floor.

The gate's controls are per band (n_bands), its detector per STFT bin (n_bins). `profile_to_bins`
spreads a band profile in dB over the bins, `bins_to_bands_power` averages a power over each
band's bins (the manifest's band profile). A band profile cannot place a tonal noise inside its
band; `in_band_shape_db` is what it misses (a per-bin floor relative to its band levels), which
`tonal_detail` scales. `floor_shape_db` and `mean_shape_db` shrink that shape by a deadband of
twice the ripple its estimator shows on white noise, so a broadband floor gives ~0 and a tone's
bin stands out. Shapes: (batch, n_bands) and (batch, n_bins), dB unless named power.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from manifests.bands import BandLayout

from .stft import power_to_db

Tensor = torch.Tensor

# spread (std, dB) of `in_band_shape_db` of `blind.blind_noise_bins_db` on white noise, times sqrt(frames used):
# measured 12.7-14.1 over 94-2,813 frames (2-60 s at 48 kHz, stride 2); sets the deadband of `floor_shape_db`
QUANTILE_RIPPLE_DB = 13.5
# the same for the per-bin mean power over frames (a noise recording's measured floor, `mean_shape_db`):
# measured 5.5-6.0 over 47-1,876 frames (0.5-20 s)
MEAN_RIPPLE_DB = 5.7


@lru_cache(maxsize=32)
def _interp_matrix_np(layout: BandLayout, mode: str) -> np.ndarray:
    if mode == "step":
        matrix = np.zeros((layout.n_bins, layout.n_bands), dtype=np.float64)
        matrix[np.arange(layout.n_bins), layout.bin_to_band()] = 1.0
        return matrix
    if mode != "linear":
        raise ValueError(f"unknown profile interpolation {mode!r}; use 'linear' or 'step'")
    edges = np.asarray(layout.band_edges_bin, dtype=np.float64)
    centres = (edges[:-1] + edges[1:] - 1.0) / 2.0
    bins = np.arange(layout.n_bins, dtype=np.float64)
    eye = np.eye(layout.n_bands)
    return np.stack([np.interp(bins, centres, eye[b]) for b in range(layout.n_bands)], axis=1)


def profile_to_bins(profile_db: Tensor, layout: BandLayout, mode: str = "linear") -> Tensor:
    """(batch, n_bands) dB -> (batch, n_bins) dB: linear interpolation between band centres
    (constant beyond the first/last centre), or "step" (every bin takes its band's value)."""
    matrix = torch.as_tensor(_interp_matrix_np(layout, mode), device=profile_db.device, dtype=profile_db.dtype)
    return profile_db @ matrix.T


def bins_to_bands_power(power: Tensor, layout: BandLayout) -> Tensor:
    """Mean of a power over each band's bins: (..., n_bins) -> (..., n_bands)."""
    matrix = torch.as_tensor(layout.band_matrix(), device=power.device, dtype=power.dtype)
    return power @ matrix.T


def in_band_shape_db(bins_db: Tensor, layout: BandLayout, deadband_db: float = 0.0) -> Tensor:
    """(batch, n_bins) dB -> its deviation from the interpolated profile of its band means (in power), dB,
    shrunk towards 0 by `deadband_db` (soft threshold: deviations within it are taken as estimation ripple).

    Zero for a spectrum that follows its interpolated band levels (a flat one, as white noise expects); a hum
    harmonic gives a peak at its bin and dips elsewhere in its band. Scaled by `tonal_detail`, it shapes
    the gate's threshold inside bands.
    """
    band_db = power_to_db(bins_to_bands_power(10.0 ** (bins_db / 10.0), layout))
    shape = bins_db - profile_to_bins(band_db, layout)
    return torch.sign(shape) * (shape.abs() - deadband_db).clamp_min(0.0) if deadband_db > 0 else shape


def floor_shape_db(floor_bins_db: Tensor, layout: BandLayout, frames: int, frame_stride: int = 1) -> Tensor:
    """`in_band_shape_db` of a `blind_noise_bins_db(power, q, frame_stride)` floor of a power with `frames` frames,
    with a deadband of twice that estimate's ripple on white noise (`QUANTILE_RIPPLE_DB` / sqrt(frames used)):
    a broadband floor gives ~0, a tone's bin stands out. (batch, n_bins) dB."""
    frames_used = len(range(0, max(1, frames), max(1, frame_stride)))  # as power[..., ::frame_stride]
    return in_band_shape_db(floor_bins_db, layout, 2.0 * QUANTILE_RIPPLE_DB / math.sqrt(frames_used))


def mean_shape_db(mean_bins_db: Tensor, layout: BandLayout, frames: int) -> Tensor:
    """`in_band_shape_db` of a noise recording's per-bin mean power over `frames` frames (dB), with a deadband
    of twice the mean's ripple on white noise (`MEAN_RIPPLE_DB` / sqrt(frames)). (batch, n_bins) dB."""
    return in_band_shape_db(mean_bins_db, layout, 2.0 * MEAN_RIPPLE_DB / math.sqrt(max(1, frames)))
