"""write_table's options for tables printed in a paper; the default output is unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from secmine.io import booktabs_table, latex_escape, write_table


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"sub_theme": ["Code Execution", "Data_Exposure"], "total_freq": [7, 2], "total_pct": [62.5, 25.0]})


def test_default_output_is_what_pandas_writes(tmp_path: Path) -> None:
    frame = _frame()
    paths = write_table(frame, tmp_path / "t", caption="c")
    shown = frame.assign(total_pct=frame["total_pct"].map("{:.2f}".format))
    assert paths["tex"].read_text() == shown.to_latex(index=False, caption="c", escape=True, longtable=False)
    assert paths["md"].read_text() == shown.to_markdown(index=False) + "\n"


def test_headers_alignment_and_wide_environment(tmp_path: Path) -> None:
    paths = write_table(
        _frame(), tmp_path / "t", headers={"sub_theme": "Sub-theme", "total_freq": "Freq.", "total_pct": "Cov. (%)"},
        align="lrr", environment="table*", label="tab:x", caption="c",
    )
    tex = paths["tex"].read_text()
    assert tex.startswith("\\begin{table*}") and tex.rstrip().endswith("\\end{table*}")
    assert "\\begin{tabular}{lrr}" in tex and "Sub-theme & Freq. & Cov. (\\%)" in tex and "\\label{tab:x}" in tex
    assert "Data\\_Exposure" in tex and "\\toprule" in tex
    md = paths["md"].read_text().splitlines()
    assert md[0].startswith("| Sub-theme") and md[1].endswith("---:|")
    assert pd.read_csv(paths["csv"]).columns.tolist() == ["sub_theme", "total_freq", "total_pct"]


def test_bad_alignment_names_the_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="write_table t: align needs one of l/c/r per shown column"):
        write_table(_frame(), tmp_path / "t", align="lr")
    with pytest.raises(ValueError, match="environment is 'table' or 'table\\*'"):
        write_table(_frame(), tmp_path / "t", environment="longtable")


def test_booktabs_table_and_escaping() -> None:
    assert latex_escape("a_b & 5% {x}") == "a\\_b \\& 5\\% \\{x\\}"
    tex = booktabs_table(["A & B \\\\"], ["1 & 2", None, "3 & 4"], column_format="lr", environment="table*",
                         size="footnotesize", caption="cap", label="tab:y")
    lines = tex.splitlines()
    assert lines[:6] == ["\\begin{table*}[t]", "\\centering", "\\caption{cap}", "\\label{tab:y}", "\\footnotesize",
                         "\\begin{tabular}{lr}"]
    assert lines[6:] == ["\\toprule", "A & B \\\\", "\\midrule", "1 & 2 \\\\", "\\midrule", "3 & 4 \\\\", "\\bottomrule",
                         "\\end{tabular}", "\\end{table*}"]
