"""LoRA and merged variants of the model under test: do merges keep the base geometry?

``lora_run`` trains a LoRA adapter on the sequence-family task — with ``--dataset PATH``, on
the train split of your labelled texts (SupCon on their labels) — or takes ``--adapter`` /
``--checkpoint``; ``merged_variants`` builds base, lora and each ``--merge`` variant (default
soup and slerp). The variants are measured on texts the LoRA never saw: the suite dataset and
the held-out families, or the test split of ``--dataset``. What must hold for a healthy merge:

- it sits at least as close to the base (linear CKA) as the LoRA model does;
- it keeps a share of the LoRA's task gain (ini ``geomcheck_min_gain_share``, default 0.25);
- no family collapses: no family's silhouette in the merge falls more than 0.1 below the lower
  of its base and LoRA values (merging must not create a collapse neither parent has); the
  LoRA itself may lose up to 0.5 on a family it was not trained on (forgetting is shown);
- its sentence-transformers pipeline is the base's (modules, pooling, Dense, normalisation,
  prompts, max_seq_length, tokenizer): a difference fails naming it.

Your own merges take part as any built-in one: ``--merge NAME=DIR`` (a merged model directory)
or ``--merge NAME=recipe.yml`` (a mergekit recipe, built once and cached).

The paper's merge claims are measured and shown on every run; ``--geomcheck-paper-claims``
(ini ``geomcheck_paper_claims = true``) turns them into gates. ``--geomcheck-sweep`` with
``--geomcheck-report DIR`` also writes the t-sweep base → lora (``sweep.json``, ``sweep.png``).
Gains, shares, CKAs and claims come from ``geomcheck.checks.merging``, as in ``geomcheck merges``.
"""

from __future__ import annotations

import pytest

from geomcheck.checks.claims import CLAIMS
from geomcheck.checks.merging import adapter_position, cka_to_base, measure_claims, share_kept, task_gains
from geomcheck.checks.pipeline import assert_same_pipeline

pytestmark = pytest.mark.geomcheck_slow

LORA_MAX_FAMILY_DROP = 0.5  # LoRA vs base, per family (MiniLM measured: 0.32 on palindrome, held out)
MERGE_FAMILY_SLACK = 0.1  # merge vs the lower of base and LoRA, per family


@pytest.fixture(scope="session")
def task_dataset(lora_task):
    """The task's test set: windows of the training families at starts training never draws, or the
    test split of ``--dataset``."""
    return lora_task.eval_sets()["task"]


@pytest.fixture(scope="session")
def measured_sets(geomcheck_settings, suite_dataset, heldout_dataset, task_dataset):
    """[(name, dataset)] the variants are measured on, the first for their Table 2 rows: the suite dataset
    and the held-out families, or with ``--dataset`` its test split (``<name>.test``)."""
    if geomcheck_settings.dataset is not None:
        return [(f"{geomcheck_settings.suite_dataset_name}.test", task_dataset)]
    return [(geomcheck_settings.suite_dataset_name, suite_dataset), ("heldout", heldout_dataset)]


@pytest.fixture(scope="session")
def gains(merged_variants, embed, task_dataset):
    """Silhouette(true) gain on the task set of every variant over the base."""
    return task_gains({name: embed(task_dataset, embedder=e) for name, e in merged_variants.items()})


def _variant(merged_variants, name: str):
    __tracebackhide__ = True
    if name in merged_variants.broken:  # your own merged directory that does not load: every check of it fails
        pytest.fail(merged_variants.broken[name], pytrace=False)
    if name not in merged_variants:
        pytest.skip(f"{name} merges checkpoints, and the LoRA run has {merged_variants.n_checkpoints} "
                    f"(give --checkpoint at least twice)")
    return merged_variants[name]


def _no_family_collapses(variant, parents, datasets, embed, geomcheck_record, *, slack: float,
                         metric: str = "euclidean") -> None:
    """Each class's mean silhouette in ``variant`` >= the lowest of its ``parents``' - ``slack``. Records
    ``worst_<family|label>_change``: the smallest change of a class's silhouette (negative: it dropped)."""
    __tracebackhide__ = True
    from geomcheck.metrics import silhouette_samples

    word = getattr(datasets[0][1], "class_word", "family")
    worst = []
    for name, ds in datasets:
        sv = silhouette_samples(embed(ds, embedder=variant).X, ds.labels, metric=metric)
        sp = [silhouette_samples(embed(ds, embedder=p).X, ds.labels, metric=metric) for p in parents]
        for k, fam in enumerate(ds.label_names):
            m = ds.labels == k
            floor = min(float(s[m].mean()) for s in sp)
            worst.append((floor - float(sv[m].mean()), f"{name}/{fam}", floor, float(sv[m].mean())))
    drop, where, floor, now = max(worst)
    geomcheck_record(f"worst_{word}_change", -drop)
    geomcheck_record(f"worst_{word}", where)
    assert drop <= slack, (f"{word} {where} collapsed: its silhouette is {now:+.4f}, {drop:.4f} below "
                           f"{floor:+.4f} ({'the base' if len(parents) == 1 else 'the lower of base and LoRA'}); "
                           f"allowed {slack}")


