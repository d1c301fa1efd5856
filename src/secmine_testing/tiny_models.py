"""A tiny DistilBERT (or BERT) built from a config, with a WordPiece tokenizer trained offline on a few texts.

For tests and smoke runs: it trains and predicts in seconds on a CPU, needs no download, and goes
through exactly the code paths of a real checkpoint (``AutoModelForSequenceClassification``,
``save_pretrained``/``from_pretrained``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def build_tiny_transformer(
    directory: str | os.PathLike[str],
    texts: Sequence[str],
    *,
    vocab_size: int = 400,
    dim: int = 32,
    layers: int = 1,
    heads: int = 2,
    max_positions: int = 128,
    seed: int = 0,
    architecture: str = "distilbert",
) -> Path:
    """Write a randomly initialised tiny classifier and its tokenizer to ``directory``.

    ``architecture``: ``distilbert`` (the paper's family) or ``bert`` (the family of the default
    MiniLM backbone, with a pooler).
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    if architecture not in ("distilbert", "bert"):
        raise ValueError(f"architecture {architecture!r}: choose distilbert or bert")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_positions,
    )
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    pad = tokenizer.token_to_id("[PAD]")
    if architecture == "bert":
        bert = BertConfig(
            vocab_size=tokenizer.get_vocab_size(), hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=dim * 2, max_position_embeddings=max_positions, num_labels=2, pad_token_id=pad,
        )
        BertForSequenceClassification(bert).save_pretrained(path)
        return path
    config = DistilBertConfig(
        vocab_size=tokenizer.get_vocab_size(), dim=dim, n_layers=layers, n_heads=heads, hidden_dim=dim * 2,
        max_position_embeddings=max_positions, num_labels=2, pad_token_id=pad,
    )
    DistilBertForSequenceClassification(config).save_pretrained(path)
    return path
