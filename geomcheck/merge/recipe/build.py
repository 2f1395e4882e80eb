"""Read a mergekit YAML recipe (``read_recipe``) and build it with geomcheck's streaming engine (``build_recipe``).

A model reference is, in this order: an earlier stage's ``name``; a name bound by the caller
(``bind={"base": DIR, "lora": DIR}``: the merge suite binds ``base`` and ``lora`` to the model
under test and its LoRA model); a path, relative to the working directory (as mergekit) or else
to the recipe's directory; or whatever the caller's ``resolve(name)`` finds (the CLI and the
suites pass geomcheck's model registry, so ``model: minilm`` works). ``MODEL+ADAPTER`` merges
the adapter into the model first (:mod:`.lora`).

The output is a complete sentence-transformers (or transformers) directory: the weights merged
tensor by tensor, everything else copied from the base model (``base_model``; the first model
without one), the tokenizer from ``tokenizer_source`` when it names a model. Intermediate stages
and ``MODEL+ADAPTER`` copies go to a temporary directory beside the output, removed at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geomcheck.errors import MergeError
from geomcheck.merge.recipe._yaml import load_documents
from geomcheck.merge.recipe.config import Ref, Stage, parse_stage

__all__ = ["Recipe", "read_recipe", "build_recipe", "TOKENIZER_FILES"]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "added_tokens.json", "tokenizer.model", "sentencepiece.bpe.model", "spiece.model")


@dataclass(frozen=True)
class Recipe:
    """A recipe read and checked: its stages, the file, and its text's digest."""

    path: Path
    text: str
    stages: tuple[Stage, ...]

    @property
    def text_digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def base_model(self) -> str | None:
        """The last stage's base model as written (the model the result is a variant of), or None."""
        last = self.stages[-1]
        return last.base.text if last.base is not None else None

    def with_t(self, t: float) -> Recipe:
        """The recipe with the last stage's ``t`` set to ``t`` (a sweep over t): MergeError unless that stage's
        recipe-level ``t`` is a single number (a gradient or filters have no one value to vary)."""
        import dataclasses

        last = self.stages[-1]
        if "t" not in last.params or not isinstance(last.params["t"], (int, float)) or isinstance(last.params["t"], bool):
            what = "has no `t` in its parameters" if "t" not in last.params else f"has t = {last.params['t']!r}"
            raise MergeError(f"{self.path}: the recipe's last stage {what}; a sweep varies one number t "
                             f"(parameters: {{t: 0.5}}) from 0 to 1.")
        stage = dataclasses.replace(last, params={**last.params, "t": float(t)})
        return Recipe(self.path, f"{self.text}\n# t = {float(t)!r} (sweep)\n", self.stages[:-1] + (stage,))

    def external_refs(self) -> list[Ref]:
        """The models the recipe reads that no stage of it builds."""
        names = {s.name for s in self.stages if s.name}
        out: dict[str, Ref] = {}
        for st in self.stages:
            for r in st.refs():
                if r.model not in names:
                    out.setdefault(r.text, r)
        return list(out.values())

    def inputs(self, *, bind: Mapping[str, Any] | None = None, resolve: Callable[[str], Any] | None = None) -> list[Path]:
        """The directories of every model and adapter the recipe reads (no stage outputs)."""
        found: list[Path] = []
        for r in self.external_refs():
            found.append(_find(r.model, r, self, bind, resolve))
            if r.lora:
                found.append(_find(r.lora, r, self, bind, resolve, adapter=True))
        return list(dict.fromkeys(found))

    def digest(self, *, bind: Mapping[str, Any] | None = None, resolve: Callable[[str], Any] | None = None,
               file_digest: Callable[[Path], str] | None = None) -> str:
        """sha256 over the recipe's text and its inputs' files (``file_digest(path)`` per file: content digests
        from the caller's cache; default each file's size and modification times)."""
        h = hashlib.sha256(self.text.encode())
        for d in self.inputs(bind=bind, resolve=resolve):
            for p in sorted(q for q in d.rglob("*") if q.is_file() and not any(x.startswith(".") for x in
                                                                                q.relative_to(d).parts)):
                st = p.stat()
                ident = file_digest(p) if file_digest else f"{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
                h.update(f"{p.relative_to(d).as_posix()}|{ident}\n".encode())
        return h.hexdigest()


