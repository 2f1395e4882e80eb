"""Many runners, one verdict: the run records of separate runs (one per CI job or machine) as one report.

``combine(sources)`` reads each run's ``report.json`` (a report directory or the file itself), checks
that the runs can stand in one table — the same geomcheck version, the same protocol settings (every
setting but the ones that say where and what a run ran: models, device, batch size, paths, caches,
date), the same texts and labels under each dataset name, one model per name — and merges them into
one ``RunRecord``. A refusal is an ``InvalidInputError`` naming both runs and what differs.

``write_combined(combined, out)`` writes one report directory: report.json (the merged record, with
the runs it came from), report.md (its Table 2s, every run's PNGs, copied beside it), junit.xml (every
test of every run, every recorded value as a property). ``Combined.gate`` is what the runs decide
together: failed when any test failed or errored, or a run ended with pytest's exit status other than
0 (passed) or 5 (no tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomcheck.errors import InvalidInputError
from geomcheck.reporting.record import REPORT_FORMAT, RunRecord, check_report_dir
from geomcheck.reporting.tables import row_label

__all__ = ["Combined", "combine", "write_combined", "junit_xml", "PER_RUN_SETTINGS", "read_record"]

# Settings that say where and what one run ran, not how it measured: they may differ between combined
# runs. Every other setting (dtype, metric, seeds, families, tolerances, merges, …, and any a later version
# adds) must be equal. ``dataset`` is a path on one machine: the data are compared by their digest instead.
PER_RUN_SETTINGS = frozenset({
    "models", "base_model", "adapter", "checkpoints", "device", "batch_size", "trust_remote_code", "report_dir",
    "baseline", "update_baseline", "cache", "baselines_dir", "date", "versions", "dataset", "sweep", "exitstatus",
})
_OK_EXIT = (0, 5)  # pytest: all passed; no tests collected


@dataclass
class Combined:
    """The merged record, the runs it came from (``runs``: source, date, models, device, versions, exit
    status, test counts) and the PNGs to copy (source path, name in the combined directory)."""

    record: RunRecord
    runs: list[dict[str, Any]]
    pictures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def tests(self) -> list[dict[str, Any]]:
        return self.record.state["tests"]

    @property
    def failed_tests(self) -> list[dict[str, Any]]:
        return [t for t in self.tests if t["outcome"] in ("failed", "error")]

    @property
    def failed_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["exitstatus"] not in _OK_EXIT and r["exitstatus"] is not None]

    @property
    def gate(self) -> bool:
        """True: every check of every run passed."""
        return not self.failed_tests and not self.failed_runs

    def verdict(self) -> str:
        counts = {k: sum(t["outcome"] == k for t in self.tests) for k in ("passed", "failed", "error", "skipped")}
        tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        head = f"{len(self.runs)} runs, {len(self.tests)} tests ({tally or 'none'})"
        if self.gate:
            return f"geomcheck: gate passed: {head}"
        why = [f"{t['nodeid']}: {t['message']}" for t in self.failed_tests[:5]]
        why += [f"run {r['source']} ended with exit status {r['exitstatus']}" for r in self.failed_runs]
        more = len(self.failed_tests) - 5
        return f"geomcheck: gate FAILED: {head}\n  " + "\n  ".join(why + ([f"… {more} more"] if more > 0 else []))


def read_record(source: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """(the state, the directory its PNGs are in) of a report directory or a report.json."""
    path = Path(source)
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise InvalidInputError(f"{str(source)!r}: no report.json there (give a report directory written with "
                                f"--geomcheck-report DIR, or its report.json)")
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{file}: not readable as JSON ({exc})") from None
    fmt = state.get("format") if isinstance(state, dict) else None
    if not str(fmt).startswith("geomcheck.run/"):
        raise InvalidInputError(f"{file}: not a geomcheck run record (format {fmt!r})")
    if fmt != REPORT_FORMAT:
        raise InvalidInputError(f"{file}: a run record of format {fmt!r}; combining needs {REPORT_FORMAT!r} "
                                f"(each test's outcome and the data digests): rerun it with this geomcheck")
    return state, file.parent


def _describe(v: Any) -> str:
    return "unset" if v is None else json.dumps(v, sort_keys=True)


def _check_compatible(first: tuple[str, dict[str, Any]], other: tuple[str, dict[str, Any]]) -> None:
    (a_src, a), (b_src, b) = first, other
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    va, vb = (sa.get("versions") or {}).get("geomcheck"), (sb.get("versions") or {}).get("geomcheck")
    if va != vb:
        raise InvalidInputError(f"{b_src} was written by geomcheck {vb or '?'} and {a_src} by geomcheck {va or '?'}: "
                                f"runs of different versions measure differently; rerun them with one version")
    for key in sorted((set(sa) | set(sb)) - PER_RUN_SETTINGS):
        if sa.get(key) != sb.get(key):
            raise InvalidInputError(f"{b_src} and {a_src} ran different protocols: setting {key!r} is "
                                    f"{_describe(sb.get(key))} there and {_describe(sa.get(key))} here; combine only "
                                    f"runs made with the same options apart from the model and device")


def _check_data(seen: dict[str, tuple[str, str]], src: str, state: dict[str, Any]) -> None:
    """The same dataset name must mean the same texts and labels in every run."""
    for g in state.get("geometry") or []:
        digest = g.get("data_sha256")
        if digest is None:
            continue
        name = g["dataset"]
        if name in seen and seen[name][0] != digest:
            raise InvalidInputError(f"{src} and {seen[name][1]} measured different data under the name {name!r} "
                                    f"({g.get('n_texts', '?')} texts there; their texts or labels differ): combine "
                                    f"only runs on the same dataset")
        seen.setdefault(name, (digest, src))


def _check_models(seen: dict[str, tuple[str, str]], src: str, state: dict[str, Any]) -> None:
    """A model name (test id) stands for one model: the same fingerprint wherever it appears."""
    for name, info in (state.get("models") or {}).items():
        fp = str((info or {}).get("fingerprint", ""))
        if name in seen and fp and seen[name][0] and seen[name][0] != fp:
            raise InvalidInputError(f"{src} and {seen[name][1]} both hold a model {name!r}, but different ones "
                                    f"(fingerprints {fp[:12]}… and {seen[name][0][:12]}…): give the models distinct "
                                    f"names, or combine one of the runs only")
        if fp or name not in seen:
            seen[name] = (fp, src)


def combine(sources: Sequence[str | os.PathLike]) -> Combined:
    """One ``Combined`` of the run records at ``sources`` (report directories or report.json files)."""
    if not sources:
        raise InvalidInputError("give at least one report directory or report.json to combine")
    loaded: list[tuple[str, dict[str, Any], Path]] = []
    where: dict[Path, str] = {}
    for src in sources:
        state, folder = read_record(src)
        key = (folder / "report.json").resolve()
        if key in where:
            raise InvalidInputError(f"{src} and {where[key]} are the same run record; give each run once")
        where[key] = str(src)
        loaded.append((str(src), state, folder))
    data: dict[str, tuple[str, str]] = {}
    models: dict[str, tuple[str, str]] = {}
    for src, state, _ in loaded:
        _check_compatible((loaded[0][0], loaded[0][1]), (src, state))
        _check_data(data, src, state)
        _check_models(models, src, state)
    record = RunRecord()
    runs: list[dict[str, Any]] = []
    pictures: list[tuple[Path, str]] = []
    names: dict[str, str] = {}  # PNG name in the combined directory -> its content's digest
    for i, (src, state, folder) in enumerate(loaded):
        record.merge(state)
        settings = state.get("settings") or {}
        tests = state.get("tests") or []
        if state.get("runs"):  # a combined report combined again: its runs stay the runs
            runs.extend({**r, "source": f"{src}: {r.get('source', '')}"} for r in state["runs"])
        else:
            runs.append({"source": src, "date": settings.get("date", ""), "models": list(state.get("models") or []),
                         "device": settings.get("device", ""), "dtype": settings.get("dtype", ""),
                         "versions": settings.get("versions") or {}, "exitstatus": settings.get("exitstatus"),
                         "tests": {k: sum(t.get("outcome") == k for t in tests)
                                   for k in ("passed", "failed", "error", "skipped")}})
        for png in sorted(folder.glob("*.png")):
            digest = hashlib.sha256(png.read_bytes()).hexdigest()
            if names.get(png.name) == digest:
                continue  # the same picture (one model's t-SNE in two runs of it)
            name = png.name if png.name not in names else f"run{i + 1}-{png.name}"  # e.g. a grid of each run
            names[name] = digest
            pictures.append((png, name))
    first = dict(loaded[0][1].get("settings") or {})
    record.state["settings"] = {**{k: v for k, v in first.items() if k not in PER_RUN_SETTINGS or k == "versions"},
                                "models": list(record.state["models"]),
                                "date": ", ".join(dict.fromkeys(r["date"] for r in runs if r["date"])),
                                "device": ", ".join(dict.fromkeys(str(r["device"]) for r in runs if r["device"]))}
    record.state["runs"] = runs
    return Combined(record, runs, pictures)


def junit_xml(combined: Combined) -> str:
    """JUnit XML of every test of every run (one ``testcase`` each; ``failure`` / ``error`` / ``skipped`` with
    the first line of why) and every recorded value as a test-suite ``property`` named
    ``geomcheck.<model>[.<variant>].<name>``, as a single pytest run writes them."""
    import xml.etree.ElementTree as ET

    tests = combined.tests
    count = {k: sum(t["outcome"] == k for t in tests) for k in ("failed", "error", "skipped")}
    suite = ET.Element("testsuite", name="geomcheck", tests=str(len(tests)), failures=str(count["failed"]),
                       errors=str(count["error"]), skipped=str(count["skipped"]),
                       time=f"{sum(float(t.get('duration') or 0) for t in tests):.3f}")
    props = ET.SubElement(suite, "properties")
    for r in combined.record.state["values"]:
        if isinstance(r["value"], (dict, list)):
            continue  # structured values (LoRA settings) stay in report.json
        name = "geomcheck." + ".".join(p for p in (r["model"], r["variant"], r["name"]) if p)
        ET.SubElement(props, "property", name=name, value=str(r["value"]))
    for t in tests:
        path, _, rest = t["nodeid"].partition("::")
        classname = ".".join([path.removesuffix(".py").replace("/", "."), *rest.split("::")[:-1]])
        case = ET.SubElement(suite, "testcase", classname=classname, name=rest.split("::")[-1] or path,
                             time=f"{float(t.get('duration') or 0):.3f}")
        if t.get("model"):
            cp = ET.SubElement(case, "properties")
            ET.SubElement(cp, "property", name="geomcheck.model", value=row_label(t["model"], t.get("variant")))
        tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(t["outcome"])
        if tag is not None:
            ET.SubElement(case, tag, message=t.get("message") or "")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _runs_markdown(combined: Combined) -> str:
    from geomcheck.reporting.markdown import _table

    rows = [(r["source"], r["date"], ", ".join(r["models"]), r["device"], (r["versions"] or {}).get("torch", ""),
             ", ".join(f"{n} {k}" for k, n in r["tests"].items() if n), r["exitstatus"]) for r in combined.runs]
    lines = [f"## Runs combined ({len(combined.runs)})", ""]
    lines += _table(("report", "date", "models", "device", "torch", "tests", "exit status"), rows)
    lines += [f"**Gate: {'passed' if combined.gate else 'FAILED'}** — "
              + combined.verdict().split(": ", 2)[-1].split("\n")[0] + ".", ""]
    return "\n".join(lines)


def write_combined(combined: Combined, out: str | os.PathLike) -> list[Path]:
    """report.json, report.md, junit.xml and the runs' PNGs in ``out`` (refused if it holds someone else's
    report, or is one of the combined runs' own directories)."""
    out = Path(out)
    for r in combined.runs:
        src = Path(r["source"])
        if (src if src.is_dir() else src.parent).resolve() == out.resolve():
            raise InvalidInputError(f"--out {out} is the directory of the combined run {r['source']}: its report "
                                    f"would be overwritten; write the combined report elsewhere")
    check_report_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for src, name in combined.pictures:
        shutil.copyfile(src, out / name)
        copied.append(out / name)
    md = combined.record.to_markdown(copied)
    head, _, rest = md.partition("\n## Run\n")
    md = head + "\n" + _runs_markdown(combined) + "\n## Run\n" + rest
    written = []
    for name, text in (("report.json", combined.record.to_json()), ("report.md", md),
                       ("junit.xml", junit_xml(combined))):
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written + copied
