"""The tagger's training data: coded posts (replication format) joined with their texts.

A coded CSV has the columns of the replication package's ``theme/mapped.csv`` (``source, id,
issue, solution``; :func:`secmine.replication.load_coded_sample` reads and checks it against the
codebook).  Texts come from

* ``replication`` (default): the replication package's ``theme/data.xlsx``;
* a thread corpus (a ``collect`` folder or Parquet, or JSON lines in the snapshot schema), joined on
  the thread a post id names (``{repo}-{number}`` within its source);
* a CSV with ``post_id`` (or ``id``) and ``text`` columns.

Every text goes through the project's one text representation
(:func:`secmine.text.canonical_text` / :func:`~secmine.text.thread_text`).  Posts
whose text is missing or empty are left out and listed in ``notes``.  ``group`` ties together posts
that are the same thread or have the same text, so no fold holds one of them in training and
another in evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from secmine.codebook import Codebook
from secmine.text import DEFAULT_MAX_CHARS, canonical_text, text_hash, thread_text
from secmine.taxonomy.labels import LabelSpace

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DATA_COLUMNS = ["post_id", "source", "platform", "kind", "thread_id", "group", "text"]


class TaggerDataError(ValueError):
    """The coded posts or their texts cannot be assembled; the message names file, row and field."""


@dataclass
class TaggerData:
    """Coded posts with texts and their label matrix."""

    frame: pd.DataFrame  # DATA_COLUMNS, one row a post
    Y: np.ndarray  # (posts, labels) 0/1, hierarchy-complete
    space: LabelSpace
    origin: str
    texts_origin: str
    notes: list[str] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return self.frame["text"].tolist()

    def __len__(self) -> int:
        return len(self.frame)

    def support(self) -> np.ndarray:
        return self.Y.sum(axis=0).astype(np.int64)


def load_tagger_data(
    coded: str | os.PathLike[str] | None = None,
    *,
    texts: str | os.PathLike[str] | pd.DataFrame | None = "replication",
    codebook: Codebook | None = None,
    replication_root: str | os.PathLike[str] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> TaggerData:
    """Coded posts (default: the replication package's ``theme/mapped.csv``) with their texts
    (see the module docstring) and the label matrix over ``codebook`` (default: the replication
    package's taxonomy)."""
    from secmine import config
    from secmine.replication import CODED_FILE, load_coded_sample

    root = Path(replication_root) if replication_root is not None else config.replication_dir()
    coded_path = (
        Path(coded) if coded is not None and str(coded) not in ("", "replication") else root / CODED_FILE
    )
    if codebook is None:
        codebook = Codebook.from_replication(root)
    space = LabelSpace(codebook)
    sample = load_coded_sample(root, path=coded_path, codebook=codebook, posts=None)
    posts = sample.posts.copy()
    posts["thread_id"] = [
        _thread_id(s, p, coded_path, row)
        for row, (s, p) in enumerate(zip(posts["source"], posts["post_id"]), start=2)
    ]
    text_map, texts_origin = _texts(posts, texts, root, max_chars)
    notes = [w.replace(str(coded_path), shown_path(coded_path)) for w in sample.warnings]
    posts["text"] = [text_map.get(str(p), "") for p in posts["post_id"]]
    missing = posts["text"].str.len() == 0
    if missing.any():
        shown = ", ".join(posts.loc[missing, "post_id"].head(5))
        notes.append(
            f"{int(missing.sum())} coded post(s) without text in {shown_path(texts_origin)} left out "
            f"(e.g. {shown})"
        )
    posts = posts[~missing].reset_index(drop=True)
    if posts.empty:
        raise TaggerDataError(f"{coded_path}: no coded post has a text in {texts_origin}")
    posts["group"] = _groups(posts["thread_id"].tolist(), posts["text"].tolist())
    Y = space.matrix(posts["post_id"].tolist(), sample.mentions)
    frame = posts[DATA_COLUMNS].reset_index(drop=True)
    return TaggerData(
        frame=frame,
        Y=Y,
        space=space,
        origin=shown_path(coded_path),
        texts_origin=shown_path(texts_origin),
        notes=notes,
    )


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as outputs record it: relative to the project root when it lies inside (so outputs do
    not depend on where the project is checked out)."""
    from secmine import config

    text = str(path)
    if text.startswith("<"):
        return text
    candidate = Path(text)
    try:
        return candidate.absolute().relative_to(config.PROJECT_ROOT).as_posix()
    except ValueError:
        return candidate.as_posix()


def _thread_id(source: str, post_id: str, path: Path, row: int) -> str:
    from secmine.replication import SOURCES, split_post_id
    from secmine.schema import thread_id

    platform, kind = SOURCES[source]
    try:
        repo, number = split_post_id(post_id)
    except ValueError as exc:
        raise TaggerDataError(f"{path}, row {row}, field 'id': {exc}") from None
    return thread_id(platform, kind, repo, number)


def _texts(
    posts: pd.DataFrame,
    texts: str | os.PathLike[str] | pd.DataFrame | None,
    root: Path,
    max_chars: int,
) -> tuple[dict[str, str], str]:
    """``{post_id: canonical text}`` and where the texts came from."""
    import pandas as pd

    if isinstance(texts, pd.DataFrame):
        return _from_table(texts, "<texts frame>", posts, max_chars), "<texts frame>"
    if texts is None or str(texts) in ("", "replication"):
        from secmine.replication import POSTS_FILE, load_posts

        frame = load_posts(root)
        return {p: canonical_text(t, max_chars) for p, t in zip(frame["post_id"], frame["text"])}, str(
            root / POSTS_FILE
        )
    path = Path(texts)
    if not path.exists():
        raise TaggerDataError(
            f"{path}: texts not found (give 'replication', a corpus, or a CSV with post_id,text)"
        )
    name = path.name.lower()
    if name.endswith(".xlsx"):
        from secmine.replication import load_posts

        if path.parent.name != "theme":
            raise TaggerDataError(f"{path}: an XLSX of texts must be a replication package's theme/data.xlsx")
        frame = load_posts(path.parent.parent)
        return {p: canonical_text(t, max_chars) for p, t in zip(frame["post_id"], frame["text"])}, str(path)
    if name.endswith((".csv", ".csv.gz")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        return _from_table(table, str(path), posts, max_chars), str(path)
    from secmine.detect.corpus import load_threads

    threads = load_threads(path, columns=["id", "title", "body", "comments"])
    wanted = set(posts["thread_id"])
    threads = threads[threads["id"].isin(wanted)]
    by_thread = {
        str(i): thread_text(t, b, _as_list(c), max_chars)
        for i, t, b, c in zip(threads["id"], threads["title"], threads["body"], threads["comments"])
    }
    return {str(p): by_thread.get(str(t), "") for p, t in zip(posts["post_id"], posts["thread_id"])}, str(
        path
    )


def _from_table(table: pd.DataFrame, origin: str, posts: pd.DataFrame, max_chars: int) -> dict[str, str]:
    key = "post_id" if "post_id" in table.columns else "id" if "id" in table.columns else None
    if key is None or "text" not in table.columns:
        raise TaggerDataError(
            f"{origin}, row 1: expected columns post_id (or id) and text, found {list(table.columns)}"
        )
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for row, (ident, text) in enumerate(zip(table[key].astype(str), table["text"]), start=2):
        if ident in seen:
            raise TaggerDataError(f"{origin}, row {row}, field {key!r}: {ident!r} repeats row {seen[ident]}")
        seen[ident] = row
        out[ident] = canonical_text(None if text is None else str(text), max_chars)
    # a table keyed by thread id also works
    by_thread = {str(t): out[str(t)] for t in posts["thread_id"] if str(t) in out}
    return {
        str(p): out.get(str(p), by_thread.get(str(t), ""))
        for p, t in zip(posts["post_id"], posts["thread_id"])
    }


def _as_list(value: object) -> list[object]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return []


def _groups(thread_ids: list[str], texts: list[str]) -> list[str]:
    """One group per thread, merged with every other thread of the same text (union-find)."""
    parent = {t: t for t in thread_ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_of_text: dict[str, str] = {}
    for tid, text in zip(thread_ids, texts):
        key = text_hash(text.casefold())
        if key in first_of_text:
            a, b = find(first_of_text[key]), find(tid)
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_of_text[key] = tid
    return [find(t) for t in thread_ids]
