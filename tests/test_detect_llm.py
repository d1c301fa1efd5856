"""LLM zero-/few-shot classification against a fake OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from secmine.detect.llm import ChatClient, LLMError, build_messages, parse_answer
from secmine.detect.models import ModelSettings, get_family

SECURITY_WORDS = ("vulnerab", "exploit", "leak", "injection", "malicious", "cve")


class FakeEndpoint:
    """A real HTTP server speaking the chat-completions protocol, with scripted failures."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next: list[int] = []  # status codes to answer before succeeding
        self.logprobs = True
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append({"path": self.path, **body})
                endpoint.headers.append(dict(self.headers))
                if endpoint.fail_next:
                    status = endpoint.fail_next.pop(0)
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                question = body["messages"][-1]["content"].lower()
                yes = any(w in question for w in SECURITY_WORDS)
                answer = "yes" if yes else "no"
                choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": answer.capitalize()}}
                if endpoint.logprobs and body.get("logprobs"):
                    p = 0.9 if yes else 0.2
                    choice["logprobs"] = {"content": [{"token": answer, "logprob": math.log(max(p, 1 - p)),
                                                       "top_logprobs": [{"token": "yes", "logprob": math.log(p)},
                                                                        {"token": "no", "logprob": math.log(1 - p)}]}]}
                data = json.dumps({"id": "x", "object": "chat.completion", "choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def endpoint() -> Iterator[FakeEndpoint]:
    with FakeEndpoint() as fake:
        yield fake


TEXTS = ["A remote code execution vulnerability in the loader", "The docs have a typo",
         "API key leak in the logs", "Add dark mode"]
LABELS = [1, 0, 1, 0]


def test_zero_shot_over_http_uses_logprobs(endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    settings = ModelSettings(llm_base_url=endpoint.url, llm_model="tiny-llm", llm_api_key_env="FAKE_KEY", seed=3)
    model = get_family("llm_zero_shot")(None, settings).fit(TEXTS, LABELS)
    proba = model.predict_proba(TEXTS)
    assert proba == pytest.approx([0.9, 0.2, 0.9, 0.2])
    assert model.predict(TEXTS).tolist() == LABELS
    first = endpoint.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["model"] == "tiny-llm"
    assert first["temperature"] == 0 and first["seed"] == 3 and first["logprobs"] is True
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert endpoint.headers[0]["Authorization"] == "Bearer sk-test"


def test_few_shot_sends_balanced_examples_and_round_trips(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    endpoint.logprobs = False
    settings = ModelSettings(llm_base_url=endpoint.url, llm_model="tiny-llm", llm_shots=2, seed=1)
    model = get_family("llm_few_shot")(None, settings).fit(TEXTS, LABELS)
    assert sorted(label for _, label in model.examples) == [0, 1]
    proba = model.predict_proba(["exploit in the wild", "new feature"])
    assert proba.tolist() == [1.0, 0.0]  # no logprobs: the answer itself
    roles = [m["role"] for m in endpoint.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    model.save(tmp_path)
    card = {"family": "llm_few_shot", "params": model.params, "settings": settings.to_dict()}
    again = get_family("llm_few_shot").load(tmp_path, card)
    assert again.examples == model.examples


def test_retries_server_errors_and_reports_client_errors(endpoint: FakeEndpoint) -> None:
    client = ChatClient(endpoint.url, "tiny-llm", max_retries=3, api_key_env="")
    endpoint.fail_next = [500, 429]
    probability, answer = client.classify("malicious package")
    assert answer == 1 and probability == pytest.approx(0.9)
    assert len(endpoint.requests) == 3
    endpoint.fail_next = [400]
    with pytest.raises(LLMError, match="HTTP 400"):
        client.classify("anything")
    with pytest.raises(LLMError, match="base URL"):
        ChatClient("", "m")


def test_unreachable_endpoint_is_a_clear_error() -> None:
    client = ChatClient("http://127.0.0.1:9/v1", "m", max_retries=1, timeout=2)
    with pytest.raises(LLMError, match="request failed"):
        client.classify("text")


def test_prompt_and_answer_parsing() -> None:
    messages = build_messages("x" * 5000, [("ex" * 1000, 1)], max_chars=100, shot_chars=50)
    assert len(messages[-1]["content"]) < 300 and messages[2]["content"] == "yes"
    assert parse_answer("Yes.") == 1 and parse_answer("no") == 0 and parse_answer("I cannot say") is None
    assert parse_answer("Answer: NO") == 0
