"""``make verify`` / ``secmine verify``: does the committed pipeline reproduce byte for byte?

The current commit is cloned into a scratch folder (``git clone``, the external data folder linked
beside it as ``../shared``, this interpreter's environment reused -- no new virtual environment),
the pipeline is rerun there with DVC (``dvc repro --force``: no stage is taken as up to date) --
every stage, or with ``fast`` only the stages that need no trained model (those not downstream of
a stage writing under ``models/``: external, collect, keywords, thematic) -- and every tracked file
that then differs from the commit is listed, grouped by the DVC stage that writes it, with one line
per stage saying why (which metric changed, how many table rows, "figure bytes differ", which
DVC-cached output moved).  ``dvc.lock`` is compared entry by entry, so an output that lives only in
the DVC cache (``models/security``, ``data/processed/classified.parquet``, the executed notebooks)
is reported under its stage too; when this checkout's DVC cache still holds the committed version,
the files or rows that differ are named.  :func:`verify` returns 0 only when nothing differs
(1: differences, 2: the pipeline failed).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

#: Stages writing under these folders need a trained model downstream; they and what follows are slow.
SLOW_OUTPUT_ROOTS: tuple[str, ...] = ("models",)
#: The environment every run gets (as the Makefile sets it): offline, no telemetry, fixed hash seed.
RUN_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
    "DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0",
}
NO_STAGE = "(no stage)"

# What the clone runs before `dvc repro` unless told otherwise: the data links `make repro` makes.
LINK_COMMAND: tuple[str, ...] = ("external-link",)


class VerifyError(RuntimeError):
    """The scratch clone cannot be made or the pipeline cannot run there."""


@dataclass(frozen=True)
class StageInfo:
    """A DVC stage as verify needs it: name, dependency paths, output paths (relative, POSIX)."""

    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]


@dataclass
class StageReport:
    """What differs for one stage: the files (git paths, and ``dvc.lock: <out>`` entries) and why."""

    stage: str
    files: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def line(self, limit: int = 3) -> str:
        shown = list(dict.fromkeys(self.reasons))
        more = f" (+{len(shown) - limit} more)" if len(shown) > limit else ""
        return "; ".join(shown[:limit]) + more


# -- the pipeline's stages --------------------------------------------------------------------


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def read_stages(root: str | os.PathLike[str]) -> list[StageInfo]:
    """The stages of ``root/dvc.yaml`` (templated paths resolved by DVC), in pipeline order."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = [StageInfo(s.name, tuple(d.def_path for d in s.deps), tuple(o.def_path for o in s.outs))
                  for s in repo.index.stages if getattr(s, "name", None)]
    return stages


def upstream_of(stage: StageInfo, stages: Sequence[StageInfo]) -> set[str]:
    """Names of the stages whose outputs ``stage`` reads, directly."""
    return {other.name for other in stages if other.name != stage.name
            and any(_inside(dep, out) or _inside(out, dep) for dep in stage.deps for out in other.outs)}


def fast_stages(stages: Sequence[StageInfo], slow_roots: Iterable[str] = SLOW_OUTPUT_ROOTS) -> list[str]:
    """The stages that need no trained model: not writing under ``slow_roots`` and not downstream of
    one that does (in pipeline order)."""
    roots = tuple(slow_roots)
    slow = {s.name for s in stages if any(_inside(out, root) for out in s.outs for root in roots)}
    changed = True
    while changed:
        changed = False
        for stage in stages:
            if stage.name not in slow and upstream_of(stage, stages) & slow:
                slow.add(stage.name)
                changed = True
    return [s.name for s in stages if s.name not in slow]


def stage_of(path: str, stages: Sequence[StageInfo]) -> str:
    """The stage whose output holds ``path`` (the most specific output wins), or :data:`NO_STAGE`."""
    best, depth = NO_STAGE, -1
    for stage in stages:
        for out in stage.outs:
            if _inside(path, out) and len(out) > depth:
                best, depth = stage.name, len(out)
    return best


# -- reasons ----------------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def json_reason(name: str, old: bytes, new: bytes) -> str:
    """``metric <key>: old -> new`` for the first key that changed (and how many did)."""
    try:
        a, b = _flat(json.loads(old)), _flat(json.loads(new))
    except ValueError:
        return f"{name}: bytes differ"
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if not keys:
        return f"{name}: same values, different bytes"
    key = keys[0]
    more = f" (and {len(keys) - 1} more key(s))" if len(keys) > 1 else ""
    return f"metric {key}: {a.get(key, '(absent)')} -> {b.get(key, '(absent)')}{more}"


