"""Length-sorted dynamic batching for transformer inference.

Texts are tokenised without padding, sorted by token length (longest first), and packed into
batches whose padded size (batch size x longest length in the batch) stays under a token budget;
each batch is padded only to its own longest text.  Results are put back in input order.  Compared
with padding every text to ``max_length`` one at a time, this avoids computing on padding and
lets short texts share large batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def plan_batches(lengths: Sequence[int], *, max_batch_size: int = 64, max_tokens: int = 16384) -> list[np.ndarray]:
    """Batches of positions into ``lengths``: longest first, each batch's ``size * longest`` within
    ``max_tokens`` (a single over-long text still gets a batch of its own), at most
    ``max_batch_size`` texts.  Every position appears in exactly one batch."""
    if max_batch_size < 1 or max_tokens < 1:
        raise ValueError("max_batch_size and max_tokens must be positive")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch_size, max_tokens // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text, truncated to ``max_length`` (special tokens included), unpadded."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [list(ids) for ids in encoded["input_ids"]]


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
    progress: bool = False,
) -> np.ndarray:
    """``forward(input_ids, attention_mask) -> logits`` over length-sorted dynamic batches of ``ids``;
    logits ``(len(ids), num_labels)`` in input order.  Whatever runs the model (PyTorch, ONNX Runtime)
    sees the same batches."""
    from tqdm import tqdm

    out = np.zeros((len(ids), num_labels), dtype=np.float32)
    if not len(ids):
        return out
    batches = plan_batches([len(x) for x in ids], max_batch_size=max_batch_size, max_tokens=max_tokens)
    with tqdm(total=len(ids), desc="classify", unit="text", disable=not progress) as bar:
        for batch in batches:
            input_ids, attention = pad_batch(ids, batch, pad_id)
            out[batch] = forward(input_ids, attention)
            bar.update(len(batch))
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
