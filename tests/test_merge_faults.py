"""Merges never serve a wrong answer as right: NaN inputs, a full disk, killed merges' leftovers,
out-of-range parameters and inputs of another width each end in a clear error, nothing partial on disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

from geomcheck.errors import DiskSpaceError, IncompatibleModelsError, MergeError, NonFiniteWeightsError  # noqa: E402
from geomcheck.merge import merge_files, merge_state_dicts  # noqa: E402
from geomcheck.testing import tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault-models")
    return {f"q{seed}": tiny_model("qwen3", root / f"q{seed}", seed=seed) for seed in (0, 1)}


def poisoned(src: Path, out: Path, tensor: str, value: float, row: int = 5) -> Path:
    """A copy of ``src`` whose ``tensor`` has one row set to ``value`` (NaN or inf): a diverged checkpoint."""
    shutil.copytree(src, out)
    sd = load_file(str(out / "model.safetensors"))
    t = sd[tensor].clone()
    t[row] = value
    sd[tensor] = t
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- 1. non-finite inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("method, value", [("linear", float("nan")), ("slerp", float("nan")),
                                           ("ties", float("nan")), ("linear", float("inf"))])
def test_a_nan_or_inf_row_in_the_word_embeddings_is_refused_naming_file_tensor_and_count(models, tmp_path, method,
                                                                                       value):
    # before: linear and slerp wrote NaN rows with exit 0; ties dropped them and wrote a clean-looking model
    bad = poisoned(models["q1"], tmp_path / "in" / "diverged", "embed_tokens.weight", value)
    out = tmp_path / "out" / "merged"
    kw = {"base": models["q0"]} if method == "ties" else {"t": 0.5} if method == "slerp" else {}
    paths = [bad] if method == "ties" else [models["q0"], bad]
    with pytest.raises(NonFiniteWeightsError) as info:
        merge_files(method, paths, out, **kw)
    msg = str(info.value)
    hidden = load_file(str(bad / "model.safetensors"))["embed_tokens.weight"].shape[1]
    assert str(bad / "model.safetensors") in msg and "'embed_tokens.weight'" in msg
    assert f"has {hidden} non-finite entries" in msg  # one row of the embedding
    assert not out.exists() and list((tmp_path / "out").iterdir()) == []  # the temp output is gone too


def test_a_nan_in_the_base_and_in_a_later_tensor_is_refused_before_the_output_is_committed(models, tmp_path):
    # the last tensor of the file: the first weight file is half written when it is read
    names = list(load_file(str(models["q0"] / "model.safetensors")))
    last = max(names, key=lambda n: (n.startswith("layers.1"), n))
    bad = poisoned(models["q0"], tmp_path / "base-nan", last, float("nan"), row=0)
    with pytest.raises(NonFiniteWeightsError, match=rf"base \({bad}\).*'{last}'"):
        merge_files("task_arithmetic", [models["q1"]], tmp_path / "o" / "m", base=bad)
    assert list((tmp_path / "o").iterdir()) == []


def test_in_memory_merges_refuse_nan_too(models):
    a = load_file(str(models["q0"] / "model.safetensors"))
    b = dict(load_file(str(models["q1"] / "model.safetensors")))
    b["norm.weight"] = b["norm.weight"].clone()
    b["norm.weight"][3] = float("-inf")
    with pytest.raises(NonFiniteWeightsError, match=r"models\[1\]: tensor 'norm.weight' .* 1 non-finite entry"):
        merge_state_dicts("linear", [a, b])


def test_the_cli_exits_2_on_a_nan_input(models, tmp_path, capsys):
    from geomcheck.cli import main

    bad = poisoned(models["q1"], tmp_path / "bad", "embed_tokens.weight", float("nan"))
    rc = main(["merge", "--method", "slerp", "--t", "0.5", str(models["q0"]), str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("geomcheck: error: ") and "non-finite" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and leftovers(tmp_path) == []


# --- 2. a full disk ------------------------------------------------------------------------------


def test_a_disk_that_fills_during_the_write_is_a_clear_error_and_nothing_is_left(models, tmp_path, monkeypatch):
    from geomcheck.merge import files

    calls = []
    real = files._write

    def fills_up(f, data):  # the disk fills after the header and a few tensors: ENOSPC from write(2)
        calls.append(1)
        if len(calls) > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(files, "_write", fills_up)
    out = tmp_path / "o" / "merged"
    with pytest.raises(DiskSpaceError) as info:
        merge_files("slerp", [models["q0"], models["q1"]], out, t=0.5)
    msg = str(info.value)
    weights = (models["q0"] / "model.safetensors").stat().st_size
    assert len(calls) == 5 and str(out.parent) in msg and "free" in msg and "needs about" in msg
    # the estimate: the weights plus the copied files, so at least the input's weight file, at most 3 x it
    number, unit = msg.split("needs about ")[1].split(" ")[:2]
    needed = float(number.replace(",", "")) * {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    assert weights * 0.95 <= needed <= 3 * weights
    assert list((tmp_path / "o").iterdir()) == []


def test_free_space_clearly_below_the_output_size_is_refused_before_writing(tmp_path):
    """A real input whose one tensor is larger than the free disk (a sparse file: nothing is stored)."""
    free = shutil.disk_usage(tmp_path).free
    n = (2 * free + 2**30) // 4  # float32 entries: the output would need twice the free space
    big = tmp_path / "in" / "big.safetensors"
    big.parent.mkdir()
    # "a" first: if the up-front check failed, the method below would stop the merge at this small
    # tensor, long before the huge one is read or written
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "z": {"dtype": "F32", "shape": [n], "data_offsets": [16, 16 + 4 * n]}}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(big, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + b"\0" * 16)
        f.truncate(8 + len(raw) + 16 + 4 * n)
    from geomcheck.merge import MergeMethod

    def reached(tensors, **_):
        raise AssertionError("the merge started: the free-space check did not refuse it")

    method = MergeMethod("reached", reached, summary="", reference="", min_models=1, uses_weights=False)
    out = tmp_path / "o" / "merged"
    with pytest.raises(DiskSpaceError, match=rf"not enough free space in '{tmp_path / 'o'}'.*needs about"):
        merge_files(method, [big], out)
    assert list((tmp_path / "o").iterdir()) == []


# --- 3. what a killed merge leaves -----------------------------------------------------------------

_SLOW_MERGE = """
import sys, time
from geomcheck.merge import MergeMethod, merge_files
def slow(tensors, **_):
    time.sleep(600)
