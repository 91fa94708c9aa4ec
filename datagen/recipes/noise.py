"""Recipes of public noise corpora: DEMAND, the DNS Challenge noise set, WHAM! noise and FSD50K.

Each recipe's `path` is the folder the corpus's own archives extract to. Layouts as documented by the
corpora (DEMAND.pdf and the Zenodo file list, the DNS-Challenge repository's download scripts and
file lists, the WHAM! metadata README, FSD50K's README) and read from public preparation code.

Groups never straddle official splits: where a recipe groups by a key its metadata gives (WHAM!
location, FSD50K uploader) and the official split puts files of one key in two splits, those files
are grouped per split (`_within_official_splits`), so the official split is kept as published.
"""
from __future__ import annotations

import json
import posixpath
import re

from manifests.typed_config import ConfigError

from .base import APPLEDOUBLE, FileLabels, Part, Recipe, read_csv_rows, within_official_splits



# ---- DEMAND: <SCENE>/ch01.wav ... ch16.wav ---------------------------------------------------------------

# six categories (Domestic, Nature, Office, Public, Street, Transportation) of three scenes each
DEMAND_SCENES = ("DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "NRIVER", "OHALLWAY", "OMEETING", "OOFFICE",
                 "PCAFETER", "PRESTO", "PSTATION", "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS", "TCAR", "TMETRO")
# the scene folder the Zenodo zips extract to (DKITCHEN_48k.zip -> DKITCHEN/ch01.wav ...), also when each zip was
# unpacked into a folder of its own (DKITCHEN_48k/DKITCHEN/ch01.wav) or the folder was named after the zip (DKITCHEN_16k/)
# (no {n} quantifiers: datagen/labels.py formats the pattern into its error message with str.format)
DEMAND_SCENE = rf"(?:^|/)({'|'.join(DEMAND_SCENES)})(?:_(?:16|48)k)?/ch[0-9][0-9]\.wav$"
DEMAND_CHANNELS = {"ch01": ("ch01",), "all_channels": tuple(f"ch{c:02d}" for c in range(1, 17))}


def _demand_parts(variant: str) -> tuple[Part, ...]:
    return (Part(type="noise", include=tuple(f"*/{channel}.wav" for channel in DEMAND_CHANNELS[variant]), exclude=APPLEDOUBLE,
                 group_pattern=DEMAND_SCENE, noise_type_pattern=DEMAND_SCENE),)


DEMAND = Recipe(
    name="demand",
    title="DEMAND, Diverse Environments Multichannel Acoustic Noise Database (Zenodo 1227121)",
    licence="CC BY-SA 3.0 (DEMAND.pdf v1.0; copies elsewhere, e.g. Kaggle, state CC BY 4.0)",
    citation="J. Thiemann, N. Ito and E. Vincent, \"The Diverse Environments Multi-channel Acoustic Noise Database (DEMAND): "
             "A database of multichannel environmental noise recordings\", Proc. Meetings on Acoustics 19, 035081 (ICA 2013), "
             "doi:10.1121/1.4799597.",
    url="https://zenodo.org/records/1227121",
    native_rate="48 kHz (also a 16 kHz download)",
    bandwidth="24 kHz (_48k zips), 8 kHz (_16k zips)",
    hours="18 scenes x ~5 min: 1.5 h per channel, 24 h over the 16 channels of the planar array",
    layout="""
DKITCHEN/ch01.wav
DKITCHEN/ch02.wav ... DKITCHEN/ch16.wav
NFIELD/ch01.wav
TMETRO/ch01.wav
(path = the folder holding the 18 scene folders DKITCHEN ... TMETRO that the <SCENE>_16k.zip / <SCENE>_48k.zip files extract to, not one scene folder; a folder per zip, DKITCHEN_48k/DKITCHEN/ch01.wav, works too)
""",
    variants={"ch01": "one microphone: ch01.wav of every scene",
              "all_channels": "all 16 microphones (ch01.wav ... ch16.wav); the channels of a scene are one group"},
    parts=_demand_parts,
    markers=tuple(f"{prefix}{scene}{rate}/ch[0-9][0-9].wav" for scene in DEMAND_SCENES for prefix in ("", "*/") for rate in ("", "_??k")),
    notes="Groups and noise types are the scene (DKITCHEN, ..., TMETRO): every file of a scene, all its channels in "
          "all_channels, is one group, so no scene is in two splits. With one group per scene-type, the scenes are pooled by the "
          "planner (noise types with fewer groups than splits) and split whole by splits.fractions: about 14 / 2 / 2 scenes with "
          "the default 0.8 / 0.1 / 0.1. The scene rather than its category (the first letter) is the noise type: with three "
          "scenes per category a per-category split would put one scene of each category in each split, a third of the noise "
          "each. Zenodo has every scene as <SCENE>_48k.zip and <SCENE>_16k.zip (downsampled), except SCAFE, only at 48 kHz "
          "(no SCAFE_16k.zip); recordings are resampled anyway. If both the "
          "16 kHz and the 48 kHz zips were unpacked under one root (DKITCHEN_16k/DKITCHEN/..., DKITCHEN_48k/DKITCHEN/...), every "
          "recording is read twice (same group, so no leakage): keep one, e.g. exclude = [\"*_16k/*\"]. The busy scenes (cafeteria, "
          "cafe, meeting, station, square, traffic) are mostly rejected by the stationarity filter; the split is made over the "
          "scenes that pass, and fewer than three usable scenes leave a split without noise (a PlanError naming the scenes).",
)

