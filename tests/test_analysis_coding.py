"""The coding round-trip on a generated sheet: export, fill as coders would (openpyxl), import,
agreement (values worked out by hand), disagreements, resolution, mapped.csv read back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from secmine.analysis import coding
from secmine.analysis.coding import CodingError
from secmine.codebook import Codebook
from secmine.replication import load_coded_sample
from secmine.text import EXCEL_CELL_LIMIT

A, B, C = "Alpha issue", "Beta issue", "Gamma issue"
X, Y = "X fix", "Y fix"

# Two coders on four posts (the hand-worked example of the tests' comments):
#   post   coder 1            coder 2
#   p1     A | X              A | X
#   p2     A, B |             A |
#   p3     (nothing)          B |
#   p4     C | Y              C | Y
CODER_1 = {"o/r-1": ([A], [X]), "o/r-2": ([A, B], []), "o/r-3": ([], []), "o/r-4": ([C], [Y])}
CODER_2 = {"o/r-1": ([A], [X]), "o/r-2": ([A], []), "o/r-3": ([B], []), "o/r-4": ([C], [Y])}


@pytest.fixture(scope="module")
def codebook(fixtures_dir: Path) -> Codebook:
    return Codebook.from_yaml(fixtures_dir / "analysis" / "codebook.yaml")


def _posts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["GH Issue"] * 4,
            "post_id": ["o/r-1", "o/r-2", "o/r-3", "o/r-4"],
            "id": [f"gh:issue:o/r#{n}" for n in range(1, 5)],
            "url": [f"https://github.com/o/r/issues/{n}" for n in range(1, 5)],
            "text": [
                '=HYPERLINK("x")  a formula-looking text',
                "x" * (EXCEL_CELL_LIMIT + 10),
                "bell\x07char",
                "plain",
            ],
        }
    )


def _fill(template: Path, target: Path, coder: str, codes: dict[str, tuple[list[str], list[str]]]) -> Path:
    """Fill the sheet as a coder would in Excel: one code per drop-down cell."""
    workbook = openpyxl.load_workbook(template)
    workbook["instructions"]["B3"] = coder
    sheet = workbook["coding"]
    headers = [c.value for c in sheet[1]]
    for row in range(2, sheet.max_row + 1):
        post_id = sheet.cell(row, headers.index("post_id") + 1).value
        issues, solutions = codes[post_id]
        for i, code in enumerate(issues, start=1):
            sheet.cell(row, headers.index(f"issue_{i}") + 1).value = code
        for i, code in enumerate(solutions, start=1):
            sheet.cell(row, headers.index(f"solution_{i}") + 1).value = code
    workbook.save(target)
    return target


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory, codebook: Codebook) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("coding")
    template = coding.write_coding_sheet(_posts(), codebook, folder / "sheet.xlsx", code_slots=3)
    return {
        "template": template,
        "one": _fill(template, folder / "one.xlsx", "ana", CODER_1),
        "two": _fill(template, folder / "two.xlsx", "ben", CODER_2),
        "folder": folder,
    }


def test_sheet_layout_dropdowns_and_text_limits(sheets: dict[str, Path], codebook: Codebook) -> None:
    workbook = openpyxl.load_workbook(sheets["template"])
    assert workbook.sheetnames == ["instructions", "coding", "codebook", "lists", "posts"]
    assert workbook["lists"].sheet_state == "hidden" and workbook["posts"].sheet_state == "hidden"
    exported = [tuple(c.value for c in row) for row in workbook["posts"].iter_rows(min_row=2)]
    assert exported == [("GH Issue", f"o/r-{n}") for n in range(1, 5)]
    sheet = workbook["coding"]
    headers = [c.value for c in sheet[1]]
    assert headers[:6] == ["post_id", "source", "thread_id", "url", "text", "text_cut"]
    assert headers[6:] == ["issue_1", "issue_2", "issue_3", "solution_1", "solution_2", "solution_3", "notes"]
    validations = sheet.data_validations.dataValidation
    sources = sorted(v.formula1 for v in validations)
    assert sources == ["lists!$A$2:$A$4", "lists!$B$2:$B$3"]
    assert all(v.type == "list" and v.errorStyle in (None, "stop") for v in validations)
    lists = workbook["lists"]
    assert [lists.cell(r, 1).value for r in range(2, 5)] == [A, B, C]
    # texts: formulas stay text, over-long texts cut and flagged, control characters removed
    assert sheet["E2"].value.startswith("=HYPERLINK") and sheet["E2"].data_type == "s"
    assert len(sheet["E3"].value) == EXCEL_CELL_LIMIT and sheet["F3"].value is True
    assert sheet["F2"].value is False
    assert sheet["E4"].value == "bellchar"
    assert sheet["D2"].value == "https://github.com/o/r/issues/1"
    info = workbook["instructions"]
    assert info["B4"].value == codebook.version


def test_sheet_bytes_are_deterministic(tmp_path: Path, codebook: Codebook) -> None:
    a = coding.write_coding_sheet(_posts(), codebook, tmp_path / "a.xlsx")
    b = coding.write_coding_sheet(_posts(), codebook, tmp_path / "b.xlsx")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_import_reads_coder_and_codes(sheets: dict[str, Path], codebook: Codebook) -> None:
    sheet = coding.read_coding_sheet(sheets["one"], codebook)
    assert sheet.coder == "ana"
    assert list(sheet.posts["post_id"]) == ["o/r-1", "o/r-2", "o/r-3", "o/r-4"]
    got = sheet.codes[sheet.codes["post_id"] == "o/r-2"]
    assert list(got["code"]) == [A, B] and list(got["field"]) == ["issue_1", "issue_2"]
    assert list(got["row"]) == [3, 3]


def test_agreement_values_by_hand(sheets: dict[str, Path], codebook: Codebook) -> None:
    table = coding.agreement(coding.read_coding_sheets([sheets["one"], sheets["two"]], codebook), codebook)
    codes = table[table["level"] == "code"].set_index("name")
    assert codes.loc[A, "kappa"] == pytest.approx(1.0)
    # B: coder 1 (0,1,0,0), coder 2 (0,0,1,0): po = 0.5, pe = 0.25^2 + 0.75^2 = 0.625, kappa = -1/3
    assert codes.loc[B, "kappa"] == pytest.approx(-1 / 3, abs=1e-6)
    # alpha: o00 = 4, o01 = o10 = 2; n0 = 6, n1 = 2; Do = 4/8, De = 24/56 -> alpha = 1 - 0.5/(24/56) = -1/6
    assert codes.loc[B, "alpha"] == pytest.approx(-1 / 6, abs=1e-6)
    assert codes.loc[B, "agreement"] == pytest.approx(0.5)
    assert codes.loc[C, "kappa"] == pytest.approx(1.0)
    assert codes.loc[X, "kappa"] == pytest.approx(1.0) and codes.loc[Y, "alpha"] == pytest.approx(1.0)
    overall = table[table["level"] == "overall"].set_index("type")
    # issue codes pooled (12 decisions): po = 10/12, both coders say yes 4/12 -> pe = 5/9, kappa = 0.625
    assert overall.loc["issue", "units"] == 12
    assert overall.loc["issue", "kappa"] == pytest.approx(0.625, abs=1e-6)
    # alpha pooled: o00 = 14, o11 = 6, o01 = o10 = 2; n0 = 16, n1 = 8, n = 24
    # Do = 4/24, De = 2*16*8/(24*23) = 256/552 -> alpha = 1 - (1/6)/(256/552) = 0.640625
    assert overall.loc["issue", "alpha"] == pytest.approx(0.640625, abs=1e-6)
    assert overall.loc["issue", "mean_kappa"] == pytest.approx((1 + (-1 / 3) + 1) / 3, abs=1e-6)
    themes = table[table["level"] == "theme"].set_index(["type", "name"])
    # Model theme (A or B): coder 1 (1,1,0,0), coder 2 (1,1,1,0): po = 3/4, pe = 0.5*0.75 + 0.5*0.25 = 0.5
    assert themes.loc[("issue", "Model"), "kappa"] == pytest.approx(0.5, abs=1e-6)


def test_three_coders_use_krippendorff(sheets: dict[str, Path], codebook: Codebook) -> None:
    third = _fill(sheets["template"], sheets["folder"] / "three.xlsx", "cai", CODER_1)
    table = coding.agreement(
        coding.read_coding_sheets([sheets["one"], sheets["two"], third], codebook), codebook
    )
    codes = table[table["level"] == "code"].set_index("name")
    assert np.isnan(codes.loc[B, "kappa"])  # Cohen's kappa is for two coders
    # B: (0,1,0,0), (0,0,1,0), (0,1,0,0): o00 = 7, o01 = o10 = 2, o11 = 1; n0 = 9, n1 = 3, n = 12
    # Do = 4/12, De = 2*9*3/(12*11) = 54/132 -> alpha = 1 - (1/3)/(54/132) = 5/27
    assert codes.loc[B, "alpha"] == pytest.approx(5 / 27, abs=1e-6)


def test_disagreements_and_resolution_to_mapped_csv(
    sheets: dict[str, Path], codebook: Codebook, tmp_path: Path
) -> None:
    report = coding.agreement_report([sheets["one"], sheets["two"]], codebook, out_dir=tmp_path / "report")
    todo = report.disagreements
    assert list(zip(todo["post_id"], todo["code"], todo["coders_with"], todo["coders_without"])) == [
        ("o/r-2", B, "ana", "ben"),
        ("o/r-3", B, "ben", "ana"),
    ]
    for name in (
        "agreement.csv",
        "agreement.md",
        "agreement.tex",
        "disagreements.csv",
        "disagreements.xlsx",
        "agreement.json",
    ):
        assert (tmp_path / "report" / name).is_file(), name

    coded = coding.read_coding_sheets([sheets["one"], sheets["two"]], codebook)
    with pytest.raises(CodingError, match=r"2 disagreement\(s\) without a decision"):
        coding.resolve(coded, codebook)

    # the adjudicator fills the disagreement sheet: keep B on p2, drop it on p3
    decisions_path = tmp_path / "report" / "disagreements.xlsx"
    workbook = openpyxl.load_workbook(decisions_path)
    sheet = workbook["disagreements"]
    headers = [c.value for c in sheet[1]]
    column = headers.index("decision") + 1
    sheet.cell(2, column).value = "include"
    sheet.cell(3, column).value = "exclude"
    workbook.save(decisions_path)
    decisions = coding.read_decisions(decisions_path, codebook)
    result = coding.resolve(coded, codebook, decisions=decisions)
    assert result.applied == 2
    mapped = coding.write_mapped(result.coded, tmp_path / "mapped.csv")
    frame = pd.read_csv(mapped, keep_default_na=False)
    assert list(frame.columns) == ["source", "id", "issue", "solution"]
    assert frame.to_dict(orient="list") == {
        "source": ["GH Issue"] * 4,
        "id": ["o/r-1", "o/r-2", "o/r-3", "o/r-4"],
        "issue": [A, f"{A}, {B}", "", C],
        "solution": [X, "", "", Y],
    }
    # the thematic stage's loader reads it back with the same codebook
    sample = load_coded_sample(path=mapped, codebook=codebook)
    assert sample.n_posts == 4
    assert sorted(sample.mentions["code"]) == sorted([A, A, B, C, X, Y])
    back = coding.coded_posts_from_mapped(mapped, codebook)
    assert back["issue"].tolist() == [[A], [A, B], [], [C]]


@pytest.mark.parametrize(
    ("policy", "p2", "p3"),
    [("union", [A, B], [B]), ("intersection", [A], [])],
)
def test_resolution_policies(
    sheets: dict[str, Path], codebook: Codebook, policy: str, p2: list[str], p3: list[str]
) -> None:
    coded = coding.read_coding_sheets([sheets["one"], sheets["two"]], codebook)
    result = coding.resolve(coded, codebook, policy=policy)  # type: ignore[arg-type]
    issues = dict(zip(result.coded["post_id"], result.coded["issue"]))
    assert issues["o/r-2"] == p2 and issues["o/r-3"] == p3 and issues["o/r-1"] == [A]


def test_majority_with_three_coders(sheets: dict[str, Path], codebook: Codebook) -> None:
    third = _fill(sheets["template"], sheets["folder"] / "maj.xlsx", "dee", CODER_1)
    coded = coding.read_coding_sheets([sheets["one"], sheets["two"], third], codebook)
    result = coding.resolve(coded, codebook, policy="majority")
    issues = dict(zip(result.coded["post_id"], result.coded["issue"]))
    assert issues["o/r-2"] == [A, B]  # 2 of 3 used B
    assert issues["o/r-3"] == []  # 1 of 3 used B


def test_unknown_code_names_file_row_and_field(
    sheets: dict[str, Path], codebook: Codebook, tmp_path: Path
) -> None:
    workbook = openpyxl.load_workbook(sheets["one"])
    sheet = workbook["coding"]
    sheet["H4"] = "Alpha isue, Delta issue"  # row 4 = post o/r-3, column H = issue_2
    sheet["J2"] = "y FIX"  # solution_1 of row 2: matches 'Y fix' regardless of case
    bad = tmp_path / "bad.xlsx"
    workbook.save(bad)
    with pytest.raises(CodingError) as info:
        coding.read_coding_sheet(bad, codebook)
    message = str(info.value)
    assert str(bad) in message
    assert "row 4, field 'issue_2': unknown issue code 'Alpha isue'" in message
    assert "closest: 'Alpha issue'" in message
    assert "row 4, field 'issue_2': unknown issue code 'Delta issue'" in message
    assert "row 2" not in message.split("problem(s)")[1]


def test_bad_sheets_are_errors(sheets: dict[str, Path], codebook: Codebook, tmp_path: Path) -> None:
    workbook = openpyxl.load_workbook(sheets["one"])
    workbook["coding"]["A3"] = "o/r-1"  # duplicate post
    workbook["coding"]["B5"] = "Reddit"
    dup = tmp_path / "dup.xlsx"
    workbook.save(dup)
    with pytest.raises(CodingError) as info:
        coding.read_coding_sheet(dup, codebook)
    assert "row 3, field 'post_id': post 'o/r-1' (GH Issue) repeats row 2" in str(info.value)
    assert "row 5, field 'source'" in str(info.value)
    (tmp_path / "junk.xlsx").write_text("not a workbook")
    with pytest.raises(CodingError, match="not a readable XLSX"):
        coding.read_coding_sheet(tmp_path / "junk.xlsx", codebook)
    with pytest.raises(CodingError, match="coder name 'ana' is used by more than one sheet"):
        coding.read_coding_sheets([sheets["one"], sheets["one"]], codebook)
    with pytest.raises(CodingError, match="at least two"):
        coding.agreement(coding.read_coding_sheets([sheets["one"]], codebook), codebook)
    bad_decisions = tmp_path / "decisions.csv"
    pd.DataFrame(
        {"source": ["GH Issue"], "post_id": ["o/r-2"], "type": ["issue"], "code": [B], "decision": ["maybe"]}
    ).to_csv(bad_decisions, index=False)
    with pytest.raises(CodingError, match=r"row 2, field 'decision'"):
        coding.read_decisions(bad_decisions, codebook)


def test_sample_size_command() -> None:
    from typer.testing import CliRunner

    from secmine.cli import app

    runner = CliRunner()
    outcome = runner.invoke(
        app, ["sample-size", "--population", "8421", "--confidence", "0.95", "--margin", "0.05"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.strip() == "368"
    outcome = runner.invoke(app, ["sample-size", "--population", "100", "--confidence", "2"])
    assert outcome.exit_code == 1


def test_coding_commands_round_trip(sheets: dict[str, Path], fixtures_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from secmine.cli import app

    runner = CliRunner()
    codebook = str(fixtures_dir / "analysis" / "codebook.yaml")
    sample = tmp_path / "sample.csv"
    _posts().to_csv(sample, index=False)
    outcome = runner.invoke(
        app,
        [
            "coding-sheet",
            "--sample",
            str(sample),
            "--codebook",
            codebook,
            "--output",
            str(tmp_path / "s.xlsx"),
            "--coders",
            "ana,ben",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "s_ana.xlsx").is_file() and (tmp_path / "s_ben.xlsx").is_file()
    assert openpyxl.load_workbook(tmp_path / "s_ben.xlsx")["instructions"]["B3"].value == "ben"
    outcome = runner.invoke(
        app,
        [
            "coding-agree",
            str(sheets["one"]),
            str(sheets["two"]),
            "--codebook",
            codebook,
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "2 disagreement(s)" in outcome.output
    outcome = runner.invoke(
        app,
        [
            "coding-resolve",
            str(sheets["one"]),
            str(sheets["two"]),
            "--codebook",
            codebook,
            "--output",
            str(tmp_path / "m.csv"),
        ],
    )
    assert outcome.exit_code == 1 and "without a decision" in outcome.output
    outcome = runner.invoke(
        app,
        [
            "coding-resolve",
            str(sheets["one"]),
            str(sheets["two"]),
            "--codebook",
            codebook,
            "--policy",
            "union",
            "--output",
            str(tmp_path / "m.csv"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert pd.read_csv(tmp_path / "m.csv", keep_default_na=False)["issue"].tolist() == [A, f"{A}, {B}", B, C]


# -- questionable input to the round-trip (issue 13, case 9) -----------------------------------


def test_strict_resolution_refuses_posts_coded_by_one_coder_only(
    sheets: dict[str, Path], codebook: Codebook, tmp_path: Path
) -> None:
    """A post the second coder left out was never checked by anyone: strict says so."""
    partial = {k: v for k, v in CODER_2.items() if k != "o/r-4"}
    template = openpyxl.load_workbook(sheets["two"])
    sheet = template["coding"]
    headers = [c.value for c in sheet[1]]
    for row in range(2, sheet.max_row + 1):
        if sheet.cell(row, headers.index("post_id") + 1).value == "o/r-4":
            sheet.delete_rows(row)
            break
    template.save(tmp_path / "two_partial.xlsx")
    coded = coding.read_coding_sheets([sheets["one"], tmp_path / "two_partial.xlsx"], codebook)
    assert {p for p in coded[1].posts["post_id"]} == set(partial)
    decisions = {("GH Issue", "o/r-2", "issue", B): True, ("GH Issue", "o/r-3", "issue", B): False}
    with pytest.raises(CodingError, match=r"o/r-4 \(GH Issue\).*coded by 1 of 2 coders \(ana\)"):
        coding.resolve(coded, codebook, decisions=decisions)
    # another policy takes the one coder's codes, and says so
    result = coding.resolve(coded, codebook, decisions=decisions, policy="union")
    assert dict(zip(result.coded["post_id"], result.coded["issue"]))["o/r-4"] == [C]
    assert any("o/r-4" in w and "1 of 2" in w for w in result.warnings)


def test_a_mistyped_post_id_is_an_error_not_a_new_post(
    sheets: dict[str, Path], codebook: Codebook, tmp_path: Path
) -> None:
    workbook = openpyxl.load_workbook(sheets["one"])
    sheet = workbook["coding"]
    headers = [c.value for c in sheet[1]]
    sheet.cell(3, headers.index("post_id") + 1).value = "o/r-22"  # was o/r-2
    workbook.save(tmp_path / "typo.xlsx")
    with pytest.raises(CodingError) as info:
        coding.read_coding_sheet(tmp_path / "typo.xlsx", codebook)
    message = str(info.value)
    assert "row 3, field 'post_id'" in message and "'o/r-22'" in message
    assert "not in the sample" in message and "'o/r-2'" in message


def test_a_formula_cell_is_an_error_naming_the_cell(
    sheets: dict[str, Path], codebook: Codebook, tmp_path: Path
) -> None:
    """A code typed as a formula (saved without a cached value) was dropped silently."""
    workbook = openpyxl.load_workbook(sheets["one"])
    sheet = workbook["coding"]
    headers = [c.value for c in sheet[1]]
    sheet.cell(2, headers.index("issue_2") + 1).value = f'=CONCATENATE("{B}")'
    workbook.save(tmp_path / "formula.xlsx")
    with pytest.raises(CodingError, match=r"row 2, field 'issue_2': a formula"):
        coding.read_coding_sheet(tmp_path / "formula.xlsx", codebook)
