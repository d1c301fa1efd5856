"""Keyword matching: word boundaries, case, fields, keyword sets, per-platform/kind report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from secmine.detect.keywords import (
    PAPER_KEYWORDS,
    KeywordMatcher,
    match_threads,
    parse_fields,
    parse_keywords,
    run_keywords,
    summarise_matches,
)


def test_word_boundary_and_case() -> None:
    matcher = KeywordMatcher(PAPER_KEYWORDS, word_boundary=True)
    assert matcher.find("A SECURITY problem") == ["security"]
    assert matcher.find("cybersecurity is hard") == []
    assert matcher.find("see CVE-2024-1234 and CWE-79") == ["cve", "cwe"]
    assert matcher.find("security_team") == []  # underscore is a word character
    assert matcher.find("vulnerabilities, vulnerability.") == ["vulnerabilities", "vulnerability"]
    assert matcher.find("") == [] and matcher.find(None) == []
    substring = KeywordMatcher(PAPER_KEYWORDS, word_boundary=False)
    assert substring.find("cybersecurity") == ["security"]
    assert substring.find("cvelib") == ["cve"]


def test_keyword_sets_and_extra_terms() -> None:
    assert parse_keywords("paper") == tuple(sorted(PAPER_KEYWORDS))
    extended = parse_keywords("paper", "Exploit, backdoor")
    assert "exploit" in extended and "backdoor" in extended and "cve" in extended
    assert set(parse_keywords("extended")) > set(PAPER_KEYWORDS)
    assert parse_keywords("none", "jailbreak") == ("jailbreak",)
    with pytest.raises(ValueError, match="unknown"):
        parse_keywords("nope")
    with pytest.raises(ValueError, match="no keywords"):
        parse_keywords("none", "")
    multiword = KeywordMatcher(["prompt injection"], word_boundary=True)
    assert multiword.find("a Prompt Injection attack") == ["prompt injection"]
    assert multiword.find("prompt injections") == []


def test_fields_are_reported_per_thread() -> None:
    threads = pd.DataFrame(
        [
            {"id": "gh:issue:a/b#1", "platform": "github", "kind": "issue", "repo": "a/b", "number": 1,
             "title": "Security hole", "body": "nothing here", "comments": [{"body": "CVE assigned"}]},
            {"id": "gh:issue:a/b#2", "platform": "github", "kind": "issue", "repo": "a/b", "number": 2,
             "title": "Crash", "body": "segfault", "comments": []},
            {"id": "hf:discussion:o/m#3", "platform": "huggingface", "kind": "discussion", "repo": "o/m",
             "number": 3, "title": "Q", "body": "is there a vulnerability?", "comments": None},
        ]
    )
    matches = match_threads(threads, PAPER_KEYWORDS)
    first = matches.set_index("id").loc["gh:issue:a/b#1"]
    assert first["keyword_match"]
    assert first["matched_keywords"] == ["cve", "security"]
    assert first["matched_fields"] == ["title", "comments"]
    assert first["keywords_comments"] == ["cve"]
    assert not matches.set_index("id").loc["gh:issue:a/b#2", "keyword_match"]
    only_title = match_threads(threads, PAPER_KEYWORDS, fields=("title",)).set_index("id")
    assert only_title.loc["gh:issue:a/b#1", "matched_keywords"] == ["security"]
    assert not only_title.loc["hf:discussion:o/m#3", "keyword_match"]
    summary = summarise_matches(matches, PAPER_KEYWORDS)
    gh = summary[(summary["platform"] == "github") & (summary["kind"] == "issue")].iloc[0]
    assert (gh["threads"], gh["matched"], gh["cve"], gh["in_comments"]) == (2, 1, 1, 1)
    total = summary[summary["platform"] == "all"].iloc[0]
    assert (total["threads"], total["matched"], total["vulnerability"]) == (3, 2, 1)
    with pytest.raises(ValueError):
        parse_fields("title,labels")


def test_run_keywords_stage_outputs(tmp_path: Path, fixtures_dir: Path) -> None:
    source = fixtures_dir / "detect" / "threads.jsonl"
    out = tmp_path / "keywords.parquet"
    matches, summary = run_keywords(
        source, out, tables_dir=tmp_path / "tables", figures_dir=tmp_path / "figures",
        metrics=tmp_path / "keywords.json", progress=False,
    )
    written = pd.read_parquet(out)
    assert list(written.columns)[:6] == ["id", "platform", "kind", "repo", "number", "keyword_match"]
    assert len(written) == 24 and written["id"].is_monotonic_increasing
    # the non-security thread whose comment says "not a security issue" is a keyword match (a hard case)
    assert written["keyword_match"].sum() == int(summary.loc[summary["platform"] == "all", "matched"].iloc[0])
    for suffix in ("csv", "md", "tex"):
        assert (tmp_path / "tables" / f"keyword_matches.{suffix}").is_file()
    assert (tmp_path / "figures" / "keyword_matches.png").is_file()
    metrics = json.loads((tmp_path / "keywords.json").read_text())
    assert metrics["threads"] == 24 and metrics["keywords"] == sorted(PAPER_KEYWORDS)
    first = {p.name: p.read_bytes() for p in (tmp_path / "tables").iterdir()}
    run_keywords(source, out, tables_dir=tmp_path / "tables", figures_dir=tmp_path / "figures",
                 metrics=tmp_path / "keywords.json", progress=False)
    assert first == {p.name: p.read_bytes() for p in (tmp_path / "tables").iterdir()}


def test_keywords_command(tmp_path: Path, fixtures_dir: Path) -> None:
    from typer.testing import CliRunner

    from secmine.cli import app

    out = tmp_path / "kw.parquet"
    result = CliRunner().invoke(app, [
        "keywords", "--corpus", str(fixtures_dir / "detect" / "threads.jsonl"), "--matches", str(out),
        "--set", "none", "--extra", "leak,exploit", "--no-word-boundary", "--fields", "title,body",
        "--tables-dir", str(tmp_path / "t"), "--figures-dir", str(tmp_path / "f"), "--metrics", str(tmp_path / "m.json"),
    ])
    assert result.exit_code == 0, result.output
    matches = pd.read_parquet(out)
    assert set(k for ks in matches["matched_keywords"] for k in ks) <= {"leak", "exploit"}
    assert matches["keyword_match"].any()
    assert json.loads((tmp_path / "m.json").read_text())["word_boundary"] is False
