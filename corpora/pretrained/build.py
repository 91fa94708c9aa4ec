#!/usr/bin/env python3
"""Build the "pretrained" corpus: real speech, music and stationary noise recordings from Debian 12 packages.

    python corpora/pretrained/build.py --out DIR [--packages P ...] [--force] [--drop-debs]

Every package is pinned (version, size and SHA-256 of the .deb as listed by the bookworm archive) in
PACKAGES below. Per package the script

  1. downloads the .deb with `apt-get download NAME=VERSION` into DIR/.debs (kept: a rerun reuses it)
     and checks its SHA-256;
  2. streams its data tarball (`dpkg-deb --fsys-tarfile`) and extracts only the wanted paths (audio
     folders, archives holding audio, the copyright file) into DIR/.scratch/<package>;
  3. selects, gates, trims and writes the audio:
        DIR/speech/<package>/<group>/<group>_NNN.flac  utterances of one speaker/voice joined into 5-15 s clips
        DIR/music/<package>/<track>.<ext>             whole tracks, copied byte for byte when soundfile reads them
        DIR/noise/<package>/<kind>/<name>.flac        ambience loops: edge silence trimmed, internal repeats cut
  4. records what it wrote in DIR/.state/<package>.json; a package whose state matches the spec, the
     pinned version and the files on disk is skipped on the next run (idempotent; --force rebuilds).

Then (always, from every state file) it writes
  DIR/index.csv                 one row per audio file (origin, licence, group, kind, duration, notes)
  DIR/sources.csv               one row per (type, package): version, licence, files, hours, noise kinds
  DIR/labels/{speech,music,noise}.csv   datagen `labels` files: path (relative to DIR/<type>), group, noise_type
  DIR/corpus.toml               a datagen build config over DIR (one corpus per type and package)
  DIR/licences/<package>.copyright     the package's copyright file (attribution)
and prints a summary: files and hours per type and package.

Only the standard library, numpy and soundfile are needed (plus apt-get and dpkg-deb). Files soundfile
cannot read are converted with ffmpeg or sox when one is installed, else skipped (reported).
Processing is deterministic: same packages in, same bytes out.

One file of ~1,100 lines on purpose: it is a standalone script (no import of this project: any Python
with numpy and soundfile runs it, e.g. the project's .venv), and most of its length is the per-package tables (pins, selection
patterns, licence overrides) that a maintainer edits together.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import gzip
import hashlib
import inspect
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import numpy as np
import soundfile as sf

SPEC_VERSION = 3  # bump when the processing changes: every package is rebuilt

# ---------------------------------------------------------------------------------------------------
# Pinned packages (Debian 12 "bookworm", main): version, .deb size, .deb SHA-256.
# ---------------------------------------------------------------------------------------------------
PACKAGES = {
    # speech
    "tuxpaint-stamps-default": ("2022.06.04-1", 160880444, "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34"),
    "fillets-ng-data-cs": ("1.0.1-1.1", 39042172, "3ecef99b9456f1c80c9625c6f2418642b52d58e7167a46bad7a412db17991b14"),
    "fillets-ng-data-nl": ("1.0.1-1.1", 32593580, "afb4443fda9ab507dee578b75be857d121718a1cd6017a474f30e0eb13dc9d10"),
    "fillets-ng-data": ("1.0.1-1.1", 70633484, "25de89afd8b1adf7bcace8290248a6a22c89cd42300317e69000e162c032cf84"),
    "ktuberling-data": ("4:22.12.3-1", 46661752, "fba44c875bfa31ea488dadd9263e87a4dcaea0bd47d28817f6c0dc6d2af970ed"),
    "klettres-data": ("4:22.12.3-1", 39529084, "1186d257a19e84230856baea0b0b1ded8be9195080fcdb2588970b5cd937f5a8"),
    "kajongg": ("4:22.12.3-1", 4713320, "be0a9cc0f9a97064ffa0ab01133f55e021c7c58f9869857431bf1ca951dadbaf"),
    "gcin-voice": ("0~20170223-3", 7740240, "6a0353f0294d06f7bd901bada3d5d9eec63b66c2ec029f92da3124d93d45de70"),
    "trigger-rally-data": ("0.6.6.1-3", 118703688, "44ac51e6717e1aac7e93b76661cce19cf8bdba154dd1df2e93b7f593b2c37cb9"),
    # music
    "wesnoth-1.16-music": ("1:1.16.9-1", 153244368, "f9bc3cde92b4ab30db5d7b85f89b4bcc3d788dd92602956d0347250850bf59bb"),
    "warzone2100-music": ("4.3.3-3", 85730052, "d3b2c9f90ea5438d45d4aff18339a03ec808e1affa9dac91f7dad61cb15ee64e"),
    "singularity-music": ("007-2", 51636048, "139ba1e408eeb0a72f1fff3760ca46558b9f81bed97dc8c0efa108c4007f4845"),
    "drascula-music": ("1.0+ds4-2", 36429732, "340e0beb1bacf005cbabebc07ebdd88adf6aee363d437f8a7d73cb0c77a93e79"),
    "fretsonfire-songs-sectoid": ("1.dfsg-3.1", 29087520, "14c1ed3e43c1a6a80eae7698f0469a0825cd1184e441968d62df89ca418aa0b4"),
    "fretsonfire-songs-muldjord": ("2.dfsg-2.1", 29272812, "b37adf8b08b46d4182c283e760e4f40622d83674e05803960ea1e11a92600c7b"),
    "hyperrogue-music": ("12.0q-1", 63836788, "61ab9f4c2169442d85f42c42d26e80c1a18b93c741f3d44f1b9d83015904e7f7"),
    "colobot-common-sounds": ("0.2.0-2", 60668912, "819e799542eac69c95b072567b5584eb3e0b2bb900de13efa3684915747b1644"),
    "supertux-data": ("0.6.3-2", 161647984, "a6ad8865972f1dbb5e7b49f4e1b381dd16a68f3028a3502cfeaca2400285d27f"),
    "flare-game": ("1.14-1", 122515912, "4ab6a8298276013d35a0806257e130d992761af1b749041433b409c3dafec508"),
    "ardentryst": ("1.71-9", 24249392, "7a01180285a4acaa980b18118127c60ac0377f4e2bcd69244b1feb7de5fc566f"),
    # noise
    "redeclipse-data": ("1.6.0-1", 862260812, "ada26453d3100bd61154ce20a699352f0b48bb29f8505f477ebdcb612f71ab42"),
    "megaglest-data": ("3.13.0-3", 242024888, "ed4783d9fc78e201a548b266f7c30325eb16cfd58a20bf4597dd6e622f84a07e"),
    "openclonk-data": ("8.1-3", 112454184, "1505314b47196c5052caf75e870ea2cf36bdb4e1d0c7e3f133da93815b7e642f"),
    "btanks-data": ("0.9.8083-9", 26408548, "fbe1a476d95c68fe73d87715f4f0aecc1bc5428a979cd19451722665c9dbb5ae"),
    "searchandrescue-data": ("1.3.0-1.1", 46517968, "0036c09a92a90a2ce4ac3dde026bb90cc306cd1964f24749c0229926ff36d1d3"),
    "lugaru-data": ("1.2-6", 34165204, "6a25e8d2d7c2d94b7873669d1f52137b2ba56e86ba5c2f08fefeacd65e526023"),
    "openarena-data": ("0.8.5split-14", 44029708, "fa68862434f02a826b7ef22008f25f406623abf4e37113c1bfab5460065483c8"),
    "sonic-pi-samples": ("3.2.2~repack-8", 21882696, "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d"),
    "plee-the-bear-data": ("0.6.0-8", 32419480, "8f8dca242ce75621ea5d175711c05780c17bad6a52bcb9b58e917db6ae2f98d7"),
    "scorched3d-data": ("44+dfsg-8", 31954088, "b0be0a6d561966a62b1f135e0e6f5681c85f12e34ecad5777cb1af9fbcb7f1da"),
    "extremetuxracer-data": ("0.8.2-1", 40596136, "8ce6c82e6fb89549d284f43f6c4b0a9d82e6c0e5da753bee0ef419276a21470c"),
    "lincity-ng-data": ("2.9~git20150314-5", 44782216, "8f5e85bd42879abdc7099b035d7a3d7468eceb6b93b52a12270c28f3f3c792f9"),
    "crrcsim-data": ("0.9.13-3.2", 5320108, "3a40a549636e6bf35b3244fa42e579cf28c7fd5a853a83682d0f902543b748d7"),
}

# Licence where the copyright file is free text (no DEP-5 Files/License paragraphs to match), read by hand
# from /usr/share/doc/<package>/copyright of the pinned version.
LICENCE_OVERRIDE = {
    "fillets-ng-data": "GPL-2",
    "fillets-ng-data-cs": "GPL-2",
    "fillets-ng-data-nl": "GPL-2",
    "fretsonfire-songs-sectoid": "Expat (MIT)",
    "fretsonfire-songs-muldjord": "CC-BY-SA-3.0",
    "singularity-music": "CC-BY-SA-3.0",
    "searchandrescue-data": "GPL (version not stated)",
    "openclonk-data": "ISC, some game content CC-BY-3.0 or CC0 (per copyright file)",
    "plee-the-bear-data": "CC-BY-SA-3.0 (media, per copyright file), code GPL-2+",
    "btanks-data": "GPL-2+ with the Battle Tanks exception (per copyright file)",
    "wesnoth-1.16-music": "GPL-2+",
}

# ---------------------------------------------------------------------------------------------------
# Selection. Paths are relative to the unpacked package root; "ARCHIVE:member" addresses a member of a
# zip/pk3 archive or an OpenClonk C4Group (.ocg) inside the package.
# ---------------------------------------------------------------------------------------------------
TUX = "usr/share/tuxpaint/stamps/"
FIL = "usr/share/games/fillets-ng/"
TRIGGER_ZIP = "usr/share/games/trigger-rally/data.zip"


def _fillets_group(match):
    lang, name = match.group(1), match.group(2)
    parts = name.split("-")
    who = parts[1] if len(parts) > 2 and parts[1] in ("m", "v") else "other"
    return "%s-%s" % (lang, {"m": "small-fish", "v": "big-fish", "other": "other-voices"}[who])


# Speech: `pattern` is matched (re.search) against the path relative to the package root; `group` is a
# format with the regex groups (str.format(*groups)) or a function of the match: one speaker / voice /
# language. Utterances of a group are gated, trimmed and joined into clips (see SPEECH_* constants).
SPEECH = {
    "tuxpaint-stamps-default": [dict(pattern=r"^usr/share/tuxpaint/stamps/.+_desc(?:_([A-Za-z]{2,3}(?:_[A-Z]{2})?))?\.ogg$",
                                     group=lambda m: "desc-" + (m.group(1) or "C"), note="spoken stamp descriptions")],
    "fillets-ng-data-cs": [dict(pattern=r"^usr/share/games/fillets-ng/sound/[^/]+/(cs)/([^/]+)\.ogg$", group=_fillets_group,
                                note="Czech game dialogue (voice actors)")],
    "fillets-ng-data-nl": [dict(pattern=r"^usr/share/games/fillets-ng/sound/[^/]+/(nl)/([^/]+)\.ogg$", group=_fillets_group,
                                note="Dutch game dialogue")],
    "fillets-ng-data": [dict(pattern=r"^usr/share/games/fillets-ng/sound/[^/]+/(en)/([^/]+)\.ogg$", group=_fillets_group,
                             note="English game dialogue")],
    "ktuberling-data": [dict(pattern=r"^usr/share/ktuberling/sounds/([a-z]{2,3}(?:_[A-Z]{2})?)/[^/]+\.(?:ogg|wav)$", group="{0}",
                             note="spoken words, one set per language")],
    "klettres-data": [dict(pattern=r"^usr/share/klettres/([a-z]{2,3}(?:_[A-Z]{2})?)/(?:alpha|syllab)/[^/]+\.ogg$", group="{0}",
                           note="spoken letters and syllables, one set per language")],
    "kajongg": [dict(pattern=r"^usr/share/kajongg/voices/((?:[a-z]{2}/)?(?:male|female)\d)/[^/]+\.ogg$",
                     group=lambda m: m.group(1).replace("/", "-"), note="Mah Jongg calls, 8 voices (en, de)")],
    "gcin-voice": [dict(pattern=r"^usr/share/gcin-voice/ogg/[^/]+/([35])\.ogg$", group="voice{0}",
                        note="Mandarin syllables, two voices")],
    "trigger-rally-data": [dict(pattern=TRIGGER_ZIP + r":sounds/codriver/([a-z]+)/[^/]+\.wav$", group="codriver-{0}",
                                note="English rally co-driver calls")],
}

MUSIC = {
    "wesnoth-1.16-music": [dict(pattern=r"^usr/share/games/wesnoth/1\.16/data/core/music/[^/]+\.ogg$")],
    "warzone2100-music": [dict(pattern=r"^usr/share/games/warzone2100/music/.+\.(?:ogg|opus)$")],
    "singularity-music": [dict(pattern=r"^usr/share/games/singularity/music/.+\.ogg$")],
    "drascula-music": [dict(pattern=r"^usr/share/scummvm/drascula/audio/[^/]+\.ogg$")],
    "fretsonfire-songs-sectoid": [dict(stems=r"^usr/share/games/fretsonfire/data/songs/sectoid/[^/]+/")],
    "fretsonfire-songs-muldjord": [dict(stems=r"^usr/share/games/fretsonfire/data/songs/muldjord/[^/]+/")],
    "hyperrogue-music": [dict(pattern=r"^usr/share/hyperrogue/music/[^/]+\.ogg$")],
    "colobot-common-sounds": [dict(pattern=r"^usr/share/games/colobot/music/[^/]+\.ogg$")],
    "supertux-data": [dict(pattern=r"^usr/share/games/supertux2/music/.+\.ogg$")],
    "flare-game": [dict(pattern=r"^usr/share/games/flare/mods/[^/]+/music/(?!wind_ambient)[^/]+\.ogg$")],
    "ardentryst": [dict(pattern=r"^usr/share/games/ardentryst/Music/[^/]+\.ogg$")],
    "fillets-ng-data": [dict(pattern=r"^usr/share/games/fillets-ng/music/[^/]+\.ogg$")],
}
MUSIC_MIN_S = 30.0  # shorter files are jingles / stingers

# Noise: (regex on the path, kind). Candidates are steady ambience loops; datagen's stationarity filter
# decides which are used (the build keeps the others so that the index can report them).
RE = "usr/share/games/redeclipse/data/sounds/ambience/"
MG = "usr/share/games/megaglest/tilesets/"
OC = "usr/share/games/openclonk/Sound.ocg:"
OA = "usr/share/games/openarena/baseoa/pak0.pk3:sound/"
NOISE = {
    "redeclipse-data": [
        (RE + r"(?:morph/)?(?:waterfall\w*|creek|water|river)\.ogg$", "water"),
        (RE + r"(?:morph/)?(?:storm)?rain\.ogg$", "rain"),
        (RE + r"(?:morph/)?(?:alien|blow|dizzy|hollow|waste|storm)?wind\d?\.ogg$", "wind"),
        (RE + r"(?:nightcrickets|cycadas)\.ogg$", "insects"),
        (RE + r"(?:morph/)?machine\d*\.ogg$", "machine"),
        (RE + r"(?:hum|electro)\.ogg$", "hum"),
        (RE + r"morph/ambient\d+\.ogg$", "drone"),
        (RE + r"(?:lava\d|fire)\.ogg$", "fire"),
        (RE + r"distant_cars\.ogg$", "traffic"),
    ],
    "megaglest-data": [
        (MG + r"[^/]+/sounds/rain\.(?:ogg|wav)$", "rain"),
        (MG + r"[^/]+/sounds/wind\.ogg$", "wind"),
        (MG + r"[^/]+/sounds/(?:night|nightime)\.ogg$", "insects"),
    ],
    "openclonk-data": [
        (OC + r"Liquids\.ocg/StereoRain\.ogg$", "rain"),
        (OC + r"Environment\.ocg/WindLoop\.ogg$", "wind"),
        (OC + r"Environment\.ocg/Waterfall\.ogg$", "water"),
        (OC + r"Structures\.ocg/FanLoop\.ogg$", "fan"),
        (OC + r"Objects\.ocg/Plane\.ocg/PropellerLoop\.ogg$", "engine"),
        (OC + r"Structures\.ocg/(?:Furnace\.ocg/Loop|SteamEngine|Elevator\.ocg/Moving)\.ogg$", "machine"),
        (OC + r"Objects\.ocg/Electrical\.ogg$", "hum"),
    ],
    "btanks-data": [
        (r"usr/share/games/btanks/data/sounds/ambient/swamp\.ogg$", "insects"),
        (r"usr/share/games/btanks/data/sounds/ambient/city\.ogg$", "traffic"),
        (r"usr/share/games/btanks/data/sounds/(?:helicopter|vehicle-sound)\.ogg$", "engine"),
    ],
    "flare-game": [
        (r"usr/share/games/flare/mods/[^/]+/soundfx/environment/rain\.ogg$", "rain"),
        (r"usr/share/games/flare/mods/[^/]+/soundfx/environment/river_loop\.ogg$", "water"),
        (r"usr/share/games/flare/mods/[^/]+/soundfx/environment/(?:cave_)?wind_loop\.ogg$", "wind"),
        (r"usr/share/games/flare/mods/fantasycore/music/wind_ambient\.ogg$", "wind"),
        (r"usr/share/games/flare/mods/[^/]+/soundfx/environment/open_fire_loop\.ogg$", "fire"),
    ],
    "searchandrescue-data": [
        (r"usr/share/games/searchandrescue/sounds/(?:hh6[05]/)?(?:jet_|helicopter_)?engine_(?:inside|outside)\d?(?:_old)?\.wav$", "engine"),
    ],
    "lugaru-data": [
        (r"usr/share/games/lugaru/Sounds/(?:Wind|DesertAmbient)\.ogg$", "wind"),
        (r"usr/share/games/lugaru/Sounds/Fire\.ogg$", "fire"),
    ],
    "openarena-data": [
        (OA + r"world/(?:wind[12]|demonwind01|new/painwind22k)\.wav$", "wind"),
        (OA + r"world/fan4?\.wav$", "fan"),
        (OA + r"world/(?:fire[12]|firesoft)\.wav$", "fire"),
        (OA + r"world/(?:drone6|tim_drone1|cf_distant01|lava_amb_01_quiet|ambient/x_\w+)\.wav$", "drone"),
        (OA + r"world/(?:machinerydrone0[12]|tim_machine)\.wav$", "machine"),
        (OA + r"world/neonhum\.wav$", "hum"),
        (OA + r"world/waterfall\.wav$", "water"),
    ],
    "trigger-rally-data": [
        (TRIGGER_ZIP + r":sounds/wind\.wav$", "wind"),
        (TRIGGER_ZIP + r":sounds/engine\.wav$", "engine"),
        (TRIGGER_ZIP + r":sounds/gravel\.wav$", "friction"),
    ],
    "sonic-pi-samples": [
        (r"usr/share/sonic-pi/samples/vinyl_hiss\.flac$", "hiss"),
        (r"usr/share/sonic-pi/samples/(?:ambi_drone|ambi_soft_buzz|ambi_haunted_hum|ambi_glass_hum|loop_drone_g_97)\.flac$", "drone"),
        (r"usr/share/sonic-pi/samples/loop_3d_printer\.flac$", "machine"),
    ],
    "plee-the-bear-data": [(r"usr/share/games/plee-the-bear/sound/weather/rain\.ogg$", "rain")],
    "ardentryst": [(r"usr/share/games/ardentryst/Sounds/(?:Rain_Loop|mdrain)\.ogg$", "rain")],
    "scorched3d-data": [
        (r"usr/share/games/scorched3d/data/globalmods/[^/]+/data/wav/misc/rain\.wav$", "rain"),
        (r"usr/share/games/scorched3d/data/globalmods/[^/]+/data/wav/misc/oceanwaves\.wav$", "water"),
        (r"usr/share/games/scorched3d/data/globalmods/[^/]+/data/wav/misc/(?:factoryloop1|nuclearloop)\.wav$", "machine"),
    ],
    "supertux-data": [
        (r"usr/share/games/supertux2/sounds/(?:waterfall|lava)\.wav$", "water"),
        (r"usr/share/games/supertux2/sounds/rain\.wav$", "rain"),
    ],
    "extremetuxracer-data": [(r"usr/share/games/etr/sounds/\w+_slide\.wav$", "friction")],
    "lincity-ng-data": [
        (r"usr/share/games/lincity-ng/sounds/(?:IndustryHigh[123]|IndustryLight3|CoalMine2|OreMine2|Recycle2|PowerCoalFull|Tip2)\.wav$", "machine"),
        (r"usr/share/games/lincity-ng/sounds/(?:WindMillHTech1|PowerSolar[12])\.wav$", "hum"),
    ],
    "crrcsim-data": [(r"usr/share/games/crrcsim/sounds/glider\.wav$", "wind")],
}

# What to extract from each data tarball: the folders (or archives) the patterns above read, and the
# package's copyright file. fnmatch patterns on the member path without the leading "./".
EXTRACT = {
    "tuxpaint-stamps-default": [TUX + "*"],
    "fillets-ng-data-cs": [FIL + "sound/*"],
    "fillets-ng-data-nl": [FIL + "sound/*"],
    "fillets-ng-data": [FIL + "sound/*", FIL + "music/*"],
    "ktuberling-data": ["usr/share/ktuberling/sounds/*"],
    "klettres-data": ["usr/share/klettres/*"],
    "kajongg": ["usr/share/kajongg/voices/*"],
    "gcin-voice": ["usr/share/gcin-voice/*"],
    "trigger-rally-data": [TRIGGER_ZIP],
    "wesnoth-1.16-music": ["usr/share/games/wesnoth/1.16/data/core/music/*"],
    "warzone2100-music": ["usr/share/games/warzone2100/music/*"],
    "singularity-music": ["usr/share/games/singularity/music/*"],
    "drascula-music": ["usr/share/scummvm/drascula/audio/*"],
    "fretsonfire-songs-sectoid": ["usr/share/games/fretsonfire/data/songs/*"],
    "fretsonfire-songs-muldjord": ["usr/share/games/fretsonfire/data/songs/*"],
    "hyperrogue-music": ["usr/share/hyperrogue/music/*"],
    "colobot-common-sounds": ["usr/share/games/colobot/music/*"],
    "supertux-data": ["usr/share/games/supertux2/music/*", "usr/share/games/supertux2/sounds/*"],
    "flare-game": ["usr/share/games/flare/mods/*/music/*", "usr/share/games/flare/mods/*/soundfx/environment/*"],
    "ardentryst": ["usr/share/games/ardentryst/Music/*", "usr/share/games/ardentryst/Sounds/*"],
    "redeclipse-data": [RE + "*"],
    "megaglest-data": [MG + "*/sounds/*"],
    "openclonk-data": ["usr/share/games/openclonk/Sound.ocg"],
    "btanks-data": ["usr/share/games/btanks/data/sounds/*"],
    "searchandrescue-data": ["usr/share/games/searchandrescue/sounds/*"],
    "lugaru-data": ["usr/share/games/lugaru/Sounds/*"],
    "openarena-data": ["usr/share/games/openarena/baseoa/pak0.pk3"],
    "sonic-pi-samples": ["usr/share/sonic-pi/samples/*"],
    "plee-the-bear-data": ["usr/share/games/plee-the-bear/sound/*"],
    "scorched3d-data": ["usr/share/games/scorched3d/data/globalmods/*/data/wav/misc/*"],
    "extremetuxracer-data": ["usr/share/games/etr/sounds/*"],
    "lincity-ng-data": ["usr/share/games/lincity-ng/sounds/*"],
    "crrcsim-data": ["usr/share/games/crrcsim/sounds/*"],
}

# Speech gates and clip assembly (per utterance; a clip joins utterances of one group and sample rate).
SPEECH_MIN_UTT_S, SPEECH_MAX_UTT_S = 0.3, 60.0
SPEECH_MIN_SNR_DB = 30.0        # 95th minus 3rd percentile of 20-ms frame levels (a recording's own noise floor)
SPEECH_MAX_CLIP_FRACTION = 5e-4  # share of samples with |x| >= 0.98
SPEECH_TARGETS_S = (8.0, 10.0, 12.0, 14.0, 9.0, 11.0, 13.0)
SPEECH_MAX_S, SPEECH_MIN_S = 15.0, 5.0
KEEP_SILENCE_S, MIN_GAP_S = 0.15, 0.25
# Noise processing
NOISE_MIN_S = 1.1               # datagen crossfade-loops noise shorter than the clip (mix.noise_loop = "crossfade")
NOISE_CAP_S = 300.0
REPEAT_R_ANY, REPEAT_R_TAIL, REPEAT_TAIL_FRAC = 0.80, 0.75, 0.20
REPEAT_MIN_LAG_S, REPEAT_MIN_OVERLAP_S = 0.5, 0.5
AUDIO_EXT = (".ogg", ".oga", ".opus", ".wav", ".flac", ".mp3", ".aif", ".aiff")

INDEX_COLUMNS = ["path", "type", "package", "version", "group", "noise_kind", "sample_rate", "channels", "duration_s",
                 "licence", "origin", "est_snr_db", "notes"]
SOURCES_COLUMNS = ["type", "package", "version", "licence", "files", "hours", "noise_kind", "stationary_files",
                   "stationary_hours", "note"]

T0 = time.time()


def log(msg: str) -> None:
    print("[pretrained %5.0fs] %s" % (time.time() - T0, msg), flush=True)


# ---------------------------------------------------------------------------------------------------
# Archives inside packages: zip/pk3 and OpenClonk C4Group (.ocg: gzip with a changed magic, scrambled headers)
# ---------------------------------------------------------------------------------------------------
ARCHIVE_RE = re.compile(r"^(.*?\.(?:pk3|zip|ocg)):(.+)$")


def _c4g_unscramble(b: bytes) -> bytes:
    b = bytearray(b)
    for i in range(0, len(b) - 2, 3):
        b[i], b[i + 2] = b[i + 2], b[i]
    return bytes(x ^ 237 for x in b)


def _c4g_members(raw: bytes, base: int = 0, prefix: str = "") -> dict:
    hdr = _c4g_unscramble(raw[base:base + 204])
    if not hdr.startswith(b"RedWolf Design GrpFolder"):
        raise ValueError("not a C4Group")
    n = struct.unpack_from("<i", hdr, 36)[0]
    data0 = base + 204 + 316 * n
    out = {}
    for i in range(n):
        e = raw[base + 204 + 316 * i: base + 204 + 316 * (i + 1)]
        name = e[:260].split(b"\0")[0].decode("latin-1")
        _packed, child, size, _r1, off = struct.unpack_from("<iiiii", e, 260)
        if child:
            out.update(_c4g_members(raw, data0 + off, prefix + name + "/"))
        else:
            out[prefix + name] = (data0 + off, size)
    return out


class Archives:
    def __init__(self, root: str):
        self.root, self.cache = root, {}

    def _open(self, rel: str):
        if rel not in self.cache:
            path = os.path.join(self.root, rel)
            if rel.endswith(".ocg"):
                with open(path, "rb") as fh:
                    d = bytearray(fh.read())
                d[0], d[1] = 0x1F, 0x8B
                raw = gzip.decompress(bytes(d))
                self.cache[rel] = ("c4g", raw, _c4g_members(raw))
            else:
                zf = zipfile.ZipFile(path)
                self.cache[rel] = ("zip", zf, [n for n in zf.namelist() if not n.endswith("/")])
        return self.cache[rel]

    def members(self, rel: str) -> list[str]:
        return sorted(self._open(rel)[2])

    def read(self, rel: str) -> bytes:
        m = ARCHIVE_RE.match(rel)
        if not m:
            with open(os.path.join(self.root, rel), "rb") as fh:
                return fh.read()
        kind, h, members = self._open(m.group(1))
        if kind == "zip":
            return h.read(m.group(2))
        off, size = members[m.group(2)]
        return h[off:off + size]

    def close(self):
        for kind, h, _ in self.cache.values():
            if kind == "zip":
                h.close()
        self.cache.clear()


def list_files(root: str, arch: Archives) -> list[str]:
    """Every file of the unpacked package (relative, '/'), archive members as ARCHIVE:member."""
    out = []
    for dp, dn, fn in os.walk(root):
        dn.sort()
        for f in sorted(fn):
            rel = os.path.relpath(os.path.join(dp, f), root).replace(os.sep, "/")
            out.append(rel)
            if f.endswith((".pk3", ".zip", ".ocg")):
                try:
                    out += [rel + ":" + m for m in arch.members(rel)]
                except Exception as exc:  # noqa: BLE001
                    log("  cannot open archive %s: %s" % (rel, exc))
    return out


# ---------------------------------------------------------------------------------------------------
# Audio helpers
# ---------------------------------------------------------------------------------------------------
_CONVERTER = shutil.which("ffmpeg") or shutil.which("sox")


def decode(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """(frames, channels) float32 and rate; files soundfile cannot read go through ffmpeg/sox when present."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            return f.read(dtype="float32", always_2d=True), f.samplerate
    except Exception:
        if not _CONVERTER:
            raise
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in" + os.path.splitext(name)[1])
        dst = os.path.join(tmp, "out.wav")
        with open(src, "wb") as fh:
            fh.write(data)
        cmd = [_CONVERTER, "-v", "quiet", "-i", src, dst] if _CONVERTER.endswith("ffmpeg") else [_CONVERTER, src, dst]
        subprocess.run(cmd, check=True, capture_output=True)
        x, sr = sf.read(dst, dtype="float32", always_2d=True)
        return x, sr


