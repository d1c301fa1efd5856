"""Loading a saved model and applying it at scale: chunked, resumable, with progress.

:func:`classify_frame` streams the input through the model in chunks of ``chunk_size`` rows.  Each
finished chunk is written atomically to the checkpoint folder under a name that fingerprints the
model and the chunk's ids and texts, so a killed run resumes where it stopped and a changed model or
corpus never reuses stale results.  Transformer models use length-sorted dynamic batching
(:mod:`secmine.detect.batching`).  Checkpoints hold the model's raw scores; the reported
``probability`` is the card's calibrated probability at its target prior and the label applies the
card's threshold to the raw score (:func:`apply_card`, the one place that does this, through
:mod:`secmine.detect.calibration`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.detect.models import ModelError, SecurityModel
from secmine.detect.savedmodel import (  # noqa: F401 - MODEL_CARD, read_card, load_model are this module's API too
    MODEL_CARD,
    card_max_chars,
    load_model,
    model_fingerprint,
    read_card,
)
from secmine.schema import CLASSIFIED_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    from secmine.detect.engine import OnnxClassifier
    from secmine.stages.shared import Compute

#: What :func:`score_threads` returns for a batch: the metadata of each thread and its raw score.
SCORED_COLUMNS: tuple[str, ...] = ("id", "platform", "kind", "repo", "number", "created_at", "score")


def load_classifier(model_dir: str | os.PathLike[str], *, engine: str = "auto", num_threads: int | None = None,
                    progress: bool = False, exact: bool = False) -> tuple[Any, dict[str, Any], str]:
    """``(model, card, engine)``: what :func:`classify_file` runs -- the saved model itself, or for a
    transformer an ONNX Runtime session when the resolved engine is ``onnx``/``onnx-int8`` (then
    PyTorch weights are never loaded).  ``exact``: ``auto`` never resolves to int8
    (:func:`secmine.detect.engine.resolve_engine`)."""
    from secmine.detect.engine import OnnxClassifier, resolve_engine

    card = read_card(model_dir)
    resolved = resolve_engine(engine, card, exact=exact)
    if resolved == "torch":
        model, card = load_model(model_dir, num_threads=num_threads, progress=progress)
        return model, card, resolved
    threads = int(num_threads if num_threads else card.get("settings", {}).get("num_threads", 2))
    return OnnxClassifier.from_model_dir(model_dir, card, resolved, num_threads=threads, progress=progress), card, resolved


def apply_card(card: dict[str, Any], scores: Any, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(probability, label)`` of raw model ``scores`` as the saved model's card says: calibrated and
    moved to the target prior; labelled ``score >= card['threshold']``.  An explicit ``threshold``
    labels by the *probability* instead (``probability >= threshold``)."""
    from secmine.detect.calibration import card_labels, card_probability

    raw = np.asarray(scores, dtype=np.float64)
    probability = card_probability(card, raw)
    if threshold is not None:
        return probability, (probability >= float(threshold)).astype(np.int64)
    return probability, card_labels(card, raw)


def _chunk_key(model_key: str, ids: list[str], texts: list[str], extra: str) -> str:
    digest = hashlib.sha256(model_key.encode())
    digest.update(extra.encode())
    for ident, text in zip(ids, texts, strict=True):
        digest.update(str(ident).encode())
        digest.update(b"\0")
        digest.update(hashlib.sha1(text.encode("utf-8")).digest())
    return digest.hexdigest()[:16]


def predict_scores(model: SecurityModel | OnnxClassifier, texts: list[str]) -> np.ndarray:
    """The model's raw scores of ``texts`` (one per text, float64): the one model call of a local
    chunk and of a Ray actor's batch."""
    proba = np.asarray(model.predict_proba(texts), dtype=np.float64)
    if proba.shape != (len(texts),):
        raise ModelError(f"{model.family}: {proba.shape} probabilities for {len(texts)} texts")
    return proba


