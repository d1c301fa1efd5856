"""Counting a coded sample with the paper's semantics (RQ2 issues, RQ3 solutions).

Definitions (the paper's, made explicit):

* **frequency** of a code: the number of times it is assigned.  A post that lists the same code
  twice counts twice (the loader keeps such repeats and lists them as data-quality warnings).
* **frequency** of a sub-theme or theme: the sum of the frequencies of its codes.
* **coverage** of a sub-theme or theme: the number of coded posts with at least one code in it,
  and that number as a percentage of *all* coded posts of the platform (the denominator includes
  posts with no code of that type).
* **platforms**: ``hf`` = HF Discussion, ``gh`` = GH Issue + GH Discussion, and each source on
  its own (``hf_discussion`` = ``hf``, ``gh_issue``, ``gh_discussion``), plus ``total``.
* **co-occurrence** of issue code *i* and solution code *s*: counted within a post.  With
  ``multiplicity=True`` (the default, consistent with counting mentions) a post contributes
  ``n_i x n_s``, the number of (issue mention, solution mention) pairs it holds, so a code listed
  twice counts twice; with ``multiplicity=False`` a post contributes 1 when it holds both codes
  (the number of posts).  Sub-theme and theme co-occurrence are sums over their codes, like
  frequencies.
* **lack of solutions**: for an issue code (or sub-theme, or theme), the posts carrying it that
  have no solution code at all, and the solution mentions that co-occur with it per issue
  mention (row sum of the co-occurrence matrix divided by the issue frequency; with
  ``multiplicity=False``: per post carrying it).

Every function takes the posts (one row a coded post: ``post_id, source``) and the mentions (one
row a code mention: ``post_id, source, type, code, sub_theme, theme``) of a
:class:`secmine.replication.CodedSample` and its :class:`secmine.codebook.Codebook`; every code
of the codebook gets a row, also when it is never assigned, in codebook order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from secmine.codebook import THEME_ORDER, CodeType
from secmine.errors import SecmineError
from secmine.schema import GH_DISCUSSION, GH_ISSUE, HF_DISCUSSION, PAPER_SOURCES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.codebook import Codebook
    from secmine.replication import CodedSample

Level = Literal["code", "sub_theme", "theme"]
LEVELS: tuple[Level, ...] = ("code", "sub_theme", "theme")

# The replication package's three sources (secmine.schema holds the vocabulary).
SOURCE_NAMES: tuple[str, ...] = PAPER_SOURCES

# Platform groups: column name -> the sources it pools.
PLATFORM_GROUPS: dict[str, tuple[str, ...]] = {
    "hf": (HF_DISCUSSION,),
    "gh": (GH_ISSUE, GH_DISCUSSION),
    "gh_issue": (GH_ISSUE,),
    "gh_discussion": (GH_DISCUSSION,),
    "total": SOURCE_NAMES,
}
# The paper's split (Hugging Face vs GitHub) and the per-source split.
MAIN_GROUPS: tuple[str, ...] = ("hf", "gh", "total")
SOURCE_GROUPS: tuple[str, ...] = ("hf_discussion", "gh_issue", "gh_discussion", "total")
# Every distinct group once (hf_discussion is the same as hf).
ALL_GROUPS: tuple[str, ...] = ("hf", "gh", "gh_issue", "gh_discussion", "total")
GROUP_LABELS: dict[str, str] = {
    "hf": "HF",
    "hf_discussion": "HF Discussion",
    "gh": "GH",
    "gh_issue": "GH Issue",
    "gh_discussion": "GH Discussion",
    "total": "Total",
}


class CountingError(SecmineError, ValueError):
    """The posts and mentions given to a counting function do not fit together."""


def group_sources(group: str) -> tuple[str, ...]:
    """The sources a platform group pools (``hf_discussion`` is an alias of ``hf``)."""
    key = "hf" if group == "hf_discussion" else group
    try:
        return PLATFORM_GROUPS[key]
    except KeyError:
        raise CountingError(f"unknown platform group {group!r}; use one of {', '.join(ALL_GROUPS)}") from None


def check_sample(posts: pd.DataFrame, mentions: pd.DataFrame, codebook: Codebook | None = None) -> None:
    """Refuse inputs that would give silently wrong counts: duplicated posts, unknown sources,
    mentions of posts that are not in ``posts`` or whose source disagrees with it, and (given a
    codebook) mentions whose code, sub-theme or theme is not the codebook's."""
    for column in ("post_id", "source"):
        if column not in posts.columns:
            raise CountingError(f"posts: missing column {column!r}")
    for column in ("post_id", "source", "type", "code", "sub_theme", "theme"):
        if column not in mentions.columns:
            raise CountingError(f"mentions: missing column {column!r}")
    duplicated = posts.loc[posts["post_id"].duplicated(), "post_id"].tolist()
    if duplicated:
        raise CountingError(f"posts: post id(s) listed more than once: {', '.join(map(repr, duplicated[:5]))}")
    bad_sources = sorted(set(posts["source"]) - set(SOURCE_NAMES))
    if bad_sources:
        raise CountingError(f"posts: unknown source(s) {bad_sources}; expected {', '.join(SOURCE_NAMES)}")
    source_of = dict(zip(posts["post_id"], posts["source"]))
    unknown = sorted(set(mentions["post_id"]) - set(source_of))
    if unknown:
        raise CountingError(f"mentions: post id(s) not among the coded posts: {', '.join(map(repr, unknown[:5]))}")
    mismatch = mentions[mentions["post_id"].map(source_of) != mentions["source"]]
    if len(mismatch):
        first = mismatch.iloc[0]
        raise CountingError(f"mentions: post {first['post_id']!r} has source {first['source']!r} but the post says "
                            f"{source_of[first['post_id']]!r}")
    bad_types = sorted(set(mentions["type"]) - {"issue", "solution"})
    if bad_types:
        raise CountingError(f"mentions: unknown type(s) {bad_types}")
    if codebook is not None:
        known = {(c.type, c.name, c.sub_theme, c.theme) for c in codebook}
        keys = zip(mentions["type"], mentions["code"], mentions["sub_theme"], mentions["theme"])
        rows = mentions["row"] if "row" in mentions.columns else range(len(mentions))
        for row, key in zip(rows, keys):
            if key not in known:
                raise CountingError(
                    f"mentions (coded file row {row}): {key[0]} code {key[1]!r} under {key[3]!r} > {key[2]!r} "
                    f"is not in the codebook ({codebook.origin})"
                )


