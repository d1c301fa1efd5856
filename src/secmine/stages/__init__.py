"""The pipeline's stages, one module each, in pipeline order (see :mod:`secmine.stages.contract`).

``secmine.stages.<module>`` holds ``Params``, ``Paths`` and ``run`` of the DVC stage of the same name
(``-`` in a stage name is ``_`` in its module name).  The notebooks, the command line and the tests
reach every stage through :func:`stage_module`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# DVC stage names in pipeline order (dvc.yaml lists them in this order; a test checks).
STAGES: tuple[str, ...] = (
    "external",
    "collect",
    "keywords",
    "train",
    "classify",
    "rq1",
    "sample",
    "topics",
    "thematic",
    "train-tagger",
    "tag",
    "report",
)


def module_name(stage: str) -> str:
    return stage.replace("-", "_")


def stage_module(stage: str) -> ModuleType:
    """The module of ``stage`` (``secmine.stages.<module_name(stage)>``)."""
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; the stages are {', '.join(STAGES)}")
    return importlib.import_module(f"secmine.stages.{module_name(stage)}")
