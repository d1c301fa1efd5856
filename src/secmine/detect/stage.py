"""The ``train`` and ``classify`` stages end to end (the notebooks and the CLI call these)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.detect.texts import DEFAULT_MAX_CHARS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.detect.labelled import LabelledSet
    from secmine.detect.train import Comparison


def as_bool(value: Any) -> bool:
    """A parameter as a bool (papermill passes YAML ``true`` through DVC as the string "true")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "y", "on"}:
        return True
    if text in {"0", "false", "no", "n", "off", "", "none"}:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def build_labelled(
    *,
    corpus: str | os.PathLike[str] | None,
    keywords_path: str | os.PathLike[str] | None,
    sources: str,
    replication_root: str | os.PathLike[str] | None = None,
    security_labels: str | os.PathLike[str] | None = None,
    user_csv: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str = "id",
    n_weak_negatives: int = 0,
    seed: int = 0,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> LabelledSet:
    """Read the corpus (and its keyword matches) and assemble the labelled set from ``sources``."""
    import pandas as pd

    from secmine.detect.corpus import load_threads
    from secmine.detect.labelled import assemble_labelled

    threads = None
    if corpus:
        threads = load_threads(corpus, columns=["id", "platform", "kind", "repo", "number", "title", "body", "comments"])
    keyword_match = None
    if keywords_path and Path(keywords_path).exists():
        keyword_match = pd.read_parquet(keywords_path, columns=["id", "keyword_match"]).set_index("id")["keyword_match"]
    return assemble_labelled(
        sources=sources,
        corpus=threads,
        keyword_match=keyword_match,
        replication_root=replication_root,
        security_labels=security_labels,
        user_csv=user_csv or None,
        text_column=text_column,
        label_column=label_column,
        id_column=id_column,
        n_weak_negatives=n_weak_negatives,
        seed=seed,
        max_chars=max_chars,
    )


def run_train_stage(
    *,
    corpus: str | os.PathLike[str],
    keywords_path: str | os.PathLike[str],
    model_dir: str | os.PathLike[str],
    labelled_out: str | os.PathLike[str],
    predictions_out: str | os.PathLike[str],
    tables_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
    metrics_path: str | os.PathLike[str],
    train_params: dict[str, Any],
    keyword_set: str = "paper",
    extra_keywords: str = "",
    word_boundary: bool = True,
    replication_root: str | os.PathLike[str] | None = None,
    security_labels: str | os.PathLike[str] | None = None,
    log: Any = print,
) -> tuple[LabelledSet, Comparison]:
    """The whole ``train`` stage with the ``train`` block of params.yaml."""
    from secmine.detect.keywords import parse_keywords
    from secmine.detect.train import settings_from_params, train_labelled

    p = dict(train_params)
    max_chars = int(p.get("max_chars", DEFAULT_MAX_CHARS))
    seed = int(p.get("seed", 42))
    labelled = build_labelled(
        corpus=corpus,
        keywords_path=keywords_path,
        sources=str(p.get("sources", "replication_coded,security_labels,replication_labels,weak_negatives")),
        replication_root=replication_root,
        security_labels=security_labels,
        user_csv=p.get("user_csv") or None,
        text_column=str(p.get("text_column", "text")),
        label_column=str(p.get("label_column", "label")),
        id_column=str(p.get("id_column", "id")),
        n_weak_negatives=int(p.get("weak_negatives", 0)),
        seed=seed,
        max_chars=max_chars,
    )
    for note in labelled.notes:
        log(note)
    settings = settings_from_params(p, keywords=parse_keywords(keyword_set, extra_keywords), word_boundary=word_boundary)
    comparison = train_labelled(
        labelled,
        model_dir=model_dir,
        settings=settings,
        families=str(p.get("families", "keyword,tfidf_logreg,tfidf_svm,embed_logreg,transformer")),
        test_size=float(p.get("test_size", 0.2)),
        n_folds=int(p.get("n_folds", 5)),
        n_trials=int(p.get("n_trials", 10)),
        transformer_trials=int(p.get("transformer_trials", 1)),
        n_boot=int(p.get("bootstrap", 1000)),
        max_chars=max_chars,
        tables_dir=tables_dir,
        figures_dir=figures_dir,
        metrics_path=metrics_path,
        labelled_out=labelled_out,
        predictions_out=predictions_out,
        log=log,
    )
    return labelled, comparison


def run_classify_stage(
    *,
    model_dir: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    keywords_path: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] | None,
    tables_dir: str | os.PathLike[str] | None,
    figures_dir: str | os.PathLike[str] | None,
    metrics_path: str | os.PathLike[str] | None,
    chunk_size: int = 2000,
    num_threads: int = 2,
    engine: str = "auto",
    exactness_sample: int = 1000,
    progress: bool = True,
    deterministic: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``classify`` stage: every corpus thread classified, summary table, figure and metrics.

    ``deterministic`` (the default): the stage feeds committed tables, so ``engine: auto`` runs the
    exact fp32 graph, never int8 -- int8 labels can change with the CPU (its integer kernels
    differ between CPUs with and without VNNI, and activation scales are per batch), fp32 labels
    are PyTorch's (see docs/determinism.md).  A forced ``onnx-int8`` is still honoured.

    When the engine is approximate (int8), ``exactness_sample`` threads spread evenly over the corpus
    (every k-th by id) are also run through the exact fp32 graph and the metrics report how often
    the labels agree and the security share by each (``engine_check``)."""
    import matplotlib.pyplot as plt

    from secmine import io
    from secmine.detect.engine import resolve_engine
    from secmine.detect.predict import classify_file, probability_figure, summarise_classified
    from secmine.detect.savedmodel import read_card

    card = read_card(model_dir)
    resolved = resolve_engine(engine, card, exact=deterministic)
    classified = classify_file(
        model_dir, corpus, output, keywords_path=keywords_path, checkpoint_dir=checkpoint_dir,
        chunk_size=chunk_size, num_threads=num_threads, engine=engine, progress=progress, exact=deterministic,
    )
    summary = summarise_classified(classified)
    check = None
    if resolved == "onnx-int8" and exactness_sample > 0 and len(classified):
        import numpy as np

        from secmine.detect.corpus import load_inputs
        from secmine.detect.engine import exactness_check
        from secmine.detect.savedmodel import card_max_chars

        inputs = load_inputs(corpus, max_chars=card_max_chars(card))
        picks = np.unique(np.linspace(0, len(inputs) - 1, min(exactness_sample, len(inputs))).astype(int))
        sample = inputs.iloc[picks]
        probability = classified.set_index("id").loc[sample["id"], "probability"].to_numpy()
        check = exactness_check(model_dir, card, sample["text"].tolist(), probability, engine=resolved,
                                num_threads=num_threads)
    if tables_dir is not None:
        io.write_table(summary, Path(tables_dir) / "classified_summary", float_format="{:.2f}")
    if figures_dir is not None:
        fig = probability_figure(classified, float(card.get("threshold", 0.5)))
        io.save_figure(fig, Path(figures_dir) / "probabilities")
        plt.close(fig)
    if metrics_path is not None:
        total = summary[summary["platform"] == "all"].iloc[0]
        io.write_json(
            metrics_path,
            {
                "model_family": card["family"],
                "threads": int(total["threads"]),
                "security": int(total["security"]),
                "security_pct": round(float(total["security_pct"]), 4),
                "keyword_match": int(total["keyword_match"]),
                "security_without_keyword": int(total["security_without_keyword"]),
                "keyword_not_security": int(total["keyword_not_security"]),
                "engine": resolved,
                **({"engine_check": check} if check is not None else {}),
            },
        )
    return classified, summary
