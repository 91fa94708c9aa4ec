"""Recipes of public speech corpora: LibriSpeech, LibriTTS-R, VCTK 0.92, DAPS and EARS.

Each recipe's `path` is the folder the corpus's own archives extract to (LibriSpeech/, LibriTTS_R/,
VCTK-Corpus-0.92/, daps/, the folder holding EARS's p001/ ... p107/). Groups are speakers, read from
the path; official splits (LibriSpeech and LibriTTS-R subsets, the EARS benchmark speakers) are
`split_patterns` pins. Layouts as documented by the corpora (READMEs, download scripts) and read
from public preparation code (lhotse's recipes, the EARS benchmark scripts).
"""
from __future__ import annotations

from .base import APPLEDOUBLE, Part, Recipe

# ---- LibriSpeech and LibriTTS-R: <subset>/<speaker>/<chapter>/<utterance> -----------------------------

LIBRI_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean", "test-other")
LIBRI_CLEAN_SUBSETS = tuple(s for s in LIBRI_SUBSETS if "-clean" in s)
# speaker IDs are unique over the whole corpus (each speaker is in exactly one subset) and LibriTTS-R keeps
# LibriSpeech's speaker IDs and subsets, so both recipes key groups "librispeech:<speaker>": the same reader in
# both corpora is one group (never in two splits when both are used)
LIBRI_SPEAKER = r"^(?:train|dev|test)-[^/]+/([0-9]+)/"
LIBRI_OFFICIAL = {"train": r"^train-", "valid": r"^dev-", "test": r"^test-"}
LIBRI_VARIANTS = {
    "all": "every subset: train-clean-100, train-clean-360, train-other-500 (train), dev-clean, dev-other (valid), "
           "test-clean, test-other (test)",
    "clean": "the 'clean' subsets only: train-clean-100, train-clean-360, dev-clean, test-clean",
}


def _libri_parts(extension: str):
    def parts(variant: str) -> tuple[Part, ...]:
        subsets = LIBRI_CLEAN_SUBSETS if variant == "clean" else LIBRI_SUBSETS
        return (Part(type="speech", include=tuple(f"{s}/*.{extension}" for s in subsets), exclude=APPLEDOUBLE,
                     group_pattern=LIBRI_SPEAKER, group_namespace="librispeech", split_patterns=LIBRI_OFFICIAL),)

    return parts


LIBRISPEECH = Recipe(
    name="librispeech",
    title="LibriSpeech ASR corpus (OpenSLR 12)",
    licence="CC BY 4.0",
    citation="V. Panayotov, G. Chen, D. Povey and S. Khudanpur, \"Librispeech: an ASR corpus based on public domain audio books\", "
             "Proc. ICASSP 2015, pp. 5206-5210.",
    url="https://www.openslr.org/12",
    native_rate="16 kHz",
    bandwidth="<= 8 kHz (16 kHz FLAC from MP3-sourced LibriVox audio; many readers have less)",
    hours="982 h (train-clean-100 100.6 h, train-clean-360 363.6 h, train-other-500 496.7 h; dev 10.7 h, test 10.5 h)",
    layout="""
train-clean-100/103/1240/103-1240-0000.flac
train-clean-100/103/1240/103-1240.trans.txt
dev-clean/84/121123/84-121123-0000.flac
test-clean/1089/134686/1089-134686-0000.flac
SPEAKERS.TXT
(path = the LibriSpeech/ folder the tarballs extract to, holding the subset folders, not one subset folder; to use one subset, keep path there and set include = ["train-clean-100/*"])
""",
    variants=LIBRI_VARIANTS,
    parts=_libri_parts("flac"),
    markers=tuple(f"{s}/*/*/*-*-*.flac" for s in LIBRI_SUBSETS),
    notes="Groups are speakers (the folder under the subset). Official splits: train-* -> train, dev-* -> valid, test-* -> test "
          "(pinned; set official_splits = false to split every selected speaker by splits.fractions instead, e.g. with "
          "include = [\"train-clean-100/*\"] alone, which otherwise leaves valid and test empty). Only the seven subset folders are "
          "read: intro/, mp3/ and the MiniLibriSpeech subsets (train-clean-5, dev-clean-2, which repeat files of train-clean-100 "
          "and dev-clean) are left out. Pointing path at one subset folder is an error: the subset name is what gives the "
          "official split. LibriTTS-R (recipe libritts_r) has the same speaker IDs and subsets: used together, a reader is one "
          "group in both.",
)

