"""The `llm` model kind through the real `openai` client against a scripted local server
(tests/fake_llm.py): the codebook as prompt, votes as probabilities, validation and retries,
refusals, response-format fallback, transport retries and timeouts, privacy, the cache, and the
model folder loaded by the registry, the Labeler and the MLflow pyfunc."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import CODEBOOK, make_rows
from fake_llm import FakeLLM, Reply, answer, content_filtered, malformed, rate_limited, refusal
from fake_llm import fake_llm as fake_llm  # noqa: F401  (the fixture)
from supportlens.codebook import load_codebook
from supportlens.config import ConfigError, load_config
from supportlens.io.cache import cache_root
from supportlens.models import llm
from supportlens.models.llm import LLMClassifier, LLMEndpointError
from supportlens.models.llm_prompt import Declined, InvalidAnswer, parse_answer, pseudonymise, render_prompt
from supportlens.models.registry import build_model, load_classifier

LABELS = ["push", "pull", "co_creation", "none"]


def make(server: FakeLLM, *sets: str, fit: bool = True) -> LLMClassifier:
    """A model built from config like `train` builds it, pointed at ``server``."""
    cfg = load_config(None, ["model.kind=llm", f"llm.base_url={server.url}", "llm.samples=1", *sets])
    model = build_model(cfg, LABELS, load_codebook(CODEBOOK))
    assert isinstance(model, LLMClassifier)
    model.on_send = None
    return model.fit(["a passage"], ["none"]) if fit else model


def fresh(text: str) -> str:
    """A passage no earlier test (or run) has put in the cache."""
    return f"{text} ({time.monotonic_ns()})"


# -- the prompt -------------------------------------------------------------------------------
def test_the_prompt_is_the_codebook():
    codebook = load_codebook(CODEBOOK)
    prompt = render_prompt(codebook.to_dict(), LABELS, examples_per_code=2, max_tokens=256)
    for code in codebook.codes:
        for part in (code.definition, code.use_when, code.do_not_use_when, *code.examples[:2]):
            assert part in prompt.system
        assert code.examples[2] not in prompt.system  # only examples_per_code of them
    assert codebook.multiple_approaches_rule in prompt.system
    assert 'the code is "none"' in prompt.system
    assert prompt.schema["properties"]["code"]["enum"] == LABELS
    # the passage goes alone into the user message, braces and all
    messages = prompt.messages("we {kept} the manual")
    assert messages[0]["content"] == prompt.system and "we {kept} the manual" in messages[1]["content"]
    # the hash names the rendering and the settings that change answers, and nothing else
    same = render_prompt(codebook.to_dict(), LABELS, examples_per_code=2, max_tokens=256)
    assert same.hash == prompt.hash and len(prompt.hash) == 64
    assert render_prompt(codebook.to_dict(), LABELS, 3, 256).hash != prompt.hash
    assert render_prompt(codebook.to_dict(), LABELS, 2, 128).hash != prompt.hash
    none = render_prompt(codebook.to_dict(), LABELS, 0, 256)
    assert "Examples:" not in none.system
    assert prompt.hash in prompt.text() and prompt.version in prompt.text()


def test_answers_are_validated():
    good = json.dumps({"code": "co_creation", "rationale": "designed together", "evidence": "together"})
    assert parse_answer(good, LABELS).code == "co_creation"
    assert parse_answer(f"```json\n{good}\n```", LABELS).evidence == "together"
    assert parse_answer(f"Here is my answer: {good}", LABELS).code == "co_creation"
    # case and spacing variants of a label, never a synonym
    for variant in ("Co-creation", " CO CREATION ", "co_Creation"):
        assert parse_answer(json.dumps({"code": variant}), LABELS).code == "co_creation"
    with pytest.raises(InvalidAnswer, match="code 'dissemination' is not in the codebook"):
        parse_answer(json.dumps({"code": "dissemination"}), LABELS)
    with pytest.raises(InvalidAnswer, match="^not JSON$"):
        parse_answer('{"code": "push", ', LABELS)
    with pytest.raises(InvalidAnswer, match="^cut off at max_tokens$"):
        parse_answer('{"code": "push", ', LABELS, cut_off=True)
    with pytest.raises(InvalidAnswer, match="^no code in the answer$"):
        parse_answer('["push"]', LABELS)
    with pytest.raises(InvalidAnswer, match="^empty answer$"):
        parse_answer("  ", LABELS)
    with pytest.raises(Declined, match="^refused: I'm sorry"):
        parse_answer("I'm sorry, but I cannot classify this.", LABELS)


def test_pseudonymise_replaces_speaker_labels_and_names_stably():
    text = "Maria: we trained them with Tom Baker.\nInterviewer: and then?\nMaria: tom baker left."
    out = pseudonymise(text, ["Tom Baker"])
    assert out == "[PERSON 1]: we trained them with [PERSON 2].\nInterviewer: and then?\n[PERSON 1]: [PERSON 2] left."
    assert pseudonymise(text, ["Tom Baker"]) == out  # the same passage always reads the same
    assert pseudonymise("So: we kept it.", []) == "So: we kept it."  # prose, not a speaker
    assert pseudonymise("no names here", []) == "no names here"


# -- probabilities ----------------------------------------------------------------------------
def test_votes_across_samples_are_the_probabilities(fake_llm):
    passage = fresh("we trained every site on the manual")
    fake_llm.script[passage] = [answer("push"), answer("pull"), answer("push"), answer("push")]
    model = make(fake_llm, "llm.samples=4", "llm.concurrency=1")
    proba = model.predict_proba([passage])[0]
    # (votes + 0.5) / (samples + 0.5 K): push 3.5, pull 1.5, others 0.5 over 6
    np.testing.assert_allclose(proba, np.array([3.5, 1.5, 0.5, 0.5]) / 6)
    assert model.predict([passage])[0] == "push"
    assert model.review_reasons([passage]) == [None]
    # each sample has its own seed, so a server with a fixed default does not repeat one answer
    assert len({body["seed"] for body in fake_llm.requests}) == 4
    assert [a.code for a in model.answers([passage])[0]] == ["push", "pull", "push", "push"]
    assert fake_llm.count == 4  # review_reasons and answers asked nothing again


def test_fit_learns_nothing_and_calibration_scales_the_votes(fake_llm):
    """The trainer's step: fit (nothing learned) and a temperature fitted on the validation set;
    the validation passages are asked once, whatever reads them afterwards."""
    from supportlens.models.fitting import fit_and_calibrate

    rows = make_rows(n_interviews=4, per_label=2)
    tag = fresh("")
    texts = [r["text"] + tag for r in rows]
    # right on three codes in four: confident votes that are sometimes wrong
    wrong = {"push": "pull", "pull": "pull", "co_creation": "co_creation", "none": "none"}
    for text, row in zip(texts, rows):
        fake_llm.script[text] = [answer(row["label"] if row["id"].endswith("0") else wrong[row["label"]])]
    cfg = load_config(None, ["model.kind=llm", f"llm.base_url={fake_llm.url}", "llm.samples=1", f"codebook={CODEBOOK}"])
    model, calibration, _ = fit_and_calibrate(
        cfg,
        LABELS,
        texts[:4],
        [r["label"] for r in rows[:4]],
        texts,
        [r["label"] for r in rows],
        val_groups=[r["interview_id"] for r in rows],
    )
    assert model.kind == "llm" and fake_llm.count == len(texts)  # each validation passage once
    assert calibration.temperature_fitted and model.temperature_ != 1.0


# -- invalid answers, refusals ----------------------------------------------------------------
def test_an_invalid_answer_is_asked_again(fake_llm):
    passage = fresh("we listened to what the county asked for")
    fake_llm.script[passage] = [malformed(), answer("Pull")]
    model = make(fake_llm)
    assert model.predict([passage])[0] == "pull"
    assert fake_llm.count == 2 and model.review_reasons([passage]) == [None]
    # a retry is a new draw: its seed differs from the first try's
    assert fake_llm.requests[0]["seed"] != fake_llm.requests[1]["seed"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (malformed(), "no valid answer after 4 tries: not JSON"),
        (
            Reply(content=json.dumps({"code": "dissemination"})),
            "no valid answer after 4 tries: code 'dissemination' is not in the codebook",
        ),
        (Reply(content='{"code": "pu', finish_reason="length"), "no valid answer after 4 tries: cut off at max_tokens"),
    ],
)
def test_a_passage_without_a_valid_answer_gets_uniform_probabilities_and_a_reason(fake_llm, reply, reason):
    passage = fresh("we did some things")
    fake_llm.script[passage] = [reply] * 10
    model = make(fake_llm, "llm.max_retries=3")
    np.testing.assert_allclose(model.predict_proba([passage]), np.full((1, 4), 0.25))
    assert model.review_reasons([passage]) == [reason]
    assert fake_llm.count == 4  # 1 + max_retries, and not asked again for the reasons


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (refusal("I can't help with that."), "refused: I can't help with that."),
        (content_filtered(), "refused (content filter)"),
        (
            Reply(content="I'm sorry, I cannot code interview material."),
            "refused: I'm sorry, I cannot code interview material.",
        ),
    ],
)
def test_refusals_are_reasons_not_retried(fake_llm, reply, reason):
    passage = fresh("a sensitive passage")
    fake_llm.script[passage] = [reply] * 5
    model = make(fake_llm, "llm.samples=2", "llm.max_retries=3")
    np.testing.assert_allclose(model.predict_proba([passage]), np.full((1, 4), 0.25))
    assert model.review_reasons([passage]) == [reason]
    assert fake_llm.count == 2  # one request per sample: a refusal is an answer, not noise


def test_failed_passages_go_to_review_through_the_labeler(fake_llm, tmp_path):
    from supportlens.inference.labeler import Labeler

    good, bad = fresh("we co-designed it with the families"), fresh("unreadable")
    fake_llm.script[good] = [answer("co_creation")]
    fake_llm.script[bad] = [malformed()] * 4
    model = make(fake_llm, "llm.max_retries=1")
    model.save(tmp_path / "m", extra={"review_threshold": 0.4, "calibration": {"threshold_measured": True}})
    frame = Labeler(load_classifier(tmp_path / "m")).score([good, bad])
    assert list(frame["label"])[0] == "co_creation" and list(frame["needs_review"]) == [False, True]


# -- response formats and transport ---------------------------------------------------------
def test_a_rejected_response_format_is_lowered_once_and_remembered(fake_llm):
    fake_llm.reject_formats = {"json_schema"}
    model = make(fake_llm, "llm.concurrency=1")
    assert model.response_format == "json_schema"
    passages = [fresh("one"), fresh("two")]
    assert list(model.predict(passages)) == ["none", "none"]
    sent = [(b.get("response_format") or {}) for b in fake_llm.requests]
    assert [f["type"] for f in sent] == ["json_schema", "json_object", "json_object"]
    assert sent[1]["schema"]["properties"]["code"]["enum"] == LABELS  # llama.cpp's way of taking a schema
    assert model.response_format == "json_object_schema"
    # a server that takes no JSON format at all is asked in plain text, and has its answer read
    fake_llm.reject_formats = {"json_schema", "json_object"}
    plain = make(fake_llm, "llm.concurrency=1")
    fake_llm.requests.clear()
    assert plain.predict([fresh("three")])[0] == "none"
    assert [(b.get("response_format") or {}).get("type") for b in fake_llm.requests] == [
        "json_schema",
        "json_object",
        "json_object",
        None,
    ]
    assert plain.response_format == "plain"


def test_a_response_format_refused_with_a_500_naming_it_is_lowered_too(fake_llm):
    # llama-cpp-python's server answers OpenAI's json_schema with a 500 naming response_format
    # (tests/models/test_llm_server.py checks the real one)
    fake_llm.reject_formats, fake_llm.reject_status = {"json_schema"}, 500
    model = make(fake_llm, "llm.concurrency=1", "llm.max_retries=0")
    assert list(model.predict([fresh("one")])) == ["none"] and model.review_reasons([fresh("one")]) == [None]
    assert model.response_format == "json_object_schema"


def test_a_server_that_rejects_the_seed_is_asked_without_it(fake_llm):
    fake_llm.reject_seed = True
    model = make(fake_llm, "llm.concurrency=1")
    assert list(model.predict([fresh("one"), fresh("two")])) == ["none", "none"]
    assert ["seed" in b for b in fake_llm.requests] == [True, False, False]


def test_429_is_retried_after_the_servers_retry_after(fake_llm):
    """The openai client retries 429 and 5xx itself (max_retries) and waits as Retry-After says."""
    fake_llm.queue.append(rate_limited(0.3))
    model = make(fake_llm, "llm.max_retries=1")
    assert model.predict([fresh("we trained them on the manual")])[0] == "none"
    assert fake_llm.count == 2
    assert fake_llm.times[1] - fake_llm.times[0] >= 0.29


def test_a_server_error_after_the_clients_retries_is_a_reason(fake_llm):
    fake_llm.queue.append(Reply(status=503, error="the model is loading"))
    model = make(fake_llm, "llm.max_retries=0")
    passage = fresh("anything")
    model.predict_proba([passage])
    assert model.review_reasons([passage]) == [
        "no valid answer after 1 try: the server answered 503: the model is loading"
    ]


def test_a_slow_answer_times_out_into_a_reason(fake_llm):
    passage = fresh("a slow passage")
    fake_llm.script[passage] = [answer("push", delay=1.0)]
    model = make(fake_llm, "llm.timeout=0.3", "llm.max_retries=0")
    started = time.monotonic()
    np.testing.assert_allclose(model.predict_proba([passage]), np.full((1, 4), 0.25))
    assert time.monotonic() - started < 0.9
    assert model.review_reasons([passage]) == ["no valid answer after 1 try: timed out after 0.3 s"]


def test_requests_run_in_parallel_up_to_concurrency(fake_llm):
    passages = [fresh(f"passage {i}") for i in range(4)]
    for p in passages:
        fake_llm.script[p] = [answer("pull", delay=0.25)]
    model = make(fake_llm, "llm.concurrency=4")
    model.predict_proba(passages[:1])  # the client's first connection and imports, not timed
    started = time.monotonic()
    assert list(model.predict(passages[1:])) == ["pull"] * 3
    assert time.monotonic() - started < 0.65  # one after another would take 0.75 s


def test_endpoint_errors_that_stop_every_passage_are_one_line(fake_llm):
    fake_llm.queue.append(Reply(status=404, error="model 'nope' not found"))
    with pytest.raises(LLMEndpointError, match=r"has no model 'local' \(404\): check llm.model and llm.base_url"):
        make(fake_llm).predict([fresh("x")])
    fake_llm.queue.append(Reply(status=401, error="bad key"))
    with pytest.raises(LLMEndpointError, match=r"refused the API key \(401\)"):
        make(fake_llm).predict([fresh("x")])
    closed = FakeLLM().start()
    url = closed.url
    closed.stop()
    cfg = load_config(None, ["model.kind=llm", f"llm.base_url={url}", "llm.samples=1", "llm.max_retries=0"])
    model = build_model(cfg, LABELS, load_codebook(CODEBOOK)).fit(["a"], ["none"])
    with pytest.raises(LLMEndpointError, match="cannot reach the language model server at http://127.0.0.1:"):
        model.predict([fresh("x")])


def test_usage_counts_requests_and_tokens(fake_llm):
    model = make(fake_llm, "llm.samples=2")
    model.predict_proba([fresh("one"), fresh("two")])
    usage = model.usage_
    assert usage["requests"] == 4 and usage["cached"] == 0
    assert usage["prompt_tokens"] == sum(
        sum(len(m["content"].split()) for m in body["messages"]) for body in fake_llm.requests
    )
    assert usage["completion_tokens"] > 0 and usage["seconds"] > 0


# -- privacy ----------------------------------------------------------------------------------
def test_a_remote_host_is_refused_unless_allowed():
    cfg = load_config(None, ["model.kind=llm", "llm.base_url=https://llm.example.org/v1"])
    model = build_model(cfg, LABELS, load_codebook(CODEBOOK))
    with pytest.raises(
        ConfigError,
        match=r"^llm.base_url https://llm.example.org/v1 is not on this computer: .* sent "
        r"to llm.example.org; set llm.allow_remote: true \(or pass --allow-remote\) to allow it$",
    ):
        model.fit(["a"], ["none"])
    for host in ("127.0.0.1", "127.8.9.1", "[::1]", "localhost"):
        assert llm.is_loopback(host.strip("[]"))
    assert not llm.is_loopback("10.0.0.2") and not llm.is_loopback("llm.example.org")


def test_a_remote_call_says_what_it_sends_once_per_call(fake_llm, monkeypatch):
    monkeypatch.setattr(llm, "is_loopback", lambda host: False)  # the fake server stands in for a remote one
    model = make(fake_llm, "llm.allow_remote=true", "llm.pseudonymise=true", "llm.samples=2")
    said: list[str] = []
    model.on_send = said.append
    old, new = fresh("asked before"), fresh("asked now")
    model.predict_proba([old])
    said.clear()
    model.predict_proba([old, new, new])
    assert said == [
        "sending 1 passage to 127.0.0.1 (model local): the codebook prompt and each passage's text only, no "
        "file names or other columns; names replaced by [PERSON n]; 1 already answered (cache) are not sent"
    ]
    model.predict_proba([old, new])  # all in the cache: nothing sent, nothing said
    assert len(said) == 1


def test_pseudonymised_requests_hold_no_name(fake_llm):
    model = make(fake_llm, "llm.pseudonymise=true", "llm.names=[Tom Baker, Lakeside]")
    passage = fresh("Maria: we met Tom Baker at Lakeside and designed the plan together.\nInterviewer: how?")
    model.predict([passage])
    sent = fake_llm.sent_text()
    for name in ("Maria", "Tom", "Baker", "Lakeside"):
        assert name not in sent
    assert "[PERSON 1]: we met [PERSON 2] at [PERSON 3]" in fake_llm.passage(fake_llm.requests[0])


def test_the_api_key_comes_from_the_named_variable_and_is_never_written(fake_llm, monkeypatch, tmp_path):
    monkeypatch.delenv("SUPPORTLENS_TEST_KEY", raising=False)
    model = make(fake_llm, "llm.api_key_env=SUPPORTLENS_TEST_KEY", fit=False)
    with pytest.raises(
        ConfigError, match="^llm.api_key_env names the environment variable SUPPORTLENS_TEST_KEY, which is not set"
    ):
        model.fit(["a"], ["none"])
    monkeypatch.setenv("SUPPORTLENS_TEST_KEY", "sk-very-secret-1234")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-key")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-other")
    model.fit(["a"], ["none"]).predict([fresh("x")])
    assert fake_llm.headers[-1]["authorization"] == "Bearer sk-very-secret-1234"
    assert "openai-organization" not in fake_llm.headers[-1]
    model.save(tmp_path / "m")
    written = "".join(f.read_text(encoding="utf-8") for f in (tmp_path / "m").iterdir())
    assert "sk-very-secret-1234" not in written and "SUPPORTLENS_TEST_KEY" in written
    # no variable named: a local server gets a placeholder, never $OPENAI_API_KEY
    make(fake_llm).predict([fresh("y")])
    assert fake_llm.headers[-1]["authorization"] == "Bearer not-needed"


# -- the cache and the model folder ---------------------------------------------------------
def test_answers_are_cached_on_disk_and_a_cached_passage_sends_nothing(fake_llm):
    passages = [fresh("we trained every site"), fresh("we built it together")]
    fake_llm.codes.update({"trained": "push", "together": "co_creation"})
    model = make(fake_llm, "llm.samples=2")
    first = model.predict_proba(passages)
    assert fake_llm.count == 4
    assert len(list((cache_root() / "llm").rglob("*.json"))) >= 4
    np.testing.assert_allclose(model.predict_proba(passages), first)
    assert fake_llm.count == 4  # the second call made no request
    other = make(fake_llm, "llm.samples=2")  # a new model (a new process): the disk cache answers
    np.testing.assert_allclose(other.predict_proba(passages), first)
    assert fake_llm.count == 4 and other.usage_["cached"] == 4
    # another temperature is another draw: asked again
    make(fake_llm, "llm.samples=2", "llm.temperature=0.2").predict_proba(passages)
    assert fake_llm.count == 8


def test_a_server_serving_another_model_under_the_same_name_is_asked_again(fake_llm):
    """llama.cpp answers to any model name (here the default `local`) with the file it loaded:
    what /v1/models lists, not the configured name, says whose answers are in the cache."""
    passages = [fresh("we trained every site"), fresh("we built it together")]
    fake_llm.model_ids, fake_llm.default_code = ["model-a.gguf"], "push"
    model = make(fake_llm)
    assert model.review_reasons([]) == [] and fake_llm.model_lists == 0  # nothing to look up: not asked
    assert list(model.predict(passages)) == ["push", "push"] and fake_llm.count == 2
    model.predict([fresh("another passage")])
    assert fake_llm.model_lists == 1  # once per model, not per call
    same = make(fake_llm)  # the same server and model in a new process: all from the cache
    assert list(same.predict(passages)) == ["push", "push"]
    assert fake_llm.count == 3 and same.usage_["cached"] == 2
    # the server restarted with another model, same address and name: asked again, b's answers
    fake_llm.model_ids, fake_llm.default_code = ["model-b.gguf"], "pull"
    other = make(fake_llm)
    assert list(other.predict(passages)) == ["pull", "pull"]
    assert fake_llm.count == 5 and other.usage_["cached"] == 0
    fake_llm.model_ids = ["model-a.gguf"]  # and back: a's answers are still a's
    assert list(make(fake_llm).predict(passages)) == ["push", "push"] and fake_llm.count == 5


@pytest.mark.parametrize(
    ("listed", "served"),
    [(["local", "other"], "local"), (["one", "other"], None), ([], None), (["only"], "only")],
)
def test_the_served_model_is_the_one_listed_or_the_configured_name_when_listed(fake_llm, listed, served):
    fake_llm.model_ids = listed
    assert make(fake_llm)._served_model() == served


def test_another_server_address_does_not_share_answers(fake_llm):
    passage = fresh("we handed out the manual")
    fake_llm.default_code = "push"
    with FakeLLM() as other:  # the same listing ("fake"), name and settings; another port
        other.default_code = "pull"
        assert make(fake_llm).predict([passage])[0] == "push"
        assert make(other).predict([passage])[0] == "pull"
        assert fake_llm.count == 1 and other.count == 1
        # the same address written with a trailing slash is the same server: from the cache
        assert make(other, f"llm.base_url={other.url}/").predict([passage])[0] == "pull"
        assert other.count == 1


def test_a_server_without_a_model_list_still_caches_answers(fake_llm):
    """Some servers and proxies have no /v1/models (a 404): the answers are cached without the
    server's name for the model, and the lookup is never an error."""
    passages = [fresh("we trained every site"), fresh("we built it together")]
    fake_llm.model_ids, fake_llm.default_code = None, "co_creation"
    assert list(make(fake_llm).predict(passages)) == ["co_creation"] * 2 and fake_llm.count == 2
    again = make(fake_llm)
    assert list(again.predict(passages)) == ["co_creation"] * 2
    assert fake_llm.count == 2 and again.usage_["cached"] == 2 and fake_llm.model_lists == 2
    fake_llm.model_ids = ["now-listed.gguf"]  # a server that now says what it serves is asked again
    make(fake_llm).predict(passages)
    assert fake_llm.count == 4


