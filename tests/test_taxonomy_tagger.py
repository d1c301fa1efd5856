"""The taxonomy tagger: hierarchy, a user's codebook, folds, thresholds inside folds, families, saving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.codebook import Codebook
from secmine.taxonomy.compare import cross_validate_family, train_tagger
from secmine.taxonomy.data import TaggerData, load_tagger_data
from secmine.taxonomy.folds import check_grouping, choose_thresholds, grouped_multilabel_folds
from secmine.taxonomy.labels import LabelSpace, label_key
from secmine.taxonomy.models import SKOPS_TRUSTED, TaggerModelError, TaggerSettings, build, load_skops
from secmine.taxonomy.tagger import CARD_FILE, Tagger, read_oof, tag_file

USER_CODEBOOK = """\
issue:
  Supply chain:
    Dependencies:
      - Vulnerable dependency
      - Malicious package
  Runtime:
    Execution:
      - Code injection
    Memory:
      - Memory leak
solution:
  Fixes:
    Upgrades:
      - Upgrade dependency
    Hardening:
      - Sandbox execution
"""
# words that signal each code in the synthetic texts
SIGNALS = {
    ("issue", "Vulnerable dependency"): "outdated vulnerable dependency cve",
    ("issue", "Malicious package"): "malicious typosquatted package",
    ("issue", "Code injection"): "eval injection arbitrary code",
    ("issue", "Memory leak"): "memory leak oom",
    ("solution", "Upgrade dependency"): "upgrade bump version",
    ("solution", "Sandbox execution"): "sandbox container isolate",
}
FILLER = "the user reports a problem with the library when running the model on a server".split()


@pytest.fixture()
def user_codebook(tmp_path: Path) -> Codebook:
    path = tmp_path / "codebook.yaml"
    path.write_text(USER_CODEBOOK, encoding="utf-8")
    return Codebook.from_yaml(path)


def synthetic(codebook: Codebook, n: int = 72, seed: int = 0) -> TaggerData:
    """Posts whose texts carry the signal words of their codes (each code on ~1/3 of the posts)."""
    rng = np.random.default_rng(seed)
    space = LabelSpace(codebook)
    rows, Y = [], []
    for i in range(n):
        codes = [key for key in SIGNALS if rng.random() < 0.33] or [list(SIGNALS)[i % len(SIGNALS)]]
        words = list(rng.choice(FILLER, 8)) + " ".join(SIGNALS[c] for c in codes).split()
        rng.shuffle(words)
        rows.append(
            {
                "post_id": f"org/r-{i}",
                "source": "GH Issue",
                "platform": "github",
                "kind": "issue",
                "thread_id": f"gh:issue:org/r#{i}",
                "group": f"g{i // 2}",
                "text": " ".join(words),
            }
        )
        Y.append(space.indicators(codes))
    return TaggerData(pd.DataFrame(rows), np.array(Y), space, "<synthetic>", "<synthetic>")


# -- hierarchy ---------------------------------------------------------------------------------


def test_user_codebook_label_space_and_indicators(user_codebook: Codebook) -> None:
    space = LabelSpace(user_codebook)
    frame = space.frame()
    assert frame.groupby(["type", "level"]).size().to_dict() == {
        ("issue", "code"): 4,
        ("issue", "sub_theme"): 3,
        ("issue", "theme"): 2,
        ("solution", "code"): 2,
        ("solution", "sub_theme"): 2,
        ("solution", "theme"): 1,
    }
    row = space.indicators([("issue", "memory LEAK")])  # matched regardless of case
    on = {space.keys[j] for j in np.flatnonzero(row)}
    assert on == {
        label_key("issue", "code", "Memory leak"),
        label_key("issue", "sub_theme", "Memory"),
        label_key("issue", "theme", "Runtime"),
    }


def test_predictions_are_consistent_with_the_hierarchy(user_codebook: Codebook) -> None:
    space = LabelSpace(user_codebook)
    rng = np.random.default_rng(1)
    P = rng.random((200, len(space)))
    thresholds = rng.uniform(0.2, 0.8, len(space))
    assert space.violations((P >= thresholds).astype(np.uint8)) > 0  # raw thresholding breaks it
    C = space.consistent_proba(P)
    H = space.decide(C, thresholds)
    assert space.violations(H) == 0
    for i, j in zip(*np.nonzero(space.ancestors)):
        assert (C[:, i] <= C[:, j] + 1e-12).all()  # a code is never more probable than its theme
        assert (H[:, i] <= H[:, j]).all()  # a predicted code implies its sub-theme and theme
    # bottom-up propagation is consistent too
    assert space.violations(space.propagate((P >= 0.5).astype(np.uint8))) == 0


def test_hierarchical_thresholds_maximise_f1_of_gated_predictions(user_codebook: Codebook) -> None:
    space = LabelSpace(user_codebook)
    # one label: positives score 0.7, negatives 0.3 (one negative at 0.65) -> best threshold in (0.65, 0.7]
    Y = np.array([[1], [1], [1], [0], [0], [0]])
    P = np.array([[0.7], [0.72], [0.9], [0.3], [0.65], [0.1]])
    assert 0.65 < choose_thresholds(Y, P)[0] <= 0.7
    # a label without positives keeps the default
    assert choose_thresholds(np.zeros((4, 1)), np.full((4, 1), 0.9))[0] == 0.5
    data = synthetic(user_codebook)
    C = space.consistent_proba(np.clip(data.Y * 0.8 + 0.1, 0, 1))
    t = choose_thresholds(data.Y, C, space=space)
    assert space.decide(C, t).tolist() == data.Y.tolist()


# -- folds and thresholds inside them ----------------------------------------------------------


def test_folds_are_grouped_stratified_and_seeded(user_codebook: Codebook) -> None:
    data = synthetic(user_codebook, n=90)
    groups = data.frame["group"].to_numpy()
    folds = grouped_multilabel_folds(data.Y, groups, 3, seed=7)
    check_grouping(folds, groups)
    assert (folds == grouped_multilabel_folds(data.Y, groups, 3, seed=7)).all()
    assert not (folds == grouped_multilabel_folds(data.Y, groups, 3, seed=8)).all()
    share = data.Y.mean(axis=0)
    for k in range(3):
        assert np.abs(data.Y[folds == k].mean(axis=0) - share).max() < 0.2  # every fold sees every label


def test_thresholds_are_chosen_inside_the_folds(user_codebook: Codebook) -> None:
    """Changing the labels of one outer fold's posts leaves that fold's thresholds unchanged: they
    never saw its labels (and every other fold's thresholds do depend on them)."""
    data = synthetic(user_codebook, n=72)
    folds = grouped_multilabel_folds(data.Y, data.frame["group"].to_numpy(), 3, seed=3)
    settings = TaggerSettings(seed=0, min_df=1)
    base = cross_validate_family(
        data, "tfidf_logreg", settings, folds, inner_folds=2, seed=3, log=lambda _: None
    )
    flipped = TaggerData(data.frame, data.Y.copy(), data.space, data.origin, data.texts_origin)
    rng = np.random.default_rng(0)
    test = np.flatnonzero(folds == 0)
    flipped.Y[test] = np.array([data.space.indicators([list(SIGNALS)[rng.integers(6)]]) for _ in test])
    other = cross_validate_family(
        flipped, "tfidf_logreg", settings, folds, inner_folds=2, seed=3, log=lambda _: None
    )
    assert np.array_equal(base.fold_thresholds[0], other.fold_thresholds[0])
    assert np.array_equal(base.proba[test], other.proba[test])
    assert not np.array_equal(base.fold_thresholds[1:], other.fold_thresholds[1:])
    assert data.space.violations(base.predicted) == 0


# -- families, comparison, saving --------------------------------------------------------------


def test_compare_save_load_and_tag(tmp_path: Path, user_codebook: Codebook, tiny_replication: Path) -> None:
    data = synthetic(user_codebook, n=72)
    model_dir = tmp_path / "taxonomy"
    result = train_tagger(
        data,
        model_dir,
        families="tfidf_logreg",
        settings=TaggerSettings(seed=0, min_df=1),
        n_folds=3,
        inner_folds=2,
        seed=1,
        n_boot=50,
        min_support=10,
        tables_dir=tmp_path / "tables",
        figures_dir=tmp_path / "figures",
        metrics_path=tmp_path / "metrics.json",
        log=lambda _: None,
    )
    assert result.chosen == "tfidf_logreg"
    themes = result.scores[(result.scores["type"] == "all") & (result.scores["level"] == "theme")].iloc[0]
    assert themes["micro_f1"] > 0.8 and themes["micro_f1_lo"] <= themes["micro_f1"] <= themes["micro_f1_hi"]
    assert {"tagger_comparison.csv", "tagger_labels.md", "tagger_labels.tex"} <= {
        p.name for p in (tmp_path / "tables").iterdir()
    }
    assert (tmp_path / "figures" / "tagger_comparison.svg").is_file()
    card = json.loads((model_dir / CARD_FILE).read_text())
    assert card["family"] == "tfidf_logreg" and card["codebook_version"] == user_codebook.version
    assert set(card["thresholds"]) == set(data.space.keys)
    assert not list(model_dir.rglob("*.pkl")) and not list(model_dir.rglob("*.joblib"))
    tagger = Tagger.load(model_dir)
    texts = [
        "eval injection arbitrary code in the server",
        "please upgrade bump version of the cve dependency",
    ]
    proba, predicted = tagger.predict(texts)
    assert data.space.violations(predicted) == 0
    assert predicted[0, data.space.index[label_key("issue", "code", "Code injection")]] == 1
    assert predicted[1, data.space.index[label_key("solution", "code", "Upgrade dependency")]] == 1
    oof = read_oof(model_dir)
    assert len(oof) == len(data) and oof["fold"].nunique() == 3
    # secmine tag on a CSV with id,text and on JSON lines
    csv = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b"], "text": texts}).to_csv(csv, index=False)
    rows = tag_file(model_dir, csv, tmp_path / "out.csv", progress=False)
    assert list(rows.columns) == ["id", "type", "level", "label", "probability", "predicted"]
    assert len(rows) == 2 * len(data.space)
    assert np.allclose(rows["probability"].to_numpy().reshape(2, -1), proba.round(6))
    jsonl = tmp_path / "threads.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps(
                {
                    "platform": "github",
                    "kind": "issue",
                    "repo": "o/r",
                    "number": i + 1,
                    "title": t,
                    "body": "",
                    "author": "u",
                    "state": "open",
                    "created_at": "2025-01-01T00:00:00Z",
                    "closed_at": None,
                    "labels": [],
                    "comments": [],
                    "url": f"https://github.com/o/r/issues/{i + 1}",
                }
            )
            for i, t in enumerate(texts)
        )
        + "\n"
    )
    rows = tag_file(model_dir, jsonl, tmp_path / "out.parquet", progress=False)
    assert rows["id"].nunique() == 2 and pd.read_parquet(tmp_path / "out.parquet").shape == rows.shape
    # the command line: secmine tag --model-dir DIR --input FILE --output FILE
    from typer.testing import CliRunner

    from secmine.cli import app

    run = CliRunner().invoke(
        app,
        ["tag", "--model-dir", str(model_dir), "--input", str(jsonl), "--output", str(tmp_path / "cli.csv"),
         "--out", str(tmp_path / "scratch"), "--replication-dir", str(tiny_replication)],
    )
    assert run.exit_code == 0, run.output
    assert len(pd.read_csv(tmp_path / "cli.csv")) == 2 * len(data.space)
    prevalence = pd.read_csv(tmp_path / "scratch" / "reports" / "tables" / "tag" / "input_prevalence.csv")
    assert set(prevalence["level"]) == {"theme", "sub_theme", "code"} and prevalence["share"].between(0, 1).all()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CARD_FILE).write_text("{not json")
    with pytest.raises(TaggerModelError, match="not valid JSON"):
        Tagger.load(broken)


