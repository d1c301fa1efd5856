"""The RQ2/RQ3 tables: built from :class:`~secmine.thematic.counting.ThematicCounts`, written as
CSV + Markdown + LaTeX under ``reports/tables/`` by :func:`secmine.io.write_table`.

Contract (the ``thematic`` DVC stage declares every file): :data:`TABLE_STEMS` lists the stems;
``rq2_issues`` and ``rq3_solutions`` have exactly the columns ``theme, sub_theme, code, hf, gh,
total``, code names spelled as in the taxonomy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.io import TABLE_FORMATS, write_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.codebook import Codebook
    from secmine.thematic.counting import ThematicCounts

CODE_COLUMNS = ["theme", "sub_theme", "code", "hf", "gh", "total"]

# stem -> caption (also the order the notebook shows them in)
TABLE_CAPTIONS: dict[str, str] = {
    "rq2_issues": "RQ2: security issue codes, frequency (mentions) per platform",
    "rq3_solutions": "RQ3: solution codes, frequency (mentions) per platform",
    "rq2_issues_by_source": "RQ2: security issue codes, frequency per source",
    "rq3_solutions_by_source": "RQ3: solution codes, frequency per source",
    "rq2_issue_themes": "RQ2: issue themes, frequency and coverage (posts, % of coded posts) per platform",
    "rq2_issue_sub_themes": "RQ2: issue sub-themes, frequency and coverage per platform",
    "rq3_solution_themes": "RQ3: solution themes, frequency and coverage per platform",
    "rq3_solution_sub_themes": "RQ3: solution sub-themes, frequency and coverage per platform",
    "rq3_cooccurrence_codes": "RQ3: issue -> solution co-occurrence within posts, by code",
    "rq3_cooccurrence_sub_themes": "RQ3: issue -> solution co-occurrence within posts, by sub-theme",
    "rq3_cooccurrence_pairs": "RQ3: co-occurring issue -> solution code pairs, most frequent first",
    "rq3_lack_of_solutions_codes": "RQ3: issue codes without solutions",
    "rq3_lack_of_solutions_sub_themes": "RQ3: issue sub-themes without solutions",
    "rq3_lack_of_solutions_themes": "RQ3: issue themes without solutions, per platform",
    "rq3_theme_balance": "RQ3: issue mentions vs. solution mentions per theme",
    "rq2_paper_comparison": "Computed RQ2/RQ3 numbers beside the paper's published values",
    "thematic_codebook": "The codebook used (themes > sub-themes > codes)",
    "thematic_warnings": "Data-quality warnings of the coded sample",
}
TABLE_STEMS: tuple[str, ...] = tuple(TABLE_CAPTIONS)
CODEBOOK_FILE = "thematic_codebook.yaml"

_WARNING_KINDS = (
    ("listed more than once", "repeated_code"),
    ("no issue code", "no_issue_code"),
    ("no text", "missing_text"),
    ("source differs", "source_mismatch"),
)


def table_files(tables_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file :func:`write_tables` writes into ``tables_dir`` (for the DVC stage's outs)."""
    folder = Path(tables_dir)
    files = [folder / f"{stem}.{fmt}" for stem in TABLE_STEMS for fmt in TABLE_FORMATS]
    return sorted(files + [folder / CODEBOOK_FILE])


def warning_kind(message: str) -> str:
    """A short class for a loader warning (``repeated_code``, ``missing_text``, ...)."""
    for needle, kind in _WARNING_KINDS:
        if needle in message:
            return kind
    return "other"


def relative_message(message: str, root: str | os.PathLike[str] | None = None) -> str:
    """A warning with absolute paths under ``root`` (default: the project root and the external
    data folder) made relative, so that tables are the same on every checkout."""
    from secmine import config

    roots = [Path(root)] if root is not None else [config.PROJECT_ROOT, config.external_source_dir().parent]
    for base in roots:
        prefix = str(Path(base).resolve()) + os.sep
        message = message.replace(prefix, "")
    return message


def warnings_frame(warnings: Iterable[str]) -> pd.DataFrame:
    """The warnings as a table: ``kind, message`` (messages with relative paths)."""
    import pandas as pd

    rows = [{"kind": warning_kind(w), "message": relative_message(w)} for w in warnings]
    return pd.DataFrame(rows, columns=["kind", "message"])


def _matrix_table(matrix: pd.DataFrame, codebook: Codebook, level: str) -> pd.DataFrame:
    from secmine.thematic.counting import taxonomy_frame

    keys = taxonomy_frame(codebook, "issue", level)  # type: ignore[arg-type]
    keys = keys.add_prefix("issue_")
    body = matrix.reset_index(drop=True)
    body.columns = [str(c) for c in body.columns]
    out = keys.join(body)
    out.columns.name = None
    return out


def build_tables(
    counts: ThematicCounts,
    codebook: Codebook,
    *,
    comparison: pd.DataFrame,
    warnings: Iterable[str] = (),
) -> dict[str, pd.DataFrame]:
    """Every table of the stage, by stem (see :data:`TABLE_STEMS`)."""
    codebook_frame = codebook.to_frame().rename(columns={"name": "code"})
    codebook_frame.insert(0, "version", codebook.version)
    tables = {
        "rq2_issues": counts.codes["issue"][CODE_COLUMNS],
        "rq3_solutions": counts.codes["solution"][CODE_COLUMNS],
        "rq2_issues_by_source": counts.codes_by_source["issue"],
        "rq3_solutions_by_source": counts.codes_by_source["solution"],
        "rq2_issue_themes": counts.themes["issue"],
        "rq2_issue_sub_themes": counts.sub_themes["issue"],
        "rq3_solution_themes": counts.themes["solution"],
        "rq3_solution_sub_themes": counts.sub_themes["solution"],
        "rq3_cooccurrence_codes": _matrix_table(counts.cooccurrence_codes, codebook, "code"),
        "rq3_cooccurrence_sub_themes": _matrix_table(counts.cooccurrence_sub_themes, codebook, "sub_theme"),
        "rq3_cooccurrence_pairs": counts.pairs,
        "rq3_lack_of_solutions_codes": counts.lack_codes,
        "rq3_lack_of_solutions_sub_themes": counts.lack_sub_themes,
        "rq3_lack_of_solutions_themes": counts.lack_themes,
        "rq3_theme_balance": counts.balance,
        "rq2_paper_comparison": comparison,
        "thematic_codebook": codebook_frame,
        "thematic_warnings": warnings_frame(warnings),
    }
    missing = set(TABLE_STEMS) ^ set(tables)
    if missing:  # pragma: no cover - a programming error
        raise AssertionError(f"tables and TABLE_STEMS disagree: {sorted(missing)}")
    return {stem: tables[stem] for stem in TABLE_STEMS}


def _latex_caption(text: str) -> str:
    text = re.sub(r"([%&#_])", r"\\\1", text)
    return text.replace("->", r"$\rightarrow$")


def write_tables(
    tables: dict[str, pd.DataFrame], tables_dir: str | os.PathLike[str], codebook: Codebook
) -> list[Path]:
    """Write every table (CSV + MD + TeX) and the codebook YAML; return the written paths."""
    folder = Path(tables_dir)
    written: list[Path] = []
    for stem, frame in tables.items():
        paths = write_table(frame, folder / stem, caption=_latex_caption(TABLE_CAPTIONS[stem]))
        written.extend(paths.values())
    written.append(codebook.to_yaml(folder / CODEBOOK_FILE))
    return sorted(written)
