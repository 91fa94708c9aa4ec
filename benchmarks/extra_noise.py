#!/usr/bin/env python3
"""Fetch 26 more real stationary-noise recordings from Debian 12 packages, for training only.

    python benchmarks/extra_noise.py OUT [--cache DIR]
    python benchmarks/bench_fidelity.py ... --train-noise OUT

More real noise for training, from game data packages (0 A.D. ambience: rivers, waterfall, rain;
FlightGear: propeller and jet engines, rain, wind, tyres on gravel and asphalt; MegaGlest: night
ambience, wind, rain). Each passes `datagen`'s stationarity filter at its default threshold (3 dB),
and none is in `../shared/devcorpus`. On the fidelity benchmark they did not close the blind music gap
(docs/fidelity-notes.md); they are here to reproduce that, and as an example of a training-only noise
library. Written as OUT/<noise type>/<0ad|fg|megaglest>_<name>.<ext>, unchanged (the names are part
of the corpus: `datagen` derives source ids and groups from them). `apt-get download` fetches about
3 GB of packages into the cache (reused); nothing is installed. Licences: each package's copyright file.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FLIGHTGEAR = "usr/share/games/flightgear"
MEGAGLEST = "usr/share/games/megaglest/tilesets"
ZEROAD_ZIP = "usr/share/games/0ad/mods/public/public.zip"

# package -> (path inside the package or, for 0ad-data, inside its public.zip; written as OUT/<this path>)
RECORDINGS = {
    "0ad-data": [(f"audio/ambient/water/{name}.ogg", f"water/0ad_{name}.ogg") for name in
                 ("river_raging_21", "waterfall_31", "river_fast_21", "river_slow_21", "river_med_21")]
    + [(f"audio/ambient/weather/{name}.ogg", f"rain/0ad_{name}.ogg") for name in ("rain_11", "rain_12")],
    "flightgear-data-base": [
        (f"{FLIGHTGEAR}/Sounds/engine-prop.wav", "engine_drone/fg_engine-prop.wav"),
        (f"{FLIGHTGEAR}/Aircraft/c172p/Sounds/engine.wav", "engine_drone/fg_c172p_engine.wav"),
        (f"{FLIGHTGEAR}/Aircraft/c172p/Sounds/engine-idle.wav", "engine_drone/fg_c172p_engine-idle.wav"),
        (f"{FLIGHTGEAR}/Sounds/prop.wav", "engine_drone/fg_prop.wav"),
        (f"{FLIGHTGEAR}/Sounds/R-1535Slow.wav", "engine_drone/fg_R-1535Slow.wav"),
        (f"{FLIGHTGEAR}/Sounds/exhaust_loop.wav", "engine_drone/fg_exhaust_loop.wav"),
        (f"{FLIGHTGEAR}/Sounds/p51d_rpm1.wav", "engine_drone/fg_p51d_rpm1.wav"),
        (f"{FLIGHTGEAR}/Sounds/turbojet_fan.wav", "engine_drone/fg_turbojet_fan.wav"),
        (f"{FLIGHTGEAR}/Sounds/rain.wav", "rain/fg_rain.wav"),
        (f"{FLIGHTGEAR}/Sounds/rain-windshield.wav", "rain/fg_rain-windshield.wav"),
        (f"{FLIGHTGEAR}/Sounds/wind1.wav", "wind/fg_wind1.wav"),
        (f"{FLIGHTGEAR}/Aircraft/c172p/Sounds/tires-rolling-gravel.wav", "surface_friction/fg_tires-rolling-gravel.wav"),
        (f"{FLIGHTGEAR}/Aircraft/c172p/Sounds/tires-rolling-asphalt.wav", "surface_friction/fg_tires-rolling-asphalt.wav"),
        (f"{FLIGHTGEAR}/Aircraft/c172p/Sounds/water-fast.wav", "water/fg_water-fast.wav"),
    ],
    "megaglest-data": [
        (f"{MEGAGLEST}/dark_forest/sounds/night.ogg", "night_ambience/megaglest_dark_forest_night.ogg"),
        (f"{MEGAGLEST}/autumn/sounds/nightime.ogg", "night_ambience/megaglest_autumn_nightime.ogg"),
        (f"{MEGAGLEST}/mediterran/sounds/night.ogg", "night_ambience/megaglest_mediterran_night.ogg"),
        (f"{MEGAGLEST}/winter/sounds/wind.ogg", "wind/megaglest_winter_wind.ogg"),
        (f"{MEGAGLEST}/dark_forest/sounds/rain.ogg", "rain/megaglest_dark_forest_rain.ogg"),
    ],
}


def download(package: str, cache: Path) -> Path:
    found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        found = sorted(cache.glob(f"{package}_*.deb"))
    return found[-1]


def fetch(out: Path, cache: Path) -> int:
    cache.mkdir(parents=True, exist_ok=True)
    written = 0
    for package, members in RECORDINGS.items():
        try:
            written += extract(package, members, download(package, cache), out, cache)
        except (subprocess.CalledProcessError, KeyError, FileNotFoundError) as error:
            sys.exit(f"extra_noise.py: {package}: {error}. It expects the Debian 12 (bookworm) package; "
                     f"delete {cache} to download it again")
    return written


def extract(package: str, members: list[tuple[str, str]], deb: Path, out: Path, cache: Path) -> int:
    """Copy `members` of `deb` to OUT/<relative path>, each through a .partial file -> how many."""
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        archive = zipfile.ZipFile(Path(tmp) / ZEROAD_ZIP) if package == "0ad-data" else None
        try:
            for member, relative in members:
                target = out / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".partial")
                with (archive.open(member) if archive else open(Path(tmp) / member, "rb")) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                partial.replace(target)
        finally:
            if archive:
                archive.close()
    print(f"{package}: {len(members)} recordings from {deb.name}")
    return len(members)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write OUT/<noise type>/*.{ogg,wav} into")
    parser.add_argument("--cache", default=None, help="where the .deb files go (default: OUT-debs beside OUT, never inside it: datagen indexes OUT)")
    args = parser.parse_args()
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        sys.exit("extra_noise.py needs apt-get and dpkg-deb (a Debian or Ubuntu machine)")
    out = Path(args.out)
    count = fetch(out, Path(args.cache) if args.cache else out.with_name(out.name + "-debs"))
    print(f"{count} recordings in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
