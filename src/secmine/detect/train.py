"""The ``train`` stage: a fair comparison of model families and the saved best model.

Every family is searched (Optuna, seeded TPE, budget from params) and scored on the *same* grouped,
stratified folds of the training split; the best parameters are refitted on the whole training
split and scored once on the *same* held-out test split, with bootstrap intervals.  The family
with the best cross-validated MCC (mean over folds) is saved to the model folder with a model card.
The test split never informs any choice.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.detect.metrics import METRICS, binary_metrics, metrics_with_ci
from secmine.detect.models import LLM_FAMILIES, ModelSettings, SecurityModel, get_family, parse_families
from secmine.detect.savedmodel import MODEL_CARD, read_card, write_card  # noqa: F401 - MODEL_CARD kept as API

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.detect.labelled import LabelledSet

DEFAULT_FAMILIES = "keyword,tfidf_logreg,tfidf_svm,embed_logreg,transformer"
FAMILY_LABELS = {
    "keyword": "Keyword baseline",
    "tfidf_logreg": "TF-IDF + logistic regression",
    "tfidf_svm": "TF-IDF + linear SVM",
    "embed_logreg": "Sentence embeddings + logistic regression",
    "transformer": "Fine-tuned transformer",
    "llm_zero_shot": "LLM zero-shot",
    "llm_few_shot": "LLM few-shot",
}


@dataclass
class FamilyResult:
    """One family's search, cross-validation and test results."""

    family: str
    params: dict[str, Any]
    fold_mcc: list[float]
    oof_proba: np.ndarray  # out-of-fold probabilities of the training rows (best trial)
    test_proba: np.ndarray
    test_metrics: dict[str, Any]
    cv_metrics: dict[str, float]  # pooled out-of-fold metrics of the best trial
    trials: pd.DataFrame
    model: SecurityModel
    fit_seconds: float = 0.0

    @property
    def cv_mcc(self) -> float:
        return float(np.mean(self.fold_mcc))

    @property
    def cv_mcc_sd(self) -> float:
        return float(np.std(self.fold_mcc, ddof=1)) if len(self.fold_mcc) > 1 else 0.0


