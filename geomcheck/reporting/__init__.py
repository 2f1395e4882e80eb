"""The reporting stage: what a run measured, shown and kept.

- ``geomcheck.reporting.tables``: the paper's Table 2 layout (``Row``) as a rich table, JSON, Markdown;
- ``geomcheck.reporting.record``: ``RunRecord``, a run's measurements as plain JSON, merged across
  pytest-xdist workers, rendered as the terminal summary and a report directory;
- ``geomcheck.reporting.plots``: t-SNE / PCA scatter plots and grids (matplotlib, Agg).
"""
