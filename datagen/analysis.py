"""Signal measurements: activity, loudness, peak and SNR (effective bandwidth: `datagen.spectrum_bandwidth`).

Pure numpy/scipy functions, no I/O. Audio is float, shaped (channels, samples), full scale [-1, 1]
(a 1-D array is read as mono); `sample_rate` is in Hz.

The measures of a whole recording also exist as streaming accumulators (`LevelAccumulator`,
`ActivityAccumulator`, `LoudnessAccumulator`, and `spectrum_bandwidth.LongTermSpectrumAccumulator`): fed the recording in
consecutive (channels, n) blocks of any lengths, they keep only a remainder of less than one
analysis frame and per-frame statistics, and give bit for bit what the whole-array function gives on
the concatenated audio (the whole-array functions are the accumulators fed one block, or share their
per-frame step).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import kernels

ACTIVITY_HOP_S = 0.02
ACTIVITY_PERCENTILE = 95.0
ACTIVITY_RANGE_DB = 40.0
DIGITAL_SILENCE = 2.0**-24  # |sample| at or below this rounds to 0 in 24-bit PCM

SNR_DEFINITIONS = ("active", "rms", "loudness")

# ITU-R BS.1770-4 gating
LOUDNESS_BLOCK_S = 0.4
LOUDNESS_STEP_S = 0.1  # 75 % block overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_LOUDNESS_OFFSET_DB = -0.691
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs
_OTHER_CHANNEL_WEIGHT = 1.0  # channels past the fifth: their layout is unknown (BS.1770 weighs front channels 1.0)


def channel_weights(channels: int) -> np.ndarray:
    """(channels,) BS.1770 channel weights: L, R, C, Ls, Rs, then 1.0 for any further channel."""
    return np.array([*_CHANNEL_WEIGHTS, *([_OTHER_CHANNEL_WEIGHT] * max(0, channels - len(_CHANNEL_WEIGHTS)))][:channels])
_LOUDNESS_TOLERANCE_LU = 1e-9
_LOUDNESS_MAX_CORRECTIONS = 8



def as_2d(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) float32/float64 view of `audio` (1-D input is mono; other dtypes become float64).

    Per-sample products stay in the input precision; every sum over samples accumulates in float64.
    """
    audio = np.asarray(audio)
    if audio.dtype not in (np.float32, np.float64):
        audio = audio.astype(np.float64)
    if audio.ndim == 1:
        return audio[np.newaxis]
    if audio.ndim != 2:
        raise ValueError(f"audio must be shaped (channels, samples), got {audio.shape}")
    return audio


def _db(power_ratio: float) -> float:
    """10 log10 of a power ratio; -inf for 0, +inf for inf, no warnings."""
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(power_ratio))


class StreamTail:
    """The samples of a stream that a streaming measure has not consumed yet (less than one frame's worth).

    Arrays are (..., samples), joined along the last axis; `offset` is the stream index of the tail's first sample.
    """

    def __init__(self, offset: int = 0) -> None:
        self.samples: np.ndarray | None = None
        self.offset = offset

    def join(self, block: np.ndarray) -> np.ndarray:
        """The tail followed by `block`, contiguous: the stream from `offset` on."""
        if self.samples is None or not self.samples.shape[-1]:
            return np.ascontiguousarray(block)
        return np.concatenate([self.samples, block], axis=-1)

    def keep(self, buffer: np.ndarray, consumed: int) -> None:
        """After consuming the first `consumed` samples of `buffer` (the last `join`), keep the rest (a copy)."""
        self.samples = buffer[..., consumed:].copy()
        self.offset += consumed


