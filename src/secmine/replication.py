"""Typed loaders for the authors' replication package (``ai_sec_dev``, same layout as
https://github.com/anh56/ai_sec_dev).

Every loader returns a pandas frame checked by a pandera schema, with errors that name the file,
the row and the field.  Nothing here assumes the paper's sample sizes: the local copy withholds
part of the coded sample on purpose.

Files read (relative to the package root):

========================================================  =========================================
``theme/data.xlsx`` (sheet ``data``)                      the posts sampled for thematic analysis
``theme/mapped.csv``                                      issue and solution codes per post
``theme/keypoints_codes.xlsx``                            the coders' key points per post
``theme/{issue,solution}_theme_summary.csv``              the taxonomy (see :mod:`secmine.codebook`)
``classifier/manual/all.csv``                             hand-labelled training ids
``classifier/test/test.csv``                              hand-labelled test ids
``classifier/inference/distilbert/*_security_only.xlsx``  ids the paper's classifier marked security
========================================================  =========================================
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine import config
from secmine.codebook import CODE_TYPES, Codebook, CodebookError
from secmine.errors import SecmineError
from secmine.schema import PAPER_SOURCES, SOURCE_KEYS, Thread, thread_id, thread_url, validate_with
from secmine.text import decode_escapes, is_truncated

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# The replication package's names of the three sources, and what they are in our schema.
SOURCES: dict[str, tuple[str, str]] = {name: SOURCE_KEYS[name] for name in PAPER_SOURCES}
# classifier/*.csv name the sources differently.
LABEL_TYPES: dict[str, tuple[str, str]] = {
    "HF_DISCUSSIONS": ("huggingface", "discussion"),
    "GH_ISSUES": ("github", "issue"),
    "GH_DISCUSSIONS": ("github", "discussion"),
}
SECURITY_ONLY_FILES: dict[str, tuple[str, str, str, str]] = {
    # file name: (platform, kind, repo column, number column)
    "hf_disc_security_only.xlsx": ("huggingface", "discussion", "model_id", "num"),
    "gh_disc_security_only.xlsx": ("github", "discussion", "repo_name", "discussion_number"),
}

POSTS_FILE = "theme/data.xlsx"
CODED_FILE = "theme/mapped.csv"
KEYPOINTS_FILE = "theme/keypoints_codes.xlsx"
LABELLED_FILES = {"train": "classifier/manual/all.csv", "test": "classifier/test/test.csv"}
SECURITY_ONLY_DIR = "classifier/inference/distilbert"


class ReplicationError(SecmineError, ValueError):
    """The replication package is missing a file or holds bad data; the message names file,
    row and field."""


def _root(root: str | os.PathLike[str] | None) -> Path:
    return Path(root) if root is not None else config.replication_dir()


def split_post_id(post_id: str) -> tuple[str, int]:
    """``"owner/name-12"`` -> ``("owner/name", 12)``."""
    repo, sep, number = str(post_id).rpartition("-")
    if not sep or not repo or not number.isdigit():
        raise ValueError(f"post id {post_id!r} is not of the form 'owner/name-number'")
    return repo, int(number)


def _read_excel(path: Path, *, sheet: str | int = 0, required: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise ReplicationError(f"{path}: file not found")
    try:
        frame = pd.read_excel(path, sheet_name=sheet, dtype=object, engine="openpyxl")
    except ValueError as exc:  # missing sheet
        raise ReplicationError(f"{path}: cannot read sheet {sheet!r} ({exc})") from exc
    except Exception as exc:  # zip / XML errors from a damaged file
        raise ReplicationError(f"{path}: unreadable spreadsheet ({type(exc).__name__}: {exc})") from exc
    _require_columns(frame, required, path)
    return frame


def _read_csv(path: Path, *, required: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    from secmine.inputs import InputError, read_csv

    if not path.is_file():
        raise ReplicationError(f"{path}: file not found")
    try:
        frame = read_csv(path, required=required, dtype=object, keep_default_na=False)
    except InputError as exc:
        raise ReplicationError(str(exc)) from None
    _require_columns(frame, required, path)
    return frame


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], path: Path) -> None:
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReplicationError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} (found {list(frame.columns)})"
        )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _int_cell(value: Any, *, path: Path, row: int, field_name: str) -> int:
    text = _cell(value)
    try:
        number = int(float(text)) if text else None
    except ValueError:
        number = None
    if number is None or number < 0 or (text and float(text) != number):
        raise ReplicationError(f"{path}, row {row}, field {field_name!r}: {text!r} is not a thread number")
    return number


def _source(value: Any, *, path: Path, row: int, field_name: str, names: dict[str, tuple[str, str]]) -> str:
    text = _cell(value)
    lookup = {k.casefold(): k for k in names}
    if text.casefold() not in lookup:
        raise ReplicationError(
            f"{path}, row {row}, field {field_name!r}: {text!r} is not one of {', '.join(names)}"
        )
    return lookup[text.casefold()]


# -- posts -------------------------------------------------------------------------------------


def load_posts(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The posts sampled for thematic analysis (``theme/data.xlsx``), one row a post.

    Columns: ``post_id, source, platform, kind, repo, number, thread_id, url, text, truncated``.
    Literal ``\\n``/``\\r``/``\\t`` escapes are decoded; texts of exactly 32,767 characters (Excel's
    cell limit) are flagged ``truncated``.  A duplicated post is an error.
    """
    import pandas as pd

    path = _root(root) / POSTS_FILE
    frame = _read_excel(path, sheet="data", required=("Data source", "Repo Name", "Num", "Text"))
    rows = []
    seen: dict[str, int] = {}
    for position, record in enumerate(frame.to_dict(orient="records")):
        row = position + 2  # spreadsheet row (header is row 1)
        source = _source(record["Data source"], path=path, row=row, field_name="Data source", names=SOURCES)
        repo = _cell(record["Repo Name"])
        if not repo:
            raise ReplicationError(f"{path}, row {row}, field 'Repo Name': empty")
        number = _int_cell(record["Num"], path=path, row=row, field_name="Num")
        text_value = record["Text"]
        raw_text = "" if text_value is None or (isinstance(text_value, float) and text_value != text_value) else str(text_value)
        post_id = f"{repo}-{number}"
        if post_id in seen:
            raise ReplicationError(f"{path}, row {row}, field 'Repo Name'/'Num': post {post_id!r} repeats row {seen[post_id]}")
        seen[post_id] = row
        platform, kind = SOURCES[source]
        rows.append(
            {
                "post_id": post_id,
                "source": source,
                "platform": platform,
                "kind": kind,
                "repo": repo,
                "number": number,
                "thread_id": thread_id(platform, kind, repo, number),
                "url": thread_url(platform, kind, repo, number),
                "text": decode_escapes(raw_text).strip(),
                "truncated": is_truncated(raw_text),
            }
        )
    posts = pd.DataFrame(rows, columns=POST_COLUMNS)
    return _validate(POSTS_SCHEMA(), posts, path)


