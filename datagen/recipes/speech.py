"""Recipes of public speech corpora."""
from __future__ import annotations

from .base import Recipe

RECIPES: tuple[Recipe, ...] = ()
