"""The codebook and the typed loaders of the replication package."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from secmine import replication
from secmine.codebook import THEME_ORDER, Codebook, CodebookError, normalise_label, short_theme


def test_normalise_label_ignores_case_spacing_and_separators() -> None:
    a = normalise_label("Outdated third-party dependency/package contains vulnerabilities")
    assert normalise_label("  outdated  third-party dependency / Package contains vulnerabilities ,") == a
    assert normalise_label("Data Guardrails.") == normalise_label("data guardrails")
    assert short_theme("System & Software Security Concerns") == "System & Software"
    assert short_theme("Data Security Solutions") == "Data"


def test_codebook_from_tiny_package(tiny_replication: Path) -> None:
    cb = Codebook.from_replication(tiny_replication)
    assert len(cb.of_type("issue")) == 5 and len(cb.of_type("solution")) == 3
    assert cb.themes("issue") == list(THEME_ORDER)
    assert cb.match("issue", "harmful/undesired MODEL output").name == "Harmful/Undesired model output"
    with pytest.raises(CodebookError, match=r"here: unknown issue code 'Harmful model outputs'; closest: 'Harmful/Undesired model output'"):
        cb.match("issue", "Harmful model outputs", where="here")
    assert cb.split_labels("a, b,, ;c") == ["a", "b", "c"]
    assert cb.split_labels(float("nan")) == []


def test_codebook_yaml_round_trip(tiny_replication: Path, tmp_path: Path) -> None:
    cb = Codebook.from_replication(tiny_replication)
    path = cb.to_yaml(tmp_path / "codebook.yaml")
    back = Codebook.from_yaml(path)
    assert back.codes == cb.codes and back.version == cb.version
    assert path.read_text().startswith(f"# secmine codebook, version {cb.version}")


def test_codebook_rejects_bad_summary(tmp_path: Path) -> None:
    path = tmp_path / "issue_theme_summary.csv"
    path.write_text("Code,Sub-theme,Theme,Type\nA,S,T,Issue\nB,,T,Issue\n")
    with pytest.raises(CodebookError, match=r"row 3, field 'Sub-theme': empty"):
        Codebook.from_summary_csvs(path)
    path.write_text("Code,Theme,Type\nA,T,Issue\n")
    with pytest.raises(CodebookError, match="missing column"):
        Codebook.from_summary_csvs(path)
    path.write_text("Code,Sub-theme,Theme,Type\nA,S,T,Issue\na ,S,T,Issue\n")
    with pytest.raises(CodebookError, match="appears twice"):
        Codebook.from_summary_csvs(path)


def test_load_posts(tiny_replication: Path) -> None:
    posts = replication.load_posts(tiny_replication)
    assert list(posts.columns) == replication.POST_COLUMNS
    first = posts.iloc[0]
    assert first.post_id == "org/model-a-1" and first.thread_id == "hf:discussion:org/model-a#1"
    assert first.text == "Pickle weights\nPlease use safetensors"
    assert first.url == "https://huggingface.co/org/model-a/discussions/1"
    assert posts.iloc[2].url == "https://github.com/org/lib/discussions/3"
    assert not posts.truncated.any()


def test_load_coded_sample_counts_mentions_and_warns(tiny_replication: Path) -> None:
    coded = replication.load_coded_sample(tiny_replication)
    assert coded.n_posts == 4
    issues = coded.mentions[coded.mentions.type == "issue"]
    # the duplicated dependency code of org/lib-10 counts twice, as in the paper
    assert (issues.post_id == "org/lib-10").sum() == 2
    assert len(issues) == 6
    assert set(issues.code) <= {c.name for c in coded.codebook.of_type("issue")}
    assert any("listed more than once" in w and "org/lib-10" in w for w in coded.warnings)
    solutions = coded.mentions[coded.mentions.type == "solution"]
    assert sorted(solutions.code) == ["Dependency Version Upgrade", "Secure File Format Adoption"]


def test_coded_sample_errors_name_file_row_field(tiny_replication: Path) -> None:
    path = tiny_replication / "theme" / "mapped.csv"
    frame = pd.read_csv(path)
    frame.loc[2, "issue"] = "Quantum tunnelling"
    frame.to_csv(path, index=False)
    with pytest.raises(replication.ReplicationError, match=r"mapped.csv, row 4, field 'issue': unknown issue code 'Quantum tunnelling'"):
        replication.load_coded_sample(tiny_replication)
    frame.loc[2, "issue"] = ""
    frame.loc[3, "id"] = frame.loc[0, "id"]
    frame.to_csv(path, index=False)
    with pytest.raises(replication.ReplicationError, match=r"row 5, field 'id': post 'org/model-a-1' repeats row 2"):
        replication.load_coded_sample(tiny_replication)
    frame.loc[3, "id"] = "org/unknown-9"
    frame.to_csv(path, index=False)
    coded = replication.load_coded_sample(tiny_replication)
    assert any("org/unknown-9" in w and "no text" in w for w in coded.warnings)
    frame.drop(columns=["solution"]).to_csv(path, index=False)
    with pytest.raises(replication.ReplicationError, match="missing column"):
        replication.load_coded_sample(tiny_replication)


def test_posts_errors(tiny_replication: Path) -> None:
    path = tiny_replication / "theme" / "data.xlsx"
    posts = pd.read_excel(path)
    posts.loc[1, "Data source"] = "Reddit"
    posts.to_excel(path, sheet_name="data", index=False)
    with pytest.raises(replication.ReplicationError, match=r"data.xlsx, row 3, field 'Data source'"):
        replication.load_posts(tiny_replication)
    path.write_bytes(b"not a spreadsheet")
    with pytest.raises(replication.ReplicationError, match="unreadable spreadsheet"):
        replication.load_posts(tiny_replication)


def test_labelled_and_security_only(tiny_replication: Path) -> None:
    labelled = replication.load_labelled(tiny_replication)
    assert list(labelled.split) == ["train", "train", "test"]
    assert labelled.thread_id.tolist() == ["gh:issue:org/lib#10", "hf:discussion:org/model-a#1", "gh:discussion:org/lib#3"]
    ids = replication.load_security_only(tiny_replication)
    assert ids.thread_id.tolist() == ["hf:discussion:org/model-a#1", "hf:discussion:org/model-b#2"]


def test_real_replication_package(replication_root: Path) -> None:
    posts = replication.load_posts(replication_root)
    coded = replication.load_coded_sample(replication_root)
    cb = coded.codebook
    assert len(cb.of_type("issue")) == 32 and len(cb.of_type("solution")) == 24
    assert cb.themes("issue") == list(THEME_ORDER) and cb.themes("solution") == list(THEME_ORDER)
    # every coded post has its text, and no post is coded twice
    assert set(coded.posts.post_id) <= set(posts.post_id)
    assert coded.posts.post_id.is_unique
    assert set(posts.source) == {"HF Discussion", "GH Issue", "GH Discussion"}
    # literal escapes are decoded
    assert not posts.text.str.contains(r"\\n", regex=False).any()
    labelled = replication.load_labelled(replication_root)
    assert set(labelled.split) == {"train", "test"} and set(labelled.is_security) == {0, 1}
    security = replication.load_security_only(replication_root)
    assert security.thread_id.is_unique and len(security) > 0


def test_security_only_reads_any_list_by_file_name(tiny_replication: Path) -> None:
    folder = tiny_replication / "classifier" / "inference" / "distilbert"
    with pd.ExcelWriter(folder / "gh_issue_security_only.xlsx") as writer:
        pd.DataFrame({"repo": ["org/lib", "org/lib"], "number": [10, 11]}).to_excel(writer, index=False)
    ids = replication.load_security_only(tiny_replication)
    assert set(ids.thread_id) == {
        "hf:discussion:org/model-a#1",
        "hf:discussion:org/model-b#2",
        "gh:issue:org/lib#10",
        "gh:issue:org/lib#11",
    }
    with pd.ExcelWriter(folder / "mystery_security_only.xlsx") as writer:
        pd.DataFrame({"a": ["x/y"], "b": [1]}).to_excel(writer, index=False)
    with pytest.raises(replication.ReplicationError, match="mystery_security_only.xlsx: cannot tell the platform"):
        replication.load_security_only(tiny_replication)
