"""Fast CPU inference for fine-tuned transformers: ONNX Runtime graphs, fp32 or int8.

A saved transformer (``models/security``) is exported to two ONNX graphs kept beside its weights in
``onnx/`` (the layout is :mod:`secmine.detect.savedmodel`'s), both taking ``input_ids`` only:

* ``model.onnx`` -- fp32, numerically the PyTorch model (checked at export: largest logit
  difference on probe texts within :data:`PARITY_TOLERANCE`).  For BERT-family classifiers (the
  default MiniLM backbone) the last encoder layer is computed for the ``[CLS]`` position only --
  the classifier reads nothing else -- which removes most of that layer's work without changing
  the output; other architectures are exported whole.  A text's logits do not depend on the texts
  batched with it.
* ``model.int8.onnx`` -- the same graph with its matrix products dynamically quantised to int8
  (weights per channel in a 7-bit range, see :data:`INT8_REDUCE_RANGE`; embeddings, pooler and
  head stay fp32).  Faster on CPUs with int8 dot products (AVX512-VNNI, AVX-VNNI), approximate:
  activations are quantised per batch, so a text's probability can move slightly with the texts it
  is batched with (still byte-identical between runs on the same input and machine).

The engines are written only by the train stage (into the model folder, a declared DVC output)
and by ``secmine export`` (into the model folder or a folder the user names); a model folder
whose engines are missing or in an older export format is one line saying to run ``secmine
export --model-dir DIR`` -- nothing is exported on the fly.  Export is deterministic: the same
weights give the same bytes (tracing on one torch thread, no timestamps or random names in the
graphs, quantisation computed from the weights alone; see tests/test_determinism.py).

The engines never pad: :class:`OnnxClassifier` batches only texts of one token length together
(length-sorted, :func:`secmine.detect.batching.plan_batches` with ``same_length``), so the graphs
need no attention mask -- no masked scores to add in every layer, no work on padding, and each
text attends over exactly its own tokens, as PyTorch does with a mask.  With ``num_threads`` N, N
batches run at once, each on one thread of one shared session: on small batches this beats
splitting every operator over N threads (no synchronisation per operator).  Batches hold about
:data:`MAX_TOKENS` tokens, the fastest size measured on 2 cores (activations stay in cache),
whether that is 2 texts of 256 tokens or 16 of 32.  A batch's logits do not depend on how many
threads ran it.

Which engine ``secmine classify`` uses is :func:`resolve_engine`'s choice: ``auto`` takes the
engine the train stage *validated* on the held-out test split (int8 only when its MCC is within
the tolerance of the PyTorch model's, see :func:`validate_engines`), else the exact fp32 graph,
else PyTorch when ONNX Runtime is missing; with ``exact`` (the classify stage's default, whose
results feed committed tables) ``auto`` never picks int8.  ``torch``, ``onnx`` and ``onnx-int8``
force one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secmine.detect.savedmodel import (  # noqa: F401 - layout names re-exported for callers of this module
    ENGINE_DIR,
    ENGINE_FILES,
    ENGINES,
    EXPORT_FORMAT,
    EXPORT_INFO,
    EngineError,
    engine_path,
    engines_problem,
    has_engines,
    require_engines,
)

log = logging.getLogger(__name__)

ENGINE_CHOICES: tuple[str, ...] = ("auto", *ENGINES)
#: Token budget and largest batch of an ONNX Runtime run (see the module docstring).
MAX_TOKENS = 512
MAX_BATCH_SIZE = 64
PARITY_TOLERANCE = 1e-3
OPSET = 17
#: int8 weights use 7 bits (``reduce_range``): every product sum of a uint8 activation pair and an
#: int8 weight pair then fits the int16 that CPUs without VNNI accumulate in (255*64*2 < 2**15), so
#: those CPUs compute the same integers as VNNI/AMX ones instead of saturating.
INT8_REDUCE_RANGE = True
PROBE_TEXTS: tuple[str, ...] = (
    "Security vulnerability: remote code execution when loading a pickled checkpoint (CVE-2024-0001).",
    "The tokenizer crashes on empty input.",
    "How do I fine-tune this model on my own dataset? " * 12,
    "Bump transformers from 4.30 to 4.38 to fix a dependency issue.",
)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# -- export -------------------------------------------------------------------------------------


def _cls_only_supported(model: Any) -> bool:
    """BERT-family classifiers whose head reads only the pooled ``[CLS]`` vector."""
    bert = getattr(model, "bert", None)
    if bert is None or getattr(bert, "pooler", None) is None or not hasattr(model, "classifier"):
        return False
    layers = getattr(getattr(bert, "encoder", None), "layer", None)
    if not layers:
        return False
    last = layers[-1]
    needed = ("attention", "intermediate", "output")
    if not all(hasattr(last, name) for name in needed):
        return False
    attention = last.attention
    return all(hasattr(attention.self, n) for n in ("query", "key", "value")) and hasattr(attention, "output")


def _graph_modules(model: Any) -> dict[str, Any]:
    """Export wrappers ``{kind: module}`` taking ``input_ids`` only (no padding, no mask), for kinds
    ``cls-only`` (where supported) and ``full``."""
    import torch

    class FullLogits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids).logits

    class ClsOnlyBert(torch.nn.Module):
        """BERT classifier whose last encoder layer computes the [CLS] position only."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            bert = self.inner.bert
            hidden = bert.embeddings(input_ids=input_ids)
            layers = bert.encoder.layer
            for layer in layers[:-1]:
                out = layer(hidden)
                hidden = out[0] if isinstance(out, tuple) else out
            last = layers[-1]
            attn = last.attention.self
            batch, length, width = hidden.shape
            heads = attn.num_attention_heads
            size = width // heads
            first = hidden[:, :1]
            query = attn.query(first).view(batch, 1, heads, size).transpose(1, 2)
            key = attn.key(hidden).view(batch, length, heads, size).transpose(1, 2)
            value = attn.value(hidden).view(batch, length, heads, size).transpose(1, 2)
            scores = torch.matmul(query, key.transpose(-1, -2)) / (size ** 0.5)
            context = torch.matmul(scores.softmax(dim=-1), value).transpose(1, 2).reshape(batch, 1, width)
            attended = last.attention.output(context, first)
            encoded = last.output(last.intermediate(attended), attended)
            return self.inner.classifier(bert.pooler(encoded))

    graphs: dict[str, Any] = {}
    if _cls_only_supported(model):
        graphs["cls-only"] = ClsOnlyBert(model).eval()
    graphs["full"] = FullLogits(model).eval()
    return graphs


