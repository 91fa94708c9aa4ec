"""Training configuration: a TOML file loaded into typed, validated dataclasses.

An unknown key, a wrong type or a value out of range raises `ConfigError` naming the file, the key
and what is accepted. Relative data paths are relative to the config file. `configs/train_demo.toml`
documents every key.

Reproducibility: results depend on everything but `device`, `data.num_workers` and the
`max_minutes` budgets (see `RESULT_IRRELEVANT_KEYS`). `max_minutes` is a safety cap only: if it
stops a stage before its `epochs`, the run records `time_limited` and its results then depend on
the machine's speed. The default budgets are chosen so the epoch counts finish well inside them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manifests.typed_config import ConfigError, build_dataclass, choices, require

CLEAN_TYPES = ("speech", "music")
DEVICES = ("auto", "cpu", "cuda")

# keys that do not change the numbers a run produces on a given device (dotted paths)
RESULT_IRRELEVANT_KEYS = ("device", "data.num_workers", "stage1.max_minutes", "stage2.max_minutes",
                          "masknet.max_minutes")


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly re-mixing of the stored clean and noise (training split only)."""

    enabled: bool = True
    prob: float = 0.9  # probability that an example is re-mixed (else: the stored mix, cropped)
    snr_min_db: float = -5.0  # new SNR drawn uniformly in [min, max] (relative to the stored measured SNR)
    snr_max_db: float = 40.0  # high SNRs teach the controller to back off on (nearly) clean input
    gain_min_db: float = -10.0  # overall level change of clean and noise together
    gain_max_db: float = 6.0
    color_prob: float = 0.7  # probability of a random smooth EQ on the noise
    color_tilt_db_per_oct: float = 3.0  # max |spectral tilt| (around 1 kHz)
    color_bumps: int = 3  # number of random Gaussian bumps/dips (on a log-frequency axis)
    color_bump_db: float = 9.0  # max |gain| of one bump
    mix_noise_prob: float = 0.3  # probability of adding the noise of another example (another noise type)
    mix_noise_min_db: float = -12.0  # level of the second noise relative to the first
    mix_noise_max_db: float = 0.0
    # slow random level wander of the noise per band (`augment.fluctuate`), std uniform in [0, fluctuation_max_db]:
    # real stationary noise wanders (the corpus filter admits up to 3 dB), generated noise does not
    fluctuation_prob: float = 0.5
    fluctuation_max_db: float = 3.0
    # a drifting harmonic tone added to the noise (engines, motors, drones, whine): f0 log-uniform in
    # [tone_min_hz, tone_max_hz], slow pitch wobble and amplitude modulation, level relative to the noise
    tone_prob: float = 0.25
    tone_min_hz: float = 40.0
    tone_max_hz: float = 3000.0
    tone_min_db: float = -10.0
    tone_max_db: float = 10.0
    # steep low-pass at a cutoff drawn log-uniformly in [bandlimit_min_hz, bandlimit_max_hz]: noise with no
    # content above some frequency (recorded at a low rate, or rumble-like), and clean material upsampled
    # from a lower rate. Both leave bands where the quiet frames hold signal, not noise.
    bandlimit_noise_prob: float = 0.2
    bandlimit_clean_prob: float = 0.1
    bandlimit_min_hz: float = 2000.0
    bandlimit_max_hz: float = 16000.0


@dataclass(frozen=True)
class DataConfig:
    build: str = "runs/demo/data"  # build folder of `datagen build` (examples.parquet + shards)
    crop_s: float = 2.0  # random training crops
    eval_crop_s: float = 0.0  # fixed evaluation crops: the first eval_crop_s of each clip; 0 = whole clips
    batch_size: int = 8
    num_workers: int = 1  # DataLoader worker processes (results do not depend on it)
    epoch_size: int = 0  # examples drawn per epoch; 0: the size of the train split
    source_weights: dict[str, float] = field(default_factory=lambda: {"speech": 1.0, "music": 1.0})
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class ControllerConfig:
    """Hyper-parameters of `training.controller.Controller`."""

    hidden: int = 64
    n_blocks: int = 4
    kernel_size: int = 3
    mlp: int = 256
    prior_quantile: float = 0.1
    frame_pool: int = 4  # STFT frames averaged per network frame (the network runs at 48000 / 512 / 4 = 23 frames/s)
    band_hidden: int = 32  # channels of the per-band profile path (0: off)


