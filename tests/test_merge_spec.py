"""The merge-method spec: declared parameters, the one calling convention, the rule properties, the weighted sum."""

from __future__ import annotations

import argparse
import inspect
import re
from functools import partial

import pytest

torch = pytest.importorskip("torch")

import geomcheck.merge._base as base_module  # noqa: E402
from geomcheck.errors import GeomcheckError, MergeError  # noqa: E402
from geomcheck.merge import METHODS, MergeMethod, merge_state_dicts  # noqa: E402
from geomcheck.merge._base import REQUIRED, Param, check_choice, check_fraction  # noqa: E402
from geomcheck.merge._tensor import weighted_sum  # noqa: E402


def test_params_and_per_tensor_come_from_the_declarations():
    for m in METHODS.values():
        assert m.params == {p.name: p.default for p in m.parameters}
        assert m.per_tensor == tuple(p.name for p in m.parameters if p.per_tensor)
    assert METHODS["slerp"].params == {"t": REQUIRED, "granularity": "tensor", "dot_threshold": 0.9995, "eps": 1e-8}
    assert METHODS["slerp"].per_tensor == METHODS["nuslerp"].per_tensor == ("t",)
    assert list(METHODS["dare_ties"].params) == ["density", "seed", "rescale", "scale", "normalize"]
    assert METHODS["dare_linear"].params["normalize"] is False and METHODS["dare_ties"].params["normalize"] is True
    assert all(p.help for m in METHODS.values() for p in m.parameters)


def test_every_method_calls_its_public_maths_function():
    for m in METHODS.values():
        assert not m.fn.__name__.startswith("_"), m.name
        module = inspect.getmodule(m.fn)
        assert getattr(module, m.fn.__name__) is m.fn and m.fn.__name__ in module.__all__


def test_rule_properties():
    assert {n for n, m in METHODS.items() if m.uses_task_vectors} == {
        "task_arithmetic", "ties", "dare_linear", "dare_ties", "model_stock"}
    assert {n for n, m in METHODS.items() if m.pairwise} == {"slerp", "nuslerp"}
    assert {n for n, m in METHODS.items() if m.takes_base} == {
        "nuslerp", "multislerp", "karcher", "task_arithmetic", "ties", "dare_linear", "dare_ties", "model_stock"}
    assert METHODS["slerp"].accepts(2) and not METHODS["slerp"].accepts(3) and not METHODS["slerp"].accepts(1)
    assert METHODS["ties"].accepts(1) and METHODS["karcher"].accepts(10) and not METHODS["model_stock"].accepts(1)


def test_cli_base_help_names_the_methods_that_take_a_base():
    from geomcheck.cli.merge import add_parser

    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    words = set(re.findall(r"[\w*]+", next(a.help for a in parser._actions if a.dest == "base")))
    for name, m in METHODS.items():
        assert (name in words or name.startswith("dare_") and "dare_*" in words) == m.takes_base, name


def test_errors_live_in_geomcheck_errors():
    import geomcheck.errors as errors
    import geomcheck.merge as merge

    for name in ("MergeError", "IncompatibleModelsError", "UnknownMergeMethodError"):
        assert name not in base_module.__all__
        assert getattr(merge, name) is getattr(errors, name)


def _scaled_mix(tensors, weights, *, alpha, mode="sum"):
    """A test method: alpha·Σ w_i x_i (mode "sum") or alpha·x_0 ("first")."""
    return weighted_sum(tensors, weights).mul_(alpha) if mode == "sum" else tensors[0] * alpha


def _pair_diff(a, b, *, k):
    return (b - a) * k[0] + a


_MIX = MergeMethod(
    "mix", _scaled_mix, summary="test", reference="test",
    parameters=(
        Param("alpha", REQUIRED, partial(check_fraction, hi=10.0), per_tensor=True, help="factor"),
        Param("mode", "sum", partial(check_choice, choices=("sum", "first")), help="what to scale"),
    ),
)


def test_a_declared_method_is_checked_and_called_with_only_the_inputs_it_names():
    a, b = {"layers.0.w": torch.ones(3), "layers.1.w": torch.ones(3)}, {"layers.0.w": torch.full((3,), 2.0),
                                                                        "layers.1.w": torch.full((3,), 2.0)}
    out = merge_state_dicts(_MIX, [a, b], weights=[1.0, 0.5], alpha=[2.0, 4.0])
    assert torch.equal(out["layers.0.w"], torch.full((3,), 4.0)) and torch.equal(out["layers.1.w"], torch.full((3,), 8.0))
    assert torch.equal(merge_state_dicts(_MIX, [a, b], alpha=3, mode="first")["layers.0.w"], torch.full((3,), 3.0))
    for kw, match in [({}, "mix needs the parameter 'alpha'"),
                      ({"alpha": 11}, r"alpha must lie in \[0, 10\]"),
                      ({"alpha": [1, "x"]}, r"alpha\[1\] must be a finite number"),
                      ({"alpha": 1, "mode": "max"}, "mode must be one of 'sum', 'first'"),
                      ({"alpha": 1, "beta": 2}, "mix has no parameter 'beta'; its parameters are: alpha, mode")]:
        with pytest.raises(MergeError, match=match):
            merge_state_dicts(_MIX, [a, b], **kw)
    pair = MergeMethod("pair", _pair_diff, summary="test", reference="test", max_models=2, uses_weights=False,
                       parameters=(Param("k", 0.5, partial(check_fraction, lo_open=True), per_model=True),))
    assert pair.params == {"k": 0.5}
    out = merge_state_dicts(pair, [a, b], k=[0.25, 1.0])
    assert torch.equal(out["layers.0.w"], torch.full((3,), 1.25))
    with pytest.raises(MergeError, match="k has 1 values for 2 models"):
        merge_state_dicts(pair, [a, b], k=[0.5])


def test_a_parameter_may_not_shadow_an_input_or_repeat():
    for params in [(Param("base", 1),), (Param("x", 1), Param("x", 2))]:
        with pytest.raises(GeomcheckError, match="declared twice or is one of the inputs"):
            MergeMethod("bad", _scaled_mix, summary="s", reference="r", parameters=params)


def test_weighted_sum():
    x, y = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -4.0])
    assert torch.equal(weighted_sum([x, y], [2.0, 1.0]), torch.tensor([5.0, 0.0]))
    assert torch.equal(weighted_sum(iter([x, y]), [1.0, 3.0], normalize=True), torch.tensor([2.5, -2.5]))
    assert torch.equal(x, torch.tensor([1.0, 2.0]))  # inputs untouched
    with pytest.raises(MergeError, match="the weights sum to 0, so they cannot be normalised"):
        weighted_sum([x, y], [1.0, -1.0], normalize=True)
    assert torch.equal(weighted_sum([x, y], [1.0, -1.0]), torch.tensor([-2.0, 6.0]))
