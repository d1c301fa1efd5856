"""The ``train`` and ``classify`` stages end to end (the notebooks and the CLI call these)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.text import DEFAULT_MAX_CHARS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.detect.labelled import LabelledSet
    from secmine.detect.predict import CorpusRun
    from secmine.detect.train import Comparison
    from secmine.stages.shared import Compute


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
    keywords: tuple[str, ...] | None = None,
    word_boundary: bool = True,
) -> LabelledSet:
    """Read the corpus (and its keyword matches) and assemble the labelled set from ``sources``.

    Rows whose thread the corpus holds get its ``created_at`` and ``repo``; every row gets
    ``keyword_match`` (:func:`secmine.detect.labelled.mark_keyword_match`: the keywords stage's
    result for its thread, or ``keywords`` in its text)."""
    import pandas as pd

    from secmine.detect.corpus import load_threads
    from secmine.detect.labelled import assemble_labelled, attach_thread_info, mark_keyword_match

    threads = None
    if corpus:
        threads = load_threads(corpus, columns=["id", "platform", "kind", "repo", "number", "title", "body", "comments",
                                                "created_at"])
    keyword_match = None
    if keywords_path and Path(keywords_path).exists():
        keyword_match = pd.read_parquet(keywords_path, columns=["id", "keyword_match"]).set_index("id")["keyword_match"]
    labelled = assemble_labelled(
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
    frame = labelled.frame
    if threads is not None:
        frame = attach_thread_info(frame, threads)
    labelled.frame = mark_keyword_match(frame, keywords=keywords, word_boundary=word_boundary,
                                        thread_matches=keyword_match)
    return labelled


def unlabelled_sample(
    corpus: str | os.PathLike[str],
    *,
    exclude: set[str],
    n: int,
    seed: int,
    keywords_path: str | os.PathLike[str] | None = None,
    keyword_only: bool = True,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> list[str]:
    """Texts of ``n`` corpus threads (seeded) not in ``exclude`` -- keyword matches only with
    ``keyword_only`` (the keywords stage output) -- to estimate the target prior from."""
    import numpy as np
    import pandas as pd

    from secmine.detect.corpus import load_inputs

    inputs = load_inputs(corpus, max_chars=max_chars)
    keep = ~inputs["id"].isin(exclude)
    if keyword_only:
        if not keywords_path or not Path(keywords_path).exists():
            raise FileNotFoundError(f"{keywords_path}: keyword matches needed for the unlabelled keyword matches")
        matches = pd.read_parquet(keywords_path, columns=["id", "keyword_match"]).set_index("id")["keyword_match"]
        keep &= inputs["id"].map(matches).fillna(False).astype(bool)
    pool = inputs[keep.to_numpy()].reset_index(drop=True)
    if n <= 0 or pool.empty:
        return []
    picks = np.sort(np.random.default_rng(seed).permutation(len(pool))[: min(n, len(pool))])
    return pool["text"].iloc[picks].tolist()


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
    keywords: Sequence[str] | None = None,
    word_boundary: bool = True,
    replication_root: str | os.PathLike[str] | None = None,
    security_labels: str | os.PathLike[str] | None = None,
    user_csv: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    unlabelled: str | os.PathLike[str] | None = None,
    log: Any = print,
    review_out: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> tuple[LabelledSet, Comparison]:
    """The whole ``train`` stage with the ``train`` params (every key of the block, typed; the
    classifier's options are the fields of :class:`secmine.detect.train.TrainOptions`).

    ``keywords``: the keyword family's keywords (the ``keywords`` stage's, default the paper's);
    ``data``: one labelled file (CSV with text and label columns, or a labelled Parquet) instead of
    assembling the labelled set from ``sources``; ``review_out``: the label-noise review sheet (CSV);
    ``checkpoint_dir``: finished fold fits of the search (a killed run resumes,
    :class:`secmine.detect.train.FoldCache`)."""
    from secmine.detect.keywords import parse_keywords
    from secmine.detect.train import TrainOptions, settings_from_params, train_labelled

    p = dict(train_params)
    options = TrainOptions.from_params(p)
    keywords = tuple(keywords) if keywords is not None else parse_keywords("paper")
    max_chars = int(p["max_chars"])
    seed = int(p["seed"])
    if data is not None:
        from secmine.detect.labelled import read_labelled_file

        labelled = read_labelled_file(
            data, text_column=str(p["text_column"]), label_column=str(p["label_column"]),
            id_column=str(p["id_column"]), max_chars=max_chars, date_column=str(p["date_column"]),
            repo_column=str(p["repo_column"]),
        )
    else:
        labelled = build_labelled(
            corpus=corpus,
            keywords_path=keywords_path,
            sources=str(p["sources"]),
            replication_root=replication_root,
            security_labels=security_labels,
            user_csv=user_csv,
            text_column=str(p["text_column"]),
            label_column=str(p["label_column"]),
            id_column=str(p["id_column"]),
            n_weak_negatives=int(p["weak_negatives"]),
            seed=seed,
            max_chars=max_chars,
            keywords=keywords,
            word_boundary=word_boundary,
        )
    for note in labelled.notes:
        log(note)
    settings = settings_from_params(p, keywords=keywords, word_boundary=word_boundary)
    texts = None
    if options.target_prior == "estimate":
        if unlabelled is not None:  # texts of the population the model will meet, given as a file
            from secmine.detect.corpus import load_inputs
            from secmine.detect.keywords import KeywordMatcher

            texts = load_inputs(unlabelled, text_column=str(p["text_column"]), max_chars=max_chars)["text"].tolist()
            if options.population == "keyword":
                matcher = KeywordMatcher(settings.keywords, word_boundary=settings.word_boundary)
                texts = [t for t in texts if matcher.matches(t)]
        elif data is None:
            texts = unlabelled_sample(corpus, exclude=set(labelled.frame["thread_id"].dropna()),
                                      n=options.prior_sample, seed=seed, keywords_path=keywords_path,
                                      keyword_only=options.population == "keyword", max_chars=max_chars)
        else:
            from secmine.errors import SecmineError

            raise SecmineError("train.target_prior: estimate with a labelled file needs the texts of the target "
                               "population", hint="pass --unlabelled FILE (a CSV with a text column, JSON lines "
                               "or a corpus)")
    comparison = train_labelled(
        labelled,
        model_dir=model_dir,
        settings=settings,
        families=str(p["families"]),
        test_size=float(p["test_size"]),
        n_folds=int(p["n_folds"]),
        n_trials=int(p["n_trials"]),
        transformer_trials=int(p["transformer_trials"]),
        n_boot=int(p["bootstrap"]),
        max_chars=max_chars,
        tables_dir=tables_dir,
        figures_dir=figures_dir,
        metrics_path=metrics_path,
        labelled_out=labelled_out,
        predictions_out=predictions_out,
        log=log,
        options=options,
        review_out=review_out,
        unlabelled_texts=texts,
        checkpoint_dir=checkpoint_dir,
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
    text_column: str = "text",
    id_column: str = "id",
    progress: bool = True,
    deterministic: bool = True,
    compute: Compute | None = None,
    device: str = "cpu",
    max_batch_size: int | None = None,
    max_tokens: int | None = None,
    log: Any = print,
) -> tuple[CorpusRun, pd.DataFrame]:
    """The ``classify`` stage: every corpus thread classified, summary table, figure and metrics.

    A Parquet corpus is streamed (:func:`secmine.detect.predict.classify_corpus`: one chunk's texts in
    memory at a time, a restart skips the finished chunks without rebuilding their texts); JSON lines
    and CSV inputs are read whole (:func:`secmine.detect.predict.classify_file`).  ``compute`` (the
    shared ``compute`` block): with ``engine: ray`` a corpus is scored by a Ray Data pipeline of model
    actors (:func:`secmine.compute.classify.score_corpus`), with the same outputs.

    ``deterministic`` (the default): the stage feeds committed tables, so ``engine: auto`` runs the
    exact fp32 graph, never int8 -- int8 labels can change with the CPU (its integer kernels
    differ between CPUs with and without VNNI, and activation scales are per batch), fp32 labels
    are PyTorch's (see docs/determinism.md).  A forced ``onnx-int8`` is still honoured.
    ``device``: ``cpu``, ``cuda`` or ``auto`` (:mod:`secmine.device`, docs/gpu.md).

    When the engine is approximate (int8), ``exactness_sample`` threads spread evenly over the corpus
    (every k-th by id) are also run through the exact fp32 graph and the metrics report how often
    the labels agree and the security share by each (``engine_check``)."""
    import matplotlib.pyplot as plt

    from secmine import io
    from secmine.detect.calibration import probability_threshold
    from secmine.detect.predict import classify_corpus, classify_file, histogram_figure, run_of_frame
    from secmine.detect.savedmodel import read_card
    from secmine.detect.stream import is_corpus

    card = read_card(model_dir)
    ray = compute is not None and compute.engine == "ray"
    if is_corpus(corpus) and not ray:
        run = classify_corpus(
            model_dir, corpus, output, keywords_path=keywords_path, checkpoint_dir=checkpoint_dir,
            chunk_size=chunk_size, num_threads=num_threads, engine=engine, progress=progress, exact=deterministic,
            exactness_sample=exactness_sample, device=device, max_batch_size=max_batch_size, max_tokens=max_tokens,
            log=log,
        )
    else:
        classified = classify_file(
            model_dir, corpus, output, keywords_path=keywords_path, checkpoint_dir=checkpoint_dir,
            chunk_size=chunk_size, num_threads=num_threads, engine=engine, progress=progress, exact=deterministic,
            text_column=text_column, id_column=id_column, device=device, max_batch_size=max_batch_size,
            max_tokens=max_tokens, compute=compute,
        )
        run = run_of_frame(classified, output, card, exactness_sample=exactness_sample)
    resolved = run.engine
    summary = run.summary
    check = None
    if resolved == "onnx-int8" and exactness_sample > 0 and len(run.sample):
        from secmine.detect.engine import exactness_check

        texts = _sample_texts(corpus, run.sample["id"].tolist(), card, text_column=text_column, id_column=id_column)
        check = exactness_check(model_dir, card, texts, run.sample["score"].to_numpy(), engine=resolved,
                                num_threads=num_threads)
    if tables_dir is not None:
        io.write_table(summary, Path(tables_dir) / "classified_summary", float_format="{:.2f}")
    if figures_dir is not None:
        fig = histogram_figure(run.histogram, probability_threshold(card))
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
                **{key: int(total[key]) for key in ("keyword_match", "security_without_keyword",
                                                     "keyword_not_security") if key in total.index},
                "engine": resolved,
                **({"engine_check": check} if check is not None else {}),
            },
        )
    return run, summary


def _sample_texts(corpus: str | os.PathLike[str], ids: list[str], card: dict[str, Any], *, text_column: str,
                  id_column: str) -> list[str]:
    """The canonical texts of the threads ``ids`` (in that order): from a Parquet corpus by a filtered
    read (only those rows), from other inputs by reading them whole."""
    from secmine.detect.savedmodel import card_max_chars
    from secmine.detect.stream import META_COLUMNS as STREAM_META
    from secmine.detect.stream import TEXT_COLUMNS, chunk_texts, is_corpus, open_corpus

    max_chars = card_max_chars(card)
    if is_corpus(corpus):
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        dataset = open_corpus(corpus)
        table = dataset.to_table(columns=[*STREAM_META, *TEXT_COLUMNS], filter=ds.field("id").isin(ids))
        table = table.take(pc.index_in(ids, table.column("id")))
        return chunk_texts(table, max_chars)
    from secmine.detect.corpus import load_inputs

    inputs = load_inputs(corpus, text_column=text_column, id_column=id_column, max_chars=max_chars)
    return inputs.set_index("id").loc[ids, "text"].tolist()
