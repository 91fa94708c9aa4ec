"""Recipes of public music corpora."""
from __future__ import annotations

from .base import Recipe

RECIPES: tuple[Recipe, ...] = ()