LIBRITTS_R = Recipe(
    name="libritts_r",
    title="LibriTTS-R, restored LibriTTS (OpenSLR 141)",
    licence="CC BY 4.0",
    citation="Y. Koizumi, H. Zen, S. Karita, Y. Ding, K. Yatabe, N. Morioka, M. Bacchiani, Y. Zhang, W. Han and A. Bapna, "
             "\"LibriTTS-R: A Restored Multi-Speaker Text-to-Speech Corpus\", Proc. Interspeech 2023.",
    url="https://www.openslr.org/141",
    native_rate="24 kHz",
    bandwidth="<= 12 kHz (24 kHz WAV; restored with Miipher)",
    hours="586 h, 2,456 speakers (train 555 h: clean-100 53.8 h, clean-360 191.3 h, other-500 310.1 h; dev 15.4 h, test 15.3 h)",
    layout="""
train-clean-100/19/198/19_198_000000_000000.wav
train-clean-100/19/198/19_198_000000_000000.normalized.txt
train-clean-100/19/198/19_198_000000_000000.original.txt
train-clean-100/19/198/19_198.trans.tsv
dev-clean/84/121123/84_121123_000007_000001.wav
test-clean/1089/134686/1089_134686_000001_000001.wav
SPEAKERS.txt
(path = the LibriTTS_R/ folder the tarballs extract to, holding the subset folders, not one subset folder; to use one subset, keep path there and set include = ["train-clean-100/*"])
""",
    variants=LIBRI_VARIANTS,
    parts=_libri_parts("wav"),
    markers=tuple(f"{s}/*/*/*_*_*_*.wav" for s in LIBRI_SUBSETS),
    notes="Groups are speakers (the folder under the subset), the same IDs as LibriSpeech's. Official splits: train-* -> train, "
          "dev-* -> valid, test-* -> test (pinned; official_splits = false splits by splits.fractions). The macOS resource-fork "
          "files that ship in some subsets (._84_121550_000007_000000.wav) are excluded; a file that does not decode "
          "(1092_134562_000013_000004.wav was reported corrupt) is reported in build.json and skipped. Nine LibriTTS utterances "
          "are absent from LibriTTS-R (NOTE.txt).",
)

# ---- VCTK 0.92: wav48_silence_trimmed/<speaker>/<speaker>_<utt>_mic<1|2>.flac -------------------------

VCTK_AUDIO = "wav48_silence_trimmed"
VCTK_MICS = {"mic1": ("mic1",), "mic2": ("mic2",), "both": ("mic1", "mic2")}


def _vctk_parts(variant: str) -> tuple[Part, ...]:
    return (Part(type="speech", include=tuple(f"{VCTK_AUDIO}/*_{mic}.flac" for mic in VCTK_MICS[variant]), exclude=APPLEDOUBLE,
                 group_pattern=rf"^{VCTK_AUDIO}/([^/]+)/"),)


VCTK = Recipe(
    name="vctk",
    title="CSTR VCTK Corpus 0.92 (Edinburgh DataShare)",
    licence="CC BY 4.0",
    citation="J. Yamagishi, C. Veaux and K. MacDonald, \"CSTR VCTK Corpus: English Multi-speaker Corpus for CSTR Voice Cloning "
             "Toolkit (version 0.92)\", University of Edinburgh, The Centre for Speech Technology Research (CSTR), 2019, "
             "doi:10.7488/ds/2645.",
    url="https://datashare.ed.ac.uk/handle/10283/3443",
    native_rate="48 kHz",
    bandwidth="full band, up to 24 kHz (studio microphones recorded at 96 kHz / 24 bit, delivered as 48 kHz / 16 bit FLAC)",
    hours="about 44 h per microphone as commonly cited (110 speakers x about 400 sentences; the 0.92 files are silence-trimmed)",
    layout="""
wav48_silence_trimmed/p225/p225_001_mic1.flac
wav48_silence_trimmed/p225/p225_001_mic2.flac
wav48_silence_trimmed/s5/s5_001_mic1.flac
txt/p225/p225_001.txt
speaker-info.txt
(path = the VCTK-Corpus-0.92/ folder holding wav48_silence_trimmed/; the 0.80 release's wav48/ layout is not this recipe's)
""",
    variants={
        "mic1": "the omni-directional DPA 4035 (files *_mic1.flac)",
        "mic2": "the small-diaphragm Sennheiser MKH 800 (files *_mic2.flac; p280 has none; the README reports technical issues with "
                "p280's and p315's MKH 800 recordings)",
        "both": "both microphones: two recordings of each utterance, always in one split (the group is the speaker)",
    },
    parts=_vctk_parts,
    markers=(f"{VCTK_AUDIO}/*_mic[12].flac",),
    notes="Groups are speakers (the folder under wav48_silence_trimmed/: p225 ... p376 and s5, 110 in all). No official split: "
          "speakers are split by splits.fractions. One microphone by default, so the same utterance is never drawn twice; with "
          "variant both the two recordings of an utterance share the speaker's group and so one split. Only the audio is read: "
          "p315's lost transcripts (no txt/p315/) do not matter here, and p280's missing MKH 800 files only make the mic2 "
          "variant one speaker smaller.",
)

# ---- DAPS: <version>/<speaker>_script<n>_<version>.wav ----------------------------------------------

DAPS_VERSIONS = {
    "clean": "studio recordings with most non-speech sounds (breaths, mouth sounds) removed by a sound engineer: the clean target",
    "produced": "the clean version with the engineer's EQ, compression and effects (the final studio version)",
    "cleanraw": "the unedited studio recordings, breaths and mouth sounds included",
}


