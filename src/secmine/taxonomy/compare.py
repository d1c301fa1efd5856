"""A fair comparison of the tagger families and the training of the chosen one.

Every family is cross-validated on the same grouped, iteratively stratified folds
(:func:`secmine.taxonomy.folds.grouped_multilabel_folds`).  Inside each outer fold the per-label
thresholds are chosen on the training part only:

* cheap families (``tfidf_logreg``, ``embed_logreg``) run an inner cross-validation on the training
  part, choose the thresholds on its out-of-fold probabilities, then refit on the whole training
  part and predict the outer fold;
* ``finetune`` is fitted on the inner folds but one of the training part and chooses its thresholds
  on that held-out inner fold (one fine-tune per outer fold);
* ``zero_shot`` learns nothing but its thresholds, chosen on the training part.

Scores are out-of-fold: per level (theme, sub-theme, code; issues, solutions and both) the micro-
and macro-F1 with bootstrap 95% intervals over posts, and per label F1 with support.  Macro-F1
averages over the labels that occur in the coded posts.  A label with fewer than ``min_support``
coded posts is *too rare to learn*, one with more whose out-of-fold F1 stays below ``min_f1`` is
*not learned*; both are listed in the tables, the metrics and the model card.

The chosen family (best ``select_by``) is refitted on every coded post, its thresholds chosen on
its out-of-fold probabilities over all folds, and saved (:class:`secmine.taxonomy.tagger.Tagger`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.taxonomy.data import TaggerData
from secmine.taxonomy.folds import choose_thresholds, grouped_multilabel_folds
from secmine.taxonomy.labels import LEVELS, LabelSpace
from secmine.taxonomy.models import DEFAULT_FAMILIES, TaggerSettings, build, parse_families

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

SELECT_BY = ("mean_micro_f1", "mean_macro_f1") + tuple(
    f"{lv}_{m}_f1" for lv in LEVELS for m in ("micro", "macro")
)
TYPES = ("issue", "solution", "all")
DIGITS = 6


class CompareError(ValueError):
    """The comparison cannot run as asked."""


@dataclass
class FamilyResult:
    family: str
    proba: np.ndarray  # out-of-fold, hierarchy-consistent
    predicted: np.ndarray  # out-of-fold, thresholds chosen inside each fold
    fold_thresholds: np.ndarray  # (folds, labels)
    seconds: float


@dataclass
class TrainResult:
    data: TaggerData
    folds: np.ndarray
    results: dict[str, FamilyResult]
    scores: pd.DataFrame  # family, type, level, micro/macro F1 with intervals
    labels: pd.DataFrame  # per label of the chosen family (+ F1 of every family)
    chosen: str
    thresholds: np.ndarray
    metrics: dict[str, Any]
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- metrics -----------------------------------------------------------------------------------


def _counts(Y: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Y = np.asarray(Y, dtype=bool)
    H = np.asarray(H, dtype=bool)
    return (Y & H).astype(np.int64), (~Y & H).astype(np.int64), (Y & ~H).astype(np.int64)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def f1_scores(
    Y: np.ndarray, H: np.ndarray, columns: np.ndarray, *, n_boot: int = 0, seed: int = 0
) -> dict[str, float]:
    """Micro- and macro-F1 over ``columns`` (macro over the columns with a positive in ``Y``), with
    bootstrap 95% intervals over rows when ``n_boot`` > 0 (a resample's macro-F1 averages the
    labels it can score)."""
    Y = np.asarray(Y)[:, columns]
    H = np.asarray(H)[:, columns]
    tp, fp, fn = _counts(Y, H)
    present = Y.sum(axis=0) > 0
    out: dict[str, float] = {"labels": int(present.sum())}
    micro = _f1(tp.sum(), fp.sum(), fn.sum())
    per_label = _f1(tp.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0))
    out["micro_f1"] = float(np.nan_to_num(micro))
    out["macro_f1"] = float(np.nanmean(np.nan_to_num(per_label[present]))) if present.any() else float("nan")
    if n_boot > 0 and len(Y):
        rng = np.random.default_rng(seed)
        weights = np.stack(
            [np.bincount(rng.integers(0, len(Y), len(Y)), minlength=len(Y)) for _ in range(n_boot)]
        )
        TP, FP, FN = weights @ tp[:, present], weights @ fp[:, present], weights @ fn[:, present]
        micro_b = np.nan_to_num(_f1(TP.sum(axis=1), FP.sum(axis=1), FN.sum(axis=1)))
        with np.errstate(invalid="ignore"):
            per = _f1(TP, FP, FN)
            macro_b = (
                np.nanmean(np.where(np.isnan(per), np.nan, per), axis=1)
                if present.any()
                else np.full(n_boot, np.nan)
            )
        for name, values in (("micro_f1", micro_b), ("macro_f1", macro_b)):
            finite = values[np.isfinite(values)]
            lo, hi = np.quantile(finite, [0.025, 0.975]) if finite.size else (np.nan, np.nan)
            out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return out


def score_table(
    Y: np.ndarray, results: dict[str, FamilyResult], space: LabelSpace, *, n_boot: int, seed: int
) -> pd.DataFrame:
    """Per family, type (issue, solution, all) and level: micro/macro F1 with 95% intervals."""
    import pandas as pd

    rows = []
    for family, result in results.items():
        for code_type in TYPES:
            for level in LEVELS:
                columns = space.positions(code_type=None if code_type == "all" else code_type, level=level)
                if columns.size == 0:
                    continue
                scores = f1_scores(Y, result.predicted, columns, n_boot=n_boot, seed=seed)
                rows.append({"family": family, "type": code_type, "level": level} | scores)
    table = pd.DataFrame(rows)
    order = [
        "family",
        "type",
        "level",
        "labels",
        "micro_f1",
        "micro_f1_lo",
        "micro_f1_hi",
        "macro_f1",
        "macro_f1_lo",
        "macro_f1_hi",
    ]
    table = table[[c for c in order if c in table.columns]]
    return table.round(DIGITS)


def selection_score(scores: pd.DataFrame, family: str, select_by: str) -> float:
    part = scores[(scores["family"] == family) & (scores["type"] == "all")].set_index("level")
    if select_by in ("mean_micro_f1", "mean_macro_f1"):
        return float(part[select_by.removeprefix("mean_")].mean())
    level, metric = select_by.rsplit("_", 2)[0], "_".join(select_by.rsplit("_", 2)[1:])
    return float(part.loc[level, metric])


def label_table(
    Y: np.ndarray,
    results: dict[str, FamilyResult],
    chosen: str,
    thresholds: np.ndarray,
    space: LabelSpace,
    *,
    min_support: int,
    min_f1: float,
) -> pd.DataFrame:
    """Per label: support, precision, recall and F1 (out of fold) of the chosen family, its final
    threshold, whether it is learnable, and the F1 of every family."""
    import pandas as pd

    frame = space.frame().drop(columns=["parent"])
    support = np.asarray(Y).sum(axis=0).astype(np.int64)
    tp, fp, fn = (c.sum(axis=0) for c in _counts(Y, results[chosen].predicted))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
    f1 = np.nan_to_num(_f1(tp, fp, fn))
    frame["support"] = support
    frame["precision"] = precision
    frame["recall"] = recall
    frame["f1"] = np.where(support > 0, f1, np.nan)
    frame["threshold"] = thresholds
    status = np.where(
        support == 0,
        "not in the coded posts",
        np.where(
            support < min_support,
            f"too rare to learn (< {min_support} posts)",
            np.where(f1 < min_f1, f"not learned (F1 < {min_f1:g})", "learned"),
        ),
    )
    frame["status"] = status
    for family, result in results.items():
        t, p, n = (c.sum(axis=0) for c in _counts(Y, result.predicted))
        frame[f"f1_{family}"] = np.where(support > 0, np.nan_to_num(_f1(t, p, n)), np.nan)
    return pd.DataFrame(frame).round(DIGITS).drop(columns=["key"])


# -- cross-validation --------------------------------------------------------------------------


def cross_validate_family(
    data: TaggerData,
    family: str,
    settings: TaggerSettings,
    folds: np.ndarray,
    *,
    inner_folds: int = 3,
    seed: int = 42,
    log: Callable[[str], None] = print,
) -> FamilyResult:
    """Out-of-fold probabilities and predictions of ``family`` on ``folds`` (thresholds chosen
    inside each fold, see the module docstring)."""
    space = data.space
    texts = np.asarray(data.texts, dtype=object)
    groups = data.frame["group"].to_numpy()
    Y = data.Y
    n_folds = int(folds.max()) + 1
    proba = np.zeros(Y.shape, dtype=np.float64)
    predicted = np.zeros(Y.shape, dtype=np.uint8)
    fold_thresholds = np.zeros((n_folds, len(space)), dtype=np.float64)
    started = time.perf_counter()
    probe = build(family, space, settings)
    everything: np.ndarray | None = None
    if not probe.trainable:  # zero-shot: one pass over every text
        everything = space.consistent_proba(probe.fit(list(texts), Y).predict_proba(list(texts)))
    for k in range(n_folds):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        if everything is not None:
            thresholds = choose_thresholds(Y[train], everything[train], space=space)
            fold_proba = everything[test]
        else:
            inner = grouped_multilabel_folds(Y[train], groups[train], inner_folds, seed + 1 + k)
            if probe.cheap:
                inner_proba = np.zeros((len(train), len(space)), dtype=np.float64)
                for m in range(inner_folds):
                    fit, held = np.flatnonzero(inner != m), np.flatnonzero(inner == m)
                    model = build(family, space, settings).fit(list(texts[train[fit]]), Y[train[fit]])
                    inner_proba[held] = space.consistent_proba(model.predict_proba(list(texts[train[held]])))
                thresholds = choose_thresholds(Y[train], inner_proba, space=space)
                model = build(family, space, settings).fit(list(texts[train]), Y[train])
            else:
                fit, held = np.flatnonzero(inner != 0), np.flatnonzero(inner == 0)
                model = build(family, space, settings).fit(list(texts[train[fit]]), Y[train[fit]])
                held_proba = space.consistent_proba(model.predict_proba(list(texts[train[held]])))
                thresholds = choose_thresholds(Y[train[held]], held_proba, space=space)
            fold_proba = space.consistent_proba(model.predict_proba(list(texts[test])))
        proba[test] = fold_proba
        predicted[test] = space.decide(fold_proba, thresholds)
        fold_thresholds[k] = thresholds
        log(f"{family}: fold {k + 1}/{n_folds} done ({time.perf_counter() - started:.0f} s)")
    return FamilyResult(family, proba, predicted, fold_thresholds, time.perf_counter() - started)


def train_tagger(
    data: TaggerData,
    model_dir: str | os.PathLike[str] | None,
    *,
    families: str = DEFAULT_FAMILIES,
    settings: TaggerSettings | None = None,
    n_folds: int = 3,
    inner_folds: int = 3,
    seed: int = 42,
    n_boot: int = 1000,
    select_by: str = "mean_micro_f1",
    min_support: int = 10,
    min_f1: float = 0.2,
    tables_dir: str | os.PathLike[str] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    metrics_path: str | os.PathLike[str] | None = None,
    max_chars: int | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Compare ``families`` on the same folds, refit the best on all coded posts, save it to
    ``model_dir`` (when given) and write the comparison tables, figure and metrics."""
    from secmine.text import DEFAULT_MAX_CHARS
    from secmine.taxonomy.tagger import Tagger, oof_frame

    settings = settings or TaggerSettings(seed=seed)
    names = parse_families(families)
    if select_by not in SELECT_BY:
        raise CompareError(f"select_by {select_by!r}: choose one of {', '.join(SELECT_BY)}")
    if inner_folds < 2:
        raise CompareError(f"inner_folds must be at least 2, got {inner_folds}")
    folds = grouped_multilabel_folds(data.Y, data.frame["group"].to_numpy(), n_folds, seed)
    results = {}
    for name in names:
        results[name] = cross_validate_family(
            data, name, settings, folds, inner_folds=inner_folds, seed=seed, log=log
        )
    scores = score_table(data.Y, results, data.space, n_boot=n_boot, seed=seed)
    ranking = {name: selection_score(scores, name, select_by) for name in names}
    chosen = max(names, key=lambda n: (ranking[n], -names.index(n)))
    thresholds = choose_thresholds(data.Y, results[chosen].proba, space=data.space)
    labels = label_table(
        data.Y, results, chosen, thresholds, data.space, min_support=min_support, min_f1=min_f1
    )
    scores["selected"] = scores["family"] == chosen
    rare = labels[labels["status"].str.startswith("too rare")]
    unlearned = labels[labels["status"].str.startswith("not learned")]
    absent = labels[labels["status"] == "not in the coded posts"]
    notes = list(data.notes)
    notes.append(
        f"{len(rare)} label(s) too rare to learn (fewer than {min_support} of {len(data)} coded posts): "
        + ("; ".join(f"{r.type} {r.level} {r.label!r} ({r.support})" for r in rare.itertuples()) or "none")
    )
    if len(unlearned):
        notes.append(
            f"{len(unlearned)} label(s) with enough posts but out-of-fold F1 < {min_f1:g} for {chosen}: "
            + "; ".join(f"{r.type} {r.level} {r.label!r} (F1 {r.f1:.2f})" for r in unlearned.itertuples())
        )
    if len(absent):
        notes.append(
            "never coded, so never predicted: "
            + "; ".join(f"{r.type} {r.label!r}" for r in absent.itertuples())
        )
    chosen_scores = scores[scores["family"] == chosen]
    metrics: dict[str, Any] = {
        "chosen": chosen,
        "select_by": select_by,
        "selection": {n: round(v, DIGITS) for n, v in ranking.items()},
        "posts": len(data),
        "labels": len(data.space),
        "n_folds": n_folds,
        "inner_folds": inner_folds,
        "seed": seed,
        "codebook_version": data.space.version,
        "coded": str(data.origin),
        "texts": str(data.texts_origin),
        "scores": {
            f"{r.type}/{r.level}": {
                "micro_f1": r.micro_f1,
                "macro_f1": r.macro_f1,
                "micro_f1_ci": [getattr(r, "micro_f1_lo", None), getattr(r, "micro_f1_hi", None)],
                "macro_f1_ci": [getattr(r, "macro_f1_lo", None), getattr(r, "macro_f1_hi", None)],
            }
            for r in chosen_scores.itertuples()
        },
        "too_rare": [f"{r.type}|{r.level}|{r.label}" for r in rare.itertuples()],
        "not_learned": [f"{r.type}|{r.level}|{r.label}" for r in unlearned.itertuples()],
        "min_support": min_support,
        "notes": notes,
    }
    result = TrainResult(data, folds, results, scores, labels, chosen, thresholds, metrics, notes=notes)
    result.figures["tagger_comparison"] = comparison_figure(scores)
    log(
        f"chosen tagger: {chosen} ({select_by} {ranking[chosen]:.3f}); "
        + ", ".join(f"{n} {v:.3f} in {results[n].seconds:.0f} s" for n, v in ranking.items())
    )
    if model_dir is not None:
        model = build(chosen, data.space, settings)
        model.fit(data.texts, data.Y)
        tagger = Tagger(
            model=model,
            space=data.space,
            thresholds=thresholds,
            card={
                "metrics": metrics,
                "text": {"max_chars": int(max_chars or DEFAULT_MAX_CHARS)},
                "training": {
                    "posts": len(data),
                    "coded": str(data.origin),
                    "texts": str(data.texts_origin),
                    "n_folds": n_folds,
                    "inner_folds": inner_folds,
                    "seed": seed,
                    "thread_ids": sorted(data.frame["thread_id"].astype(str).unique().tolist()),
                },
            },
        )
        oof = oof_frame(
            data.frame, data.space, data.Y, results[chosen].proba, results[chosen].predicted, folds
        )
        tagger.save(model_dir, oof=oof)
    write_training_outputs(result, tables_dir=tables_dir, figures_dir=figures_dir, metrics_path=metrics_path)
    return result


