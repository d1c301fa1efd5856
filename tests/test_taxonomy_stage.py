"""The tag stage end to end on a small made-up run: a tagger trained on coded posts, every security
thread tagged (training posts out of fold), predicted prevalence, the three estimates with a valid
coded sample, the coverage study; same inputs give the same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from secmine.analysis.data import check_classified
from secmine.analysis.sampling import SampleParams, draw_sample, parse_strata, sample_plan
from secmine.codebook import Codebook
from secmine.io import write_csv
from secmine.taxonomy.compare import train_tagger
from secmine.taxonomy.models import TaggerSettings
from secmine.taxonomy.prevalence import TagParams, run_tag
from test_taxonomy_tagger import SIGNALS, USER_CODEBOOK, synthetic

PARAMS = SampleParams(strata="GH Issue", margin=0.15, seed=11)


def codes_of(text: str) -> dict[str, list[str]]:
    words = set(text.split())
    out: dict[str, list[str]] = {"issue": [], "solution": []}
    for (code_type, code), signal in SIGNALS.items():
        if set(signal.split()) <= words:
            out[code_type].append(code)
    return out


def test_tag_stage(tmp_path: Path) -> None:
    (tmp_path / "codebook.yaml").write_text(USER_CODEBOOK, encoding="utf-8")
    codebook = Codebook.from_yaml(tmp_path / "codebook.yaml")
    data = synthetic(codebook, n=72, seed=0)
    model_dir = tmp_path / "models" / "taxonomy"
    train_tagger(
        data,
        model_dir,
        families="tfidf_logreg",
        settings=TaggerSettings(seed=0, min_df=1),
        n_folds=3,
        inner_folds=2,
        n_boot=20,
        log=lambda _: None,
    )
    new = synthetic(codebook, n=150, seed=1).frame
    new = new.assign(
        thread_id=[f"gh:issue:org/new#{i + 1}" for i in range(len(new))],
        post_id=[f"org/new-{i + 1}" for i in range(len(new))],
    )
    threads = pd.concat(
        [
            data.frame.assign(
                repo="org/r", number=[int(t.rsplit("#", 1)[1]) for t in data.frame["thread_id"]]
            ),
            new.assign(repo="org/new", number=np.arange(1, len(new) + 1)),
        ],
        ignore_index=True,
    )
    corpus = pd.DataFrame(
        {
            "id": threads["thread_id"],
            "title": "",
            "body": threads["text"],
            "comments": [[] for _ in range(len(threads))],
        }
    )
    classified = check_classified(
        pd.DataFrame(
            {
                "id": threads["thread_id"],
                "platform": "github",
                "kind": "issue",
                "repo": threads["repo"],
                "number": threads["number"],
                "created_at": [f"2024-{1 + i % 12:02d}-15T00:00:00Z" for i in range(len(threads))],
                "keyword_match": True,
                "probability": 0.9,
                "label": 1,
            }
        )
    )
    security = classified[classified["label"] == 1]
    plan = sample_plan(security, parse_strata(PARAMS.strata), margin=PARAMS.margin)
    sample = draw_sample(security, plan, PARAMS.seed)
    sample_path = write_csv(sample, tmp_path / "sample.csv")
    text_of = dict(zip(corpus["id"], corpus["body"]))
    coded = sample[sample["draw"] <= 60]
    rows = [
        {
            "source": s,
            "id": p,
            "issue": ", ".join(codes_of(text_of[i])["issue"]),
            "solution": ", ".join(codes_of(text_of[i])["solution"]),
        }
        for s, p, i in zip(coded["source"], coded["post_id"], coded["id"])
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "coded.csv", index=False)
    params = TagParams(
        coverage_n="20,40,70",
        coverage_repeats=40,
        coverage_min_remainder=20,
        top_repos=2,
    )
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = run_tag(
            model_dir,
            "unused",
            "unused",
            output=out / "tagged.parquet",
            sample_path=sample_path,
            sample_params=PARAMS,
            replication_root=None,
            tables_dir=out / "tables",
            figures_dir=out / "figures",
            metrics_path=out / "tag.json",
            params=params,
            coded_sample=tmp_path / "coded.csv",
            classified=classified,
            corpus=corpus,
            progress=False,
        )
        digests.append(
            {
                p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*"))
                if p.is_file()
            }
        )
    assert digests[0] == digests[1]
    assert {
        "tables/taxonomy_prevalence.csv",
        "tables/taxonomy_prevalence_validity.md",
        "tables/ppi_coverage.tex",
        "tables/tag_prevalence_platform.csv",
        "tables/tag_prevalence_time.csv",
        "tables/tag_prevalence_repo.csv",
        "figures/ppi_coverage.svg",
        "figures/taxonomy_prevalence.png",
        "tagged.parquet",
    } <= set(digests[0])
    tagged = pd.read_parquet(tmp_path / "a" / "tagged.parquet")
    per_thread = tagged.drop_duplicates("id")
    assert len(per_thread) == len(threads)
    assert (per_thread.set_index("id").loc[data.frame["thread_id"], "prediction"] == "out_of_fold").all()
    assert (per_thread["prediction"] == "model").sum() == len(new)
    metrics = json.loads((tmp_path / "a" / "tag.json").read_text())
    assert metrics["coded_sample"]["case"] == "run-sample" and metrics["coded_sample"]["valid_for_corpus"]
    estimates = result.tables["taxonomy_prevalence"]
    assert estimates["ppi_share"].notna().all() and (estimates["ppi_coded_posts"] == len(coded)).all()
    assert result.tables["ppi_coverage"]["n"].tolist() == [20, 40]  # 70 leaves fewer than 20 uncoded


def test_tag_does_not_write_into_the_tagger_stages_embedding_cache(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The saved tagger's card names the train-tagger stage's embedding cache (a DVC output of that
    stage); tagging writes none of it, or `dvc status` would see train-tagger's output changed."""
    from secmine.taxonomy import prevalence

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def load(directory, **kwargs):  # noqa: ANN001, ANN202
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(prevalence.Tagger, "load", staticmethod(load))
    try:
        run_tag(tmp_path / "model", tmp_path / "classified.parquet", tmp_path / "corpus", write=False)
    except Stop:
        pass
    assert seen.get("embedding_cache") == ""
