"""A stage's outputs appear together or not at all (secmine.io.output_set), also when it is killed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secmine import config
from secmine.errors import SecmineError
from secmine.io import _journal_path, _staged, output_set, recover_output_set


def _write(outputs: dict[str, Path], tag: str) -> None:
    outputs["table"].write_text(f"table {tag}\n")
    outputs["folder"].mkdir()
    for i in range(3):
        (outputs["folder"] / f"f{i}.txt").write_text(f"{tag} {i}\n")


def _state(root: Path) -> set[str]:
    """The tags of the outputs in place (staging folders are hidden and not counted)."""
    return {
        p.read_text().split()[-2 if p.name.startswith("f") else -1]
        for p in root.rglob("*.txt")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def _targets(tmp_path: Path) -> dict[str, Path]:
    return {"table": tmp_path / "out" / "table.txt", "folder": tmp_path / "out" / "figures"}


def test_all_outputs_replace_the_old_ones_together(tmp_path: Path) -> None:
    targets = _targets(tmp_path)
    with output_set(targets, name="t") as staged:
        _write(staged, "old")
    with output_set(targets, name="t") as staged:
        assert not any(p.exists() for p in staged.values())
        _write(staged, "new")
        assert _state(tmp_path / "out") == {"old"}  # nothing moves before the set is complete
    assert _state(tmp_path / "out") == {"new"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figures", "table.txt"]  # no leftovers


def test_a_failure_leaves_the_old_outputs_and_no_staging(tmp_path: Path) -> None:
    targets = _targets(tmp_path)
    with output_set(targets, name="t") as staged:
        _write(staged, "old")
    with pytest.raises(RuntimeError), output_set(targets, name="t") as staged:
        staged["table"].write_text("table new\n")
        raise RuntimeError("disk full")
    assert _state(tmp_path / "out") == {"old"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figures", "table.txt"]


def test_an_output_not_written_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    targets = _targets(tmp_path)
    with output_set(targets, name="t") as staged:
        _write(staged, "old")
    with pytest.raises(SecmineError, match="did not write its output .*figures"), output_set(targets, name="t") as staged:
        staged["table"].write_text("table new\n")
    assert _state(tmp_path / "out") == {"old"}


def test_a_kill_during_the_renames_is_finished_by_the_next_run(tmp_path: Path) -> None:
    targets = _targets(tmp_path)
    with output_set(targets, name="t") as staged:
        _write(staged, "old")
    # A run killed after its journal was written and one output was moved: the table is new, the
    # figures still old (their new version waits in staging).
    new = {k: _staged(v) for k, v in targets.items()}
    for path in new.values():
        path.parent.mkdir(parents=True)
    _write(new, "new")
    journal = _journal_path("t", list(targets.values()))
    journal.parent.mkdir(parents=True, exist_ok=True)
    plan = {"moves": [[new[k].as_posix(), targets[k].as_posix()] for k in targets],
            "roots": [new[k].parent.as_posix() for k in targets]}
    journal.write_text(json.dumps(plan))
    os.replace(targets["table"], targets["table"].with_name(".table.txt.old"))
    os.replace(new["table"], targets["table"])
    assert _state(tmp_path / "out" / "figures") == {"old"}
    assert recover_output_set(list(targets.values()), name="t")
    assert _state(tmp_path / "out") == {"new"} and not journal.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figures", "table.txt"]


def test_a_kill_before_the_journal_keeps_the_old_outputs(tmp_path: Path) -> None:
    targets = _targets(tmp_path)
    with output_set(targets, name="t") as staged:
        _write(staged, "old")
    half = _staged(targets["table"])
    half.parent.mkdir(parents=True)
    half.write_text("table new\n")
    assert recover_output_set(list(targets.values()), name="t")
    assert _state(tmp_path / "out") == {"old"} and not half.parent.exists()


def test_files_in_a_shared_folder_move_alone_and_must_be_declared(tmp_path: Path) -> None:
    shared = tmp_path / "paper"
    shared.mkdir()
    (shared / "other_stage.csv").write_text("not ours\n")
    with output_set({"paper": shared}, name="t", files={"paper": ["fig.csv", "fig.png"]}) as staged:
        (staged["paper"] / "fig.csv").write_text("new\n")
        (staged["paper"] / "fig.png").write_text("png\n")
    assert sorted(p.name for p in shared.iterdir()) == ["fig.csv", "fig.png", "other_stage.csv"]
    with pytest.raises(SecmineError, match="does not declare"), output_set(
        {"paper": shared}, name="t", files={"paper": ["fig.csv", "fig.png"]}
    ) as staged:
        for file in ("fig.csv", "fig.png", "stray.csv"):
            (staged["paper"] / file).write_text("x\n")
    assert (shared / "fig.csv").read_text() == "new\n"
    assert sorted(p.name for p in shared.iterdir()) == ["fig.csv", "fig.png", "other_stage.csv"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


@pytest.mark.slow
def test_kill_9_during_thematic_leaves_one_consistent_set(tmp_path: Path, fixtures_dir: Path) -> None:
    """The issue's case: kill -9 during `thematic` must never leave old and new tables mixed."""
    fixture = fixtures_dir / "thematic"
    base = [sys.executable, "-m", "secmine.cli", "thematic", "--coded-sample", str(fixture / "coded.csv"),
            "--codebook", str(fixture / "codebook.yaml"), "--texts", str(fixture / "texts.csv"), "--out", str(tmp_path)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    runs, took = {}, []
    for flag in ("--cooccurrence-multiplicity", "--no-cooccurrence-multiplicity"):
        started = time.monotonic()
        subprocess.run([*base, flag], check=True, env=env, capture_output=True, cwd=config.PROJECT_ROOT)
        took.append(time.monotonic() - started)
        runs[flag] = _digest(tmp_path / "reports")
    assert runs["--cooccurrence-multiplicity"] != runs["--no-cooccurrence-multiplicity"]
    flags = ["--cooccurrence-multiplicity", "--no-cooccurrence-multiplicity"]
    # kills late in the run, while tables and figures are being written
    for attempt, delay in enumerate(min(took) * f for f in (0.55, 0.7, 0.8, 0.88, 0.94, 0.98)):
        flag = flags[attempt % 2]
        process = subprocess.Popen([*base, flag], env=env, cwd=config.PROJECT_ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        outputs = [tmp_path / "reports" / "tables" / "thematic", tmp_path / "reports" / "figures" / "thematic",
                   tmp_path / "reports" / "metrics" / "thematic.json"]
        recover_output_set(outputs, name="thematic")  # what the next run does first
        assert _digest(tmp_path / "reports") in runs.values(), f"mixed outputs after a kill at {delay:.1f} s"
