"""The embedding cache: hits are identical, corrupt entries are recomputed, concurrent writers are safe."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from geomcheck.cache import EmbeddingCache, cache_dir, file_digest, texts_digest


@pytest.fixture
def store(tmp_path):
    return EmbeddingCache(tmp_path / "emb")


def test_roundtrip_is_identical_and_read_only(store):
    X = np.random.default_rng(0).normal(size=(24, 16)).astype(np.float32)
    assert store.get("fp", ["a", "b"]) is None
    store.put("fp", ["a", "b"], X)
    Y = store.get("fp", ["a", "b"])
    assert Y.dtype == np.float32 and np.array_equal(X, Y)
    with pytest.raises(ValueError):
        Y[0, 0] = 1.0
    assert store.get("fp", ["a", "b", "c"]) is None  # other texts: other key
    assert store.get("fp2", ["a", "b"]) is None  # other model: other key


def test_texts_digest_is_unambiguous():
    assert texts_digest(["ab"]) != texts_digest(["a", "b"]) != texts_digest(["b", "a"])
    assert texts_digest(["a", "b"]) == texts_digest(("a", "b"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "garbage-json", "empty-npy", "empty-json",
                                    "header-only"])
def test_corrupt_entry_is_detected_and_not_returned(store, damage):
    X = np.arange(60, dtype=np.float32).reshape(6, 10)
    side = store.put("fp", ["t"], X)
    npy = side.with_name(json.loads(side.read_text())["file"])
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:-17])
    elif damage == "flip":
        b = bytearray(npy.read_bytes())
        b[-1] ^= 0xFF
        npy.write_bytes(bytes(b))
    elif damage == "delete":
        npy.unlink()
    elif damage == "empty-npy":  # np.load raises EOFError on a zero-byte file
        npy.write_bytes(b"")
    elif damage == "empty-json":
        side.write_text("")
    elif damage == "header-only":
        npy.write_bytes(npy.read_bytes()[:128])
    else:
        side.write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.get("fp", ["t"]) is None
    assert any("cache entry" in str(w.message) for w in caught)
    store.put("fp", ["t"], X)  # recomputed value replaces the bad entry
    assert np.array_equal(store.get("fp", ["t"]), X)


WRITER = """
import sys, numpy as np
from geomcheck.cache import EmbeddingCache
store = EmbeddingCache(sys.argv[1])
X = np.full((200, 64), float(sys.argv[2]), dtype=np.float32)
for _ in range(40):
    store.put("fp", ["same", "texts"], X)
