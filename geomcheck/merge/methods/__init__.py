"""One module per merge method: the tensor maths, its formula and reference, and its ``MergeMethod`` spec.

No file I/O here; ``geomcheck.merge.registry`` collects the specs into ``METHODS``.
"""
