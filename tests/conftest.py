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


# -- a tiny hand-made replication package (same layout as ai_sec_dev) --------------------------

TINY_ISSUE_CODES = [
    ("Outdated third-party dependency/package contains vulnerabilities", "Security of Dependencies Concerns", "External Tools & Ecosystem Security Concerns"),
    ("Improper authentication and authorization", "External Service Usage Security Concerns", "External Tools & Ecosystem Security Concerns"),
    ("System/Software unsafe deserialization", "Code Execution Security Concerns", "System & Software Security Concerns"),
    ("Harmful/Undesired model output", "Model Output and Content Control Concerns", "Model Security Concerns"),
    ("Data leakages during model training/inference/usage", "Data Exposure Concerns", "Data Security Concerns"),
]
TINY_SOLUTION_CODES = [
    ("Dependency Version Upgrade", "Dependency & Supply Chain Security", "External Tools & Ecosystem Security Solutions"),
    ("Secure File Format Adoption", "Secure Coding & Execution", "System & Software Security Solutions"),
    ("Content Safety Filters", "Model Security Solutions", "Model Security Solutions"),
]


def make_tiny_replication(root: Path) -> Path:
    """Write a small replication package under ``root/ai_sec_dev`` and return that folder."""
    import pandas as pd

    rep = root / "ai_sec_dev"
    (rep / "theme").mkdir(parents=True, exist_ok=True)
    (rep / "classifier" / "manual").mkdir(parents=True, exist_ok=True)
    (rep / "classifier" / "test").mkdir(parents=True, exist_ok=True)
    (rep / "classifier" / "inference" / "distilbert").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [(c, s, t, "Issue") for c, s, t in TINY_ISSUE_CODES], columns=["Code", "Sub-theme", "Theme", "Type"]
    ).to_csv(rep / "theme" / "issue_theme_summary.csv", index=False)
    pd.DataFrame(
        [(c, s, t, "Solution") for c, s, t in TINY_SOLUTION_CODES], columns=["Code", "Sub-theme", "Theme", "Type"]
    ).to_csv(rep / "theme" / "solution_theme_summary.csv", index=False)
    posts = pd.DataFrame(
        {
            "Data source": ["HF Discussion", "GH Issue", "GH Discussion", "HF Discussion"],
            "Repo Name": ["org/model-a", "org/lib", "org/lib", "org/model-b"],
            "Num": [1, 10, 3, 2],
            "Text": [
                r"Pickle weights\nPlease use safetensors",
                r"Bump requests\n\nCVE-2023-32681 in requests",
                "Token leaks in logs",
                "The model says harmful things",
            ],
        }
    )
    with pd.ExcelWriter(rep / "theme" / "data.xlsx") as writer:
        posts.to_excel(writer, sheet_name="data", index=False)
    pd.DataFrame(
        {
            "source": ["HF Discussion", "GH Issue", "GH Discussion", "HF Discussion"],
            "id": ["org/model-a-1", "org/lib-10", "org/lib-3", "org/model-b-2"],
            "issue": [
                "system/software unsafe deserialization",
                "Outdated third-party dependency/package contains vulnerabilities, outdated  third-party dependency / package contains vulnerabilities",
                "Improper authentication and authorization, Data leakages during model training/inference/usage",
                "Harmful/Undesired model output",
            ],
            "solution": ["Secure File Format Adoption", "Dependency Version Upgrade, ", "", ""],
        }
    ).to_csv(rep / "theme" / "mapped.csv", index=False)
    with pd.ExcelWriter(rep / "theme" / "keypoints_codes.xlsx") as writer:
        pd.DataFrame(
            {"ID": ["org/model-a-1"], "Key points": [r"1. pickle\n2. safetensors"], "Issues": ["x"], "Solutions": ["y"]}
        ).to_excel(writer, index=False)
    pd.DataFrame(
        {"name": ["org/lib", "org/model-a"], "id": [10, 1], "type": ["GH_ISSUES", "HF_DISCUSSIONS"], "is_security": [1, 0]}
    ).to_csv(rep / "classifier" / "manual" / "all.csv", index=False)
    pd.DataFrame(
        {"id_name": ["org/lib"], "id_num": [3], "type": ["GH_DISCUSSIONS"], "is_security": [1]}
    ).to_csv(rep / "classifier" / "test" / "test.csv", index=False)
    with pd.ExcelWriter(rep / "classifier" / "inference" / "distilbert" / "hf_disc_security_only.xlsx") as writer:
        pd.DataFrame({"model_id": ["org/model-a", "org/model-b"], "num": [1, 2]}).to_excel(writer, index=False)
    return rep


@pytest.fixture()
def tiny_replication(tmp_path: Path) -> Path:
    """A small hand-made replication package (``.../ai_sec_dev``) in a temporary folder."""
    return make_tiny_replication(tmp_path / "external")
