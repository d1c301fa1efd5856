"""The model families compared by the ``train`` stage, by name.

=================  ==========================================================================
``keyword``        keyword baseline (the paper's keyword filter as a classifier)
``tfidf_logreg``   TF-IDF + logistic regression
``tfidf_svm``      TF-IDF + linear SVM
``embed_logreg``   frozen sentence embeddings (all-MiniLM-L6-v2) + logistic regression
``transformer``    fine-tuned transformer (all-MiniLM-L6-v2 by default; any HF checkpoint)
``llm_zero_shot``  LLM through an OpenAI-compatible endpoint, no examples
``llm_few_shot``   the same with labelled examples from the training data
=================  ==========================================================================
"""

from __future__ import annotations

from secmine.detect.models.base import ModelError, ModelSettings, SecurityModel
from secmine.detect.models.embeddings import EmbedLogReg
from secmine.detect.models.keyword import KeywordModel
from secmine.detect.models.llm import LLMFewShot, LLMZeroShot
from secmine.detect.models.sklearn_models import TfidfLogReg, TfidfSVM
from secmine.detect.models.transformer import TransformerModel

FAMILIES: dict[str, type[SecurityModel]] = {
    cls.family: cls
    for cls in (KeywordModel, TfidfLogReg, TfidfSVM, EmbedLogReg, TransformerModel, LLMZeroShot, LLMFewShot)
}
LLM_FAMILIES = frozenset({"llm_zero_shot", "llm_few_shot"})


def get_family(name: str) -> type[SecurityModel]:
    """The model class of a family name, or :class:`ModelError` listing the names."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ModelError(f"unknown model family {name!r}; choose from {', '.join(FAMILIES)}") from None


def parse_families(value: str | list[str]) -> list[str]:
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    for name in names:
        get_family(name)
    if not names:
        raise ModelError("no model family given")
    return list(dict.fromkeys(names))


__all__ = ["FAMILIES", "LLM_FAMILIES", "ModelError", "ModelSettings", "SecurityModel", "get_family", "parse_families"]
