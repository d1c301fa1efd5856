"""Threads tagged per second by `secmine tag`, beside threads classified per second by `secmine classify`.

Both run on the same texts (a CSV of id,text), on the same machine, one after the other, timed end to
end (model load, reading, text normalisation, inference, writing), through exactly what the commands run:
:func:`secmine.taxonomy.tagger.tag_file` and :func:`secmine.detect.predict.classify_file` (default engine).

* tagger: ``models/taxonomy`` when it holds one (the train-tagger stage's), otherwise (a clean clone) one
  trained here on the replication package's coded posts in ../shared with ``--family`` (default
  ``tfidf_logreg``, seconds; ``finetune`` or ``embed_logreg`` take minutes on 2 cores), two folds;
* classifier: ``models/security`` when it holds one, otherwise the stand-in of
  ``benchmarks/classify_throughput.py`` (the offline MiniLM fine-tuned for --epochs on --fit texts).

Texts: the first --n threads of the snapshot (../shared/ai_issues/issues.jsonl.gz) that match one of the
paper's keywords (the kind of thread the tag stage sees), in canonical form.  Prints threads per second of
each and their ratio; exits non-zero only when a run fails.

    .venv/bin/python benchmarks/tag_throughput.py [--n 300] [--threads 2] [--family tfidf_logreg]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd

from secmine import config


def benchmark_texts(n: int) -> tuple[pd.DataFrame, str]:
    """``id, text`` of the first ``n`` keyword-matching snapshot threads (sorted by id)."""
    from secmine.detect.corpus import load_threads
    from secmine.detect.keywords import PAPER_KEYWORDS, match_threads
    from secmine.text import frame_texts

    path = config.external_source_dir() / "ai_issues" / "issues.jsonl.gz"
    threads = load_threads(
        path, columns=["id", "platform", "kind", "repo", "number", "title", "body", "comments"]
    )
    matches = match_threads(threads, PAPER_KEYWORDS).set_index("id")["keyword_match"]
    chosen = threads[threads["id"].map(matches).fillna(False).astype(bool)].head(n)
    return pd.DataFrame({"id": chosen["id"], "text": frame_texts(chosen)}), f"{path} (keyword matches)"


def stand_in_tagger(directory: Path, family: str, threads: int) -> tuple[Path, str]:
    from secmine.taxonomy.compare import train_tagger
    from secmine.taxonomy.data import load_tagger_data
    from secmine.taxonomy.models import TaggerSettings

    started = time.perf_counter()
    data = load_tagger_data(replication_root=config.external_source_dir() / "ai_sec_dev")
    train_tagger(
        data,
        directory,
        families=family,
        settings=TaggerSettings(num_threads=threads),
        n_folds=2,
        inner_folds=2,
        n_boot=0,
        log=lambda _: None,
    )
    return (
        directory,
        f"{family} trained here on {len(data)} coded posts in {time.perf_counter() - started:.0f} s",
    )


def stand_in_classifier(
    directory: Path, threads: int, fit: int, epochs: float, seed: int
) -> tuple[Path, str]:
    spec = importlib.util.spec_from_file_location(
        "classify_throughput", Path(__file__).with_name("classify_throughput.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    fit_rows, validation, _, origin = module.labelled_texts(
        config.INTERIM_DATA_DIR / "labelled.parquet", 0, fit, 100, seed
    )
    module.quick_minilm_model(directory, fit_rows, validation, 256, seed, threads, epochs)
    return directory, (
        f"all-MiniLM-L6-v2 fine-tuned here for {epochs:g} epoch(s) on {len(fit_rows)} texts of "
        f"{origin} in {time.perf_counter() - started:.0f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="threads to tag and classify")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both")
    parser.add_argument("--tagger-dir", type=Path, default=config.MODELS_DIR / "taxonomy")
    parser.add_argument("--classifier-dir", type=Path, default=config.MODELS_DIR / "security")
    parser.add_argument(
        "--family", default="tfidf_logreg", help="family of the stand-in tagger (clean clone)"
    )
    parser.add_argument("--fit", type=int, default=200, help="texts to fine-tune the stand-in classifier on")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs of the stand-in classifier")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import torch

    from secmine.detect.predict import classify_file
    from secmine.taxonomy.tagger import read_card as read_tagger_card
    from secmine.taxonomy.tagger import tag_file

    torch.set_num_threads(args.threads)
    texts, origin = benchmark_texts(args.n)
    with tempfile.TemporaryDirectory(prefix="secmine-tag-bench-") as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "texts.csv"
        texts.to_csv(source, index=False)
        if (args.tagger_dir / "tagger_card.json").is_file():
            tagger_dir, tagger_origin = (
                args.tagger_dir,
                f"{args.tagger_dir} ({read_tagger_card(args.tagger_dir)['family']})",
            )
        else:
            tagger_dir, tagger_origin = stand_in_tagger(tmp_path / "tagger", args.family, args.threads)
        if (args.classifier_dir / "model_card.json").is_file():
            classifier_dir, classifier_origin = args.classifier_dir, str(args.classifier_dir)
        else:
            classifier_dir, classifier_origin = stand_in_classifier(
                tmp_path / "classifier", args.threads, args.fit, args.epochs, args.seed
            )
        started = time.perf_counter()
        tagged = tag_file(
            tagger_dir, source, tmp_path / "tagged.csv", num_threads=args.threads, progress=False
        )
        tag_seconds = time.perf_counter() - started
        started = time.perf_counter()
        classified = classify_file(
            classifier_dir, source, tmp_path / "classified.csv", num_threads=args.threads, progress=False
        )
        classify_seconds = time.perf_counter() - started
    labels = int(tagged.groupby("id").size().iloc[0]) if len(tagged) else 0
    lengths = texts["text"].str.len()
    rate_tag, rate_classify = len(texts) / tag_seconds, len(classified) / classify_seconds
    print(f"texts: {len(texts)} from {origin}; mean {np.mean(lengths):.0f} chars; one run each, same machine")
    print(f"tagger: {tagger_origin}; {labels} labels per thread")
    print(f"classifier: {classifier_origin}")
    print(f"{'':28}{'threads/s':>10}{'seconds':>10}")
    print(f"{'secmine tag':28}{rate_tag:>10.1f}{tag_seconds:>10.1f}")
    print(f"{'secmine classify':28}{rate_classify:>10.1f}{classify_seconds:>10.1f}")
    print(f"tag / classify: {rate_tag / rate_classify:.2f}x the threads per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
