"""Length-sorted dynamic batching for transformer inference.

Texts are tokenised without padding, sorted by token length (longest first), and packed into
batches whose padded size (batch size x longest length in the batch) stays under a token budget;
each batch is padded only to its own longest text.  With ``same_length`` a batch only ever holds
texts of one length, so nothing is padded at all (what the ONNX engines run, see
:mod:`secmine.detect.engine`).  Results are put back in input order.  Compared with padding every
text to ``max_length`` one at a time, this avoids computing on padding and lets short texts share
large batches.

Tokenising a long text only to keep its first ``max_length`` tokens wastes most of the work, so
:func:`tokenize` first encodes a prefix of the text, cut at a space, and keeps the result when the
prefix alone fills ``max_length`` -- then the tokens are exactly those of the whole text (the cut
is a word boundary for the tokenizers where this is allowed, see :func:`prefix_safe`); otherwise
the whole text is encoded.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: A text longer than this many characters per ``max_length`` token is first tokenised from a prefix
#: of that size (and again whole when the prefix yields fewer than ``max_length`` tokens).  Issue
#: texts run at 1.2-1.9 characters per token at the 1st-5th percentile and about 3.3 at the median,
#: so a prefix of 6 characters per token nearly always suffices.
PREFIX_CHARS_PER_TOKEN = 6
# Tokenizer parts that act on each character or split only at whitespace: a space is then a word
# boundary that no normalisation or pre-tokenisation moves, so a prefix cut there encodes to a
# prefix of the whole text's tokens.  Others (Replace, Precompiled, custom Split patterns, ...) are
# not assumed to be; they always encode the whole text.
_LOCAL_NORMALIZERS = frozenset({"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents",
                                "Strip", "Prepend"})
_SPLIT_AT_SPACE = frozenset({"BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Punctuation", "Digits",
                             "UnicodeScripts"})
_prefix_safety: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def plan_batches(lengths: Sequence[int], *, max_batch_size: int = 64, max_tokens: int = 16384,
                 same_length: bool = False) -> list[np.ndarray]:
    """Batches of positions into ``lengths``: longest first, each batch's ``size * longest`` within
    ``max_tokens`` (a single over-long text still gets a batch of its own), at most
    ``max_batch_size`` texts; with ``same_length`` only texts of equal length share a batch.  Every
    position appears in exactly one batch."""
    if max_batch_size < 1 or max_tokens < 1:
        raise ValueError("max_batch_size and max_tokens must be positive")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        longest = int(lengths[order[start]])
        size = max(1, min(max_batch_size, max_tokens // max(longest, 1)))
        stop = min(start + size, n)
        if same_length:
            stop = start + int(np.searchsorted(-lengths[order[start:stop]], -longest, side="right"))
        batches.append(order[start:stop])
        start = stop
    return batches


def _component_safe(part: dict[str, Any] | None, allowed: frozenset[str]) -> bool:
    if part is None:
        return True
    kind = part.get("type")
    if kind == "Sequence":
        children = part.get("normalizers") or part.get("pretokenizers") or []
        return all(_component_safe(child, allowed) for child in children)
    if kind == "Metaspace":  # replaces and splits at " " only
        return "Metaspace" in allowed and part.get("split", True) is not False
    if kind == "ByteLevel":  # the GPT-2 pattern never joins a space with the character before it
        return "ByteLevel" in allowed and part.get("use_regex", True) is not False
    return kind in allowed


def prefix_safe(tokenizer: Any) -> bool:
    """Whether :func:`tokenize` may encode a prefix of a long text cut at a space: a fast tokenizer
    that truncates on the right, whose normaliser is per character and whose pre-tokeniser splits
    at spaces (BERT, WordPiece, byte-level BPE, Metaspace), with no added token containing a space."""
    try:
        return _prefix_safety[tokenizer]
    except (KeyError, TypeError):
        pass
    safe = False
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and getattr(tokenizer, "truncation_side", "right") == "right":
        try:
            normalizer = json.loads(backend.normalizer.__getstate__()) if backend.normalizer is not None else None
            pre = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else None
        except (AttributeError, TypeError, ValueError):
            normalizer, pre = {"type": "unknown"}, {"type": "unknown"}
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        safe = (pre is not None
                and _component_safe(normalizer, _LOCAL_NORMALIZERS)
                and _component_safe(pre, _SPLIT_AT_SPACE | {"Metaspace", "ByteLevel"})
                and not any(any(ch.isspace() for ch in str(token)) for token in added.values()))
    try:
        _prefix_safety[tokenizer] = safe
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass
    return safe


def text_prefix(text: str, limit: int) -> str:
    """``text`` cut before the last space within ``limit`` characters that follows a non-space
    character (so the prefix ends a word); ``text`` itself when it is not longer or has no such space."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    while cut > 0 and text[cut - 1].isspace():
        cut = text.rfind(" ", 0, cut)
    return text[:cut] if cut > 0 else text


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text, truncated to ``max_length`` (special tokens included), unpadded.

    Exactly the ids of ``tokenizer(text, truncation=True, max_length=max_length)``; texts longer than
    :data:`PREFIX_CHARS_PER_TOKEN` x ``max_length`` characters are encoded from a prefix when the
    tokenizer allows it (:func:`prefix_safe`) and that prefix already fills ``max_length`` tokens."""
    if not texts:
        return []
    texts = list(texts)
    limit = PREFIX_CHARS_PER_TOKEN * int(max_length)
    cut = [text_prefix(t, limit) for t in texts] if prefix_safe(tokenizer) else texts
    encoded = [list(ids) for ids in
               tokenizer(cut, truncation=True, max_length=max_length, padding=False)["input_ids"]]
    redo = [i for i, ids in enumerate(encoded) if len(ids) < max_length and len(cut[i]) < len(texts[i])]
    if redo:
        again = tokenizer([texts[i] for i in redo], truncation=True, max_length=max_length, padding=False)
        for i, ids in zip(redo, again["input_ids"], strict=True):
            encoded[i] = list(ids)
    return encoded


def pad_batch(ids: Sequence[Sequence[int]], batch: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)`` int64 arrays of the texts at ``batch``, padded to the longest."""
    longest = max(len(ids[i]) for i in batch)
    input_ids = np.full((len(batch), longest), pad_id, dtype=np.int64)
    attention = np.zeros((len(batch), longest), dtype=np.int64)
    for row, position in enumerate(batch):
        seq = ids[position]
        input_ids[row, : len(seq)] = seq
        attention[row, : len(seq)] = 1
    return input_ids, attention


