"""The fake API itself: GitHub's GraphQL point costs and node counts, REST costs, the
repository-wide comments endpoint, and the faults it injects."""

from __future__ import annotations

import httpx2
import pytest

from secmine.collect.github import comments_query, list_query, rehydrate_query, scan_query
from secmine_testing.fake_api import FakeAPI, FakeData, github_repo_data, graphql_cost, graphql_nodes

# GitHub's documented examples (docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api)
DOC_COST_EXAMPLE = """query { viewer { login repositories(first: 100) { edges { node { id
  issues(first: 50) { edges { node { id labels(first: 60) { edges { node { id name } } } } } } } } } } }"""
DOC_NODES_EXAMPLE = """query { viewer { repositories(first: 50) { edges { repository:node { name
  pullRequests(first: 20) { edges { pullRequest:node { title comments(first: 10) { edges { comment:node { bodyHTML } } } } } }
  issues(first: 20) { totalCount edges { issue:node { title bodyHTML comments(first: 10) { edges { comment:node { bodyHTML } } } } } }
  } } } followers(first: 10) { edges { follower:node { login } } } } }"""


def test_graphql_cost_and_nodes_follow_githubs_documented_examples() -> None:
    # 1 request for the repositories + 100 for their issues + 100 x 50 for the labels = 5,101 -> 51 points
    assert graphql_cost(DOC_COST_EXAMPLE) == 51
    assert graphql_nodes(DOC_NODES_EXAMPLE) == 22_060


@pytest.mark.parametrize(
    ("first", "comments", "cost"),
    [(100, 100, 2), (50, 100, 1), (100, 10, 2), (10, 10, 1)],
)
def test_the_collectors_pages_cost_what_github_charges(first: int, comments: int, cost: int) -> None:
    # issues(first) 1 request + labels(first: 100) and comments(first) once per thread: (1 + 2 x first) / 100
    assert graphql_cost(list_query("issue"), {"first": first, "comments": comments}) == cost
    assert graphql_cost(scan_query("pull_request"), {"first": 100}) == 1
    assert graphql_cost(comments_query("issue"), {"first": 100}) == 1
    assert graphql_cost(rehydrate_query([("issue", n) for n in range(25)]), {"comments": 100}) == 1


def _data() -> FakeData:
    data = FakeData()
    data.github["acme/kit"] = github_repo_data(seed=1, issues=40, pulls=10, discussions=0)
    return data


def test_points_are_charged_per_query_and_rest_costs_one() -> None:
    with FakeAPI(_data()) as api, httpx2.Client(headers={"authorization": "bearer t"}, trust_env=False) as client:
        query = list_query("issue")
        variables = {"owner": "acme", "name": "kit", "first": 100, "comments": 100, "after": None, "since": None}
        answer = client.post(api.url + "/graphql", json={"query": query, "variables": variables,
                                                         "operationName": "RepoIssues"}).json()  # fmt: skip
        assert answer["data"]["rateLimit"]["cost"] == 2
        client.get(api.url + "/repos/acme/kit/issues?per_page=100")
        assert api.points == {"graphql": 2, "core": 1}
        assert answer["data"]["rateLimit"]["remaining"] == 5000 - 2


def test_repository_wide_comments_endpoint_pages_every_comment_oldest_first() -> None:
    data = _data()
    every = sorted(
        (c["created_at"], t["number"]) for items in data.github["acme/kit"].values() for t in items for c in t["comments"]
    )
    with FakeAPI(data) as api, httpx2.Client(headers={"authorization": "bearer t"}, trust_env=False) as client:
        seen: list[tuple[str, int]] = []
        url: str | None = f"{api.url}/repos/acme/kit/issues/comments?per_page=7&sort=created&direction=asc"
        pages = 0
        while url:
            response = client.get(url)
            pages += 1
            seen += [(c["created_at"], int(c["issue_url"].rsplit("/", 1)[1])) for c in response.json()]
            url = response.links.get("next", {}).get("url")
        assert seen == every and pages == -(-len(every) // 7)
        since = every[len(every) // 2][0]
        later = client.get(f"{api.url}/repos/acme/kit/issues/comments?per_page=100&since={since}").json()
        assert len(later) == sum(1 for stamp, _ in every if stamp >= since)


def test_node_limit_answers_too_big_queries_with_githubs_timeout() -> None:
    with FakeAPI(_data(), graphql_node_limit=600) as api, httpx2.Client(
        headers={"authorization": "bearer t"}, trust_env=False
    ) as client:
        query = list_query("issue")
        for first, status in ((10, 502), (5, 200)):
            variables = {"owner": "acme", "name": "kit", "first": first, "comments": 10, "after": None, "since": None}
            response = client.post(api.url + "/graphql", json={"query": query, "variables": variables,
                                                               "operationName": "RepoIssues"})  # fmt: skip
            assert response.status_code == status
            if status == 502:
                assert "timeout" in response.json()["errors"][0]["message"]


def test_unknown_fault_kinds_are_refused() -> None:
    with FakeAPI(_data()) as api, pytest.raises(ValueError, match="unknown fault"):
        api.add_fault("teapot")
