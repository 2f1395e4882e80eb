"""Merge methods against their formulas, each written again here in numpy float64 from the papers / mergekit."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from geomcheck.errors import GeomcheckError, InvalidInputError  # noqa: E402
from geomcheck.merge import METHODS, merge_state_dicts, slerp  # noqa: E402
from geomcheck.errors import IncompatibleModelsError, MergeError, UnknownMergeMethodError  # noqa: E402

RNG = np.random.default_rng(1234)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return RNG.normal(size=shape) * scale


def T(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def N(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).numpy()


# ------------------------------------------------------------------ references (numpy, float64)

def ref_slerp(a: np.ndarray, b: np.ndarray, t: float, thr: float = 0.9995, eps: float = 1e-8) -> np.ndarray:
    """Shoemake's SLERP on the flattened arrays, angle from normalised copies, originals interpolated."""
    va, vb = a.ravel(), b.ravel()
    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
    ua = va / na if na > eps else va
    ub = vb / nb if nb > eps else vb
    c = float(ua @ ub)
    if abs(c) > thr:
        return (1 - t) * a + t * b
    th = math.acos(c)
    return (math.sin((1 - t) * th) * a + math.sin(t * th) * b) / math.sin(th)


def ref_ties(deltas: list[np.ndarray], weights: list[float], density: float | None, normalize: bool = True):
    out = []
    for d in deltas:
        d = d.copy()
        if density is not None and density < 1:
            k = max(1, int(density * d.size + 1e-9))
            order = np.argsort(-np.abs(d.ravel()))
            mask = np.zeros(d.size, bool)
            mask[order[:k]] = True
            d = np.where(mask.reshape(d.shape), d, 0.0)
        out.append(d)
    wd = np.stack([w * d for w, d in zip(weights, out)])
    gamma = np.where(wd.sum(0) >= 0, 1.0, -1.0)
    agree = np.sign(wd) == gamma
    num = (wd * agree).sum(0)
    if not normalize:
        return num
    den = (np.array(weights).reshape(-1, *[1] * deltas[0].ndim) * agree).sum(0)
    return num / np.where(den == 0, 1.0, den)


# ------------------------------------------------------------------ slerp

def test_slerp_matches_reference_and_interpolates_unnormalised_tensors():
    a, b = rand(6, 5), rand(6, 5, scale=3.0)
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        got = slerp(T(a), T(b), t)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(N(got), ref_slerp(a, b, t), rtol=1e-12, atol=1e-12)
    # float32 in: computed in float32, same numbers to float32 precision
    got32 = slerp(T(a).float(), T(b).float(), 0.3)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(N(got32), ref_slerp(a, b, 0.3), rtol=1e-5, atol=1e-5)


def test_slerp_endpoints_are_exact():
    a, b = T(rand(4, 7)).float(), T(rand(4, 7)).float()
    for g in ("tensor", "row"):
        assert torch.equal(slerp(a, b, 0.0, granularity=g), a)
        assert torch.equal(slerp(a, b, 1.0, granularity=g), b)


def test_slerp_keeps_unit_norm_and_follows_the_great_circle():
    u, v = rand(50), rand(50)
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    theta = math.acos(u @ v)
    perp = v - (u @ v) * u
    perp /= np.linalg.norm(perp)
    for t in np.linspace(0, 1, 7):
        w = N(slerp(T(u), T(v), float(t)))
        assert np.linalg.norm(w) == pytest.approx(1.0, abs=1e-12)
        # the point at angle tθ from u on the great circle through u and v
        np.testing.assert_allclose(w, math.cos(t * theta) * u + math.sin(t * theta) * perp, atol=1e-12)


