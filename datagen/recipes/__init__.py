"""Recipes for public corpora: `[[corpora]] recipe = "NAME"` expands to ready corpus tables.

`expand_corpora` runs on the parsed TOML before typing: each recipe table becomes one table per part
of the recipe, the recipe's defaults under the user's own keys (every key stays overridable).
"""
from __future__ import annotations

from manifests.typed_config import ConfigError

from . import music, noise, speech
from .base import FileLabels, Part, Recipe, check_root, matches_any

RECIPES: dict[str, Recipe] = {r.name: r for module in (speech, music, noise) for r in module.RECIPES}
LABELS_FROM_RECIPE = "recipe"

__all__ = ["RECIPES", "LABELS_FROM_RECIPE", "FileLabels", "Part", "Recipe", "check_root", "expand_corpora", "get_recipe", "part_of",
           "matches_any"]


def get_recipe(name: str, where: str, key: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"{where}: '{key}' = {name!r} is not a known recipe; use one of {', '.join(sorted(RECIPES))} "
                          "(`datagen recipes` lists them)")
    return RECIPES[name]


def part_of(recipe: Recipe, variant: str, source_type: str) -> Part:
    """The part of `recipe` (in `variant`) that gives corpora of `source_type`."""
    return next(part for part in recipe.parts(variant or recipe.default_variant) if part.type == source_type)


def _part_defaults(recipe: Recipe, part: Part, official_splits: bool) -> dict:
    defaults = Part(type=part.type)
    table = {"type": part.type, "group_namespace": part.group_namespace or recipe.name}
    for key in ("include", "exclude", "group_pattern", "group_unmatched", "noise_type", "noise_type_pattern", "extensions"):
        value = getattr(part, key)
        if value != getattr(defaults, key):
            table[key] = list(value) if isinstance(value, tuple) else value
    if official_splits and part.split_patterns:
        table["split_patterns"] = dict(part.split_patterns)
    if part.uses_labels:
        table["labels"] = LABELS_FROM_RECIPE
    return table


def expand_corpora(tables: list, where: str) -> list:
    """Corpus tables with every `recipe` table replaced by its parts (the user's keys override the recipe's)."""
    expanded = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or "recipe" not in table:
            expanded.append(table)
            continue
        key = f"corpora[{i}]"
        if not isinstance(table["recipe"], str):
            raise ConfigError(f"{where}: '{key}.recipe' must be a string, got {table['recipe']!r}")
        recipe = get_recipe(table["recipe"], where, f"{key}.recipe")
        variant = table.get("variant") or recipe.default_variant
        if variant not in recipe.variants:
            raise ConfigError(f"{where}: '{key}.variant' = {variant!r} is not a variant of recipe '{recipe.name}'; "
                              f"use one of {', '.join(repr(v) for v in recipe.variants)}")
        if "type" in table:
            raise ConfigError(f"{where}: '{key}.type' is set by recipe '{recipe.name}' ({', '.join(recipe.types)}); remove it, "
                              "or use a plain corpus (no recipe) to choose the type yourself")
        official = table.get("official_splits", True)
        parts = recipe.parts(variant)
        name = table.get("name", recipe.name)
        for part in parts:
            merged = {**_part_defaults(recipe, part, official is True), **table, "variant": variant}
            merged["name"] = f"{name}_{part.suffix}" if len(parts) > 1 and isinstance(name, str) else name
            expanded.append(merged)
    return expanded
