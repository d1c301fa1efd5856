"""Is an answer with status 2xx really an answer?  Error answers are never archived as successes.

GitHub and the Hub sometimes answer ``200 OK`` with something that is not what was asked: an HTML
error page, an empty body, a GraphQL ``data: null``, a ``repository: null`` that is a passing
``SERVICE_UNAVAILABLE`` rather than a missing repository, or a page with one node replaced by
``null`` (a partial answer).  Archived as successes they would be replayed forever, and the
crawl would move past the threads they leave out.  :func:`check_answer` says what is wrong with
such an answer:

* ``retry``: a transient error answer; the transport retries it and, when it persists, stops
  naming the URL (nothing of it is archived);
* ``timeout``: GitHub could not answer the GraphQL query in time (its 10-second limit on big
  pages, answered as 502/504 or as an error saying the query timed out); the collector asks a
  smaller page;
* ``fatal``: the query itself is wrong (a schema or syntax error); retrying cannot help.

The same check runs on archived answers when an archive is replayed, so an archive written by an
older collector that holds an error answer is reported with the record and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import httpx2

Kind = Literal["retry", "timeout", "fatal"]
TIMEOUT_RE = re.compile(r"time[sd]?[ -]?out|timeout", re.IGNORECASE)
# GitHub's error types that mean the query is wrong, not the moment
FATAL_TYPES = frozenset({"BAD_QUERY", "UNKNOWN_OPERATION", "PARSE_ERROR", "MAX_NODE_LIMIT_EXCEEDED"})
HARMLESS_TYPES = frozenset({"NOT_FOUND"})
RATE_LIMITED = "RATE_LIMITED"
TIMEOUT_STATUSES = frozenset({502, 504})


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str


def is_graphql(request: httpx2.Request) -> bool:
    return request.url.path.rstrip("/").endswith("/graphql")


def expects_json(request: httpx2.Request) -> bool:
    """GraphQL and the Hub's ``/api/`` endpoints answer JSON; a README is plain text."""
    return is_graphql(request) or "/api/" in request.url.path


def _error_text(error: dict[str, Any]) -> str:
    kind = error.get("type") or (error.get("extensions") or {}).get("code") or "ERROR"
    path = error.get("path")
    where = f" (at {'.'.join(str(p) for p in path)})" if isinstance(path, list) and path else ""
    return f"{kind}: {' '.join(str(error.get('message') or '').split())[:200]}{where}"


def _null_node(value: Any, path: str = "data") -> str | None:
    """The path of the first ``null`` inside a ``nodes`` list, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "nodes" and isinstance(item, list):
                for index, node in enumerate(item):
                    if node is None:
                        return f"{path}.nodes.{index}"
                    found = _null_node(node, f"{path}.nodes.{index}")
                    if found:
                        return found
            else:
                found = _null_node(item, f"{path}.{key}")
                if found:
                    return found
    return None


def graphql_verdict(payload: Any) -> Verdict | None:
    """What is wrong with a GraphQL answer of status 200 (None: it is a complete answer)."""
    if not isinstance(payload, dict):
        return Verdict("retry", f"not a GraphQL answer ({type(payload).__name__})")
    errors = [e for e in payload.get("errors") or [] if isinstance(e, dict)]
    if any(e.get("type") == RATE_LIMITED for e in errors):
        return None  # the transport's rate-limit handling waits and asks again
    serious = [e for e in errors if e.get("type") not in HARMLESS_TYPES]
    if any(TIMEOUT_RE.search(str(e.get("message") or "")) for e in serious):
        return Verdict("timeout", "the query timed out: " + _error_text(serious[0]))
    fatal = [
        e
        for e in serious
        if e.get("type") in FATAL_TYPES or e.get("locations") or (e.get("extensions") or {}).get("code")
    ]
    if fatal:
        return Verdict("fatal", "the query was refused: " + _error_text(fatal[0]))
    data = payload.get("data")
    if not isinstance(data, dict):
        detail = f" ({_error_text(serious[0])})" if serious else ""
        return Verdict("retry", f"data: null{detail}")
    if serious:
        return Verdict("retry", "partial answer: " + _error_text(serious[0]))
    if "repository" in data and data["repository"] is None and not errors:
        return Verdict("retry", "partial answer: repository: null without a NOT_FOUND error")
    found = _null_node(data)
    if found:
        return Verdict("retry", f"partial answer: a null node at {found}")
    return None


def check_answer(request: httpx2.Request, response: httpx2.Response) -> Verdict | None:
    """What is wrong with a 2xx answer to one of the collector's requests (None: nothing)."""
    status = response.status_code
    if is_graphql(request) and status in TIMEOUT_STATUSES:
        return Verdict(
            "timeout", f"{status} {response.reason_phrase} (GitHub's answer to a query that took too long)"
        )
    if not 200 <= status < 300:
        return None
    content_type = response.headers.get("content-type", "").lower()
    if "html" in content_type:
        wanted = "JSON" if expects_json(request) else "the file"
        return Verdict("retry", f"{status} with an HTML page instead of {wanted}")
    if not expects_json(request):
        if "json" in content_type:  # the Hub answers errors in JSON, never a README
            return Verdict("retry", f"{status} with a JSON answer instead of the file")
        return None
    if not response.content.strip():
        return Verdict("retry", f"{status} with an empty body")
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        return Verdict("retry", f"malformed JSON body ({exc})")
    if is_graphql(request):
        return graphql_verdict(payload)
    return None
