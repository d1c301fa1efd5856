"""The HTTP layer against the fake API: retries, faults, timeouts, rate limits, token rotation."""

from __future__ import annotations

import httpx2
import pytest

from secmine.collect.http import (
    CollectTransport,
    FetchError,
    RetryPolicy,
    TokenError,
    TokenPool,
    parse_rate_limit,
    retry_after_seconds,
    tokens_from_env,
)
from secmine_testing.clock import FakeClock
from secmine_testing.fake_api import FAULT_KINDS, FakeAPI, FakeData, github_repo_data

QUERY = {
    "query": "query RepoIssues { rateLimit { cost } repository { issues(first: 5, orderBy: {field: UPDATED_AT, direction: ASC}) { nodes { number } } } }"
}


def _data() -> FakeData:
    data = FakeData()
    data.github["acme/kit"] = github_repo_data(issues=8, pulls=0, discussions=0)
    return data


def _post(client: httpx2.Client, api: FakeAPI) -> httpx2.Response:
    body = {
        **QUERY,
        "operationName": "RepoIssues",
        "variables": {"owner": "acme", "name": "kit", "first": 5, "comments": 5, "after": None},
    }
    return client.post(api.url + "/graphql", json=body)


def _client(pool: TokenPool, clock: FakeClock, **policy: float) -> tuple[httpx2.Client, CollectTransport]:
    settings = {"max_retries": 3, "timeout_s": 2.0, "backoff_initial": 0.5, "jitter": 0.0, **policy}
    transport = CollectTransport(pool=pool, policy=RetryPolicy(**settings), clock=clock)  # type: ignore[arg-type]
    return httpx2.Client(transport=transport), transport


@pytest.mark.parametrize("fault", [k for k in FAULT_KINDS if k != "slow"])
def test_faults_are_retried(fault: str) -> None:
    """Every fault kind of the fake API, error answers with status 200 included, is retried."""
    clock = FakeClock(0)
    with FakeAPI(_data(), clock=clock) as api:
        api.add_fault(fault, "/graphql", times=2, retry_after=7)
        client, transport = _client(TokenPool(["t1"], clock=clock), clock)
        response = _post(client, api)
        assert response.status_code == 200
        assert len(response.json()["data"]["repository"]["issues"]["nodes"]) == 5
        assert api.request_count == 3
        if fault == "secondary":
            assert transport.stats.retries == 0  # waits do not use up the retries
            assert clock.slept == [7, 7]
        else:
            assert transport.stats.retries == 2
            assert len(clock.slept) == 2
        if fault == "429":
            assert min(clock.slept) >= 7  # Retry-After honoured


def test_slow_response_times_out_and_is_retried() -> None:
    clock = FakeClock(0)
    with FakeAPI(_data(), clock=clock) as api:
        api.add_fault("slow", "/graphql", times=1, delay=1.5)
        client, transport = _client(TokenPool(["t1"], clock=clock), clock, timeout_s=0.3)
        assert _post(client, api).status_code == 200
        assert transport.stats.retries == 1
        assert api.request_count == 2


def test_gives_up_after_max_retries() -> None:
    clock = FakeClock(0)
    with FakeAPI(_data(), clock=clock) as api:
        api.add_fault("502", "/graphql", times=10)
        client, _ = _client(TokenPool(["t1"], clock=clock), clock, max_retries=2)
        with pytest.raises(FetchError, match="after 2 retries: 502"):
            _post(client, api)
        assert api.request_count == 3


def test_rate_limit_exhaustion_sleeps_until_reset() -> None:
    clock = FakeClock(1_000_000)
    with FakeAPI(_data(), clock=clock, github_limit=3, window=3600) as api:
        client, transport = _client(TokenPool(["only"], clock=clock), clock)
        for _ in range(7):
            assert _post(client, api).status_code == 200
        assert transport.pool.waits == 2
        assert sum(clock.slept) >= 2 * 3600 - 5
        assert transport.stats.retries == 0


@pytest.mark.parametrize("style", ["403", "errors"])
def test_rate_limit_rotates_tokens_before_sleeping(style: str) -> None:
    clock = FakeClock(1_000_000)
    with FakeAPI(_data(), clock=clock, github_limit=3, window=3600, graphql_limit_style=style) as api:
        client, transport = _client(TokenPool(["a", "b", "c"], clock=clock), clock)
        for _ in range(9):
            assert _post(client, api).status_code == 200
        used = {r.token for r in api.log if r.status == 200}
        assert used == {"a", "b", "c"}
        assert clock.slept == []  # three tokens of 3 requests: no wait needed
        assert transport.pool.budget() == "0/9"


def test_unauthorised_token_is_a_clear_error() -> None:
    clock = FakeClock(0)
    with FakeAPI(_data(), clock=clock, tokens={"good"}) as api:
        client, _ = _client(TokenPool(["bad"], clock=clock), clock)
        with pytest.raises(TokenError, match="401"):
            _post(client, api)


def test_header_parsing() -> None:
    assert parse_rate_limit(
        {"x-ratelimit-remaining": "10", "x-ratelimit-limit": "5000", "x-ratelimit-reset": "1700000000"}, 0
    ) == (10, 5000, 1700000000.0)
    assert parse_rate_limit(
        {"ratelimit": '"api";r=4;t=55', "ratelimit-policy": '"fixed window";"api";q=500;w=300'}, 100.0
    ) == (4, 500, 155.0)
    assert parse_rate_limit({}, 0) == (None, None, None)
    assert retry_after_seconds({"retry-after": "12"}, 0) == 12
    assert tokens_from_env("GITHUB_TOKEN", {"GITHUB_TOKEN": "a, b,,c"}) == ["a", "b", "c"]
