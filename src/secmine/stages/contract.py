"""The contract every pipeline stage follows: typed params, declared paths, one ``run``.

A stage module ``secmine.stages.<name>`` (one per DVC stage, named as the stage with ``-`` written
``_``) has three parts:

``Params``
    a frozen dataclass deriving from :class:`StageParams`, whose fields are exactly the keys of the
    stage's block in ``params.yaml`` (its defaults equal the committed values; a test checks).
    Values are converted strictly: a boolean is ``True``/``False`` or the text ``true``/``false``
    (DVC renders YAML booleans in lowercase, papermill passes them on as text), a number is a number
    or the text of one; an unknown or missing key is an error naming the key and the file.
``Paths``
    a frozen dataclass deriving from :class:`StagePaths` listing every file the stage reads
    (:func:`input`), writes (:func:`output`) or keeps between runs (:func:`cache`, DVC's
    ``persist: true`` outputs: archives, checkpoints, embedding caches).  No path is typed in code:
    ``dvc.yaml`` passes every one of them to the notebook, and :meth:`StagePaths.declared` reads
    them back from the stage as DVC renders it, for interactive and command-line runs.
``run(params, paths)``
    wires the domain functions (``secmine.collect``, ``detect``, ``analysis``, ``thematic``, ...)
    and returns what the notebook shows.  :func:`stage_run` wraps it so that relative paths mean
    the project root and the outputs appear together or not at all
    (:func:`secmine.io.output_set`).

Runs outside ``dvc repro`` (a notebook opened in Jupyter, ``secmine <stage>``) read the declared
inputs but write their outputs and caches under a scratch folder (``scratch/<stage>/`` by default),
so they never overwrite tracked results silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

from secmine import config
from secmine.errors import SecmineError

ROLE_INPUT = "input"
ROLE_OUTPUT = "output"
ROLE_CACHE = "cache"
ROLES = (ROLE_INPUT, ROLE_OUTPUT, ROLE_CACHE)
SCRATCH_DIR = "scratch"

P = TypeVar("P", bound="StageParams")
Q = TypeVar("Q", bound="StagePaths")


class ParamsError(SecmineError, ValueError):
    """A stage parameter is unknown, missing or of the wrong type."""


class PathsError(SecmineError, ValueError):
    """A stage path is missing, unknown or not declared the way the stage needs."""


# -- params.yaml: the one reader --------------------------------------------------------------------


def params_file() -> Path:
    return config.PARAMS_FILE


def read_params(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``params.yaml`` (or ``path``) as a mapping; the only place the package reads it."""
    import yaml

    source = Path(path) if path is not None else params_file()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ParamsError(f"{source}: params file not found", hint="pass --params FILE") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else str(source)
        raise ParamsError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of stage blocks, found {type(data).__name__}")
    return data


