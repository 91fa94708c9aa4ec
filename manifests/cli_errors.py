"""How the `datagen` and `training` commands end on an expected failure: one clear line, no traceback;
and the option types that make a bad number a usage error.

Shared here because it is the one package both sides may import.
"""
from __future__ import annotations

import argparse
import errno
import sys
from typing import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type` accepting integers >= `minimum` (a bad value is a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def run_command(prog: str, command: Callable[[], int | None], handled: tuple[type[Exception], ...], resume_hint: str) -> int:
    """Run `command` -> its exit code; an error of a `handled` type or a full disk exits 2, Ctrl-C exits 130.

    `resume_hint` tells the user what a rerun keeps (e.g. "completed shards are kept and the build resumes").
    """
    try:
        return int(command() or 0)
    except handled as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"{prog}: error: disk full writing {exc.filename or 'the output'}: free space and run the same command again; {resume_hint}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again: {resume_hint}", file=sys.stderr)
        return 130
