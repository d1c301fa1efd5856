"""The report: Fig. 1 funnel, scorecard, deterministic notebooks, the page (without a browser)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from secmine import config, published
from secmine.report import notebooks, provenance
from secmine.report import scorecard as sc
from secmine.report.examples import code_examples
from secmine.report.funnel import ReportInputError, funnel_figure, funnel_table, load_metrics
from secmine.report.page import ReportPaths, build_report

REPORTS = config.PROJECT_ROOT / "reports"


def _metrics(source: str = "snapshot") -> dict[str, dict]:
    return {
        "collect": {"source": source, "by_kind": {"github:issue": 100, "github:discussion": 10,
                                                   "huggingface:discussion": 20},
                    "by_source": {"snapshot": 120, "replication": 10}, "hf_repositories": 7,
                    "github_repositories_linked": 3},
        "classify": {"security": 40},
        "thematic": {"posts": {"hf": 5, "gh_discussion": 2, "gh_issue": 3, "total": 10}},
        "external": {"issue_codes": 32, "solution_codes": 24},
        "train": {"test": {"mcc": 0.81, "f1": 0.9}},
    }


def _tables(tmp: Path) -> Path:
    (tmp / "keywords").mkdir(parents=True)
    (tmp / "classify").mkdir(parents=True)
    pd.DataFrame({"platform": ["github", "github", "huggingface", "all"], "kind": ["issue", "discussion", "discussion", "all"],
                  "matched": [9, 2, 4, 15]}).to_csv(tmp / "keywords" / "keyword_matches.csv", index=False)
    pd.DataFrame({"platform": ["github", "github", "huggingface", "all"], "kind": ["issue", "discussion", "discussion", "all"],
                  "security": [30, 4, 6, 40]}).to_csv(tmp / "classify" / "classified_summary.csv", index=False)
    return tmp


def test_funnel_marks_what_a_snapshot_run_lacks(tmp_path: Path) -> None:
    table = funnel_table(_metrics(), _tables(tmp_path))
    rows = table.set_index(["step", "platform"])
    assert pd.isna(rows.loc[("Hugging Face models crawled", "Hugging Face"), "this_run"])
    assert "no Hugging Face crawl" in rows.loc[("Hugging Face models crawled", "Hugging Face"), "note"]
    assert rows.loc[("threads collected (bots removed)", "GitHub"), "this_run"] == 110
    assert "not a crawl" in rows.loc[("threads collected (bots removed)", "GitHub"), "note"]
    assert rows.loc[("keyword matches", "GH Issue"), "this_run"] == 9
    assert rows.loc[("security discussions (classifier)", "HF Discussion"), "this_run"] == 6
    assert rows.loc[("security discussions (classifier)", "all"), "this_run"] == 40
    assert rows.loc[("coded sample", "all"), ["this_run", "paper"]].tolist() == [10, 753]
    assert list(table.columns) == ["step", "platform", "this_run", "paper", "note"]
    assert len(table) == len(published.FUNNEL)
    # a live run has the crawl's counts; a run without the per-kind tables marks those steps
    live = funnel_table(_metrics("live"), None).set_index(["step", "platform"])
    assert live.loc[("Hugging Face models crawled", "Hugging Face"), "this_run"] == 7
    assert pd.isna(live.loc[("keyword matches", "GH Issue"), "this_run"])
    assert "keywords/keyword_matches.csv" in live.loc[("keyword matches", "GH Issue"), "note"]
    fig = funnel_figure(table)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "paper 687,653 | run n/a" in texts and "paper 753 | run 10" in texts
    plt.close(fig)


def test_bad_metrics_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "collect.json").write_text("{not json")
    with pytest.raises(ReportInputError, match=r"collect.json, line 1: not JSON .*rerun the collect stage"):
        load_metrics(tmp_path)


def test_scorecard_tolerance_rule() -> None:
    values = {"issue_codes": 32, "solution_codes": 23, "classifier_test_mcc": 0.83, "classifier_test_f1": 0.95,
              "ss_issue_coverage": 74.374, "data_issue_coverage": 9.04,
              "fig3::Data Security Solutions::Data Exposure": 22.64}
    card = sc.scorecard(values).set_index("key")
    assert card.loc["issue_codes", "status"] == sc.PASS and card.loc["solution_codes", "status"] == sc.FAIL
    assert card.loc["classifier_test_mcc", "status"] == sc.PASS  # within 0.05
    assert card.loc["classifier_test_f1", "status"] == sc.FAIL  # 0.06 off
    assert card.loc["ss_issue_coverage", "status"] == sc.PASS and card.loc["data_issue_coverage", "status"] == sc.FAIL
    assert card.loc["fig3::Data Security Solutions::Data Exposure", "status"] == sc.PASS
    assert card.loc["posts_total", "status"] == sc.MISSING
    assert card.loc["fig3::Data Security Solutions::Data Exposure", "tolerance"] == 0.05
    assert card.loc["ss_issue_coverage", "tolerance"] == 0.005 and card.loc["issue_codes", "tolerance"] == 0
    assert len(card) == len(published.ALL_VALUES)


def test_computed_values_read_the_runs_outputs() -> None:
    yearly = pd.DataFrame({"year": [2023, 2024], "platform": ["GitHub", "Hugging Face"],
                           "this_run": pd.array([5, pd.NA], dtype="Int64"), "paper": [73934, 4773]})
    fig3 = published.fig3_frame().reset_index()
    comparison = pd.DataFrame({"quantity": ["coded posts", "issue codes in the taxonomy"], "computed": [594, 32]})
    values = sc.computed_values(yearly=yearly, fig3=fig3, thematic_comparison=comparison,
                                train_metrics={"test": {"mcc": 0.8}})
    assert values["yearly_gh_2023"] == 5 and "yearly_hf_2024" not in values
    assert values["posts_total"] == 594 and values["issue_codes"] == 32 and values["classifier_test_mcc"] == 0.8
    card = sc.scorecard(values)
    assert (card[card["group"] == "fig3"]["status"] == sc.PASS).all()  # the published cells pass themselves


def test_package_share_from_the_manifest() -> None:
    share = sc.package_share(config.PROJECT_ROOT / "data" / "external" / "manifest.json").set_index(["part", "source"])
    assert share.loc[("coded posts", "all"), "published"] == 753
    assert 0 < share.loc[("coded posts", "all"), "share_pct"] <= 100
    assert share.loc[("security id lists", "GH Issue"), "present"] == 0  # the package has no GH issue list


NOTEBOOK_SOURCE = [
    "import sys, time, pathlib\nfrom tqdm.auto import tqdm",
    "for _ in tqdm(range(3), file=sys.stderr): time.sleep(0.01)\nprint('done')\nprint(pathlib.Path.cwd().resolve())",
    "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nfig = plt.figure()\nprint(repr(object())[:8], object())",
    "print('a\\rb\\rc')\n{'x': 1}",
]


def _run_notebook(root: Path, source: Path) -> Path:
    """Execute ``source`` (copied into ``root``) with papermill, as a stage would."""
    import papermill

    root.mkdir()
    src = root / "stage.ipynb"
    shutil.copy(source, src)
    out = root / "reports" / "stage.ipynb"
    out.parent.mkdir()
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", cwd=str(root), progress_bar=False,
                               parameters={"seed": 1})  # papermill adds a cell, with a random id
    return out


@pytest.mark.slow
def test_two_executed_runs_normalise_to_the_same_bytes(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_SOURCE]
    nb.cells.insert(0, nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "source.ipynb"
    nbformat.write(nb, source)
    first, second = _run_notebook(tmp_path / "a", source), _run_notebook(tmp_path / "b", source)
    assert first.read_bytes() != second.read_bytes()  # timestamps, durations, addresses, paths differ
    for path, root in ((first, tmp_path / "a"), (second, tmp_path / "b")):
        notebooks.normalise_notebook(path, roots=[root.resolve()])
    assert first.read_bytes() == second.read_bytes()
    nb = json.loads(first.read_text())
    assert "start_time" not in json.dumps(nb["metadata"]) and "duration" not in first.read_text()
    assert nb["metadata"]["papermill"]["output_path"] == "reports/stage.ipynb"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == [1, 2, 3, 4, 5, 6]
    assert code[1]["id"] == "injected-parameters"
    streams = [o for c in code for o in c["outputs"] if o["output_type"] == "stream"]
    assert all(o["name"] == "stdout" for o in streams)  # tqdm's stderr is gone
    text = "".join("".join(o["text"]) for o in streams)
    assert str(tmp_path) not in text and " at 0x" not in text and "\nc\n" in text
    html = notebooks.export_html(first, tmp_path / "a.html").read_text()
    assert not notebooks.NETWORK_LOAD_RE.search(html)
    assert notebooks.export_html(second, tmp_path / "b.html").read_bytes() == (tmp_path / "a.html").read_bytes()


def test_unreadable_notebook_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.ipynb"
    bad.write_text("not json")
    with pytest.raises(notebooks.NotebookError, match="x.ipynb: not a readable notebook"):
        notebooks.normalise_notebook(bad)


def test_cdn_scripts_are_stripped() -> None:
    page = ('<head><script src="https://cdnjs.cloudflare.com/x.js"></script><link rel="stylesheet" '
            'href="https://cdn.example/x.css"><script type="module">import m from "https://cdnjs.cloudflare.com/m.mjs";'
            "</script><script>var local = 1;</script></head>")
    stripped = notebooks.strip_network_loads(page)
    assert stripped == "<head><script>var local = 1;</script></head>"
    assert notebooks.NETWORK_LOAD_RE.search(page) and not notebooks.NETWORK_LOAD_RE.search(stripped)


def test_provenance_names_content_not_commits_or_times(tmp_path: Path) -> None:
    ids = provenance.code_ids(config.PROJECT_ROOT)
    assert set(ids) == {"src", "notebooks"} and all(v.startswith("git tree ") for v in ids.values())
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.csv").write_text("x\n")
    (tmp_path / "t" / ".a.csv.staging").mkdir()
    (tmp_path / "m.json").write_text("{}\n")
    digests = provenance.input_digests([tmp_path / "t", tmp_path / "m.json"], root=tmp_path)
    assert digests == [{"path": "t/a.csv", "md5": "401b30e3b8b5d629635a5c613cdb7919"},
                       {"path": "m.json", "md5": "8a80554c91d9fca8acb82f023de02f11"}]
    assert provenance.package_versions(["pandas", "no-such-package"]) == {"pandas": pd.__version__}


def _paper_figures(reports: Path) -> None:
    """Fig. 2 (the rq1 stage's) from a small classified frame and Fig. 3 (the thematic stage's) from the
    test coded sample, so that the page has all three paper figures whatever reports/ holds."""
    from secmine.analysis import trend
    from secmine.analysis.data import check_classified
    from secmine.thematic import heatmap, stage

    tables, figures = reports / "tables" / "paper", reports / "figures" / "paper"
    frame = check_classified(pd.DataFrame([
        {"id": f"gh:issue:o/a#{i}", "platform": "github", "kind": "issue", "repo": "o/a", "number": i,
         "created_at": f"{2021 + i % 4}-03-01T00:00:00Z", "keyword_match": False, "probability": 0.9, "label": 1}
        for i in range(12)
    ]))
    reports_2 = trend.yearly_reports(frame)
    fig = trend.trend_figure(reports_2)
    trend.write(reports_2, fig, tables_dir=tables, figures_dir=figures)
    fixture = Path(__file__).parent / "fixtures" / "thematic"
    result = stage.run(fixture / "coded.csv", fixture / "codebook.yaml", fixture / "texts.csv", out_dir=None,
                       close_figures=True)
    built, drawn = heatmap.build(result.sample.mentions, result.sample.codebook, n_posts=8)
    heatmap.write(built, drawn, tables_dir=tables, figures_dir=figures)
    plt.close("all")


def _site(tmp_path: Path) -> ReportPaths:
    """A copy of the committed reports/ (real results of the pipeline) and the files the page reads."""
    site = tmp_path / "site"
    shutil.copytree(REPORTS, site / "reports", ignore=shutil.ignore_patterns("index.html", "*.html"))
    (site / "data" / "external").mkdir(parents=True)
    shutil.copy(config.PROJECT_ROOT / "data" / "external" / "manifest.json", site / "data" / "external")
    for name in ("params.yaml", "dvc.lock"):
        shutil.copy(config.PROJECT_ROOT / name, site / name)
    _paper_figures(site / "reports")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A stage"), nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)])]
    (site / "reports" / "notebooks").mkdir(exist_ok=True)
    nbformat.write(nb, site / "reports" / "notebooks" / "demo.ipynb")
    return ReportPaths(root=site)


def _examples() -> pd.DataFrame:
    return pd.DataFrame({"type": ["issue"], "theme": ["Data"], "sub_theme": ["Data Exposure Concerns"],
                         "code": ["Data leakages"], "post_id": ["o/r-1"], "source": ["GH Issue"],
                         "url": ["https://github.com/o/r/issues/1"], "title": ["A <b>title</b>"]})


def build_site(tmp_path: Path) -> tuple[ReportPaths, object]:
    paths = _site(tmp_path)
    return paths, build_report(paths, examples=_examples())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    return build_site(tmp_path_factory.mktemp("report"))


def test_page_is_self_contained_and_names_no_commit_or_time(site) -> None:
    paths, result = site
    page = result.page.read_text()
    assert not notebooks.NETWORK_LOAD_RE.search(page)
    assert "http://" not in page.split("<main>")[0] and "cdn" not in page.casefold().split("<main>")[0]
    head = __import__("subprocess").run(["git", "-C", str(config.PROJECT_ROOT), "rev-parse", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
    assert head and head not in page
    assert not re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d", page)  # no timestamps
    for anchor in ("headline", "figures", "scorecard", "rq1", "rq2-rq3", "classifier", "examples", "notebooks",
                   "provenance"):
        assert f'<section id="{anchor}">' in page
    assert page.count('data-sortable="1"') >= 8
    assert 'href="notebooks/demo.html"' in page and (paths.root / "reports" / "notebooks" / "demo.html").is_file()
    assert "A &lt;b&gt;title&lt;/b&gt;" in page  # example titles are escaped
    assert (paths.root / "reports" / "tables" / "paper" / "fig1_funnel.csv").is_file()
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (result.page.parent / src).is_file(), src


def test_page_is_the_same_bytes_on_a_rerun(site) -> None:
    paths, result = site
    first = result.page.read_bytes()
    again = build_report(paths, examples=_examples())
    assert again.page.read_bytes() == first


@pytest.mark.shared
def test_code_examples_give_url_and_title_only(replication_root: Path) -> None:
    from secmine.replication import load_coded_sample, load_posts

    posts = load_posts(replication_root)
    sample = load_coded_sample(replication_root, posts=posts)
    examples = code_examples(sample, posts, titles={posts["thread_id"].iloc[0]: "a title"}, per_code=2)
    assert list(examples.columns) == ["type", "theme", "sub_theme", "code", "post_id", "source", "url", "title"]
    assert examples.groupby(["type", "code"]).size().max() <= 2
    assert examples["url"].str.startswith("https://").all()
    used = sample.mentions.drop_duplicates(["type", "code"])
    assert len(examples.drop_duplicates(["type", "code"])) == len(used)


def test_command_line_normalises_and_reports_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1", execution_count=7, outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="progress 10%\r")])]
    nb.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "duration": 1.5, "parameters": {}}
    path = tmp_path / "stage.ipynb"
    nbformat.write(nb, path)
    assert notebooks.main([str(path), "--html", str(tmp_path / "html")]) == 0
    cleaned = nbformat.read(path, as_version=4)
    assert cleaned.cells[0].execution_count == 1 and cleaned.cells[0].outputs == []
    assert "duration" not in cleaned.metadata["papermill"] and (tmp_path / "html" / "stage.html").is_file()
    (tmp_path / "bad.ipynb").write_text("{")
    assert notebooks.main([str(tmp_path / "bad.ipynb")]) == 1
    assert "bad.ipynb: not a readable notebook" in capsys.readouterr().out


def test_printed_durations_are_masked_and_the_rest_kept() -> None:
    """Two runs of the train and train-tagger notebooks differed only in the seconds they print and
    in transformers.Trainer's run times; the normaliser masks exactly those."""
    from secmine.report.notebooks import normalise_node

    def run(seconds: int, runtime: str) -> dict:
        text = (f"tfidf_logreg: CV MCC 0.713 over 3 fold score(s) (10 trial(s), {seconds} s)\n"
                f"finetune: fold 1/3 done ({seconds} s)\n"
                f"{{'train_runtime': '{runtime}', 'train_samples_per_second': '{runtime}', "
                f"'train_steps_per_second': '0.3', 'train_loss': '0.505', 'epoch': '1'}}\n"
                "kept: (n = 5) and 12 s without a parenthesis\n")
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("train()")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells = [cell]
        return normalise_node(nb, roots=[])

    one, two = run(34, "329.6"), run(45, "215.3")
    assert one["cells"][0]["outputs"] == two["cells"][0]["outputs"]
    text = one["cells"][0]["outputs"][0]["text"]
    assert "(10 trial(s), … s)" in text and "done (… s)" in text and "'train_runtime': '…'" in text
    assert "'train_loss': '0.505'" in text and "kept: (n = 5) and 12 s without a parenthesis" in text


