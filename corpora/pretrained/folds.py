#!/usr/bin/env python3
"""Write a leave-packages-out fold of corpus.toml: the named noise packages go whole to valid or test, every
other noise package to train (speech and music stay split by group as in corpus.toml).

    python corpora/pretrained/folds.py --valid lugaru-data redeclipse-data --test btanks-data openclonk-data \\
        [--config corpora/pretrained/corpus.toml] -o fold.toml

-o (required) must be a new file in the config's folder, since the config's paths are relative to it.
Packages: the `package` column of labels/noise.csv, or `noise-<package>` in the config.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE = re.compile(r"(?m)^\[\[corpora\]\]\n")


def fold_config(text: str, valid: list[str], test: list[str]) -> str:
    """`text` (a corpus.toml) with every real noise corpus pinned: `valid` and `test` packages to those splits,
    the others to train. Raises ValueError naming a package the config does not hold or one named twice."""
    overlap = sorted(set(valid) & set(test))
    if overlap:
        raise ValueError(f"package(s) in both --valid and --test: {', '.join(overlap)}")
    config = tomllib.loads(text)
    real_noise = {c["name"][len("noise-"):] for c in config["corpora"] if c["type"] == "noise" and "path" in c}
    unknown = sorted(set(valid + test) - real_noise)
    if unknown:
        raise ValueError(f"no noise corpus for package(s) {', '.join(unknown)}; the config has: {', '.join(sorted(real_noise))}")
    head, *tables = TABLE.split(text)
    out = [head]
    for table in tables:
        name = re.search(r'(?m)^name = "noise-([^"]+)"', table)
        if name and name.group(1) in real_noise:
            split = "valid" if name.group(1) in valid else "test" if name.group(1) in test else "train"
            table = re.sub(r'(?m)^split = .*\n', "", table)
            table = table.replace(name.group(0), f'{name.group(0)}\nsplit = "{split}"  # fold', 1)
        out.append(table)
    return "[[corpora]]\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--valid", nargs="+", required=True, help="noise packages for the valid split")
    parser.add_argument("--test", nargs="+", required=True, help="noise packages for the test split")
    parser.add_argument("--config", type=Path, default=HERE / "corpus.toml")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    if args.out.resolve().parent != args.config.resolve().parent:
        parser.error(f"-o must be in {args.config.resolve().parent} (the config's paths are relative to it)")
    if args.out.resolve() == args.config.resolve():
        parser.error("-o must not be the config it reads")
    try:
        args.out.write_text(fold_config(args.config.read_text(), args.valid, args.test))
    except (OSError, ValueError) as exc:
        print(f"folds: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: valid {', '.join(args.valid)}; test {', '.join(args.test)}; other noise packages: train")
    return 0


if __name__ == "__main__":
    sys.exit(main())
