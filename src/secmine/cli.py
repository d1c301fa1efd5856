"""The ``secmine`` command line: every pipeline stage runs without Jupyter.

Each area of the package contributes its commands through a ``register(app)`` function in the
module listed in :data:`COMMAND_MODULES`; the notebooks call the same functions.
Heavy libraries (torch, transformers) are imported inside the commands, so ``secmine --help``
stays fast.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = (
    "secmine.external",
    "secmine.collect.commands",
    "secmine.thematic.commands",
    "secmine.analysis.commands",
    "secmine.detect.commands",
)

app = typer.Typer(
    name="secmine",
    help="Mine developer-reported security issues and solutions of AI projects (HF and GitHub).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _register_all() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
