"""Requests and rate-limit points per 1,000 threads: the GraphQL collector vs two REST crawls.

A realistic repository is served by the fake API on 127.0.0.1 (real HTTP): thousands of issues
and pull requests with a long tail of comment counts (Pareto-distributed, a few threads with
hundreds of comments).  Every approach fetches every thread with every comment:

* **GraphQL** (``secmine.collect``): issues and pull requests 100 a page with their first 100
  comments, further comment pages only for the threads that have more;
* **REST per issue** (what PyGithub-based crawlers such as the paper's do): list the issues
  30 a page (pull requests included), then one comments request per issue (following the
  comment pages, 30 a page);
* **REST, the strongest a competent user would write**: list the issues 100 a page, and every
  comment of the repository from ``/repos/{o}/{n}/issues/comments`` (``since``, 100 a page),
  joined to its issue by ``issue_url``.

The server counts the requests and charges GitHub's points: a GraphQL query its documented cost
(``rateLimit.cost``: the requests each connection needs, summed, / 100, rounded, at least 1; a page
of 100 threads with their first 100 labels and comments costs 2), a REST request one point from
the separate REST budget.  The script prints requests and points per 1,000 threads for each
approach and the ratios, checks that every approach saw the same threads and comments, and exits
with status 1 if the GraphQL collector does not use at least 50 times fewer requests than the
per-issue REST crawl.  Against the strongest REST crawl it reports the ratio it reaches (no target).
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
SINCE = "1970-01-01T00:00:00Z"


def long_tail(rng: random.Random) -> int:
    """Comment counts: most threads have a few, some dozens, a few hundreds (Pareto, alpha 1.1)."""
    return min(int(rng.paretovariate(1.1)) - 1, 600)


def _get_all(client: httpx2.Client, url: str | None) -> tuple[int, list[dict]]:
    """Follow ``Link: rel="next"``: ``(requests, items)``."""
    requests, items = 0, []
    while url:
        response = client.get(url)
        response.raise_for_status()
        requests += 1
        items += response.json()
        url = response.links.get("next", {}).get("url")
    return requests, items


def _client(token: str) -> httpx2.Client:
    headers = {"authorization": f"bearer {token}", "accept": "application/vnd.github+json"}
    return httpx2.Client(headers=headers, trust_env=False, timeout=30)


def rest_per_issue(base: str, repo: str, token: str) -> tuple[int, int, int]:
    """The per-issue REST crawl: ``(requests, threads, comments)``."""
    with _client(token) as client:
        requests, issues = _get_all(client, f"{base}/repos/{repo}/issues?state=all&per_page=30")
        comments = 0
        for issue in issues:
            more, found = _get_all(client, f"{base}/repos/{repo}/issues/{issue['number']}/comments?per_page=30")
            requests += more
            comments += len(found)
    return requests, len(issues), comments


def rest_strongest(base: str, repo: str, token: str) -> tuple[int, int, int]:
    """Issues 100 a page plus the repository-wide comments endpoint: ``(requests, threads, comments)``."""
    with _client(token) as client:
        listed, issues = _get_all(client, f"{base}/repos/{repo}/issues?state=all&per_page=100")
        paged, comments = _get_all(
            client, f"{base}/repos/{repo}/issues/comments?since={SINCE}&per_page=100&sort=created&direction=asc"
        )
    numbers = {issue["number"] for issue in issues}
    joined = sum(1 for c in comments if int(c["issue_url"].rsplit("/", 1)[1]) in numbers)
    return listed + paged, len(issues), joined


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
    rows: list[tuple[str, int, int, int, int, float]] = []
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
            Path(tmp) / "archive", config, credentials=Credentials(github=[token]), progress=False, durable=False
        )
        seconds = time.perf_counter() - started
        replayed = replay(Path(tmp) / "archive")
        assert result.requests == api.request_count
        assert result.stats["github"]["graphql_cost"] == api.points["graphql"]
        rows.append(("GraphQL (secmine.collect)", api.request_count, api.points["graphql"],
                     len({t.id for t in replayed.threads}), sum(len(t.comments) for t in replayed.threads),
                     seconds))  # fmt: skip

        for name, approach in (("REST per issue (PyGithub)", rest_per_issue),
                               ("REST issues + repo comments", rest_strongest)):  # fmt: skip
            before, points = api.request_count, api.points["core"]
            started = time.perf_counter()
            requests, threads, comments = approach(api.url, REPO, token)
            seconds = time.perf_counter() - started
            assert api.request_count - before == requests
            rows.append((name, requests, api.points["core"] - points, threads, comments, seconds))

    ok = all(r[3] == threads_on_server and r[4] == comments_on_server for r in rows)
    print()
    print(f"{'approach':<30}{'requests':>10}{'points':>9}{'threads':>9}{'comments':>10}"
          f"{'req/1k':>9}{'pts/1k':>9}{'seconds':>9}")  # fmt: skip
    per_k = {}
    for name, requests, points, threads, comments, seconds in rows:
        per_k[name] = (requests / threads * 1000, points / threads * 1000)
        print(f"{name:<30}{requests:>10}{points:>9}{threads:>9}{comments:>10}"
              f"{per_k[name][0]:>9.1f}{per_k[name][1]:>9.1f}{seconds:>9.1f}")  # fmt: skip
    graphql, per_issue, strongest = (per_k[r[0]] for r in rows)
    ratio = per_issue[0] / graphql[0]
    print(f"\nvs REST per issue: {ratio:.1f}x fewer requests (target: at least {TARGET:.0f}x), "
          f"{per_issue[1] / graphql[1]:.1f}x fewer points")  # fmt: skip
    print(f"vs REST issues + repository comments: {strongest[0] / graphql[0]:.2f}x fewer requests, "
          f"{strongest[1] / graphql[1]:.2f}x fewer points (no target: the strongest REST crawl)")  # fmt: skip
    if not ok:
        print("FAIL: the approaches did not fetch the same threads and comments", file=sys.stderr)
        return 1
    if ratio < TARGET:
        print(f"FAIL: ratio {ratio:.1f} is below the target {TARGET:.0f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
