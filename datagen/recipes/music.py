"""Recipes of public music corpora: MUSDB18-HQ, the Free Music Archive (FMA) and MUSAN (music, speech and noise).

Each recipe's `path` is the folder the corpus's own archives extract to: the folder holding MUSDB18-HQ's
train/ and test/, the folder holding FMA's fma_<size>/ and fma_metadata/, the musan/ folder of
musan.tar.gz. Layouts as documented by the corpora (the sigsep MUSDB18 page and the musdb parser's
configuration, the FMA README and the code that wrote tracks.csv, the MUSAN READMEs) and read from
public preparation code (lhotse's and Kaldi's MUSAN recipes).

Groups are artists (MUSDB18-HQ: the folder name before " - "; FMA: the artist id of tracks.csv; MUSAN
music: the musician of the ANNOTATIONS files), so one artist's tracks, and with MUSDB18-HQ's `stems`
variant every stem of a track, are always in one split.
"""
from __future__ import annotations

import csv
import io
import posixpath
import re

from manifests.typed_config import ConfigError

from .base import APPLEDOUBLE, FileLabels, Part, Recipe, within_official_splits



# ---- MUSDB18-HQ: {train,test}/<Artist> - <Title>/{mixture,bass,drums,other,vocals}.wav ---------------------------

MUSDB_SUBSETS = ("train", "test")
MUSDB_STEMS = ("bass", "drums", "other", "vocals")
# the artist: the folder name before its first " - ", without a featured artist ("Triviul feat. The Fiend - Widow" is
# Triviul's) or a parenthesised credit ("The Easton Ellises (Baumi) - SDRNR" is The Easton Ellises')
# (no {n} quantifiers: datagen/labels.py formats the pattern into its error message with str.format)
MUSDB_ARTIST = r"^(?:train|test)/([^/]+?)(?: feat\. [^/]*?| \([^/)]*\))? - [^/]+/[^/]+\.wav$"
MUSDB_OFFICIAL = {"test": r"^test/"}
# artists with tracks in both train/ and test/ of the real corpus: their train/ tracks follow them into test
MUSDB_ARTISTS_IN_BOTH = {"Hollow Ground": ("Hollow Ground - Left Blind",),
                         "Skelpolu": ("Skelpolu - Human Mistakes", "Skelpolu - Together Alone"),
                         "The Long Wait": ("The Long Wait - Back Home To Blue",),
                         "Triviul": ("Triviul - Angelsaint", "Triviul - Dorothy")}


def _musdb_parts(variant: str) -> tuple[Part, ...]:
    files = ("mixture",) if variant == "mixture" else MUSDB_STEMS
    return (Part(type="music", include=tuple(f"{subset}/*/{name}.wav" for subset in MUSDB_SUBSETS for name in files),
                 exclude=APPLEDOUBLE, group_pattern=MUSDB_ARTIST, split_patterns=MUSDB_OFFICIAL),)


_MUSDB_MOVED = ", ".join(track for tracks in MUSDB_ARTISTS_IN_BOTH.values() for track in tracks)