# ---- DNS Challenge noise: datasets/noise/<YouTube id>.wav (AudioSet), <category>_Freesound_validated_<id>_<n>.wav -----

# Freesound clips: <category>_Freesound_validated_<Freesound id>_<segment>.wav, segments of one upload sharing the id
# (categories door, fan, typing, squeak_squeakyChair, breath_spit, munching, mislabeled_munching, copy-machine, dragging;
# a few ids carry the uploader and title: 118607__krb21__eating-chips)
DNS_FREESOUND_SOURCE = r"_Freesound_validated_(.+)_[0-9]+\.wav$"
DNS_FREESOUND_CATEGORY = r"(?:^|/)([^/]+?)_Freesound_validated_"
_DNS_CATEGORY_RE = re.compile(DNS_FREESOUND_CATEGORY)
DNS_AUDIOSET = "audioset"  # the noise type of the AudioSet clips: their names (YouTube ids) carry no class
_YOUTUBE_ID = "[A-Za-z0-9_-]" * 11  # fnmatch: exactly 11 id characters, no '/'
DNS_INCLUDE = {"freesound": ("*_Freesound_validated_*.wav",), "audioset": (f"{_YOUTUBE_ID}.wav", f"*/{_YOUTUBE_ID}.wav")}


def _dns_parts(variant: str) -> tuple[Part, ...]:
    if variant == "freesound":
        return (Part(type="noise", include=DNS_INCLUDE["freesound"], exclude=APPLEDOUBLE, group_pattern=DNS_FREESOUND_SOURCE,
                     noise_type_pattern=DNS_FREESOUND_CATEGORY),)
    return (Part(type="noise", include=DNS_INCLUDE["freesound"] + DNS_INCLUDE["audioset"], exclude=APPLEDOUBLE,
                 group_pattern=DNS_FREESOUND_SOURCE, group_unmatched="own_group", noise_type=DNS_AUDIOSET, uses_labels=True),)


def _dns_labels(fs, root: str, relative_paths: list[str], part: Part) -> dict[str, FileLabels]:
    """Noise type from the file name: the Freesound category, or 'audioset' for a clip named by its YouTube id."""
    labels = {}
    for relative in relative_paths:
        match = _DNS_CATEGORY_RE.search(relative)
        labels[relative] = FileLabels(noise_type=match.group(1) if match else DNS_AUDIOSET)
    return labels


