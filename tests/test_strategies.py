from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from geomcheck import strategies as gst
from geomcheck.data import SEQUENCE_CHANGES, TEXT_CHANGES, TextDataset
from geomcheck.errors import InvalidInputError, UnknownFamilyError
from geomcheck.metrics import silhouette
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


# --- labelled texts ----------------------------------------------------------------------

def _valid(ds: TextDataset, min_labels: int = 2, max_labels: int = 4, lo: int = 2, hi: int = 6) -> None:
    assert isinstance(ds, TextDataset)
    counts = np.bincount(ds.labels, minlength=len(ds.label_names))
    assert min_labels <= len(ds.label_names) <= max_labels and len(set(ds.label_names)) == len(ds.label_names)
    assert all(lo <= c <= hi for c in counts), counts
    assert list(ds.labels) == sorted(ds.labels)  # grouped in label order
    assert all(isinstance(t, str) and t.strip() for t in ds.texts)
    assert len(ds) == len(ds.labels) == len(ds.texts)


@given(gst.text_datasets())
def test_text_datasets_are_valid_metric_input(ds):
    _valid(ds)
    assert len(set(ds.texts)) == len(ds.texts)
    assert all(t == t.strip() and "  " not in t and t.islower() for t in ds.texts)
    # classes differ: texts of two labels share no word
    words = [set(w for t, lab in zip(ds.texts, ds.labels) if lab == k for w in t.split())
             for k in range(len(ds.label_names))]
    assert all(not (words[a] & words[b]) for a in range(len(words)) for b in range(a))


def _vectors(texts) -> np.ndarray:
    """A fixed pseudo-random vector per text (seeded by its CRC-32): the same text, the same row."""
    return np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])


@settings(max_examples=25)
@given(gst.text_datasets())
def test_silhouette_on_text_datasets_matches_sklearn(ds):
    from sklearn.metrics import silhouette_score

    X = _vectors(ds.texts)
    s = silhouette(X, ds.labels)
    assert np.isfinite(s) and -1 <= s <= 1
    assert s == pytest.approx(silhouette_score(X, ds.labels), rel=1e-9, abs=1e-12)


@given(gst.text_datasets(labels=["pos", "neg", "neutral"], min_labels=3, max_labels=3, min_per_label=3,
                         max_per_label=3))
def test_text_datasets_fixed_labels_and_counts(ds):
    _valid(ds, 3, 3, 3, 3)
    assert ds.label_names == ("pos", "neg", "neutral") and len(ds) == 9


@given(gst.text_datasets(labels=["a", "b", "c", "d", "e"], max_labels=3))
def test_text_datasets_keep_the_order_of_given_names(ds):
    _valid(ds, 2, 3)
    order = "abcde"
    assert list(ds.label_names) == sorted(ds.label_names, key=order.index)


@given(gst.text_datasets(labels=st.sampled_from(["x", "y", "z", "w"]),
                         texts=st.text(alphabet="abc ", min_size=1, max_size=8).filter(str.strip)))
def test_text_datasets_with_own_label_and_text_strategies(ds):
    _valid(ds)
    assert set(ds.label_names) <= set("xyzw")
    assert len(set(ds.texts)) == len(ds.texts)  # unique across labels, not only within one


@given(gst.text_datasets(texts=st.sampled_from(["same text", "other text"]), unique=False, min_per_label=3))
def test_text_datasets_may_repeat_texts_when_asked(ds):
    _valid(ds, lo=3)
    assert len(set(ds.texts)) < len(ds.texts)  # >= 6 texts drawn from 2 strings: repeats there must be


def test_text_datasets_shrink_to_two_labels_of_two_short_texts():
    ds = find(gst.text_datasets(), lambda d: True)
    assert ds.label_names == ("animals", "weather") and ds.counts() == {"animals": 2, "weather": 2}
    assert all(len(t.split()) == 2 for t in ds.texts)


def test_a_bad_text_strategy_is_named():
    with pytest.raises(InvalidInputError, match="non-whitespace str"):
        find(gst.text_datasets(texts=st.just("  ") | st.text(min_size=1), unique=False), lambda d: True)


@given(gst.format_changes(), gst.format_changes("sequence"))
def test_format_changes(text_change, sequence_change):
    assert text_change in TEXT_CHANGES and sequence_change in SEQUENCE_CHANGES


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(min_labels=1), "min_labels"),
        (dict(min_labels=3, max_labels=2), "min_labels"),
        (dict(min_per_label=1), "min_per_label"),
        (dict(min_per_label=5, max_per_label=4), "min_per_label"),
        (dict(labels=["a", "a"]), "distinct"),
        (dict(labels=["a", ""]), "non-empty"),
        (dict(labels=["only"]), "only 1 label name"),
        (dict(labels="ab"), "sequence of names"),
        (dict(labels=[f"l{i}" for i in range(10)], max_labels=9), "vocabularies"),
        (dict(texts=["a", "b"]), "Hypothesis strategy"),
    ],
)
def test_text_datasets_bad_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        gst.text_datasets(**kwargs)


def test_format_changes_bad_kind():
    with pytest.raises(InvalidInputError, match="'text' or 'sequence'"):
        gst.format_changes("sequences")
