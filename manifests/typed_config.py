"""Typed TOML configs: a parsed table -> frozen dataclasses, with errors that name the key.

Shared by `datagen.config` and `training.config` (this package is the one both may import). A field
may carry `metadata=choices(...)` to restrict its values. Supported field types: nested dataclasses,
bool, int, float, str, tuple[T, ...] and dict[str, T].
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any


class ConfigError(ValueError):
    """An invalid configuration; the message names the file, the key and what is accepted."""


def choices(*values: Any) -> dict:
    """Field metadata restricting a key to `values`."""
    return {"choices": values}


def require(condition: bool, where: str, key: str, message: str) -> None:
    """Raise ConfigError("<where>: '<key>' <message>") unless `condition`."""
    if not condition:
        raise ConfigError(f"{where}: '{key}' {message}")


def _convert(value: Any, hint: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a table, got {value!r}")
        return build_dataclass(hint, value, where, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be a list, got {value!r}")
        return tuple(_convert(item, typing.get_args(hint)[0], f"{key}[{i}]", where) for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a table like {{ name = value, ... }}, got {value!r}")
        return {str(k): _convert(v, typing.get_args(hint)[1], f"{key}.{k}", where) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in the config classes, not in the file


def build_dataclass(cls: type, table: dict, where: str, prefix: str = "") -> Any:
    """An instance of dataclass `cls` from a TOML table; `where` (the file) and `prefix` (the key path) name errors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        path = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{where}: unknown key '{path}'; accepted keys here: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key, where)
        accepted = fields[name].metadata.get("choices")
        if accepted is not None and kwargs[name] not in accepted:
            raise ConfigError(f"{where}: '{key}' = {value!r} is not accepted; use one of {', '.join(repr(c) for c in accepted)}")
    missing = [f.name for f in fields.values()
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in kwargs]
    if missing:
        raise ConfigError(f"{where}: '{prefix + '.' if prefix else ''}{missing[0]}' is required")
    return cls(**kwargs)
