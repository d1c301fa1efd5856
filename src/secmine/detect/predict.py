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
from dataclasses import dataclass, field
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
                    progress: bool = False, exact: bool = False, device: str = "cpu",
                    max_batch_size: int | None = None, max_tokens: int | None = None,
                    ) -> tuple[Any, dict[str, Any], str]:
    """``(model, card, engine)``: what :func:`classify_file` runs -- the saved model itself, or for a
    transformer an ONNX Runtime session when the resolved engine is ``onnx``/``onnx-int8`` (then
    PyTorch weights are never loaded).  ``exact``: ``auto`` never resolves to int8
    (:func:`secmine.detect.engine.resolve_engine`).

    ``device`` (``auto``, ``cpu`` or ``cuda``, :func:`secmine.device.resolve_device`): on ``cuda`` an
    ONNX engine runs on ONNX Runtime's CUDA provider when it is installed, else the engine falls back
    to PyTorch on the GPU (:func:`secmine.device.engine_for_device`); ``max_batch_size`` and
    ``max_tokens`` size the batches (``None``: the engine's CPU defaults)."""
    from secmine.detect.engine import OnnxClassifier, resolve_engine
    from secmine.device import engine_for_device, resolve_device

    card = read_card(model_dir)
    where = resolve_device(device)
    resolved = engine_for_device(resolve_engine(engine, card, exact=exact), where)
    if resolved == "torch":
        model, card = load_model(model_dir, num_threads=num_threads, progress=progress)
        if card.get("family") == "transformer" and hasattr(model, "model"):
            import torch

            model.model = model.model.to(torch.device(where))  # its own batches: 8x larger on a GPU
        return model, card, resolved
    threads = int(num_threads if num_threads else card.get("settings", {}).get("num_threads", 2))
    sizes = {k: int(v) for k, v in (("max_batch_size", max_batch_size), ("max_tokens", max_tokens)) if v is not None}
    return OnnxClassifier.from_model_dir(model_dir, card, resolved, num_threads=threads, progress=progress,
                                         device=where, **sizes), card, resolved


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
    device: str = "cpu",
    max_batch_size: int | None = None,
    max_tokens: int | None = None,
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
        model, card, engine = load_classifier(model_dir, engine=engine, num_threads=num_threads, exact=exact,
                                              device=device, max_batch_size=max_batch_size, max_tokens=max_tokens)
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
    result.attrs["engine"] = engine
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


def probability_histogram(classified: pd.DataFrame) -> dict[str, Any]:
    """Counts of the probabilities in :data:`HISTOGRAM_BINS` bins over [0, 1] (``bins``: the edges), by
    keyword match (``keyword``, ``no_keyword``) when the frame has one, else ``all``."""
    bins = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    probability = classified["probability"].to_numpy(dtype=np.float64)
    if "keyword_match" not in classified.columns:
        return {"bins": bins, "all": np.histogram(probability, bins=bins)[0]}
    keyword = classified["keyword_match"].astype(bool).to_numpy()
    return {"bins": bins, "keyword": np.histogram(probability[keyword], bins=bins)[0],
            "no_keyword": np.histogram(probability[~keyword], bins=bins)[0]}


def probability_figure(classified: pd.DataFrame, threshold: float) -> Any:
    """Histogram of probabilities, threads with and without a keyword match."""
    return histogram_figure(probability_histogram(classified), threshold)