def run_batched(
    ids: Sequence[Sequence[int]],
    forward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    num_labels: int,
    pad_id: int,
    max_batch_size: int = 64,
    max_tokens: int = 16384,
    same_length: bool = False,
    workers: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """``forward(input_ids, attention_mask) -> logits`` over length-sorted dynamic batches of ``ids``
    (:func:`plan_batches`; with ``same_length`` the mask is all ones); logits ``(len(ids), num_labels)``
    in input order.  ``workers`` > 1 runs that many batches at once in threads (for a ``forward``
    that releases the GIL, such as an ONNX Runtime session); each batch's logits are the same either way."""
    from tqdm import tqdm

    out = np.zeros((len(ids), num_labels), dtype=np.float32)
    if not len(ids):
        return out
    batches = plan_batches([len(x) for x in ids], max_batch_size=max_batch_size, max_tokens=max_tokens,
                           same_length=same_length)

    def run(batch: np.ndarray) -> int:
        input_ids, attention = pad_batch(ids, batch, pad_id)
        out[batch] = forward(input_ids, attention)
        return len(batch)

    with tqdm(total=len(ids), desc="classify", unit="text", disable=not progress) as bar:
        if workers <= 1 or len(batches) == 1:
            for batch in batches:
                bar.update(run(batch))
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="secmine-batch") as pool:
                for done in pool.map(run, batches):
                    bar.update(done)
    return out


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's padding id (0 when it has none; masked positions are ignored anyway)."""
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0


def predict_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int = 256,
    max_batch_size: int = 64,
    max_tokens: int = 16384,
    progress: bool = False,
    device: Any = None,
) -> np.ndarray:
    """Logits ``(len(texts), num_labels)`` of a PyTorch sequence-classification model, in input order."""
    import torch

    ids = tokenize(tokenizer, texts, max_length)
    device = device if device is not None else next(model.parameters()).device
    model.eval()

    def forward(input_ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
        logits = model(input_ids=torch.from_numpy(input_ids).to(device),
                       attention_mask=torch.from_numpy(attention).to(device)).logits
        return logits.float().cpu().numpy()

    with torch.inference_mode():
        return run_batched(ids, forward, num_labels=int(getattr(model.config, "num_labels", 2)),
                           pad_id=pad_token_id(tokenizer), max_batch_size=max_batch_size,
                           max_tokens=max_tokens, progress=progress)


def softmax_positive(logits: np.ndarray) -> np.ndarray:
    """Probability of class 1 from 2-class logits (or the sigmoid of a single logit)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 2 and logits.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-logits[:, 0]))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp[:, 1] / exp.sum(axis=1)
