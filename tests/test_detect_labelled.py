"""The labelled set: one text representation for every source, provenance, dedup, weak negatives,
leakage-free splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.detect.labelled import (
    LabelledError,
    assemble_labelled,
    combine,
    from_security_labels,
    from_user_csv,
    weak_negatives,
)
from secmine.detect.splits import SplitError, assign_splits, check_no_leakage, fold_indices
from secmine.text import canonical_text, thread_text


def _corpus(fixtures_dir: Path) -> pd.DataFrame:
    from secmine.detect.corpus import load_threads

    return load_threads(fixtures_dir / "detect" / "threads.jsonl")


def test_flattened_and_structured_texts_get_the_same_representation() -> None:
    # the replication package's flattened form (title and body joined by a space, escapes, doubled
    # backslashes, \uXXXX) and a structured thread with real newlines give the same canonical text
    flattened = "Crash on load Path C:\\\\Users\\\\me fails\\r\\n\\r\\nprogress \\u2588\\u2588 done\\n<!-- hint -->thanks"
    structured = thread_text("Crash on load", "Path C:\\Users\\me fails\r\n\r\nprogress ██ done", ["<!-- hint -->thanks"])
    assert canonical_text(flattened) == structured == "Crash on load Path C:\\Users\\me fails progress ██ done thanks"
    assert canonical_text("x" * 50, max_chars=10) == "x" * 10
    assert canonical_text(None) == ""
    assert canonical_text(canonical_text(flattened)) == canonical_text(flattened)


def test_security_labels_join_the_corpus_with_provenance(tmp_path: Path, fixtures_dir: Path) -> None:
    corpus = _corpus(fixtures_dir)
    labels = tmp_path / "security_labels.csv"
    labels.write_text("id,label,theme\nacme/llm-app#1,1,model\norg/vision-lib#21,0,\nnobody/none#5,1,\n")
    notes: list[str] = []
    frame = from_security_labels(labels, corpus, notes=notes)
    assert list(frame["thread_id"]) == ["gh:pull_request:acme/llm-app#1", "gh:pull_request:org/vision-lib#21"]
    assert list(frame["label"]) == [1, 0]
    assert frame["origin"].tolist() == ["ai_issues/security_labels.csv:row 2", "ai_issues/security_labels.csv:row 3"]
    assert frame["text"].iloc[0].startswith("Remote code execution via pickle")
    assert any("1 of 3" in n for n in notes)
    labels.write_text("id,label,theme\nacme/llm-app#1,maybe,\n")
    with pytest.raises(LabelledError, match=r"row 2, field 'label'"):
        from_security_labels(labels, corpus)
    labels.write_text("id,label\nacme-llm-app,1\n")
    with pytest.raises(LabelledError, match=r"row 2, field 'id'"):
        from_security_labels(labels, corpus)


def test_user_csv_errors_name_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("body,is_sec\nhello there,1\n,0\n")
    with pytest.raises(LabelledError, match="missing column"):
        from_user_csv(path)
    with pytest.raises(LabelledError, match=r"mine.csv, row 3, field 'body': empty text"):
        from_user_csv(path, text_column="body", label_column="is_sec")
    path.write_text("body,is_sec\nhello there,yes\nbye,no\n")
    frame = from_user_csv(path, text_column="body", label_column="is_sec")
    assert list(frame["label"]) == [1, 0] and set(frame["source"]) == {"user"}


def test_weak_negatives_are_seeded_flagged_and_exclude_labelled(fixtures_dir: Path) -> None:
    corpus = _corpus(fixtures_dir)
    from secmine.detect.keywords import match_threads

    match = match_threads(corpus).set_index("id")["keyword_match"]
    a = weak_negatives(corpus, match, 5, seed=3, exclude={"gh:issue:acme/llm-app#14"})
    b = weak_negatives(corpus, match, 5, seed=3, exclude={"gh:issue:acme/llm-app#14"})
    c = weak_negatives(corpus, match, 5, seed=4)
    assert a.equals(b) and not a["thread_id"].equals(c["thread_id"])
    assert len(a) == 5 and a["weak"].all() and (a["label"] == 0).all()
    assert not match.reindex(a["thread_id"]).any()
    assert "gh:issue:acme/llm-app#14" not in set(a["thread_id"])


def test_combine_keeps_priority_and_drops_duplicates() -> None:
    from secmine.detect.labelled import _frame, _row

    high = _frame([_row(source="replication_coded", origin="x:1", text="same thread", label=1, thread_id="t1"),
                   _row(source="replication_coded", origin="x:2", text="shared text", label=1, thread_id="t2")])
    low = _frame([_row(source="security_labels", origin="y:1", text="other text", label=0, thread_id="t1"),
                  _row(source="security_labels", origin="y:2", text="Shared  text", label=1, thread_id="t3"),
                  _row(source="security_labels", origin="y:3", text="fresh", label=0, thread_id="t4")])
    low["text_hash"] = [r for r in low["text_hash"]]
    low.loc[1, "text_hash"] = high.loc[1, "text_hash"]  # same canonical text under another id
    result = combine([high, low])
    assert result.frame["thread_id"].tolist() == ["t1", "t2", "t4"]
    assert result.frame.set_index("thread_id").loc["t1", "label"] == 1
    assert any("labelled differently" in n for n in result.notes)
    assert sorted(result.dropped["reason"]) == sorted(
        ["thread listed by a higher-priority source", "same text as a higher-priority row"]
    )


def test_assemble_requires_what_sources_need() -> None:
    with pytest.raises(LabelledError, match="need a corpus"):
        assemble_labelled(sources="security_labels")
    with pytest.raises(LabelledError, match="unknown"):
        assemble_labelled(sources="bogus")


def _random_labelled(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n // 3, size=n)  # several rows per thread
    labels = (groups % 3 == 0).astype(int)  # label constant within a thread
    sources = np.where(labels == 1, "replication_coded", np.where(groups % 2 == 0, "security_labels", "weak_negatives"))
    return pd.DataFrame({"group": [f"g{g}" for g in groups], "label": labels, "source": sources,
                         "text_hash": [f"h{g}" for g in groups], "uid": [f"u{i}" for i in range(n)]})


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_splits_never_put_a_thread_in_two_folds(seed: int) -> None:
    frame = _random_labelled(seed)
    split = assign_splits(frame, test_size=0.2, n_folds=4, seed=seed)
    per_group = split.groupby("group")["fold"].nunique()
    assert (per_group == 1).all()
    test_groups = set(split.loc[split["split"] == "test", "group"])
    train_groups = set(split.loc[split["split"] == "train", "group"])
    assert not test_groups & train_groups
    assert set(split.loc[split["split"] == "train", "fold"]) == {0, 1, 2, 3}
    assert (split.loc[split["split"] == "test", "fold"] == -1).all()
    share = (split["split"] == "test").mean()
    assert 0.1 < share < 0.3
    for _, part in split[split["split"] == "train"].groupby("fold"):
        assert part["label"].nunique() == 2  # stratified: both labels in every fold
    for fit, val in fold_indices(split):
        assert not set(fit) & set(val)
    again = assign_splits(frame, test_size=0.2, n_folds=4, seed=seed)
    assert again[["split", "fold"]].equals(split[["split", "fold"]])


def test_leakage_check_catches_a_shared_text() -> None:
    frame = pd.DataFrame({"group": ["a", "b"], "text_hash": ["h", "h"], "fold": [0, 1]})
    with pytest.raises(SplitError, match="text_hash"):
        check_no_leakage(frame)
    with pytest.raises(SplitError, match="both labels"):
        assign_splits(pd.DataFrame({"group": list("abcdefghij"), "label": [1] * 10}), n_folds=2)


@pytest.mark.shared
def test_replication_positives_and_hard_cases_from_the_real_data(external_root: Path) -> None:
    from secmine.detect.corpus import load_threads
    from secmine.detect.labelled import from_replication_posts

    posts = from_replication_posts(external_root / "ai_sec_dev")
    assert len(posts) > 100 and (posts["label"] == 1).all()
    assert posts["origin"].iloc[0] == "ai_sec_dev/theme/data.xlsx:row 2"
    # no escape residue of the spreadsheet form survives canonicalisation
    assert not posts["text"].str.contains(r"\\u[0-9a-f]{4}|\\\\|\\n", regex=True).any()
    assert posts["text"].str.len().max() <= 4000
    ids = pd.read_csv(external_root / "ai_issues" / "security_labels.csv")["id"].head(20)
    corpus = load_threads(external_root / "ai_issues" / "issues.jsonl.gz")
    wanted = corpus[(corpus["repo"] + "#" + corpus["number"].astype(str)).isin(set(ids))]
    hard = from_security_labels(external_root / "ai_issues" / "security_labels.csv", wanted)
    assert len(hard) == 20 and set(hard["label"]) <= {0, 1}


def _frame_for_splits(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-01-01", periods=n, freq="D", tz="UTC")
    frame = pd.DataFrame({
        "uid": [f"u{i}" for i in range(n)],
        "group": [f"g{i // 2}" for i in range(n)],  # two rows per thread
        "label": (rng.random(n) < 0.3).astype(int),
        "source": "user",
        "text_hash": [f"h{i}" for i in range(n)],
        "repo": [f"org/r{(i // 2) % 12}" for i in range(n)],
        "created_at": [d.strftime("%Y-%m-%dT%H:%M:%SZ") for d in days],
    })
    frame.loc[[0, 1], "created_at"] = None  # an undated thread: training only
    return frame


def test_time_split_tests_on_the_newest_threads_and_project_split_holds_out_repositories() -> None:
    from secmine.detect.splits import repeated_folds

    frame = _frame_for_splits()
    timed = assign_splits(frame, test_size=0.5, n_folds=3, seed=1, strategy="time")
    dates = pd.to_datetime(timed["created_at"], utc=True)
    test, train = timed[timed["split"] == "test"], timed[timed["split"] == "train"]
    assert dates[test.index].min() > dates[train.index].max()  # the future is tested
    assert abs(len(test) - 59) <= 2 and set(timed.loc[[0, 1], "split"]) == {"train"}
    assert (timed.groupby("group")["split"].nunique() == 1).all()
    project = assign_splits(frame, test_size=0.25, n_folds=3, seed=1, strategy="project")
    held = set(project.loc[project["split"] == "test", "repo"])
    assert held and held.isdisjoint(set(project.loc[project["split"] == "train", "repo"]))
    train_rows = project[project["split"] == "train"]
    assert (train_rows.groupby("repo")["fold"].nunique() == 1).all()  # folds grouped by repository too
    partitions = repeated_folds(project, repeats=3, seed=1, strategy="project")
    assert len(partitions) == 3 and partitions[0] == fold_indices(project)
    assert partitions[1] != partitions[0]
    repos = train_rows["repo"].to_numpy()
    for partition in partitions:
        for fit, val in partition:
            assert set(repos[fit]).isdisjoint(set(repos[val]))
    with pytest.raises(SplitError, match="created_at"):
        assign_splits(frame.drop(columns=["created_at"]), strategy="time")
    with pytest.raises(SplitError, match="train.split"):
        assign_splits(frame, strategy="weekly")


def test_user_csv_dates_repos_and_keyword_matches(tmp_path: Path) -> None:
    from secmine.detect.labelled import mark_keyword_match

    path = tmp_path / "l.csv"
    path.write_text("id,text,label,created_at,repo\n"
                    "1,A CVE in the loader,1,2024-05-01T10:00:00+02:00,acme/a\n"
                    "2,Typo in the docs,0,2024-05-02,acme/b\n"
                    "3,cybersecurity newsletter,0,,\n")
    frame = from_user_csv(path)
    assert frame["created_at"].tolist() == ["2024-05-01T08:00:00Z", "2024-05-02T00:00:00Z", None]
    assert frame["repo"].tolist() == ["acme/a", "acme/b", None]
    marked = mark_keyword_match(frame)
    assert marked["keyword_match"].tolist() == [True, False, False]  # whole words by default
    assert mark_keyword_match(frame, word_boundary=False)["keyword_match"].tolist() == [True, False, True]
    by_thread = pd.Series({"2": True})
    assert mark_keyword_match(frame.assign(thread_id=["1", "2", "3"]), thread_matches=by_thread)["keyword_match"].tolist() \
        == [True, True, False]
    path.write_text("id,text,label,created_at\n1,A CVE,1,last tuesday\n")
    with pytest.raises(LabelledError, match=r"row 2, field 'created_at'"):
        from_user_csv(path)


def test_rare_positive_set_from_the_snapshot(tmp_path: Path, fixtures_dir: Path) -> None:
    from secmine.detect.labelled import rare_positive_set

    corpus = _corpus(fixtures_dir)
    labels = tmp_path / "security_labels.csv"
    labels.write_text("id,label,theme\nacme/llm-app#1,1,model\norg/vision-lib#21,0,\n")
    frame = rare_positive_set(corpus, labels, positive_share=0.34, seed=0)
    assert list(frame.columns) == ["id", "repo", "created_at", "text", "label"]
    assert frame["label"].sum() == 1 and frame["created_at"].notna().all()
    assert frame["created_at"].is_monotonic_increasing
    extra = frame[~frame["id"].isin(["gh:pull_request:acme/llm-app#1", "gh:pull_request:org/vision-lib#21"])]
    assert (extra["label"] == 0).all() and not extra["text"].str.contains("vulnerab|cve|cwe|security", case=False).any()