def accumulate_in_order(total: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Running sums total + rows[0], + rows[1], ... along axis 0, computed in place in `rows` (returned).

    Summing strictly in stream order makes a streaming sum the same bits however the stream is cut into blocks.
    `total` is shaped like rows[0] (float64); rows[-1] is the new total.
    """
    rows[0] += total
    return np.add.accumulate(rows, axis=0, out=rows)


# ---------------------------------------------------------------- activity

def activity_hop_samples(sample_rate: float, hop_s: float = ACTIVITY_HOP_S) -> int:
    """Samples per activity frame."""
    return max(1, int(round(hop_s * sample_rate)))


def frame_energies(audio: np.ndarray, hop_samples: int) -> np.ndarray:
    """(n_frames,) sum of squares over each non-overlapping frame of `hop_samples` and over channels.

    n_frames = ceil(samples / hop_samples); the last frame may be partial. Products and sums in float64.
    """
    return kernels.frame_energies_and_peak(np.ascontiguousarray(as_2d(audio)), hop_samples)[0]


def activity_mask(audio: np.ndarray, sample_rate: float, hop_s: float = ACTIVITY_HOP_S) -> np.ndarray:
    """(n_frames,) bool: which non-overlapping `hop_s` frames are active.

    n_frames = ceil(samples / hop_samples), the last partial frame included. A frame's level is its
    mean square over its samples and all channels. A frame is active if it is not digitally silent
    (some sample != 0) and its level is at most ACTIVITY_RANGE_DB (40 dB) below the
    ACTIVITY_PERCENTILE (95th) percentile of the non-silent frames' levels. The rule is relative,
    so the mask does not change with the audio's gain.
    """
    audio = as_2d(audio)
    hop = activity_hop_samples(sample_rate, hop_s)
    return mask_from_energies(frame_energies(audio, hop), audio.shape, hop)


class ActivityAccumulator:
    """`frame_energies` and `activity_mask` of a stream of (channels, n) blocks fed in order.

    Frames are aligned across blocks (a remainder of less than one frame waits for the next block), so
    every frame's sum, and hence the mask, equals the whole-audio one bit for bit. State: the remainder
    and one float64 energy per frame.
    """

    def __init__(self, sample_rate: float, hop_s: float = ACTIVITY_HOP_S) -> None:
        self.hop = activity_hop_samples(sample_rate, hop_s)
        self.shape = (0, 0)  # (channels, samples) fed so far
        self._tail = StreamTail()
        self._energies: list[np.ndarray] = []

    def update(self, block: np.ndarray) -> None:
        """Feed the next (channels, n) samples."""
        block = as_2d(block)
        self.shape = (block.shape[0], self.shape[1] + block.shape[1])
        buffer = self._tail.join(block)
        complete = buffer.shape[1] // self.hop
        self._energies.append(frame_energies(buffer, self.hop)[:complete])  # a partial last frame is redone later
        self._tail.keep(buffer, complete * self.hop)

    def energies(self) -> np.ndarray:
        """(n_frames,) `frame_energies` of everything fed, the partial last frame included."""
        tail = self._tail.samples
        last = [frame_energies(tail, self.hop)] if tail is not None and tail.shape[1] else []
        return np.concatenate([*self._energies, *last]) if self._energies or last else np.zeros(0)

    def mask(self) -> np.ndarray:
        """(n_frames,) bool `activity_mask` of everything fed."""
        return mask_from_energies(self.energies(), self.shape, self.hop)


def mask_from_energies(energy: np.ndarray, shape: tuple[int, int], hop_samples: int) -> np.ndarray:
    """`activity_mask` from the `frame_energies` of audio shaped `shape` = (channels, samples)."""
    channels, samples = shape
    lengths = np.full(energy.size, hop_samples)
    if energy.size:
        lengths[-1] = samples - hop_samples * (energy.size - 1)
    mean_square = energy / (lengths * channels)
    sounding = mean_square > 0
    if not sounding.any():
        return sounding
    reference = np.percentile(mean_square[sounding], ACTIVITY_PERCENTILE)
    return sounding & (mean_square >= reference * 10.0 ** (-ACTIVITY_RANGE_DB / 10.0))


# ---------------------------------------------------------------- levels

def amplitude_dbfs(amplitude: float) -> float:
    """A linear amplitude (full scale 1) in dBFS; -inf for 0."""
    return _db(amplitude * amplitude)


def peak_dbfs(audio: np.ndarray) -> float:
    """Sample peak in dBFS (-inf for silence or empty audio)."""
    audio = np.asarray(audio)
    return amplitude_dbfs(float(np.max(np.abs(audio))) if audio.size else 0.0)


class LevelAccumulator:
    """Levels of a stream of (channels, n) blocks: the sample peak, whether every sample is finite, and
    per channel the DC offset and the extremes around it, over the samples that are not digital silence.

    Digital silence (|x| <= DIGITAL_SILENCE) is left out of the DC statistics so that zero padding does
    not read as signal next to a constant offset. State: a few float64 values per channel. The DC sum
    adds each block's (pairwise) float64 sum in turn, so it depends on the block lengths in its last
    bits; the extremes, and hence `peak`, do not.
    """

    def __init__(self) -> None:
        self.samples = 0
        self.finite = True
        self._peak = 0.0
        self._count: np.ndarray | None = None  # per channel, over samples that are not digital silence:
        self._sum: np.ndarray | None = None  # count, float64 sum,
        self._high: np.ndarray | None = None  # maximum and minimum
        self._low: np.ndarray | None = None

    def update(self, block: np.ndarray) -> None:
        """Feed the next (channels, n) samples."""
        block = as_2d(block)
        self.samples += block.shape[1]
        if not block.shape[1]:
            return
        self.finite = self.finite and bool(np.isfinite(block).all())
        magnitude = np.abs(block)
        self._peak = max(self._peak, float(magnitude.max()))
        sounding = magnitude > DIGITAL_SILENCE
        count, total = sounding.sum(axis=1), np.where(sounding, block, 0.0).sum(axis=1, dtype=np.float64)
        high = np.where(sounding, block, -np.inf).max(axis=1).astype(np.float64)
        low = np.where(sounding, block, np.inf).min(axis=1).astype(np.float64)
        if self._count is None:
            self._count, self._sum, self._high, self._low = count, total, high, low
        else:
            self._count, self._sum = self._count + count, self._sum + total
            self._high, self._low = np.maximum(self._high, high), np.minimum(self._low, low)

    def peak(self) -> float:
        """max |sample| over every channel (0.0 before any sample): `peak_dbfs`'s peak."""
        return self._peak

    def dc(self) -> np.ndarray:
        """(channels,) DC offset: the mean of each channel's samples that are not digital silence (0 if none)."""
        if self._count is None:
            return np.zeros(0)
        return np.divide(self._sum, self._count, out=np.zeros(self._sum.size), where=self._count > 0)

    def peak_without_dc(self) -> float:
        """max |sample - its channel's DC offset| over the samples that are not digital silence (0.0 if none):
        what is left of the signal once the offset is removed (digital silence stays below DIGITAL_SILENCE)."""
        if self._count is None or not self._count.any():
            return 0.0
        dc, used = self.dc(), self._count > 0
        return float(np.max(np.maximum(self._high - dc, dc - self._low)[used]))


@lru_cache(maxsize=None)
def _k_weighting_sos(sample_rate: float) -> np.ndarray:
    """(2, 6) K-weighting second-order sections (high shelf, then RLB high pass).

    Brecht De Man's parametrisation of the BS.1770-4 filters (pyloudnorm's "DeMan" filter class):
    it reproduces the standard's 48 kHz coefficients exactly and carries them to other rates.
    """
    k = np.tan(np.pi * 1681.9744509555319 / sample_rate)
    q = 0.7071752369554193
    gain_high = 10.0 ** (3.99984385397 / 20.0)
    gain_band = gain_high ** 0.499666774155
    norm = 1.0 + k / q + k * k
    shelf = [(gain_high + gain_band * k / q + k * k) / norm, 2.0 * (k * k - gain_high) / norm,
             (gain_high - gain_band * k / q + k * k) / norm, 1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - k / q + k * k) / norm]
    k = np.tan(np.pi * 38.13547087613982 / sample_rate)
    q = 0.5003270373253953
    norm = 1.0 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - k / q + k * k) / norm]
    return np.array([shelf, high_pass])


