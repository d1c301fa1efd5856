"""RQ1 tables on small hand-made frames: counts, intervals, growth, concentration, CVE/CWE."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.analysis import rq1
from secmine.analysis.data import AnalysisInputError, check_classified, thread_texts
from secmine.analysis.rq1 import RQ1Params, run_rq1
from secmine.schema import thread_id


def _row(
    platform: str, kind: str, repo: str, number: int, created: str | None, label: int, keyword: bool
) -> dict:
    return {
        "id": thread_id(platform, kind, repo, number),
        "platform": platform,
        "kind": kind,
        "repo": repo,
        "number": number,
        "created_at": created,
        "keyword_match": keyword,
        "probability": 0.9 if label else 0.1,
        "label": label,
    }


def small_classified() -> pd.DataFrame:
    rows = []
    # GH issues, repo o/a: 10 threads, two a month Jan-May 2024; security: #1, #2, #3, #4
    for n in range(1, 11):
        month = (n - 1) // 2 + 1
        rows.append(
            _row(
                "github", "issue", "o/a", n, f"2024-0{month}-1{n % 2}T00:00:00Z", int(n <= 4), n in (1, 2, 9)
            )
        )
    # GH issues, repo o/b: 5 threads; security: #1
    for n in range(1, 6):
        rows.append(_row("github", "issue", "o/b", n, f"2024-03-0{n}T00:00:00Z", int(n == 1), False))
    # HF discussions: org/m1 4 threads (2 security), org/m2 2 threads (1 security)
    for n in range(1, 5):
        rows.append(
            _row("huggingface", "discussion", "org/m1", n, "2024-02-01T00:00:00Z", int(n <= 2), n == 1)
        )
    for n in range(1, 3):
        rows.append(
            _row("huggingface", "discussion", "org/m2", n, "2024-04-01T00:00:00Z", int(n == 1), False)
        )
    # one undated GH discussion (a replication post), security
    rows.append(_row("github", "discussion", "o/a", 7, None, 1, True))
    return pd.DataFrame(rows)


def small_corpus(classified: pd.DataFrame) -> pd.DataFrame:
    texts = {
        thread_id("github", "issue", "o/a", 1): (
            "Log4Shell",
            "See CVE-2021-44228 and cve-2021-44228.",
            ["CWE-502 here"],
        ),
        thread_id("github", "issue", "o/a", 2): ("XSS", "CWE-79 and CWE-89", ["also CVE-2023-1234"]),
        thread_id("github", "issue", "o/b", 1): ("dep", "bump for CVE-2023-1234 please", []),
        thread_id("github", "issue", "o/a", 5): ("not security", "mentions CVE-2020-0001 in passing", []),
        thread_id("huggingface", "discussion", "org/m1", 1): (
            "pickle",
            "unsafe pickle; not a CVE-12-1 id",
            [],
        ),
    }
    rows = []
    for record in classified.to_dict(orient="records"):
        title, body, comments = texts.get(record["id"], ("t", "b", []))
        rows.append(
            {
                "id": record["id"],
                "platform": record["platform"],
                "kind": record["kind"],
                "repo": record["repo"],
                "number": record["number"],
                "title": title,
                "body": body,
                "comments": [{"author": "x", "body": c, "created_at": None} for c in comments],
                "created_at": record["created_at"],
                "url": "",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> rq1.RQ1Result:
    out = tmp_path_factory.mktemp("rq1")
    classified = small_classified()
    return run_rq1(
        "unused",
        None,
        classified=classified,
        corpus=small_corpus(classified),
        tables_dir=out / "tables",
        figures_dir=out / "figures",
        metrics_path=out / "rq1.json",
        params=RQ1Params(min_growth_months=3, top_n=5),
    )


def test_security_by_source_counts_and_wilson(result: rq1.RQ1Result) -> None:
    table = result.tables["security_by_source"].set_index("source")
    assert list(table.index) == ["HF Discussion", "GH Issue", "GH Discussion", "all"]  # paper order, all last
    assert (table.loc["GH Issue", "threads"], table.loc["GH Issue", "security"]) == (15, 5)
    assert (table.loc["HF Discussion", "threads"], table.loc["HF Discussion", "security"]) == (6, 3)
    assert (table.loc["all", "threads"], table.loc["all", "security"]) == (22, 9)
    # Wilson 95% for 5/15 by hand: centre (1/3 + 3.8415/30) / (1 + 3.8415/15)
    z = 1.959963984540054
    p, n = 5 / 15, 15
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert table.loc["GH Issue", "ci_low"] == pytest.approx(centre - half, abs=1e-6)
    assert table.loc["GH Issue", "ci_high"] == pytest.approx(centre + half, abs=1e-6)


def test_keyword_vs_classifier(result: rq1.RQ1Result) -> None:
    table = result.tables["keyword_vs_classifier"].set_index("source")
    gh = table.loc["GH Issue"]
    # keyword on o/a #1, #2 (security) and #9 (not): both 2, keyword only 1;
    # security without keyword o/a #3, #4, o/b #1: classifier only 3
    assert (gh["keyword"], gh["classifier"], gh["both"], gh["keyword_only"], gh["classifier_only"]) == (
        3,
        5,
        2,
        1,
        3,
    )
    assert gh["neither"] == 15 - 6
    assert gh["confirmed_share"] == pytest.approx(2 / 3, abs=1e-6)
    assert table.loc["all", "keyword"] == 5


def test_monthly_counts_fill_gaps_and_skip_undated(result: rq1.RQ1Result) -> None:
    monthly = result.tables["security_monthly"]
    gh = monthly[monthly["source"] == "GH Issue"].set_index("month")
    assert list(gh.index) == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    assert gh.loc["2024-01", "security"] == 2 and gh.loc["2024-03", "threads"] == 7
    hf = monthly[monthly["source"] == "HF Discussion"].set_index("month")
    assert hf.loc["2024-03", "threads"] == 0  # gap inside the span, listed with zero
    assert "GH Discussion" not in set(monthly["source"])  # its only thread has no date
    assert any("no creation date" in note for note in result.notes)


def test_concentration_and_top_projects(result: rq1.RQ1Result) -> None:
    top = result.tables["top_projects"]
    # security per project: github o/a 4 issues + 1 discussion = 5, o/b 1; HF org/m1 2, org/m2 1
    assert list(top["repo"]) == ["o/a", "org/m1", "o/b", "org/m2"]
    assert list(top["security"]) == [5, 2, 1, 1]
    assert top["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert top["url"].iloc[1] == "https://huggingface.co/org/m1"
    conc = result.tables["concentration"].set_index("platform")
    # GitHub: values (5, 1): G = 2*(1*1 + 2*5)/(2*6) - 3/2 = 22/12 - 1.5 = 1/3
    assert conc.loc["GitHub", "gini"] == pytest.approx(1 / 3, abs=1e-6)
    assert conc.loc["Hugging Face", "gini"] == pytest.approx(2 * (1 + 4) / (2 * 3) - 1.5, abs=1e-6)


def test_cve_cwe_identifiers(result: rq1.RQ1Result) -> None:
    summary = result.tables["identifiers"].set_index("source")
    # security threads with a CVE: o/a #1, o/a #2, o/b #1 (o/a #5 is not security; CVE-12-1 is no id)
    assert summary.loc["GH Issue", "with_cve"] == 3
    assert summary.loc["GH Issue", "distinct_cve"] == 2
    assert summary.loc["GH Issue", "with_cwe"] == 2
    assert summary.loc["HF Discussion", "with_cve"] == 0
    top = result.tables["top_cve"]
    assert list(top["identifier"]) == ["CVE-2023-1234", "CVE-2021-44228"]
    assert list(top["threads"]) == [2, 1]
    cwe = result.tables["top_cwe"]
    assert set(cwe["identifier"]) == {"CWE-502", "CWE-79", "CWE-89"}
    assert rq1.find_identifiers("cve-2024-12345, CVE-2024-12345; CWE-1333") == (
        ["CVE-2024-12345"],
        ["CWE-1333"],
    )


def test_growth_rate_table_on_synthetic_exponential() -> None:
    rows = []
    number = 0
    months = pd.period_range("2022-01", "2023-12", freq="M")
    for t, month in enumerate(months):
        k = int(round(5 * math.exp(0.1 * t)))
        for i in range(k + 50):
            number += 1
            day = 15 if month == months[-1] else 1 + i % 28  # the last month ends mid-month
            rows.append(
                _row("github", "issue", "o/a", number, f"{month}-{day:02d}T00:00:00Z", int(i < k), False)
            )
    classified = check_classified(pd.DataFrame(rows))
    table = rq1.growth_table(classified, RQ1Params())
    fit = table[(table["source"] == "GH Issue") & (table["measure"] == "security threads")].iloc[0]
    assert fit["last_month"] == "2023-11"  # December is incomplete and dropped
    assert fit["months"] == 23
    assert fit["beta_per_month"] == pytest.approx(0.1, abs=0.005)
    assert fit["annual_ci_low"] < math.expm1(1.2) < fit["annual_ci_high"]
    share = table[(table["source"] == "GH Issue") & (table["measure"] == "security share")].iloc[0]
    assert share["annual_rate"] > 0  # the share grows too (non-security threads are constant)
    short = rq1.growth_table(classified, RQ1Params(growth_start="2023-09", min_growth_months=6))
    assert short.iloc[0]["note"] == "too little data"


def test_hub_model_metadata_tables(tmp_path: Path) -> None:
    models = pd.DataFrame(
        {
            "repo_type": ["model", "model"],
            "repo_id": ["org/m1", "org/m2"],
            "pipeline_tag": ["text-generation", "text-classification"],
            "base_models": [None, json.dumps({"relation": "finetune", "models": [{"id": "org/m1"}]})],
            "card_data": [json.dumps({"license": "mit"}), None],
        }
    )
    path = tmp_path / "_hf_models.parquet"
    models.to_parquet(path)
    loaded = rq1.load_models(path)
    assert loaded is not None
    assert loaded.set_index("repo").loc["org/m2", "base_model"] == "org/m1"
    classified = check_classified(small_classified())
    tables = rq1.hf_model_tables(classified, loaded)
    task = tables["hf_by_pipeline_task"].set_index("pipeline_task")
    assert (task.loc["text-generation", "threads"], task.loc["text-generation", "security"]) == (4, 2)
    role = tables["hf_base_vs_downstream"].set_index("model_role")
    assert role.loc["downstream (finetune)", "security"] == 1 and role.loc["base", "threads"] == 4
    assert rq1.load_models(tmp_path / "absent.parquet") is None
    pd.DataFrame({"repo_id": pd.Series([], dtype=str)}).to_parquet(tmp_path / "empty.parquet")
    assert rq1.load_models(tmp_path / "empty.parquet") is None  # a snapshot corpus writes an empty table


def test_missing_metadata_is_said(result: rq1.RQ1Result) -> None:
    assert any("No Hugging Face model metadata" in note for note in result.notes)
    assert result.metrics["hf_model_metadata"] is False
    assert "hf_by_pipeline_task" not in result.tables


def test_outputs_written_and_deterministic(tmp_path: Path) -> None:
    classified = small_classified()
    corpus = small_corpus(classified)
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        run_rq1(
            "unused",
            None,
            classified=classified.sample(frac=1, random_state=3 if run == "a" else 4),
            corpus=corpus,
            tables_dir=out / "tables",
            figures_dir=out / "figures",
            metrics_path=out / "rq1.json",
            params=RQ1Params(min_growth_months=3),
        )
        files = sorted(p for p in out.rglob("*") if p.is_file())
        digests.append({p.relative_to(out).as_posix(): p.read_bytes() for p in files})
    assert digests[0].keys() == digests[1].keys()
    assert {
        "tables/security_by_source.csv",
        "tables/security_by_source.md",
        "figures/growth.png",
        "figures/lorenz.svg",
        "rq1.json",
    } <= set(digests[0])
    for name in digests[0]:
        assert digests[0][name] == digests[1][name], name
    # tables never show thread text
    text = b"".join(v for k, v in digests[0].items() if k.startswith("tables/"))
    assert b"in passing" not in text and b"unsafe pickle" not in text


def test_bad_classified_input_names_row_and_field() -> None:
    frame = small_classified()
    frame.loc[3, "label"] = 2
    with pytest.raises(AnalysisInputError, match=r"row 3, field 'label'"):
        check_classified(frame, where="classified.parquet")
    frame = small_classified().drop(columns="probability")
    with pytest.raises(AnalysisInputError, match="missing column"):
        check_classified(frame)
    frame = small_classified()
    frame.loc[5, "created_at"] = "yesterday"
    with pytest.raises(AnalysisInputError, match=r"row 5, field 'created_at'"):
        check_classified(frame)


def test_thread_texts_joins_title_body_comments() -> None:
    classified = small_classified()
    texts = thread_texts(small_corpus(classified), [thread_id("github", "issue", "o/a", 1)])
    assert len(texts) == 1
    assert texts["text"].iloc[0] == "Log4Shell See CVE-2021-44228 and cve-2021-44228. CWE-502 here"


@pytest.mark.shared
def test_paper_distribution_from_replication_ids(external_root: Path, tmp_path: Path) -> None:
    classified = small_classified()
    out = tmp_path / "paper"
    result = run_rq1(
        "unused",
        None,
        classified=classified,
        corpus=small_corpus(classified),
        replication_root=external_root / "ai_sec_dev",
        tables_dir=out / "tables",
        figures_dir=out / "figures",
        metrics_path=None,
        params=RQ1Params(min_growth_months=3),
    )
    paper = result.tables["paper_by_source"].set_index("source")
    assert paper.loc["HF Discussion", "security"] == 8421  # the paper's HF security discussions
    assert paper.loc["GH Discussion", "security"] > 0
    conc = result.tables["paper_concentration"].set_index("source")
    assert 0 < conc.loc["HF Discussion", "gini"] < 1
    top = result.tables["paper_top_projects"]
    assert top["security"].is_monotonic_decreasing
    assert (out / "figures" / "paper_lorenz.png").is_file()
    assert np.isclose(conc.loc["all", "security"], paper["security_distinct"].sum())
    # google/jax and jax-ml/jax list the same 129 discussions: merged, counted once
    renamed = result.tables["paper_renamed_repositories"].set_index("old")
    assert renamed.loc["google/jax", "new"] == "jax-ml/jax" and renamed.loc["google/jax", "shared_numbers"] == 129
    assert paper.loc["GH Discussion", "listed_twice"] >= 129
    assert paper.loc["HF Discussion", "listed_twice"] == 0
    assert "google/jax" not in set(top["repo"]) and (top["repo"] == "jax-ml/jax").sum() == 1
    assert result.metrics["paper_renamed_repositories"] == len(renamed)


# -- the counted path: the classified file streamed in batches gives the per-thread result ------------


def _with_renames_and_selection(classified: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The small frame plus repositories listed under two names (a case variant, a move with shared
    numbers) and replication posts, so every branch of the counted path is crossed."""
    rows = [_row("github", "issue", "O/A", n, f"2024-0{n}-02T00:00:00Z", int(n == 1), False) for n in (1, 2)]
    rows += [_row("github", "issue", "old-org/tool", n, f"2024-02-0{n}T00:00:00Z", int(n < 3), n == 1)
             for n in range(1, 5)]
    rows += [_row("github", "issue", "new-org/tool", n, f"2024-03-0{n}T00:00:00Z", int(n == 2), False)
             for n in range(1, 7)]
    rows += [_row("github", "issue", "google/jax", 3, "2024-05-31T12:00:00Z", 1, True)]
    frame = pd.concat([classified, pd.DataFrame(rows)], ignore_index=True)
    corpus = small_corpus(frame)
    corpus["source"] = ["replication:theme/data.xlsx" if (k == "discussion" and r == "o/a") else "snapshot:x"
                        for k, r in zip(corpus["kind"], corpus["repo"])]
    return frame, corpus


