#!/usr/bin/env python3
"""One entry point for a fresh machine: creates `.venv`, installs the project, then runs a job.

    python3 run.py demo  [--out DIR]     build the embedded demo corpus, train, evaluate, audit (default DIR: runs/demo)
    python3 run.py test  [PYTEST ARGS]   run the test suite
    python3 run.py setup                 only create / update the virtualenv
    python3 run.py lock                  rewrite constraints.txt from what the virtualenv holds now (on purpose only)

Needs nothing but Python >= 3.11. Every package is installed at the version `constraints.txt` pins, so a
fresh machine gets what the figures were measured with; the virtualenv is refreshed when pyproject.toml or
constraints.txt changes.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
CONSTRAINTS = ROOT / "constraints.txt"
# The CPU build of torch: an unpinned `torch` would pull a multi-GB CUDA build.
TORCH_PIN = "torch==2.13.0"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(CONSTRAINTS.read_bytes())
    digest.update(TORCH_PIN.encode())
    return digest.hexdigest()


def _pip(*args: str) -> None:
    subprocess.run([str(_venv_python()), "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)


def setup() -> Path:
    """Create or refresh the virtualenv; return its python."""
    if STAMP.exists() and STAMP.read_text() == _wanted_stamp():
        return _venv_python()
    if not _venv_python().exists():
        print(f"[setup] creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("[setup] installing dependencies (first run only, about a minute)", flush=True)
    _pip("-q", TORCH_PIN)
    _pip("-q", "-c", str(CONSTRAINTS), "-e", f"{ROOT}[train,dev,metrics]")
    STAMP.write_text(_wanted_stamp())
    return _venv_python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    job, rest = argv[0], argv[1:]
    if job not in {"demo", "test", "setup", "lock"}:
        print(f"run.py: unknown job {job!r}; use demo, test, setup or lock", file=sys.stderr)
        return 2
    python = setup()
    if job == "setup":
        return 0
    if job == "lock":
        return lock(python)
    if job == "test":
        return subprocess.run([str(python), "-m", "pytest", "-q", *rest], cwd=ROOT).returncode
    return demo(python, rest)


def lock(python: Path) -> int:
    """Rewrite constraints.txt from the virtualenv (torch is pinned by TORCH_PIN, this project is not pinned)."""
    frozen = subprocess.run([str(python), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    pins = sorted((line for line in frozen if "==" in line and not line.lower().startswith("torch==")), key=str.lower)
    header = ("# Versions `python3 run.py setup` installs (pip -c): the set the README's figures were measured with.\n"
              "# Refresh on purpose with `python3 run.py lock`, then rerun the tests and the demo. torch: TORCH_PIN in run.py.\n")
    CONSTRAINTS.write_text(header + "\n".join(pins) + "\n")
    print(f"[lock] {len(pins)} pins written to {CONSTRAINTS}")
    return 0


def demo(python: Path, args: list[str]) -> int:
    """The main job on the embedded default: corpus -> trained model -> per-source report -> audit."""
    parser = argparse.ArgumentParser(prog="run.py demo")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo", help="folder for the corpus and the run")
    out = parser.parse_args(args).out
    data, run = out / "data", out / "run"
    steps = [
        ("synthesize the demo corpus", ["-m", "datagen.cli", "build", "--out", str(data)]),
        ("train the controller (stages 1 and 2) and the mask-network baseline",
         ["-m", "training.cli", "train", str(ROOT / "configs" / "train_demo.toml"), "--run", str(run), "--data", str(data)]),
        ("evaluate every method on the test split", ["-m", "training.cli", "evaluate", str(run)]),
        ("audit the corpus", ["-m", "datagen.cli", "audit", str(data)]),
    ]
    for number, (title, command) in enumerate(steps, 1):
        print(f"\n=== [{number}/{len(steps)}] {title}: {' '.join(command[1:])}", flush=True)
        code = subprocess.run([str(python), *command], cwd=ROOT).returncode
        if code != 0:
            print(f"run.py demo: step {number} ({title}) failed with exit code {code}; rerunning resumes where it stopped", file=sys.stderr)
            return code
    print(f"\ndone: corpus {data}, run {run}, report {run / 'report_test' / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
