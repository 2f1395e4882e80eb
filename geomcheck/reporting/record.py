"""What one suite run measured, kept as plain JSON so that test processes can pool it.

A ``RunRecord`` collects geometry reports (with the embeddings, for the plots), named
values, test outcomes, paper-claim measurements and baseline comparisons, keyed by model
(test id) and variant ("lora", "soup", …; None for the model itself). Its ``state`` is
plain JSON, so pytest-xdist workers send theirs to the controller, which ``merge``s them
and renders one summary (``summary_tables``) and one report directory (``write_dir``:
report.json, report.md, a t-SNE PNG per model/variant and a side-by-side grid). Records of
separate runs (one per CI job) are combined by ``geomcheck.reporting.combine``.

Format ``geomcheck.run/2`` (``/1`` before): each test's outcome (``tests``: node id, model,
variant, outcome, duration, first line of a failure), a digest of each dataset's texts and
labels in its geometry records (``data_sha256``, ``n_texts``), and in ``settings`` the suite
dataset's name and the run's exit status — what combining runs needs to check and to gate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geomcheck._json import jsonable
from geomcheck.errors import InvalidInputError
from geomcheck.reporting.tables import CKA_NOTE, EXTRA_COLUMNS, row_label

__all__ = ["RunRecord", "REPORT_FORMAT", "TEST_RANK", "data_digest", "check_report_dir"]

REPORT_FORMAT = "geomcheck.run/2"
_RANK = {"skipped": 0, "passed": 1, "failed": 2}  # a row is "passed" when some test passed and none failed
TEST_RANK = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}  # a test's worst phase decides its outcome
_KEYS = {"geometry": ("model", "variant", "dataset"), "values": ("model", "variant", "name"),
         "claims": ("model", "claim"), "baseline": ("model", "dataset"),
         "failures": ("nodeid",), "tests": ("nodeid",)}  # what identifies a record


def check_report_dir(path: str | os.PathLike) -> None:
    """Refuse a report directory geomcheck must not write into: not a directory, not writable, or holding a
    report.md / report.json of someone else's (a report.json of geomcheck's, format ``geomcheck.run/*``,
    marks the directory as a geomcheck report that a new run replaces)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"the report directory {str(out)!r} exists and is not a directory")
    if not out.exists():
        parent = next((p for p in out.absolute().parents if p.exists()), None)
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise InvalidInputError(f"cannot create the report directory {str(out)!r}: {parent} is not writable")
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise InvalidInputError(f"the report directory {str(out)!r} is not writable; choose another one")
    ours = False
    try:
        ours = str(json.loads((out / "report.json").read_text()).get("format", "")).startswith("geomcheck.run/")
    except (OSError, ValueError, AttributeError):
        pass
    theirs = [n for n in ("report.md", "report.json") if (out / n).exists()]
    if theirs and not ours:
        raise InvalidInputError(f"the report directory {str(out)!r} holds {' and '.join(theirs)} that geomcheck did "
                                f"not write (no geomcheck report.json beside it); a report would overwrite "
                                f"{'them' if len(theirs) > 1 else 'it'}: choose an empty or new directory")


def data_digest(texts: Any, labels: Any, label_names: Any) -> str:
    """sha256 of a dataset's texts (in order, each length-prefixed), integer labels and label names: two runs
    measured the same data exactly when their digests agree."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for t in texts:
        b = str(t).encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    h.update(b"|labels|" + np.ascontiguousarray(labels, dtype="<i8").tobytes())
    h.update(b"|names|" + json.dumps([str(n) for n in label_names]).encode())
    return h.hexdigest()


def _spec_of(hf_id: str | None) -> Any:
    """The registry entry of a Hugging Face id, or None."""
    if not hf_id:
        return None
    from geomcheck.models.registry import REGISTRY

    return next((s for s in REGISTRY.values() if s.hf_id == hf_id), None)


class RunRecord:
    """Everything a suite run measured (see the module docstring)."""

    def __init__(self, state: Mapping[str, Any] | None = None):
        self.state: dict[str, Any] = {"format": REPORT_FORMAT, "settings": {}, "models": {}, "geometry": [],
                                      "values": [], "outcomes": {}, "claims": [], "baseline": [], "failures": [],
                                      "tests": []}
        if state:
            self.merge(state)

    # --- recording ---------------------------------------------------------------------
    def add_model(self, model: str, info: Mapping[str, Any]) -> None:
        self.state["models"][model] = jsonable(dict(info))

    def add_geometry(self, model: str, variant: str | None, dataset: str, report: Any, emb: Any = None) -> None:
        """A ``GeometryReport`` (and the ``EmbeddedDataset`` it came from, for the plots)."""
        rec: dict[str, Any] = {"model": model, "variant": variant, "dataset": dataset, "report": report.to_json_dict()}
        if emb is not None:
            from geomcheck.reporting.projection import MAX_POINTS, thin

            rec["n_texts"] = len(emb.labels)
            if len(getattr(emb, "texts", ())) == len(emb.labels):
                rec["data_sha256"] = data_digest(emb.texts, emb.labels, emb.label_names)
            # the pictures draw at most MAX_POINTS points: a larger set keeps a stratified sample (seed 0)
            idx = thin(emb.labels, MAX_POINTS, 0)
            X, labels = (emb.X, emb.labels) if idx is None else (emb.X[idx], emb.labels[idx])
            rec["X"] = [[float(x) for x in row] for row in X]
            rec["labels"] = [int(x) for x in labels]
            rec["n_points"] = len(emb.labels)
            rec["texts"] = len(emb.X)
            rec["tokens"] = int(getattr(emb, "n_tokens", 0))  # what the model read (0: no tokenizer known)
            rec["label_names"] = list(emb.label_names)
            rec["class_word"] = getattr(emb, "class_word", "family")
        self._upsert("geometry", rec)

    def add_value(self, model: str, variant: str | None, name: str, value: Any) -> None:
        self._upsert("values", {"model": model, "variant": variant, "name": name, "value": jsonable(value)})

    def add_outcome(self, model: str, variant: str | None, outcome: str) -> None:
        self._set_outcome(row_label(model, variant), outcome)

    def _set_outcome(self, key: str, outcome: str) -> None:
        old = self.state["outcomes"].get(key)
        if old is None or _RANK.get(outcome, 0) > _RANK.get(old, 0):
            self.state["outcomes"][key] = outcome

    def add_claim(self, model: str, claim: str, text: str, measured: Mapping[str, Any], holds: bool,
                  gated: bool) -> None:
        self._upsert("claims", {"model": model, "claim": claim, "text": text, "measured": jsonable(dict(measured)),
                                "holds": bool(holds), "gated": bool(gated)})

    def add_baseline(self, model: str, dataset: str, comparison: Mapping[str, Any]) -> None:
        self._upsert("baseline", {"model": model, "dataset": dataset, "comparison": jsonable(dict(comparison))})

    def add_failure(self, nodeid: str, model: str | None, variant: str | None, message: str) -> None:
        """A failed test and the first line of its failure."""
        self._upsert("failures", {"nodeid": nodeid, "model": model, "variant": variant, "message": message})

    def add_test(self, nodeid: str, model: str | None, variant: str | None, outcome: str, duration: float,
                 message: str = "") -> None:
        """A test's outcome ("passed", "failed", "error" (setup or teardown), "skipped"), its duration in seconds
        (all phases) and the first line of its failure or skip reason; for the JUnit file of combined runs."""
        self._upsert("tests", {"nodeid": nodeid, "model": model, "variant": variant, "outcome": outcome,
                               "duration": round(float(duration), 4), "message": message})

    def _upsert(self, table: str, rec: dict[str, Any]) -> None:
        items, keys = self.state[table], _KEYS[table]
        for i, old in enumerate(items):
            if all(old.get(k) == rec.get(k) for k in keys):
                items[i] = rec
                return
        items.append(rec)

    def merge(self, state: Mapping[str, Any]) -> None:
        """Add another record's state (a worker's) to this one."""
        if state.get("format", REPORT_FORMAT) != REPORT_FORMAT:
            fmt = state.get("format")
            raise InvalidInputError(
                f"a run record of format {fmt!r}, not {REPORT_FORMAT!r}: written by another geomcheck version; rerun it "
                f"with this one" if str(fmt).startswith("geomcheck.run/") else f"not a geomcheck run record: {fmt!r}")
        self.state["settings"] = dict(state.get("settings") or self.state["settings"])
        self.state["models"].update(state.get("models", {}))
        for table in _KEYS:
            for rec in state.get(table) or []:
                if table == "tests":  # the same test in two runs (a rerun): the worse outcome stands
                    old = next((t for t in self.state["tests"] if t["nodeid"] == rec.get("nodeid")), None)
                    if old is not None and TEST_RANK.get(old["outcome"], 0) > TEST_RANK.get(rec.get("outcome"), 0):
                        continue
                self._upsert(table, dict(rec))
        for key, outcome in state.get("outcomes", {}).items():
            self._set_outcome(key, outcome)

    # --- reading -----------------------------------------------------------------------
    def __bool__(self) -> bool:
        s = self.state
        return bool(s["geometry"] or s["values"] or s["claims"] or s["baseline"])

    def _value(self, model: str, variant: str | None, name: str) -> Any:
        return next((r["value"] for r in self.state["values"]
                     if r["model"] == model and r["variant"] == variant and r["name"] == name), None)

    def _status(self, model: str, variant: str | None) -> str:
        return self.state["outcomes"].get(row_label(model, variant), "")

    def rows(self, dataset: str | None = None) -> list[Any]:
        """Table rows (``geomcheck.reporting.tables.Row``) for one dataset (default: the first recorded)."""
        from geomcheck.metrics.geometry import GeometryReport
        from geomcheck.reporting.tables import Row, published_result

        geo = self.state["geometry"]
        if not geo:
            return []
        dataset = dataset or geo[0]["dataset"]
        rows = []
        for rec in self._ordered():
            if rec["dataset"] != dataset:
                continue
            m, v = rec["model"], rec["variant"]
            extra = {"CKA to base": self._value(m, v, "cka_to_base") if v is not None else None,
                     "position": self._value(m, v, "adapter_position") if v is not None else None,
                     "gain kept": self._value(m, v, "share_of_lora_gain") if v is not None else None,
                     "CKA to baseline": self._value(m, None, f"{dataset}.cka_to_baseline") if v is None else None,
                     "status": self._status(m, v)}
            hf_id = (self.state["models"].get(m) or {}).get("hf_id")
            if hf_id:
                extra["hf_id"] = hf_id
            # the published row belongs to the model itself, not to a LoRA or merged variant of it
            paper = published_result(_spec_of(hf_id), dataset) if v is None else None
            rows.append(Row.measured(m, GeometryReport.from_dict(rec["report"]), variant=v, dataset=dataset,
                                     paper=paper, **{k: x for k, x in extra.items() if x not in (None, "")}))
        return rows

    def _ordered(self) -> list[dict[str, Any]]:
        """Geometry records by model (in the order the models were loaded), each model's own row first."""
        order = {m: i for i, m in enumerate(self.state["models"])}
        return sorted(self.state["geometry"], key=lambda r: (order.get(r["model"], len(order)), r["variant"] is not None))

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r["dataset"] for r in self.state["geometry"]))

    def size_line(self, dataset: str) -> str:
        """How many texts the dataset has and how many tokens each model read of them: "64 texts; tokens read:
        minilm 10,293" (the model's own rows; a variant shares its tokenizer). Empty when nothing was recorded."""
        texts, tokens = None, {}
        for rec in self._ordered():
            if rec["dataset"] != dataset or "texts" not in rec:
                continue
            texts = rec["texts"]
            if rec["model"] not in tokens and rec.get("tokens"):
                tokens[rec["model"]] = rec["tokens"]
        if texts is None:
            return ""
        line = f"{dataset}: {texts:,} texts"
        if tokens:  # prompt and special tokens included, each text cut at the model's max_seq_length
            line += "; tokens read: " + ", ".join(f"{m} {n:,}" for m, n in tokens.items())
        return line

    def value_lines(self) -> list[str]:
        by: dict[str, list[str]] = {}
        from geomcheck.reporting.tables import METRICS

        shown = {f"{ds}.{m}" for ds in self.datasets() for m in METRICS}  # already in the tables
        for r in self.state["values"]:
            v = r["value"]
            # structured values (LoRA settings), the table's numbers and the claims' numbers are shown
            # elsewhere; all of them stay in report.json and the JUnit properties
            if isinstance(v, dict) or r["name"] in shown or r["name"].startswith("claim."):
                continue
            text = f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
            by.setdefault(row_label(r["model"], r["variant"]), []).append(f"{r['name']} = {text}")
        return [f"{k}: " + ", ".join(vs) for k, vs in by.items()]

    def claim_lines(self) -> list[str]:
        out = []
        for c in self.state["claims"]:
            verdict = "holds" if c["holds"] else "DOES NOT HOLD"
            gate = "gated" if c["gated"] else "not gated (--geomcheck-paper-claims)"
            measured = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in c["measured"].items())
            out.append(f"{c['model']}: paper claim '{c['text']}': {verdict} ({measured}); {gate}")
        return out

    def baseline_lines(self) -> list[str]:
        out = []
        for b in self.state["baseline"]:
            comp = b["comparison"]
            status = "passed" if comp.get("passed") else "FAILED"
            out.append(f"{b['model']} vs baseline on {b['dataset']}: {status}"
                       + (f" ({comp['summary']})" if comp.get("summary") else ""))
        return out

    def summary_renderables(self) -> list[Any]:
        """rich renderables for the terminal: one table per dataset, then the other lines."""
        from geomcheck.reporting.tables import rich_table

        out: list[Any] = []
        for ds in self.datasets():
            rows = self.rows(ds)
            cols = [c for c in EXTRA_COLUMNS if any(c in r.extra for r in rows)]
            caption = "\n".join(([CKA_NOTE] if any(c.startswith("CKA") for c in cols) else []) + [self.size_line(ds)])
            out.append(rich_table(rows, title=f"Cluster geometry on the {ds} dataset (paper Table 2 layout)",
                                  extra_columns=cols, caption=caption.strip() or None, published=True))
        out.extend(self.baseline_lines() + self.claim_lines() + self.value_lines())
        return out

    # --- report directory --------------------------------------------------------------
    def to_json(self) -> str:
        doc = {k: v for k, v in self.state.items() if k != "geometry"}
        doc["geometry"] = [{k: v for k, v in r.items() if k not in ("X",)} for r in self.state["geometry"]]
        # the Table 2 rows as `geomcheck table --json` writes them: a registry model's own row on the paper's
        # dataset carries its HF id, the published row and the difference
        doc["rows"] = [r.to_dict() for ds in self.datasets() for r in self.rows(ds)]
        return json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n"

    def to_markdown(self, files: list[Path] | None = None) -> str:
        """report.md (``geomcheck.reporting.markdown``); ``files``: the PNGs to link."""
        from geomcheck.reporting.markdown import render

        return render(self, files or [])

    def write_dir(self, path: str | os.PathLike, *, plots: bool = True) -> list[Path]:
        """Write report.json, report.md and (``plots``) t-SNE PNGs and a grid; returns the files. A directory
        holding a report.md or report.json that geomcheck did not write is refused (``check_report_dir``)."""
        out = Path(path)
        check_report_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        pictures = self._plots(out) if plots else []
        written = []
        for name, text in (("report.json", self.to_json()), ("report.md", self.to_markdown(pictures))):
            (out / name).write_text(text)
            written.append(out / name)
        return written + pictures

    def _plots(self, out: Path) -> list[Path]:
        import numpy as np

        from geomcheck.metrics.geometry import GeometryReport
        from geomcheck.models.embedder import EmbeddedDataset
        from geomcheck.reporting.plots import grid_plot, tsne_file_name, tsne_plot

        written = []
        for ds in self.datasets():
            embs: dict[str, Any] = {}
            reports: dict[str, Any] = {}
            population: dict[str, Any] = {}
            for rec in self._ordered():
                if rec["dataset"] != ds or "X" not in rec:
                    continue
                label = row_label(rec["model"], rec["variant"])
                embs[label] = EmbeddedDataset(X=np.asarray(rec["X"], dtype=np.float32),
                                              labels=np.asarray(rec["labels"]), label_names=tuple(rec["label_names"]),
                                              texts=(), model=label, fingerprint="",
                                              class_word=rec.get("class_word", "family"))
                reports[label] = GeometryReport.from_dict(rec["report"])
                population[label] = rec.get("n_points")
            for label, emb in embs.items():
                written.append(tsne_plot(emb, out / tsne_file_name(ds, label), title=f"{label} · {ds}",
                                         report=reports[label], population=population.get(label)))
            if len(embs) > 1:  # one joint t-SNE: the panels share their axes and compare point for point
                written.append(grid_plot(embs, out / f"grid-{ds}.png", reports=reports, shared=True,
                                         population=max((v or 0 for v in population.values()), default=0) or None,
                                         title=f"{len(embs)} models and variants on the {ds} dataset — "
                                               f"one joint t-SNE, seed 0"))
        return written