def csv_reason(name: str, old: bytes, new: bytes) -> str:
    """``table <name>: k of n rows differ`` (or the row counts when they changed)."""
    rows_a = list(csv.reader(io.StringIO(old.decode("utf-8", "replace"))))
    rows_b = list(csv.reader(io.StringIO(new.decode("utf-8", "replace"))))
    if len(rows_a) != len(rows_b):
        return f"table {name}: {len(rows_a) - 1} -> {len(rows_b) - 1} rows"
    changed = sum(1 for x, y in zip(rows_a[1:], rows_b[1:], strict=True) if x != y)
    header = "" if rows_a[:1] == rows_b[:1] else ", header differs"
    return f"table {name}: {changed} of {len(rows_a) - 1} rows differ{header}"


def file_reason(path: str, old: bytes | None, new: bytes | None) -> str:
    """One reason for one tracked file that differs."""
    name = path.split("reports/", 1)[-1]
    if old is None:
        return f"new file {name}"
    if new is None:
        return f"{name} is no longer written"
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return json_reason(name, old, new)
    if suffix == ".csv":
        return csv_reason(name, old, new)
    if suffix in {".png", ".svg", ".pdf"}:
        return "figure bytes differ"
    if suffix in {".md", ".tex"}:
        return "table text differs"
    return f"{name}: bytes differ"


# -- the DVC cache of the source checkout -----------------------------------------------------


def cache_object(cache_root: Path, md5: str) -> Path | None:
    """The DVC 3 cache file of ``md5`` under ``cache_root`` (``.dvc/cache``), when present."""
    digest = md5.removesuffix(".dir")
    path = cache_root / "files" / "md5" / digest[:2] / (digest[2:] + (".dir" if md5.endswith(".dir") else ""))
    return path if path.is_file() else None


def _md5(path: Path) -> str:
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_out_reason(out: str, old_md5: str, clone: Path, cache_root: Path | None) -> str:
    """Why a DVC-cached output moved, as far as the source checkout's cache can tell."""
    if out.endswith(".ipynb"):
        return f"executed notebook {Path(out).name} differs (papermill records run times in it)"
    base = f"{out} (DVC-cached) differs"
    if cache_root is None:
        return base
    committed = cache_object(cache_root, old_md5)
    current = clone / out
    if committed is None or not current.exists():
        return base
    if old_md5.endswith(".dir") and current.is_dir():
        try:
            entries = {e["relpath"]: e["md5"] for e in json.loads(committed.read_text(encoding="utf-8"))}
        except (ValueError, KeyError, TypeError):
            return base
        now = {p.relative_to(current).as_posix(): p for p in current.rglob("*") if p.is_file()}
        differing = sorted(name for name in set(entries) | set(now)
                           if name not in entries or name not in now or _md5(now[name]) != entries[name])
        return f"{out}: {', '.join(differing[:4])}{' ...' if len(differing) > 4 else ''} differ"
    if out.endswith(".parquet") and current.is_file():
        import pandas as pd

        try:
            a, b = pd.read_parquet(committed), pd.read_parquet(current)
        except Exception:  # noqa: BLE001 - an unreadable object: report the bytes only
            return base
        if "label" in a.columns and "label" in b.columns and len(a) == len(b):
            flips = int((a["label"].to_numpy() != b["label"].to_numpy()).sum())
            return f"{out}: {flips} of {len(a)} labels differ"
        return f"{out}: {len(a)} -> {len(b)} rows" if len(a) != len(b) else base
    return base


