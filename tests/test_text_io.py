"""Text normalisation and the atomic, deterministic writers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from secmine.io import atomic_dir, atomic_path, save_figure, write_json, write_table  # noqa: E402
from secmine.text import (  # noqa: E402
    EXCEL_CELL_LIMIT,
    canonical_text,
    decode_escapes,
    is_truncated,
    normalise_text,
    text_hash,
    thread_text,
)


def test_decode_escapes_and_normalise() -> None:
    assert decode_escapes(r"a\nb\tc\rd") == "a\nb\tc\rd"
    assert normalise_text("  a \r\n\r\n\r\n b  <!-- template hint -->\n") == "a\n\nb"
    assert normalise_text(None) == ""
    # the same text from the replication sheet (escaped) and from the snapshot (real newlines)
    assert normalise_text(decode_escapes(r"Title\n\nBody")) == normalise_text("Title\r\n\r\nBody")
    assert thread_text("T", "B", ["c1", "", {"body": "c2"}]) == "T B c1 c2"
    # one form whatever the source: the sheet's escaped one-liner and the snapshot's structured thread
    assert canonical_text(r"Title Body\nline two") == thread_text("Title", "Body\r\nline two")
    assert canonical_text("x" * 50, None) == "x" * 50 and canonical_text("x" * 50, 10) == "x" * 10


def test_one_text_hash() -> None:
    assert text_hash("a") == text_hash("a") != text_hash("b")
    assert text_hash("a", key="minilm") != text_hash("a") and len(text_hash("a")) == 64


def test_truncation_flag() -> None:
    assert is_truncated("x" * EXCEL_CELL_LIMIT)
    assert not is_truncated("x" * (EXCEL_CELL_LIMIT - 1))


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others, like a plain open()


def test_atomic_dir_replaces_whole_folders_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_dir(target) as staging:
        (staging / "a.txt").write_text("first")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and (target.stat().st_mode & 0o777) == 0o755
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:  # a failed rewrite: old folder intact
        (staging / "b.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as staging:  # a successful one replaces it entirely
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not ours")
    link = tmp_path / "linked"
    link.symlink_to(elsewhere)
    with atomic_dir(link) as staging:  # a link is replaced, what it pointed to is left alone
        (staging / "c.txt").write_text("third")
    assert not link.is_symlink() and sorted(p.name for p in link.iterdir()) == ["c.txt"]
    assert (elsewhere / "keep.txt").read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "linked", "model"]  # no staging left


def test_tables_and_figures_are_byte_identical(tmp_path: Path) -> None:
    df = pd.DataFrame({"theme": ["Model", "Data"], "share": [0.12345, 0.5]})
    a = write_table(df, tmp_path / "a" / "t", caption="A table")
    b = write_table(df, tmp_path / "b" / "t", caption="A table")
    for fmt in ("csv", "md", "tex"):
        assert a[fmt].read_bytes() == b[fmt].read_bytes()
    assert "0.12" in a["md"].read_text() and "0.12345" in a["csv"].read_text()

    def figure() -> plt.Figure:
        fig, ax = plt.subplots()
        ax.bar(["x", "y"], [1, 2])
        return fig

    fa, fb = save_figure(figure(), tmp_path / "a" / "f"), save_figure(figure(), tmp_path / "b" / "f")
    for fmt in ("png", "svg"):
        assert fa[fmt].read_bytes() == fb[fmt].read_bytes()
    write_json(tmp_path / "m.json", {"b": 1, "a": 2})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
