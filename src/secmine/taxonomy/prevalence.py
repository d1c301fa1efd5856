"""The ``tag`` stage: every security thread tagged, predicted prevalence, valid estimates.

1. :func:`tag_security_threads` applies the saved tagger to every thread the classify stage marked
   security.  A thread the tagger was trained on gets its out-of-fold prediction (from a model that
   never saw it; ``prediction = out_of_fold``), every other thread the tagger's (``model``).
2. :func:`predicted_prevalence` -- the plug-in share of threads predicted to carry each label, per
   source (platform and kind), per period and per repository, with figures.
3. :func:`secmine.taxonomy.ppi.prevalence_estimates` -- the three estimates side by side, valid
   only for what the coded sample is a random sample of (:func:`secmine.taxonomy.ppi.check_coded_sample`).
4. :func:`run_coverage` -- the coverage study on the tagger's out-of-fold predictions.

:func:`run_tag` does all four and writes ``data/processed/tagged.parquet``, the tables, figures and
metrics.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.taxonomy.labels import LabelSpace
from secmine.taxonomy.tagger import DIGITS, Tagger, long_rows, oof_matrices, read_oof, tag_texts

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

TAGGED_META = ["id", "platform", "kind", "source", "repo", "created_at", "prediction"]


@dataclass(frozen=True)
class TagParams:
    """Parameters of the ``tag`` stage (a ``tag`` block of ``params.yaml``)."""

    chunk_size: int = 256
    num_threads: int = 2
    top_repos: int = 15
    period: str = "Q"  # pandas period of the time tables: Q (quarter), Y or M
    confidence: float = 0.95
    ppi_input: str = "probability"  # what PPI corrects: the tagger's probability or its 0/1 prediction
    power_tuning: bool = True  # PPI++ weight per label
    min_positives: int = 5  # fewer coded posts with (or without) a label: Wilson instead of PPI
    coverage_n: str = "50,100,200,400"
    coverage_repeats: int = 1000
    coverage_seed: int = 20260115
    coverage_min_remainder: int = 100
    text_column: str = "text"  # columns of a CSV input (secmine tag --input FILE.csv)
    id_column: str = "id"


@dataclass
class TagResult:
    tagged: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- tagging -----------------------------------------------------------------------------------


def tag_security_threads(
    tagger: Tagger,
    security: pd.DataFrame,
    texts: list[str],
    *,
    oof: pd.DataFrame | None = None,
    chunk_size: int = 256,
    progress: bool = True,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``(tagged long frame, probabilities, predictions)`` of the security threads (rows of
    ``security``: ``id, platform, kind, source, repo, created_at``; ``texts`` in the same order)."""
    import pandas as pd

    space = tagger.space
    ids = security["id"].astype(str).tolist()
    P = np.zeros((len(ids), len(space)), dtype=np.float64)
    H = np.zeros((len(ids), len(space)), dtype=np.uint8)
    from_oof = np.zeros(len(ids), dtype=bool)
    if oof is not None and len(oof):
        _, oof_p, oof_h = oof_matrices(oof, space)
        by_thread = {t: r for r, t in enumerate(oof["thread_id"].astype(str))}
        for r, ident in enumerate(ids):
            if ident in by_thread:
                P[r], H[r], from_oof[r] = oof_p[by_thread[ident]], oof_h[by_thread[ident]], True
    todo = np.flatnonzero(~from_oof)
    proba, predicted = tag_texts(tagger, [texts[i] for i in todo], chunk_size=chunk_size, progress=progress)
    if len(todo):
        P[todo], H[todo] = proba, predicted
    rows = long_rows(ids, space, P, H)
    meta = security[["id", "platform", "kind", "source", "repo", "created_at"]].copy().reset_index(drop=True)
    meta["id"] = meta["id"].astype(str)
    meta["created_at"] = meta["created_at"].astype(str).replace({"None": "", "NaT": "", "nan": ""})
    meta["prediction"] = np.where(from_oof, "out_of_fold", "model")
    tagged = meta.loc[np.repeat(np.arange(len(meta)), len(space))].reset_index(drop=True)
    tagged = pd.concat([tagged, rows.drop(columns=["id"])], axis=1)
    return tagged, np.round(P, DIGITS), H


# -- plug-in prevalence ------------------------------------------------------------------------


