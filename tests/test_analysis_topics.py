"""Topics on tiny data: BERTopic over precomputed (fake) embeddings, the embedding cache, the
tables, determinism and the alignment with manual themes."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.analysis import topics
from secmine.analysis.topics import EmbeddingCache, TopicsParams, run_topics
from secmine.schema import thread_id

GROUPS = {
    0: "pickle deserialization unsafe load arbitrary code",
    1: "token secret leaked api key credentials",
    2: "prompt injection jailbreak harmful output",
}
PARAMS = TopicsParams(reducer="pca", n_components=3, min_cluster_size=5, min_df=1, seed=1)


def _frames(per_group: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    classified, corpus = [], []
    number = 0
    for group, words in GROUPS.items():
        for i in range(per_group):
            number += 1
            platform, kind = ("huggingface", "discussion") if i % 2 else ("github", "issue")
            repo = f"org/r{group}"
            tid = thread_id(platform, kind, repo, number)
            classified.append(
                {
                    "id": tid,
                    "platform": platform,
                    "kind": kind,
                    "repo": repo,
                    "number": number,
                    "created_at": f"202{3 + i % 2}-05-01T00:00:00Z",
                    "keyword_match": True,
                    "probability": 0.9,
                    "label": 1,
                }
            )
            corpus.append(
                {"id": tid, "title": f"report {number}", "body": f"{words} case {i}", "comments": []}
            )
    # a non-security thread: never modelled
    classified.append(
        {
            "id": "gh:issue:org/x#999",
            "platform": "github",
            "kind": "issue",
            "repo": "org/x",
            "number": 999,
            "created_at": None,
            "keyword_match": False,
            "probability": 0.1,
            "label": 0,
        }
    )
    corpus.append({"id": "gh:issue:org/x#999", "title": "unrelated", "body": "docs typo", "comments": []})
    return pd.DataFrame(classified), pd.DataFrame(corpus)


class FakeEncoder:
    """Group direction plus small deterministic noise; counts the texts it embeds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        out = []
        for text in texts:
            group = next((g for g, words in GROUPS.items() if words.split()[0] in text), 0)
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            vector = rng.normal(0, 0.05, 12)
            vector[group] += 1.0
            out.append(vector)
        return np.asarray(out, dtype=np.float32)


def test_embedding_cache_reuses_vectors(tmp_path: Path) -> None:
    encoder = FakeEncoder()
    cache = EmbeddingCache(tmp_path / "emb")
    first = cache.embed(["a pickle", "a token", "a pickle"], encoder)
    assert encoder.calls == 2 and cache.computed == 2  # duplicates embedded once
    cache.save()
    again = EmbeddingCache(tmp_path / "emb")
    assert len(again) == 2
    second = again.embed(["a token", "a pickle"], lambda: pytest.fail("the factory must not be called"))
    assert again.computed == 0 and again.hits == 2
    np.testing.assert_array_equal(second, first[[1, 0]])
    digest = hashlib.sha256((tmp_path / "emb" / topics.CACHE_FILE).read_bytes()).hexdigest()
    again.save()
    assert hashlib.sha256((tmp_path / "emb" / topics.CACHE_FILE).read_bytes()).hexdigest() == digest


def test_run_topics_recovers_groups_and_is_deterministic(tmp_path: Path) -> None:
    classified, corpus = _frames()
    encoder = FakeEncoder()
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = run_topics(
            "unused",
            None,
            classified=classified,
            corpus=corpus,
            embeddings_dir=tmp_path / "emb",
            doc_topics_path=out / "topics.parquet",
            tables_dir=out / "tables",
            figures_dir=out / "figures",
            metrics_path=out / "topics.json",
            params=PARAMS,
            encoder=encoder,
        )
        outputs.append(
            {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert encoder.calls == 30  # the second run reads every embedding from the cache
    assert outputs[0].keys() == outputs[1].keys()
    for name in outputs[0]:
        if name.endswith((".csv", ".md", ".tex", ".json", ".svg", ".png")):
            assert outputs[0][name] == outputs[1][name], name
    assert result.metrics["documents"] == 30 and result.metrics["topics"] == 3
    # every topic holds exactly one group
    docs = result.docs.assign(
        topic=result.topics,
        group=[next(g for g, w in GROUPS.items() if w.split()[0] in t) for t in result.docs["text"]],
    )
    assert docs.groupby("group")["topic"].nunique().tolist() == [1, 1, 1]
    assert docs.groupby("topic")["group"].nunique().tolist() == [1, 1, 1]
    info = result.tables["topics"]
    assert info["size"].tolist() == [10, 10, 10]
    assert any("pickle" in words for words in info["words"])
    by_source = result.tables["topics_by_source"]
    assert by_source[["HF Discussion", "GH Issue"]].to_numpy().sum() == 30
    by_year = result.tables["topics_by_year"]
    assert {"2023", "2024"} <= set(by_year.columns)
    doc_topics = pd.read_parquet(tmp_path / "a" / "topics.parquet")
    assert len(doc_topics) == 30 and "gh:issue:org/x#999" not in set(doc_topics["id"])
    assert {"topics.csv", "topics_by_source.md"} <= {Path(n).name for n in outputs[0]}
    # tables name thread ids, never texts
    assert b"case 3" not in b"".join(v for k, v in outputs[0].items() if k.startswith("tables/"))


def test_alignment_with_manual_themes() -> None:
    docs = pd.DataFrame({"post_id": ["p1", "p2", "p3", "p4"], "source": ["GH Issue"] * 4})
    assigned = np.array([0, 0, 1, -1])
    info = pd.DataFrame({"topic": [-1, 0, 1], "name": ["outliers", "0: a", "1: b"]})
    mentions = pd.DataFrame(
        {
            "post_id": ["p1", "p1", "p2", "p3", "p3", "p4"],
            "source": ["GH Issue"] * 6,
            "type": ["issue"] * 5 + ["solution"],
            "code": ["c1", "c2", "c1", "c3", "c4", "s1"],
            "sub_theme": ["s-a", "s-b", "s-a", "s-c", "s-d", "x"],
            "theme": ["Model", "Data", "Model", "Data", "Data", "Model"],
        }
    )
    table, metrics = topics.alignment(docs, assigned, mentions, info)
    # p1 counts in Model and Data; p2 Model; p3 Data; p4 has no issue code
    assert table.set_index("topic")[["Model", "Data"]].to_dict(orient="index") == {
        0: {"Model": 2, "Data": 1},
        1: {"Model": 0, "Data": 1},
    }
    # dominant themes: p1 tie Model/Data -> Model (paper order), p2 Model, p3 Data:
    # topics 0, 0, 1 match them exactly
    assert metrics["theme_nmi"] == pytest.approx(1.0) and metrics["theme_ari"] == pytest.approx(1.0)
    assert metrics["theme_posts"] == 3 and metrics["aligned_posts"] == 3
    dominant = topics.dominant_themes(mentions)
    assert dict(zip(dominant["post_id"], dominant["theme"])) == {"p1": "Model", "p2": "Model", "p3": "Data"}


def test_too_few_documents_is_an_error(tmp_path: Path) -> None:
    classified, corpus = _frames(per_group=1)
    classified.loc[1:, "label"] = 0
    with pytest.raises(ValueError, match="too few"):
        run_topics(
            "unused",
            None,
            classified=classified,
            corpus=corpus,
            embeddings_dir=tmp_path,
            params=PARAMS,
            encoder=FakeEncoder(),
            write=False,
        )
