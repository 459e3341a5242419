"""The Labeler: review thresholds, speed modes and devices, and the words of its errors."""

import pytest

from conftest import make_rows
from supportlens.inference.labeler import Labeler, PredictError, resolve_device
from supportlens.models import load_classifier
from supportlens.schema import score_columns


def test_scores_have_the_schemas_columns_in_the_models_order(labeler):
    frame = labeler.score(["we trained every site on the manual", "hello"])
    assert list(frame.columns) == score_columns(labeler.labels)
    assert list(labeler.score([]).columns) == score_columns(labeler.labels)  # an empty batch too
    assert len(labeler.score([])) == 0


def test_review_threshold_override(model_dir):
    labeler = Labeler(load_classifier(model_dir), review_below=0.99)
    frame = labeler.score(["we trained every site on the manual", "hello"])
    assert frame["needs_review"].all()


def test_a_model_with_no_measured_threshold_flags_passages_it_is_certain_of(tmp_path):
    """Its stored threshold is 1.0; a confidence of exactly 1.0 (a float64 softmax of a logit gap
    of about 37) must still be flagged. A measured threshold is compared as before."""
    from supportlens.models import TfidfLogReg

    rows = make_rows(6, 2)
    model = TfidfLogReg(labels=["push", "pull", "co_creation", "none"]).fit(
        [r["text"] for r in rows], [r["label"] for r in rows]
    )
    model.temperature_ = 1e-4  # sharpened until the softmax rounds to exactly 1.0
    texts = [rows[0]["text"], rows[3]["text"]]
    assert (model.predict_proba(texts).max(1) == 1.0).all()
    model.save(
        tmp_path / "unmeasured",
        extra={"review_threshold": 1.0, "calibration": {"threshold_measured": False, "notes": ["too few"]}},
    )
    assert Labeler(load_classifier(tmp_path / "unmeasured")).score(texts)["needs_review"].all()
    model.save(tmp_path / "measured", extra={"review_threshold": 1.0, "calibration": {"threshold_measured": True}})
    assert not Labeler(load_classifier(tmp_path / "measured")).score(texts)["needs_review"].any()
    model.save(tmp_path / "legacy", extra={"review_threshold": 0.5})  # saved before calibration was recorded
    assert not Labeler(load_classifier(tmp_path / "legacy")).score(texts)["needs_review"].any()
    # review_below is the user's own threshold, compared as given
    chosen = Labeler(load_classifier(tmp_path / "unmeasured"), review_below=1.0).score(texts)
    assert not chosen["needs_review"].any()
    # the MLflow pyfunc model's output flags them too
    from supportlens.calibration import threshold_measured
    from supportlens.tracking import predictions_frame

    served = load_classifier(tmp_path / "unmeasured")
    assert predictions_frame(served, texts, 1.0, threshold_measured(served))["needs_review"].all()


def test_fast_mode_rejected_for_tfidf(model_dir):
    with pytest.raises(PredictError, match="`fast=True` is only available for fine-tuned models"):
        Labeler(load_classifier(model_dir), fast=True)


def test_device_errors_name_the_parameter_not_a_flag():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(PredictError, match="^`device` must be cpu, cuda or auto; got 'gpu'$"):
        resolve_device("gpu")
