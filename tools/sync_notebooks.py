"""Rewrite each stage notebook's parameters cell from its stage module (developer tool).

Usage: python tools/sync_notebooks.py [--check]

The cell tagged ``parameters`` lists the stage's ``Params`` fields with their defaults (the values of
params.yaml; a shared block's keys as ``<block>_<key>``) and its ``Paths`` fields as ``None`` (dvc.yaml passes them; an interactive run reads the
declared inputs and writes under scratch/<stage>/).  ``--check`` exits 1 when a notebook differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from secmine.stages import STAGES, module_name, stage_module  # noqa: E402


def parameters_source(stage: str) -> str:
    module = stage_module(stage)
    lines = [f"# Parameters: the `{stage}` block of params.yaml (dvc.yaml passes each one; these are its values)."]
    for name, value in module.Params.defaults().items():
        lines.append(f"{name} = {value!r}")
    for block, kind in module.Params.shared_blocks().items():
        lines.append(f"# The shared `{block}` block of params.yaml, each key as {block}_<key>.")
        for name, value in kind.defaults().items():
            lines.append(f"{block}_{name} = {value!r}")
    lines.append("# Paths: dvc.yaml passes every one. Left at None (running this notebook yourself), the inputs")
    lines.append(f"# are those dvc.yaml declares and the outputs go to scratch/{stage}/, never over tracked results.")
    for name in module.Paths.field_names():
        lines.append(f"{name} = None")
    return "\n".join(lines)


def sync(stage: str, *, check: bool) -> bool:
    path = ROOT / "notebooks" / f"{module_name(stage)}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise SystemExit(f"{path}: needs exactly one cell tagged 'parameters'")
    wanted = parameters_source(stage)
    if cells[0].source == wanted:
        return True
    if not check:
        cells[0].source = wanted
        nbformat.write(nb, path)
        print(f"updated {path.relative_to(ROOT)}")
    return False


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = [stage for stage in STAGES if not sync(stage, check=check)]
    if check and stale:
        print("parameters cells differ from the stage modules: " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