def _write_corpus_folder(corpus: pd.DataFrame, path: Path) -> None:
    from secmine.collect.corpus import write_corpus
    from secmine.schema import Comment, Thread

    threads = [
        Thread(platform=r["platform"], kind=r["kind"], repo=r["repo"], number=int(r["number"]), title=r["title"],
               body=r["body"], url=r["url"], source=r["source"],
               created_at=r["created_at"] if isinstance(r["created_at"], str) else None,
               comments=tuple(Comment(author=c["author"], body=c["body"]) for c in r["comments"]))
        for r in corpus.to_dict(orient="records")
    ]
    write_corpus(threads, path)


def test_the_counted_file_gives_the_per_thread_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    classified, corpus = _with_renames_and_selection(small_classified())
    params = RQ1Params(min_growth_months=3, top_n=5)
    whole = run_rq1("unused", None, classified=classified, corpus=corpus, write=False, params=params)
    path = tmp_path / "classified.parquet"
    classified.sample(frac=1.0, random_state=0).to_parquet(path, index=False)  # any row order
    monkeypatch.setattr(rq1, "CLASSIFIED_BATCH_ROWS", 4)  # many batches: counts combined across them
    streamed = run_rq1(path, None, corpus=corpus, write=False, params=params)
    assert whole.tables.keys() == streamed.tables.keys()
    for name in whole.tables:
        pd.testing.assert_frame_equal(whole.tables[name], streamed.tables[name], check_dtype=False, obj=name)
    assert whole.metrics == streamed.metrics
    # O/A -> o/a (case), old-org/tool -> new-org/tool (shared numbers), google/jax -> jax-ml/jax (known)
    assert streamed.metrics["renamed_repositories_merged"] == 3
    assert streamed.metrics["selected_threads"] == 1
    # the same tables as the module's functions over one row per thread (weights 1)
    from secmine.analysis import renames

    frame = check_classified(classified)
    frame["origin"] = np.where(frame["id"].isin(rq1.selected_ids(corpus) or set()), rq1.SELECTED_ORIGINS[0], "")
    for name, table in (
        ("security_by_source", rq1.security_by_source(frame)),
        ("keyword_vs_classifier", rq1.keyword_vs_classifier(frame)),
        ("security_monthly", rq1.monthly_counts(frame)),
        ("growth_rate", rq1.growth_table(frame, params)),
    ):
        pd.testing.assert_frame_equal(table, streamed.tables[name], check_dtype=False, obj=name)
    merged = renames.merge_renamed(frame[~rq1.selected_mask(frame)], id_column="id")[0]
    pd.testing.assert_frame_equal(rq1.top_projects(rq1.project_counts(merged), 5), streamed.tables["top_projects"],
                                  check_dtype=False)
    top = streamed.tables["top_projects"].set_index("repo")
    assert "O/A" not in top.index and "old-org/tool" not in top.index and "google/jax" not in top.index
    assert int(top.loc["jax-ml/jax", "security"]) == 1  # a known rename, the new name not in the data


