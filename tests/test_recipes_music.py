"""Music recipes (musdb18hq, fma, musan) on small fake trees in each corpus's real layout.

Every tree has the corpus's real folder and file names (MUSDB18 track folders from its published track
list, FMA's <3-digit folder>/<6-digit id>.mp3, MUSAN's <kind>-<source>-<NNNN>.wav), metadata files in
their real formats (FMA's tracks.csv with its two rows of column names and the index-name row; MUSAN's
space-separated ANNOTATIONS) with tiny content, and short generated audio at the native rate and format
(44.1 kHz stereo WAV, 44.1 kHz MP3, 16 kHz WAV). Scanning goes through the real code path
(`parse_config` then `scan_all`); end-to-end builds (slow) cover the MUSDB18-HQ and MUSAN layouts.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from datagen.audit import audit
from datagen.build import build, scan_all
from datagen.config import ConfigError, parse_config
from datagen.plan import group_pins, split_sources
from datagen.probe import probe
from datagen.recipes import RECIPES
from datagen.recipes.describe import describe_recipe
from datagen.recipes.music import MUSDB_ARTISTS_IN_BOTH, MUSDB_STEMS
from datagen.sources import SourceFile

from recipe_trees import found_at_top, scan_config_error, write_appledouble, write_text
from conftest import colored_noise, musiclike, speechlike

WHERE = "test.toml"
MUSIC_RECIPES = ("musdb18hq", "fma", "musan")
HELPERS = ("noise", "clean")  # the helper corpora config_of adds


def write_audio(path: Path, audio: np.ndarray, rate: int, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, **kwargs)


def write_music(path: Path, rate: int, seconds: float, seed: int, channels: int = 2, **kwargs) -> None:
    audio = musiclike(np.random.default_rng(seed), rate, seconds, channels).T
    write_audio(path, audio if channels > 1 else audio[:, 0], rate, **kwargs)


def write_noise(path: Path, rate: int, seconds: float, seed: int, slope: float = -3.0) -> None:
    write_audio(path, colored_noise(np.random.default_rng(seed), rate, seconds, slope), rate, subtype="PCM_16")




# ---------------------------------------------------------------- fake trees in the real layouts

# track folders from the MUSDB18 track list; Skelpolu and Triviul (as "Triviul feat. The Fiend") have tracks in both
MUSDB_TRAIN = {"A Classic Education - NightOwl": "A Classic Education", "Actions - Devil's Words": "Actions",
               "Actions - South Of The Water": "Actions", "ANiMAL - Rockshow": "ANiMAL", "Music Delta - Disco": "Music Delta",
               "Music Delta - Gospel": "Music Delta", "Skelpolu - Human Mistakes": "Skelpolu", "Triviul - Angelsaint": "Triviul",
               "Young Griffo - Pennies": "Young Griffo", "Leaf - Summerghost": "Leaf", "James May - On The Line": "James May",
               "Traffic Experiment - Once More (With Feeling)": "Traffic Experiment"}
MUSDB_TEST = {"Al James - Schoolboy Facination": "Al James", "BKS - Bulldozer": "BKS", "BKS - Too Much": "BKS",
              "Skelpolu - Resurrection": "Skelpolu", "Triviul feat. The Fiend - Widow": "Triviul",
              "The Easton Ellises (Baumi) - SDRNR": "The Easton Ellises", "The Easton Ellises - Falcon 69": "The Easton Ellises",
              "James Elder & Mark M Thompson - The English Actor": "James Elder & Mark M Thompson"}
MUSDB_MOVED = {"Skelpolu - Human Mistakes", "Triviul - Angelsaint"}  # train/ tracks whose artist is in test/


def write_musdb(root: Path, seconds: float = 2.0) -> Path:
    """MUSDB18-HQ as musdb18hq.zip extracts: {train,test}/<Artist - Title>/{mixture,bass,drums,other,vocals}.wav, 44.1 kHz stereo."""
    seed = 0
    for subset, tracks in (("train", MUSDB_TRAIN), ("test", MUSDB_TEST)):
        for track in tracks:
            folder = root / subset / track
            write_music(folder / "mixture.wav", 44100, seconds, seed, subtype="PCM_16")
            for stem in MUSDB_STEMS:  # the stems are only scanned, never probed: short
                write_music(folder / f"{stem}.wav", 44100, 0.2, seed + 1, subtype="PCM_16")
            seed += 2
    return root


# tracks.csv as fma_metadata.zip has it: columns sorted, two header rows (level 0, level 1), then the index-name row
FMA_COLUMNS = (
    [("album", c) for c in ("comments", "date_created", "date_released", "engineer", "favorites", "id", "information", "listens",
                            "producer", "tags", "title", "tracks", "type")]
    + [("artist", c) for c in ("active_year_begin", "active_year_end", "associated_labels", "bio", "comments", "date_created",
                               "favorites", "id", "latitude", "location", "longitude", "members", "name", "related_projects",
                               "tags", "website", "wikipedia_page")]
    + [("set", "split"), ("set", "subset")]
    + [("track", c) for c in ("bit_rate", "comments", "composer", "date_created", "date_recorded", "duration", "favorites",
                              "genre_top", "genres", "genres_all", "information", "interest", "language_code", "license",
                              "listens", "lyricist", "number", "publisher", "tags", "title")])
FMA_TRACKS = {  # track id -> (artist id, artist name, split, subset)
    2: (1, "AWOL", "training", "small"), 3: (1, "AWOL", "training", "medium"), 5: (1, "AWOL", "training", "small"),
    10: (6, "Kurt Vile", "training", "small"), 140: (54, "Alec K. Redfearn & the Eyesores", "validation", "small"),
    141: (54, "Alec K. Redfearn & the Eyesores", "validation", "small"), 148: (60, "Blue Dot Sessions", "test", "small"),
    1039: (412, "Ars Sonor", "test", "small"), 1040: (412, "Ars Sonor", "test", "large"), 20000: (3301, "Chris Zabriskie", "validation", "large"),
}
FMA_SMALL = (2, 5, 10, 140, 141, 148, 1039)
FMA_SPLIT = {"training": "train", "validation": "valid", "test": "test"}


def fma_path(size: str, track: int) -> str:
    tid = f"{track:06d}"
    return f"fma_{size}/{tid[:3]}/{tid}.mp3"


def write_tracks_csv(path: Path, tracks=FMA_TRACKS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([""] + [a for a, _ in FMA_COLUMNS])
        writer.writerow([""] + [b for _, b in FMA_COLUMNS])
        writer.writerow(["track_id"] + [""] * len(FMA_COLUMNS))
        for track, (artist, name, split, subset) in tracks.items():
            values = {("artist", "id"): artist, ("artist", "name"): name, ("set", "split"): split, ("set", "subset"): subset,
                      ("artist", "bio"): f"<p>{name}, a band from somewhere.\nThey play, loudly, \"live\".</p>",
                      ("track", "genres"): "[21]", ("track", "tags"): "['experimental', 'noise']", ("track", "bit_rate"): 320000,
                      ("track", "license"): "Attribution-NonCommercial-ShareAlike 3.0 International", ("track", "title"): f"Track {track}",
                      ("album", "id"): track // 10, ("track", "duration"): 168}
            writer.writerow([track] + [values.get(column, "") for column in FMA_COLUMNS])


def write_fma(root: Path, large: bool = True, metadata: bool = True) -> Path:
    """FMA as the README unpacks it: fma_small/ (and fma_large/) with <3-digit folder>/<id>.mp3, fma_metadata/tracks.csv."""
    sizes = {"small": FMA_SMALL, **({"large": tuple(FMA_TRACKS)} if large else {})}
    for size, tracks in sizes.items():
        for track in tracks:
            write_music(root / fma_path(size, track), 44100, 1.0, track, format="MP3", subtype="MPEG_LAYER_III")
        write_text(root / f"fma_{size}" / "README.txt", "This .zip archive is part of the FMA, a dataset for music analysis.\n")
        write_text(root / f"fma_{size}" / "checksums", "".join(f"{'0' * 40}  {fma_path(size, t)[len(size) + 5:]}\n" for t in tracks))
    if metadata:
        write_tracks_csv(root / "fma_metadata" / "tracks.csv")
        write_text(root / "fma_metadata" / "genres.csv", "genre_id,#tracks,parent,title,top_level\n21,8389,0,Hip-Hop,21\n")
    return root


# MUSAN: music ANNOTATIONS '<file> <genres> <Y|N> <Musician>' (real lines; some end in a space), librivox '<file> <m|f> <language>'
MUSAN_MUSIC = {  # relative path -> musician (None: the file is not in its folder's ANNOTATIONS)
    "music/fma/music-fma-0000.wav": "Airglow", "music/fma/music-fma-0001.wav": "Airglow",
    "music/fma/music-fma-0048.wav": "Jahzzar", "music/fma/music-fma-0049.wav": "Jahzzar",
    "music/fma-western-art/music-fma-wa-0000.wav": "Kevin_MacLeod", "music/fma-western-art/music-fma-wa-0001.wav": "John_Harrison",
    "music/hd-classical/music-hd-0000.wav": "John_Harrison", "music/rfm/music-rfm-0000.wav": "Kevin_MacLeod",
    "music/jamendo/music-jamendo-0000.wav": "Derek_Clegg", "music/jamendo/music-jamendo-0001.wav": "derek_clegg",
    "music/jamendo/music-jamendo-0002.wav": None,
}
MUSAN_GENRES = {"fma": "electronica N", "fma-western-art": "classical N", "hd-classical": "classical N", "rfm": "classical N",
                "jamendo": "pop,rock Y"}
MUSAN_SPEECH = {"speech/librivox/speech-librivox-0000.wav": "m english", "speech/librivox/speech-librivox-0001.wav": "f french",
                "speech/librivox/speech-librivox-0002.wav": "f english", "speech/us-gov/speech-us-gov-0000.wav": None,
                "speech/us-gov/speech-us-gov-0001.wav": None}
MUSAN_NOISE = [f"noise/free-sound/noise-free-sound-{i:04d}.wav" for i in range(6)] + \
              [f"noise/sound-bible/noise-sound-bible-{i:04d}.wav" for i in range(4)]
MUSAN_BACKGROUND = {"noise/free-sound/noise-free-sound-0001.wav", "noise/free-sound/noise-free-sound-0004.wav"}


def write_musan(root: Path, seconds: float = 2.0, music_annotations: bool = True) -> Path:
    """musan/ as musan.tar.gz extracts: {music,speech,noise}/<source>/<kind>-<source>-NNNN.wav (16 kHz mono), README,
    ANNOTATIONS and LICENSE files (no ANNOTATIONS in speech/us-gov)."""
    write_text(root / "README", "The goal of this corpus is to provide data for music/speech discrimination,\n")
    lines: dict[str, list[str]] = {}
    for i, (relative, artist) in enumerate(MUSAN_MUSIC.items()):
        write_music(root / relative, 16000, seconds, 300 + i, channels=1, subtype="PCM_16")
        folder = relative.split("/")[1]
        if artist is not None:
            lines.setdefault(folder, []).append(f"{Path(relative).stem} {MUSAN_GENRES[folder]} {artist}" + (" " if i % 3 == 0 else ""))
    for folder, folder_lines in lines.items():
        write_text(root / "music" / folder / "README", f"This directory contains music from {folder}.\n")
        write_text(root / "music" / folder / "LICENSE", "music-x-0000 Title: A piece; Artist: someone; CC BY 3.0\n")
        if music_annotations:
            write_text(root / "music" / folder / "ANNOTATIONS", "\n".join(folder_lines) + "\n")
    for i, (relative, annotation) in enumerate(MUSAN_SPEECH.items()):
        write_audio(root / relative, speechlike(np.random.default_rng(400 + i), 16000, seconds), 16000, subtype="PCM_16")
    write_text(root / "speech" / "librivox" / "ANNOTATIONS",
               "".join(f"{Path(rel).stem} {a}\n" for rel, a in MUSAN_SPEECH.items() if a is not None))
    for i, relative in enumerate(MUSAN_NOISE):
        write_noise(root / relative, 16000, seconds, 500 + i, slope=-1.5 * (i % 3))
    write_text(root / "noise" / "free-sound" / "ANNOTATIONS",
               "Background noises:\n" + "".join(f"{Path(rel).stem}\n" for rel in sorted(MUSAN_BACKGROUND)))
    write_text(root / "noise" / "sound-bible" / "LICENSE", "noise-sound-bible-0000\nTitle: Rain\n===\n")
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("corpora")
    return {"musdb": write_musdb(base / "musdb18hq"), "fma": write_fma(base / "fma"), "musan": write_musan(base / "musan")}


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory) -> Path:
    """Four stationary noises: the helper noise corpus (and, only scanned, a helper clean corpus) every config needs."""
    root = tmp_path_factory.mktemp("noise")
    for i, kind in enumerate(("pink", "pink", "brown", "brown")):
        write_noise(root / kind / f"n{i}.wav", 48000, 2.0, 900 + i, slope=-3.0 if kind == "pink" else -6.0)
    return root


def config_of(tmp_path: Path, noise_dir: Path, *corpora: dict, **extra):
    table = {"splits": {"examples": {"train": 2, "valid": 1, "test": 1}}, **extra,
             "corpora": [*corpora, {"name": "noise", "type": "noise", "path": str(noise_dir), "group_pattern": "^([^/]+/[^/]+)$"},
                         {"name": "clean", "type": "music", "path": str(noise_dir), "group_pattern": "^([^/]+/[^/]+)$"}]}
    return parse_config(table, WHERE, tmp_path)


def scan(tmp_path: Path, noise_dir: Path, *corpora: dict, **extra) -> dict[str, object]:
    """relative path -> SourceFile of the files the recipe corpora select (not the helper corpora)."""
    return {f.relative_path: f for f in scan_all(config_of(tmp_path, noise_dir, *corpora, **extra), WHERE) if f.corpus not in HELPERS}


def scan_error(tmp_path: Path, noise_dir: Path, corpus: dict) -> str:
    return scan_config_error(config_of(tmp_path, noise_dir, corpus), WHERE)



def rows_of(files: dict) -> list[dict]:
    """Rows as the planner sees them (2 s each)."""
    return [{"source_id": f.source_id, "source_type": f.source_type, "group_key": f.group_key, "split_pin": f.split_pin, "path": f.path,
             "corpus": f.corpus, "noise_type": f.noise_type, "duration_s": 2.0} for f in files.values()]


# ---------------------------------------------------------------- registry


def test_music_recipes_are_registered_with_their_facts():
    for name in MUSIC_RECIPES:
        recipe = RECIPES[name]
        for fact in (recipe.licence, recipe.citation, recipe.url, recipe.native_rate, recipe.bandwidth, recipe.hours, recipe.layout, recipe.notes):
            assert fact.strip()
        assert recipe.markers and f'recipe = "{name}"' in describe_recipe(recipe)
        for variant in recipe.variants:
            parts = recipe.parts(variant)
            assert len({part.type for part in parts}) == len(parts) and all(part.include for part in parts)
            assert len(parts) == 1 or all(part.suffix for part in parts)
            for part in parts:
                for pattern in (part.group_pattern, part.noise_type_pattern, *part.split_patterns.values()):
                    assert not pattern or "{" not in pattern  # labels.py formats patterns into messages
                assert not part.group_pattern or re.compile(part.group_pattern).groups >= 1
    assert RECIPES["musdb18hq"].types == ("music",) and RECIPES["fma"].types == ("music",)
    assert RECIPES["musan"].types == ("music", "speech", "noise")
    assert RECIPES["musdb18hq"].default_variant == "mixture" and RECIPES["musan"].default_variant == "all"
    assert RECIPES["fma"].default_variant == "any"
    assert RECIPES["musdb18hq"].native_rate.startswith("44.1 kHz") and RECIPES["musan"].native_rate.startswith("16 kHz")
    assert "16" in RECIPES["fma"].bandwidth and "8 kHz" in RECIPES["musan"].bandwidth
    assert sum(len(t) for t in MUSDB_ARTISTS_IN_BOTH.values()) == 6


# ---------------------------------------------------------------- MUSDB18-HQ


def test_musdb_default_is_the_mixtures_grouped_by_artist_with_test_pinned(tmp_path, trees, noise_dir):
    write_appledouble(trees["musdb"] / "train" / "Leaf - Summerghost" / "._mixture.wav")
    try:
        files = scan(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": str(trees["musdb"])})
    finally:
        (trees["musdb"] / "train" / "Leaf - Summerghost" / "._mixture.wav").unlink()
    expected = {f"train/{t}/mixture.wav": (a, None) for t, a in MUSDB_TRAIN.items()}
    expected |= {f"test/{t}/mixture.wav": (a, "test") for t, a in MUSDB_TEST.items()}
    assert {rel: (f.group_key, f.split_pin) for rel, f in files.items()} == \
        {rel: (f"musdb18hq:{artist}", pin) for rel, (artist, pin) in expected.items()}
    assert {f.source_type for f in files.values()} == {"music"} and {f.corpus for f in files.values()} == {"musdb18hq"}
    # one artist, one group: the featured-artist track and the parenthesised credit join their artist
    assert files["test/Triviul feat. The Fiend - Widow/mixture.wav"].group_key == files["train/Triviul - Angelsaint/mixture.wav"].group_key
    assert files["test/The Easton Ellises (Baumi) - SDRNR/mixture.wav"].group_key == "musdb18hq:The Easton Ellises"
    group_pins(rows_of(files))  # no artist pinned to two splits


def test_musdb_test_tracks_stay_in_test_and_artists_in_both_follow_them(tmp_path, trees, noise_dir):
    fractions = {"train": 0.9, "valid": 0.1, "test": 0.0}
    config = config_of(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": str(trees["musdb"])}, splits={"fractions": fractions,
                                                                                                           "examples": {"train": 2, "valid": 1, "test": 1}})
    files = {f.relative_path: f for f in scan_all(config, WHERE) if f.corpus == "musdb18hq"}
    split_of = split_sources(rows_of(files), config)
    split = {rel: split_of[f.source_id] for rel, f in files.items()}
    assert {rel for rel, s in split.items() if s == "test"} == {f"test/{t}/mixture.wav" for t in MUSDB_TEST} | \
        {f"train/{t}/mixture.wav" for t in MUSDB_MOVED}
    assert {s for rel, s in split.items() if rel.startswith("train/") and rel.split("/")[1] not in MUSDB_MOVED} == {"train", "valid"}
    by_artist: dict[str, set] = {}
    for rel, f in files.items():
        by_artist.setdefault(f.group_key, set()).add(split[rel])
    assert all(len(s) == 1 for s in by_artist.values())


def test_musdb_stems_variant_gives_the_four_stems_in_their_artists_group(tmp_path, trees, noise_dir):
    files = scan(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": str(trees["musdb"]), "variant": "stems"})
    tracks = {f"train/{t}": a for t, a in MUSDB_TRAIN.items()} | {f"test/{t}": a for t, a in MUSDB_TEST.items()}
    assert set(files) == {f"{track}/{stem}.wav" for track in tracks for stem in MUSDB_STEMS}
    for rel, f in files.items():
        track = rel.rsplit("/", 1)[0]
        assert f.group_key == f"musdb18hq:{tracks[track]}" and f.split_pin == ("test" if rel.startswith("test/") else None)
    assert not any(rel.endswith("mixture.wav") for rel in files)


def test_musdb_wrong_roots(tmp_path, trees, noise_dir):
    stems_mp4 = tmp_path / "musdb18"  # MUSDB18 as musdb18.zip has it: one .stem.mp4 per track, not read
    for subset, track in (("train", "A Classic Education - NightOwl"), ("test", "Al James - Schoolboy Facination")):
        (stems_mp4 / subset).mkdir(parents=True)
        (stems_mp4 / subset / f"{track}.stem.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    write_music(stems_mp4 / "train" / "preview.wav", 44100, 0.2, 1)
    cases = ((trees["musdb"] / "train", "A Classic Education - NightOwl/"), (trees["musdb"] / "test" / "BKS - Bulldozer", "bass.wav"),
             (stems_mp4, "train/"), (trees["musan"], "music/"))
    for path, found in cases:
        message = scan_error(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": str(path)})
        assert "recipe 'musdb18hq'" in message and "does not look like MUSDB18-HQ" in message
        assert "train/A Classic Education - NightOwl/mixture.wav" in message and "musdbconvert" in message
        assert found in found_at_top(message)


def test_musdb_keys_overridable(tmp_path, trees, noise_dir):
    root = str(trees["musdb"])
    per_track = scan(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": root, "group_pattern": "^(?:train|test)/([^/]+)/"})
    assert all(f.group_key == f"musdb18hq:{rel.split('/')[1]}" for rel, f in per_track.items())
    moved_out = scan(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": root,
                                           "exclude": [f"train/{t}/*" for tracks in MUSDB_ARTISTS_IN_BOTH.values() for t in tracks]})
    assert set(moved_out) == {f"{s}/{t}/mixture.wav" for s, ts in (("train", MUSDB_TRAIN), ("test", MUSDB_TEST)) for t in ts} - \
        {f"train/{t}/mixture.wav" for t in MUSDB_MOVED}
    unpinned = scan(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": root, "official_splits": False, "include": ["*/vocals.wav"]})
    assert {f.split_pin for f in unpinned.values()} == {None} and all(rel.endswith("/vocals.wav") for rel in unpinned)
    with pytest.raises(ConfigError) as info:  # the official test split needs a 'test' split, a share of 0 being enough
        scan_all(config_of(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": root},
                           splits={"fractions": {"train": 0.9, "valid": 0.1}, "examples": {"train": 2, "valid": 1}}), WHERE)
    assert "test" in str(info.value) and "splits.fractions" in str(info.value)


def test_musdb_a_folder_not_named_artist_title_is_named_not_skipped(tmp_path, noise_dir):
    root = write_musdb(tmp_path / "musdb18hq", seconds=0.2)
    write_music(root / "train" / "untitled" / "mixture.wav", 44100, 0.2, 9)
    message = scan_error(tmp_path, noise_dir, {"recipe": "musdb18hq", "path": str(root)})
    assert "train/untitled/mixture.wav" in message and "group_pattern" in message


# ---------------------------------------------------------------- FMA


def fma_expected(size: str, tracks) -> dict[str, tuple[str, str]]:
    return {fma_path(size, t): (f"fma:artist {FMA_TRACKS[t][0]}", FMA_SPLIT[FMA_TRACKS[t][2]]) for t in tracks}


def test_fma_groups_are_artist_ids_and_the_official_split_is_pinned(tmp_path, trees, noise_dir):
    small = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(trees["fma"]), "variant": "small"})
    assert {rel: (f.group_key, f.split_pin) for rel, f in small.items()} == fma_expected("small", FMA_SMALL)
    assert small["fma_small/000/000002.mp3"].group_key == small["fma_small/000/000005.mp3"].group_key  # AWOL
    assert {f.source_type for f in small.values()} == {"music"}
    group_pins(rows_of(small))
    large = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(trees["fma"]), "variant": "large"})
    assert {rel: (f.group_key, f.split_pin) for rel, f in large.items()} == fma_expected("large", FMA_TRACKS)
    both = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(trees["fma"])})  # variant any: every size folder
    assert set(both) == set(fma_expected("small", FMA_SMALL)) | set(fma_expected("large", FMA_TRACKS))
    assert both["fma_small/000/000002.mp3"].group_key == both["fma_large/000/000002.mp3"].group_key  # a track twice: one group


def test_fma_mp3_probes_at_44_1_khz(trees):
    relative = fma_path("small", 2)
    source = SourceFile(str(trees["fma"] / relative), relative, "fma", "music", None, "fma:artist 1", False, 1, 1)
    row = probe(source, 0.1)
    assert row.get("error") is None and row["sample_rate"] == 44100 and row["channels"] == 2 and row["duration_s"] == pytest.approx(1.0)


def test_fma_artist_spread_over_splits_is_grouped_per_split(tmp_path, noise_dir):
    root = write_fma(tmp_path / "fma", large=False)
    write_tracks_csv(root / "fma_metadata" / "tracks.csv", {**FMA_TRACKS, 5: (1, "AWOL", "test", "small")})
    files = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(root)})
    assert files["fma_small/000/000002.mp3"].group_key == "fma:artist 1 [train]"
    assert files["fma_small/000/000005.mp3"].group_key == "fma:artist 1 [test]" and files["fma_small/000/000005.mp3"].split_pin == "test"
    group_pins(rows_of(files))


def test_fma_metadata_missing_or_foreign_is_a_clear_error(tmp_path, noise_dir):
    root = write_fma(tmp_path / "fma", large=False, metadata=False)
    message = scan_error(tmp_path, noise_dir, {"recipe": "fma", "path": str(root)})
    assert "fma_metadata/tracks.csv does not exist" in message and "fma_metadata.zip" in message
    bare = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(root), "labels": "", "official_splits": False})
    assert {rel: f.group_key for rel, f in bare.items()} == {fma_path("small", t): f"fma:{fma_path('small', t)}" for t in FMA_SMALL}
    assert {f.split_pin for f in bare.values()} == {None}
    write_text(root / "fma_metadata" / "tracks.csv", "track_id,artist_name,genre\n2,AWOL,Hip-Hop\n")
    message = scan_error(tmp_path, noise_dir, {"recipe": "fma", "path": str(root)})
    assert "('artist', 'id')" in message and "not FMA's tracks.csv" in message


def test_fma_wrong_roots_and_overrides(tmp_path, trees, noise_dir):
    for path, found in ((trees["fma"] / "fma_small", "000/"), (trees["musdb"], "test/")):
        message = scan_error(tmp_path, noise_dir, {"recipe": "fma", "path": str(path)})
        assert "recipe 'fma'" in message and "does not look like FMA" in message
        assert "fma_small/000/000002.mp3" in message and "fma_metadata/tracks.csv" in message and found in found_at_top(message)
    one_folder = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(trees["fma"]), "include": ["fma_small/001/*.mp3"]})
    assert set(one_folder) == {"fma_small/001/001039.mp3"}
    unpinned = scan(tmp_path, noise_dir, {"recipe": "fma", "path": str(trees["fma"]), "variant": "small", "official_splits": False})
    assert {f.split_pin for f in unpinned.values()} == {None} and unpinned["fma_small/000/000010.mp3"].group_key == "fma:artist 6"


# ---------------------------------------------------------------- MUSAN


def test_musan_expands_to_music_speech_and_noise(tmp_path, trees, noise_dir):
    config = config_of(tmp_path, noise_dir, {"recipe": "musan", "path": str(trees["musan"])})
    assert [(c.name, c.type) for c in config.corpora][:3] == [("musan_music", "music"), ("musan_speech", "speech"), ("musan_noise", "noise")]
    files = {f.relative_path: f for f in scan_all(config, WHERE) if f.corpus.startswith("musan")}
    assert set(files) == set(MUSAN_MUSIC) | set(MUSAN_SPEECH) | set(MUSAN_NOISE)  # no README, LICENSE or ANNOTATIONS
    assert {rel: f.corpus for rel, f in files.items()} == {**{r: "musan_music" for r in MUSAN_MUSIC}, **{r: "musan_speech" for r in MUSAN_SPEECH},
                                                          **{r: "musan_noise" for r in MUSAN_NOISE}}
    music = {rel: f.group_key for rel, f in files.items() if f.source_type == "music"}
    expected = {rel: f"musan:{artist}" if artist else f"musan:{rel}" for rel, artist in MUSAN_MUSIC.items()}
    expected["music/jamendo/music-jamendo-0001.wav"] = "musan:Derek_Clegg"  # spelled in lower case: one musician
    assert music == expected
    # one musician across source folders is one group
    assert music["music/fma-western-art/music-fma-wa-0000.wav"] == music["music/rfm/music-rfm-0000.wav"] == "musan:Kevin_MacLeod"
    assert music["music/fma-western-art/music-fma-wa-0001.wav"] == music["music/hd-classical/music-hd-0000.wav"]
    assert {rel: f.group_key for rel, f in files.items() if f.source_type == "speech"} == {rel: f"musan:{rel}" for rel in MUSAN_SPEECH}
    noise = {rel: f for rel, f in files.items() if f.source_type == "noise"}
    assert {rel: f.noise_type for rel, f in noise.items()} == {rel: "background" if rel in MUSAN_BACKGROUND else "musan" for rel in MUSAN_NOISE}
    assert not {f.noise_type for f in noise.values()} & {"free-sound", "sound-bible"}
    assert {rel: f.group_key for rel, f in noise.items()} == {rel: f"musan:{rel}" for rel in MUSAN_NOISE}
    assert {f.split_pin for f in files.values()} == {None}


def test_musan_variants_select_one_corpus(tmp_path, trees, noise_dir):
    for variant, kind, expected in (("music", "music", MUSAN_MUSIC), ("speech", "speech", MUSAN_SPEECH), ("noise", "noise", MUSAN_NOISE)):
        config = config_of(tmp_path, noise_dir, {"recipe": "musan", "path": str(trees["musan"]), "variant": variant})
        assert [(c.name, c.type) for c in config.corpora if c.recipe] == [("musan", kind)]
        files = {f.relative_path: f for f in scan_all(config, WHERE) if f.corpus == "musan"}
        assert set(files) == set(expected) and {f.source_type for f in files.values()} == {kind}
    named = config_of(tmp_path, noise_dir, {"recipe": "musan", "path": str(trees["musan"]), "name": "m"})
    assert [c.name for c in named.corpora if c.recipe] == ["m_music", "m_speech", "m_noise"]


def test_musan_wrong_roots_and_missing_annotations(tmp_path, trees, noise_dir):
    for path, found in ((trees["musan"] / "music", "fma/"), (trees["musan"] / "noise" / "free-sound", "noise-free-sound-0000.wav"),
                        (trees["musdb"], "train/")):
        message = scan_error(tmp_path, noise_dir, {"recipe": "musan", "path": str(path)})
        assert "recipe 'musan'" in message and "does not look like MUSAN" in message
        assert "music/fma/music-fma-0000.wav" in message and "not one of them" in message and found in found_at_top(message)
    root = write_musan(tmp_path / "musan", seconds=0.2, music_annotations=False)
    message = scan_error(tmp_path, noise_dir, {"recipe": "musan", "path": str(root), "variant": "music"})
    assert "music/fma/ANNOTATIONS does not exist" in message and "labels = \"\"" in message
    bare = scan(tmp_path, noise_dir, {"recipe": "musan", "path": str(root), "variant": "music", "labels": ""})
    assert all(f.group_key == f"musan:{rel}" for rel, f in bare.items()) and len(bare) == len(MUSAN_MUSIC)


def test_musan_keys_overridable(tmp_path, trees, noise_dir):
    root = str(trees["musan"])
    by_site = scan(tmp_path, noise_dir, {"recipe": "musan", "path": root, "variant": "noise", "labels": "", "noise_type": "from_folder"})
    assert {f.noise_type for f in by_site.values()} == {"free-sound", "sound-bible"}
    one_type = scan(tmp_path, noise_dir, {"recipe": "musan", "path": root, "variant": "noise", "noise_type": "musan_noise"})
    assert {rel: f.noise_type for rel, f in one_type.items() if rel not in MUSAN_BACKGROUND} == \
        {rel: "musan_noise" for rel in MUSAN_NOISE if rel not in MUSAN_BACKGROUND}
    by_folder = scan(tmp_path, noise_dir, {"recipe": "musan", "path": root, "variant": "music", "group_pattern": r"^music/([^/]+)/"})
    assert {f.group_key for f in by_folder.values()} == {f"musan:{folder}" for folder in MUSAN_GENRES}
    librivox = scan(tmp_path, noise_dir, {"recipe": "musan", "path": root, "variant": "speech", "include": ["speech/librivox/*.wav"]})
    assert set(librivox) == {rel for rel in MUSAN_SPEECH if "librivox" in rel}


# ---------------------------------------------------------------- end to end (slow)


def build_and_audit(tmp_path: Path, corpora: list[dict], fractions: dict | None = None):
    """A small real build with 1 s clips and one worker, then the audit."""
    splits = {"examples": {"train": 6, "valid": 3, "test": 3}, **({"fractions": fractions} if fractions else {})}
    table = {"seed": 5, "audio": {"clip_duration_s": 1.0}, "splits": splits, "shards": {"examples_per_shard": 6}, "dask": {"workers": 1},
             "corpora": corpora}
    config = parse_config(table, WHERE, tmp_path)
    out = tmp_path / "out"
    build(config, str(out), workers=1, progress=False)
    sources = pq.read_table(out / "sources.parquet").to_pylist()
    usable = [row for row in sources if not row["error"] and not row["excluded_reason"]]
    return pq.read_table(out / "examples.parquet").to_pylist(), sources, split_sources(usable, config), audit(str(out))


def group_splits(sources: list[dict], split_of: dict[str, str], source_type: str) -> dict[str, set]:
    splits: dict[str, set] = {}
    for row in sources:
        if row["source_type"] == source_type and row["source_id"] in split_of:
            splits.setdefault(row["group_key"], set()).add(split_of[row["source_id"]])
    return splits


def relative(row_path: str, root: Path) -> str:
    return Path(row_path).relative_to(root).as_posix()


@pytest.mark.slow
def test_musdb_build_keeps_the_official_test_set_as_test(tmp_path, trees, noise_dir):
    test_noise = tmp_path / "test_noise"  # the generated noise is split 0.9 / 0.1: the test split's noise is a corpus of its own
    for i in range(2):
        write_noise(test_noise / f"t{i}.wav", 48000, 2.0, 950 + i)
    corpora = [{"recipe": "musdb18hq", "path": str(trees["musdb"])},
               {"name": "gen_noise", "type": "noise", "generator": "noise", "count": 2, "duration_s": 3.0},
               {"name": "test_noise", "type": "noise", "path": str(test_noise), "split": "test", "noise_type": "pink"}]
    examples, sources, split_of, result = build_and_audit(tmp_path, corpora, {"train": 0.9, "valid": 0.1, "test": 0.0})
    assert not result.failed and not result.leaks
    music = {relative(row["path"], trees["musdb"]): row for row in sources if row["source_type"] == "music"}
    assert set(music) == {f"{s}/{t}/mixture.wav" for s, ts in (("train", MUSDB_TRAIN), ("test", MUSDB_TEST)) for t in ts}
    assert not any(row["error"] or row["excluded_reason"] for row in music.values())
    artists = {**MUSDB_TRAIN, **MUSDB_TEST}
    assert all(row["group_key"] == f"musdb18hq:{artists[rel.split('/')[1]]}" for rel, row in music.items())
    split = {rel: split_of[row["source_id"]] for rel, row in music.items()}
    assert all(split[f"test/{t}/mixture.wav"] == "test" for t in MUSDB_TEST)
    assert {rel for rel, s in split.items() if s == "test" and rel.startswith("train/")} == {f"train/{t}/mixture.wav" for t in MUSDB_MOVED}
    assert all(len(s) == 1 for s in group_splits(sources, split_of, "music").values())  # artists never straddle splits
    assert {row["split"] for row in examples} == {"train", "valid", "test"} and len(examples) == 12
    for row in examples:
        rel = relative(row["clean_path"], trees["musdb"])
        assert rel.endswith("/mixture.wav") and split[rel] == row["split"]
        assert row["group_key"] == f"musdb18hq:{artists[rel.split('/')[1]]}" and row["clean_corpus"] == "musdb18hq"
        if row["split"] == "test":
            assert rel.startswith("test/") or rel.split("/")[1] in MUSDB_MOVED
            assert row["noise_corpus"] == "test_noise"


@pytest.mark.slow
def test_musan_build_types_noise_honestly_and_groups_music_by_artist(tmp_path, trees):
    examples, sources, split_of, result = build_and_audit(tmp_path, [{"recipe": "musan", "path": str(trees["musan"])}])
    assert not result.failed and not result.leaks
    rows = {relative(row["path"], trees["musan"]): row for row in sources}
    assert set(rows) == set(MUSAN_MUSIC) | set(MUSAN_SPEECH) | set(MUSAN_NOISE)
    assert not any(row["error"] for row in rows.values())
    noise_types = {row["noise_type"] for rel, row in rows.items() if row["source_type"] == "noise"}
    assert noise_types == {"background", "musan"} and not noise_types & {"free-sound", "sound-bible"}
    artists = {rel: row["group_key"] for rel, row in rows.items() if row["source_type"] == "music"}
    assert artists["music/fma/music-fma-0000.wav"] == artists["music/fma/music-fma-0001.wav"] == "musan:Airglow"
    assert artists["music/rfm/music-rfm-0000.wav"] == "musan:Kevin_MacLeod"
    music_groups = group_splits(sources, split_of, "music")
    assert {"musan:Airglow", "musan:Jahzzar", "musan:Kevin_MacLeod", "musan:John_Harrison", "musan:Derek_Clegg"} <= set(music_groups)
    assert all(len(s) == 1 for kind in ("music", "speech", "noise") for s in group_splits(sources, split_of, kind).values())
    assert {row["split"] for row in examples} == {"train", "valid", "test"}
    assert {row["source_type"] for row in examples} <= {"music", "speech"} and {row["noise_corpus"] for row in examples} == {"musan_noise"}
    for row in examples:
        assert row["noise_type"] in {"background", "musan"}
        assert split_of[row["clean_source_id"]] == row["split"] == split_of[row["noise_source_id"]]
