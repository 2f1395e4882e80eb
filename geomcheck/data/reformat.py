"""Formatting-only changes of a text: the words and numbers stay, only spacing and punctuation move.

They state a metamorphic relation of an embedding model: *a formatting-only change moves a
text less than the typical distance between classes*. Each change is a pure, deterministic
``str -> str`` function, applied with ``reformat(text, name)``:

- ``"double_spaces"``: every single space (U+0020) with a non-whitespace character on both
  sides becomes two spaces (``"a b, c"`` -> ``"a  b,  c"``); longer runs, tabs and newlines stay.
- ``"padding"``: two spaces before the text and a newline after it (``"a b"`` -> ``"  a b\\n"``).
- ``"collapse_whitespace"``: every run of whitespace (spaces, tabs, newlines) becomes one space,
  and leading and trailing whitespace goes (``" a \\t b\\n"`` -> ``"a b"``); the identity on a
  text already written that way.
- ``"trailing_period"``: if the text, trailing whitespace aside, ends in ``"."``, that ``"."``
  goes; if it ends in another sentence mark (``! ? … : ;``), the text stays; otherwise a ``"."``
  is added after the last non-whitespace character (``"a b"`` <-> ``"a b."``). Trailing
  whitespace is kept; a text that is only ``"."`` stays.
- ``"separator_comma"``: ``", "`` -> ``","`` (``"1, 2, 3"`` -> ``"1,2,3"``).
- ``"separator_space"``: ``", "`` -> ``" "`` (``"1, 2, 3"`` -> ``"1 2 3"``).
- ``"separator_semicolon"``: ``", "`` -> ``"; "`` (``"1, 2, 3"`` -> ``"1; 2; 3"``).

``TEXT_CHANGES`` are the names for free text (a final period is formatting there);
``SEQUENCE_CHANGES`` those for number sequences rendered ``"2, 3, 5"`` (a final period after
a number would read as a decimal point, so it is not among them). ``changes_for(dataset)``
picks the tuple that fits a dataset.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from geomcheck.errors import InvalidInputError, unknown_name_message

__all__ = ["reformat", "changes_for", "TEXT_CHANGES", "SEQUENCE_CHANGES", "CHANGES"]

_SINGLE_SPACE = re.compile(r"(?<=\S) (?=\S)")
_WHITESPACE = re.compile(r"\s+")
_SEQUENCE_TEXT = re.compile(r"-?\d+(?:, -?\d+)*")
_SENTENCE_MARKS = "!?…:;"


def _double_spaces(text: str) -> str:
    return _SINGLE_SPACE.sub("  ", text)


def _padding(text: str) -> str:
    return "  " + text + "\n"


def _collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _trailing_period(text: str) -> str:
    core = text.rstrip()
    tail = text[len(core):]
    if not core or core == ".":
        return text
    if core.endswith("."):
        return core[:-1] + tail
    if core.endswith(tuple(_SENTENCE_MARKS)):
        return text
    return core + "." + tail


def _separator(new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        return text.replace(", ", new)

    return change


CHANGES: dict[str, Callable[[str], str]] = {
    "double_spaces": _double_spaces,
    "padding": _padding,
    "collapse_whitespace": _collapse_whitespace,
    "trailing_period": _trailing_period,
    "separator_comma": _separator(","),
    "separator_space": _separator(" "),
    "separator_semicolon": _separator("; "),
}

TEXT_CHANGES: tuple[str, ...] = ("double_spaces", "padding", "trailing_period", "collapse_whitespace")
SEQUENCE_CHANGES: tuple[str, ...] = ("separator_comma", "separator_space", "separator_semicolon",
                                     "double_spaces", "padding")


def reformat(text: str, change: str) -> str:
    """``text`` with the formatting-only change ``change`` (one of ``CHANGES``; see the module docstring)."""
    if not isinstance(text, str):
        raise InvalidInputError(f"reformat expects a str text, got {type(text).__name__}")
    fn = CHANGES.get(change) if isinstance(change, str) else None
    if fn is None:
        raise InvalidInputError(unknown_name_message("formatting change", change, CHANGES)
                                + " See geomcheck.data.reformat for what each does.")
    return fn(text)


def changes_for(dataset: Any) -> tuple[str, ...]:
    """``SEQUENCE_CHANGES`` for a dataset of number sequences, else ``TEXT_CHANGES``.

    A dataset of number sequences is a ``SequenceDataset`` (anything with ``.sequences``), or
    one whose every text is integers joined by ``", "`` (sequences loaded as a ``TextDataset``).
    """
    if type(dataset).__name__ == "SequenceDataset" or hasattr(dataset, "sequences"):
        return SEQUENCE_CHANGES
    texts = getattr(dataset, "texts", None)
    if texts is None:
        raise InvalidInputError(f"changes_for expects a dataset with .texts, got {type(dataset).__name__}")
    if len(texts) and all(isinstance(t, str) and _SEQUENCE_TEXT.fullmatch(t) for t in texts):
        return SEQUENCE_CHANGES
    return TEXT_CHANGES
