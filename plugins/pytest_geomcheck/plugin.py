"""geomcheck's pytest plugin: options, fixtures and hooks only; the work lives in ``geomcheck``.

Imported by every pytest run in an environment where geomcheck is installed, so it must
stay cheap: nothing heavy (numpy, torch, models) is imported until a fixture needs it.
"""

from __future__ import annotations

import functools

import pytest

import geomcheck


def pytest_report_header(config: pytest.Config) -> str:
    return f"geomcheck {geomcheck.__version__}"


@pytest.fixture(scope="session")
def dataset_factory():
    """``dataset_factory(families, per_family=4, length=50, start=0, ...)`` → ``SequenceDataset`` (memoised)."""
    from geomcheck.sequences import make_dataset

    @functools.lru_cache(maxsize=None)
    def build(families, per_family=4, length=50, start=0, sep=", ", max_chars=20_000):
        return make_dataset(families, per_family, length, start=start, sep=sep, max_chars=max_chars)

    def factory(families, per_family=4, length=50, *, start=0, sep=", ", max_chars=20_000):
        key = families if isinstance(families, str) else tuple(families)
        return build(key, per_family, length, start, sep, max_chars)

    return factory


@pytest.fixture(scope="session")
def paper_dataset():
    """The paper's 24 texts: 4 windows of 50 terms for each of its six families."""
    from geomcheck.sequences import paper_dataset

    return paper_dataset()


@pytest.fixture(scope="session")
def heldout_dataset():
    """Four windows of 50 terms for each family the paper never used."""
    from geomcheck.sequences import heldout_dataset

    return heldout_dataset()