POST_COLUMNS = ["post_id", "source", "platform", "kind", "repo", "number", "thread_id", "url", "text", "truncated"]


def posts_as_threads(posts: pd.DataFrame, *, source: str = f"replication:{POSTS_FILE}") -> list[Thread]:
    """Replication posts as threads of the one schema (the whole text is the body)."""
    return [
        Thread(
            platform=row.platform,
            kind=row.kind,
            repo=row.repo,
            number=int(row.number),
            title="",
            body=row.text,
            url=row.url,
            source=source,
        )
        for row in posts.itertuples(index=False)
    ]


# -- coded sample ------------------------------------------------------------------------------


@dataclass
class CodedSample:
    """A coded sample: the posts, their code mentions, and data-quality warnings."""

    posts: pd.DataFrame  # post_id, source, platform, kind
    mentions: pd.DataFrame  # post_id, source, platform, kind, type, code, sub_theme, theme, raw_label, row
    codebook: Codebook
    origin: str
    warnings: list[str] = field(default_factory=list)

    @property
    def n_posts(self) -> int:
        return len(self.posts)


MENTION_COLUMNS = ["post_id", "source", "platform", "kind", "type", "code", "sub_theme", "theme", "raw_label", "row"]


def load_coded_sample(
    root: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    codebook: Codebook | None = None,
    posts: pd.DataFrame | None = None,
) -> CodedSample:
    """Read a coded sample in the format of ``theme/mapped.csv`` (``source, id, issue, solution``).

    ``path`` defaults to the replication package's ``theme/mapped.csv``; ``codebook`` to its
    taxonomy.  Each label is matched to the codebook regardless of case, spacing and stray
    separators; an unknown label is an error naming file, row and field.  A post listed twice is an
    error.  A code listed twice in one post is kept (the paper counts mentions) and reported in
    ``warnings``, as are posts missing from ``posts`` (default: the replication texts, when the
    replication package is there) and posts with no issue code.
    """
    import pandas as pd

    root_path = _root(root)
    coded_path = Path(path) if path is not None else root_path / CODED_FILE
    codebook = codebook if codebook is not None else Codebook.from_replication(root_path)
    frame = _read_csv(coded_path, required=("source", "id", "issue", "solution"))
    warnings: list[str] = []
    post_rows: list[dict[str, Any]] = []
    mention_rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for position, record in enumerate(frame.to_dict(orient="records")):
        row = position + 2
        if not any(_cell(value) for value in record.values()):
            continue  # a row of empty cells (",,,") is a blank line, not a post
        source = _source(record["source"], path=coded_path, row=row, field_name="source", names=SOURCES)
        post_id = _cell(record["id"])
        if not post_id:
            raise ReplicationError(f"{coded_path}, row {row}, field 'id': empty")
        if post_id in seen:
            raise ReplicationError(f"{coded_path}, row {row}, field 'id': post {post_id!r} repeats row {seen[post_id]}")
        seen[post_id] = row
        platform, kind = SOURCES[source]
        post_rows.append({"post_id": post_id, "source": source, "platform": platform, "kind": kind})
        for code_type in CODE_TYPES:
            labels = codebook.split_labels(record[code_type])
            names = []
            for label in labels:
                try:
                    code = codebook.match(code_type, label, where=f"{coded_path}, row {row}, field {code_type!r}")
                except CodebookError as exc:
                    raise ReplicationError(str(exc)) from None
                names.append(code.name)
                mention_rows.append(
                    {
                        "post_id": post_id,
                        "source": source,
                        "platform": platform,
                        "kind": kind,
                        "type": code_type,
                        "code": code.name,
                        "sub_theme": code.sub_theme,
                        "theme": code.theme,
                        "raw_label": label,
                        "row": row,
                    }
                )
            repeated = sorted(name for name, n in Counter(names).items() if n > 1)
            if repeated:
                warnings.append(
                    f"{coded_path}, row {row} ({post_id}): {code_type} code(s) listed more than once, "
                    f"counted each time as in the paper: {'; '.join(repeated)}"
                )
            if code_type == "issue" and not names:
                warnings.append(f"{coded_path}, row {row} ({post_id}): no issue code")
    if not post_rows:
        raise ReplicationError(
            f"{coded_path}: no coded posts (a header and no rows); code the sample first, or point "
            "thematic.coded_sample at the coded file; nothing was written"
        )
    if posts is None and path is None and (root_path / POSTS_FILE).is_file():
        posts = load_posts(root_path)
    if posts is not None:
        known = set(posts["post_id"])
        for post_id, row in seen.items():
            if post_id not in known:
                warnings.append(f"{coded_path}, row {row}: post {post_id!r} has no text in the posts file")
    post_frame = pd.DataFrame(post_rows, columns=["post_id", "source", "platform", "kind"])
    mentions = pd.DataFrame(mention_rows, columns=MENTION_COLUMNS)
    mentions["row"] = mentions["row"].astype("int64")
    return CodedSample(post_frame, mentions, codebook, str(coded_path), warnings)


