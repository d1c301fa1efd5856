"""The paper's numbers in one place: consistent with each other, and the only copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmine import config, published
from secmine.thematic import paper


def test_keys_are_unique_and_every_value_says_where_it_is_printed() -> None:
    keys = [item.key for item in published.ALL_VALUES]
    assert len(keys) == len(set(keys))
    assert all(item.where and item.group for item in published.ALL_VALUES)


def test_funnel_parts_add_up_to_the_published_totals() -> None:
    v = published.value
    # As printed, the three inference lists (8,421 + 2,783 + 301,219 = 312,423) fall 445 short of the
    # paper's 312,868 security discussions; both are kept as published, and the funnel notes it.
    lists = v("funnel_sec_hf") + v("funnel_sec_gh_discussion") + v("funnel_sec_gh_issue")
    assert v("funnel_sec_total") - lists == 445
    assert v("funnel_coded_hf") + v("funnel_coded_gh_discussion") + v("funnel_coded_gh_issue") == v("funnel_coded_total")
    assert v("funnel_coded_total") == v("posts_total") == 753
    assert (v("funnel_issue_codes"), v("funnel_solution_codes")) == (v("issue_codes"), v("solution_codes")) == (32, 24)
    assert {i.step for i in published.FUNNEL} == set(published.FUNNEL_STEPS)


def test_yearly_series_and_fig3_as_printed() -> None:
    frame = published.yearly_frame()
    assert frame[frame["platform"] == published.GH]["paper"].tolist() == [18661, 26944, 28325, 35556, 73934, 83561]
    assert frame[frame["platform"] == published.HF]["year"].tolist() == [2022, 2023, 2024]
    fig3 = published.fig3_frame()
    assert fig3.shape == (8, 11)
    # each row of Fig. 3 sums to 100 up to the rounding to one decimal
    assert ((fig3.sum(axis=1) - 100).abs() <= 0.5).all()
    assert fig3.loc["Platform Identity & Access Management", "External Service Usage Security"] == 43.3
    assert not any("Concerns" in c for c in fig3.columns)


def test_unknown_key_and_group_are_named() -> None:
    with pytest.raises(KeyError, match="no published value 'nope'"):
        published.value("nope")
    with pytest.raises(KeyError, match="no published group"):
        published.group("nope")


def test_thematic_paper_reads_the_one_copy() -> None:
    assert paper.PAPER_VALUES is published.THEMATIC
    assert paper.TOP_PAIR_ISSUE == published.TOP_PAIR_ISSUE
    # no other module types a published total: 312,868 and 301,219 appear only in published.py
    package = Path(config.PROJECT_ROOT) / "src" / "secmine"
    holders = [p for p in package.rglob("*.py") if "312_868" in p.read_text() or "301_219" in p.read_text()
               or "312,868" in p.read_text() or "301219" in p.read_text()]
    assert [p.name for p in holders] == ["published.py"]