DNS_NOISE = Recipe(
    name="dns_noise",
    title="DNS Challenge noise set (Microsoft Deep Noise Suppression Challenge, AudioSet + Freesound clips)",
    licence="CC BY 4.0 (the DNS-Challenge data; the clips come from AudioSet/YouTube and Freesound, whose own licences apply)",
    citation="C. K. A. Reddy, V. Gopal, R. Cutler, E. Beyrami, R. Cheng, H. Dubey, S. Matusevych, R. Aichner, A. Aazami, "
             "S. Braun et al., \"The INTERSPEECH 2020 Deep Noise Suppression Challenge: Datasets, Subjective Testing Framework, "
             "and Challenge Results\", Proc. Interspeech 2020; fullband: H. Dubey et al., \"ICASSP 2022 Deep Noise Suppression "
             "Challenge\", Proc. ICASSP 2022.",
    url="https://github.com/microsoft/DNS-Challenge",
    native_rate="16 kHz (DNS 1-3), 48 kHz (fullband, DNS 3-5)",
    bandwidth="8 kHz / up to 24 kHz, varies by clip (YouTube, Freesound uploads)",
    hours="181 h: ~65,300 clips, ~54,700 AudioSet 10 s clips (~150 classes) and ~10,600 Freesound segments",
    layout="""
--9VR_F7CtY.wav
-0JNMxLVqpk.wav
door_Freesound_validated_96737_0.wav
fan_Freesound_validated_102686_1.wav
squeak_squeakyChair_Freesound_validated_95565_0.wav
munching_Freesound_validated_118607__krb21__eating-chips_1.wav
(path = the noise folder: datasets/noise (16 kHz, DNS 1-3) or datasets_fullband/noise_fullband (48 kHz, DNS 4-5 tarballs); the clips are recognised by name, so a folder above it, e.g. the DNS root, selects the noise clips only)
""",
    variants={"all": "every clip: the Freesound clips (noise type: the category in the name) and the AudioSet clips (noise type "
                     "'audioset')",
              "freesound": "the Freesound clips only, whose names carry a category"},
    parts=_dns_parts,
    markers=DNS_INCLUDE["freesound"] + DNS_INCLUDE["audioset"],
    labels=_dns_labels,
    notes="Noise types: the category in a Freesound clip's name (door, fan, typing, squeak_squeakyChair, breath_spit, munching, "
          "mislabeled_munching, copy-machine, dragging); the AudioSet clips are named by their YouTube id only and the challenge "
          "ships no class list for them (its noise CSV has a filename column only), so they are one type, 'audioset' (labels = \"\" "
          "and noise_type = \"...\" make every clip one type). Groups: the segments _0, _1, ... of one Freesound upload share its id "
          "and are one group (a source cut into up to 181 segments); each AudioSet clip is its own group. One upload "
          "(153524__eakoontz__eating-chips) appears under both munching and mislabeled_munching: one group, so one split. The "
          "impulsive categories (door, typing, squeak, breath, munching, dragging) are mostly rejected by the stationarity "
          "filter; fan, copy-machine and the steady AudioSet clips remain. The DEMAND copy that DNS 2-3 ship (DEMAND.tar.bz2) has "
          "its own recipe, demand.",
)

# ---- WHAM! noise: wham_noise/{tr,cv,tt}/<utterance>.wav (16 kHz) or high_res_wham/audio/<file>.wav (48 kHz) ----------

WHAM_FOLDERS = {"train": "tr", "valid": "cv", "test": "tt"}
WHAM_OFFICIAL = {split: rf"(?:^|/){folder}/[^/]+\.wav$" for split, folder in WHAM_FOLDERS.items()}
WHAM_HIGH_RES_SPLITS = {"train": "train", "valid": "valid", "test": "test"}  # "WHAM! Split" (Train / Valid / Test), lowercased
WHAM_NOISE_TYPE = "urban_ambience"


def _wham_parts(variant: str) -> tuple[Part, ...]:
    return (Part(type="noise", include=tuple(f"{folder}/*.wav" for folder in WHAM_FOLDERS.values()) + ("audio/*.wav",),
                 exclude=APPLEDOUBLE, group_unmatched="own_group", noise_type=WHAM_NOISE_TYPE, split_patterns=WHAM_OFFICIAL,
                 uses_labels=True),)


