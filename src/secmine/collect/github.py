"""GitHub collector: issues, pull requests and discussions with their comments, through GraphQL.

For each repository and kind, threads are requested 100 a page (``page_size``), oldest update
first (``orderBy: {field: UPDATED_AT, direction: ASC}``), each with its first 100 comments; only
a thread with more comments than that gets further comment pages.  A crawl of N threads with C
comments therefore costs about N/100 + (comment pages beyond the first) requests, where the REST
approach (list issues, then one comments request per issue) costs N/30 + N.

Incremental runs pass ``since``: the ``issues`` connection filters on it (``filterBy.since``);
``pullRequests`` and ``discussions`` have no such filter, so a light scan (only ``updatedAt``)
finds the first page holding a thread updated since then, and the full query starts there.

GitHub stops a query after 10 seconds (answering 502, or an error saying it timed out): a page of
100 threads with their full bodies and first 100 comments can take that long.  Such a page is not
asked again as it was: the page size is halved (down to ``min_page_size``) and, after
``grow_after`` pages that pass, doubled again up to ``page_size`` (:class:`PageSize`).  Partial
answers (a ``null`` node, a ``repository: null`` that is not ``NOT_FOUND``) never reach the
collector: the transport retries them (:mod:`secmine.collect.answers`), so a thread is never
skipped while ``since`` moves past it.

Discussion comments are the top-level comments (as the paper's crawler collected them);
replies are not fetched.  Pull request comments are the conversation comments (not review
comments on code lines), as PyGithub's ``get_issue().get_comments()`` returns them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from secmine.collect.http import SHRINKABLE, CollectError, QueryTimeout
from secmine.schema import Comment, Thread, normalise_timestamp

log = logging.getLogger("secmine.collect")

DEFAULT_ENDPOINT = "https://api.github.com"
KINDS = ("issue", "pull_request", "discussion")
_CONNECTION = {"issue": "issues", "pull_request": "pullRequests", "discussion": "discussions"}
_SINGLE = {"issue": "issue", "pull_request": "pullRequest", "discussion": "discussion"}
_OP = {"issue": "Issues", "pull_request": "PullRequests", "discussion": "Discussions"}

RATE_LIMIT = "rateLimit { cost remaining resetAt limit }"
COMMENT_FIELDS = "author { login } body createdAt"
_COMMENTS = (
    "comments(first: $comments) { totalCount pageInfo { hasNextPage endCursor } nodes { "
    + COMMENT_FIELDS
    + " } }"
)
THREAD_FIELDS = {
    "issue": "number title body url state createdAt updatedAt closedAt author { login } "
    "labels(first: 100) { nodes { name } } " + _COMMENTS,
    "pull_request": "number title body url state createdAt updatedAt closedAt author { login } "
    "labels(first: 100) { nodes { name } } " + _COMMENTS,
    "discussion": "number title body url closed createdAt updatedAt closedAt author { login } "
    "labels(first: 100) { nodes { name } } " + _COMMENTS,
}
ORDER = "orderBy: {field: UPDATED_AT, direction: ASC}"


def graphql_url(endpoint: str) -> str:
    """``https://api.github.com`` -> ``.../graphql``; GitHub Enterprise ``.../api/v3`` -> ``.../api/graphql``."""
    base = endpoint.rstrip("/")
    if base.endswith("/graphql"):
        return base
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def list_query(kind: str) -> str:
    since_var = ", $since: DateTime" if kind == "issue" else ""
    filter_by = ", filterBy: {since: $since}" if kind == "issue" else ""
    return (
        f"query Repo{_OP[kind]}($owner: String!, $name: String!, $first: Int!, $comments: Int!, $after: String{since_var}) {{ "
        f"{RATE_LIMIT} repository(owner: $owner, name: $name) {{ "
        f"{_CONNECTION[kind]}(first: $first, after: $after, {ORDER}{filter_by}) {{ "
        f"totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {THREAD_FIELDS[kind]} }} }} }} }}"
    )


