"""geomcheck: test the geometry of text-embedding models with pytest.

Importing the package is cheap (no torch, no sklearn); submodules load what they need.

PYTEST_DONT_REWRITE: pytest marks an installed plugin's whole distribution for assertion
rewriting, and ``geomcheck check`` has imported this package before pytest starts; geomcheck
asserts nothing itself, so there is nothing to rewrite (and no "already imported" warning).
"""

from __future__ import annotations

__version__ = "0.1.0"

from geomcheck.errors import GeomcheckError  # noqa: E402

__all__ = ["__version__", "GeomcheckError", "SUITES_PACKAGE", "load_dataset", "versions"]

SUITES_PACKAGE = "geomcheck.suites"  # the shipped suites, installed with the package (`geomcheck check`)


def versions() -> dict[str, str | None]:
    """Installed versions of geomcheck and the libraries that change what a model embeds."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist in ("geomcheck", "torch", "transformers", "sentence-transformers", "peft", "scikit-learn", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def __getattr__(name: str):
    if name == "load_dataset":  # numpy and csv only when asked for: ``import geomcheck`` stays light
        from geomcheck.data.text import load_dataset

        return load_dataset
    raise AttributeError(f"module 'geomcheck' has no attribute {name!r}")