def _shares(
    frame: pd.DataFrame, H: np.ndarray, space: LabelSpace, by: list[str], columns: np.ndarray
) -> pd.DataFrame:
    import pandas as pd

    labels = space.frame()
    rows = []
    groups = [
        (k if isinstance(k, tuple) else (k,), idx) for k, idx in frame.groupby(by, sort=True).indices.items()
    ]
    for key, idx in groups:
        part = H[idx][:, columns]
        for i, j in enumerate(columns):
            rows.append(
                dict(zip(by, key))
                | {
                    "type": labels.loc[j, "type"],
                    "level": labels.loc[j, "level"],
                    "label": labels.loc[j, "label"],
                    "threads": len(idx),
                    "predicted_threads": int(part[:, i].sum()),
                    "share": float(part[:, i].mean()) if len(idx) else np.nan,
                }
            )
    return pd.DataFrame(rows).round(DIGITS)


def predicted_prevalence(
    security: pd.DataFrame, H: np.ndarray, space: LabelSpace, *, top_repos: int = 15, period: str = "Q"
) -> tuple[dict[str, pd.DataFrame], dict[str, Figure]]:
    """Plug-in shares: per source (and ``all``), per period (themes), per repository (themes, the
    ``top_repos`` repositories with the most security threads)."""
    import pandas as pd

    frame = security.reset_index(drop=True).copy()
    every = np.arange(len(space))
    themes = space.positions(level="theme")
    platform = _shares(frame, H, space, ["source"], every)
    overall = _shares(frame.assign(source="all"), H, space, ["source"], every)
    tables = {"tag_prevalence_platform": pd.concat([platform, overall], ignore_index=True)}
    created = pd.to_datetime(frame["created_at"], utc=True, errors="coerce", format="ISO8601")
    dated = created.notna().to_numpy()
    if dated.any():
        periods = created[dated].dt.tz_localize(None).dt.to_period(period).astype(str).to_numpy()
        by_time = _shares(
            frame[dated].assign(period=periods).reset_index(drop=True), H[dated], space, ["period"], themes
        )
        tables["tag_prevalence_time"] = by_time
    counts = frame.groupby(["platform", "repo"]).size().sort_values(ascending=False, kind="stable")
    top = counts.head(top_repos).index
    keep = pd.MultiIndex.from_frame(frame[["platform", "repo"]]).isin(top)
    by_repo = _shares(frame[keep].reset_index(drop=True), H[keep], space, ["platform", "repo"], themes)
    by_repo["_o"] = [list(top).index((p, r)) for p, r in zip(by_repo["platform"], by_repo["repo"])]
    tables["tag_prevalence_repo"] = (
        by_repo.sort_values(["_o", "type", "label"], kind="stable").drop(columns="_o").reset_index(drop=True)
    )
    figures = {"tag_prevalence_platform": _platform_figure(tables["tag_prevalence_platform"])}
    if "tag_prevalence_time" in tables:
        figures["tag_prevalence_time"] = _time_figure(tables["tag_prevalence_time"])
    figures["tag_prevalence_repo"] = _repo_figure(tables["tag_prevalence_repo"])
    return tables, figures