def scan_query(kind: str) -> str:
    return (
        f"query Repo{_OP[kind]}Scan($owner: String!, $name: String!, $first: Int!, $after: String) {{ "
        f"{RATE_LIMIT} repository(owner: $owner, name: $name) {{ "
        f"{_CONNECTION[kind]}(first: $first, after: $after, {ORDER}) {{ "
        f"pageInfo {{ hasNextPage endCursor }} nodes {{ updatedAt }} }} }} }}"
    )


def comments_query(kind: str) -> str:
    return (
        f"query {_OP[kind][:-1]}Comments($owner: String!, $name: String!, $number: Int!, $first: Int!, $after: String) {{ "
        f"{RATE_LIMIT} repository(owner: $owner, name: $name) {{ {_SINGLE[kind]}(number: $number) {{ "
        f"comments(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {COMMENT_FIELDS} }} }} }} }} }}"
    )


def rehydrate_query(items: Sequence[tuple[str, int]]) -> str:
    """One query for several threads of a repository: aliases ``t0``, ``t1``, ... ."""
    parts = []
    for position, (kind, number) in enumerate(items):
        if kind == "discussion":
            parts.append(
                f"t{position}: discussion(number: {int(number)}) {{ {THREAD_FIELDS['discussion']} }}"
            )
        else:
            parts.append(
                f"t{position}: issueOrPullRequest(number: {int(number)}) {{ __typename "
                f"... on Issue {{ {THREAD_FIELDS['issue']} }} ... on PullRequest {{ {THREAD_FIELDS['pull_request']} }} }}"
            )
    return (
        "query Rehydrate($owner: String!, $name: String!, $comments: Int!) { "
        f"{RATE_LIMIT} repository(owner: $owner, name: $name) {{ " + " ".join(parts) + " } }"
    )


class GraphQLError(CollectError):
    """The GraphQL API answered with errors that are not about a missing object."""