def histogram_figure(histogram: dict[str, Any], threshold: float) -> Any:
    """:func:`probability_figure` drawn from the counts of :func:`probability_histogram` (what a
    streamed run keeps instead of every probability)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    bins = np.asarray(histogram["bins"], dtype=np.float64)
    left = bins[:-1]  # one point per bin, weighted by its count: the same bars as the values themselves

    def draw(counts: Any, label: str, colour: str) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        ax.hist(left, bins=bins, weights=counts, histtype="step", linewidth=1.6,
                label=f"{label} (n={int(counts.sum()):,})", color=colour)

    # outlined (step) histograms: overlapping filled bars would blend into a colour no legend entry shows
    if "keyword" in histogram:
        draw(histogram["no_keyword"], "no keyword match", "tab:blue")
        draw(histogram["keyword"], "keyword match", "tab:red")
    else:
        draw(histogram["all"], "all texts", "tab:blue")
    ax.axvline(threshold, color="black", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("probability of a security discussion")
    ax.set_ylabel("threads (log scale)")
    ax.legend(fontsize=8)
    ax.set_title("Classifier probabilities over the corpus")
    fig.tight_layout()
    return fig


def run_of_frame(classified: pd.DataFrame, output: str | os.PathLike[str], card: dict[str, Any], *,
                 exactness_sample: int = 0) -> CorpusRun:
    """A :class:`CorpusRun` of a frame classified in memory (:func:`classify_file`)."""
    import pandas as pd

    total = len(classified)
    picks = (np.unique(np.linspace(0, total - 1, min(exactness_sample, total)).astype(int))
             if exactness_sample > 0 and total else np.zeros(0, dtype=int))
    sample = pd.DataFrame({"id": classified["id"].iloc[picks].astype(str).tolist(),
                           "score": classified["score"].to_numpy(dtype=np.float64)[picks]})
    return CorpusRun(output=Path(output), engine=str(classified.attrs.get("engine", "")), threads=total,
                     summary=summarise_classified(classified), histogram=probability_histogram(classified),
                     sample=sample)


# -- a Parquet corpus, streamed -------------------------------------------------------------------

#: Rows of the classified output converted and written at a time: pandas' default row group
#: (``pyarrow.parquet.write_table``'s), so the streamed file has the row groups of a whole-frame write.
WRITE_ROWS = 1024 * 1024
HISTOGRAM_BINS = 40


@dataclass
class CorpusRun:
    """What :func:`classify_corpus` reports: the written output, its summary and what the figure and
    the exactness check need (never the classified rows themselves)."""

    output: Path
    engine: str
    threads: int
    summary: pd.DataFrame
    #: bin edges and per-bin counts of the probability, by keyword match (``None``: no keyword column)
    histogram: dict[str, Any]
    #: ``id`` and raw ``score`` of the threads of the exactness sample (empty when none was asked)
    sample: pd.DataFrame
    chunks_reused: int = 0
    chunks_computed: int = 0
    seconds_to_first_chunk: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def security(self) -> int:
        return int(self.summary[self.summary["platform"] == "all"].iloc[0]["security"])


def _run_key(model_key: str, engine: str, max_chars: int, chunk_size: int, corpus_key: str, extra: str) -> str:
    digest = hashlib.sha256()
    for part in (model_key, engine, str(max_chars), str(chunk_size), corpus_key, extra):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def _finished_prefix(folder: Path, run_key: str, total: int, chunk_size: int) -> tuple[int, str | None]:
    """``(k, last_id)``: chunks ``0..k-1`` of this run are complete (right row count); ``last_id`` is
    the id the next chunk starts after."""
    import pyarrow.parquet as pq

    done, last = 0, None
    n_chunks = -(-total // chunk_size)
    while done < n_chunks:
        path = folder / f"chunk-{done:05d}-{run_key}.parquet"
        if not path.is_file():
            break
        expected = min(chunk_size, total - done * chunk_size)
        try:
            if pq.read_metadata(path).num_rows != expected:
                break
            ids = pq.read_table(path, columns=["id"]).column("id")
        except Exception:  # noqa: BLE001 - an unreadable chunk is recomputed
            break
        last = ids[-1].as_py()
        done += 1
    return done, last


def _keyword_lookup(keywords_path: Path, first: str, last: str) -> pd.Series:
    import pyarrow.dataset as ds

    dataset = ds.dataset(keywords_path, format="parquet")
    table = dataset.to_table(columns=["id", "keyword_match"],
                             filter=(ds.field("id") >= first) & (ds.field("id") <= last))
    return table.to_pandas().set_index("id")["keyword_match"]


def _combine_summaries(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The summary of several parts of the output: counts added, shares and means recomputed."""
    import pandas as pd

    if len(parts) == 1:
        return parts[0]
    frame = pd.concat(parts, ignore_index=True)
    frame["probability_sum"] = frame["mean_probability"] * frame["threads"]
    counts = [c for c in frame.columns if c not in ("platform", "kind", "security_pct", "mean_probability")]
    total = frame.groupby(["platform", "kind"], sort=False)[counts].sum().reset_index()
    rest = total[total["platform"] != "all"].sort_values(["platform", "kind"])
    total = pd.concat([rest, total[total["platform"] == "all"]], ignore_index=True)
    total["security_pct"] = 100.0 * total["security"] / total["threads"].where(total["threads"] > 0, 1)
    total["mean_probability"] = total["probability_sum"] / total["threads"].where(total["threads"] > 0, 1)
    return total[list(parts[0].columns)]


