"""GitHub links in Hugging Face model cards, and the best-matching repository of each model.

As in the paper, a model's README is searched for ``github.com/owner/name`` links and the model
is linked to the one whose ``owner/name`` is most similar to the model id (edit-distance ratio,
here computed with rapidfuzz).  Ties go to the link that comes first in the README.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Paths under github.com that are not repositories.
_NOT_OWNERS = frozenset(
    {
        "about", "apps", "blog", "collections", "contact", "customer-stories", "enterprise", "events",
        "explore", "features", "issues", "login", "marketplace", "new", "notifications", "orgs",
        "pricing", "pulls", "readme", "search", "security", "settings", "site", "sponsors",
        "topics", "trending", "users",
    }
)  # fmt: skip
_LINK_RE = re.compile(
    r"(?:https?://)?(?:www\.)?github\.com/([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/([A-Za-z0-9._-]{1,100})",
    re.IGNORECASE,
)


def github_links(text: str | None) -> list[str]:
    """Distinct ``owner/name`` repositories linked in ``text``, in order of first appearance."""
    if not text:
        return []
    seen: dict[str, str] = {}
    for match in _LINK_RE.finditer(text):
        owner, name = match.group(1), match.group(2)
        name = re.sub(r"\.git$", "", name).rstrip(".")
        if not name or owner.lower() in _NOT_OWNERS or name in {".", ".."}:
            continue
        repo = f"{owner}/{name}"
        seen.setdefault(repo.lower(), repo)
    return list(seen.values())


@dataclass(frozen=True)
class Link:
    repo: str | None
    score: float | None


def best_link(model_id: str, links: list[str], *, min_score: float = 0.0) -> Link:
    """The link most similar to ``model_id`` (rapidfuzz ratio, 0-1), or no link."""
    from rapidfuzz import fuzz

    if not links:
        return Link(None, None)
    target = model_id.lower()
    scores = [fuzz.ratio(target, link.lower()) / 100.0 for link in links]
    best = max(range(len(links)), key=lambda i: (scores[i], -i))
    if scores[best] < min_score:
        return Link(None, round(scores[best], 6))
    return Link(links[best], round(scores[best], 6))
