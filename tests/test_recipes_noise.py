"""Noise recipes (demand, dns_noise, wham_noise, fsd50k) on small fake trees in each corpus's real layout.

Every tree has the corpus's real folder and file names (names taken from the distributions' file
lists), metadata files in their real formats (CSV headers, JSON structure) with tiny content, and
short stationary noise (colored_noise) at the native rate, so the stationarity filter keeps it.
Scanning goes through the real code path (`parse_config` then `scan_all`); end-to-end builds (slow)
cover the DEMAND and DNS Challenge layouts with the default split fractions.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from datagen.audit import audit
from datagen.build import build, scan_all
from datagen.config import ConfigError, parse_config
from datagen.plan import group_pins, split_sources
from datagen.recipes import RECIPES
from datagen.recipes.describe import describe_recipe
from datagen.recipes.noise import DEMAND_SCENES

from recipe_trees import found_at_top, scan_config_error, write_appledouble, write_text
from conftest import colored_noise, speechlike

WHERE = "test.toml"
NOISE_RECIPES = ("demand", "dns_noise", "wham_noise", "fsd50k")


def write_noise(path: Path, rate: int, seconds: float, seed: int, channels: int = 1, slope: float = -3.0, bursts: bool = False) -> None:
    """Stationary colored noise, or with `bursts` the same gated on and off every 0.25 s (what the stationarity filter rejects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    audio = np.stack([colored_noise(rng, rate, seconds, slope) for _ in range(channels)], axis=1)
    if bursts:
        audio = audio * ((np.arange(len(audio)) // (rate // 4)) % 2 == 0)[:, None] + 1e-4 * rng.standard_normal(audio.shape)
    sf.write(path, audio if channels > 1 else audio[:, 0], rate, subtype="PCM_16")



def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)



# ---------------------------------------------------------------- fake trees in the real layouts

DEMAND_FULL_SCENES = ("DKITCHEN", "TCAR")  # these two have all 16 channels; the others ch01 and ch02
DEMAND_BUSY = ("OMEETING", "PCAFETER", "SCAFE")  # babble and clatter in the real corpus: written impulsive, rejected


def write_demand(root: Path, scenes=DEMAND_SCENES, per_zip_folder: str = "", seconds: float = 2.0) -> Path:
    """DEMAND as the 16 kHz Zenodo zips extract: <SCENE>/ch01.wav ... ch16.wav (SCAFE only at 48 kHz, as on Zenodo).

    `per_zip_folder` "48k": each zip unpacked into a folder of its own, <SCENE>_48k/<SCENE>/chNN.wav.
    """
    for i, scene in enumerate(scenes):
        rate = 48000 if scene == "SCAFE" or per_zip_folder == "48k" else 16000
        folder = root / (f"{scene}_{per_zip_folder}" if per_zip_folder else "") / scene
        channels = range(1, 17) if scene in DEMAND_FULL_SCENES else range(1, 3)
        for channel in channels:
            write_noise(folder / f"ch{channel:02d}.wav", rate, seconds if channel == 1 else 0.3, 100 * i + channel,
                        bursts=scene in DEMAND_BUSY)
    write_text(root / "DEMAND.pdf", "%PDF-1.5 DEMAND: a collection of multi-channel recordings of acoustic noise\n")
    return root


# names from the DNS-Challenge noise folder (datasets/noise, interspeech2020 branch)
DNS_AUDIOSET = ("--9VR_F7CtY", "-0JNMxLVqpk", "zzznDcamMpw", "zyyI9ZpouoM", "-A743FXw0VE", "zzApe4GLGfY")
DNS_FREESOUND = {  # file name -> (category, source id)
    "fan_Freesound_validated_102686_0.wav": ("fan", "102686"),
    "fan_Freesound_validated_102686_1.wav": ("fan", "102686"),
    "fan_Freesound_validated_100355_1.wav": ("fan", "100355"),
    "fan_Freesound_validated_96736_0.wav": ("fan", "96736"),
    "fan_Freesound_validated_96736_1.wav": ("fan", "96736"),
    "door_Freesound_validated_96737_0.wav": ("door", "96737"),
    "door_Freesound_validated_102956_1.wav": ("door", "102956"),
    "door_Freesound_validated_104525_0.wav": ("door", "104525"),
    "typing_Freesound_validated_106396_1.wav": ("typing", "106396"),
    "typing_Freesound_validated_106396_2.wav": ("typing", "106396"),
    "copy-machine_Freesound_validated_215954_1.wav": ("copy-machine", "215954"),
    "squeak_squeakyChair_Freesound_validated_95565_0.wav": ("squeak_squeakyChair", "95565"),
    "breath_spit_Freesound_validated_149733_0.wav": ("breath_spit", "149733"),
    "munching_Freesound_validated_118607__krb21__eating-chips_1.wav": ("munching", "118607__krb21__eating-chips"),
    "munching_Freesound_validated_153524__eakoontz__eating-chips_3.wav": ("munching", "153524__eakoontz__eating-chips"),
    "mislabeled_munching_Freesound_validated_153524__eakoontz__eating-chips_0.wav": ("mislabeled_munching", "153524__eakoontz__eating-chips"),
}


def dns_expected(prefix: str = "") -> dict[str, tuple[str, str]]:
    """file name -> (noise type, group key) the dns_noise recipe gives by default (`prefix`: the folder of the root)."""
    return {**{name: (t, f"dns_noise:{g}") for name, (t, g) in DNS_FREESOUND.items()},
            **{f"{clip}.wav": ("audioset", f"dns_noise:{prefix}{clip}.wav") for clip in DNS_AUDIOSET}}


def write_dns(root: Path) -> Path:
    """A DNS Challenge checkout: datasets/noise/ (16 kHz), datasets/clean/read_speech/, datasets_fullband/noise_fullband/ (48 kHz)."""
    noise = root / "datasets" / "noise"
    for i, name in enumerate(dns_expected()):
        write_noise(noise / name, 16000, 2.0, 500 + i, slope=-1.5 * (i % 3), bursts=name.startswith("door_"))  # door slams: rejected
    write_text(noise / "Readme.md", "# Noise datasets\n\nNoise is from Audioset and Freesound\n")
    for i, name in enumerate(("book_00000_chp_0009_reader_06709_0.wav", "book_00002_chp_0005_reader_11980_3.wav")):
        path = root / "datasets" / "clean" / "read_speech" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speechlike(np.random.default_rng(i), 16000, 1.0), 16000, subtype="PCM_16")
    fullband = root / "datasets_fullband" / "noise_fullband"
    for i, name in enumerate(("--9VR_F7CtY.wav", "fan_Freesound_validated_102686_0.wav", "door_Freesound_validated_96737_0.wav")):
        write_noise(fullband / name, 48000, 0.5, 700 + i)
    return root


WHAM_FILES = {  # folder -> [(utterance_id, location, file id)]: wsj0-2mix utterance names, locations disjoint by split
    "tr": [("40na010x_1.9857_01xo031a_-1.9857.wav", "12", "1203"), ("011c0201_1.5089_20ec010u_-1.5089.wav", "12", "1204"),
           ("01zo030d_0.60248_20ga010n_-0.60248.wav", "15", "1502")],
    "cv": [("01aa010k_1.3053_01po0310_-1.3053.wav", "21", "2101"), ("011o031e_1.0712_02ba010b_-1.0712.wav", "21", "2102")],
    "tt": [("050a050a_1.7783_442o030z_-1.7783.wav", "30", "3001"), ("051o020r_0.9478_446o030f_-0.9478.wav", "31", "3101")],
}
WHAM_META_HEADER = ["utterance_id", "Noise Band", "File ID", "L to R Width (cm)", "Reverberation Level", "Location ID", "Location Day ID"]


def write_wham(root: Path, files=WHAM_FILES, metadata: bool = True) -> Path:
    """wham_noise/ as wham_noise.zip extracts: tr/ cv/ tt/ (16 kHz, 2 channels) and metadata/noise_meta_{tr,cv,tt}.csv."""
    seed = 900
    for folder, clips in files.items():
        rows = []
        for utterance, location, file_id in clips:
            write_noise(root / folder / utterance, 16000, 1.0, seed, channels=2)
            seed += 1
            rows.append([utterance, seed % 4, file_id, "17 cm", "m", location, f"{location}_1"])
        if metadata:
            write_csv(root / "metadata" / f"noise_meta_{folder}.csv", WHAM_META_HEADER, rows)
    return root


WHAM_HIGH_RES = [("cafe_1.wav", "Train", "12"), ("cafe_2.wav", "Train", "12"), ("bar_1.wav", "Valid", "21"), ("park_1.wav", "Test", "30")]


def write_wham_high_res(root: Path) -> Path:
    """high_res_wham/ as high_res_wham.zip extracts: audio/<file>.wav (48 kHz, 2 channels) and high_res_metadata.csv."""
    rows = []
    for i, (name, split, location) in enumerate(WHAM_HIGH_RES):
        write_noise(root / "audio" / name, 48000, 1.0, 950 + i, channels=2)
        rows.append([name, 1.0, i % 4, "17 cm", "h", split, location, f"{location}_2"])
    write_csv(root / "high_res_metadata.csv", ["Filename", "File Length (sec)", "Noise Band", "L to R Width (cm)", "Reverberation Level",
                                               "WHAM! Split", "Location ID", "Location Day ID"], rows)
    return root


GUITAR = ("Electric_guitar,Guitar,Plucked_string_instrument,Musical_instrument,Music", "/m/02sgy,/m/0342h,/m/0fx80y,/m/04szw,/m/04rlf")
HUM = ("Hum,Domestic_sounds_and_home_sounds", "/m/07rcgpl,/t/dd00071")
RAIN = ("Rain,Raindrop,Water,Natural_sounds", "/m/06mb1,/m/07r10fb,/m/0838f,/m/059j3w")
FSD50K_DEV = {  # fname -> (labels, mids, split, uploader)
    "64760": (*GUITAR, "train", "casualsamples"), "16399": (*GUITAR, "train", "casualsamples"),
    "345111": (*GUITAR, "val", "Kyster"), "21914": (*HUM, "train", "cooluploader"), "160826": (*HUM, "val", "Kyster"),
    "40515": (*RAIN, "train", "inchadney"),
}
FSD50K_EVAL = {"37199": (*GUITAR, "juskiddink"), "175151": (*RAIN, "juskiddink"), "1277": (*HUM, "Corsica_S")}


def write_fsd50k(root: Path, metadata: bool = True, dev=FSD50K_DEV, eval_=FSD50K_EVAL) -> Path:
    """FSD50K as its Zenodo zips extract: FSD50K.{dev,eval}_audio/<id>.wav (44.1 kHz mono), FSD50K.ground_truth/, FSD50K.metadata/."""
    for i, fname in enumerate([*dev, *eval_]):
        folder = "FSD50K.dev_audio" if fname in dev else "FSD50K.eval_audio"
        write_noise(root / folder / f"{fname}.wav", 44100, 1.0, 1000 + i)
    write_csv(root / "FSD50K.ground_truth" / "dev.csv", ["fname", "labels", "mids", "split"], [[f, *v[:3]] for f, v in dev.items()])
    write_csv(root / "FSD50K.ground_truth" / "eval.csv", ["fname", "labels", "mids"], [[f, *v[:2]] for f, v in eval_.items()])
    write_csv(root / "FSD50K.ground_truth" / "vocabulary.csv", ["0", "Electric_guitar", "/m/02sgy"], [["1", "Hum", "/m/07rcgpl"]])
    if metadata:
        for subset, clips in (("dev", dev), ("eval", eval_)):
            info = {fname: {"title": f"take_{fname}.wav", "description": "a recording", "tags": ["field-recording"],
                            "license": "http://creativecommons.org/licenses/by/3.0/", "uploader": values[-1]}
                    for fname, values in clips.items()}
            write_text(root / "FSD50K.metadata" / f"{subset}_clips_info_FSD50K.json", json.dumps(info, indent=4))
    write_text(root / "FSD50K.doc" / "README.md", "# Freesound Dataset 50k (FSD50K)\n")
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("corpora")
    return {"demand": write_demand(base / "DEMAND"), "dns": write_dns(base / "DNS-Challenge"), "wham": write_wham(base / "wham_noise"),
            "wham48": write_wham_high_res(base / "high_res_wham"), "fsd50k": write_fsd50k(base / "FSD50K")}


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory) -> Path:
    """Six speakers of two short utterances: the clean corpus every config needs (split by fractions)."""
    root = tmp_path_factory.mktemp("speech")
    for speaker in range(6):
        for utt in range(2):
            path = root / f"spk{speaker}" / f"utt{utt}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, speechlike(np.random.default_rng(10 * speaker + utt), 16000, 2.0), 16000)
    return root