def read_recipe(path: str | os.PathLike[str]) -> Recipe:
    """A mergekit YAML recipe (one document, or several stages) read and checked; MergeError with the line of
    the first thing wrong or unsupported (``geomcheck.merge.recipe.config``)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise MergeError(f"cannot read the recipe {str(p)!r}: {exc.strerror or exc}.") from None
    docs = load_documents(text, str(p))
    if not docs:
        raise MergeError(f"{str(p)!r} holds no recipe (an empty YAML file).")
    stages = tuple(parse_stage(d, str(p), i) for i, d in enumerate(docs))
    seen: dict[str, int] = {}
    for i, st in enumerate(stages):
        for r in st.refs():
            later = [j for j, s in enumerate(stages) if s.name == r.model and j >= i]
            if later:
                raise MergeError(f"{p}, line {r.line}: stage {r.model!r} is used before it is built (stages run in "
                                 "the order of the documents).")
        if st.name:
            if st.name in seen:
                raise MergeError(f"{p}, line {st.line}: two stages are named {st.name!r}.")
            seen[st.name] = i
        elif i < len(stages) - 1:
            raise MergeError(f"{p}, line {st.line}: stage {i + 1} of {len(stages)} has no `name`, so no later stage "
                             "can use it; name it (name: …) or remove it.")
    return Recipe(p, text, stages)


def _find(model: str, ref: Ref, recipe: Recipe, bind: Mapping[str, Any] | None,
          resolve: Callable[[str], Any] | None, *, adapter: bool = False) -> Path:
    if bind and model in bind:
        return Path(bind[model])
    p = Path(model).expanduser()
    for cand in (p, recipe.path.parent / p):
        if cand.exists():
            return cand
    if resolve is not None and not adapter:
        try:
            got = resolve(model)
        except Exception as exc:  # the caller's resolver says why (unknown alias, not downloaded…)
            raise MergeError(f"{recipe.path}, line {ref.line}: model {model!r} is not a directory (relative to the "
                             f"working directory or to the recipe's), a stage of the recipe"
                             + (f", one of the names bound here ({', '.join(bind)})" if bind else "")
                             + f" or a model geomcheck knows: {exc} (give a name's directory with --bind "
                             f"{model}=DIR; the merge suite binds base and lora).") from None
        if got is not None:
            return Path(got)
    what = "adapter" if adapter else "model"
    raise MergeError(f"{recipe.path}, line {ref.line}: no {what} {model!r}: not a directory (relative to the working "
                     f"directory or to the recipe's){'' if adapter else ', not a stage of the recipe'}"
                     + (f", not one of the names bound here ({', '.join(bind)})" if bind else "") + ".")


def _layers(path: Path) -> int:
    from geomcheck.merge._base import count_layers
    from geomcheck.merge.reader import LazyStateDict, weight_groups

    groups = weight_groups(path)
    main = "model.safetensors" if "model.safetensors" in groups else next(iter(groups))
    return count_layers(list(LazyStateDict(groups[main]).entries))


def _same_tokenizer(dirs: list[Path]) -> bool:
    def files(d: Path) -> dict[str, bytes]:
        return {n: (d / n).read_bytes() for n in TOKENIZER_FILES if (d / n).is_file()}

    first = files(dirs[0])
    return all(files(d) == first for d in dirs[1:])


def _build_stage(stage: Stage, recipe: Recipe, dirs: dict[str, Path], out: Path, *, overwrite: bool,
                 threads: int | None) -> Any:
    import torch

    from geomcheck.merge.files import write_merge
    from geomcheck.merge.recipe.plan import RecipePlan

    src = str(recipe.path)
    listed = [s.ref.text for s in stage.slices[0].sources]
    base = stage.base.text if stage.base is not None else None
    mode = stage.method.base
    if mode == "required" and base is None:
        raise MergeError(f"{src}, line {stage.line}: {stage.method.name} needs a base_model.")
    if mode == "required" and stage.method.name == "slerp":
        others = [m for m in listed if m != base]
        models, engine_base = [base, *others], None  # t = 0 is the base, as mergekit's slerp
        if len(models) != 2:
            raise MergeError(f"{src}, line {stage.line}: slerp merges the base_model with exactly one other model, "
                             f"got {len(others)} other{'s' if len(others) != 1 else ''}: {', '.join(others)}.")
    elif mode in ("required", "optional") and base is not None:
        models, engine_base = [m for m in listed if m != base], base
    else:  # base_model is one more input (mergekit adds it to the models)
        models, engine_base = listed + ([base] if base is not None and base not in listed else []), None
    if not models:
        raise MergeError(f"{src}, line {stage.line}: {stage.method.name} has no model to merge besides the base.")
    in_paths = [dirs[m] for m in models]
    base_path = dirs[engine_base] if engine_base is not None else None
    pipeline = dirs[base] if base is not None else in_paths[0]
    n_layers = _layers(pipeline)
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    out_code = stage.out_dtype or stage.dtype
    plan = RecipePlan(stage, models, has_base=engine_base is not None, n_layers=n_layers, source=src,
                      out_dtype=dtypes[out_code] if out_code else None,
                      compute_dtype=dtypes[stage.dtype] if stage.dtype else None)
    tok = stage.tokenizer_source
    every = [dirs[m] for m in dict.fromkeys(listed + ([base] if base else []))]
    if tok == "union" and not _same_tokenizer(every):
        raise MergeError(f"{src}: tokenizer_source: union over models whose tokenizers differ is not supported (it "
                         "builds a new vocabulary and re-maps embedding rows); merge models that share one tokenizer, "
                         "or use tokenizer_source: base.")
    labels = [f"{m} ({dirs[m]})" for m in models]
    result = write_merge(in_paths, base_path, out, lambda names: plan, method=stage.method.name,
                         params={k: v for k, v in stage.params.items()},
                         provenance={"recipe": str(recipe.path), "stage": stage.name, "method": stage.method.name,
                                     "models": [str(p) for p in in_paths],
                                     "base": str(base_path) if base_path else None},
                         overwrite=overwrite, threads=threads, pipeline_from=pipeline, out_dtype=out_code,
                         labels=labels)
    if isinstance(tok, Ref):
        _copy_tokenizer(dirs[tok.text], out)
    if out_code:
        _set_config_dtype(out, {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}[out_code])
    return result


def _copy_tokenizer(src: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (out / name).is_file():
            (out / name).unlink()
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)


def _set_config_dtype(out: Path, dtype: str) -> None:
    cfg = out / "config.json"
    if not cfg.is_file():
        return
    data = json.loads(cfg.read_text())
    for key in ("torch_dtype", "dtype"):
        if key in data:
            data[key] = dtype
    tmp = cfg.with_name(".config.json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, cfg)


def build_recipe(recipe: str | os.PathLike[str] | Recipe, out_dir: str | os.PathLike[str], *, overwrite: bool = False,
                 bind: Mapping[str, Any] | None = None, resolve: Callable[[str], Any] | None = None,
                 threads: int | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """Build a mergekit recipe into ``out_dir`` (module doc); returns ``out_dir``. Nothing is written to ``out_dir``
    unless the whole recipe succeeds (earlier stages go to a temporary directory)."""
    from geomcheck.merge.files import check_output_dir
    from geomcheck.merge.recipe.lora import merge_lora_into

    rec = recipe if isinstance(recipe, Recipe) else read_recipe(recipe)
    out = Path(out_dir)
    check_output_dir(out, rec.inputs(bind=bind, resolve=resolve), overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.recipe.tmp-", dir=out.parent))
    try:
        built: dict[str, Path] = {}
        for i, stage in enumerate(rec.stages):
            dirs: dict[str, Path] = {}
            for r in stage.refs():
                path = built[r.model] if r.model in built else _find(r.model, r, rec, bind, resolve)
                if r.lora:
                    adapter = _find(r.lora, r, rec, bind, resolve, adapter=True)
                    merged = work / f"lora-{len(list(work.iterdir()))}"
                    if progress:
                        progress(f"merging the adapter {adapter} into {path}")
                    path = merge_lora_into(path, adapter, merged)
                dirs[r.text] = path
            last = i == len(rec.stages) - 1
            target = out if last else work / f"stage-{i}"
            if progress:
                progress(f"stage {i + 1} of {len(rec.stages)}{f' ({stage.name})' if stage.name else ''}: "
                         f"{stage.method.name} of {', '.join(r.text for r in stage.refs())}")
            _build_stage(stage, rec, dirs, target, overwrite=overwrite and last, threads=threads)
            if stage.name:
                built[stage.name] = target
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
