"""The stage tables of README.md and CONTRIBUTING.md are the ones tools/docs.py writes from the modules."""

from __future__ import annotations

import subprocess
import sys

from secmine import config


def test_stage_tables_are_current() -> None:
    result = subprocess.run([sys.executable, "tools/docs.py", "--check"], cwd=config.PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_names_every_stage_command() -> None:
    from secmine.stages import STAGES

    readme = (config.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"| `{stage}` |" in readme for stage in STAGES)
