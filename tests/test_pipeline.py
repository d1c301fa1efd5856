"""The DVC pipeline as a whole: no token ever reaches params.yaml, notebooks are stored without
outputs, and the command line lists every stage in pipeline order (the shape of each stage:
tests/test_stages.py)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from secmine import config
from secmine.cli import app

DVC = yaml.safe_load((config.PROJECT_ROOT / "dvc.yaml").read_text())
STAGES = list(DVC["stages"])


def test_params_hold_no_tokens() -> None:
    text = (config.PROJECT_ROOT / "params.yaml").read_text()
    assert not re.search(r"ghp_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{50,}|hf_[A-Za-z0-9]{30,}", text)
    # a key naming a credential (github_token, hf_token, api_key, ...) -- not a size such as max_tokens
    secret = r"(?im)^\s*\w*(token|secret|password|api_key)\s*:\s*\S"
    assert not re.search(secret, text), "tokens come only from the environment"
    assert re.search(secret, "collect:\n  github_token: abc\n") and not re.search(secret, "  max_tokens: 512\n")


def test_notebooks_are_stored_without_outputs() -> None:
    import nbformat

    for path in sorted((config.PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: stored with outputs"


def test_cli_lists_every_stage_command_in_pipeline_order() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    commands = re.findall(r"^\W+([a-z][a-z0-9-]+)\s", result.output, flags=re.M)
    assert [c for c in commands if c in STAGES] == STAGES


def test_version() -> None:
    from secmine import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"secmine {__version__}"


def test_expected_errors_are_one_line_and_name_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["rq1", "--classified", str(tmp_path / "none.parquet"), "--out", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("error: ") and "none.parquet: not found" in lines[0]
    assert "run the `classify` stage first" in lines[0]


def test_every_deps_path_of_a_stage_is_written_by_a_stage_or_is_an_input() -> None:
    """dvc.yaml's inputs under reports/ and data/ (other than data/external) are outputs of some
    stage: a dependency named differently from what its stage writes (``train-tagger.ipynb`` for
    ``train_tagger.ipynb``) makes ``dvc repro`` fail at the last stage."""
    written: set[str] = set()
    for stage in DVC["stages"].values():
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            written.add(next(iter(out)) if isinstance(out, dict) else out)
    missing = []
    for name, stage in DVC["stages"].items():
        for dep in stage.get("deps", []):
            if not dep.startswith(("reports/", "data/", "models/")) or dep.startswith("data/external"):
                continue
            if not any(dep == out or dep.startswith(out.rstrip("/") + "/") for out in written):
                missing.append(f"{name}: {dep}")
    assert not missing, missing


def test_dvc_hashes_no_file_the_installer_or_interpreter_writes_into_src() -> None:
    """The report stage depends on ``src``: pip's ``secmine.egg-info`` (its PKG-INFO holds the README
    as installed) and bytecode differ between environments, and a clean clone's `make repro` then
    recorded another hash for ``src`` than the commit, so DVC must ignore them."""
    import os

    from dvc.repo import Repo

    repo = Repo(str(config.PROJECT_ROOT))
    try:
        ignored = repo.dvcignore
        src = config.PROJECT_ROOT / "src"
        for path in ("secmine.egg-info/PKG-INFO", "secmine/__pycache__/io.cpython-312.pyc"):
            assert ignored.is_ignored(repo.fs, os.fspath(src / path)), path
        assert not ignored.is_ignored(repo.fs, os.fspath(src / "secmine" / "io.py"))
    finally:
        repo.close()
