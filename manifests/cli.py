"""The command-line frame of `datagen` and `training`: one registry of subcommands (`Command`, `run_cli`),
how a command ends on an expected failure (one clear line, no traceback, exit 2), and the option types
that make a bad number a usage error.

Shared here because it is the one package both sides may import.
"""
from __future__ import annotations

import argparse
import errno
import sys
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, how it declares its options, and what it runs (-> exit status).
    `description` (default: the help) heads its `--help`, printed as written when `raw_description`."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str = ""
    raw_description: bool = False


def build_parser(prog: str, description: str, commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The parser of a program made of `commands` (one subparser each, in order)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in commands:
        formatter = argparse.RawDescriptionHelpFormatter if command.raw_description else argparse.HelpFormatter
        child = sub.add_parser(command.name, help=command.help, description=command.description or command.help,
                               formatter_class=formatter)
        command.add_arguments(child)
        child.set_defaults(run_command_=command.run)  # not `run`: an option of that name would replace it
    return parser


def run_cli(prog: str, description: str, commands: Sequence[Command], argv: list[str] | None,
            handled: tuple[type[Exception], ...], resume_hint: str) -> int:
    """Parse `argv` against `commands` and run the chosen one through `run_command` -> its exit status."""
    args = build_parser(prog, description, commands).parse_args(argv)
    return run_command(prog, lambda: args.run_command_(args), handled, resume_hint)


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
