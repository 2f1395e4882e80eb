"""How far a formatting-only change moves a text, against how far apart the classes are.

    python bench/formatting.py [--model minilm --model smollm2-135m]

For each model and each dataset — the paper's 24 sequence texts with ``SEQUENCE_CHANGES``,
and 4 topics x 8 plain English sentences (below) with ``TEXT_CHANGES`` — encodes every text
and every changed version (cache off) and prints, per change:

- cosine distance (1 - cos) original -> changed: ``max mv``, ``med mv``; the cosine distances
  between texts of different labels: ``med btw`` (the "typical between-class distance"),
  ``p5 btw``; and ``max/med`` = max move / median between-class;
- the same after centring every vector on the mean of the dataset's original vectors
  (``c:`` columns): ``c:max mv``, ``c:med btw``, ``c:max btw`` (the largest distance between two
  texts of different labels), ``c:max/med`` and ``c:max/max`` = max move / largest between-class.

A decoder's last-token vectors share one dominant direction (raw cosine distances of a few
hundredths between any two texts); centring removes it. ``c:max/max`` < 1 is what
``suites/test_properties.py``'s formatting property asserts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

TOPICS = {
    "cooking": (
        "Stir the onions slowly until they turn golden brown.",
        "Bake the bread for forty minutes in a hot oven.",
        "Add a pinch of salt to the boiling pasta water.",
        "The soup needs more garlic and a little pepper.",
        "Whisk the eggs with sugar until the mixture is pale.",
        "Let the dough rest in the fridge overnight.",
        "Roast the vegetables with olive oil and rosemary.",
        "Slice the tomatoes thinly for the salad.",
    ),
    "weather": (
        "Heavy rain is expected across the north tomorrow.",
        "The morning fog should clear by noon.",
        "Strong winds brought down trees along the coast.",
        "It will be sunny and warm for most of the week.",
        "Snow is falling in the mountains tonight.",
        "A thunderstorm rolled in late in the afternoon.",
        "Temperatures will drop below freezing after dark.",
        "The forecast says light showers in the evening.",
    ),
    "football": (
        "The striker scored twice in the second half.",
        "Our goalkeeper saved a penalty in the last minute.",
        "The referee showed the defender a red card.",
        "They won the league after a tense final match.",
        "The coach changed the formation at half time.",
        "A late header earned the visitors a draw.",
        "The fans sang loudly as the team walked out.",
        "The midfielder signed a new three year contract.",
    ),
    "computers": (
        "Restart the laptop to install the latest updates.",
        "The hard drive is almost full of old photos.",
        "My keyboard stopped working after the coffee spill.",
        "The program crashes whenever I open a large file.",
        "Plug the monitor into the second video port.",
        "The new processor compiles the code much faster.",
        "Back up your files before upgrading the system.",
        "The wireless network drops every few minutes.",
    ),
}


def sentences():
    """The 32 plain sentences as a ``TextDataset`` (4 topics x 8)."""
    from geomcheck.data import TextDataset

    texts = [t for group in TOPICS.values() for t in group]
    labels = [k for k, group in enumerate(TOPICS.values()) for _ in group]
    return TextDataset(tuple(texts), labels, tuple(TOPICS), source="bench/formatting.py")


def cosine_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """All pairs: 1 - cos(a_i, b_j)."""
    A = A.astype(np.float64) / np.linalg.norm(A, axis=1, keepdims=True)
    B = B.astype(np.float64) / np.linalg.norm(B, axis=1, keepdims=True)
    return 1.0 - A @ B.T


def _stats(X0: np.ndarray, changed: list[np.ndarray], y: np.ndarray) -> list[tuple[float, ...]]:
    """Per change: max move, median move, median / 5th percentile / max between-class distance."""
    D = cosine_distances(X0, X0)
    between = D[np.triu(y[:, None] != y[None, :], 1)]
    out = []
    for Xc in changed:
        move = np.maximum(np.diag(cosine_distances(X0, Xc)), 0.0)  # rounding makes identical rows -1e-16 apart
        out.append((move.max(), np.median(move), np.median(between), np.percentile(between, 5), between.max()))
    return out


def measure(emb, ds, changes) -> list[tuple]:
    """Rows ``(change, raw stats…, centred stats…)`` for dataset ``ds`` on embedder ``emb``."""
    from geomcheck.data import reformat

    texts = list(ds.texts)
    n = len(texts)
    X = emb.encode(texts + [reformat(t, c) for c in changes for t in texts], cache=False).astype(np.float64)
    X0 = X[:n]
    changed = [X[n * (k + 1): n * (k + 2)] for k in range(len(changes))]
    y = np.asarray(ds.labels)
    centre = X0.mean(axis=0)
    raw = _stats(X0, changed, y)
    centred = _stats(X0 - centre, [Xc - centre for Xc in changed], y)
    return [(c, *r, *z) for c, r, z in zip(changes, raw, centred)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", help="model alias (repeat); default: minilm and smollm2-135m")
    args = ap.parse_args()
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", tempfile.mkdtemp(prefix="geomcheck-bench-"))

    from geomcheck.data import SEQUENCE_CHANGES, TEXT_CHANGES, paper_dataset
    from geomcheck.models import load_model

    datasets = (("paper (24)", paper_dataset(), SEQUENCE_CHANGES), ("sentences (32)", sentences(), TEXT_CHANGES))
    head = (f"{'model':<13} {'dataset':<15} {'change':<20} {'max mv':>7} {'med mv':>7} {'med btw':>7} {'p5 btw':>7} "
            f"{'max/med':>7} | {'c:max mv':>8} {'c:med btw':>9} {'c:max btw':>9} {'c:max/med':>9} {'c:max/max':>9}")
    print(head)
    for name in args.model or ["minilm", "smollm2-135m"]:
        t = time.perf_counter()
        emb = load_model(name, device="cpu")
        loaded = time.perf_counter() - t
        for label, ds, changes in datasets:
            t = time.perf_counter()
            rows = measure(emb, ds, changes)
            took = time.perf_counter() - t
            for c, mx, md, mb, p5, _, cmx, _, cmb, _, cmax in rows:
                print(f"{name:<13} {label:<15} {c:<20} {mx:>7.4f} {md:>7.4f} {mb:>7.4f} {p5:>7.4f} {mx / mb:>7.3f} | "
                      f"{cmx:>8.4f} {cmb:>9.4f} {cmax:>9.4f} {cmx / cmb:>9.3f} {cmx / cmax:>9.3f}")
            print(f"# {name}: loaded in {loaded:.1f} s; {label}: {len(ds) * (len(changes) + 1)} texts encoded "
                  f"in {took:.1f} s")


if __name__ == "__main__":
    main()
