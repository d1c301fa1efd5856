"""The RQ2 and RQ3 taxonomy tables as a paper prints them.

One table per code type: themes, their sub-themes and their codes in codebook order, each row
with its **frequency** (mentions) and **coverage** (% of the platform's coded posts holding at least
one code of the row) for Hugging Face, GitHub and all posts.  Written by the ``thematic`` stage as

* ``rq2_taxonomy.csv`` / ``rq3_taxonomy.csv``: one row per theme, sub-theme and code (``level``
  says which), full precision;
* ``.md``: the same rows indented (theme bold, sub-theme italic), numbers right-aligned, for the
  README and the report page;
* ``.tex``: a ``table*`` with booktabs rules, grouped headers (Hugging Face / GitHub / Total, each
  Freq. and Cov. (%)), human headers, right-aligned numbers, in ``\\footnotesize`` so the 47 issue
  rows fit a page; with more than ``max_rows`` rows it is split by theme into several tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.io import booktabs_table, latex_escape, write_csv, write_text
from secmine.thematic.counting import MAIN_GROUPS, coverage

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.codebook import Codebook, CodeType
    from secmine.replication import CodedSample

STEMS: dict[str, str] = {"issue": "rq2_taxonomy", "solution": "rq3_taxonomy"}
GROUP_NAMES: dict[str, str] = {"hf": "Hugging Face", "gh": "GitHub", "total": "Total"}
CAPTIONS: dict[str, str] = {
    "issue": "RQ2: the taxonomy of security issues, with frequency (mentions) and coverage (\\% of the coded posts) "
    "per platform",
    "solution": "RQ3: the taxonomy of solutions, with frequency (mentions) and coverage (\\% of the coded posts) "
    "per platform",
}
COLUMNS = ["level", "theme", "sub_theme", "code", *[f"{g}_{m}" for g in MAIN_GROUPS for m in ("freq", "pct")]]
MAX_ROWS = 50


def taxonomy_table(posts: pd.DataFrame, mentions: pd.DataFrame, codebook: Codebook, code_type: CodeType) -> pd.DataFrame:
    """Themes, sub-themes and codes (codebook order, each theme followed by its sub-themes, each
    sub-theme by its codes) with ``{hf,gh,total}_freq`` and ``{hf,gh,total}_pct`` (coverage)."""
    import pandas as pd

    levels = {level: coverage(posts, mentions, codebook, code_type, level=level, groups=MAIN_GROUPS)
              for level in ("theme", "sub_theme", "code")}
    rows: list[dict[str, object]] = []

    def add(level: str, record: pd.Series) -> None:
        row: dict[str, object] = {
            "level": level,
            "theme": record["theme"],
            "sub_theme": record["sub_theme"] if level != "theme" else "",
            "code": record["code"] if level == "code" else "",
        }
        for group in MAIN_GROUPS:
            row[f"{group}_freq"] = int(record[f"{group}_freq"])
            row[f"{group}_pct"] = float(record[f"{group}_pct"])
        rows.append(row)

    for _, theme in levels["theme"].iterrows():
        add("theme", theme)
        subs = levels["sub_theme"][levels["sub_theme"]["theme"] == theme["theme"]]
        for _, sub in subs.iterrows():
            add("sub_theme", sub)
            codes = levels["code"][levels["code"]["sub_theme"] == sub["sub_theme"]]
            for _, code in codes.iterrows():
                add("code", code)
    return pd.DataFrame(rows, columns=COLUMNS)


def sample_tables(sample: CodedSample) -> dict[str, pd.DataFrame]:
    """Both taxonomy tables of a coded sample, by stem (:data:`STEMS`)."""
    return {stem: taxonomy_table(sample.posts, sample.mentions, sample.codebook, code_type)  # type: ignore[arg-type]
            for code_type, stem in STEMS.items()}


def _label(row: pd.Series) -> str:
    return str(row["code"] or row["sub_theme"] or row["theme"])


def _pct(value: float) -> str:
    return "" if value != value else f"{value:.2f}"  # NaN: no coded post of the platform


def to_markdown(table: pd.DataFrame, n_posts: dict[str, int] | None = None) -> str:
    """The table in Markdown: one label column indented by level, numbers right-aligned."""
    header = ["Theme / sub-theme / code"]
    for group in MAIN_GROUPS:
        n = f", n={n_posts[group]}" if n_posts and group in n_posts else ""
        header += [f"{GROUP_NAMES[group]}{n}: freq.", f"{GROUP_NAMES[group]}: cov. (%)"]
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1)]
    for _, row in table.iterrows():
        label = _label(row).replace("|", "\\|")
        if row["level"] == "theme":
            label = f"**{label}**"
        elif row["level"] == "sub_theme":
            label = f"&emsp;*{label}*"
        else:
            label = f"&emsp;&emsp;{label}"
        cells = [label]
        for group in MAIN_GROUPS:
            cells += [str(int(row[f"{group}_freq"])), _pct(float(row[f"{group}_pct"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _latex_rows(table: pd.DataFrame) -> list[str | None]:
    body: list[str | None] = []
    for position, (_, row) in enumerate(table.iterrows()):
        label = latex_escape(_label(row))
        if row["level"] == "theme":
            if position:
                body.append(None)
            label = f"\\textbf{{{label}}}"
            numbers = [f"\\textbf{{{int(row[f'{g}_freq'])}}} & \\textbf{{{_pct(float(row[f'{g}_pct']))}}}"
                       for g in MAIN_GROUPS]
        else:
            label = f"\\quad\\textit{{{label}}}" if row["level"] == "sub_theme" else f"\\qquad {label}"
            numbers = [f"{int(row[f'{g}_freq'])} & {_pct(float(row[f'{g}_pct']))}" for g in MAIN_GROUPS]
        body.append(" & ".join([label, *numbers]))
    return body


def to_latex(
    table: pd.DataFrame,
    code_type: CodeType,
    *,
    n_posts: dict[str, int] | None = None,
    max_rows: int = MAX_ROWS,
) -> str:
    """The table in LaTeX (booktabs, ``table*``, ``\\footnotesize``); split by theme into
    consecutive tables ("continued") when it has more than ``max_rows`` rows."""
    header_cells = []
    for group in MAIN_GROUPS:
        n = f" ($n={n_posts[group]}$)" if n_posts and group in n_posts else ""
        header_cells.append(f"\\multicolumn{{2}}{{c}}{{{GROUP_NAMES[group]}{n}}}")
    spans = "".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(MAIN_GROUPS)))
    headers = [
        " & " + " & ".join(header_cells) + " \\\\",
        spans,
        "Theme / sub-theme / code & " + " & ".join(["Freq. & Cov. (\\%)"] * len(MAIN_GROUPS)) + " \\\\",
    ]
    parts = _split_by_theme(table, max_rows)
    kind = "rq2" if code_type == "issue" else "rq3"
    out = []
    for number, part in enumerate(parts, start=1):
        caption = CAPTIONS[code_type] + (f" (part {number} of {len(parts)})" if len(parts) > 1 else "")
        label = f"tab:{kind}-taxonomy" + (f"-{number}" if len(parts) > 1 else "")
        out.append(
            booktabs_table(
                headers,
                _latex_rows(part),
                column_format="@{}p{0.52\\textwidth}" + "rr" * len(MAIN_GROUPS) + "@{}",
                caption=caption,
                label=label,
                environment="table*",
                size="footnotesize",
            )
        )
    return "\n".join(out)


def _split_by_theme(table: pd.DataFrame, max_rows: int) -> list[pd.DataFrame]:
    """Consecutive slices of whole themes, each at most ``max_rows`` rows (a theme longer than
    that is a slice of its own)."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    starts = [i for i, level in enumerate(table["level"]) if level == "theme"] + [len(table)]
    parts: list[pd.DataFrame] = []
    begin = 0
    for start, end in zip(starts[:-1], starts[1:]):
        if end - begin > max_rows and start > begin:
            parts.append(table.iloc[begin:start])
            begin = start
    parts.append(table.iloc[begin:])
    return [p.reset_index(drop=True) for p in parts if len(p)]


def write_taxonomy_tables(
    sample: CodedSample, tables_dir: str | os.PathLike[str], *, max_rows: int = MAX_ROWS
) -> list[Path]:
    """Write ``rq2_taxonomy`` and ``rq3_taxonomy`` as CSV, Markdown and LaTeX; return the paths."""
    from secmine.thematic.counting import post_counts

    n_posts = post_counts(sample.posts, MAIN_GROUPS)
    folder = Path(tables_dir)
    written: list[Path] = []
    for code_type, stem in STEMS.items():
        table = taxonomy_table(sample.posts, sample.mentions, sample.codebook, code_type)  # type: ignore[arg-type]
        written.append(write_csv(table, folder / f"{stem}.csv"))
        written.append(write_text(folder / f"{stem}.md", to_markdown(table, n_posts)))
        written.append(write_text(folder / f"{stem}.tex", to_latex(table, code_type, n_posts=n_posts, max_rows=max_rows)))  # type: ignore[arg-type]
    return sorted(written)


def output_files(tables_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file :func:`write_taxonomy_tables` writes."""
    return sorted(Path(tables_dir) / f"{stem}.{fmt}" for stem in STEMS.values() for fmt in ("csv", "md", "tex"))