m = MergeMethod("slow", slow, summary="", reference="", uses_weights=False)
merge_files(m, sys.argv[1:3], sys.argv[3])
"""


def test_a_killed_merge_leaves_a_temp_folder_that_the_next_merge_into_the_parent_removes(models, tmp_path):
    parent = tmp_path / "P"
    parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_MERGE, str(models["q0"]), str(models["q1"]),
                             str(parent / "out")], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # torch's import is slow on a busy CPU
        while (not list(parent.glob(".*/model.safetensors")) and time.monotonic() < deadline
               and proc.poll() is None):
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (stale,) = leftovers(parent)  # the killed merge's half-written model
    assert stale.startswith(".out.") and (parent / stale / "model.safetensors").is_file()
    hour_ago = time.time() - 3600
    os.utime(parent / stale, (hour_ago, hour_ago))  # as if killed an hour ago
    fresh = parent / ".other.merge.tmp-running"  # another merge's, still being written
    fresh.mkdir()
    foreign = parent / ".cache.tmp-x"  # not a merge's: not ours to delete, however old
    foreign.mkdir()
    os.utime(foreign, (hour_ago, hour_ago))
    merge_files("slerp", [models["q0"], models["q1"]], parent / "next", t=0.5)
    assert leftovers(parent) == [".cache.tmp-x", ".other.merge.tmp-running"]
    assert sorted(p.name for p in parent.iterdir() if not p.name.startswith(".")) == ["next"]


# --- 4. parameter range errors show the value as given ------------------------------------------------


@pytest.mark.parametrize("t, shown", [(1.0000001, "1.0000001"), (-1e-12, "-1e-12"), (2, "2")])
def test_an_out_of_range_t_is_printed_as_given(models, tmp_path, t, shown):
    with pytest.raises(MergeError) as info:
        merge_files("slerp", [models["q0"], models["q1"]], tmp_path / "o", t=t)
    assert str(info.value).endswith(f"got {shown}.")  # before: "got 1." for 1.0000001


def test_the_cli_prints_the_t_it_was_given(models, tmp_path, capsys):
    from geomcheck.cli import main

    rc = main(["merge", "--method", "slerp", "--t", "1.0000001", str(models["q0"]), str(models["q1"]), "--out",
               str(tmp_path / "o")])
    assert rc == 2 and "got 1.0000001." in capsys.readouterr().err


# --- 5. inputs of another width ---------------------------------------------------------------------


def wide_model(src: Path, out: Path, width: int = 96) -> Path:
    """``src`` rebuilt at another hidden width (same architecture and tokenizer, seeded random weights)."""
    from transformers import AutoConfig, AutoModel

    shutil.copytree(src, out)
    cfg = AutoConfig.from_pretrained(str(out))
    cfg.hidden_size, cfg.intermediate_size, cfg.head_dim = width, 2 * width, width // 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        AutoModel.from_config(cfg).save_pretrained(str(out), safe_serialization=True)
    pool = out / "1_Pooling" / "config.json"
    pool.write_text(json.dumps({**json.loads(pool.read_text()), "word_embedding_dimension": width}))
    return out


def test_a_merge_input_of_another_width_names_both_paths_the_tensor_and_both_shapes(models, tmp_path):
    wide = wide_model(models["q0"], tmp_path / "wide")
    with pytest.raises(IncompatibleModelsError) as info:
        merge_files("ties", [wide], tmp_path / "o", base=models["q0"])
    msg = str(info.value)
    assert str(wide) in msg and str(models["q0"]) in msg and "'embed_tokens.weight'" in msg
    assert "96)" in msg and "64)" in msg