MUSDB18HQ = Recipe(
    name="musdb18hq",
    title="MUSDB18-HQ, the uncompressed MUSDB18 (SigSep, Zenodo 3338373)",
    licence="research and educational use only, on request through Zenodo (the tracks keep their own licences, listed per track "
            "by SigSep; most are Creative Commons, several non-commercial)",
    citation="Z. Rafii, A. Liutkus, F.-R. Stoter, S. I. Mimilakis and R. Bittner, \"MUSDB18-HQ - an uncompressed version of "
             "MUSDB18\", Zenodo, 2019, doi:10.5281/zenodo.3338373; the corpus: Z. Rafii, A. Liutkus, F.-R. Stoter, S. I. "
             "Mimilakis and R. Bittner, \"The MUSDB18 corpus for music separation\", 2017, doi:10.5281/zenodo.1117372.",
    url="https://zenodo.org/records/3338373",
    native_rate="44.1 kHz (stereo, 16-bit WAV)",
    bandwidth="up to 22 kHz (uncompressed; the .stem.mp4 MUSDB18 is AAC, limited to 16 kHz)",
    hours="about 10 h: 150 full tracks (train/ 100, test/ 50), each a mixture and four stems",
    layout="""
train/A Classic Education - NightOwl/mixture.wav
train/A Classic Education - NightOwl/bass.wav
train/A Classic Education - NightOwl/drums.wav
train/A Classic Education - NightOwl/other.wav
train/A Classic Education - NightOwl/vocals.wav
test/Al James - Schoolboy Facination/mixture.wav
(path = the folder musdb18hq.zip extracts to, holding train/ and test/, not train/ or one track folder; the .stem.mp4 files of MUSDB18 are not read: convert them with musdb's musdbconvert, which writes this layout)
""",
    variants={"mixture": "the mixtures only (mixture.wav of every track): the finished mix is the clean target",
              "stems": "the four stems of every track (bass, drums, other, vocals), each a music recording; a track's stems share "
                       "its artist's group, so they are always in one split"},
    parts=_musdb_parts,
    markers=tuple(f"{subset}/*/mixture.wav" for subset in MUSDB_SUBSETS),
    notes="Groups are artists, the folder name before \" - \" (a featured artist or parenthesised credit dropped: \"Triviul "
          "feat. The Fiend\" is Triviul). Official split: test/ -> test (pinned); train/ is split by splits.fractions into the "
          "other splits: fractions = { train = 0.9, valid = 0.1, test = 0 } sends no more to test (with the default 0.1 "
          "neither, test/ being a third of the corpus). A group goes whole to a split: four artists of the real corpus have tracks in both train/ and test/ (Hollow Ground, Skelpolu, "
          "The Long Wait, Triviul), so their train/ tracks (" + _MUSDB_MOVED + ") join the test split with them and train/valid "
          "never share an artist with test. To keep the test split exactly the official 50 tracks, exclude those six (then no "
          "artist is in two splits either), or group by track, group_pattern = '^(?:train|test)/([^/]+)/' (then those artists "
          "are in train and test). musdb's validation list (14 train/ tracks) is not used: it shares artists with the training "
          "tracks. The mixture is the default clean target; the stems variant makes every stem a recording (stems are silent "
          "over long stretches, e.g. vocals between verses: excerpts are drawn where they are active, see mix.min_active_ratio; "
          "a stem silent throughout is reported and skipped). Licence: "
          "research use only; the tracks come from DSD100 (Mixing Secrets), MedleyDB, Native Instruments and others.",
)

# ---- FMA: fma_<size>/<3-digit folder>/<6-digit track id>.mp3, metadata in fma_metadata/tracks.csv --------------------

FMA_SIZES = ("small", "medium", "large", "full")
FMA_TRACK = "[0-9]" * 3 + "/" + "[0-9]" * 6 + ".mp3"  # fnmatch: 000/000002.mp3
FMA_METADATA = "fma_metadata/tracks.csv"
FMA_SPLITS = {"training": "train", "validation": "valid", "test": "test"}  # tracks.csv ('set', 'split')
_FMA_ID = re.compile(r"(?:^|/)([0-9]+)\.mp3$")


def _fma_parts(variant: str) -> tuple[Part, ...]:
    sizes = FMA_SIZES if variant == "any" else (variant,)
    return (Part(type="music", include=tuple(f"fma_{size}/{FMA_TRACK}" for size in sizes), exclude=APPLEDOUBLE, uses_labels=True),)