def scored_arrow_schema() -> pa.Schema:
    """The Arrow types of :data:`SCORED_COLUMNS` and ``checkpoint`` (the batch's checkpoint file name)."""
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("platform", pa.string()), ("kind", pa.string()), ("repo", pa.string()),
                      ("number", pa.int64()), ("created_at", pa.string()), ("score", pa.float64()),
                      ("checkpoint", pa.string())])


BATCH_CHECKPOINT = "batch-{key}.parquet"


def score_threads(
    model: SecurityModel | OnnxClassifier,
    threads: pd.DataFrame,
    *,
    max_chars: int,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    model_key: str = "",
    extra_key: str = "",
) -> pa.Table:
    """One batch of threads scored: :func:`secmine.detect.corpus.thread_inputs` (the local run's text
    preparation), then :func:`predict_scores`; a table of :data:`SCORED_COLUMNS` and ``checkpoint``
    in the batch's order.  With ``checkpoint_dir`` a batch already scored (same model, ids and texts:
    ``batch-<fingerprint>.parquet``) is read back instead, and a new one is written there."""
    import pandas as pd
    import pyarrow as pa

    from secmine import io
    from secmine.detect.corpus import thread_inputs

    inputs = thread_inputs(threads, max_chars)
    ids, texts = inputs["id"].astype(str).tolist(), inputs["text"].tolist()
    name = ""
    scores = None
    if checkpoint_dir is not None and ids:
        name = BATCH_CHECKPOINT.format(key=_chunk_key(model_key, ids, texts, extra_key))
        path = Path(checkpoint_dir) / name
        if path.is_file():
            done = pd.read_parquet(path)
            if done["id"].astype(str).tolist() == ids:
                scores = done["probability"].to_numpy(dtype=np.float64)
    if scores is None:
        scores = predict_scores(model, texts)
        if name:
            io.write_parquet(pd.DataFrame({"id": ids, "probability": scores}), Path(checkpoint_dir) / name)
    columns = {c: inputs[c].tolist() for c in SCORED_COLUMNS[:-1]}
    columns["number"] = [int(n) for n in columns["number"]]
    return pa.Table.from_pydict({**columns, "score": scores, "checkpoint": [name] * len(ids)},
                                schema=scored_arrow_schema())


def prune_checkpoints(checkpoint_dir: str | os.PathLike[str], used: list[str]) -> None:
    """Remove the batch checkpoints of ``checkpoint_dir`` that are not in ``used`` (after a complete run)."""
    keep = set(used)
    for stale in Path(checkpoint_dir).glob(BATCH_CHECKPOINT.format(key="*")):
        if stale.name not in keep:
            stale.unlink()


def classify_frame(
    model: SecurityModel | OnnxClassifier,
    inputs: pd.DataFrame,
    *,
    model_key: str,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    chunk_size: int = 2000,
    progress: bool = True,
    extra_key: str = "",
) -> np.ndarray:
    """Probabilities for ``inputs['text']`` in input order, chunk by chunk, resuming from checkpoints.

    Chunk files are ``chunk-<index>-<fingerprint>.parquet`` (columns ``id``, ``probability``).  After a
    complete run, chunk files that are not part of it are removed.
    """
    import pandas as pd
    from tqdm import tqdm

    from secmine import io

    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    ids = inputs["id"].astype(str).tolist()
    texts = inputs["text"].tolist()
    out = np.zeros(len(texts), dtype=np.float64)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    keep: set[str] = set()
    starts = list(range(0, len(texts), chunk_size))
    with tqdm(total=len(texts), desc="classify", unit="thread", disable=not progress) as bar:
        for index, start in enumerate(starts):
            stop = min(start + chunk_size, len(texts))
            chunk_ids, chunk_texts = ids[start:stop], texts[start:stop]
            path = None
            if folder is not None:
                key = _chunk_key(model_key, chunk_ids, chunk_texts, extra_key)
                path = folder / f"chunk-{index:05d}-{key}.parquet"
                keep.add(path.name)
                if path.is_file():
                    done = pd.read_parquet(path)
                    if done["id"].astype(str).tolist() == chunk_ids:
                        out[start:stop] = done["probability"].to_numpy(dtype=np.float64)
                        bar.update(stop - start)
                        continue
            proba = predict_scores(model, chunk_texts)
            out[start:stop] = proba
            if path is not None:
                io.write_parquet(pd.DataFrame({"id": chunk_ids, "probability": proba}), path)
            bar.update(stop - start)
    if folder is not None:
        for stale in folder.glob("chunk-*.parquet"):
            if stale.name not in keep:
                stale.unlink()
    return out