# -- key points --------------------------------------------------------------------------------


def load_keypoints(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The coders' key points: ``post_id, key_points, issues, solutions`` (escapes decoded)."""
    import pandas as pd

    path = _root(root) / KEYPOINTS_FILE
    frame = _read_excel(path, required=("ID", "Key points", "Issues", "Solutions"))
    rows = []
    for position, record in enumerate(frame.to_dict(orient="records")):
        post_id = _cell(record["ID"])
        if not post_id:
            raise ReplicationError(f"{path}, row {position + 2}, field 'ID': empty")
        rows.append(
            {
                "post_id": post_id,
                "key_points": decode_escapes(_cell(record["Key points"])),
                "issues": _cell(record["Issues"]),
                "solutions": _cell(record["Solutions"]),
            }
        )
    return pd.DataFrame(rows, columns=["post_id", "key_points", "issues", "solutions"])


# -- classifier labels and outputs -------------------------------------------------------------


def load_labelled(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The hand-labelled ids: ``split, platform, kind, repo, number, thread_id, is_security``.

    ``split`` is ``train`` (``classifier/manual/all.csv``) or ``test`` (``classifier/test/test.csv``).
    The package holds ids only; text comes from a corpus (rehydration).
    """
    import pandas as pd

    root_path = _root(root)
    columns = {"train": ("name", "id"), "test": ("id_name", "id_num")}
    rows = []
    for split, relative in LABELLED_FILES.items():
        path = root_path / relative
        repo_col, num_col = columns[split]
        frame = _read_csv(path, required=(repo_col, num_col, "type", "is_security"))
        for position, record in enumerate(frame.to_dict(orient="records")):
            row = position + 2
            type_name = _source(record["type"], path=path, row=row, field_name="type", names=LABEL_TYPES)
            platform, kind = LABEL_TYPES[type_name]
            repo = _cell(record[repo_col])
            if not repo:
                raise ReplicationError(f"{path}, row {row}, field {repo_col!r}: empty")
            number = _int_cell(record[num_col], path=path, row=row, field_name=num_col)
            label = _cell(record["is_security"])
            if label not in {"0", "1"}:
                raise ReplicationError(f"{path}, row {row}, field 'is_security': {label!r} is not 0 or 1")
            rows.append(
                {
                    "split": split,
                    "platform": platform,
                    "kind": kind,
                    "repo": repo,
                    "number": number,
                    "thread_id": thread_id(platform, kind, repo, number),
                    "is_security": int(label),
                }
            )
    labelled = pd.DataFrame(rows, columns=["split", "platform", "kind", "repo", "number", "thread_id", "is_security"])
    return _validate(LABELLED_SCHEMA(), labelled, root_path / "classifier")


def _security_only_target(name: str) -> tuple[str, str] | None:
    """``hf_disc_security_only.xlsx`` -> (huggingface, discussion); gh_disc -> GitHub discussions;
    gh_issue / gh_iss -> GitHub issues; anything else -> None."""
    stem = name.casefold()
    if stem.startswith("hf"):
        return "huggingface", "discussion"
    if stem.startswith("gh_disc"):
        return "github", "discussion"
    if stem.startswith(("gh_iss", "gh_pr")):
        return "github", "issue"
    return None


def load_security_only(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Ids of the threads the paper's distilBERT marked as security, from every
    ``classifier/inference/distilbert/*_security_only.xlsx`` list present.

    Columns: ``platform, kind, repo, number, thread_id``.  The public package has the HF and GitHub
    discussion lists (``model_id, num`` and ``repo_name, discussion_number``); a GitHub issues list
    (``gh_issue*_security_only.xlsx``) is read when present, its first two columns taken as
    repository and number when the names differ.
    """
    import pandas as pd

    folder = _root(root) / SECURITY_ONLY_DIR
    frames = []
    for path in sorted(folder.glob("*_security_only.xlsx")):
        target = _security_only_target(path.name)
        if target is None:
            raise ReplicationError(f"{path}: cannot tell the platform from the file name")
        platform, kind = target
        known = SECURITY_ONLY_FILES.get(path.name)
        frame = _read_excel(path, required=known[2:] if known else ())
        if known:
            repo_col, num_col = known[2], known[3]
        elif len(frame.columns) >= 2:
            repo_col, num_col = frame.columns[0], frame.columns[1]
        else:
            raise ReplicationError(f"{path}: expected two columns (repository, number)")
        repos, numbers = [], []
        for position, record in enumerate(frame.to_dict(orient="records")):
            row = position + 2
            repo = _cell(record[repo_col])
            if not repo:
                raise ReplicationError(f"{path}, row {row}, field {repo_col!r}: empty")
            repos.append(repo)
            numbers.append(_int_cell(record[num_col], path=path, row=row, field_name=num_col))
        part = pd.DataFrame({"platform": platform, "kind": kind, "repo": repos, "number": numbers})
        part["thread_id"] = [thread_id(platform, kind, r, n) for r, n in zip(repos, numbers)]
        frames.append(part)
    if not frames:
        raise ReplicationError(f"{folder}: no *_security_only.xlsx list found")
    out = pd.concat(frames, ignore_index=True)
    out["number"] = out["number"].astype("int64")
    return out.drop_duplicates("thread_id").reset_index(drop=True)


# -- validation --------------------------------------------------------------------------------

_REPO_RE = r"^[^\s/]+/[^\s/]+$"


def POSTS_SCHEMA():  # noqa: N802 - schema factory, built lazily (pandera import is slow)
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            "post_id": pa.Column(str, unique=True),
            "source": pa.Column(str, pa.Check.isin(list(SOURCES))),
            "platform": pa.Column(str),
            "kind": pa.Column(str),
            "repo": pa.Column(str, pa.Check.str_matches(_REPO_RE)),
            "number": pa.Column("int64", pa.Check.ge(0)),
            "thread_id": pa.Column(str, unique=True),
            "url": pa.Column(str, pa.Check.str_startswith("https://")),
            "text": pa.Column(str),
            "truncated": pa.Column(bool),
        },
        strict=True,
        coerce=True,
    )


def LABELLED_SCHEMA():  # noqa: N802
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            "split": pa.Column(str, pa.Check.isin(["train", "test"])),
            "platform": pa.Column(str),
            "kind": pa.Column(str),
            "repo": pa.Column(str, pa.Check.str_length(min_value=1)),
            "number": pa.Column("int64", pa.Check.ge(0)),
            "thread_id": pa.Column(str),
            "is_security": pa.Column("int64", pa.Check.isin([0, 1])),
        },
        strict=True,
        coerce=True,
    )


def _validate(schema: Any, frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    return validate_with(schema, frame, where=f"{path}: invalid data", error=ReplicationError, row_offset=2)