def config_of(tmp_path: Path, speech_dir: Path, *corpora: dict, **extra):
    table = {"splits": {"examples": {"train": 2, "valid": 1, "test": 1}}, **extra,
             "corpora": [{"name": "speech", "type": "speech", "path": str(speech_dir), "group_pattern": "^([^/]+)/"}, *corpora]}
    return parse_config(table, WHERE, tmp_path)


def scan(tmp_path: Path, speech_dir: Path, *corpora: dict, **extra) -> dict[str, object]:
    """relative path -> SourceFile of the noise files the corpora select."""
    return {f.relative_path: f for f in scan_all(config_of(tmp_path, speech_dir, *corpora, **extra), WHERE) if f.source_type == "noise"}


def scan_error(tmp_path: Path, speech_dir: Path, corpus: dict) -> str:
    return scan_config_error(config_of(tmp_path, speech_dir, corpus), WHERE)



def ns(recipe: str, key: str) -> str:
    """A group key as a recipe's corpus has it: in the recipe's namespace."""
    return f"{recipe}:{key}"


def pins_of(files: dict) -> list[dict]:
    """Rows as the planner sees them, to check that no group is pinned to two splits."""
    return [{"source_type": "noise", "group_key": f.group_key, "split_pin": f.split_pin, "path": f.path} for f in files.values()]


