"""What a report was built from, named by content only (no commit id, no time).

The report page and the executed notebooks are committed, and a rerun must leave ``git status``
clean, so nothing here may change unless the inputs do: the code is named by the git *tree* id of
``src/`` and ``notebooks/`` as they are on disk (what ``git rev-parse HEAD:src`` prints once they
are committed, computed with a scratch index so uncommitted edits show), the pipeline's results
by the md5 of each stage's outputs in ``dvc.lock`` (the ``report`` stage itself left out, since
DVC writes its entry after the page), the external data by the SHA-256 of each file in
``data/external/manifest.json``, and the environment by the installed versions of the packages the
project pins.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

KEY_PACKAGES: tuple[str, ...] = (
    "python", "secmine", "torch", "transformers", "sentence-transformers", "onnxruntime", "scikit-learn", "pandas",
    "numpy", "matplotlib", "seaborn", "bertopic", "statsmodels", "papermill", "nbconvert", "dvc", "itables",
    "ipywidgets",
)


def tree_id(root: str | os.PathLike[str], folder: str) -> str | None:
    """The git tree id of ``folder`` (relative to the repository ``root``) as it is on disk, tracked
    and untracked-but-not-ignored files included; None outside a git repository."""
    root = Path(root)
    if not (root / folder).exists():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        try:
            subprocess.run(["git", "-C", str(root), "add", "-A", "--", folder], env=env, check=True,
                           capture_output=True, timeout=120)
            out = subprocess.run(["git", "-C", str(root), "write-tree", f"--prefix={folder.rstrip('/')}/"], env=env,
                                 check=True, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return None
    return out.stdout.strip() or None


def content_digest(root: str | os.PathLike[str], folder: str) -> str:
    """SHA-256 over the sorted relative paths and bytes of the files under ``folder`` (outside git)."""
    digest = hashlib.sha256()
    base = Path(root) / folder
    for path in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_ids(root: str | os.PathLike[str], folders: Iterable[str] = ("src", "notebooks")) -> dict[str, str]:
    """``{folder: "git tree <id>"}`` (or ``"sha256 <digest>"`` without git) for each folder."""
    out = {}
    for folder in folders:
        if not (Path(root) / folder).exists():
            continue
        tid = tree_id(root, folder)
        out[folder] = f"git tree {tid}" if tid else f"sha256 {content_digest(root, folder)}"
    return out


def input_digests(paths: Iterable[str | os.PathLike[str]], *, root: str | os.PathLike[str] = ".") -> list[dict[str, str]]:
    """``path, md5`` of every file under ``paths`` (files or folders), relative to ``root``: the
    results a page was built from, named by content (the MD5 DVC records for them too)."""
    import hashlib

    base = Path(root)
    rows = []
    for given in paths:
        path = Path(given)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.is_file() or any(part.startswith(".") for part in file.parts):
                continue
            digest = hashlib.md5(file.read_bytes(), usedforsecurity=False).hexdigest()
            try:
                shown = file.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                shown = file.as_posix()
            rows.append({"path": shown, "md5": digest})
    return rows


def data_checksums(manifest: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """``file, bytes, sha256`` of every external file in the manifest (empty without one)."""
    path = Path(manifest)
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    files = data.get("files") or {}
    return [{"file": name, "bytes": info.get("bytes"), "sha256": info.get("sha256")} for name, info in sorted(files.items())]


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``python``: the interpreter's); absent packages left out."""
    import platform
    from importlib import metadata

    out: dict[str, str] = {}
    for name in names:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def params_text(params: str | os.PathLike[str]) -> str:
    """``params.yaml`` as written (it holds no secrets: tokens come only from the environment)."""
    path = Path(params)
    return path.read_text(encoding="utf-8") if path.is_file() else ""


__all__ = ["KEY_PACKAGES", "code_ids", "content_digest", "data_checksums", "input_digests", "package_versions",
           "params_text", "tree_id"]
