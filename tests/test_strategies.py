from __future__ import annotations

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from geomcheck import strategies as gst
from geomcheck.errors import InvalidInputError, UnknownFamilyError
from geomcheck.sequences import FAMILIES, PAPER_FAMILIES, Family, SequenceDataset


@given(gst.families())
def test_families_are_registered(fam):
    assert isinstance(fam, Family) and FAMILIES[fam.name] is fam


@given(gst.sequences(min_length=2, max_length=9, max_start=500))
def test_windows_are_the_familys_terms(w):
    assert 2 <= len(w.terms) <= 9 and 0 <= w.start <= 500
    assert list(w.terms) == FAMILIES[w.family].terms(w.start, len(w.terms))
    assert w.text() == ", ".join(map(str, w.terms))


@given(gst.sequences("prime", max_length=5))
def test_fixed_family(w):
    assert w.family == "prime"


@given(gst.sequences(gst.families(["squares", "cubes"])))
def test_family_strategy(w):
    assert w.family in ("squares", "cubes")


@given(gst.sequence_texts(max_chars=40))
def test_texts_respect_max_chars_and_parse_back(text):
    assert 0 < len(text) <= 40
    assert all(part.isdigit() for part in text.split(", "))


@given(gst.datasets(max_chars=30))
def test_datasets_with_small_max_chars(ds):
    assert all(0 < len(t) <= 30 for t in ds.texts)


@given(gst.datasets(min_families=2, max_families=4))
def test_datasets(ds):
    assert isinstance(ds, SequenceDataset)
    assert 2 <= len(ds.label_names) <= 4 and len(set(ds.label_names)) == len(ds.label_names)
    assert sorted(set(ds.labels.tolist())) == list(range(len(ds.label_names)))


@given(gst.datasets(per_family=3, length=5, names=["odd", "even"], min_families=2))
def test_datasets_fixed_shape(ds):
    assert len(ds) == 6 and all(len(s) == 5 for s in ds.sequences)


def test_shrinks_toward_paper_families_small_starts_and_short_windows():
    assert find(gst.families(), lambda f: True).name == PAPER_FAMILIES[0]
    w = find(gst.sequences(), lambda w: len(w.terms) >= 3)
    assert (w.family, w.start, len(w.terms)) == ("consecutive", 0, 3)
    w = find(gst.sequences(), lambda w: w.family == "prime" and len(w.terms) >= 2)
    assert (w.start, w.terms) == (0, (2, 3))
    ds = find(gst.datasets(), lambda d: True)
    assert ds.label_names == PAPER_FAMILIES[:2] and len(ds) == 2 and ds.starts == (0, 0)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: gst.sequences(min_length=0), InvalidInputError),
        (lambda: gst.sequences(min_length=5, max_length=2), InvalidInputError),
        (lambda: gst.sequences(max_start=-1), InvalidInputError),
        (lambda: gst.sequences("primes"), UnknownFamilyError),
        (lambda: gst.families([]), InvalidInputError),
        (lambda: gst.datasets(min_families=30), InvalidInputError),
        (lambda: gst.datasets(min_families=3, max_families=2), InvalidInputError),
    ],
)
def test_bad_arguments_fail_at_construction(make, error):
    with pytest.raises(error):
        make()


@given(st.data())
def test_composes_with_plain_hypothesis(data):
    fam = data.draw(gst.families(PAPER_FAMILIES))
    w = data.draw(gst.sequences(fam, max_length=3))
    assert w.family == fam.name and fam.paper
