"""A fake Hugging Face + GitHub API on 127.0.0.1, for tests and benchmarks (real HTTP).

A test double: it lives in ``secmine_testing``, outside the product package ``secmine``.

It speaks the endpoints the collectors use, with pagination and rate-limit headers:

* Hub: ``GET /api/{models,datasets,spaces}`` (``Link`` pagination), ``GET /api/models/{id}``
  (``securityStatus``), ``GET /api/models/{id}/discussions?p=N`` (50 a page),
  ``GET /api/models/{id}/discussions/{num}`` (events), ``GET /{id}/resolve/main/README.md``;
  ``RateLimit`` / ``RateLimit-Policy`` headers, 429 when a token's window is spent.
* GitHub: ``POST /graphql`` for the operations of :mod:`secmine.collect.github` (issues, pull
  requests and discussions ordered by update, comment pages, ``since`` filter, scans,
  rehydration), with ``x-ratelimit-*`` headers and the ``rateLimit`` object; REST
  ``GET /repos/{o}/{n}/issues`` and ``/issues/{num}/comments`` (``per_page``, ``page``, ``Link``)
  for the per-issue REST baseline of the benchmark.

Faults are injected with :meth:`FakeAPI.add_fault` (:data:`FAULT_KINDS`):

* transport and status faults: ``429`` (with ``Retry-After``), ``429_bare`` (without), ``500``,
  ``502``, ``503``, ``secondary`` (403 with ``Retry-After``), ``slow`` (sleeps before answering),
  ``truncated`` (announces more bytes than it sends), ``cut_json`` (a JSON body cut short),
  ``malformed`` (not JSON), ``reset`` (closes the connection without answering);
* error answers with status 200: ``html`` (an HTML page), ``empty`` (no body), ``data_null``
  (GraphQL ``data: null`` with an error), ``repo_null`` (``repository: null`` with a
  ``SERVICE_UNAVAILABLE`` error), ``null_node`` (one node of the page replaced by ``null``, with
  an error naming its path);
* GraphQL timeouts as GitHub answers them: ``timeout`` (502 with GitHub's "timeout" error body)
  and ``timeout_error`` (200 with an error saying the query timed out).  ``graphql_node_limit``
  makes every query that asks for more nodes than that time out (GitHub's 10-second limit on big
  pages with full bodies), so only smaller pages pass.

GraphQL queries are charged GitHub's point cost (:func:`graphql_cost`, reported in ``rateLimit``
and taken from the ``graphql`` budget), REST requests one point each from the ``core`` budget.
``GET /api/agent-harnesses`` answers as the Hub does, so a request that ``huggingface_hub`` makes
of its own is visible in :attr:`FakeAPI.log`.  Rate-limit windows follow an injectable clock, so a
test can exhaust a budget and "sleep" through the reset instantly.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from secmine.collect.http import Clock

HF_DISCUSSION_PAGE = 50
FAULT_KINDS = (
    "429",
    "429_bare",
    "500",
    "502",
    "503",
    "secondary",
    "slow",
    "truncated",
    "cut_json",
    "malformed",
    "reset",
    "html",
    "empty",
    "data_null",
    "repo_null",
    "null_node",
    "timeout",
    "timeout_error",
)
# Faults that change a real answer rather than replace it.
MUTATIONS = frozenset({"repo_null", "null_node"})
GITHUB_TIMEOUT_MESSAGE = (
    "Something went wrong while executing your query. This may be the result of a timeout, "
    "or it could be a GitHub bug. Please include `0000:FAKE:0000` when reporting this issue."
)
AGENT_HARNESSES = {"standardEnvVars": ["AI_AGENT", "AGENT"], "harnesses": {"fake-agent": {"envVars": {}}}}


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def _uncursor(value: str | None) -> int:
    if not value:
        return -1
    return int(base64.b64decode(value.encode()).decode().split(":")[1])


_FIELD_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(\()?")


def _argument_value(text: str, name: str, variables: dict[str, Any]) -> int | None:
    found = re.search(rf"\b{name}\s*:\s*(\$?[A-Za-z0-9_]+)", text)
    if not found:
        return None
    value = found.group(1)
    if value.startswith("$"):
        value = variables.get(value[1:])
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _connections(query: str, variables: dict[str, Any]) -> list[tuple[int, ...]]:
    """Every connection of a query (a field with a ``first``/``last`` argument) as the tuple of the
    page sizes of the connections it is nested in, its own last."""
    body = query[query.index("{") :] if "{" in query else query
    found: list[tuple[int, ...]] = []
    stack: list[int | None] = []  # per open selection set: the page size of its field, or None
    position = 0
    pending: int | None = None
    while position < len(body):
        char = body[position]
        if char == "{":
            stack.append(pending)
            pending = None
            position += 1
            continue
        if char == "}":
            if stack:
                stack.pop()
            pending = None
            position += 1
            continue
        match = _FIELD_RE.match(body, position)
        if not match:
            position += 1
            continue
        position = match.end()
        pending = None
        if match.group(2):
            depth, start = 1, position
            while position < len(body) and depth:
                depth += {"(": 1, ")": -1}.get(body[position], 0)
                position += 1
            arguments = body[start : position - 1]
            size = _argument_value(arguments, "first", variables) or _argument_value(
                arguments, "last", variables
            )
            if size is not None:
                pending = size
                found.append((*[s for s in stack if s is not None], size))
    return found


def graphql_cost(query: str, variables: dict[str, Any] | None = None) -> int:
    """GitHub's point cost of a query: for each connection, the number of requests needed to fill
    it (the product of the page sizes of the connections it is nested in), summed, divided by 100
    and rounded to the nearest whole number; at least 1.  A page of 100 threads with their first
    100 labels and 100 comments: (1 + 100 + 100) / 100 = 2.01, so 2 points."""
    requests = 0
    for path in _connections(query, variables or {}):
        parents = 1
        for size in path[:-1]:
            parents *= size
        requests += parents
    return max(int(requests / 100 + 0.5), 1)


def graphql_nodes(query: str, variables: dict[str, Any] | None = None) -> int:
    """GitHub's node count of a query: the product of the page sizes down to each connection, summed."""
    total = 0
    for path in _connections(query, variables or {}):
        product = 1
        for size in path:
            product *= size
        total += product
    return total


