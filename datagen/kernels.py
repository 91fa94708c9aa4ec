"""Compiled single-pass loops for the per-example hot path (numba).

Each kernel replaces several whole-array numpy passes (and their temporaries) with one loop over
the samples. Audio is (channels, samples) float32 or float64; every product and sum is in float64.
Compiled on first use and cached on disk, so a worker pays the compilation once per machine.
"""
from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)


@_jit
def k_weighted_step_sums(audio, sos, channel_weights, edges, state):
    """Sums of the channel-weighted squared K-weighted signal over [edges[s], edges[s+1]) -> (len(edges)-1,) float64.

    `sos`: (2, 6) second-order sections (b0 b1 b2 a0 a1 a2, a0 = 1) applied in cascade, transposed
    direct form II, as scipy.signal.sosfilt does, to samples edges[0] .. edges[-1] - 1 of each channel.
    `state`: (channels, 4) float64 delay registers (two per section), read as the filter state before
    sample edges[0] and overwritten with the state after sample edges[-1] - 1: zeros for a filter at
    rest; passing it on to the call for the next samples makes consecutive calls equal one call.
    """
    channels = audio.shape[0]
    out = np.zeros(edges.size - 1)
    b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    c0, c1, c2, d1, d2 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    for c in range(channels):
        z1, z2, y1, y2 = state[c, 0], state[c, 1], state[c, 2], state[c, 3]
        for s in range(edges.size - 1):
            acc = 0.0
            for n in range(edges[s], edges[s + 1]):
                x = np.float64(audio[c, n])
                u = b0 * x + z1
                z1 = b1 * x - a1 * u + z2
                z2 = b2 * x - a2 * u
                v = c0 * u + y1
                y1 = c1 * u - d1 * v + y2
                y2 = c2 * u - d2 * v
                acc += v * v
            out[s] += channel_weights[c] * acc
        state[c, 0], state[c, 1], state[c, 2], state[c, 3] = z1, z2, y1, y2
    return out


@_jit
def frame_energies_and_peak(audio, hop):
    """Sums of squares over consecutive `hop`-sample frames and all channels, and max |x|.

    -> ((ceil(samples / hop),) float64, float); the last frame may be partial.
    """
    channels, samples = audio.shape
    frames = (samples + hop - 1) // hop
    out = np.zeros(frames)
    high = low = 0.0
    for c in range(channels):
        for f in range(frames):
            acc = 0.0
            for n in range(f * hop, min(samples, (f + 1) * hop)):
                x = np.float64(audio[c, n])
                acc += x * x
                high, low = max(high, x), min(low, x)
            out[f] += acc
    return out, max(high, -low)


@_jit
def scaled_peak(clean, noise, clean_gain, noise_gain):
    """max |x| over clean * clean_gain, noise * noise_gain and their sum (float64)."""
    high = low = 0.0
    channels, samples = clean.shape
    for c in range(channels):
        for n in range(samples):
            x = np.float64(clean[c, n]) * clean_gain
            y = np.float64(noise[c, n]) * noise_gain
            high, low = max(high, x, y, x + y), min(low, x, y, x + y)
    return max(high, -low)


@_jit
def scale_pair(clean, noise, clean_gain, noise_gain, full_scale, hop, noisy_out, clean_out, noise_out):
    """Write clean * clean_gain, noise * noise_gain and their sum into the `*_out` arrays (shaped like the inputs).

    full_scale > 0: integer counts on that grid (int32 outputs), rounded half to even and clipped to
    [-full_scale, full_scale - 1]; full_scale == 0: float32 values (float32 outputs), summed in float32.
    -> per-frame sums of squares (over `hop`-sample frames and channels) of the written clean and noise
    as decoded (counts / full_scale): `frame_energies_and_peak` of the decoded values, bit for bit.
    """
    channels, samples = clean.shape
    frames = (samples + hop - 1) // hop
    clean_energy, noise_energy = np.zeros(frames), np.zeros(frames)
    quantize = full_scale > 0
    unit = full_scale if quantize else 1.0
    low, high = -unit, unit - 1.0
    clean_scale, noise_scale = clean_gain * unit, noise_gain * unit
    for c in range(channels):
        for f in range(frames):
            a = b = 0.0
            for n in range(f * hop, min(samples, (f + 1) * hop)):
                x = np.float64(clean[c, n]) * clean_scale
                y = np.float64(noise[c, n]) * noise_scale
                if quantize:
                    x = min(max(np.rint(x), low), high)
                    y = min(max(np.rint(y), low), high)
                    noisy_out[c, n] = x + y  # exact: integers
                else:
                    x, y = np.float64(np.float32(x)), np.float64(np.float32(y))
                    noisy_out[c, n] = np.float32(x) + np.float32(y)
                clean_out[c, n], noise_out[c, n] = x, y
                a += x * x
                b += y * y
            clean_energy[f] += a
            noise_energy[f] += b
    norm = 1.0 / (unit * unit)
    return clean_energy * norm, noise_energy * norm


def warm_up() -> None:
    """Load (or compile) every kernel for float32 and float64 input, so the first task does not pay for it."""
    for dtype in (np.float32, np.float64):
        audio = np.zeros((1, 8), dtype)
        k_weighted_step_sums(audio, np.zeros((2, 6)), np.ones(1), np.array([0, 8]), np.zeros((1, 4)))
        frame_energies_and_peak(audio, 4)
        scaled_peak(audio, audio, 1.0, 1.0)
        for out_dtype, full_scale in ((np.int32, 2.0**15), (np.float32, 0.0)):
            scale_pair(audio, audio, 1.0, 1.0, full_scale, 4, *(np.empty((1, 8), out_dtype) for _ in range(3)))