def write_training_outputs(
    result: TrainResult,
    *,
    tables_dir: str | os.PathLike[str] | None,
    figures_dir: str | os.PathLike[str] | None,
    metrics_path: str | os.PathLike[str] | None,
) -> None:
    from secmine.io import save_figure, write_json, write_table

    if tables_dir is not None:
        write_table(
            result.scores,
            Path(tables_dir) / "tagger_comparison",
            float_format="{:.3f}",
            caption="Tagger families: out-of-fold micro-/macro-F1 per level with bootstrap 95% intervals",
        )
        write_table(
            result.labels,
            Path(tables_dir) / "tagger_labels",
            float_format="{:.3f}",
            caption=f"Per-label out-of-fold scores of the chosen tagger ({result.chosen})",
        )
    if figures_dir is not None:
        for name, figure in result.figures.items():
            save_figure(figure, Path(figures_dir) / name)
    if metrics_path is not None:
        write_json(metrics_path, result.metrics)


def comparison_figure(scores: pd.DataFrame) -> Figure:
    """Micro- and macro-F1 per level (issues and solutions together) of every family, with 95%
    bootstrap intervals."""
    from matplotlib.figure import Figure

    part = scores[scores["type"] == "all"]
    families = list(dict.fromkeys(part["family"]))
    fig = Figure(figsize=(8.0, 3.4))
    axes = fig.subplots(1, 2, sharey=True)
    width = 0.8 / max(len(families), 1)
    for ax, metric in zip(axes, ("micro_f1", "macro_f1")):
        for i, family in enumerate(families):
            rows = part[part["family"] == family].set_index("level").reindex(list(LEVELS))
            x = np.arange(len(LEVELS)) + (i - (len(families) - 1) / 2) * width
            values = rows[metric].to_numpy(dtype=float)
            err = None
            if f"{metric}_lo" in rows.columns:
                err = np.vstack(
                    [
                        values - rows[f"{metric}_lo"].to_numpy(dtype=float),
                        rows[f"{metric}_hi"].to_numpy(dtype=float) - values,
                    ]
                )
                err = np.clip(np.nan_to_num(err), 0, None)
            label = (
                family + (" (chosen)" if bool(rows["selected"].iloc[0]) else "")
                if "selected" in rows
                else family
            )
            ax.bar(x, values, width, yerr=err, capsize=2, label=label)
        ax.set_xticks(np.arange(len(LEVELS)), [lv.replace("_", "-") for lv in LEVELS])
        ax.set_title(metric.replace("_f1", "-F1").replace("micro", "Micro").replace("macro", "Macro"))
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("out-of-fold F1 (95% bootstrap CI)")
    axes[1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


# -- the train-tagger stage --------------------------------------------------------------------


@dataclass(frozen=True)
class TrainTaggerParams:
    """Parameters of the ``train-tagger`` stage (a ``train_tagger`` block of ``params.yaml``).

    CPU-sized: three outer and three inner folds, a one-epoch fine-tune reading 128 tokens.  The
    paper-sized GPU setting: ``n_folds: 10, inner_folds: 5, epochs: 5, max_length: 512,
    batch_size: 16, learning_rate: 5e-5, n_boot: 2000``.
    """

    families: str = DEFAULT_FAMILIES
    select_by: str = "mean_micro_f1"
    n_folds: int = 3
    inner_folds: int = 3
    seed: int = 42
    bootstrap: int = 1000
    min_support: int = 10
    min_f1: float = 0.2
    max_chars: int = 4000
    num_threads: int = 2
    encoder: str = "minilm"
    embed_max_length: int = 128
    C: float = 1.0
    zero_shot_temperature: float = 0.05
    backbone: str = "minilm"
    max_length: int = 128
    epochs: float = 1.0
    batch_size: int = 8
    learning_rate: float = 2e-4

    def settings(self, *, embedding_cache: str = "", descriptions: dict[str, str] | None = None) -> TaggerSettings:
        """The model settings; ``embedding_cache``: a folder for the embedding cache ("" = memory only);
        ``descriptions``: code descriptions for the zero-shot baseline (:func:`read_descriptions`)."""
        return TaggerSettings(
            seed=self.seed,
            num_threads=self.num_threads,
            C=self.C,
            encoder=self.encoder,
            embed_max_length=self.embed_max_length,
            embedding_cache=embedding_cache,
            zero_shot_temperature=self.zero_shot_temperature,
            descriptions=descriptions or {},
            backbone=self.backbone,
            max_length=self.max_length,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
        )


def read_descriptions(path: str | os.PathLike[str] | None) -> dict[str, str]:
    """Code descriptions for the zero-shot baseline: YAML ``{issue: {code: text}, solution: {...}}``
    -> ``{"issue|code": text}`` ("" -> none)."""
    if path is None or str(path).strip() == "":
        return {}
    import yaml

    target = Path(path)
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CompareError(f"{target}: cannot read the code descriptions ({exc})") from exc
    if not isinstance(data, dict):
        raise CompareError(f"{target}: expected a mapping with keys 'issue' and/or 'solution'")
    out: dict[str, str] = {}
    for code_type, codes in data.items():
        if code_type not in ("issue", "solution") or not isinstance(codes, dict):
            raise CompareError(
                f"{target}, key {code_type!r}: expected 'issue' or 'solution' mapping codes to text"
            )
        out.update({f"{code_type}|{name}": str(text) for name, text in codes.items()})
    return out


def run_train_tagger(
    params: TrainTaggerParams | None = None,
    *,
    coded: str | os.PathLike[str] = "replication",
    texts: str | os.PathLike[str] = "replication",
    codebook: str | os.PathLike[str] | None = None,
    embedding_cache: str | os.PathLike[str] | None = None,
    descriptions: str | os.PathLike[str] | None = None,
    model_dir: str | os.PathLike[str] | None = "models/taxonomy",
    tables_dir: str | os.PathLike[str] | None = "reports/tables/train_tagger",
    figures_dir: str | os.PathLike[str] | None = "reports/figures/train_tagger",
    metrics_path: str | os.PathLike[str] | None = "reports/metrics/train_tagger.json",
    replication_root: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """The ``train-tagger`` stage: coded posts with texts, the comparison, the saved tagger.

    ``coded``: a coded CSV in the replication format (or ``replication``: the package's); ``texts``:
    ``replication`` (theme/data.xlsx), a corpus, or a CSV with ``post_id,text``; ``codebook``: a YAML
    codebook or a folder of ``*_theme_summary.csv`` (default the replication package's);
    ``embedding_cache``: a folder caching the embeddings (default memory only); ``descriptions``: YAML
    ``{issue: {code: description}, solution: {...}}`` for the zero-shot baseline."""
    from secmine.analysis.coding import load_codebook
    from secmine.taxonomy.data import load_tagger_data

    params = params or TrainTaggerParams()
    book = load_codebook(codebook or replication_root)
    data = load_tagger_data(
        coded,
        texts=texts,
        codebook=book,
        replication_root=replication_root,
        max_chars=params.max_chars,
    )
    log(
        f"{len(data)} coded posts with texts from {data.texts_origin}; {len(data.space)} labels "
        f"(codebook {data.space.version})"
    )
    return train_tagger(
        data,
        model_dir,
        families=params.families,
        settings=params.settings(
            embedding_cache=str(embedding_cache) if embedding_cache else "",
            descriptions=read_descriptions(descriptions),
        ),
        n_folds=params.n_folds,
        inner_folds=params.inner_folds,
        seed=params.seed,
        n_boot=params.bootstrap,
        select_by=params.select_by,
        min_support=params.min_support,
        min_f1=params.min_f1,
        tables_dir=tables_dir,
        figures_dir=figures_dir,
        metrics_path=metrics_path,
        max_chars=params.max_chars,
        log=log,
    )
