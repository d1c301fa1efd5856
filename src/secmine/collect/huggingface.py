"""Hugging Face collector, through ``huggingface_hub``.

For each repository type in scope (models by default; datasets and spaces as options):

1. ``HfApi.list_models`` (``list_datasets``, ``list_spaces``) sorted by ``sort`` (likes by
   default), at most ``limit`` repositories, with downloads, likes, pipeline tag, tags and card
   data in the listing;
2. repositories with neither downloads nor likes are skipped (as in the paper);
3. the README (``resolve/main/README.md``) is read and its GitHub links extracted; the
   repository is linked to the most similar one (:mod:`secmine.collect.linking`);
4. for linked repositories (``discussions_for: linked``, the paper's scope) or all of them
   (``all``): ``model_info`` with the security scan status and with base models and children
   counts, then ``get_repo_discussions`` and ``get_discussion_details`` for each discussion; its
   events give the opening post, the comments and the status changes.

The Hub gives no update time for a discussion, so an incremental run fetches the details of the
discussions that are new, still open, whose status changed, or whose number of comments in the
listing (``numComments``) changed since the previous run (a new comment on a closed discussion).
The discussion listing is requested by the collector itself (the same URL as
``HfApi.get_repo_discussions``, whose objects drop ``numComments``).

Requests go through :func:`hub_session`, i.e. the collector's own HTTP transport (retries, rate
limits, archive), and only the collector's requests do: ``huggingface_hub`` makes requests of its
own when telemetry is on (``{HF_ENDPOINT}/api/agent-harnesses``, to name the AI agent in its
user agent), through whatever client it is given and to ``HF_ENDPOINT`` rather than the collector's
endpoint.  The collector's ``HfApi`` marks its requests (:data:`COLLECTOR_HEADER`); any other
request is refused before it reaches the transport, so it is never sent, archived or replayed,
whatever ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_TELEMETRY`` say.  ``HF_HUB_OFFLINE``, which the
Makefile sets to forbid model downloads, does not stop a live crawl: choosing
``collect.source: live`` is the explicit request for network access (the default snapshot source
never touches the network).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2

from secmine.collect.http import CollectError, safe_url
from secmine.collect.linking import best_link, github_links
from secmine.schema import Comment, Thread, normalise_timestamp

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import HfApi

log = logging.getLogger("secmine.collect")

DEFAULT_ENDPOINT = "https://huggingface.co"
SCOPES = ("model", "dataset", "space")
LIST_EXPAND = {
    "model": [
        "author",
        "cardData",
        "createdAt",
        "downloads",
        "downloadsAllTime",
        "lastModified",
        "likes",
        "pipeline_tag",
        "tags",
        "trendingScore",
    ],
    "dataset": [
        "author",
        "cardData",
        "createdAt",
        "downloads",
        "downloadsAllTime",
        "lastModified",
        "likes",
        "tags",
        "trendingScore",
    ],
    "space": ["author", "cardData", "createdAt", "lastModified", "likes", "tags", "trendingScore"],
}
OPEN_STATUSES = frozenset({"open", "draft"})
CLOSED_STATUSES = frozenset({"closed", "merged"})
# Marks the requests of the collector's HfApi; the mark is removed before a request is sent.
COLLECTOR_HEADER = "x-secmine-collector"


class ForeignRequestError(CollectError):
    """huggingface_hub asked for something the collector did not ask for."""


class CollectorOnly(httpx2.BaseTransport):
    """Passes on the requests that carry :data:`COLLECTOR_HEADER` (without it); refuses others."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.refused: list[str] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if COLLECTOR_HEADER not in request.headers:
            url = safe_url(request.url)
            self.refused.append(f"{request.method} {url}")
            log.debug("refused a request huggingface_hub made of its own: %s %s", request.method, url)
            raise ForeignRequestError(
                f"{request.method} {url}: huggingface_hub made this request of its own; the collector sends, "
                "archives and replays only its own requests"
            )
        del request.headers[COLLECTOR_HEADER]
        return self.inner.handle_request(request)

    def close(self) -> None:
        """The inner transport is shared; nothing to close."""