def _probes(tokenizer: Any, max_length: int) -> list[np.ndarray]:
    """Parity probes, each a batch of one length: the probe texts cut to their common length (ending
    with the tokenizer's last token; the export traces this one), then each probe text whole."""
    from secmine.detect.batching import tokenize

    ids = tokenize(tokenizer, list(PROBE_TEXTS), max_length)
    common = min(len(x) for x in ids)
    batch = np.array([x[: common - 1] + x[-1:] for x in ids], dtype=np.int64)
    return [batch, *(np.array([x], dtype=np.int64) for x in ids)]


def _session(path: Path, num_threads: int, device: str = "cpu") -> Any:
    import onnxruntime as ort

    from secmine.device import session_providers

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(num_threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.use_deterministic_compute = True
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=session_providers(device))


def _export_graph(module: Any, path: Path, inputs: dict[str, np.ndarray]) -> None:
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, tuple(torch.from_numpy(v) for v in inputs.values()), str(path), input_names=list(inputs),
            output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )


def _quantize(source: Path, target: Path, *, reduce_range: bool | None = None) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reduce_range = INT8_REDUCE_RANGE if reduce_range is None else reduce_range

    graph = onnx.load(str(source))
    keep = [n.name for n in graph.graph.node if n.op_type == "MatMul" and ("pooler" in n.name or "classifier" in n.name)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=reduce_range, op_types_to_quantize=["MatMul"], nodes_to_exclude=keep)
    finally:
        root.setLevel(level)


