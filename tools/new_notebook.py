"""Write a thin stage notebook from a small Python description (developer tool).

Usage: python tools/new_notebook.py OUT.ipynb SPEC.py, where SPEC.py defines CELLS, a list of
("markdown" | "code" | "parameters", source) pairs.  The notebook is written without outputs.
"""

from __future__ import annotations

import runpy
import sys

import nbformat


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (secmine)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, source) in enumerate(cells):
        source = source.strip("\n")
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell["id"] = f"cell-{index:02d}"
        nb.cells.append(cell)
    return nb


if __name__ == "__main__":
    out, spec = sys.argv[1], sys.argv[2]
    nbformat.write(build(runpy.run_path(spec)["CELLS"]), out)