@dataclass
class Comparison:
    """All families' results on one labelled set with its splits."""

    labelled: pd.DataFrame  # with split and fold
    results: dict[str, FamilyResult]
    settings: ModelSettings
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> FamilyResult:
        """Highest mean cross-validated MCC; ties go to the family listed first."""
        return max(self.results.values(), key=lambda r: r.cv_mcc)

    def table(self) -> pd.DataFrame:
        """The comparison table: CV MCC (mean, sd) and test metrics with 95% intervals."""
        import pandas as pd

        rows = []
        best = self.best.family
        for family, result in self.results.items():
            row: dict[str, Any] = {
                "model": FAMILY_LABELS.get(family, family),
                "family": family,
                "selected": family == best,
                "cv_mcc": result.cv_mcc,
                "cv_mcc_sd": result.cv_mcc_sd,
            }
            for metric in METRICS:
                row[f"test_{metric}"] = result.test_metrics[metric]
                row[f"test_{metric}_lo"] = result.test_metrics[f"{metric}_lo"]
                row[f"test_{metric}_hi"] = result.test_metrics[f"{metric}_hi"]
            row["trials"] = len(result.trials)
            row["params"] = json.dumps(_public_params(result.params), sort_keys=True)
            rows.append(row)
        return pd.DataFrame(rows)

    def display_table(self) -> pd.DataFrame:
        """A compact table for Markdown/LaTeX: value [lo, hi] per test metric."""
        import pandas as pd

        table = self.table()
        out = pd.DataFrame(
            {
                "Model": [m + (" (selected)" if s else "") for m, s in zip(table["model"], table["selected"], strict=True)],
                "CV MCC": [f"{m:.3f} ± {s:.3f}" for m, s in zip(table["cv_mcc"], table["cv_mcc_sd"], strict=True)],
            }
        )
        for metric in METRICS:
            out[f"Test {metric.upper() if metric == 'mcc' else metric.capitalize()}"] = [
                f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                for v, lo, hi in zip(
                    table[f"test_{metric}"], table[f"test_{metric}_lo"], table[f"test_{metric}_hi"], strict=True
                )
            ]
        return out

    def by_source(self) -> pd.DataFrame:
        """Test accuracy per labelled source and label, per family: does a model only learn the source?"""
        import pandas as pd

        test = self.labelled[self.labelled["split"] == "test"].reset_index(drop=True)
        rows = []
        for family, result in self.results.items():
            predicted = (result.test_proba >= self.settings.threshold).astype(np.int64)
            for (source, label), index in test.groupby(["source", "label"], sort=True).groups.items():
                positions = np.asarray(list(index))
                rows.append(
                    {
                        "family": family,
                        "source": source,
                        "label": int(label),
                        "n": len(positions),
                        "accuracy": float(np.mean(predicted[positions] == test["label"].to_numpy()[positions])),
                    }
                )
        return pd.DataFrame(rows)

    def predictions(self) -> pd.DataFrame:
        """Out-of-fold (training rows) and test probabilities of every family, one row per row x family."""
        import pandas as pd

        train = self.labelled[self.labelled["split"] == "train"].reset_index(drop=True)
        test = self.labelled[self.labelled["split"] == "test"].reset_index(drop=True)
        frames = []
        for family, result in self.results.items():
            for part, proba in ((train, result.oof_proba), (test, result.test_proba)):
                frames.append(
                    pd.DataFrame(
                        {
                            "uid": part["uid"].to_numpy(),
                            "split": part["split"].to_numpy(),
                            "fold": part["fold"].to_numpy(),
                            "source": part["source"].to_numpy(),
                            "label": part["label"].to_numpy(),
                            "family": family,
                            "probability": np.asarray(proba, dtype=np.float64),
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True)


def _public_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params for tables and JSON: floats rounded to 6 significant digits."""
    out = {}
    for key, value in params.items():
        if isinstance(value, float):
            value = float(f"{value:.6g}")
        out[key] = value
    return out


def search_family(
    family: str,
    texts: Sequence[str],
    labels: np.ndarray,
    folds: list[tuple[list[int], list[int]]],
    settings: ModelSettings,
    *,
    n_trials: int = 1,
) -> tuple[dict[str, Any], list[float], np.ndarray, pd.DataFrame]:
    """Optuna search of one family on the folds: ``(best params, fold MCCs, oof probabilities, trials)``.

    The objective is the mean MCC over folds.  The family's defaults are the first trial.
    """
    import optuna
    import pandas as pd

    cls = get_family(family)
    labels = np.asarray(labels, dtype=np.int64)
    texts = list(texts)
    outcomes: dict[int, tuple[dict[str, Any], list[float], np.ndarray]] = {}

    def evaluate(params: dict[str, Any], trial: optuna.Trial | None) -> float:
        oof = np.full(len(texts), np.nan)
        scores: list[float] = []
        shared = cls(params, settings)  # untrainable families predict once for all folds
        for k, (fit_idx, val_idx) in enumerate(folds):
            model = cls(params, settings).fit([texts[i] for i in fit_idx], labels[fit_idx]) if cls.trainable else shared
            proba = model.predict_proba([texts[i] for i in val_idx])
            oof[val_idx] = proba
            scores.append(binary_metrics(labels[val_idx], (proba >= settings.threshold).astype(np.int64))["mcc"])
            if trial is not None:
                trial.report(float(np.mean(scores)), k)
                if k < len(folds) - 1 and trial.should_prune():
                    raise optuna.TrialPruned()
        outcomes[trial.number if trial is not None else 0] = (params, scores, oof)
        return float(np.mean(scores))

    if not cls.searchable:
        params = cls.default_params(settings)
        value = evaluate(params, None)
        params, scores, oof = outcomes[0]
        trials = pd.DataFrame([{"trial": 0, "state": "COMPLETE", "cv_mcc": value, "params": json.dumps(_public_params(params), sort_keys=True)}])
        return params, scores, oof, trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        study_name=family,
    )
    study.enqueue_trial(cls.initial_trial(settings))
    study.optimize(lambda trial: evaluate(cls.suggest(trial, settings), trial), n_trials=max(1, int(n_trials)))
    best = study.best_trial
    params, scores, oof = outcomes[best.number]
    trials = pd.DataFrame(
        [
            {
                "trial": t.number,
                "state": t.state.name,
                "cv_mcc": t.value if t.value is not None else float("nan"),
                "params": json.dumps(_public_params(outcomes[t.number][0]), sort_keys=True)
                if t.number in outcomes
                else json.dumps(_public_params(t.params), sort_keys=True),
            }
            for t in study.trials
        ]
    )
    return params, scores, oof, trials


def compare(
    labelled: pd.DataFrame,
    *,
    families: str | Sequence[str] = DEFAULT_FAMILIES,
    settings: ModelSettings | None = None,
    n_trials: int = 10,
    transformer_trials: int = 1,
    n_boot: int = 1000,
    log: Any = print,
) -> Comparison:
    """Search, cross-validate, refit and test every family on ``labelled`` (with ``split``/``fold``)."""
    from secmine.detect.splits import check_no_leakage, fold_indices

    settings = settings or ModelSettings()
    names = parse_families(list(families) if not isinstance(families, str) else families)
    notes: list[str] = []
    if not settings.llm_base_url:
        skipped = [n for n in names if n in LLM_FAMILIES]
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: no LLM endpoint configured (llm_base_url)")
        names = [n for n in names if n not in LLM_FAMILIES]
    check_no_leakage(labelled)
    train = labelled[labelled["split"] == "train"].reset_index(drop=True)
    test = labelled[labelled["split"] == "test"].reset_index(drop=True)
    folds = fold_indices(labelled)
    train_texts, train_labels = train["text"].tolist(), train["label"].to_numpy(dtype=np.int64)
    test_texts, test_labels = test["text"].tolist(), test["label"].to_numpy(dtype=np.int64)
    results: dict[str, FamilyResult] = {}
    for family in names:
        budget = transformer_trials if family == "transformer" else n_trials
        started = time.perf_counter()
        params, scores, oof, trials = search_family(
            family, train_texts, train_labels, folds, settings, n_trials=budget
        )
        cls = get_family(family)
        model = cls(params, settings).fit(train_texts, train_labels)
        test_proba = model.predict_proba(test_texts)
        predicted = (test_proba >= settings.threshold).astype(np.int64)
        test_metrics = metrics_with_ci(test_labels, predicted, n_boot=n_boot, seed=settings.seed)
        cv_metrics = binary_metrics(train_labels, (oof >= settings.threshold).astype(np.int64))
        elapsed = time.perf_counter() - started
        results[family] = FamilyResult(
            family, params, scores, oof, test_proba, test_metrics, cv_metrics, trials, model, elapsed
        )
        log(
            f"{family}: CV MCC {np.mean(scores):.3f} (folds {', '.join(f'{s:.3f}' for s in scores)}), "
            f"test MCC {test_metrics['mcc']:.3f} [{test_metrics['mcc_lo']:.3f}, {test_metrics['mcc_hi']:.3f}] "
            f"({len(trials)} trial(s), {elapsed:.0f} s)"
        )
    if not results:
        raise ValueError("no model family to compare")
    return Comparison(labelled, results, settings, notes)


# -- saving ------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("secmine", "scikit-learn", "torch", "transformers", "sentence-transformers", "optuna"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    return out


def model_card(comparison: Comparison, result: FamilyResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata saved beside a model: family, params, threshold, metrics, data, versions."""
    labelled = comparison.labelled
    card: dict[str, Any] = {
        "family": result.family,
        "model": FAMILY_LABELS.get(result.family, result.family),
        "params": result.params,
        "settings": comparison.settings.to_dict(),
        "threshold": comparison.settings.threshold,
        "positive_label": "security",
        "selected_by": "highest mean cross-validated MCC over the shared folds",
        "metrics": {
            "cv": {"mcc_mean": result.cv_mcc, "mcc_sd": result.cv_mcc_sd, "fold_mcc": result.fold_mcc,
                   "pooled": result.cv_metrics},
            "test": result.test_metrics,
        },
        "data": {
            "rows": int(len(labelled)),
            "train_rows": int((labelled["split"] == "train").sum()),
            "test_rows": int((labelled["split"] == "test").sum()),
            "positives": int(labelled["label"].sum()),
            "weak_rows": int(labelled["weak"].sum()) if "weak" in labelled else 0,
            "folds": int(labelled.loc[labelled["split"] == "train", "fold"].nunique()),
            "sources": {str(k): int(v) for k, v in labelled["source"].value_counts().sort_index().items()}
            if "source" in labelled
            else {},
        },
        "text": {
            "representation": "secmine.detect.texts.canonical_text: title, body and comments flattened, "
            "whitespace folded, cut at max_chars",
            "max_chars": int((extra or {}).get("max_chars", 0)) or None,
        },
        "trained_on": "training split only (the test split is held out)",
        "versions": _versions(),
        **result.model.describe(),
    }
    if extra:
        card.update({k: v for k, v in extra.items() if k != "max_chars"})
    return card


def save_model(
    model: SecurityModel,
    directory: str | os.PathLike[str],
    card: dict[str, Any],
    *,
    validation: tuple[Sequence[str], Sequence[int], Sequence[float]] | None = None,
    engine_tolerance: float = 0.01,
    log: Any = print,
) -> Path:
    """Replace ``directory`` with the model's files and ``model_card.json`` (atomically: a sibling
    temporary folder is renamed into place; this process is its only writer).

    A transformer is also exported to ONNX (``onnx/``, see :mod:`secmine.detect.engine`); with
    ``validation`` = ``(texts, labels, PyTorch probabilities)`` of held-out rows, every engine is
    scored on them and the card records the engine ``secmine classify --engine auto`` runs.
    The layout and the card are :mod:`secmine.detect.savedmodel`'s.
    """
    from secmine.detect.engine import EngineError, export_engines, onnxruntime_available, validate_engines
    from secmine.io import atomic_dir

    card = dict(card)
    with atomic_dir(directory) as staging:
        model.save(staging)
        if model.family == "transformer" and onnxruntime_available():
            try:
                card["engine_export"] = export_engines(model.model, model.tokenizer, staging,
                                                       max_length=int(model.params["max_length"]))
            except EngineError as exc:
                card["engine_export"] = {"error": str(exc)}
                log(f"no ONNX engines: {exc}")
            if validation is not None and "error" not in card["engine_export"]:
                texts, labels, reference = validation
                card["engines"] = validate_engines(
                    staging, card, list(texts), labels, reference, tolerance=engine_tolerance,
                    num_threads=int(model.settings.num_threads) or 2,
                )
                log(f"engines on {len(texts)} held-out texts: " + ", ".join(
                    f"{e} MCC {card['engines'][e]['mcc']:.3f}" for e in ("torch", "onnx", "onnx-int8"))
                    + f"; recommended {card['engines']['recommended']}")
        write_card(staging, card)
    return Path(directory)


def comparison_figure(comparison: Comparison) -> Any:
    """Test MCC with its 95% bootstrap interval and the cross-validated MCC (mean ± sd) per model."""
    import matplotlib.pyplot as plt

    table = comparison.table()
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(table) + 1.4))
    y = np.arange(len(table))[::-1]
    ax.errorbar(
        table["test_mcc"], y + 0.12,
        xerr=[table["test_mcc"] - table["test_mcc_lo"], table["test_mcc_hi"] - table["test_mcc"]],
        fmt="o", color="tab:blue", capsize=3, label="test MCC (95% bootstrap CI)",
    )
    ax.errorbar(table["cv_mcc"], y - 0.12, xerr=table["cv_mcc_sd"], fmt="s", color="tab:orange", capsize=3,
                label="cross-validated MCC (mean ± sd)")
    labels = [m + (" *" if s else "") for m, s in zip(table["model"], table["selected"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlabel("Matthews correlation coefficient")
    ax.set_xlim(min(-0.05, float(np.nanmin(table[["test_mcc_lo", "cv_mcc"]].to_numpy())) - 0.05), 1.0)
    ax.axvline(0, color="grey", lw=0.6)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Security classifier comparison (* = selected by CV MCC)")
    fig.tight_layout()
    return fig


def write_reports(
    comparison: Comparison,
    *,
    tables_dir: str | os.PathLike[str] | None,
    figures_dir: str | os.PathLike[str] | None,
    metrics_path: str | os.PathLike[str] | None,
    provenance: pd.DataFrame | None = None,
    engines: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Comparison tables (CSV/MD/TeX), figure (PNG/SVG) and DVC metrics; returns the metrics.
    ``engines``: the saved model's engine validation (model card), reported as a table and metrics."""
    from secmine import io

    table = comparison.table()
    if tables_dir is not None:
        tables = Path(tables_dir)
        io.write_csv(table, tables / "comparison.csv")
        shown = comparison.display_table()
        io.write_table(shown, tables / "comparison", formats=("md", "tex"),
                       caption="Security classifiers: cross-validated and held-out test MCC, F1, precision, "
                       "recall and accuracy with 95% bootstrap intervals.")
        io.write_table(comparison.by_source(), tables / "test_by_source", float_format="{:.3f}")
        trials = []
        for family, result in comparison.results.items():
            trials.append(result.trials.assign(family=family))
        import pandas as pd

        io.write_table(pd.concat(trials, ignore_index=True)[["family", "trial", "state", "cv_mcc", "params"]],
                       tables / "trials", float_format="{:.3f}")
        if provenance is not None:
            io.write_table(provenance, tables / "labelled_set", float_format="{:.0f}")
        if engines is not None:
            from secmine.detect.engine import engines_table

            io.write_table(engines_table(engines), tables / "engines", float_format="{:.4f}",
                           caption="Inference engines of the saved transformer on the held-out test split: "
                           "MCC, difference to PyTorch, label agreement and largest probability difference.")
    if figures_dir is not None:
        import matplotlib.pyplot as plt

        fig = comparison_figure(comparison)
        io.save_figure(fig, Path(figures_dir) / "comparison")
        plt.close(fig)
    best = comparison.best
    metrics = {
        "selected": best.family,
        "cv_mcc": round(best.cv_mcc, 6),
        "cv_mcc_sd": round(best.cv_mcc_sd, 6),
        "test": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in best.test_metrics.items()},
        "models": {
            f: {"cv_mcc": round(r.cv_mcc, 6), "test_mcc": round(r.test_metrics["mcc"], 6),
                "test_f1": round(r.test_metrics["f1"], 6)}
            for f, r in comparison.results.items()
        },
        "labelled": {
            "rows": int(len(comparison.labelled)),
            "positives": int(comparison.labelled["label"].sum()),
            "test_rows": int((comparison.labelled["split"] == "test").sum()),
        },
    }
    if engines is not None:
        metrics["engines"] = {
            "recommended": engines["recommended"],
            **{e: {"test_mcc": engines[e]["mcc"], "agreement": engines[e]["agreement"]}
               for e in ("torch", "onnx", "onnx-int8") if e in engines},
        }
    if metrics_path is not None:
        io.write_json(metrics_path, metrics)
    return metrics


def settings_from_params(params: dict[str, Any], *, keywords: Sequence[str] | None = None,
                         word_boundary: bool = True) -> ModelSettings:
    """:class:`ModelSettings` from the ``train`` block of params.yaml (unknown keys ignored)."""
    data = {k: v for k, v in params.items() if k in ModelSettings.__dataclass_fields__}
    if keywords is not None:
        data["keywords"] = tuple(keywords)
    data["word_boundary"] = bool(word_boundary)
    return ModelSettings.from_dict(data)


def train_labelled(
    labelled: LabelledSet,
    *,
    model_dir: str | os.PathLike[str] | None,
    settings: ModelSettings,
    families: str | Sequence[str] = DEFAULT_FAMILIES,
    test_size: float = 0.2,
    n_folds: int = 5,
    n_trials: int = 10,
    transformer_trials: int = 1,
    n_boot: int = 1000,
    max_chars: int = 4000,
    tables_dir: str | os.PathLike[str] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    metrics_path: str | os.PathLike[str] | None = None,
    labelled_out: str | os.PathLike[str] | None = None,
    predictions_out: str | os.PathLike[str] | None = None,
    log: Any = print,
) -> Comparison:
    """Split, compare, report and save the best model (the whole ``train`` stage after assembly)."""
    from secmine import io
    from secmine.detect.splits import assign_splits
    from secmine.detect.models.transformer import configure_torch

    configure_torch(settings.seed, settings.num_threads)
    frame = assign_splits(labelled.frame, test_size=test_size, n_folds=n_folds, seed=settings.seed)
    if labelled_out is not None:
        io.write_parquet(frame, labelled_out)
    comparison = compare(
        frame, families=families, settings=settings, n_trials=n_trials,
        transformer_trials=transformer_trials, n_boot=n_boot, log=log,
    )
    comparison.notes = labelled.notes + comparison.notes
    provenance = (
        frame.groupby(["source", "label", "split"], sort=True).size().unstack("split", fill_value=0).reset_index()
    )
    engines = None
    if model_dir is not None:
        best = comparison.best
        test = frame[frame["split"] == "test"]
        save_model(best.model, model_dir, model_card(comparison, best, {"max_chars": max_chars}),
                   validation=(test["text"].tolist(), test["label"].to_numpy(dtype=np.int64), best.test_proba),
                   engine_tolerance=float(settings.engine_tolerance), log=log)
        log(f"saved {best.family} to {model_dir}")
        engines = read_card(model_dir).get("engines")
    write_reports(comparison, tables_dir=tables_dir, figures_dir=figures_dir, metrics_path=metrics_path,
                  provenance=provenance, engines=engines)
    if predictions_out is not None:
        io.write_parquet(comparison.predictions(), predictions_out)
    return comparison
