"""The house rules of the package layout, read from the source (every import, lazy ones too).

Each folder of ``geomcheck/`` is one stage of the flow (data → models → metrics → checks →
reporting; adapt and merge on the side): a stage imports only the stages it is allowed to
know, nothing in ``geomcheck/`` or ``suites/`` imports the plugin, there are no import
circles, and no module grows much past 400 lines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 420  # "about 400": a module past this becomes a package or splits its jobs

BASE = {"geomcheck", "errors", "_device", "_json", "_disk"}  # what any stage may use
ALLOWED = {
    "data": BASE,
    "models": BASE | {"cache", "data"},
    "metrics": BASE,
    "merge": BASE,
    "adapt": BASE | {"cache", "data", "models", "metrics", "merge"},
    "checks": BASE | {"cache", "metrics"},
    "reporting": BASE | {"metrics", "models"},
    "strategies": BASE | {"data"},
    "sequences": BASE | {"data"},
    "assertions": BASE | {"checks"},
    "cache": BASE,
    "testing": BASE,
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted((ROOT / "geomcheck").rglob("*.py")) + sorted((ROOT / "plugins" / "pytest_geomcheck").glob("*.py")):
        rel = f.relative_to(ROOT / "plugins") if "plugins" in f.parts else f.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every geomcheck / pytest_geomcheck module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
            # `from pkg import submodule` names the submodule, not the package's own contents
            found.update(subs if len(subs) == len(node.names) else [node.module, *subs])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in ("geomcheck", "pytest_geomcheck")}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "geomcheck" and len(parts) > 1 else parts[0]


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_each_stage_imports_only_what_it_may_know(stage):
    reaches = {f"{m} imports {t}" for m, ts in GRAPH.items() if _stage(m) == stage
               for t in ts if _stage(t) != stage and _stage(t) not in ALLOWED[stage]}
    assert not reaches, sorted(reaches)


def test_nothing_imports_the_plugin():
    users = {m: sorted(t for t in ts if t.startswith("pytest_geomcheck")) for m, ts in GRAPH.items()
             if m.startswith("geomcheck") and any(t.startswith("pytest_geomcheck") for t in ts)}
    suites = {f.name: sorted(t for t in _imports(f) if t.startswith("pytest_geomcheck"))
              for f in (ROOT / "suites").glob("*.py")}
    # the suites' conftest adds the short options through the plugin's one public function
    # `geomcheck check` is the suites' command line: it reads the plugin's option table to hand every
    # geomcheck option to pytest namespaced (a project's own --model never takes it)
    assert users == {"geomcheck.cli.check": ["pytest_geomcheck.options"]}
    assert {k: v for k, v in suites.items() if v} == {"conftest.py": ["pytest_geomcheck"]}


def test_there_are_no_import_circles():
    # edges from a module to its own package are the package importing its parts, not a circle
    edges = defaultdict(set)
    for m, ts in GRAPH.items():
        edges[m] = {t for t in ts if t in MODULES and not m.startswith(t + ".")}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    assert circles == []


def test_modules_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}


def test_pyproject_lists_every_package():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {m for m, p in MODULES.items() if p.name == "__init__.py"} | {"geomcheck.suites"}
    assert listed == found


def test_the_rules_cover_every_stage():
    stages = {_stage(m) for m in MODULES if m.startswith("geomcheck.")}
    assert stages - set(ALLOWED) - BASE - {"cli", "__main__"} == set()