def _daps_parts(variant: str) -> tuple[Part, ...]:
    return (Part(type="speech", include=(f"{variant}/*_{variant}.wav",), exclude=APPLEDOUBLE,
                 group_pattern=r"(?:^|/)([fm][0-9]+)_script[0-9]+_"),)


DAPS = Recipe(
    name="daps",
    title="DAPS (Device and Produced Speech), Mysore 2015 (Zenodo)",
    licence="CC BY-NC 4.0",
    citation="G. J. Mysore, \"Can we automatically transform speech recorded on common consumer devices in real-world environments "
             "into professional production quality speech? - A dataset, insights, and challenges\", IEEE Signal Processing Letters "
             "22(8), pp. 1006-1010, 2015.",
    url="https://doi.org/10.5281/zenodo.4660670",
    native_rate="44.1 kHz",
    bandwidth="full band, up to 22 kHz (studio versions, 44.1 kHz WAV)",
    hours="about 4.5 h per version (20 speakers x 5 scripts, about 14 min per speaker; 15 versions)",
    layout="""
clean/f1_script1_clean.wav
clean/m10_script5_clean.wav
produced/f1_script1_produced.wav
cleanraw/f1_script1_cleanraw.wav
ipad_balcony1/f1_script1_ipad_balcony1.wav
iphone_livingroom1/m3_script2_iphone_livingroom1.wav
(path = the daps/ folder daps.tar.gz extracts to, holding one folder per version)
""",
    variants=DAPS_VERSIONS,
    parts=_daps_parts,
    markers=("clean/[fm]*_script*_clean.wav", "produced/[fm]*_script*_produced.wav", "cleanraw/[fm]*_script*_cleanraw.wav"),
    notes="Groups are speakers (f1 ... f10, m1 ... m10, from the file name). No official split: 20 speakers are split by "
          "splits.fractions (16 / 2 / 2 with the defaults). One studio version only: the 12 device/room versions (ipad_*, "
          "ipadflat_*, iphone_*) are the same speech re-recorded in noisy, reverberant rooms and must never be a clean target, "
          "and the sample folder (every version of one script) and supplementary_files are left out. Non-commercial licence.",
)

# ---- EARS: p001/ ... p107/, one folder of 48 kHz WAV per speaker ------------------------------------

EARS_NON_SPEECH = ("interjection", "melodic", "nonverbal", "vegetative")  # the styles the EARS-WHAM / EARS-Reverb scripts hold out


def _ears_parts(variant: str) -> tuple[Part, ...]:
    exclude = APPLEDOUBLE + (tuple(f"p*/{style}*" for style in EARS_NON_SPEECH) if variant == "speech" else ())
    return (Part(type="speech", include=("p[0-9][0-9][0-9]/*.wav",), exclude=exclude, group_pattern=r"^(p[0-9]{3})/",
                 split_patterns={"train": r"^p0[0-9][0-9]/", "valid": r"^p10[01]/", "test": r"^p10[2-7]/"}),)


EARS = Recipe(
    name="ears",
    title="EARS, Expressive Anechoic Recordings of Speech (Richter et al. 2024)",
    licence="CC BY-NC 4.0",
    citation="J. Richter, Y.-C. Wu, S. Krenn, S. Welker, B. Lay, S. Watanabe, A. Richard and T. Gerkmann, \"EARS: An Anechoic "
             "Fullband Speech Dataset Benchmarked for Speech Enhancement and Dereverberation\", Proc. Interspeech 2024.",
    url="https://github.com/facebookresearch/ears_dataset",
    native_rate="48 kHz",
    bandwidth="full band, up to 24 kHz (anechoic chamber, 48 kHz WAV)",
    hours="100 h, 107 speakers",
    layout="""
p001/emo_adoration_freeform.wav
p001/emo_adoration_sentences.wav
p001/freeform_speech_01.wav
p001/rainbow_01_regular.wav
p001/sentences_01_whisper.wav
p107/sentences_24_regular.wav
(path = the folder the per-speaker archives p001.zip ... p107.zip are unzipped into, e.g. EARS/)
""",
    variants={
        "all": "every recording of the 107 speakers",
        "speech": "without the non-speech styles the EARS-WHAM and EARS-Reverb benchmarks hold out (files interjection_*, "
                  "melodic_*, nonverbal_*, vegetative_*)",
    },
    parts=_ears_parts,
    markers=("p[0-9][0-9][0-9]/*.wav",),
    notes="Groups are speakers (the p001 ... p107 folders). Official split, the speaker split of the EARS-WHAM and EARS-Reverb "
          "benchmarks (sp-uhh/ears_benchmark, generate_ears_wham.py / generate_ears_reverb.py): p001-p099 train, p100-p101 valid, "
          "p102-p107 test (pinned; official_splits = false splits by splits.fractions). Only the speaker folders are read, so the "
          "noisy blind test set (blind_testset/) and JSON metadata beside them are left out. Non-commercial licence.",
)

RECIPES: tuple[Recipe, ...] = (LIBRISPEECH, LIBRITTS_R, VCTK, DAPS, EARS)