# -- data ---------------------------------------------------------------------------------------


@dataclass
class FakeData:
    """What the fake server holds.

    ``github[repo][kind]`` is a list of thread dicts (``number, title, body, author, state,
    created_at, updated_at, closed_at, labels, comments [{author, body, created_at}]``).
    ``hf[repo_type]`` is a list of repository dicts (``id, downloads, likes, pipeline_tag, tags,
    card_data, created_at, last_modified, readme, security, base_models, children,
    discussions [{num, title, status, author, created_at, is_pull_request, events}]``); an event is
    ``{type: comment|status-change, author, created_at, text|status, hidden}``.
    """

    github: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    hf: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"model": [], "dataset": [], "space": []}
    )

    def github_threads(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (repo, kind, t)
            for repo, kinds in self.github.items()
            for kind, items in kinds.items()
            for t in items
        ]


@dataclass
class Fault:
    kind: str
    match: str = ""  # substring of the path (or a GraphQL operation name)
    times: int = 1
    delay: float = 0.0
    retry_after: int = 1


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, list[str]]
    operation: str | None
    variables: dict[str, Any] | None
    query_text: str | None
    token: str | None
    status: int = 0


class _Window:
    def __init__(self, limit: int, seconds: int, now: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.start = now
        self.used = 0

    def roll(self, now: float) -> None:
        if now >= self.start + self.seconds:
            self.start = now
            self.used = 0

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def reset_at(self) -> float:
        return self.start + self.seconds


class FakeAPI:
    """The server: ``with FakeAPI(data) as api: api.url ...``."""

    def __init__(
        self,
        data: FakeData,
        *,
        clock: Clock | None = None,
        github_limit: int = 5000,
        hf_limit: int = 1000,
        window: int = 3600,
        tokens: set[str] | None = None,
        require_github_token: bool = True,
        graphql_limit_style: str = "403",
        graphql_node_limit: int | None = None,
    ) -> None:
        self.data = data
        self.clock = clock or Clock()
        self.github_limit = github_limit
        self.hf_limit = hf_limit
        self.window = window
        self.tokens = tokens
        self.require_github_token = require_github_token
        self.graphql_limit_style = graphql_limit_style
        self.graphql_node_limit = graphql_node_limit
        self.points: dict[str, int] = {"graphql": 0, "core": 0}
        self.hf_list_page = 1000
        self.errors: list[str] = []
        self.faults: list[Fault] = []
        self.applied: Counter[str] = Counter()  # faults that reached a request, by kind
        self.log: list[Logged] = []
        self.on_request: Callable[[int], None] | None = None
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._index: dict[tuple[str, str], list[dict[str, Any]]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeAPI:
        api = self

        class Handler(_Handler):
            server_api = api

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakeapi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_fault(
        self, kind: str, match: str = "", *, times: int = 1, delay: float = 0.0, retry_after: int = 1
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self.faults.append(Fault(kind, match, times, delay, retry_after))

    @property
    def request_count(self) -> int:
        return len(self.log)

    def count(self, *, prefix: str = "", operation: str | None = None) -> int:
        return sum(
            1
            for r in self.log
            if r.path.startswith(prefix) and (operation is None or r.operation == operation)
        )

    # -- helpers used by the handler ---------------------------------------------------------

    def take_fault(self, path: str, operation: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and (not fault.match or fault.match in path or fault.match == operation):
                    fault.times -= 1
                    if fault.kind not in MUTATIONS:  # a mutation counts when it changed an answer
                        self.applied[fault.kind] += 1
                    return fault
        return None

    def budget_window(self, api: str, token: str | None) -> _Window:
        """The rate-limit window of ``api`` (``graphql``, ``core`` or ``hf``) for a token."""
        now = self.clock.now()
        with self._lock:
            key = (api, token or "")
            if key not in self._windows:
                limit = self.hf_limit if api == "hf" else self.github_limit
                self._windows[key] = _Window(limit, self.window, now)
            window = self._windows[key]
            window.roll(now)
            return window

    def sorted_threads(self, repo: str, kind: str) -> list[dict[str, Any]]:
        key = (repo.lower(), kind)
        if key not in self._index:
            found = next((v for k, v in self.data.github.items() if k.lower() == repo.lower()), None)
            items = (found or {}).get(kind, [])
            self._index[key] = sorted(items, key=lambda t: (t["updated_at"], t["number"]))
        return self._index[key]

    def repo_comments(self, repo: str) -> list[tuple[str, int, int, dict[str, Any]]]:
        """Every issue and pull request comment of ``repo``: ``(created_at, number, position, comment)``
        oldest first (kept with the thread index: clear ``_index`` after changing the data)."""
        key = (repo.lower(), "_comments")
        if key not in self._index:
            every = [
                (c["created_at"], t["number"], position, c)
                for kind in ("issue", "pull_request")
                for t in self.sorted_threads(repo, kind)
                for position, c in enumerate(t.get("comments") or [])
            ]
            every.sort(key=lambda item: item[:3])
            self._index[key] = every  # type: ignore[assignment]
        return self._index[key]  # type: ignore[return-value]

    def repo_exists(self, repo: str) -> bool:
        return any(k.lower() == repo.lower() for k in self.data.github)

    def hf_repo(self, repo_type: str, repo_id: str) -> dict[str, Any] | None:
        return next((r for r in self.data.hf.get(repo_type, []) if r["id"] == repo_id), None)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is not an error of the server."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)
    server_api: FakeAPI

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    # -- plumbing ----------------------------------------------------------------------------

    def _token(self) -> str | None:
        value = self.headers.get("authorization") or ""
        parts = value.split(None, 1)
        return parts[1].strip() if len(parts) == 2 else None

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self._entry.status = status

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if self._mutation is not None and status == 200 and isinstance(payload, dict):
            payload = self._mutate(self._mutation, payload)
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def _mutate(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A real GraphQL answer made partial: ``repository: null`` or one node ``null``."""
        data = payload.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("repository"), dict):
            return payload
        api = self.server_api
        if kind == "repo_null":
            with api._lock:
                api.applied[kind] += 1
            error = {
                "type": "SERVICE_UNAVAILABLE",
                "path": ["repository"],
                "message": "Something went wrong while fetching the repository; try again later.",
            }
            return {**payload, "data": {**data, "repository": None}, "errors": [error]}
        for name, connection in data["repository"].items():
            nodes = connection.get("nodes") if isinstance(connection, dict) else None
            if nodes:
                index = len(nodes) // 2
                nodes[index] = None
                with api._lock:
                    api.applied[kind] += 1
                error = {
                    "type": "INTERNAL",
                    "path": ["repository", name, "nodes", index],
                    "message": "Something went wrong while resolving this node.",
                }
                return {**payload, "errors": [*(payload.get("errors") or []), error]}
        return payload

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        api = self.server_api
        parsed = urlparse(self.path)
        query = parse_qs(parsed.query)
        body = b""
        length = int(self.headers.get("content-length") or 0)
        if length:
            body = self.rfile.read(length)
        payload: dict[str, Any] = {}
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
        operation = payload.get("operationName") if isinstance(payload, dict) else None
        self._entry = Logged(
            method,
            parsed.path,
            query,
            operation,
            payload.get("variables"),
            payload.get("query"),
            self._token(),
        )
        with api._lock:
            api.log.append(self._entry)
            number = len(api.log)
        if api.on_request is not None:
            api.on_request(number)
        self._mutation: str | None = None
        fault = api.take_fault(parsed.path, operation)
        if fault is not None and fault.kind in MUTATIONS:
            self._mutation = fault.kind
        elif fault is not None and self._fault(fault):
            return
        try:
            if parsed.path == "/graphql" and method == "POST":
                self._graphql(payload)
            elif parsed.path.startswith("/repos/"):
                self._rest(parsed.path, query)
            elif parsed.path.startswith("/api/"):
                self._hub_api(parsed.path, query)
            elif "/resolve/" in parsed.path:
                self._readme(parsed.path)
            else:
                self._json(404, {"message": "Not Found"})
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception:  # noqa: BLE001 - a bug in the fake: answer 500 and keep the traceback
            import traceback

            api.errors.append(traceback.format_exc())
            self._json(500, {"message": "fake server error"})

    def _fault(self, fault: Fault) -> bool:
        """Apply an injected fault; True when the answer was the fault."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "429":
            self._json(429, {"error": "Too Many Requests"}, {"retry-after": str(fault.retry_after)})
        elif fault.kind == "429_bare":
            self._json(429, {"error": "Too Many Requests"})
        elif fault.kind == "500":
            self._json(500, {"message": "Server Error"})
        elif fault.kind == "502":
            self._send(502, b"<html>502 Bad Gateway</html>", "text/html")
        elif fault.kind == "503":
            self._send(503, b"<html>503 Service Unavailable</html>", "text/html", {"retry-after": "1"})
        elif fault.kind == "html":
            page = b"<!DOCTYPE html><html><body>Unicorn! We are having trouble.</body></html>"
            self._send(200, page, "text/html; charset=utf-8")
        elif fault.kind == "empty":
            self._send(200, b"", "application/json; charset=utf-8")
        elif fault.kind == "data_null":
            error = {"type": "INTERNAL", "message": "Something went wrong."}
            self._json(200, {"data": None, "errors": [error]})
        elif fault.kind == "timeout":
            self._json(502, {"data": None, "errors": [{"message": GITHUB_TIMEOUT_MESSAGE}]})
        elif fault.kind == "timeout_error":
            error = {"message": "The query timed out: it asks for too much at once."}
            self._json(200, {"data": None, "errors": [error]})
        elif fault.kind == "secondary":
            self._json(
                403,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                },
                {"retry-after": str(fault.retry_after)},
            )
        elif fault.kind == "truncated":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "5000")
            self.end_headers()
            self.wfile.write(b'{"data": {"repository": {"iss')
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault.kind == "cut_json":
            self._send(200, b'{"data": {"repository": {"issues": {"nodes": [{"num', "application/json")
        elif fault.kind == "malformed":
            self._send(200, b"<html>upstream error</html> not json", "application/json")
        elif fault.kind == "reset":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            raise ValueError(f"unknown fault {fault.kind!r}")
        return True

    # -- rate limits -------------------------------------------------------------------------

    def _github_limit(self, graphql: bool, cost: int = 1) -> dict[str, str] | None:
        """Charge ``cost`` points; the headers to send, or None after answering 'limit exceeded'."""
        api = self.server_api
        token = self._token()
        if api.require_github_token and not token:
            self._json(401, {"message": "Requires authentication"})
            return None
        if api.tokens is not None and token not in api.tokens:
            self._json(401, {"message": "Bad credentials"})
            return None
        window = api.budget_window("graphql" if graphql else "core", token)
        if window.remaining < cost:
            headers = {
                "x-ratelimit-limit": str(window.limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(window.reset_at)),
                "x-ratelimit-resource": "graphql" if graphql else "core",
            }
            if graphql and api.graphql_limit_style == "errors":
                self._json(
                    200, {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}, headers
                )
            else:
                self._json(403, {"message": "API rate limit exceeded"}, headers)
            return None
        window.used += cost
        self._window = window
        self._cost = cost
        with api._lock:
            api.points["graphql" if graphql else "core"] += cost
        return {
            "x-ratelimit-limit": str(window.limit),
            "x-ratelimit-remaining": str(window.remaining),
            "x-ratelimit-reset": str(int(window.reset_at)),
            "x-ratelimit-used": str(window.used),
            "x-ratelimit-resource": "graphql" if graphql else "core",
        }

    def _hf_limit(self) -> dict[str, str] | None:
        api = self.server_api
        window = api.budget_window("hf", self._token())
        reset_in = max(int(window.reset_at - api.clock.now()), 0)
        policy = f'"fixed window";"api";q={window.limit};w={window.seconds}'
        if window.remaining <= 0:
            self._json(
                429,
                {"error": "rate limit"},
                {"ratelimit": f'"api";r=0;t={reset_in}', "ratelimit-policy": policy},
            )
            return None
        window.used += 1
        return {"ratelimit": f'"api";r={window.remaining};t={reset_in}', "ratelimit-policy": policy}

    # -- GitHub GraphQL ----------------------------------------------------------------------

    def _rate_object(self) -> dict[str, Any]:
        window = self._window
        return {
            "cost": self._cost,
            "remaining": window.remaining,
            "limit": window.limit,
            "resetAt": iso(datetime.fromtimestamp(window.reset_at, timezone.utc)),
        }

    def _graphql(self, payload: dict[str, Any]) -> None:
        api = self.server_api
        operation = payload.get("operationName") or ""
        variables = payload.get("variables") or {}
        query = payload.get("query") or ""
        headers = self._github_limit(graphql=True, cost=graphql_cost(query, variables))
        if headers is None:
            return
        if api.graphql_node_limit is not None and graphql_nodes(query, variables) > api.graphql_node_limit:
            self._json(502, {"data": None, "errors": [{"message": GITHUB_TIMEOUT_MESSAGE}]}, headers)
            return
        repo = f"{variables.get('owner')}/{variables.get('name')}"
        if not api.repo_exists(repo):
            self._json(
                200,
                {
                    "data": {"rateLimit": self._rate_object(), "repository": None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["repository"],
                            "message": f"Could not resolve to a Repository with the name '{repo}'.",
                        }
                    ],
                },
                headers,
            )
            return
        kinds = {"Issues": "issue", "PullRequests": "pull_request", "Discussions": "discussion"}
        connection = {"issue": "issues", "pull_request": "pullRequests", "discussion": "discussions"}
        match = re.fullmatch(r"Repo(Issues|PullRequests|Discussions)(Scan)?", operation)
        if match:
            kind = kinds[match.group(1)]
            if "orderBy: {field: UPDATED_AT, direction: ASC}" not in query:
                self._json(
                    200,
                    {
                        "errors": [
                            {"type": "BAD_QUERY", "message": "fake server expects orderBy UPDATED_AT ASC"}
                        ]
                    },
                    headers,
                )
                return
            items = api.sorted_threads(repo, kind)
            since = variables.get("since")
            if since and kind == "issue":
                items = [t for t in items if t["updated_at"] >= since]
            first = int(variables.get("first") or 100)
            start = _uncursor(variables.get("after")) + 1
            page = items[start : start + first]
            end = start + len(page) - 1
            nodes = [
                (
                    {"updatedAt": t["updated_at"]}
                    if match.group(2)
                    else self._node(kind, t, int(variables.get("comments") or 100), repo)
                )
                for t in page
            ]
            conn = {
                "totalCount": len(items),
                "pageInfo": {
                    "hasNextPage": end < len(items) - 1,
                    "endCursor": _cursor(end) if page else None,
                },
                "nodes": nodes,
            }
            self._json(
                200,
                {"data": {"rateLimit": self._rate_object(), "repository": {connection[kind]: conn}}},
                headers,
            )
            return
        match = re.fullmatch(r"(Issue|PullRequest|Discussion)Comments", operation)
        if match:
            kind = {"Issue": "issue", "PullRequest": "pull_request", "Discussion": "discussion"}[
                match.group(1)
            ]
            thread = next(
                (t for t in api.sorted_threads(repo, kind) if t["number"] == variables.get("number")), None
            )
            single = {"issue": "issue", "pull_request": "pullRequest", "discussion": "discussion"}[kind]
            if thread is None:
                self._json(
                    200,
                    {
                        "data": {"rateLimit": self._rate_object(), "repository": {single: None}},
                        "errors": [{"type": "NOT_FOUND", "message": "no such thread"}],
                    },
                    headers,
                )
                return
            comments = self._comments(thread, int(variables.get("first") or 100), variables.get("after"))
            self._json(
                200,
                {"data": {"rateLimit": self._rate_object(), "repository": {single: {"comments": comments}}}},
                headers,
            )
            return
        if operation == "Rehydrate":
            repository: dict[str, Any] = {}
            for alias, field_name, number in re.findall(
                r"(t\d+): (issueOrPullRequest|discussion)\(number: (\d+)\)", query
            ):
                number = int(number)
                node = None
                if field_name == "discussion":
                    thread = next(
                        (t for t in api.sorted_threads(repo, "discussion") if t["number"] == number), None
                    )
                    node = (
                        self._node("discussion", thread, int(variables.get("comments") or 100), repo)
                        if thread
                        else None
                    )
                else:
                    for kind, typename in (("issue", "Issue"), ("pull_request", "PullRequest")):
                        thread = next(
                            (t for t in api.sorted_threads(repo, kind) if t["number"] == number), None
                        )
                        if thread:
                            node = {
                                "__typename": typename,
                                **self._node(kind, thread, int(variables.get("comments") or 100), repo),
                            }
                repository[alias] = node
            self._json(200, {"data": {"rateLimit": self._rate_object(), "repository": repository}}, headers)
            return
        self._json(
            200,
            {
                "errors": [
                    {"type": "UNKNOWN_OPERATION", "message": f"fake server does not know {operation!r}"}
                ]
            },
            headers,
        )

    def _comments(self, thread: dict[str, Any], first: int, after: str | None) -> dict[str, Any]:
        comments = thread.get("comments") or []
        start = _uncursor(after) + 1
        page = comments[start : start + first]
        end = start + len(page) - 1
        return {
            "totalCount": len(comments),
            "pageInfo": {"hasNextPage": end < len(comments) - 1, "endCursor": _cursor(end) if page else None},
            "nodes": [
                {
                    "author": {"login": c["author"]} if c.get("author") else None,
                    "body": c["body"],
                    "createdAt": c["created_at"],
                }
                for c in page
            ],
        }

    def _node(self, kind: str, t: dict[str, Any], comments: int, repo: str) -> dict[str, Any]:
        section = {"issue": "issues", "pull_request": "pull", "discussion": "discussions"}[kind]
        node: dict[str, Any] = {
            "number": t["number"],
            "title": t["title"],
            "body": t["body"],
            "url": f"https://github.com/{repo}/{section}/{t['number']}",
            "createdAt": t["created_at"],
            "updatedAt": t["updated_at"],
            "closedAt": t.get("closed_at"),
            "author": {"login": t["author"]} if t.get("author") else None,
            "labels": {"nodes": [{"name": n} for n in t.get("labels", [])]},
            "comments": self._comments(t, comments, None),
        }
        if kind == "discussion":
            node["closed"] = t.get("state") == "closed"
        else:
            node["state"] = (t.get("state") or "open").upper()
        return node

    # -- GitHub REST (the per-issue baseline) ------------------------------------------------

    def _rest(self, path: str, query: dict[str, list[str]]) -> None:
        headers = self._github_limit(graphql=False)
        if headers is None:
            return
        api = self.server_api
        parts = path.strip("/").split("/")
        per_page = min(int((query.get("per_page") or ["30"])[0]), 100)
        page = int((query.get("page") or ["1"])[0])
        if len(parts) == 4 and parts[3] == "issues":
            repo = f"{parts[1]}/{parts[2]}"
            pulls = {t["number"] for t in api.sorted_threads(repo, "pull_request")}
            items = sorted(
                api.sorted_threads(repo, "issue") + api.sorted_threads(repo, "pull_request"),
                key=lambda t: -t["number"],
            )
            chunk = items[(page - 1) * per_page : page * per_page]
            body = [self._rest_issue(repo, t, is_pr=t["number"] in pulls) for t in chunk]
            self._json(200, body, {**headers, **self._link(path, query, page, per_page, len(items))})
            return
        if len(parts) == 5 and parts[3] == "issues" and parts[4] == "comments":
            self._rest_repo_comments(f"{parts[1]}/{parts[2]}", query, page, per_page, path, headers)
            return
        if len(parts) == 6 and parts[3] == "issues" and parts[5] == "comments":
            repo = f"{parts[1]}/{parts[2]}"
            number = int(parts[4])
            thread = next(
                (
                    t
                    for k in ("issue", "pull_request")
                    for t in api.sorted_threads(repo, k)
                    if t["number"] == number
                ),
                None,
            )
            if thread is None:
                self._json(404, {"message": "Not Found"}, headers)
                return
            comments = thread.get("comments") or []
            chunk = comments[(page - 1) * per_page : page * per_page]
            body = [
                {
                    "user": {"login": c["author"]} if c.get("author") else None,
                    "body": c["body"],
                    "created_at": c["created_at"],
                }
                for c in chunk
            ]
            self._json(200, body, {**headers, **self._link(path, query, page, per_page, len(comments))})
            return
        self._json(404, {"message": "Not Found"}, headers)

    def _rest_repo_comments(
        self,
        repo: str,
        query: dict[str, list[str]],
        page: int,
        per_page: int,
        path: str,
        headers: dict[str, str],
    ) -> None:
        """``GET /repos/{o}/{n}/issues/comments``: every issue and pull request comment of the
        repository, oldest first (``sort=created``, ``direction=asc``), ``since`` on update time."""
        api = self.server_api
        since = (query.get("since") or [""])[0]
        every = api.repo_comments(repo)
        if since:
            every = every[bisect.bisect_left(every, (since,), key=lambda item: item[:1]) :]
        chunk = every[(page - 1) * per_page : page * per_page]
        body = [
            {
                "id": number * 100_000 + position,
                "issue_url": f"{api.url}/repos/{repo}/issues/{number}",
                "user": {"login": c["author"]} if c.get("author") else None,
                "body": c["body"],
                "created_at": c["created_at"],
                "updated_at": c["created_at"],
            }
            for _, number, position, c in chunk
        ]
        self._json(200, body, {**headers, **self._link(path, query, page, per_page, len(every))})

    def _link(
        self, path: str, query: dict[str, list[str]], page: int, per_page: int, total: int
    ) -> dict[str, str]:
        if page * per_page >= total:
            return {}
        params = {k: v[0] for k, v in query.items()}
        params.update(page=str(page + 1), per_page=str(per_page))
        return {"link": f'<{self.server_api.url}{path}?{urlencode(params)}>; rel="next"'}

    def _rest_issue(self, repo: str, t: dict[str, Any], *, is_pr: bool) -> dict[str, Any]:
        issue = {
            "number": t["number"],
            "title": t["title"],
            "body": t["body"],
            "state": "closed" if t.get("state") in ("closed", "merged") else "open",
            "user": {"login": t["author"]} if t.get("author") else None,
            "comments": len(t.get("comments") or []),
            "created_at": t["created_at"],
            "updated_at": t["updated_at"],
            "closed_at": t.get("closed_at"),
            "labels": [{"name": n} for n in t.get("labels", [])],
            "html_url": f"https://github.com/{repo}/issues/{t['number']}",
        }
        if is_pr:
            issue["pull_request"] = {"html_url": f"https://github.com/{repo}/pull/{t['number']}"}
        return issue

    # -- Hugging Face ------------------------------------------------------------------------

    def _hub_api(self, path: str, query: dict[str, list[str]]) -> None:
        headers = self._hf_limit()
        if headers is None:
            return
        api = self.server_api
        if path.rstrip("/") == "/api/agent-harnesses":
            self._json(200, AGENT_HARNESSES, headers)
            return
        parts = path.strip("/").split("/")
        plural = {"models": "model", "datasets": "dataset", "spaces": "space"}
        if len(parts) == 2 and parts[1] in plural:
            repo_type = plural[parts[1]]
            repos = list(api.data.hf.get(repo_type, []))
            sort = (query.get("sort") or [None])[0]
            if sort:
                key = {
                    "likes": "likes",
                    "downloads": "downloads",
                    "trendingScore": "trending_score",
                    "createdAt": "created_at",
                    "lastModified": "last_modified",
                }.get(sort, sort)
                repos.sort(key=lambda r: (r.get(key) or 0, r["id"]), reverse=True)
            limit = int((query.get("limit") or ["1000"])[0])
            size = min(limit, 1000, api.hf_list_page)
            start = int((query.get("cursor") or ["0"])[0])
            chunk = repos[start : start + size]
            extra = {}
            if start + size < len(repos):
                params = {k: v for k, v in query.items() if k != "cursor"}
                params["cursor"] = [str(start + size)]
                extra["link"] = f'<{api.url}{path}?{urlencode(params, doseq=True)}>; rel="next"'
            self._json(200, [self._hub_listing(repo_type, r) for r in chunk], {**headers, **extra})
            return
        if len(parts) >= 4 and parts[1] in plural:
            repo_type = plural[parts[1]]
            tail = parts[2:]
            if "discussions" in tail:
                at = tail.index("discussions")
                repo_id, rest = "/".join(tail[:at]), tail[at + 1 :]
            else:
                repo_id, rest = "/".join(tail), None
            repo = api.hf_repo(repo_type, repo_id)
            if repo is None:
                self._json(
                    404, {"error": "Repository not found"}, {**headers, "x-error-code": "RepoNotFound"}
                )
                return
            if rest is None:
                info = self._hub_listing(repo_type, repo)
                if (query.get("securityStatus") or [""])[0].lower() == "true":
                    info["securityRepoStatus"] = repo.get("security") or {
                        "scansDone": True,
                        "filesWithIssues": [],
                    }
                expand = query.get("expand") or query.get("expand[]") or []
                if "baseModels" in expand:
                    info["baseModels"] = repo.get("base_models")
                if "childrenModelCount" in expand:
                    info["childrenModelCount"] = repo.get("children") or {
                        "adapter": 0,
                        "merge": 0,
                        "quantized": 0,
                        "finetune": 0,
                    }
                self._json(200, info, headers)
                return
            if repo.get("discussions_disabled"):
                self._json(403, {"error": "Discussions are disabled for this repo"}, headers)
                return
            discussions = repo.get("discussions") or []
            if not rest:
                wanted = (query.get("type") or ["all"])[0]
                chosen = [
                    d
                    for d in discussions
                    if wanted == "all" or (wanted == "pull_request") == bool(d.get("is_pull_request"))
                ]
                chosen = sorted(chosen, key=lambda d: -d["num"])
                page = int((query.get("p") or ["0"])[0])
                start = page * HF_DISCUSSION_PAGE
                chunk = chosen[start : start + HF_DISCUSSION_PAGE]
                items = [self._hub_discussion(repo_type, repo_id, d) for d in chunk]
                self._json(
                    200,
                    {
                        "discussions": items,
                        "count": len(chosen),
                        "start": start,
                        "numClosedDiscussions": sum(1 for d in chosen if d["status"] != "open"),
                    },
                    headers,
                )
                return
            found = next((d for d in discussions if str(d["num"]) == rest[0]), None)
            if found is None:
                self._json(404, {"error": "Discussion not found"}, headers)
                return
            details = self._hub_discussion(repo_type, repo_id, found)
            events = []
            for position, event in enumerate(found.get("events") or []):
                base = {
                    "id": f"{repo_id}-{found['num']}-{position}",
                    "type": event["type"],
                    "createdAt": event["created_at"],
                    "author": {"name": event["author"]} if event.get("author") else {},
                }
                if event["type"] == "comment":
                    base["data"] = {
                        "edited": False,
                        "hidden": bool(event.get("hidden")),
                        "latest": {"raw": event.get("text", "")},
                    }
                else:
                    base["data"] = {"status": event["status"]}
                events.append(base)
            details["events"] = events
            if found.get("is_pull_request"):
                details["changes"] = {"base": "refs/heads/main"}
                details["filesWithConflicts"] = []
            self._json(200, details, headers)
            return
        self._json(404, {"error": "not found"}, headers)

    def _hub_listing(self, repo_type: str, r: dict[str, Any]) -> dict[str, Any]:
        item = {
            "_id": r["id"],
            "id": r["id"],
            "author": r["id"].split("/")[0],
            "likes": r.get("likes", 0),
            "tags": r.get("tags", []),
            "createdAt": r.get("created_at"),
            "lastModified": r.get("last_modified"),
            "trendingScore": r.get("trending_score", 0),
            "private": False,
            "cardData": r.get("card_data"),
        }
        if repo_type != "space":
            item["downloads"] = r.get("downloads", 0)
            item["downloadsAllTime"] = r.get("downloads_all_time", r.get("downloads", 0))
        if repo_type == "model":
            item["pipeline_tag"] = r.get("pipeline_tag")
        return item

    def _hub_discussion(self, repo_type: str, repo_id: str, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "num": d["num"],
            "title": d["title"],
            "status": d["status"],
            "createdAt": d["created_at"],
            "author": {"name": d["author"]} if d.get("author") else {},
            "isPullRequest": bool(d.get("is_pull_request")),
            "repo": {"name": repo_id, "type": repo_type},
            "numComments": sum(1 for e in d.get("events") or [] if e["type"] == "comment"),
            "pinned": False,
        }

    def _readme(self, path: str) -> None:
        headers = self._hf_limit()
        if headers is None:
            return
        api = self.server_api
        head, _, _ = path.strip("/").partition("/resolve/")
        repo_type = "model"
        for prefix, kind in (("datasets/", "dataset"), ("spaces/", "space")):
            if head.startswith(prefix):
                repo_type, head = kind, head[len(prefix) :]
        repo = api.hf_repo(repo_type, head)
        if repo is None or repo.get("readme") is None:
            self._json(404, {"error": "Entry not found"}, {**headers, "x-error-code": "EntryNotFound"})
            return
        self._send(200, repo["readme"].encode("utf-8"), "text/plain; charset=utf-8", headers)


# -- data generators ----------------------------------------------------------------------------

_WORDS = "model token load pickle error cuda memory shape tensor dataset train fine tune prompt api key leak install version wheel crash slow gpu".split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def github_repo_data(
    *,
    seed: int = 0,
    issues: int = 40,
    pulls: int = 10,
    discussions: int = 6,
    comment_counts: Callable[[random.Random], int] | None = None,
    bots: tuple[str, ...] = ("dependabot[bot]", "github-actions[bot]"),
    start: datetime = datetime(2023, 1, 1, tzinfo=timezone.utc),
) -> dict[str, list[dict[str, Any]]]:
    """Threads of one repository: numbers shared by issues and pull requests, as on GitHub."""
    rng = random.Random(seed)
    counts = comment_counts or (lambda r: min(int(r.paretovariate(1.2)) - 1, 400))
    kinds = ["issue"] * issues + ["pull_request"] * pulls
    rng.shuffle(kinds)
    out: dict[str, list[dict[str, Any]]] = {"issue": [], "pull_request": [], "discussion": []}

    def thread(number: int, kind: str) -> dict[str, Any]:
        created = start + timedelta(hours=number * 7 + rng.randint(0, 5))
        n_comments = counts(rng)
        comments = []
        for c in range(n_comments):
            author = rng.choice(bots) if bots and rng.random() < 0.05 else f"user{rng.randint(1, 60)}"
            comments.append(
                {
                    "author": author,
                    "body": _text(rng, rng.randint(3, 30)),
                    "created_at": iso(created + timedelta(minutes=30 * (c + 1))),
                }
            )
        updated = created + timedelta(minutes=30 * (n_comments + 1) + rng.randint(0, 60 * 24 * 30))
        state = rng.choice(["open", "closed"] if kind != "pull_request" else ["open", "closed", "merged"])
        author = (
            rng.choice(bots)
            if bots and kind == "pull_request" and rng.random() < 0.2
            else f"user{rng.randint(1, 60)}"
        )
        return {
            "number": number,
            "title": _text(rng, rng.randint(3, 9)),
            "body": _text(rng, rng.randint(10, 80)),
            "author": author,
            "state": state,
            "created_at": iso(created),
            "updated_at": iso(updated),
            "closed_at": iso(updated) if state != "open" else None,
            "labels": rng.sample(["bug", "security", "question", "enhancement"], rng.randint(0, 2)),
            "comments": comments,
        }

    for number, kind in enumerate(kinds, start=1):
        out[kind].append(thread(number, kind))
    for number in range(1, discussions + 1):
        out["discussion"].append(thread(number, "discussion"))
    return out


def hub_repo_data(
    repo_id: str,
    *,
    seed: int = 0,
    likes: int = 10,
    downloads: int = 100,
    readme: str | None = None,
    discussions: int = 3,
    repo_type: str = "model",
) -> dict[str, Any]:
    """One Hub repository with discussions (opening post, comments, status changes)."""
    rng = random.Random(f"{repo_id}-{seed}")
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    items = []
    for num in range(1, discussions + 1):
        created = start + timedelta(days=num, hours=rng.randint(0, 20))
        author = f"hf{rng.randint(1, 30)}"
        events = [
            {
                "type": "comment",
                "author": author,
                "created_at": iso(created),
                "text": _text(rng, rng.randint(5, 40)),
            }
        ]
        for c in range(rng.randint(0, 4)):
            who = "librarian-bot" if rng.random() < 0.1 else f"hf{rng.randint(1, 30)}"
            events.append(
                {
                    "type": "comment",
                    "author": who,
                    "created_at": iso(created + timedelta(hours=c + 1)),
                    "text": _text(rng, rng.randint(3, 20)),
                }
            )
        status = rng.choice(["open", "closed"])
        if status == "closed":
            events.append(
                {
                    "type": "status-change",
                    "author": author,
                    "created_at": iso(created + timedelta(days=2)),
                    "status": "closed",
                }
            )
        items.append(
            {
                "num": num,
                "title": _text(rng, 5),
                "status": status,
                "author": author,
                "created_at": iso(created),
                "is_pull_request": False,
                "events": events,
            }
        )
    return {
        "id": repo_id,
        "downloads": downloads,
        "likes": likes,
        "pipeline_tag": "text-generation" if repo_type == "model" else None,
        "tags": ["transformers", "pytorch"],
        "card_data": {"license": "mit", "base_model": "org/base"},
        "created_at": iso(start),
        "last_modified": iso(start + timedelta(days=30)),
        "trending_score": rng.randint(0, 50),
        "readme": readme,
        "security": {
            "scansDone": True,
            "filesWithIssues": [{"path": "model.pkl"}] if rng.random() < 0.3 else [],
        },
        "base_models": {"relation": "finetune", "models": [{"id": "org/base"}]},
        "children": {
            "adapter": rng.randint(0, 3),
            "merge": 0,
            "quantized": rng.randint(0, 5),
            "finetune": rng.randint(0, 2),
        },
        "discussions": items,
    }


def small_world(seed: int = 0) -> FakeData:
    """A small Hub + GitHub world for tests: linked and unlinked models, bots, long threads."""
    data = FakeData()
    data.github["acme/llm-kit"] = github_repo_data(seed=seed, issues=30, pulls=8, discussions=5)
    data.github["acme/llm-kit"]["issue"][0]["comments"] = [
        {
            "author": f"user{i % 7}",
            "body": f"long thread comment {i}",
            "created_at": iso(datetime(2023, 2, 1, tzinfo=timezone.utc) + timedelta(hours=i)),
        }
        for i in range(27)
    ]
    data.github["beta/vision"] = github_repo_data(seed=seed + 1, issues=12, pulls=3, discussions=2)
    hub = [
        hub_repo_data(
            "acme/llm-kit-7b",
            seed=seed,
            likes=50,
            readme="Code: https://github.com/acme/llm-kit and https://github.com/acme/other-thing",
            discussions=4,
        ),
        hub_repo_data(
            "beta/vision-base",
            seed=seed,
            likes=30,
            readme="See [repo](https://github.com/beta/vision).",
            discussions=2,
        ),
        hub_repo_data("gamma/no-readme", seed=seed, likes=20, readme=None, discussions=1),
        hub_repo_data(
            "delta/unloved",
            seed=seed,
            likes=0,
            downloads=0,
            readme="https://github.com/delta/unloved",
            discussions=1,
        ),
        hub_repo_data(
            "eps/ghost-link", seed=seed, likes=5, readme="https://github.com/eps/ghost-link", discussions=0
        ),
    ]
    data.hf["model"] = hub
    return data