def _check_loudness_input(channels: int, samples: int, sample_rate: float) -> None:
    """Raise ValueError if audio of `channels` x `samples` is shorter than one gating block."""
    if samples < LOUDNESS_BLOCK_S * sample_rate:
        raise ValueError(f"loudness needs at least one {LOUDNESS_BLOCK_S * 1000:.0f} ms gating block: "
                         f"got {samples} samples = {samples / sample_rate * 1000:.1f} ms at {sample_rate} Hz")


def _step_edges(first: int, last: int, step: float) -> np.ndarray:
    """(last - first + 1,) int64 sample index round(k * step) of each 100 ms step boundary k = first .. last."""
    return np.round(np.arange(first, last + 1) * step).astype(np.int64)


class LoudnessAccumulator:
    """`loudness_block_powers` of a stream of (channels, n) blocks fed in order.

    The K-weighting filter state and the 100 ms step boundaries carry over from block to block (a
    remainder of less than one step waits for the next block), so the result equals the whole-audio
    one bit for bit. State: the filter registers, the remainder and one float64 sum per 100 ms step.
    """

    def __init__(self, sample_rate: float) -> None:
        self.sample_rate = sample_rate
        self.shape = (0, 0)  # (channels, samples) fed so far
        self._step = LOUDNESS_STEP_S * sample_rate
        self._tail = StreamTail()
        self._steps_done = 0  # the tail starts at step boundary number `_steps_done`
        self._state: np.ndarray | None = None  # (channels, 4) K-weighting registers
        self._step_sums: list[np.ndarray] = []

    def update(self, block: np.ndarray) -> None:
        """Feed the next (channels, n) samples."""
        block = as_2d(block)
        channels = block.shape[0]
        self.shape = (channels, self.shape[1] + block.shape[1])
        if self._state is None:
            self._state = np.zeros((channels, 4))
        buffer = self._tail.join(block)
        start = self._tail.offset
        edges = _step_edges(self._steps_done, int((start + buffer.shape[1]) / self._step) + 1, self._step)
        edges = edges[edges <= start + buffer.shape[1]]
        if edges.size > 1:
            self._step_sums.append(kernels.k_weighted_step_sums(buffer, _k_weighting_sos(float(self.sample_rate)),
                                                                channel_weights(channels), edges - start, self._state))
            self._steps_done += edges.size - 1
        self._tail.keep(buffer, int(edges[-1]) - start)

    def block_powers(self) -> np.ndarray:
        """`loudness_block_powers` of everything fed (raises ValueError like it)."""
        channels, samples = self.shape
        _check_loudness_input(channels, samples, self.sample_rate)
        # a step ending exactly on a half sample may be complete here but not counted by the whole-audio rule
        n_steps = int(samples / self._step + 1e-9)
        return _block_powers(np.concatenate(self._step_sums)[:n_steps], _step_edges(0, n_steps, self._step))