def classify_file(
    model_dir: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    text_column: str = "text",
    id_column: str = "id",
    keywords_path: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    chunk_size: int = 2000,
    threshold: float | None = None,
    num_threads: int | None = None,
    engine: str = "auto",
    progress: bool = True,
    exact: bool = False,
    compute: Compute | None = None,
) -> pd.DataFrame:
    """Classify every row of ``input_path`` with the model in ``model_dir`` and write ``output``.

    Input: a corpus folder/Parquet, JSON lines in the snapshot schema, or a CSV with a text column.
    Output ``.csv``: ``id, probability, label`` one row per input (``probability``: calibrated, at the
    card's target prior; ``label``: the card's threshold on the raw score, or ``threshold`` on the
    probability when given).  Output ``.parquet`` (threads only):
    the columns of :data:`CLASSIFIED_COLUMNS`; ``keyword_match`` comes from ``keywords_path`` (the
    ``keywords`` stage output) or, without it, from matching the model card's keywords (paper's
    keywords by default) over title, body and comments.

    ``engine`` runs a transformer with PyTorch (``torch``) or ONNX Runtime (``onnx``: fp32, the same
    logits; ``onnx-int8``: quantised) -- ``auto`` picks what the train stage validated (see
    :mod:`secmine.detect.engine`); other families ignore it.  ``exact``: ``auto`` never picks int8.
    Nothing is written besides ``output`` and the chunks in ``checkpoint_dir``.

    ``compute`` with ``engine: ray`` and a corpus input: the threads are scored by a Ray Data
    pipeline of model actors (:func:`secmine.compute.classify.score_corpus`), with the same output bytes.
    """
    from secmine import io
    from secmine.detect.corpus import load_inputs

    key = model_fingerprint(model_dir) if checkpoint_dir is not None else ""
    source = Path(input_path)
    if compute is not None and compute.engine == "ray" and (source.is_dir() or source.suffix.lower() == ".parquet"):
        from secmine.compute.classify import score_corpus
        from secmine.detect.engine import resolve_engine

        card = read_card(model_dir)
        engine = resolve_engine(engine, card, exact=exact)
        threads = int(num_threads if num_threads else card.get("settings", {}).get("num_threads", 2))
        if checkpoint_dir is not None:
            Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        scored = score_corpus(model_dir, source, engine=engine, num_threads=threads, exact=exact,
                              max_chars=card_max_chars(card), compute=compute, checkpoint_dir=checkpoint_dir,
                              model_key=key).to_pandas()
        scores = scored.pop("score").to_numpy(dtype=np.float64)
        result = scored
    else:
        model, card, engine = load_classifier(model_dir, engine=engine, num_threads=num_threads, exact=exact)
        inputs = load_inputs(input_path, text_column=text_column, id_column=id_column, max_chars=card_max_chars(card))
        scores = classify_frame(
            model, inputs, model_key=key, checkpoint_dir=checkpoint_dir, chunk_size=chunk_size,
            progress=progress, extra_key=f"engine={engine}",
        )
        result = inputs.drop(columns=["text"]).copy()
    probability, label = apply_card(card, scores, threshold)
    result["probability"] = probability
    result["label"] = label
    output = Path(output)
    if output.suffix.lower() == ".parquet":
        if "platform" not in result.columns:
            raise ValueError(f"{output}: Parquet output needs thread input (corpus or JSON lines), not a CSV")
        result["keyword_match"] = _keyword_match(result, input_path, keywords_path, card)
        result = result[list(CLASSIFIED_COLUMNS)].copy()
        result["number"] = result["number"].astype("int64")
        io.write_parquet(result, output)
    else:
        io.write_csv(result[["id", "probability", "label"]], output)
    result["score"] = scores  # the raw model score (what the engines and the threshold compare), not written
    return result


