"""Helpers shared by the recipe tests that write fake corpus trees in their real layouts."""
from __future__ import annotations

from pathlib import Path

import pytest

from datagen.build import scan_all
from datagen.config import BuildConfig, ConfigError


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_appledouble(path: Path) -> None:
    """A macOS resource-fork file (what an archive unpacked on a Mac leaves): AppleDouble magic, not audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64))


def scan_config_error(config: BuildConfig, where: str) -> str:
    """The message of the ConfigError that scanning `config` must raise."""
    with pytest.raises(ConfigError) as info:
        scan_all(config, where)
    return str(info.value)


def found_at_top(message: str) -> str:
    """The 'found at the top: ...' part of a wrong-root error."""
    return message.split("found at the top:", 1)[1]
