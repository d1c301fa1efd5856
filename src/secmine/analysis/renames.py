"""Repositories listed under two names (renamed or transferred, or spelt in another case), merged.

A GitHub repository that moves (``google/jax`` -> ``jax-ml/jax``) keeps its issue and discussion
numbers, and GitHub treats names case-insensitively, so an id list built at different times can
name one thread twice.  Two repositories are taken to be one when

* their names are equal ignoring case (GitHub and Hugging Face ids are case-insensitive), or
* a known rename says so (:data:`KNOWN_RENAMES`, old -> new), or
* on a platform whose thread numbers identify a thread within a long-lived repository
  (``platforms``, GitHub by default), they have the same name part (after the ``/``, ignoring case),
  threads of the same kind, and at least ``min_shared`` thread numbers in common which make up at
  least ``min_overlap`` of the smaller repository's numbers.

Hugging Face repositories are not matched by numbers: every repository's discussions start at 1,
and copies of a model (``org/model`` and ``user/model``) are different repositories.

The merged name is the known new name, else the name with more threads (ties: the first in
case-insensitive order).  :func:`merge_renamed` returns the merged frame (duplicated threads
dropped) and a :class:`RenameReport` that says how many repositories and threads were merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# old -> new, for moves the thread numbers cannot show (or that should not depend on the data).
KNOWN_RENAMES: dict[str, str] = {
    "google/jax": "jax-ml/jax",
    "openai/triton": "triton-lang/triton",
    "TimDettmers/bitsandbytes": "bitsandbytes-foundation/bitsandbytes",
    "OpenAccess-AI-Collective/axolotl": "axolotl-ai-cloud/axolotl",
    "guillaumekln/faster-whisper": "SYSTRAN/faster-whisper",
    "HazyResearch/flash-attention": "Dao-AILab/flash-attention",
    "PanQiWei/AutoGPTQ": "AutoGPTQ/AutoGPTQ",
    "leondz/garak": "NVIDIA/garak",
    "rwightman/pytorch-image-models": "huggingface/pytorch-image-models",
    "InternLM/opencompass": "open-compass/opencompass",
    "saddam213/OnnxStack": "TensorStack-AI/OnnxStack",
    "Winfredy/SadTalker": "OpenTalker/SadTalker",
    "cg123/mergekit": "arcee-ai/mergekit",
    "34j/so-vits-svc-fork": "voicepaw/so-vits-svc-fork",
}


@dataclass(frozen=True)
class Rename:
    platform: str
    kind: str
    old: str
    new: str
    shared: int  # thread numbers listed under both names
    reason: str  # "case", "known", "shared numbers"


@dataclass
class RenameReport:
    renames: list[Rename] = field(default_factory=list)
    threads_before: int = 0
    threads_after: int = 0

    @property
    def repositories_merged(self) -> int:
        return len({(r.platform, r.old) for r in self.renames})

    @property
    def threads_dropped(self) -> int:
        return self.threads_before - self.threads_after

    def as_frame(self) -> pd.DataFrame:
        import pandas as pd

        columns = ["platform", "kind", "old", "new", "shared_numbers", "reason"]
        rows = [(r.platform, r.kind, r.old, r.new, r.shared, r.reason) for r in self.renames]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        if not self.renames:
            return "no repository is listed under two names"
        return (
            f"{self.repositories_merged} repositor{'y' if self.repositories_merged == 1 else 'ies'} listed under a "
            f"second name (renamed, transferred or in another case) merged; {self.threads_dropped:,} thread(s) "
            f"listed twice dropped ({self.threads_before:,} -> {self.threads_after:,})"
        )


def _name(repo: str) -> str:
    return repo.rsplit("/", 1)[-1].casefold()


def find_renames(
    frame: pd.DataFrame,
    *,
    known: Mapping[str, str] | None = None,
    platforms: Iterable[str] = ("github",),
    min_shared: int = 1,
    min_overlap: float = 0.8,
) -> list[Rename]:
    """The renames in ``frame`` (columns ``platform, kind, repo, number``), see the module docstring."""
    known = KNOWN_RENAMES if known is None else dict(known)
    known_cf = {old.casefold(): new for old, new in known.items()}
    by_number = set(platforms)
    renames: dict[tuple[str, str], Rename] = {}
    numbers = frame.groupby(["platform", "kind", "repo"])["number"].agg(lambda s: set(int(x) for x in s))

    # 1. case variants and known renames: per platform over all kinds
    for platform, part in frame.groupby("platform", sort=True):
        repos = sorted(set(part["repo"]), key=lambda r: (r.casefold(), r))
        counts = part.groupby("repo").size()
        groups: dict[str, list[str]] = {}
        for repo in repos:
            groups.setdefault(repo.casefold(), []).append(repo)
        present: dict[str, str] = {}  # casefold -> the spelling kept
        for key, variants in groups.items():
            target = max(variants, key=lambda r: (counts[r], -variants.index(r)))
            present[key] = target
            for repo in variants:
                if repo != target:
                    renames[(str(platform), repo)] = Rename(str(platform), "*", repo, target, 0, "case")
        for old_cf, new in known_cf.items():
            if old_cf in present and present[old_cf].casefold() != new.casefold():
                old = present[old_cf]
                renames[(str(platform), old)] = Rename(str(platform), "*", old, present.get(new.casefold(), new), 0, "known")

    # 2. the same name part and the same thread numbers (GitHub)
    for (platform, kind), part in frame[frame["platform"].isin(by_number)].groupby(["platform", "kind"], sort=True):
        canonical = {r: renames[(str(platform), r)].new if (str(platform), r) in renames else r for r in set(part["repo"])}
        by_name: dict[str, set[str]] = {}
        for repo in set(canonical.values()):
            by_name.setdefault(_name(repo), set()).add(repo)
        for candidates in by_name.values():
            if len(candidates) < 2:
                continue
            merged_numbers = {c: set().union(*(numbers.get((platform, kind, r), set())
                                              for r, target in canonical.items() if target == c))
                              for c in candidates}
            ordered = sorted(candidates, key=lambda r: (-len(merged_numbers[r]), r.casefold(), r))
            target = ordered[0]
            for other in ordered[1:]:
                shared = len(merged_numbers[target] & merged_numbers[other])
                smaller = min(len(merged_numbers[target]), len(merged_numbers[other]))
                if shared >= min_shared and smaller and shared / smaller >= min_overlap:
                    renames[(str(platform), other)] = Rename(str(platform), str(kind), other, target, shared,
                                                             "shared numbers")
    # shared counts for case/known merges, for the report
    out = []
    for (platform, repo), rename in sorted(renames.items()):
        if rename.reason != "shared numbers":
            old_numbers = set().union(*(v for (p, _, r), v in numbers.items() if p == platform and r == repo))
            new_numbers = set().union(*(v for (p, _, r), v in numbers.items() if p == platform and r == rename.new))
            rename = Rename(rename.platform, rename.kind, rename.old, rename.new, len(old_numbers & new_numbers),
                            rename.reason)
        out.append(rename)
    return _resolve_chains(out)


def _resolve_chains(renames: list[Rename]) -> list[Rename]:
    """Point every old name at the final new name (a -> b -> c becomes a -> c, b -> c)."""
    target = {(r.platform, r.old): r.new for r in renames}
    resolved = []
    for r in renames:
        new, seen = r.new, {r.old}
        while (r.platform, new) in target and new not in seen:
            seen.add(new)
            new = target[(r.platform, new)]
        resolved.append(Rename(r.platform, r.kind, r.old, new, r.shared, r.reason))
    return resolved


def candidate_repositories(
    frame: pd.DataFrame, *, known: Mapping[str, str] | None = None
) -> set[tuple[str, str]]:
    """The ``(platform, repo)`` pairs of ``frame`` (columns ``platform, repo``; one row per thread
    or per repository) that :func:`find_renames` could merge: every rename joins repositories of
    the same name part (after the ``/``, ignoring case) or a known rename's old or new name part.
    :func:`merge_renamed` over the threads of these repositories finds the same renames as over
    all threads, so a caller can keep only their threads and count the others in aggregate."""
    known = KNOWN_RENAMES if known is None else dict(known)
    known_parts = {_name(name) for pair in known.items() for name in pair}
    out: set[tuple[str, str]] = set()
    pairs = frame[["platform", "repo"]].drop_duplicates()
    for platform, part in pairs.groupby("platform", sort=True):
        by_name: dict[str, set[str]] = {}
        for repo in part["repo"]:
            by_name.setdefault(_name(str(repo)), set()).add(str(repo))
        for name, repos in by_name.items():
            if len(repos) > 1 or name in known_parts:
                out.update((str(platform), repo) for repo in repos)
    return out


def merge_renamed(
    frame: pd.DataFrame,
    *,
    known: Mapping[str, str] | None = None,
    platforms: Iterable[str] = ("github",),
    min_shared: int = 1,
    min_overlap: float = 0.8,
    id_column: str | None = None,
) -> tuple[pd.DataFrame, RenameReport]:
    """``frame`` with each repository under its merged name and threads listed twice dropped (the
    first kept, in frame order).  With ``id_column``, that column is rebuilt from the merged names
    with :func:`secmine.schema.thread_id`."""
    from secmine.schema import thread_id

    for column in ("platform", "kind", "repo", "number"):
        if column not in frame.columns:
            raise ValueError(f"merge_renamed: missing column {column!r} (found {list(frame.columns)})")
    renames = find_renames(frame, known=known, platforms=platforms, min_shared=min_shared, min_overlap=min_overlap)
    mapping = {(r.platform, r.old): r.new for r in renames}
    merged = frame.copy()
    merged["repo"] = [mapping.get((p, r), r) for p, r in zip(merged["platform"], merged["repo"])]
    before = len(merged)
    merged = merged.drop_duplicates(["platform", "kind", "repo", "number"], keep="first").reset_index(drop=True)
    if id_column is not None:
        merged[id_column] = [thread_id(p, k, r, int(n)) for p, k, r, n in
                             zip(merged["platform"], merged["kind"], merged["repo"], merged["number"])]
    return merged, RenameReport(renames=renames, threads_before=before, threads_after=len(merged))


__all__ = ["KNOWN_RENAMES", "Rename", "RenameReport", "candidate_repositories", "find_renames", "merge_renamed"]
