"""A researcher's labelled set with rare positives, split by time: `secmine train` + `secmine evaluate`
at the default threshold (the former behaviour) against the new defaults, side by side.

The labelled CSV is built from ../shared as an external researcher would bring one
(:func:`secmine.detect.labelled.rare_positive_set`): the keyword-matched issues of
``ai_issues/security_labels.csv`` (security-related or not) plus issues of the snapshot that contain
no keyword (not even inside a word) as negatives, until positives are --share of the rows; columns
``id, repo, created_at, text, label``.  It is written to a temporary folder (never into the
repository).  Both runs are the command line a researcher types:

    secmine train --data FILE --split time --test-size 0.5 --families ... --params P.yaml --out R
    secmine evaluate --model-dir M --data R/labelled.parquet --split test --population all

so the oldest half trains and the newest half tests.  Both runs compare the same learning families
(--families, the TF-IDF families by default): ``baseline`` is the train block of the former behaviour
(threshold 0.5, no calibration, no hard-case weight, selection by the mean fold MCC on all rows);
``new`` is the defaults (threshold chosen inside the folds for MCC, isotonic calibration, hard cases
weighted, repeated folds when positives are few, strongest family within the interval, selected on
keyword matches); ``new, all rows`` the defaults selected on all rows.  The keyword baseline is run
too, for reference: every positive of this set contains a keyword (they are keyword matches by
construction), so it finds all of them.  Prints recall, MCC, precision, g-measure and PR-AUC on the
newest half and exits non-zero unless ``new`` reaches a recall --recall-gain above ``baseline``'s at
an MCC no lower than ``baseline``'s minus --mcc-tolerance.

    .venv/bin/python benchmarks/rare_positives.py [--share 0.03] [--families tfidf_logreg,tfidf_svm]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import yaml  # noqa: E402

from secmine import config  # noqa: E402

BASELINE = {"tune_threshold": False, "calibration": "none", "hard_weight": 1.0, "selection": "mean",
            "population": "all", "cv_repeats": 1, "threshold": 0.5, "label_noise": False, "source_probe": False}
NEW = {"label_noise": False, "source_probe": False}


def build_csv(path: Path, share: float, seed: int) -> dict[str, int]:
    from secmine.detect.corpus import load_threads
    from secmine.detect.labelled import rare_positive_set

    shared = config.external_source_dir()
    corpus = load_threads(shared / "ai_issues" / "issues.jsonl.gz")
    frame = rare_positive_set(corpus, shared / "ai_issues" / "security_labels.csv", positive_share=share, seed=seed)
    frame.to_csv(path, index=False, lineterminator="\n")
    return {"rows": len(frame), "positives": int(frame["label"].sum())}


RUNS = {"keyword (reference)": BASELINE, "baseline": BASELINE, "new": NEW, "new, all rows": {**NEW, "population": "all"}}


def run(kind: str, data: Path, work: Path, families: str, n_trials: int, seed: int) -> dict[str, object]:
    name = kind.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
    params = work / f"{name}.yaml"
    block = {"n_folds": 3, "n_trials": n_trials, "seed": seed, "bootstrap": 1000, **RUNS[kind]}
    params.write_text(yaml.safe_dump({"train": block}))
    model, out = work / name / "model", work / name / "out"
    reports = out / "data" / "interim"  # where the stage's labelled set lands under --out
    cli = [sys.executable, "-m", "secmine.cli"]
    started = time.perf_counter()
    subprocess.run([*cli, "train", "--data", str(data), "--split", "time", "--test-size", "0.5", "--families", families,
                    "--params", str(params), "--model-dir", str(model), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    out = work / name / "evaluate.json"
    subprocess.run([*cli, "evaluate", "--model-dir", str(model), "--data", str(reports / "labelled.parquet"),
                    "--split", "test", "--population", "all", "--seed", str(seed), "--output", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    card = json.loads((model / "model_card.json").read_text())
    result["selected"] = card["family"]
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, default=0.03, help="share of positives in the labelled CSV")
    parser.add_argument("--families", default="tfidf_logreg,tfidf_svm", help="learning families compared")
    parser.add_argument("--n-trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--recall-gain", type=float, default=0.10, help="recall the new defaults must add")
    parser.add_argument("--mcc-tolerance", type=float, default=0.0, help="MCC the new defaults may lose")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="secmine-rare-") as tmp:
        work = Path(tmp)
        data = work / "labelled.csv"
        sizes = build_csv(data, args.share, args.seed)
        print(f"labelled CSV: {sizes['rows']} issues, {sizes['positives']} positive ({sizes['positives'] / sizes['rows']:.1%}); "
              "split by time, newest half tests")
        results = {kind: run(kind, data, work, "keyword" if kind.startswith("keyword") else args.families,
                             args.n_trials, args.seed) for kind in RUNS}
    names = ("recall", "mcc", "precision", "g_measure", "pr_auc")
    print(f"{'':>19} {'selected':>14} " + " ".join(f"{n:>22}" for n in names) + f" {'seconds':>8}")
    for kind, r in results.items():
        cells = " ".join(f"{r[n]:.3f} [{r[n + '_lo']:.3f}, {r[n + '_hi']:.3f}]".rjust(22) for n in names)
        print(f"{kind:>19} {r['selected']:>14} {cells} {r['seconds']:8.0f}")
    base, new = results["baseline"], results["new"]
    print(f"test half: {new['n']} issues, {new['positives']} positive; recall {base['recall']:.3f} -> {new['recall']:.3f}, "
          f"MCC {base['mcc']:.3f} -> {new['mcc']:.3f}")
    ok = new["recall"] >= base["recall"] + args.recall_gain and new["mcc"] >= base["mcc"] - args.mcc_tolerance
    if not ok:
        print(f"MISS: the new defaults need recall >= baseline + {args.recall_gain} at MCC >= baseline - {args.mcc_tolerance}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
