"""The report page: ``reports/index.html``, the study at a glance, self-contained and deterministic.

:func:`build_report` reads what the pipeline wrote under ``reports/`` (metrics, tables, figures,
executed notebooks) and renders one HTML file that opens from disk without a network: CSS and
JavaScript inline (the sortable tables are itables in offline mode, its DataTables bundle inlined
once), the figures referenced as the PNG files beside the page, every executed notebook exported
to HTML beside it (:func:`secmine.report.notebooks.export_html`) and linked.

Sections: headline numbers; the paper's three figures (the Fig. 1 funnel is computed here from
the metrics and written to ``reports/tables/paper/fig1_funnel.csv`` and
``reports/figures/paper/fig1_funnel``); the reproduction scorecard with the share of the
replication package present; the RQ1, RQ2 and RQ3 tables; the classifier comparison; example
threads per taxonomy code (URL and title only); the notebooks; provenance by content only (see
:mod:`secmine.report.provenance`).  The page holds no commit id and no time, so a rerun on the
same inputs writes the same bytes.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.published import PAPER, PAPER_TITLE

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PAGE_TITLE = "secmine: developer-reported security issues and solutions of AI projects"
SELF_CHECK_ID = "selfcheck"


@dataclass
class ReportPaths:
    """Where :func:`build_report` reads and writes (defaults: the pipeline's layout under the root)."""

    root: Path = Path(".")
    reports: Path = Path("reports")
    out: Path = Path("reports/index.html")
    metrics: Path = Path("reports/metrics")
    tables: Path = Path("reports/tables")
    figures: Path = Path("reports/figures")
    notebooks: Path = Path("reports/notebooks")
    notebooks_html: Path | None = None  # default: beside the notebooks
    manifest: Path = Path("data/external/manifest.json")
    params: Path = Path("params.yaml")
    inputs: tuple[Path, ...] = ()  # the results the page is built from, named by content
    paper_tables: Path | None = None  # default: tables/paper
    paper_figures: Path | None = None  # default: figures/paper
    # Where the page, the funnel and the notebooks' HTML are written when that is not where they end
    # up (a stage stages its outputs and moves them into place together): links are always computed
    # from the places above, the final ones.
    staged: dict[str, Path] = field(default_factory=dict)  # "out" | "paper_tables" | "paper_figures" | "notebooks_html"

    def resolved(self) -> ReportPaths:
        root = Path(self.root)

        def at(p: Path) -> Path:
            return p if Path(p).is_absolute() else root / p

        return ReportPaths(
            root=root, reports=at(self.reports), out=at(self.out), metrics=at(self.metrics), tables=at(self.tables),
            figures=at(self.figures), notebooks=at(self.notebooks),
            notebooks_html=at(self.notebooks_html) if self.notebooks_html is not None else at(self.notebooks),
            manifest=at(self.manifest), params=at(self.params), inputs=tuple(at(i) for i in self.inputs),
            paper_tables=at(self.paper_tables) if self.paper_tables is not None else at(self.tables) / "paper",
            paper_figures=at(self.paper_figures) if self.paper_figures is not None else at(self.figures) / "paper",
            staged={key: at(value) for key, value in self.staged.items()},
        )

    def written(self, key: str) -> Path:
        """Where the output ``key`` is written (its staging place, or its final place)."""
        return self.staged.get(key, getattr(self, key))

    def actual(self, path: Path) -> Path:
        """Where ``path`` (a final place) lies while the outputs are staged."""
        for key, staged in self.staged.items():
            final = getattr(self, key)
            if key == "out":
                if path == final:
                    return staged
            elif path.parent == final and (staged / path.name).exists():
                return staged / path.name
        return path


@dataclass
class ReportResult:
    page: Path
    written: list[Path] = field(default_factory=list)
    scorecard: pd.DataFrame | None = None
    funnel: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


# -- HTML pieces -----------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;background:#fafbfc}
header{background:#1f3a56;color:#fff;padding:1.2rem 2rem}header h1{margin:0 0 .3rem;font-size:1.5rem}
header p{margin:.2rem 0;opacity:.9}nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde3ea;
padding:.4rem 2rem;z-index:5}nav a{margin-right:1rem;color:#1f3a56;text-decoration:none;font-size:.92rem}
main{padding:0 2rem 3rem;max-width:1400px}section{margin-top:2rem}h2{border-bottom:2px solid #1f3a56;padding-bottom:.2rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;
padding:.7rem 1rem;min-width:11rem}.card .v{font-size:1.5rem;font-weight:600}.card .k{font-size:.85rem;color:#4b5a6a}
figure{margin:1rem 0;background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:.6rem}
figure img{max-width:100%;height:auto}figcaption{font-size:.9rem;color:#4b5a6a;margin-top:.4rem}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}@media(max-width:1000px){.pair{grid-template-columns:1fr}}
.note{font-size:.9rem;color:#4b5a6a}.pass{color:#1b7a3d;font-weight:600}.fail{color:#b3261e;font-weight:600}
.missing{color:#6b7785}table{font-size:.85rem}pre{background:#fff;border:1px solid #dde3ea;padding:.6rem;overflow:auto;
font-size:.8rem}code{font-size:.85rem}.downloads a{margin-right:.6rem;font-size:.85rem}
"""

SELF_CHECK_JS = """
(function () {
  var tries = 0;
  function check() {
    var s = document.getElementById("%s");
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute("src"); });
    var wanted = document.querySelectorAll("table[data-sortable]").length;
    var ready = document.querySelectorAll("table.dataTable").length;
    s.setAttribute("data-images", String(imgs.length));
    s.setAttribute("data-broken", broken.join(" "));
    s.setAttribute("data-tables", String(wanted));
    s.setAttribute("data-sortable-ready", String(ready));
    tries += 1;
    if ((ready < wanted || broken.length) && tries < 50) { setTimeout(check, 100); return; }
    s.setAttribute("data-done", "1");
  }
  window.addEventListener("load", function () { setTimeout(check, 0); });
})();
""" % SELF_CHECK_ID


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def _rel(path: Path, page: Path) -> str:
    return Path(os.path.relpath(path, page.parent)).as_posix()


class _Tables:
    """itables in offline mode: the bundle once, then each table with a fixed id."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()

    @staticmethod
    def init_html() -> str:
        from itables import javascript
        from itables.utils import find_package_file

        return javascript.generate_init_offline_itables_html(find_package_file("html/dt_bundle.js"))

    def render(self, frame: pd.DataFrame, table_id: str, *, caption: str | None = None, page_length: int = 10,
               allow_html: bool = False) -> str:
        from itables import javascript

        tid = "table-" + _slug(table_id)  # never an anchor of the page's sections
        if tid in self.ids:
            raise ValueError(f"report: table id {tid!r} used twice")
        self.ids.add(tid)
        self.count += 1
        shown = frame.copy()
        shown.columns = [str(c) for c in shown.columns]
        table = javascript.to_html_datatable(
            shown, caption=caption, table_id=tid, connected=False, maxBytes=0, maxRows=0, maxColumns=0,
            allow_html=allow_html, pageLength=page_length, classes="display compact cell-border", showIndex=False,
            display_logo_when_loading=False,
        )
        # marks every sortable table for the self-check and the browser test
        return table.replace(f'<table id="{tid}"', f'<table id="{tid}" data-sortable="1"', 1)


def _same(path: Path) -> Path:
    return path


def _figure(path: Path, page: Path, caption: str, *, data_links: list[Path] | None = None,
            where: Any = _same) -> str:
    """A figure and its data links; ``where`` maps a final place to where the file lies now."""
    if not where(path).is_file():
        return f'<p class="note">Figure not produced by this run: <code>{_esc(_rel(path, page))}</code>.</p>'
    links = "".join(f'<a href="{_esc(_rel(p, page))}">{_esc(p.name)}</a>' for p in (data_links or [])
                    if where(p).is_file())
    svg = path.with_suffix(".svg")
    if where(svg).is_file():
        links = f'<a href="{_esc(_rel(svg, page))}">{_esc(svg.name)}</a>' + links
    return (f'<figure id="fig-{_slug(path.stem)}"><img src="{_esc(_rel(path, page))}" alt="{_esc(caption)}">'
            f'<figcaption>{_esc(caption)} <span class="downloads">{links}</span></figcaption></figure>')


def _downloads(stem: Path, page: Path) -> str:
    links = [f'<a href="{_esc(_rel(stem.with_suffix(f".{fmt}"), page))}">{fmt.upper()}</a>'
             for fmt in ("csv", "md", "tex") if stem.with_suffix(f".{fmt}").is_file()]
    return f'<p class="downloads">Download: {"".join(links)}</p>' if links else ""


def _read_csv(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.is_file() else None


def _fmt_number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    if number != number:
        return "n/a"
    return f"{number:,.{digits}f}"


def _headline(metrics: dict[str, dict]) -> list[tuple[str, str]]:
    collect, classify, keywords = metrics.get("collect", {}), metrics.get("classify", {}), metrics.get("keywords", {})
    thematic, train, rq1 = metrics.get("thematic", {}), metrics.get("train", {}), metrics.get("rq1", {})
    test = train.get("test", {}) if isinstance(train.get("test"), dict) else {}
    cards = [
        ("threads in the corpus", _fmt_number(collect.get("threads"))),
        ("keyword matches", _fmt_number(keywords.get("matched"))),
        ("security threads (classifier)", _fmt_number(classify.get("security"))),
        ("coded posts", _fmt_number((thematic.get("posts") or {}).get("total"))),
        ("issue / solution mentions", f"{_fmt_number((thematic.get('issue_mentions') or {}).get('total'))} / "
                                      f"{_fmt_number((thematic.get('solution_mentions') or {}).get('total'))}"),
        ("classifier test MCC", _fmt_number(test.get("mcc"), 2)
         + (f" [{_fmt_number(test.get('mcc_lo'), 2)}, {_fmt_number(test.get('mcc_hi'), 2)}]" if test.get("mcc_lo") else "")),
        ("classifier test F1", _fmt_number(test.get("f1"), 2)),
    ]
    share = rq1.get("security_share")
    if share is not None:
        over = rq1.get("security_share_threads")
        label = f"security share over {_fmt_number(over)} unselected threads" if over is not None else "security share"
        cards.append((label, f"{share * 100:.1f}%"))
    growth = rq1.get("annual_growth")
    if growth is not None:
        cards.append(("annual growth of security threads", f"{growth * 100:+.0f}%"))
    return cards


def _status_cell(status: str) -> str:
    css = {"pass": "pass", "fail": "fail"}.get(status, "missing")
    return f'<span class="{css}">{_esc(status)}</span>'


# -- the page ------------------------------------------------------------------------------------


def build_report(
    paths: ReportPaths | None = None,
    *,
    examples: pd.DataFrame | None = None,
    export_notebooks: bool = True,
    write_funnel_outputs: bool = True,
    exclude_notebooks: tuple[str, ...] = ("report",),
) -> ReportResult:
    """Render ``reports/index.html`` (see the module docstring); returns the page and every file
    written (the Fig. 1 table and figure, the notebooks' HTML, the page).

    ``examples``: :func:`secmine.report.examples.code_examples`'s table (URL and title per coded
    post of each code); without it the page says none were given.  ``exclude_notebooks``: executed
    notebooks (by stem) not exported, by default the ``report`` stage's own (papermill is still
    writing it while this runs)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from secmine.io import write_text
    from secmine.report import provenance
    from secmine.report import scorecard as scorecard_module
    from secmine.report.funnel import funnel_figure, funnel_table, load_metrics, write_funnel
    from secmine.report.notebooks import export_html

    p = (paths or ReportPaths()).resolved()
    page = p.out  # links are relative to the page's final place
    result = ReportResult(page=page)
    metrics = load_metrics(p.metrics)
    assert p.paper_tables is not None and p.paper_figures is not None and p.notebooks_html is not None

    funnel = funnel_table(metrics, p.tables)
    result.funnel = funnel
    if write_funnel_outputs:
        fig = funnel_figure(funnel)
        result.written += write_funnel(
            funnel, fig, tables_dir=p.written("paper_tables"), figures_dir=p.written("paper_figures")
        )
        plt.close(fig)
    card = scorecard_module.scorecard_from_outputs(metrics_dir=p.metrics, tables_dir=p.tables, funnel=funnel)
    result.scorecard = card
    share = scorecard_module.package_share(p.manifest) if p.manifest.is_file() else None

    notebooks: list[tuple[str, Path]] = []
    if export_notebooks and p.notebooks.is_dir():
        for nb in sorted(p.notebooks.glob("*.ipynb")):
            if nb.stem in exclude_notebooks:  # the report stage's own notebook is still being executed
                continue
            result.written.append(export_html(nb, p.written("notebooks_html") / f"{nb.stem}.html"))
            notebooks.append((nb.stem, p.notebooks_html / f"{nb.stem}.html"))

    t = _Tables()
    parts: list[str] = []
    nav: list[tuple[str, str]] = []

    def section(anchor: str, title: str, body: str) -> None:
        nav.append((anchor, title))
        parts.append(f'<section id="{anchor}"><h2>{_esc(title)}</h2>{body}</section>')

    # headline
    cards = "".join(f'<div class="card"><div class="v">{v}</div><div class="k">{_esc(k)}</div></div>'
                    for k, v in _headline(metrics))
    section("headline", "Headline numbers", f'<div class="cards">{cards}</div>'
            '<p class="note">Shares are over the threads not selected as security posts (the replication '
            "package's coded posts were selected from the paper's security discussions, so no rate is computed "
            "over them).</p>")

    # the paper's figures
    pf, pt = p.paper_figures, p.paper_tables
    body = _figure(pf / "fig1_funnel.png", page, "Fig. 1, the study funnel: the paper's count at each step beside "
                   "this run's (n/a: this run has no such count).", data_links=[pt / "fig1_funnel.csv"], where=p.actual)
    body += _figure(pf / "fig2_trend.png", page, "Fig. 2, security reports per year: this run (left, up to the last "
                    "complete year) and the paper's published series (right).", data_links=[pt / "fig2_yearly.csv"])
    from secmine.thematic.heatmap import HEATMAP_NOTE

    body += ('<div class="pair">'
             + _figure(pf / "fig3_heatmap.png", page, "Fig. 3 as published: solution sub-theme x issue sub-theme, "
                       "mean co-occurrence per code pair, each row 100%.", data_links=[pt / "fig3_heatmap_published.csv"])
             + _figure(pf / "fig3_heatmap_plain.png", page, "Fig. 3, plain: each row's summed co-occurrences as "
                       "shares.", data_links=[pt / "fig3_heatmap_plain.csv"])
             + f'</div><p class="note">{_esc(HEATMAP_NOTE)}</p>')
    section("figures", "The paper's three figures", body)

    # scorecard
    summary = scorecard_module.summary(card)
    def number(value: Any, sign: bool = False) -> str:
        if value is None or value != value:
            return ""
        value = float(value)
        text = f"{int(value):,}" if value.is_integer() else f"{value:,.4g}"
        return f"+{text}" if sign and value >= 0 else text

    shown = card.assign(status=card["status"].map(_status_cell), published=card["published"].map(number),
                        computed=card["computed"].map(number),
                        difference=card["difference"].map(lambda v: number(v, sign=True)))
    body = (f'<p>Every number the paper publishes that this run can check. Rule: {_esc(scorecard_module.TOLERANCE_RULE)}. '
            '"not computed": this run has no such number.</p>'
            + t.render(summary, "scorecard-summary", page_length=10)
            + t.render(shown[["group", "quantity", "platform", "published", "computed", "difference", "status", "where",
                              "note"]], "scorecard", page_length=25, allow_html=True))
    if share is not None:
        body += ("<h3>The replication package present</h3>"
                 + t.render(share, "package-share", page_length=10)
                 + '<p class="note">Counts that depend on the coded sample can match the paper only when all '
                 "753 coded posts are present.</p>")
    section("scorecard", "Reproduction scorecard", body)

    # RQ1
    body = ""
    for stem, caption in (("rq1/security_by_source", "Security threads per source; the share is over threads not "
                           "selected as security posts"), ("rq1/growth_rate", "Fitted exponential growth"),
                          ("rq1/concentration", "Concentration across projects (unselected threads)"),
                          ("rq1/top_projects", "Projects with the most security threads"),
                          ("rq1/paper_by_source", "The paper's id lists: as listed and with renamed repositories merged"),
                          ("rq1/paper_renamed_repositories", "Repositories the paper lists under two names")):
        frame = _read_csv(p.tables / f"{stem}.csv")
        if frame is None:
            continue
        body += f"<h3>{_esc(caption)}</h3>" + t.render(frame, stem) + _downloads(p.tables / stem, page)
    for name, caption in (("growth", "Security threads per month"), ("security_by_source", "Security share per source"),
                          ("lorenz", "Concentration across projects")):
        body += _figure(p.figures / "rq1" / f"{name}.png", page, caption)
    section("rq1", "RQ1: the extent and growth of security reporting", body or "<p>No RQ1 outputs.</p>")

    # RQ2/RQ3
    body = ""
    for stem, caption in (("rq2_taxonomy", "RQ2: the taxonomy of security issues (frequency, coverage)"),
                          ("rq3_taxonomy", "RQ3: the taxonomy of solutions (frequency, coverage)")):
        frame = _read_csv(pt / f"{stem}.csv")
        if frame is not None:
            body += f"<h3>{_esc(caption)}</h3>" + t.render(frame, stem, page_length=50) + _downloads(pt / stem, page)
    for stem, caption in (("rq3_cooccurrence_pairs", "RQ3: co-occurring issue -> solution pairs"),
                          ("rq3_lack_of_solutions_themes", "RQ3: issues left without solutions, by theme")):
        frame = _read_csv(p.tables / "thematic" / f"{stem}.csv")
        if frame is not None:
            body += f"<h3>{_esc(caption)}</h3>" + t.render(frame, stem) + _downloads(p.tables / "thematic" / stem, page)
    for name, caption in (("theme_frequencies", "Mentions by theme and platform"),
                          ("lack_of_solutions", "Lack of solutions by issue theme")):
        body += _figure(p.figures / "thematic" / f"{name}.png", page, caption)
    section("rq2-rq3", "RQ2 and RQ3: issues and solutions", body or "<p>No thematic outputs.</p>")

    # classifier
    body = ""
    comparison = _read_csv(p.tables / "train" / "comparison.csv")
    if comparison is not None:
        keep = [c for c in ("model", "selected", "cv_mcc", "cv_mcc_sd", "test_mcc", "test_mcc_lo", "test_mcc_hi",
                            "test_f1", "test_precision", "test_recall") if c in comparison.columns]
        body += t.render(comparison[keep].round(3), "classifier-comparison") + _downloads(p.tables / "train" / "comparison", page)
    body += _figure(p.figures / "train" / "comparison.png", page, "Classifiers compared on the same folds and test split")
    section("classifier", "The classifier comparison", body)

    # examples
    if examples is not None and len(examples):
        frame = examples.copy()
        frame["thread"] = [f'<a href="{_esc(u)}">{_esc(ttl or u)}</a>' if u else _esc(ttl)
                           for u, ttl in zip(frame["url"], frame["title"].fillna(""))]
        body = ('<p class="note">A few threads per code (first in post-id order), address and title only: texts can '
                "hold personal data.</p>"
                + t.render(frame[["type", "theme", "sub_theme", "code", "source", "thread"]], "code-examples",
                           page_length=25, allow_html=True))
    else:
        body = '<p class="note">No example threads were given to the report.</p>'
    section("examples", "Example threads per code", body)

    # notebooks
    if notebooks:
        items = "".join(f'<li><a href="{_esc(_rel(path, page))}">{_esc(name)}</a></li>' for name, path in notebooks)
        body = f"<p>Every stage's executed notebook, exported to HTML (opens without a network):</p><ul>{items}</ul>"
    else:
        body = f'<p class="note">No executed notebook in <code>{_esc(_rel(p.notebooks, page))}</code>.</p>'
    section("notebooks", "Executed notebooks", body)

    # provenance
    code = provenance.code_ids(p.root)
    lock = provenance.input_digests(p.inputs, root=p.root)
    checksums = provenance.data_checksums(p.manifest)
    versions = provenance.package_versions()
    body = ("<p>This page names what it was built from by content only: no commit id and no time are written here, "
            "so that rerunning the pipeline on the same inputs leaves the committed page unchanged. The code is named by "
            "the git tree ids of its folders as they were on disk (<code>git rev-parse HEAD:src</code> prints the same "
            "id once they are committed), the results it shows by the md5 of each file (as DVC records them), the "
            "data by the SHA-256 of each external file.</p>")
    body += "<h3>Code</h3><ul>" + "".join(f"<li><code>{_esc(k)}/</code>: <code>{_esc(v)}</code></li>"
                                          for k, v in code.items()) + "</ul>"
    if lock:
        body += "<h3>Results shown (MD5)</h3>" + t.render(pd.DataFrame(lock), "inputs", page_length=10)
    if checksums:
        body += "<h3>External data (data/external/manifest.json)</h3>" + t.render(pd.DataFrame(checksums), "data-checksums")
    body += "<h3>Packages</h3>" + t.render(pd.DataFrame(sorted(versions.items()), columns=["package", "version"]),
                                          "packages", page_length=25)
    params = provenance.params_text(p.params)
    if params:
        body += f"<h3>Parameters (params.yaml)</h3><pre>{_esc(params)}</pre>"
    section("provenance", "Provenance", body)

    links = "".join(f'<a href="#{a}">{_esc(title)}</a>' for a, title in nav)
    document = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{_esc(PAGE_TITLE)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_esc(PAGE_TITLE)}</h1><p>A reproduction and extension of {_esc(PAPER_TITLE)}, {_esc(PAPER)}.</p>"
        "<p>Built by the pipeline's <code>report</code> stage from the files under <code>reports/</code>.</p></header>\n"
        f"<nav>{links}</nav>\n<main>\n{_Tables.init_html() if t.count else ''}\n" + "\n".join(parts)
        + f'\n</main>\n<div id="{SELF_CHECK_ID}" hidden="hidden"></div>\n<script>{SELF_CHECK_JS}</script>\n</body>\n</html>\n'
    )
    result.written.append(write_text(p.written("out"), document))
    result.written = sorted(set(result.written))
    return result


__all__ = ["PAGE_TITLE", "ReportPaths", "ReportResult", "SELF_CHECK_ID", "build_report"]