# ---------------------------------------------------------------- registry


def test_noise_recipes_are_registered_with_their_facts():
    for name in NOISE_RECIPES:
        recipe = RECIPES[name]
        assert recipe.types == ("noise",)
        for fact in (recipe.licence, recipe.citation, recipe.url, recipe.native_rate, recipe.bandwidth, recipe.hours, recipe.layout, recipe.notes):
            assert fact.strip()
        assert recipe.markers and f'recipe = "{name}"' in describe_recipe(recipe)
        for variant in recipe.variants:
            (part,) = recipe.parts(variant)
            assert part.include and part.type == "noise"
            for pattern in (part.group_pattern, part.noise_type_pattern):
                assert not pattern or re.compile(pattern).groups >= 1
    assert RECIPES["demand"].default_variant == "ch01" and RECIPES["dns_noise"].default_variant == "all"
    assert RECIPES["fsd50k"].native_rate.startswith("44.1 kHz") and RECIPES["demand"].native_rate.startswith("48 kHz")
    assert len(DEMAND_SCENES) == 18 and len(set(DEMAND_SCENES)) == 18


# ---------------------------------------------------------------- DEMAND


def test_demand_default_is_ch01_of_every_scene_grouped_and_typed_by_scene(tmp_path, trees, speech_dir):
    write_appledouble(trees["demand"] / "DKITCHEN" / "._ch01.wav")
    try:
        files = scan(tmp_path, speech_dir, {"recipe": "demand", "path": str(trees["demand"])})
    finally:
        (trees["demand"] / "DKITCHEN" / "._ch01.wav").unlink()
    assert set(files) == {f"{scene}/ch01.wav" for scene in DEMAND_SCENES}
    for relative, source in files.items():
        scene = relative.split("/")[0]
        assert source.group_key == ns("demand", scene) and source.noise_type == scene and source.split_pin is None
        assert source.corpus == "demand"


