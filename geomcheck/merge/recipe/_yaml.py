"""YAML documents read with the line of every key, so that an error in a recipe can name its line.

``load_documents(text, source)`` returns one :class:`Node` tree per YAML document: mappings are
:class:`LineDict` (``.line``: the mapping's line, ``.lines[key]``: each key's), sequences
:class:`LineList` (``.line``). Scalars are what ``yaml.safe_load`` gives, with one difference that
mergekit's reader (pydantic over ``safe_load``) has too: a number PyYAML leaves as a string
because YAML 1.1 wants a dot in it (``1e-3``) is read as a float.
"""

from __future__ import annotations

import re
from typing import Any

from geomcheck.errors import MergeError

__all__ = ["LineDict", "LineList", "load_documents", "line_of"]

_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


class LineDict(dict):
    """A mapping read from YAML, with the line (1-based) of itself and of each key."""

    line: int = 0

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.lines: dict[Any, int] = {}


class LineList(list):
    """A sequence read from YAML, with its line (1-based)."""

    line: int = 0


def line_of(obj: Any, key: Any = None, default: int = 0) -> int:
    """The line of ``obj[key]``'s key, or of ``obj`` itself (0 when unknown)."""
    if key is not None and isinstance(obj, LineDict):
        return obj.lines.get(key, obj.line or default)
    return getattr(obj, "line", 0) or default


def _loader(source: str) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any) -> LineDict:
        out = LineDict()
        out.line = node.start_mark.line + 1
        loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor), as safe_load does
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise MergeError(f"{source}, line {line}: a key must be a name, got {key!r}.")
            if key in out:
                raise MergeError(f"{source}, line {line}: {key!r} is given twice in one mapping (first on line "
                                 f"{out.lines[key]}); YAML keeps only the last, so say it once.")
            out[key] = loader.construct_object(value_node, deep=True)
            out.lines[key] = line
        return out

    def sequence(loader: Any, node: Any) -> LineList:
        out = LineList(loader.construct_object(child, deep=True) for child in node.value)
        out.line = node.start_mark.line + 1
        return out

    def string(loader: Any, node: Any) -> Any:
        value = loader.construct_scalar(node)
        if node.style is None and _FLOAT.match(value):  # 1e-3: a float to mergekit (pydantic) too
            return float(value)
        return value

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, sequence)
    Loader.add_constructor("tag:yaml.org,2002:str", string)
    return Loader


def load_documents(text: str, source: str) -> list[Any]:
    """Every document of ``text`` (a YAML stream), empty documents left out; MergeError with the line when
    the YAML does not parse."""
    import yaml

    try:
        docs = list(yaml.load_all(text, Loader=_loader(source)))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MergeError(f"{source}{where}: not valid YAML ({problem}).") from None
    return [d for d in docs if d is not None]