def _keyword_match(result: pd.DataFrame, input_path: Any, keywords_path: Any, card: dict[str, Any]) -> np.ndarray:
    import pandas as pd

    if keywords_path is not None:
        matches = pd.read_parquet(keywords_path, columns=["id", "keyword_match"]).set_index("id")["keyword_match"]
        missing = ~result["id"].isin(matches.index)
        if missing.any():
            raise ValueError(
                f"{keywords_path}: {int(missing.sum())} thread(s) of the input have no keyword result "
                f"(e.g. {result['id'][missing].iloc[0]!r}); rerun the keywords stage"
            )
        return result["id"].map(matches).to_numpy(dtype=bool)
    from secmine.detect.corpus import load_threads
    from secmine.detect.keywords import PAPER_KEYWORDS, match_threads

    settings = card.get("settings", {})
    threads = load_threads(input_path, columns=["id", "platform", "kind", "repo", "number", "title", "body", "comments"])
    matches = match_threads(threads, settings.get("keywords") or PAPER_KEYWORDS,
                            word_boundary=bool(settings.get("word_boundary", True)))
    return result["id"].map(matches.set_index("id")["keyword_match"]).to_numpy(dtype=bool)


def summarise_classified(classified: pd.DataFrame) -> pd.DataFrame:
    """Per platform and kind: threads, keyword matches, classified security, and their overlap."""
    import pandas as pd

    rows = []
    threads = "platform" in classified.columns  # a CSV of texts has no platform, kind or keyword match
    groups = [((p, k), g) for (p, k), g in classified.groupby(["platform", "kind"], sort=True)] if threads else []
    groups.append((("all", "all"), classified))
    for (platform, kind), group in groups:
        security = group["label"] == 1
        row: dict[str, Any] = {"platform": platform, "kind": kind, "threads": len(group)}
        if "keyword_match" in group.columns:
            row["keyword_match"] = int(group["keyword_match"].astype(bool).sum())
        row["security"] = int(security.sum())
        row["security_pct"] = 100.0 * security.mean() if len(group) else 0.0
        if "keyword_match" in group.columns:
            keyword = group["keyword_match"].astype(bool)
            row["security_and_keyword"] = int((security & keyword).sum())
            row["security_without_keyword"] = int((security & ~keyword).sum())
            row["keyword_not_security"] = int((~security & keyword).sum())
        row["mean_probability"] = float(group["probability"].mean()) if len(group) else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def probability_figure(classified: pd.DataFrame, threshold: float) -> Any:
    """Histogram of probabilities, threads with and without a keyword match."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    bins = np.linspace(0, 1, 41)
    # outlined (step) histograms: overlapping filled bars would blend into a colour no legend entry shows
    if "keyword_match" in classified.columns:
        for flag, name, colour in ((False, "no keyword match", "tab:blue"), (True, "keyword match", "tab:red")):
            part = classified.loc[classified["keyword_match"].astype(bool) == flag, "probability"]
            ax.hist(part, bins=bins, histtype="step", linewidth=1.6, label=f"{name} (n={len(part):,})", color=colour)
    else:
        ax.hist(classified["probability"], bins=bins, histtype="step", linewidth=1.6,
                label=f"all texts (n={len(classified):,})", color="tab:blue")
    ax.axvline(threshold, color="black", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("probability of a security discussion")
    ax.set_ylabel("threads (log scale)")
    ax.legend(fontsize=8)
    ax.set_title("Classifier probabilities over the corpus")
    fig.tight_layout()
    return fig