def _mentions_of(mentions: pd.DataFrame, code_type: CodeType) -> pd.DataFrame:
    return mentions[mentions["type"] == code_type]


def _key_columns(level: Level) -> list[str]:
    return {"code": ["theme", "sub_theme", "code"], "sub_theme": ["theme", "sub_theme"], "theme": ["theme"]}[level]


def taxonomy_frame(codebook: Codebook, code_type: CodeType, level: Level = "code") -> pd.DataFrame:
    """The rows of a table at ``level``: ``theme[, sub_theme[, code]]`` in codebook order."""
    import pandas as pd

    codes = {c.name: c for c in codebook.of_type(code_type)}
    rows = [
        {"theme": codes[name].theme, "sub_theme": codes[name].sub_theme, "code": name}
        for name in codebook.code_names(code_type)
    ]
    frame = pd.DataFrame(rows, columns=["theme", "sub_theme", "code"])
    columns = _key_columns(level)
    return frame[columns].drop_duplicates().reset_index(drop=True)


def level_labels(codebook: Codebook, code_type: CodeType, level: Level) -> list[str]:
    """The labels of ``level`` (code names, sub-themes or themes) in codebook order."""
    return taxonomy_frame(codebook, code_type, level)[level].tolist()


def post_counts(posts: pd.DataFrame, groups: Sequence[str] = ALL_GROUPS) -> dict[str, int]:
    """Number of coded posts per platform group (the coverage denominators)."""
    return {group: int(posts["source"].isin(group_sources(group)).sum()) for group in groups}


def frequencies(
    posts: pd.DataFrame,
    mentions: pd.DataFrame,
    codebook: Codebook,
    code_type: CodeType,
    *,
    level: Level = "code",
    groups: Sequence[str] = MAIN_GROUPS,
) -> pd.DataFrame:
    """Frequency (number of mentions) per code, sub-theme or theme and platform group.

    Columns: ``theme[, sub_theme[, code]]`` then one integer column per group.
    """
    check_sample(posts, mentions, codebook)
    table = taxonomy_frame(codebook, code_type, level)
    typed = _mentions_of(mentions, code_type)
    for group in groups:
        counts = typed[typed["source"].isin(group_sources(group))].groupby(level).size()
        table[group] = table[level].map(counts).fillna(0).astype("int64")
    return table