@dataclass
class GitHubClient:
    """POSTs GraphQL queries through a collect transport."""

    client: httpx2.Client
    endpoint: str = DEFAULT_ENDPOINT

    @classmethod
    def create(cls, transport: httpx2.BaseTransport, endpoint: str = DEFAULT_ENDPOINT) -> GitHubClient:
        client = httpx2.Client(
            transport=transport,
            headers={"accept": "application/vnd.github+json", "user-agent": "secmine-collector"},
            follow_redirects=True,
        )
        return cls(client, endpoint)

    def graphql(
        self, query: str, variables: dict[str, Any], operation: str, *, shrinkable: bool = False
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``(data, errors)``; raises on HTTP errors and on errors other than NOT_FOUND.

        ``shrinkable``: the caller can ask a smaller page, so a query GitHub could not answer in
        time raises :class:`~secmine.collect.http.QueryTimeout` instead of being asked again.
        """
        url = graphql_url(self.endpoint)
        response = self.client.post(
            url,
            json={"query": query, "variables": variables, "operationName": operation},
            extensions={SHRINKABLE: True} if shrinkable else None,
        )
        if response.status_code != 200:
            raise GraphQLError(
                f"POST {url} ({operation}): HTTP {response.status_code}: {response.text[:300]}"
            )
        payload = response.json()
        if not isinstance(payload, dict):
            raise GraphQLError(f"POST {url} ({operation}): unexpected answer {str(payload)[:200]}")
        errors = [e for e in payload.get("errors") or [] if isinstance(e, dict)]
        serious = [e for e in errors if e.get("type") not in ("NOT_FOUND",)]
        data = payload.get("data")
        if serious and not isinstance(data, dict):
            raise GraphQLError(
                f"POST {url} ({operation}): {serious[0].get('type')}: {serious[0].get('message')}"
            )
        for error in serious:
            log.warning("GraphQL %s: %s %s", operation, error.get("type"), error.get("message"))
        return (data if isinstance(data, dict) else {}), errors


def _login(node: dict[str, Any] | None) -> str | None:
    if not isinstance(node, dict):
        return None
    author = node.get("author")
    return author.get("login") if isinstance(author, dict) else None


def _comment(node: dict[str, Any]) -> Comment:
    return Comment(
        author=_login(node),
        body=node.get("body") or "",
        created_at=normalise_timestamp(node.get("createdAt")),
    )


def node_to_thread(
    node: dict[str, Any], *, kind: str, repo: str, comments: list[dict[str, Any]], source: str
) -> Thread:
    """A GraphQL issue, pull request or discussion node as a thread."""
    if kind == "discussion":
        state = "closed" if node.get("closed") else "open"
    else:
        state = str(node.get("state") or "").lower() or None
    labels = node.get("labels") or {}
    return Thread(
        platform="github",
        kind=kind,
        repo=repo,
        number=int(node["number"]),
        title=node.get("title") or "",
        body=node.get("body") or "",
        url=node.get("url") or "",
        source=source,
        author=_login(node),
        state=state,
        created_at=normalise_timestamp(node.get("createdAt")),
        updated_at=normalise_timestamp(node.get("updatedAt")),
        closed_at=normalise_timestamp(node.get("closedAt")),
        labels=tuple(
            label["name"]
            for label in (labels.get("nodes") or [])
            if isinstance(label, dict) and label.get("name")
        ),
        comments=tuple(_comment(c) for c in comments if isinstance(c, dict)),
    )


@dataclass
class PageSize:
    """A page size that halves when GitHub cannot answer in time and grows back after pages pass."""

    full: int
    floor: int = 1
    grow_after: int = 4
    value: int = 0
    _passed: int = 0

    def __post_init__(self) -> None:
        self.value = self.value or self.full
        self.floor = max(1, min(self.floor, self.full))

    @property
    def shrinkable(self) -> bool:
        return self.value > self.floor

    def timed_out(self) -> None:
        self.value = max(self.value // 2, self.floor)
        self._passed = 0

    def passed(self) -> None:
        if self.value < self.full:
            self._passed += 1
            if self._passed >= self.grow_after:
                self.value = min(self.value * 2, self.full)
                self._passed = 0


@dataclass
class GitHubCollector:
    """Threads of GitHub repositories (see the module docstring for the request plan)."""

    client: GitHubClient
    source: str
    page_size: int = 100
    comment_page_size: int = 100
    note: Callable[..., None] = lambda **_: None
    missing: set[str] = field(default_factory=set)
    min_page_size: int = 1
    grow_after: int = 4

    def _page(self, full: int) -> PageSize:
        return PageSize(full, floor=self.min_page_size, grow_after=self.grow_after)

    def _ask(
        self, query: str, variables: dict[str, Any], operation: str, size: PageSize
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """One page of ``size.value`` items; None when it timed out (``size`` is halved: ask again)."""
        variables["first"] = size.value
        try:
            answer = self.client.graphql(query, dict(variables), operation, shrinkable=size.shrinkable)
        except QueryTimeout as exc:
            size.timed_out()
            log.info("GitHub %s: %s; next page of %s", operation, exc, size.value)
            return None
        size.passed()
        return answer

    def _split(self, repo: str) -> tuple[str, str]:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise CollectError(f"GitHub repository {repo!r} is not owner/name")
        return owner, name

    def _more_comments(self, repo: str, kind: str, number: int, after: str | None) -> list[dict[str, Any]]:
        owner, name = self._split(repo)
        found: list[dict[str, Any]] = []
        size = self._page(self.comment_page_size)
        while after is not None:
            answer = self._ask(
                comments_query(kind),
                {"owner": owner, "name": name, "number": number, "first": size.value, "after": after},
                f"{_OP[kind][:-1]}Comments",
                size,
            )
            if answer is None:
                continue
            data, _ = answer
            thread = ((data.get("repository") or {}).get(_SINGLE[kind])) or {}
            connection = thread.get("comments") or {}
            found.extend(c for c in connection.get("nodes") or [] if c)
            info = connection.get("pageInfo") or {}
            after = info.get("endCursor") if info.get("hasNextPage") else None
        return found

    def _complete(self, node: dict[str, Any], *, kind: str, repo: str) -> Thread:
        connection = node.get("comments") or {}
        comments = [c for c in connection.get("nodes") or [] if c]
        info = connection.get("pageInfo") or {}
        if info.get("hasNextPage"):
            comments += self._more_comments(repo, kind, int(node["number"]), info.get("endCursor"))
        return node_to_thread(node, kind=kind, repo=repo, comments=comments, source=self.source)

    def _skip_to(self, owner: str, name: str, kind: str, since: str) -> tuple[bool, str | None]:
        """Scan ``updatedAt`` only: ``(found, cursor)`` of the first page with a thread updated since."""
        after: str | None = None
        size = self._page(self.page_size)
        while True:
            answer = self._ask(
                scan_query(kind),
                # the key order is part of the request body, hence of the archive's request hash
                {"owner": owner, "name": name, "first": size.value, "after": after},
                f"Repo{_OP[kind]}Scan",
                size,
            )
            if answer is None:
                continue
            data, _ = answer
            repository = data.get("repository")
            if repository is None:
                self.missing.add(f"{owner}/{name}".lower())
                return False, None
            connection = repository.get(_CONNECTION[kind]) or {}
            nodes = [n for n in connection.get("nodes") or [] if n]
            if any((normalise_timestamp(n.get("updatedAt")) or "") >= since for n in nodes):
                return True, after
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return False, None
            after = info.get("endCursor")

    def threads(self, repo: str, kind: str, *, since: str | None = None) -> Iterator[Thread]:
        """All threads of one kind in ``repo`` updated at or after ``since``, oldest update first."""
        if kind not in KINDS:
            raise CollectError(f"GitHub kind {kind!r} is not one of {KINDS}")
        owner, name = self._split(repo)
        if repo.lower() in self.missing:
            return
        since = normalise_timestamp(since) if since else None
        after: str | None = None
        if since and kind != "issue":
            found, after = self._skip_to(owner, name, kind, since)
            if not found:
                return
        variables: dict[str, Any] = {
            "owner": owner,
            "name": name,
            "first": self.page_size,
            "comments": self.comment_page_size,
        }
        size = self._page(self.page_size)
        while True:
            variables["after"] = after
            if kind == "issue":
                variables["since"] = since
            self.note(stream=f"github:{kind}:{repo}", cursor=after)
            answer = self._ask(list_query(kind), variables, f"Repo{_OP[kind]}", size)
            if answer is None:
                continue
            data, errors = answer
            repository = data.get("repository")
            if repository is None:
                reason = next((e.get("message") for e in errors), "not found")
                log.warning("GitHub %s: repository not available (%s)", repo, reason)
                self.missing.add(repo.lower())
                return
            connection = repository.get(_CONNECTION[kind]) or {}
            for node in connection.get("nodes") or []:
                if not node:
                    continue
                if since and (normalise_timestamp(node.get("updatedAt")) or "") < since:
                    continue
                yield self._complete(node, kind=kind, repo=repo)
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")

    def rehydrate(
        self, repo: str, items: Sequence[tuple[str, int]], *, batch: int = 25
    ) -> Iterator[tuple[tuple[str, int], Thread | None]]:
        """The threads ``(kind, number)`` of one repository, ``batch`` per query.

        Yields each requested item with its thread (``None`` when it does not exist).  An issue
        number that turns out to be a pull request comes back as a pull request.
        """
        owner, name = self._split(repo)
        for start in range(0, len(items), batch):
            chunk = list(items[start : start + batch])
            self.note(stream=f"github:rehydrate:{repo}", cursor=start)
            data, _ = self.client.graphql(
                rehydrate_query(chunk),
                {"owner": owner, "name": name, "comments": self.comment_page_size},
                "Rehydrate",
            )
            repository = data.get("repository") or {}
            for position, item in enumerate(chunk):
                node = repository.get(f"t{position}")
                if not node:
                    yield item, None
                    continue
                kind = item[0]
                if kind != "discussion":
                    kind = "pull_request" if node.get("__typename") == "PullRequest" else "issue"
                yield item, self._complete(node, kind=kind, repo=repo)