def _block_powers(step_sums: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n_blocks,) mean powers of the 400 ms gating blocks from the (n_steps,) 100 ms step sums and their (n_steps + 1,) edges."""
    steps_per_block = int(round(LOUDNESS_BLOCK_S / LOUDNESS_STEP_S))
    n_blocks = step_sums.size - steps_per_block + 1
    block_sums = sum(step_sums[k:k + n_blocks] for k in range(steps_per_block))
    return block_sums / (edges[steps_per_block:] - edges[:n_blocks])


def loudness_block_powers(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """(n_blocks,) channel-weighted mean square of the K-weighted audio in each BS.1770 gating block.

    Blocks are 400 ms with 75 % overlap, only complete blocks (n_blocks = floor((T - 0.4) / 0.1) + 1).
    Channels past the fifth weigh 1.0. Raises ValueError if the audio is shorter than one block.
    """
    meter = LoudnessAccumulator(sample_rate)
    meter.update(audio)
    return meter.block_powers()


def gated_loudness_lufs(block_powers: np.ndarray) -> float:
    """BS.1770-4 integrated loudness (LUFS) from `loudness_block_powers`; -inf if no block passes the gates.

    Absolute gate -70 LUFS, then relative gate 10 LU below the absolute-gated loudness.
    """
    with np.errstate(divide="ignore"):
        block_lufs = _LOUDNESS_OFFSET_DB + 10.0 * np.log10(block_powers)
    gated = block_lufs > ABSOLUTE_GATE_LUFS
    if not gated.any():
        return -np.inf
    relative_gate = _LOUDNESS_OFFSET_DB + _db(block_powers[gated].mean()) + RELATIVE_GATE_LU
    gated &= block_lufs > relative_gate
    return _LOUDNESS_OFFSET_DB + _db(block_powers[gated].mean())


def integrated_loudness_lufs(audio: np.ndarray, sample_rate: float) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (-inf for silence).

    Vectorized equivalent of pyloudnorm's `Meter(rate, filter_class="DeMan").integrated_loudness`
    (the standard's exact 48 kHz K-weighting; pyloudnorm's default RBJ filters read a 997 Hz tone
    0.04 LU low). Lengths that are not a whole number of 100 ms steps use complete blocks only,
    where pyloudnorm may add a final block running past the end. Raises ValueError if shorter than
    one 400 ms block.
    """
    return gated_loudness_lufs(loudness_block_powers(audio, sample_rate))


