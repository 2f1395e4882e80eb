"""Committed geometry baselines: the file format, and writing one from a run.

A baseline file (``suites/baselines/<model>.json``) holds, per dataset ("paper",
"heldout"), the texts, labels, the ``GeometryReport``, the per-text silhouettes and the
model's embeddings themselves (float32, base64), so a later run of the same texts can be
compared text by text and space against space, not only summary against summary
(``geomcheck.checks.comparison``).

Tolerances (``DEFAULT_TOLERANCES``) were chosen from ``bench/baseline_tolerances.py``;
a baseline file may carry its own, and an explicit argument overrides both.

The KMeans settings are part of what a baseline measured: ``"kmeans": {"seed": 42, "n_init": 10}``
at the top of the file (and ``seed`` / ``kmeans_n_init`` in each dataset's report). A file without
it was written before geomcheck took the paper's KMeans (``random_state=42``) and measured with
seed 0 (its reports say so); ``compare`` refuses it with a message saying how to rewrite it
(``geomcheck baseline --model NAME --out PATH``, or ``--geomcheck-update-baseline``), which keeps
its tolerances.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geomcheck import versions
from geomcheck.checks._arrays import decode_embeddings, encode_embeddings, remove_replaced
from geomcheck.checks.per_text import per_text_silhouettes, sample_rows
from geomcheck.errors import InvalidInputError
from geomcheck.metrics.geometry import KMEANS_SEED, GeometryReport

__all__ = [
    "DATASETS", "DEFAULT_TOLERANCES", "FORMAT_VERSION", "MINIMUM_TOLERANCES", "KNN_K", "UPDATE_HINT", "Baseline",
    "BaselineEntry", "make_baseline", "regenerate_hint", "per_text_silhouettes", "resolve_tolerances", "rewrite_baseline",
]

FORMAT_VERSION = 1
DATASETS = ("paper", "heldout")
UPDATE_HINT = "geomcheck check --model NAME --geomcheck-update-baseline"


def regenerate_hint(path: str | os.PathLike[str] | None, model: str = "NAME", dataset: str | None = None,
                    dataset_file: str = "") -> str:
    """How to (re)write the baseline at ``path`` from ``model``: the suites' flag, or the CLI (with
    ``--dataset FILE`` for a baseline of your own labelled texts, any ``dataset`` other than paper /
    heldout: the file itself where it is known)."""
    if path is None:
        return f"`{UPDATE_HINT}`"
    own = ""
    if dataset is not None and dataset not in (*DATASETS, "suite"):
        own = f" --dataset {shlex.quote(dataset_file) if dataset_file else 'YOUR_FILE'}"
    return f"rerun with --geomcheck-update-baseline, or run `geomcheck baseline --model {model}{own} --out {path}`"
KMEANS_MARGIN = 0.05  # as assert_clusters_by_family: KMeans silhouette - true silhouette <= margin

# Chosen from bench/baseline_tolerances.py on all-MiniLM-L6-v2, CPU, paper + heldout datasets
# (the numbers are in suites/baselines/minilm.json, "tolerance_basis"):
#   benign: re-saved copy and batch size 1 change nothing (all deltas 0.0000, CKA 1.0000);
#     bf16 moves the silhouette by <= 0.0004, the worst family by <= 0.0005, DB by <= 0.008,
#     KMeans metrics by <= 0.001, CKA 1.0000, mutual 5-NN 0.992;
#   harmful: 0.4 sigma weight noise (two seeds): worst family -0.057..-0.089, DB +0.11..+0.55,
#     CKA 0.85-0.95, mutual 5-NN 0.62-0.76; 0.2 sigma already fails 2-5 checks, 0.05 sigma none.
# Each tolerance keeps >= 20x the largest benign change, and lies below what 0.2-0.4 sigma
# does. KMeans metrics jump when KMeans reassigns a text, so their slack is wider.
#   silhouette_true: largest allowed mean paired drop (fails only if also significant)
#   family_silhouette: largest allowed drop of the worst family's mean silhouette
#   davies_bouldin_true / davies_bouldin_kmeans: largest allowed increase
#   silhouette_kmeans: largest allowed drop
#   cka_to_baseline / mutual_knn_to_baseline: minimum
DEFAULT_TOLERANCES: dict[str, float] = {
    "silhouette_true": 0.01,
    "family_silhouette": 0.05,
    "davies_bouldin_true": 0.25,
    "silhouette_kmeans": 0.05,
    "davies_bouldin_kmeans": 0.35,
    "cka_to_baseline": 0.97,
    "mutual_knn_to_baseline": 0.8,
}
MINIMUM_TOLERANCES = ("cka_to_baseline", "mutual_knn_to_baseline")  # these tolerances are minima
KNN_K = 5  # k of the mutual k-NN check


# --- storage -----------------------------------------------------------------------------------


_TABLE2 = ("silhouette_true", "davies_bouldin_true", "silhouette_kmeans", "davies_bouldin_kmeans")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_entry(d: Any, where: str) -> None:
    """Every field of a dataset entry has its type, the gate's numbers are finite, labels lie in range:
    a hand-edited file fails here, naming the field, not later inside a comparison."""

    def bad(field: str, expected: str, value: Any) -> InvalidInputError:
        return InvalidInputError(f"{where}, field {field}: expected {expected}, got {value!r:.80}; "
                                 f"regenerate it ({UPDATE_HINT})")

    if not isinstance(d, Mapping):
        raise bad("(the dataset)", "an object", d)
    kinds = {"texts": list, "labels": list, "label_names": list, "report": Mapping, "silhouette_samples": list,
             "embeddings": Mapping, "texts_digest": str}
    for key, kind in kinds.items():
        if key not in d:
            raise InvalidInputError(f"{where}: field {key} is missing; regenerate it ({UPDATE_HINT})")
        if not isinstance(d[key], kind):
            raise bad(key, kind.__name__ if kind is not Mapping else "an object", d[key])
    if not all(isinstance(t, str) for t in d["texts"]):
        raise bad("texts", "a list of strings", next(t for t in d["texts"] if not isinstance(t, str)))
    names = d["label_names"]
    for i, v in enumerate(d["labels"]):
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(names)):
            raise bad(f"labels[{i}]", f"an integer in [0, {len(names)}) (one of label_names)", v)
    for i, v in enumerate(d["silhouette_samples"]):
        if not (_number(v) and math.isfinite(v)):
            raise bad(f"silhouette_samples[{i}]", "a finite number", v)
    report = d["report"]
    for key in _TABLE2:
        v = report.get(key, "(missing)")
        if not (_number(v) and math.isfinite(v)):
            raise bad(f"report.{key}", "a finite number (the gate compares it)", v)
    for key in ("n", "dim", "n_clusters"):
        v = report.get(key, "(missing)")
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            raise bad(f"report.{key}", "a non-negative integer", v)
    for key, v in report.items():
        if key in ("calinski_harabasz_true", "ari", "nmi", "v_measure") and not (v is None or _number(v)):
            raise bad(f"report.{key}", "a number or null", v)
    if report["n"] != len(d["texts"]):
        raise bad("report.n", f"{len(d['texts'])} (the number of texts)", report["n"])
    rows = d.get("silhouette_rows")  # present when the silhouettes are a sample's (geomcheck.checks.per_text)
    if rows is not None and not (isinstance(rows, list) and len(rows) == len(d["silhouette_samples"]) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in rows) and all(
            a < b for a, b in zip([-1, *rows], [*rows, len(d["texts"])]))):
        raise bad("silhouette_rows", "increasing text indices, one per silhouette_samples value", rows)


@dataclass(eq=False)
class BaselineEntry:
    """One dataset's record: texts, labels, report, per-text silhouettes, embeddings ``X``.

    ``silhouette_rows``: None when ``silhouette_samples`` holds every text's silhouette; else the
    indices of the sampled texts whose silhouettes it holds (above ``exact_max``, ``per_text``)."""

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    report: GeometryReport
    silhouette_samples: np.ndarray
    X: np.ndarray
    texts_digest: str = ""
    silhouette_rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        from geomcheck.cache import texts_digest

        self.texts_digest = self.texts_digest or texts_digest(self.texts)

    def to_dict(self, embeddings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The entry as JSON; ``embeddings``: the value for ``X`` (default: inline, ``checks._arrays``)."""
        return {"texts_digest": self.texts_digest, "texts": list(self.texts), "labels": [int(v) for v in self.labels],
                "label_names": list(self.label_names), "report": self.report.to_dict(),
                "silhouette_samples": [float(v) for v in self.silhouette_samples], "embeddings": embeddings or encode_embeddings(self.X),
                **({} if self.silhouette_rows is None else {"silhouette_rows": [int(v) for v in self.silhouette_rows]})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str, folder: Path | None = None) -> BaselineEntry:
        _check_entry(d, where)
        try:
            entry = cls(tuple(d["texts"]), np.asarray(d["labels"], dtype=np.int64), tuple(d["label_names"]),
                        GeometryReport.from_dict(dict(d["report"])),
                        np.asarray(d["silhouette_samples"], dtype=np.float64),
                        decode_embeddings(d["embeddings"], where, folder, UPDATE_HINT), str(d["texts_digest"]),
                        None if d.get("silhouette_rows") is None else np.asarray(d["silhouette_rows"], dtype=np.int64))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"{where}: missing or malformed field {exc}; "
                                    f"regenerate it ({UPDATE_HINT})") from None
        from geomcheck.cache import texts_digest

        n = len(entry.texts)
        if entry.texts_digest != texts_digest(entry.texts) or not (
                entry.labels.shape == (n,) and entry.X.shape[0] == n and entry.silhouette_samples.shape ==
                (n if entry.silhouette_rows is None else entry.silhouette_rows.size,)):
            raise InvalidInputError(f"{where}: texts, digest, labels, silhouettes and embeddings disagree "
                                    f"(edited by hand?); regenerate it ({UPDATE_HINT})")
        return entry


