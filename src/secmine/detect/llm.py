"""LLM zero- and few-shot classification through an OpenAI-compatible ``/chat/completions``
endpoint (OpenAI, vLLM, llama.cpp server, or a local Ollama at ``http://localhost:11434/v1``).

The prompt asks for one word, ``yes`` or ``no``.  When the endpoint returns token log-probabilities
(``logprobs``), the probability of the security class is ``P(yes) / (P(yes) + P(no))`` of the first
answer token; otherwise it is 1.0 or 0.0 from the answer.  An answer that is neither counts as no
and is reported.  The API key is read from an environment variable, never stored.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from secmine.errors import SecmineError

SYSTEM_PROMPT = (
    "You classify discussions (issues, pull requests, forum threads) from AI software projects and "
    "Hugging Face model repositories. A discussion is security-related when it reports, asks about or "
    "fixes something that affects the confidentiality, integrity or availability of the project, its "
    "users, models, data or infrastructure: vulnerabilities, CVEs, malicious code or models, unsafe "
    "deserialisation, leaked secrets, prompt injection, access control, supply-chain risks, denial of "
    "service. A discussion that only mentions a security keyword in passing is not security-related. "
    "Answer with exactly one word: yes or no."
)
USER_TEMPLATE = "Discussion:\n\"\"\"\n{text}\n\"\"\"\nIs this discussion security-related? Answer yes or no."

_ANSWER_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


class LLMError(SecmineError, RuntimeError):
    """The endpoint failed or answered something unusable."""


def truncate(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars].rstrip() + " ..."


def build_messages(text: str, examples: Sequence[tuple[str, int]] = (), *, max_chars: int = 2000,
                   shot_chars: int = 600) -> list[dict[str, str]]:
    """Chat messages: the instructions, one user/assistant pair per example, then the text."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for example, label in examples:
        messages.append({"role": "user", "content": USER_TEMPLATE.format(text=truncate(example, shot_chars))})
        messages.append({"role": "assistant", "content": "yes" if int(label) == 1 else "no"})
    messages.append({"role": "user", "content": USER_TEMPLATE.format(text=truncate(text, max_chars))})
    return messages


def parse_answer(content: str | None) -> int | None:
    """1 for yes, 0 for no, None when the answer says neither."""
    match = _ANSWER_RE.search(content or "")
    if match is None:
        return None
    return 1 if match.group(1).lower() == "yes" else 0


def probability_from_logprobs(choice: dict[str, Any]) -> float | None:
    """P(yes) among yes/no from the first answer token's ``top_logprobs``, when present."""
    try:
        first = choice["logprobs"]["content"][0]
        candidates = first.get("top_logprobs") or [first]
    except (KeyError, IndexError, TypeError):
        return None
    yes = no = 0.0
    for candidate in candidates:
        token = str(candidate.get("token", "")).strip().lower()
        if token in {"yes", "no"}:
            value = math.exp(float(candidate.get("logprob", -math.inf)))
            if token == "yes":
                yes += value
            else:
                no += value
    if yes + no == 0.0:
        return None
    return yes / (yes + no)


@dataclass
class ChatClient:
    """A minimal client of an OpenAI-compatible chat-completions endpoint."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    max_retries: int = 3
    seed: int = 0
    request_logprobs: bool = True
    _session: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url:
            raise LLMError("no LLM endpoint: set the base URL (e.g. http://localhost:11434/v1 for Ollama)")
        if not self.model:
            raise LLMError("no LLM model name given (e.g. llama3.1:8b for Ollama)")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """POST one chat completion (retries on connection errors, 429 and 5xx); returns choice 0."""
        import requests
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        if self._session is None:
            self._session = requests.Session()
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": 3,
            "seed": self.seed,
        }
        if self.request_logprobs:
            payload["logprobs"] = True
            payload["top_logprobs"] = 5

        class _Retryable(Exception):
            pass

        @retry(
            retry=retry_if_exception_type((_Retryable, requests.ConnectionError, requests.Timeout)),
            stop=stop_after_attempt(max(1, self.max_retries)),
            wait=wait_exponential(multiplier=0.5, max=8),
            reraise=True,
        )
        def _post() -> dict[str, Any]:
            response = self._session.post(self.url, json=payload, headers=self._headers(), timeout=self.timeout)
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"{self.url}: HTTP {response.status_code}")
            if response.status_code >= 400:
                raise LLMError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
            return response.json()

        try:
            data = _post()
        except (_Retryable, requests.RequestException) as exc:
            raise LLMError(f"{self.url}: request failed after {self.max_retries} tries: {exc}") from exc
        try:
            return data["choices"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.url}: unexpected response {str(data)[:300]}") from exc

    def classify(self, text: str, examples: Sequence[tuple[str, int]] = (), *, max_chars: int = 2000,
                 shot_chars: int = 600) -> tuple[float, int | None]:
        """``(probability of security, parsed answer or None)`` for one text."""
        choice = self.complete(build_messages(text, examples, max_chars=max_chars, shot_chars=shot_chars))
        content = (choice.get("message") or {}).get("content")
        answer = parse_answer(content)
        probability = probability_from_logprobs(choice)
        if probability is None:
            probability = float(answer) if answer is not None else 0.0
        return probability, answer
