"""The one schema for a discussion thread, used from collection to report.

A :class:`Thread` is an issue, pull request or discussion on GitHub or Hugging Face with its
comments.  Every record keeps its provenance: ``platform``, ``repo``, ``number``, ``url`` and
``source`` (where this copy of the record came from: a snapshot file, the replication package,
or a live API).  In tables, threads are rows of a pandas frame with the columns of
:data:`THREAD_COLUMNS`; on disk they are Parquet with :data:`THREAD_ARROW_SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from secmine.errors import SecmineError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

Platform = Literal["github", "huggingface"]
Kind = Literal["issue", "pull_request", "discussion"]

PLATFORMS: tuple[str, ...] = ("github", "huggingface")
KINDS: tuple[str, ...] = ("issue", "pull_request", "discussion")
PLATFORM_SHORT = {"github": "gh", "huggingface": "hf"}
REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")

# The one source vocabulary: the replication package's names of the sources (theme/mapped.csv
# ``source`` column), extended to the kinds the paper did not sample, and the paper's three.
SOURCE_NAMES: dict[tuple[str, str], str] = {
    ("huggingface", "discussion"): "HF Discussion",
    ("github", "issue"): "GH Issue",
    ("github", "discussion"): "GH Discussion",
    ("github", "pull_request"): "GH Pull Request",
    ("huggingface", "pull_request"): "HF Pull Request",
    ("huggingface", "issue"): "HF Issue",
}
SOURCE_KEYS: dict[str, tuple[str, str]] = {name: key for key, name in SOURCE_NAMES.items()}
HF_DISCUSSION, GH_ISSUE, GH_DISCUSSION = "HF Discussion", "GH Issue", "GH Discussion"
PAPER_SOURCES: tuple[str, ...] = (HF_DISCUSSION, GH_ISSUE, GH_DISCUSSION)


# One row of the classified corpus (the classify stage's output): the thread's provenance, its
# keyword match and the classifier's probability and label.
CLASSIFIED_COLUMNS: tuple[str, ...] = (
    "id", "platform", "kind", "repo", "number", "created_at", "keyword_match", "probability", "label",
)


def source_name(platform: str, kind: str) -> str:
    """``("github", "issue")`` -> ``"GH Issue"`` (``platform:kind`` for a pair without a name)."""
    return SOURCE_NAMES.get((platform, kind), f"{platform}:{kind}")


class SchemaError(SecmineError, ValueError):
    """A record does not fit the thread schema; the message names file, row and field."""


@dataclass(frozen=True)
class Comment:
    author: str | None
    body: str
    created_at: str | None = None


@dataclass(frozen=True)
class Thread:
    platform: str
    kind: str
    repo: str
    number: int
    title: str
    body: str
    url: str
    source: str
    author: str | None = None
    state: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    labels: tuple[str, ...] = ()
    comments: tuple[Comment, ...] = field(default=())
    repo_type: str | None = None  # Hugging Face: model, dataset or space

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise SchemaError(f"platform: {self.platform!r} is not one of {PLATFORMS}")
        if self.kind not in KINDS:
            raise SchemaError(f"kind: {self.kind!r} is not one of {KINDS}")
        if not self.repo or "/" not in self.repo and self.platform == "github":
            raise SchemaError(f"repo: {self.repo!r} is not owner/name")
        if not isinstance(self.number, int) or isinstance(self.number, bool) or self.number < 0:
            raise SchemaError(f"number: {self.number!r} is not a non-negative integer")
        if self.repo_type is not None and self.repo_type not in REPO_TYPES:
            raise SchemaError(f"repo_type: {self.repo_type!r} is not one of {REPO_TYPES}")

    @property
    def id(self) -> str:
        return thread_id(self.platform, self.kind, self.repo, self.number)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["id"] = self.id
        record["labels"] = list(self.labels)
        record["comments"] = [asdict(c) for c in self.comments]
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Thread:
        comments = tuple(
            Comment(author=c.get("author"), body=c.get("body") or "", created_at=c.get("created_at"))
            for c in (record.get("comments") if record.get("comments") is not None else ())
        )
        labels = record.get("labels")
        return cls(
            platform=record["platform"],
            kind=record["kind"],
            repo=record["repo"],
            number=int(record["number"]),
            title=record.get("title") or "",
            body=record.get("body") or "",
            url=record.get("url") or "",
            source=record.get("source") or "",
            author=record.get("author"),
            state=record.get("state"),
            created_at=record.get("created_at"),
            updated_at=record.get("updated_at"),
            closed_at=record.get("closed_at"),
            labels=tuple(labels) if labels is not None else (),
            comments=comments,
            repo_type=record.get("repo_type"),
        )


THREAD_COLUMNS: tuple[str, ...] = (
    "id",
    "platform",
    "kind",
    "repo",
    "number",
    "title",
    "body",
    "url",
    "source",
    "author",
    "state",
    "created_at",
    "updated_at",
    "closed_at",
    "labels",
    "comments",
    "repo_type",
)


def thread_id(platform: str, kind: str, repo: str, number: int) -> str:
    """Stable id, e.g. ``gh:issue:owner/name#12`` or ``hf:discussion:org/model#3``."""
    return f"{PLATFORM_SHORT.get(platform, platform)}:{kind}:{repo}#{int(number)}"