# ---------------------------------------------------------------- SNR

def _check_definition(definition: str) -> None:
    if definition not in SNR_DEFINITIONS:
        raise ValueError(f"unknown SNR definition {definition!r}; expected one of {SNR_DEFINITIONS}")


def _check_shapes(clean: np.ndarray, noise: np.ndarray) -> None:
    if np.shape(clean) != np.shape(noise):
        raise ValueError(f"clean {np.shape(clean)} and noise {np.shape(noise)} shapes differ")


def _energies(clean: np.ndarray, noise: np.ndarray, sample_rate: float, definition: str,
              active_mask: np.ndarray | None) -> tuple[float, float]:
    """(clean, noise) sums of squares over the clean's active frames ("active") or everything ("rms")."""
    clean = as_2d(clean)
    hop = activity_hop_samples(sample_rate)
    if definition == "rms":
        return float(frame_energies(clean, hop).sum()), float(frame_energies(noise, hop).sum())
    clean_frames = frame_energies(clean, hop)
    mask = mask_from_energies(clean_frames, clean.shape, hop) if active_mask is None else np.asarray(active_mask, dtype=bool)
    return float(clean_frames[mask].sum()), float(frame_energies(noise, hop)[mask].sum())


def snr_db(clean: np.ndarray, noise: np.ndarray, sample_rate: float, definition: str,
           active_mask: np.ndarray | None = None) -> float:
    """SNR in dB of `clean` over `noise` (same shape) under one of SNR_DEFINITIONS.

    "active": clean energy / noise energy, both summed over the clean's active frames
    (`activity_mask(clean)`; pass it as `active_mask` to reuse it); "rms": whole-segment energy
    ratio; "loudness": integrated loudness of clean minus that of noise (LU).
    Returns +inf if the noise is silent where measured. Raises ValueError if the clean is silent
    (no active frames, no energy, or loudness -inf).
    """
    _check_definition(definition)
    _check_shapes(clean, noise)
    if definition == "loudness":
        clean_lufs = integrated_loudness_lufs(clean, sample_rate)
        if clean_lufs == -np.inf:
            raise ValueError("the clean is silent (loudness -inf LUFS): SNR is undefined")
        return clean_lufs - integrated_loudness_lufs(noise, sample_rate)
    clean_energy, noise_energy = _energies(clean, noise, sample_rate, definition, active_mask)
    if clean_energy == 0:
        raise ValueError(f"the clean is silent ({definition} SNR): SNR is undefined")
    return _db(clean_energy / noise_energy) if noise_energy else np.inf


