"""geomcheck's shipped geometry suites, installed as ``geomcheck.suites`` (``geomcheck check`` runs them).

``baselines/`` holds the committed baselines of the shipped models.
"""
