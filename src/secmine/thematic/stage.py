"""The ``thematic`` stage: read a coded sample, count, write the RQ2/RQ3 tables, figures and metrics.

Inputs (each a parameter; ``""`` or ``"replication"`` means the replication package's file):

* ``coded_sample``: a CSV ``source, id, issue, solution`` (default ``theme/mapped.csv``);
* ``codebook``: a YAML codebook (:meth:`secmine.codebook.Codebook.from_yaml`), or a folder holding
  ``issue_theme_summary.csv`` and ``solution_theme_summary.csv`` (default: the package's ``theme/``);
* ``texts``: the posts' texts, to check that every coded post exists: the package's
  ``theme/data.xlsx`` (default), a CSV/Parquet file with a ``post_id`` (or ``id``) column, or
  ``none`` to skip the check (a warning says so).

Bad input: an unknown code or a duplicated post id is an error naming file, row and field (with
the closest codes as suggestions); a code listed twice in a post, a post with no issue code, a
post missing from the texts or a post whose source differs from the texts' is a listed warning
(``reports/tables/thematic_warnings.*`` and the executed notebook).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine import config
from secmine.codebook import Codebook, CodebookError
from secmine.errors import SecmineError
from secmine.replication import POSTS_FILE, CodedSample, ReplicationError, load_coded_sample, load_posts
from secmine.thematic import counting, figures, heatmap, paper, paper_tables, tables

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

DEFAULT_WORDS = {"", "replication", "default"}
NO_TEXTS_WORDS = {"none", "skip", "no"}
METRICS_NAME = "thematic.json"
FIGURES_SUBDIR = "thematic"
PAPER_SUBDIR = "paper"


class ThematicInputError(SecmineError, ValueError):
    """A parameter of the stage names a file that cannot be used."""


def _is_default(value: str | os.PathLike[str] | None) -> bool:
    return value is None or str(value).strip().casefold() in DEFAULT_WORDS


def resolve_codebook(value: str | os.PathLike[str] | None, root: Path) -> Codebook:
    """The codebook a parameter names (see the module docstring)."""
    if _is_default(value):
        return Codebook.from_replication(root)
    path = Path(str(value))
    if path.is_dir():
        if (path / "issue_theme_summary.csv").is_file():
            return Codebook.from_summary_csvs(path / "issue_theme_summary.csv", path / "solution_theme_summary.csv")
        if (path / "theme" / "issue_theme_summary.csv").is_file():
            return Codebook.from_replication(path)
        raise ThematicInputError(f"{path}: folder holds no issue_theme_summary.csv (nor theme/issue_theme_summary.csv)")
    if path.suffix.casefold() in {".yaml", ".yml"}:
        return Codebook.from_yaml(path)
    raise ThematicInputError(f"{path}: a codebook is a .yaml file or a folder of *_theme_summary.csv files")


def resolve_coded(value: str | os.PathLike[str] | None, root: Path) -> Path:
    """The coded-sample CSV a parameter names."""
    from secmine.replication import CODED_FILE

    path = root / CODED_FILE if _is_default(value) else Path(str(value))
    if not path.is_file():
        raise ThematicInputError(f"{path}: coded sample not found")
    return path


def resolve_texts(value: str | os.PathLike[str] | None, root: Path) -> pd.DataFrame | None:
    """The posts' texts a parameter names, as a frame with ``post_id`` (and ``source`` when known);
    None when the check is switched off."""
    import pandas as pd

    if value is not None and str(value).strip().casefold() in NO_TEXTS_WORDS:
        return None
    if _is_default(value):
        return load_posts(root)
    path = Path(str(value))
    if not path.is_file():
        raise ThematicInputError(f"{path}: texts file not found")
    if path.name == Path(POSTS_FILE).name and path.parent.name == Path(POSTS_FILE).parent.name:
        return load_posts(path.parent.parent)
    suffix = path.suffix.casefold()
    if suffix == ".csv":
        from secmine.inputs import InputError, read_csv

        try:
            frame = read_csv(path, what="texts CSV", dtype=str, keep_default_na=False)
        except InputError as exc:
            raise ThematicInputError(str(exc)) from None
    elif suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        raise ThematicInputError(f"{path}: texts are theme/data.xlsx, a .csv or a .parquet file")
    column = "post_id" if "post_id" in frame.columns else "id" if "id" in frame.columns else None
    if column is None:
        raise ThematicInputError(f"{path}: missing column 'post_id' (or 'id'); found {list(frame.columns)}")
    out = pd.DataFrame({"post_id": frame[column].astype(str).str.strip()})
    if "source" in frame.columns:
        out["source"] = frame["source"].astype(str)
    return out


def load_inputs(
    coded_sample: str | os.PathLike[str] | None = None,
    codebook: str | os.PathLike[str] | None = None,
    texts: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> CodedSample:
    """The coded sample, matched to the codebook and checked against the texts.

    Raises :class:`ReplicationError` (unknown code, duplicated post, bad source: file, row and
    field named) or :class:`ThematicInputError` (a parameter names no usable file).
    """
    root_path = Path(root) if root is not None else config.replication_dir()
    book = resolve_codebook(codebook, root_path)
    coded_path = resolve_coded(coded_sample, root_path)
    posts = resolve_texts(texts, root_path)
    sample = load_coded_sample(root_path, path=coded_path, codebook=book, posts=posts)
    if posts is None:
        sample.warnings.append(f"{coded_path}: texts not checked (texts = {texts!r}); posts may lack a text")
    elif "source" in posts.columns:
        text_source = dict(zip(posts["post_id"], posts["source"]))
        for position, post in enumerate(sample.posts.itertuples(index=False)):
            other = text_source.get(post.post_id)
            if other is not None and other != post.source:
                row = position + 2  # the loader keeps file order; the header is row 1
                sample.warnings.append(
                    f"{coded_path}, row {row}, field 'source': {post.post_id!r} is {post.source!r} here but "
                    f"{other!r} in the texts (source differs; the coded file's source is counted)"
                )
    return sample


def build_metrics(sample: CodedSample, counts: counting.ThematicCounts, comparison: pd.DataFrame) -> dict[str, Any]:
    """Key totals for ``dvc metrics``."""
    kinds = tables.warnings_frame(sample.warnings)["kind"].value_counts()
    top = counts.pairs.iloc[0] if len(counts.pairs) else None

    def themes(code_type: str) -> dict[str, dict[str, float]]:
        table = counts.themes[code_type]  # type: ignore[index]
        return {
            row.theme: {"mentions": int(row.total_freq), "posts": int(row.total_posts),
                        "coverage_pct": round(float(row.total_pct), 2)}
            for row in table.itertuples(index=False)
        }

    lack = counts.lack_themes[counts.lack_themes["platform"] == "total"]
    return {
        "codebook_version": sample.codebook.version,
        "cooccurrence_multiplicity": counts.multiplicity,
        "posts": counts.n_posts,
        "posts_without_issue": counts.posts_without["issue"]["total"],
        "posts_without_solution": counts.posts_without["solution"]["total"],
        "issue_mentions": {g: int(counts.codes["issue"][g].sum()) for g in counting.MAIN_GROUPS},
        "solution_mentions": {g: int(counts.codes["solution"][g].sum()) for g in counting.MAIN_GROUPS},
        "issue_codes_used": int((counts.codes["issue"]["total"] > 0).sum()),
        "solution_codes_used": int((counts.codes["solution"]["total"] > 0).sum()),
        "issue_themes": themes("issue"),
        "solution_themes": themes("solution"),
        "pct_without_solution_by_issue_theme": {
            row.theme: (round(float(row.pct_without_solution), 2) if row.posts else None)
            for row in lack.itertuples(index=False)
        },
        "top_pair": {
            "issue": None if top is None else str(top["issue_code"]),
            "solution": None if top is None else str(top["solution_code"]),
            "count": 0 if top is None else int(top["count"]),
        },
        "warnings": {
            "total": len(sample.warnings),
            **{str(k): int(v) for k, v in kinds.items()},
        },
        "paper_rows_matching": int(comparison["matches"].sum()),
        "paper_rows": len(comparison),
    }


@dataclass
class ThematicResult:
    sample: CodedSample
    counts: counting.ThematicCounts
    comparison: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    metrics: dict[str, Any]
    written: list[Path] = field(default_factory=list)
    # the paper's forms: Fig. 3 as published and plain (by heatmap.TABLE_STEMS / FIGURE_STEMS key)
    # and the RQ2/RQ3 taxonomy tables (by paper_tables.STEMS value)
    heatmaps: dict[str, pd.DataFrame] = field(default_factory=dict)
    paper_figures: dict[str, Figure] = field(default_factory=dict)
    taxonomy: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def warnings(self) -> pd.DataFrame:
        return self.tables["thematic_warnings"]


def output_paths(
    out_dir: str | os.PathLike[str],
    *,
    paper_tables_dir: str | os.PathLike[str] | None = None,
    paper_figures_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Where the stage writes: ``tables``, ``figures`` and ``metrics`` under ``out_dir``, and the
    paper's forms (``paper_tables``: Fig. 3 tables and the taxonomy tables; ``paper_figures``:
    Fig. 3) under ``out_dir/tables/paper`` and ``out_dir/figures/paper`` unless given."""
    base = Path(out_dir)
    return {
        "tables": base / "tables",
        "figures": base / "figures" / FIGURES_SUBDIR,
        "metrics": base / "metrics" / METRICS_NAME,
        "paper_tables": Path(paper_tables_dir) if paper_tables_dir is not None else base / "tables" / PAPER_SUBDIR,
        "paper_figures": Path(paper_figures_dir) if paper_figures_dir is not None else base / "figures" / PAPER_SUBDIR,
    }


