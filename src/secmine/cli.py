"""The ``secmine`` command line: every pipeline stage, then the tools, in pipeline order.

``secmine <stage>`` runs a stage through the same ``run(params, paths)`` the notebooks call
(:mod:`secmine.stages`): its parameters come from params.yaml (``--params FILE`` for another file)
with an option per parameter to override it; its inputs are those dvc.yaml declares (an option per
input); its outputs go under ``--out`` (default ``scratch/<stage>/``, same layout as the pipeline's),
so a run outside ``dvc repro`` never overwrites tracked results — ``--out .`` writes in place.

The tools (``replay``, ``rehydrate``, ``evaluate``, ``export``, ``sample-size``, ``coding-*``, ...)
come from the areas' command modules (:data:`TOOL_MODULES`).  Expected errors print one line with the
fix; ``--debug`` (or ``SECMINE_DEBUG=1``) shows the traceback.  Heavy libraries are imported inside
the commands, so ``secmine --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import typer
from typer.core import TyperGroup

from secmine import __version__, config
from secmine.stages import STAGES, stage_module

TOOL_MODULES: tuple[str, ...] = (
    "secmine.external",
    "secmine.collect.commands",
    "secmine.detect.commands",
    "secmine.analysis.commands",
    "secmine.taxonomy.commands",
    "secmine.synth",
    "secmine.verify",
)

class _Group(TyperGroup):
    """Commands listed in the order they were added; an error of any command becomes one line."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001 - every error becomes one line (a traceback with --debug)
            if _is_control_flow(exc) or _DEBUG["on"]:
                raise
            typer.secho(f"error: {error_line(exc)}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None


def _is_control_flow(exc: BaseException) -> bool:
    """Exit, abort and usage errors of the command-line framework (Typer and its Click)."""
    return type(exc).__module__.split(".")[0] in ("typer", "click")


app = typer.Typer(
    cls=_Group,
    name="secmine",
    help="Mine developer-reported security issues and solutions of AI projects (HF and GitHub).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_DEBUG = {"on": os.environ.get("SECMINE_DEBUG", "").strip().casefold() in {"1", "true", "yes"}}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"secmine {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """Mine developer-reported security issues and solutions of AI projects (HF and GitHub)."""
    if debug:
        _DEBUG["on"] = True


# -- stage commands --------------------------------------------------------------------------------


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _option_type(annotation: Any) -> tuple[Any, str]:
    """The click-facing type of a Params field and a note on accepted values."""
    origin = get_origin(annotation)
    if origin is Literal:
        return Optional[str], "one of " + ", ".join(map(str, get_args(annotation)))
    if annotation is bool:
        return Optional[bool], ""
    if annotation in (int, float, str):
        return Optional[annotation], ""
    return Optional[str], ""


def _stage_parameters(stage: str) -> list[inspect.Parameter]:
    module = stage_module(stage)
    hints = module.Params.parameter_hints()
    shared = module.Params.shared_blocks()
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters: list[inspect.Parameter] = []
    for name, default in module.Params.parameter_defaults().items():
        annotation, note = _option_type(hints[name])
        flag = f"{option_name(name)}/--no-{name.replace('_', '-')}" if hints[name] is bool else option_name(name)
        key = next((f"{b}.{name[len(b) + 1:]}" for b in shared if name.startswith(b + "_")), f"{stage}.{name}")
        shown = f"{key} in params.yaml (committed: {default!r})"
        text = f"{note}; default: {shown}" if note else f"default: {shown}"
        parameters.append(
            inspect.Parameter(name, keyword, annotation=annotation,
                              default=typer.Option(None, flag, help=text, rich_help_panel="Parameters"))
        )
    for spec in module.Paths.specs():
        role = spec.metadata["role"]
        what = spec.metadata.get("help") or role
        text = f"{what} [{role}; default: as dvc.yaml declares{', under --out' if role != 'input' else ''}"
        text += "; '' for none]" if spec.metadata["optional"] else "]"
        parameters.append(
            inspect.Parameter(spec.name, keyword, annotation=Optional[str],
                              default=typer.Option(None, option_name(spec.name), help=text, metavar="PATH",
                                                   rich_help_panel="Paths"))
        )
    parameters.append(
        inspect.Parameter("params_file", keyword, annotation=Optional[Path],
                          default=typer.Option(None, "--params", help="a YAML file whose block of this stage "
                                               "overrides params.yaml's, key by key (e.g. params-gpu.yaml)"))
    )
    parameters.append(
        inspect.Parameter("out", keyword, annotation=Optional[Path],
                          default=typer.Option(None, "--out", help=f"write outputs under this folder "
                                               f"(default scratch/{stage}/; '.' = the pipeline's own places)"))
    )
    return parameters


def resolve_stage_arguments(stage: str, given: dict[str, Any]) -> tuple[Any, Any]:
    """``(params, paths)`` for a command-line run of ``stage`` from the options the user gave."""
    from secmine.stages.contract import SCRATCH_DIR, StagePaths

    module = stage_module(stage)
    params_file = given.pop("params_file", None)
    out = given.pop("out", None)
    params = module.Params.load()
    if params_file is not None:  # its block overrides params.yaml's, key by key
        from secmine.stages.contract import read_params

        blocks = read_params(params_file)
        params = module.Params.from_mapping(
            {**params.as_dict(), **(blocks.get(stage) or {})}, where=str(params_file),
            shared={block: {**getattr(params, block).as_dict(), **(blocks.get(block) or {})}
                    for block in module.Params.shared_blocks()},
        )
    changes = {k: given[k] for k in module.Params.parameter_names() if given.get(k) is not None}
    if changes:
        params = params.replace(**changes)
    declared: StagePaths = module.Paths.declared()
    root = Path(out).absolute() if out is not None else config.PROJECT_ROOT / SCRATCH_DIR / stage
    paths = declared.redirect(root)
    optional = {spec.name for spec in module.Paths.specs() if spec.metadata["optional"]}
    named: dict[str, Path | None] = {}
    for name in module.Paths.field_names():
        value = given.get(name)
        if value is None:
            continue
        if name in optional and value.strip().casefold() in ("", "none"):
            named[name] = None  # an optional input switched off
        elif not value.strip():
            raise typer.BadParameter(f"{option_name(name)} needs a path")
        else:
            named[name] = Path(value).absolute()
    dropped = {
        k: None for k, owner in module.Paths.belongs_to.items() if owner in named and k not in named
    }
    paths = dataclasses.replace(paths, **named, **dropped)
    return params, paths


def stage_command(stage: str) -> Callable[..., None]:
    module = stage_module(stage)

    def command(**given: Any) -> None:
        params, paths = resolve_stage_arguments(stage, given)
        result = module.run(params, paths)
        typer.echo(module.summary(result))
        for name, path in {**paths.outputs(), **paths.caches()}.items():
            typer.echo(f"{name}: {_shown(path)}")

    command.__signature__ = inspect.Signature(_stage_parameters(stage))  # type: ignore[attr-defined]
    command.__doc__ = stage_help(module.__doc__ or "", stage)
    command.__name__ = f"{stage}_stage"
    return command


def stage_help(doc: str, stage: str) -> str:
    """A stage module's docstring as command help: its first two paragraphs, in plain text."""
    paragraphs = doc.strip().split("\n\n")[:2]
    text = "\n\n".join(paragraphs).replace("``", "'")
    prefix = f"Stage '{stage}': "
    return text[len(prefix):] if text.startswith(prefix) else text


def _shown(path: Path) -> str:
    try:
        return Path(path).absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return Path(path).as_posix()


for _stage in STAGES:
    app.command(_stage, rich_help_panel="Pipeline stages (in order)")(stage_command(_stage))
for _module in TOOL_MODULES:
    importlib.import_module(_module).register(app)


# -- errors ----------------------------------------------------------------------------------------


def error_line(exc: BaseException) -> str:
    """One line for an error: the message (and hint) of an expected error, else its type and message."""
    from secmine.errors import SecmineError

    if isinstance(exc, SecmineError):
        return exc.one_line()
    text = " ".join(str(exc).split())
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        filename = getattr(exc, "filename", None)
        reason = getattr(exc, "strerror", None) or text
        return f"{filename}: {reason}" if filename else text
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return f"no space left on the device ({text})"
    if isinstance(exc, (ValueError, KeyError, OSError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv``; returns the exit status (1 for an error, 2 for usage)."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="secmine")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
