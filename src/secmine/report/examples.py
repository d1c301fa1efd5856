"""A few example threads per taxonomy code, with their URL and title only.

Texts can hold personal data, so the report links each code to the threads it was assigned in,
and shows no more than the address and the title (the title from the corpus where the corpus has
the thread; the replication package's posts carry no title).  The examples are the first
``per_code`` coded posts of the code in post-id order: the same on every run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.replication import CodedSample

COLUMNS = ["type", "theme", "sub_theme", "code", "post_id", "source", "url", "title"]
NO_TITLE = ""


def corpus_titles(corpus: str | os.PathLike[str] | pd.DataFrame | None) -> dict[str, str]:
    """``{thread id: title}`` for the threads of a corpus folder (or frame) that have a title."""
    import pandas as pd

    if corpus is None:
        return {}
    if isinstance(corpus, pd.DataFrame):
        frame = corpus
    else:
        from pathlib import Path

        if not Path(corpus).exists():
            return {}
        from secmine.collect.corpus import read_corpus

        frame = read_corpus(corpus, columns=["id", "title"])
    titled = frame[frame["title"].fillna("").astype(str).str.strip() != ""]
    return dict(zip(titled["id"].astype(str), titled["title"].astype(str).str.strip()))


def code_examples(
    sample: CodedSample,
    posts: pd.DataFrame,
    *,
    titles: Mapping[str, str] | None = None,
    per_code: int = 3,
) -> pd.DataFrame:
    """Per code of the codebook (issue then solution codes, codebook order), up to ``per_code``
    posts carrying it: ``type, theme, sub_theme, code, post_id, source, url, title``.

    ``posts`` gives each post's ``url`` and ``thread_id`` (:func:`secmine.replication.load_posts`'s
    columns); ``titles`` maps thread ids to titles (:func:`corpus_titles`)."""
    import pandas as pd

    if per_code < 1:
        raise ValueError(f"per_code must be at least 1, got {per_code}")
    for column in ("post_id", "url", "thread_id"):
        if column not in posts.columns:
            raise ValueError(f"posts: missing column {column!r} (found {list(posts.columns)})")
    titles = titles or {}
    where = posts.set_index("post_id")
    mentions = sample.mentions.drop_duplicates(["type", "code", "post_id"]).sort_values(["type", "code", "post_id"])
    rows = []
    for code_type in ("issue", "solution"):
        for code in sample.codebook.of_type(code_type):  # type: ignore[arg-type]
            chosen = mentions[(mentions["type"] == code_type) & (mentions["code"] == code.name)].head(per_code)
            for post in chosen.itertuples(index=False):
                url = str(where.at[post.post_id, "url"]) if post.post_id in where.index else ""
                thread = str(where.at[post.post_id, "thread_id"]) if post.post_id in where.index else ""
                rows.append({"type": code_type, "theme": code.theme, "sub_theme": code.sub_theme, "code": code.name,
                             "post_id": post.post_id, "source": post.source, "url": url,
                             "title": titles.get(thread, NO_TITLE)})
    return pd.DataFrame(rows, columns=COLUMNS)


def examples_for(
    replication_dir: str | os.PathLike[str],
    *,
    coded_sample: str | os.PathLike[str] | None = None,
    codebook: str | os.PathLike[str] | None = None,
    corpus: str | os.PathLike[str] | pd.DataFrame | None = None,
    per_code: int = 3,
) -> pd.DataFrame:
    """:func:`code_examples` for the coded sample the ``thematic`` stage counts (the same
    ``coded_sample`` / ``codebook`` parameters; default the replication package's), titles from
    ``corpus`` (the ``collect`` stage's folder)."""
    from secmine.replication import load_posts
    from secmine.thematic.stage import load_inputs

    posts = load_posts(replication_dir)
    sample = load_inputs(coded_sample, codebook, "none", root=replication_dir)
    return code_examples(sample, posts, titles=corpus_titles(corpus), per_code=per_code)


__all__ = ["code_examples", "corpus_titles", "examples_for"]