def _wham_key(row: dict[str, str]) -> str | None:
    for column, prefix in (("Location ID", "location"), ("File ID", "recording")):
        value = (row.get(column) or "").strip()
        if value:
            return f"{prefix} {value}"
    return None


def _wham_rows(fs, path: str, name_column: str) -> list[tuple[str, dict[str, str]]]:
    """(file name, row) of a WHAM! metadata CSV; the name column holds the file name, with or without '.wav'."""
    rows = read_csv_rows(fs, path)
    if rows and name_column not in rows[0]:
        raise ConfigError(f"recipe 'wham_noise': {path} has no '{name_column}' column (found {', '.join(rows[0])}); it is not the "
                          "WHAM! metadata this recipe reads: move it away, or set labels = \"\" (no groups by location)")
    named = []
    for row in rows:
        name = posixpath.basename((row.get(name_column) or "").strip())
        if name:
            named.append((name if name.lower().endswith(".wav") else f"{name}.wav", row))
    return named


def _wham_labels(fs, root: str, relative_paths: list[str], part: Part) -> dict[str, FileLabels]:
    """Groups by recording location (Location ID of the noise_meta / high_res_metadata CSVs), splits of the 48 kHz set."""
    keys: dict[str, str] = {}
    splits: dict[str, str | None] = {}
    for split, folder in WHAM_FOLDERS.items():  # wham_noise.zip: metadata/noise_meta_tr.csv, columns utterance_id, ..., Location ID
        meta = posixpath.join(root, "metadata", f"noise_meta_{folder}.csv")
        if fs.exists(meta):
            for name, row in _wham_rows(fs, meta, "utterance_id"):
                splits[f"{folder}/{name}"] = split
                if (key := _wham_key(row)) is not None:
                    keys[f"{folder}/{name}"] = key
    high_res = posixpath.join(root, "high_res_metadata.csv")  # high_res_wham.zip: Filename, File Length (sec), ..., WHAM! Split
    if fs.exists(high_res):
        for name, row in _wham_rows(fs, high_res, "Filename"):
            splits[f"audio/{name}"] = WHAM_HIGH_RES_SPLITS.get((row.get("WHAM! Split") or "").strip().lower())
            if (key := _wham_key(row)) is not None:
                keys[f"audio/{name}"] = key
    folder_split = {folder: split for split, folder in WHAM_FOLDERS.items()}
    for relative in relative_paths:  # the folder is the official split of the 16 kHz set, with or without its metadata
        if relative.split("/", 1)[0] in folder_split:
            splits[relative] = folder_split[relative.split("/", 1)[0]]
    groups = within_official_splits({rel: keys[rel] for rel in relative_paths if rel in keys}, splits)
    return {rel: FileLabels(group=groups.get(rel), split=splits.get(rel)) for rel in relative_paths}


