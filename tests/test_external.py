"""The `external` stage: linking, validation, manifest, and the verified download."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from secmine import config, external


def test_git_blob_sha1_matches_git(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello\n")
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    assert external.git_blob_sha1(b"hello\n") == expected


def test_link_points_at_source_and_is_idempotent(tiny_replication: Path, tmp_path: Path) -> None:
    source = tiny_replication.parent
    dest = tmp_path / "data" / "external"
    result = external.link_external(source, dest_dir=dest, download_if_missing=False)
    assert (dest / "ai_sec_dev").is_symlink() and (dest / "ai_sec_dev" / "theme" / "mapped.csv").is_file()
    assert result["ai_issues"] == "absent" and (dest / "ai_issues").is_dir()
    (source / "ai_issues").mkdir()
    external.link_external(source, dest_dir=dest, download_if_missing=False)
    assert (dest / "ai_issues").is_symlink()


def test_missing_data_offline_gives_one_clear_paragraph(tmp_path: Path) -> None:
    with pytest.raises(external.ExternalDataError) as info:
        # port 9 on loopback: nothing listens, so the download fails at once
        external.link_external(tmp_path / "nowhere", dest_dir=tmp_path / "ext", api_url="http://127.0.0.1:9")
    message = str(info.value)
    assert "\n" not in message
    assert config.EXTERNAL_ENV_VAR in message and config.REPLICATION_COMMIT in message
    assert "ai_sec_dev" in message and "make repro" in message
    assert not (tmp_path / "ext" / "ai_sec_dev").exists()


def test_manifest_counts_and_checksums(tiny_replication: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    (snapshot / "issues.jsonl.gz").write_bytes(b"")
    import gzip

    with gzip.open(snapshot / "issues.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"platform": "github", "kind": "issue", "repo": "a/b", "number": 1}) + "\n")
    manifest = external.run_external_stage(
        tiny_replication, snapshot, tmp_path / "m.json", tmp_path / "metrics.json"
    )
    counts = manifest["counts"]
    assert counts["posts"] == 4 and counts["coded_posts"] == 4 and counts["snapshot_threads"] == 1
    assert counts["code_mentions"] == {"issue": 6, "solution": 2}
    mapped = tiny_replication / "theme" / "mapped.csv"
    assert manifest["files"]["ai_sec_dev/theme/mapped.csv"]["sha256"] == hashlib.sha256(mapped.read_bytes()).hexdigest()
    first = (tmp_path / "m.json").read_bytes()
    external.run_external_stage(tiny_replication, snapshot, tmp_path / "m.json", tmp_path / "metrics.json")
    assert (tmp_path / "m.json").read_bytes() == first
    with pytest.raises(external.ExternalDataError, match="required"):
        external.build_manifest(tiny_replication, tmp_path / "empty", require_snapshot=True)


def test_manifest_rejects_incomplete_package(tiny_replication: Path) -> None:
    (tiny_replication / "theme" / "mapped.csv").unlink()
    with pytest.raises(external.ExternalDataError, match="lacks theme/mapped.csv"):
        external.build_manifest(tiny_replication, tiny_replication.parent / "none")


# -- download from a fake GitHub API on 127.0.0.1 ----------------------------------------------


class _FakeGitHub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    corrupt: set[str] = set()
    hits: list[str] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(self.path)
        prefix = f"/repos/{config.REPLICATION_REPO}/git/"
        if self.path == f"{prefix}trees/{config.REPLICATION_COMMIT}?recursive=1":
            tree = [{"path": p, "type": "blob", "sha": external.git_blob_sha1(d)} for p, d in self.files.items()]
            tree.append({"path": "theme", "type": "tree", "sha": "0" * 40})
            tree.append({"path": "README.md", "type": "blob", "sha": external.git_blob_sha1(b"readme")})
            self._json({"sha": config.REPLICATION_COMMIT, "tree": tree, "truncated": False})
        elif self.path.startswith(f"{prefix}blobs/"):
            sha = self.path.rsplit("/", 1)[1]
            for path, data in self.files.items():
                if external.git_blob_sha1(data) == sha:
                    if path in self.corrupt:
                        data = data + b"tampered"
                    self._json({"sha": sha, "encoding": "base64", "content": base64.b64encode(data).decode()})
                    return
            self._json({"message": "Not Found"}, status=404)
        else:
            self._json({"message": "Not Found"}, status=404)

    def _json(self, obj: object, status: int = 200) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def fake_github(tiny_replication: Path) -> Iterator[str]:
    files = {
        p.relative_to(tiny_replication).as_posix(): p.read_bytes()
        for p in sorted(tiny_replication.rglob("*"))
        if p.is_file()
    }
    _FakeGitHub.files, _FakeGitHub.corrupt, _FakeGitHub.hits = files, set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_every_file(fake_github: str, tiny_replication: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ext" / "ai_sec_dev"
    written = external.download_replication(dest, api_url=fake_github)
    assert "README.md" not in written and "theme/mapped.csv" in written
    for rel in written:
        assert (dest / rel).read_bytes() == (tiny_replication / rel).read_bytes()
    assert (dest / ".secmine-download").is_file()
    # the downloaded copy validates like a local one
    assert external.build_manifest(dest, tmp_path / "none")["counts"]["posts"] == 4


def test_download_rejects_tampered_file_and_leaves_nothing(fake_github: str, tmp_path: Path) -> None:
    _FakeGitHub.corrupt = {"theme/mapped.csv"}
    dest = tmp_path / "ext" / "ai_sec_dev"
    with pytest.raises(external.ExternalDataError, match="theme/mapped.csv: checksum mismatch"):
        external.download_replication(dest, api_url=fake_github)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []


def test_link_downloads_when_no_local_copy(fake_github: str, tmp_path: Path) -> None:
    dest = tmp_path / "ext"
    result = external.link_external(tmp_path / "empty-source", dest_dir=dest, api_url=fake_github)
    assert result["ai_sec_dev"] == "downloaded"
    assert (dest / "ai_sec_dev" / "theme" / "data.xlsx").is_file()
    # a second link keeps the verified download instead of fetching again
    hits = len(_FakeGitHub.hits)
    assert external.link_external(tmp_path / "empty-source", dest_dir=dest, api_url=fake_github)["ai_sec_dev"] == "downloaded (kept)"
    assert len(_FakeGitHub.hits) == hits


def test_real_external_data_validates(external_root: Path, tmp_path: Path) -> None:
    manifest = external.build_manifest(external_root / "ai_sec_dev", external_root / "ai_issues")
    counts = manifest["counts"]
    assert counts["issue_codes"] == 32 and counts["solution_codes"] == 24
    assert counts["coded_posts"] > 0 and counts["snapshot_threads"] > 0
    assert "ai_issues/issues.jsonl.gz" in manifest["files"]


def test_cli_validate_and_clear_error(tiny_replication: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from secmine.cli import app

    runner = CliRunner()
    args = [
        "external",
        "--replication-dir", str(tiny_replication),
        "--snapshot-dir", str(tmp_path / "none"),
        "--manifest", str(tmp_path / "out" / "manifest.json"),
        "--metrics", str(tmp_path / "out" / "metrics.json"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["coded_posts"] == 4
    (tiny_replication / "theme" / "data.xlsx").unlink()
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "lacks theme/data.xlsx" in result.output and "Traceback" not in result.output
