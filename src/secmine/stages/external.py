"""Stage ``external``: validate the replication package and the snapshot, checksum every file.

``secmine external-link`` (run by ``make repro`` before DVC) points ``data/external/`` at the data;
this stage checks every table through its typed loader and writes the manifest (a SHA-256 per file),
so downstream stages rerun exactly when the data changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmine.stages.contract import StageParams, StagePaths, input_path, output_path, stage_run

STAGE = "external"


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    require_snapshot: bool = False  # fail when the thread snapshot (ai_issues/) is absent


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    replication_dir: Path = input_path(made_by="secmine external-link", help="the authors' replication package")
    snapshot_dir: Path = input_path(made_by="secmine external-link", help="the thread snapshot folder (ai_issues/)")
    manifest: Path = output_path(help="files with SHA-256 and size, and counts", committed=True)
    metrics: Path = output_path(help="counts (DVC metrics)")

    # The snapshot may be absent (the manifest says so) unless params.require_snapshot.
    def needed_inputs(self, params: StageParams | None = None) -> dict[str, Path]:
        return {"replication_dir": self.replication_dir}


Result = dict[str, Any]


@stage_run
def run(params: Params, paths: Paths) -> Result:
    """Validate, then write the manifest and the metrics; returns the manifest."""
    from secmine.external import run_external_stage

    return run_external_stage(
        paths.replication_dir,
        paths.snapshot_dir,
        paths.manifest,
        paths.metrics,
        require_snapshot=params.require_snapshot,
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return f"{len(result['files'])} files checked"