WHAM_NOISE = Recipe(
    name="wham_noise",
    title="WHAM! noise (WSJ0 Hipster Ambient Mixtures: urban ambience recorded in the San Francisco Bay Area)",
    licence="CC BY-NC 4.0",
    citation="G. Wichern, J. Antognini, M. Flynn, L. R. Zhu, E. McQuinn, D. Crow, E. Manilow and J. Le Roux, \"WHAM!: Extending "
             "Speech Separation to Noisy Environments\", Proc. Interspeech 2019, pp. 1368-1372.",
    url="http://wham.whisper.ai/",
    native_rate="16 kHz (wham_noise.zip), 48 kHz (high_res_wham.zip)",
    bandwidth="8 kHz / up to 24 kHz (high_res_wham.zip)",
    hours="~82 h in wham_noise.zip: 28,000 binaural clips (tr 20,000 / cv 5,000 / tt 3,000), 3.4 to 47.7 s, mean 10.5 s",
    layout="""
tr/40na010x_1.9857_01xo031a_-1.9857.wav
cv/01aa010k_1.3053_01po0310_-1.3053.wav
tt/050a050a_1.7783_442o030z_-1.7783.wav
metadata/noise_meta_tr.csv
(path = the wham_noise/ folder that wham_noise.zip extracts to, holding tr/ cv/ tt/ and metadata/, not tr/ itself; or the high_res_wham/ folder of the 48 kHz set, holding audio/ and high_res_metadata.csv)
""",
    variants={"official": "wham_noise.zip: tr -> train, cv -> valid, tt -> test (the folders); high_res_wham.zip: the 'WHAM! Split' "
                          "column of high_res_metadata.csv"},
    parts=_wham_parts,
    markers=tuple(f"{folder}/*.wav" for folder in WHAM_FOLDERS.values()) + ("audio/*.wav",),
    labels=_wham_labels,
    notes="Official splits are pinned: tr/ -> train, cv/ -> valid, tt/ -> test, or the 'WHAM! Split' column (Train / Valid / "
          "Test) of the 48 kHz set's high_res_metadata.csv. Groups: the recording location (the 'Location ID' column of "
          "metadata/noise_meta_{tr,cv,tt}.csv or high_res_metadata.csv; 'File ID', the original recording, when there is no "
          "location), files of a location the official split spreads over two splits grouped per split; without the metadata "
          "each clip is its own group. The metadata gives no kind of place (restaurants, cafes, bars, parks), so all clips are one "
          "noise type, urban_ambience. Most of WHAM! is babble-like (busy restaurants and bars): the stationarity filter rejects "
          "much of it, and what passes is the quieter, steadier ambience (raising filters.stationarity_threshold_db admits more, "
          "at the cost of the stationary-noise assumption). Recordings are binaural (2 channels), averaged to mono unless "
          "audio.channels = 2. The 16 kHz zip is the usual download; the 48 kHz set (high_res_wham.zip, ~74 GB, the unsegmented "
          "recordings) keeps the full band.",
)

# ---- FSD50K: FSD50K.dev_audio/<id>.wav, FSD50K.eval_audio/<id>.wav, ground truth CSVs, metadata JSON ------------------

FSD50K_AUDIO = {"dev": "FSD50K.dev_audio", "eval": "FSD50K.eval_audio"}
FSD50K_DEV_SPLITS = {"train": "train", "val": "valid"}  # dev.csv's split column
FSD50K_UNLABELLED = "fsd50k_unlabelled"


def _fsd50k_parts(variant: str) -> tuple[Part, ...]:
    return (Part(type="noise", include=tuple(f"{folder}/*.wav" for folder in FSD50K_AUDIO.values()), exclude=APPLEDOUBLE,
                 group_unmatched="own_group", noise_type=FSD50K_UNLABELLED, uses_labels=True),)


