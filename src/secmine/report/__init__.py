"""The study at a glance: the paper's Fig. 1 funnel, the reproduction scorecard, deterministic
executed notebooks and their HTML, and the self-contained report page ``reports/index.html``.

:func:`build_report` (:mod:`secmine.report.page`) is what a final ``report`` stage calls.
"""

from __future__ import annotations

from secmine.report.funnel import funnel_figure, funnel_table, load_metrics, write_funnel
from secmine.report.notebooks import export_html, normalise_notebook
from secmine.report.page import ReportPaths, build_report
from secmine.report.scorecard import package_share, scorecard_from_outputs

__all__ = [
    "ReportPaths",
    "build_report",
    "export_html",
    "funnel_figure",
    "funnel_table",
    "load_metrics",
    "normalise_notebook",
    "package_share",
    "scorecard_from_outputs",
    "write_funnel",
]
