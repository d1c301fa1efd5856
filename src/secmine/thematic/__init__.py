"""The ``thematic`` stage (RQ2 issues, RQ3 solutions): the paper's taxonomy tables and figures
from a coded sample.  See :mod:`secmine.thematic.counting` for the counting semantics and
:mod:`secmine.thematic.stage` for the inputs and the bad-input policy."""

from __future__ import annotations

from secmine.thematic.counting import ThematicCounts, count_all, count_sample
from secmine.thematic.paper import compare_with_paper

__all__ = ["ThematicCounts", "compare_with_paper", "count_all", "count_sample"]
