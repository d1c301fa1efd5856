"""Bot filtering and de-duplication of threads.

A login is a bot when it ends in ``[bot]`` (GitHub Apps) or is on a list of known bot accounts
(case-insensitive; an entry ``name`` also matches ``name[bot]``).  Threads opened by a bot are
dropped, and bot comments are removed from the threads that stay.

The paper removed 37 bot accounts but does not publish their names.  :data:`DEFAULT_BOTS` is this
project's list of common dependency, CI, review and assistant bots that post under ordinary
accounts on GitHub and Hugging Face; extend it with ``collect.extra_bots`` (comma-separated) or a
file of one login a line (``collect.bots_file``) in ``params.yaml``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from secmine.schema import Thread

BOT_SUFFIX = "[bot]"

DEFAULT_BOTS: tuple[str, ...] = (
    # dependency and security updates
    "dependabot",
    "dependabot-preview",
    "renovate",
    "renovate-bot",
    "greenkeeperio-bot",
    "snyk-bot",
    "pyup-bot",
    "whitesource-bolt-for-github",
    "mend-bolt-for-github",
    "socket-security",
    # CI, coverage, quality
    "github-actions",
    "codecov",
    "codecov-io",
    "codecov-commenter",
    "coveralls",
    "sonarcloud",
    "lgtm-com",
    "deepsource-autofix",
    "pre-commit-ci",
    "azure-pipelines",
    "netlify",
    "vercel",
    "gitguardian",
    # repository housekeeping
    "stale",
    "allcontributors",
    "mergify",
    "imgbot",
    "welcome",
    "changeset-bot",
    "CLAassistant",
    "googlebot",
    "google-cla",
    "facebook-github-bot",
    "copybara-service",
    "k8s-ci-robot",
    "pytorchbot",
    "pytorch-bot",
    "tensorflow-bot",
    "tensorflower-gardener",
    "HuggingFaceDocBuilderDev",
    "HuggingFaceDocBuilder",
    # issue and review assistants
    "dosubot",
    "linear",
    "sweep-ai",
    "sourcery-ai",
    "coderabbitai",
    "ellipsis-dev",
    "devin-ai-integration",
    "copilot-pull-request-reviewer",
    "sentry-io",
    # Hugging Face Hub bots
    "SFconvertbot",
    "librarian-bot",
    "leaderboard-pr-bot",
    "model-sizer-bot",
)


def load_bot_list(path: str | os.PathLike[str]) -> list[str]:
    """Logins from a text file, one a line; blank lines and ``#`` comments are skipped."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: bot list not found")
    names = []
    for line in file.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def split_names(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


@dataclass
class FilterStats:
    threads_in: int = 0
    threads_dropped: int = 0
    comments_dropped: int = 0
    duplicates_dropped: int = 0
    by_login: dict[str, int] = field(default_factory=dict)


@dataclass
class BotFilter:
    """Decides which logins are bots and strips them from threads."""

    names: frozenset[str] = field(default_factory=lambda: frozenset(n.casefold() for n in DEFAULT_BOTS))
    stats: FilterStats = field(default_factory=FilterStats)

    @classmethod
    def from_params(
        cls,
        *,
        extra: str | Iterable[str] | None = None,
        bots_file: str | os.PathLike[str] | None = None,
        defaults: bool = True,
    ) -> BotFilter:
        names = list(DEFAULT_BOTS) if defaults else []
        names += split_names(extra)
        if bots_file:
            names += load_bot_list(bots_file)
        return cls(names=frozenset(n.casefold() for n in names))

    def is_bot(self, login: str | None) -> bool:
        if not login:
            return False
        folded = login.strip().casefold()
        if folded.endswith(BOT_SUFFIX):
            return True
        return folded in self.names

    def _count(self, login: str | None) -> None:
        key = (login or "").strip()
        self.stats.by_login[key] = self.stats.by_login.get(key, 0) + 1

    def clean(self, thread: Thread) -> Thread | None:
        """The thread without bot comments, or None when a bot opened it."""
        self.stats.threads_in += 1
        if self.is_bot(thread.author):
            self.stats.threads_dropped += 1
            self._count(thread.author)
            return None
        kept = []
        for comment in thread.comments:
            if self.is_bot(comment.author):
                self.stats.comments_dropped += 1
                self._count(comment.author)
            else:
                kept.append(comment)
        if len(kept) == len(thread.comments):
            return thread
        return replace(thread, comments=tuple(kept))

    def clean_record(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """:meth:`clean` for a thread record (:meth:`Thread.to_record`, a corpus row): the record
        without bot comments, or None when a bot opened the thread; counts as :meth:`clean` does."""
        self.stats.threads_in += 1
        if self.is_bot(record.get("author")):
            self.stats.threads_dropped += 1
            self._count(record.get("author"))
            return None
        comments = record.get("comments") or []
        kept = []
        for comment in comments:
            author = comment.get("author")
            if self.is_bot(author):
                self.stats.comments_dropped += 1
                self._count(author)
            else:
                kept.append(comment)
        if len(kept) == len(comments):
            return record
        return {**record, "comments": kept}

    def filter(self, threads: Iterable[Thread]) -> Iterator[Thread]:
        for thread in threads:
            cleaned = self.clean(thread)
            if cleaned is not None:
                yield cleaned


def dedupe(
    threads: Iterable[Thread],
    *,
    source_priority: Iterable[str] = (),
    stats: FilterStats | None = None,
) -> list[Thread]:
    """One thread per id.

    Among copies of one id the winner is, in order: the source named earliest in
    ``source_priority`` (a prefix of :attr:`Thread.source`, e.g. ``"live"`` before ``"snapshot"``),
    the latest ``updated_at``, then the copy seen last (a later run's copy of a thread replaces an
    earlier one).  The result keeps first-seen order.
    """
    priority = list(source_priority)

    def rank(thread: Thread, position: int) -> tuple:
        source_rank = next((i for i, p in enumerate(priority) if thread.source.startswith(p)), len(priority))
        return (-source_rank, thread.updated_at or "", position)

    best: dict[str, tuple[tuple, Thread]] = {}
    order: list[str] = []
    dropped = 0
    for position, thread in enumerate(threads):
        key = thread.id
        candidate = (rank(thread, position), thread)
        if key not in best:
            best[key] = candidate
            order.append(key)
            continue
        dropped += 1
        if candidate[0] > best[key][0]:
            best[key] = candidate
    if stats is not None:
        stats.duplicates_dropped += dropped
    return [best[key][1] for key in order]
