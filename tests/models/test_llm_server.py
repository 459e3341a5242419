"""The `llm` model kind against a real OpenAI-compatible server: llama-cpp-python's server with
SmolLM2 135M Instruct on 127.0.0.1 (tests/llm_server.py; `make test-llm`, marker llm_server).

The fake server (tests/fake_llm.py) covers the error paths; these tests check what only a real
server shows: its chat template, its JSON-schema response format, its token counts, and that
`train`, `evaluate`, `predict` and `distil` run end to end through a real model. A 135M model
cannot code from a codebook, so no test asks for a right code: only valid ones, or a reason.
"""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CODEBOOK, fast_overrides, make_rows, write_jsonl
from llm_server import LocalLLMServer, post_json
from supportlens.cli import app

pytestmark = pytest.mark.llm_server

LABELS = ["push", "pull", "co_creation", "none"]
# Small and quick on two CPU cores: no codebook examples in the prompt (about 900 tokens, read once
# and then kept in the server's prompt cache), two samples per passage, short answers.
SETTINGS = {"samples": 2, "temperature": 0.7, "max_tokens": 128, "examples_per_code": 0, "max_retries": 1}
SETTINGS |= {"concurrency": 2, "timeout": 180}
PASSAGES = [
    "We trained every site on the manual and checked fidelity each month.",
    "The county asked for help with referrals, so we tailored the coaching to that.",
    "We designed the plan together with the families and shared every decision.",
    "I started my career as a caseworker in a small town.",
]
TRANSCRIPT = (
    "Interviewer: How did you support the sites?\n"
    "Dana: Honestly we went where they asked. The county wanted help with referrals, so we built the coaching "
    "around that question.\n"
    "Interviewer: And later?\n"
    "Dana: Later we sat down with the families and the staff and planned the next year together.\n"
)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_answers(tmp_path, monkeypatch):
    """Each test asks the server itself (no answer cached by another test); no proxy in the way."""
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def llm_config(path: Path, server: LocalLLMServer) -> Path:
    lines = ["model:", "  kind: llm", f"codebook: {CODEBOOK}", "llm:", f"  base_url: {server.base_url}"]
    lines += [f"  model: {server.model}"] + [f"  {key}: {value}" for key, value in SETTINGS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prompt_for_labels():
    from supportlens.codebook import load_codebook
    from supportlens.models.llm_prompt import render_prompt

    return render_prompt(load_codebook(CODEBOOK).to_dict(), LABELS, 0, SETTINGS["max_tokens"])


def test_the_real_model_answers_a_json_schema_chat_completion(llm_server):
    prompt = prompt_for_labels()
    body = {
        "model": llm_server.model,
        "messages": prompt.messages(PASSAGES[0]),
        "temperature": 0.0,
        "max_tokens": 128,
        "seed": 13,
        # llama.cpp's form of a JSON schema: the server compiles it to a grammar the sampler follows
        "response_format": {"type": "json_object", "schema": prompt.schema},
    }
    reply = post_json(f"{llm_server.base_url}/chat/completions", body)
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    answer = json.loads(choice["message"]["content"])
    assert set(answer) == {"code", "rationale", "evidence"} and answer["code"] in LABELS
    # the codebook went in through the GGUF's own chat template (a system turn), not dropped
    assert reply["usage"]["prompt_tokens"] > 500 and reply["usage"]["completion_tokens"] > 0

    # OpenAI's own form is refused, as a 500 naming the field rather than a 400/422: the case
    # LLMClassifier must recognise to lower its response format on such a server
    openai_form = {**body, "response_format": {"type": "json_schema", "json_schema": {"schema": prompt.schema}}}
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_json(f"{llm_server.base_url}/chat/completions", openai_form)
    assert refused.value.code == 500 and "response_format" in refused.value.read().decode("utf-8")


def test_the_llm_classifier_codes_passages_or_says_why_not(llm_server, tmp_path):
    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.models.llm import LLMClassifier
    from supportlens.models.registry import build_model

    cfg = load_config(llm_config(tmp_path / "llm.yaml", llm_server))
    model = build_model(cfg, LABELS, load_codebook(CODEBOOK)).fit([], [])
    assert isinstance(model, LLMClassifier)
    proba = model.predict_proba(PASSAGES)

    assert proba.shape == (len(PASSAGES), len(LABELS)) and np.isfinite(proba).all()
    assert np.allclose(proba.sum(1), 1.0) and (proba > 0).all() and (proba < 1).all()
    reasons, answers = model.review_reasons(PASSAGES), model.answers(PASSAGES)
    for row, reason, given in zip(proba, reasons, answers):
        if reason is None:  # at least one valid sample: its code is a code of the codebook
            assert given and all(a.code in LABELS for a in given) and len(given) <= SETTINGS["samples"]
        else:  # none valid: a reason and no opinion (uniform), never a guess
            assert reason.strip() and not given and np.allclose(row, 1 / len(LABELS))
    assert sum(r is None for r in reasons) >= len(PASSAGES) // 2, reasons  # the grammar keeps most valid
    # llama-cpp-python takes a schema only as {"type": "json_object", "schema": ...}: lowered once, kept
    assert model.response_format == "json_object_schema"
    usage = model.usage_
    assert usage["requests"] >= len(PASSAGES) * SETTINGS["samples"] and usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0


def test_train_evaluate_and_predict_run_through_the_real_model(llm_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = llm_config(tmp_path / "llm.yaml", llm_server)
    coded = write_jsonl(tmp_path / "coded.jsonl", make_rows(4, 1))  # 4 interviews: 1 for val, 1 for test
    train = ["train", "--config", str(config), "--data", str(coded), "--no-track", "--set", "output_dir=outputs"]
    for override in fast_overrides(kind="llm"):
        train += ["--set", override]
    trained = runner.invoke(app, train)
    assert trained.exit_code == 0, trained.output
    folders = [p.parent for p in (tmp_path / "outputs").rglob("prompt.json")]
    assert len(folders) == 1, trained.output
    model_dir = folders[0]

    # 8 passages the model has not seen in training (interviews 4 and 5), as a coded CSV
    rows = [r for r in make_rows(6, 1) if r["interview_id"] in ("i04", "i05")]
    assert len(rows) == 8
    pd.DataFrame(rows).to_csv(tmp_path / "coded8.csv", index=False)
    evaluated = runner.invoke(
        app, ["evaluate", "--model", str(model_dir), "--data", str(tmp_path / "coded8.csv"), "--no-log"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "κ" in evaluated.output or "kappa" in evaluated.output.lower()

    transcript = tmp_path / "short.txt"
    transcript.write_text(TRANSCRIPT, encoding="utf-8")
    out = tmp_path / "labels.csv"
    predicted = runner.invoke(app, ["predict", str(transcript), "--model", str(model_dir), "--out", str(out)])
    assert predicted.exit_code == 0, predicted.output
    labels = pd.read_csv(out)
    assert len(labels) == 2 and set(labels["label"]) <= set(LABELS)  # the two participant turns
    probs = labels[[f"p_{c}" for c in LABELS]].to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
    assert labels["needs_review"].dtype == bool


def test_distil_labels_a_pool_with_the_real_model_and_trains_a_student(llm_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = tmp_path / "pool.txt"
    pool.write_text(TRANSCRIPT, encoding="utf-8")
    other = tmp_path / "pool2.txt"
    other.write_text(TRANSCRIPT.replace("referrals", "intake").replace("families", "parents"), encoding="utf-8")
    coded = write_jsonl(tmp_path / "coded.jsonl", make_rows())
    args = ["distil", "--teacher", str(llm_config(tmp_path / "llm.yaml", llm_server))]
    args += ["--pool", str(pool), "--pool", str(other), "--config", str(CODEBOOK.parent / "tfidf.yaml")]
    args += ["--no-track", "--out", str(tmp_path / "distil")]
    for override in [*fast_overrides(), f"data.path={coded}"]:
        args += ["--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "from 2 pool transcripts" in text and "student model folder:" in text
    assert (tmp_path / "distil" / "distil.json").is_file()