def test_a_corpus_folder_streams_the_security_texts(tmp_path: Path) -> None:
    classified, corpus = _with_renames_and_selection(small_classified())
    params = RQ1Params(min_growth_months=3, top_n=5)
    in_memory = run_rq1("unused", None, classified=classified, corpus=corpus, write=False, params=params)
    _write_corpus_folder(corpus, tmp_path / "corpus")
    streamed = run_rq1("unused", tmp_path / "corpus", classified=classified, write=False, params=params)
    for name in ("identifiers", "top_cve", "top_cwe", "security_by_source"):
        pd.testing.assert_frame_equal(in_memory.tables[name], streamed.tables[name], check_dtype=False, obj=name)
    assert streamed.tables["identifiers"].set_index("source").loc["all", "with_cve"] == 3  # o/a #1, #2, o/b #1


def test_rename_candidates_find_what_merging_everything_finds() -> None:
    from secmine.analysis import renames

    classified, _ = _with_renames_and_selection(small_classified())
    frame = check_classified(classified)
    everything = renames.merge_renamed(frame)[1]
    candidates = renames.candidate_repositories(frame)
    assert ("github", "o/b") not in candidates and ("huggingface", "org/m1") not in candidates
    chosen = frame[[(p, r) in candidates for p, r in zip(frame["platform"], frame["repo"])]]
    only = renames.merge_renamed(chosen)[1]
    assert only.renames == everything.renames and only.threads_dropped == everything.threads_dropped
