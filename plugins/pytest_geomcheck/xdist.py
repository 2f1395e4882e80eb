"""pytest-xdist: each worker runs on one GPU and sends its run record; the controller merges them.

Registered by ``plugin.py`` only when pytest-xdist is active, so its hooks exist exactly
when xdist's hook specs do.

``--dist loadgroup`` keeps each model's tests on one worker (the model is loaded once, on one GPU).
The workers mark every test of a model ``xdist_group("geomcheck-<model id>")``; xdist passes the
group to its scheduler as a ``@group`` suffix of the node id, which pytest 9's structured node ids
no longer carry (pytest-xdist issue #1386). So the controller schedules with ``ModelGroupScheduling``:
a test's group is its ``@`` suffix where there is one, else the model its parameters name, else the
test alone (plain load balancing).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from xdist.scheduler import LoadGroupScheduling  # this module is registered only where xdist runs

from pytest_geomcheck.session import GeomcheckSession

__all__ = ["one_gpu_per_worker", "ModelGroupScheduling", "model_in_nodeid"]


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker and GeomcheckSession.of(config).settings.device in ("auto", "cuda"):
        one_gpu_per_worker(worker)


def one_gpu_per_worker(worker: str) -> None:
    """``gwN`` sees only GPU N mod #GPUs, so ``-n <gpus>`` spreads the models over the GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [g for g in visible.split(",") if g.strip()]
    else:
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return
        gpus = [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    if len(gpus) > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(worker.lstrip("gw") or 0) % len(gpus)]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    session = GeomcheckSession.of(config)
    if hasattr(config, "workeroutput") and session.record_started:
        session.tests_into_record()
        config.workeroutput["geomcheck"] = json.dumps(session.record.state)


def pytest_testnodedown(node, error) -> None:
    data = getattr(node, "workeroutput", {}).get("geomcheck")
    if data:
        GeomcheckSession.of(node.config).record.merge(json.loads(data))


def model_in_nodeid(nodeid: str, model_ids: list[str]) -> str | None:
    """The model id among ``model_ids`` that a test's parameter id (``test_x[minilm-soup]``) names as one of its
    ``-``-joined parts, or None (no parameters, none, or two models fit)."""
    name = nodeid.rsplit("::", 1)[-1]
    if "[" not in name or not name.endswith("]"):
        return None
    ids = name[name.index("[") + 1:-1]
    found = {m for m in model_ids if ids == m or ids.startswith(f"{m}-") or ids.endswith(f"-{m}") or f"-{m}-" in ids}
    # "smollm2-135m" also contains "smollm2": the longer name wins where one holds the other
    found = {m for m in found if not any(m != n and m in n for n in found)}
    return found.pop() if len(found) == 1 else None


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None  # xdist's own
    return ModelGroupScheduling(config, log)


class ModelGroupScheduling(LoadGroupScheduling):
    """xdist's loadgroup, grouping the tests of one model (see the module docstring)."""

    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        session = GeomcheckSession.of(config)
        self._model_ids = [session.id_of(m) for m in session.settings.models]

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        if scope != nodeid:  # xdist carried the group
            return scope
        model = model_in_nodeid(nodeid, self._model_ids)
        return nodeid if model is None else f"geomcheck-{model}"
