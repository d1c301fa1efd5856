"""Stage ``report``: the whole study on one page, ``reports/index.html``.

Headline numbers, the paper's three figures (Fig. 1, the study funnel, is computed here from the
stages' metrics), the reproduction scorecard (every published number the run can check), the RQ1–RQ3
tables, the classifier comparison, example threads per taxonomy code (address and title only),
links to every executed notebook exported as HTML, and provenance by content (no commit id, no
time), self-contained (no CDN), so it opens from disk and a rerun writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secmine.report.page import ReportResult
from secmine.stages import STAGES, module_name, stage_module
from secmine.stages.contract import (
    ROLE_OUTPUT,
    StageParams,
    StagePaths,
    input_files,
    input_path,
    output_files,
    output_path,
    stage_run,
)

STAGE = "report"
UPSTREAM: tuple[str, ...] = STAGES[: STAGES.index(STAGE)]


def _upstream_outputs(folder: str) -> list[str]:
    """What the upstream stages write under ``reports/<folder>/``, relative to it: their own
    ``<stage>`` folder (or ``<stage>.json`` metrics) and their files in the shared ``paper`` folder.

    Read from the stage modules' Paths fields (dvc.yaml passes ``tables_dir`` as
    ``reports/tables/<stage>``, ``paper_tables_dir`` as ``reports/tables/paper``: tools/gen_dvc.py),
    never from dvc.yaml, which is written from these modules."""
    own = {"metrics": "metrics", "tables": "tables_dir", "figures": "figures_dir"}[folder]
    shared = {"tables": "paper_tables_dir", "figures": "paper_figures_dir"}.get(folder)
    found: list[str] = []
    for stage in UPSTREAM:
        paths = stage_module(stage).Paths
        names = paths.field_names(ROLE_OUTPUT)
        if own in names:
            found.append(f"{stage}.json" if folder == "metrics" else stage)
        if shared in names:
            found += [f"paper/{file}" for file in paths.files_of()[shared]]
    return sorted(found)


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    examples_per_code: int = 3  # example threads shown per taxonomy code (address and title only)


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    metrics_dir: Path = input_files(*_upstream_outputs("metrics"), help="every stage's metrics")
    reports_tables: Path = input_files(*_upstream_outputs("tables"), help="the stages' tables")
    reports_figures: Path = input_files(*_upstream_outputs("figures"), help="the stages' figures")
    notebooks_dir: Path = input_files(*(f"{module_name(s)}.ipynb" for s in UPSTREAM), help="the executed notebooks")
    manifest: Path = input_path(made_by="external", help="checksums of the external data")
    parameters: Path = input_path(help="params.yaml, shown in full")
    source_code: Path = input_path(help="the package, named by its content on the page")
    stage_notebooks: Path = input_path(help="the stage notebooks, named by their content on the page")
    replication_dir: Path = input_path(made_by="secmine external-link")
    coded_sample: Path = input_path(help="the coded sample the thematic stage counts (example threads per code)")
    codebook: Path = input_path(help="its codebook")
    corpus: Path = input_path(made_by="collect", help="thread titles for the examples")
    page: Path = output_path(help="the report page")
    paper_tables_dir: Path = output_files("fig1_funnel.csv")
    paper_figures_dir: Path = output_files("fig1_funnel.png", "fig1_funnel.svg")
    notebooks_html: Path = output_files(*(f"{module_name(s)}.html" for s in UPSTREAM), help="the executed notebooks as HTML")


Result = ReportResult


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.report.examples import examples_for
    from secmine.report.page import ReportPaths, build_report

    examples = examples_for(
        paths.replication_dir,
        coded_sample=paths.coded_sample,
        codebook=paths.codebook,
        corpus=paths.corpus,
        per_code=params.examples_per_code,
    )
    final = paths.final()
    return build_report(
        ReportPaths(
            root=Path("."),
            reports=final.page.parent,
            out=final.page,
            metrics=paths.metrics_dir,
            tables=paths.reports_tables,
            figures=paths.reports_figures,
            notebooks=paths.notebooks_dir,
            notebooks_html=final.notebooks_html,
            manifest=paths.manifest,
            params=paths.parameters,
            inputs=tuple(p for p in paths.tracked("input") if p.parts[:1] == ("reports",)),
            paper_tables=final.paper_tables_dir,
            paper_figures=final.paper_figures_dir,
            staged={"out": paths.page, "paper_tables": paths.paper_tables_dir,
                    "paper_figures": paths.paper_figures_dir, "notebooks_html": paths.notebooks_html},
        ),
        examples=examples,
        exclude_notebooks=(STAGE,),
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return f"{result.page}: {len(result.written)} files written"
