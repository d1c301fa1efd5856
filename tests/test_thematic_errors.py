"""Bad input to the thematic stage: a clear error naming file, row and field, or a listed warning."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from secmine.cli import app
from secmine.codebook import CodebookError
from secmine.replication import ReplicationError
from secmine.thematic import counting
from secmine.thematic.stage import ThematicInputError, load_inputs, resolve_codebook

FIXTURE = Path(__file__).parent / "fixtures" / "thematic"
CODEBOOK = FIXTURE / "codebook.yaml"
HEADER = "source,id,issue,solution\n"


def _coded(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "coded.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_unknown_code_is_an_error_naming_file_row_field_and_closest_code(tmp_path: Path) -> None:
    path = _coded(tmp_path, "HF Discussion,org/m-1,Data leakage,\nGH Issue,o/r-2,Arbitary code executon,\n")
    with pytest.raises(ReplicationError) as info:
        load_inputs(path, CODEBOOK, "none")
    message = str(info.value)
    assert str(path) in message
    assert "row 3" in message and "field 'issue'" in message
    assert "'Arbitary code executon'" in message
    assert "closest: 'Arbitrary code execution'" in message


def test_unknown_solution_code_names_the_solution_field(tmp_path: Path) -> None:
    path = _coded(tmp_path, "HF Discussion,org/m-1,Data leakage,Data anonymisation please\n")
    with pytest.raises(ReplicationError, match=r"row 2, field 'solution': unknown solution code"):
        load_inputs(path, CODEBOOK, "none")


def test_an_issue_label_in_the_solution_column_is_unknown(tmp_path: Path) -> None:
    path = _coded(tmp_path, "HF Discussion,org/m-1,,Data leakage\n")
    with pytest.raises(ReplicationError, match=r"unknown solution code 'Data leakage'"):
        load_inputs(path, CODEBOOK, "none")


def test_duplicated_post_is_an_error(tmp_path: Path) -> None:
    path = _coded(tmp_path, "HF Discussion,org/m-1,Data leakage,\nHF Discussion,org/m-1,Data leakage,\n")
    with pytest.raises(ReplicationError, match=r"row 3, field 'id': post 'org/m-1' repeats row 2"):
        load_inputs(path, CODEBOOK, "none")


def test_unknown_source_is_an_error(tmp_path: Path) -> None:
    path = _coded(tmp_path, "Reddit,org/m-1,Data leakage,\n")
    with pytest.raises(ReplicationError, match=r"row 2, field 'source'"):
        load_inputs(path, CODEBOOK, "none")


def test_missing_columns_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "coded.csv"
    path.write_text("source,id,issues\nHF Discussion,org/m-1,Data leakage\n", encoding="utf-8")
    with pytest.raises(ReplicationError, match=r"missing column\(s\) 'issue', 'solution'"):
        load_inputs(path, CODEBOOK, "none")


def test_post_missing_from_texts_is_a_listed_warning(tmp_path: Path) -> None:
    path = _coded(tmp_path, "HF Discussion,org/model-a-1,Data leakage,\nHF Discussion,not/there-9,Data leakage,\n")
    sample = load_inputs(path, CODEBOOK, FIXTURE / "texts.csv")
    assert sample.warnings == [f"{path}, row 3: post 'not/there-9' has no text in the posts file"]
    # still counted: a warning, not a silent drop
    assert counting.count_sample(sample).n_posts["total"] == 2


def test_skipping_the_texts_check_is_itself_a_warning(tmp_path: Path) -> None:
    path = _coded(tmp_path, "HF Discussion,org/m-1,Data leakage,\n")
    sample = load_inputs(path, CODEBOOK, "none")
    assert len(sample.warnings) == 1 and "texts not checked" in sample.warnings[0]


def test_bad_parameters_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ThematicInputError, match="coded sample not found"):
        load_inputs(tmp_path / "nope.csv", CODEBOOK, "none")
    with pytest.raises(ThematicInputError, match="a codebook is a .yaml file or a folder"):
        resolve_codebook(FIXTURE / "coded.csv", tmp_path)
    with pytest.raises(ThematicInputError, match="no issue_theme_summary.csv"):
        resolve_codebook(tmp_path, tmp_path)
    texts = tmp_path / "texts.csv"
    texts.write_text("name\nx\n", encoding="utf-8")
    with pytest.raises(ThematicInputError, match="missing column 'post_id'"):
        load_inputs(FIXTURE / "coded.csv", CODEBOOK, texts)
    bad_yaml = tmp_path / "book.yaml"
    bad_yaml.write_text("issue: [not, a, mapping]\n", encoding="utf-8")
    with pytest.raises(CodebookError, match="book.yaml"):
        load_inputs(FIXTURE / "coded.csv", bad_yaml, "none")


def test_counting_refuses_inconsistent_frames() -> None:
    sample = load_inputs(FIXTURE / "coded.csv", CODEBOOK, "none")
    posts, mentions, book = sample.posts, sample.mentions, sample.codebook
    with pytest.raises(counting.CountingError, match="listed more than once"):
        counting.count_all(pd.concat([posts, posts.head(1)]), mentions, book)
    stray = mentions.copy()
    stray.loc[stray.index[0], "code"] = "Not a code"
    with pytest.raises(counting.CountingError, match=r"row 2\): issue code 'Not a code' .* is not in the codebook"):
        counting.count_all(posts, stray, book)
    moved = mentions.copy()
    moved.loc[moved.index[0], "source"] = "GH Issue"
    with pytest.raises(counting.CountingError, match="has source 'GH Issue' but the post says 'HF Discussion'"):
        counting.count_all(posts, moved, book)
    orphan = mentions.copy()
    orphan.loc[orphan.index[0], "post_id"] = "ghost-1"
    with pytest.raises(counting.CountingError, match="not among the coded posts"):
        counting.count_all(posts, orphan, book)


def test_cli_reports_an_unknown_code_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from secmine.cli import run

    path = _coded(tmp_path, "HF Discussion,org/m-1,Data leek,\n")
    code = run(["thematic", "--coded-sample", str(path), "--codebook", str(CODEBOOK), "--texts", "",
                "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "row 2, field 'issue': unknown issue code 'Data leek'" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1 and "Traceback" not in err
    assert not list((tmp_path / "out").rglob("*.csv"))  # nothing half-written


@pytest.mark.parametrize("body", ["", "\n\n", ",,,\n"])
def test_a_coded_csv_without_posts_is_an_error_and_writes_nothing(tmp_path: Path, body: str) -> None:
    """A header-only coded sample would overwrite every RQ2/RQ3 table with zeros: it is refused."""
    path = _coded(tmp_path, body)
    with pytest.raises(ReplicationError, match=rf"{path}.*no coded posts"):
        load_inputs(path, CODEBOOK, "none")
    out = tmp_path / "out"
    tables = out / "reports" / "tables" / "thematic"
    tables.mkdir(parents=True)
    (tables / "rq2_issues.csv").write_text("old\n")
    result = CliRunner().invoke(
        app, ["thematic", "--coded-sample", str(path), "--codebook", str(CODEBOOK), "--texts", "", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "no coded posts" in result.output
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["rq2_issues.csv"]
    assert (tables / "rq2_issues.csv").read_text() == "old\n"
