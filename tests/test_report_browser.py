"""The report page in a real browser: headless Chromium from Debian's packages renders it from disk.

Fails, never skips, when CI=true (CI installs the ``chromium`` package: see .ci/run and the Makefile's
``test`` target).  The screenshot is kept under build/test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_report import build_site

from secmine import config
from secmine.report import browser

ARTIFACTS = config.PROJECT_ROOT / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = browser.find_chromium()
    if found is None:
        message = "Chromium not installed: apt-get install -y chromium (Debian's package)"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, result = build_site(tmp_path_factory.mktemp("browser"))  # all three paper figures, a notebook
    return result.page


def test_every_figure_table_and_link_is_there_in_chromium(chromium: str, page: Path) -> None:
    rendered = browser.render(page, screenshot=ARTIFACTS / "report.png", executable=chromium)
    problems = browser.check_dom(rendered.dom, page, min_tables=8)
    assert problems == []
    assert rendered.screenshot is not None and rendered.screenshot.stat().st_size > 50_000


def test_the_check_finds_a_broken_image_and_link(chromium: str, page: Path, tmp_path: Path) -> None:
    broken = page.with_name("broken.html")
    text = page.read_text()
    text = text.replace('src="figures/paper/fig1_funnel.png"', 'src="figures/paper/missing.png"', 1)
    text = text.replace('href="#scorecard"', 'href="#no-such-section"', 1)
    broken.write_text(text)
    problems = browser.check_dom(browser.render(broken, executable=chromium).dom, broken)
    assert any("missing.png" in p and "did not load" in p for p in problems)
    assert any("figures/paper/missing.png" in p and "missing file" in p for p in problems)
    assert any("#no-such-section" in p for p in problems)
