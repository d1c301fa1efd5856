"""Write the stage table of README.md and CONTRIBUTING.md from the stage modules (developer tool).

Usage: python tools/docs.py [--check]

The table sits between ``<!-- stages:begin -->`` and ``<!-- stages:end -->`` in each file: for every
stage, in pipeline order, its module, notebook, params block and the outputs dvc.yaml declares (as DVC
renders them), so the documentation names exactly the files the pipeline writes.  ``--check`` exits 1
when a file differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from secmine.stages import STAGES, module_name, stage_module  # noqa: E402
from secmine.stages.contract import ROLE_CACHE, ROLE_OUTPUT  # noqa: E402

BEGIN, END = "<!-- stages:begin -->", "<!-- stages:end -->"
FILES = ("README.md", "CONTRIBUTING.md")


def _compact(paths: list[Path]) -> str:
    """Output paths, files of one folder written once as ``folder/{a, b}``."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(path.parent.as_posix(), []).append(path.name)
    shown = []
    for folder, names in groups.items():
        if len(names) == 1:
            shown.append(f"`{folder}/{names[0]}`")
        else:
            stems: dict[str, list[str]] = {}
            for name in names:
                stem, _, suffix = name.partition(".")
                stems.setdefault(stem, []).append(suffix)
            parts = [f"{stem}.{{{','.join(sfx)}}}" if len(sfx) > 1 else f"{stem}.{sfx[0]}" for stem, sfx in stems.items()]
            shown.append(f"`{folder}/` ({', '.join(parts)})")
    return "; ".join(shown)


def table() -> str:
    rows = ["| stage | what it does | module | notebook | params | outputs (dvc.yaml) |", "| --- | --- | --- | --- | --- | --- |"]
    for stage in STAGES:
        module = stage_module(stage)
        summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        summary = summary.split(": ", 1)[1] if summary.startswith("Stage ``") else summary
        summary = summary.replace("``", "`")
        paths = module.Paths.declared()
        outputs = _compact(paths.tracked(ROLE_OUTPUT))
        caches = paths.tracked(ROLE_CACHE)
        if caches:
            outputs += "; kept between runs: " + ", ".join(f"`{p.as_posix()}`" for p in caches)
        rows.append(
            f"| `{stage}` | {summary} | `secmine.stages.{module_name(stage)}` | `notebooks/{module_name(stage)}.ipynb` "
            f"| `{stage}:` ({len(module.Params.field_names())} keys) | {outputs} |"
        )
    return "\n".join(rows)


def render(text: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"the file has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for name in FILES:
        path = ROOT / name
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
                print(f"updated {name}")
    if check and stale:
        print("stage tables differ from the stage modules: " + ", ".join(stale) + " (python tools/docs.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
