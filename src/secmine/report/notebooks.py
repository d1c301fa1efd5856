"""Executed notebooks that are the same bytes on every run, and their HTML without a CDN.

:func:`normalise_notebook` rewrites a papermill-executed notebook in place so two runs of the same
inputs give the same file: it removes execution timestamps and durations (papermill's and
nbclient's cell and notebook metadata), the kernel's widget state, progress output (``stderr``
streams, which is where tqdm and warnings write, widget-view outputs, carriage-return redraws left
in ``stdout``, and tqdm bars displayed as plain text), object addresses (``at 0x7f...``) and
absolute paths (the project root and the external data folder become relative); execution counts
are renumbered 1, 2, ... in cell order, and consecutive ``stdout`` streams are merged into one
output (how the kernel splits a cell's printing into messages depends on timing).  Durations
printed to ``stdout`` are masked with ``…`` (:data:`DURATION_PATTERNS`): the seconds that close a
parenthesis (``(10 trial(s), 34 s)``, ``fold 1/3 done (7 s)``) or follow "in" (``0.496 in 19 s``),
and the run times and rates that ``transformers.Trainer`` prints (``'train_runtime': '329.6'``).
Any other printed duration or rate still differs between runs, so notebooks must not print one.

:func:`export_html` writes the notebook as one self-contained HTML file (nbconvert's ``lab``
template, images inline) with every script and stylesheet the template would fetch from a CDN
(require.js, MathJax, mermaid) left out, so it opens from disk without a network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NOTEBOOK_TIMING_KEYS = ("start_time", "end_time", "duration")
CELL_METADATA_DROP = ("execution", "ExecuteTime")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")
#: a tqdm bar as text (``Loading weights:  40%|####      | 41/103 [00:01<00:02, 30.1it/s]``)
PROGRESS_BAR_RE = re.compile(r"\d+%\|[^|\n]*\|\s*[\d.]+[kMG]?/\S+\s*\[")
#: Durations that differ from run to run, masked in stdout: ``(pattern, replacement)``.
DURATION_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # seconds closing a parenthesis, after "(" or ", ": "(10 trial(s), 34 s)", "done (7 s)"
    (re.compile(r"(?:(?<=\()|(?<=, ))\d+(?:\.\d+)? s\)"), "… s)"),
    # a run time after "in": "tfidf_logreg 0.496 in 19 s, embed_logreg 0.520 in 58 s"
    (re.compile(r"(?<= in )\d+(?:\.\d+)? s\b"), "… s"),
    # transformers.Trainer's log dict: run times and throughputs of train/eval/test/predict
    (re.compile(r"('(?:train|eval|test|predict)_(?:runtime|samples_per_second|steps_per_second)': )'?[0-9.]+'?"),
     r"\1'…'"),
)
_EXTERNAL_SCRIPT_RE = re.compile(r"<script\b[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>\s*", re.IGNORECASE)
_CDN_INLINE_SCRIPT_RE = re.compile(
    r"<script\b[^>]*>(?:(?!</script>).)*?https?://cdn[^\"'\s]*(?:(?!</script>).)*?</script>\s*", re.IGNORECASE | re.DOTALL
)
_EXTERNAL_LINK_RE = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>\s*", re.IGNORECASE)
# what would load something from the network when the page opens (a plain <a href> link does not):
# src of scripts, images, frames and media, <link href>, CSS @import and url(), ES module imports
NETWORK_LOAD_RE = re.compile(
    r"(?:<(?:script|img|iframe|source|video|audio|embed|input)\b[^>]*\bsrc\s*=\s*[\"']?https?://"
    r"|<link\b[^>]*\bhref\s*=\s*[\"']?https?://|@import\s+(?:url\()?[\"']?https?://|\burl\(\s*[\"']?https?://"
    r"|\bimport\s*\(?\s*[\"']https?://|\bfrom\s+[\"']https?://)",
    re.IGNORECASE,
)


class NotebookError(ValueError):
    """A notebook cannot be read or written; the message names the file."""


def default_roots() -> list[Path]:
    """The folders whose absolute paths are made relative: the project root and the external data."""
    from secmine import config

    roots = [config.PROJECT_ROOT, config.external_source_dir(), config.external_source_dir().parent]
    return sorted({Path(r).resolve() for r in roots}, key=lambda p: len(str(p)), reverse=True)


def _relative(text: str, roots: Iterable[Path]) -> str:
    for root in roots:
        text = text.replace(str(root) + os.sep, "").replace(str(root), ".")
    return _ADDRESS_RE.sub("", text)


def _mask_durations(text: str) -> str:
    for pattern, replacement in DURATION_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _collapse_carriage_returns(text: str) -> str:
    """What a terminal shows: in each line, only what follows the last ``\\r``."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _is_progress_display(data: dict[str, Any]) -> bool:
    """Whether a display's only content is a progress bar as plain text (what tqdm shows without
    widgets): its last state depends on timing."""
    if set(data) != {"text/plain"}:
        return False
    text = data["text/plain"]
    text = "".join(text) if isinstance(text, list) else str(text)
    return bool(PROGRESS_BAR_RE.search(text))


def _clean_text(value: Any, roots: list[Path]) -> Any:
    if isinstance(value, list):
        return [_clean_text(v, roots) for v in value]
    if isinstance(value, str):
        return _relative(value, roots)
    return value