@contextlib.contextmanager
def hub_session(transport: httpx2.BaseTransport) -> Iterator[CollectorOnly]:
    """Route ``huggingface_hub``'s requests through ``transport`` (restored afterwards): those
    of the collector's ``HfApi`` (marked with :data:`COLLECTOR_HEADER`); any other is refused."""
    from huggingface_hub.utils import _http as hub_http

    guard = CollectorOnly(transport)
    previous = hub_http._GLOBAL_CLIENT_FACTORY
    hub_http.set_client_factory(lambda: httpx2.Client(transport=guard, follow_redirects=True, timeout=None))
    try:
        yield guard
    finally:
        hub_http.set_client_factory(previous)


@dataclass(frozen=True)
class ListedDiscussion:
    """One entry of a repository's discussion listing (``numComments`` included)."""

    num: int
    title: str
    status: str
    created_at: Any
    is_pull_request: bool
    num_comments: int | None


def known_entry(value: Any) -> tuple[str | None, int | None]:
    """``(status, comments)`` of a ``hf_known`` entry: a dict, or a bare status (older archives)."""
    if isinstance(value, dict):
        comments = value.get("comments")
        return value.get("status"), int(comments) if comments is not None else None
    if value is None:
        return None, None
    return str(value), None


def repo_key(repo_type: str, repo_id: str) -> str:
    """The ``repo`` of a thread: the model id, or ``datasets/<id>`` / ``spaces/<id>``."""
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"


def details_to_thread(details: Any, *, repo_type: str, source: str) -> Thread:
    """A ``DiscussionWithDetails`` as a thread: the first comment event is the opening post."""
    events = list(details.events or [])
    comment_events = [e for e in events if e.type == "comment"]
    body = ""
    if events and events[0].type == "comment":
        body = getattr(events[0], "content", "") or ""
        comment_events = comment_events[1:]
    comments = tuple(
        Comment(
            author=e.author if e.author != "deleted" else None,
            body=getattr(e, "content", "") or "",
            created_at=normalise_timestamp(e.created_at),
        )
        for e in comment_events
        if not getattr(e, "hidden", False)
    )
    status = str(details.status) if details.status else None
    closed_at = None
    if status in CLOSED_STATUSES:
        changes = [
            e
            for e in events
            if e.type == "status-change" and getattr(e, "new_status", None) in CLOSED_STATUSES
        ]
        if changes:
            closed_at = normalise_timestamp(changes[-1].created_at)
    stamps = [normalise_timestamp(e.created_at) for e in events if e.created_at is not None]
    created = normalise_timestamp(details.created_at)
    updated = max([s for s in [created, *stamps] if s], default=None)
    author = details.author if details.author and details.author != "deleted" else None
    return Thread(
        platform="huggingface",
        kind="pull_request" if details.is_pull_request else "discussion",
        repo=repo_key(repo_type, details.repo_id),
        number=int(details.num),
        title=details.title or "",
        body=body,
        url=details.url,
        source=source,
        author=author,
        state=status,
        created_at=created,
        updated_at=updated,
        closed_at=closed_at,
        labels=(),
        comments=comments,
        repo_type=repo_type,
    )


def _children(value: Any) -> dict[str, int | None]:
    keys = ("adapter", "merge", "quantized", "finetune")
    if isinstance(value, dict):
        return {k: int(value.get(k) or 0) for k in keys}
    return {k: None for k in keys}


