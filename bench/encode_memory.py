"""What embedding a large set holds in memory besides its texts: token ids one chunk at a time, not all at once.

    python bench/encode_memory.py [--texts 100000] [--words 60] [--model minilm] [--encode 0]

``Embedder.encode`` tokenizes and encodes ``chunk_size`` texts at a time (default 4,096). Before,
it tokenized every text at once to sort them by length: a million texts' token ids are Python
lists of Python ints, gigabytes. In a fresh process each (peak resident set: ``VmHWM``), this
prints the peak above the loaded model and the texts of ``Embedder.token_lengths`` (the pass that
held every text's ids) with the default chunk and with one chunk of all the texts (the old way),
and, with ``--encode N``, of encoding the first N texts both ways (the vectors must agree). No
pass/fail: compare the numbers with the output matrix (N x dim x 4 bytes). The old way took ~15 KB a
text of ~65 tokens (300,000 texts: +4.5 GiB), so keep --texts small enough for this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import json, random, sys, time
def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) * 1024
from geomcheck.models import load_model
model, n, words, chunk, encode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
emb = load_model(model, device="cpu", cache=False)
rng = random.Random(0)
vocab = "the model maps each text to a vector and geometry tells whether classes separate or blur".split()
texts = [f"{i} " + " ".join(rng.choices(vocab, k=words)) for i in range(n)]
emb.encode(texts[:8])  # warm: the first batch allocates the model's buffers
emb.chunk_size = chunk if chunk else n
base = hwm()
t = time.perf_counter()
if encode:
    X = emb.encode(texts[:encode], progress=False)
    out = {"digest": __import__("hashlib").sha256(X.tobytes()).hexdigest(), "bytes": X.nbytes}
else:
    lengths = emb.token_lengths(texts)
    out = {"tokens": int(lengths.sum())}
print(json.dumps({**out, "peak_above": hwm() - base, "s": time.perf_counter() - t}))
"""


def run(model: str, n: int, words: int, chunk: int, encode: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, model, str(n), str(words), str(chunk), str(encode)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=100_000)
    ap.add_argument("--words", type=int, default=60, help="words a text (default 60: ~65 MiniLM tokens)")
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--encode", type=int, default=0, help="also encode this many texts both ways (slow on a CPU)")
    args = ap.parse_args()
    from geomcheck.models.embedder import CHUNK_TEXTS

    for label, chunk in ((f"chunks of {CHUNK_TEXTS:,} (now)", CHUNK_TEXTS), ("one chunk (before)", 0)):
        r = run(args.model, args.texts, args.words, chunk, 0)
        print(f"token_lengths of {args.texts:,} texts ({r['tokens']:,} tokens), {label}: peak +{r['peak_above'] / 2**20:,.0f}"
              f" MiB, {r['s']:.1f} s")
    if args.encode:
        got = {label: run(args.model, args.texts, args.words, chunk, args.encode)
               for label, chunk in (("chunks", CHUNK_TEXTS), ("one chunk", 0))}
        for label, r in got.items():
            print(f"encode {args.encode:,} texts, {label}: peak +{r['peak_above'] / 2**20:,.0f} MiB (output "
                  f"{r['bytes'] / 2**20:,.0f} MiB), {r['s']:.1f} s")
        print("same vectors:", len({r["digest"] for r in got.values()}) == 1)


if __name__ == "__main__":
    main()