def paper_output_files(paths: dict[str, Path]) -> list[Path]:
    """The files the stage writes into the shared ``paper`` folders (declare them one by one in DVC:
    the ``rq1`` and ``report`` stages write into the same folders)."""
    return sorted(
        heatmap.output_files(paths["paper_tables"], paths["paper_figures"])
        + paper_tables.output_files(paths["paper_tables"])
    )


def run(
    coded_sample: str | os.PathLike[str] | None = None,
    codebook: str | os.PathLike[str] | None = None,
    texts: str | os.PathLike[str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = "reports",
    multiplicity: bool = True,
    root: str | os.PathLike[str] | None = None,
    close_figures: bool = False,
    tables_dir: str | os.PathLike[str] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    metrics_path: str | os.PathLike[str] | None = None,
    paper_tables_dir: str | os.PathLike[str] | None = None,
    paper_figures_dir: str | os.PathLike[str] | None = None,
) -> ThematicResult:
    """Run the stage: load and check, count, build and (when ``out_dir`` is given) write every
    table, figure and the metrics.  ``multiplicity``: see :mod:`secmine.thematic.counting`.

    Also the paper's forms (see :func:`output_paths` for where): Fig. 3 as published and plain
    (:mod:`secmine.thematic.heatmap`; always from mention x mention pair counts, as the authors
    count, whatever ``multiplicity`` says) and the RQ2/RQ3 taxonomy tables
    (:mod:`secmine.thematic.paper_tables`)."""
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    from secmine.io import write_json

    with tqdm(total=4, desc="thematic", unit="step", leave=False) as steps:
        sample = load_inputs(coded_sample, codebook, texts, root=root)
        steps.update()
        counts = counting.count_sample(sample, multiplicity=bool(multiplicity))
        comparison = paper.compare_with_paper(counts, sample.codebook)
        built = tables.build_tables(counts, sample.codebook, comparison=comparison, warnings=sample.warnings)
        metrics = build_metrics(sample, counts, comparison)
        steps.update()
        figs = figures.build_figures(counts)
        try:
            heatmaps, heatmap_figs = heatmap.build(sample.mentions, sample.codebook, n_posts=counts.n_posts["total"])
        except heatmap.HeatmapError as exc:
            sample.warnings.append(f"Fig. 3 not drawn: {exc}")
            heatmaps, heatmap_figs = {}, {}
        taxonomy = paper_tables.sample_tables(sample)
        if heatmaps:
            check = heatmap.compare_with_published(heatmaps["published"])
            metrics["fig3_cells_matching_paper"] = int(check["matches"].sum())
            metrics["fig3_cells"] = len(check)
        steps.update()
        written: list[Path] = []
        if out_dir is not None or tables_dir is not None:
            paths = output_paths(out_dir or ".", paper_tables_dir=paper_tables_dir, paper_figures_dir=paper_figures_dir)
            written += tables.write_tables(built, Path(tables_dir or paths["tables"]), sample.codebook)
            written += figures.write_figures(figs, Path(figures_dir or paths["figures"]))
            if heatmaps:
                written += heatmap.write(
                    heatmaps, heatmap_figs, tables_dir=paths["paper_tables"], figures_dir=paths["paper_figures"]
                )
            written += paper_tables.write_taxonomy_tables(sample, paths["paper_tables"])
            written.append(write_json(metrics_path or paths["metrics"], metrics))
        steps.update()
        if close_figures:
            for fig in [*figs.values(), *heatmap_figs.values()]:
                plt.close(fig)
    return ThematicResult(
        sample, counts, comparison, built, figs, metrics, sorted(written),
        heatmaps=heatmaps, paper_figures=heatmap_figs, taxonomy=taxonomy,
    )


__all__ = [
    "CodebookError",
    "ReplicationError",
    "ThematicInputError",
    "ThematicResult",
    "build_metrics",
    "load_inputs",
    "output_paths",
    "paper_output_files",
    "resolve_codebook",
    "resolve_coded",
    "resolve_texts",
    "run",
]