def coverage(
    posts: pd.DataFrame,
    mentions: pd.DataFrame,
    codebook: Codebook,
    code_type: CodeType,
    *,
    level: Level = "sub_theme",
    groups: Sequence[str] = MAIN_GROUPS,
) -> pd.DataFrame:
    """Frequency and coverage per sub-theme or theme (or code) and platform group.

    Columns: ``theme[, sub_theme[, code]]`` then per group ``{g}_freq`` (mentions),
    ``{g}_posts`` (posts with at least one code in it) and ``{g}_pct`` (``{g}_posts`` as a
    percentage of all coded posts of the group; ``NaN`` when the group has no posts).
    """
    check_sample(posts, mentions, codebook)
    table = taxonomy_frame(codebook, code_type, level)
    typed = _mentions_of(mentions, code_type)
    n_posts = post_counts(posts, groups)
    for group in groups:
        in_group = typed[typed["source"].isin(group_sources(group))]
        freq = in_group.groupby(level).size()
        covered = in_group.groupby(level)["post_id"].nunique()
        table[f"{group}_freq"] = table[level].map(freq).fillna(0).astype("int64")
        table[f"{group}_posts"] = table[level].map(covered).fillna(0).astype("int64")
        denominator = n_posts[group]
        if denominator:
            table[f"{group}_pct"] = (table[f"{group}_posts"] * 100.0 / denominator).astype("float64")
        else:  # no coded post of this platform: coverage is undefined, not 0%
            table[f"{group}_pct"] = float("nan")
    return table


def posts_with_type(posts: pd.DataFrame, mentions: pd.DataFrame, code_type: CodeType) -> set[str]:
    """Ids of the posts with at least one code of ``code_type``."""
    return set(_mentions_of(mentions, code_type)["post_id"])


def cooccurrence(
    posts: pd.DataFrame,
    mentions: pd.DataFrame,
    codebook: Codebook,
    *,
    level: Level = "code",
    multiplicity: bool = True,
    groups: Sequence[str] = ("total",),
) -> pd.DataFrame:
    """The issue -> solution co-occurrence matrix: rows issue labels, columns solution labels
    (codes, sub-themes or themes, codebook order), counted within posts of ``groups``' sources
    (see the module docstring for ``multiplicity``)."""
    import pandas as pd

    check_sample(posts, mentions, codebook)
    sources: set[str] = set()
    for group in groups:
        sources.update(group_sources(group))
    pairs = pair_counts(mentions[mentions["source"].isin(sources)], multiplicity=multiplicity)
    rows = level_labels(codebook, "issue", level)
    cols = level_labels(codebook, "solution", level)
    if level != "code":
        issue_map = taxonomy_frame(codebook, "issue", "code").set_index("code")[level]
        solution_map = taxonomy_frame(codebook, "solution", "code").set_index("code")[level]
        pairs = pairs.assign(issue=pairs["issue"].map(issue_map), solution=pairs["solution"].map(solution_map))
    matrix = pd.DataFrame(0, index=pd.Index(rows), columns=pd.Index(cols), dtype="int64")
    for (issue, solution), count in pairs.groupby(["issue", "solution"])["count"].sum().items():
        matrix.loc[issue, solution] = int(count)
    matrix.index.name = f"issue_{level}"
    matrix.columns.name = f"solution_{level}"
    return matrix


def pair_counts(mentions: pd.DataFrame, *, multiplicity: bool = True) -> pd.DataFrame:
    """Issue code x solution code pairs within posts: ``issue, solution, count, posts`` where
    ``count`` follows ``multiplicity`` and ``posts`` is the number of posts holding both."""
    import pandas as pd

    per_post = mentions.groupby(["post_id", "type", "code"]).size().rename("n").reset_index()
    issues = per_post[per_post["type"] == "issue"][["post_id", "code", "n"]]
    solutions = per_post[per_post["type"] == "solution"][["post_id", "code", "n"]]
    joined = issues.merge(solutions, on="post_id", suffixes=("_issue", "_solution"))
    if joined.empty:
        return pd.DataFrame({"issue": pd.Series(dtype=str), "solution": pd.Series(dtype=str),
                             "count": pd.Series(dtype="int64"), "posts": pd.Series(dtype="int64")})
    joined["weight"] = joined["n_issue"] * joined["n_solution"] if multiplicity else 1
    out = (
        joined.groupby(["code_issue", "code_solution"])
        .agg(count=("weight", "sum"), posts=("post_id", "nunique"))
        .reset_index()
        .rename(columns={"code_issue": "issue", "code_solution": "solution"})
    )
    out["count"] = out["count"].astype("int64")
    out["posts"] = out["posts"].astype("int64")
    return out


