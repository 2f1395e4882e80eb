"""pytest-xdist: each worker runs on one GPU and sends its run record; the controller merges them.

Registered by ``plugin.py`` only when pytest-xdist is active, so its hooks exist exactly
when xdist's hook specs do.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pytest_geomcheck.session import GeomcheckSession

__all__ = ["one_gpu_per_worker"]


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
        config.workeroutput["geomcheck"] = json.dumps(session.record.state)


def pytest_testnodedown(node, error) -> None:
    data = getattr(node, "workeroutput", {}).get("geomcheck")
    if data:
        GeomcheckSession.of(node.config).record.merge(json.loads(data))
