"""Recipes of public noise corpora."""
from __future__ import annotations

from .base import Recipe

RECIPES: tuple[Recipe, ...] = ()