def _fsd50k_labels(fs, root: str, relative_paths: list[str], part: Part) -> dict[str, FileLabels]:
    """Noise type: a clip's first ground-truth label; split: dev train/val, eval -> test; group: the Freesound uploader."""
    noise_types: dict[str, str] = {}
    splits: dict[str, str | None] = {}
    uploaders: dict[str, str] = {}
    wanted = {relative.split("/", 1)[0] for relative in relative_paths}
    for subset, folder in FSD50K_AUDIO.items():
        if folder not in wanted:
            continue
        truth = posixpath.join(root, "FSD50K.ground_truth", f"{subset}.csv")
        if not fs.exists(truth):
            raise ConfigError(f"recipe 'fsd50k': {truth} does not exist; the ground truth (FSD50K.ground_truth.zip) gives the noise "
                              f"types and official splits of {folder}/: unpack it beside the audio folders, or set labels = \"\" "
                              "(one noise type, no official splits)")
        rows = read_csv_rows(fs, truth)
        if rows and "fname" not in rows[0]:
            raise ConfigError(f"recipe 'fsd50k': {truth} has no 'fname' column (found {', '.join(rows[0])}); expected FSD50K's "
                              "ground truth: fname,labels,mids[,split]")
        for row in rows:
            relative = f"{folder}/{row['fname'].strip()}.wav"
            labels = [label.strip() for label in (row.get("labels") or "").split(",") if label.strip()]
            if labels:
                noise_types[relative] = labels[0]
            splits[relative] = FSD50K_DEV_SPLITS.get((row.get("split") or "").strip()) if subset == "dev" else "test"
        info = posixpath.join(root, "FSD50K.metadata", f"{subset}_clips_info_FSD50K.json")
        if fs.exists(info):
            with fs.open(info, "rb") as handle:
                clips = json.loads(handle.read().decode("utf-8"))
            for fname, clip in clips.items():
                uploader = (clip.get("uploader") or "").strip() if isinstance(clip, dict) else ""
                if uploader:
                    uploaders[f"{folder}/{fname}.wav"] = f"uploader {uploader}"
    groups = within_official_splits({rel: uploaders[rel] for rel in relative_paths if rel in uploaders}, splits)
    return {rel: FileLabels(group=groups.get(rel), noise_type=noise_types.get(rel), split=splits.get(rel)) for rel in relative_paths}


FSD50K = Recipe(
    name="fsd50k",
    title="FSD50K, Freesound Dataset 50k (Zenodo 4060432)",
    licence="CC BY 4.0 (the dataset); each clip CC0, CC BY, CC BY-NC or CC Sampling+ (FSD50K.metadata/*_clips_info_FSD50K.json)",
    citation="E. Fonseca, X. Favory, J. Pons, F. Font and X. Serra, \"FSD50K: An Open Dataset of Human-Labeled Sound Events\", "
             "IEEE/ACM Transactions on Audio, Speech, and Language Processing 30, pp. 829-852, 2022.",
    url="https://zenodo.org/records/4060432",
    native_rate="44.1 kHz",
    bandwidth="up to 22 kHz, varies by clip (Freesound uploads)",
    hours="108.3 h: 51,197 clips of 0.3 to 30 s (dev 40,966 clips, 80.4 h; eval 10,231 clips, 27.9 h); 200 classes",
    layout="""
FSD50K.dev_audio/64760.wav
FSD50K.eval_audio/37199.wav
FSD50K.ground_truth/dev.csv
FSD50K.ground_truth/eval.csv
FSD50K.metadata/dev_clips_info_FSD50K.json
FSD50K.metadata/eval_clips_info_FSD50K.json
(path = the folder holding FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.ground_truth/ and FSD50K.metadata/ as the Zenodo zips extract, not one of them)
""",
    variants={"official": "dev train -> train, dev val -> valid, eval -> test; noise type: the first label; groups: uploaders"},
    parts=_fsd50k_parts,
    markers=tuple(f"{folder}/*.wav" for folder in FSD50K_AUDIO.values()),
    labels=_fsd50k_labels,
    notes="Official splits are pinned: dev.csv's split column (train -> train, val -> valid), eval.csv -> test. Noise type: the "
          "first of a clip's ground-truth labels, its most specific one (the labels are smeared: the annotated leaf labels come "
          "first, then their ancestors up to the root, e.g. Electric_guitar,Guitar,Plucked_string_instrument,Musical_instrument,"
          "Music), so up to 200 types. Groups: the Freesound uploader (FSD50K.metadata/*_clips_info_FSD50K.json): one uploader's "
          "clips are often takes of one session, a real leakage risk; dev and eval have no uploader in common by design, and an "
          "uploader the train/val split spreads over both is grouped per split. Without FSD50K.metadata each clip is its own "
          "group. Clips are 44.1 kHz 16-bit PCM mono. FSD50K is mostly sound events (speech, music, impacts): the stationarity "
          "filter decides what is usable and "
          "keeps the steady classes (hum, engine, rain, wind, fans, water); most clips are rejected.",
)

RECIPES: tuple[Recipe, ...] = (DEMAND, DNS_NOISE, WHAM_NOISE, FSD50K)
