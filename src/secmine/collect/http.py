"""The HTTP layer every collector shares: tokens, rate limits, retries, timeouts, archiving.

:class:`CollectTransport` is an ``httpx2`` transport (the HTTP library ``huggingface_hub`` uses),
so the GitHub client and ``HfApi`` go through the same code:

* **Tokens.**  A :class:`TokenPool` holds one or more tokens (``GITHUB_TOKEN`` may hold several,
  comma-separated).  Before each attempt the token with the most remaining budget is chosen; when
  every token is spent the transport sleeps until the earliest reset.  For Hugging Face the pool
  only tracks the budget (``HfApi`` sets its own ``Authorization`` header).
* **Rate limits.**  GitHub's ``x-ratelimit-*`` headers, the GraphQL ``rateLimit`` object
  (remaining budget and query cost) and the IETF ``RateLimit`` header of the Hub update the
  pool.  A primary limit (403/429 with no budget left, or a GraphQL ``RATE_LIMITED`` error)
  marks the token spent; a secondary limit (403/429 with ``Retry-After`` or a "secondary rate
  limit" message) waits ``Retry-After`` (at least a minute when absent).
* **Faults.**  408, 429 and 5xx answers, connection errors, timeouts, truncated or malformed
  JSON bodies and error answers with status 200 (:mod:`secmine.collect.answers`: an HTML page, an
  empty body, GraphQL ``data: null``, a partial answer) are retried with exponential backoff and
  jitter (tenacity); each attempt has its own timeout.  Waiting for a rate-limit reset does not use
  up the retries.  When the retries are spent, :class:`FetchError` names the request and the fix.
* **Timeouts of big GraphQL pages.**  A request the collector marks as shrinkable
  (:data:`SHRINKABLE`) that GitHub could not answer in time (502/504, an error saying the query
  timed out, or no answer within the timeout) is not asked again: :class:`QueryTimeout` tells the
  collector to ask a smaller page, and the recorder notes the timeout so a replay asks the same
  pages.
* **Archive.**  Each final answer (not the failed attempts) is handed to a recorder, which writes
  it to the run's archive; the ``Authorization`` header is never recorded.

Time is read and slept through a :class:`Clock`, so tests can run a rate-limit wait instantly
(tests use a fake clock from the separate test-double package).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
import tenacity

from secmine.collect.answers import check_answer
from secmine.errors import SecmineError

log = logging.getLogger("secmine.collect")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Response headers worth keeping in the archive (everything a replay needs, nothing secret).
ARCHIVED_HEADERS = (
    "content-type",
    "link",
    "location",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-used",
    "x-ratelimit-resource",
    "ratelimit",
    "ratelimit-policy",
    "x-error-code",
    "x-error-message",
    "etag",
    "last-modified",
)
SECONDARY_MIN_WAIT = 60.0
# Request extension a collector sets on a GraphQL query it can ask again with a smaller page.
SHRINKABLE = "secmine.shrinkable"
RESUME_HINT = "nothing of this request was archived; rerun the same command to resume from it"
_HF_RATELIMIT_RE = re.compile(r"\"(?P<resource>[\w-]+)\"\s*;\s*r\s*=\s*(?P<r>\d+)\s*;\s*t\s*=\s*(?P<t>\d+)")


class CollectError(SecmineError, RuntimeError):
    """Collection cannot go on; the message says what failed and what to do."""


class TokenError(CollectError):
    """A token is missing or was refused."""


class FetchError(CollectError):
    """A request still failed after all retries."""


class QueryTimeout(CollectError):
    """GitHub could not answer a (shrinkable) GraphQL query in time: ask a smaller page."""


class AnswerError(CollectError):
    """An answer that no retry can fix (the query itself was refused)."""


class _Timeout(Exception):
    """One attempt timed out on a shrinkable request."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retryable(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, *, wait: float | None = None, counts: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.counts = counts  # False for rate-limit waits: they do not use up the retries


