"""The thread explorer: loading, filters, counts, cards and the widgets (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from secmine import config, explore
from secmine.schema import thread_id


def _classified() -> pd.DataFrame:
    rows = []
    for n, (platform, kind, repo, year, p, label) in enumerate([
        ("github", "issue", "o/a", 2023, 0.9, 1), ("github", "issue", "o/a", 2024, 0.2, 0),
        ("github", "discussion", "o/b", 2024, 0.7, 1), ("huggingface", "discussion", "org/m", None, 0.95, 1),
        ("github", "issue", "o/b", 2022, 0.55, 1),
    ], start=1):
        rows.append({"id": thread_id(platform, kind, repo, n), "platform": platform, "kind": kind, "repo": repo,
                     "number": n, "created_at": f"{year}-05-01T00:00:00Z" if year else None,
                     "keyword_match": n in (1, 3), "probability": p, "label": label})
    return pd.DataFrame(rows)


def _corpus(classified: pd.DataFrame) -> pd.DataFrame:
    bodies = {1: "Pickle load runs code; mail me at jane.doe@example.com " + "x" * 400,
              3: "The token leaked <script>alert(1)</script>"}
    return pd.DataFrame({"id": classified["id"], "title": [f"Title {n}" if n != 4 else "" for n in classified["number"]],
                         "body": [bodies.get(n, "plain") for n in classified["number"]], "url": ""})


def _coded(classified: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"id": [classified["id"].iloc[2], classified["id"].iloc[3]],
                         "themes": [["System & Software"], ["Model"]],
                         "sub_themes": [["Code Execution Security Concerns"], ["Model Output and Content Control Concerns"]],
                         "codes": [["System/software arbitrary code execution"], ["Harmful/Undesired model output"]]})


@pytest.fixture()
def threads() -> pd.DataFrame:
    classified = _classified()
    keywords = pd.DataFrame({"id": classified["id"], "matched_keywords": [["security"], [], ["cve", "security"], [], []]})
    return explore.load_threads(classified, _corpus(classified), keywords=keywords, coded=_coded(classified),
                                replication_dir=None)


def test_load_threads_joins_titles_short_excerpts_urls_and_labels(threads: pd.DataFrame) -> None:
    assert list(threads.columns) == explore.COLUMNS
    first = threads.set_index("id").loc[thread_id("github", "issue", "o/a", 1)]
    assert first["title"] == "Title 1" and first["url"] == "https://github.com/o/a/issues/1"
    assert "[email]" in first["excerpt"] and "jane.doe" not in first["excerpt"]
    assert len(first["excerpt"]) <= explore.EXCERPT_CHARS and first["excerpt"].endswith("\u2026")
    assert first["keywords"] == ["security"] and not first["coded"]
    hf = threads.set_index("id").loc[thread_id("huggingface", "discussion", "org/m", 4)]
    assert hf["coded"] and hf["codes"] == ["Harmful/Undesired model output"] and pd.isna(hf["year"])
    assert hf["url"] == "https://huggingface.co/org/m/discussions/4"


def test_filters_select_by_every_field(threads: pd.DataFrame) -> None:
    pick = lambda **kw: set(explore.apply_filters(threads, explore.Filters(**kw))["number"])  # noqa: E731
    assert pick(platforms=("huggingface",)) == {4}
    assert pick(kinds=("issue",), repos=("o/b",)) == {5}
    assert pick(years=(2023, 2024)) == {1, 2, 3}  # the undated thread drops out
    assert pick(keyword="cve") == {3}
    assert pick(text="token leaked") == {3} and pick(text="TITLE 2") == {2}
    assert pick(probability=(0.5, 0.8)) == {3, 5}
    assert pick(security_only=True) == {1, 3, 4, 5}
    assert pick(coded_only=True) == {3, 4}
    assert pick(themes=("Model",)) == {4}
    assert pick(sub_themes=("Code Execution Security Concerns",)) == {3}
    assert pick(codes=("Harmful/Undesired model output", "System/software arbitrary code execution")) == {3, 4}
    assert pick() == {1, 2, 3, 4, 5}


def test_summary_and_cards(threads: pd.DataFrame) -> None:
    table = explore.summary(threads).set_index("source")
    assert table.loc["all"].tolist() == [5, 4, 2]
    assert table.loc["GH Issue"].tolist() == [3, 2, 0]
    assert explore.summary(threads.iloc[:0])["threads"].tolist() == [0]
    cards = explore.thread_cards(threads, limit=2)
    assert cards.index("Title 4") < cards.index("Title 1") if "Title 4" in cards else True
    assert "(no title in the corpus)" in cards  # p = 0.95 first
    assert "... and 3 more" in cards
    assert "<script>" not in explore.thread_cards(threads) and "&lt;script&gt;" in explore.thread_cards(threads)


def test_widgets_update_counts_and_cards(threads: pd.DataFrame) -> None:
    box = explore.explorer(threads, cards=10)
    assert "<td>all</td>" in box.counts.value and "Title 1" in box.listing.value
    box.controls["platforms"].value = ("huggingface",)
    assert "HF Discussion" in box.counts.value and "Title 1" not in box.listing.value
    box.controls["platforms"].value = ()
    box.controls["codes"].value = ("System/software arbitrary code execution",)
    assert "Title 3" in box.listing.value and "Title 1" not in box.listing.value
    box.controls["text"].value = "nothing like this"
    assert "No thread matches" in box.listing.value
    assert set(box.controls["keyword"].options) == {"", "cve", "security"}


def test_missing_classified_file_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(explore.ExploreInputError, match="make repro"):
        explore.load_threads(tmp_path / "classified.parquet", None, keywords=None, replication_dir=None)


@pytest.mark.slow
def test_the_notebook_runs_on_a_small_classified_file(tmp_path: Path) -> None:
    import papermill

    classified = tmp_path / "classified.parquet"
    _classified().to_parquet(classified)
    out = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(config.PROJECT_ROOT / "notebooks" / "explore.ipynb"), str(out), kernel_name="python3", progress_bar=False,
        parameters={"classified": str(classified), "corpus": str(tmp_path / "none"), "keywords": str(tmp_path / "none"),
                    "replication_dir": str(tmp_path / "none")},
    )
    text = out.read_text()
    assert "5 threads, 4 security threads, 0 coded posts" in text
    assert "application/vnd.jupyter.widget-view+json" in text
