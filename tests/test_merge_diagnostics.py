"""Merge diagnostics against numpy: angles, SLERP→LERP fallback shares, norm ratios, task cosines, adapter share."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from geomcheck.merge import adapter_share, merge_diagnostics, merge_state_dicts, slerp  # noqa: E402
from geomcheck.errors import IncompatibleModelsError, MergeError  # noqa: E402

RNG = np.random.default_rng(7)


def T(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def _cos(x: np.ndarray, y: np.ndarray) -> float:
    return float(x.ravel() @ y.ravel() / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_per_tensor_numbers_match_numpy():
    a = {"x": RNG.normal(size=(4, 5)), "y": RNG.normal(size=7)}
    b = {"x": RNG.normal(size=(4, 5)) * 2, "y": RNG.normal(size=7)}
    base = {"x": RNG.normal(size=(4, 5)), "y": RNG.normal(size=7)}
    d = merge_diagnostics({k: T(v) for k, v in a.items()}, {k: T(v) for k, v in b.items()},
                          {k: T(v) for k, v in base.items()})
    assert [t.name for t in d.tensors] == ["x", "y"]
    for t in d.tensors:
        x, y, z = a[t.name], b[t.name], base[t.name]
        assert t.numel == x.size
        assert t.cos == pytest.approx(_cos(x, y), abs=1e-12)
        assert t.abs_cos == pytest.approx(abs(_cos(x, y)), abs=1e-12)
        assert t.angle_deg == pytest.approx(math.degrees(math.acos(_cos(x, y))), abs=1e-9)
        assert t.norm_ratio == pytest.approx(np.linalg.norm(x) / np.linalg.norm(y), rel=1e-12)
        assert t.rel_change == pytest.approx(np.linalg.norm(y - x) / np.linalg.norm(x), rel=1e-12)
        assert t.task_cos == pytest.approx(_cos(x - z, y - z), abs=1e-12)
        assert t.slerp_is_lerp is False
    allx = np.concatenate([a["x"].ravel(), a["y"]])
    ally = np.concatenate([b["x"].ravel(), b["y"]])
    allz = np.concatenate([base["x"].ravel(), base["y"]])
    assert d.global_rel_change == pytest.approx(np.linalg.norm(ally - allx) / np.linalg.norm(allx), rel=1e-12)
    assert d.global_task_cos == pytest.approx(_cos(allx - allz, ally - allz), abs=1e-12)


def test_lerp_shares_and_the_fallback_agree_with_slerp():
    near = RNG.normal(size=10)
    far = RNG.normal(size=30)
    a = {"near": T(near), "far": T(far), "ids": torch.arange(3)}
    b = {"near": T(near * 1.5 + 1e-5 * RNG.normal(size=10)), "far": T(RNG.normal(size=30)), "ids": torch.arange(3)}
    d = merge_diagnostics(a, b)
    flags = {t.name: t.slerp_is_lerp for t in d.tensors}
    assert flags == {"near": True, "far": False}
    assert d.skipped == ("ids",)
    assert d.lerp_share_tensors == pytest.approx(0.5)
    assert d.lerp_share_parameters == pytest.approx(10 / 40)
    # the flag is exactly where slerp equals the linear interpolation
    for name, is_lerp in flags.items():
        s, lin = slerp(a[name], b[name], 0.3), 0.7 * a[name] + 0.3 * b[name]
        assert torch.allclose(s, lin, rtol=1e-12, atol=1e-12) is is_lerp
    summary = d.summary()
    assert summary["slerp_equals_lerp_tensor_share"] == 0.5 and summary["task_cos"] is None
    assert summary["mean_angle_deg"] == pytest.approx(sum(t.numel * t.angle_deg for t in d.tensors) / 40)
    json.dumps(d.to_dict())  # plain data


def test_dot_threshold_moves_the_fallback():
    x = np.array([1.0, 0.0])
    y = np.array([0.999, math.sqrt(1 - 0.999**2)])
    assert merge_diagnostics({"w": T(x)}, {"w": T(y)}).tensors[0].slerp_is_lerp is False
    assert merge_diagnostics({"w": T(x)}, {"w": T(y)}, dot_threshold=0.99).tensors[0].slerp_is_lerp is True


def test_zero_tensors_give_json_safe_values():
    d = merge_diagnostics({"w": torch.zeros(3, dtype=torch.float64)}, {"w": torch.zeros(3, dtype=torch.float64)},
                          {"w": torch.zeros(3, dtype=torch.float64)})
    row = d.tensors[0].to_dict()
    assert row["norm_ratio"] is None and row["rel_change"] is None and row["task_cos"] is None
    json.dumps(d.to_dict())


def test_adapter_share_is_the_projection_coefficient():
    base = {"w": RNG.normal(size=(6, 6)), "b": RNG.normal(size=6)}
    adapter = {k: v + 0.1 * RNG.normal(size=v.shape) for k, v in base.items()}
    tb, ta = {k: T(v) for k, v in base.items()}, {k: T(v) for k, v in adapter.items()}
    for s in (0.0, 0.3, 1.0):
        merged = {k: T(base[k] + s * (adapter[k] - base[k])) for k in base}
        r = adapter_share(merged, tb, ta)
        assert r.share == pytest.approx(s, abs=1e-12) and r.residual == pytest.approx(0.0, abs=1e-6)
        for t in r.tensors:
            assert t.share == pytest.approx(s, abs=1e-12)
    # a delta orthogonal to the adapter's: share 0, all of it residual
    da = np.concatenate([(adapter[k] - base[k]).ravel() for k in ("w", "b")])
    other = RNG.normal(size=da.size)
    other -= (other @ da) / (da @ da) * da
    merged = {"w": T(base["w"] + other[:36].reshape(6, 6)), "b": T(base["b"] + other[36:])}
    r = adapter_share(merged, tb, ta)
    assert r.share == pytest.approx(0.0, abs=1e-12) and r.residual == pytest.approx(1.0, abs=1e-12)
    # a soup of the adapter model with an unrelated fine-tune keeps about half the adapter
    other_ft = {k: T(v + 0.1 * RNG.normal(size=v.shape)) for k, v in base.items()}
    soup = merge_state_dicts("linear", [ta, other_ft])
    r = adapter_share(soup, tb, ta)
    ref_md = np.concatenate([(soup[k].numpy() - base[k]).ravel() for k in ("w", "b")])
    assert r.share == pytest.approx(ref_md @ da / (da @ da), rel=1e-10)
    assert r.merged_delta_norm == pytest.approx(np.linalg.norm(ref_md), rel=1e-12)
    assert r.adapter_delta_norm == pytest.approx(np.linalg.norm(da), rel=1e-12)
    json.dumps(r.to_dict())


def test_diagnostics_read_model_paths(tmp_path):
    from safetensors.torch import save_file

    a = {"layers.0.w": torch.randn(4, 4), "layers.1.w": torch.randn(4, 4)}
    b = {k: v + 0.1 * torch.randn(4, 4) for k, v in a.items()}
    save_file(a, str(tmp_path / "a.safetensors"))
    (tmp_path / "b").mkdir()
    save_file(b, str(tmp_path / "b" / "model.safetensors"))
    from_paths = merge_diagnostics(tmp_path / "a.safetensors", str(tmp_path / "b"))
    in_memory = merge_diagnostics(a, b)
    assert from_paths.to_dict() == in_memory.to_dict()


def test_bad_inputs():
    with pytest.raises(IncompatibleModelsError, match="b has no tensor 'y'"):
        merge_diagnostics({"x": torch.ones(2), "y": torch.ones(2)}, {"x": torch.ones(2)})
    with pytest.raises(MergeError, match="state dict or a path"):
        merge_diagnostics([1, 2], {"x": torch.ones(2)})
    with pytest.raises(MergeError, match="dot_threshold must lie in"):
        merge_diagnostics({"x": torch.ones(2)}, {"x": torch.ones(2)}, dot_threshold=2)