@pytest.mark.parametrize("geomcheck_variant", ["lora"])
def test_lora_learns_the_task(lora_run, merged_variants, gains, geometry, measured_sets, embed, geomcheck_variant,
                              geomcheck_record, geomcheck_settings):
    """Our LoRA lowers its loss and raises the task silhouette; no family collapses on the way."""
    lora, base = merged_variants["lora"], merged_variants["base"]
    name, ds = measured_sets[0]
    if geomcheck_settings.dataset is not None:  # the base's row on the test split (the clustering suite has the rest)
        geometry(ds, name, embedder=base, variant="base")
    geometry(ds, name, embedder=lora, variant="lora")
    geomcheck_record("cka_to_base", cka_to_base(embed(ds, embedder=lora), embed(ds, embedder=base)))
    geomcheck_record("task_gain", gains["lora"])
    losses = getattr(lora_run, "loss_history", ())
    if losses:
        geomcheck_record("loss_first", losses[0])
        geomcheck_record("loss_last", losses[-1])
    if hasattr(lora_run, "loss_history"):  # trained here, not given with --adapter
        assert losses[-1] < losses[0], f"LoRA did not learn: loss {losses[0]:.4f} -> {losses[-1]:.4f}"
        assert gains["lora"] > 0, f"LoRA lowered the task silhouette by {-gains['lora']:.4f}"
    _no_family_collapses(lora, [base], measured_sets, embed, geomcheck_record, slack=LORA_MAX_FAMILY_DROP,
                         metric=geomcheck_settings.metric)


def test_merge_geometry(merged_variants, geomcheck_variant, geometry, measured_sets, embed, geomcheck_record):
    """Each merge's Table 2 row, its CKA to the base and its position between base (0) and LoRA (1)."""
    merged = _variant(merged_variants, geomcheck_variant)
    name, ds = measured_sets[0]
    r = geometry(ds, name, embedder=merged, variant=geomcheck_variant)
    e, base, lora = (embed(ds, embedder=m) for m in (merged, merged_variants["base"], merged_variants["lora"]))
    geomcheck_record("cka_to_base", cka_to_base(e, base))
    geomcheck_record("adapter_position", adapter_position(e, base, lora))
    assert -1 <= r.silhouette_true <= 1 and r.davies_bouldin_true > 0


def test_merge_keeps_the_base_pipeline(merged_variants, geomcheck_variant):
    """The merge embeds as the base does around its weights: same modules, pooling, Dense layers, normalisation,
    prompts, max_seq_length and tokenizer (``geomcheck.checks.pipeline``). A merged directory that lost its
    1_Pooling folder fails here naming the pooling (FlagEmbedding#311: it fell back to mean pooling silently)."""
    dirs = merged_variants.info["dirs"]
    if geomcheck_variant not in dirs:
        _variant(merged_variants, geomcheck_variant)  # skips: a checkpoint merge of a run with too few
    assert_same_pipeline(dirs["base"], dirs[geomcheck_variant], name=geomcheck_variant)


@pytest.mark.parametrize("geomcheck_variant", ["lora"])
def test_lora_keeps_the_base_pipeline(merged_variants, geomcheck_variant):
    dirs = merged_variants.info["dirs"]
    assert_same_pipeline(dirs["base"], dirs["lora"], name="lora")


def test_merge_is_at_least_as_close_to_base_as_lora(merged_variants, geomcheck_variant, embed, measured_sets):
    from geomcheck.checks import assert_merge_preserves_base

    merged = _variant(merged_variants, geomcheck_variant)
    base, lora = merged_variants["base"], merged_variants["lora"]
    for _, ds in measured_sets:
        cka_lora = cka_to_base(embed(ds, embedder=lora), embed(ds, embedder=base))
        # 1e-4: float noise; a merge that moves further from the base than the LoRA itself fails
        assert_merge_preserves_base(embed(ds, embedder=merged), embed(ds, embedder=base), min_cka=cka_lora - 1e-4)