def _platform_figure(table: pd.DataFrame) -> Figure:
    from matplotlib.figure import Figure

    part = table[table["level"] == "theme"]
    sources = list(dict.fromkeys(part["source"]))
    fig = Figure(figsize=(8.5, 3.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, code_type in zip(axes, ("issue", "solution")):
        rows = part[part["type"] == code_type]
        labels = list(dict.fromkeys(rows["label"]))
        width = 0.8 / max(len(sources), 1)
        for i, source in enumerate(sources):
            values = (
                rows[rows["source"] == source]
                .set_index("label")
                .reindex(labels)["share"]
                .to_numpy(dtype=float)
            )
            ax.bar(np.arange(len(labels)) + (i - (len(sources) - 1) / 2) * width, values, width, label=source)
        ax.set_xticks(np.arange(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{code_type} themes")
    axes[0].set_ylabel("share of security threads (predicted)")
    axes[1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _time_figure(table: pd.DataFrame) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, code_type in zip(axes, ("issue", "solution")):
        rows = table[table["type"] == code_type]
        for label in dict.fromkeys(rows["label"]):
            part = rows[rows["label"] == label]
            ax.plot(part["period"], part["share"], marker=".", label=label)
        ticks = list(dict.fromkeys(rows["period"]))
        step = max(1, len(ticks) // 8)
        ax.set_xticks(ticks[::step], ticks[::step], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{code_type} themes over time")
        ax.legend(fontsize=6, frameon=False)
    axes[0].set_ylabel("share of security threads (predicted)")
    fig.tight_layout()
    return fig


def _repo_figure(table: pd.DataFrame) -> Figure:
    from matplotlib.figure import Figure

    table = table.assign(column=table["type"] + ": " + table["label"])
    repos = list(dict.fromkeys(table["repo"]))
    columns = list(dict.fromkeys(table["column"]))
    grid = table.pivot_table(index="repo", columns="column", values="share", sort=False).reindex(
        index=repos, columns=columns
    )
    fig = Figure(figsize=(9.0, 0.32 * len(repos) + 2.2))
    ax = fig.subplots()
    image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(repos)), repos, fontsize=7)
    ax.set_xticks(np.arange(len(columns)), columns, rotation=35, ha="right", fontsize=7)
    fig.colorbar(image, ax=ax, label="share of the repository's security threads")
    fig.tight_layout()
    return fig


def estimates_figure(table: pd.DataFrame) -> Figure:
    """Theme shares per stratum: the sample share (Wilson), the plug-in share and PPI."""
    from matplotlib.figure import Figure

    part = table[table["level"] == "theme"]
    strata = list(dict.fromkeys(part["stratum"]))
    fig = Figure(figsize=(8.5, 1.9 * len(strata) + 1.0))
    axes = np.atleast_2d(fig.subplots(len(strata), 2, sharex=True, squeeze=False))
    for r, stratum in enumerate(strata):
        for c, code_type in enumerate(("issue", "solution")):
            ax = axes[r, c]
            rows = part[(part["stratum"] == stratum) & (part["type"] == code_type)].reset_index(drop=True)
            y = np.arange(len(rows))[::-1]
            for offset, (share, lo, hi, name, marker) in zip(
                (0.2, 0.0, -0.2),
                (
                    ("sample_share", "sample_lo", "sample_hi", "(a) coded sample, Wilson", "o"),
                    ("plugin_share", None, None, "(b) plug-in (no valid interval)", "x"),
                    ("ppi_share", "ppi_lo", "ppi_hi", "(c) PPI", "s"),
                ),
            ):
                values = rows[share].to_numpy(dtype=float)
                if np.isnan(values).all():
                    continue
                err = None
                if lo is not None:
                    err = np.clip(np.nan_to_num(np.vstack([values - rows[lo], rows[hi] - values])), 0, None)
                ax.errorbar(values, y + offset, xerr=err, fmt=marker, capsize=2, ms=4, label=name)
            ax.set_yticks(y, rows["label"], fontsize=7)
            ax.set_title(f"{stratum}: {code_type} themes", fontsize=9)
            ax.set_xlim(0, 1)
    axes[0, 1].legend(fontsize=6, frameon=False)
    axes[-1, 0].set_xlabel("share of security threads")
    axes[-1, 1].set_xlabel("share of security threads")
    fig.tight_layout()
    return fig


# -- the stage ---------------------------------------------------------------------------------


def run_coverage(
    model_dir: str | os.PathLike[str],
    params: TagParams | None = None,
    *,
    progress: bool = False,
) -> Any:
    """The coverage study (:func:`secmine.taxonomy.ppi.coverage_study`) on the out-of-fold
    predictions saved with the tagger in ``model_dir``."""
    from secmine.taxonomy.labels import LabelSpace
    from secmine.taxonomy.ppi import PAPER_CODED_POSTS, PAPER_POPULATION, coverage_study
    from secmine.taxonomy.tagger import read_card

    params = params or TagParams()
    card = read_card(model_dir)
    space = LabelSpace.from_json(card["codebook"])
    Y, P, H = oof_matrices(read_oof(model_dir), space)
    n_values = [int(v) for v in str(params.coverage_n).split(",") if v.strip()]
    return coverage_study(
        Y,
        P if params.ppi_input == "probability" else H.astype(np.float64),
        space,
        n_values=n_values,
        repeats=int(params.coverage_repeats),
        seed=int(params.coverage_seed),
        confidence=float(params.confidence),
        min_remainder=int(params.coverage_min_remainder),
        power_tuning=bool(params.power_tuning),
        paper_n=PAPER_CODED_POSTS,
        population_size=PAPER_POPULATION,
        min_positives=int(params.min_positives),
        progress=progress,
    )


def _paper_sample(
    space: LabelSpace, replication_root: str | os.PathLike[str] | None, notes: list[str]
) -> Any:
    """The replication package's coded posts as a sample of the paper's population, when the
    package is there and the tagger uses its codebook; else ``None`` with a note."""
    from secmine import config
    from secmine.codebook import Codebook, CodebookError
    from secmine.replication import CODED_FILE
    from secmine.taxonomy.ppi import check_coded_sample

    root = Path(replication_root) if replication_root is not None else config.replication_dir()
    try:
        same = (root / CODED_FILE).is_file() and Codebook.from_replication(root).version == space.version
    except CodebookError:
        same = False
    if not same:
        from secmine.taxonomy.data import shown_path

        notes.append(
            f"{shown_path(root)}: no replication package with the tagger's codebook, "
            "so no sample share for the "
            "paper's population"
        )
        return None
    return check_coded_sample("replication", space, sample_path=None, classified=None, replication_root=root)


def run_tag(
    model_dir: str | os.PathLike[str],
    classified_path: str | os.PathLike[str],
    corpus_path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] = "data/processed/tagged.parquet",
    sample_path: str | os.PathLike[str] | None = "data/processed/sample.csv",
    sample_params: Any = None,
    replication_root: str | os.PathLike[str] | None = None,
    tables_dir: str | os.PathLike[str] = "reports/tables/tag",
    figures_dir: str | os.PathLike[str] = "reports/figures/tag",
    metrics_path: str | os.PathLike[str] | None = "reports/metrics/tag.json",
    params: TagParams | None = None,
    coded_sample: str | os.PathLike[str] | None = None,
    classified: pd.DataFrame | None = None,
    corpus: pd.DataFrame | None = None,
    write: bool = True,
    progress: bool = True,
) -> TagResult:
    """The ``tag`` stage (see the module docstring).  ``sample_params``: the sample stage's
    :class:`secmine.analysis.sampling.SampleParams` (default: its defaults); ``coded_sample``: a
    resolved coding of the sample stage's ``sample.csv`` (None: not coded yet)."""
    from secmine.analysis.data import check_classified, load_classified
    from secmine.analysis.sampling import SampleParams, parse_strata
    from secmine.detect.corpus import load_threads
    from secmine.text import frame_texts
    from secmine.io import save_figure, write_json, write_parquet, write_table
    from secmine.taxonomy.ppi import check_coded_sample, prevalence_estimates

    params = params or TagParams()
    sample_params = sample_params or SampleParams()
    # embeddings in memory only: the card's cache folder is the train-tagger stage's output, which
    # this stage must not change (DVC would then see train-tagger's output modified and rerun it)
    tagger = Tagger.load(model_dir, num_threads=params.num_threads, embedding_cache="")
    frame = (
        check_classified(classified, where="classified frame")
        if classified is not None
        else load_classified(classified_path)
    )
    security = frame[frame["label"] == 1].reset_index(drop=True)
    threads = (
        corpus
        if corpus is not None
        else load_threads(corpus_path, columns=["id", "title", "body", "comments"])
    )
    threads = (
        threads[threads["id"].isin(set(security["id"]))].set_index("id").reindex(security["id"]).reset_index()
    )
    if threads["title"].isna().any():
        missing = threads.loc[threads["title"].isna(), "id"].iloc[0]
        raise ValueError(
            f"{corpus_path}: security thread {missing!r} of {classified_path} is not in the corpus; "
            "rerun the classify stage on this corpus"
        )
    texts = frame_texts(threads, tagger.max_chars)
    oof = read_oof(model_dir)
    tagged, P, H = tag_security_threads(
        tagger, security, texts, oof=oof, chunk_size=params.chunk_size, progress=progress
    )
    result = TagResult(tagged=tagged)
    tables, figures = predicted_prevalence(
        security, H, tagger.space, top_repos=params.top_repos, period=params.period
    )
    result.tables.update(tables)
    result.figures.update(figures)
    check = check_coded_sample(
        coded_sample,
        tagger.space,
        sample_path=sample_path,
        classified=frame,
        sample_params=sample_params,
        replication_root=replication_root,
    )
    paper = _paper_sample(tagger.space, replication_root, result.notes)
    if paper is not None and paper.coded is not None:
        from secmine.analysis.sampling import stratum_sources

        strata = parse_strata(sample_params.strata)
        stratum_of = {src: name for name in strata for src in stratum_sources(name)}
        paper.coded = paper.coded.assign(stratum=[stratum_of.get(s, s) for s in paper.coded["source"]])
    estimates, validity = prevalence_estimates(
        security[["id", "source"]],
        P,
        H,
        tagger.space,
        check,
        strata=parse_strata(sample_params.strata),
        paper=paper,
        confidence=params.confidence,
        ppi_input=params.ppi_input,
        power_tuning=params.power_tuning,
        min_positives=params.min_positives,
    )
    result.tables["taxonomy_prevalence"] = estimates
    result.tables["taxonomy_prevalence_validity"] = validity
    result.figures["taxonomy_prevalence"] = estimates_figure(estimates)
    coverage = run_coverage(model_dir, params, progress=progress) if params.coverage_repeats > 0 else None
    if coverage is not None:
        result.tables["ppi_coverage"] = coverage.headline
        result.tables["ppi_coverage_labels"] = coverage.detail
        result.tables["ppi_sample_size"] = coverage.sample_size
        result.figures["ppi_coverage"] = coverage.figure
    out_of_fold = int((tagged.drop_duplicates("id")["prediction"] == "out_of_fold").sum())
    notes = [
        *result.notes,
        (
            f"{out_of_fold} of {len(security)} security threads are coded posts the tagger was trained on: "
            "their predictions are out of fold"
        ),
    ]
    notes.append(f"coded sample: {check.case}: {check.reason}")
    notes += check.notes + (coverage.notes if coverage is not None else [])
    result.notes = notes
    overall = tables["tag_prevalence_platform"]
    overall = overall[(overall["source"] == "all") & (overall["level"] == "theme")]
    result.metrics = {
        "tagger": tagger.family,
        "codebook_version": tagger.space.version,
        "security_threads": len(security),
        "out_of_fold_threads": int((tagged.drop_duplicates("id")["prediction"] == "out_of_fold").sum()),
        "predicted_theme_share": {f"{r.type}|{r.label}": r.share for r in overall.itertuples()},
        "coded_sample": check.describe(),
        "params": asdict(params),
        "coverage": coverage.metrics if coverage is not None else None,
        "notes": notes,
    }
    if write:
        write_parquet(tagged, output)
        for name, table in result.tables.items():
            write_table(table, Path(tables_dir) / name, float_format="{:.3f}")
        for name, figure in result.figures.items():
            save_figure(figure, Path(figures_dir) / name)
        if metrics_path is not None:
            write_json(metrics_path, result.metrics)
    return result


def input_prevalence(rows: pd.DataFrame) -> tuple[pd.DataFrame, Figure, dict[str, Any]]:
    """For tagged rows of any input (``secmine tag --input FILE``): the share of threads each label
    is predicted for (a plug-in share over that input, with no interval), a figure of the themes,
    and metrics."""
    import matplotlib.pyplot as plt

    threads = int(rows["id"].nunique())
    table = (
        rows.groupby(["type", "level", "label"], sort=False)["predicted"]
        .agg(threads="sum")
        .reset_index()
        .assign(share=lambda t: t["threads"] / threads if threads else float("nan"))
    )
    themes = table[table["level"] == "theme"]
    fig, ax = plt.subplots(figsize=(7.0, 0.4 * max(len(themes), 2) + 1.0))
    labels = [f"{t}: {name}" for t, name in zip(themes["type"], themes["label"], strict=True)]
    ax.barh(labels[::-1], (100 * themes["share"]).tolist()[::-1], color="tab:blue")
    ax.set_xlabel(f"% of the {threads:,} threads tagged")
    ax.set_title("Predicted themes (plug-in shares of the tagged input)")
    fig.tight_layout()
    metrics = {"threads": threads, "labels": int(rows.groupby("id").size().iloc[0]) if threads else 0,
               "with_a_theme": int(rows[(rows["level"] == "theme") & (rows["predicted"] == 1)]["id"].nunique())}
    return table, fig, metrics