@dataclass(eq=False)
class Baseline:
    """A model's committed geometry: ``datasets`` maps a dataset name to its ``BaselineEntry``.

    ``tolerances`` overrides ``DEFAULT_TOLERANCES`` for this model; ``tolerance_basis`` is
    the measurement they were chosen from (free-form JSON); ``expect`` records per dataset
    whether the model clusters by family (``kmeans_minus_true <= 0.05``); ``kmeans`` the KMeans
    settings its reports were measured with (``{"seed": 42, "n_init": 10}``; read from the reports
    of a file written before it was recorded).
    """

    model: str
    fingerprint: str
    datasets: dict[str, BaselineEntry]
    device: str = "unknown"
    dtype: str = "unknown"
    versions: dict[str, str | None] = field(default_factory=dict)
    created: str = ""
    tolerances: dict[str, float] = field(default_factory=dict)
    tolerance_basis: Any = None
    expect: dict[str, Any] = field(default_factory=dict)
    kmeans: dict[str, int] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    path: Path | None = field(default=None, compare=False)  # the file it was read from

    @property
    def kmeans_seed(self) -> int:
        """The KMeans ``random_state`` this baseline's KMeans numbers came from (0 for a file written before
        geomcheck took the paper's 42; a file whose datasets disagree gives the first dataset's)."""
        if "seed" in self.kmeans:
            return int(self.kmeans["seed"])
        seeds = [e.report.seed for e in self.datasets.values()]
        return int(seeds[0]) if seeds else KMEANS_SEED

    def to_dict(self, embeddings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        return {"format_version": self.format_version, "model": self.model, "fingerprint": self.fingerprint,
                "device": self.device, "dtype": self.dtype, "versions": self.versions, "created": self.created,
                "kmeans": self.kmeans or {"seed": self.kmeans_seed},
                "tolerances": self.tolerances, "tolerance_basis": self.tolerance_basis, "expect": self.expect,
                "datasets": {k: e.to_dict((embeddings or {}).get(k)) for k, e in self.datasets.items()}}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write pretty JSON (sorted keys, trailing newline) atomically; return the path. Embeddings past
        ``_arrays.INLINE_MAX_BYTES`` go to a ``.npy`` beside it (written first; replaced ones removed last)."""
        from geomcheck.cache import atomic_write

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        stored = {k: encode_embeddings(e.X, p, k) for k, e in self.datasets.items()}
        atomic_write(p, (json.dumps(self.to_dict(stored), indent=1, sort_keys=True) + "\n").encode("utf-8"))
        p.chmod(0o644)  # mkstemp creates 0600; a committed file is read by others
        remove_replaced(p, stored)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Baseline:
        """Read a file written by ``save``; InvalidInputError says what is wrong and how to regenerate."""
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"no baseline file at {str(p)!r}; create it with {regenerate_hint(p)}")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"baseline {str(p)!r} is not JSON ({exc}); "
                                    f"regenerate it with `{UPDATE_HINT}`") from None
        except RecursionError:  # json's parser recurses per nesting level; no baseline nests past a few
            raise InvalidInputError(f"baseline {str(p)!r} nests its JSON too deeply to be a geomcheck baseline; "
                                    f"regenerate it with `{UPDATE_HINT}`") from None
        if not isinstance(d, dict) or "format_version" not in d:
            raise InvalidInputError(f"{str(p)!r} is not a geomcheck baseline (no format_version); "
                                    f"regenerate it with `{UPDATE_HINT}`")
        if d["format_version"] != FORMAT_VERSION:
            raise InvalidInputError(f"baseline {str(p)!r} has format version {d['format_version']!r}; this geomcheck "
                                    f"reads version {FORMAT_VERSION}; regenerate it with `{UPDATE_HINT}`")
        for key, kind in (("model", str), ("fingerprint", str), ("datasets", dict)):
            if not isinstance(d.get(key), kind):
                raise InvalidInputError(f"baseline {str(p)!r}, field {key}: expected {kind.__name__}, got "
                                        f"{d.get(key, '(missing)')!r:.80}; regenerate it with {regenerate_hint(p)}")
        kmeans = d.get("kmeans") or {}
        if not (isinstance(kmeans, dict) and all(k in ("seed", "n_init") and isinstance(v, int)
                                                 and not isinstance(v, bool) and v >= 0 for k, v in kmeans.items())):
            raise InvalidInputError(f"baseline {str(p)!r}, field kmeans: expected {{\"seed\": int, \"n_init\": int}}, "
                                    f"got {kmeans!r:.80}; regenerate it with {regenerate_hint(p)}")
        for k, v in (d.get("tolerances") or {}).items():
            if not (_number(v) and math.isfinite(v)):
                raise InvalidInputError(f"baseline {str(p)!r}, field tolerances.{k}: expected a finite number, got "
                                        f"{v!r}; fix it or regenerate the file with {regenerate_hint(p)}")
        try:
            datasets = {str(k): BaselineEntry.from_dict(v, f"baseline {str(p)!r}, dataset {k!r}", p.parent)
                        for k, v in d["datasets"].items()}
            tolerances = {str(k): float(v) for k, v in (d.get("tolerances") or {}).items()}
            b = cls(str(d["model"]), str(d["fingerprint"]), datasets, str(d.get("device", "unknown")),
                    str(d.get("dtype", "unknown")), dict(d.get("versions") or {}), str(d.get("created", "")),
                    tolerances, d.get("tolerance_basis"), dict(d.get("expect") or {}), dict(kmeans), FORMAT_VERSION)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(f"baseline {str(p)!r}: missing or malformed field ({exc}); "
                                    f"regenerate it with `{UPDATE_HINT}`") from None
        resolve_tolerances(None, b.tolerances, where=f"baseline {str(p)!r}")
        b.path = p.resolve()
        return b


def resolve_tolerances(explicit: Mapping[str, float] | None, from_file: Mapping[str, float] | None = None, *,
                       where: str = "tolerances") -> dict[str, float]:
    """Explicit argument > the baseline file's ``tolerances`` > ``DEFAULT_TOLERANCES``, key by key."""
    out = dict(DEFAULT_TOLERANCES)
    for source in (from_file or {}, explicit or {}):
        unknown = sorted(set(source) - set(DEFAULT_TOLERANCES))
        if unknown:
            raise InvalidInputError(f"{where}: unknown tolerance name(s) {', '.join(map(repr, unknown))}; "
                                    f"known: {', '.join(DEFAULT_TOLERANCES)}")
        for k, v in source.items():
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            if not ok or (k in MINIMUM_TOLERANCES and v > 1):
                raise InvalidInputError(f"{where}: tolerance {k!r} must be a finite number >= 0"
                                        f"{' and <= 1 (a minimum)' if k in MINIMUM_TOLERANCES else ''}, got {v!r}")
            out[k] = float(v)
    return out


def make_baseline(model_name: str, fingerprint: str, embedded: Mapping[str, Any], *,
                  tolerances: Mapping[str, float] | None = None, tolerance_basis: Any = None,
                  meta: Mapping[str, Any] | None = None, metric: str = "euclidean",
                  exact_max: int | None = None) -> Baseline:
    """A ``Baseline`` from ``{dataset name: EmbeddedDataset}``, measured with the paper's KMeans (``n_init=10``,
    ``random_state=42``); ``meta`` may set device, dtype, versions, created. ``metric``: the silhouette's
    distance, recorded in each dataset's report (``report.metric``). Above ``exact_max`` texts (None:
    ``EXACT_MAX_N``) the Euclidean silhouettes are a stratified sample's (``geomcheck.checks.per_text``)."""
    from datetime import datetime, timezone

    from geomcheck.metrics import EXACT_MAX_N, KMEANS_RESTARTS, cluster_report

    if not embedded:
        raise InvalidInputError("make_baseline needs at least one embedded dataset, e.g. {'paper': emb}")
    datasets, expect = {}, {}
    for name, emb in embedded.items():
        X = np.asarray(emb.X, dtype=np.float32)
        labels = np.asarray(emb.labels)
        limit = EXACT_MAX_N if exact_max is None else exact_max
        rows = sample_rows(labels, metric, limit, KMEANS_SEED)
        rep = cluster_report(X, labels, seed=KMEANS_SEED, label_names=emb.label_names, precision="float64",
                             metric=metric, exact_max=limit)
        datasets[name] = BaselineEntry(tuple(emb.texts), labels.astype(np.int64), tuple(emb.label_names),
                                       rep, per_text_silhouettes(X, labels, metric, rows), X.copy(), silhouette_rows=rows)
        gap = rep.silhouette_kmeans - rep.silhouette_true
        expect[name] = {"clusters_by_family": bool(gap <= KMEANS_MARGIN), "kmeans_minus_true": float(gap),
                        "margin": KMEANS_MARGIN}
    meta = dict(meta or {})
    tol = resolve_tolerances(None, tolerances or {}, where="make_baseline tolerances")
    return Baseline(model_name, fingerprint, datasets, str(meta.get("device", "unknown")),
                    str(meta.get("dtype", "unknown")), dict(meta.get("versions") or versions()),
                    str(meta.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds")),
                    {k: tol[k] for k in (tolerances or {})}, tolerance_basis, expect,
                    {"seed": KMEANS_SEED, "n_init": KMEANS_RESTARTS})


# --- comparison --------------------------------------------------------------------------------


def _kept_tolerances(path: Path) -> tuple[dict[str, float] | None, Any]:
    """The ``tolerances`` and ``tolerance_basis`` of a baseline file that no longer loads, where they are valid."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        tol = d.get("tolerances") or {}
        resolve_tolerances(None, tol)
        return dict(tol), d.get("tolerance_basis")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, AttributeError, InvalidInputError):
        return None, None


def _looks_like_a_baseline(path: Path) -> bool:
    """A JSON object with a ``format_version`` and ``datasets``: ours, even if damaged."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(d, dict) and "format_version" in d and "datasets" in d


def rewrite_baseline(path: str | os.PathLike[str], model_name: str, fingerprint: str, embedded: Mapping[str, Any], *,
                     meta: Mapping[str, Any] | None = None, metric: str = "euclidean",
                     exact_max: int | None = None) -> Baseline:
    """``make_baseline`` and save it to ``path``, keeping an existing file's ``tolerances`` and
    ``tolerance_basis`` (they were chosen by hand or from measurements; a new run must not drop them)."""
    from geomcheck._disk import remove_stale

    path = Path(path)
    old = None
    for pattern in (f".{path.name}.*.tmp", f".{path.stem}.embeddings.*.tmp"):  # what a killed write left beside it
        remove_stale(path.parent, pattern)
    if path.exists() and not path.is_file():
        raise InvalidInputError(f"{str(path)!r} is a directory, not a baseline file; give a .json path")
    if path.is_file():
        try:
            old = Baseline.load(path)
        except InvalidInputError:
            if not _looks_like_a_baseline(path):
                raise InvalidInputError(f"{str(path)!r} exists and is not a geomcheck baseline; it is not replaced. "
                                        f"Choose another path, or remove the file yourself.") from None
            old = None  # a damaged baseline of ours (or one whose .npy was not committed): replaced whole ...
    tolerances, basis = (old.tolerances, old.tolerance_basis) if old else _kept_tolerances(path)  # ... but these kept
    b = make_baseline(model_name, fingerprint, embedded, tolerances=tolerances, tolerance_basis=basis, meta=meta,
                      metric=metric, exact_max=exact_max)
    b.save(path)
    return b
