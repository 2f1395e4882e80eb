"""geomcheck's encode vs raw sentence-transformers on MiniLM, and the embedding cache.

    python bench/encode.py [--repeats 3]

For the paper dataset (24 texts) and a 10x larger one (240 texts), prints the best-of-N
seconds of ``SentenceTransformer.encode`` and of ``Embedder.encode`` with the cache off
(goal: ours / raw <= 1.05), and the cold (compute + write) vs warm (cache hit) times of
``Embedder.encode`` with the cache on (goal: warm at least 50x faster). Same process,
same model object, alternating order.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ["GEOMCHECK_CACHE_DIR"] = tempfile.mkdtemp(prefix="geomcheck-bench-")

    import torch

    from geomcheck.data import paper_dataset
    from geomcheck.models import load_model

    emb = load_model("minilm", device="auto")
    st = emb.model
    print(f"model minilm on {emb.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'dataset':<14} {'raw ST s':>9} {'ours s':>9} {'ours/raw':>9} {'cold s':>9} {'warm s':>9} {'cold/warm':>10}")
    for label, ds in (("paper (24)", paper_dataset()), ("10x (240)", paper_dataset(per_family=40))):
        texts = list(ds.texts)
        raw_fn = lambda: st.encode(texts, batch_size=64)  # noqa: E731
        ours_fn = lambda: emb.encode(texts, cache=False)  # noqa: E731
        raw_fn(), ours_fn()  # warm-up: first-call allocations
        raw, ours = [], []
        for _ in range(args.repeats):
            raw.append(best(raw_fn, 1))
            ours.append(best(ours_fn, 1))
        assert np.abs(emb.encode(texts, cache=False) - st.encode(texts, batch_size=64)).max() <= 1e-5
        t = time.perf_counter()
        emb.encode(texts)  # cold: computes and writes the entry
        cold = time.perf_counter() - t
        warm = best(lambda: emb.encode(texts), args.repeats)
        print(f"{label:<14} {min(raw):>9.3f} {min(ours):>9.3f} {min(ours) / min(raw):>9.3f} "
              f"{cold:>9.3f} {warm:>9.4f} {cold / warm:>10.0f}")


if __name__ == "__main__":
    main()