def cooccurrence_pairs(
    posts: pd.DataFrame,
    mentions: pd.DataFrame,
    codebook: Codebook,
    *,
    multiplicity: bool = True,
) -> pd.DataFrame:
    """The co-occurring issue -> solution code pairs, most frequent first (ties in codebook order).

    Columns: ``rank, issue_theme, issue_sub_theme, issue_code, solution_theme, solution_sub_theme,
    solution_code, count, posts``.
    """
    check_sample(posts, mentions, codebook)
    pairs = pair_counts(mentions, multiplicity=multiplicity)
    issue_tax = taxonomy_frame(codebook, "issue", "code").reset_index().rename(columns={"index": "_i"})
    solution_tax = taxonomy_frame(codebook, "solution", "code").reset_index().rename(columns={"index": "_s"})
    out = pairs.merge(issue_tax.add_prefix("issue_"), left_on="issue", right_on="issue_code")
    out = out.merge(solution_tax.add_prefix("solution_"), left_on="solution", right_on="solution_code")
    out = out.sort_values(["count", "posts", "issue__i", "solution__s"], ascending=[False, False, True, True])
    out = out.reset_index(drop=True)
    out.insert(0, "rank", out.index + 1)
    columns = ["rank", "issue_theme", "issue_sub_theme", "issue_code", "solution_theme", "solution_sub_theme",
               "solution_code", "count", "posts"]
    return out[columns]


def lack_of_solutions(
    posts: pd.DataFrame,
    mentions: pd.DataFrame,
    codebook: Codebook,
    *,
    level: Level = "theme",
    group: str = "total",
    multiplicity: bool = True,
) -> pd.DataFrame:
    """Per issue code, sub-theme or theme: how often it comes without a solution.

    Columns: ``theme[, sub_theme[, code]]``, ``issue_mentions`` (frequency), ``posts`` (posts
    carrying it), ``posts_without_solution`` (of those, posts with no solution code at all),
    ``pct_without_solution`` (percent of ``posts``; NaN when ``posts`` is 0),
    ``cooccurring_solution_mentions`` (row sum of the co-occurrence matrix) and
    ``solutions_per_issue`` (that sum per issue mention, or per post when
    ``multiplicity=False``; NaN when the issue never occurs).
    """
    import numpy as np

    check_sample(posts, mentions, codebook)
    sources = group_sources(group)
    in_group = mentions[mentions["source"].isin(sources)]
    table = taxonomy_frame(codebook, "issue", level)
    issues = _mentions_of(in_group, "issue")
    solved_posts = posts_with_type(posts, in_group, "solution")
    freq = issues.groupby(level).size()
    carriers = issues.groupby(level)["post_id"].agg(lambda ids: set(ids))
    matrix = cooccurrence(posts, mentions, codebook, level=level, multiplicity=multiplicity, groups=(group,))
    table["issue_mentions"] = table[level].map(freq).fillna(0).astype("int64")
    table["posts"] = table[level].map(lambda label: len(carriers.get(label, ()))).astype("int64")
    table["posts_without_solution"] = table[level].map(
        lambda label: len(carriers.get(label, set()) - solved_posts)
    ).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["pct_without_solution"] = np.where(
            table["posts"] > 0, table["posts_without_solution"] * 100.0 / table["posts"].where(table["posts"] > 0), np.nan
        )
        row_sums = table[level].map(matrix.sum(axis=1)).fillna(0).astype("int64")
        table["cooccurring_solution_mentions"] = row_sums
        base = table["issue_mentions"] if multiplicity else table["posts"]
        table["solutions_per_issue"] = np.where(base > 0, row_sums / base.where(base > 0), np.nan)
    return table


