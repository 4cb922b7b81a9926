"""Live per-vehicle state, enrichment steps and route progress.

So far the linear referencing that route progress rests on (issue: Rules engine builds the
rest on it).
"""

from tracker.path import Located, PathIndex

__all__ = ["Located", "PathIndex"]
