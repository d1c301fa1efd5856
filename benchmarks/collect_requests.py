"""Requests per 1,000 threads: this project's GraphQL collector vs the per-issue REST approach.

A realistic repository is served by the fake API on 127.0.0.1 (real HTTP): thousands of issues
and pull requests with a long tail of comment counts (Pareto-distributed, a few threads with
hundreds of comments).  Both approaches fetch every thread with every comment:

* **GraphQL** (``secmine.collect``): issues and pull requests 100 a page with their first 100
  comments, further comment pages only for the threads that have more;
* **REST per issue** (what PyGithub-based crawlers such as the paper's do): list the issues
  30 a page (pull requests included), then one comments request per issue (following the
  comment pages, 30 a page).

The server counts the requests.  The script prints both counts per 1,000 threads and their ratio,
checks that both approaches saw the same threads and comments, and exits with status 1 if the
GraphQL collector does not use at least 50 times fewer requests.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from secmine.collect.live import Credentials, LiveConfig, crawl, replay
from secmine_testing.fake_api import FakeAPI, FakeData, github_repo_data

TARGET = 50.0
REPO = "bench/llm-app"


def long_tail(rng: random.Random) -> int:
    """Comment counts: most threads have a few, some dozens, a few hundreds (Pareto, alpha 1.1)."""
    return min(int(rng.paretovariate(1.1)) - 1, 600)


def rest_per_issue(base: str, repo: str, token: str) -> tuple[int, int, int]:
    """The per-issue REST crawl: ``(requests, threads, comments)``."""
    requests = threads = comments = 0
    headers = {"authorization": f"bearer {token}", "accept": "application/vnd.github+json"}
    with httpx2.Client(headers=headers, trust_env=False, timeout=30) as client:
        url: str | None = f"{base}/repos/{repo}/issues?state=all&per_page=30"
        numbers = []
        while url:
            response = client.get(url)
            response.raise_for_status()
            requests += 1
            numbers += [issue["number"] for issue in response.json()]
            url = response.links.get("next", {}).get("url")
        for number in numbers:
            url = f"{base}/repos/{repo}/issues/{number}/comments?per_page=30"
            while url:
                response = client.get(url)
                response.raise_for_status()
                requests += 1
                comments += len(response.json())
                url = response.links.get("next", {}).get("url")
        threads = len(numbers)
    return requests, threads, comments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=4000)
    parser.add_argument("--pulls", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    data = FakeData()
    data.github[REPO] = github_repo_data(
        seed=args.seed, issues=args.issues, pulls=args.pulls, discussions=0, comment_counts=long_tail, bots=()
    )
    threads_on_server = args.issues + args.pulls
    comments_on_server = sum(len(t["comments"]) for items in data.github[REPO].values() for t in items)
    over_100 = sum(1 for items in data.github[REPO].values() for t in items if len(t["comments"]) > 100)
    over_30 = sum(1 for items in data.github[REPO].values() for t in items if len(t["comments"]) > 30)
    print(f"repository: {threads_on_server} threads ({args.issues} issues, {args.pulls} pull requests), {comments_on_server} comments; "
          f"{over_30} threads with more than 30 comments, {over_100} with more than 100")  # fmt: skip

    token = "bench-token"
    with FakeAPI(data, github_limit=10**9) as api, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        config = LiveConfig(
            hf_endpoint=api.url,
            github_endpoint=api.url,
            hf_scope=[],
            github_repos=[REPO],
            github_kinds=["issue", "pull_request"],
        )
        result = crawl(
            Path(tmp) / "archive",
            config,
            credentials=Credentials(github=[token]),
            progress=False,
            durable=False,
        )
        graphql_requests = api.request_count
        graphql_seconds = time.perf_counter() - started
        replayed = replay(Path(tmp) / "archive")
        graphql_threads = len({t.id for t in replayed.threads})
        graphql_comments = sum(len(t.comments) for t in replayed.threads)
        assert result.requests == graphql_requests

        before = api.request_count
        started = time.perf_counter()
        rest_requests, rest_threads, rest_comments = rest_per_issue(api.url, REPO, token)
        rest_seconds = time.perf_counter() - started
        assert api.request_count - before == rest_requests

    ok = (
        graphql_threads == rest_threads == threads_on_server
        and graphql_comments == rest_comments == comments_on_server
    )
    per_k_graphql = graphql_requests / graphql_threads * 1000
    per_k_rest = rest_requests / rest_threads * 1000
    ratio = per_k_rest / per_k_graphql
    print()
    print(
        f"{'approach':<28}{'requests':>10}{'threads':>9}{'comments':>10}{'req/1k threads':>16}{'seconds':>9}"
    )
    print(
        f"{'GraphQL (secmine.collect)':<28}{graphql_requests:>10}{graphql_threads:>9}{graphql_comments:>10}{per_k_graphql:>16.1f}{graphql_seconds:>9.1f}"
    )
    print(
        f"{'REST per issue (PyGithub)':<28}{rest_requests:>10}{rest_threads:>9}{rest_comments:>10}{per_k_rest:>16.1f}{rest_seconds:>9.1f}"
    )
    print(f"\nratio: {ratio:.1f}x fewer requests with GraphQL (target: at least {TARGET:.0f}x)")
    if not ok:
        print("FAIL: the two approaches did not fetch the same threads and comments", file=sys.stderr)
        return 1
    if ratio < TARGET:
        print(f"FAIL: ratio {ratio:.1f} is below the target {TARGET:.0f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
