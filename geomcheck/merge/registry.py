"""The merge methods by name: ``METHODS["slerp"]`` etc."""

from __future__ import annotations

from geomcheck.errors import MergeError, UnknownMergeMethodError, unknown_name_message
from geomcheck.merge._base import MergeMethod
from geomcheck.merge.methods import (
    dare,
    karcher,
    linear,
    model_stock,
    multislerp,
    nuslerp,
    slerp,
    task_arithmetic,
    ties,
)

__all__ = ["METHODS", "get_method"]

METHODS: dict[str, MergeMethod] = {
    m.name: m
    for m in (
        linear.METHOD,
        slerp.METHOD,
        nuslerp.METHOD,
        multislerp.METHOD,
        karcher.METHOD,
        task_arithmetic.METHOD,
        ties.METHOD,
        dare.LINEAR,
        dare.TIES,
        model_stock.METHOD,
    )
}


def get_method(method: str | MergeMethod) -> MergeMethod:
    """The registered method called ``method`` (a MergeMethod passes through)."""
    if isinstance(method, MergeMethod):
        return method
    if not isinstance(method, str):
        raise MergeError(f"method must be a method name such as 'slerp', got {type(method).__name__}.")
    try:
        return METHODS[method]
    except KeyError:
        raise UnknownMergeMethodError(unknown_name_message("merge method", method, METHODS)) from None
