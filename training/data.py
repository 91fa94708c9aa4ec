"""Training data: random crops re-mixed on the fly, a per-source-type sampler, fixed evaluation sets.

Everything is read through `manifests` (never `datagen`): rows of `examples.parquet`, audio by
seeking into the tar shards with `manifests.io.open_example`.

Training examples (`TrainDataset`): the stored clean and noise of an example are cropped at random
(`crop_s`) and re-mixed (`augment`), because the stored mixtures cover a narrow set of synthetic
noises and SNRs. With probability `prob` an example is augmented by the transforms of
`training.augment`, in their order.

The noisy input is then ``clean + noise``, and the profile target is recomputed from the augmented
noise crop with `profile_target_db`: `manifests.bands.band_profile_db` semantics (per-bin power
density |X|^2/sum(w^2), mean over frames and channels, band average, dB floored at -120) computed
with the gate's own STFT (`training.stft.stft`, centred frames), so the target is exactly the level
the gate's detector sees for that noise.

Determinism: every random choice of an item comes from ``numpy.random.default_rng([seed, epoch,
draw])`` where `draw` is the item's position in the epoch, and the sampler's order from
``torch.Generator`` seeded with (seed, epoch); items do not depend on the worker that loads them,
so results do not depend on `num_workers`.
"""
from __future__ import annotations

import io
from collections import defaultdict
from typing import Iterator, Mapping, Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from manifests.bands import POWER_FLOOR_DB, BandLayout
from manifests.io import ManifestError, band_layout, join, open_example, read_manifest, read_member

from .bandmap import bins_to_bands_power
from .stft import power_density, power_to_db, stft
from .augment import Mix, augmentations, rms
from .config import AugmentConfig

Tensor = torch.Tensor

ROW_COLUMNS = ("example_id", "split", "index", "shard", "noisy_offset", "noisy_size", "clean_offset", "clean_size",
               "noise_offset", "noise_size", "json_offset", "json_size", "source_type", "noise_type",
               "snr_target_db", "snr_measured_db", "duration_s", "sample_rate", "channels", "noise_profile_db")


def profile_target_np(noise: np.ndarray, layout: BandLayout) -> np.ndarray:
    """`profile_target_db` in numpy for one (channels, samples) signal -> (n_bands,) float32.

    Same framing as `stft.stft` (centred frames, reflect padding, periodic Hann). Single-threaded and
    process-independent, so a training item is bit-identical whichever DataLoader worker builds it.
    """
    x = np.atleast_2d(np.asarray(noise, dtype=np.float64))
    half = layout.n_fft // 2
    mode = "reflect" if x.shape[-1] > half else "constant"
    x = np.pad(x, ((0, 0), (half, half)), mode=mode)
    window = np.hanning(layout.n_fft + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x, layout.n_fft, axis=-1)[:, ::layout.hop]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).mean(axis=(0, 1)) / np.sum(window**2)
    per_band = layout.band_matrix().astype(np.float64) @ power
    return (10.0 * np.log10(np.maximum(per_band, 10.0 ** (POWER_FLOOR_DB / 10.0)))).astype(np.float32)


def noise_power_bins(noise: Tensor, layout: BandLayout) -> tuple[Tensor, int]:
    """Per-bin power density of `stft.stft` (``|X|^2 / sum(w^2)``, centred framing with reflect padding as in
    the gate), mean over channels and frames: (B, C, S) -> ((B, n_bins) float64, number of frames)."""
    power = power_density(stft(noise.to(torch.float32), layout), layout)  # (B, C, F, T)
    return power.mean(dim=(1, 3), dtype=torch.float64), power.shape[-1]


def profile_target_db(noise: Tensor, layout: BandLayout) -> Tensor:
    """Band profile (dB) of a noise signal as the gate sees it: (C, S) -> (n_bands,), (B, C, S) -> (B, n_bands).

    `noise_power_bins`, mean over each band's bins, ``10 log10`` floored at -120 dB
    (`manifests.bands.band_profile_db` semantics).
    """
    single = noise.ndim == 2
    mean, _ = noise_power_bins(noise.unsqueeze(0) if single else noise, layout)
    profile = power_to_db(bins_to_bands_power(mean, layout)).to(torch.float32)
    return profile[0] if single else profile


class ExampleIndex:
    """The rows of an examples manifest (one build folder), by split."""

    def __init__(self, build_dir: str):
        self.root = str(build_dir)
        self.path = join(self.root, "examples.parquet")
        table = read_manifest(self.path, "examples")
        missing = [c for c in ROW_COLUMNS if c not in table.column_names]
        if missing:
            raise ManifestError(f"{self.path}: missing columns {missing}; rebuild it with `datagen build`")
        self.layout = band_layout(self.path)
        self.rows = table.select(list(ROW_COLUMNS)).to_pylist()
        rates = {int(r["sample_rate"]) for r in self.rows}
        if rates and rates != {self.layout.sample_rate}:
            raise ManifestError(f"{self.path}: sample rates {sorted(rates)} differ from the band layout's {self.layout.sample_rate} Hz")

    def split(self, name: str) -> list[dict]:
        rows = [r for r in self.rows if r["split"] == name]
        rows.sort(key=lambda r: int(r["index"]))
        return rows

    def splits(self) -> list[str]:
        return sorted({r["split"] for r in self.rows})