def classify_corpus(
    model_dir: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    keywords_path: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    chunk_size: int = 2000,
    threshold: float | None = None,
    num_threads: int | None = None,
    engine: str = "auto",
    progress: bool = True,
    exact: bool = False,
    exactness_sample: int = 0,
    device: str = "cpu",
    max_batch_size: int | None = None,
    max_tokens: int | None = None,
    log: Any = None,
) -> CorpusRun:
    """:func:`classify_file` for a Parquet corpus, in memory bounded by the chunk size, not the corpus.

    The corpus is streamed in id order (:mod:`secmine.detect.stream`): one chunk's texts at a time
    are built, scored and checkpointed (``chunk-<index>-<run>.parquet``: the chunk's metadata and raw
    scores; the run key fingerprints the model, engine, text length, chunk size and the corpus
    files' bytes).  A restarted run skips the finished chunks without reading their texts.  The
    output is then written from the chunks, :data:`WRITE_ROWS` rows at a time, byte-identical to a
    whole-frame write; the summary, the figure's histogram and the exactness sample are gathered on
    the way.  Without ``checkpoint_dir`` the chunks live in a temporary folder."""
    import contextlib
    import tempfile
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from secmine import io
    from secmine.detect.keywords import PAPER_KEYWORDS, match_threads
    from secmine.detect.stream import corpus_chunks, count_rows, input_fingerprint, open_corpus

    say = log or (lambda _message: None)
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    model, card, engine = load_classifier(model_dir, engine=engine, num_threads=num_threads, exact=exact,
                                          device=device, max_batch_size=max_batch_size, max_tokens=max_tokens)
    timings["load_model_s"] = time.perf_counter() - started
    max_chars = card_max_chars(card)
    dataset = open_corpus(input_path)
    total = count_rows(dataset)
    settings = card.get("settings", {})
    keywords = list(settings.get("keywords") or PAPER_KEYWORDS)
    word_boundary = bool(settings.get("word_boundary", True))
    own_keywords = keywords_path is None
    extra = f"engine={engine};stream=1;" + (f"keywords={keywords};wb={word_boundary}" if own_keywords else "")
    output = Path(output)
    with contextlib.ExitStack() as stack:
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir)
            folder.mkdir(parents=True, exist_ok=True)
            mark = time.perf_counter()
            run_key = _run_key(model_fingerprint(model_dir), engine, max_chars, chunk_size,
                               input_fingerprint(dataset, input_path), extra)
            timings["fingerprint_s"] = time.perf_counter() - mark
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="secmine-classify-")))
            run_key = "run"
        n_chunks = -(-total // chunk_size)
        names = [f"chunk-{i:05d}-{run_key}.parquet" for i in range(n_chunks)]
        done, last_id = _finished_prefix(folder, run_key, total, chunk_size)
        if done:
            say(f"classify: {done} of {n_chunks} chunks already finished ({folder}); resuming after {last_id!r}")
        first_chunk_at = None
        with tqdm(total=total, initial=min(total, done * chunk_size), desc="classify", unit="thread",
                  disable=not progress) as bar:
            for chunk in corpus_chunks(dataset, chunk_size=chunk_size, max_chars=max_chars, first_index=done,
                                       after=last_id):
                scores = np.asarray(model.predict_proba(chunk.texts), dtype=np.float64)
                if scores.shape != (len(chunk.texts),):
                    raise ModelError(f"{model.family}: {scores.shape} probabilities for {len(chunk.texts)} texts")
                table = chunk.meta.append_column("score", pa.array(scores, type=pa.float64()))
                if own_keywords:
                    threads = chunk.threads.to_pandas()
                    matched = match_threads(threads, keywords, word_boundary=word_boundary)["keyword_match"]
                    table = table.append_column("keyword_match", pa.array(matched.to_numpy(dtype=bool)))
                with io.atomic_path(folder / names[chunk.index]) as tmp:
                    pq.write_table(table, tmp, compression="zstd")
                if first_chunk_at is None:
                    first_chunk_at = time.perf_counter() - started
                bar.update(table.num_rows)
        timings["inference_s"] = time.perf_counter() - started - sum(timings.values())
        keep = set(names)
        for stale in folder.glob("chunk-*.parquet"):
            if stale.name not in keep:
                stale.unlink()
        mark = time.perf_counter()
        run = _write_classified(folder, names, output, card=card, threshold=threshold, keywords_path=keywords_path,
                                total=total, exactness_sample=exactness_sample)
        timings["write_s"] = time.perf_counter() - mark
    run.engine = engine
    run.chunks_reused, run.chunks_computed = done, n_chunks - done
    run.seconds_to_first_chunk = first_chunk_at
    run.timings = {k: round(v, 3) for k, v in timings.items()}
    return run


def _write_classified(folder: Path, names: list[str], output: Path, *, card: dict[str, Any], threshold: float | None,
                      keywords_path: str | os.PathLike[str] | None, total: int, exactness_sample: int) -> CorpusRun:
    """The output written from the chunk files, :data:`WRITE_ROWS` rows at a time."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from secmine import io

    parquet = output.suffix.lower() == ".parquet"
    bins = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    counts = {True: np.zeros(HISTOGRAM_BINS, dtype=np.int64), False: np.zeros(HISTOGRAM_BINS, dtype=np.int64)}
    picks = (np.unique(np.linspace(0, total - 1, min(exactness_sample, total)).astype(int))
             if exactness_sample > 0 and total else np.zeros(0, dtype=int))
    sample_ids: list[str] = []
    sample_scores: list[float] = []
    summaries: list[pd.DataFrame] = []
    position = 0
    with io.atomic_path(output) as tmp:
        writer: Any = None
        header = True
        pending: list[pa.Table] = []
        held = 0

        def flush(tables: list[pa.Table]) -> None:
            nonlocal writer, header, position
            if not tables:
                return
            frame = pa.concat_tables(tables).to_pandas()
            keyword_match = frame.pop("keyword_match").to_numpy(dtype=bool) if "keyword_match" in frame else None
            scores = frame.pop("score").to_numpy(dtype=np.float64)
            probability, label = apply_card(card, scores, threshold)
            result = frame
            result["probability"] = probability
            result["label"] = label
            if keywords_path is not None:
                matches = _keyword_lookup(Path(keywords_path), frame["id"].iloc[0], frame["id"].iloc[-1])
                missing = ~result["id"].isin(matches.index)
                if missing.any():
                    raise ValueError(
                        f"{keywords_path}: {int(missing.sum())} thread(s) of the input have no keyword result "
                        f"(e.g. {result['id'][missing].iloc[0]!r}); rerun the keywords stage"
                    )
                keyword_match = result["id"].map(matches).to_numpy(dtype=bool)
            result["keyword_match"] = keyword_match
            stop = position + len(result)
            inside = picks[(picks >= position) & (picks < stop)] - position
            sample_ids.extend(result["id"].iloc[inside].tolist())
            sample_scores.extend(scores[inside].tolist())
            position = stop
            for flag in (True, False):
                counts[flag] += np.histogram(probability[keyword_match == flag], bins=bins)[0]
            summaries.append(summarise_classified(result))
            if parquet:
                result = result[list(CLASSIFIED_COLUMNS)].copy()
                result["number"] = result["number"].astype("int64")
                table = pa.Table.from_pandas(result, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
                writer.write_table(table.cast(writer.schema))
            else:
                with open(tmp, "a" if not header else "w", encoding="utf-8", newline="") as handle:
                    result[["id", "probability", "label"]].to_csv(handle, index=False, header=header,
                                                                  lineterminator="\n")
                header = False

        try:
            for name in names:
                table = pq.read_table(folder / name)
                pending.append(table)
                held += table.num_rows
                if held >= WRITE_ROWS:
                    whole = pa.concat_tables(pending)
                    flush([whole.slice(0, WRITE_ROWS)])
                    rest = whole.slice(WRITE_ROWS)
                    pending, held = ([rest] if rest.num_rows else []), rest.num_rows
            flush(pending)
            if parquet and writer is None:
                raise ValueError(f"{output}: the corpus has no threads")
        finally:
            if writer is not None:
                writer.close()
    summary = _combine_summaries(summaries)
    histogram = {"bins": bins, "keyword": counts[True], "no_keyword": counts[False]}
    return CorpusRun(output=output, engine="", threads=position, summary=summary, histogram=histogram,
                     sample=pd.DataFrame({"id": sample_ids, "score": np.asarray(sample_scores, dtype=np.float64)}))
