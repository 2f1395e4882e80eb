"""The data stage: sequence families and the labelled datasets built from them.

- ``geomcheck.data.families``: ``Family``, ``FAMILIES`` (22 integer-sequence families with
  OEIS ids), ``get_family``, ``register_family``; number theory in ``_numtheory``;
- ``geomcheck.data.datasets``: ``SequenceDataset``, ``paper_dataset``, ``heldout_dataset``,
  ``make_dataset``, ``render``;
- ``geomcheck.data.text``: ``TextDataset`` and ``load_dataset`` for your own labelled texts
  (CSV, TSV, JSONL/JSON, Parquet, DataFrames).

Everything here is plain data (texts, int labels, label names); nothing loads a model.
"""

from __future__ import annotations

from geomcheck.data.datasets import (
    HELDOUT_MAX_CHARS,
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
from geomcheck.data.reformat import SEQUENCE_CHANGES, TEXT_CHANGES, changes_for, reformat
from geomcheck.data.text import DatasetError, TextDataset, load_dataset

__all__ = [
    "DatasetError",
    "TextDataset",
    "load_dataset",
    "FAMILIES",
    "HELDOUT_FAMILIES",
    "HELDOUT_MAX_CHARS",
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
    "SEQUENCE_CHANGES",
    "TEXT_CHANGES",
    "changes_for",
    "reformat",
]
