"""Tests never touch the user's caches: geomcheck's cache goes to a session temp dir."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_geomcheck_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path_factory.mktemp("geomcheck-cache")))
        yield


@pytest.fixture
def private_geomcheck_cache(tmp_path, monkeypatch):
    """A cache of the test's own, for tests that count what the cache holds or what a model recomputes."""
    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path / "gc-cache"))
    return tmp_path / "gc-cache"


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests: tiny models run faster so, and much faster on a shared CPU (two
    threads of 64-wide matrices spin-wait on each other: 4 ms a linear layer instead of 0.07 ms, measured at load
    average 10). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
