"""A small OpenAI-compatible chat server on 127.0.0.1 whose answers a test scripts.

It answers ``POST /v1/chat/completions`` the way Ollama, llama.cpp or vLLM would, so the `llm`
model kind is tested through the real `openai` client and real HTTP: answers by passage, malformed
JSON, codes outside the codebook, refusals, 429 with Retry-After, slow answers for timeouts, a
400 for a response format the server lacks. ``GET /v1/models`` lists ``model_ids`` (a 404 when
None, as servers without the endpoint answer). It records every request body and its headers.

    with FakeLLM() as server:              # or the ``fake_llm`` fixture
        server.codes["manual"] = "push"    # passages containing "manual" are coded push
        server.script["hello"] = [malformed(), answer("none")]   # first answer broken, then none
        server.queue.append(rate_limited(0.2))                   # the next request of any passage
        ... LLMClassifier(base_url=server.url, ...) ...
        assert server.count == 3
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted response: a valid answer (``code``), any ``content``, a refusal, or an HTTP error."""

    code: str | None = None
    content: str | None = None
    status: int = 200
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    finish_reason: str = "stop"
    delay: float = 0.0  # seconds before answering (for client timeouts)

    def message_content(self) -> str | None:
        if self.code is not None:
            return json.dumps({"code": self.code, "rationale": "as the codebook says", "evidence": "the passage"})
        return self.content


def answer(code: str, delay: float = 0.0) -> Reply:
    return Reply(code=code, delay=delay)


def malformed(text: str = '{"code": "push", "rationale": ') -> Reply:
    return Reply(content=text)


def refusal(text: str = "I can't help with coding this passage.") -> Reply:
    """The OpenAI way of declining: the message's ``refusal`` field, no content."""
    return Reply(refusal=text)


def content_filtered() -> Reply:
    return Reply(content=None, finish_reason="content_filter")


def rate_limited(retry_after: float = 0.2) -> Reply:
    return Reply(status=429, error="rate limit reached", headers={"Retry-After": f"{retry_after:g}"})


def server_error(status: int = 503) -> Reply:
    return Reply(status=status, error="the model is loading")


class FakeLLM:
    """The server; start with ``with FakeLLM() as server`` (or the ``fake_llm`` fixture).

    How a request is answered, first match wins: ``queue`` (the next reply for any request),
    ``reject_formats`` / ``reject_seed`` (a 400, as a server without the feature answers),
    ``script`` (replies in order for passages containing a key; used up, then on), ``codes``
    (a valid answer with the code of the first key the passage contains), ``default_code``."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.default_code = "none"
        self.script: dict[str, list[Reply]] = {}
        self.queue: list[Reply] = []
        self.reject_formats: set[str] = set()  # response_format types answered with reject_status
        self.reject_status = 400  # llama-cpp-python's server answers them with 500
        self.reject_seed = False
        self.model_ids: list[str] | None = ["fake"]  # what GET /v1/models lists; None: a 404
        self.model_lists = 0  # GET /v1/models requests received
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # when each request arrived (time.monotonic)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- what tests read --------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def count(self) -> int:
        """Chat completion requests received so far."""
        with self._lock:
            return len(self.requests)

    @staticmethod
    def passage(body: dict[str, Any]) -> str:
        """The passage of a request: the user message between triple quotes (else all of it)."""
        text = str(body.get("messages", [{}])[-1].get("content", ""))
        if '"""\n' in text:
            text = text.split('"""\n', 1)[1].rsplit('\n"""', 1)[0]
        return text

    def sent_text(self) -> str:
        """Everything the server was sent, as one string (for privacy checks)."""
        with self._lock:
            return "\n".join(json.dumps(b, ensure_ascii=False) for b in self.requests)

    # -- answering --------------------------------------------------------------------------
    def _reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            if self.queue:
                return self.queue.pop(0)
            fmt = (body.get("response_format") or {}).get("type")
            if fmt in self.reject_formats:
                error = f"response_format type '{fmt}' is not supported by this server"
                return Reply(status=self.reject_status, error=error)
            if self.reject_seed and "seed" in body:
                return Reply(status=400, error="unrecognized request argument supplied: seed")
            passage = self.passage(body)
            for key, replies in self.script.items():
                if key in passage and replies:
                    return replies.pop(0)
            code = next((c for key, c in self.codes.items() if key in passage), self.default_code)
            return Reply(code=code)

    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        with self._lock:
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
        reply = self._reply(body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            payload: dict[str, Any] = {"error": {"message": reply.error, "type": "fake_error", "code": reply.status}}
        else:
            content = reply.message_content()
            words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
            completion = len((content or reply.refusal or "").split())
            payload = {
                "id": f"chatcmpl-fake-{self.count}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": reply.refusal},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {"prompt_tokens": words, "completion_tokens": completion, "total_tokens": words + completion},
            }
        data = json.dumps(payload).encode("utf-8")
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/").endswith("/chat/completions"):
                    fake._respond(self)
                else:
                    self.send_error(404, "only /v1/chat/completions here")

            def do_GET(self) -> None:  # noqa: N802
                listing = self.path.rstrip("/").endswith("/models")
                with fake._lock:
                    ids = None if fake.model_ids is None else list(fake.model_ids)
                    fake.model_lists += int(listing)
                if ids is None or not listing:
                    self.send_error(404, "no such endpoint here")
                    return
                models = [{"id": i, "object": "model", "owned_by": "fake"} for i in ids]
                data = json.dumps({"object": "list", "data": models}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a short poll, so that stopping the server does not take half a second per test
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started `FakeLLM`, stopped after the test."""
    with FakeLLM() as server:
        yield server