def test_slerp_falls_back_to_linear_for_near_collinear_tensors():
    a = rand(30)
    b = 2.0 * a + 1e-4 * rand(30)  # |cos| ≈ 1 - 1e-9 > 0.9995
    for t in (0.2, 0.7):
        np.testing.assert_allclose(N(slerp(T(a), T(b), t)), (1 - t) * a + t * b, rtol=1e-12)
    # antiparallel too
    np.testing.assert_allclose(N(slerp(T(a), T(-a), 0.5)), np.zeros(30), atol=1e-12)
    # just below the threshold: SLERP proper; a lower threshold turns it into LERP
    c = 0.999
    x = np.array([1.0, 0.0])
    y = np.array([c, math.sqrt(1 - c * c)])
    assert not np.allclose(N(slerp(T(x), T(y), 0.5)), 0.5 * (x + y))
    np.testing.assert_allclose(N(slerp(T(x), T(y), 0.5, dot_threshold=0.99)), 0.5 * (x + y))
    # dot_threshold=1 never falls back, except for exactly parallel tensors (sin θ = 0): no division by 0
    for g in ("tensor", "row"):
        np.testing.assert_allclose(N(slerp(T(x), T(3 * x), 0.5, dot_threshold=1.0, granularity=g)), 2 * x)


def test_slerp_row_granularity_is_per_row():
    a, b = rand(5, 3, 4), rand(5, 3, 4, scale=2.0)
    b[2] = -3.0 * a[2]  # an antiparallel row: linear there only
    got = N(slerp(T(a), T(b), 0.4, granularity="row"))
    for i in range(5):
        np.testing.assert_allclose(got[i], ref_slerp(a[i], b[i], 0.4), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], 0.6 * a[2] + 0.4 * b[2], rtol=1e-12)
    # 1-D tensors are a single row: row == tensor granularity
    x, y = rand(9), rand(9)
    np.testing.assert_allclose(N(slerp(T(x), T(y), 0.3, granularity="row")), ref_slerp(x, y, 0.3), rtol=1e-12)


def test_slerp_accepts_numpy_and_returns_numpy():
    a, b = rand(3, 3).astype(np.float32), rand(3, 3).astype(np.float32)
    got = slerp(a, b, 0.5)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_slerp(a.astype(float), b.astype(float), 0.5), rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"t": 1.5}, r"t must lie in \[0, 1\]"),
    ({"t": -0.1}, r"t must lie in \[0, 1\]"),
    ({"t": float("nan")}, "finite"),
    ({"t": 0.5, "granularity": "column"}, "granularity"),
])
def test_slerp_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        slerp(torch.ones(3), torch.zeros(3), **kwargs)


def test_slerp_rejects_shape_mismatch():
    with pytest.raises(MergeError, match=r"differ in shape: a is \(3,\), b is \(4,\)"):
        slerp(torch.ones(3), torch.ones(4), 0.5)


# ------------------------------------------------------------------ per-tensor t: depth anchors and filters

def _layered(seed: int, n_layers: int = 5) -> dict[str, torch.Tensor]:
    g = np.random.default_rng(seed)
    sd = {"embed_tokens.weight": T(g.normal(size=(6, 4)))}
    for i in range(n_layers):
        sd[f"layers.{i}.self_attn.q_proj.weight"] = T(g.normal(size=(4, 4)))
        sd[f"layers.{i}.mlp.up_proj.weight"] = T(g.normal(size=(8, 4)))
    sd["norm.weight"] = T(g.normal(size=(4,)))
    return sd


def test_t_anchors_interpolate_across_depth_and_non_layer_tensors_take_the_first():
    a, b = _layered(0), _layered(1)
    out = merge_state_dicts("slerp", [a, b], t=[0.0, 0.5, 1.0])
    for i in range(5):
        x = i / 4  # depth of layer i of 5
        expected_t = float(np.interp(x * 2, [0, 1, 2], [0.0, 0.5, 1.0]))
        for name in (f"layers.{i}.self_attn.q_proj.weight", f"layers.{i}.mlp.up_proj.weight"):
            np.testing.assert_allclose(N(out[name]), ref_slerp(N(a[name]), N(b[name]), expected_t), rtol=1e-12)
    for name in ("embed_tokens.weight", "norm.weight"):  # outside the layers: first anchor (t = 0)
        assert torch.equal(out[name], a[name])