def parity_bound(difference: float) -> float:
    """The largest logit difference measured at export, rounded up to a power of ten: an upper bound
    that does not change with the last bits of one CPU's float arithmetic (export.json stays the same)."""
    if not np.isfinite(difference):
        return float("inf")
    if difference <= 0:
        return 0.0
    return float(10.0 ** math.ceil(math.log10(difference)))


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch on ``count`` threads inside (tracing and constant folding: one fixed order of sums)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def export_engines(
    model: Any,
    tokenizer: Any,
    directory: str | os.PathLike[str],
    *,
    max_length: int = 256,
) -> dict[str, Any]:
    """Write ``directory/onnx/`` for a PyTorch sequence classifier: ``model.onnx``, ``model.int8.onnx``
    (input ``input_ids``, output ``logits``) and ``export.json``; returns the export record (graph
    kind, parity bound, versions).

    The fp32 graph must reproduce the PyTorch logits on probe batches of several lengths within
    :data:`PARITY_TOLERANCE`; the ``[CLS]``-only graph falls back to the whole model if it does not,
    and an :class:`EngineError` is raised if neither does.  The folder is replaced atomically.
    Same weights, same bytes: tracing runs on one torch thread, the graphs carry no timestamp or
    random name, quantisation is arithmetic on the weights alone, and export.json records only
    versions, settings and the parity bound (:func:`parity_bound`).
    """
    import importlib.metadata as md

    import torch

    if not onnxruntime_available():
        raise EngineError("onnxruntime is not installed; pip install onnxruntime (or use --engine torch)")
    source = copy.deepcopy(model).cpu().eval()
    if hasattr(source, "set_attn_implementation"):
        try:
            source.set_attn_implementation("eager")
        except (ValueError, TypeError, AttributeError):  # pragma: no cover - architecture without the option
            pass
    probes = _probes(tokenizer, max_length)
    from secmine.io import atomic_dir

    with _torch_threads(1), atomic_dir(Path(directory) / ENGINE_DIR) as staging:
        with torch.inference_mode():
            expected = [source(input_ids=torch.from_numpy(ids)).logits.numpy() for ids in probes]
        path = staging / ENGINE_FILES["onnx"]
        attempts: list[str] = []
        chosen = None
        difference = float("inf")
        for kind, module in _graph_modules(source).items():
            try:
                _export_graph(module, path, {"input_ids": probes[0]})
                session = _session(path, 1)
                difference = max(float(np.abs(session.run(None, {"input_ids": ids})[0] - want).max())
                                 for ids, want in zip(probes, expected, strict=True))
            except Exception as exc:  # noqa: BLE001 - try the next graph, report all failures
                attempts.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            if difference <= PARITY_TOLERANCE:
                chosen = kind
                break
            attempts.append(f"{kind}: logits differ from PyTorch by {difference:.2e}")
        if chosen is None:
            raise EngineError(f"{type(model).__name__}: no ONNX graph reproduces the model ({'; '.join(attempts)})")
        _quantize(path, staging / ENGINE_FILES["onnx-int8"])
        versions = {}
        for name in ("torch", "onnx", "onnxruntime"):
            try:
                versions[name] = md.version(name)
            except md.PackageNotFoundError:  # pragma: no cover
                versions[name] = "absent"
        info = {
            "format": EXPORT_FORMAT,
            "graph": chosen,
            "inputs": ["input_ids"],
            "opset": OPSET,
            "max_length": int(max_length),
            "parity_max_abs_logit_diff": parity_bound(difference),
            "parity_tolerance": PARITY_TOLERANCE,
            "int8": "dynamic quantisation of MatMul weights per channel (QInt8, 7-bit range), activations per batch"
            if INT8_REDUCE_RANGE else "dynamic quantisation of MatMul weights per channel (QInt8), activations per batch",
            "versions": versions,
        }
        (staging / EXPORT_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return info


def export_model_dir(model_dir: str | os.PathLike[str], *, output_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Export the engines of a saved transformer (``secmine export``) into ``output_dir/onnx`` -- the
    model folder itself unless another folder is named."""
    from secmine.detect.savedmodel import load_model

    model, card = load_model(model_dir, progress=False)
    if card["family"] != "transformer":
        raise EngineError(f"{model_dir}: a {card['family']} model; only transformers have ONNX engines")
    return export_engines(model.model, model.tokenizer, output_dir or model_dir,
                          max_length=int(model.params["max_length"]))


# -- inference ----------------------------------------------------------------------------------


class OnnxClassifier:
    """A saved transformer run by ONNX Runtime: same tokeniser and truncation as PyTorch, batches of
    texts of one token length (nothing padded), about ``max_tokens`` tokens each, ``num_threads``
    batches at a time (one thread each)."""

    family = "transformer"

    def __init__(self, graph: str | os.PathLike[str], tokenizer: Any, *, engine: str, max_length: int,
                 num_threads: int = 2, max_batch_size: int = MAX_BATCH_SIZE, max_tokens: int = MAX_TOKENS,
                 progress: bool = False, device: str = "cpu") -> None:
        if engine not in ENGINE_FILES:
            raise EngineError(f"engine {engine!r} is not an ONNX engine")
        if not Path(graph).is_file():
            raise EngineError(f"{graph}: no such ONNX graph; run `secmine export --model-dir <model>` to write it")
        self.engine = engine
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.max_batch_size = int(max_batch_size)
        self.max_tokens = int(max_tokens)
        self.progress = progress
        self.workers = int(num_threads) if num_threads and num_threads > 0 else (os.cpu_count() or 1)
        self.device = device
        if device == "cuda":  # one stream of large batches feeds a GPU; parallel small ones do not
            self.workers = 1
        self.graph = Path(graph)
        # The graph loads in the background (parsing ~60 MB holds one core for a tenth of a second)
        # while the caller reads and tokenises its texts; ``session`` waits for it.
        from concurrent.futures import ThreadPoolExecutor

        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="secmine-onnx-load")
        self._loading = loader.submit(_session, self.graph, 1, device)
        loader.shutdown(wait=False)
        self._session: Any = None
        self._inputs: set[str] = set()

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (single-threaded runs; several may run at once)."""
        if self._session is None:
            try:
                session = self._loading.result()
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types
                raise EngineError(f"{self.graph}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc}); "
                                  "run `secmine export --model-dir <model>` to write it again") from exc
            inputs = {i.name for i in session.get_inputs()}
            if "input_ids" not in inputs:
                raise EngineError(f"{self.graph}: the graph has no 'input_ids' input (inputs: {sorted(inputs)})")
            self._session, self._inputs = session, inputs
        return self._session

    @classmethod
    def from_model_dir(cls, model_dir: str | os.PathLike[str], card: dict[str, Any], engine: str, *,
                       num_threads: int = 2, progress: bool = False,
                       engine_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
                       max_batch_size: int = MAX_BATCH_SIZE, max_tokens: int = MAX_TOKENS) -> OnnxClassifier:
        """The engine of a saved model: its ``onnx/`` (or ``engine_dir/onnx``) and its tokenizer.
        Engines that are missing or in an older export format are an :class:`EngineError` saying to
        run ``secmine export`` -- nothing is exported on the fly."""
        from transformers import AutoTokenizer

        from secmine.detect.models.transformer import quiet_transformers

        folder = require_engines(engine_dir if engine_dir is not None else model_dir, model_dir)
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        return cls(engine_path(folder, engine), tokenizer, engine=engine,
                   max_length=int(card.get("params", {}).get("max_length", 256)), num_threads=num_threads,
                   progress=progress, device=device, max_batch_size=max_batch_size, max_tokens=max_tokens)

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        from secmine.detect.batching import pad_token_id, run_batched, tokenize

        ids = tokenize(self.tokenizer, list(texts), self.max_length)
        session = self.session
        masked = "attention_mask" in self._inputs  # a graph exported with a mask input: all ones here

        def forward(input_ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
            feed = {"input_ids": input_ids, **({"attention_mask": attention} if masked else {})}
            return session.run(None, feed)[0]

        return run_batched(ids, forward, num_labels=int(session.get_outputs()[0].shape[-1] or 2),
                           pad_id=pad_token_id(self.tokenizer), max_batch_size=self.max_batch_size,
                           max_tokens=self.max_tokens, same_length=True, workers=self.workers,
                           progress=self.progress)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from secmine.detect.batching import softmax_positive

        return softmax_positive(self.predict_logits(texts))


# -- choosing and validating --------------------------------------------------------------------


def resolve_engine(requested: str, card: dict[str, Any], *, exact: bool = False) -> str:
    """The engine to run: ``torch`` for non-transformer families (their own code), the requested one
    otherwise; ``auto`` = the card's validated recommendation, else ``onnx`` (exact), else ``torch``.
    With ``exact``, ``auto`` never picks the approximate int8 engine (whose labels can change with
    the CPU): the exact fp32 graph, else ``torch``.  A forced engine is always honoured."""
    if requested not in ENGINE_CHOICES:
        raise EngineError(f"engine {requested!r}: choose one of {', '.join(ENGINE_CHOICES)}")
    if card.get("family") != "transformer":
        return "torch"
    if requested != "auto":
        if requested in ENGINE_FILES and not onnxruntime_available():
            raise EngineError(f"engine {requested!r} needs onnxruntime (pip install onnxruntime) or use --engine torch")
        return requested
    if not onnxruntime_available() or "error" in (card.get("engine_export") or {}):
        return "torch"
    recommended = (card.get("engines") or {}).get("recommended")
    if exact:
        return "onnx" if recommended != "torch" else "torch"
    return recommended if recommended in ENGINES else "onnx"


def validate_engines(
    model_dir: str | os.PathLike[str],
    card: dict[str, Any],
    texts: Sequence[str],
    labels: Sequence[int],
    torch_proba: Sequence[float],
    *,
    tolerance: float = 0.01,
    num_threads: int = 2,
    engine_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Each engine's MCC on held-out ``texts`` against the PyTorch model's (``torch_proba``), label
    agreement and largest probability difference; ``recommended`` is the fastest engine whose MCC is
    within ``tolerance`` of PyTorch's (int8, then fp32 ONNX, then PyTorch)."""
    from sklearn.metrics import matthews_corrcoef

    y = np.asarray(labels, dtype=np.int64)
    reference = np.asarray(torch_proba, dtype=np.float64)
    threshold = float(card.get("threshold", 0.5))
    ref_labels = (reference >= threshold).astype(np.int64)
    ref_mcc = float(matthews_corrcoef(y, ref_labels))
    report: dict[str, Any] = {
        "validated_on": len(y),
        "tolerance": float(tolerance),
        "torch": {"mcc": round(ref_mcc, 6), "agreement": 1.0, "max_abs_probability_diff": 0.0},
    }
    recommended = "torch"
    for engine in ("onnx", "onnx-int8"):
        classifier = OnnxClassifier.from_model_dir(model_dir, card, engine, num_threads=num_threads,
                                                   engine_dir=engine_dir if engine_dir is not None else model_dir)
        proba = classifier.predict_proba(list(texts))
        predicted = (proba >= threshold).astype(np.int64)
        mcc = float(matthews_corrcoef(y, predicted))
        report[engine] = {
            "mcc": round(mcc, 6),
            "agreement": round(float((predicted == ref_labels).mean()) if len(y) else 1.0, 6),
            "max_abs_probability_diff": round(float(np.abs(proba - reference).max()) if len(y) else 0.0, 6),
        }
        if abs(mcc - ref_mcc) <= tolerance + 1e-12:
            recommended = engine
    report["recommended"] = recommended
    return report


def exactness_check(
    model_dir: str | os.PathLike[str],
    card: dict[str, Any],
    texts: Sequence[str],
    probability: Sequence[float],
    *,
    engine: str,
    num_threads: int = 2,
) -> dict[str, Any]:
    """How an approximate engine's labels compare with the exact fp32 graph's on ``texts`` (a
    sample of what it classified, with its ``probability``): label agreement, the share labelled
    security by each, and the probability differences."""
    threshold = float(card.get("threshold", 0.5))
    approximate = np.asarray(probability, dtype=np.float64)
    exact = OnnxClassifier.from_model_dir(model_dir, card, "onnx", num_threads=num_threads).predict_proba(list(texts))
    ours, theirs = approximate >= threshold, exact >= threshold
    n = len(approximate)
    return {
        "engine": engine,
        "exact_engine": "onnx",
        "threads": n,
        "label_agreement": round(float((ours == theirs).mean()) if n else 1.0, 6),
        "security_pct": round(100.0 * float(ours.mean()) if n else 0.0, 4),
        "security_pct_exact": round(100.0 * float(theirs.mean()) if n else 0.0, 4),
        "mean_abs_probability_diff": round(float(np.abs(approximate - exact).mean()) if n else 0.0, 6),
        "max_abs_probability_diff": round(float(np.abs(approximate - exact).max()) if n else 0.0, 6),
    }


def engines_table(report: dict[str, Any]) -> Any:
    """The validation report as a table (engine, MCC, difference to PyTorch, agreement, recommended)."""
    import pandas as pd

    rows = []
    base = report["torch"]["mcc"]
    for engine in ENGINES:
        if engine in report:
            entry = report[engine]
            rows.append({"engine": engine, "test_mcc": entry["mcc"], "mcc_diff_vs_torch": entry["mcc"] - base,
                         "label_agreement": entry["agreement"],
                         "max_abs_probability_diff": entry["max_abs_probability_diff"],
                         "recommended": engine == report["recommended"]})
    return pd.DataFrame(rows)

