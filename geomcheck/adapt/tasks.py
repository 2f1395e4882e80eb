"""What a LoRA run learns: the training batches it draws and the datasets that measure the result.

A task has ``batch(rng)`` → (texts, labels) for one SupCon step, ``eval_sets()`` → the named
datasets measured before and after training (``"task"`` is the one the gain is read on), and
``describe()`` → a JSON-able record of itself (kept in ``lora_run.json`` and in the LoRA cache
key, so another task never reuses a cached adapter).

- ``WindowTask`` (the default, the paper's data): windows of sequence families, evaluated on
  windows at starts training never draws, the paper set, far windows and held-out families.
- ``TextTask``: your own labelled texts (``geomcheck.load_dataset``): batches from the train
  split of a stratified split, the gain measured on its test split.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from geomcheck.data import HELDOUT_FAMILIES, PAPER_FAMILIES, SequenceDataset, get_family, make_dataset, render
from geomcheck.data.text import DatasetError, TextDataset
from geomcheck.errors import InvalidInputError

__all__ = ["WindowTask", "TextTask", "dataset_digest"]


def dataset_digest(dataset: Any) -> str:
    """A short digest of a labelled dataset: its texts, their labels and the label names, in order."""
    doc = {"texts": list(dataset.texts), "labels": [int(v) for v in dataset.labels],
           "names": list(dataset.label_names)}
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class WindowTask:
    """Where training windows come from and which windows measure the result.

    Training draws ``per_family`` windows per family per step, starts uniform in
    ``train_range`` minus ``eval_starts``, lengths in ``lengths``. Evaluation sets:
    ``task`` (windows of ``eval_length`` at ``eval_starts``), ``paper`` (the paper dataset),
    ``far`` (windows at ``far_start`` and beyond) and ``heldout`` (families never trained on).
    """

    families: tuple[str, ...] = PAPER_FAMILIES
    train_range: tuple[int, int] = (200, 800)
    lengths: tuple[int, int] = (10, 30)
    per_family: int = 8
    eval_starts: tuple[int, ...] = (200, 350, 500, 650)
    eval_length: int = 50
    far_start: int = 1500
    heldout_families: tuple[str, ...] = HELDOUT_FAMILIES

    def __post_init__(self) -> None:
        for f in (*self.families, *self.heldout_families):
            get_family(f)
        lo, hi = self.train_range
        if not 0 <= lo < hi:
            raise InvalidInputError(f"train_range must be (lo, hi) with 0 <= lo < hi, got {self.train_range}")
        if not 1 <= self.lengths[0] <= self.lengths[1]:
            raise InvalidInputError(f"lengths must be (min, max) with 1 <= min <= max, got {self.lengths}")
        if len(self.families) < 2 or self.per_family < 2:
            raise InvalidInputError("SupCon needs at least 2 families and 2 windows per family in a batch")
        if any(not lo <= s < hi for s in self.eval_starts):
            raise InvalidInputError(f"eval_starts {self.eval_starts} must lie in the training range {self.train_range}")
        if hi - lo <= len(self.eval_starts):
            raise InvalidInputError("the training range has no starts left once eval_starts are set aside")

    def train_starts(self) -> np.ndarray:
        """The starts training may draw: the training range without the evaluation starts."""
        starts = np.arange(*self.train_range)
        return starts[~np.isin(starts, self.eval_starts)]

    def batch(self, rng: random.Random, max_chars: int = 2_000) -> tuple[list[str], list[int]]:
        """One batch of fresh windows: ``per_family`` per family, labels in family order."""
        starts = self.train_starts()
        texts, labels = [], []
        for label, name in enumerate(self.families):
            fam = get_family(name)
            for _ in range(self.per_family):
                start = int(starts[rng.randrange(len(starts))])
                length = rng.randint(*self.lengths)
                texts.append(render(fam.terms(start, length), max_chars=max_chars)[0])
                labels.append(label)
        return texts, labels

    def eval_sets(self) -> dict[str, SequenceDataset]:
        """The four evaluation datasets: task, paper, far, heldout."""
        from geomcheck.data import heldout_dataset, paper_dataset

        task = _windows(self.families, self.eval_starts, self.eval_length)
        far = _windows(self.families, tuple(self.far_start + k * self.eval_length for k in range(4)), self.eval_length)
        return {"task": task, "paper": paper_dataset(), "far": far,
                "heldout": heldout_dataset(families=self.heldout_families)}

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _windows(families: Sequence[str], starts: Sequence[int], length: int) -> SequenceDataset:
    """One dataset of windows at arbitrary starts (make_dataset only makes consecutive ones)."""
    parts = [make_dataset(families, 1, length, start=s) for s in starts]
    order = [(lab, k) for lab in range(len(families)) for k in range(len(starts))]
    pick = [(parts[k], lab) for lab, k in order]
    return SequenceDataset(
        texts=tuple(p.texts[lab] for p, lab in pick),
        labels=np.array([lab for _, lab in pick]),
        label_names=tuple(families),
        sequences=tuple(p.sequences[lab] for p, lab in pick),
        families=parts[0].families,
        starts=tuple(p.starts[lab] for p, lab in pick),
    )


MIN_TEST_PER_LABEL = 8  # test texts per label below which the merge suite says its numbers are noisy


@dataclass(frozen=True, eq=False)
class TextTask:
    """SupCon on your own labelled texts: each step draws up to ``per_label`` texts of every label
    from ``train`` (without replacement within a step), at most ``max_batch`` texts in all; the
    gain is measured on ``test`` (``eval_sets()["task"]``), texts training never sees.

    ``TextTask.from_dataset(ds, test_size=0.25, seed=0)`` splits ``ds`` by label first.
    """

    train: TextDataset
    test: TextDataset
    per_label: int = 8
    max_batch: int = 96
    name: str = "texts"

    def __post_init__(self) -> None:
        if tuple(self.train.label_names) != tuple(self.test.label_names):
            raise InvalidInputError("TextTask: train and test must have the same label names, in the same order")
        if len(self.train.label_names) < 2:
            raise DatasetError("TextTask: SupCon needs at least 2 labels")
        counts = np.bincount(self.train.labels, minlength=len(self.train.label_names))
        empty = [n for n, c in zip(self.train.label_names, counts) if c == 0]
        if empty:
            raise DatasetError(f"TextTask: label(s) {', '.join(map(repr, empty))} have no training text")
        if not isinstance(self.per_label, int) or self.per_label < 2:
            raise InvalidInputError(f"TextTask: per_label must be an integer >= 2, got {self.per_label!r}")
        if not isinstance(self.max_batch, int) or self.max_batch < 2 * len(self.train.label_names):
            raise InvalidInputError(f"TextTask: max_batch must be >= 2 per label ({2 * len(self.train.label_names)}), "
                                    f"got {self.max_batch!r}")

    @classmethod
    def from_dataset(cls, dataset: TextDataset, *, test_size: float = 0.25, seed: int = 0, **kw: Any) -> TextTask:
        """The task on a stratified ``dataset.split(test_size, seed=seed)``."""
        train, test = dataset.split(test_size, seed=seed)
        return cls(train, test, **kw)

    def small_split_note(self, min_per_label: int = MIN_TEST_PER_LABEL) -> str | None:
        """What to say when the test split is too small for its numbers to mean much, else None.

        With k test texts of a label, that label's mean silhouette (the collapse check) and its share
        of the task gain rest on k numbers: at k < 8 one odd text moves them by more than the checks'
        tolerances (0.05–0.1), so the verdicts say little."""
        counts = np.bincount(self.test.labels, minlength=len(self.test.label_names))
        low = int(counts.min())
        if low >= min_per_label:
            return None
        names = [n for n, c in zip(self.test.label_names, counts) if c == low]
        share = len(self.test) / max(1, len(self.test) + len(self.train))
        need = math.ceil(min_per_label / share) if share > 0 else min_per_label * 4
        return (f"the test split of {self.name} is small: {low} text(s) of label {', '.join(map(repr, names[:3]))}"
                f"{' and others' if len(names) > 3 else ''} ({len(self.test)} test texts in all), so the task gain, "
                f"CKA and per-label collapse measured on it are noisy; at least {min_per_label} test texts per label "
                f"(about {need} per label in the file) would make them mean something")

    @property
    def texts_per_label(self) -> int:
        """How many texts of each label one step draws (fewer where a label has fewer)."""
        return max(2, min(self.per_label, self.max_batch // len(self.train.label_names)))

    def batch(self, rng: random.Random, max_chars: int = 2_000) -> tuple[list[str], list[int]]:
        texts, labels = [], []
        k = self.texts_per_label
        for label in range(len(self.train.label_names)):
            members = np.flatnonzero(self.train.labels == label).tolist()
            for i in rng.sample(members, min(k, len(members))):
                texts.append(self.train.texts[i])
                labels.append(label)
        return texts, labels

    def eval_sets(self) -> dict[str, TextDataset]:
        return {"task": self.test}

    def describe(self) -> dict[str, Any]:
        return {"kind": "texts", "name": self.name, "source": self.train.source, "labels": list(self.train.label_names),
                "train": {"n": len(self.train), "digest": dataset_digest(self.train)},
                "test": {"n": len(self.test), "digest": dataset_digest(self.test)},
                "per_label": self.per_label, "max_batch": self.max_batch}