def test_t_per_name_filter_with_default():
    a, b = _layered(2), _layered(3)
    out = merge_state_dicts("slerp", [a, b], t={"self_attn": 0.3, "mlp": [0.0, 1.0], "default": 0.5})
    for i in range(5):
        q, m = f"layers.{i}.self_attn.q_proj.weight", f"layers.{i}.mlp.up_proj.weight"
        np.testing.assert_allclose(N(out[q]), ref_slerp(N(a[q]), N(b[q]), 0.3), rtol=1e-12)
        np.testing.assert_allclose(N(out[m]), ref_slerp(N(a[m]), N(b[m]), i / 4), rtol=1e-12)
    np.testing.assert_allclose(N(out["norm.weight"]), ref_slerp(N(a["norm.weight"]), N(b["norm.weight"]), 0.5))


def test_t_filter_without_default_names_the_tensor():
    a, b = _layered(2), _layered(3)
    with pytest.raises(MergeError, match=r"no entry for tensor 'embed_tokens.weight'.*\"default\""):
        merge_state_dicts("slerp", [a, b], t={"self_attn": 0.3})


@pytest.mark.parametrize("t", [1.2, [0, 1.1], {"mlp": -0.5, "default": 0.5}, "half", [], {}])
def test_t_outside_unit_interval_or_malformed_is_rejected(t):
    a, b = _layered(2), _layered(3)
    with pytest.raises(MergeError, match="t"):
        merge_state_dicts("slerp", [a, b], t=t)


def test_slerp_row_granularity_through_merge_state_dicts():
    a, b = {"w": T(rand(4, 6))}, {"w": T(rand(4, 6))}
    out = merge_state_dicts("slerp", [a, b], t=0.6, granularity="row")
    for i in range(4):
        np.testing.assert_allclose(N(out["w"])[i], ref_slerp(N(a["w"])[i], N(b["w"])[i], 0.6), rtol=1e-12)


# ------------------------------------------------------------------ linear, task arithmetic

def test_linear_is_the_weighted_average():
    xs = [rand(3, 4) for _ in range(3)]
    sds = [{"w": T(x)} for x in xs]
    np.testing.assert_allclose(N(merge_state_dicts("linear", sds)["w"]), np.mean(xs, axis=0), rtol=1e-12)
    w = [1.0, 2.0, 5.0]
    np.testing.assert_allclose(N(merge_state_dicts("linear", sds, weights=w)["w"]),
                               sum(wi * x for wi, x in zip(w, xs)) / 8.0, rtol=1e-12)
    np.testing.assert_allclose(N(merge_state_dicts("linear", sds, weights=w, normalize=False)["w"]),
                               sum(wi * x for wi, x in zip(w, xs)), rtol=1e-12)


def test_task_arithmetic_adds_weighted_task_vectors():
    base, xs = rand(5, 2), [rand(5, 2) for _ in range(2)]
    w, lam = [0.7, -0.3], 0.8
    out = merge_state_dicts("task_arithmetic", [{"w": T(x)} for x in xs], {"w": T(base)}, weights=w, scale=lam)
    np.testing.assert_allclose(N(out["w"]), base + lam * sum(wi * (x - base) for wi, x in zip(w, xs)), rtol=1e-12)
    out = merge_state_dicts("task_arithmetic", [{"w": T(x)} for x in xs], {"w": T(base)}, weights=[1, 3],
                            normalize=True)
    np.testing.assert_allclose(N(out["w"]), base + ((xs[0] - base) + 3 * (xs[1] - base)) / 4, rtol=1e-12)


# ------------------------------------------------------------------ TIES

def test_ties_trims_elects_sign_by_mass_and_takes_the_disjoint_mean():
    base = np.zeros(4)
    # entry 0: two small negatives and one large positive: the count says "-", the mass says "+"
    d = [np.array([-1.0, 2.0, 0.5, -4.0]), np.array([-1.0, 1.0, -0.25, 1.0]), np.array([3.0, -6.0, 0.0, 2.0])]
    out = N(merge_state_dicts("ties", [{"w": T(x)} for x in d], {"w": T(base)}, density=1.0)["w"])
    # entry 0: mass +1 -> "+": only 3.0 agrees; entry 1: mass -3 -> "-": -6; entry 2: +0.25 -> mean(0.5)=0.5;
    # entry 3: mass -1 -> "-": -4
    np.testing.assert_allclose(out, [3.0, -6.0, 0.5, -4.0])


