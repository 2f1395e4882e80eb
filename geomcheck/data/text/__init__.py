"""Your own labelled texts: ``TextDataset`` and ``load_dataset`` (CSV, TSV, JSONL/JSON, Parquet, DataFrames).

A ``TextDataset`` is what a ``SequenceDataset`` is to the metrics and checks — texts, integer
``labels`` and their ``label_names`` — for a team's own classes (intents, topics, languages).
``load_dataset`` reads it from a file (plain, gzip or zstd) or an in-memory table and refuses bad
input with a ``DatasetError`` naming the file, the line or row, the column, and the fix (with both
the Python keyword and the CLI flag).

- ``dataset``: ``TextDataset``, ``DatasetError``, ``dataset_name``;
- ``sources``: formats, compression, reading files row by row and tables;
- ``values``: what a text cell and a label cell may hold, and naming numeric labels by value;
- ``load``: ``load_dataset`` itself.
"""

from __future__ import annotations

from geomcheck.data.text.dataset import DatasetError, TextDataset, dataset_name
from geomcheck.data.text.load import load_dataset
from geomcheck.data.text.sources import FORMATS, MAX_ROWS

__all__ = ["TextDataset", "DatasetError", "load_dataset", "dataset_name", "FORMATS", "MAX_ROWS"]