def _card_json(card: Any) -> str | None:
    if card is None:
        return None
    data = card.to_dict() if hasattr(card, "to_dict") else card
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if "extra_gated" not in k and "widget" not in k}
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class HubCollector:
    """Repositories, their GitHub links and their discussions (see the module docstring)."""

    api: HfApi
    source: str
    scope: tuple[str, ...] = ("model",)
    sort: str | None = "likes"
    limit: int | None = 1000
    min_downloads_or_likes: int = 1
    discussions_for: str = "linked"  # linked | all | none
    discussion_type: str = "discussion"  # discussion | pull_request | all
    link_min_score: float = 0.0
    repos: tuple[str, ...] = ()  # explicit repositories ("org/name", "datasets/org/name"); no listing
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    since: str | None = None
    note: Callable[..., None] = lambda **_: None
    # filled as the crawl goes: the listing's status and comment count of each discussion fetched
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in self.scope:
            if kind not in SCOPES:
                raise CollectError(f"Hugging Face scope {kind!r} is not one of {SCOPES}")
        if self.discussions_for not in ("linked", "all", "none"):
            raise CollectError(f"discussions_for {self.discussions_for!r} is not linked, all or none")

    # -- listing -----------------------------------------------------------------------------

    def _listing(self, repo_type: str) -> Iterator[Any]:
        kwargs: dict[str, Any] = {"sort": self.sort, "limit": self.limit, "expand": LIST_EXPAND[repo_type]}
        if repo_type == "model":
            return iter(self.api.list_models(**kwargs))
        if repo_type == "dataset":
            return iter(self.api.list_datasets(**kwargs))
        return iter(self.api.list_spaces(**kwargs))

    def _info(self, repo_type: str, repo_id: str, **kwargs: Any) -> Any:
        method = {
            "model": self.api.model_info,
            "dataset": self.api.dataset_info,
            "space": self.api.space_info,
        }[repo_type]
        return method(repo_id, **kwargs)

    def _explicit(self) -> Iterator[tuple[str, Any]]:
        for entry in self.repos:
            repo_type, repo_id = "model", entry
            for kind in ("dataset", "space"):
                if entry.startswith(f"{kind}s/"):
                    repo_type, repo_id = kind, entry[len(kind) + 2 :]
            try:
                yield repo_type, self._info(repo_type, repo_id, expand=LIST_EXPAND[repo_type])
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                if not _is_http_error(exc):
                    raise
                log.warning("Hugging Face %s %s: not available (%s)", repo_type, repo_id, _reason(exc))

    def _repositories(self) -> Iterator[tuple[str, Any]]:
        if self.repos:
            yield from self._explicit()
            return
        for repo_type in self.scope:
            self.note(stream=f"huggingface:list:{repo_type}")
            for info in self._listing(repo_type):
                yield repo_type, info

    # -- one repository ----------------------------------------------------------------------

    def readme(self, repo_type: str, repo_id: str) -> str | None:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import get_session

        url = hf_hub_url(
            repo_id,
            "README.md",
            repo_type=None if repo_type == "model" else repo_type,
            endpoint=self.api.endpoint,
        )
        response = get_session().get(url, headers=self.api._build_hf_headers())
        if response.status_code == 200:
            return response.text
        if response.status_code not in (401, 403, 404):
            log.warning("Hugging Face %s: README answered HTTP %s", repo_id, response.status_code)
        return None

    def _wanted(self, key: str, discussion: ListedDiscussion) -> bool:
        previous = self.known.get(key)
        status = str(discussion.status)
        seen_status, seen_comments = known_entry(previous.get(str(discussion.num)) if previous else None)
        unchanged = seen_status == status and (
            discussion.num_comments is None or seen_comments == discussion.num_comments
        )
        if self.since:
            created = normalise_timestamp(discussion.created_at) or ""
            if created < self.since and status not in OPEN_STATUSES and (previous is None or unchanged):
                return False
        if previous is None or seen_status is None:
            return True
        return seen_status in OPEN_STATUSES or not unchanged

    def list_discussions(
        self, repo_id: str, repo_type: str | None, kind: str | None
    ) -> list[ListedDiscussion]:
        """A repository's discussion listing, every page (the request ``get_repo_discussions`` makes)."""
        from huggingface_hub.utils import get_session, hf_raise_for_status

        path = f"{self.api.endpoint}/api/{repo_type or 'model'}s/{repo_id}/discussions"
        params: dict[str, str | int] = {"type": kind} if kind else {}
        listed: list[ListedDiscussion] = []
        page = 0
        while True:
            params["p"] = page
            response = get_session().get(path, headers=self.api._build_hf_headers(), params=params)
            hf_raise_for_status(response)
            answer = response.json()
            items = answer.get("discussions") or []
            for item in items:
                comments = item.get("numComments")
                listed.append(
                    ListedDiscussion(
                        num=int(item["num"]),
                        title=item.get("title") or "",
                        status=str(item.get("status")),
                        created_at=item.get("createdAt"),
                        is_pull_request=bool(item.get("isPullRequest")),
                        num_comments=int(comments) if comments is not None else None,
                    )
                )
            if not items or int(answer.get("start", 0)) + len(items) >= int(answer.get("count", 0)):
                return listed
            page += 1

    def discussions(self, repo_type: str, repo_id: str) -> Iterator[Thread]:
        """The discussions of one repository with their events (those :meth:`_wanted`)."""
        key = repo_key(repo_type, repo_id)
        kind = None if self.discussion_type == "all" else self.discussion_type
        hub_type = None if repo_type == "model" else repo_type
        self.note(stream=f"huggingface:discussions:{key}")
        try:
            listed = self.list_discussions(repo_id, hub_type, kind)
        except Exception as exc:  # noqa: BLE001
            if not _is_http_error(exc):
                raise
            log.warning("Hugging Face %s: discussions not available (%s)", key, _reason(exc))
            return
        for discussion in listed:
            if not self._wanted(key, discussion):
                continue
            try:
                details = self.api.get_discussion_details(repo_id, discussion.num, repo_type=hub_type)
            except Exception as exc:  # noqa: BLE001
                if not _is_http_error(exc):
                    raise
                log.warning(
                    "Hugging Face %s#%s: details not available (%s)", key, discussion.num, _reason(exc)
                )
                continue
            self.seen.setdefault(key, {})[str(discussion.num)] = {
                "status": discussion.status,
                "comments": discussion.num_comments,
            }
            yield details_to_thread(details, repo_type=repo_type, source=self.source)

    def repository(self, repo_type: str, info: Any) -> Iterator[dict[str, Any] | Thread]:
        """The model record (a dict of :data:`~secmine.collect.corpus.MODEL_COLUMNS`) and threads."""
        repo_id = info.id
        downloads = getattr(info, "downloads", None)
        likes = getattr(info, "likes", None)
        if not self.repos and max(downloads or 0, likes or 0) < self.min_downloads_or_likes:
            return
        readme = self.readme(repo_type, repo_id)
        links = github_links(readme)
        link = best_link(repo_id, links, min_score=self.link_min_score)
        record: dict[str, Any] = {
            "repo_type": repo_type,
            "repo_id": repo_id,
            "downloads": downloads,
            "downloads_all_time": getattr(info, "downloads_all_time", None),
            "likes": likes,
            "trending_score": float(info.trending_score)
            if getattr(info, "trending_score", None) is not None
            else None,
            "pipeline_tag": getattr(info, "pipeline_tag", None),
            "tags": list(getattr(info, "tags", None) or []),
            "card_data": _card_json(getattr(info, "card_data", None)),
            "base_models": None,
            "security_scan_done": None,
            "files_with_issues": None,
            "children_adapter": None,
            "children_merge": None,
            "children_quantized": None,
            "children_finetune": None,
            "github_links": links,
            "github_repo": link.repo,
            "link_score": link.score,
            "created_at": normalise_timestamp(getattr(info, "created_at", None)),
            "last_modified": normalise_timestamp(getattr(info, "last_modified", None)),
        }
        deep = (
            self.discussions_for == "all"
            or (self.discussions_for == "linked" and link.repo is not None)
            or bool(self.repos)
        )
        if deep and repo_type == "model":
            try:
                secure = self.api.model_info(repo_id, securityStatus=True)
                status = secure.security_repo_status or {}
                record["security_scan_done"] = status.get("scansDone")
                files = status.get("filesWithIssues")
                record["files_with_issues"] = (
                    [str(f.get("path", f)) if isinstance(f, dict) else str(f) for f in files] if files else []
                )
                extra = self.api.model_info(repo_id, expand=["baseModels", "childrenModelCount"])
                record["base_models"] = (
                    json.dumps(extra.base_models, sort_keys=True) if extra.base_models is not None else None
                )
                children = _children(extra.children_model_count)
                for name, value in children.items():
                    record[f"children_{name}"] = value
            except Exception as exc:  # noqa: BLE001
                if not _is_http_error(exc):
                    raise
                log.warning("Hugging Face %s: model info not available (%s)", repo_id, _reason(exc))
        yield record
        if deep and self.discussions_for != "none":
            yield from self.discussions(repo_type, repo_id)

    def crawl(self) -> Iterator[dict[str, Any] | Thread]:
        for repo_type, info in self._repositories():
            yield from self.repository(repo_type, info)

    def rehydrate(self, repo: str, number: int) -> Thread | None:
        """One discussion by thread ``repo`` (``org/model``, ``datasets/org/name``) and number."""
        repo_type, repo_id = "model", repo
        for kind in ("dataset", "space"):
            if repo.startswith(f"{kind}s/"):
                repo_type, repo_id = kind, repo[len(kind) + 2 :]
        self.note(stream=f"huggingface:rehydrate:{repo}", cursor=number)
        try:
            details = self.api.get_discussion_details(
                repo_id, int(number), repo_type=None if repo_type == "model" else repo_type
            )
        except Exception as exc:  # noqa: BLE001
            if not _is_http_error(exc):
                raise
            return None
        return details_to_thread(details, repo_type=repo_type, source=self.source)


def _is_http_error(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    return isinstance(exc, HfHubHTTPError)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200]
