"""Render the report page in headless Chromium (Debian's ``chromium`` package) and check its DOM.

:func:`render` loads the page from disk with no network (``--dump-dom`` after the page's scripts
ran, and a screenshot); :func:`check_dom` reads the rendered DOM: the page's self-check element
(``#selfcheck``, filled by the page's own script once every image has loaded and every sortable
table is initialised), the paper's figures and the sections present, and every link resolving --
a relative link to a file beside the page, an in-page link to an element id, an external link to
a well-formed ``http(s)`` address (not fetched: the check runs offline).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM_NAMES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PAPER_FIGURES: tuple[str, ...] = ("fig-fig1-funnel", "fig-fig2-trend", "fig-fig3-heatmap", "fig-fig3-heatmap-plain")
SECTIONS: tuple[str, ...] = ("headline", "figures", "scorecard", "rq1", "rq2-rq3", "classifier", "examples", "notebooks",
                             "provenance")


class BrowserError(RuntimeError):
    """Chromium is missing or failed; the message says how to install it or what it printed."""


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable on ``PATH``, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _command(executable: str, *extra: str) -> list[str]:
    args = [executable, "--headless=new", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--virtual-time-budget=20000"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    return [*args, *extra]


@dataclass
class Rendered:
    dom: str
    screenshot: Path | None


def render(
    page: str | os.PathLike[str],
    *,
    screenshot: str | os.PathLike[str] | None = None,
    window: tuple[int, int] = (1400, 2600),
    timeout_s: int = 120,
    executable: str | None = None,
) -> Rendered:
    """The page's DOM after its scripts ran, and (given a path) a PNG screenshot of the window."""
    chromium = executable or find_chromium()
    if chromium is None:
        raise BrowserError("no Chromium on PATH: install Debian's package (apt-get install -y chromium)")
    url = Path(page).resolve().as_uri()
    try:
        dom = subprocess.run(_command(chromium, "--dump-dom", url), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BrowserError(f"chromium did not finish rendering {page} within {timeout_s} s") from None
    if dom.returncode != 0 or "<html" not in dom.stdout:
        raise BrowserError(f"chromium failed on {page} (exit {dom.returncode}): {dom.stderr.strip()[-400:]}")
    shot = None
    if screenshot is not None:
        shot = Path(screenshot)
        shot.parent.mkdir(parents=True, exist_ok=True)
        try:
            run = subprocess.run(_command(chromium, f"--screenshot={shot}", f"--window-size={window[0]},{window[1]}", url),
                                 capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"chromium did not finish the screenshot of {page} within {timeout_s} s") from None
        if run.returncode != 0 or not shot.is_file():
            raise BrowserError(f"chromium took no screenshot of {page} (exit {run.returncode}): {run.stderr.strip()[-400:]}")
    return Rendered(dom=dom.stdout, screenshot=shot)


def check_dom(dom: str, page: str | os.PathLike[str], *, min_tables: int = 1,
              figures: tuple[str, ...] = PAPER_FIGURES, sections: tuple[str, ...] = SECTIONS) -> list[str]:
    """Every problem found in the rendered ``dom`` of ``page`` (an empty list: the page is whole)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(dom, "html.parser")
    problems: list[str] = []
    check = soup.find(id="selfcheck")
    if check is None or check.get("data-done") != "1":
        problems.append("the page's self-check did not finish (scripts did not run?)")
    else:
        if check.get("data-broken"):
            problems.append(f"images that did not load: {check.get('data-broken')}")
        wanted, ready = int(check.get("data-tables", "0")), int(check.get("data-sortable-ready", "0"))
        if ready < wanted:
            problems.append(f"{wanted - ready} of {wanted} sortable tables were not initialised")
        if wanted < min_tables:
            problems.append(f"{wanted} sortable tables, expected at least {min_tables}")
    all_ids = [tag.get("id") for tag in soup.find_all(id=True)]
    ids = set(all_ids)
    repeated = sorted({i for i in all_ids if all_ids.count(i) > 1})
    if repeated:
        problems.append(f"ids used more than once: {repeated[:5]}")
    for table in soup.find_all("table", attrs={"data-sortable": True}):
        if table.has_attr("hidden"):
            problems.append(f"sortable table {table.get('id')!r} is still hidden")
    for fig in figures:
        tag = soup.find(id=fig)
        if tag is None or tag.find("img") is None:
            problems.append(f"figure {fig!r} missing")
    for section in sections:
        if section not in ids:
            problems.append(f"section {section!r} missing")
    base = Path(page).resolve().parent
    for tag in soup.find_all(["a", "img", "link", "script"]):
        target = tag.get("href") or tag.get("src")
        if not target or target.startswith(("data:", "blob:", "javascript:")):
            continue
        parsed = urlparse(target)
        if parsed.scheme in ("http", "https"):
            if tag.name != "a":
                problems.append(f"<{tag.name}> loads from the network: {target}")
            elif not parsed.netloc:
                problems.append(f"malformed external link: {target}")
            continue
        if parsed.scheme and parsed.scheme != "file":
            problems.append(f"unexpected link scheme: {target}")
            continue
        if not parsed.path:
            if parsed.fragment and parsed.fragment not in ids:
                problems.append(f"in-page link to a missing id: {target}")
            continue
        if not (base / unquote(parsed.path)).exists():
            problems.append(f"link to a missing file: {target}")
    return problems


__all__ = ["BrowserError", "PAPER_FIGURES", "Rendered", "SECTIONS", "check_dom", "find_chromium", "render"]
