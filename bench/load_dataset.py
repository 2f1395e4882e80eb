"""Peak memory of ``load_dataset`` on a large JSONL / CSV / Parquet file (about 200 MB by default).

    python bench/load_dataset.py [--mb 200 | --rows 1000000] [--words 70] [--format jsonl|csv|parquet] [--file PATH]

Writes a file of labelled texts (seeded: the same file every time; ``--file`` reuses or keeps
one), then loads it in a fresh Python process and prints that process's peak resident set size
(``VmHWM`` of ``/proc/self/status``, else ``ru_maxrss``) right after ``import geomcheck.data`` and after
``load_dataset``, beside what the loaded texts themselves take (``sys.getsizeof`` of each string:
the floor for holding every text once). A subprocess because the peak is a high-water mark: only a
fresh process measures one load. No pass/fail; compare the numbers with the file size and the floor.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_WORDS = ("the model maps each text to a vector and the geometry of those vectors tells whether "
          "classes separate cleanly or blur together under merging and fine tuning").split()

_CHILD = """
import json, resource, sys, time
def hwm():  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across fork + exec on Linux)
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from geomcheck.data import load_dataset
base = hwm()
t = time.perf_counter()
ds = load_dataset(sys.argv[1], max_rows=10**8)
took = time.perf_counter() - t
peak = hwm()
texts_kb = sum(sys.getsizeof(x) for x in ds.texts) / 1024
print(json.dumps({"rows": len(ds), "labels": len(ds.label_names), "import_kb": base, "peak_kb": peak, "s": took,
                  "texts_kb": texts_kb}))
"""


def _records(mb: float | None, rows: int | None, words: int, seed: int) -> Iterator[dict]:
    rng = random.Random(seed)
    target, size, n = int((mb or 0) * 1e6), 0, 0
    while (n < rows) if rows is not None else (size < target):
        rec = {"text": f"{n} " + " ".join(rng.choices(_WORDS, k=words)), "label": f"topic-{n % 4}", "src": n % 97}
        size += len(rec["text"]) + 40
        n += 1
        yield rec


def write_jsonl(path: Path, mb: float | None, seed: int = 0, *, rows: int | None = None, words: int = 70) -> int:
    """A JSONL of ``mb`` megabytes (or ``rows`` rows): ``words``-word texts (~400 characters for 70), 4 labels,
    one metadata column; returns the rows."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for rec in _records(mb, rows, words, seed):
            fh.write(json.dumps(rec) + "\n")
            n += 1
    return n


def write_file(path: Path, fmt: str, mb: float | None, *, rows: int | None = None, words: int = 70) -> int:
    """The same records as ``write_jsonl``, as JSONL, CSV or Parquet (in row groups of 65,536)."""
    if fmt == "jsonl":
        return write_jsonl(path, mb, rows=rows, words=words)
    recs = _records(mb, rows, words, 0)
    if fmt == "csv":
        import csv

        n = 0
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, ["text", "label", "src"])
            w.writeheader()
            for rec in recs:
                w.writerow(rec)
                n += 1
        return n
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, writer = 0, None
    while batch := list(itertools.islice(recs, 65_536)):
        table = pa.Table.from_pylist(batch)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        n += len(batch)
    if writer is not None:
        writer.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0, help="size of the generated file in MB (default 200)")
    ap.add_argument("--rows", type=int, help="rows of the generated file instead of --mb (e.g. 1000000)")
    ap.add_argument("--words", type=int, default=70, help="words a text (default 70: ~400 characters)")
    ap.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl", help="default jsonl")
    ap.add_argument("--file", type=Path, help="file to use; written there first if it does not exist")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="geomcheck-load-") as tmp:
        path = args.file or Path(tmp) / f"big.{args.format}"
        if not path.exists():
            rows = write_file(path, args.format, args.mb, rows=args.rows, words=args.words)
            print(f"wrote {path}: {rows:,} rows")
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"load failed:\n{out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        size_mb = path.stat().st_size / 1e6
        print(f"file {size_mb:.0f} MB, {r['rows']:,} rows, {r['labels']} labels, loaded in {r['s']:.1f} s")
        print(f"peak RSS after import: {r['import_kb'] / 1024:.0f} MiB")
        print(f"peak RSS after load_dataset: {r['peak_kb'] / 1024:.0f} MiB "
              f"({r['peak_kb'] * 1024 / 1e6 / size_mb:.2f}x the file)")
        grown = (r["peak_kb"] - r["import_kb"]) / 1024
        print(f"the texts themselves (each string once): {r['texts_kb'] / 1024:.0f} MiB; the load's peak above "
              f"import: {grown:.0f} MiB = {grown * 1024 / r['texts_kb']:.2f}x the texts, "
              f"{grown * 2**20 / r['rows']:.0f} bytes a row")


if __name__ == "__main__":
    main()
