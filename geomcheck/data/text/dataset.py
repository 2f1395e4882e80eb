"""``TextDataset`` (texts, integer labels, label names) and ``DatasetError``.

A ``TextDataset`` is what a ``SequenceDataset`` is to the metrics and checks — texts, integer
``labels`` and their ``label_names`` — for a team's own classes (intents, topics, languages).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geomcheck.errors import InvalidInputError

__all__ = ["TextDataset", "DatasetError", "dataset_name", "MetadataRow", "MetadataColumns"]


class DatasetError(InvalidInputError):
    """A labelled-text source that cannot be used as it is; the message names the place and the fix."""


@dataclass(frozen=True, eq=False)
class TextDataset:
    """Texts with integer class labels: ``texts[i]`` belongs to ``label_names[labels[i]]``.

    ``ids`` and ``metadata`` (one mapping per text) are optional; ``source`` says where it was read.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    ids: tuple[Any, ...] | None = None
    metadata: tuple[Mapping[str, Any], ...] | None = None
    source: str = ""
    hint: str = field(default="", repr=False)  # what a failing check should suggest for these data
    class_word: ClassVar[str] = "label"  # what messages and legends call the classes (the paper says "family")

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.int64)
        labels.flags.writeable = False
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "label_names", tuple(str(n) for n in self.label_names))
        n = len(self.texts)
        if len(labels) != n or (self.ids is not None and len(self.ids) != n) or (
                self.metadata is not None and len(self.metadata) != n):
            raise InvalidInputError(f"TextDataset fields disagree in length: {n} texts, {len(labels)} labels")
        if n and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise InvalidInputError(f"labels must lie in [0, {len(self.label_names)})")

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"TextDataset({len(self)} texts, {len(self.label_names)} labels: {', '.join(self.label_names)}{where})"

    def counts(self) -> dict[str, int]:
        """Texts per label name."""
        return {name: int((self.labels == k).sum()) for k, name in enumerate(self.label_names)}

    def subset(self, index: Sequence[int]) -> TextDataset:
        idx = [int(i) for i in index]
        return TextDataset(tuple(self.texts[i] for i in idx), self.labels[idx], self.label_names,
                           None if self.ids is None else tuple(self.ids[i] for i in idx),
                           None if self.metadata is None else tuple(self.metadata[i] for i in idx),
                           self.source, self.hint)

    def split(self, test_size: float = 0.25, *, seed: int = 0) -> tuple[TextDataset, TextDataset]:
        """(train, test), stratified: each label puts ``round(test_size · n_label)`` of its texts (at least 1,
        and at least 1 left for training) into test, drawn with ``seed``; both keep every label name."""
        if not (isinstance(test_size, (int, float)) and 0 < test_size < 1):
            raise InvalidInputError(f"test_size must lie in (0, 1), got {test_size!r}")
        rng = np.random.default_rng(seed)
        train, test = [], []
        for k in range(len(self.label_names)):
            members = np.flatnonzero(self.labels == k)
            if len(members) < 2:
                raise DatasetError(f"label {self.label_names[k]!r} has {len(members)} text(s); a split needs 2")
            members = rng.permutation(members)
            n_test = min(len(members) - 1, max(1, round(test_size * len(members))))
            test += members[:n_test].tolist()
            train += members[n_test:].tolist()
        return self.subset(sorted(train)), self.subset(sorted(test))


class MetadataRow(Mapping):
    """One text's metadata, read-only: a shared tuple of column names and a tuple of this row's values.

    A dict per row cost ~200 bytes and a copy of every column name (a JSON parser makes new key strings for
    each line); a million rows of one metadata column took ~250 MB. This takes ~110 bytes a row for one
    column and shares the names. It compares equal to the dict of the same items.
    """

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: tuple[str, ...], values: tuple[Any, ...]):
        self._keys, self._values = keys, values

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[self._keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Any:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return repr(dict(zip(self._keys, self._values)))


class MetadataColumns:
    """Collects each row's columns other than text/label/id as ``MetadataRow``s, one tuple of names per
    distinct set of columns (interned: a million rows share them)."""

    def __init__(self) -> None:
        self._rows: list[MetadataRow] = []
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._empty = MetadataRow((), ())

    def append(self, row: Mapping[str, Any], skip: tuple[str, ...]) -> None:
        keys = tuple(k for k in row if k not in skip)
        if not keys:
            self._rows.append(self._empty)
            return
        keys = self._names.setdefault(keys, keys)
        self._rows.append(MetadataRow(keys, tuple(row[k] for k in keys)))

    def rows(self) -> list[MetadataRow]:
        return self._rows


_RESERVED_NAMES = ("paper", "heldout", "suite", "task")


def dataset_name(path: str) -> str:
    """The name a dataset file carries in reports and baseline files: its stem, with characters other than
    letters, digits, ``-``, ``_`` and ``.`` replaced by ``-`` (``-data`` added to paper, heldout, suite, task)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.") or "dataset"
    return f"{stem}-data" if stem in _RESERVED_NAMES else stem
