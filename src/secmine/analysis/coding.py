"""The coding round-trip: coding sheet -> coders -> import -> agreement -> resolution -> mapped.csv.

1. :func:`write_coding_sheet` exports a sample as an XLSX workbook: a ``coding`` sheet with one
   row per post (source, ids, link, text cut at Excel's cell limit and flagged), columns
   ``issue_1..issue_k`` and ``solution_1..solution_k`` with drop-down lists of the codebook's
   codes, a ``notes`` column; an ``instructions`` sheet (with the coder's name to fill in), a
   ``codebook`` sheet and a hidden ``posts`` sheet listing the exported posts (so a mistyped
   ``post_id`` is caught on import instead of becoming a new post).  The workbook is written with xlsxwriter with fixed metadata, so the same
   sample and codebook give the same bytes.
2. :func:`read_coding_sheet` imports a completed sheet; every label is matched to the codebook
   (:meth:`secmine.codebook.Codebook.match`), every post id to the exported posts, formula cells
   without a saved value are refused, and all problems are reported together, each naming the
   file, the row and the field.
3. :func:`agreement` computes agreement per code, per theme and overall: Cohen's kappa for two
   coders (scikit-learn, on per-code presence), Krippendorff's alpha for any number (the
   ``krippendorff`` package), and percent agreement; :func:`disagreements` lists what to resolve.
4. :func:`resolve` merges the coders' work with the adjudicator's decisions (or a policy) and
   :func:`write_mapped` writes the result in the replication package's ``theme/mapped.csv``
   format (``source,id,issue,solution``), which the ``thematic`` stage reads
   (``thematic.coded_sample``).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from secmine.analysis import stats
from secmine.analysis.data import clean_cell_text, source_order
from secmine.codebook import CODE_TYPES, Codebook, CodebookError, CodeType
from secmine.errors import SecmineError
from secmine.schema import SOURCE_KEYS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SHEET_FORMAT = "secmine-coding-sheet/1"
CODING_SHEET = "coding"
INSTRUCTIONS_SHEET = "instructions"
CODEBOOK_SHEET = "codebook"
LISTS_SHEET = "lists"
POSTS_SHEET = "posts"  # hidden: the exported (source, post_id) pairs, to catch edited ids
BASE_COLUMNS = ("post_id", "source", "thread_id", "url", "text", "text_cut")
DECISIONS = {
    "include": True,
    "yes": True,
    "y": True,
    "1": True,
    "true": True,
    "keep": True,
    "exclude": False,
    "no": False,
    "n": False,
    "0": False,
    "false": False,
    "drop": False,
}
Policy = Literal["strict", "majority", "union", "intersection"]
_FIXED_TIME = _dt.datetime(2000, 1, 1, 0, 0, 0)
_MAX_REPORTED = 25

INSTRUCTIONS = """\
How to code this sheet

