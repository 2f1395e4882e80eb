"""Your own merges as variants: ``NAME=PATH`` (a merged model directory) or ``NAME=recipe.yml`` (a mergekit recipe).

They sit beside the built-in variants (``soup``, ``slerp``, …) wherever those go: the
``merged_variants`` fixture, Table 2, the merge suite, ``geomcheck merges``. Three steps:

- ``parse_variant`` reads ``NAME=PATH`` and checks what needs no model: the name (letters,
  digits, ``_.-``; not a built-in variant name), the path (a model directory, or a ``.yml`` /
  ``.yaml`` recipe file);
- ``variant_dir`` gives the model directory: the directory itself, or the recipe built once with
  ``geomcheck.merge.recipe.build_recipe`` into ``<cache>/recipes/<digest>`` (the digest of the
  recipe's text and its inputs' contents, ``read_recipe(...).digest``), where later runs read it;
- ``check_variant_base`` refuses a model that is not a merge of the base under test, naming the
  tensors or ``config.json`` fields that differ (``geomcheck.merge.validate.check_same_base``).

A user variant needs no LoRA checkpoints; it is compared with the base and the LoRA model
like any other variant.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["UserVariant", "parse_variant", "split_variants", "reserved_names", "variant_dir", "check_variant_base",
           "user_variant_dirs", "RECIPE_SUFFIXES", "recipe_cache_dir", "recipe_bind"]

RECIPE_SUFFIXES = (".yml", ".yaml")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class UserVariant:
    """``NAME=PATH`` as given: the variant's ``name``, its ``path`` (absolute) and whether it is a ``recipe``."""

    name: str
    path: Path
    recipe: bool = False

    @property
    def spec(self) -> str:
        return f"{self.name}={self.path}"


def reserved_names() -> tuple[str, ...]:
    """The names a user variant may not take: ``base``, ``lora`` and every built-in variant (``variant_methods``)."""
    from geomcheck.adapt.variants import variant_methods

    return ("base", "lora", *variant_methods())


def parse_variant(text: str, what: str = "--geomcheck-merge", *, relative_to: str | os.PathLike[str] | None = None
                  ) -> UserVariant:
    """``NAME=PATH`` as a ``UserVariant``, else an ``InvalidInputError`` starting with ``what``.

    ``PATH`` must be a model directory (``modules.json`` or ``config.json`` in it) or a mergekit recipe
    (a ``.yml`` / ``.yaml`` file); a relative one is taken from ``relative_to`` (default: the working directory).
    """
    name, sep, raw = str(text).partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise InvalidInputError(f"{what}: expected a method name or NAME=PATH (a merged model directory or a "
                                f"mergekit recipe .yml), got {text!r}")
    if not _NAME.match(name):
        raise InvalidInputError(f"{what} {text}: the name {name!r} must start with a letter or digit and hold only "
                                "letters, digits, '_', '.' and '-' (it names the variant in test ids and reports)")
    if name in reserved_names():
        raise InvalidInputError(f"{what} {text}: {name!r} is a built-in variant name; give your variant another "
                                f"name (taken: {', '.join(reserved_names())})")
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = Path(relative_to or os.getcwd()) / p
    p = p.resolve()
    if p.is_file():
        if p.suffix.lower() not in RECIPE_SUFFIXES:
            raise InvalidInputError(f"{what} {text}: {str(p)!r} is a file but not a mergekit recipe (.yml / .yaml); "
                                    "give a merged model directory or a recipe")
        return UserVariant(name, p, recipe=True)
    if not p.is_dir():
        raise InvalidInputError(f"{what} {text}: nothing at {str(p)!r}; give a merged model directory or a mergekit "
                                "recipe (.yml)")
    if not any((p / f).is_file() for f in ("modules.json", "config.json")):
        raise InvalidInputError(f"{what} {text}: {str(p)!r} is not a model directory (no modules.json or "
                                "config.json in it)")
    return UserVariant(name, p)


def split_variants(entries: Iterable[str], what: str = "--geomcheck-merge", *,
                   relative_to: str | os.PathLike[str] | None = None) -> tuple[list[str], list[UserVariant]]:
    """``(built-in method names, user variants)`` of a list of ``--geomcheck-merge`` values; an unknown method,
    a bad ``NAME=PATH`` or a name given twice is an ``InvalidInputError``."""
    from geomcheck.adapt.variants import variant_methods

    known = variant_methods()
    entries = [str(e) for e in entries]
    bad = [e for e in entries if "=" not in e and e not in known]
    if bad:
        raise InvalidInputError(f"{what}: unknown method(s) {', '.join(bad)}; known: {', '.join(sorted(known))}; or "
                                "NAME=PATH for your own merged model directory or mergekit recipe")
    methods = [e for e in entries if "=" not in e]
    user = [parse_variant(e, what, relative_to=relative_to) for e in entries if "=" in e]
    seen: dict[str, UserVariant] = {}
    for u in user:
        if u.name in seen and seen[u.name].path != u.path:
            raise InvalidInputError(f"{what}: the name {u.name!r} is given twice ({seen[u.name].path} and {u.path})")
        seen[u.name] = u
    return list(dict.fromkeys(methods)), list(seen.values())


