"""Checks of the command line that make sure the suites test what the user named.

Two ways a plain ``pytest`` command line can silently test something else:

- **a shadowed short form**: the suites' ``--model`` is an alias that ``add_short_options`` adds
  only where the project has no option of that name. Where the project's ``conftest.py`` defines
  ``--model`` too, ``pytest suites/ --model X`` hands X to the project, and the suites would test
  the default model. That is a usage error naming the clash (``geomcheck check`` never has it: it
  hands geomcheck's options over namespaced).
- **a path taken for a test path**: pytest picks its rootdir, ini file and first conftests
  before it knows the plugin's options, so in ``--geomcheck-model /abs/ckpt`` the path counts as
  a test path there; the rootdir (where baselines are found and written) can become the model's
  directory. Where that changed the ini file (another project's settings would apply), it is a
  usage error saying to join the value with ``=``; where it changed only the rootdir, geomcheck
  keeps its baselines under the rootdir the command line meant, and says so in a warning.
"""

from __future__ import annotations

import inspect
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from pytest_geomcheck.options import OPTIONS

__all__ = ["SHORT_FORMS_DEST", "check_command_line"]

SHORT_FORMS_DEST = "geomcheck_short_forms"  # set (hidden option) where add_short_options ran

# the options whose value may be a path on disk
_PATH_DESTS = {"models", "base_model", "adapter", "checkpoints", "dataset", "report_dir", "baseline"}


def _command_line(config: pytest.Config) -> list[str]:
    """The arguments pytest read before its ini file: ``PYTEST_ADDOPTS``, then the invocation's."""
    env = os.environ.get("PYTEST_ADDOPTS", "")
    return [*shlex.split(env), *(str(a) for a in config.invocation_params.args)]


def _shadowed_short_forms(config: pytest.Config, args: list[str]) -> str | None:
    if config.getoption(SHORT_FORMS_DEST, None) is None:  # no short forms in this run: --model is the project's
        return None
    for opt in OPTIONS:
        if opt.short is None or not any(a == opt.short or a.startswith(opt.short + "=") for a in args):
            continue
        try:
            ours = config.getoption(opt.short) is config.getoption(f"geomcheck_{opt.dest}")
        except ValueError:
            continue
        if not ours:
            value = config.getoption(opt.short)
            return (f"geomcheck: {opt.short} is also an option of your project (a conftest.py defines it), so it "
                    f"went to the project ({opt.short} = {value!r}) and the suites would have run on "
                    f"{'their default' if opt.dest == 'models' else 'the default setting'}. Use {opt.flag} "
                    f"instead, or `geomcheck check {opt.short} …`, which always hands it to geomcheck.")
    return None


def _setup_without(config: pytest.Config, args: list[str], drop: set[int]) -> tuple[Path, Path | None] | None:
    """pytest's (rootdir, ini file) for ``args`` without the tokens at ``drop``; None where pytest's
    function for it is not there (it is internal: a pytest that moved it skips this check)."""
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        return None
    params = inspect.signature(determine_setup).parameters
    kw: dict[str, Any] = {"inifile": None, "override_ini": None, "rootdir_cmd_arg": None,
                          "invocation_dir": config.invocation_params.dir}
    for name, flag in (("inifile", "-c"), ("inifile", "--config-file"), ("rootdir_cmd_arg", "--rootdir")):
        for i, a in enumerate(args):
            if a == flag and i + 1 < len(args):
                kw[name] = args[i + 1]
            elif a.startswith(flag + "="):
                kw[name] = a.split("=", 1)[1]
    kw["args"] = [a for i, a in enumerate(args) if i not in drop and not a.startswith("-")]
    try:
        root, ini, *_ = determine_setup(**{k: v for k, v in kw.items() if k in params})
    except Exception:  # noqa: BLE001 - whatever pytest itself would say about it, it said already
        return None
    return Path(root), (Path(ini) if ini else None)


def _path_taken_for_a_test_path(config: pytest.Config, args: list[str]) -> tuple[str, Path | None] | None:
    """(what to say, the rootdir meant) where a separated path value moved pytest's rootdir or ini file;
    the rootdir is None where the ini file moved (a usage error, not a warning)."""
    flags = {name: opt for opt in OPTIONS if opt.dest in _PATH_DESTS for name in (opt.flag, opt.short) if name}
    separated = [(i + 1, a) for i, a in enumerate(args[:-1]) if a in flags and not args[i + 1].startswith("-")
                 and Path(args[i + 1]).expanduser().exists()]
    if not separated:
        return None
    with_paths = _setup_without(config, args, set())
    without = _setup_without(config, args, {i for i, _ in separated})
    if with_paths is None or without is None or with_paths == without:
        return None
    (root, ini), (root0, ini0) = with_paths, without
    i, flag = separated[0]
    value = args[i]
    head = (f"geomcheck: pytest took {value} (the value of {flag}) for a test path when it chose its rootdir and "
            f"ini file, before geomcheck's options were known")
    join = f"Join the value with '=': {flag}={value} (or run `geomcheck check`, which does)."
    if ini != ini0:
        return (f"{head}: ini file {ini} instead of {ini0}, so another project's settings would apply. {join}",
                None)
    return (f"{head}: rootdir {root} instead of {root0} (pytest's cache goes there); geomcheck reads and writes "
            f"its baselines under {root0}, the rootdir the command line meant. {join}", root0)


def check_command_line(config: pytest.Config) -> tuple[Path, str]:
    """(the rootdir geomcheck keeps its baselines under, what to say about it in the header): pytest's and
    "", or the one the command line meant where a separated path value moved pytest's, and why. Raises
    ``pytest.UsageError`` where the command line would make the suites test something else than the user
    named (see the module's docstring)."""
    args = _command_line(config)
    problem = _shadowed_short_forms(config, args)
    if problem is not None:
        raise pytest.UsageError(problem)
    moved = _path_taken_for_a_test_path(config, args)
    if moved is None:
        return Path(config.rootpath), ""
    text, root = moved
    if root is None:
        raise pytest.UsageError(text)
    # in the header, not a warning: a project's `filterwarnings = error` would turn it into a crash
    return root, text
