"""LLM zero-shot and few-shot classifiers (see :mod:`secmine.detect.llm`).

Few-shot examples are drawn from the training data (balanced, seeded); nothing else is learnt.
They are skipped in the comparison unless an endpoint is configured (``train.llm_base_url``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secmine.detect.models.base import ModelSettings, SecurityModel, check_training_data, ensure_dir

EXAMPLES_FILE = "few_shot_examples.json"


class LLMZeroShot(SecurityModel):
    """Ask an LLM, no examples."""

    family = "llm_zero_shot"
    trainable = False

    def __init__(self, params: dict[str, Any] | None = None, settings: ModelSettings | None = None) -> None:
        super().__init__(params, settings)
        self.examples: list[tuple[str, int]] = []
        self.unparsed = 0

    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        return {"base_url": settings.llm_base_url, "model": settings.llm_model}

    def _client(self) -> Any:
        from secmine.detect.llm import ChatClient

        return ChatClient(
            base_url=self.params["base_url"],
            model=self.params["model"],
            api_key_env=self.settings.llm_api_key_env,
            timeout=self.settings.llm_timeout,
            seed=self.settings.seed,
        )

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> LLMZeroShot:
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from tqdm import tqdm

        client = self._client()
        out = np.zeros(len(texts), dtype=np.float64)
        for i, text in enumerate(tqdm(texts, desc=self.family, disable=not self.settings.progress)):
            probability, answer = client.classify(
                text, self.examples, max_chars=self.settings.llm_max_chars, shot_chars=self.settings.llm_shot_chars
            )
            out[i] = probability
            self.unparsed += answer is None
        return out

    def save(self, directory: str | os.PathLike[str]) -> None:
        from secmine.io import write_json

        write_json(ensure_dir(directory) / EXAMPLES_FILE, [{"text": t, "label": int(y)} for t, y in self.examples])

    @classmethod
    def load(cls, directory: str | os.PathLike[str], card: dict[str, Any]) -> LLMZeroShot:
        model = cls(card.get("params"), ModelSettings.from_dict(card.get("settings", {})))
        path = Path(directory) / EXAMPLES_FILE
        if path.is_file():
            model.examples = [(e["text"], int(e["label"])) for e in json.loads(path.read_text(encoding="utf-8"))]
        return model

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self.params["base_url"], "llm": self.params["model"], "shots": len(self.examples)}


class LLMFewShot(LLMZeroShot):
    """Ask an LLM with ``shots`` labelled examples from the training data (half of each class)."""

    family = "llm_few_shot"
    trainable = True

    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        return {**super().default_params(settings), "shots": int(settings.llm_shots)}

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> LLMFewShot:
        y = check_training_data(texts, labels)
        rng = np.random.default_rng(self.settings.seed)
        shots = int(self.params["shots"])
        chosen: list[int] = []
        for label, count in ((1, (shots + 1) // 2), (0, shots // 2)):
            pool = np.flatnonzero(y == label)
            chosen.extend(rng.choice(pool, size=min(count, len(pool)), replace=False).tolist())
        order = rng.permutation(len(chosen))
        self.examples = [(texts[chosen[i]], int(y[chosen[i]])) for i in order]
        return self