def normalise_node(nb: Any, *, roots: Iterable[Path] | None = None) -> Any:
    """:func:`normalise_notebook` on an ``nbformat`` node (changed in place and returned)."""
    roots = list(roots) if roots is not None else default_roots()
    metadata = nb.setdefault("metadata", {})
    metadata.pop("widgets", None)
    papermill = metadata.get("papermill")
    if isinstance(papermill, dict):
        for key in NOTEBOOK_TIMING_KEYS:
            papermill.pop(key, None)
        for key in ("input_path", "output_path"):
            if isinstance(papermill.get(key), str):
                papermill[key] = _relative(papermill[key], roots)
        papermill.pop("environment_variables", None)
        if isinstance(papermill.get("parameters"), dict):
            papermill["parameters"] = {k: _clean_text(v, roots) for k, v in papermill["parameters"].items()}
    count = 0
    for cell in nb.get("cells", []):
        cell_meta = cell.get("metadata", {})
        if "injected-parameters" in cell_meta.get("tags", []) and "id" in cell:
            cell["id"] = "injected-parameters"  # papermill gives the cell it adds a random id
        for key in CELL_METADATA_DROP:
            cell_meta.pop(key, None)
        if isinstance(cell_meta.get("papermill"), dict):
            for key in (*NOTEBOOK_TIMING_KEYS, "exception"):
                cell_meta["papermill"].pop(key, None)
            if not cell_meta["papermill"] or set(cell_meta["papermill"]) <= {"status"}:
                cell_meta.pop("papermill", None)
        if cell.get("cell_type") != "code":
            continue
        executed = cell.get("execution_count") is not None or bool(cell.get("outputs"))
        if executed:
            count += 1
            cell["execution_count"] = count
        outputs = []
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                if output.get("name") == "stderr":
                    continue
                text = "".join(output["text"]) if isinstance(output.get("text"), list) else output.get("text", "")
                text = _mask_durations(_relative(_collapse_carriage_returns(text), roots))
                if not text.strip():
                    continue
                output["text"] = text
                previous = outputs[-1] if outputs else None
                if previous is not None and previous.get("output_type") == "stream" and previous.get("name") == "stdout":
                    previous["text"] = previous["text"] + text
                    continue
            elif kind in ("display_data", "execute_result"):
                data = output.get("data", {})
                data.pop(WIDGET_VIEW, None)
                if not data or (kind == "display_data" and _is_progress_display(data)):
                    continue
                for mime in list(data):
                    if mime.startswith("text/") or mime in ("application/json",):
                        data[mime] = _clean_text(data[mime], roots)
                output.get("metadata", {}).pop("transient", None)
                if kind == "execute_result":
                    output["execution_count"] = count
            elif kind == "error":
                output["traceback"] = [_relative(line, roots) for line in output.get("traceback", [])]
            outputs.append(output)
        cell["outputs"] = outputs
    return nb


def normalise_notebook(path: str | os.PathLike[str], *, roots: Iterable[Path] | None = None) -> Path:
    """Rewrite the executed notebook at ``path`` so that reruns give the same bytes (see the module
    docstring); returns the path."""
    import nbformat

    from secmine.io import write_text

    target = Path(path)
    try:
        nb = nbformat.read(target, as_version=4)
    except (OSError, ValueError) as exc:
        raise NotebookError(f"{target}: not a readable notebook ({exc}); rerun its stage") from None
    normalise_node(nb, roots=roots)
    write_text(target, nbformat.writes(nb) + "\n")
    return target


def strip_network_loads(html: str) -> str:
    """``html`` without the ``<script src=http...>``, ``<link href=http...>`` and inline scripts that
    load from a CDN (nbconvert's require.js, MathJax and mermaid loaders)."""
    html = _EXTERNAL_SCRIPT_RE.sub("", html)
    html = _CDN_INLINE_SCRIPT_RE.sub("", html)
    return _EXTERNAL_LINK_RE.sub("", html)


def export_html(
    notebook: str | os.PathLike[str],
    html_path: str | os.PathLike[str],
    *,
    exclude_input: bool = False,
) -> Path:
    """The notebook as one HTML file that needs no network (see the module docstring)."""
    import nbformat
    from nbconvert import HTMLExporter

    from secmine.io import write_text

    source = Path(notebook)
    try:
        nb = nbformat.read(source, as_version=4)
    except (OSError, ValueError) as exc:
        raise NotebookError(f"{source}: not a readable notebook ({exc})") from None
    exporter = HTMLExporter(template_name="lab", embed_images=True, exclude_input=exclude_input)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": source.stem}})
    body = strip_network_loads(body)
    left = NETWORK_LOAD_RE.findall(body)
    if left:  # pragma: no cover - a new nbconvert template
        raise NotebookError(f"{source}: the HTML export still loads from the network ({left[:3]}); update strip_network_loads")
    return write_text(html_path, body)


def main(argv: list[str] | None = None) -> int:
    """``python -m secmine.report.notebooks NOTEBOOK... [--html DIR]``: normalise each executed
    notebook in place (and export it to ``DIR/<name>.html``); for a stage's command after papermill."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m secmine.report.notebooks", description=main.__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--html", type=Path, default=None, help="also export each to this folder as HTML")
    args = parser.parse_args(argv)
    try:
        for path in args.notebooks:
            normalise_notebook(path)
            if args.html is not None:
                export_html(path, args.html / f"{path.stem}.html")
    except NotebookError as exc:
        print(f"error: {exc}")
        return 1
    return 0


__all__ = [
    "NETWORK_LOAD_RE",
    "NotebookError",
    "export_html",
    "main",
    "normalise_node",
    "normalise_notebook",
    "strip_network_loads",
]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