def frame_levels_db(mono: np.ndarray, sr: int, frame_s: float) -> np.ndarray:
    n = max(1, int(round(frame_s * sr)))
    m = len(mono) // n
    if m == 0:
        return np.zeros(0)
    e = (mono[:m * n].astype(np.float64).reshape(m, n) ** 2).mean(axis=1)
    return 10.0 * np.log10(e + 1e-20)


def est_snr_db(mono: np.ndarray, sr: int) -> float:
    lv = frame_levels_db(mono, sr, 0.02)
    lv = lv[lv > -100.0]
    if len(lv) < 10:
        return float("nan")
    return float(np.percentile(lv, 95) - np.percentile(lv, 3))


def fade(x: np.ndarray, sr: int, fade_s: float) -> np.ndarray:
    n = min(len(x) // 2, int(round(fade_s * sr)))
    if n <= 1:
        return x
    w = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
    w = w[:, None] if x.ndim == 2 else w
    x = x.copy()
    x[:n] *= w
    x[-n:] *= w[::-1]
    return x


def trim_utterance(mono: np.ndarray, sr: int) -> tuple[np.ndarray, float, float]:
    """Cut leading/trailing non-speech, keeping up to KEEP_SILENCE_S of the recording's own silence."""
    fs = 0.01
    lv = frame_levels_db(mono, sr, fs)
    top = lv.max()
    thr = min(max(top - 40.0, np.percentile(lv, 5) + 6.0), top - 20.0)
    act = np.nonzero(lv > thr)[0]
    n = int(round(fs * sr))
    a0, b0 = act[0] * n, min(len(mono), (act[-1] + 1) * n)
    keep = int(round(KEEP_SILENCE_S * sr))
    a, b = max(0, a0 - keep), min(len(mono), b0 + keep)
    return fade(mono[a:b], sr, 0.005), (a0 - a) / sr, (b - b0) / sr


def trim_digital_silence(x: np.ndarray, sr: int, thresh_db: float = -80.0) -> np.ndarray:
    lv = frame_levels_db(x.mean(axis=1), sr, 0.01)
    act = np.nonzero(lv > thresh_db)[0]
    if len(act) == 0:
        return x[:0]
    n = int(round(0.01 * sr))
    b = len(x) if act[-1] == len(lv) - 1 else (act[-1] + 1) * n
    return x[act[0] * n:b]


def find_internal_repeat(x: np.ndarray, sr: int):
    """(lag in samples, r) of the strongest copy of the recording inside itself (a looped segment or a loop
    cross-fade tail), or (None, r_max)."""
    mono = x.mean(axis=1).astype(np.float64)
    dec = max(1, sr // 11025)
    if dec > 1:
        mono = mono[:len(mono) // dec * dec].reshape(-1, dec).mean(axis=1)
    fs = sr / dec
    n = len(mono)
    lo, hi = int(REPEAT_MIN_LAG_S * fs), n - int(REPEAT_MIN_OVERLAP_S * fs)
    if hi <= lo:
        return None, 0.0
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(mono, nfft)
    ac = np.fft.irfft(spec * np.conj(spec), nfft)[:n]
    e = mono ** 2
    tail = np.cumsum(e[::-1])[::-1]
    head = np.cumsum(e)
    k = np.arange(lo, hi)
    r = ac[k] / (np.sqrt(tail[k] * head[n - 1 - k]) + 1e-20)
    overlap = (n - k) / float(n)
    hit = (r >= REPEAT_R_ANY) | ((r >= REPEAT_R_TAIL) & (overlap <= REPEAT_TAIL_FRAC))
    if hit.any():
        i = int(np.argmax(np.where(hit, r, -1.0)))
        return int(k[i] * dec), float(r[i])
    return None, float(r.max()) if len(r) else 0.0


def safe_gain(x: np.ndarray) -> tuple[np.ndarray, str]:
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0.999:
        g = 0.999 / peak
        return x * np.float32(g), "gain %.2f dB (decoded peak %.3f above full scale)" % (20 * math.log10(g), peak)
    return x, ""


def write_flac(path: str, x: np.ndarray, sr: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    tmp = path + ".part"
    sf.write(tmp, pcm, sr, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_")


# ---------------------------------------------------------------------------------------------------
# Licences from usr/share/doc/<package>/copyright (DEP-5: last matching Files paragraph wins)
# ---------------------------------------------------------------------------------------------------
class Licences:
    def __init__(self, root: str, pkg: str):
        self.override = LICENCE_OVERRIDE.get(pkg)
        path = os.path.join(root, "usr/share/doc", pkg, "copyright")
        self.text = open(path, encoding="utf-8", errors="replace").read() if os.path.isfile(path) else ""
        self.paragraphs = []
        if re.search(r"^Files:", self.text, re.M):  # DEP-5 paragraphs (some files lack the Format: header)
            for para in re.split(r"\n\s*\n", self.text):
                fields, cur = {}, None
                for line in para.splitlines():
                    if line[:1] in (" ", "\t"):
                        if cur:
                            fields[cur] += "\n" + line.strip()
                    elif ":" in line:
                        cur, val = line.split(":", 1)
                        cur = cur.strip().lower()
                        fields[cur] = val.strip()
                if "files" in fields and "license" in fields:
                    self.paragraphs.append((fields["files"].split(), fields["license"].split("\n")[0].strip()))

    def for_file(self, rel: str) -> str:
        if self.override:
            return self.override
        if not self.text:
            return "unknown (no copyright file)"
        m = ARCHIVE_RE.match(rel)
        if m:
            rel = os.path.join(os.path.dirname(m.group(1)), m.group(2))
        parts = rel.split("/")
        suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
        best = None
        for pats, lic in self.paragraphs:
            for pat in pats:
                if pat == "*" or (not pat.startswith("debian/") and any(
                        fnmatch.fnmatchcase(s, v) for v in _pattern_variants(pat) for s in suffixes)):
                    best = lic or best
                    break
        return best or "see copyright file"


def _pattern_variants(pat: str) -> list[str]:
    parts = pat.split("/")
    out = [pat]
    for i in range(1, len(parts)):
        rest = parts[i:]
        if any(not re.fullmatch(r"[*?]*", c) for c in rest):
            out.append("/".join(rest))
    return out


# ---------------------------------------------------------------------------------------------------
# Download and extraction
# ---------------------------------------------------------------------------------------------------
def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(pkg: str, debs: str) -> str:
    version, size, digest = PACKAGES[pkg]
    name = "%s_%s_all.deb" % (pkg, version.replace(":", "%3a"))
    path = os.path.join(debs, name)
    if os.path.isfile(path) and os.path.getsize(path) == size and sha256_file(path) == digest:
        return path
    os.makedirs(debs, exist_ok=True)
    for attempt in (1, 2):
        log("  apt-get download %s=%s (%.0f MB)" % (pkg, version, size / 1e6))
        r = subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", "%s=%s" % (pkg, version)],
                           cwd=debs, capture_output=True, text=True)
        if r.returncode == 0 and os.path.isfile(path):
            break
        if attempt == 1:
            log("  download failed (%s); running apt-get update once and retrying" % (r.stderr.strip().splitlines() or ["?"])[-1])
            subprocess.run(["apt-get", "-q", "update"], capture_output=True)
    else:
        raise RuntimeError("cannot download %s=%s: %s" % (pkg, version, r.stderr.strip()[-300:]))
    got = sha256_file(path)
    if got != digest:
        os.replace(path, path + ".bad")
        raise RuntimeError("%s: SHA-256 %s does not match the pinned %s (kept as %s.bad)" % (name, got, digest, path))
    return path


def extract(deb: str, pkg: str, dest: str) -> int:
    """Stream the data tarball and write the wanted regular files under dest; returns the count."""
    patterns = EXTRACT[pkg] + ["usr/share/doc/%s/copyright" % pkg]
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    count = 0
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if not member.isfile() or ".." in name.split("/") or not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            out = os.path.join(dest, name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with tar.extractfile(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            count += 1
    if proc.wait() != 0:
        raise RuntimeError("dpkg-deb --fsys-tarfile %s failed" % deb)
    return count


# ---------------------------------------------------------------------------------------------------
# Per-type builders: each returns index rows (dicts) and notes
# ---------------------------------------------------------------------------------------------------
def build_speech(pkg, files, arch, lic, out, notes):
    rows = []
    for spec in SPEECH.get(pkg, []):
        pat = re.compile(spec["pattern"])
        groups: dict[str, list[str]] = {}
        for rel in files:
            m = pat.search(rel)
            if m and rel.lower().endswith(AUDIO_EXT):
                g = spec["group"](m) if callable(spec["group"]) else spec["group"].format(*m.groups())
                groups.setdefault(slug(g), []).append(rel)
        for group, rels in sorted(groups.items()):
            rows += _speech_group(pkg, group, sorted(rels), arch, lic, out, notes, spec.get("note", ""))
    return rows


def _speech_group(pkg, group, rels, arch, lic, out, notes, tag):
    stats = dict(considered=0, unreadable=0, duplicate=0, length=0, clipping=0, snr=0, used=0)
    seen = set()
    buffers: dict[int, list] = {}  # sample rate -> pending utterances [(seg, lead, tail, rel, snr)]
    clips = []

    def cur_len(cur, sr):
        if not cur:
            return 0.0
        s = sum(len(u[0]) for u in cur) / sr
        return s + sum(max(0.0, MIN_GAP_S - (cur[i][2] + cur[i + 1][1])) for i in range(len(cur) - 1))

    def emit(sr):
        cur = buffers[sr]
        parts = []
        for i, (seg, lead, _tail, _rel, _snr) in enumerate(cur):
            if i:
                pad = max(0.0, MIN_GAP_S - (cur[i - 1][2] + lead))
                if pad > 0:
                    parts.append(np.zeros(int(round(pad * sr)), np.float32))
            parts.append(seg)
        clips.append((np.concatenate(parts), sr, [u[3] for u in cur], float(np.median([u[4] for u in cur]))))
        buffers[sr] = []

    for rel in rels:
        stats["considered"] += 1
        try:
            data = arch.read(rel)
        except Exception:  # noqa: BLE001
            stats["unreadable"] += 1
            continue
        digest = hashlib.md5(data).hexdigest()
        if digest in seen:
            stats["duplicate"] += 1
            continue
        seen.add(digest)
        try:
            x, sr = decode(data, rel)
        except Exception:  # noqa: BLE001
            stats["unreadable"] += 1
            continue
        mono = x.mean(axis=1)
        dur = len(mono) / sr
        if not SPEECH_MIN_UTT_S <= dur <= SPEECH_MAX_UTT_S:
            stats["length"] += 1
            continue
        if float(np.mean(np.abs(mono) >= 0.98)) > SPEECH_MAX_CLIP_FRACTION:
            stats["clipping"] += 1
            continue
        snr = est_snr_db(mono, sr)
        if not snr >= SPEECH_MIN_SNR_DB:
            stats["snr"] += 1
            continue
        seg, lead, tail = trim_utterance(mono, sr)
        stats["used"] += 1
        cur = buffers.setdefault(sr, [])
        slen = len(seg) / sr
        if slen >= SPEECH_MAX_S:  # a long utterance is a clip of its own
            saved, buffers[sr] = cur, [(seg, lead, tail, rel, snr)]
            emit(sr)
            buffers[sr] = saved
            continue
        if cur and cur_len(cur, sr) >= SPEECH_MIN_S and cur_len(cur + [(seg, lead, tail, rel, snr)], sr) > SPEECH_MAX_S:
            emit(sr)
        buffers[sr].append((seg, lead, tail, rel, snr))
        if cur_len(buffers[sr], sr) >= SPEECH_TARGETS_S[len(clips) % len(SPEECH_TARGETS_S)]:
            emit(sr)
    for sr in sorted(buffers):
        if buffers[sr] and cur_len(buffers[sr], sr) >= SPEECH_MIN_S:
            emit(sr)
    rows = []
    for n, (audio, sr, srcs, snr) in enumerate(clips, 1):
        audio, gnote = safe_gain(audio)
        rel_out = "speech/%s/%s/%s_%03d.flac" % (pkg, group, group, n)
        write_flac(os.path.join(out, rel_out), audio, sr)
        rows.append(dict(path=rel_out, type="speech", group="%s:%s" % (pkg, group), noise_kind="", sample_rate=sr, channels=1,
                         duration_s="%.3f" % (len(audio) / sr), licence=";".join(sorted({lic.for_file(s) for s in srcs})),
                         origin=";".join(srcs), est_snr_db="%.1f" % snr,
                         notes="; ".join(filter(None, ["%s; %d utterance(s) joined" % (tag, len(srcs)), gnote]))))
    notes.append("speech %s: %d clips from %d of %d files (rejected: unreadable %d, duplicate %d, length %d, clipping %d, "
                 "SNR<%.0f dB %d)" % (group, len(clips), stats["used"], stats["considered"], stats["unreadable"], stats["duplicate"],
                                      stats["length"], stats["clipping"], SPEECH_MIN_SNR_DB, stats["snr"]))
    return rows


def build_music(pkg, files, arch, lic, out, notes):
    rows, seen = [], set()
    for spec in MUSIC.get(pkg, []):
        if "stems" in spec:
            pat = re.compile(spec["stems"])
            songs: dict[str, list[str]] = {}
            for rel in files:
                m = pat.search(rel)
                if m and rel.endswith(".ogg") and os.path.basename(rel) in ("song.ogg", "guitar.ogg", "rhythm.ogg", "drums.ogg"):
                    songs.setdefault(m.group(0), []).append(rel)
            for song_dir, stems in sorted(songs.items()):
                mix, sr = None, None
                for rel in sorted(stems):
                    x, r = decode(arch.read(rel), rel)
                    if mix is None:
                        mix, sr = x, r
                    else:
                        n = max(len(mix), len(x))
                        mix = np.pad(mix, ((0, n - len(mix)), (0, 0))) + np.pad(x, ((0, n - len(x)), (0, 0)))
                mix, gnote = safe_gain(mix)
                rel_out = "music/%s/%s.flac" % (pkg, slug(os.path.basename(song_dir.rstrip("/"))))
                write_flac(os.path.join(out, rel_out), mix, sr)
                rows.append(_music_row(pkg, rel_out, sr, mix.shape[1], len(mix) / sr, lic.for_file(stems[0]), ";".join(sorted(stems)),
                                       "sum of the song's stems (%s)" % ", ".join(os.path.basename(s) for s in sorted(stems))
                                       + ("; " + gnote if gnote else "")))
            continue
        pat = re.compile(spec["pattern"])
        for rel in files:
            if not pat.search(rel):
                continue
            data = arch.read(rel)
            digest = hashlib.md5(data).hexdigest()
            if digest in seen:
                notes.append("music: %s skipped (same bytes as an earlier track)" % rel)
                continue
            seen.add(digest)
            try:
                info = sf.info(io.BytesIO(data))
                dur, sr, ch, native = info.frames / info.samplerate, info.samplerate, info.channels, True
            except Exception:  # noqa: BLE001
                try:
                    x, sr = decode(data, rel)
                except Exception as exc:  # noqa: BLE001
                    notes.append("music: %s skipped (unreadable, no converter: %s)" % (rel, str(exc)[:60]))
                    continue
                dur, ch, native = len(x) / sr, x.shape[1], False
            if dur < MUSIC_MIN_S:
                continue
            base = os.path.splitext(os.path.basename(rel))[0]
            parent = os.path.basename(os.path.dirname(rel))
            stem = slug(base if parent in ("music", "Music", "audio") else parent + "__" + base)
            if native:
                rel_out = "music/%s/%s%s" % (pkg, stem, os.path.splitext(rel)[1].lower())
                path = os.path.join(out, rel_out)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".part", "wb") as fh:
                    fh.write(data)
                os.replace(path + ".part", path)
                note = "copied unchanged"
            else:
                rel_out = "music/%s/%s.flac" % (pkg, stem)
                x, gnote = safe_gain(x)
                write_flac(os.path.join(out, rel_out), x, sr)
                note = "converted to FLAC with %s" % os.path.basename(_CONVERTER) + ("; " + gnote if gnote else "")
            rows.append(_music_row(pkg, rel_out, sr, ch, dur, lic.for_file(rel), rel, note))
    notes.append("music: %d tracks, %.2f h" % (len(rows), sum(float(r["duration_s"]) for r in rows) / 3600))
    return rows


def _music_row(pkg, rel_out, sr, ch, dur, licence, origin, note):
    return dict(path=rel_out, type="music", group=pkg, noise_kind="", sample_rate=sr, channels=ch, duration_s="%.3f" % dur,
                licence=licence, origin=origin, est_snr_db="", notes=note)


def build_noise(pkg, files, arch, lic, out, notes, seen_noise):
    rows = []
    for pattern, kind in NOISE.get(pkg, []):
        pat = re.compile(pattern)
        for rel in files:
            if not pat.search(rel):
                continue
            try:
                x, sr = decode(arch.read(rel), rel)
            except Exception as exc:  # noqa: BLE001
                notes.append("noise: %s unreadable (%s)" % (rel, str(exc)[:60]))
                continue
            steps = []
            n0 = len(x)
            x = trim_digital_silence(x, sr)
            if len(x) < n0:
                steps.append("edge silence trimmed (%.2f s)" % ((n0 - len(x)) / sr))
            if len(x) > NOISE_CAP_S * sr:
                x = x[:int(NOISE_CAP_S * sr)]
                steps.append("capped at %.0f s" % NOISE_CAP_S)
            for _ in range(20):
                lag, r = find_internal_repeat(x, sr)
                if lag is None:
                    break
                steps.append("repeat of itself at %.2f s (r=%.2f): kept one period" % (lag / sr, r))
                x = x[:lag]
            if len(x) < NOISE_MIN_S * sr:
                notes.append("noise: %s skipped (%.2f s after trimming < %.1f s)" % (rel, len(x) / sr, NOISE_MIN_S))
                continue
            pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
            digest = hashlib.md5(pcm.tobytes()).hexdigest()
            dup = None
            for prev_digest, prev_x, prev_sr, prev_path in seen_noise:
                if digest == prev_digest:
                    dup = prev_path
                elif prev_sr == sr and abs(len(prev_x) - len(x)) <= 0.05 * len(x):
                    n = min(len(x), len(prev_x))
                    a, b = x[:n].mean(axis=1), prev_x[:n].mean(axis=1)
                    if abs(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-20))) >= 0.9:
                        dup = prev_path
                if dup:
                    break
            if dup:
                notes.append("noise: %s skipped (copy of %s)" % (rel, dup))
                continue
            x, gnote = safe_gain(x)
            comps = os.path.splitext(rel.replace(":", "/"))[0].split("/")
            generic = {"sounds", "Sounds", "sound", "samples", "world", "ambience", "ambient", "environment", "misc", "wav", "data.zip",
                       "Structures.ocg", "Liquids.ocg", "Objects.ocg", "Environment.ocg", "weather"}
            stem = comps[-1] if comps[-2] in generic else comps[-2].replace(".ocg", "") + "-" + comps[-1]
            if comps[-2] == "sounds" and len(comps) > 3 and "tilesets" in comps:
                stem = comps[-3] + "-" + comps[-1]
            rel_out = "noise/%s/%s/%s.flac" % (pkg, kind, slug(stem))
            k = 2
            while any(r["path"] == rel_out for r in rows):
                rel_out = "noise/%s/%s/%s-%d.flac" % (pkg, kind, slug(stem), k)
                k += 1
            write_flac(os.path.join(out, rel_out), x, sr)
            seen_noise.append((digest, x, sr, rel_out))
            rows.append(dict(path=rel_out, type="noise", group=pkg, noise_kind=kind, sample_rate=sr, channels=x.shape[1],
                             duration_s="%.3f" % (len(x) / sr), licence=lic.for_file(rel), origin=rel, est_snr_db="",
                             notes="; ".join(steps + ([gnote] if gnote else []))))
    return rows


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------
def spec_digest(pkg: str) -> str:
    def enc(v):
        if callable(v):
            return inspect.getsource(v).strip()
        if isinstance(v, dict):
            return {k: enc(w) for k, w in sorted(v.items())}
        if isinstance(v, (list, tuple)):
            return [enc(w) for w in v]
        return v
    blob = json.dumps([SPEC_VERSION, PACKAGES[pkg], LICENCE_OVERRIDE.get(pkg), EXTRACT[pkg], enc(SPEECH.get(pkg)), enc(MUSIC.get(pkg)),
                       enc(NOISE.get(pkg)), SPEECH_MIN_SNR_DB, SPEECH_TARGETS_S, NOISE_MIN_S, MUSIC_MIN_S], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def state_ok(out: str, pkg: str) -> dict | None:
    path = os.path.join(out, ".state", pkg + ".json")
    if not os.path.isfile(path):
        return None
    try:
        state = json.load(open(path))
    except ValueError:
        return None
    if state.get("spec") != spec_digest(pkg) or state.get("version") != PACKAGES[pkg][0]:
        return None
    if not all(os.path.isfile(os.path.join(out, r["path"])) for r in state["rows"]):
        return None
    return state


def build_package(pkg: str, out: str, debs: str, seen_noise: list) -> dict:
    deb = download(pkg, debs)
    scratch = os.path.join(out, ".scratch", pkg)
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    try:
        n = extract(deb, pkg, scratch)
        arch = Archives(scratch)
        files = list_files(scratch, arch)
        log("  extracted %d files (%d entries incl. archive members)" % (n, len(files)))
        lic = Licences(scratch, pkg)
        cp = os.path.join(scratch, "usr/share/doc", pkg, "copyright")
        if os.path.isfile(cp):
            os.makedirs(os.path.join(out, "licences"), exist_ok=True)
            shutil.copyfile(cp, os.path.join(out, "licences", pkg + ".copyright"))
        for kind in ("speech", "music", "noise"):  # a rebuilt package starts from an empty folder
            shutil.rmtree(os.path.join(out, kind, pkg), ignore_errors=True)
        notes: list[str] = []
        rows = build_speech(pkg, files, arch, lic, out, notes)
        rows += build_music(pkg, files, arch, lic, out, notes) if pkg in MUSIC else []
        rows += build_noise(pkg, files, arch, lic, out, notes, seen_noise) if pkg in NOISE else []
        arch.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for r in rows:
        r["package"], r["version"] = pkg, PACKAGES[pkg][0]
    state = dict(package=pkg, version=PACKAGES[pkg][0], sha256=PACKAGES[pkg][2], spec=spec_digest(pkg), rows=rows, notes=notes)
    os.makedirs(os.path.join(out, ".state"), exist_ok=True)
    tmp = os.path.join(out, ".state", pkg + ".json.part")
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, os.path.join(out, ".state", pkg + ".json"))
    return state


def load_noise_seen(out: str, states: dict) -> list:
    """Noise already written by skipped packages, for the cross-package duplicate check."""
    seen = []
    for st in states.values():
        for r in st["rows"]:
            if r["type"] == "noise":
                x, sr = sf.read(os.path.join(out, r["path"]), dtype="float32", always_2d=True)
                pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
                seen.append((hashlib.md5(pcm.tobytes()).hexdigest(), x, sr, r["path"]))
    return seen


NOISE_KIND_NOTE = {"rain": "rain", "water": "waterfall / river / waves", "wind": "wind", "insects": "night crickets / cicadas",
                   "machine": "machinery / motors", "hum": "electrical hum", "drone": "low drones (sound design)", "fire": "fire / lava",
                   "traffic": "distant traffic / city", "engine": "vehicle / aircraft engines", "fan": "fans", "hiss": "vinyl hiss",
                   "friction": "sliding / gravel"}


def write_outputs(out: str, states: dict) -> list[dict]:
    rows = sorted((r for st in states.values() for r in st["rows"]), key=lambda r: ({"speech": 0, "music": 1, "noise": 2}[r["type"]], r["path"]))
    with open(os.path.join(out, "index.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=INDEX_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    for kind in ("speech", "music", "noise"):
        with open(os.path.join(out, "labels", kind + ".csv"), "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["path", "group", "noise_type", "package"])
            for r in rows:
                if r["type"] == kind:
                    w.writerow([r["path"][len(kind) + 1:], r["group"], r["noise_kind"], r["package"]])
    summary = []
    for kind in ("speech", "music", "noise"):
        for pkg in sorted({r["package"] for r in rows if r["type"] == kind}):
            sel = [r for r in rows if r["type"] == kind and r["package"] == pkg]
            lics = sorted({l for r in sel for l in r["licence"].split(";")})
            kinds = sorted({r["noise_kind"] for r in sel if r["noise_kind"]})
            note = {"speech": "; ".join(sorted({r["notes"].split(";")[0] for r in sel})),
                    "music": "%d tracks" % len(sel),
                    "noise": ", ".join(NOISE_KIND_NOTE.get(k, k) for k in kinds)}[kind]
            summary.append(dict(type=kind, package=pkg, version=PACKAGES[pkg][0], licence=" / ".join(lics), files=len(sel),
                                hours="%.3f" % (sum(float(r["duration_s"]) for r in sel) / 3600), noise_kind=";".join(kinds),
                                stationary_files="", stationary_hours="", note=note))
    with open(os.path.join(out, "sources.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SOURCES_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(summary)
    with open(os.path.join(out, "corpus.toml"), "w") as fh:
        fh.write(render_config(summary, ""))
    return summary


# Corpora put whole into the training split (outside the fractions): the only source of a noise kind the
# denoiser targets, which grouping by package would otherwise send to valid or test.
TRAIN_ONLY = {("noise", "sonic-pi-samples"): "the only hiss recording: keep it for training"}

# The noises the denoiser targets that no package holds as a long recording (mains hum, tape hiss, fans,
# HVAC, white / pink / brown noise): datagen's procedural generator, for training only, so every
# figure on the valid and test splits stays on real noise from packages the training never heard.
GENERATED_NOISE = ["[[corpora]]", 'name = "noise-generated"', 'type = "noise"', 'generator = "noise"',
                   "count = 6  # files per noise type (white, pink, brown, hiss, hum, fan, hvac)", "duration_s = 30.0",
                   "weight = 0.5  # against 1.0 for all the real noise packages together: a third of the noise draws",
                   'split = "train"', ""]
# Mixture hours per split of the shipped model's training corpus (corpora/pretrained/README.md, "corpus.toml").
SPLIT_HOURS = "hours = { train = 3.0, valid = 0.4, test = 0.4 }"


def render_config(summary: list[dict], prefix: str) -> str:
    """A datagen build config over the built folders: one corpus per (type, package), grouped by the labels
    (speech: package:speaker, music: package, noise: package, so no package's noise straddles splits).
    Clean corpora share the clean draws half speech, half music, and within a type sqrt(hours); noise corpora sqrt(hours)."""
    p = (prefix.rstrip("/") + "/") if prefix else ""
    lines = ["# datagen build config for the 'pretrained' corpus (written by corpora/pretrained/build.py).",
             "# Paths are relative to this file.  datagen index corpus.toml --out DIR ; datagen build corpus.toml --out DIR",
             "seed = 0", "", "[audio]", "sample_rate = 48000", "channels = 1", "clip_duration_s = 4.0", 'format = "flac24"', "",
             "[snr]", 'distribution = "choice"', "values_db = [0.0, 5.0, 10.0, 20.0]", 'definition = "active"', "",
             "[mix]", "clean_loudness_min_lufs = -35.0", "clean_loudness_max_lufs = -20.0",
             '# game ambience loops are often a few seconds long: loop them (equal-power crossfade) instead of dropping them',
             'noise_loop = "crossfade"', "noise_crossfade_s = 0.25", "", "[filters]", "stationarity_threshold_db = 3.0",
             "min_duration_s = 1.0", "", "[splits]", "fractions = { train = 0.8, valid = 0.1, test = 0.1 }",
             SPLIT_HOURS, "", "[shards]", "examples_per_shard = 64", ""]
    weights = {}
    for kind in ("speech", "music", "noise"):
        sel = [s for s in summary if s["type"] == kind]
        total = sum(math.sqrt(float(s["hours"])) for s in sel) or 1.0
        share = 1.0 if kind == "noise" else 0.5
        for s in sel:
            weights[(kind, s["package"])] = share * math.sqrt(float(s["hours"])) / total
    for s in summary:
        kind, pkg = s["type"], s["package"]
        lines += ["[[corpora]]", 'name = "%s-%s"' % (kind, pkg.replace(".", "_")), 'type = "%s"' % kind,
                  'path = "%s%s"' % (p, kind), 'include = ["%s/*"]' % pkg, 'labels = "%slabels/%s.csv"' % (p, kind),
                  "weight = %.4f" % weights[(kind, pkg)]]
        if (kind, pkg) in TRAIN_ONLY:
            lines += ['split = "train"  # %s' % TRAIN_ONLY[(kind, pkg)]]
        lines += ["# %s %s: %s files, %s h, %s" % (pkg, s["version"], s["files"], s["hours"], s["licence"]), ""]
    return "\n".join(lines + GENERATED_NOISE)


def print_summary(summary: list[dict], states: dict) -> None:
    print("\n%-7s %-28s %-20s %6s %8s  %s" % ("type", "package", "version", "files", "hours", "licence / noise kinds"))
    for kind in ("speech", "music", "noise"):
        tot_f = tot_h = 0
        for s in (s for s in summary if s["type"] == kind):
            print("%-7s %-28s %-20s %6d %8.3f  %s%s" % (kind, s["package"], s["version"], s["files"], float(s["hours"]), s["licence"],
                                                        ("  [" + s["noise_kind"] + "]") if s["noise_kind"] else ""))
            tot_f += s["files"]
            tot_h += float(s["hours"])
        print("%-7s %-28s %-20s %6d %8.3f\n" % (kind, "TOTAL", "", tot_f, tot_h))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"),
                    help="output folder (default: data/ beside this script)")
    ap.add_argument("--packages", nargs="*", help="only these packages (default: all pinned packages)")
    ap.add_argument("--force", action="store_true", help="rebuild packages even if their state is up to date")
    ap.add_argument("--debs", help="folder for the downloaded .debs (default OUT/.debs)")
    ap.add_argument("--drop-debs", action="store_true", help="delete each .deb after its package is built")
    ap.add_argument("--write-repo-config", metavar="PATH", help="also write the config with paths under data/ (the default --out) to PATH")
    ap.add_argument("--verbose", action="store_true", help="print every per-group / skip note")
    args = ap.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(os.path.join(out, ".gitignore")):
        with open(os.path.join(out, ".gitignore"), "w") as fh:
            fh.write("*\n")
    debs = os.path.abspath(args.debs or os.path.join(out, ".debs"))
    unknown = sorted(set(args.packages or []) - set(PACKAGES))
    if unknown:
        ap.error("unknown package(s): %s" % ", ".join(unknown))
    todo = args.packages or list(PACKAGES)
    log("output %s; %d package(s); converter for formats soundfile cannot read: %s" % (out, len(todo), _CONVERTER or "none"))
    states, failed = {}, []
    for pkg in PACKAGES:  # states of every package already built (also those not selected now)
        st = state_ok(out, pkg)
        if st:
            states[pkg] = st
    seen_noise = None
    for i, pkg in enumerate(todo, 1):
        if pkg in states and not args.force:
            log("[%d/%d] %s %s: up to date (%d files), skipped" % (i, len(todo), pkg, PACKAGES[pkg][0], len(states[pkg]["rows"])))
            continue
        log("[%d/%d] %s %s" % (i, len(todo), pkg, PACKAGES[pkg][0]))
        if seen_noise is None:
            seen_noise = load_noise_seen(out, {k: v for k, v in states.items() if k != pkg})
        seen_noise = [s for s in seen_noise if not s[3].startswith("noise/%s/" % pkg)]
        try:
            st = build_package(pkg, out, debs, seen_noise)
        except Exception as exc:  # noqa: BLE001
            log("  FAILED: %s" % exc)
            failed.append(pkg)
            continue
        states[pkg] = st
        by = {}
        for r in st["rows"]:
            by.setdefault(r["type"], [0, 0.0])
            by[r["type"]][0] += 1
            by[r["type"]][1] += float(r["duration_s"])
        log("  wrote " + (", ".join("%s %d files %.2f h" % (k, v[0], v[1] / 3600) for k, v in sorted(by.items())) or "nothing"))
        for note in st["notes"] if args.verbose else [n for n in st["notes"] if n.startswith("speech")]:
            log("    " + note)
        if args.drop_debs:
            for f in os.listdir(debs):
                if f.startswith(pkg + "_") and f.endswith(".deb"):
                    os.remove(os.path.join(debs, f))
    shutil.rmtree(os.path.join(out, ".scratch"), ignore_errors=True)
    summary = write_outputs(out, states)
    if args.write_repo_config:
        with open(args.write_repo_config, "w") as fh:
            fh.write(render_config(summary, "data"))
    print_summary(summary, states)
    log("wrote %s/{index.csv,sources.csv,labels/*.csv,corpus.toml}; %d package(s) built or up to date" % (out, len(states)))
    if failed:
        log("FAILED packages: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
