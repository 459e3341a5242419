"""The commands that use a language model (tests/fake_llm.py): `distil`, `predict --second-opinion`,
and `--allow-remote` on predict, evaluate, train and distil: a remote host is refused in one line
naming the flag, allowed with it, and every remote send is announced on the console."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import CODEBOOK, ROOT, fast_overrides, make_rows, write_jsonl
from fake_llm import FakeLLM
from fake_llm import fake_llm as fake_llm  # noqa: F401  (the fixture)
from supportlens.cli import app

runner = CliRunner()
SAMPLE = ROOT / "data" / "transcripts" / "smp01_child_welfare.txt"


@pytest.fixture(autouse=True)
def _own_answers(tmp_path, monkeypatch):
    """Each test starts with no cached answer; no proxy from the environment in the way."""
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the student's model folder goes under outputs/ here
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def remote(monkeypatch):
    """The fake server (on 127.0.0.1) taken for a remote host, as an institutional endpoint would be."""
    from supportlens.models import llm

    monkeypatch.setattr(llm, "is_loopback", lambda host: False)


def llm_config(tmp_path: Path, server: FakeLLM) -> Path:
    path = tmp_path / "llm.yaml"
    path.write_text(
        f"model:\n  kind: llm\ncodebook: {CODEBOOK}\nllm:\n  base_url: {server.url}\n  samples: 1\n  temperature: 0.0\n"
    )
    return path


def said(result) -> str:
    return " ".join(result.output.split())


def test_predict_with_a_remote_second_opinion_needs_allow_remote_and_says_what_it_sends(
    tmp_path, model_dir, fake_llm, remote
):
    args = ["predict", str(SAMPLE), "--model", str(model_dir), "--out", str(tmp_path / "out.csv")]
    args += ["--second-opinion", str(llm_config(tmp_path, fake_llm))]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and fake_llm.count == 0
    assert said(refused) == (
        f"error: llm.base_url {fake_llm.url} is not on this computer: the codebook prompt and the text of every "
        "passage would be sent to 127.0.0.1; set llm.allow_remote: true (or pass --allow-remote) to allow it"
    )
    assert not (tmp_path / "out.csv").exists()

    allowed = runner.invoke(app, [*args, "--allow-remote"])
    assert allowed.exit_code == 0, allowed.output
    assert f"sending: sending {fake_llm.count} passages to 127.0.0.1 (model local)" in said(allowed)
    header = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith("needs_review,second_label,second_confidence,second_reason")
    page = runner.invoke(app, ["report", str(tmp_path / "out.csv"), "--out", str(tmp_path / "report.html")])
    assert page.exit_code == 0 and re.search(r"flagged for review, the second opinion differs on \d+\)", said(page))


def test_evaluate_and_train_take_allow_remote_for_a_language_model(tmp_path, fake_llm, remote):
    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.models import build_model

    coded = write_jsonl(tmp_path / "coded.jsonl", make_rows(4, 1))
    config = llm_config(tmp_path, fake_llm)
    cfg = load_config(config, ["llm.allow_remote=true"])
    codebook = load_codebook(CODEBOOK)
    model = build_model(cfg, ["push", "pull", "co_creation", "none"], codebook).fit([], [])
    model.allow_remote = False  # saved as a config without it would be
    model.save(tmp_path / "llm-model", extra={"review_threshold": 0.5, "codebook": codebook.to_dict()})
    args = ["evaluate", "--model", str(tmp_path / "llm-model"), "--data", str(coded), "--no-log"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "(or pass --allow-remote) to allow it" in said(refused)
    allowed = runner.invoke(app, [*args, "--allow-remote"])
    assert allowed.exit_code == 0, allowed.output
    assert "sending: sending 16 passages to 127.0.0.1" in said(allowed)

    train = ["train", "--config", str(config), "--data", str(coded), "--no-track"]
    for override in fast_overrides(kind="llm"):
        train += ["--set", override]
    refused = runner.invoke(app, train)
    assert refused.exit_code == 2 and "(or pass --allow-remote) to allow it" in said(refused)
    assert runner.invoke(app, [*train, "--allow-remote"]).exit_code == 0


def test_distil_from_the_command_line(tmp_path, fake_llm, remote):
    fake_llm.codes.update({"manual": "push", "county": "pull", "together": "co_creation"})
    pool = tmp_path / "pool"
    pool.mkdir()
    for name, answer in (("a.txt", "We trained every site on the manual."), ("b.txt", "The county asked for help.")):
        (pool / name).write_text(
            f"Interviewer: How?\nMaria: {answer}\nInterviewer: More?\nMaria: We did it together in {name}.\n"
        )
    coded = write_jsonl(tmp_path / "coded.jsonl", make_rows())
    args = ["distil", "--teacher", str(llm_config(tmp_path, fake_llm)), "--pool", str(pool / "a.txt")]
    args += ["--pool", str(pool / "b.txt"), "--config", str(CODEBOOK.parent / "tfidf.yaml"), "--no-track"]
    args += ["--out", str(tmp_path / "distil")]
    for override in [*fast_overrides(), f"data.path={coded}"]:
        args += ["--set", override]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "(or pass --allow-remote) to allow it" in said(refused)

    result = runner.invoke(app, [*args, "--allow-remote"])
    assert result.exit_code == 0, result.output
    text = said(result)
    assert "sending: sending 2 passages to 127.0.0.1" in text and fake_llm.count == 4
    assert "teacher: coded 4 of 4 passages from 2 pool transcripts" in text
    assert "student vs teacher on 1 held-out pool transcript: κ" in text
    assert "agreement with a person is not measured; code a sample of the pool (`supportlens next`) and give it" in text
    assert "with --add-data before relying on the student" in text
    assert "student model folder:" in text and (tmp_path / "distil" / "distil.json").is_file()
