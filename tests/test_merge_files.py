"""Streaming merges of model directories: complete sentence-transformers output, same numbers as in memory, errors, CLI."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from geomcheck.errors import GeomcheckError  # noqa: E402
from geomcheck.merge import MergeMethod, merge_files, merge_state_dicts  # noqa: E402
from geomcheck.errors import IncompatibleModelsError, MergeError, UnknownMergeMethodError  # noqa: E402
from geomcheck.cli.merge import add_parser  # noqa: E402
from geomcheck.testing import tiny_model  # noqa: E402

TEXTS = ["1, 2, 3, 4, 5", "2, 3, 5, 7, 11, 13", "0, 1, 3, 6, 2, 7"]
ST_FILES = {"config.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
            "config_sentence_transformers.json", "tokenizer.json", "tokenizer_config.json"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge-models")
    return {f"{kind}{seed}": tiny_model(kind, root / f"{kind}{seed}", seed=seed)
            for kind in ("bert", "qwen3") for seed in (0, 1)}


@pytest.fixture(scope="module")
def third_qwen(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A third Qwen3-like model with other weights (a linear mix), for methods over a base + 2 models."""
    out = tmp_path_factory.mktemp("third") / "qwen3-mix"
    merge_files("linear", [models["qwen30"], models["qwen31"]], out, weights=[0.8, -0.5], normalize=False)
    return out


def encode(path: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_numpy=True)


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_file(str(path / "model.safetensors")).items()}


@pytest.mark.parametrize("kind", ["bert", "qwen3"])
def test_slerp_merge_is_a_complete_sentence_transformer(models, tmp_path, kind):
    a, b = models[f"{kind}0"], models[f"{kind}1"]
    res = merge_files("slerp", [a, b], tmp_path / "mid", t=0.5)
    assert res.weight_files == ("model.safetensors",)
    assert ST_FILES <= set(res.copied)
    assert res.tensors == len(weights_of(a)) and res.parameters == sum(v.numel() for v in weights_of(a).values())
    ea, eb, em = encode(a), encode(b), encode(tmp_path / "mid")
    assert np.isfinite(em).all()
    assert np.abs(em - ea).max() > 1e-3 and np.abs(em - eb).max() > 1e-3
    merge_files("slerp", [a, b], tmp_path / "t0", t=0.0)
    assert np.array_equal(encode(tmp_path / "t0"), ea)  # t = 0 is the first model, bit for bit


def test_streamed_merge_equals_in_memory_merge(models, third_qwen, tmp_path):
    a, b, base = models["qwen30"], models["qwen31"], third_qwen
    sa, sb, sbase = weights_of(a), weights_of(b), weights_of(base)
    cases = [
        ("slerp", [a, b], None, {"t": [0.0, 1.0], "granularity": "row"}),
        ("nuslerp", [a, b], base, {"t": 0.3}),
        ("multislerp", [a, b, base], None, {}),
        ("karcher", [a, b, base], None, {"weights": [1.0, 2.0, 3.0]}),
        ("task_arithmetic", [a, b], base, {"weights": [0.5, 0.5]}),
        ("ties", [a, b], base, {"density": 0.3}),
        ("dare_ties", [a, b], base, {"density": 0.5, "seed": 11}),
        ("dare_linear", [a, b], base, {"density": 0.7, "seed": 3}),
        ("model_stock", [a, b], base, {}),
    ]
    by_path = {a: sa, b: sb, base: sbase}
    for i, (method, paths, bpath, kw) in enumerate(cases):
        out = tmp_path / f"out{i}"
        merge_files(method, paths, out, base=bpath, **kw)
        ref = merge_state_dicts(method, [by_path[p] for p in paths], by_path[bpath] if bpath else None, **kw)
        got = weights_of(out)
        assert set(got) == set(ref)
        for k in ref:
            assert torch.equal(got[k], ref[k]), (method, k)


def test_model_stock_output_loads_and_embeds(models, third_qwen, tmp_path):
    merge_files("model_stock", [models["qwen31"], third_qwen], tmp_path / "ms", base=models["qwen30"])
    assert np.isfinite(encode(tmp_path / "ms")).all()