def stage_block(stage: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The block of ``stage`` in the params file (an error when it is missing)."""
    source = Path(path) if path is not None else params_file()
    data = read_params(source)
    block = data.get(stage)
    if block is None:
        raise ParamsError(f"{source}: no block {stage!r}", hint=f"add a `{stage}:` block (see the committed params.yaml)")
    if not isinstance(block, dict):
        raise ParamsError(f"{source}, key {stage!r}: expected a mapping, found {type(block).__name__}")
    return block


# -- strict conversion ------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?\d+")


def convert(value: Any, annotation: Any, *, key: str, where: str) -> Any:
    """``value`` as the type ``annotation`` (bool, int, float, str, a ``Literal`` or ``X | None``).

    Text is accepted for every type (papermill and the command line pass text), but only in its
    exact form: ``true``/``false`` for a boolean, digits for an integer, a decimal number for a float.
    """

    def fail(expected: str, fix: str = "") -> ParamsError:
        return ParamsError(f"{where}, key {key!r}: expected {expected}, got {value!r}", hint=fix)

    origin = get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().casefold() in {"", "none", "null"}):
            return None
        if len(options) != 1:  # pragma: no cover - the contract uses X | None only
            raise TypeError(f"{key}: unsupported annotation {annotation!r}")
        return convert(value, options[0], key=key, where=where)
    if origin is Literal:
        choices = get_args(annotation)
        text = value if isinstance(value, str) else None
        if text is None or text not in choices:
            raise fail(f"one of {', '.join(map(repr, choices))}")
        return text
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().casefold() in {"true", "false"}:
            return value.strip().casefold() == "true"
        raise fail("true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            return int(value.strip())
        raise fail("an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise fail("a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail("text", "quote the value in params.yaml")
    if annotation is Path:
        if isinstance(value, (str, os.PathLike)) and str(value).strip():
            return Path(value)
        raise fail("a path")
    raise TypeError(f"{key}: unsupported annotation {annotation!r}")  # pragma: no cover


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# -- Params -------------------------------------------------------------------------------------------


class StageParams:
    """Base of every stage's ``Params`` (subclasses are frozen dataclasses; ``stage`` names the block).

    A stage may also declare a *shared* block, one that several stages read (``compute``): a field
    whose type is a :class:`SharedParams` subclass and whose name is that block's name.  Its keys are
    the shared block's, not the stage's (:meth:`field_names` lists the stage's own keys only); the
    notebook, the command line and ``dvc.yaml`` pass them flat, as ``<block>_<key>``
    (:meth:`parameter_names`), and ``dvc.yaml`` tracks the shared block beside the stage's.
    """

    stage: ClassVar[str]  # the params.yaml block: the stage's name with ``_`` for ``-``

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The keys of the stage's own params.yaml block."""
        shared = cls.shared_blocks()
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in shared)  # type: ignore[arg-type]

    @classmethod
    def shared_blocks(cls) -> dict[str, type[SharedParams]]:
        """The shared blocks the stage declares: field name (= block name) -> its ``SharedParams``."""
        hints = _hints(cls)
        found: dict[str, type[SharedParams]] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, SharedParams):
                if f.name != hint.stage:
                    raise TypeError(f"{cls.__qualname__}.{f.name}: a shared block's field is named as its block, {hint.stage!r}")
                found[f.name] = hint
        return found

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The stage's own keys with their defaults (the committed values of its block)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return {name: fields[name].default for name in cls.field_names()}

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """What the notebook, the command line and ``dvc.yaml`` pass: the own keys, then each shared
        block's keys as ``<block>_<key>``."""
        return tuple(cls.parameter_defaults())

    @classmethod
    def parameter_defaults(cls) -> dict[str, Any]:
        """:meth:`parameter_names` with their defaults."""
        out = cls.defaults()
        for block, shared in cls.shared_blocks().items():
            out.update({f"{block}_{name}": value for name, value in shared.defaults().items()})
        return out

    @classmethod
    def parameter_hints(cls) -> dict[str, Any]:
        """The type of each of :meth:`parameter_names`."""
        hints = _hints(cls)
        out = {name: hints[name] for name in cls.field_names()}
        for block, shared in cls.shared_blocks().items():
            out.update({f"{block}_{name}": hint for name, hint in shared.parameter_hints().items()})
        return out

    @classmethod
    def from_mapping(
        cls: type[P],
        values: Mapping[str, Any],
        *,
        where: str,
        partial: bool = False,
        shared: Mapping[str, Any] | None = None,
    ) -> P:
        """Params from ``values``: every key must be a field, every field present (unless
        ``partial``: missing fields keep their defaults), every value of the field's type.

        ``shared``: each shared block's values (a mapping, checked the same way, or a
        ``SharedParams``); a block not given keeps its defaults."""
        names = cls.field_names()
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ParamsError(
                f"{where}: unknown key {cls.stage}.{unknown[0]}",
                hint=f"the {cls.stage!r} block takes {', '.join(names)}",
            )
        missing = [n for n in names if n not in values]
        if missing and not partial:
            default = cls.defaults()[missing[0]]
            raise ParamsError(
                f"{where}: missing key {cls.stage}.{missing[0]}", hint=f"add `{missing[0]}: {_yaml(default)}`"
            )
        hints = _hints(cls)
        converted = {k: convert(v, hints[k], key=f"{cls.stage}.{k}", where=where) for k, v in values.items()}
        given = dict(shared or {})
        for block, kind in cls.shared_blocks().items():
            value = given.pop(block, None)
            if value is None:
                continue
            converted[block] = value if isinstance(value, kind) else kind.from_mapping(value, where=where, partial=partial)
        if given:
            raise ParamsError(f"{where}: stage {cls.stage!r} reads no shared block {next(iter(given))!r}")
        return cls(**converted)

    @classmethod
    def load(cls: type[P], path: str | os.PathLike[str] | None = None) -> P:
        """The stage's block of ``params.yaml`` (or ``path``), and the shared blocks it declares."""
        source = Path(path) if path is not None else params_file()
        shared = {block: stage_block(block, source) for block in cls.shared_blocks()}
        return cls.from_mapping(stage_block(cls.stage, source), where=str(source), shared=shared)

    @classmethod
    def from_namespace(cls: type[P], namespace: Mapping[str, Any]) -> P:
        """Params from a notebook's variables (the parameters cell, as papermill left it)."""
        values = {name: namespace[name] for name in cls.field_names() if name in namespace}
        shared = {
            block: {name: namespace[f"{block}_{name}"] for name in kind.field_names() if f"{block}_{name}" in namespace}
            for block, kind in cls.shared_blocks().items()
        }
        return cls.from_mapping(values, where=f"notebook parameters of stage {cls.stage!r}", shared=shared)

    def replace(self: P, **changes: Any) -> P:
        """A copy with ``changes`` (converted strictly, like every other value); a shared block's key
        is named ``<block>_<key>``."""
        current = self.as_dict()
        shared: dict[str, Any] = {}
        for block, kind in self.shared_blocks().items():
            values = getattr(self, block).as_dict()
            for name in kind.field_names():
                if f"{block}_{name}" in changes:
                    values[name] = changes.pop(f"{block}_{name}")
            shared[block] = values
        current.update(changes)
        return type(self).from_mapping(current, where=f"{self.stage} parameters", shared=shared)

    def as_dict(self) -> dict[str, Any]:
        """The stage's own keys and values (its params.yaml block)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def parameters(self) -> dict[str, Any]:
        """:meth:`parameter_names` with this run's values."""
        out = self.as_dict()
        for block in self.shared_blocks():
            out.update({f"{block}_{name}": value for name, value in getattr(self, block).as_dict().items()})
        return out


