"""Speech recipes (librispeech, libritts_r, vctk, daps, ears) on small fake trees in each corpus's real layout.

Every tree has the corpus's real folder and file names, metadata files in their real formats (tiny
content) and short generated audio at the native rate and format. Scanning goes through the real code
path (`parse_config` then `scan_all`); end-to-end builds (slow) cover LibriSpeech and VCTK 0.92.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from datagen.audit import audit
from datagen.build import build, scan_all
from datagen.config import ConfigError, parse_config
from datagen.plan import PlanError
from datagen.recipes import RECIPES

from recipe_trees import found_at_top, write_appledouble, write_text
from conftest import colored_noise, speechlike

WHERE = "test.toml"
SPEECH_RECIPES = ("librispeech", "libritts_r", "vctk", "daps", "ears")


def bare(group_key: str) -> str:
    """A group key without its recipe namespace ("vctk:p225" -> "p225")."""
    return group_key.split(":", 1)[1]


def key(source) -> str:
    return bare(source.group_key)


def write_speech(path: Path, rate: int, seconds: float, seed: int, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore"):
        audio = speechlike(rng, rate, seconds)
        while not np.all(np.isfinite(audio)):  # a short draw can fall entirely in a pause
            audio = speechlike(rng, rate, seconds)
    sf.write(path, audio, rate, subtype=subtype)




# ---------------------------------------------------------------- fake trees in the real layouts

# subset -> speaker -> chapters; every speaker in exactly one subset, as in LibriSpeech
LS_SPEAKERS = {
    "train-clean-100": {"103": ["1240"], "1034": ["121119"], "19": ["198", "227"]},
    "train-clean-360": {"14": ["208"]},
    "train-other-500": {"1006": ["135212"]},
    "dev-clean": {"84": ["121123"], "174": ["50561"]},
    "dev-other": {"116": ["288045"]},
    "test-clean": {"1089": ["134686"], "121": ["121726"]},
    "test-other": {"1688": ["142285"]},
}


def write_librispeech(root: Path, subsets=tuple(LS_SPEAKERS), seconds: float = 2.0) -> Path:
    """LibriSpeech/ as the OpenSLR 12 tarballs extract: <subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac + .trans.txt."""
    seed = 0
    speakers_txt = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for subset in subsets:
        for speaker, chapters in LS_SPEAKERS[subset].items():
            speakers_txt.append(f"{speaker:<5}| F | {subset:<16} | 25.03 | Reader {speaker}")
            for chapter in chapters:
                folder = root / subset / speaker / chapter
                lines = []
                for utt in range(2):
                    utt_id = f"{speaker}-{chapter}-{utt:04d}"
                    write_speech(folder / f"{utt_id}.flac", 16000, seconds, seed)
                    seed += 1
                    lines.append(f"{utt_id} CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED")
                write_text(folder / f"{speaker}-{chapter}.trans.txt", "\n".join(lines) + "\n")
    write_text(root / "SPEAKERS.TXT", "\n".join(speakers_txt) + "\n")
    write_text(root / "CHAPTERS.TXT", ";ID      |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE\n")
    write_text(root / "BOOKS.TXT", ";ID      |BOOK TITLE\n")
    write_text(root / "LICENSE.TXT", "LibriSpeech (c) 2014 by Vassil Panayotov\n")
    write_text(root / "README.TXT", "LibriSpeech ASR corpus\n")
    return root


def librispeech_files(subsets=tuple(LS_SPEAKERS)) -> dict[str, str]:
    """relative path -> speaker of every utterance of `subsets`."""
    return {f"{subset}/{speaker}/{chapter}/{speaker}-{chapter}-{utt:04d}.flac": speaker
            for subset in subsets for speaker, chapters in LS_SPEAKERS[subset].items() for chapter in chapters for utt in range(2)}


LTTS_SPEAKERS = {
    "train-clean-100": {"19": ["198"], "103": ["1240"]},
    "train-other-500": {"1006": ["135212"]},
    "dev-clean": {"84": ["121123", "121550"]},
    "test-clean": {"1089": ["134686"]},
}


def write_libritts_r(root: Path) -> Path:
    """LibriTTS_R/ as the OpenSLR 141 tarballs extract: <subset>/<speaker>/<chapter>/<speaker>_<chapter>_<par>_<sent>.wav (24 kHz)."""
    seed = 100
    for subset, speakers in LTTS_SPEAKERS.items():
        for speaker, chapters in speakers.items():
            for chapter in chapters:
                folder = root / subset / speaker / chapter
                trans = []
                for sentence in ("000000_000000", "000000_000002"):
                    utt_id = f"{speaker}_{chapter}_{sentence}"
                    write_speech(folder / f"{utt_id}.wav", 24000, 1.0, seed)
                    seed += 1
                    write_text(folder / f"{utt_id}.normalized.txt", "This is a LibriVox recording.")
                    write_text(folder / f"{utt_id}.original.txt", "This is a LibriVox recording.")
                    trans.append(f"{utt_id}\tThis is a LibriVox recording.\tThis is a LibriVox recording.")
                write_text(folder / f"{speaker}_{chapter}.trans.tsv", "\n".join(trans) + "\n")
                write_text(folder / f"{speaker}_{chapter}.book.tsv", trans[0] + "\ttrue\t1.95\t4.18\t20.152367\n")
    # the resource-fork file lhotse's recipe skips (dev-clean/84/121550/._84_121550_000007_000000.wav)
    write_appledouble(root / "dev-clean" / "84" / "121550" / "._84_121550_000007_000000.wav")
    for name in ("README_librispeech.txt", "README_libritts.txt", "README_libritts_r.txt", "LICENSE.txt", "NOTE.txt", "BOOKS.txt",
                 "CHAPTERS.txt"):
        write_text(root / name, name + "\n")
    write_text(root / "SPEAKERS.txt", ";ID  |SEX| SUBSET           |MINUTES| NAME\n19   | F | train-clean-100  | 25.19 | Kara Shallenberg\n")
    write_text(root / "speakers.tsv", "READER\tGENDER\tSUBSET\tNAME\n19\tF\ttrain-clean-100\tKara Shallenberg\n")
    return root


VCTK_SPEAKERS = ("p225", "p226", "p227", "p228", "p280", "p315", "s5")


def write_vctk(root: Path, seconds: float = 2.0) -> Path:
    """VCTK-Corpus-0.92/: wav48_silence_trimmed/<spk>/<spk>_<utt>_mic1.flac and _mic2.flac (48 kHz), txt/, speaker-info.txt.

    As in 0.92: p280 has no mic2 files, p315 has no transcripts, s5 is a speaker.
    """
    seed = 200
    info = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS "]
    for speaker in VCTK_SPEAKERS:
        info.append(f"{speaker}  23  F    English    Southern  England" + ("  (mic2 files unavailable)" if speaker == "p280" else "")
                    + ("  (Text unavailable)" if speaker == "p315" else ""))
        for utt in ("001", "002"):
            for mic in ("mic1", "mic2"):
                if speaker == "p280" and mic == "mic2":
                    continue
                write_speech(root / "wav48_silence_trimmed" / speaker / f"{speaker}_{utt}_{mic}.flac", 48000, seconds, seed)
                seed += 1
            if speaker != "p315":
                write_text(root / "txt" / speaker / f"{speaker}_{utt}.txt", "Please call Stella.\n")
    write_text(root / "speaker-info.txt", "\n".join(info) + "\n")
    write_text(root / "README.txt", "CSTR VCTK Corpus (Version 0.92)\n")
    write_text(root / "license_text.txt", "Creative Commons License: Attribution 4.0 International\n")
    write_text(root / "update.txt", "s5 added\n")
    return root


DAPS_SPEAKERS = ("f1", "f2", "f10", "m1", "m3", "m10")
DAPS_DEVICE_ROOMS = ("ipad_balcony1", "ipadflat_office1", "iphone_livingroom1")


def write_daps(root: Path) -> Path:
    """daps/ as daps.tar.gz extracts: one folder per version, <speaker>_script<n>_<version>.wav (44.1 kHz), sample/, supplementary_files/."""
    seed = 300
    for version in ("clean", "produced", "cleanraw") + DAPS_DEVICE_ROOMS:
        for speaker in DAPS_SPEAKERS:
            for script in (1, 5):
                write_speech(root / version / f"{speaker}_script{script}_{version}.wav", 44100, 1.0, seed)
                seed += 1
    for version in ("clean", "produced", "ipad_balcony1"):  # the sample folder: every version of one speaker's script
        write_speech(root / "sample" / f"f1_script1_{version}.wav", 44100, 1.0, seed)
        seed += 1
    write_appledouble(root / "clean" / "._f1_script1_clean.wav")
    write_text(root / "supplementary_files" / "scripts" / "script1.txt", "It was a bright cold day in April.\n")
    write_text(root / "README.md", "# DAPS Dataset\n")
    return root


EARS_SPEAKERS = ("p001", "p002", "p099", "p100", "p101", "p102", "p107")
EARS_FILES = ("emo_adoration_freeform", "emo_anger_sentences", "freeform_speech_01", "rainbow_01_regular", "sentences_01_whisper",
              "nonverbal_laughing", "vegetative_cough")


def write_ears(root: Path) -> Path:
    """EARS/ with p001.zip ... p107.zip unzipped: p<NNN>/<style>.wav (48 kHz); blind test set and JSON metadata beside them."""
    seed = 400
    for speaker in EARS_SPEAKERS:
        for name in EARS_FILES:
            write_speech(root / speaker / f"{name}.wav", 48000, 1.0, seed, subtype="PCM_24")
            seed += 1
    write_speech(root / "blind_testset" / "noisy" / "00001.wav", 48000, 1.0, seed)
    write_text(root / "speaker_statistics.json", json.dumps({s: {"age": "36-45", "gender": "male"} for s in EARS_SPEAKERS}))
    write_text(root / "transcripts.json", json.dumps({"rainbow_01_regular": "When the sunlight strikes raindrops in the air"}))
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("speech_trees")
    return {"librispeech": write_librispeech(base / "LibriSpeech"), "libritts_r": write_libritts_r(base / "LibriTTS_R"),
            "vctk": write_vctk(base / "VCTK-Corpus-0.92"), "daps": write_daps(base / "daps"), "ears": write_ears(base / "EARS")}


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory) -> Path:
    """Six stationary noise recordings (each its own group), enough for three splits."""
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(9)
    for i in range(6):
        path = root / "hiss" / f"hiss{i}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, colored_noise(rng, 48000, 3.0, -1.5), 48000, subtype="PCM_24")
    return root


def config_of(tmp_path: Path, noise_dir: Path, *corpora: dict, **extra):
    table = {"splits": {"examples": {"train": 2, "valid": 1, "test": 1}}, **extra,
             "corpora": [*corpora, {"name": "noise", "type": "noise", "path": str(noise_dir)}]}
    return parse_config(table, WHERE, tmp_path)


def scan(tmp_path: Path, noise_dir: Path, *corpora: dict, **extra) -> dict[str, object]:
    """relative path -> SourceFile of the speech files the corpora select."""
    return {f.relative_path: f for f in scan_all(config_of(tmp_path, noise_dir, *corpora, **extra), WHERE) if f.source_type != "noise"}



def expected_pin(relative: str) -> str:
    return {"train": "train", "dev": "valid", "test": "test"}[relative.split("-", 1)[0]]


# ---------------------------------------------------------------- registry


def test_speech_recipes_are_registered_with_their_facts():
    for name in SPEECH_RECIPES:
        recipe = RECIPES[name]
        assert recipe.types == ("speech",)
        for fact in (recipe.licence, recipe.citation, recipe.url, recipe.native_rate, recipe.bandwidth, recipe.hours, recipe.layout):
            assert fact.strip()
        for variant in recipe.variants:
            (part,) = recipe.parts(variant)
            assert part.group_pattern and part.include and re.compile(part.group_pattern).groups >= 1
    assert RECIPES["librispeech"].native_rate == "16 kHz" and RECIPES["libritts_r"].native_rate == "24 kHz"
    assert RECIPES["daps"].native_rate == "44.1 kHz" and RECIPES["vctk"].native_rate == RECIPES["ears"].native_rate == "48 kHz"
    assert RECIPES["vctk"].default_variant == "mic1" and RECIPES["daps"].default_variant == "clean"


# ---------------------------------------------------------------- LibriSpeech


def test_librispeech_groups_are_speakers_and_subsets_pin_official_splits(tmp_path, trees, noise_dir):
    root = trees["librispeech"]
    write_speech(root / "train-clean-5" / "103" / "1240" / "103-1240-0000.flac", 16000, 1.0, 7)  # MiniLibriSpeech, a duplicate
    try:
        files = scan(tmp_path, noise_dir, {"recipe": "librispeech", "path": str(root)})
    finally:
        (root / "train-clean-5" / "103" / "1240" / "103-1240-0000.flac").unlink()
    expected = librispeech_files()
    assert set(files) == set(expected)
    assert {rel: key(f) for rel, f in files.items()} == expected
    assert {rel: f.split_pin for rel, f in files.items()} == {rel: expected_pin(rel) for rel in expected}
    assert {f.corpus for f in files.values()} == {"librispeech"}


def test_librispeech_clean_variant_reads_the_clean_subsets_only(tmp_path, trees, noise_dir):
    files = scan(tmp_path, noise_dir, {"recipe": "librispeech", "path": str(trees["librispeech"]), "variant": "clean"})
    assert set(files) == set(librispeech_files(("train-clean-100", "train-clean-360", "dev-clean", "test-clean")))


def test_librispeech_one_subset_folder_is_a_clear_error(tmp_path, trees, noise_dir):
    """The subset name is what gives the official split, so a subset folder as root is refused, with the fix."""
    config = config_of(tmp_path, noise_dir, {"recipe": "librispeech", "path": str(trees["librispeech"] / "test-clean")})
    with pytest.raises(ConfigError) as info:
        scan_all(config, WHERE)
    message = str(info.value)
    assert "recipe 'librispeech'" in message and "LibriSpeech ASR corpus" in message
    assert "train-clean-100/103/1240/103-1240-0000.flac" in message  # the expected layout
    assert "1089/" in found_at_top(str(info.value)) and "121/" in found_at_top(str(info.value))  # what was found
    assert "not one subset folder" in message and 'include = ["train-clean-100/*"]' in message


def test_librispeech_parent_or_unrelated_folder_is_an_error(tmp_path, trees, noise_dir):
    for path, found in ((trees["librispeech"].parent, "LibriSpeech/"), (trees["vctk"], "wav48_silence_trimmed/")):
        config = config_of(tmp_path, noise_dir, {"recipe": "librispeech", "path": str(path)})
        with pytest.raises(ConfigError, match="does not look like LibriSpeech") as info:
            scan_all(config, WHERE)
        assert found in found_at_top(str(info.value))


def test_librispeech_one_subset_by_include_and_every_key_overridable(tmp_path, trees, noise_dir):
    root = str(trees["librispeech"])
    files = scan(tmp_path, noise_dir, {"recipe": "librispeech", "path": root, "include": ["train-clean-100/*"], "official_splits": False})
    assert set(files) == set(librispeech_files(("train-clean-100",)))
    assert {f.split_pin for f in files.values()} == {None}
    by_chapter = scan(tmp_path, noise_dir, {"recipe": "librispeech", "path": root, "group_pattern": r"/([0-9]+-[0-9]+)-[0-9]+\.flac$",
                                            "exclude": ["*-other*"]})
    clean = ("train-clean-100", "train-clean-360", "dev-clean", "test-clean")
    assert set(by_chapter) == set(librispeech_files(clean))
    assert {key(f) for f in by_chapter.values()} == {f"{s}-{c}" for sub in clean for s, cs in LS_SPEAKERS[sub].items() for c in cs}
    renamed = scan(tmp_path, noise_dir, {"recipe": "librispeech", "path": root, "name": "ls", "split_patterns": {"test": "^test-clean/"},
                                         "variant": "clean"})
    assert {f.split_pin for rel, f in renamed.items() if rel.startswith("test-clean/")} == {"test"}
    assert {f.split_pin for rel, f in renamed.items() if not rel.startswith("test-clean/")} == {None}
    assert {f.corpus for f in renamed.values()} == {"ls"}


# ---------------------------------------------------------------- LibriTTS-R


def test_libritts_r_reads_the_wav_files_without_resource_forks(tmp_path, trees, noise_dir):
    files = scan(tmp_path, noise_dir, {"recipe": "libritts_r", "path": str(trees["libritts_r"])})
    expected = {f"{subset}/{speaker}/{chapter}/{speaker}_{chapter}_{sentence}.wav": speaker for subset, speakers in LTTS_SPEAKERS.items()
                for speaker, chapters in speakers.items() for chapter in chapters for sentence in ("000000_000000", "000000_000002")}
    assert {rel: key(f) for rel, f in files.items()} == expected  # no ._84_121550_000007_000000.wav, no .txt / .tsv
    assert {rel: f.split_pin for rel, f in files.items()} == {rel: expected_pin(rel) for rel in expected}
    clean = scan(tmp_path, noise_dir, {"recipe": "libritts_r", "path": str(trees["libritts_r"]), "variant": "clean"})
    assert set(clean) == {rel for rel in expected if not rel.startswith("train-other-500/")}


def test_libritts_r_and_librispeech_share_a_reader_s_group(tmp_path, trees, noise_dir):
    """Same speaker IDs and subsets: reader 84 (dev-clean) is one group in both corpora, pinned to valid in both."""
    files = scan(tmp_path, noise_dir, {"recipe": "librispeech", "path": str(trees["librispeech"])},
                 {"recipe": "libritts_r", "path": str(trees["libritts_r"])})
    reader = {(f.corpus, f.group_key, f.split_pin) for rel, f in files.items() if key(f) == "84"}
    assert reader == {("librispeech", "librispeech:84", "valid"), ("libritts_r", "librispeech:84", "valid")}


def test_libritts_r_wrong_roots(tmp_path, trees, noise_dir):
    for path, found in ((trees["libritts_r"] / "dev-clean", "84/"), (trees["librispeech"], "train-clean-100/")):
        config = config_of(tmp_path, noise_dir, {"recipe": "libritts_r", "path": str(path)})
        with pytest.raises(ConfigError, match=r"recipe 'libritts_r'.*does not look like LibriTTS-R") as info:
            scan_all(config, WHERE)
        assert "train-clean-100/19/198/19_198_000000_000000.wav" in str(info.value) and found in found_at_top(str(info.value))


# ---------------------------------------------------------------- VCTK 0.92


def vctk_files(mics=("mic1",)) -> dict[str, str]:
    return {f"wav48_silence_trimmed/{s}/{s}_{u}_{m}.flac": s for s in VCTK_SPEAKERS for u in ("001", "002") for m in mics
            if not (s == "p280" and m == "mic2")}


def test_vctk_default_is_one_microphone_grouped_by_speaker(tmp_path, trees, noise_dir):
    files = scan(tmp_path, noise_dir, {"recipe": "vctk", "path": str(trees["vctk"])})
    assert {rel: key(f) for rel, f in files.items()} == vctk_files(("mic1",))
    assert {f.split_pin for f in files.values()} == {None}  # no official split
    assert {"p315", "s5"} <= {key(f) for f in files.values()}  # p315's audio is there without its text; s5 is a speaker


def test_vctk_variants_select_the_microphones(tmp_path, trees, noise_dir):
    mic2 = scan(tmp_path, noise_dir, {"recipe": "vctk", "path": str(trees["vctk"]), "variant": "mic2"})
    assert {rel: key(f) for rel, f in mic2.items()} == vctk_files(("mic2",))
    assert "p280" not in {key(f) for f in mic2.values()}
    both = scan(tmp_path, noise_dir, {"recipe": "vctk", "path": str(trees["vctk"]), "variant": "both"})
    assert {rel: key(f) for rel, f in both.items()} == vctk_files(("mic1", "mic2"))
    # the two microphones of one utterance have one group, so they can never be in two splits
    for rel, f in both.items():
        other = rel.replace("_mic1.", "_mic2.") if "_mic1." in rel else rel.replace("_mic2.", "_mic1.")
        assert other not in both or key(both[other]) == key(f)


def test_vctk_wrong_roots(tmp_path, trees, noise_dir):
    old = tmp_path / "VCTK-Corpus"  # the 0.80 release: wav48/<spk>/<spk>_<utt>.wav
    write_speech(old / "wav48" / "p225" / "p225_001.wav", 48000, 1.0, 5)
    for path, found in ((trees["vctk"] / "wav48_silence_trimmed", "p225/"), (old, "wav48/"), (trees["ears"], "p001/")):
        config = config_of(tmp_path, noise_dir, {"recipe": "vctk", "path": str(path)})
        with pytest.raises(ConfigError, match=r"recipe 'vctk'.*does not look like CSTR VCTK Corpus 0\.92") as info:
            scan_all(config, WHERE)
        assert found in found_at_top(str(info.value)) and "wav48_silence_trimmed/p225/p225_001_mic1.flac" in str(info.value)


def test_vctk_keys_overridable(tmp_path, trees, noise_dir):
    root = str(trees["vctk"])
    one = scan(tmp_path, noise_dir, {"recipe": "vctk", "path": root, "include": ["wav48_silence_trimmed/p225/*_mic2.flac"]})
    assert set(one) == {"wav48_silence_trimmed/p225/p225_001_mic2.flac", "wav48_silence_trimmed/p225/p225_002_mic2.flac"}
    by_utterance = scan(tmp_path, noise_dir, {"recipe": "vctk", "path": root, "group_pattern": r"/([ps][0-9]+_[0-9]+)_mic"})
    assert by_utterance["wav48_silence_trimmed/s5/s5_002_mic1.flac"].group_key == "vctk:s5_002"
    assert scan(tmp_path, noise_dir, {"recipe": "vctk", "path": root, "group_namespace": ""})[
        "wav48_silence_trimmed/s5/s5_002_mic1.flac"].group_key == "s5"
    pinned = scan(tmp_path, noise_dir, {"recipe": "vctk", "path": root, "split_patterns": {"test": "/(p225|s5)/"}})
    assert {key(f) for f in pinned.values() if f.split_pin == "test"} == {"p225", "s5"}


def test_a_pattern_that_matches_nothing_is_loud_not_silent(tmp_path, trees, noise_dir):
    """No recipe, group_pattern '^(q[0-9]+)_' over VCTK: the error names the pattern and a few of the files it misses."""
    config = config_of(tmp_path, noise_dir, {"name": "vctk", "type": "speech", "path": str(trees["vctk"]), "group_pattern": "^(q[0-9]+)_"})
    with pytest.raises(ConfigError) as info:
        scan_all(config, WHERE)
    message = str(info.value)
    assert "'^(q[0-9]+)_'" in message and "does not match" in message
    assert "wav48_silence_trimmed/p225/p225_001_mic1.flac" in message and "wav48_silence_trimmed/p225/p225_001_mic2.flac" in message
    assert "group_unmatched" in message  # and the way out


# ---------------------------------------------------------------- DAPS


def daps_files(version: str) -> dict[str, str]:
    return {f"{version}/{s}_script{n}_{version}.wav": s for s in DAPS_SPEAKERS for n in (1, 5)}


def test_daps_default_is_the_clean_studio_version(tmp_path, trees, noise_dir):
    files = scan(tmp_path, noise_dir, {"recipe": "daps", "path": str(trees["daps"])})
    # no device/room recording, no sample/ duplicate, no resource fork
    assert {rel: key(f) for rel, f in files.items()} == daps_files("clean")
    assert {f.split_pin for f in files.values()} == {None}


@pytest.mark.parametrize("variant", ["produced", "cleanraw"])
def test_daps_studio_variants(tmp_path, trees, noise_dir, variant):
    files = scan(tmp_path, noise_dir, {"recipe": "daps", "path": str(trees["daps"]), "variant": variant})
    assert {rel: key(f) for rel, f in files.items()} == daps_files(variant)


def test_daps_wrong_roots_and_overrides(tmp_path, trees, noise_dir):
    for path, found in ((trees["daps"] / "clean", "f1_script1_clean.wav"), (trees["daps"] / "ipad_balcony1", "f1_script1_ipad_balcony1.wav"),
                        (trees["librispeech"], "dev-clean/")):
        config = config_of(tmp_path, noise_dir, {"recipe": "daps", "path": str(path)})
        with pytest.raises(ConfigError, match=r"recipe 'daps'.*does not look like DAPS") as info:
            scan_all(config, WHERE)
        assert "clean/f1_script1_clean.wav" in str(info.value) and found in found_at_top(str(info.value))
    women = scan(tmp_path, noise_dir, {"recipe": "daps", "path": str(trees["daps"]), "include": ["clean/f*_clean.wav"]})
    assert {key(f) for f in women.values()} == {"f1", "f2", "f10"}
    by_script = scan(tmp_path, noise_dir, {"recipe": "daps", "path": str(trees["daps"]), "group_pattern": r"_(script[0-9]+)_"})
    assert {key(f) for f in by_script.values()} == {"script1", "script5"}


# ---------------------------------------------------------------- EARS


def test_ears_groups_speakers_and_pins_the_benchmark_split(tmp_path, trees, noise_dir):
    files = scan(tmp_path, noise_dir, {"recipe": "ears", "path": str(trees["ears"])})
    assert set(files) == {f"{s}/{n}.wav" for s in EARS_SPEAKERS for n in EARS_FILES}  # not blind_testset/
    assert {rel: key(f) for rel, f in files.items()} == {rel: rel.split("/")[0] for rel in files}
    pins = {key(f): f.split_pin for f in files.values()}
    assert pins == {"p001": "train", "p002": "train", "p099": "train", "p100": "valid", "p101": "valid", "p102": "test", "p107": "test"}


def test_ears_speech_variant_and_overrides(tmp_path, trees, noise_dir):
    root = str(trees["ears"])
    speech = scan(tmp_path, noise_dir, {"recipe": "ears", "path": root, "variant": "speech"})
    assert set(speech) == {f"{s}/{n}.wav" for s in EARS_SPEAKERS for n in EARS_FILES if not n.startswith(("nonverbal", "vegetative"))}
    free = scan(tmp_path, noise_dir, {"recipe": "ears", "path": root, "official_splits": False})
    assert {f.split_pin for f in free.values()} == {None} and len(free) == len(EARS_SPEAKERS) * len(EARS_FILES)
    freeform = scan(tmp_path, noise_dir, {"recipe": "ears", "path": root, "include": ["p*/freeform_*.wav"]})
    assert set(freeform) == {f"{s}/freeform_speech_01.wav" for s in EARS_SPEAKERS}


def test_ears_wrong_roots(tmp_path, trees, noise_dir):
    for path, found in ((trees["ears"] / "p001", "emo_adoration_freeform.wav"), (trees["daps"], "clean/")):
        config = config_of(tmp_path, noise_dir, {"recipe": "ears", "path": str(path)})
        with pytest.raises(ConfigError, match=r"recipe 'ears'.*does not look like EARS") as info:
            scan_all(config, WHERE)
        assert "p001/emo_adoration_freeform.wav" in str(info.value) and found in found_at_top(str(info.value))


def test_official_split_names_must_exist(tmp_path, trees, noise_dir):
    """Recipes pin train / valid / test; other split names are refused with the way out (official_splits = false)."""
    with pytest.raises(ConfigError, match="official_splits = false"):
        config_of(tmp_path, noise_dir, {"recipe": "ears", "path": str(trees["ears"])},
                  splits={"fractions": {"train": 0.9, "dev": 0.1}, "examples": {"train": 2, "dev": 1}})


# ---------------------------------------------------------------- end to end (slow)


def build_table(noise_dir: Path, *corpora: dict, examples=None) -> dict:
    return {"seed": 5, "audio": {"clip_duration_s": 1.0}, "splits": {"examples": examples or {"train": 6, "valid": 3, "test": 3}},
            "shards": {"examples_per_shard": 4}, "dask": {"workers": 1},
            "corpora": [*corpora, {"name": "noise", "type": "noise", "path": str(noise_dir)}]}


def build_and_audit(tmp_path: Path, table: dict):
    out = tmp_path / "out"
    build(parse_config(table, WHERE, tmp_path), str(out), workers=1, progress=False)
    result = audit(str(out))
    return pq.read_table(out / "examples.parquet").to_pylist(), result


@pytest.mark.slow
def test_librispeech_build_honours_official_splits(tmp_path, trees, noise_dir):
    examples, result = build_and_audit(tmp_path, build_table(noise_dir, {"recipe": "librispeech", "path": str(trees["librispeech"])}))
    assert not result.failed and not result.leaks
    speech = [row for row in examples if row["clean_corpus"] == "librispeech"]
    assert len(speech) == 12 and {row["split"] for row in speech} == {"train", "valid", "test"}
    speakers_of = {split: {s for subset in LS_SPEAKERS if expected_pin(subset) == split for s in LS_SPEAKERS[subset]}
                   for split in ("train", "valid", "test")}
    for row in speech:
        assert bare(row["group_key"]) in speakers_of[row["split"]], row  # a test-clean speaker only ever in test, ...
        assert bare(row["group_key"]) == Path(row["clean_path"]).parent.parent.name  # the group is the speaker folder
        assert Path(row["clean_path"]).parts[-4].startswith({"train": "train-", "valid": "dev-", "test": "test-"}[row["split"]])
    assert {bare(row["group_key"]) for row in speech if row["split"] == "test"} <= {"1089", "121", "1688"}


@pytest.mark.slow
def test_vctk_build_uses_one_microphone_grouped_by_speaker(tmp_path, trees, noise_dir):
    examples, result = build_and_audit(tmp_path, build_table(noise_dir, {"recipe": "vctk", "path": str(trees["vctk"])}))
    assert not result.failed and not result.leaks
    speech = [row for row in examples if row["clean_corpus"] == "vctk"]
    assert len(speech) == 12 and {row["split"] for row in speech} == {"train", "valid", "test"}
    assert all(row["clean_path"].endswith("_mic1.flac") for row in speech)  # mic2 never used by default
    assert {bare(row["group_key"]) for row in speech} <= set(VCTK_SPEAKERS)
    for row in speech:
        assert bare(row["group_key"]) == Path(row["clean_path"]).parent.name
    splits_of: dict[str, set] = {}
    for row in speech:
        splits_of.setdefault(bare(row["group_key"]), set()).add(row["split"])
    assert all(len(splits) == 1 for splits in splits_of.values())


@pytest.mark.slow
def test_grouping_by_subset_fails_with_the_group_count(tmp_path, noise_dir):
    """`^([^/]+)/` over the LibriSpeech root captures the subset: 2 subsets cannot fill 3 splits, and the error says so."""
    root = write_librispeech(tmp_path / "LibriSpeech", subsets=("train-clean-100", "test-clean"), seconds=1.5)
    table = build_table(noise_dir, {"name": "librispeech", "type": "speech", "path": str(root), "group_pattern": "^([^/]+)/"})
    with pytest.raises(PlanError) as info:
        build(parse_config(table, WHERE, tmp_path), str(tmp_path / "out"), workers=1, progress=False)
    message = str(info.value)
    assert "2 group(s)" in message and "test-clean" in message and "train-clean-100" in message
    assert "split 'test' has no usable speech or music recordings" in message
