"""The DVC pipeline: every stage is a papermill notebook, every parameter exists, params are
tracked, and no token ever reaches params.yaml."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import papermill
import pytest
import yaml
from typer.testing import CliRunner

from secmine import config
from secmine.cli import app

DVC = yaml.safe_load((config.PROJECT_ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((config.PROJECT_ROOT / "params.yaml").read_text())
STAGES = sorted(DVC["stages"])
EXPECTED_STAGES = {"external", "collect", "keywords", "train", "classify", "rq1", "sample", "topics", "thematic"}


def _command(stage: str) -> list[str]:
    cmd = DVC["stages"][stage]["cmd"]
    return shlex.split(cmd if isinstance(cmd, str) else " ".join(cmd))


def _passed_parameters(stage: str) -> dict[str, str]:
    words = _command(stage)
    params = {}
    for i, word in enumerate(words):
        if word in ("-p", "--parameters"):
            params[words[i + 1]] = words[i + 2]
    return params


def test_expected_stages_exist() -> None:
    assert EXPECTED_STAGES <= set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_runs_its_notebook_with_papermill(stage: str) -> None:
    words = _command(stage)
    assert words[:3] == ["papermill", f"notebooks/{stage}.ipynb", f"reports/notebooks/{stage}.ipynb"]
    assert words[words.index("-k") + 1] == "python3"
    spec = DVC["stages"][stage]
    assert f"notebooks/{stage}.ipynb" in spec["deps"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec.get("outs", [])]
    assert f"reports/notebooks/{stage}.ipynb" in outs


@pytest.mark.parametrize("stage", STAGES)
def test_every_passed_parameter_exists_in_the_notebook(stage: str) -> None:
    declared = papermill.inspect_notebook(str(config.PROJECT_ROOT / "notebooks" / f"{stage}.ipynb"))
    passed = _passed_parameters(stage)
    unknown = sorted(set(passed) - set(declared))
    assert not unknown, f"{stage}: dvc.yaml passes {unknown}, not in the notebook's parameters cell"


@pytest.mark.parametrize("stage", STAGES)
def test_interpolated_values_are_declared_params(stage: str) -> None:
    cmd = DVC["stages"][stage]["cmd"]
    used = set(re.findall(r"\$\{([^}]+)\}", cmd if isinstance(cmd, str) else " ".join(cmd)))
    declared = set()
    for item in DVC["stages"][stage].get("params", []):
        if isinstance(item, str):
            declared.add(item)
        else:  # {file: [keys]}
            for keys in item.values():
                declared.update(keys)
    for key in used:
        node = PARAMS
        for part in key.split("."):
            assert part in node, f"{stage}: ${{{key}}} is not in params.yaml"
            node = node[part]
        assert key in declared or key.split(".")[0] in declared, f"{stage}: ${{{key}}} not listed under params"


def test_params_hold_no_tokens() -> None:
    text = (config.PROJECT_ROOT / "params.yaml").read_text()
    assert not re.search(r"ghp_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{50,}|hf_[A-Za-z0-9]{30,}", text)
    assert not re.search(r"(?im)^\s*\w*token\w*\s*:\s*\S", text), "tokens come only from the environment"


def test_notebooks_are_stored_without_outputs() -> None:
    import nbformat

    for path in sorted((config.PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: stored with outputs"


def test_cli_lists_every_stage_command() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    commands = set(re.findall(r"^\W+([a-z][a-z0-9-]+)\s", result.output, flags=re.M))
    for stage in STAGES:
        assert stage in commands, f"stage {stage} has no `secmine {stage}` command"
