"""`supportlens distil` as library calls: a language model (tests/fake_llm.py) labels two short
transcripts, a TF-IDF student learns from its codes and from human codes weighted above them, and
the agreements are measured and logged; an interrupted run resumes without sending a passage twice."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import CODEBOOK, fast_overrides, make_rows, write_jsonl
from fake_llm import FakeLLM, refusal
from fake_llm import fake_llm as fake_llm  # noqa: F401  (the fixture)
from supportlens.config import load_config
from supportlens.models import load_classifier
from supportlens.training.distil_teacher import TEACHER_CODED, DistilError, DistilOptions, distil

POOL = {
    "a.txt": (
        "Interviewer: How did you start?\n"
        "Maria: We trained every site on the manual and checked fidelity each month.\n"
        "Interviewer: And then?\n"
        "Maria: The county asked for help with referrals so we tailored the coaching.\n"
    ),
    "b.txt": (
        "Interviewer: What do you do now?\n"
        "Jon: We designed the plan together with the families and shared decisions.\n"
        "Interviewer: Anything else?\n"
        "Jon: I started my career as a caseworker in a small town.\n"
        "Interviewer: And the protocol?\n"
        "Jon: The zorblat quinex protocol governs it.\n"
    ),
}
TEACHER_CODES = {"manual": "push", "county": "pull", "together": "co_creation", "zorblat": "push"}


@pytest.fixture(autouse=True)
def _own_answers(tmp_path, monkeypatch):
    """Each test starts with no cached answer, so the fake server's counts are this test's."""
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the student's model folder goes under outputs/ here


@pytest.fixture
def pool(tmp_path) -> Path:
    folder = tmp_path / "pool"
    folder.mkdir()
    for name, text in POOL.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def teacher_config(tmp_path: Path, server: FakeLLM):
    server.codes.update(TEACHER_CODES)
    path = tmp_path / "llm.yaml"
    path.write_text(
        f"model:\n  kind: llm\ncodebook: {CODEBOOK}\n"
        f"llm:\n  base_url: {server.url}\n  samples: 1\n  temperature: 0.0\n  concurrency: 1\n"
    )
    return load_config(path)


def student_config(tmp_path: Path):
    """A TF-IDF student on the fixture's coded rows, without the few-shot blend (it needs an encoder)."""
    coded = write_jsonl(tmp_path / "coded.jsonl", make_rows())
    return load_config(None, [*fast_overrides(), f"data.path={coded}", "adapt.fewshot=off", "output_dir=outputs"])


def human_codes(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "human.jsonl",
        [
            # near-duplicate of a pool passage, coded against the teacher
            {"id": "h1", "interview_id": "b", "text": "the zorblat quinex protocol governs it again", "label": "pull"},
            {"id": "h2", "interview_id": "a", "text": "we trained all the sites on the manual", "label": "push"},
            {"id": "h3", "interview_id": "c", "text": "we built the plan together as partners", "label": "co_creation"},
            {"id": "h4", "interview_id": "c", "text": "the county asked us for help", "label": "pull"},
        ],
    )


def test_distil_end_to_end_leaves_out_what_the_teacher_could_not_code_and_logs_the_agreements(
    tmp_path, pool, fake_llm, tracking_uri
):
    import mlflow

    fake_llm.script["caseworker"] = [refusal("I can't code this.")]
    options = DistilOptions(pool=[str(pool)], out=tmp_path / "distil", add_data=[str(human_codes(tmp_path))])
    lines: list[str] = []
    result = distil(teacher_config(tmp_path, fake_llm), student_config(tmp_path), options, log=lines.append)

    # each pool passage and each human-coded passage asked once
    asked = Counter(FakeLLM.passage(body) for body in fake_llm.requests)
    assert set(asked.values()) == {1} and fake_llm.count == 5 + 4
    assert result.transcripts == 2 and result.passages == 5
    assert result.left_out == {"refused: I can't code this.": 1}
    assert any("left out of the student's data: 1 the teacher could not code" in line for line in lines)
    # one of the two transcripts is held out; the student learns the teacher's codes of the other
    assert len(result.held_out) == 1
    learnt = [json.loads(line) for line in (tmp_path / "distil" / TEACHER_CODED).read_text().splitlines()]
    assert learnt and {row["interview_id"] for row in learnt} == {str(pool / n) for n in POOL} - set(result.held_out)
    assert not any("caseworker" in row["text"] for row in learnt)
    # the three agreements, printed and logged in the student's run with the teacher's prompt
    for pair in (result.student_teacher, result.teacher_human, result.student_human):
        assert pair is not None and pair.n > 0 and 0.0 <= pair.accuracy <= 1.0
    assert result.teacher_human.n == 4 and result.student_human.n == 4
    assert any(line.startswith("student vs teacher on 1 held-out pool transcript: κ") for line in lines)
    assert any(line.startswith("teacher vs human on your coded passages: κ") for line in lines)
    assert any(line.startswith("student vs human on your coded passages (cross-fitted") for line in lines)
    run = mlflow.get_run(result.train.run_id)
    metrics, params = run.data.metrics, run.data.params
    assert metrics["distil_left_out"] == 1 and metrics["distil_teacher_human_n"] == 4
    assert {"distil_student_teacher_kappa", "distil_student_human_kappa", "target_kappa"} <= set(metrics)
    assert params["data.teacher_passages"] == str(len(learnt)) and params["adapt.weighting"] == "factor"
    assert params["adapt.target_factor"] == "3.0" and len(params["teacher.prompt_hash"]) == 64
    prompt = mlflow.artifacts.load_text(
        f"runs:/{run.info.run_id}/prompt/teacher-{params['teacher.prompt_hash'][:12]}.txt"
    )
    assert "push" in prompt and params["teacher.prompt_hash"] in prompt
    summary = json.loads((tmp_path / "distil" / "distil.json").read_text())
    assert summary["metrics"]["distil_pool_passages"] == 5