def test_safetensors_file_inputs_bf16_and_int_tensors(tmp_path):
    g = torch.Generator().manual_seed(0)
    files = []
    for i in range(2):
        sd = {"layers.0.w": torch.randn(4, 6, generator=g).bfloat16(), "position_ids": torch.arange(6) + 10 * i,
              "norm.weight": torch.randn(6, generator=g)}
        files.append(tmp_path / f"m{i}.safetensors")
        save_file(sd, str(files[-1]), metadata={"format": "pt", "note": f"model {i}"})
    res = merge_files("slerp", files, tmp_path / "out", t=0.25)
    assert res.weight_files == ("m0.safetensors",) and res.copied == () and res.kept == ("position_ids",)
    out = load_file(str(tmp_path / "out" / "m0.safetensors"))
    assert out["layers.0.w"].dtype == torch.bfloat16 and out["norm.weight"].dtype == torch.float32
    assert torch.equal(out["position_ids"], torch.arange(6))
    ref = merge_state_dicts("slerp", [load_file(str(f)) for f in files], t=0.25)
    for k in ref:
        assert torch.equal(out[k], ref[k])
    with safe_open(str(tmp_path / "out" / "m0.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["note"] == "model 0"
    assert json.loads(meta["geomcheck_merge"])["method"] == "slerp"


def test_sharded_input_is_read_and_written_unsharded(models, tmp_path):
    src = tmp_path / "sharded"
    shutil.copytree(models["qwen30"], src)
    sd = load_file(str(src / "model.safetensors"))
    (src / "model.safetensors").unlink()
    names = list(sd)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for fname, keys in shards.items():
        save_file({k: sd[k] for k in keys}, str(src / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in keys})
    (src / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    res = merge_files("slerp", [src, models["qwen31"]], tmp_path / "out", t=0.4)
    assert res.weight_files == ("model.safetensors",)
    assert not any("model-0000" in c or "index.json" in c for c in res.copied)
    merge_files("slerp", [models["qwen30"], models["qwen31"]], tmp_path / "ref", t=0.4)
    got, ref = weights_of(tmp_path / "out"), weights_of(tmp_path / "ref")
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    assert np.isfinite(encode(tmp_path / "out")).all()


def test_module_folders_are_merged_and_other_weight_formats_not_copied(tmp_path):
    dirs = []
    for i in range(2):
        d = tmp_path / f"m{i}"
        (d / "2_Dense").mkdir(parents=True)
        (d / ".git").mkdir()
        (d / ".git" / "HEAD").write_text("ref")
        save_file({"layers.0.w": torch.full((3,), float(i + 1))}, str(d / "model.safetensors"))
        save_file({"linear.weight": torch.full((2, 2), float(i + 1))}, str(d / "2_Dense" / "model.safetensors"))
        (d / "2_Dense" / "config.json").write_text("{}")
        (d / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": ""},
                                                    {"idx": 1, "name": "1", "path": "2_Dense"}]))
        (d / "pytorch_model.bin").write_bytes(b"stale")
        dirs.append(d)
    res = merge_files("linear", dirs, tmp_path / "out")
    assert set(res.weight_files) == {"model.safetensors", "2_Dense/model.safetensors"}
    assert set(res.copied) == {"modules.json", "2_Dense/config.json"} and res.skipped == ("pytorch_model.bin",)
    dense = load_file(str(tmp_path / "out" / "2_Dense" / "model.safetensors"))["linear.weight"]
    assert torch.equal(dense, torch.full((2, 2), 1.5))
    assert not (tmp_path / "out" / ".git").exists()


def test_torch_threads_are_restored(models, tmp_path):
    before = torch.get_num_threads()
    merge_files("linear", [models["qwen30"], models["qwen31"]], tmp_path / "o", threads=1)
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------ errors and atomicity

def test_existing_output_is_refused_and_overwrite_replaces_only_an_earlier_merge(models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    pair = [models["qwen30"], models["qwen31"]]
    with pytest.raises(MergeError, match="already exists and is not an empty directory.*--overwrite"):
        merge_files("slerp", pair, out, t=0.5)
    with pytest.raises(MergeError, match="is not a merge geomcheck wrote"):  # a user's directory is never replaced
        merge_files("slerp", pair, out, t=0.5, overwrite=True)
    assert (out / "keep.txt").read_text() == "x"
    (out / "keep.txt").unlink()
    merge_files("slerp", pair, out, t=0.5)
    assert json.loads((out / "geomcheck_merge.json").read_text())["method"] == "slerp"
    merge_files("linear", pair, out, overwrite=True)  # an earlier merge is replaced
    assert json.loads((out / "geomcheck_merge.json").read_text())["method"] == "linear"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old dirs left


def test_an_output_that_is_contains_or_lies_inside_an_input_is_refused(models, tmp_path):
    import shutil

    parent = tmp_path / "P"
    a, b = parent / "A", parent / "B"
    shutil.copytree(models["qwen30"], a)
    shutil.copytree(models["qwen31"], b)
    def snapshot():  # every file under tmp_path, byte for byte
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    before = snapshot()
    for out, how in ((parent, "contains"), (a, "is"), (a / "sub", "lies inside")):
        for overwrite in (False, True):
            with pytest.raises(MergeError, match=f"the output .* {how} the input"):
                merge_files("slerp", [a, b], out, t=0.5, overwrite=overwrite)
    with pytest.raises(MergeError, match="the output .* contains the input"):  # file inputs: their directory
        merge_files("slerp", [a / "model.safetensors", b / "model.safetensors"], a, t=0.5, overwrite=True)
    link = tmp_path / "link-to-A"
    link.symlink_to(a, target_is_directory=True)
    with pytest.raises(MergeError, match="is the input"):  # resolved through the link
        merge_files("slerp", [a, b], link, t=0.5, overwrite=True)
    assert snapshot() == before and sorted(p.name for p in parent.iterdir()) == ["A", "B"]


def test_an_output_whose_parent_cannot_be_made_is_a_clear_error(models, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(MergeError, match="cannot create the output's parent directory"):
        merge_files("slerp", [models["qwen30"], models["qwen31"]], tmp_path / "afile" / "out", t=0.5)


def test_a_failing_merge_leaves_nothing_behind(models, tmp_path):
    def boom(tensors, base, weights, *, name="", **_):
        if "layers.1" in name:
            raise MergeError(f"boom at {name}")
        return tensors[0]

    method = MergeMethod(name="boom", fn=boom, summary="fails", reference="test", uses_weights=False)
    with pytest.raises(MergeError, match="boom at layers.1"):
        merge_files(method, [models["qwen30"], models["qwen31"]], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_raise_clear_errors(models, tmp_path):
    q0, q1, b0 = models["qwen30"], models["qwen31"], models["bert0"]
    with pytest.raises(IncompatibleModelsError, match=r"model 1 .* has no tensor 'embed_tokens.weight'"):
        merge_files("slerp", [q0, b0], tmp_path / "x", t=0.5)
    with pytest.raises(MergeError, match="does not exist"):
        merge_files("slerp", [q0, tmp_path / "missing"], tmp_path / "x", t=0.5)
    empty = tmp_path / "nobin"
    empty.mkdir()
    (empty / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(MergeError, match=r"holds no \*.safetensors weights \(only pytorch_model.bin\)"):
        merge_files("slerp", [q0, empty], tmp_path / "x", t=0.5)
    with pytest.raises(MergeError, match="mix of model directories and .safetensors files"):
        merge_files("slerp", [q0, q1 / "model.safetensors"], tmp_path / "x", t=0.5)
    # parameter errors come before any file is opened
    with pytest.raises(MergeError, match=r"t must lie in \[0, 1\]"):
        merge_files("slerp", [tmp_path / "nope1", tmp_path / "nope2"], tmp_path / "x", t=2)
    with pytest.raises(MergeError, match="ties needs a base model"):
        merge_files("ties", [q0, q1], tmp_path / "x")
    with pytest.raises(UnknownMergeMethodError, match="did you mean 'ties'"):
        merge_files("tie", [q0, q1], tmp_path / "x")
    with pytest.raises(MergeError, match="paths must be a list"):
        merge_files("slerp", str(q0), tmp_path / "x", t=0.5)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 16)
    with pytest.raises(MergeError, match="not a readable safetensors file"):
        merge_files("slerp", [bad, bad], tmp_path / "x", t=0.5)
    assert not (tmp_path / "x").exists()


def test_layout_mismatch_between_directories(tmp_path):
    dirs = []
    for i, extra in enumerate((False, True)):
        d = tmp_path / f"m{i}"
        d.mkdir()
        save_file({"w": torch.ones(2)}, str(d / "model.safetensors"))
        if extra:
            save_file({"v": torch.ones(2)}, str(d / "adapter.safetensors"))
        dirs.append(d)
    with pytest.raises(IncompatibleModelsError, match="weight file 'adapter.safetensors' that model 0 lacks"):
        merge_files("linear", dirs, tmp_path / "out")


# ------------------------------------------------------------------ CLI

def _cli(argv: list[str]) -> int:
    """What geomcheck.cli.main does around a subcommand: parse, run, GeomcheckError → exit 2."""
    import sys

    parser = argparse.ArgumentParser(prog="geomcheck")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GeomcheckError as exc:
        print(f"geomcheck: error: {exc}", file=sys.stderr)
        return 2


def test_cli_merge_slerp(models, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = _cli(["merge", "--method", "slerp", "--t", "0.5", str(models["bert0"]), str(models["bert1"]),
               "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: slerp (t=0.5)" in printed and "modules.json" in printed
    ref = merge_state_dicts("slerp", [weights_of(models["bert0"]), weights_of(models["bert1"])], t=0.5)
    got = weights_of(out)
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_cli_parameters_anchors_filters_weights_and_json(models, third_qwen, tmp_path, capsys):
    q0, q1 = str(models["qwen30"]), str(models["qwen31"])
    assert _cli(["merge", "--method", "slerp", "--t", "0,0.5,1", q0, q1, "--out", str(tmp_path / "a"),
                 "--param", "granularity=row"]) == 0
    ref = merge_state_dicts("slerp", [weights_of(models["qwen30"]), weights_of(models["qwen31"])],
                            t=[0, 0.5, 1], granularity="row")
    assert all(torch.equal(weights_of(tmp_path / "a")[k], v) for k, v in ref.items())
    assert _cli(["merge", "--method", "slerp", "--t", '{"self_attn": 0.3, "default": 0.5}', q0, q1,
                 "--out", str(tmp_path / "b")]) == 0
    assert _cli(["merge", "--method", "task_arithmetic", q0, q1, "--base", str(third_qwen), "--weights", "0.3",
                 "0.7", "--param", "lambda=0.5", "--out", str(tmp_path / "c"), "--json"]) == 0
    capsys.readouterr()
    ref = merge_state_dicts("task_arithmetic", [weights_of(models["qwen30"]), weights_of(models["qwen31"])],
                            weights_of(third_qwen), weights=[0.3, 0.7], scale=0.5)
    assert all(torch.equal(weights_of(tmp_path / "c")[k], v) for k, v in ref.items())
    assert _cli(["merge", "--method", "linear", q0, q1, "--weights", "1,3", "--out", str(tmp_path / "d"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "linear" and report["weight_files"] == ["model.safetensors"]
    assert report["out_dir"] == str(tmp_path / "d")


@pytest.mark.parametrize("argv, match", [
    (["--method", "slerpy", "--t", "0.5"], "unknown merge method 'slerpy'; did you mean 'slerp'"),
    (["--method", "slerp", "--t", "1.5"], r"t must lie in \[0, 1\]"),
    (["--method", "slerp", "--t", "half"], "--t must be a number"),
    (["--method", "slerp", "--t", "0.5", "--param", "granularity"], "is not KEY=VALUE"),
    (["--method", "slerp", "--t", "0.5", "--param", "t=0.2"], "both as --t and as --param"),
    (["--method", "ties"], "ties needs a base model"),
    (["--method", "slerp", "--t", "0.5", "--param", "colour=red"], "slerp has no parameter 'colour'"),
])
def test_cli_errors_exit_2_with_a_message(models, tmp_path, capsys, argv, match):
    import re

    rc = _cli(["merge", *argv, str(models["qwen30"]), str(models["qwen31"]), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("geomcheck: error: ") and re.search(match, err), err
    assert not (tmp_path / "o").exists()


def test_the_cli_refuses_to_overwrite_its_inputs_and_says_why(models, tmp_path, capsys):
    import shutil

    from geomcheck.cli import main

    parent = tmp_path / "P"
    shutil.copytree(models["qwen30"], parent / "A")
    shutil.copytree(models["qwen31"], parent / "B")
    assert main(["merge", "--method", "slerp", "--t", "0.5", str(parent / "A"), str(parent / "B"), "--out",
                 str(parent), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "geomcheck: error: the output" in err and "contains the input" in err and "Traceback" not in err
    assert (parent / "A" / "model.safetensors").is_file() and (parent / "B" / "model.safetensors").is_file()
    (tmp_path / "afile").write_text("x")
    assert main(["merge", "--method", "slerp", "--t", "0.5", str(parent / "A"), str(parent / "B"), "--out",
                 str(tmp_path / "afile" / "out")]) == 2
    assert "cannot create the output's parent directory" in capsys.readouterr().err