class Clock:
    """Wall-clock time and sleeping (replaced by a fake clock in tests)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class TokenState:
    token: str | None
    remaining: int | None = None
    limit: int | None = None
    reset_at: float | None = None
    requests: int = 0


class TokenPool:
    """Tokens and what is left of their rate-limit budget.

    ``acquire`` gives the token with the most budget left (a token never seen yet counts as full);
    when all are spent it sleeps until the earliest reset.  ``inject`` says whether the transport
    sets the ``Authorization`` header from the chosen token.
    """

    def __init__(
        self,
        tokens: Iterable[str | None],
        *,
        clock: Clock | None = None,
        inject: bool = True,
        scheme: str = "bearer",
        min_remaining: int = 1,
        reset_margin: float = 1.0,
    ) -> None:
        self.states = [TokenState(t) for t in tokens] or [TokenState(None)]
        self.clock = clock or Clock()
        self.inject = inject
        self.scheme = scheme
        self.min_remaining = min_remaining
        self.reset_margin = reset_margin
        self.waited = 0.0
        self.waits = 0
        self._lock = threading.Lock()

    @property
    def secrets(self) -> list[str]:
        return [s.token for s in self.states if s.token]

    def _usable(self, state: TokenState, now: float) -> bool:
        if state.remaining is None or state.remaining >= self.min_remaining:
            return True
        return state.reset_at is not None and state.reset_at <= now

    def acquire(self) -> int:
        """The index of the token to use next, sleeping first if every token is spent."""
        while True:
            with self._lock:
                now = self.clock.now()
                for state in self.states:
                    if (
                        state.reset_at is not None
                        and state.reset_at <= now
                        and (state.remaining or 0) < self.min_remaining
                    ):
                        state.remaining = None  # window over: budget unknown until the next answer
                usable = [i for i, s in enumerate(self.states) if self._usable(s, now)]
                if usable:
                    best = max(
                        usable,
                        key=lambda i: (
                            float("inf") if self.states[i].remaining is None else self.states[i].remaining,
                            -i,
                        ),
                    )
                    self.states[best].requests += 1
                    return best
                resets = [s.reset_at for s in self.states if s.reset_at is not None]
                wait = (min(resets) - now + self.reset_margin) if resets else SECONDARY_MIN_WAIT
            wait = max(wait, 0.0)
            log.info("rate limit: every token is spent; sleeping %.0f s until the reset", wait)
            self.waited += wait
            self.waits += 1
            self.clock.sleep(wait)

    def update(
        self,
        index: int,
        *,
        remaining: int | None = None,
        limit: int | None = None,
        reset_at: float | None = None,
    ) -> None:
        with self._lock:
            state = self.states[index]
            if remaining is not None:
                state.remaining = remaining
            if limit is not None:
                state.limit = limit
            if reset_at is not None:
                state.reset_at = reset_at

    def spend(self, index: int, reset_at: float | None) -> None:
        """Mark a token as having no budget left until ``reset_at``."""
        now = self.clock.now()
        self.update(
            index, remaining=0, reset_at=reset_at if reset_at is not None else now + SECONDARY_MIN_WAIT
        )

    def budget(self) -> str:
        """Remaining budget for progress bars, e.g. ``4950/5000`` (summed over tokens)."""
        known = [s for s in self.states if s.remaining is not None]
        if not known:
            return "?"
        remaining = sum(s.remaining or 0 for s in known)
        limits = [s.limit for s in known if s.limit]
        return f"{remaining}/{sum(limits)}" if limits else str(remaining)

    def header(self, index: int) -> str | None:
        token = self.states[index].token
        return f"{self.scheme} {token}" if token else None


class Recorder(Protocol):
    def record(self, request: httpx2.Request, response: httpx2.Response) -> None: ...

    def record_fault(self, request: httpx2.Request, fault: str, reason: str) -> None: ...


@dataclass
class RetryPolicy:
    max_retries: int = 6
    timeout_s: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 1.0
    validate_json: bool = True


@dataclass
class TransportStats:
    requests: int = 0  # final answers
    attempts: int = 0  # including failed attempts
    retries: int = 0
    rate_limit_waits: int = 0
    graphql_cost: int = 0
    timeouts: int = 0  # shrinkable queries GitHub could not answer in time
    by_reason: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """``Retry-After`` as seconds (delay-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def parse_rate_limit(headers: Mapping[str, str], now: float) -> tuple[int | None, int | None, float | None]:
    """``(remaining, limit, reset_at)`` from GitHub's ``x-ratelimit-*`` or the Hub's ``RateLimit``."""
    remaining = _header_int(headers, "x-ratelimit-remaining")
    if remaining is not None:
        reset = _header_int(headers, "x-ratelimit-reset")
        return (
            remaining,
            _header_int(headers, "x-ratelimit-limit"),
            float(reset) if reset is not None else None,
        )
    value = headers.get("ratelimit")
    if value:
        match = _HF_RATELIMIT_RE.search(value)
        if match:
            limit = None
            policy = headers.get("ratelimit-policy") or ""
            found = re.search(r"q\s*=\s*(\d+)", policy)
            if found:
                limit = int(found.group(1))
            return int(match.group("r")), limit, now + int(match.group("t"))
    return None, None, None


def _is_json(response: httpx2.Response) -> bool:
    return "json" in response.headers.get("content-type", "").lower()


class CollectTransport(httpx2.BaseTransport):
    """Retries, rate limits, token rotation, timeouts and archiving around a real transport."""

    def __init__(
        self,
        *,
        pool: TokenPool,
        policy: RetryPolicy | None = None,
        recorder: Recorder | None = None,
        inner: httpx2.BaseTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self.policy = policy or RetryPolicy()
        self.recorder = recorder
        self.inner = inner or httpx2.HTTPTransport(retries=0, trust_env=False)
        self.clock = clock or pool.clock
        self.stats = TransportStats()
        self.rng = rng or random.Random(0)
        self.on_response: list[Callable[[httpx2.Response], None]] = []

    # -- one attempt -------------------------------------------------------------------------

    def _attempt(self, request: httpx2.Request) -> httpx2.Response:
        index = self.pool.acquire()
        if self.pool.inject:
            auth = self.pool.header(index)
            if auth:
                request.headers["authorization"] = auth
        timeout = self.policy.timeout_s
        request.extensions = {
            **request.extensions,
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout},
        }
        self.stats.attempts += 1
        try:
            raw = self.inner.handle_request(request)
            try:
                content = raw.read()
            finally:
                raw.close()
        except httpx2.TimeoutException as exc:
            if request.extensions.get(SHRINKABLE):
                raise _Timeout(f"no answer within {timeout:g} s ({type(exc).__name__})") from exc
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        except httpx2.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        headers = [
            (k, v)
            for k, v in raw.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        response = httpx2.Response(
            raw.status_code,
            headers=headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )
        self._check(index, response)
        return response

    def _check(self, index: int, response: httpx2.Response) -> None:
        now = self.clock.now()
        status = response.status_code
        headers = response.headers
        remaining, limit, reset_at = parse_rate_limit(headers, now)
        if remaining is not None:
            self.pool.update(index, remaining=remaining, limit=limit, reset_at=reset_at)
        if status == 401:
            raise TokenError(
                f"{response.request.method} {_safe_url(response.request.url)}: 401 Unauthorized - "
                "the token was refused (check GITHUB_TOKEN / HF_TOKEN)"
            )
        if status in (403, 429):
            message = response.text[:500].lower() if response.content else ""
            retry_after = retry_after_seconds(headers, now)
            if (
                "secondary rate limit" in message
                or "abuse" in message
                or (status == 403 and retry_after is not None)
            ):
                self.stats.count("secondary-limit")
                raise _Retryable(
                    f"{status} secondary rate limit",
                    wait=max(retry_after or SECONDARY_MIN_WAIT, 1.0),
                    counts=False,
                )
            if remaining == 0:
                self.pool.spend(index, reset_at)
                self.stats.rate_limit_waits += 1
                self.stats.count("primary-limit")
                raise _Retryable(f"{status} rate limit exhausted", wait=0.0, counts=False)
            if status == 429:
                self.stats.count("429")
                raise _Retryable("429 Too Many Requests", wait=retry_after)
            return  # a plain 403 (forbidden) is an answer, not a fault
        verdict = check_answer(response.request, response) if self.policy.validate_json else None
        if verdict is not None and verdict.kind == "timeout":
            self.stats.count("timeout")
            if response.request.extensions.get(SHRINKABLE):
                raise _Timeout(verdict.reason)
            raise _Retryable(verdict.reason, wait=retry_after_seconds(headers, now))
        if status in RETRY_STATUSES:
            self.stats.count(str(status))
            raise _Retryable(f"{status} {response.reason_phrase}", wait=retry_after_seconds(headers, now))
        if self.policy.validate_json and _is_json(response) and 200 <= status < 300:
            try:
                payload = json.loads(response.content)
            except ValueError as exc:
                self.stats.count("bad-json")
                raise _Retryable(f"malformed JSON body ({exc})") from exc
            self._graphql_budget(index, payload)
        if verdict is not None:
            if verdict.kind == "fatal":
                self.stats.count("refused-query")
                raise AnswerError(
                    f"{response.request.method} {_describe(response.request)}: {verdict.reason}; the "
                    "collector's query does not fit this API (check --github-endpoint and the secmine "
                    "version)"
                )
            self.stats.count("error-answer")
            raise _Retryable(verdict.reason)

    def _graphql_budget(self, index: int, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        data = payload.get("data")
        rate = data.get("rateLimit") if isinstance(data, dict) else None
        if isinstance(rate, dict):
            self.stats.graphql_cost += int(rate.get("cost") or 0)
            reset = _iso_epoch(rate.get("resetAt"))
            self.pool.update(index, remaining=rate.get("remaining"), limit=rate.get("limit"), reset_at=reset)
        errors = payload.get("errors")
        if isinstance(errors, list) and any(
            isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors
        ):
            self.pool.spend(index, self.pool.states[index].reset_at)
            self.stats.rate_limit_waits += 1
            self.stats.count("graphql-rate-limited")
            raise _Retryable("GraphQL RATE_LIMITED", wait=0.0, counts=False)

    # -- retries -----------------------------------------------------------------------------

    def _wait(self, exc: BaseException | None, faults: int) -> float:
        backoff = min(self.policy.backoff_initial * (2 ** max(faults - 1, 0)), self.policy.backoff_max)
        backoff += self.rng.uniform(0, self.policy.jitter)
        if isinstance(exc, _Retryable):
            if not exc.counts:
                return exc.wait if exc.wait is not None else backoff
            if exc.wait is not None:
                return max(exc.wait, backoff)
        return backoff

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        faults = 0

        def stop(state: tenacity.RetryCallState) -> bool:
            return faults > self.policy.max_retries

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("retrying %s %s after %s", request.method, _describe(request), exc)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            seconds = self._wait(exc, faults)
            if isinstance(exc, _Retryable) and not exc.counts:
                self.pool.waited += seconds
            return seconds

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=stop,
            wait=wait,
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        response = self._attempt(request)
                    except _Retryable as exc:
                        if exc.counts:
                            faults += 1
                            self.stats.retries += 1
                        raise
        except _Retryable as exc:
            raise FetchError(
                f"{request.method} {_describe(request)} failed after {self.policy.max_retries} retries: "
                f"{exc.reason}; {RESUME_HINT}"
            ) from None
        except _Timeout as exc:
            self.stats.timeouts += 1
            log.info("%s %s: %s; asking a smaller page", request.method, _describe(request), exc.reason)
            if self.recorder is not None:
                self.recorder.record_fault(request, "timeout", exc.reason)
            raise QueryTimeout(f"{request.method} {_describe(request)}: {exc.reason}") from None
        self.stats.requests += 1
        for hook in self.on_response:
            hook(response)
        if self.recorder is not None:
            self.recorder.record(request, response)
        return response

    def close(self) -> None:
        """Kept open: clients that share this transport may close; :meth:`shutdown` closes it."""

    def shutdown(self) -> None:
        self.inner.close()


def _describe(request: httpx2.Request) -> str:
    """The URL of a request for messages, with the GraphQL operation: ``.../graphql (RepoIssues)``."""
    url = _safe_url(request.url)
    if request.content and request.url.path.endswith("/graphql"):
        try:
            operation = json.loads(request.content).get("operationName")
        except (ValueError, AttributeError):
            operation = None
        if operation:
            return f"{url} ({operation})"
    return url


describe_request = _describe


def _iso_epoch(value: Any) -> float | None:
    if not value:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_SECRET_PARAMS = re.compile(r"([?&](?:access_token|token|api_key|key)=)[^&]*", re.IGNORECASE)


def _safe_url(url: Any) -> str:
    """A URL for messages and the archive, with any credential-like query parameter masked."""
    return _SECRET_PARAMS.sub(r"\1***", str(url))


safe_url = _safe_url


def tokens_from_env(name: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The tokens in an environment variable (comma- or whitespace-separated)."""
    import os

    value = (environ if environ is not None else os.environ).get(name, "")
    return [t for t in re.split(r"[\s,]+", value) if t]
