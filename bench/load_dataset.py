"""Peak memory of ``load_dataset`` on a large JSONL file (about 200 MB by default).

    python bench/load_dataset.py [--mb 200] [--file PATH]

Writes a JSONL of labelled texts (seeded: the same file every time; ``--file`` reuses or keeps
one), then loads it in a fresh Python process and prints that process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) right after ``import geomcheck.data`` and after
``load_dataset``. A subprocess because ru_maxrss is a high-water mark: only a fresh process
measures one load. No pass/fail; compare the numbers with the file size.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

_WORDS = ("the model maps each text to a vector and the geometry of those vectors tells whether "
          "classes separate cleanly or blur together under merging and fine tuning").split()

_CHILD = """
import json, resource, sys, time
from geomcheck.data import load_dataset
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
ds = load_dataset(sys.argv[1], max_rows=10**8)
took = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(ds), "labels": len(ds.label_names), "import_kb": base, "peak_kb": peak, "s": took}))
"""


def write_jsonl(path: Path, mb: float, seed: int = 0) -> int:
    """A JSONL of ``mb`` megabytes: ~400-character texts, 4 labels, one metadata column; returns the rows."""
    rng = random.Random(seed)
    target, size, n = int(mb * 1e6), 0, 0
    with path.open("w", encoding="utf-8") as fh:
        while size < target:
            words = rng.choices(_WORDS, k=70)
            line = json.dumps({"text": f"{n} " + " ".join(words), "label": f"topic-{n % 4}", "src": n % 97}) + "\n"
            fh.write(line)
            size += len(line)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0, help="size of the generated file in MB (default 200)")
    ap.add_argument("--file", type=Path, help="JSONL to use; written there first if it does not exist")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="geomcheck-load-") as tmp:
        path = args.file or Path(tmp) / "big.jsonl"
        if not path.exists():
            rows = write_jsonl(path, args.mb)
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


if __name__ == "__main__":
    main()