# -- git and dvc.lock -------------------------------------------------------------------------


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VerifyError(f"git {' '.join(args)} in {root}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def changed_files(clone: Path) -> list[tuple[str, str]]:
    """``(status, path)`` of every tracked file that differs from HEAD and every untracked file git
    does not ignore."""
    out = []
    for line in _git(clone, "status", "--porcelain=v1", "--untracked-files=all", "-z").split("\0"):
        if len(line) > 3:
            out.append((line[:2].strip(), line[3:]))
    return out


def lock_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """Per stage, the ``dvc.lock`` entries that differ: ``(kind, path, old md5)`` with kind ``out``,
    ``dep``, ``params`` or ``cmd``."""
    changes: dict[str, list[tuple[str, str, str]]] = {}
    stages_old, stages_new = old.get("stages") or {}, new.get("stages") or {}
    for name in list(dict.fromkeys([*stages_old, *stages_new])):
        a, b = stages_old.get(name) or {}, stages_new.get(name) or {}
        if a == b:
            continue
        found: list[tuple[str, str, str]] = []
        if a.get("cmd") != b.get("cmd"):
            found.append(("cmd", "", ""))
        if a.get("params") != b.get("params"):
            found.append(("params", "", ""))
        for kind in ("deps", "outs"):
            old_entries = {e["path"]: e for e in a.get(kind) or []}
            new_entries = {e["path"]: e for e in b.get(kind) or []}
            for path in list(dict.fromkeys([*old_entries, *new_entries])):
                if old_entries.get(path) != new_entries.get(path):
                    found.append((kind[:-1], path, str((old_entries.get(path) or {}).get("md5", ""))))
        changes[name] = found or [("entry", "", "")]
    return changes


# -- running ------------------------------------------------------------------------------------


def make_clone(source: Path, workdir: Path, external: Path) -> tuple[Path, str]:
    """Clone ``source``'s HEAD commit into ``workdir/<name>`` with ``workdir/shared`` -> ``external``."""
    commit = _git(source, "rev-parse", "HEAD").strip()
    clone = workdir / source.resolve().name
    done = subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(source), str(clone)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VerifyError(f"git clone {source}: {done.stderr.strip()}")
    if subprocess.run(["git", "-C", str(clone), "cat-file", "-e", f"{commit}^{{commit}}"],
                      capture_output=True, check=False).returncode != 0:
        _git(clone, "fetch", "--quiet", str(source), commit)
    _git(clone, "checkout", "--quiet", "--detach", commit)
    (workdir / "shared").symlink_to(external, target_is_directory=True)
    return clone, commit


def run_environment(clone: Path) -> dict[str, str]:
    """This interpreter's environment, first on PATH, importing the clone's ``src`` first."""
    # MPLBACKEND is left unset, as `make repro` leaves it: a forced backend changes what the executed
    # notebooks show (no inline figures under Agg), so their bytes would differ from the committed ones
    env = {k: v for k, v in os.environ.items()
           if k not in {"SECMINE_EXTERNAL_DIR", "VIRTUAL_ENV_PROMPT", "MPLBACKEND"}}
    env.update(RUN_ENV)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    inherited = os.environ.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(clone / "src"), *([inherited] if inherited else [])])
    return env


