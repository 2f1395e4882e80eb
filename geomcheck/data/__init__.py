"""The data stage: sequence families and the labelled datasets built from them.

- ``geomcheck.data.families``: ``Family``, ``FAMILIES`` (22 integer-sequence families with
  OEIS ids), ``get_family``, ``register_family``; number theory in ``_numtheory``;
- ``geomcheck.data.datasets``: ``SequenceDataset``, ``paper_dataset``, ``heldout_dataset``,
  ``make_dataset``, ``render``.

Everything here is plain data (texts, int labels, label names); nothing loads a model.
"""

from __future__ import annotations

from geomcheck.data.datasets import (
    SequenceDataset,
    heldout_dataset,
    make_dataset,
    paper_dataset,
    render,
    to_decimal,
)
from geomcheck.data.families import (
    FAMILIES,
    HELDOUT_FAMILIES,
    PAPER_FAMILIES,
    Family,
    get_family,
    register_family,
)

__all__ = [
    "FAMILIES",
    "HELDOUT_FAMILIES",
    "PAPER_FAMILIES",
    "Family",
    "SequenceDataset",
    "get_family",
    "heldout_dataset",
    "make_dataset",
    "paper_dataset",
    "register_family",
    "render",
    "to_decimal",
]
