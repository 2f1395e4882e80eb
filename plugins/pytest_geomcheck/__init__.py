"""pytest plugin of geomcheck (entry point ``pytest11: geomcheck = pytest_geomcheck.plugin``)."""