def _loudness_gain(clean: np.ndarray, noise: np.ndarray, sample_rate: float, target_db: float) -> float:
    """Linear noise gain giving loudness(clean) - loudness(gain * noise) = target_db.

    Loudness shifts 1:1 with gain unless a block crosses the -70 LUFS absolute gate; the gain is
    corrected on the noise's block powers until the gated loudness hits the target (at most
    _LOUDNESS_MAX_CORRECTIONS times: a block landing exactly on a gate can leave a tiny residual).
    """
    clean_lufs = integrated_loudness_lufs(clean, sample_rate)
    if clean_lufs == -np.inf:
        raise ValueError("the clean is silent (loudness -inf LUFS): no noise gain gives a loudness SNR")
    wanted_lufs = clean_lufs - target_db
    if wanted_lufs <= ABSOLUTE_GATE_LUFS:
        raise ValueError(f"the noise would have to measure {wanted_lufs:.2f} LUFS, at or below the "
                         f"{ABSOLUTE_GATE_LUFS:.0f} LUFS absolute gate where loudness reads -inf")
    block_powers = loudness_block_powers(noise, sample_rate)
    if not block_powers.any():
        raise ValueError("the noise is silent: no noise gain reaches a finite loudness SNR")
    noise_lufs = gated_loudness_lufs(block_powers)
    if noise_lufs == -np.inf:  # everything under the absolute gate: start from the ungated loudness
        noise_lufs = _LOUDNESS_OFFSET_DB + _db(block_powers.mean())
    gain_db = wanted_lufs - noise_lufs
    for _ in range(_LOUDNESS_MAX_CORRECTIONS):
        error_lu = wanted_lufs - gated_loudness_lufs(block_powers * 10.0 ** (gain_db / 10.0))
        if abs(error_lu) <= _LOUDNESS_TOLERANCE_LU:
            break
        gain_db += error_lu
    return 10.0 ** (gain_db / 20.0)


def noise_gain_for_snr(clean: np.ndarray, noise: np.ndarray, sample_rate: float, definition: str, snr_db: float,
                       active_mask: np.ndarray | None = None) -> float:
    """Linear gain g such that `snr_db(clean, g * noise, sample_rate, definition)` equals `snr_db` (dB).

    Analytic: every definition moves 1:1 with the noise gain in dB (for "loudness", up to the
    -70 LUFS absolute gate, which is corrected for). `active_mask` as in `snr_db`.
    Raises ValueError if the noise is silent where measured, the clean is silent (no active frames),
    or ("loudness") the noise would have to sit at or below the -70 LUFS absolute gate.
    """
    _check_definition(definition)
    _check_shapes(clean, noise)
    if definition == "loudness":
        return _loudness_gain(clean, noise, sample_rate, snr_db)
    return _gain_for_energies(*_energies(clean, noise, sample_rate, definition, active_mask), definition, snr_db)


def noise_gain_from_energies(clean_frames: np.ndarray, noise_frames: np.ndarray, definition: str, snr_db: float,
                             active_mask: np.ndarray) -> float:
    """`noise_gain_for_snr` ("active" or "rms") from the `frame_energies` of the clean and the noise."""
    if definition == "active":
        clean_frames, noise_frames = clean_frames[active_mask], noise_frames[active_mask]
    return _gain_for_energies(float(clean_frames.sum()), float(noise_frames.sum()), definition, snr_db)


def _gain_for_energies(clean_energy: float, noise_energy: float, definition: str, snr_db: float) -> float:
    if clean_energy == 0:
        raise ValueError(f"the clean is silent ({definition} SNR): no noise gain defines an SNR")
    if noise_energy == 0:
        where = "over the clean's active frames" if definition == "active" else "everywhere"
        raise ValueError(f"the noise is silent {where}: no noise gain reaches {snr_db} dB SNR")
    return float(np.sqrt(clean_energy / (noise_energy * 10.0 ** (snr_db / 10.0))))