def test_ties_matches_reference_with_trim_and_weights():
    base, xs = rand(6, 10), [rand(6, 10) for _ in range(3)]
    w = [0.5, 1.0, 2.0]
    for density, normalize in ((0.2, True), (0.5, False), (0.05, True)):
        out = merge_state_dicts("ties", [{"w": T(x)} for x in xs], {"w": T(base)}, weights=w, density=density,
                                normalize=normalize, scale=0.9)
        ref = base + 0.9 * ref_ties([x - base for x in xs], w, density, normalize)
        np.testing.assert_allclose(N(out["w"]), ref, rtol=1e-12, atol=1e-12)


def test_ties_keeps_exactly_k_entries_per_task_vector():
    base, x = np.zeros(100), rand(100)
    out = N(merge_state_dicts("ties", [{"w": T(x)}], {"w": T(base)}, density=0.2)["w"])
    assert np.count_nonzero(out) == 20
    kept = np.flatnonzero(out)
    assert set(kept) == set(np.argsort(-np.abs(x))[:20])
    np.testing.assert_allclose(out[kept], x[kept])


def test_ties_per_model_density():
    base, xs = rand(40), [rand(40) for _ in range(2)]
    out = merge_state_dicts("ties", [{"w": T(x)} for x in xs], {"w": T(base)}, density=[0.1, 0.5])
    d = [x - base for x in xs]
    trimmed = []
    for di, p in zip(d, [0.1, 0.5]):
        trimmed.append(ref_ties([di], [1.0], p))  # a single vector survives its own election unchanged
    np.testing.assert_allclose(N(out["w"]), base + ref_ties(trimmed, [1.0, 1.0], None), rtol=1e-12)


# ------------------------------------------------------------------ DARE

def _dare_delta(method: str, x: np.ndarray, base: np.ndarray, seed: int, density: float, name: str = "w"):
    out = merge_state_dicts(method, [{name: T(x)}], {name: T(base)}, density=density, seed=seed)
    return N(out[name]) - base


def test_dare_drops_and_rescales_with_a_seed():
    base, x = rand(2000), rand(2000)
    d = x - base
    got = _dare_delta("dare_linear", x, base, seed=7, density=0.3)
    kept = got != 0
    # kept entries are δ/p, dropped are 0; about p of them kept
    np.testing.assert_allclose(got[kept], d[kept] / 0.3, rtol=1e-12)
    assert kept.mean() == pytest.approx(0.3, abs=0.04)
    assert np.array_equal(got, _dare_delta("dare_linear", x, base, seed=7, density=0.3))  # same seed, same merge
    assert not np.array_equal(got, _dare_delta("dare_linear", x, base, seed=8, density=0.3))


def test_dare_rescaled_delta_is_unbiased():
    base, x = np.zeros(50), rand(50)
    draws = np.stack([_dare_delta("dare_linear", x, base, seed=s, density=0.5) for s in range(1500)])
    mean, std_err = draws.mean(0), np.abs(x) / math.sqrt(1500)  # Var[m·δ/p] = δ²(1-p)/p = δ² at p = 0.5
    assert np.all(np.abs(mean - x) < 5 * std_err + 1e-12)


