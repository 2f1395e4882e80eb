from __future__ import annotations

import json
import math

import pytest
from paper_table import TABLE_2

from geomcheck.errors import InvalidInputError, UnknownModelError
from geomcheck.metrics.geometry import GeometryReport
from geomcheck.models.spec import PaperResult
from geomcheck.reporting.tables import (
    HEADERS,
    Row,
    format_value,
    from_json,
    paper_rows,
    rich_table,
    to_json,
    to_markdown,
)


def report(intervals=None, **kw) -> GeometryReport:
    base = dict(silhouette_true=-0.09221290796995163, davies_bouldin_true=3.104594082257003,
                calinski_harabasz_true=1.7, silhouette_kmeans=0.2299334555864334,
                davies_bouldin_kmeans=1.1919055949209287, ari=0.11, nmi=0.31, v_measure=0.31,
                per_family_silhouette={"prime": -0.05, "even": 0.01}, n=24, dim=384, n_clusters=6,
                intervals=intervals or {})
    base.update(kw)
    return GeometryReport(**base)


CI = {"silhouette_true": (-0.1412, -0.0498), "davies_bouldin_kmeans": (1.05, 1.33)}


def sample_rows() -> list[Row]:
    return [
        Row.measured("minilm", report(CI), dataset="paper", hf_id="sentence-transformers/all-MiniLM-L6-v2"),
        Row.measured("minilm", report(silhouette_true=0.05), variant="slerp", dataset="paper"),
        Row.from_paper("qwen3-0.6b"),
    ]


@pytest.mark.parametrize(
    "value, interval, minus, expected",
    [(-0.092212, None, "-", "-0.0922"),
     (3.10459, None, "-", "3.1046"),
     (0.0, None, "-", "0.0000"),
     (-0.092212, (-0.14, -0.05), "-", "-0.0922 [-0.1400, -0.0500]"),
     (-0.092212, (-0.14, 0.05), "\u2212", "\u22120.0922 [\u22120.1400, 0.0500]"),
     (float("nan"), None, "-", "nan")],
)
def test_format_value(value, interval, minus, expected):
    assert format_value(value, interval, minus=minus) == expected


def test_row_needs_the_numbers_of_its_source():
    with pytest.raises(InvalidInputError, match="needs report"):
        Row("m", source="measured")
    with pytest.raises(InvalidInputError, match="needs paper"):
        Row("m", report=report(), source="paper")
    with pytest.raises(InvalidInputError, match="source must be one of"):
        Row("m", report=report(), source="guess")
    with pytest.raises(UnknownModelError, match="did you mean 'qwen3-0.6b'"):
        Row.from_paper("qwen3-0.6")
    with pytest.raises(InvalidInputError, match="did not measure 'minilm'"):
        Row.from_paper("minilm")


def test_paper_rows_are_table_2_of_the_paper():
    rows = paper_rows()
    assert len(rows) == 14
    assert [r.extra["hf_id"] for r in rows] == list(TABLE_2)  # the paper's order
    for r in rows:
        assert r.source == "paper" and r.label.endswith(" (paper)")
        assert tuple(r.values().values()) == TABLE_2[r.extra["hf_id"]]
    assert [r.model for r in paper_rows(["qwen3-8b", "gritlm-7b"])] == ["qwen3-8b", "gritlm-7b"]


def test_markdown_layout_four_decimals_intervals_and_paper_rows():
    md = to_markdown(sample_rows())
    assert md == (
        "| model | silhouette true | DB true | silhouette KMeans | DB KMeans |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        "| minilm | -0.0922 [-0.1412, -0.0498] | 3.1046 | 0.2299 | 1.1919 [1.0500, 1.3300] |\n"
        "| minilm · slerp | 0.0500 | 3.1046 | 0.2299 | 1.1919 |\n"
        "| qwen3-0.6b (paper) | 0.1830 | 1.5173 | 0.1898 | 1.3560 |\n"
    )


def test_markdown_escapes_pipes():
    md = to_markdown([Row.measured("a|b", report())])
    assert "| a\\|b |" in md


def test_json_round_trip_and_contents():
    rows = sample_rows()
    text = to_json(rows, skipped={"qwen3-8b": "not in the HF cache"})
    doc = json.loads(text)
    assert doc["format"] == "geomcheck.table/1" and doc["skipped"] == {"qwen3-8b": "not in the HF cache"}
    first, _, paper = doc["rows"]
    assert first["model"] == "minilm" and first["source"] == "measured" and first["dataset"] == "paper"
    assert first["silhouette_true"] == -0.09221290796995163  # full precision, not the rounded text
    assert first["intervals"] == {"silhouette_true": [-0.1412, -0.0498], "davies_bouldin_kmeans": [1.05, 1.33]}
    assert first["report"]["per_family_silhouette"] == {"prime": -0.05, "even": 0.01}
    assert first["extra"] == {"hf_id": "sentence-transformers/all-MiniLM-L6-v2"}
    assert paper["source"] == "paper" and paper["report"] is None
    assert (paper["silhouette_true"], paper["davies_bouldin_true"]) == (0.1830, 1.5173)
    assert from_json(text) == rows


def test_json_is_strict_with_nan_as_null():
    rows = [Row.measured("m", report(silhouette_kmeans=float("nan"), per_family_silhouette={"prime": float("nan")}))]
    text = to_json(rows)

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(text, parse_constant=no_constants)
    assert doc["rows"][0]["silhouette_kmeans"] is None
    back = from_json(text)[0]
    assert math.isnan(back.report.silhouette_kmeans) and math.isnan(back.report.per_family_silhouette["prime"])
    assert back.report.silhouette_true == rows[0].report.silhouette_true


def test_from_json_refuses_other_documents():
    with pytest.raises(InvalidInputError, match="not JSON"):
        from_json("{")
    with pytest.raises(InvalidInputError, match="geomcheck.table/1"):
        from_json("[]")
    with pytest.raises(InvalidInputError, match="not a geomcheck table row"):
        from_json('{"format": "geomcheck.table/1", "rows": [{"variant": null}]}')


def test_rich_table_columns_values_and_paper_rows():
    from rich.console import Console

    rows = sample_rows()
    table = rich_table(rows, caption="measured on the paper dataset")
    assert [c.header.replace("\n", " ") for c in table.columns] == list(HEADERS)
    assert table.row_count == 3
    assert table.rows[2].style == "italic dim" and table.rows[0].style is None
    assert table.rows[1].end_section  # measured rows, then the paper's in their own section
    console = Console(record=True, width=160, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "\u22120.0922" in text and "[\u22120.1412, \u22120.0498]" in text  # interval under its value
    assert "qwen3-0.6b (paper)" in text and "1.5173" in text and "minilm · slerp" in text
    assert "measured on the paper dataset" in text
    with pytest.raises(InvalidInputError, match="Row objects"):
        rich_table([{"model": "m"}])


def test_paper_row_is_a_plain_paper_result():
    r = Row.from_paper("e5-mistral-7b")
    assert r.paper == PaperResult(0.3037, 1.1061, 0.3037, 1.1061) and r.interval("silhouette_true") is None