def test_the_model_folder_loads_through_the_registry(fake_llm, tmp_path):
    passage = fresh("we rolled the model out the same way everywhere")
    fake_llm.codes["rolled"] = "push"
    model = make(fake_llm)
    model.temperature_ = 0.7
    expected = model.predict_proba([passage])
    model.save(tmp_path / "m", extra={"review_threshold": 0.5, "codebook": load_codebook(CODEBOOK).to_dict()})
    assert (tmp_path / "m" / "prompt.md").read_text(encoding="utf-8") == model.rendered_prompt()
    loaded = load_classifier(tmp_path / "m")
    assert isinstance(loaded, LLMClassifier) and loaded.prompt_hash == model.prompt_hash
    np.testing.assert_allclose(loaded.predict_proba([passage]), expected)
    assert fake_llm.count == 1  # from the cache
    # the saved prompt is the one used, even when this supportlens would render another
    prompt_file = tmp_path / "m" / "prompt.json"
    saved = json.loads(prompt_file.read_text(encoding="utf-8"))
    prompt_file.write_text(json.dumps({**saved, "system": "Code it.", "hash": "0" * 64}), encoding="utf-8")
    changed = load_classifier(tmp_path / "m")
    assert changed.prompt_hash == "0" * 64
    changed.predict([passage])
    assert fake_llm.requests[-1]["messages"][0]["content"] == "Code it."
    prompt_file.unlink()
    with pytest.raises(Exception, match="an llm model folder needs its prompt.json"):
        load_classifier(tmp_path / "m")


