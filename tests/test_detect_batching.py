"""Inference batching: batch plans (padded and same-length) and prefix tokenisation that is exact."""

from __future__ import annotations

import random

import numpy as np
import pytest

from secmine.detect.batching import PREFIX_CHARS_PER_TOKEN, plan_batches, prefix_safe, text_prefix, tokenize

WORDS = ["security", "vulnerability", "CVE-2024-3568", "naïve", "ÜNÏCÖDÉ", "日本語のテキスト", "😀", "don't",
         "it's", "x" * 40, "https://huggingface.co/model?revision=main&x=1", "12345678", "...", "--", "(pickle)", "e\u0301",
         "\u0301", "Ａｂｃ", "ﬁle", "token_ids", "3.14", "a/b/c", "\x00", "ß"]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\t", " \n ", "\u3000", "\x1c", "\xa0", "\u200b", "\r\n", " \x1c ", "   "]


def _texts(seed: int, n: int = 150) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 160)):
            parts.append(rng.choice(WORDS))
            parts.append(rng.choice(SEPARATORS))
        texts.append("".join(parts)[: rng.randint(0, 900)])
    return texts + ["", " ", "word " * 200, "nospace" * 100, "   leading spaces " * 50,
                    "a " + "\t" * 1000 + " b" * 300]  # its prefix holds one word: encoded whole


def _train_tokenizer(kind: str, texts: list[str]):  # type: ignore[no-untyped-def]
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bytelevel-bpe":  # GPT-2 / RoBERTa style
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind == "metaspace-unigram":  # SentencePiece style
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<pad>", "<unk>"], unk_token="<unk>")
    elif kind == "replace-normalizer":  # joins words across a space: not prefix-safe, encoded whole
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.Replace(Regex(r" ([a-z])"), "$1")
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]"])
    else:
        raise ValueError(kind)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=tok.id_to_token(0))


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from transformers import AutoTokenizer

    from secmine.detect.backbones import minilm_path
    from secmine_testing.tiny_models import build_tiny_transformer

    corpus = _texts(99, 60)
    tiny = build_tiny_transformer(tmp_path_factory.mktemp("tiny"), corpus)
    found = {"minilm": AutoTokenizer.from_pretrained(minilm_path()),
             "tiny-wordpiece": AutoTokenizer.from_pretrained(tiny)}
    for kind in ("bytelevel-bpe", "metaspace-unigram", "replace-normalizer"):
        found[kind] = _train_tokenizer(kind, corpus)
    return found


@pytest.mark.parametrize("name", ["minilm", "tiny-wordpiece", "bytelevel-bpe", "metaspace-unigram",
                                  "replace-normalizer"])
@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_tokenize_is_exactly_the_truncated_encoding(tokenizers: dict[str, object], name: str, max_length: int) -> None:
    tokenizer = tokenizers[name]
    assert prefix_safe(tokenizer) == (name != "replace-normalizer")
    texts = _texts(max_length)
    expected = [list(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    assert tokenize(tokenizer, texts, max_length) == expected
    # the prefix path is taken (texts longer than the limit exist) and sometimes needs the whole text
    limit = PREFIX_CHARS_PER_TOKEN * max_length
    assert any(len(t) > limit for t in texts)


def test_prefix_safety_follows_the_tokenizer(tokenizers: dict[str, object]) -> None:
    from transformers import AutoTokenizer

    from secmine.detect.backbones import minilm_path

    left = AutoTokenizer.from_pretrained(minilm_path(), truncation_side="left")  # keeps the end of a text
    assert not prefix_safe(left)
    texts = ["first words " * 100 + "last words"]
    assert tokenize(left, texts, 8) == [list(left(texts[0], truncation=True, max_length=8)["input_ids"])]
    assert not prefix_safe(object())  # not a fast tokenizer


def test_text_prefix_ends_a_word_before_a_space() -> None:
    assert text_prefix("short text", 100) == "short text"
    assert text_prefix("alpha beta gamma", 12) == "alpha beta"
    assert text_prefix("alpha   beta gamma", 9) == "alpha"  # not inside a run of spaces
    assert text_prefix("alpha\n beta gamma", 9) == "alpha\n beta gamma"  # the only space follows a newline
    assert text_prefix("nospaceatall" * 10, 20) == "nospaceatall" * 10
    prefix = text_prefix("one two\tthree four five", 16)
    assert prefix == "one two\tthree" and not prefix[-1].isspace()


@pytest.mark.parametrize("seed", range(5))
def test_same_length_batches_never_mix_lengths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.choice([5, 17, 64, 64, 256, 256, 256, 100], size=300)
    batches = plan_batches(lengths, max_batch_size=64, max_tokens=1024, same_length=True)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(300))
    assert (np.diff(lengths[flat]) <= 0).all()
    for batch in batches:
        assert len(set(lengths[batch].tolist())) == 1
        assert len(batch) <= 64 and (len(batch) == 1 or len(batch) * lengths[batch][0] <= 1024)
    # as full as the budget allows: 256-token texts go 4 to a batch, 5-token ones 64
    sizes: dict[int, list[int]] = {}
    for batch in batches:
        sizes.setdefault(int(lengths[batch][0]), []).append(len(batch))
    for length, found in sizes.items():  # full batches, then one remainder
        full = min(64, 1024 // length)
        assert found[:-1] == [full] * (len(found) - 1) and sum(found) == int((lengths == length).sum())
    assert max(sizes[256]) == 4


def test_tokenize_empty() -> None:
    assert tokenize(object(), [], 8) == []


def test_long_texts_are_encoded_from_a_prefix(tokenizers: dict[str, object]) -> None:
    """A long text is encoded from a prefix: the tokenizer never sees more than the limit."""
    tokenizer = tokenizers["minilm"]
    seen: list[int] = []

    class Spy:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def __call__(self, texts: list[str], **kwargs: object) -> object:
            seen.extend(len(t) for t in texts)
            return self.inner(texts, **kwargs)

    text = "the loader unpickles untrusted checkpoints " * 500
    ids = tokenize(Spy(tokenizer), [text], 64)
    assert ids == [list(tokenizer(text, truncation=True, max_length=64)["input_ids"])]
    assert seen and max(seen) <= PREFIX_CHARS_PER_TOKEN * 64
    # a prefix with too few tokens (mostly whitespace) is not enough: the text is encoded whole
    seen.clear()
    sparse = "a " + "\t" * 1000 + " b" * 300
    expected = [list(tokenizer(sparse, truncation=True, max_length=64)["input_ids"])]
    assert tokenize(Spy(tokenizer), [sparse], 64) == expected
    assert seen == [1, len(sparse)]