def _fma_tracks(fs, path: str) -> dict[int, tuple[str | None, str | None]]:
    """track id -> (artist id, official split) from tracks.csv: two header rows of column names, ('artist', 'id'),
    ('set', 'split') ..., then the index-name row 'track_id,,,...', then one row per track, the first cell its id."""
    with fs.open(path, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        top, sub = next(reader, []), next(reader, [])
        columns = {(a.strip(), b.strip()): i for i, (a, b) in enumerate(zip(top, sub))}
        missing = [f"('{a}', '{b}')" for a, b in (("artist", "id"), ("set", "split")) if (a, b) not in columns]
        if missing:
            found = ", ".join(f"('{a}', '{b}')" for a, b in list(columns)[1:6])
            raise ConfigError(f"recipe 'fma': {path} has no column {' or '.join(missing)} in its two header rows (found {found or 'none'}, "
                              "...); it is not FMA's tracks.csv (fma_metadata.zip): replace it, or set labels = \"\" and "
                              "official_splits = false (each track its own group, split by splits.fractions)")
        artist_col, split_col = columns[("artist", "id")], columns[("set", "split")]
        tracks = {}
        for row in reader:
            if not row or not row[0].strip().isdigit():  # the index-name row 'track_id,,,'
                continue
            artist = row[artist_col].strip() if artist_col < len(row) else ""
            split = row[split_col].strip() if split_col < len(row) else ""
            tracks[int(row[0])] = (artist or None, FMA_SPLITS.get(split))
    return tracks


def _fma_labels(fs, root: str, relative_paths: list[str], part: Part) -> dict[str, FileLabels]:
    """Groups by artist id and official splits (set.split) from fma_metadata/tracks.csv."""
    path = posixpath.join(root, FMA_METADATA)
    if not fs.exists(path):
        raise ConfigError(f"recipe 'fma': {path} does not exist; the artists (groups) and the official split come from it: unzip "
                          "fma_metadata.zip beside fma_<size>/ so that path holds both fma_<size>/ and fma_metadata/, or set "
                          "labels = \"\" and official_splits = false (each track its own group, split by splits.fractions: one "
                          "artist's tracks may then be in several splits)")
    tracks = _fma_tracks(fs, path)
    artists, splits = {}, {}
    for relative in relative_paths:
        match = _FMA_ID.search(relative)
        artist, split = tracks.get(int(match.group(1)), (None, None)) if match else (None, None)
        if artist is not None:
            artists[relative] = f"artist {artist}"
        splits[relative] = split
    groups = within_official_splits(artists, splits)
    return {rel: FileLabels(group=groups.get(rel), split=splits.get(rel)) for rel in relative_paths}


FMA = Recipe(
    name="fma",
    title="FMA, the Free Music Archive dataset (Defferrard et al., ISMIR 2017)",
    licence="the audio: the Creative Commons licence each artist chose, per track in tracks.csv ('track', 'license'), many "
            "non-commercial or no-derivatives; the metadata: CC BY 4.0",
    citation="M. Defferrard, K. Benzi, P. Vandergheynst and X. Bresson, \"FMA: A Dataset for Music Analysis\", Proc. 18th "
             "International Society for Music Information Retrieval Conference (ISMIR), 2017, arXiv:1612.01840.",
    url="https://github.com/mdeff/fma",
    native_rate="44.1 kHz for most tracks (MP3; each file is read at its own rate and resampled)",
    bandwidth="about 16 to 20 kHz: MP3, mostly 320 kbit/s or variable bit rate, whose encoders low-pass at 16 kHz (128 kbit/s) "
              "to about 20 kHz (320 kbit/s); per track, bit rates are in ('track', 'bit_rate')",
    hours="fma_full 106,574 untrimmed tracks (about 343 days, 8,200 h, 879 GiB); fma_large the same tracks as 30 s clips "
          "(about 890 h, 93 GiB); fma_medium 25,000 clips (about 208 h); fma_small 8,000 clips (about 67 h)",
    layout="""
fma_small/000/000002.mp3
fma_small/155/155066.mp3
fma_large/000/000002.mp3
fma_full/000/000002.mp3
fma_metadata/tracks.csv
(path = the folder holding the fma_<size>/ folder(s) the fma_<size>.zip files extract to and the fma_metadata/ folder of fma_metadata.zip, like the data/ folder of the FMA README, not fma_small/ itself)
""",
    variants={"any": "every fma_<size>/ folder under path (small, medium, large, full); unpack one size, or choose it with "
                     "a variant: the sizes are nested and repeat tracks",
              **{size: f"fma_{size}/ only" for size in FMA_SIZES}},
    parts=_fma_parts,
    markers=tuple(f"fma_{size}/{FMA_TRACK}" for size in FMA_SIZES),
    labels=_fma_labels,
    notes="Groups are artists (('artist', 'id') of fma_metadata/tracks.csv, the first column being the track id); the "
          "official split (('set', 'split'): training -> train, validation -> valid, test -> test) is pinned; FMA made it "
          "with an artist filter, so no artist is in two splits (one that were would be grouped per split). Every track of "
          "fma_full has a split (tracks without a genre are in training). tracks.csv (about 100,000 rows) is read once per "
          "scan, taking some seconds. The sizes are nested (small within medium within large; full has the untrimmed tracks "
          "of large): with several unpacked under path, variant any reads a track once per size it is in (same artist, "
          "so same split; choose one size with variant small / medium / large / full). The 30 s clips (small, medium, "
          "large) are cut from the middle of each track. MP3 is band-limited (about 16 to 20 kHz, lower for low bit "
          "rates): set [filters] min_bandwidth_hz (e.g. 16000) to keep the fuller-band tracks only; a few files are "
          "truncated or undecodable (see the FMA wiki's errata): they are reported in build.json and skipped. Licences "
          "differ per track (CC BY, BY-SA, BY-NC, BY-NC-ND, ...). MUSAN's music/fma and music/fma-western-art hold "
          "Free Music Archive tracks too: with both recipes, one recording may be in two splits.",
)

# ---- MUSAN: musan/{music,speech,noise}/<source>/<kind>-<source>-<NNNN>.wav, ANNOTATIONS per source folder ---------

MUSAN_FOLDERS = {"music": ("fma", "fma-western-art", "hd-classical", "jamendo", "rfm"),
                 "speech": ("librivox", "us-gov"),
                 "noise": ("free-sound", "sound-bible")}
MUSAN_NOISE_TYPE = "musan"  # the noise files no ANNOTATIONS heading names: MUSAN has no noise classes
MUSAN_BACKGROUND = "background"  # the files free-sound/ANNOTATIONS lists under its heading (background noises)
_MUSAN_FILE_ID = re.compile(r"^(music|speech|noise)-[A-Za-z0-9-]+-[0-9]+$")


def _musan_part(kind: str, suffix: str) -> Part:
    include = tuple(f"{kind}/{folder}/{kind}-*.wav" for folder in MUSAN_FOLDERS[kind])
    if kind == "music":  # artists from the ANNOTATIONS; a file they do not list is its own group
        return Part(type="music", suffix=suffix, include=include, exclude=APPLEDOUBLE, group_unmatched="own_group", uses_labels=True)
    if kind == "speech":  # no speaker identities in MUSAN: each recording is its own group
        return Part(type="speech", suffix=suffix, include=include, exclude=APPLEDOUBLE)
    return Part(type="noise", suffix=suffix, include=include, exclude=APPLEDOUBLE, group_unmatched="own_group",
                noise_type=MUSAN_NOISE_TYPE, uses_labels=True)


def _musan_parts(variant: str) -> tuple[Part, ...]:
    if variant == "all":
        return tuple(_musan_part(kind, kind) for kind in MUSAN_FOLDERS)
    return (_musan_part(variant, ""),)


def _read_text(fs, path: str) -> str:
    with fs.open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def _selected_folders(relative_paths: list[str], kind: str) -> list[str]:
    return sorted({rel.split("/")[1] for rel in relative_paths if rel.startswith(f"{kind}/") and rel.count("/") >= 2})


def _musan_music_labels(fs, root: str, relative_paths: list[str]) -> dict[str, FileLabels]:
    """Groups: the musician (4th column) of music/<source>/ANNOTATIONS, lines '<file id> <genre,genre> <Y|N> <Musician_Name>'.
    One musician is one group over all source folders (Kevin_MacLeod is in fma-western-art and rfm); spellings differing
    only in case are one musician."""
    artists: dict[str, str] = {}
    for folder in _selected_folders(relative_paths, "music"):
        path = posixpath.join(root, "music", folder, "ANNOTATIONS")
        if not fs.exists(path):
            raise ConfigError(f"recipe 'musan': {path} does not exist; MUSAN's music artists (groups) come from it: restore it from "
                              "musan.tar.gz, or set labels = \"\" (each music file its own group)")
        for line in _read_text(fs, path).splitlines():
            tokens = line.split()
            if len(tokens) >= 4 and _MUSAN_FILE_ID.match(tokens[0]):
                artists[f"music/{folder}/{tokens[0]}.wav"] = " ".join(tokens[3:])
    spelling: dict[str, str] = {}
    for name in sorted(set(artists.values())):
        spelling.setdefault(name.casefold(), name)
    return {rel: FileLabels(group=spelling[artists[rel].casefold()]) for rel in relative_paths if rel in artists}


def _heading_type(heading: str) -> str:
    words = heading.strip().rstrip(":").strip().lower()
    if "background" in words:
        return MUSAN_BACKGROUND
    return re.sub(r"[^a-z0-9]+", "_", words).strip("_") or MUSAN_NOISE_TYPE


def _musan_noise_labels(fs, root: str, relative_paths: list[str]) -> dict[str, FileLabels]:
    """Noise types from noise/<source>/ANNOTATIONS where it has a heading: free-sound's lists its background-noise files
    under one ('background'); a file listed under no heading, or not listed, keeps the recipe's noise type ('musan')."""
    labels = {}
    for folder in _selected_folders(relative_paths, "noise"):
        path = posixpath.join(root, "noise", folder, "ANNOTATIONS")
        if not fs.exists(path):
            continue
        heading = None
        for line in _read_text(fs, path).splitlines():
            tokens = line.split()
            if not tokens:
                continue
            if _MUSAN_FILE_ID.match(tokens[0]):
                if heading is not None:
                    labels[f"noise/{folder}/{tokens[0]}.wav"] = FileLabels(noise_type=_heading_type(heading))
            else:
                heading = line
    return {rel: labels[rel] for rel in relative_paths if rel in labels}


def _musan_labels(fs, root: str, relative_paths: list[str], part: Part) -> dict[str, FileLabels]:
    if part.type == "music":
        return _musan_music_labels(fs, root, relative_paths)
    if part.type == "noise":
        return _musan_noise_labels(fs, root, relative_paths)
    return {}


MUSAN = Recipe(
    name="musan",
    title="MUSAN, a corpus of music, speech and noise (OpenSLR 17)",
    licence="CC BY 4.0 (OpenSLR); each file is under the Creative Commons licence, or US public-domain status, that its folder's "
            "LICENSE file gives (no non-commercial content)",
    citation="D. Snyder, G. Chen and D. Povey, \"MUSAN: A Music, Speech, and Noise Corpus\", arXiv:1510.08484, 2015.",
    url="https://www.openslr.org/17",
    native_rate="16 kHz (mono WAV)",
    bandwidth="8 kHz (16 kHz sampling; the music and speech were downsampled from their sources)",
    hours="about 109 h: music 42.5 h (645 annotated pieces), speech about 60 h (LibriVox read speech in 12 languages, "
          "about 20 h; US government hearings, debates and addresses, English, about 40 h), noise about 6 h (about 930 files)",
    layout="""
music/fma/music-fma-0000.wav
music/fma/ANNOTATIONS
music/fma-western-art/music-fma-wa-0000.wav
music/hd-classical/music-hd-0000.wav
music/jamendo/music-jamendo-0000.wav
music/rfm/music-rfm-0000.wav
speech/librivox/speech-librivox-0000.wav
speech/us-gov/speech-us-gov-0000.wav
noise/free-sound/noise-free-sound-0000.wav
noise/sound-bible/noise-sound-bible-0000.wav
(path = the musan/ folder musan.tar.gz extracts to, holding music/, speech/ and noise/, not one of them)
""",
    variants={"all": "three corpora: music (musan_music), speech (musan_speech) and noise (musan_noise)",
              "music": "the music only: groups are the musicians of the ANNOTATIONS files",
              "speech": "the speech only (LibriVox and US government recordings): each recording its own group",
              "noise": "the noise only (Freesound and SoundBible): each file its own group"},
    parts=_musan_parts,
    markers=tuple(f"{kind}/{folder}/{kind}-*.wav" for kind, folders in MUSAN_FOLDERS.items() for folder in folders),
    labels=_musan_labels,
    notes="Music groups are musicians, the 4th column of music/<source>/ANNOTATIONS ('music-fma-0000 electronica N Airglow': "
          "file, genres, vocals Y/N, musician); one musician is one group across the source folders (John_Harrison is in "
          "fma-western-art and hd-classical, Kevin_MacLeod in fma-western-art and rfm); a music file the ANNOTATIONS do not "
          "list is its own group. Speech: MUSAN gives no speaker identities (speech/librivox/ANNOTATIONS holds only gender and "
          "language, 'speech-librivox-0000 m english'; speech/us-gov has no ANNOTATIONS), so each recording is its own group: "
          "one LibriVox reader's or one hearing's speakers may be in several recordings, hence in several splits. Noise: MUSAN "
          "has no noise classes and the folder names are sites (free-sound, sound-bible), not noise types: every file is type "
          "'musan', except the background noises free-sound/ANNOTATIONS lists under its heading (37 files), type 'background'; "
          "each file is its own group and the stationarity filter decides which are usable (most are events: DTMF and dial "
          "tones, fax, footsteps, animals, thunder; the steady ones, car idling, rain, wind, room tone, remain). No official "
          "split: all by splits.fractions. Everything is 16 kHz (8 kHz bandwidth): for full-band clean material set "
          "[filters] min_bandwidth_hz, which excludes MUSAN's music and speech, or use variant noise only. MUSAN's music/fma "
          "and music/fma-western-art tracks come from the Free Music Archive: with the fma recipe too, one recording may be in "
          "two splits.",
)

RECIPES: tuple[Recipe, ...] = (MUSDB18HQ, FMA, MUSAN)