def run_logged(command: Sequence[str], cwd: Path, env: dict[str, str], log: Path,
               echo: Callable[[str], None]) -> int:
    """Run ``command``, appending its output to ``log`` and echoing DVC's stage lines (progress)."""
    with open(log, "a", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if line.startswith(("Running stage", "Stage '", "ERROR", "Updating lock file")):
                echo("  " + line.rstrip())
        return process.wait()


def compare(clone: Path, stages: Sequence[StageInfo], *, cache_root: Path | None = None) -> list[StageReport]:
    """What differs from HEAD in ``clone``, grouped by stage (pipeline order, then files of no stage)."""
    import yaml

    reports: dict[str, StageReport] = {}

    def report(stage: str) -> StageReport:
        return reports.setdefault(stage, StageReport(stage))

    for status, path in changed_files(clone):
        if path == "dvc.lock":
            continue
        old = None if status == "??" else subprocess.run(["git", "-C", str(clone), "show", f"HEAD:{path}"],
                                                         capture_output=True, check=False).stdout
        current = clone / path
        new = current.read_bytes() if current.is_file() else None
        entry = report(stage_of(path, stages))
        entry.files.append(path)
        entry.reasons.append(file_reason(path, old, new))
    if any(path == "dvc.lock" for _, path in changed_files(clone)):
        committed = yaml.safe_load(_git(clone, "show", "HEAD:dvc.lock")) or {}
        now = yaml.safe_load((clone / "dvc.lock").read_text(encoding="utf-8")) or {}
        tracked = _git(clone, "ls-files").splitlines()
        for stage, entries in lock_changes(committed, now).items():
            entry = report(stage)
            for kind, path, old_md5 in entries:
                in_git = any(_inside(t, path) for t in tracked)  # git shows its changes (cache: false outs)
                if kind == "out" and not in_git:
                    entry.files.append(f"dvc.lock: {path}")
                    entry.reasons.append(cached_out_reason(path, old_md5, clone, cache_root))
                elif kind in {"cmd", "params"}:
                    entry.files.append(f"dvc.lock: {kind}")
                    entry.reasons.append(f"the stage's {kind} differs from the commit's lock")
            if not entry.files:
                entry.files.append("dvc.lock")
                entry.reasons.append("lock entry differs (dependencies only)")
    order = [s.name for s in stages] + [NO_STAGE]
    return sorted(reports.values(), key=lambda r: order.index(r.stage) if r.stage in order else len(order))


def verify(
    source: str | os.PathLike[str] = ".",
    *,
    fast: bool = False,
    stages: Sequence[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    keep: bool = False,
    external: str | os.PathLike[str] | None = None,
    prepare: Sequence[Sequence[str]] | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Rerun the pipeline of ``source``'s HEAD commit in a scratch clone and print what differs.

    ``fast``: only the stages that need no trained model; ``stages``: these (and what they need).
    ``workdir``: where the scratch clone goes (a new temporary folder by default, removed afterwards
    unless ``keep`` or the run failed).  ``external``: the data folder linked as ``../shared`` (by
    default ``$SECMINE_EXTERNAL_DIR`` or the ``../shared`` beside ``source``).  ``prepare``: commands
    run in the clone before ``dvc repro`` (default: ``secmine external-link``, as ``make repro`` does).
    Returns 0 when nothing differs, 1 when something does, 2 when the pipeline failed.
    """
    from secmine import config

    root = Path(_git(Path(source), "rev-parse", "--show-toplevel").strip())
    if external:
        data = Path(external).resolve()
    elif os.environ.get("SECMINE_EXTERNAL_DIR"):
        data = Path(os.environ["SECMINE_EXTERNAL_DIR"]).expanduser().resolve()
    else:
        data = (root.parent / "shared").resolve()
    if not (data / "ai_sec_dev").is_dir():
        raise VerifyError(f"{data}: no ai_sec_dev/ there; set SECMINE_EXTERNAL_DIR or pass --external "
                          f"(default: {config.default_external_dir().name} beside the checkout)")
    if _git(root, "status", "--porcelain", "--untracked-files=no").strip():
        echo(f"note: {root} has uncommitted changes; verify checks the commit, not them")
    scratch = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="secmine-verify-"))
    scratch.mkdir(parents=True, exist_ok=True)
    failed = False
    try:
        clone, commit = make_clone(root, scratch, data)
        all_stages = read_stages(clone)
        targets = list(stages) if stages else (fast_stages(all_stages) if fast else [])
        unknown = [t for t in targets if t not in {s.name for s in all_stages}]
        if unknown:
            names = ", ".join(s.name for s in all_stages)
            raise VerifyError(f"unknown stage(s) {', '.join(unknown)}; dvc.yaml has {names}")
        what = ", ".join(targets) if targets else "every stage"
        echo(f"verify: commit {commit[:12]} rerun in {clone} ({what})")
        env = run_environment(clone)
        log = scratch / "verify.log"
        python = sys.executable
        link = [python, "-m", "secmine.cli", *LINK_COMMAND]
        before = [list(c) for c in prepare] if prepare is not None else [link]
        for command in [*before, [python, "-m", "dvc", "repro", "--force", *targets]]:
            code = run_logged(command, clone, env, log, echo)
            if code != 0:
                failed = True
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
                echo(f"the pipeline failed ({' '.join(command[1:4])} exited {code}); log: {log}")
                echo("\n".join("  | " + line for line in tail))
                return 2
        cache = root / ".dvc" / "cache"
        reports = compare(clone, all_stages, cache_root=cache if cache.is_dir() else None)
        if not reports:
            echo(f"nothing differs: {what} reproduce commit {commit[:12]} byte for byte")
            return 0
        total = sum(len(r.files) for r in reports)
        echo(f"{total} tracked file(s) or lock entries differ from commit {commit[:12]}:")
        for entry in reports:
            echo(f"stage {entry.stage}: {entry.line()}")
            for name in entry.files:
                echo(f"    {name}")
        if not keep:
            echo("(rerun with --keep to inspect the scratch clone)")
        return 1
    finally:
        if keep or failed:
            echo(f"scratch clone kept in {scratch}")
        elif not workdir:
            shutil.rmtree(scratch, ignore_errors=True)


def verify_command(
    fast: bool = typer.Option(False, "--fast", help="only the stages that need no trained model "
                              "(external, collect, keywords, thematic): a few minutes"),
    stage: list[str] = typer.Option(None, "--stage",
                                    help="rerun only this stage and what it needs (repeatable)"),
    workdir: Path = typer.Option(None, help="where to put the scratch clone (default: a new temporary "
                                 "folder)"),
    keep: bool = typer.Option(False, "--keep", help="keep the scratch clone afterwards"),
    external: Path = typer.Option(None, help="the data folder to link as ../shared "
                                  "[default: $SECMINE_EXTERNAL_DIR or ../shared beside the checkout]"),
) -> None:
    """Rerun the pipeline on a scratch clone of the current commit and list every tracked file that
    differs, grouped by stage with a reason; exit 0 only when nothing differs."""
    try:
        code = verify(".", fast=fast, stages=stage or None, workdir=workdir, keep=keep, external=external,
                      echo=typer.echo)
    except VerifyError as exc:
        typer.echo(f"verify: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("verify", rich_help_panel="Reproducibility")(verify_command)


def main() -> None:
    """``python -m secmine.verify [--fast] ...``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
    app.command()(verify_command)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