def test_merge_keeps_a_share_of_the_task_gain(merged_variants, geomcheck_variant, gains, geomcheck_record,
                                              geomcheck_settings):
    _variant(merged_variants, geomcheck_variant)
    share = geomcheck_settings.min_gain_share
    if gains["lora"] <= 0:
        pytest.skip(f"the LoRA has no task gain to keep ({gains['lora']:+.4f})")
    kept = share_kept(gains[geomcheck_variant], gains["lora"])
    geomcheck_record("task_gain", gains[geomcheck_variant])
    geomcheck_record("share_of_lora_gain", kept)
    assert kept >= share, (f"{geomcheck_variant} keeps {kept:.1%} of the LoRA's task gain "
                           f"({gains[geomcheck_variant]:+.4f} of {gains['lora']:+.4f}); required {share:.0%}")


def test_no_family_collapses(merged_variants, geomcheck_variant, embed, measured_sets, geomcheck_record,
                             geomcheck_settings):
    merged = _variant(merged_variants, geomcheck_variant)
    _no_family_collapses(merged, [merged_variants["base"], merged_variants["lora"]], measured_sets, embed,
                         geomcheck_record, slack=MERGE_FAMILY_SLACK, metric=geomcheck_settings.metric)


def test_merge_diagnostics_recorded(merged_variants, geomcheck_record):
    """SLERP's fallback shares (how much of the SLERP is plain linear interpolation)."""
    info = merged_variants.info
    for name in ("slerp", "slerp_ckpt"):
        for k, v in (info.get(name) or {}).items():
            geomcheck_record(f"{name}.{k}", v)
    assert all(0 <= (info.get(n) or {}).get("share_tensors_slerp_is_lerp", 0) <= 1 for n in ("slerp", "slerp_ckpt"))


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_paper_claim(claim, merged_variants, embed, measured_sets, geomcheck_settings, geomcheck_record):
    """The paper's merge claims (``geomcheck.checks.claims``), measured on every run; gates only with
    --geomcheck-paper-claims."""
    for n in CLAIMS[claim].needs:
        if n not in geomcheck_settings.variant_names:
            pytest.skip(f"needs --merge {n}")
        _variant(merged_variants, n)
    used = {"base", "lora", *CLAIMS[claim].needs}
    _, ds = measured_sets[0]
    result = measure_claims({n: embed(ds, embedder=merged_variants[n]) for n in used}, merged_variants.info,
                            only=(claim,))[0]
    geomcheck_record.claim(result, gated=geomcheck_settings.paper_claims)
    if geomcheck_settings.paper_claims:
        assert result.holds, f"paper claim does not hold: {result.text} ({result.measured})"


def test_t_sweep_is_written_to_the_report(merge_sweep, merged_variants, embed, task_dataset, measured_sets,
                                          geomcheck_settings, geomcheck_model_name, geomcheck_record):
    """--geomcheck-sweep: the base → lora interpolations measured like ``geomcheck sweep`` and written as
    sweep.json / sweep.png into the report directory; t = 0 must give the base and t = 1 the LoRA model."""
    import json
    from pathlib import Path

    from geomcheck._json import jsonable
    from geomcheck.checks.merging import sweep_rows
    from geomcheck.models import load_model, model_id
    from geomcheck.reporting.sweep import sweep_plot

    name, ds = measured_sets[0]
    sets = {"task": task_dataset, name: ds}
    ends = {v: {s: embed(d, embedder=merged_variants[v]) for s, d in sets.items()} for v in ("base", "lora")}
    points = {}
    for key, path in merge_sweep.items():  # one model at a time; not through `embed`, whose memo keys on id()
        model = load_model(str(path), device=geomcheck_settings.device, cache=geomcheck_settings.cache)
        points[key] = {s: model.embed(d) for s, d in sets.items()}
        del model
    rows = sweep_rows(points, ends, task_set="task", cka_set=name)
    out = Path(geomcheck_settings.report_dir)
    stem = "sweep" if len(geomcheck_settings.models) == 1 else f"sweep-{model_id(geomcheck_model_name)}"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"model": geomcheck_model_name, "methods": list(dict.fromkeys(m for m, _ in merge_sweep)),
           "t": list(dict.fromkeys(t for _, t in merge_sweep)), "rows": rows, "task_set": "task", "cka_set": name}
    (out / f"{stem}.json").write_text(json.dumps(jsonable(doc), indent=2))
    sweep_plot(rows, out / f"{stem}.png", model=geomcheck_model_name)
    geomcheck_record("sweep_file", str(out / f"{stem}.json"))
    for r in rows:
        if r["t"] == 0:
            assert abs(r["cka_to_base"] - 1) <= 1e-6 and abs(r["task_gain"]) <= 1e-6, \
                f"{r['method']} at t = 0 is not the base: CKA {r['cka_to_base']:.8f}, gain {r['task_gain']:+.2e}"
        if r["t"] == 1:
            assert abs(r["cka_to_lora"] - 1) <= 1e-6, \
                f"{r['method']} at t = 1 is not the LoRA model: CKA to it {r['cka_to_lora']:.8f}"
