"""Bad input files get one line naming the file, the line or row, the field and the fix (issue 13,
case 10): empty and non-UTF-8 (Windows-1252) CSVs wherever the project reads a CSV, a truncated
.jsonl.gz, empty ids, and ``classify`` errors printed as one line by the command line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from secmine.cli import app
from secmine.schema import SchemaError

CP1252 = "id,text,label\ngh:issue:o/r#1,caf\u00e9 cr\u00e8me \u2013 token leak,1\n".encode("cp1252")


def _analysis_codebook(fixtures_dir: Path) -> Any:
    from secmine.codebook import Codebook

    return Codebook.from_yaml(fixtures_dir / "analysis" / "codebook.yaml")


def _readers(fixtures_dir: Path) -> dict[str, Callable[[Path], Any]]:
    """Every place the project reads a CSV a user (or the replication package) provides."""
    from secmine.analysis.coding import read_decisions
    from secmine.codebook import Codebook
    from secmine.collect.stage import labelled_ids
    from secmine.detect.corpus import load_inputs
    from secmine.detect.labelled import from_security_labels, from_user_csv
    from secmine.replication import load_coded_sample
    from secmine.thematic.stage import resolve_texts

    codebook = _analysis_codebook(fixtures_dir)
    corpus = pd.DataFrame({"id": [], "repo": [], "number": [], "title": [], "body": [], "comments": []})
    return {
        "coded sample (replication loader)": lambda p: load_coded_sample(path=p, codebook=codebook),
        "codebook summary": lambda p: Codebook.from_summary_csvs(p),
        "thematic texts": lambda p: resolve_texts(p, p.parent),
        "coding decisions": lambda p: read_decisions(p, codebook),
        "rehydrate id list": lambda p: labelled_ids(str(p)),
        "classify input": lambda p: load_inputs(p),
        "train data": lambda p: from_user_csv(p),
        "security labels": lambda p: from_security_labels(p, corpus),
    }


READERS = [
    "coded sample (replication loader)",
    "codebook summary",
    "thematic texts",
    "coding decisions",
    "rehydrate id list",
    "classify input",
    "train data",
    "security labels",
]


def _one_line(message: str, path: Path) -> None:
    assert "\n" not in message, message
    assert str(path) in message, message


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("content", [b"", b"\n  \n"], ids=["zero-bytes", "blank-lines"])
def test_an_empty_csv_names_the_file_and_the_fix(
    reader: str, content: bytes, tmp_path: Path, fixtures_dir: Path
) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        _readers(fixtures_dir)[reader](path)
    message = str(info.value)
    _one_line(message, path)
    assert "empty" in message and "header" in message


@pytest.mark.parametrize("reader", READERS)
def test_a_windows_1252_csv_names_file_line_and_the_fix(reader: str, tmp_path: Path, fixtures_dir: Path) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(CP1252)
    with pytest.raises(ValueError) as info:
        _readers(fixtures_dir)[reader](path)
    message = str(info.value)
    _one_line(message, path)
    assert "line 2" in message and "UTF-8" in message and "0xe9" in message


def test_read_csv_reads_utf8_with_or_without_bom(tmp_path: Path) -> None:
    from secmine.inputs import read_csv

    path = tmp_path / "ok.csv"
    path.write_bytes("\ufeffid,text\n1,caf\u00e9\n".encode())
    frame = read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["id", "text"] and frame["text"].tolist() == ["caf\u00e9"]
    path.write_text("id,text\n", encoding="utf-8")
    assert read_csv(path, dtype=str).empty  # a header alone is a valid (empty) table


# -- a truncated .jsonl.gz ----------------------------------------------------------------------


def _truncated_snapshot(tmp_path: Path, fixtures_dir: Path) -> Path:
    lines = (fixtures_dir / "collect" / "snapshot.jsonl").read_bytes()
    data = gzip.compress(lines, mtime=0)
    path = tmp_path / "issues.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_jsonl_gz_names_the_file_and_the_line(tmp_path: Path, fixtures_dir: Path) -> None:
    from secmine.snapshot import read_snapshot

    path = _truncated_snapshot(tmp_path, fixtures_dir)
    with pytest.raises(SchemaError) as info:
        list(read_snapshot(path))
    message = str(info.value)
    _one_line(message, path)
    assert "line" in message and "truncated" in message


def test_a_damaged_gzip_header_names_the_file(tmp_path: Path) -> None:
    from secmine.snapshot import read_snapshot

    path = tmp_path / "issues.jsonl.gz"
    path.write_bytes(b"this is not gzip\n")
    with pytest.raises(SchemaError, match=rf"{path}: not a gzip file"):
        list(read_snapshot(path))


def test_collect_prints_one_line_for_a_truncated_snapshot_not_aborted(tmp_path: Path, fixtures_dir: Path) -> None:
    path = _truncated_snapshot(tmp_path, fixtures_dir)
    result = CliRunner().invoke(
        app,
        ["collect", "--snapshot", str(path), "--no-include-replication", "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Aborted" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "truncated" in errors[0]


# -- classify prints one line ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    from secmine.detect.models import ModelSettings, get_family
    from secmine.detect.train import save_model

    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    model = get_family("tfidf_logreg")(None, ModelSettings(seed=0)).fit(data["text"].tolist(), data["label"].to_numpy())
    directory = tmp_path_factory.mktemp("model") / "security"
    save_model(model, directory, {"family": model.family, "params": model.params, "settings": model.settings.to_dict(),
                                  "threshold": 0.5, "text": {"max_chars": 4000}})  # fmt: skip
    return directory


def _classify(model_dir: Path, source: Path, tmp_path: Path) -> Any:
    return CliRunner().invoke(
        app, ["classify", "--model-dir", str(model_dir), "--input", str(source), "--output", str(tmp_path / "out.csv"),
              "--out", str(tmp_path / "scratch")],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "empty"),
        ("cp1252.csv", CP1252, "line 2"),
        ("noid.csv", b"id,text\nx1,token leak\n,pickle load\n", "row 3, field 'id': empty"),
    ],
    ids=["empty", "cp1252", "empty-id"],
)
def test_classify_prints_one_line_for_bad_input(
    model_dir: Path, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    result = _classify(model_dir, source, tmp_path)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert str(source) in result.output and expected in result.output
    assert not (tmp_path / "out.csv").exists()


def test_classify_without_a_model_prints_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,token leak\n", encoding="utf-8")
    result = _classify(tmp_path / "no-model", source, tmp_path)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "no-model: not found" in result.output and "secmine train" in result.output


def test_classify_a_truncated_jsonl_gz_prints_one_line(model_dir: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    source = _truncated_snapshot(tmp_path, fixtures_dir)
    result = _classify(model_dir, source, tmp_path)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and str(source) in result.output


# -- empty ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "gh:issue:#3", "gh::o/r#3", ":issue:o/r#3", "gh:issue:o/r#", "  "])
def test_empty_parts_of_a_thread_id_are_refused(value: str) -> None:
    from secmine.schema import parse_thread_id

    with pytest.raises(SchemaError, match="is not of the form"):
        parse_thread_id(value)


def test_an_empty_id_in_a_rehydrate_list_names_the_row(tmp_path: Path) -> None:
    from secmine.collect.stage import labelled_ids

    path = tmp_path / "ids.csv"
    path.write_text("thread_id\ngh:issue:o/r#1\n\n   \n", encoding="utf-8")
    assert labelled_ids(str(path)) == ["gh:issue:o/r#1"]  # blank lines are not ids
    path.write_text('thread_id,note\ngh:issue:o/r#1,a\n"",b\n', encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{path}, row 3, field 'thread_id': empty"):
        labelled_ids(str(path))


def test_an_empty_snapshot_field_is_named(tmp_path: Path) -> None:
    from secmine.snapshot import read_snapshot

    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"platform": "github", "kind": "issue", "repo": " ", "number": 1}) + "\n")
    with pytest.raises(SchemaError, match=rf"{path}, line 1, field 'repo': missing"):
        list(read_snapshot(path))
