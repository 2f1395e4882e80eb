"""Properties of the data every geometry suite feeds to a model.

If these fail, no embedding metric computed on the suite datasets means anything: the
texts would not be the sequences they claim to be. (Embedding properties join later.)
"""

from __future__ import annotations

import numpy as np
from hypothesis import given

from geomcheck import strategies as gst
from geomcheck.sequences import FAMILIES, PAPER_FAMILIES


@given(gst.sequences(max_length=60, max_start=5_000))
def test_window_is_a_contiguous_run_of_its_family(w):
    fam = FAMILIES[w.family]
    assert list(w.terms) == fam.terms(w.start, len(w.terms))
    if fam.decidable:
        assert all(fam.contains(t) for t in w.terms)
    if fam.increasing:
        assert all(a < b for a, b in zip(w.terms, w.terms[1:]))


@given(gst.sequence_texts(max_chars=200, max_start=5_000))
def test_text_is_the_terms_joined_and_fits(text):
    assert 0 < len(text) <= 200
    assert all(part.isdigit() and (part == "0" or not part.startswith("0")) for part in text.split(", "))


@given(gst.datasets(max_chars=500))
def test_dataset_texts_render_their_sequences(ds):
    assert len(ds.texts) == len(ds.labels) == len(ds.sequences)
    for text, seq, label, start in zip(ds.texts, ds.sequences, ds.labels, ds.starts):
        assert len(text) <= 500
        assert [int(p) for p in text.split(", ")] == list(seq)
        assert list(seq) == ds.families[label].terms(start, len(seq))


@given(gst.datasets())
def test_windows_of_a_family_tile_without_overlap(ds):
    for label in range(len(ds.label_names)):
        windows = [(s, seq) for s, seq, lab in zip(ds.starts, ds.sequences, ds.labels) if lab == label]
        steps = {b[0] - a[0] for a, b in zip(windows, windows[1:])}
        assert len(steps) <= 1  # evenly spaced: sequence k starts at start + k*length
        assert all(b[0] - a[0] >= len(a[1]) for a, b in zip(windows, windows[1:]))


def test_paper_dataset_matches_the_protocol(paper_dataset):
    assert paper_dataset.label_names == PAPER_FAMILIES
    assert len(paper_dataset) == 24
    assert np.bincount(paper_dataset.labels).tolist() == [4] * 6
    assert paper_dataset.starts == (0, 50, 100, 150) * 6
    assert all(len(s) == 50 for s in paper_dataset.sequences)