def test_dare_ties_is_ties_on_the_dropped_deltas():
    base, xs = rand(300), [rand(300) for _ in range(3)]
    w, p, seed = [1.0, 0.5, 2.0], 0.4, 3
    sds = [{"w": T(x)} for x in xs]
    # recover each model's dropped-and-rescaled delta: dare_linear with weight 1 on that model only
    dropped = []
    for i in range(3):
        one_hot = [1.0 if j == i else 0.0 for j in range(3)]
        dropped.append(N(merge_state_dicts("dare_linear", sds, {"w": T(base)}, weights=one_hot, density=p,
                                           seed=seed)["w"]) - base)
    for i, d in enumerate(dropped):
        kept = d != 0
        np.testing.assert_allclose(d[kept], (xs[i] - base)[kept] / p, rtol=1e-12)
    out = N(merge_state_dicts("dare_ties", sds, {"w": T(base)}, weights=w, density=p, seed=seed)["w"])
    np.testing.assert_allclose(out, base + ref_ties(dropped, w, None, normalize=True), rtol=1e-12, atol=1e-12)
    lin = N(merge_state_dicts("dare_linear", sds, {"w": T(base)}, weights=w, density=p, seed=seed)["w"])
    np.testing.assert_allclose(lin, base + sum(wi * d for wi, d in zip(w, dropped)), rtol=1e-12, atol=1e-12)


def test_dare_l1_rescale_matches_the_l1_norm():
    base, x = np.zeros(500), rand(500)
    out = N(merge_state_dicts("dare_linear", [{"w": T(x)}], {"w": T(base)}, density=0.3, rescale="l1")["w"])
    assert np.abs(out).sum() == pytest.approx(np.abs(x).sum(), rel=1e-12)


# ------------------------------------------------------------------ Model Stock

def test_model_stock_closed_form():
    base = rand(4, 6)
    xs = [base + rand(4, 6) + 0.8 for _ in range(3)]  # shared offset: task vectors at an acute angle
    ds = [(x - base).ravel() for x in xs]
    cos = np.mean([ds[i] @ ds[j] / (np.linalg.norm(ds[i]) * np.linalg.norm(ds[j]))
                   for i in range(3) for j in range(i + 1, 3)])
    t = 3 * cos / (1 + 2 * cos)
    out = merge_state_dicts("model_stock", [{"w": T(x)} for x in xs], {"w": T(base)})
    np.testing.assert_allclose(N(out["w"]), t * np.mean(xs, axis=0) + (1 - t) * base, rtol=1e-12)
    assert 0 < t < 1


def test_model_stock_filter_wise_is_per_row():
    base = rand(3, 5)
    xs = [base + rand(3, 5) + 0.5 for _ in range(2)]
    out = N(merge_state_dicts("model_stock", [{"w": T(x)} for x in xs], {"w": T(base)}, filter_wise=True)["w"])
    for r in range(3):
        d0, d1 = xs[0][r] - base[r], xs[1][r] - base[r]
        cos = d0 @ d1 / (np.linalg.norm(d0) * np.linalg.norm(d1))
        t = 2 * cos / (1 + cos)
        np.testing.assert_allclose(out[r], t * (xs[0][r] + xs[1][r]) / 2 + (1 - t) * base[r], rtol=1e-12)


# ------------------------------------------------------------------ NuSLERP, Multi-SLERP, Karcher

def _ref_nuslerp_vectors(x: np.ndarray, y: np.ndarray, t: float, eps: float = 1e-8) -> np.ndarray:
    c = np.clip(x @ y / (max(np.linalg.norm(x), eps) * max(np.linalg.norm(y), eps)), -1, 1)
    th = math.acos(c)
    if abs(math.sin(th)) < eps:
        return (1 - t) * x + t * y
    return (math.sin((1 - t) * th) * x + math.sin(t * th) * y) / math.sin(th)


def test_nuslerp_flatten_rows_and_columns():
    a, b = rand(4, 6), rand(4, 6)
    sds = [{"w": T(a)}, {"w": T(b)}]
    flat = N(merge_state_dicts("nuslerp", sds, t=0.3)["w"])
    np.testing.assert_allclose(flat, _ref_nuslerp_vectors(a.ravel(), b.ravel(), 0.3).reshape(4, 6), rtol=1e-12)
    rows = N(merge_state_dicts("nuslerp", sds, t=0.3, flatten=False)["w"])
    for i in range(4):
        np.testing.assert_allclose(rows[i], _ref_nuslerp_vectors(a[i], b[i], 0.3), rtol=1e-12)
    cols = N(merge_state_dicts("nuslerp", sds, t=0.3, flatten=False, row_wise=True)["w"])
    for j in range(6):
        np.testing.assert_allclose(cols[:, j], _ref_nuslerp_vectors(a[:, j], b[:, j], 0.3), rtol=1e-12)