class SharedParams(StageParams):
    """Base of a params.yaml block that several stages read (``stage`` names the block, which is no
    stage).  A stage declares it as a field named as the block, typed as the subclass, defaulting
    to an instance of it (see :class:`StageParams`)."""


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if not value or value != value.strip() or ":" in value else value
    return str(value)


# -- Paths --------------------------------------------------------------------------------------------


def input_path(*, optional: bool = False, made_by: str = "", help: str = "") -> Any:
    """A file or folder the stage reads (``optional``: may be empty, meaning none)."""
    metadata = {"role": ROLE_INPUT, "optional": optional, "made_by": made_by, "help": help}
    return dataclasses.field(default=None, metadata=metadata)


def output_path(*, help: str = "", committed: bool = False) -> Any:
    """A file or folder the stage writes; all outputs appear together or not at all.

    ``committed``: kept in git rather than in DVC's cache (as everything under ``reports/`` is)."""
    metadata = {"role": ROLE_OUTPUT, "optional": False, "help": help, "committed": committed}
    return dataclasses.field(default=None, metadata=metadata)


def input_files(*files: str, made_by: str = "", help: str = "") -> Any:
    """Files the stage reads from a folder that other stages write into (DVC tracks each file)."""
    metadata = {"role": ROLE_INPUT, "optional": False, "made_by": made_by, "help": help, "files": tuple(files)}
    return dataclasses.field(default=None, metadata=metadata)


def output_files(*files: str, help: str = "") -> Any:
    """Files the stage writes into a folder it shares with other stages (DVC tracks each file)."""
    metadata = {"role": ROLE_OUTPUT, "optional": False, "help": help, "files": tuple(files)}
    return dataclasses.field(default=None, metadata=metadata)


def cache_path(*, help: str = "") -> Any:
    """A folder the stage keeps between runs (DVC ``persist: true``), written in place."""
    return dataclasses.field(default=None, metadata={"role": ROLE_CACHE, "optional": False, "help": help})