def thread_url(platform: str, kind: str, repo: str, number: int) -> str:
    """The web address of a thread on its platform."""
    if platform == "huggingface":
        return f"https://huggingface.co/{repo}/discussions/{int(number)}"
    section = {"issue": "issues", "pull_request": "pull", "discussion": "discussions"}.get(kind, kind)
    return f"https://github.com/{repo}/{section}/{int(number)}"


def parse_thread_id(value: str) -> tuple[str, str, str, int]:
    """Inverse of :func:`thread_id`: ``(platform, kind, repo, number)``."""
    try:
        short, kind, rest = value.split(":", 2)
        repo, number = rest.rsplit("#", 1)
        platform = {v: k for k, v in PLATFORM_SHORT.items()}.get(short, short)
        if not short.strip() or not kind.strip() or not repo.strip():
            raise ValueError("empty part")
        return platform, kind, repo, int(number)
    except ValueError as exc:
        raise SchemaError(f"id: {value!r} is not of the form gh:kind:owner/name#number") from exc


def normalise_timestamp(value: Any) -> str | None:
    """ISO 8601 UTC with a ``Z`` (``2024-04-04T01:12:57Z``), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SchemaError(f"timestamp {text!r} is not ISO 8601") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def thread_arrow_schema() -> pa.Schema:
    import pyarrow as pa

    comment = pa.struct(
        [("author", pa.string()), ("body", pa.string()), ("created_at", pa.string())]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("platform", pa.string()),
            ("kind", pa.string()),
            ("repo", pa.string()),
            ("number", pa.int64()),
            ("title", pa.string()),
            ("body", pa.string()),
            ("url", pa.string()),
            ("source", pa.string()),
            ("author", pa.string()),
            ("state", pa.string()),
            ("created_at", pa.string()),
            ("updated_at", pa.string()),
            ("closed_at", pa.string()),
            ("labels", pa.list_(pa.string())),
            ("comments", pa.list_(comment)),
            ("repo_type", pa.string()),
        ]
    )


def threads_to_frame(threads: Iterable[Thread]) -> pd.DataFrame:
    """Threads as a frame with :data:`THREAD_COLUMNS` (comments as lists of dicts)."""
    import pandas as pd

    rows = [t.to_record() for t in threads]
    frame = pd.DataFrame(rows, columns=list(THREAD_COLUMNS))
    frame["number"] = frame["number"].astype("int64")
    return frame


def frame_to_threads(frame: pd.DataFrame) -> list[Thread]:
    out = []
    for position, record in enumerate(frame.to_dict(orient="records")):
        try:
            out.append(Thread.from_record(_plain(record)))
        except (SchemaError, KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"row {position}: {exc}") from exc
    return out


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Arrow/numpy containers to plain Python (lists, dicts, None for NaN)."""
    import numpy as np

    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, np.ndarray):
            value = [_plain(v) if isinstance(v, dict) else v for v in value.tolist()]
        elif isinstance(value, float) and value != value:
            value = None
        out[key] = value
    return out


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pandas(frame[list(THREAD_COLUMNS)], schema=thread_arrow_schema(), preserve_index=False)


def validate_frame(frame: pd.DataFrame, *, where: str = "thread frame") -> pd.DataFrame:
    """Check a thread frame with pandera; errors name ``where``, the row and the field."""
    import pandera.pandas as pa

    schema = pa.DataFrameSchema(
        {
            "id": pa.Column(str, unique=True),
            "platform": pa.Column(str, pa.Check.isin(PLATFORMS)),
            "kind": pa.Column(str, pa.Check.isin(KINDS)),
            "repo": pa.Column(str, pa.Check.str_length(min_value=1)),
            "number": pa.Column("int64", pa.Check.ge(0)),
            "title": pa.Column(str),
            "body": pa.Column(str),
            "url": pa.Column(str),
            "source": pa.Column(str, pa.Check.str_length(min_value=1)),
            "author": pa.Column(str, nullable=True),
            "state": pa.Column(str, nullable=True),
            "created_at": pa.Column(str, nullable=True),
            "updated_at": pa.Column(str, nullable=True),
            "closed_at": pa.Column(str, nullable=True),
            "labels": pa.Column(object),
            "comments": pa.Column(object),
            "repo_type": pa.Column(str, nullable=True),
        },
        strict=False,
        coerce=False,
    )
    return validate_with(schema, frame, where=f"{where}: invalid threads", error=SchemaError)


def validate_with(
    schema: Any, frame: pd.DataFrame, *, where: str, error: type[Exception] = SchemaError, row_offset: int = 0
) -> pd.DataFrame:
    """Validate ``frame`` with a pandera ``schema``; on failure raise ``error`` listing, for the first
    ten failures, the row (frame index + ``row_offset``, e.g. 2 for a spreadsheet with a header),
    the field, the check and the value."""
    import pandera.pandas as pa

    try:
        return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        lines = []
        for case in exc.failure_cases.head(10).itertuples():
            try:
                row = str(int(case.index) + row_offset)
            except (TypeError, ValueError):
                row = "?"
            lines.append(f"row {row}, field {case.column!r}: {case.check} failed for {case.failure_case!r}")
        raise error(f"{where}:\n  " + "\n  ".join(lines)) from exc
