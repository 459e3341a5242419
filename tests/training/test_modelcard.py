"""The model card a researcher reads beside a trained model: what it claims, in each situation.

The inputs are built as `training.trainer.train` builds them (config, coded data, grouped split,
run info, calibration record), with the scores chosen here so that every figure on the card is
known; `tests/training/test_training.py` checks the card that a real training run writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import CODEBOOK, ROOT, make_rows, write_jsonl
from supportlens.calibration import Calibration, validation_shortfall
from supportlens.codebook import load_codebook
from supportlens.config import Config, load_config
from supportlens.corpus.dataset import CodedData, load_coded
from supportlens.corpus.splits import grouped_split
from supportlens.evaluation.evaluate import Evaluation, evaluate_proba
from supportlens.training.modelcard import render_model_card
from supportlens.training.trainer import excerpts_needed, interviews_needed, split_interviews


class Run:
    """What `train` has in hand when it writes the card."""

    def __init__(self, path: Path, *sets: str):
        self.cfg: Config = load_config(
            None, [f"codebook={CODEBOOK}", "model.kind=tfidf_logreg", f"data.path={path}", *sets]
        )
        self.codebook = load_codebook(CODEBOOK)
        self.data: CodedData = load_coded(path, self.codebook, self.cfg.data)
        frame = self.data.frame
        self.split = grouped_split(
            frame["label"].to_numpy(dtype=object),
            frame["group"].to_numpy(),
            self.cfg.split.test_size,
            self.cfg.split.val_size,
            self.cfg.seed,
        )
        grouped = self.data.report.grouped
        interviews = split_interviews(frame, self.split) if grouped else {}
        self.run_info = {
            "run_id": "0123abcd",
            "data_digest": self.data.digest,
            "split": self.split.sizes(),
            "split_interviews": interviews,
            "train_seconds": 2.5,
            "grouped": grouped,
        }
        if grouped:
            per_interview = len(frame) / frame["group"].nunique()
            self.run_info["interviews_needed"] = max(
                interviews_needed(self.cfg, per_interview, part) for part in ("val", "test")
            )
        else:
            self.run_info["excerpts_needed"] = excerpts_needed(self.cfg)

    def scored(self, part: str, wrong: int = 0, sure: int | None = None, threshold: float = 0.7) -> Evaluation:
        """The part's excerpts scored with the first ``wrong`` of them mislabelled; the first
        ``sure`` (default: all) at confidence 0.9, the rest at 0.4."""
        labels = self.codebook.labels
        truth = self.data.frame["label"].to_numpy(dtype=object)[getattr(self.split, part)]
        sure = len(truth) if sure is None else sure
        proba = np.zeros((len(truth), len(labels)))
        for i, code in enumerate(truth):
            guess = labels[(labels.index(code) + 1) % len(labels)] if i < wrong else code
            confidence = 0.9 if i < sure else 0.4
            proba[i] = (1 - confidence) / (len(labels) - 1)
            proba[i, labels.index(guess)] = confidence
        return evaluate_proba(
            truth, proba, labels, name="validation" if part == "val" else part, review_threshold=threshold
        )

    def card(
        self,
        calibration: Calibration | None,
        val: Evaluation | None = None,
        test: Evaluation | None = None,
        cv: dict[str, float] | None = None,
        student: object = None,
        temperature: float | None = None,
    ) -> str:
        threshold = calibration.review_threshold if calibration else 0.7
        val = val if val is not None else self.scored("val", threshold=threshold)
        test = test if test is not None else self.scored("test", wrong=2, threshold=threshold)
        if temperature is None:
            temperature = calibration.temperature if calibration else 1.0
        return render_model_card(
            self.cfg,
            self.codebook,
            self.data,
            test,
            val,
            cv or {},
            self.run_info,
            threshold,
            temperature,
            student,
            calibration,
        )

    def calibration(
        self,
        measured: bool = True,
        fitted: bool = True,
        temperature: float = 1.7,
        threshold: float = 0.7,
        notes: list[str] | None = None,
    ) -> Calibration:
        """As `models.fitting.fit_and_calibrate` records it."""
        n_val = len(self.split.val)
        grouped = self.data.report.grouped
        groups = self.run_info["split_interviews"].get("val") if grouped else None
        if not measured:
            return Calibration(
                1.0, False, 1.0, False, n_val, groups, [validation_shortfall(n_val, groups or 0, grouped)], grouped
            )
        return Calibration(temperature if fitted else 1.0, fitted, threshold, True, n_val, groups, notes or [], grouped)


def _study(tmp_path: Path, interviews: int, *sets: str, interviewer_rows: int = 0) -> Run:
    rows = make_rows(interviews, 2)
    for row in rows[:interviewer_rows]:
        row["speaker_role"] = "interviewer"
    return Run(write_jsonl(tmp_path / "coded.jsonl", rows), *sets)


@pytest.fixture
def enough(tmp_path) -> Run:
    """20 interviews at these shares: validation and test hold 4 interviews and 32 excerpts each."""
    return _study(tmp_path, 20, "split.test_size=0.2", "split.val_size=0.2")


@pytest.fixture
def few(tmp_path) -> Run:
    """8 interviews at the default shares: validation and test hold one interview each."""
    return _study(tmp_path, 8, interviewer_rows=2)


def test_a_calibrated_card_says_on_what_the_threshold_was_measured_and_the_precision_it_reached(enough):
    # validation: 32 excerpts, 24 of them at or above the threshold and 2 of those mislabelled
    val = enough.scored("val", wrong=2, sure=24)
    card = enough.card(enough.calibration(), val=val)
    assert (
        "- probabilities calibrated by temperature scaling on 32 validation excerpts from 4 interviews (T = 1.70)"
    ) in card
    assert (
        "- passages with confidence below **0.700** are flagged `needs_review`; on the 32 validation "
        "excerpts from 4 interviews, the 24 at or above it had precision 0.917 (target ≥ 0.80)"
    ) in card
    assert "Share of passages accepted at the review threshold: 1.000 (precision among them 0.938)." in card
    assert "not calibrated" not in card and "no review threshold" not in card.lower()
    assert "Trained on few interviews" not in card and "The test split holds" not in card


def test_a_threshold_measured_without_a_temperature_says_why(enough):
    note = "the temperature fit on validation ran to the lower bound of its search (T = 0.05)"
    card = enough.card(enough.calibration(fitted=False, notes=[note]))
    assert f"- probabilities not temperature-scaled (T = 1.00): {note}" in card
    assert "calibrated by temperature scaling" not in card
    assert "had precision 1.000 (target ≥ 0.80)" in card


def test_a_threshold_no_validation_passage_reached_flags_every_passage(enough):
    unsure = enough.scored("val", sure=0, threshold=1.0)  # every confidence 0.4: none reached the target
    card = enough.card(enough.calibration(threshold=1.0), val=unsure)
    assert (
        "- no confidence threshold reached precision ≥ 0.80 on the 32 validation excerpts from 4 "
        "interviews, so every passage is flagged `needs_review`"
    ) in card
    assert "had precision" not in card
    assert "No test passage reached the review threshold: all were flagged for review." in card


def test_an_unmeasured_threshold_claims_no_precision_and_says_what_to_do(few):
    card = few.card(few.calibration(measured=False))
    assert (
        "- **confidence not calibrated**: the validation split holds 1 interview and 8 excerpts; fitting "
        "a temperature and a review threshold needs at least 3 interviews and 30 excerpts. The model's "
        "own probabilities are used (T = 1.00)"
    ) in card
    assert "**no review threshold** could be measured, so every passage is flagged `needs_review`" in card
    assert "Code more interviews and train again; `predict --review-below` sets a threshold" in card
    assert "No review threshold was measured: every passage is flagged for review." in card
    assert "had precision" not in card and "Share of passages accepted" not in card


def test_a_card_without_the_calibration_record_states_the_figures_alone(enough):
    card = enough.card(None, temperature=1.25)
    assert "- probabilities calibrated by temperature scaling on validation interviews (T = 1.25)" in card
    assert "- passages with confidence below **0.700** are flagged `needs_review`" in card


def test_few_interviews_are_a_known_limit_with_the_number_needed(few):
    card = few.card(few.calibration(measured=False))
    assert (
        "- split **by interview** (no interview in two parts): train 48 excerpts from 6 interviews, "
        "validation 8 excerpts from 1 interview, test 8 excerpts from 1 interview"
    ) in card
    assert "## Evaluation (held-out test interviews)" in card and "n = 8 excerpts from 1 interview." in card
    assert (
        "- Trained on few interviews (8; validation 1, test 1): about 28 would give validation and test "
        "3 interviews each."
    ) in card
    assert "Interviewer talk was 2 of the 64 training excerpts" in card  # the data hold interviewer turns


def test_enough_interviews_name_no_such_limit(enough):
    card = enough.card(enough.calibration())
    assert "Trained on few" not in card and "no interview column" not in card
    assert "the training data mark no interviewer turns" in card  # nor claim turns it never saw


def test_data_without_an_interview_column_are_described_as_excerpts(tmp_path):
    rows = make_rows(10, 2)
    for row in rows:
        del row["interview_id"]
    run = Run(write_jsonl(tmp_path / "coded.jsonl", rows), "split.test_size=0.2", "split.val_size=0.2")
    card = run.card(run.calibration(measured=False))
    assert (
        "- split by excerpt, not by interview (no interview column): train 48 excerpts, validation 16 "
        "excerpts, test 16 excerpts"
    ) in card
    assert "## Evaluation (held-out test excerpts)" in card and "n = 16 excerpts." in card
    assert (
        "- **confidence not calibrated**: the validation split holds 16 excerpts; fitting a temperature "
        "and a review threshold needs at least 30 excerpts"
    ) in card
    assert "Code more excerpts and train again" in card
    assert (
        "- Trained on few excerpts (80; validation 16, test 16): about 150 would give validation and "
        "test 30 excerpts each."
    ) in card
    assert "- The data have no interview column, so they were split by excerpt" in card
    for claim in ("by interview**", "from 16 interviews", "Trained on few interviews", "Code more interviews"):
        assert claim not in card, claim


def test_the_per_code_table_and_counts_follow_the_codebook(enough):
    test = enough.scored("test", wrong=2)
    card = enough.card(enough.calibration(), test=test)
    assert "- 160 excerpts (push 40, pull 40, co_creation 40, none 40), data digest `" in card
    rows = [line for line in card.splitlines() if line.startswith("| ") and not line.startswith("| code")]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == ["push", "pull", "co_creation", "none"]
    figures = {r.code: r for r in test.per_code.itertuples(index=False)}
    for row in rows:
        code = row.split(" | ")[0].lstrip("| ")
        f = figures[code]
        assert row == f"| {code} | {f.precision:.3f} | {f.recall:.3f} | {f.f1:.3f} | {f.support} |"
    m = test.metrics
    assert f"Macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f}, Cohen's κ {m['kappa']:.3f}" in card


def test_the_bundled_corpus_is_called_authored_and_a_users_file_is_named(tmp_path, enough):
    assert f"`{enough.data.report.path}` (provided by the user)." in enough.card(enough.calibration())
    bundled = Run(ROOT / "data" / "excerpts" / "starter.jsonl")
    card = bundled.card(bundled.calibration())
    assert "**authored, illustrative excerpts written for supportlens, not real participant data**" in card
    assert "(provided by the user)" not in card


def test_cross_validation_figures_and_its_uncalibrated_folds(enough):
    cv = {
        "cv_macro_f1_mean": 0.81,
        "cv_macro_f1_sd": 0.05,
        "cv_kappa_mean": 0.74,
        "cv_kappa_sd": 0.061,
        "cv_folds": 5.0,
        "cv_folds_calibrated": 3.0,
    }
    card = enough.card(enough.calibration(), cv=cv)
    assert (
        "Grouped cross-validation: macro-F1 0.810 ± 0.050, Cohen's κ 0.740 ± 0.061. 2 of the 5 folds had "
        "too little inner validation to be calibrated"
    ) in card
    card = enough.card(enough.calibration(), cv={**cv, "cv_folds_calibrated": 5.0})
    assert "Grouped cross-validation: macro-F1 0.810 ± 0.050, Cohen's κ 0.740 ± 0.061.\n" in card
    assert "too little inner validation" not in card
    assert "Grouped cross-validation" not in enough.card(enough.calibration())


def test_a_fast_student_is_described_with_what_it_changed_on_validation(enough):
    from types import SimpleNamespace

    student = SimpleNamespace(
        layers=[2, 4, 6], texts=1200, gate=0.15, val_passages=64, val_rescored=0.25, val_changed=0.0125
    )
    card = enough.card(enough.calibration(), student=student)
    assert (
        "- `predict --fast` scores with a distilled student (teacher layers [2, 4, 6], 1200 distillation "
        "texts) and sends passages whose top two probabilities lie within 0.15 to this model; on 64 "
        "validation passages that sent 25% to this model and changed 1.25% of labels"
    ) in card
    assert "distilled student" not in enough.card(enough.calibration())


def test_the_model_line_names_the_encoder_only_for_encoder_models(enough, tmp_path):
    assert "- kind: `tfidf_logreg`; encoder: `none (TF-IDF)`" in enough.card(enough.calibration())
    tuned = Run(
        Path(enough.data.report.path),
        "split.test_size=0.2",
        "split.val_size=0.2",
        "model.kind=finetune",
        "model.pretrained=some/bert-model",
    )
    card = tuned.card(tuned.calibration())
    assert card.startswith("# Model card: supportlens finetune\n")
    assert "- kind: `finetune`; encoder: `some/bert-model`" in card