def test_the_mlflow_pyfunc_model_codes_through_the_server(fake_llm, tmp_path):
    """The served wrapper (what `tracking.log_model` logs) loads the folder and codes with it.
    Logging itself is kind-independent and tested in tests/training; here its model is built
    the way MLflow builds it, which saves the 15 s of logging a model."""
    import pandas as pd

    from supportlens.tracking import SupportlensModel

    fake_llm.codes.update({"manual": "push", "together": "co_creation"})
    model = make(fake_llm)
    model.save(tmp_path / "m", extra={"review_threshold": 0.4, "calibration": {"threshold_measured": True}})
    texts = [fresh("we handed out the manual"), fresh("we designed it together"), fresh("unreadable")]
    fake_llm.script[texts[2]] = [malformed()] * 4
    served = SupportlensModel()
    served.load_context(type("Context", (), {"artifacts": {"model_dir": str(tmp_path / "m")}})())
    out = served.predict(None, pd.DataFrame({"text": texts}))
    assert list(out["label"])[:2] == ["push", "co_creation"]
    assert list(out["needs_review"]) == [False, False, True]


def test_pickling_keeps_the_model_and_drops_the_connection(fake_llm):
    import pickle

    model = make(fake_llm)
    model.predict([fresh("x")])
    copy = pickle.loads(pickle.dumps(model))
    assert copy.prompt_hash == model.prompt_hash and not hasattr(copy, "_client_")
    assert model._served_model_ == "fake" and not hasattr(copy, "_served_model_")  # asked again where it runs
    assert copy.predict([fresh("y")])[0] == "none"


def test_continue_fit_keeps_the_prompt_and_asks_for_calibration(fake_llm):
    model = make(fake_llm)
    model.temperature_ = 0.5
    before = model.prompt_hash
    model.continue_fit(["a passage"], ["push"])
    assert model.prompt_hash == before and model.temperature_ == 1.0 and fake_llm.count == 0


def test_config_checks_the_names():
    with pytest.raises(ConfigError, match="llm.names is set but llm.pseudonymise is false"):
        load_config(None, ["llm.names=[Maria]"])
    assert load_config(None, ["llm.pseudonymise=true", "llm.names=[Maria]"]).llm.names == ["Maria"]


def test_the_example_config_builds_an_llm_model():
    cfg = load_config(Path(CODEBOOK).parent / "llm.yaml", [f"codebook={CODEBOOK}"])
    assert cfg.model.kind == "llm" and llm.is_loopback(llm.urlsplit(cfg.llm.base_url).hostname or "")
    assert isinstance(build_model(cfg, LABELS), LLMClassifier)
