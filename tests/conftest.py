"""Shared fixtures.  Tests run offline: HF_HUB_OFFLINE=1 is set before anything imports the hub."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from secmine import config  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def external_root() -> Path:
    """The folder holding ``ai_sec_dev/`` and ``ai_issues/`` (``$SECMINE_EXTERNAL_DIR`` or ../shared).

    Missing data skips the test on a developer's machine, but fails it when ``CI=true``: CI always
    has ../shared, so a skip there would hide a broken test.
    """
    root = config.external_source_dir()
    if not (root / "ai_sec_dev").is_dir():
        message = f"external data not found at {root} (set SECMINE_EXTERNAL_DIR or place ../shared)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def replication_root(external_root: Path) -> Path:
    return external_root / "ai_sec_dev"


@pytest.fixture(scope="session")
def snapshot_file(external_root: Path) -> Path:
    path = external_root / "ai_issues" / "issues.jsonl.gz"
    if not path.is_file():
        if _in_ci():
            pytest.fail(f"snapshot not found at {path}")
        pytest.skip(f"snapshot not found at {path}")
    return path
