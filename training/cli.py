"""`training`: command-line front end.

    training train CONFIG --run RUN_DIR [--data BUILD_DIR]   train or resume a run (training/train.py)
    training reproduce RUN_DIR [--run NEW_DIR] [--data BUILD] re-run from the saved config, compare results
    training evaluate RUN_DIR [--split test]                  every method on a split (training/evaluate.py)
    training denoise IN... -o OUT [--checkpoint CKPT]         denoise files (training/denoise.py)

Every handled error (a bad config, manifest, checkpoint, option or folder) ends in one line and exit 2
(`manifests.cli.run_cli`, the registry `datagen` uses too).
"""
from __future__ import annotations

import argparse
import sys

from manifests.cli import Command, run_cli
from manifests.io import ManifestError
from manifests.lock import LockError

from .checkpoint import CheckpointError
from .config import ConfigError
from . import denoise, evaluate
from .denoise import DenoiseSetupError
from .device import DEVICE_NAMES, DeviceError
from .evaluate import EvaluationError
from .reducer import ReducerError


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config, with_overrides
    from .run_folder import build_location
    from .train import train

    config = load_config(args.config)
    overrides = {}
    if args.data is not None:
        overrides["data.build"] = build_location(args.data)
    if args.device is not None:
        overrides["device"] = args.device
    if overrides:
        config = with_overrides(config, **overrides)
    results = train(config, args.run)
    print(f"results: {args.run}/results.json; controller to use: {results['checkpoints'].get('best')}")
    if results.get("time_limited"):
        print("WARNING: a max_minutes budget cut a stage short; the results depend on this machine's speed")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    results, lines, agree = reproduce(args.run_dir, args.run, tolerance=args.tolerance, data=args.data)
    print("\n".join(lines))
    if agree:
        print(f"reproduced: the results of {args.run_dir} match")
        return 0
    if results["timings"]["device"] != "cpu":
        print(f"(on {results['timings']['device']}: GPU kernels are not bit-deterministic; differences are expected)")
        return 0
    print(f"not reproduced: results differ from {args.run_dir}")
    return 1


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="training config (TOML), e.g. configs/train_demo.toml")
    p.add_argument("--run", required=True, help="run folder (created, or resumed if it holds a run of the same config)")
    p.add_argument("--data", default=None, help="build folder of `datagen build` (overrides data.build)")
    p.add_argument("--device", choices=DEVICE_NAMES, default=None, help="overrides the config's device")


def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="run folder of `training train`")
    p.add_argument("--run", default=None, help="folder of the new run (default: RUN_DIR-reproduce)")
    p.add_argument("--tolerance", type=float, default=0.0, help="max absolute difference of a result (default 0: bit-identical)")
    p.add_argument("--data", default=None, help="build folder to train on (overrides data.build; must hold the recorded examples)")


COMMANDS = (
    Command("train", "train (or resume) a run: stage 1, stage 2, mask-network baseline", _train_arguments, cmd_train),
    Command("reproduce", "re-run a run from its saved config and compare the results", _reproduce_arguments, cmd_reproduce),
    evaluate.COMMAND,
    denoise.COMMAND,
)


def main(argv: list[str] | None = None) -> int:
    from .train import TrainingError

    return run_cli("training", "Train and evaluate the neural-controlled spectral gate.", COMMANDS, argv,
                   (ConfigError, ManifestError, TrainingError, CheckpointError, DeviceError, LockError, EvaluationError,
                    DenoiseSetupError, ReducerError),
                   "checkpoints are written atomically, so the last complete one is kept and training resumes from it")


if __name__ == "__main__":
    sys.exit(main())