def test_stdout_split_and_progress_displays_do_not_change_the_notebook() -> None:
    """Two runs of the train-tagger notebook: the kernel split the same printing into different
    stream messages, a tqdm bar showed as plain text at a different state, and the ranking line
    printed other run times ("in 19 s"); normalised, the outputs are the same."""
    from secmine.report.notebooks import normalise_node

    lines = ["594 coded posts\n", "tfidf_logreg: fold 1/3 done (7 s)\n", "zero_shot: fold 1/3 done (1 s)\n"]

    def run(split: list[int], bar: str, seconds: int) -> dict:
        cell = nbformat.v4.new_code_cell("compare()")
        cuts = [0, *split, len(lines)]
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="".join(lines[a:b]))
                        for a, b in itertools.pairwise(cuts)]
        cell.outputs.insert(1, nbformat.v4.new_output("display_data", data={"text/plain": bar}))
        cell.outputs.append(nbformat.v4.new_output(
            "stream", name="stdout", text=f"chosen tagger: embed_logreg; tfidf_logreg 0.496 in {seconds} s, zero_shot 0.436 in 2 s\n"))
        cell.outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": "a table, not a bar"}))
        nb = nbformat.v4.new_notebook()
        nb.cells = [cell]
        return normalise_node(nb, roots=[])

    one = run([1], "Loading weights:   0%|          | 0/103 [00:00<?, ?it/s]", 19)
    two = run([1, 2], "Loading weights:  40%|####      | 41/103 [00:01<00:02, 30.1it/s]", 23)
    assert one["cells"][0]["outputs"] == two["cells"][0]["outputs"]
    outputs = one["cells"][0]["outputs"]
    assert [o["output_type"] for o in outputs] == ["stream", "display_data"]  # one stdout stream, the table kept
    assert outputs[0]["text"] == ("594 coded posts\ntfidf_logreg: fold 1/3 done (… s)\nzero_shot: fold 1/3 done (… s)\n"
                                  "chosen tagger: embed_logreg; tfidf_logreg 0.496 in … s, zero_shot 0.436 in … s\n")
    assert outputs[1]["data"]["text/plain"] == "a table, not a bar"