def theme_balance(posts: pd.DataFrame, mentions: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Per theme, issue mentions beside the mentions of the same theme's solutions.

    Columns: ``theme, issue_mentions, issue_posts, solution_mentions, solution_posts,
    solutions_per_issue`` (solution mentions of the theme per issue mention of the theme).
    """
    import numpy as np
    import pandas as pd

    check_sample(posts, mentions, codebook)
    union = list(dict.fromkeys(codebook.themes("issue") + codebook.themes("solution")))
    themes = [t for t in THEME_ORDER if t in union] + [t for t in union if t not in THEME_ORDER]

    table = pd.DataFrame({"theme": themes})
    for code_type in ("issue", "solution"):
        typed = _mentions_of(mentions, code_type)
        table[f"{code_type}_mentions"] = table["theme"].map(typed.groupby("theme").size()).fillna(0).astype("int64")
        table[f"{code_type}_posts"] = (
            table["theme"].map(typed.groupby("theme")["post_id"].nunique()).fillna(0).astype("int64")
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        table["solutions_per_issue"] = np.where(
            table["issue_mentions"] > 0,
            table["solution_mentions"] / table["issue_mentions"].where(table["issue_mentions"] > 0),
            np.nan,
        )
    return table[["theme", "issue_mentions", "issue_posts", "solution_mentions", "solution_posts", "solutions_per_issue"]]


@dataclass
class ThematicCounts:
    """Everything RQ2/RQ3 count, for one coded sample."""

    n_posts: dict[str, int]
    codes: dict[CodeType, pd.DataFrame]  # theme, sub_theme, code, hf, gh, total
    codes_by_source: dict[CodeType, pd.DataFrame]  # ... hf_discussion, gh_issue, gh_discussion, total
    sub_themes: dict[CodeType, pd.DataFrame]  # coverage tables, ALL_GROUPS
    themes: dict[CodeType, pd.DataFrame]
    cooccurrence_codes: pd.DataFrame
    cooccurrence_sub_themes: pd.DataFrame
    cooccurrence_themes: pd.DataFrame
    pairs: pd.DataFrame
    lack_codes: pd.DataFrame
    lack_sub_themes: pd.DataFrame
    lack_themes: pd.DataFrame  # theme x group (column ``platform``)
    balance: pd.DataFrame
    posts_without: dict[CodeType, dict[str, int]]  # posts with no code of the type, per group
    multiplicity: bool


def count_all(
    posts: pd.DataFrame, mentions: pd.DataFrame, codebook: Codebook, *, multiplicity: bool = True
) -> ThematicCounts:
    """Run every count of RQ2 and RQ3 on one coded sample."""
    import pandas as pd

    check_sample(posts, mentions, codebook)
    codes = {t: frequencies(posts, mentions, codebook, t, groups=MAIN_GROUPS) for t in ("issue", "solution")}
    by_source = {}
    for code_type in ("issue", "solution"):
        table = frequencies(posts, mentions, codebook, code_type, groups=("hf", "gh_issue", "gh_discussion", "total"))
        by_source[code_type] = table.rename(columns={"hf": "hf_discussion"})
    sub_themes = {t: coverage(posts, mentions, codebook, t, level="sub_theme", groups=ALL_GROUPS)
                  for t in ("issue", "solution")}
    themes = {t: coverage(posts, mentions, codebook, t, level="theme", groups=ALL_GROUPS)
              for t in ("issue", "solution")}
    lack_themes = pd.concat(
        [
            lack_of_solutions(posts, mentions, codebook, level="theme", group=g, multiplicity=multiplicity)
            .assign(platform=g)
            for g in MAIN_GROUPS
        ],
        ignore_index=True,
    )
    lack_themes = lack_themes[["theme", "platform"] + [c for c in lack_themes.columns if c not in ("theme", "platform")]]
    posts_without: dict[CodeType, dict[str, int]] = {}
    for code_type in ("issue", "solution"):
        having = posts_with_type(posts, mentions, code_type)
        posts_without[code_type] = {
            g: int((posts["source"].isin(group_sources(g)) & ~posts["post_id"].isin(having)).sum()) for g in ALL_GROUPS
        }
    return ThematicCounts(
        n_posts=post_counts(posts, ALL_GROUPS),
        codes=codes,
        codes_by_source=by_source,
        sub_themes=sub_themes,
        themes=themes,
        cooccurrence_codes=cooccurrence(posts, mentions, codebook, level="code", multiplicity=multiplicity),
        cooccurrence_sub_themes=cooccurrence(posts, mentions, codebook, level="sub_theme", multiplicity=multiplicity),
        cooccurrence_themes=cooccurrence(posts, mentions, codebook, level="theme", multiplicity=multiplicity),
        pairs=cooccurrence_pairs(posts, mentions, codebook, multiplicity=multiplicity),
        lack_codes=lack_of_solutions(posts, mentions, codebook, level="code", multiplicity=multiplicity),
        lack_sub_themes=lack_of_solutions(posts, mentions, codebook, level="sub_theme", multiplicity=multiplicity),
        lack_themes=lack_themes,
        balance=theme_balance(posts, mentions, codebook),
        posts_without=posts_without,
        multiplicity=multiplicity,
    )


def count_sample(sample: CodedSample, *, multiplicity: bool = True) -> ThematicCounts:
    """:func:`count_all` on a :class:`secmine.replication.CodedSample`."""
    return count_all(sample.posts, sample.mentions, sample.codebook, multiplicity=multiplicity)

