"""The ``external`` stage: locate, link, validate and checksum the external data.

The external data is two folders under one directory (``$SECMINE_EXTERNAL_DIR``, default
``../shared``):

* ``ai_sec_dev/`` — the authors' replication package (required);
* ``ai_issues/`` — a thread corpus snapshot (``issues.jsonl.gz``, optional ``security_labels.csv``).

:func:`link_external` makes ``data/external/ai_sec_dev`` and ``data/external/ai_issues`` point at
them (symbolic links, so nothing is copied into the repository), or, when no local copy of the
replication package exists, downloads it from the authors' repository at the pinned commit,
verifying every file against the git blob hash of that commit's tree.
:func:`build_manifest` validates what is there (every table is loaded through its typed loader)
and records a SHA-256 per file, so downstream stages rerun exactly when the data changes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from secmine import config
from secmine.errors import SecmineError

GITHUB_API_ENV = "SECMINE_GITHUB_API"
DEFAULT_GITHUB_API = "https://api.github.com"

# Folders of the authors' repository that the study reads.
REPLICATION_PREFIXES: tuple[str, ...] = ("theme/", "classifier/")
REQUIRED_REPLICATION_FILES: tuple[str, ...] = (
    "theme/data.xlsx",
    "theme/mapped.csv",
    "theme/keypoints_codes.xlsx",
    "theme/issue_theme_summary.csv",
    "theme/solution_theme_summary.csv",
    "classifier/manual/all.csv",
    "classifier/test/test.csv",
)
SNAPSHOT_FILE = "issues.jsonl.gz"
SNAPSHOT_LABELS_FILE = "security_labels.csv"


class ExternalDataError(SecmineError, RuntimeError):
    """The external data is missing or invalid; the message says how to provide it."""


def how_to_provide(source_dir: Path, reason: str) -> str:
    """One clear paragraph on how to provide the replication package."""
    return (
        f"The replication package of the paper (folder 'ai_sec_dev') was not found under {source_dir} "
        f"and could not be downloaded ({reason}). Provide it in one of two ways, then rerun 'make repro': "
        f"(1) put a folder holding 'ai_sec_dev/' (a clone of https://github.com/{config.REPLICATION_REPO} at "
        f"commit {config.REPLICATION_COMMIT}) and, optionally, 'ai_issues/' (a thread snapshot "
        f"'{SNAPSHOT_FILE}') somewhere and set {config.EXTERNAL_ENV_VAR} to that folder; or (2) place them "
        f"at {config.default_external_dir()} (the default). With network access to GitHub the package is "
        f"downloaded and verified automatically (set GITHUB_TOKEN to avoid the anonymous rate limit)."
    )


# -- linking -----------------------------------------------------------------------------------


def _replace_with_link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target``, replacing an older link (never a real folder of data)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
        link.unlink()
    elif link.exists():
        # A real folder here is a downloaded copy or an empty placeholder: replace it only if empty
        # or if it is a download we made (it has our marker).
        if link.is_dir() and (not any(link.iterdir()) or (link / ".secmine-download").exists()):
            shutil.rmtree(link)
        else:
            raise ExternalDataError(f"{link} exists and is not a link made by secmine; move it away first")
    tmp = link.with_name(f".{link.name}.tmp-link")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)


def link_external(
    source_dir: str | os.PathLike[str] | None = None,
    *,
    dest_dir: str | os.PathLike[str] | None = None,
    download_if_missing: bool = True,
    api_url: str | None = None,
) -> dict[str, str]:
    """Make ``data/external/{ai_sec_dev,ai_issues}`` (or the same under ``dest_dir``) point at the
    external data.

    Returns what each link points to (or ``downloaded``/``absent``).  Raises
    :class:`ExternalDataError` with a paragraph on how to provide the data when the replication
    package is neither there nor downloadable.
    """
    source = Path(source_dir).resolve() if source_dir is not None else config.external_source_dir()
    result: dict[str, str] = {}
    dest = Path(dest_dir) if dest_dir is not None else config.EXTERNAL_DATA_DIR
    replication_link = dest / "ai_sec_dev"
    if (source / "ai_sec_dev").is_dir():
        _replace_with_link(replication_link, source / "ai_sec_dev")
        result["ai_sec_dev"] = str(source / "ai_sec_dev")
    elif replication_link.is_dir() and not replication_link.is_symlink() and (replication_link / ".secmine-download").exists():
        result["ai_sec_dev"] = "downloaded (kept)"
    elif download_if_missing:
        try:
            download_replication(replication_link, api_url=api_url)
        except ExternalDataError:
            raise
        except Exception as exc:  # network errors of any kind
            raise ExternalDataError(how_to_provide(source, f"{type(exc).__name__}: {exc}")) from exc
        result["ai_sec_dev"] = "downloaded"
    else:
        raise ExternalDataError(how_to_provide(source, "download disabled"))

    snapshot_link = dest / "ai_issues"
    if (source / "ai_issues").is_dir():
        _replace_with_link(snapshot_link, source / "ai_issues")
        result["ai_issues"] = str(source / "ai_issues")
    else:
        # No snapshot: an empty folder keeps the pipeline's declared dependency valid; the corpus
        # then holds the replication posts only (or a live crawl).
        if snapshot_link.is_symlink():
            snapshot_link.unlink()
        snapshot_link.mkdir(parents=True, exist_ok=True)
        result["ai_issues"] = "absent"
    return result


# -- download ----------------------------------------------------------------------------------


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def download_replication(
    destination: str | os.PathLike[str],
    *,
    api_url: str | None = None,
    repo: str = config.REPLICATION_REPO,
    commit: str = config.REPLICATION_COMMIT,
    prefixes: Iterable[str] = REPLICATION_PREFIXES,
    timeout: float = 60.0,
) -> list[str]:
    """Download the replication package's data files at ``commit`` through the GitHub REST API.

    The tree of the pinned commit lists every file with its git blob hash; each downloaded file is
    verified against it, so a file that differs from the authors' commit is rejected.  Files land
    in a temporary folder that is renamed onto ``destination`` only when all are verified.
    Returns the relative paths written.
    """
    import requests
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    base = (api_url or os.environ.get(GITHUB_API_ENV) or DEFAULT_GITHUB_API).rstrip("/")
    session = requests.Session()
    session.headers["Accept"] = "application/vnd.github+json"
    token = os.environ.get("GITHUB_TOKEN", "").split(",")[0].strip()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"

    @retry(
        retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, _Retryable)),
        stop=stop_after_attempt(4),
        wait=wait_exponential(multiplier=0.5, max=8),
        reraise=True,
    )
    def get_json(url: str) -> Any:
        response = session.get(url, timeout=timeout)
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise _Retryable(f"{url}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise ExternalDataError(f"{url}: HTTP {response.status_code}")
        return response.json()

    tree = get_json(f"{base}/repos/{repo}/git/trees/{commit}?recursive=1")
    if tree.get("truncated"):
        raise ExternalDataError(f"the tree of {repo}@{commit} is too large to list in one request")
    prefixes = tuple(prefixes)
    blobs = [
        item
        for item in tree.get("tree", [])
        if item.get("type") == "blob" and str(item.get("path", "")).startswith(prefixes)
    ]
    missing = sorted(set(REQUIRED_REPLICATION_FILES) - {b["path"] for b in blobs})
    if missing:
        raise ExternalDataError(f"{repo}@{commit} lacks {', '.join(missing)}")
    from tqdm.auto import tqdm

    from secmine.io import atomic_dir

    written = []
    with atomic_dir(destination) as staging:
        for item in tqdm(sorted(blobs, key=lambda b: b["path"]), desc="replication package", unit="file"):
            payload = get_json(f"{base}/repos/{repo}/git/blobs/{item['sha']}")
            if payload.get("encoding") != "base64":
                raise ExternalDataError(f"{item['path']}: unexpected blob encoding {payload.get('encoding')!r}")
            data = base64.b64decode(payload.get("content", ""))
            if git_blob_sha1(data) != item["sha"]:
                raise ExternalDataError(
                    f"{item['path']}: checksum mismatch (expected git blob {item['sha']}, got {git_blob_sha1(data)})"
                )
            target = staging / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(item["path"])
        (staging / ".secmine-download").write_text(f"{repo}@{commit}\n", encoding="utf-8")
    return written


class _Retryable(RuntimeError):
    pass


# -- validation and manifest -------------------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def build_manifest(
    replication_dir: str | os.PathLike[str] | None = None,
    snapshot_dir: str | os.PathLike[str] | None = None,
    *,
    require_snapshot: bool = False,
) -> dict[str, Any]:
    """Validate the external data and describe it: files with SHA-256 and size, and counts.

    Every table of the replication package goes through its typed loader, so a bad file fails
    here with its name, row and field.  The snapshot is read in full (every line checked).
    """
    from secmine import replication
    from secmine.codebook import Codebook

    rep = Path(replication_dir) if replication_dir is not None else config.replication_dir()
    snap = Path(snapshot_dir) if snapshot_dir is not None else config.snapshot_dir()
    if not rep.is_dir():
        raise ExternalDataError(how_to_provide(config.external_source_dir(), f"{rep} is missing"))
    missing = [name for name in REQUIRED_REPLICATION_FILES if not (rep / name).is_file()]
    if missing:
        raise ExternalDataError(f"{rep}: the replication package lacks {', '.join(missing)}")

    codebook = Codebook.from_replication(rep)
    posts = replication.load_posts(rep)
    coded = replication.load_coded_sample(rep, codebook=codebook, posts=posts)
    keypoints = replication.load_keypoints(rep)
    labelled = replication.load_labelled(rep)
    try:
        security_only = replication.load_security_only(rep)
    except replication.ReplicationError:
        security_only = None

    counts: dict[str, Any] = {
        "codebook_version": codebook.version,
        "issue_codes": len(codebook.of_type("issue")),
        "solution_codes": len(codebook.of_type("solution")),
        "posts": len(posts),
        "posts_truncated": int(posts["truncated"].sum()),
        "posts_by_source": {k: int(v) for k, v in sorted(posts["source"].value_counts().items())},
        "coded_posts": coded.n_posts,
        "code_mentions": {t: int((coded.mentions["type"] == t).sum()) for t in ("issue", "solution")},
        "coding_warnings": len(coded.warnings),
        "keypoint_posts": len(keypoints),
        "labelled": {s: int((labelled["split"] == s).sum()) for s in ("train", "test")},
        "labelled_security": int(labelled["is_security"].sum()),
        "security_only_ids": (
            {k: int(v) for k, v in sorted(security_only.groupby(["platform", "kind"]).size().rename(lambda x: x).items())}
            if security_only is not None
            else {}
        ),
    }
    counts["security_only_ids"] = {f"{p}/{k}": v for (p, k), v in counts["security_only_ids"].items()}

    snapshot_threads = None
    if (snap / SNAPSHOT_FILE).is_file():
        from secmine.snapshot import read_snapshot

        snapshot_threads = sum(1 for _ in read_snapshot(snap / SNAPSHOT_FILE))
    elif require_snapshot:
        raise ExternalDataError(f"{snap / SNAPSHOT_FILE}: snapshot required (external.require_snapshot) but absent")
    counts["snapshot_threads"] = snapshot_threads

    files = {}
    for label, folder in (("ai_sec_dev", rep), ("ai_issues", snap)):
        for path in _files(folder):
            files[f"{label}/{path.relative_to(folder).as_posix()}"] = {
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
            }
    return {
        "replication": {"repo": config.REPLICATION_REPO, "pinned_commit": config.REPLICATION_COMMIT},
        "counts": counts,
        "files": files,
    }


def run_external_stage(
    replication_dir: str | os.PathLike[str],
    snapshot_dir: str | os.PathLike[str],
    manifest_path: str | os.PathLike[str],
    metrics_path: str | os.PathLike[str],
    *,
    require_snapshot: bool = False,
) -> dict[str, Any]:
    """Validate, then write the manifest (files and counts) and the metrics (counts only)."""
    from secmine.io import write_json

    manifest = build_manifest(replication_dir, snapshot_dir, require_snapshot=require_snapshot)
    write_json(manifest_path, manifest)
    counts = manifest["counts"]
    metrics = {
        key: counts[key]
        for key in ("posts", "coded_posts", "issue_codes", "solution_codes", "snapshot_threads", "posts_truncated")
    }
    metrics["code_mentions"] = counts["code_mentions"]
    metrics["labelled"] = counts["labelled"]
    write_json(metrics_path, metrics)
    return manifest


# -- command line ------------------------------------------------------------------------------


def link_command(
    source: Path = typer.Option(None, help=f"folder holding ai_sec_dev/ and ai_issues/ (default: ${config.EXTERNAL_ENV_VAR} or ../shared)"),
    download: bool = typer.Option(True, help="download the replication package when no local copy exists"),
    api_url: str = typer.Option(None, help=f"GitHub API base URL (default: ${GITHUB_API_ENV} or {DEFAULT_GITHUB_API})"),
) -> None:
    """Point data/external/ at the external data (or download the replication package); `make repro` runs it."""
    result = link_external(source, download_if_missing=download, api_url=api_url)
    for name, target in result.items():
        typer.echo(f"data/external/{name} -> {target}")


def download_command(
    destination: Path = typer.Option(Path("data/external/ai_sec_dev"), help="folder to download into"),
    api_url: str = typer.Option(None, help=f"GitHub API base URL (default: ${GITHUB_API_ENV} or {DEFAULT_GITHUB_API})"),
) -> None:
    """Download and verify the replication package at the pinned commit."""
    files = download_replication(destination, api_url=api_url)
    typer.echo(f"{len(files)} files downloaded and verified into {destination}")


def register(app: typer.Typer) -> None:
    app.command("external-link", rich_help_panel="Data")(link_command)
    app.command("external-download", rich_help_panel="Data")(download_command)
