"""`predict --second-opinion` as library calls: a language model (tests/fake_llm.py) asked only about
the passages the model flags for review, its answers in optional columns that resume keeps, the
report's count and marks where the two disagree; and a language model as the main model, whose
reasons for not coding a passage become the `review_reason` column."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conftest import CODEBOOK, ROOT
from fake_llm import FakeLLM, refusal
from fake_llm import fake_llm as fake_llm  # noqa: F401  (the fixture)
from supportlens import schema
from supportlens.cli.common import in_cli_terms
from supportlens.inference.label import LabelOptions, check_label_options, label, load_model
from supportlens.inference.labeler import PredictError
from supportlens.inference.report import build_report

SAMPLE = ROOT / "data" / "transcripts" / "smp01_child_welfare.txt"
SECOND = ["second_label", "second_confidence", "second_reason"]
LABELS = ["push", "pull", "co_creation", "none"]


@pytest.fixture(autouse=True)
def _own_answers(tmp_path, monkeypatch):
    """Each test starts with no cached answer, so the fake server's counts are this test's."""
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))


def llm_config(path: Path, server: FakeLLM, *lines: str) -> Path:
    """A language-model config pointed at the fake server: one answer per passage."""
    body = "\n".join(["  samples: 1", "  temperature: 0.0", *lines])
    path.write_text(f"model:\n  kind: llm\ncodebook: {CODEBOOK}\nllm:\n  base_url: {server.url}\n{body}\n")
    return path


def test_only_flagged_passages_are_sent_and_both_suggestions_are_kept(tmp_path, model_dir, fake_llm):
    fake_llm.codes.update({"county": "pull", "together": "co_creation"})
    fake_llm.script["funny word"] = [refusal("I can't code this.")]
    plain = tmp_path / "plain.csv"
    label([str(SAMPLE)], load_model(str(model_dir)), plain)
    before = pd.read_csv(plain)
    assert not set(SECOND) & set(before.columns)  # the columns exist only when a second opinion is asked
    flagged = before.loc[before["needs_review"], "text"].tolist()
    assert 0 < len(flagged) < len(before)  # some passages stay unsent

    options = LabelOptions(second_opinion=str(llm_config(tmp_path / "llm.yaml", fake_llm)))
    out = tmp_path / "labels.jsonl"
    check_label_options([str(SAMPLE)], out, options)
    label([str(SAMPLE)], load_model(str(model_dir), options), out, options)
    table = schema.read_output(out)
    assert list(table.columns) == schema.prediction_columns(LABELS, optional=schema.SECOND_OPINION_FIELDS)
    # the language model saw the flagged passages, each once, and nothing else
    assert Counter(FakeLLM.passage(body) for body in fake_llm.requests) == Counter(flagged)
    sent = table.loc[table["needs_review"]]
    kept = table.loc[~table["needs_review"]]
    assert kept[SECOND].isna().all().all()
    refused = sent["text"].str.contains("funny word")
    assert refused.any() and sent.loc[refused, "second_label"].isna().all()  # no code, never a guess
    assert (sent.loc[refused, "second_reason"] == "refused: I can't code this.").all()
    coded = sent.loc[~refused]
    expected = ["pull" if "county" in t else "co_creation" if "together" in t else "none" for t in coded["text"]]
    assert coded["second_label"].tolist() == expected
    assert (coded["second_confidence"] > 0.25).all() and coded["second_reason"].notna().all()
    # the labels of the model itself are those of a run without a second opinion
    scores = ["passage_index", "label", "confidence", "needs_review"]
    pd.testing.assert_frame_equal(table[scores], before[scores], check_dtype=False)

    # the report counts the disagreements and marks each disagreeing passage
    differ = int((coded["second_label"] != coded["label"]).sum())
    assert differ > 0
    summary = build_report(out, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert summary.disagreements == differ
    assert f'data-disagree="{differ}"' in page and f"second opinion differs on {differ}" in page
    assert page.count('<span class="second" title="second opinion:') == differ
    assert page.count("data-second=") == differ
    plain_page = tmp_path / "plain.html"
    assert build_report(plain, plain_page).disagreements is None
    assert "second opinion" not in plain_page.read_text(encoding="utf-8").split("</header>")[0]


def test_resume_keeps_the_second_opinion_and_refuses_another(tmp_path, model_dir, fake_llm):
    options = LabelOptions(second_opinion=str(llm_config(tmp_path / "llm.yaml", fake_llm)), resume=True)
    out = tmp_path / "labels.parquet"
    label([str(SAMPLE)], load_model(str(model_dir), options), out, options)
    first = pd.read_parquet(out)
    asked = fake_llm.count
    assert asked > 0 and first["second_label"].notna().any() and first["second_confidence"].dtype == float

    report = label([str(SAMPLE)], load_model(str(model_dir), options), out, options)
    assert report.files_skipped == 1 and fake_llm.count == asked  # nothing labelled, nothing asked again
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)

    other = LabelOptions(
        second_opinion=str(llm_config(tmp_path / "other.yaml", fake_llm, "  model: another")), resume=True
    )
    with pytest.raises(PredictError, match="labelled with other settings .*second_opinion"):
        label([str(SAMPLE)], load_model(str(model_dir), other), out, other)


def test_a_second_opinion_must_be_a_language_model_for_a_table(tmp_path, model_dir, fake_llm):
    not_llm = tmp_path / "tfidf.yaml"
    not_llm.write_text(f"model:\n  kind: tfidf_logreg\ncodebook: {CODEBOOK}\n")
    with pytest.raises(PredictError) as err:
        load_model(str(model_dir), LabelOptions(second_opinion=str(not_llm)))
    message = in_cli_terms(str(err.value))
    assert message == (
        f"{not_llm}: --second-opinion takes the config of a language model (model.kind llm, as in "
        "configs/llm.yaml); this one is model.kind tfidf_logreg"
    )
    config = str(llm_config(tmp_path / "llm.yaml", fake_llm))
    with pytest.raises(PredictError, match="records its answers as columns of a table"):
        check_label_options([str(SAMPLE)], tmp_path / "out.qdpx", LabelOptions(second_opinion=config))
    with pytest.raises(PredictError, match="records its answers as columns of a table"):
        check_label_options([str(SAMPLE)], tmp_path / "out", LabelOptions(second_opinion=config, engine="spark"))
    assert fake_llm.count == 0


def test_a_language_model_says_why_it_could_not_code_a_passage(tmp_path, fake_llm):
    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.models import build_model

    fake_llm.codes["county"] = "pull"
    fake_llm.script["funny word"] = [refusal("I can't code this.")]
    cfg = load_config(llm_config(tmp_path / "llm.yaml", fake_llm))
    model = build_model(cfg, LABELS, load_codebook(CODEBOOK)).fit([], [])
    # a threshold below chance: only a passage with no code can be under it
    model.save(tmp_path / "llm-model", extra={"review_threshold": 0.1})
    out = tmp_path / "labels.csv"
    label([str(SAMPLE)], load_model(str(tmp_path / "llm-model")), out)
    table = schema.read_output(out)
    assert list(table.columns) == schema.prediction_columns(LABELS, optional=schema.REVIEW_REASON_FIELDS)
    refused = table["text"].str.contains("funny word")
    assert refused.any() and (table.loc[refused, "review_reason"] == "refused: I can't code this.").all()
    assert table.loc[refused, "needs_review"].all()  # uniform votes are no code: always for review
    assert table.loc[~refused, "review_reason"].isna().all() and not table.loc[~refused, "needs_review"].any()
    assert (table.loc[table["text"].str.contains("county") & ~refused, "label"] == "pull").all()