1. Write your name in cell B3 of this sheet (the coder's name is read from there).
2. Work through the posts on the 'coding' sheet in the order given (the order of drawing).
   Open the link to read the whole thread; the text column holds title, body and comments,
   cut at Excel's 32,767-character cell limit when text_cut says TRUE.
3. For each post pick the security issue codes in issue_1, issue_2, ... and the solution codes
   in solution_1, solution_2, ... from the drop-down lists (one code per cell; use as many cells
   as the post needs, in any order).  The 'codebook' sheet lists every code with its sub-theme
   and theme.  Leave a cell empty when no (further) code applies.
4. An empty row means that no code applies to the post; delete the rows of posts you did not
   code, so they count as not coded rather than as 'no code'.
5. Use the notes column for anything the adjudicator should know.  Do not change post_id,
   source or the column headers.
6. Return the file.  `secmine coding-agree` checks every code against the codebook, reports
   agreement between coders and the disagreements; `secmine coding-resolve` merges them.
"""


class CodingError(SecmineError, ValueError):
    """A coding sheet or decision file is invalid; the message names the file, row and field."""


# -- codebook ----------------------------------------------------------------------------------


def load_codebook(path: str | os.PathLike[str] | None = None) -> Codebook:
    """A codebook from a YAML file, a folder holding ``issue_theme_summary.csv`` and
    ``solution_theme_summary.csv`` (the replication package's ``theme/``), or a replication
    package folder (default: the pipeline's ``data/external/ai_sec_dev``)."""
    from secmine import config

    if path is None or str(path) == "":
        return Codebook.from_replication(config.replication_dir())
    path = Path(path)
    if path.is_dir():
        if (path / "issue_theme_summary.csv").is_file():
            return Codebook.from_summary_csvs(
                path / "issue_theme_summary.csv", path / "solution_theme_summary.csv"
            )
        return Codebook.from_replication(path)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return Codebook.from_yaml(path)
    raise CodebookError(f"{path}: expected a codebook YAML file or a replication package folder")


def _codes_in_order(codebook: Codebook, code_type: CodeType) -> list[str]:
    return codebook.code_names(code_type)


# -- export ------------------------------------------------------------------------------------


def write_coding_sheet(
    posts: pd.DataFrame,
    codebook: Codebook,
    path: str | os.PathLike[str],
    *,
    code_slots: int = 6,
    coder: str = "",
    title: str = "secmine coding sheet",
) -> Path:
    """Write the XLSX coding sheet for ``posts`` (columns ``post_id, source, url, text`` and
    optionally ``id``/``thread_id``), one row per post in the given order."""
    import xlsxwriter

    from secmine.io import atomic_path

    missing = [c for c in ("post_id", "source", "url") if c not in posts.columns]
    if missing:
        raise CodingError(f"posts for the coding sheet lack column(s) {', '.join(missing)}")
    if code_slots < 1:
        raise ValueError("code_slots must be at least 1")
    if posts.duplicated(["source", "post_id"]).any():
        dup = posts.loc[posts.duplicated(["source", "post_id"]), "post_id"].iloc[0]
        raise CodingError(f"post {dup!r} appears twice in the sample")
    thread_ids = posts["thread_id"] if "thread_id" in posts.columns else posts.get("id")
    texts = posts["text"] if "text" in posts.columns else [""] * len(posts)
    issue_codes = _codes_in_order(codebook, "issue")
    solution_codes = _codes_in_order(codebook, "solution")

    target = Path(path)
    with atomic_path(target) as tmp:
        workbook = xlsxwriter.Workbook(
            str(tmp),
            {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
        )
        workbook.set_properties(
            {"title": title, "author": "secmine", "created": _FIXED_TIME, "comments": SHEET_FORMAT}
        )
        bold = workbook.add_format({"bold": True})
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        top = workbook.add_format({"valign": "top"})
        code_fmt = workbook.add_format({"valign": "top", "bg_color": "#FFF2CC"})
        link = workbook.add_format({"valign": "top", "font_color": "blue", "underline": 1})

        # instructions (first, so it opens first)
        info = workbook.add_worksheet(INSTRUCTIONS_SHEET)
        info.set_column(0, 0, 22)
        info.set_column(1, 1, 90)
        info.write_string(0, 0, title, bold)
        info.write_string(1, 0, "format")
        info.write_string(1, 1, SHEET_FORMAT)
        info.write_string(2, 0, "coder", bold)
        info.write_string(2, 1, coder, code_fmt)
        info.write_string(3, 0, "codebook version")
        info.write_string(3, 1, codebook.version)
        info.write_string(4, 0, "posts")
        info.write_number(4, 1, len(posts))
        info.write_string(5, 0, "code slots")
        info.write_number(5, 1, code_slots)
        for offset, line in enumerate(INSTRUCTIONS.splitlines()):
            info.write_string(7 + offset, 0 if offset == 0 else 1, line, bold if offset == 0 else None)

        # coding sheet
        sheet = workbook.add_worksheet(CODING_SHEET)
        columns = [*BASE_COLUMNS]
        columns += [f"issue_{i}" for i in range(1, code_slots + 1)]
        columns += [f"solution_{i}" for i in range(1, code_slots + 1)]
        columns.append("notes")
        for col, name in enumerate(columns):
            sheet.write_string(0, col, name, header)
        widths = {
            "post_id": 28,
            "source": 14,
            "thread_id": 28,
            "url": 30,
            "text": 80,
            "text_cut": 9,
            "notes": 30,
        }
        for col, name in enumerate(columns):
            sheet.set_column(col, col, widths.get(name, 34))
        n = len(posts)
        for row, (post_id, source, tid, url, text) in enumerate(
            zip(
                posts["post_id"],
                posts["source"],
                thread_ids if thread_ids is not None else [""] * n,
                posts["url"],
                texts,
            ),
            start=1,
        ):
            cell_text, cut = clean_cell_text(_as_text(text))
            sheet.write_string(row, 0, _as_text(post_id), top)
            sheet.write_string(row, 1, _as_text(source), top)
            sheet.write_string(row, 2, _as_text(tid), top)
            if url:
                sheet.write_url(row, 3, _as_text(url), link, string=_as_text(url))
            sheet.write_string(row, 4, cell_text, wrap)
            sheet.write_boolean(row, 5, cut, top)
            sheet.set_row(row, 90)
        first_issue = len(BASE_COLUMNS)
        first_solution = first_issue + code_slots
        last_row = max(n, 1)
        for first, codes, column in ((first_issue, issue_codes, 0), (first_solution, solution_codes, 1)):
            letter = "A" if column == 0 else "B"
            sheet.data_validation(
                1,
                first,
                last_row,
                first + code_slots - 1,
                {
                    "validate": "list",
                    "source": f"={LISTS_SHEET}!${letter}$2:${letter}${len(codes) + 1}",
                    "error_type": "stop",
                    "error_title": "Unknown code",
                    "error_message": "Pick a code from the list (see the codebook sheet).",
                    "ignore_blank": True,
                },
            )
            sheet.set_column(first, first + code_slots - 1, 34, code_fmt)
        sheet.freeze_panes(1, 2)
        sheet.autofilter(0, 0, last_row, len(columns) - 1)

        # codebook sheet
        book = workbook.add_worksheet(CODEBOOK_SHEET)
        for col, name in enumerate(("type", "theme", "sub_theme", "code")):
            book.write_string(0, col, name, header)
        book.set_column(0, 0, 10)
        book.set_column(1, 3, 45)
        row = 1
        for code_type in CODE_TYPES:
            for name in _codes_in_order(codebook, code_type):
                code = codebook.match(code_type, name)
                for col, value in enumerate((code_type, code.theme, code.sub_theme, code.name)):
                    book.write_string(row, col, value)
                row += 1
        book.freeze_panes(1, 0)

        # hidden lists for the drop-downs
        lists = workbook.add_worksheet(LISTS_SHEET)
        lists.write_string(0, 0, "issue")
        lists.write_string(0, 1, "solution")
        for col, codes in ((0, issue_codes), (1, solution_codes)):
            for offset, name in enumerate(codes, start=1):
                lists.write_string(offset, col, name)
        lists.hide()

        # hidden list of the exported posts: the import checks every post_id against it
        exported = workbook.add_worksheet(POSTS_SHEET)
        exported.write_string(0, 0, "source")
        exported.write_string(0, 1, "post_id")
        for row, (source, post_id) in enumerate(zip(posts["source"], posts["post_id"]), start=1):
            exported.write_string(row, 0, _as_text(source))
            exported.write_string(row, 1, _as_text(post_id))
        exported.hide()
        info.activate()
        workbook.close()
    return target


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _formula_cells(path: Path) -> dict[tuple[int, int], str]:
    """``{(excel row, column index): formula}`` of the coding sheet's formula cells."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        found: dict[tuple[int, int], str] = {}
        for excel_row, cells in enumerate(workbook[CODING_SHEET].iter_rows(), start=1):
            for index, cell in enumerate(cells):
                if getattr(cell, "data_type", None) == "f":
                    found[(excel_row, index)] = str(cell.value)
        return found
    finally:
        workbook.close()


def _closest(value: str, choices: set[str]) -> str:
    from rapidfuzz import fuzz, process

    match = process.extractOne(value, sorted(choices), scorer=fuzz.ratio, score_cutoff=60)
    return f" (closest: {match[0]!r})" if match else ""


# -- import ------------------------------------------------------------------------------------


@dataclass
class CoderSheet:
    """One coder's completed sheet."""

    coder: str
    path: str
    posts: pd.DataFrame  # source, post_id, thread_id, url, row
    codes: pd.DataFrame  # source, post_id, type, code, row, field
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_coding_sheet(
    path: str | os.PathLike[str], codebook: Codebook, *, coder: str | None = None
) -> CoderSheet:
    """Import a completed coding sheet, checking every label against ``codebook``.

    The coder's name comes from ``coder``, else the instructions sheet (cell B3), else the file
    name.  All problems are collected and raised together as a :class:`CodingError`, each naming
    the file, the spreadsheet row and the field.
    """
    import openpyxl
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CodingError(f"{path}: file not found")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zip/XML errors from a damaged or non-XLSX file
        raise CodingError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
    try:
        if CODING_SHEET not in workbook.sheetnames:
            raise CodingError(f"{path}: no sheet named {CODING_SHEET!r} (found {workbook.sheetnames})")
        if coder is None and INSTRUCTIONS_SHEET in workbook.sheetnames:
            info = workbook[INSTRUCTIONS_SHEET]
            for label, value in info.iter_rows(min_row=1, max_row=10, max_col=2, values_only=True):
                if str(label or "").strip().casefold() == "coder" and value:
                    coder = str(value).strip()
                    break
        rows = list(workbook[CODING_SHEET].iter_rows(values_only=True))
        exported: dict[str, set[str]] | None = None
        if POSTS_SHEET in workbook.sheetnames:
            exported = {}
            for source, post_id in workbook[POSTS_SHEET].iter_rows(min_row=2, max_col=2, values_only=True):
                exported.setdefault(_as_text(source).strip(), set()).add(_as_text(post_id).strip())
    finally:
        workbook.close()
    formulas = _formula_cells(path)
    coder = coder or path.stem
    if not rows:
        raise CodingError(f"{path}, sheet {CODING_SHEET!r}: empty (no header row)")
    headers = [str(h).strip() if h is not None else "" for h in rows[0]]
    for required in ("post_id", "source"):
        if required not in headers:
            raise CodingError(f"{path}, sheet {CODING_SHEET!r}, row 1: missing column {required!r}")
    code_columns: list[tuple[int, CodeType, str]] = []
    for index, name in enumerate(headers):
        for code_type in CODE_TYPES:
            if name.casefold().startswith(f"{code_type}_") or name.casefold() == code_type:
                code_columns.append((index, code_type, name))
    if not code_columns:
        raise CodingError(f"{path}, sheet {CODING_SHEET!r}, row 1: no issue_*/solution_* columns")
    col = {name: i for i, name in enumerate(headers)}
    errors: list[str] = []
    warnings: list[str] = []
    post_rows: list[dict[str, Any]] = []
    code_rows: list[dict[str, Any]] = []
    notes: dict[tuple[str, str], str] = {}
    seen: dict[tuple[str, str], int] = {}
    for excel_row, values in enumerate(rows[1:], start=2):
        values = tuple(values) + (None,) * (len(headers) - len(values))
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        where = f"{path}, sheet {CODING_SHEET!r}, row {excel_row}"
        for name in ("post_id", "source"):
            formula = formulas.get((excel_row, col[name]))
            if formula is not None and values[col[name]] is None:
                errors.append(f"{where}, field {name!r}: a formula ({formula[:60]}) with no saved value; "
                              "restore the exported value")
        post_id = _as_text(values[col["post_id"]]).strip()
        source = _as_text(values[col["source"]]).strip()
        if not post_id:
            errors.append(f"{where}, field 'post_id': empty")
            continue
        if source not in SOURCE_KEYS:
            lookup = {k.casefold(): k for k in SOURCE_KEYS}
            if source.casefold() in lookup:
                source = lookup[source.casefold()]
            else:
                errors.append(f"{where}, field 'source': {source!r} is not one of {', '.join(SOURCE_KEYS)}")
                continue
        key = (source, post_id)
        if exported is not None and post_id not in exported.get(source, set()):
            errors.append(
                f"{where}, field 'post_id': {post_id!r} ({source}) is not in the sample this sheet was "
                f"exported with{_closest(post_id, exported.get(source, set()))}; restore the post_id "
                "(post ids must not be edited)"
            )
            continue
        if key in seen:
            errors.append(f"{where}, field 'post_id': post {post_id!r} ({source}) repeats row {seen[key]}")
            continue
        seen[key] = excel_row
        post_rows.append(
            {
                "source": source,
                "post_id": post_id,
                "thread_id": _as_text(values[col["thread_id"]]) if "thread_id" in col else "",
                "url": _as_text(values[col["url"]]) if "url" in col else "",
                "row": excel_row,
            }
        )
        if "notes" in col and _as_text(values[col["notes"]]).strip():
            notes[key] = _as_text(values[col["notes"]]).strip()
        used: dict[tuple[str, str], str] = {}
        for index, code_type, header in code_columns:
            formula = formulas.get((excel_row, index))
            if formula is not None and values[index] is None:
                errors.append(
                    f"{where}, field {header!r}: a formula ({formula[:60]}) with no saved value; type the "
                    "code itself or paste the cell as a value"
                )
                continue
            for label in codebook.split_labels(values[index]):
                try:
                    code = codebook.match(code_type, label, where=f"{where}, field {header!r}")
                except CodebookError as exc:
                    errors.append(str(exc))
                    continue
                if (code_type, code.name) in used:
                    warnings.append(
                        f"{where}, field {header!r}: {code_type} code {code.name!r} already in field "
                        f"{used[(code_type, code.name)]!r} (counted once)"
                    )
                    continue
                used[(code_type, code.name)] = header
                code_rows.append(
                    {
                        "source": source,
                        "post_id": post_id,
                        "type": code_type,
                        "code": code.name,
                        "row": excel_row,
                        "field": header,
                    }
                )
    if errors:
        shown = errors[:_MAX_REPORTED]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise CodingError(
            f"{path}: {len(errors)} problem(s) in the coding sheet:\n  " + "\n  ".join(shown) + more
        )
    posts = pd.DataFrame(post_rows, columns=["source", "post_id", "thread_id", "url", "row"])
    codes = pd.DataFrame(code_rows, columns=["source", "post_id", "type", "code", "row", "field"])
    if posts.empty:
        warnings.append(f"{path}: no coded posts")
    return CoderSheet(coder=coder, path=str(path), posts=posts, codes=codes, notes=notes, warnings=warnings)


def read_coding_sheets(paths: Sequence[str | os.PathLike[str]], codebook: Codebook) -> list[CoderSheet]:
    """Import several coders' sheets; coder names must differ.  Every problem of every file is
    reported together."""
    sheets: list[CoderSheet] = []
    problems: list[str] = []
    for path in paths:
        try:
            sheets.append(read_coding_sheet(path, codebook))
        except CodingError as exc:
            problems.append(str(exc))
    if problems:
        raise CodingError("\n".join(problems))
    names = [s.coder for s in sheets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CodingError(
            f"coder name {dup[0]!r} is used by more than one sheet "
            f"({', '.join(s.path for s in sheets if s.coder == dup[0])}); "
            "set cell B3 of each instructions sheet"
        )
    return sheets


# -- agreement ---------------------------------------------------------------------------------


def _presence(
    sheets: Sequence[CoderSheet], codebook: Codebook
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Posts (in first-seen order) and, per (type, code), a coders x posts matrix of presence
    (1/0, ``nan`` where a coder did not code the post)."""
    posts: list[tuple[str, str]] = []
    for sheet in sheets:
        for key in zip(sheet.posts["source"], sheet.posts["post_id"]):
            if key not in posts:
                posts.append(key)
    index = {key: i for i, key in enumerate(posts)}
    coded = np.zeros((len(sheets), len(posts)), dtype=bool)
    for r, sheet in enumerate(sheets):
        for key in zip(sheet.posts["source"], sheet.posts["post_id"]):
            coded[r, index[key]] = True
    matrices: dict[tuple[str, str], np.ndarray] = {}
    for code_type in CODE_TYPES:
        for name in codebook.code_names(code_type):
            matrix = np.where(coded, 0.0, np.nan)
            matrices[(code_type, name)] = matrix
    for r, sheet in enumerate(sheets):
        for source, post_id, code_type, code in sheet.codes[["source", "post_id", "type", "code"]].itertuples(
            index=False
        ):
            matrices[(code_type, code)][r, index[(source, post_id)]] = 1.0
    return posts, {"coded": coded, "codes": matrices}


def _agreement_row(matrix: np.ndarray, n_coders: int) -> dict[str, Any]:
    """Agreement statistics of one coders x units presence matrix."""
    both = np.sum(~np.isnan(matrix), axis=0) >= 2
    units = matrix[:, both]
    row: dict[str, Any] = {
        "units": int(units.shape[1]),
        "positives": int(np.nansum(units)),
        "agreement": _round(stats.percent_agreement(units)) if units.shape[1] else np.nan,
        "kappa": np.nan,
        "alpha": np.nan,
    }
    if units.shape[1] == 0:
        return row
    if n_coders == 2:
        pair = units[:, ~np.isnan(units).any(axis=0)]
        row["kappa"] = _round(stats.cohen_kappa(pair[0].astype(int), pair[1].astype(int)))
    row["alpha"] = _round(stats.krippendorff_alpha(units))
    return row


def agreement(sheets: Sequence[CoderSheet], codebook: Codebook) -> pd.DataFrame:
    """Agreement per code, per theme and overall, for issue and solution codes.

    Each row: ``level`` (code, theme, overall), ``type``, ``theme``, ``name``, ``units`` (posts
    coded by at least two coders; for ``overall``, post x code decisions), ``positives`` (code
    applications), ``agreement`` (share of units where all coders agree), ``kappa`` (Cohen's,
    two coders only), ``alpha`` (Krippendorff's, nominal) and, for ``overall``, ``mean_kappa`` /
    ``mean_alpha`` over the codes with a defined value.  Kappa and alpha are undefined (empty)
    when no coder, or every coder on every post, used a code.
    """
    import pandas as pd

    if len(sheets) < 2:
        raise CodingError("agreement needs at least two coders' sheets")
    n = len(sheets)
    _, presence = _presence(sheets, codebook)
    matrices: dict[tuple[str, str], np.ndarray] = presence["codes"]
    rows: list[dict[str, Any]] = []
    for code_type in CODE_TYPES:
        code_rows = []
        for name in codebook.code_names(code_type):
            code = codebook.match(code_type, name)
            row = {"level": "code", "type": code_type, "theme": code.theme, "name": name}
            row.update(_agreement_row(matrices[(code_type, name)], n))
            code_rows.append(row)
        theme_rows = []
        for theme in codebook.themes(code_type):
            names = [c.name for c in codebook.of_type(code_type) if c.theme == theme]
            stack = np.stack([matrices[(code_type, c)] for c in names])
            any_code = np.where(np.isnan(stack[0]), np.nan, np.nan_to_num(stack, nan=0.0).max(axis=0))
            row = {"level": "theme", "type": code_type, "theme": theme, "name": theme}
            row.update(_agreement_row(any_code, n))
            theme_rows.append(row)
        pooled = np.concatenate([matrices[(code_type, c)] for c in codebook.code_names(code_type)], axis=1)
        overall = {"level": "overall", "type": code_type, "theme": "", "name": f"all {code_type} codes"}
        overall.update(_agreement_row(pooled, n))
        kappas = [r["kappa"] for r in code_rows if not np.isnan(r["kappa"])]
        alphas = [r["alpha"] for r in code_rows if not np.isnan(r["alpha"])]
        overall["mean_kappa"] = _round(float(np.mean(kappas))) if kappas else np.nan
        overall["mean_alpha"] = _round(float(np.mean(alphas))) if alphas else np.nan
        rows.extend(code_rows)
        rows.extend(theme_rows)
        rows.append(overall)
    pooled_all = np.concatenate(list(matrices.values()), axis=1)
    total = {"level": "overall", "type": "all", "theme": "", "name": "all codes"}
    total.update(_agreement_row(pooled_all, n))
    per_code = [r for r in rows if r["level"] == "code"]
    kappas = [r["kappa"] for r in per_code if not np.isnan(r["kappa"])]
    alphas = [r["alpha"] for r in per_code if not np.isnan(r["alpha"])]
    total["mean_kappa"] = _round(float(np.mean(kappas))) if kappas else np.nan
    total["mean_alpha"] = _round(float(np.mean(alphas))) if alphas else np.nan
    rows.append(total)
    columns = [
        "level",
        "type",
        "theme",
        "name",
        "units",
        "positives",
        "agreement",
        "kappa",
        "alpha",
        "mean_kappa",
        "mean_alpha",
    ]
    return pd.DataFrame(rows).reindex(columns=columns)


def disagreements(sheets: Sequence[CoderSheet], codebook: Codebook) -> pd.DataFrame:
    """Every (post, type, code) the coders of a post did not all agree on: who used the code,
    who did not, and an empty ``decision`` column for the adjudicator (include / exclude)."""
    import pandas as pd

    posts, presence = _presence(sheets, codebook)
    urls: dict[tuple[str, str], str] = {}
    for sheet in sheets:
        for key, url in zip(zip(sheet.posts["source"], sheet.posts["post_id"]), sheet.posts["url"]):
            urls.setdefault(key, url)
    rows = []
    for code_type in CODE_TYPES:
        for name in codebook.code_names(code_type):
            matrix = presence["codes"][(code_type, name)]
            for j, (source, post_id) in enumerate(posts):
                column = matrix[:, j]
                coded = ~np.isnan(column)
                if coded.sum() < 2:
                    continue
                values = column[coded]
                if np.all(values == values[0]):
                    continue
                with_code = [sheets[r].coder for r in range(len(sheets)) if coded[r] and column[r] == 1]
                without = [sheets[r].coder for r in range(len(sheets)) if coded[r] and column[r] == 0]
                rows.append(
                    {
                        "source": source,
                        "post_id": post_id,
                        "url": urls.get((source, post_id), ""),
                        "type": code_type,
                        "theme": codebook.match(code_type, name).theme,
                        "code": name,
                        "coders_with": ", ".join(with_code),
                        "coders_without": ", ".join(without),
                        "decision": "",
                    }
                )
    table = pd.DataFrame(
        rows,
        columns=[
            "source",
            "post_id",
            "url",
            "type",
            "theme",
            "code",
            "coders_with",
            "coders_without",
            "decision",
        ],
    )
    order = {key: i for i, key in enumerate(posts)}
    table["_o"] = [order[(s, p)] for s, p in zip(table["source"], table["post_id"])]
    type_order = {t: i for i, t in enumerate(CODE_TYPES)}
    table["_t"] = table["type"].map(type_order)
    code_order = {(t, c): i for t in CODE_TYPES for i, c in enumerate(codebook.code_names(t))}
    table["_c"] = [code_order[(t, c)] for t, c in zip(table["type"], table["code"])]
    return table.sort_values(["_o", "_t", "_c"]).drop(columns=["_o", "_t", "_c"]).reset_index(drop=True)


def write_disagreements(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """The disagreement list as an XLSX sheet with a drop-down ``decision`` column
    (``include``/``exclude``), to fill in and pass to :func:`resolve`."""
    import xlsxwriter

    from secmine.io import atomic_path

    target = Path(path)
    with atomic_path(target) as tmp:
        workbook = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False})
        workbook.set_properties(
            {"title": "secmine disagreements", "author": "secmine", "created": _FIXED_TIME}
        )
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        decision_fmt = workbook.add_format({"bg_color": "#FFF2CC"})
        sheet = workbook.add_worksheet("disagreements")
        columns = list(table.columns)
        for col, name in enumerate(columns):
            sheet.write_string(0, col, name, header)
            sheet.set_column(col, col, {"code": 45, "url": 40, "post_id": 30, "theme": 25}.get(name, 16))
        for row, values in enumerate(table.itertuples(index=False), start=1):
            for col, value in enumerate(values):
                sheet.write_string(row, col, _as_text(value))
        decision_col = columns.index("decision")
        sheet.set_column(decision_col, decision_col, 12, decision_fmt)
        sheet.data_validation(
            1,
            decision_col,
            max(len(table), 1),
            decision_col,
            {"validate": "list", "source": ["include", "exclude"], "ignore_blank": True},
        )
        sheet.freeze_panes(1, 0)
        workbook.close()
    return target


# -- resolution --------------------------------------------------------------------------------


def read_decisions(path: str | os.PathLike[str], codebook: Codebook) -> dict[tuple[str, str, str, str], bool]:
    """The adjudicator's decisions (a filled :func:`write_disagreements` sheet, or a CSV with
    ``source, post_id, type, code, decision``): ``{(source, post_id, type, code): include}``.
    Rows with an empty decision are skipped; bad rows are errors naming file, row and field."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CodingError(f"{path}: file not found")
    from secmine.inputs import InputError, read_csv

    try:
        if path.suffix.lower() in {".xlsx", ".xlsm"}:
            frame = pd.read_excel(path, dtype=object, engine="openpyxl")
        else:
            frame = read_csv(path, what="decisions CSV", dtype=object, keep_default_na=False)
    except InputError as exc:
        raise CodingError(str(exc)) from None
    except Exception as exc:
        raise CodingError(f"{path}: unreadable decisions file ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("source", "post_id", "type", "code", "decision") if c not in frame.columns]
    if missing:
        raise CodingError(f"{path}, row 1: missing column(s) {', '.join(missing)}")
    decisions: dict[tuple[str, str, str, str], bool] = {}
    errors = []
    for position, record in enumerate(frame.to_dict(orient="records")):
        row = position + 2
        decision = _as_text(record["decision"]).strip().casefold()
        if not decision:
            continue
        where = f"{path}, row {row}"
        if decision not in DECISIONS:
            errors.append(f"{where}, field 'decision': {record['decision']!r} is not include or exclude")
            continue
        code_type = _as_text(record["type"]).strip().casefold()
        if code_type not in CODE_TYPES:
            errors.append(f"{where}, field 'type': {record['type']!r} is not issue or solution")
            continue
        try:
            code = codebook.match(code_type, _as_text(record["code"]), where=f"{where}, field 'code'")  # type: ignore[arg-type]
        except CodebookError as exc:
            errors.append(str(exc))
            continue
        key = (_as_text(record["source"]).strip(), _as_text(record["post_id"]).strip(), code_type, code.name)
        if key in decisions and decisions[key] != DECISIONS[decision]:
            errors.append(
                f"{where}, field 'decision': contradicts an earlier decision on {key[1]!r} / {code.name!r}"
            )
        decisions[key] = DECISIONS[decision]
    if errors:
        raise CodingError(
            f"{path}: {len(errors)} problem(s) in the decisions:\n  " + "\n  ".join(errors[:_MAX_REPORTED])
        )
    return decisions


@dataclass
class Resolution:
    """The resolved coding: one row per post with its codes, in the sample's order."""

    coded: pd.DataFrame  # source, post_id, issue (list), solution (list)
    unresolved: pd.DataFrame  # the disagreements nothing decided
    applied: int  # decisions applied
    warnings: list[str] = field(default_factory=list)  # e.g. posts coded by some coders only


def resolve(
    sheets: Sequence[CoderSheet],
    codebook: Codebook,
    *,
    decisions: dict[tuple[str, str, str, str], bool] | None = None,
    policy: Policy = "strict",
) -> Resolution:
    """Merge the coders' sheets into one coding.

    A code the coders of a post all used is kept, one none used is absent.  Disputed codes follow
    the adjudicator's ``decisions`` (which may also override agreed codes); what is left follows
    ``policy``: ``strict`` (an error listing every undecided disagreement), ``majority`` (kept
    when more than half of the post's coders used it; ties are errors), ``union`` (kept when any
    coder used it) or ``intersection`` (kept only when all did).  One sheet resolves to itself.

    With several sheets, a post that only some coders coded has had no second reading: ``strict``
    refuses it (an error listing such posts and who coded them), the other policies take the codes
    of the coders who did and list the post in :attr:`Resolution.warnings`.
    """
    import pandas as pd

    if not sheets:
        raise CodingError("nothing to resolve: no coding sheets")
    if policy not in ("strict", "majority", "union", "intersection"):
        raise ValueError(f"unknown policy {policy!r}")
    decisions = dict(decisions or {})
    posts, presence = _presence(sheets, codebook)
    known = set(posts)
    stray = [k for k in decisions if (k[0], k[1]) not in known]
    if stray:
        raise CodingError(f"decision on post {stray[0][1]!r} ({stray[0][0]}), which no coder coded")
    partly: list[str] = []
    if len(sheets) > 1:
        for j, (source, post_id) in enumerate(posts):
            by = [sheets[r].coder for r in range(len(sheets)) if presence["coded"][r, j]]
            if len(by) < len(sheets):
                partly.append(f"{post_id} ({source}) coded by {len(by)} of {len(sheets)} coders ({', '.join(by)})")
    if partly and policy == "strict":
        shown = partly[:_MAX_REPORTED]
        more = f"\n  ... and {len(partly) - len(shown)} more" if len(partly) > len(shown) else ""
        raise CodingError(
            f"{len(partly)} post(s) not coded by every coder (policy 'strict'); have the other coders code "
            "them, remove them from every sheet, or choose another policy:\n  " + "\n  ".join(shown) + more
        )
    kept: dict[tuple[str, str], dict[str, list[str]]] = {key: {t: [] for t in CODE_TYPES} for key in posts}
    unresolved_rows = []
    applied = 0
    for code_type in CODE_TYPES:
        for name in codebook.code_names(code_type):
            matrix = presence["codes"][(code_type, name)]
            for j, key in enumerate(posts):
                column = matrix[:, j]
                values = column[~np.isnan(column)]
                decision = decisions.get((key[0], key[1], code_type, name))
                if decision is not None:
                    applied += 1
                    if decision:
                        kept[key][code_type].append(name)
                    continue
                if values.size == 0 or np.all(values == 0):
                    continue
                if np.all(values == 1):
                    kept[key][code_type].append(name)
                    continue
                share = values.mean()
                if policy == "union" or (policy == "majority" and share > 0.5):
                    kept[key][code_type].append(name)
                elif policy == "intersection" or (policy == "majority" and share < 0.5):
                    continue
                else:
                    unresolved_rows.append(
                        {"source": key[0], "post_id": key[1], "type": code_type, "code": name}
                    )
    unresolved = pd.DataFrame(unresolved_rows, columns=["source", "post_id", "type", "code"])
    if not unresolved.empty:
        shown = [
            f"{r.post_id} ({r.source}), {r.type} code {r.code!r}"
            for r in unresolved.head(_MAX_REPORTED).itertuples()
        ]
        more = f"\n  ... and {len(unresolved) - len(shown)} more" if len(unresolved) > len(shown) else ""
        raise CodingError(
            f"{len(unresolved)} disagreement(s) without a decision (policy {policy!r}); decide them in the "
            "disagreement sheet or choose another policy:\n  " + "\n  ".join(shown) + more
        )
    coded = pd.DataFrame(
        [
            {"source": s, "post_id": p, "issue": kept[(s, p)]["issue"], "solution": kept[(s, p)]["solution"]}
            for s, p in posts
        ],
        columns=["source", "post_id", "issue", "solution"],
    )
    warnings = [f"{entry}: resolved from those coders' codes alone (policy {policy!r})" for entry in partly]
    return Resolution(coded=coded, unresolved=unresolved, applied=applied, warnings=warnings)


def mapped_frame(coded: pd.DataFrame) -> pd.DataFrame:
    """A resolved coding in the ``theme/mapped.csv`` format: ``source, id, issue, solution`` with
    the codes comma-separated (codebook order)."""
    import pandas as pd

    duplicated = coded["post_id"].duplicated()
    if duplicated.any():
        post = coded.loc[duplicated, "post_id"].iloc[0]
        raise CodingError(
            f"post id {post!r} occurs in two sources; theme/mapped.csv identifies posts by id alone, "
            "so it cannot hold both"
        )
    return pd.DataFrame(
        {
            "source": coded["source"],
            "id": coded["post_id"],
            "issue": [", ".join(codes) for codes in coded["issue"]],
            "solution": [", ".join(codes) for codes in coded["solution"]],
        }
    )


def write_mapped(coded: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write :func:`mapped_frame` as CSV (UTF-8, ``\\n`` line ends, quoted where needed)."""
    from secmine.io import write_csv

    return write_csv(mapped_frame(coded), path)


def coded_posts_from_mapped(path: str | os.PathLike[str], codebook: Codebook) -> pd.DataFrame:
    """Read a ``mapped.csv`` back as ``source, post_id, issue (list), solution (list)`` (checks
    every label; used to verify the round-trip)."""
    from secmine.replication import load_coded_sample

    sample = load_coded_sample(path=path, codebook=codebook)
    import pandas as pd

    rows = []
    for source, post_id in zip(sample.posts["source"], sample.posts["post_id"]):
        mentions = sample.mentions[(sample.mentions["post_id"] == post_id)]
        rows.append(
            {
                "source": source,
                "post_id": post_id,
                "issue": mentions[mentions["type"] == "issue"]["code"].tolist(),
                "solution": mentions[mentions["type"] == "solution"]["code"].tolist(),
            }
        )
    return pd.DataFrame(rows, columns=["source", "post_id", "issue", "solution"])


# -- reports -----------------------------------------------------------------------------------


@dataclass
class AgreementReport:
    coders: list[str]
    agreement: pd.DataFrame
    disagreements: pd.DataFrame
    warnings: list[str]
    metrics: dict[str, Any]


def agreement_report(
    sheet_paths: Sequence[str | os.PathLike[str]],
    codebook: Codebook,
    *,
    out_dir: str | os.PathLike[str] | None = None,
) -> AgreementReport:
    """Import the sheets, compute agreement and the disagreement list; with ``out_dir`` write
    ``agreement.{csv,md,tex}``, ``disagreements.csv``/``.xlsx`` (to decide) and
    ``agreement.json``."""
    from secmine.io import write_csv, write_json, write_table

    sheets = read_coding_sheets(sheet_paths, codebook)
    table = agreement(sheets, codebook)
    todo = disagreements(sheets, codebook)
    warnings = [w for s in sheets for w in s.warnings]
    posts_per_coder = {s.coder: int(len(s.posts)) for s in sheets}
    overall = table[table["level"] == "overall"].set_index("type")
    metrics = {
        "coders": [s.coder for s in sheets],
        "posts_per_coder": posts_per_coder,
        "codebook_version": codebook.version,
        "disagreements": int(len(todo)),
        "overall": {
            t: {
                k: _none(overall.loc[t, k])
                for k in ("units", "agreement", "kappa", "alpha", "mean_kappa", "mean_alpha")
            }
            for t in overall.index
        },
    }
    if out_dir is not None:
        out = Path(out_dir)
        write_table(table, out / "agreement")
        write_csv(todo, out / "disagreements.csv")
        write_disagreements(todo, out / "disagreements.xlsx")
        write_json(out / "agreement.json", metrics | {"warnings": warnings})
    return AgreementReport([s.coder for s in sheets], table, todo, warnings, metrics)


def _round(value: float) -> float:
    return round(float(value), 6) if value is not None and np.isfinite(value) else np.nan


def _none(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


def sample_for_sheet(sample: pd.DataFrame, texts: pd.DataFrame | None) -> pd.DataFrame:
    """A sample CSV (``sample`` stage, or a user's with ``source, post_id, url[, text]``) joined
    with texts, ordered by source (paper order) and draw."""
    frame = sample.copy()
    if "text" not in frame.columns:
        if texts is None:
            raise CodingError("the sample has no text column; give a corpus to read the texts from")
        frame = frame.merge(texts, on="id", how="left")
    if "thread_id" not in frame.columns and "id" in frame.columns:
        frame["thread_id"] = frame["id"]
    if "draw" in frame.columns:
        order = {name: i for i, name in enumerate(source_order(frame["source"]))}
        frame = (
            frame.assign(_o=frame["source"].map(order))
            .sort_values(["_o", "draw"], kind="stable")
            .drop(columns="_o")
        )
    return frame.reset_index(drop=True)


__all__ = [
    "AgreementReport",
    "CoderSheet",
    "CodingError",
    "Resolution",
    "agreement",
    "agreement_report",
    "coded_posts_from_mapped",
    "disagreements",
    "load_codebook",
    "mapped_frame",
    "read_coding_sheet",
    "read_coding_sheets",
    "read_decisions",
    "resolve",
    "write_coding_sheet",
    "write_disagreements",
    "write_mapped",
]
