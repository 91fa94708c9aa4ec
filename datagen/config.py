"""Build configuration: a TOML file loaded into typed, validated dataclasses.

Every key is documented in the README's config reference. An unknown key, a wrong type or a value
out of range raises `ConfigError` naming the file, the key and what is accepted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from manifests.schema import AUDIO_FORMATS
from manifests.typed_config import ConfigError, build_dataclass, choices, require

from .stationarity import DEFAULT_STATIONARITY_THRESHOLD_DB

# the build guarantees |measured - target SNR| <= this on the written samples (mix); the audit checks it
SNR_TOLERANCE_DB = 0.1

# bumped whenever the renderer's arithmetic or a probe measure that decides what is used changes (3: the
# energy-weighted stationarity score; 4: DC offsets removed from the excerpts before mixing), so a build is
# never resumed with shards or source rows of two versions
RENDER_VERSION = 4
SOURCE_TYPES = ("speech", "music", "noise")
GENERATORS = ("speech", "music", "noise", "nonstationary")
SNR_DEFINITIONS = ("active", "rms", "loudness")
NOISE_TYPE_FROM_FOLDER = "from_folder"
MAX_EXAMPLES_PER_SPLIT = 20_000_000  # 22,000 h of 4 s clips


@dataclass(frozen=True)
class CorpusConfig:
    """One source corpus: a folder/glob of recordings, or a generator of the embedded demo corpus."""

    name: str = ""
    type: str = field(default="", metadata=choices("", *SOURCE_TYPES))  # required unless a recipe sets it
    path: str = ""  # folder, glob ("**/*.flac") or fsspec URL; relative paths are relative to the config file
    recipe: str = ""  # a public corpus's recipe (datagen/recipes): fills the keys below that are left out
    variant: str = ""  # the recipe's variant (e.g. "stems" for musdb18hq); "": its default
    generator: str = field(default="", metadata=choices("", *GENERATORS))  # embedded procedural corpus
    count: int = 8  # generator only: files (per noise type for noise)
    duration_s: float = 30.0  # generator only: length of each generated file
    groups: int = 4  # generator only: speakers / artists
    noise_type: str = NOISE_TYPE_FROM_FOLDER  # a fixed type, or the name of each file's parent folder
    weight: float = 1.0  # relative probability of drawing from this corpus (within clean, within noise)
    group_pattern: str = ""  # regex on the path relative to the corpus root; group 1 is the group key
    group_namespace: str = ""  # prefix of this corpus's group keys ("<namespace>:<key>"); "": keys shared with every corpus
    group_unmatched: str = field(default="error", metadata=choices("error", "own_group"))  # files group_pattern misses
    noise_type_pattern: str = ""  # regex on the relative path; group 1 is the noise type
    labels: str = ""  # CSV (path + any of group, noise_type, split) relative to the config file, or "recipe"
    split_patterns: dict[str, str] = field(default_factory=dict)  # split -> regex on the relative path: pins files
    official_splits: bool = True  # a recipe's official splits (patterns and metadata) are applied
    include: tuple[str, ...] = ()  # shell patterns on the relative path ('*' also crosses '/'); (): every file
    exclude: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "aif", "aiff", "opus")
    split: str = ""  # "": recordings are split by group with the others; a split name puts every recording in it


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 48000  # Hz, of every written member
    channels: int = 1  # 1 (sources are downmixed) or 2 (mono sources duplicated)
    clip_duration_s: float = 4.0
    format: str = field(default="flac24", metadata=choices(*AUDIO_FORMATS))
    peak_ceiling_dbfs: float = -1.0  # no sample of noisy, clean or noise exceeds this


@dataclass(frozen=True)
class SnrConfig:
    distribution: str = field(default="uniform", metadata=choices("uniform", "choice"))
    min_db: float = -5.0  # uniform
    max_db: float = 25.0  # uniform
    values_db: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0)  # choice
    definition: str = field(default="active", metadata=choices(*SNR_DEFINITIONS))


@dataclass(frozen=True)
class MixConfig:
    clean_loudness_min_lufs: float = -35.0
    clean_loudness_max_lufs: float = -20.0
    min_active_ratio: float = 0.5  # an excerpt of the clean must be at least this active (when the source allows)
    noise_loop: str = field(default="never", metadata=choices("never", "crossfade"))
    noise_crossfade_s: float = 0.5  # crossfade length when noise_loop = "crossfade"


@dataclass(frozen=True)
class FiltersConfig:
    stationarity_threshold_db: float = DEFAULT_STATIONARITY_THRESHOLD_DB  # noise recordings scoring above are excluded
    min_bandwidth_hz: float = 0.0  # clean recordings with a lower effective bandwidth are excluded
    min_duration_s: float = 1.0  # recordings shorter than this are reported and skipped


@dataclass(frozen=True)
class SplitsConfig:
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "valid": 0.1, "test": 0.1})
    examples: dict[str, int] = field(default_factory=dict)  # examples per split ...
    hours: dict[str, float] = field(default_factory=dict)  # ... or hours of mixture per split


@dataclass(frozen=True)
class ShardsConfig:
    examples_per_shard: int = 64


@dataclass(frozen=True)
class ProfileConfig:
    """STFT band layout of the per-example noise profile (see manifests/bands.py)."""

    bands: int = 48
    n_fft: int = 2048
    hop: int = 512


@dataclass(frozen=True)
class DaskConfig:
    workers: int = 0  # local worker processes; 0: one per core
    threads_per_worker: int = 1
    scheduler: str = ""  # address of an existing cluster, e.g. tcp://10.0.0.5:8786


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    audio: AudioConfig = field(default_factory=AudioConfig)
    snr: SnrConfig = field(default_factory=SnrConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    splits: SplitsConfig = field(default_factory=SplitsConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    dask: DaskConfig = field(default_factory=DaskConfig)
    corpora: tuple[CorpusConfig, ...] = ()

    def output_hash(self) -> str:
        """Digest of everything that determines the output bytes (not the Dask settings)."""
        data = dataclasses.asdict(self)
        data.pop("dask")
        for corpus in data["corpora"]:  # keys added later: left out at their default, so earlier builds keep their hash
            for key, default in LATER_CORPUS_KEYS.items():
                if corpus[key] == default:
                    del corpus[key]
        data["render_version"] = RENDER_VERSION
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


LATER_CORPUS_KEYS = {"split": "", "recipe": "", "variant": "", "group_namespace": "", "group_unmatched": "error", "noise_type_pattern": "", "labels": "",
                     "split_patterns": {}, "official_splits": True, "include": (), "exclude": ()}


def _check_pattern(pattern: str, where: str, key: str, capture: bool) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}: '{key}' = {pattern!r} is not a valid regular expression ({exc}); fix the pattern") from None
    require(not capture or compiled.groups >= 1, where, key,
            f"= {pattern!r} has no capture group: group 1 is the key it extracts, e.g. '^([^/]+)/' for the first folder")


def _validate_corpus(corpus: CorpusConfig, key: str, config: BuildConfig, where: str) -> None:
    require(bool(corpus.name), where, f"{key}.name", "is required")
    require(bool(corpus.type), where, f"{key}.type", f"is required (one of {', '.join(SOURCE_TYPES)}) unless a recipe sets it")
    require(bool(corpus.path) != bool(corpus.generator), where, f"{key}.path", "or .generator must be set (exactly one)")
    require(not corpus.recipe or bool(corpus.path), where, f"{key}.path", "must be the corpus root for a recipe")
    require(corpus.weight > 0, where, f"{key}.weight", "must be > 0")
    require(not corpus.split or corpus.split in config.splits.fractions, where, f"{key}.split",
            f"must be empty or one of the splits.fractions names ({', '.join(config.splits.fractions)}), got {corpus.split!r}")
    require(corpus.name.replace("_", "").replace("-", "").isalnum(), where, f"{key}.name", "may only hold letters, digits, '-' and '_'")
    for name, pattern in (("group_pattern", corpus.group_pattern), ("noise_type_pattern", corpus.noise_type_pattern)):
        if pattern:
            _check_pattern(pattern, where, f"{key}.{name}", capture=True)
    for split, pattern in corpus.split_patterns.items():
        require(split in config.splits.fractions, where, f"{key}.split_patterns.{split}",
                f"names a split missing from splits.fractions ({', '.join(config.splits.fractions)}); add it there, or remove the pattern"
                + (" (set official_splits = false to split this corpus by fractions only)" if corpus.recipe else ""))
        _check_pattern(pattern, where, f"{key}.split_patterns.{split}", capture=False)
    require(corpus.labels != "recipe" or bool(corpus.recipe), where, f"{key}.labels", "= 'recipe' needs a recipe; give a CSV file instead")
    if corpus.generator:
        expected = "noise" if corpus.generator == "nonstationary" else corpus.generator
        require(corpus.type == expected, where, f"{key}.type", f"must be '{expected}' for generator '{corpus.generator}'")
        require(corpus.count >= 1 and corpus.duration_s > 0 and corpus.groups >= 1, where, f"{key}.count", "duration_s and groups must be positive")


def validate(config: BuildConfig, where: str) -> BuildConfig:
    """Cross-field checks that types alone cannot express."""
    audio, snr, mix, splits = config.audio, config.snr, config.mix, config.splits
    require(0 <= config.seed < 2**63, where, "seed", f"must be an integer in 0..2^63-1, got {config.seed}")
    require(8000 <= audio.sample_rate <= 192000, where, "audio.sample_rate", f"must be in 8000..192000 Hz, got {audio.sample_rate}")
    require(audio.channels in (1, 2), where, "audio.channels", f"must be 1 or 2, got {audio.channels}")
    require(0.5 <= audio.clip_duration_s <= 600, where, "audio.clip_duration_s", f"must be in 0.5..600 s, got {audio.clip_duration_s}")
    require(-40.0 <= audio.peak_ceiling_dbfs <= 0.0, where, "audio.peak_ceiling_dbfs", f"must be in -40..0 dBFS, got {audio.peak_ceiling_dbfs}")
    require(snr.min_db <= snr.max_db, where, "snr.min_db", f"({snr.min_db}) must not exceed snr.max_db ({snr.max_db})")
    require(len(snr.values_db) > 0, where, "snr.values_db", "must list at least one SNR")
    require(mix.clean_loudness_min_lufs <= mix.clean_loudness_max_lufs < 0, where, "mix.clean_loudness_min_lufs", "must be <= mix.clean_loudness_max_lufs < 0 LUFS")
    require(0.0 <= mix.min_active_ratio <= 1.0, where, "mix.min_active_ratio", "must be in 0..1")
    require(0.0 < mix.noise_crossfade_s < audio.clip_duration_s, where, "mix.noise_crossfade_s", "must be > 0 and shorter than audio.clip_duration_s")
    require(config.shards.examples_per_shard >= 1, where, "shards.examples_per_shard", "must be >= 1")
    require(config.dask.workers >= 0 and config.dask.threads_per_worker >= 1, where, "dask.workers", "must be >= 0 (0: one per core) with threads_per_worker >= 1")
    require(config.profile.n_fft >= 64 and 0 < config.profile.hop <= config.profile.n_fft, where, "profile.hop", "must be in 1..profile.n_fft (n_fft >= 64)")
    require(1 <= config.profile.bands <= config.profile.n_fft // 2 + 1, where, "profile.bands", "must be in 1..n_fft/2+1")
    fractions = splits.fractions
    require(bool(fractions) and all(v >= 0 for v in fractions.values()) and abs(sum(fractions.values()) - 1.0) < 1e-6, where,
             "splits.fractions", f"must be non-negative and sum to 1, got {fractions}")
    require(all("." not in name and "/" not in name and name for name in fractions), where, "splits.fractions", "split names must be non-empty and contain no '.' or '/'")
    require(bool(splits.examples) != bool(splits.hours), where, "splits.examples", "or 'splits.hours' must be given (exactly one of them)")
    sizes = splits.examples or splits.hours
    for name, size in sizes.items():
        require(name in fractions, where, f"splits.{'examples' if splits.examples else 'hours'}.{name}", f"names a split missing from splits.fractions ({', '.join(fractions)})")
        require(size >= 0, where, f"splits.{'examples' if splits.examples else 'hours'}.{name}", "must be >= 0")
        examples = size if splits.examples else size * 3600.0 / audio.clip_duration_s
        require(examples <= MAX_EXAMPLES_PER_SPLIT, where, f"splits.{'examples' if splits.examples else 'hours'}.{name}",
                f"asks for {examples:.3g} examples; at most {MAX_EXAMPLES_PER_SPLIT:,} per split (every plan is held in memory): "
                "build larger corpora as several builds")
    names = [c.name for c in config.corpora]
    require(len(names) == len(set(names)), where, "corpora.name", f"must be unique, got {names}")
    require(any(c.type == "noise" for c in config.corpora) and any(c.type != "noise" for c in config.corpora), where, "corpora",
             "must include at least one noise corpus and one speech or music corpus")
    for i, corpus in enumerate(config.corpora):
        _validate_corpus(corpus, f"corpora[{i}] ({corpus.name})", config, where)
    return config


def _resolve_paths(config: BuildConfig, base_dir: Path) -> BuildConfig:
    corpora = []
    for corpus in config.corpora:
        path = corpus.path
        if path and "://" not in path and not os.path.isabs(os.path.expanduser(path)):
            path = str((base_dir / path).resolve())
        labels = corpus.labels
        if labels and labels != "recipe" and "://" not in labels and not os.path.isabs(os.path.expanduser(labels)):
            labels = str((base_dir / labels).resolve())
        corpora.append(dataclasses.replace(corpus, path=os.path.expanduser(path) if path else "", labels=os.path.expanduser(labels)))
    return dataclasses.replace(config, corpora=tuple(corpora))


def parse_config(table: dict, where: str, base_dir: Path) -> BuildConfig:
    """A BuildConfig from a parsed TOML table (recipes expanded); `where` names the source in errors."""
    from .recipes import expand_corpora

    if isinstance(table.get("corpora"), list):
        table = {**table, "corpora": expand_corpora(table["corpora"], where)}
    config = build_dataclass(BuildConfig, table, where)
    return validate(_resolve_paths(config, base_dir), where)


def config_from_table(table: dict, where: str) -> BuildConfig:
    """A BuildConfig from an already resolved table (e.g. the one a build folder records)."""
    return validate(build_dataclass(BuildConfig, table, where), where)


def load_config(path: str | os.PathLike) -> BuildConfig:
    """Load and validate a TOML build config."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(table, str(path), path.parent.resolve())


def demo_config() -> BuildConfig:
    """The embedded default: a procedural corpus generated by the package (no recordings needed).

    `configs/demo.toml` is a link to the same file.
    """
    return load_config(Path(__file__).with_name("demo.toml"))