def test_skops_refuses_untrusted_types(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "evil.skops"
    sio.dump(FunctionTransformer(func=eval), path)  # holds a reference to builtins.eval
    assert not SKOPS_TRUSTED
    with pytest.raises(TaggerModelError, match="untrusted"):
        load_skops(path)


def test_zero_shot_ranks_codes_by_similarity(
    user_codebook: Codebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a stand-in encoder (bag of signal words), the zero-shot family puts the matching code
    first and gives each parent the sum of its codes."""
    from secmine.taxonomy import models

    vocabulary = sorted({w for words in SIGNALS.values() for w in words.split()} | {"leak", "memory"})

    def fake_call(self: models.Embedder, texts: list[str]) -> np.ndarray:
        out = np.array([[float(w in t.lower().split()) for w in vocabulary] for t in texts]) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    monkeypatch.setattr(models.Embedder, "__call__", fake_call)
    space = LabelSpace(user_codebook)
    settings = TaggerSettings(descriptions={f"{t}|{c}": w for (t, c), w in SIGNALS.items()})
    model = build("zero_shot", space, settings)
    P = model.predict_proba(["a memory leak and oom", "sandbox container isolate"])
    codes = space.positions(level="code")
    issue_codes = [j for j in codes if space.labels[j].type == "issue"]
    assert space.labels[issue_codes[int(np.argmax(P[0, issue_codes]))]].name == "Memory leak"
    theme = space.index[label_key("issue", "theme", "Runtime")]
    below = [j for j in codes if space.ancestors[j, theme]]
    assert np.isclose(P[0, theme], P[0, below].sum())


@pytest.mark.slow
def test_finetune_family_on_a_tiny_model(tmp_path: Path, user_codebook: Codebook) -> None:
    from secmine_testing.tiny_models import build_tiny_transformer

    data = synthetic(user_codebook, n=24)
    backbone = build_tiny_transformer(
        tmp_path / "tiny", data.texts, architecture="bert", vocab_size=200, dim=16
    )
    settings = TaggerSettings(backbone=str(backbone), max_length=32, epochs=1.0, batch_size=8, num_threads=1)
    model = build("finetune", data.space, settings).fit(data.texts, data.Y)
    P = model.predict_proba(data.texts[:5])
    assert P.shape == (5, len(data.space)) and ((P > 0) & (P < 1)).all()
    target = tmp_path / "saved"
    target.mkdir()
    model.save(target)
    assert list((target / "transformer").glob("*.safetensors"))
    again = type(model).load(target, data.space, settings)
    assert np.allclose(again.predict_proba(data.texts[:5]), P, atol=1e-6)


# -- the replication package -------------------------------------------------------------------


@pytest.mark.shared
def test_replication_coded_posts_with_texts(replication_root: Path) -> None:
    data = load_tagger_data(replication_root=replication_root)
    assert len(data) >= 500  # the local copy withholds part of the paper's 753
    space = data.space
    assert len(space.positions(level="theme")) == 8
    assert space.violations(data.Y) == 0  # every coded code comes with its sub-theme and theme
    assert (data.frame["text"].str.len() > 0).all()
    folds = grouped_multilabel_folds(data.Y, data.frame["group"].to_numpy(), 3, seed=42)
    check_grouping(folds, data.frame["group"].to_numpy())


def test_tiny_replication_with_corpus_texts(tiny_replication: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "texts.csv"
    pd.DataFrame(
        {"post_id": ["org/model-a-1", "org/lib-10"], "text": ["Pickle weights", "Bump requests"]}
    ).to_csv(corpus, index=False)
    data = load_tagger_data(replication_root=tiny_replication, texts=corpus)
    assert data.frame["post_id"].tolist() == ["org/model-a-1", "org/lib-10"]
    assert any("without text" in note for note in data.notes)


def test_train_tagger_stage_on_a_users_coded_csv_and_codebook(
    tmp_path: Path, user_codebook: Codebook
) -> None:
    """``train-tagger --data`` on any coded CSV in the replication format, with texts from a CSV and
    the user's own YAML codebook."""
    from secmine.taxonomy.compare import TrainTaggerParams, run_train_tagger

    data = synthetic(user_codebook, n=48, seed=5)
    names = {key: label.name for key, label in zip(data.space.keys, data.space.labels)}
    rows = []
    for post_id, y in zip(data.frame["post_id"], data.Y):
        on = [data.space.labels[j] for j in np.flatnonzero(y) if data.space.labels[j].level == "code"]
        rows.append(
            {
                "source": "GH Issue",
                "id": post_id,
                "issue": ", ".join(lab.name.upper() for lab in on if lab.type == "issue"),  # any case
                "solution": ", ".join(lab.name for lab in on if lab.type == "solution"),
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "coded.csv", index=False)
    data.frame[["post_id", "text"]].to_csv(tmp_path / "texts.csv", index=False)
    (tmp_path / "codebook.yaml").write_text(USER_CODEBOOK, encoding="utf-8")
    params = TrainTaggerParams(families="tfidf_logreg", n_folds=2, inner_folds=2, bootstrap=20)
    result = run_train_tagger(
        params,
        coded=tmp_path / "coded.csv",
        texts=tmp_path / "texts.csv",
        codebook=tmp_path / "codebook.yaml",
        model_dir=tmp_path / "model",
        tables_dir=tmp_path / "tables",
        figures_dir=None,
        metrics_path=tmp_path / "train_tagger.json",
        log=lambda _: None,
    )
    assert result.data.Y.tolist() == data.Y.tolist()
    card = json.loads((tmp_path / "model" / CARD_FILE).read_text())
    assert {c["name"] for c in card["codebook"]} == {
        lab.name for lab in data.space.labels if lab.level == "code"
    }
    assert card["training"]["coded"].endswith("coded.csv") and set(card["thresholds"]) == set(names)
    metrics = json.loads((tmp_path / "train_tagger.json").read_text())
    assert metrics["chosen"] == "tfidf_logreg" and metrics["codebook_version"] == user_codebook.version
    bad = tmp_path / "bad.csv"
    pd.DataFrame([{"source": "GH Issue", "id": "org/r-0", "issue": "No such code", "solution": ""}]).to_csv(
        bad, index=False
    )
    with pytest.raises(ValueError, match=r"bad.csv, row 2, field 'issue': unknown issue code 'No such code'"):
        run_train_tagger(
            TrainTaggerParams(families="tfidf_logreg"),
            coded=bad,
            texts=tmp_path / "texts.csv",
            codebook=tmp_path / "codebook.yaml",
            model_dir=None,
            tables_dir=None,
            figures_dir=None,
            metrics_path=None,
            log=lambda _: None,
        )