def recipe_cache_dir(digest: str) -> Path:
    """Where a recipe of this digest is built: ``<cache>/recipes/<digest>``."""
    from geomcheck.cache import cache_dir

    return cache_dir() / "recipes" / digest


def _resolve(name: str) -> Path:
    """A recipe's model that is no path or bound name: a geomcheck registry name (``model: minilm``)."""
    from geomcheck.models import resolve

    return resolve(name).path


def recipe_bind(user: Sequence[UserVariant], dirs: Mapping[str, Any], checkpoints: Sequence[Any], root: Path, *,
                trust_remote_code: bool = False) -> dict[str, Path]:
    """The names a recipe variant may use for the run's models: ``base`` (the model under test), ``lora`` (its
    LoRA model) and ``checkpoint-0``, ``checkpoint-1``, … (the LoRA run's checkpoints, each merged into the base
    under ``root`` — only those a recipe names)."""
    from geomcheck.adapt.variants import save_with_adapter
    from geomcheck.merge.recipe import read_recipe

    bind = {k: Path(dirs[k]) for k in ("base", "lora") if k in dirs}
    wanted = {r.model for v in user if v.recipe for r in read_recipe(v.path).external_refs()}
    for i, c in enumerate(checkpoints):
        if f"checkpoint-{i}" in wanted:
            bind[f"checkpoint-{i}"] = save_with_adapter(bind["base"], c, root / f"ckpt-{i}",
                                                        trust_remote_code=trust_remote_code)
    missing = sorted(n for n in wanted if n.startswith("checkpoint-") and n not in bind)
    if missing:
        raise InvalidInputError(f"a recipe names {', '.join(missing)}, but the LoRA run has {len(checkpoints)} "
                                f"checkpoint{'s' if len(checkpoints) != 1 else ''} (checkpoint-0 … "
                                f"checkpoint-{len(checkpoints) - 1})")
    return bind


def variant_dir(v: UserVariant, *, cache: bool = True, progress: Callable[[str], Any] | None = None,
                bind: Mapping[str, Any] | None = None, t: float | None = None) -> Path:
    """The model directory of ``v``: its own directory, or its recipe built (once: later calls read the cache;
    ``cache=False`` builds into a fresh temporary directory) with ``bind``'s names (``recipe_bind``); ``t``: the
    recipe with its ``t`` set to this (``Recipe.with_t``, a sweep). ``progress(text)`` hears of a build."""
    if not v.recipe:
        return v.path
    from geomcheck.cache import file_digest, lock_for
    from geomcheck.merge.recipe import build_recipe, read_recipe  # the mergekit recipe reader (issue 18, part 1)

    recipe = read_recipe(v.path)
    if t is not None:
        recipe = recipe.with_t(t)
    if not cache:
        out = Path(tempfile.mkdtemp(prefix=f"geomcheck-recipe-{v.name}-")) / "model"
        if progress is not None:
            progress(f"{v.name}: building the recipe {v.path}")
        return Path(build_recipe(recipe, out, bind=bind, resolve=_resolve))
    out = recipe_cache_dir(recipe.digest(bind=bind, resolve=_resolve, file_digest=file_digest))
    with lock_for(out):
        if (out / "modules.json").is_file() or (out / "config.json").is_file():
            if progress is not None:
                progress(f"{v.name}: the recipe {v.path.name} read from the cache ({out})")
            return out
        if progress is not None:
            progress(f"{v.name}: building the recipe {v.path} (kept in the cache: {out})")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:  # built beside its place and moved there whole: an interrupted build leaves nothing that looks done
            built = Path(build_recipe(recipe, tmp / "model", bind=bind, resolve=_resolve))
            os.replace(built, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def check_variant_base(v: UserVariant, model_dir: str | os.PathLike[str], base_dir: str | os.PathLike[str],
                       what: str = "--geomcheck-merge", base_name: str | None = None) -> None:
    """``IncompatibleModelsError`` when ``model_dir`` (``v``'s model) is not a merge of ``base_dir``, naming ``v``
    as given and what differs (tensors, ``config.json`` fields, vocabulary, weights)."""
    from geomcheck.merge.validate import check_same_base

    source = f"the recipe {str(v.path)!r} (built into {str(model_dir)!r})" if v.recipe else repr(str(v.path))
    check_same_base(model_dir, base_dir, f"{what} {v.name}: {source}", base_name)


def user_variant_dirs(user: Sequence[UserVariant], base_dir: str | os.PathLike[str], *, cache: bool = True,
                      what: str = "--geomcheck-merge", base_name: str | None = None,
                      progress: Callable[[str], Any] | None = None,
                      bind: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """``{name: model directory}`` of each user variant, built where it is a recipe and checked against the base
    (``base_dir``, named ``base_name`` in messages). An error names the variant as given (``what NAME``)."""
    from geomcheck.errors import GeomcheckError

    out = {}
    for v in user:
        try:
            d = variant_dir(v, cache=cache, progress=progress, bind=bind)
        except GeomcheckError as exc:  # the recipe reader's own errors: say which variant's recipe
            raise type(exc)(f"{what} {v.name}: {exc}") from None
        check_variant_base(v, d, base_dir, what, base_name)
        out[v.name] = d
    return out