def test_nuslerp_task_vectors_and_t_from_weights():
    base, a, b = rand(10), rand(10), rand(10)
    out = N(merge_state_dicts("nuslerp", [{"w": T(a)}, {"w": T(b)}], {"w": T(base)}, weights=[1.0, 3.0])["w"])
    np.testing.assert_allclose(out, base + _ref_nuslerp_vectors(a - base, b - base, 0.75), rtol=1e-12)
    with pytest.raises(MergeError, match="t or weights"):
        merge_state_dicts("nuslerp", [{"w": T(a)}, {"w": T(b)}], weights=[1, 1], t=0.5)


def _ref_multislerp_mergekit_steps(xs, w, base=None, eps=1e-8):
    """mergekit's multislerp written out step by step: tangent projection at the mean, exp map back."""
    X = np.stack([x - base if base is not None else x for x in xs]).reshape(len(xs), -1)
    w = np.asarray(w, float) / np.sum(w)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = X / (norms + eps)
    m = (U * w[:, None]).sum(0)
    m = m / np.linalg.norm(m)
    tang = U - (U @ m)[:, None] * m
    tr = (tang * w[:, None]).sum(0)
    r = np.linalg.norm(tr) + eps
    res = (m * math.cos(r) + tr * math.sin(r) / r) * float((norms[:, 0] * w).sum())
    res = res.reshape(xs[0].shape)
    return res + base if base is not None else res


def test_multislerp_matches_mergekit_definition():
    xs = [rand(3, 7) for _ in range(4)]
    w = [0.1, 0.2, 0.3, 0.4]
    out = N(merge_state_dicts("multislerp", [{"w": T(x)} for x in xs], weights=w)["w"])
    np.testing.assert_allclose(out, _ref_multislerp_mergekit_steps(xs, w), rtol=1e-10, atol=1e-12)
    base = rand(3, 7)
    out = N(merge_state_dicts("multislerp", [{"w": T(x)} for x in xs], {"w": T(base)})["w"])
    np.testing.assert_allclose(out, _ref_multislerp_mergekit_steps(xs, [1] * 4, base), rtol=1e-10, atol=1e-12)


def _log_map(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    c = np.clip(u @ v, -1, 1)
    th = math.acos(c)
    return np.zeros_like(u) if th < 1e-15 else th / math.sin(th) * (v - c * u)


def test_karcher_mean_of_two_is_slerp_of_the_directions_at_the_mean_norm():
    a, b = rand(20), rand(20, scale=2.0)
    out = N(merge_state_dicts("karcher", [{"w": T(a)}, {"w": T(b)}], weights=[1.0, 3.0], max_iter=100,
                              tol=1e-14)["w"])
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    scale = 0.25 * np.linalg.norm(a) + 0.75 * np.linalg.norm(b)
    np.testing.assert_allclose(out, scale * ref_slerp(ua, ub, 0.75), rtol=1e-9, atol=1e-10)


def test_karcher_mean_of_many_satisfies_the_first_order_condition():
    xs = [rand(15) + 1.0 for _ in range(4)]
    w = np.array([0.4, 0.3, 0.2, 0.1])
    out = N(merge_state_dicts("karcher", [{"w": T(x)} for x in xs], weights=list(w), max_iter=200,
                              tol=1e-13)["w"])
    norms = np.array([np.linalg.norm(x) for x in xs])
    assert np.linalg.norm(out) == pytest.approx(float(w @ norms), rel=1e-12)
    u = out / np.linalg.norm(out)
    grad = sum(wi * _log_map(u, x / np.linalg.norm(x)) for wi, x in zip(w, xs))
    assert np.linalg.norm(grad) < 1e-10  # the weighted sum of log maps vanishes at the Karcher mean
    # fewer iterations than it needs: stops at max_iter, further from the optimum
    rough = N(merge_state_dicts("karcher", [{"w": T(x)} for x in xs], weights=list(w), max_iter=1)["w"])
    ur = rough / np.linalg.norm(rough)
    assert np.linalg.norm(sum(wi * _log_map(ur, x / np.linalg.norm(x)) for wi, x in zip(w, xs))) > 1e-8


# ------------------------------------------------------------------ dtypes

def test_bf16_inputs_give_bf16_outputs_computed_in_float32():
    g = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(8, 16, generator=g).bfloat16(), "ids": torch.arange(8)}
    b = {"w": torch.randn(8, 16, generator=g).bfloat16(), "ids": torch.arange(8) + 100}
    base = {"w": torch.randn(8, 16, generator=g).bfloat16(), "ids": torch.zeros(8, dtype=torch.long)}
    for method, kw, bs in (("slerp", {"t": 0.3}, None), ("linear", {}, None), ("ties", {"density": 0.5}, base),
                           ("model_stock", {}, base)):
        out = merge_state_dicts(method, [a, b], bs, **kw)
        assert out["w"].dtype == torch.bfloat16
        f32 = merge_state_dicts(method, [{"w": a["w"].float()}, {"w": b["w"].float()}],
                                {"w": base["w"].float()} if bs is not None else None, **kw)
        assert torch.equal(out["w"], f32["w"].bfloat16())
        assert torch.equal(out["ids"], a["ids"])  # integer tensors come from the first model


