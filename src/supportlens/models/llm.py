"""The `llm` model kind: a language model that reads the codebook, behind fit / predict_proba.

The researcher runs or is allowed the model (Ollama, llama.cpp, vLLM, LM Studio, an institutional
endpoint); supportlens reaches it through the `openai` client. Each passage is asked ``samples``
times; the shares of the votes are its probabilities (self-consistency), smoothed so that the
usual temperature calibration has something to scale. Nothing is learned in ``fit``: the trainer's
calibration on the validation set is the only fitting.

Privacy first: only loopback hosts unless ``allow_remote``; a remote call says what it sends, to
where; passages may be pseudonymised before they leave; answers are cached on disk so a passage is
sent once per prompt, server address, model (by its name and by the server's own name for what it
serves), temperature and sample. A passage with no usable answer gets uniform probabilities (so it
goes to review) and a reason (`LLMClassifier.review_reasons`), never a guess.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from supportlens.config import ConfigError
from supportlens.io.atomic import write_atomic
from supportlens.io.cache import cache_root
from supportlens.models import llm_prompt
from supportlens.models.base import TextClassifier
from supportlens.models.llm_prompt import Answer, Declined, InvalidAnswer, Prompt
from supportlens.models.meta import ModelLoadError

PROMPT_FILE = "prompt.json"  # the rendered prompt the model was calibrated with (authoritative on load)
PROMPT_TEXT_FILE = "prompt.md"  # the same, for people
SMOOTHING = 0.5  # votes + 0.5: no code gets probability 0, so calibration can still move it
# response formats from the strictest; a server that rejects one (400/422 naming it) gets the next
FORMATS = ("json_schema", "json_object_schema", "json_object", "plain")
_FORMAT_ERROR = re.compile(r"response_format|json|schema|format", re.I)


class LLMEndpointError(ConfigError):
    """The configured endpoint cannot be used for any passage: unreachable, key refused, no such
    model. A ConfigError because the fix is in the ``llm`` section (or in starting the server)."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the only hosts used without ``allow_remote``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def announce_to_stderr(message: str) -> None:
    print(f"supportlens: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Failure:
    """One sample without a usable answer: why, after how many tries, and whether it was a refusal."""

    reason: str
    tries: int
    refused: bool = False


@dataclass(frozen=True)
class PassageResult:
    answers: list[Answer]
    failures: list[Failure]

    def reason(self) -> str | None:
        """Why the passage has no code (None when at least one sample answered)."""
        if self.answers or not self.failures:
            return None
        if all(f.refused for f in self.failures):
            return self.failures[0].reason
        tries = sum(f.tries for f in self.failures)
        common = Counter(f.reason for f in self.failures).most_common(1)[0][0]
        return f"no valid answer after {tries} {'try' if tries == 1 else 'tries'}: {common}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LLMClassifier(TextClassifier):
    """Codes passages by asking a language model with the codebook as its prompt.

    Attributes beside the parameters: ``on_send`` (called with one line before a remote call sends
    passages; default prints to stderr; None silences it for a caller that says it itself) and,
    after fit or load, ``usage_`` (requests, prompt and completion tokens, seconds spent asking,
    answers read from the cache) for throughput measurements."""

    kind = "llm"

    def __init__(
        self,
        labels: list[str],
        codebook: dict[str, Any],
        base_url: str = "http://127.0.0.1:8080/v1",
        model: str = "local",
        api_key_env: str | None = None,
        temperature: float = 0.7,
        samples: int = 5,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_tokens: int = 256,
        allow_remote: bool = False,
        pseudonymise: bool = False,
        names: Sequence[str] = (),
        examples_per_code: int = 3,
        json_schema: bool = True,
        seed: int = 13,
    ):
        self.labels = labels
        self.codebook = codebook
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.samples = samples
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.allow_remote = allow_remote
        self.pseudonymise = pseudonymise
        self.names = names
        self.examples_per_code = examples_per_code
        self.json_schema = json_schema
        self.seed = seed
        # not parameters: how this process talks to the server
        self.on_send: Callable[[str], None] | None = announce_to_stderr
        self._lock = threading.Lock()

    # -- the prompt -------------------------------------------------------------------------
    @property
    def prompt(self) -> Prompt:
        """The rendered prompt; a loaded model keeps the one it was saved (and calibrated) with."""
        if getattr(self, "prompt_", None) is None:
            self.prompt_ = llm_prompt.render_prompt(self.codebook, self.labels, self.examples_per_code, self.max_tokens)
        return self.prompt_

    @property
    def prompt_hash(self) -> str:
        return self.prompt.hash

    def rendered_prompt(self) -> str:
        """The whole prompt as text, for a run's record (MLflow) and the model folder."""
        return self.prompt.text()

    @property
    def response_format(self) -> str:
        """The response format asked for now: lowered once when the server rejects one."""
        return FORMATS[self._format_level()]

    # -- fit / predict ----------------------------------------------------------------------
    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        """Nothing is learned; the endpoint settings are checked so that a bad one fails before
        calibration sends anything. ``sample_weight`` is accepted like every kind's and ignored:
        no parameter is fitted that a weight could change."""
        self.prompt_ = llm_prompt.render_prompt(self.codebook, self.labels, self.examples_per_code, self.max_tokens)
        self._check_endpoint()
        self.usage_ = self._fresh_usage()

    def _continue_fit(self, X, y, sample_weight, X_val, y_val, epochs) -> None:
        """Nothing to train further: the prompt stays. `TextClassifier.continue_fit` then resets the
        temperature, so that calibrating on the new passages is what adapts this model."""
        self._check_endpoint()

    def _logits(self, X: list[str]) -> np.ndarray:
        results = self._results(X)
        index = {label: j for j, label in enumerate(self.labels)}
        k = len(self.labels)
        out = np.empty((len(X), k), dtype=np.float64)
        for i, result in enumerate(results):
            votes = np.zeros(k)
            for answer in result.answers:
                votes[index[answer.code]] += 1
            # log vote shares; no valid answer: all zero votes, i.e. uniform
            out[i] = np.log((votes + SMOOTHING) / (len(result.answers) + SMOOTHING * k))
        return out

    def review_reasons(self, X: Sequence[str]) -> list[str | None]:
        """Aligned to X: why a passage has no code ("refused: ...", "no valid answer after 4 tries:
        not JSON"), None where it has one. Passages already asked are not asked again."""
        return [r.reason() for r in self._results(list(X))]

    def answers(self, X: Sequence[str]) -> list[list[Answer]]:
        """Aligned to X: the valid answers (code, rationale, evidence) of each passage's samples."""
        return [r.answers for r in self._results(list(X))]

    # -- persistence ------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        # the parameters (in the metadata) name the key's environment variable, never the key
        (path / PROMPT_FILE).write_text(json.dumps(self.prompt.to_dict(), indent=2), encoding="utf-8")
        (path / PROMPT_TEXT_FILE).write_text(self.rendered_prompt(), encoding="utf-8")

    def _load(self, path: Path) -> None:
        file = path / PROMPT_FILE
        if not file.is_file():
            raise ModelLoadError(f"{path}: an llm model folder needs its {PROMPT_FILE}")
        self.prompt_ = llm_prompt.prompt_from_dict(json.loads(file.read_text(encoding="utf-8")))
        self.usage_ = self._fresh_usage()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        # a lock and an open connection pool do not pickle; the served model is asked again, since
        # the copy may run where the server now serves another
        for transient in ("_lock", "_client_", "_served_model_"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()

    # -- endpoint and privacy ---------------------------------------------------------------
    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def _check_endpoint(self) -> None:
        if not self.allow_remote and not is_loopback(self.host):
            raise ConfigError(
                f"llm.base_url {self.base_url} is not on this computer: the codebook prompt and the text of "
                f"every passage would be sent to {self.host}; set llm.allow_remote: true (or pass "
                "--allow-remote) to allow it"
            )
        self._api_key()

    def _api_key(self) -> str:
        if not self.api_key_env:
            return "not-needed"  # local servers take any key; the client insists on one
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"llm.api_key_env names the environment variable {self.api_key_env}, which is not set: "
                "set it to the endpoint's API key (the key is read from there and never stored)"
            )
        return key

    def _as_sent(self, text: str) -> str:
        return llm_prompt.pseudonymise(text, list(self.names)) if self.pseudonymise else text

    def _announce(self, n_send: int, n_cached: int) -> None:
        if self.on_send is None or is_loopback(self.host):
            return
        passages = f"{n_send} passage{'s' if n_send != 1 else ''}"
        self.on_send(
            f"sending {passages} to {self.host} (model {self.model}): the codebook prompt and each "
            "passage's text only, no file names or other columns"
            + ("; names replaced by [PERSON n]" if self.pseudonymise else "")
            + (f"; {n_cached} already answered (cache) are not sent" if n_cached else "")
        )

    def _openai(self) -> Any:
        with self._lock:
            client = getattr(self, "_client_", None)
            if client is None:
                import openai

                loopback = is_loopback(self.host)
                # only the key named in the config travels: no organisation or project from the env
                unset: dict[str, Any] = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
                client = self._client_ = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=self._api_key(),
                    timeout=self.timeout,
                    max_retries=self.max_retries,  # 408/409/429/5xx and timeouts, honouring Retry-After
                    # never follow a redirect: a loopback server must not forward passages elsewhere;
                    # no proxy from the environment for loopback hosts, for the same reason
                    http_client=openai.DefaultHttpxClient(follow_redirects=False, trust_env=not loopback),
                    default_headers=unset,
                )
            return client

    # -- asking, with the cache -------------------------------------------------------------
    def _fresh_usage(self) -> dict[str, float]:
        return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "cached": 0}

    def _add_usage(self, **counts: float) -> None:
        with self._lock:
            if getattr(self, "usage_", None) is None:
                self.usage_ = self._fresh_usage()
            for name, value in counts.items():
                self.usage_[name] += value

    def _key(self, digest: str, sample: int) -> str:
        """The cache key: an answer is reused only for the same prompt, server address, configured
        model name, model the server says it serves, temperature, sample index and passage as sent,
        so a restarted server with another model behind the same name is asked afresh."""
        parts = [
            self.prompt.hash,
            self.model,
            float(self.temperature),
            sample,
            digest,
            self.base_url.rstrip("/"),
            self._served_model(),
        ]
        return _sha256(json.dumps(parts))

    def _served_model(self) -> str | None:
        """The server's own name for the model answering, asked once per instance (GET /models).

        Local servers (llama.cpp, a single-model vLLM) answer under any ``model`` name with whatever
        they loaded, so the name alone cannot tell two models' answers apart. One model listed: its
        id; several: ``model`` when it is one of them; otherwise (no such endpoint, an error, not
        listed) None. Never an error: the chat requests that follow report a server that is down."""
        if "_served_model_" not in self.__dict__:
            import openai

            try:
                listed = self._openai().models.list().data
                ids = [m.id for m in listed if isinstance(getattr(m, "id", None), str)]
            except (openai.OpenAIError, ValueError, TypeError, AttributeError):
                ids = []  # no /models endpoint, or one that answers in another shape
            if len(ids) == 1:
                served: str | None = ids[0]
            else:
                served = self.model if self.model in ids else None
            self._served_model_ = served
        return self._served_model_

    @staticmethod
    def _cache_file(key: str) -> Path:
        return cache_root() / "llm" / key[:2] / f"{key}.json"

    def _read_cache(self, key: str) -> Answer | None:
        try:
            raw = json.loads(self._cache_file(key).read_text(encoding="utf-8"))
            answer = Answer(raw["code"], raw["rationale"], raw["evidence"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: asked again
        return answer if answer.code in self.labels else None

    def _write_cache(self, key: str, answer: Answer) -> None:
        file = self._cache_file(key)
        file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(answer), ensure_ascii=False)
        write_atomic(file, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def _results(self, X: list[str]) -> list[PassageResult]:
        """Every passage's answers: from this model's memory of the run, the disk cache, or the
        server (only the passages and samples found in neither)."""
        self._check_endpoint()
        # this process's memory: every failure (not asked again by this model: calibration reads the
        # validation passages twice) and the answers of this call only (the rest are on disk), so
        # that a long run's memory does not grow with every passage it has coded
        memo: dict[str, Answer | Failure] = {
            k: v for k, v in self.__dict__.get("_memo", {}).items() if isinstance(v, Failure)
        }
        self._memo = memo
        as_sent = [self._as_sent(x) for x in X]
        digests = [_sha256(text) for text in as_sent]
        sent = dict(zip(digests, as_sent))
        todo: list[tuple[str, str, int]] = []  # (key, passage as sent, sample)
        cached = 0
        for digest, passage in sent.items():
            for sample in range(self.samples):
                key = self._key(digest, sample)
                if key in memo:
                    continue
                answer = self._read_cache(key)
                if answer is None:
                    todo.append((key, passage, sample))
                else:
                    memo[key], cached = answer, cached + 1
        self._add_usage(cached=cached)
        if todo:
            waiting = {p for _, p, _ in todo}
            self._announce(len(waiting), len(sent) - len(waiting))
            started = time.perf_counter()
            try:
                self._ask_all(todo, memo)
            finally:
                self._add_usage(seconds=time.perf_counter() - started)
        results = []
        for digest in digests:
            got = [memo[self._key(digest, s)] for s in range(self.samples)]
            results.append(
                PassageResult([g for g in got if isinstance(g, Answer)], [g for g in got if isinstance(g, Failure)])
            )
        return results

    def _ask_all(self, todo: list[tuple[str, str, int]], memo: dict[str, Answer | Failure]) -> None:
        def ask(key: str, passage: str, sample: int) -> None:
            got = self._ask(passage, sample)
            if isinstance(got, Answer):
                self._write_cache(key, got)  # at once: an interrupted run keeps what it was told
            memo[key] = got

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo)), thread_name_prefix="llm")
        try:
            for future in as_completed([pool.submit(ask, *job) for job in todo]):
                future.result()  # an endpoint error ends the run here
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _format_level(self) -> int:
        with self._lock:
            if getattr(self, "_format", None) is None:
                self._format = 0 if self.json_schema else FORMATS.index("json_object")
            return self._format

    def _simplify(self, level: int, seeded: bool, message: str) -> bool:
        """After a 400/422 to a request in format ``level`` (with a seed or not): True when it is
        worth sending again without the seed or in a plainer format, which every later request then
        uses too (the server is asked to reject a feature once); False when not."""
        with self._lock:
            if seeded and "seed" in message.lower():
                self._seeded = False
                return True
            if FORMATS[level] == "plain" or not _FORMAT_ERROR.search(message):
                return False
            if self._format == level:
                self._format = level + 1
            return True

    def _request(self, messages: list[dict[str, str]], level: int, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        schema = self.prompt.schema
        fmt = FORMATS[level]
        if fmt == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "code", "schema": schema}}
        elif fmt == "json_object_schema":  # llama.cpp's and llama-cpp-python's way of taking a schema
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif fmt == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _ask(self, passage: str, sample: int) -> Answer | Failure:
        """One sample's answer for one passage, asked again (up to ``max_retries`` times) while the
        answer is invalid. Transport retries (429, 5xx, timeouts) are the client's, below this."""
        import openai

        client = self._openai()
        messages = self.prompt.messages(passage)
        reasons: list[str] = []
        tries = 0
        while tries <= self.max_retries:
            level, seeded = self._format_level(), self.__dict__.get("_seeded", True)
            # a seed per sample and try: samples differ, and a retry is not the same answer again
            request = self._request(messages, level, self.seed + 1009 * sample + tries if seeded else None)
            self._add_usage(requests=1)
            try:
                response = client.chat.completions.create(**request)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                message = _error_message(exc)
                if self._simplify(level, seeded, message):
                    continue  # a feature was refused, not the passage: not a try
                return Failure(f"the server rejected the request ({exc.status_code}): {message[:160]}", tries + 1)
            except openai.APITimeoutError:
                return Failure(f"timed out after {self.timeout:g} s", tries + 1)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                where = f"${self.api_key_env}" if self.api_key_env else "no key (llm.api_key_env is not set)"
                raise LLMEndpointError(
                    f"{self.base_url} refused the API key ({exc.status_code}); the key came from {where}"
                ) from None
            except openai.NotFoundError:
                raise LLMEndpointError(
                    f"{self.base_url} has no model {self.model!r} (404): check llm.model and llm.base_url"
                ) from None
            except openai.APIConnectionError:
                raise LLMEndpointError(
                    f"cannot reach the language model server at {self.base_url}: is it running? (llm.base_url)"
                ) from None
            except openai.APIStatusError as exc:  # 429/5xx still failing after the client's retries
                message = _error_message(exc)
                # llama-cpp-python's server answers a response format it lacks (OpenAI's json_schema)
                # with a 500 naming the field, not a 400/422 (tests/models/test_llm_server.py)
                refused_format = exc.status_code == 500 and "response_format" in message
                if refused_format and self._simplify(level, seeded, message):
                    continue
                return Failure(f"the server answered {exc.status_code}: {message[:160]}", tries + 1)
            tries += 1
            usage = getattr(response, "usage", None)
            if usage is not None:
                self._add_usage(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0)
            if not response.choices:
                reasons.append("empty answer")
                continue
            choice = response.choices[0]
            if choice.finish_reason == "content_filter":
                return Failure("refused (content filter)", tries, refused=True)
            refusal = getattr(choice.message, "refusal", None)
            if refusal:
                return Failure(f"refused: {' '.join(str(refusal).split())[:120]}", tries, refused=True)
            try:
                return llm_prompt.parse_answer(
                    choice.message.content, self.labels, cut_off=choice.finish_reason == "length"
                )
            except Declined as exc:
                return Failure(str(exc), tries, refused=True)
            except InvalidAnswer as exc:
                reasons.append(str(exc))
        return Failure(Counter(reasons).most_common(1)[0][0], tries)


def _error_message(exc: Any) -> str:
    """The server's own words for an HTTP error (OpenAI's JSON error body, or the raw text)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else inner
        if text:
            return " ".join(str(text).split())
    return " ".join(str(getattr(exc, "message", exc)).split())