def test_an_interrupted_run_resumes_without_sending_a_passage_twice(tmp_path, pool, fake_llm):
    teacher, student = teacher_config(tmp_path, fake_llm), student_config(tmp_path)
    options = DistilOptions(pool=[str(pool)], out=tmp_path / "distil", holdout=0.0)

    def stop_after_one(files: int, passages: int) -> None:
        if files >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distil(teacher, student, options, log=lambda m: None, track=False, on_progress=stop_after_one)
    first = fake_llm.count
    assert 0 < first < 5  # one transcript labelled, the other not

    options.resume = True
    result = distil(teacher, student, options, log=lambda m: None, track=False)
    asked = Counter(FakeLLM.passage(body) for body in fake_llm.requests)
    assert fake_llm.count == 5 and set(asked.values()) == {1}  # every passage once, over both runs
    assert result.transcripts == 2 and result.passages == 5
    # a run started over (no resume) relabels from the cache: nothing is sent
    options.resume = False
    distil(teacher, student, options, log=lambda m: None, track=False)
    assert fake_llm.count == 5


def test_human_codes_outweigh_the_teachers(tmp_path, pool, fake_llm):
    teacher, student = teacher_config(tmp_path, fake_llm), student_config(tmp_path)
    human = str(human_codes(tmp_path))
    pool_passage = "The zorblat quinex protocol governs it."

    def student_says(weight: float, out: str) -> str:
        options = DistilOptions(
            pool=[str(pool)], out=tmp_path / out, add_data=[human], holdout=0.0, human_weight=weight
        )
        result = distil(teacher, student, options, log=lambda m: None, track=False)
        learnt = (tmp_path / out / TEACHER_CODED).read_text()
        assert pool_passage in learnt and '"label": "push"' in learnt  # the teacher's code was learnt
        return str(load_classifier(result.train.model_dir).predict([pool_passage])[0])

    assert student_says(3.0, "weighted") == "pull"  # the person's code wins
    assert student_says(0.2, "unweighted") == "push"  # and only because it weighs more


def test_the_teacher_is_a_language_model_and_the_student_is_not(tmp_path, pool, fake_llm):
    teacher, student = teacher_config(tmp_path, fake_llm), student_config(tmp_path)
    options = DistilOptions(pool=[str(pool)], out=tmp_path / "distil")
    with pytest.raises(DistilError, match="the teacher must be a language model .* model.kind tfidf_logreg"):
        distil(student, student, options, track=False)
    with pytest.raises(DistilError, match="the student's config is model.kind llm"):
        distil(teacher, teacher, options, track=False)
    with pytest.raises(DistilError, match=r"`holdout` is the share of pool transcripts .* got 1.0"):
        distil(teacher, student, DistilOptions(pool=[str(pool)], holdout=1.0), track=False)
    assert fake_llm.count == 0


def test_bad_distil_options_are_refused_before_anything_is_sent_or_written(tmp_path, pool, fake_llm):
    teacher, student = teacher_config(tmp_path, fake_llm), student_config(tmp_path)
    a_file = tmp_path / "results.txt"
    a_file.write_text("a researcher's notes\n", encoding="utf-8")
    cases = [
        (DistilOptions(pool=[]), "`pool` names no transcripts"),
        (DistilOptions(pool=[str(pool)], human_weight=0.0), "`human_weight` must be above 0, got 0.0"),
        (DistilOptions(pool=[str(pool)], out=a_file), f"`out` must be a folder; {a_file} is a file"),
        (DistilOptions(pool=[str(pool)], speaker="everyone"), "`speaker` must be one of .*; got 'everyone'"),
        (
            DistilOptions(pool=[str(pool)], interviewers=["(unclosed"]),
            r"interviewer pattern '\(unclosed' is not a valid regular expression",
        ),
    ]
    for options, message in cases:
        with pytest.raises((DistilError, ValueError), match=message):
            distil(teacher, student, options, track=False)
    assert fake_llm.count == 0
    assert a_file.read_text(encoding="utf-8") == "a researcher's notes\n"  # the file is untouched


def test_factor_weighting_states_how_far_a_human_code_outweighs_a_training_row():
    from supportlens.config import AdaptConfig, ConfigError
    from supportlens.training.adapt import target_weights

    weights = target_weights(3, 2, AdaptConfig(weighting="factor", target_factor=3.0))
    assert weights.tolist() == [1.0, 1.0, 1.0, 3.0, 3.0]  # whatever the numbers of rows
    assert target_weights(300, 2, AdaptConfig(weighting="factor", target_factor=3.0))[-1] == 3.0
    with pytest.raises(ConfigError, match="adapt.target_factor must be above 0, got 0.0"):
        AdaptConfig(weighting="factor", target_factor=0.0)
