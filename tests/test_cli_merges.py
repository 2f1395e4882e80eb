"""``geomcheck merges`` and the named variants (slerp_row, slerp_gradient, nuslerp_row), on a tiny decoder.

The LoRA the command reads is a tiny one (6 steps, no before/after evaluation) trained into the
place of the default run in the test session's cache, so the command finds it there instead of
training the default recipe.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomcheck.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from geomcheck.adapt import train_lora
    from geomcheck.adapt.cached import lora_cache_dir
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    root = tmp_path_factory.mktemp("merges")
    path = tiny_model("qwen3", root / "qwen3")
    base = load_model(str(path), device="cpu")
    run = train_lora(base, out_dir=lora_cache_dir(base), max_steps=6, lr=2e-2, checkpoints=3, progress=False,
                     evaluate_sets=False)
    return root, path, base, run


def _weights(d):
    from safetensors.torch import load_file

    return load_file(str(d / "model.safetensors"))


def test_named_variants_equal_their_merge_method_with_those_parameters(tiny):
    import torch

    from geomcheck.adapt.variants import build_variants
    from geomcheck.merge import merge_state_dicts

    root, path, base, run = tiny
    out = root / "named"
    names = ("slerp", "slerp_row", "slerp_gradient", "nuslerp", "nuslerp_row")
    dirs = build_variants(base, run, methods=names, t=0.3, out_dir=out, device="cpu", load=False)
    assert set(dirs) == {"base", "lora", *names}
    B, L = _weights(out / "base"), _weights(out / "lora")
    C0, C2 = _weights(out / "ckpt-0"), _weights(out / "ckpt-2")
    expected = {
        "slerp": merge_state_dicts("slerp", [B, L], t=0.3),
        "slerp_row": merge_state_dicts("slerp", [B, L], t=0.3, granularity="row"),
        "slerp_gradient": merge_state_dicts("slerp", [B, L], t=[0.0, 1.0]),
        "nuslerp": merge_state_dicts("nuslerp", [C0, C2]),
        "nuslerp_row": merge_state_dicts("nuslerp", [C0, C2], flatten=False, row_wise=True),
    }
    got = {n: _weights(out / n) for n in names}
    for n in names:
        assert list(got[n]) == list(expected[n]), n
        for k in expected[n]:
            assert torch.equal(got[n][k], expected[n][k]), (n, k)
    # they are other merges than their plain siblings
    assert any(not torch.equal(got["slerp_row"][k], got["slerp"][k]) for k in B)
    assert any(not torch.equal(got["nuslerp_row"][k], got["nuslerp"][k]) for k in B)
    # the gradient's anchors: bottom layer (0 of 2) is the base, top layer the LoRA, non-layer tensors the base
    g = got["slerp_gradient"]
    changed = [k for k in B if not torch.equal(B[k], L[k])]
    assert any("layers.0." in k for k in changed) and any("layers.1." in k for k in changed)
    for k in B:
        if "layers.0." in k or "layer" not in k:
            assert torch.equal(g[k], B[k]), k
        elif "layers.1." in k:
            assert torch.allclose(g[k], L[k], atol=1e-6), k
    info = json.loads((out / "variants.json").read_text())
    assert info["slerp_gradient"] == info["slerp"]  # same endpoints, tensor-wise: the same fallback
    row = info["slerp_row"]
    assert row["granularity"] == "row" and 0 <= row["share_changed_rows_slerp_is_lerp"] <= 1
    assert 0 <= row["share_changed_tensors_slerp_is_lerp"] <= 1 and row["changed_tensors"] == len(changed)


def test_variant_names_keep_the_old_ones_and_add_the_named():
    from geomcheck.adapt.variants import DEFAULT_METHODS, NAMED, buildable, merges_checkpoints, variant_methods
    from geomcheck.cli.merges import DEFAULT_VARIANTS
    from geomcheck.merge import METHODS

    names = variant_methods()
    assert names[:3] == DEFAULT_METHODS == ("soup", "slerp", "slerp_ckpt")
    assert set(names) == set(DEFAULT_METHODS) | set(NAMED) | set(METHODS) and set(DEFAULT_VARIANTS) <= set(names)
    assert not merges_checkpoints("slerp") and not merges_checkpoints("slerp_row")
    assert not merges_checkpoints("slerp_gradient") and merges_checkpoints("nuslerp_row")
    assert buildable(["slerp_row", "slerp_gradient", "nuslerp_row", "soup"], 1) == ["slerp_row", "slerp_gradient"]


def _linear_cka(X, Y):
    """Kornblith et al. 2019, eq. for linear CKA: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on centred columns."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    return np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def test_merges_json_has_a_row_per_variant_with_the_measured_numbers(tiny, capsys):
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    from geomcheck.adapt import WindowTask
    from geomcheck.cli.merges import DEFAULT_VARIANTS
    from geomcheck.models import load_model

    root, path, base, run = tiny
    assert main(["merges", "--model", str(path), "--device", "cpu", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert "LoRA on" in captured.err and "read from the cache" in captured.err  # progress on stderr
    rows = {r["variant"]: r for r in doc["rows"]}
    assert [r["variant"] for r in doc["rows"]] == ["base", "lora", *DEFAULT_VARIANTS]
    assert set(doc) == {"rows", "claims", "settings", "timings"} and doc["timings"]["total_s"] > 0
    assert doc["settings"]["cka_set"] == "paper" and doc["settings"]["named_variants"]["slerp_gradient"]["t"] == [0, 1]
    b, lo = rows["base"], rows["lora"]
    assert abs(b["cka_to_base"] - 1) < 1e-9 and b["task_gain"] == 0 and b["adapter_position"] < 1e-9
    assert abs(lo["cka_to_lora"] - 1) < 1e-9 and abs(lo["adapter_position"] - 1) < 1e-9
    assert lo["share_of_lora_gain"] == (1.0 if lo["task_gain"] > 0 else None)
    for name, r in rows.items():
        in_slerp_family = name in ("slerp", "slerp_row", "slerp_gradient", "slerp_ckpt")
        assert (r["slerp_is_lerp"] is not None) == in_slerp_family, name
        assert all(np.isfinite(r[f"{s}.{m}"]) for s in ("task", "paper", "heldout")
                   for m in ("silhouette", "davies_bouldin")), name
    # against references: sklearn's silhouette / DB and the closed-form linear CKA on the variants' own embeddings
    sets = WindowTask().eval_sets()
    vdir = doc["settings"]["variants_dir"]
    X = {n: {s: load_model(f"{vdir}/{n}", device="cpu").encode(sets[s].texts) for s in ("task", "paper")}
         for n in ("base", "lora", "slerp_row")}
    lab = sets["task"].labels
    r = rows["slerp_row"]
    gain = silhouette_score(X["slerp_row"]["task"], lab) - silhouette_score(X["base"]["task"], lab)
    assert abs(r["task_gain"] - gain) < 1e-5
    assert abs(r["task.davies_bouldin"] - davies_bouldin_score(X["slerp_row"]["task"], lab)) < 1e-4
    assert abs(r["cka_to_base"] - _linear_cka(X["slerp_row"]["paper"], X["base"]["paper"])) < 1e-5
    assert abs(r["cka_to_lora"] - _linear_cka(X["slerp_row"]["paper"], X["lora"]["paper"])) < 1e-5
    claims = {c["name"]: c for c in doc["claims"]}
    assert set(claims) == {"slerp_is_not_lerp", "soup_not_adapter_dominated", "slerp_beats_soup"}
    assert all(c["holds"] in (True, False) and c["measured"] for c in claims.values())
    assert claims["slerp_is_not_lerp"]["measured"]["share of changed tensors where SLERP = LERP"] == \
        rows["slerp"]["slerp_is_lerp"]
    assert abs(claims["soup_not_adapter_dominated"]["measured"]["adapter position r (0 base, 1 lora)"]
               - rows["soup"]["adapter_position"]) < 1e-12


def test_merges_table_and_unmeasured_claims(tiny, capsys, tmp_path):
    root, path, base, run = tiny
    out = tmp_path / "v"
    assert main(["merges", "--model", str(path), "--device", "cpu", "--method", "slerp_row", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for piece in ("variant", "task sil", "heldout DB", "CKA base", "SLERP=LERP", "kept", "slerp_row",
                  "claim slerp_beats_soup", "not measured (needs --method slerp --method soup)"):
        assert piece in text, piece
    assert (out / "slerp_row" / "modules.json").is_file() and (out / "variants.json").is_file()


def test_merges_rejects_unknown_variants_and_bad_t(tiny, capsys):
    root, path, base, run = tiny
    assert main(["merges", "--model", str(path), "--method", "slerpp"]) == 2
    err = capsys.readouterr().err
    assert "geomcheck: error: --method: unknown variant(s) slerpp" in err and "slerp_gradient" in err
    with pytest.raises(SystemExit):
        main(["merges", "--model", str(path), "--t", "1.5"])
    assert "must lie in [0, 1]" in capsys.readouterr().err


def test_merges_takes_your_own_variants_and_shows_their_pipeline(tiny, capsys, tmp_path):
    import shutil

    from geomcheck.adapt import WindowTask
    from geomcheck.adapt.variants import build_variants
    from geomcheck.merge import merge_files
    from geomcheck.models import load_model

    root, path, base, run = tiny
    ends = build_variants(base, run, methods=[], out_dir=tmp_path / "ends", device="cpu", load=False)
    mine, bare = tmp_path / "mine", tmp_path / "bare"
    merge_files("slerp", [str(ends["base"]), str(ends["lora"])], str(mine), t=0.3)
    shutil.copytree(mine, bare)  # what mergekit writes: weights, config, tokenizer; no sentence-transformers files
    for f in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
        (bare / f).unlink(missing_ok=True)
    shutil.rmtree(bare / "1_Pooling")
    assert main(["merges", "--model", str(path), "--device", "cpu", "--method", "slerp", "--variant", f"mine={mine}",
                 "--variant", f"bare={bare}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in doc["rows"]}
    assert list(rows) == ["base", "lora", "slerp", "mine", "bare"]
    assert doc["settings"]["user_variants"] == {"mine": str(mine), "bare": str(bare)}
    assert rows["mine"]["pipeline"] == [] and rows["slerp"]["pipeline"] == [] and rows["lora"]["pipeline"] == []
    assert rows["bare"]["pipeline"][:2] == [
        "modules: base Transformer → Pooling, bare none: no modules.json: not a sentence-transformers directory, "
        "the loader builds a default pipeline",
        "pooling: base lasttoken, bare default: no modules.json, so no pooling of its own: the loader picks one "
        "(mean for encoders, last token for decoders)"]
    paper = WindowTask().eval_sets()["paper"].texts
    X = {n: load_model(str(d), device="cpu").encode(paper) for n, d in (("base", ends["base"]), ("mine", mine))}
    assert abs(rows["mine"]["cka_to_base"] - _linear_cka(X["mine"], X["base"])) < 1e-5
    # SLERP at t = 0.3 sits nearer the base than at t = 0.5
    assert rows["mine"]["adapter_position"] < rows["slerp"]["adapter_position"]

    assert main(["merges", "--model", str(path), "--method", "slerp", "--variant", f"mine={mine}",
                 "--variant", f"bare={bare}"]) == 0
    text = capsys.readouterr().out
    assert "pipeline" in text and "base's" in text and "DIFFER" in text
    assert "pipeline of bare differs from the base's: pooling: base lasttoken, bare default" in text
    assert main(["merges", "--model", str(path), "--variant", f"slerp={mine}"]) == 2
    assert "--variant slerp=" in capsys.readouterr().err
    assert main(["merges", "--model", str(path), "--variant", "slerp"]) == 2
    assert "--variant takes NAME=PATH" in capsys.readouterr().err
