"""Text normalisation and the atomic, deterministic writers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from secmine.io import atomic_path, save_figure, write_json, write_table  # noqa: E402
from secmine.text import EXCEL_CELL_LIMIT, decode_escapes, is_truncated, join_thread_text, normalise_text  # noqa: E402


def test_decode_escapes_and_normalise() -> None:
    assert decode_escapes(r"a\nb\tc\rd") == "a\nb\tc\rd"
    assert normalise_text("  a \r\n\r\n\r\n b  <!-- template hint -->\n") == "a\n\nb"
    assert normalise_text(None) == ""
    # the same text from the replication sheet (escaped) and from the snapshot (real newlines)
    assert normalise_text(decode_escapes(r"Title\n\nBody")) == normalise_text("Title\r\n\r\nBody")
    assert join_thread_text("T", "B", ["c1", "", "c2"]) == "T\n\nB\n\nc1\n\nc2"


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