"""


def test_concurrent_writers_leave_one_valid_entry(store):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), str(v)]) for v in (1, 2, 3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn entry would warn
        Y = store.get("fp", ["same", "texts"])
    assert Y is not None and Y.shape == (200, 64) and len(np.unique(Y)) == 1 and Y[0, 0] in (1.0, 2.0, 3.0)
    assert not list(store.root.rglob("*.tmp"))  # no temp files left behind


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GEOMCHECK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "geomcheck"


def test_file_digest_matches_hashlib_and_hf_blob_names(monkeypatch, tmp_path):
    import hashlib

    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 5_000_000)
    assert file_digest(f) == hashlib.sha256(b"x" * 5_000_000).hexdigest()
    assert file_digest(f) == hashlib.sha256(b"x" * 5_000_000).hexdigest()  # memoised
    blob = tmp_path / "blobs" / ("ab" * 32)
    blob.parent.mkdir()
    blob.write_bytes(b"weights")
    link = tmp_path / "model.safetensors"
    link.symlink_to(blob)
    assert file_digest(link) == "ab" * 32  # a Hugging Face cache names blobs by their sha256


def test_an_emptied_entry_is_recomputed_by_encode(tmp_path, monkeypatch):
    """A zero-byte .npy under GEOMCHECK_CACHE_DIR: one warning, the vectors recomputed, the entry repaired."""
    import subprocess
    import sys

    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path / "c"))
    code = (
        "import warnings, numpy as np\n"
        "from geomcheck.testing import tiny_model\n"
        "from geomcheck.models import load_model\n"
        f"m = load_model(str(tiny_model('bert', {str(tmp_path / 'm')!r})), device='cpu')\n"
        "X = m.encode(['1, 2, 3', '2, 4, 6'])\n"
        "import pathlib; [f.write_bytes(b'') for f in pathlib.Path(%r).rglob('*.npy')]\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    Y = m.encode(['1, 2, 3', '2, 4, 6'])\n"
        "    Z = m.encode(['1, 2, 3', '2, 4, 6'])\n"
        "assert np.array_equal(X, Y) and np.array_equal(X, Z)\n"
        "msgs = [str(x.message) for x in w if 'cache entry' in str(x.message)]\n"
        "assert len(msgs) == 1 and 'EOFError' in msgs[0], msgs\n"
    ) % str(tmp_path / "c")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_what_killed_runs_left_is_removed_and_fresh_work_is_not(tmp_path):
    import os
    import time

    from geomcheck._disk import remove_stale

    old_dir, old_file, fresh = tmp_path / ".soup.tmp-abc", tmp_path / ".b.json.x1.tmp", tmp_path / ".lora.tmp-new"
    old_dir.mkdir()
    (old_dir / "model.safetensors").write_bytes(b"x" * 100)
    old_file.write_text("{")
    fresh.mkdir()
    keep = tmp_path / "soup"
    keep.mkdir()
    an_hour_ago = time.time() - 3600
    for p in (old_dir, old_file, keep):
        os.utime(p, (an_hour_ago, an_hour_ago))
    assert sorted(p.name for p in remove_stale(tmp_path, ".*.tmp-*") + remove_stale(tmp_path, ".b.json.*.tmp")) == \
        [".b.json.x1.tmp", ".soup.tmp-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lora.tmp-new", "soup"]  # a running build's temp stays


def test_locks_live_in_the_cache_not_beside_the_file(tmp_path):
    from geomcheck.cache import cache_dir, lock_for

    target = tmp_path / "baselines" / "minilm.json"
    lock = lock_for(target)
    with lock:
        assert str(cache_dir()) in lock.lock_file and not list(tmp_path.rglob("*.lock"))
    assert lock_for(target).lock_file == lock.lock_file and lock_for(tmp_path / "x.json").lock_file != lock.lock_file


def test_a_file_rewritten_with_the_same_size_and_mtime_gets_its_new_digest(monkeypatch, tmp_path):
    """cp -p / rsync -a / tar x restore size and mtime: the memo must not serve the old file's digest."""
    import hashlib
    import os
    import shutil
    import time

    from geomcheck import cache

    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path / "c"))
    f, new = tmp_path / "model.safetensors", tmp_path / "other.safetensors"
    f.write_bytes(b"a" * 1_000_000)
    new.write_bytes(b"b" * 1_000_000)
    old = f.stat()
    time.sleep(cache._SETTLED_S + 0.1)  # old enough to be memoised
    assert file_digest(f) == hashlib.sha256(b"a" * 1_000_000).hexdigest()
    assert list((tmp_path / "c" / "digests").rglob("*")), "the digest of a settled file is memoised"
    shutil.copyfile(new, f)  # in place: same inode, same size
    os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    assert file_digest(f) == hashlib.sha256(b"b" * 1_000_000).hexdigest()
    shutil.copy2(tmp_path / "model.safetensors", tmp_path / "x")  # cp -p of the file, then renamed over it
    (tmp_path / "x").write_bytes(b"c" * 1_000_000)
    os.utime(tmp_path / "x", ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(tmp_path / "x", f)
    assert file_digest(f) == hashlib.sha256(b"c" * 1_000_000).hexdigest()


def test_an_entry_copied_under_another_key_is_not_served(store):
    import shutil

    X, Y = np.ones((2, 3), dtype=np.float32), np.zeros((2, 3), dtype=np.float32)
    side_a, side_b = store.put("fpA", ["t", "u"], X), store.put("fpB", ["t", "u"], Y)
    shutil.copy(side_b, side_a)  # B's sidecar (and through it B's array) under A's name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.get("fpA", ["t", "u"]) is None
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and "written for other model fingerprint" in msgs[0] and str(side_a) in msgs[0]
    store.put("fpA", ["t", "u"], X)  # recomputed: the entry is right again, read without a word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(store.get("fpA", ["t", "u"]), X)
    other_texts = store.put("fpA", ["v", "w"], Y)
    shutil.copy(other_texts, side_a)
    with pytest.warns(UserWarning, match="written for other texts"):
        assert store.get("fpA", ["t", "u"]) is None


def test_a_cache_dir_that_is_a_file_is_an_error_naming_the_variable(monkeypatch, tmp_path):
    from geomcheck.errors import InvalidInputError

    f = tmp_path / "not-a-dir"
    f.write_text("x")
    for value in (f, f / "sub"):
        monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(value))
        with pytest.raises(InvalidInputError, match=rf"GEOMCHECK_CACHE_DIR='{value}' (is a file|lies under the file)"):
            EmbeddingCache().get("fp", ["t"])


def test_chunks_of_a_run_never_resumed_go_after_a_week_and_a_resumed_one_stays(store):
    # a killed encode leaves <key>.chunks/; the next large encode removes other keys' folders untouched for
    # CHUNKS_KEEP_DAYS days, keeps younger ones, and keeps (and touches) its own however old
    import os
    import time

    from geomcheck.cache import CHUNKS_KEEP_DAYS

    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    old, young, mine = (store.chunks("fp" + c * 8, [f"t{c}"]) for c in "abc")
    for s in (old, young, mine):
        s.put(0, 3, X)
    week = time.time() - (CHUNKS_KEEP_DAYS + 1) * 86400
    for s in (old, mine):
        os.utime(s.folder, (week, week))
    again = store.chunks("fp" + "c" * 8, ["tc"])  # the run of `mine` starts again
    assert not old.folder.exists()
    assert young.folder.is_dir() and young.get(0, 3) is not None
    assert again.folder == mine.folder and np.array_equal(again.get(0, 3), X)
    assert mine.folder.stat().st_mtime > week + 86400  # touched: no longer a week old