def test_float16_and_float64_keep_their_dtype():
    a = {"h": torch.randn(4).half(), "d": torch.randn(4, dtype=torch.float64)}
    b = {"h": torch.randn(4).half(), "d": torch.randn(4, dtype=torch.float64)}
    out = merge_state_dicts("linear", [a, b])
    assert out["h"].dtype == torch.float16 and out["d"].dtype == torch.float64


def test_non_float_tensors_are_kept_from_the_first_model():
    a = {"w": torch.ones(3), "position_ids": torch.arange(5)[None], "mask": torch.tensor([True, False])}
    b = {"w": torch.zeros(3), "position_ids": torch.arange(5)[None] * 2, "mask": torch.tensor([False, True])}
    out = merge_state_dicts("slerp", [a, b], t=0.5)
    assert torch.equal(out["position_ids"], a["position_ids"]) and torch.equal(out["mask"], a["mask"])
    assert list(out) == list(a)


# ------------------------------------------------------------------ registry and bad input

def test_registry_lists_every_method_with_reference_and_formula_docstring():
    import importlib

    from geomcheck.cli.merge import METHOD_NAMES

    assert tuple(METHODS) == METHOD_NAMES
    for name, m in METHODS.items():
        assert m.name == name and m.reference and m.summary
        module = importlib.import_module(m.fn.__module__)
        assert module.__doc__ and ("=" in module.__doc__ or "·" in module.__doc__)


