"""mergekit YAML recipes: read (``read_recipe``) and built with geomcheck's engine (``build_recipe``).

``geomcheck merge --config recipe.yml --out DIR`` is the command; ``config`` documents what a
recipe may hold and what is refused, ``plan`` how parameters resolve tensor by tensor.
Importing this package is cheap (no torch, no YAML parser until a recipe is read).
"""

from __future__ import annotations

from geomcheck.merge.recipe.build import Recipe, build_recipe, read_recipe
from geomcheck.merge.recipe.config import METHODS as RECIPE_METHODS

__all__ = ["Recipe", "read_recipe", "build_recipe", "RECIPE_METHODS"]
