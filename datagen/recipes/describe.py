"""`datagen recipes NAME`: one recipe in full, as text."""
from __future__ import annotations

import textwrap

from .base import Recipe


def describe_recipe(recipe: Recipe) -> str:
    """Title, facts, layout, variants with the corpora each gives, citation and an example config."""
    lines = [f"{recipe.name}: {recipe.title}", f"  {recipe.url}",
             f"  types: {', '.join(recipe.types)}; native rate {recipe.native_rate}; bandwidth {recipe.bandwidth}; {recipe.hours}",
             f"  licence: {recipe.licence}", "", "layout expected under `path` (the corpus root as distributed):"]
    lines += [f"    {line}" for line in recipe.layout.strip().splitlines()]
    lines += ["", "variants (`variant = ...`; the first is the default):"]
    for variant, description in recipe.variants.items():
        lines.append(f"  {variant}: {description}")
        for part in recipe.parts(variant):
            filled = [f"type {part.type}"]
            filled += [f"include {list(part.include)}"] if part.include else []
            filled += [f"exclude {list(part.exclude)}"] if part.exclude else []
            filled += [f"group_pattern {part.group_pattern!r}"] if part.group_pattern else []
            filled += [f"noise_type_pattern {part.noise_type_pattern!r}"] if part.noise_type_pattern else []
            filled += [f"noise_type {part.noise_type!r}"] if part.type == "noise" and not part.noise_type_pattern else []
            filled += [f"split_patterns {dict(part.split_patterns)}"] if part.split_patterns else []
            filled += ["labels from the corpus metadata"] if part.uses_labels else []
            lines.append(f"    {'part ' + part.suffix + ': ' if part.suffix else ''}{'; '.join(filled)}")
    if recipe.notes:
        lines += ["", *textwrap.wrap(recipe.notes.strip(), 100)]
    lines += ["", "cite:", *textwrap.wrap(recipe.citation.strip(), 100, initial_indent="  ", subsequent_indent="  "),
              "", "example:", "  [[corpora]]", f'  recipe = "{recipe.name}"', f'  path = "/data/{recipe.name}"  # the corpus root', ""]
    return "\n".join(lines)