def test_demand_all_channels_keeps_a_scene_one_group(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "demand", "path": str(trees["demand"]), "variant": "all_channels"})
    expected = {f"{scene}/ch{c:02d}.wav" for scene in DEMAND_SCENES for c in (range(1, 17) if scene in DEMAND_FULL_SCENES else (1, 2))}
    assert set(files) == expected
    assert {f.group_key for rel, f in files.items() if rel.startswith("DKITCHEN/")} == {"demand:DKITCHEN"}
    assert all(f.group_key == ns("demand", f.noise_type) and f.noise_type == rel.split("/")[0] for rel, f in files.items())


def test_demand_one_folder_per_zip_layout(tmp_path, speech_dir):
    root = write_demand(tmp_path / "DEMAND48", scenes=("DKITCHEN", "NRIVER", "TBUS"), per_zip_folder="48k", seconds=0.3)
    files = scan(tmp_path, speech_dir, {"recipe": "demand", "path": str(root)})
    assert {rel: f.group_key for rel, f in files.items()} == {f"{s}_48k/{s}/ch01.wav": ns("demand", s) for s in ("DKITCHEN", "NRIVER", "TBUS")}
    renamed = tmp_path / "renamed"  # a folder named after the zip: DKITCHEN_16k/ch01.wav
    write_noise(renamed / "DKITCHEN_16k" / "ch01.wav", 16000, 0.3, 1)
    assert {rel: f.noise_type for rel, f in scan(tmp_path, speech_dir, {"recipe": "demand", "path": str(renamed)}).items()} == \
        {"DKITCHEN_16k/ch01.wav": "DKITCHEN"}


