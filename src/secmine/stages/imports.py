"""The package files a stage runs: the import closure of its module inside ``secmine``.

``dvc.yaml`` must list them as dependencies, so a change to any code a stage runs reruns the stage
(a test compares; ``python tools/stage_deps.py`` prints the lists).  Imports are read from the source
(module level and inside functions, where the package imports heavy code lazily); imports made only
for type checking (under ``if TYPE_CHECKING:``) are not run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from secmine import config

PACKAGE = "secmine"
SOURCE_ROOT = config.PROJECT_ROOT / "src"


def module_file(module: str) -> Path | None:
    """The source file of ``module`` (``pkg/__init__.py`` for a package), None outside the package."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = SOURCE_ROOT.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, module: str) -> set[str]:
    """The ``secmine`` modules ``path`` (the source of ``module``) imports when it runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    prefix = ".".join(base + ([child.module] if child.module else []))
                else:
                    prefix = child.module or ""
                found.add(prefix)
                # ``from pkg import name`` may import the submodule ``pkg.name``
                found.update(f"{prefix}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return {name for name in found if module_file(name) is not None}


def import_closure(module: str) -> set[Path]:
    """Every package file that running ``module`` may execute (its parents' ``__init__`` included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = module_file(name)
        if path is not None:
            todo.extend(imported_modules(path, name) - seen)
    return {p for p in (module_file(name) for name in seen) if p is not None}


def relative_files(paths: set[Path]) -> list[str]:
    """Files relative to the project root, sorted (as ``dvc.yaml`` lists them)."""
    return sorted(p.relative_to(config.PROJECT_ROOT).as_posix() for p in paths)


# Every stage's command runs its notebook, then this module on the executed notebook.
NOTEBOOK_NORMALISER = "secmine.report.notebooks"


def stage_closure(stage_module_name: str) -> set[Path]:
    """The package files a stage's command runs: its module's closure and the notebook normaliser's."""
    return import_closure(stage_module_name) | import_closure(NOTEBOOK_NORMALISER)
