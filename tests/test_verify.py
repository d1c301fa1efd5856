"""`make verify` on a small DVC pipeline of its own: a scratch clone reruns the commit, nothing
differs -> exit 0; a stage that is not reproducible -> exit 1 with its files and a reason per
stage; the fast stages are those that need no trained model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from secmine import verify as ver

DVC_YAML = """\
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py]
    outs:
      - reports/tables/counts.csv:
          cache: false
      - reports/figures/counts.svg:
          cache: false
    metrics:
      - reports/metrics/prepare.json:
          cache: false
  select:
    cmd: python select_rows.py
    deps: [select_rows.py, reports/tables/counts.csv]
    outs:
      - data/selected.txt
  train:
    cmd: python train.py
    deps: [train.py]
    outs:
      - models/tiny
  score:
    cmd: python score.py
    deps: [score.py, models/tiny]
    metrics:
      - reports/metrics/score.json:
          cache: false
"""
PREPARE = """\
import json, os
from pathlib import Path
noise = {noise}
rows = [("a", 3), ("b", 5), ("c", 8 + noise)]
Path("reports/tables").mkdir(parents=True, exist_ok=True)
Path("reports/figures").mkdir(parents=True, exist_ok=True)
Path("reports/metrics").mkdir(parents=True, exist_ok=True)
Path("reports/tables/counts.csv").write_text("name,count\\n" + "".join(f"{{n}},{{c}}\\n" for n, c in rows))
Path("reports/figures/counts.svg").write_text(f"<svg><!-- {{noise}} --></svg>\\n")
Path("reports/metrics/prepare.json").write_text(json.dumps({{"total": sum(c for _, c in rows), "rows": 3}}) + "\\n")
"""
SCRIPTS = {
    "select_rows.py": "from pathlib import Path\nPath('data').mkdir(exist_ok=True)\n"
                      "Path('data/selected.txt').write_text(Path('reports/tables/counts.csv').read_text().upper())\n",
    "train.py": "from pathlib import Path\nPath('models/tiny').mkdir(parents=True, exist_ok=True)\n"
                "Path('models/tiny/weights.txt').write_text('0.5\\n')\n",
    "score.py": "import json\nfrom pathlib import Path\nPath('reports/metrics').mkdir(parents=True, exist_ok=True)\n"
                "w = float(Path('models/tiny/weights.txt').read_text())\n"
                "Path('reports/metrics/score.json').write_text(json.dumps({'mcc': w}) + '\\n')\n",
}


def _run(*command: str, cwd: Path) -> str:
    env = {**os.environ, **ver.RUN_ENV, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _commit(repo: Path, message: str) -> None:
    _run(sys.executable, "-m", "dvc", "repro", cwd=repo)
    _run("git", "add", "-A", cwd=repo)
    _run("git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", message, cwd=repo)


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "project"
    repo.mkdir()
    data = tmp_path / "data"
    (data / "ai_sec_dev").mkdir(parents=True)
    _run("git", "init", "-q", cwd=repo)
    _run(sys.executable, "-m", "dvc", "init", "-q", cwd=repo)
    _run(sys.executable, "-m", "dvc", "config", "core.autostage", "false", cwd=repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "prepare.py").write_text(PREPARE.format(noise="0"))
    for name, text in SCRIPTS.items():
        (repo / name).write_text(text)
    _commit(repo, "pipeline and its results")
    return repo, data


def test_fast_stages_are_those_needing_no_model(project: tuple[Path, Path]) -> None:
    repo, _ = project
    stages = ver.read_stages(repo)
    assert [s.name for s in stages] == ["prepare", "select", "train", "score"]
    assert ver.fast_stages(stages) == ["prepare", "select"]
    assert ver.stage_of("reports/metrics/score.json", stages) == "score"
    assert ver.stage_of("models/tiny/weights.txt", stages) == "train"
    assert ver.stage_of("README.md", stages) == ver.NO_STAGE


def test_a_reproducible_commit_verifies_and_a_noisy_stage_is_named(project: tuple[Path, Path]) -> None:
    repo, data = project
    lines: list[str] = []
    assert ver.verify(repo, fast=True, external=data, prepare=[], echo=lines.append) == 0, "\n".join(lines)
    assert lines[-1].startswith("nothing differs: prepare, select reproduce commit")
    # the prepare stage now depends on the process id: committed results no longer reproduce
    (repo / "prepare.py").write_text(PREPARE.format(noise="os.getpid() % 1000 + 1"))
    _commit(repo, "a noisy stage")
    lines.clear()
    assert ver.verify(repo, external=data, prepare=[], echo=lines.append) == 1
    text = "\n".join(lines)
    prepare = next(line for line in lines if line.startswith("stage prepare: "))
    assert "table tables/counts.csv: 1 of 3 rows differ" in prepare and "figure bytes differ" in prepare
    assert "metric total: " in prepare
    assert "    reports/metrics/prepare.json" in text and "    reports/tables/counts.csv" in text
    select = next(line for line in lines if line.startswith("stage select: "))
    assert "data/selected.txt (DVC-cached) differs" in select and "    dvc.lock: data/selected.txt" in text
    assert not any(line.startswith(("stage train", "stage score")) for line in lines)  # those reproduce
    assert lines[0].startswith("verify: commit ") and "(every stage)" in lines[0]


def test_a_failing_pipeline_is_exit_2_with_the_log(project: tuple[Path, Path], tmp_path: Path) -> None:
    repo, data = project
    (repo / "train.py").write_text("raise SystemExit('no data')\n")
    _run("git", "add", "-A", cwd=repo)
    _run("git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "broken", cwd=repo)
    lines: list[str] = []
    assert ver.verify(repo, stages=["score"], external=data, prepare=[], workdir=tmp_path / "w",
                      echo=lines.append) == 2
    assert any("the pipeline failed" in line for line in lines) and (tmp_path / "w" / "verify.log").is_file()
    with pytest.raises(ver.VerifyError, match="no ai_sec_dev/ there"):
        ver.verify(repo, external=tmp_path / "nowhere", prepare=[], echo=lines.append)


def test_the_default_preparation_is_a_command_of_the_cli() -> None:
    """CI's `make verify` runs it in the clone; a renamed command must fail here, not there."""
    from typer.testing import CliRunner

    from secmine.cli import app
    from secmine.verify import LINK_COMMAND

    result = CliRunner().invoke(app, [*LINK_COMMAND, "--help"])
    assert result.exit_code == 0, result.output
