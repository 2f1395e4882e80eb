"""Formatting-only changes (geomcheck.data.reformat): hand-computed examples, purity, and that
every change keeps the words and numbers of the text."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geomcheck import strategies as gst
from geomcheck.data import SEQUENCE_CHANGES, TEXT_CHANGES, TextDataset, changes_for, paper_dataset, reformat
from geomcheck.data.reformat import CHANGES
from geomcheck.errors import InvalidInputError


@pytest.mark.parametrize(
    "change, text, expected",
    [
        ("double_spaces", "the cat sat", "the  cat  sat"),
        ("double_spaces", "1, 2, 3", "1,  2,  3"),
        ("double_spaces", " a  b\tc d ", " a  b\tc  d "),  # only single spaces between two non-spaces
        ("padding", "the cat", "  the cat\n"),
        ("padding", "1, 2", "  1, 2\n"),
        ("collapse_whitespace", "  the \t cat\n\nsat ", "the cat sat"),
        ("collapse_whitespace", "the cat", "the cat"),
        ("trailing_period", "The cat sat", "The cat sat."),
        ("trailing_period", "The cat sat.", "The cat sat"),
        ("trailing_period", "The cat sat.  \n", "The cat sat  \n"),
        ("trailing_period", "The cat sat \n", "The cat sat. \n"),
        ("trailing_period", "Did the cat sit?", "Did the cat sit?"),
        ("trailing_period", "Sit!", "Sit!"),
        ("trailing_period", ".", "."),
        ("trailing_period", "Wait...", "Wait.."),
        ("separator_comma", "1, 2, 3", "1,2,3"),
        ("separator_space", "1, 2, 3", "1 2 3"),
        ("separator_semicolon", "1, 2, 3", "1; 2; 3"),
        ("separator_semicolon", "7", "7"),
    ],
)
def test_hand_computed_examples(change, text, expected):
    assert reformat(text, change) == expected


def test_change_lists():
    assert set(TEXT_CHANGES) | set(SEQUENCE_CHANGES) == set(CHANGES)
    assert {"double_spaces", "padding", "trailing_period"} <= set(TEXT_CHANGES)
    assert {"separator_comma", "separator_space", "separator_semicolon", "double_spaces", "padding"} == set(
        SEQUENCE_CHANGES)
    assert "trailing_period" not in SEQUENCE_CHANGES  # "3." would read as a decimal number


@given(st.text(max_size=60), st.sampled_from(sorted(CHANGES)))
def test_changes_are_pure_and_deterministic(text, change):
    assert reformat(text, change) == reformat(text, change) == CHANGES[change](text)


def _numbers(text: str) -> list[int]:
    return [int(x) for x in re.split(r"[,; ]+", text.strip()) if x]


@given(gst.sequences(max_length=30), gst.format_changes("sequence"))
def test_sequence_changes_keep_the_numbers(w, change):
    changed = reformat(w.text(), change)
    assert _numbers(changed) == list(w.terms)
    if len(w.terms) > 1 or change == "padding":  # one term has no separator and no space to change
        assert changed != w.text()


_WORDS = st.lists(st.from_regex(r"[A-Za-z0-9']{1,8}", fullmatch=True), min_size=1, max_size=8)


@given(_WORDS, st.sampled_from(["", ".", "!", "?"]), gst.format_changes("text"))
def test_text_changes_keep_the_words(words, end, change):
    text = " ".join(words) + end
    changed = reformat(text, change)
    assert re.findall(r"[\w']+", changed) == words
    assert changed.split() == text.split() or change == "trailing_period"


@given(gst.sequences(max_length=10))
def test_sequence_changes_are_what_the_docstring_says(w):
    t = w.text()
    assert reformat(t, "separator_comma") == ",".join(map(str, w.terms))
    assert reformat(t, "separator_space") == " ".join(map(str, w.terms))
    assert reformat(t, "separator_semicolon") == "; ".join(map(str, w.terms))
    assert reformat(t, "double_spaces") == ",  ".join(map(str, w.terms))


def test_unknown_change_names_the_known_ones():
    with pytest.raises(InvalidInputError) as err:
        reformat("a b", "double_space")
    msg = str(err.value)
    assert "unknown formatting change 'double_space'" in msg and "did you mean 'double_spaces'" in msg
    assert all(name in msg for name in CHANGES)
    with pytest.raises(InvalidInputError, match="unknown formatting change"):
        reformat("a b", None)
    with pytest.raises(InvalidInputError, match="expects a str"):
        reformat(["a b"], "padding")


def test_changes_for_picks_by_the_kind_of_dataset():
    assert changes_for(paper_dataset(per_family=2, length=5)) == SEQUENCE_CHANGES
    words = TextDataset(("the cat", "a dog", "rain today", "snow again"), np.array([0, 0, 1, 1]), ("a", "b"))
    assert changes_for(words) == TEXT_CHANGES
    # number sequences read from a file (a TextDataset) get the sequence changes too
    numbers = TextDataset(("1, 2, 3", "2, 4, 6", "2, 3, 5", "3, 5, 7"), np.array([0, 0, 1, 1]), ("a", "b"))
    assert changes_for(numbers) == SEQUENCE_CHANGES
    with pytest.raises(InvalidInputError, match="with .texts"):
        changes_for([1, 2, 3])