def test_importing_geomcheck_merge_does_not_import_torch():
    code = ("import sys, geomcheck, geomcheck.merge, geomcheck.cli.merge, argparse;"
            "p = argparse.ArgumentParser(); geomcheck.cli.merge.add_parser(p.add_subparsers());"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_method_suggests_a_close_name():
    with pytest.raises(UnknownMergeMethodError, match=r"unknown merge method 'slerpp'; did you mean 'slerp'.*"
                                                      r"Known merge method names: .*dare_ties"):
        merge_state_dicts("slerpp", [{"w": torch.ones(2)}, {"w": torch.ones(2)}])
    assert issubclass(UnknownMergeMethodError, GeomcheckError)


def test_mismatched_keys_and_shapes_name_the_first_one():
    a = {"x": torch.ones(2), "y": torch.ones(3)}
    with pytest.raises(IncompatibleModelsError, match=r"models\[1\] has no tensor 'y'"):
        merge_state_dicts("linear", [a, {"x": torch.ones(2)}])
    with pytest.raises(IncompatibleModelsError, match=r"models\[1\] has tensor 'z' that models\[0\] lacks"):
        merge_state_dicts("linear", [a, {**a, "z": torch.ones(1)}])
    with pytest.raises(IncompatibleModelsError, match=r"tensor 'y' has shape \(3,\) in models\[0\] but \(4,\)"):
        merge_state_dicts("linear", [a, {"x": torch.ones(2), "y": torch.ones(4)}])
    with pytest.raises(IncompatibleModelsError, match="base"):
        merge_state_dicts("ties", [a, a], {"x": torch.ones(2)})
    assert issubclass(IncompatibleModelsError, InvalidInputError)


@pytest.mark.parametrize("method, n, base, kw, match", [
    ("slerp", 1, False, {"t": 0.5}, "slerp needs at least 2 models, got 1"),
    ("slerp", 3, False, {"t": 0.5}, "at most 2 models.*multislerp or karcher"),
    ("slerp", 2, False, {}, "needs the parameter 't'"),
    ("slerp", 2, True, {"t": 0.5}, "takes no base"),
    ("linear", 1, False, {}, "linear needs at least 2 models"),
    ("ties", 2, False, {}, "ties needs a base model"),
    ("dare_linear", 2, False, {}, "needs a base model"),
    ("model_stock", 1, True, {}, "model_stock needs at least 2 models besides the base"),
    ("task_arithmetic", 0, True, {}, "needs at least 1 model besides the base"),
    ("ties", 2, True, {"density": 0.0}, r"density must lie in \(0, 1\]"),
    ("ties", 2, True, {"density": [0.5]}, "1 values for 2 models"),
    ("dare_ties", 2, True, {"seed": -1}, "seed must be a non-negative integer"),
    ("dare_ties", 2, True, {"rescale": "l3"}, "rescale must be one of"),
    ("ties", 2, True, {"densty": 0.5}, "ties has no parameter 'densty'; its parameters are: density"),
    ("karcher", 2, False, {"max_iter": 0}, "max_iter must be a positive integer"),
    ("linear", 2, False, {"weights": [1.0]}, "2 weights? for 2 models|got 1 weights for 2 models"),
    ("model_stock", 2, True, {"weights": [1.0, 1.0]}, "model_stock takes no weights"),
    ("slerp", 2, False, {"t": 0.5, "weights": [1, 1]}, "takes no weights.*use t"),
    ("linear", 2, False, {"weights": [1.0, "x"]}, r"weights\[1\] must be a finite number"),
])
def test_bad_input_raises_a_clear_error(method, n, base, kw, match):
    sd = {"w": torch.ones(4)}
    with pytest.raises(InvalidInputError, match=match):
        merge_state_dicts(method, [sd] * n, sd if base else None, **kw)


def test_models_must_be_a_list_of_state_dicts():
    with pytest.raises(MergeError, match="list of state dicts"):
        merge_state_dicts("linear", {"w": torch.ones(2)})
    with pytest.raises(MergeError, match=r"models\[1\] is a list"):
        merge_state_dicts("linear", [{"w": torch.ones(2)}, [1, 2]])
    with pytest.raises(MergeError, match="not a tensor"):
        merge_state_dicts("linear", [{"w": torch.ones(2)}, {"w": [1.0, 2.0]}])


def test_linear_weights_summing_to_zero_is_an_error_not_a_nan():
    with pytest.raises(MergeError, match="sum to 0"):
        merge_state_dicts("task_arithmetic", [{"w": torch.ones(2)}] * 2, {"w": torch.zeros(2)}, weights=[1, -1],
                          normalize=True)
    with pytest.raises(MergeError, match="sum to 0"):
        merge_state_dicts("linear", [{"w": torch.ones(2)}] * 2, weights=[1, -1])


def test_multislerp_of_zero_tensors_is_zero():
    import torch

    from geomcheck.merge import merge_state_dicts

    zeros = {"b": torch.zeros(4)}
    out = merge_state_dicts("multislerp", [zeros, dict(zeros), dict(zeros)])
    assert torch.equal(out["b"], torch.zeros(4))