def test_demand_wrong_roots(tmp_path, trees, speech_dir):
    for path, found in ((trees["demand"] / "DKITCHEN", "ch01.wav"), (trees["wham"], "tr/")):
        message = scan_error(tmp_path, speech_dir, {"recipe": "demand", "path": str(path)})
        assert "recipe 'demand'" in message and "does not look like DEMAND" in message
        assert "DKITCHEN/ch01.wav" in message and "not one scene folder" in message  # the expected layout and the fix
        assert found in found_at_top(message)


def test_demand_a_stray_folder_is_named_not_skipped(tmp_path, speech_dir):
    root = write_demand(tmp_path / "DEMAND", scenes=("DKITCHEN", "TCAR"), seconds=0.3)
    write_noise(root / "MYKITCHEN" / "ch01.wav", 16000, 0.3, 3)
    message = scan_error(tmp_path, speech_dir, {"recipe": "demand", "path": str(root)})
    assert "MYKITCHEN/ch01.wav" in message and "group_pattern" in message


def test_demand_keys_overridable(tmp_path, trees, speech_dir):
    root = str(trees["demand"])
    files = scan(tmp_path, speech_dir, {"recipe": "demand", "path": root, "include": ["*/ch02.wav"]})
    assert set(files) == {f"{scene}/ch02.wav" for scene in DEMAND_SCENES}
    by_category = scan(tmp_path, speech_dir, {"recipe": "demand", "path": root, "noise_type_pattern": r"^([DNOPST])[A-Z]+/",
                                              "group_pattern": r"^([A-Z]+)/ch01\.wav$"})
    assert {f.noise_type for f in by_category.values()} == set("DNOPST")
    assert by_category["TMETRO/ch01.wav"].group_key == "demand:TMETRO"
    one_type = scan(tmp_path, speech_dir, {"recipe": "demand", "path": root, "noise_type_pattern": "", "noise_type": "demand"})
    assert {f.noise_type for f in one_type.values()} == {"demand"}


# ---------------------------------------------------------------- DNS Challenge noise


