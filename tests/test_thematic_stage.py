"""The thematic stage end to end: files written (the DVC contract), determinism, the CLI, the
notebook's parameters, and invariants on the real coded sample in ../shared."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from typer.testing import CliRunner

from secmine import config
from secmine.cli import app
from secmine.codebook import Codebook
from secmine.io import TABLE_FORMATS
from secmine.thematic import counting, figures, paper, stage, tables

FIXTURE = Path(__file__).parent / "fixtures" / "thematic"
ARGS = (FIXTURE / "coded.csv", FIXTURE / "codebook.yaml", FIXTURE / "texts.csv")


def _expected_files(out: Path) -> set[Path]:
    paths = stage.output_paths(out)
    return (
        set(tables.table_files(paths["tables"]))
        | set(figures.figure_files(paths["figures"]))
        | {paths["metrics"]}
        | set(stage.paper_output_files(paths))
    )


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[stage.ThematicResult, Path]:
    out = tmp_path_factory.mktemp("reports")
    return stage.run(*ARGS, out_dir=out, close_figures=True), out


def test_stage_writes_exactly_the_declared_files(fixture_run) -> None:
    result, out = fixture_run
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == _expected_files(out) == set(result.written)
    issues = pd.read_csv(out / "tables" / "rq2_issues.csv")
    solutions = pd.read_csv(out / "tables" / "rq3_solutions.csv")
    assert list(issues.columns) == list(solutions.columns) == ["theme", "sub_theme", "code", "hf", "gh", "total"]
    assert issues["code"].tolist() == [c.name for c in result.sample.codebook.of_type("issue")]
    assert issues["total"].tolist() == [4, 3, 2, 2]
    for stem in tables.TABLE_STEMS:
        for fmt in TABLE_FORMATS:
            assert (out / "tables" / f"{stem}.{fmt}").stat().st_size > 0


def test_codebook_is_written_versioned_and_reloads_identically(fixture_run) -> None:
    result, out = fixture_run
    path = out / "tables" / tables.CODEBOOK_FILE
    assert path.read_text(encoding="utf-8").startswith(f"# secmine codebook, version {result.sample.codebook.version}")
    assert Codebook.from_yaml(path).version == result.sample.codebook.version


def test_metrics_and_warnings_table(fixture_run) -> None:
    result, out = fixture_run
    metrics = json.loads((out / "metrics" / "thematic.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    assert metrics["posts"]["total"] == 8
    assert metrics["issue_mentions"] == {"hf": 5, "gh": 6, "total": 11}
    assert metrics["solution_mentions"] == {"hf": 3, "gh": 5, "total": 8}
    assert metrics["posts_without_issue"] == 1 and metrics["posts_without_solution"] == 2
    assert metrics["top_pair"] == {"issue": "Unsafe deserialization", "solution": "Secure file format", "count": 3}
    assert metrics["issue_themes"]["System & Software"] == {"mentions": 9, "posts": 6, "coverage_pct": 75.0}
    assert metrics["warnings"] == {"total": 5, "repeated_code": 2, "no_issue_code": 1, "missing_text": 1,
                                   "source_mismatch": 1}
    warnings = pd.read_csv(out / "tables" / "thematic_warnings.csv")
    assert sorted(warnings["kind"]) == ["missing_text", "no_issue_code", "repeated_code", "repeated_code",
                                        "source_mismatch"]


def test_same_inputs_give_identical_bytes(fixture_run, tmp_path: Path) -> None:
    _, out = fixture_run
    stage.run(*ARGS, out_dir=tmp_path, close_figures=True)
    assert _digest(tmp_path) == _digest(out)


def test_figures_survive_a_single_platform_sample(tmp_path: Path) -> None:
    coded = tmp_path / "coded.csv"
    coded.write_text("source,id,issue,solution\nHF Discussion,org/m-1,Data leakage,\n", encoding="utf-8")
    result = stage.run(coded, ARGS[1], "none", out_dir=None, close_figures=True)
    assert result.counts.n_posts["gh"] == 0
    assert result.tables["rq2_issue_themes"]["gh_pct"].isna().all()  # undefined, not 0%
    assert set(result.figures) == set(figures.FIGURE_STEMS)


def test_cli_runs_the_stage(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["thematic", "--coded-sample", str(ARGS[0]), "--codebook", str(ARGS[1]),
                                 "--texts", str(ARGS[2]), "--out", str(tmp_path), "--no-cooccurrence-multiplicity"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports"
    expected = (set(tables.table_files(out / "tables" / "thematic")) | set(figures.figure_files(out / "figures" / "thematic"))
                | {out / "metrics" / "thematic.json"}
                | set(stage.paper_output_files(stage.output_paths(out))))
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == expected
    metrics = json.loads((out / "metrics" / "thematic.json").read_text())
    assert metrics["cooccurrence_multiplicity"] is False
    assert metrics["top_pair"]["count"] == 2  # UD -> SFF in 2 posts
    plt.close("all")


def test_cli_writes_under_scratch_by_default_never_over_tracked_tables() -> None:
    from secmine.cli import resolve_stage_arguments

    _, paths = resolve_stage_arguments("thematic", {})
    for path in paths.outputs().values():
        assert path.is_relative_to(config.PROJECT_ROOT / "scratch" / "thematic")


# -- the real coded sample (../shared): invariants, never the paper's numbers --------------------


@pytest.fixture(scope="module")
def real(external_root: Path) -> tuple[stage.CodedSample, counting.ThematicCounts]:
    sample = stage.load_inputs(root=external_root / "ai_sec_dev")
    return sample, counting.count_sample(sample)


def _raw_rows(external_root: Path) -> list[dict[str, str]]:
    with open(external_root / "ai_sec_dev" / "theme" / "mapped.csv", encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _labels(cell: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", cell or "") if part.strip(" \t\"'.-")]


@pytest.mark.shared
def test_real_counts_agree_with_an_independent_recount_of_mapped_csv(real, external_root: Path) -> None:
    sample, counts = real
    rows = _raw_rows(external_root)
    book = sample.codebook
    assert counts.n_posts["total"] == len(rows)
    by_source = Counter(r["source"] for r in rows)
    assert counts.n_posts["hf"] == by_source["HF Discussion"]
    assert counts.n_posts["gh_issue"] == by_source["GH Issue"]
    assert counts.n_posts["gh_discussion"] == by_source["GH Discussion"]
    pair_total = 0
    for code_type in ("issue", "solution"):
        expected: Counter[tuple[str, str]] = Counter()
        for r in rows:
            group = "hf" if r["source"] == "HF Discussion" else "gh"
            for label in _labels(r[code_type]):
                expected[(book.get(code_type, label).name, group)] += 1  # type: ignore[union-attr]
        table = counts.codes[code_type].set_index("code")
        for code in table.index:
            assert table.loc[code, "hf"] == expected[(code, "hf")], code
            assert table.loc[code, "gh"] == expected[(code, "gh")], code
    for r in rows:
        pair_total += len(_labels(r["issue"])) * len(_labels(r["solution"]))
    assert int(counts.cooccurrence_codes.to_numpy().sum()) == pair_total


@pytest.mark.shared
def test_real_tables_are_internally_consistent(real) -> None:
    sample, counts = real
    for code_type in ("issue", "solution"):
        codes = counts.codes[code_type]
        assert (codes["hf"] + codes["gh"] == codes["total"]).all()
        src = counts.codes_by_source[code_type]
        assert (src["gh_issue"] + src["gh_discussion"] + src["hf_discussion"] == src["total"]).all()
        assert len(codes) == len(sample.codebook.of_type(code_type))
        for level, table in (("theme", counts.themes[code_type]), ("sub_theme", counts.sub_themes[code_type])):
            for group in counting.MAIN_GROUPS:
                sums = codes.groupby(level)[group].sum()
                assert (table.set_index(level)[f"{group}_freq"] == sums.reindex(table[level]).to_numpy()).all()
            for group in counting.ALL_GROUPS:
                n = counts.n_posts[group]
                assert (table[f"{group}_posts"] <= table[f"{group}_freq"]).all()
                assert (table[f"{group}_posts"] <= n).all()
                assert table[f"{group}_pct"].round(9).tolist() == (table[f"{group}_posts"] * 100 / n).round(9).tolist()
            assert (table["hf_freq"] + table["gh_freq"] == table["total_freq"]).all()
            assert (table["hf_posts"] + table["gh_posts"] == table["total_posts"]).all()
        # a theme covers no more posts than its sub-themes together, and at least the largest
        subs = counts.sub_themes[code_type].groupby("theme")["total_posts"]
        themes = counts.themes[code_type].set_index("theme")["total_posts"]
        assert (themes <= subs.sum().reindex(themes.index)).all()
        assert (themes >= subs.max().reindex(themes.index)).all()
        having = counting.posts_with_type(sample.posts, sample.mentions, code_type)
        assert counts.posts_without[code_type]["total"] == counts.n_posts["total"] - len(having)
    assert counts.cooccurrence_sub_themes.to_numpy().sum() == counts.cooccurrence_codes.to_numpy().sum()
    assert counts.cooccurrence_themes.to_numpy().sum() == counts.cooccurrence_codes.to_numpy().sum()
    assert counts.pairs["count"].sum() == counts.cooccurrence_codes.to_numpy().sum()
    lack = counts.lack_codes.set_index("code")
    assert (lack["posts_without_solution"] <= lack["posts"]).all()
    assert (lack["cooccurring_solution_mentions"] == counts.cooccurrence_codes.sum(axis=1)).all()
    lack_themes = counts.lack_themes[counts.lack_themes["platform"] == "total"].set_index("theme")
    assert lack_themes["issue_mentions"].to_dict() == counts.themes["issue"].set_index("theme")["total_freq"].to_dict()


@pytest.mark.shared
def test_real_repeats_are_warned_not_dropped(real, external_root: Path) -> None:
    sample, counts = real
    rows = _raw_rows(external_root)
    repeated = 0
    for r in rows:
        for code_type in ("issue", "solution"):
            names = [sample.codebook.get(code_type, x).name for x in _labels(r[code_type])]  # type: ignore[union-attr]
            repeated += any(n > 1 for n in Counter(names).values())
    kinds = tables.warnings_frame(sample.warnings)["kind"].value_counts()
    assert kinds.get("repeated_code", 0) == repeated
    assert int(counts.codes["issue"]["total"].sum()) == sum(len(_labels(r["issue"])) for r in rows)


@pytest.mark.shared
def test_real_comparison_with_the_paper_reports_what_was_computed(real) -> None:
    sample, counts = real
    table = paper.compare_with_paper(counts, sample.codebook)
    assert len(table) == len(paper.PAPER_VALUES)
    assert table["matches"].tolist() == [
        (c is not None and p == c) for p, c in zip(table["paper"], table["computed"])
    ]
    values = table.set_index("quantity")["computed"]
    themes = counts.themes["issue"].set_index("theme")
    assert values["coded posts"] == counts.n_posts["total"]
    assert values["System & Software issues: mentions"] == themes.loc["System & Software", "total_freq"]
    assert values["Data issues: % of posts"] == round(themes.loc["Data", "total_pct"], 2)
    pair = counts.cooccurrence_codes.loc[paper.TOP_PAIR_ISSUE, paper.TOP_PAIR_SOLUTION]
    assert values[f"co-occurrences: {paper.TOP_PAIR_ISSUE} -> {paper.TOP_PAIR_SOLUTION}"] == pair