class StagePaths:
    """Base of every stage's ``Paths``: the files it reads, writes and keeps, relative to the project root."""

    stage: ClassVar[str]
    # Inputs that belong to another input: when the command line names the other one but not this
    # one, this one is left out (e.g. classify's keyword matches belong to its input corpus).
    belongs_to: ClassVar[dict[str, str]] = {}

    @classmethod
    def specs(cls) -> tuple[dataclasses.Field[Any], ...]:
        return tuple(dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def field_names(cls, role: str | None = None) -> tuple[str, ...]:
        return tuple(f.name for f in cls.specs() if role is None or f.metadata["role"] == role)

    @classmethod
    def from_mapping(cls: type[Q], values: Mapping[str, Any], *, where: str) -> Q:
        names = cls.field_names()
        unknown = [k for k in values if k not in names]
        if unknown:
            raise PathsError(f"{where}: unknown path {unknown[0]!r}", hint=f"stage {cls.stage!r} takes {', '.join(names)}")
        out: dict[str, Path | None] = {}
        for spec in cls.specs():
            value = values.get(spec.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if not spec.metadata["optional"]:
                    raise PathsError(f"{where}: no path for {spec.name!r}", hint="dvc.yaml passes every path of a stage")
                out[spec.name] = None
                continue
            out[spec.name] = Path(value)
        return cls(**out)

    @classmethod
    def declared(cls: type[Q], dvc_file: str | os.PathLike[str] | None = None) -> Q:
        """The paths ``dvc.yaml`` passes to this stage's notebook, as DVC renders them."""
        passed = rendered_stage(cls.stage, dvc_file).parameters
        values = {name: passed.get(name) for name in cls.field_names()}
        return cls.from_mapping(values, where=f"dvc.yaml stage {cls.stage!r}")

    @classmethod
    def interactive(cls: type[Q], out: str | os.PathLike[str] | None = None) -> Q:
        """The declared paths with outputs and caches moved under ``out`` (default ``scratch/<stage>``)."""
        return cls.declared().redirect(Path(out) if out is not None else Path(SCRATCH_DIR) / cls.stage)

    @classmethod
    def from_namespace(cls: type[Q], namespace: Mapping[str, Any]) -> Q:
        """Paths from a notebook's variables: all given (a DVC run), or none (an interactive run,
        see :meth:`interactive`)."""
        values = {name: namespace.get(name) for name in cls.field_names()}
        if all(v is None for v in values.values()):
            return cls.interactive()
        return cls.from_mapping(values, where=f"notebook parameters of stage {cls.stage!r}")

    def redirect(self: Q, root: str | os.PathLike[str]) -> Q:
        """A copy whose outputs and caches lie under ``root`` (same relative layout); inputs stay."""
        base = Path(root)
        if base.resolve() == config.PROJECT_ROOT.resolve():
            return self
        changes: dict[str, Path] = {}
        for spec in self.specs():
            value = getattr(self, spec.name)
            if spec.metadata["role"] != ROLE_INPUT and value is not None:
                changes[spec.name] = base / _relative_to_root(value)
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def of_role(self, role: str) -> dict[str, Path]:
        return {
            spec.name: getattr(self, spec.name)
            for spec in self.specs()
            if spec.metadata["role"] == role and getattr(self, spec.name) is not None
        }

    def inputs(self) -> dict[str, Path]:
        return self.of_role(ROLE_INPUT)

    @classmethod
    def files_of(cls) -> dict[str, tuple[str, ...]]:
        """The fields that name files in a shared folder, with those files."""
        return {spec.name: spec.metadata["files"] for spec in cls.specs() if spec.metadata.get("files")}

    def tracked(self, role: str) -> list[Path]:
        """What DVC tracks for ``role``: each path, or each file of a shared folder."""
        files = self.files_of()
        out: list[Path] = []
        for name, path in self.of_role(role).items():
            out += [path / file for file in files[name]] if name in files else [path]
        return out

    def outputs(self) -> dict[str, Path]:
        return self.of_role(ROLE_OUTPUT)

    def caches(self) -> dict[str, Path]:
        return self.of_role(ROLE_CACHE)

    def final(self: Q) -> Q:
        """The places the outputs end up in (while a stage runs, it writes to staging places)."""
        return getattr(self, "_final", self)

    def needed_inputs(self, params: StageParams | None = None) -> dict[str, Path]:
        """The inputs a run with ``params`` reads (all by default; a stage overrides this when some
        inputs go unread with some params or some inputs, e.g. a live crawl reads no snapshot)."""
        return self.inputs()

    def check_inputs(self, params: StageParams | None = None) -> None:
        """Every needed input exists, else one line naming it and the stage that makes it."""
        from secmine.errors import MissingInputError

        specs = {spec.name: spec for spec in self.specs()}
        for name, value in self.needed_inputs(params).items():
            for path in [Path(value) / f for f in specs[name].metadata.get("files", ())] or [Path(value)]:
                if not path.exists():
                    raise MissingInputError(path, made_by=specs[name].metadata.get("made_by", ""))


def _relative_to_root(path: Path) -> Path:
    if not path.is_absolute():
        return path
    try:
        return path.resolve().relative_to(config.PROJECT_ROOT.resolve())
    except ValueError:
        return Path(*path.parts[1:])


# -- dvc.yaml as DVC renders it -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RenderedStage:
    """A stage of ``dvc.yaml`` after DVC's templating: its command, deps, outs and params."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    persist: tuple[str, ...]
    params: tuple[str, ...]
    parameters: dict[str, str]  # what the command passes to the notebook (-p/-r name value)


def notebook_parameters(cmd: str) -> dict[str, str]:
    """The ``-p``/``-r`` name-value pairs of a papermill command line, as text (what the notebook gets
    before :class:`StageParams` converts it)."""
    import shlex

    words = shlex.split(cmd)
    found: dict[str, str] = {}
    i = 0
    while i < len(words):
        if words[i] in ("-p", "--parameters", "-r", "--parameters_raw"):
            found[words[i + 1]] = words[i + 2]
            i += 3
        else:
            i += 1
    return found


def rendered_stage(stage: str, dvc_file: str | os.PathLike[str] | None = None) -> RenderedStage:
    """``stage`` of ``dvc.yaml`` rendered by DVC itself (``${...}`` resolved from params.yaml)."""
    return _rendered_stages(str(Path(dvc_file).resolve()) if dvc_file else str(config.PROJECT_ROOT / "dvc.yaml"))[stage]


@functools.lru_cache(maxsize=4)
def _rendered_stages(dvc_file: str) -> dict[str, RenderedStage]:
    from dvc.repo import Repo

    root = Path(dvc_file).parent
    with contextlib.chdir(root), Repo(str(root)) as repo:
        stages: dict[str, RenderedStage] = {}
        for st in repo.index.stages:
            if not getattr(st, "cmd", None):
                continue
            params = tuple(
                key for dep in st.deps if dep.__class__.__name__ == "ParamsDependency" for key in (dep.params or [])
            )
            stages[st.name] = RenderedStage(
                name=st.name,
                cmd=st.cmd if isinstance(st.cmd, str) else " && ".join(st.cmd),
                deps=tuple(d.def_path for d in st.deps if d.__class__.__name__ != "ParamsDependency"),
                outs=tuple(o.def_path for o in st.outs),
                persist=tuple(o.def_path for o in st.outs if getattr(o, "persist", False)),
                params=params,
                parameters=notebook_parameters(st.cmd if isinstance(st.cmd, str) else " ".join(st.cmd)),
            )
    return stages


# -- running a stage --------------------------------------------------------------------------------------

R = TypeVar("R")


def stage_run(func: Callable[[P, Q], R]) -> Callable[[P, Q], R]:
    """Wrap a stage's ``run``: check the argument types, run with the project root as the working
    folder, check the inputs, and stage the outputs so they appear together or not at all."""

    @functools.wraps(func)
    def wrapper(params: P, paths: Q) -> R:
        from secmine.io import output_set

        if not isinstance(params, StageParams) or not isinstance(paths, StagePaths):
            raise TypeError("run(params, paths) takes the stage's Params and Paths")
        if params.stage != paths.stage.replace("-", "_"):
            raise TypeError(f"params of block {params.stage!r} with paths of stage {paths.stage!r}")
        with contextlib.chdir(config.PROJECT_ROOT):
            paths.check_inputs(params)
            files = {k: v for k, v in paths.files_of().items() if k in paths.outputs()}
            with output_set(paths.outputs(), name=paths.stage, files=files) as staged:
                staged_paths = dataclasses.replace(paths, **staged)  # type: ignore[type-var]
                object.__setattr__(staged_paths, "_final", paths)
                return func(params, staged_paths)

    return wrapper


@contextlib.contextmanager
def project_root() -> Iterator[Path]:
    """Run with the project root as the working folder (paths of params and dvc.yaml are relative to it)."""
    with contextlib.chdir(config.PROJECT_ROOT):
        yield config.PROJECT_ROOT


def metrics_summary(metrics: Mapping[str, typing.Any]) -> str:
    """What a stage command prints after a run: its metrics as sorted, indented JSON."""
    import json

    return json.dumps(dict(metrics), indent=2, sort_keys=True, default=str)