@dataclass(frozen=True)
class Stage1Config:
    """Controller alone: noise profile (vs the augmented targets) + scalar controls held near defaults."""

    epochs: int = 4  # 0 skips the stage
    max_minutes: float = 20.0  # safety cap (0: none)
    lr: float = 1e-3
    weight_profile: float = 1.0  # L1 in dB
    weight_controls: float = 1.0  # squared distance of the normalized scalar controls to their defaults
    grad_clip: float = 1.0  # max gradient norm (0: off)


@dataclass(frozen=True)
class Stage2Config:
    """End to end through the spectral gate vs the clean target."""

    epochs: int = 6
    max_minutes: float = 40.0
    lr: float = 1e-3
    weight_mrstft: float = 1.0  # multi-resolution STFT loss (spectral convergence + log magnitude)
    weight_sisdr: float = 0.05  # per dB of -SI-SDR
    weight_harm: float = 0.2  # per dB of SI-SDR lost against the noisy input (hinge: 0 when the output is no worse)
    weight_profile: float = 0.05  # per dB of profile L1: keeps the profile control interpretable
    weight_controls: float = 0.0  # pull of the scalar controls towards their defaults
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # > 0: validate, select and ship an exponential moving average of the weights


@dataclass(frozen=True)
class MaskNetConfig:
    """The black-box baseline (training/masknet.py), trained with the stage-2 audio loss."""

    enabled: bool = True
    epochs: int = 4  # same data order and crops as stage 2; ~ the wall time of stage 2 (a step costs ~1.3x)
    max_minutes: float = 40.0
    lr: float = 1e-3
    hidden: int = 256  # conv channels = GRU units per direction (2.1 M parameters at 256)
    gru_layers: int = 1
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # as stage2.ema_decay


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    device: str = field(default="auto", metadata=choices(*DEVICES))
    threads: int = 1  # torch intra-op threads (0: torch's default). Part of the result: float sums depend on it

    data: DataConfig = field(default_factory=DataConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    masknet: MaskNetConfig = field(default_factory=MaskNetConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def result_dict(self) -> dict:
        """`to_dict` without the keys that do not change the results (`RESULT_IRRELEVANT_KEYS`)."""
        data = json.loads(json.dumps(self.to_dict()))
        for key in RESULT_IRRELEVANT_KEYS:
            *parents, leaf = key.split(".")
            node = data
            for p in parents:
                node = node[p]
            node.pop(leaf, None)
        return data

    def result_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.result_dict(), sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


def validate(config: TrainConfig, where: str) -> TrainConfig:
    """Cross-field and range checks."""
    d, a = config.data, config.data.augment
    require(config.threads >= 0, where, "threads", "must be >= 0 (0: torch's default)")
    require(bool(d.build), where, "data.build", "must name a build folder of `datagen build`")
    require(0.1 <= d.crop_s <= 60.0, where, "data.crop_s", f"must be in 0.1..60 s, got {d.crop_s}")
    require(d.eval_crop_s == 0.0 or 0.1 <= d.eval_crop_s <= 600.0, where, "data.eval_crop_s", "must be 0 (whole clips) or 0.1..600 s")
    require(d.batch_size >= 1, where, "data.batch_size", "must be >= 1")
    require(d.num_workers >= 0, where, "data.num_workers", "must be >= 0")
    require(d.epoch_size >= 0, where, "data.epoch_size", "must be >= 0 (0: the train split size)")
    unknown = sorted(set(d.source_weights) - set(CLEAN_TYPES))
    require(not unknown, where, f"data.source_weights.{unknown[0] if unknown else ''}", f"is not a clean source type; use {', '.join(CLEAN_TYPES)}")
    require(all(w >= 0 for w in d.source_weights.values()) and any(w > 0 for w in d.source_weights.values()),
             where, "data.source_weights", "must be >= 0 with at least one > 0")
    require(0.0 <= a.prob <= 1.0, where, "data.augment.prob", "must be in 0..1")
    require(0.0 <= a.color_prob <= 1.0, where, "data.augment.color_prob", "must be in 0..1")
    require(0.0 <= a.mix_noise_prob <= 1.0, where, "data.augment.mix_noise_prob", "must be in 0..1")
    require(-30.0 <= a.snr_min_db <= a.snr_max_db <= 80.0, where, "data.augment.snr_min_db", "must be <= snr_max_db, both in -30..80 dB")
    require(a.gain_min_db <= a.gain_max_db, where, "data.augment.gain_min_db", "must be <= gain_max_db")
    require(a.mix_noise_min_db <= a.mix_noise_max_db, where, "data.augment.mix_noise_min_db", "must be <= mix_noise_max_db")
    require(a.color_bumps >= 0 and a.color_bump_db >= 0 and a.color_tilt_db_per_oct >= 0, where, "data.augment.color_bumps",
             "color_bumps, color_bump_db and color_tilt_db_per_oct must be >= 0")
    require(0.0 <= a.fluctuation_max_db <= 12.0, where, "data.augment.fluctuation_max_db", "must be in 0..12 dB")
    for name in ("fluctuation_prob", "tone_prob", "bandlimit_noise_prob", "bandlimit_clean_prob"):
        require(0.0 <= getattr(a, name) <= 1.0, where, f"data.augment.{name}", "must be in 0..1")
    require(0.0 < a.tone_min_hz <= a.tone_max_hz, where, "data.augment.tone_min_hz", "must be > 0 and <= tone_max_hz")
    require(a.tone_min_db <= a.tone_max_db, where, "data.augment.tone_min_db", "must be <= tone_max_db")
    require(0.0 < a.bandlimit_min_hz <= a.bandlimit_max_hz, where, "data.augment.bandlimit_min_hz", "must be > 0 and <= bandlimit_max_hz")
    c = config.controller
    require(c.frame_pool >= 1, where, "controller.frame_pool", f"must be >= 1 (1: no pooling), got {c.frame_pool}")
    require(c.band_hidden >= 0, where, "controller.band_hidden", f"must be >= 0 (0: no per-band path), got {c.band_hidden}")
    require(c.hidden >= 1 and c.n_blocks >= 0 and c.kernel_size >= 1 and c.kernel_size % 2 == 1 and c.mlp >= 1, where,
             "controller", "needs hidden, mlp >= 1, n_blocks >= 0 and an odd kernel_size")
    require(0.0 < c.prior_quantile < 1.0, where, "controller.prior_quantile", "must be in (0, 1)")
    for name in ("stage1", "stage2", "masknet"):
        s = getattr(config, name)
        require(s.epochs >= 0, where, f"{name}.epochs", "must be >= 0 (0 skips it)")
        require(s.max_minutes >= 0, where, f"{name}.max_minutes", "must be >= 0 (0: no time limit)")
        require(s.lr > 0, where, f"{name}.lr", "must be > 0")
        require(s.grad_clip >= 0, where, f"{name}.grad_clip", "must be >= 0 (0: off)")
    for name in ("weight_profile", "weight_controls"):
        require(getattr(config.stage1, name) >= 0, where, f"stage1.{name}", "must be >= 0")
    for name in ("weight_mrstft", "weight_sisdr", "weight_harm", "weight_profile", "weight_controls"):
        require(getattr(config.stage2, name) >= 0, where, f"stage2.{name}", "must be >= 0")
    for name in ("stage2", "masknet"):
        require(0.0 <= getattr(config, name).ema_decay < 1.0, where, f"{name}.ema_decay",
                 "must be in [0, 1) (0: off; 0.99-0.999 averages over ~100-1000 steps)")
    require(config.stage2.weight_mrstft + config.stage2.weight_sisdr > 0, where, "stage2.weight_mrstft",
             "or stage2.weight_sisdr must be > 0")
    require(config.masknet.hidden >= 8 and config.masknet.gru_layers >= 1, where, "masknet.hidden", "must be >= 8 with gru_layers >= 1")
    return config


def _resolve_paths(config: TrainConfig, base_dir: Path) -> TrainConfig:
    build = os.path.expanduser(config.data.build)
    if "://" not in build and not os.path.isabs(build):
        build = str((base_dir / build).resolve())
    return dataclasses.replace(config, data=dataclasses.replace(config.data, build=build))


def parse_config(table: dict, where: str, base_dir: Path | None = None) -> TrainConfig:
    """A TrainConfig from a parsed TOML/JSON table; relative paths resolve against `base_dir`."""
    config = build_dataclass(TrainConfig, table, where)
    if base_dir is not None:
        config = _resolve_paths(config, base_dir)
    return validate(config, where)


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Load and validate a TOML training config (or the resolved `config.json` of a run folder)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    try:
        table = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc})") from None
    return parse_config(table, str(path), path.parent.resolve())


def with_overrides(config: TrainConfig, **dotted: Any) -> TrainConfig:
    """A copy with dotted keys replaced, e.g. ``with_overrides(c, **{"data.build": path})``; validated."""
    table = config.to_dict()
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = table
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise ConfigError(f"override: unknown key '{key}'")
        node[leaf] = value
    return parse_config(table, "override")