# --------------------------------------------------------------------------------------------------
# augmentation helpers (numpy, per item)
# --------------------------------------------------------------------------------------------------


def _crop(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    """audio[:, start:start+length], looping a clip shorter than `length`."""
    if audio.shape[-1] < length:
        reps = -(-length // max(audio.shape[-1], 1))
        audio = np.tile(audio, (1, reps))
    return audio[:, start:start + length]


# --------------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------------


class TrainDataset(Dataset):
    """Random crops of one split, re-mixed on the fly. Items are addressed by ``(epoch, draw, index)``
    (see `EpochSampler`) and returned as a dict:

    noisy, clean, noise: (channels, crop samples) float32; profile_db: (n_bands,) float32 target of
    the (augmented) noise; source_type, noise_type (second noise: "a+b"), example_id: str; snr_db:
    float (nominal SNR of the mix); augmented: bool.
    """

    def __init__(self, index: ExampleIndex, split: str, crop_s: float, augment: AugmentConfig | None, seed: int):
        self.index = index
        self.root = index.root
        self.layout = index.layout
        self.rows = index.split(split)
        if not self.rows:
            raise ManifestError(f"{index.path}: no examples in split '{split}' (splits: {', '.join(index.splits())})")
        self.split = split
        self.crop = max(1, int(round(crop_s * self.layout.sample_rate)))
        self.augment = augment if augment is not None and augment.enabled else None
        self.seed = int(seed)
        self.by_noise_type: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(self.rows):
            self.by_noise_type[row["noise_type"]].append(i)
        self.noise_types = sorted(self.by_noise_type)
        self.transforms = augmentations(self.augment, self.layout.sample_rate, self._other_noise) if self.augment else []

    @property
    def source_types(self) -> list[str]:
        return [r["source_type"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def _member(self, row: Mapping, name: str) -> sf.SoundFile:
        """An open decoder of one audio member (bytes read by seeking into the shard)."""
        data = read_member(self.root, row["shard"], row[f"{name}_offset"], row[f"{name}_size"])
        handle = sf.SoundFile(io.BytesIO(data))
        if handle.samplerate != self.layout.sample_rate:
            raise ManifestError(f"{join(self.root, row['shard'])}: member {row['example_id']}.{name} is at "
                                f"{handle.samplerate} Hz, the band layout at {self.layout.sample_rate} Hz")
        return handle

    def _read_crop(self, handle: sf.SoundFile, start: int) -> np.ndarray:
        """(channels, crop) float32 from `start`, decoding only the crop (clips shorter than the crop loop)."""
        if handle.frames < self.crop:
            handle.seek(0)
            return _crop(np.ascontiguousarray(handle.read(dtype="float32", always_2d=True).T), 0, self.crop)
        handle.seek(start)
        return np.ascontiguousarray(handle.read(self.crop, dtype="float32", always_2d=True).T)

    def _random_crop(self, rng: np.random.Generator, length: int) -> int:
        return int(rng.integers(0, max(length - self.crop, 0) + 1))

    def _other_noise(self, rng: np.random.Generator, noise_type: str) -> tuple[np.ndarray, str] | None:
        """A random crop of the noise of an example of another noise type -> (audio, its type); None if the
        split has one noise type."""
        others = [t for t in self.noise_types if t != noise_type]
        if not others:
            return None
        other_type = others[int(rng.integers(len(others)))]
        j = self.by_noise_type[other_type][int(rng.integers(len(self.by_noise_type[other_type])))]
        with self._member(self.rows[j], "noise") as other_file:
            return self._read_crop(other_file, self._random_crop(rng, other_file.frames)), other_type

    def __getitem__(self, key) -> dict:
        epoch, draw, i = (int(k) for k in key) if isinstance(key, (tuple, list)) else (0, int(key), int(key))
        rng = np.random.default_rng([self.seed, epoch, draw, 0x7A1])
        row = self.rows[i]
        with self._member(row, "clean") as clean_file, self._member(row, "noise") as noise_file:
            start = self._random_crop(rng, clean_file.frames)
            clean = self._read_crop(clean_file, start)
            noise = self._read_crop(noise_file, start)
        snr = float(row["snr_target_db"])
        noise_type = row["noise_type"]
        augmented = self.augment is not None and rng.random() < self.augment.prob
        if augmented:
            mix = Mix(clean, noise, snr, float(row["snr_measured_db"]), noise_type, rms(noise))
            for transform in self.transforms:
                mix = transform(rng, mix)
            clean, noise, snr, noise_type = mix.clean, mix.noise, mix.snr_db, mix.noise_type
        clean_t = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32))
        noise_t = torch.from_numpy(np.ascontiguousarray(noise, dtype=np.float32))
        return {
            "noisy": clean_t + noise_t,
            "clean": clean_t,
            "noise": noise_t,
            "profile_db": torch.from_numpy(profile_target_np(noise, self.layout)),
            "source_type": row["source_type"],
            "noise_type": noise_type,
            "snr_db": snr,
            "augmented": bool(augmented),
            "example_id": row["example_id"],
        }


class EpochSampler(Sampler):
    """Per-epoch draws of `epoch_size` examples with per-source-type weights (with replacement).

    An example of source type s is drawn with probability proportional to ``weights[s] / count(s)``,
    so the weights are the expected shares of each type in an epoch whatever the split's balance.
    Yields ``(epoch, draw, index)`` keys for `TrainDataset`; call `set_epoch` before iterating.
    """

    def __init__(self, source_types: Sequence[str], weights: Mapping[str, float], epoch_size: int, seed: int):
        counts: dict[str, int] = defaultdict(int)
        for s in source_types:
            counts[s] += 1
        probs = torch.tensor([float(weights.get(s, 0.0)) / counts[s] for s in source_types], dtype=torch.float64)
        if not float(probs.sum()) > 0:
            raise ValueError(f"source weights {dict(weights)} give zero probability to every example "
                             f"(source types present: {sorted(counts)})")
        self.probs = probs / probs.sum()
        self.epoch_size = int(epoch_size) if epoch_size > 0 else len(source_types)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch * 7919 + 17)
        return torch.multinomial(self.probs, self.epoch_size, replacement=True, generator=generator).tolist()

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch = self.epoch
        for draw, i in enumerate(self.indices(epoch)):
            yield (epoch, draw, i)

    def __len__(self) -> int:
        return self.epoch_size


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def make_loader(dataset: TrainDataset, sampler: EpochSampler, batch_size: int, num_workers: int) -> DataLoader:
    """DataLoader over `dataset` in `sampler` order; whole batches only; deterministic for any `num_workers`."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=True,
                      persistent_workers=num_workers > 0, worker_init_fn=_worker_init if num_workers > 0 else None,
                      prefetch_factor=4 if num_workers > 0 else None)


class EvalSet:
    """A fixed evaluation set: every example of a split, stored mix, deterministic crop (the first
    `crop_s` seconds; 0 = whole clips), held in memory.

    Attributes: noisy, clean (N, channels, samples) float32; profile_db (N, n_bands) of the noise
    crop (`profile_target_db`); source_type, noise_type, example_id: lists of str; snr_db: list of float.
    """

    def __init__(self, index: ExampleIndex, split: str, crop_s: float = 0.0, limit: int | None = None):
        rows = index.split(split)
        if not rows:
            raise ManifestError(f"{index.path}: no examples in split '{split}' (splits: {', '.join(index.splits())})")
        if limit is not None:
            rows = rows[:limit]
        self.split = split
        self.layout = index.layout
        length = None if crop_s <= 0 else int(round(crop_s * self.layout.sample_rate))
        noisy, clean, profiles = [], [], []
        for row in rows:
            audio = open_example(row, index.root)
            n = audio.noisy.shape[-1] if length is None else length
            noisy.append(_crop(audio.noisy, 0, n))
            clean.append(_crop(audio.clean, 0, n))
            profiles.append(torch.from_numpy(profile_target_np(_crop(audio.noise, 0, n), self.layout)))
        lengths = {x.shape for x in noisy}
        if len(lengths) > 1:  # clips of different durations: evaluate on the shortest
            n = min(x.shape[-1] for x in noisy)
            noisy, clean = [x[:, :n] for x in noisy], [x[:, :n] for x in clean]
        self.noisy = torch.from_numpy(np.stack(noisy).astype(np.float32))
        self.clean = torch.from_numpy(np.stack(clean).astype(np.float32))
        self.profile_db = torch.stack(profiles)
        self.source_type = [r["source_type"] for r in rows]
        self.noise_type = [r["noise_type"] for r in rows]
        self.snr_db = [float(r["snr_target_db"]) for r in rows]
        self.example_id = [r["example_id"] for r in rows]

    def __len__(self) -> int:
        return len(self.source_type)

    def batches(self, batch_size: int) -> Iterator[tuple[slice, Tensor, Tensor]]:
        """(slice, noisy, clean) in order."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, min(start + batch_size, len(self)))
            yield sl, self.noisy[sl], self.clean[sl]