def test_dns_noise_types_are_the_categories_and_uploads_are_groups(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": str(trees["dns"] / "datasets" / "noise")})
    assert {rel: (f.noise_type, f.group_key) for rel, f in files.items()} == dns_expected()
    assert {f.split_pin for f in files.values()} == {None}
    assert files["fan_Freesound_validated_102686_0.wav"].group_key == files["fan_Freesound_validated_102686_1.wav"].group_key
    shared = [f for rel, f in files.items() if "153524" in rel]  # one upload under munching and mislabeled_munching
    assert {f.group_key for f in shared} == {"dns_noise:153524__eakoontz__eating-chips"} and len({f.noise_type for f in shared}) == 2


def test_dns_freesound_variant_and_fullband_layout(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": str(trees["dns"] / "datasets" / "noise"), "variant": "freesound"})
    assert {rel: (f.noise_type, f.group_key) for rel, f in files.items()} == {n: (t, ns("dns_noise", g)) for n, (t, g) in DNS_FREESOUND.items()}
    fullband = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": str(trees["dns"] / "datasets_fullband" / "noise_fullband")})
    assert {rel: f.noise_type for rel, f in fullband.items()} == {"--9VR_F7CtY.wav": "audioset", "fan_Freesound_validated_102686_0.wav": "fan",
                                                                  "door_Freesound_validated_96737_0.wav": "door"}


def test_dns_root_selects_the_noise_clips_only(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": str(trees["dns"] / "datasets")})
    assert set(files) == {f"noise/{name}" for name in dns_expected()}  # not clean/read_speech/book_..._reader_....wav
    assert {f.noise_type for f in files.values()} == {t for t, _ in dns_expected().values()}


def test_dns_wrong_roots(tmp_path, trees, speech_dir):
    for path, found in ((trees["dns"] / "datasets" / "clean", "read_speech/"), (trees["demand"], "DKITCHEN/")):
        message = scan_error(tmp_path, speech_dir, {"recipe": "dns_noise", "path": str(path)})
        assert "recipe 'dns_noise'" in message and "does not look like DNS Challenge noise" in message
        assert "door_Freesound_validated_96737_0.wav" in message and found in found_at_top(message)


def test_dns_keys_overridable(tmp_path, trees, speech_dir):
    root = str(trees["dns"] / "datasets" / "noise")
    one_type = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": root, "labels": "", "noise_type": "dns"})
    assert {f.noise_type for f in one_type.values()} == {"dns"} and len(one_type) == len(dns_expected())
    fans = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": root, "include": ["fan_*.wav"]})
    assert {f.noise_type for f in fans.values()} == {"fan"} and len(fans) == 5
    per_file = scan(tmp_path, speech_dir, {"recipe": "dns_noise", "path": root, "group_pattern": r"^(.+)\.wav$"})
    assert all(f.group_key == ns("dns_noise", rel[:-4]) for rel, f in per_file.items())


# ---------------------------------------------------------------- WHAM! noise


def wham_relative() -> dict[str, tuple[str, str]]:
    """relative path -> (official split, location) of the 16 kHz tree."""
    split = {"tr": "train", "cv": "valid", "tt": "test"}
    return {f"{folder}/{u}": (split[folder], loc) for folder, clips in WHAM_FILES.items() for u, loc, _ in clips}


def test_wham_folders_pin_official_splits_and_locations_are_groups(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "wham_noise", "path": str(trees["wham"])})
    assert {rel: (f.split_pin, f.group_key) for rel, f in files.items()} == \
        {rel: (split, ns("wham_noise", f"location {loc}")) for rel, (split, loc) in wham_relative().items()}
    assert {f.noise_type for f in files.values()} == {"urban_ambience"}
    group_pins(pins_of(files))  # no group pinned to two splits
    unpinned = scan(tmp_path, speech_dir, {"recipe": "wham_noise", "path": str(trees["wham"]), "official_splits": False})
    assert {f.split_pin for f in unpinned.values()} == {None}


def test_wham_location_spread_over_splits_is_grouped_per_split(tmp_path, speech_dir):
    files = {**WHAM_FILES, "tt": [*WHAM_FILES["tt"], ("052a050b_1.1_443o030q_-1.1.wav", "12", "1299")]}  # location 12 also in tt
    root = write_wham(tmp_path / "wham_noise", files)
    found = scan(tmp_path, speech_dir, {"recipe": "wham_noise", "path": str(root)})
    assert found["tr/40na010x_1.9857_01xo031a_-1.9857.wav"].group_key == "wham_noise:location 12 [train]"
    assert found["tt/052a050b_1.1_443o030q_-1.1.wav"].group_key == "wham_noise:location 12 [test]"
    assert found["tt/050a050a_1.7783_442o030z_-1.7783.wav"].group_key == "wham_noise:location 30"
    group_pins(pins_of(found))


def test_wham_without_metadata_keeps_folder_splits(tmp_path, speech_dir):
    root = write_wham(tmp_path / "wham_noise", metadata=False)
    files = scan(tmp_path, speech_dir, {"recipe": "wham_noise", "path": str(root)})
    assert {rel: f.split_pin for rel, f in files.items()} == {rel: split for rel, (split, _) in wham_relative().items()}
    assert all(f.group_key == ns("wham_noise", rel) for rel, f in files.items())


def test_wham_high_res_splits_from_its_metadata(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "wham_noise", "path": str(trees["wham48"])})
    assert {rel: (f.split_pin, f.group_key) for rel, f in files.items()} == \
        {f"audio/{name}": (split.lower(), ns("wham_noise", f"location {loc}")) for name, split, loc in WHAM_HIGH_RES}


def test_wham_wrong_roots(tmp_path, trees, speech_dir):
    for path, found in ((trees["wham"] / "tr", "40na010x"), (trees["wham"].parent, "wham_noise/")):
        message = scan_error(tmp_path, speech_dir, {"recipe": "wham_noise", "path": str(path)})
        assert "recipe 'wham_noise'" in message and "does not look like WHAM! noise" in message
        assert "metadata/noise_meta_tr.csv" in message and "not tr/ itself" in message and found in found_at_top(message)


# ---------------------------------------------------------------- FSD50K


def test_fsd50k_official_splits_first_label_and_uploader_groups(tmp_path, trees, speech_dir):
    files = scan(tmp_path, speech_dir, {"recipe": "fsd50k", "path": str(trees["fsd50k"])})
    split = {"train": "train", "val": "valid"}
    expected = {f"FSD50K.dev_audio/{f}.wav": (labels.split(",")[0], split[s], uploader) for f, (labels, _, s, uploader) in FSD50K_DEV.items()}
    expected |= {f"FSD50K.eval_audio/{f}.wav": (labels.split(",")[0], "test", uploader) for f, (labels, _, uploader) in FSD50K_EVAL.items()}
    got = {rel: (f.noise_type, f.split_pin, f.group_key) for rel, f in files.items()}
    assert set(got) == set(expected)
    for rel, (noise_type, pin, uploader) in expected.items():
        assert got[rel][:2] == (noise_type, pin)
        assert got[rel][2] == ns("fsd50k", f"uploader {uploader}")
    # Kyster's clips are all in val: one group; casualsamples' two train clips: one group
    assert files["FSD50K.dev_audio/345111.wav"].group_key == files["FSD50K.dev_audio/160826.wav"].group_key == "fsd50k:uploader Kyster"
    assert files["FSD50K.dev_audio/64760.wav"].group_key == files["FSD50K.dev_audio/16399.wav"].group_key
    assert {f.noise_type for f in files.values()} == {"Electric_guitar", "Hum", "Rain"}
    group_pins(pins_of(files))


def test_fsd50k_uploader_in_train_and_val_is_grouped_per_split(tmp_path, speech_dir):
    dev = {**FSD50K_DEV, "99999": (*RAIN, "train", "Kyster")}  # Kyster now in train and val
    root = write_fsd50k(tmp_path / "FSD50K", dev=dev)
    files = scan(tmp_path, speech_dir, {"recipe": "fsd50k", "path": str(root)})
    assert files["FSD50K.dev_audio/99999.wav"].group_key == "fsd50k:uploader Kyster [train]"
    assert files["FSD50K.dev_audio/345111.wav"].group_key == "fsd50k:uploader Kyster [valid]"
    group_pins(pins_of(files))


def test_fsd50k_without_metadata_each_clip_is_a_group_and_ground_truth_is_required(tmp_path, speech_dir):
    root = write_fsd50k(tmp_path / "FSD50K", metadata=False)
    files = scan(tmp_path, speech_dir, {"recipe": "fsd50k", "path": str(root)})
    assert all(f.group_key == ns("fsd50k", rel) for rel, f in files.items()) and len(files) == len(FSD50K_DEV) + len(FSD50K_EVAL)
    shutil.rmtree(root / "FSD50K.ground_truth")
    message = scan_error(tmp_path, speech_dir, {"recipe": "fsd50k", "path": str(root)})
    assert "dev.csv does not exist" in message and "FSD50K.ground_truth.zip" in message
    bare = scan(tmp_path, speech_dir, {"recipe": "fsd50k", "path": str(root), "labels": ""})
    assert {f.noise_type for f in bare.values()} == {"fsd50k_unlabelled"} and {f.split_pin for f in bare.values()} == {None}


def test_fsd50k_overrides_and_wrong_roots(tmp_path, trees, speech_dir):
    root = str(trees["fsd50k"])
    dev_only = scan(tmp_path, speech_dir, {"recipe": "fsd50k", "path": root, "include": ["FSD50K.dev_audio/*.wav"], "official_splits": False})
    assert len(dev_only) == len(FSD50K_DEV) and {f.split_pin for f in dev_only.values()} == {None}
    assert dev_only["FSD50K.dev_audio/21914.wav"].noise_type == "Hum"
    for path, found in ((trees["fsd50k"] / "FSD50K.dev_audio", "64760.wav"), (trees["dns"] / "datasets" / "noise", "--9VR_F7CtY.wav")):
        message = scan_error(tmp_path, speech_dir, {"recipe": "fsd50k", "path": str(path)})
        assert "recipe 'fsd50k'" in message and "FSD50K.ground_truth/dev.csv" in message and found in found_at_top(message)


# ---------------------------------------------------------------- end to end (slow)


def build_and_audit(tmp_path: Path, speech_dir: Path, noise: dict):
    """A small real build with the default fractions (0.8 / 0.1 / 0.1) and 1 s clips, then the audit."""
    table = {"seed": 3, "audio": {"clip_duration_s": 1.0}, "splits": {"examples": {"train": 6, "valid": 3, "test": 3}},
             "shards": {"examples_per_shard": 6}, "dask": {"workers": 1},
             "corpora": [{"name": "speech", "type": "speech", "path": str(speech_dir), "group_pattern": "^([^/]+)/"}, noise]}
    config = parse_config(table, WHERE, tmp_path)
    out = tmp_path / "out"
    build(config, str(out), workers=1, progress=False)
    sources = pq.read_table(out / "sources.parquet").to_pylist()
    usable = [row for row in sources if not row["error"] and not row["excluded_reason"]]
    return config, pq.read_table(out / "examples.parquet").to_pylist(), sources, split_sources(usable, config), audit(str(out))


def noise_group_splits(sources: list[dict], split_of: dict[str, str]) -> dict[str, set]:
    splits: dict[str, set] = {}
    for row in sources:
        if row["source_type"] == "noise" and row["source_id"] in split_of:
            splits.setdefault(row["group_key"], set()).add(split_of[row["source_id"]])
    return splits


@pytest.mark.slow
def test_demand_build_with_default_fractions_keeps_scenes_whole(tmp_path, trees, speech_dir):
    _, examples, sources, split_of, result = build_and_audit(tmp_path, speech_dir, {"recipe": "demand", "path": str(trees["demand"])})
    assert not result.failed and not result.leaks
    noise = [row for row in sources if row["source_type"] == "noise"]
    assert len(noise) == 18 and not any(row["error"] for row in noise)
    assert {Path(row["path"]).parent.name for row in noise if row["excluded_reason"]} == set(DEMAND_BUSY)  # non-stationary
    assert all(row["excluded_reason"].startswith("non-stationary") for row in noise if row["excluded_reason"])
    assert all(row["group_key"] == ns("demand", row["noise_type"]) and row["noise_type"] == Path(row["path"]).parent.name for row in noise)
    # the 15 usable scenes, pooled and split whole
    scenes = {key.removeprefix("demand:"): splits for key, splits in noise_group_splits(sources, split_of).items()}
    assert set(scenes) == set(DEMAND_SCENES) - set(DEMAND_BUSY) and all(len(splits) == 1 for splits in scenes.values())
    per_split = {split: sum(1 for s in scenes.values() if s == {split}) for split in ("train", "valid", "test")}
    assert per_split["train"] >= 10 and per_split["valid"] >= 1 and per_split["test"] >= 1  # about 0.8 / 0.1 / 0.1 of the scenes
    assert {row["split"] for row in examples} == {"train", "valid", "test"} and len(examples) == 12
    for row in examples:
        scene = Path(row["noise_path"]).parent.name
        assert row["noise_type"] == scene and scenes[scene] == {row["split"]} and row["noise_path"].endswith("/ch01.wav")


@pytest.mark.slow
def test_dns_build_with_default_fractions_types_from_names(tmp_path, trees, speech_dir):
    noise = {"recipe": "dns_noise", "path": str(trees["dns"] / "datasets" / "noise")}
    _, examples, sources, split_of, result = build_and_audit(tmp_path, speech_dir, noise)
    assert not result.failed and not result.leaks
    rows = {Path(row["path"]).name: row for row in sources if row["source_type"] == "noise"}
    assert {name: (row["noise_type"], row["group_key"]) for name, row in rows.items()} == dns_expected()
    assert {name for name, row in rows.items() if row["excluded_reason"]} == {n for n in rows if n.startswith("door_")}
    assert not any(row["error"] for row in rows.values())
    groups = noise_group_splits(sources, split_of)
    assert all(len(splits) == 1 for splits in groups.values())  # no upload in two splits (fan 102686: two segments, one split)
    assert len({split_of[rows[n]["source_id"]] for n in ("fan_Freesound_validated_102686_0.wav", "fan_Freesound_validated_102686_1.wav")}) == 1
    assert {row["split"] for row in examples} == {"train", "valid", "test"}
    assert "door" not in {row["noise_type"] for row in examples}
    for row in examples:
        assert row["noise_type"] == dns_expected()[Path(row["noise_path"]).name][0]
        assert split_of[row["noise_source_id"]] == row["split"]
