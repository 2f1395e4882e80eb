"""A large encode keeps its finished chunks: a run killed half-way (SIGKILL, a real subprocess) resumes there.

The counts are the texts the model itself was handed (a counting wrapper around the real
``SentenceTransformer.encode``), not geomcheck's own bookkeeping; the vectors are compared bit for
bit with an uninterrupted run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from geomcheck.models import load_model
from geomcheck.testing import tiny_model

N, CHUNK, STOP_AT = 1_000, 100, 580  # the child stops inside chunk 6 of 10: chunks 1-5 are on disk

# The child: a real encode of the N texts with the cache on, its model wrapped so that it hangs (sleeps)
# before encoding the batch that would take it past STOP_AT texts, saying so in a marker file.
CHILD = r"""
import sys, time, pathlib
from geomcheck.models import load_model
sys.path.insert(0, sys.argv[4])
from test_embedding_resume import texts
model, marker, stop = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
emb = load_model(model, device="cpu")
emb.chunk_size = %d
inner, seen = emb.model.encode, [0]
def counting(sentences, **kw):
    if seen[0] + len(sentences) > stop:
        marker.write_text(str(seen[0]))
        time.sleep(600)
    seen[0] += len(sentences)
    return inner(sentences, **kw)
emb.model.encode = counting
emb.encode(texts(), progress=True)
""" % CHUNK


def texts(n: int = N) -> list[str]:
    """``n`` distinct short texts of uneven length (so that each chunk's batches sort differently)."""
    return [", ".join(str((i * k) % 97) for k in range(1, 2 + i % 4)) + f" #{i}" for i in range(n)]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_model("bert", tmp_path_factory.mktemp("resume") / "bert")


def _counting(emb):
    inner, seen = emb.model.encode, [0]

    def counting(sentences, **kw):
        seen[0] += len(sentences)
        return inner(sentences, **kw)

    emb.model.encode = counting
    return seen


def _chunk_sidecars(cache):
    return sorted(p.name for p in cache.rglob("*.chunks/*.json"))


def test_a_killed_encode_resumes_at_its_last_chunk_with_identical_vectors(bert, private_geomcheck_cache, tmp_path,
                                                                         capfd):
    marker = tmp_path / "stuck"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(bert), str(marker), str(STOP_AT),
                              os.path.dirname(__file__)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 1800  # a guard against a hung child, not a timing check (a tiny model)
        while not marker.exists():
            assert child.poll() is None, f"the child ended before it was killed:\n{child.stderr.read()}"
            assert time.monotonic() < deadline, "the child hung before its stopping point (30 min)"
            time.sleep(0.1)
        time.sleep(0.2)  # it sleeps inside the model: nothing more is written
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert 500 < int(marker.read_text()) <= STOP_AT  # it stopped inside the 6th chunk
    done = _chunk_sidecars(private_geomcheck_cache)
    assert done == sorted(f"{a}-{a + CHUNK}.json" for a in range(0, 500, CHUNK))  # 5 whole chunks kept
    assert "embedding" in child.stderr.read()  # its progress bar, on stderr

    # the rerun (this process, same cache): only the other half reaches the model
    capfd.readouterr()
    emb = load_model(str(bert), device="cpu")
    emb.chunk_size = CHUNK
    seen = _counting(emb)
    X = emb.encode(texts(), progress=True)
    assert seen[0] == emb.last_encoded == N - 500 and emb.last_resumed == 500  # half
    err = capfd.readouterr().err
    assert "500/1.00k" in err and "1.00k/1.00k" in err and "texts/s" in err  # resumed count, then rate
    assert _chunk_sidecars(private_geomcheck_cache) == []  # the whole entry is written: the chunks are gone

    # an uninterrupted run gives the same bits
    ref = load_model(str(bert), device="cpu", cache=False)
    ref.chunk_size = CHUNK
    ref_seen = _counting(ref)
    Y = ref.encode(texts(), progress=False)
    assert ref_seen[0] == N and np.array_equal(X, Y) and X.tobytes() == Y.tobytes()
    assert capfd.readouterr().err == ""  # progress=False: quiet

    # and the next encode reads the whole entry
    again = load_model(str(bert), device="cpu")
    again.chunk_size = CHUNK
    again_seen = _counting(again)
    assert np.array_equal(again.encode(texts()), X) and again_seen[0] == 0


def test_a_damaged_or_foreign_chunk_is_encoded_again(bert, private_geomcheck_cache):
    """A chunk whose array no longer matches its digest, or whose sidecar names other rows, is not served;
    the sound ones are."""
    from geomcheck.cache import EmbeddingCache

    few = texts(400)
    emb = load_model(str(bert), device="cpu")
    emb.chunk_size = 100
    ref = emb.encode(few, cache=False)
    store = EmbeddingCache().chunks(emb.fingerprint, few)  # what an interrupted run leaves
    for a in (0, 100, 200, 300):
        store.put(a, a + 100, ref[a:a + 100])
    npy = next(store.folder.glob("0-100.*.npy"))
    raw = bytearray(npy.read_bytes())
    raw[-4:] = b"\x00\x00\x80\x7f"  # the last float becomes inf: the digest no longer matches
    npy.write_bytes(bytes(raw))
    (store.folder / "200-300.json").replace(store.folder / "100-200.json")  # rows 200-300 posing as 100-200
    seen = _counting(emb)
    with pytest.warns(UserWarning) as caught:
        X = emb.encode(few)
    messages = " | ".join(str(w.message) for w in caught)
    assert "corrupt cached chunk" in messages and "was written for other rows" in messages, messages
    assert seen[0] == 300 and emb.last_resumed == 100 and np.array_equal(X, ref)
