"""The --fast student: which layers it keeps, what it is distilled on, how its gate is chosen,
and the cascade (student first, the full model for passages the student is unsure of)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_rows
from supportlens.config import ConfigError, TrainConfig
from supportlens.inference.labeler import Labeler
from supportlens.models import FineTuneClassifier, distil, load_classifier
from supportlens.training.trainer import student_metrics

LABELS = ["push", "pull", "co_creation", "none"]


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.delenv("SUPPORTLENS_RUNTIME", raising=False)


def test_kept_layers_are_spread_and_end_with_the_last():
    assert distil.kept_layers(6, 3) == [1, 3, 5]
    assert distil.kept_layers(6, 2) == [2, 5]
    assert distil.kept_layers(12, 4) == [2, 5, 8, 11]
    assert distil.kept_layers(2, 1) == [1]
    for bad in (0, 6, 7):
        with pytest.raises(ValueError, match="between 1 and 5"):
            distil.kept_layers(6, bad)


def test_distillation_texts_add_variations_but_keep_the_originals_first():
    texts = [
        "We trained them. Then we checked fidelity every month. Nobody asked us why.",
        "They called us when they needed help with the data system. We came and listened.",
        "ok",
    ]
    out = distil.distillation_texts(texts, seed=1)
    assert out[:3] == texts
    extra = out[3:]
    assert extra and len(extra) == len(set(extra)) and not set(extra) & set(texts)
    assert len(extra) <= int(2.5 * len(texts))
    assert "Then we checked fidelity every month." in extra or any("fidelity" in e for e in extra)
    assert distil.distillation_texts(texts, seed=1) == out  # seeded
    assert distil.distillation_texts(["no sentences here"], seed=1) == ["no sentences here"]


def test_gate_is_the_smallest_margin_within_the_target():
    teacher = np.array([[3.0, 0, 0, 0]] * 8)
    student = teacher.copy()
    student[0] = [0, 12.0, 0, 0]  # confidently wrong: no gate below 1.0 catches it
    student[1] = [0.1, 0.2, 0, 0]  # unsure and wrong: caught by any gate above its margin
    rescored, changed = distil.gate_effect(student, teacher, 0.0)
    assert (rescored, changed) == (0.0, 2 / 8)
    small = distil.margins(student[1:2])[0] + 0.01
    assert distil.gate_effect(student, teacher, small) == (1 / 8, 1 / 8)
    assert distil.choose_gate(student, teacher, target_changed=0.2) == pytest.approx(0.05)
    assert distil.choose_gate(student, teacher, target_changed=0.0) == 1.0  # everything to the teacher
    assert distil.gate_effect(student, teacher, 1.0)[1] == 0.0


def test_distil_pulls_a_student_that_starts_far_off_onto_the_teachers_logits(tiny_bert):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=4).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    texts = [r["text"] for r in make_rows(6, 1)]
    with torch.inference_mode():
        target = teacher(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy() * 5
    student, keep = distil.student_of(teacher, 1)
    assert keep == [1] and len(teacher.bert.encoder.layer) == 2  # the teacher itself is untouched

    def gap() -> float:
        with torch.inference_mode():
            ours = student.eval()(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
        return float(np.mean((ours - target) ** 2))

    before = gap()
    history = distil.distil(
        student, tokenizer, texts, target, max_length=32, epochs=30, batch_size=8, learning_rate=3e-3
    )
    assert gap() < 0.2 * before  # it learns the teacher's (here sharpened) logits
    assert history[-1]["distil_loss"] < history[0]["distil_loss"]


def test_train_config_checks_the_student_settings():
    assert TrainConfig(student_layers=3).student_layers == 3
    with pytest.raises(ConfigError, match="student_layers"):
        TrainConfig(student_layers=-1)
    with pytest.raises(ConfigError, match="student_max_changed"):
        TrainConfig(student_max_changed=1.5)
    with pytest.raises(ConfigError, match="student_epochs at least 1"):
        TrainConfig(student_layers=3, student_epochs=0)


def test_a_student_needs_an_encoder_with_layers_and_a_gate_needs_a_student(tiny_bert):
    import torch

    class Flat(torch.nn.Module):  # a classifier without transformer layers to keep
        base_model_prefix = "flat"

        def __init__(self):
            super().__init__()
            self.flat = torch.nn.Linear(4, 4)

    with pytest.raises(ValueError, match="cannot make a student of Flat: no encoder layers found"):
        distil.student_of(Flat(), 1)
    model = FineTuneClassifier(labels=LABELS, pretrained=str(tiny_bert), max_length=32, epochs=1, batch_size=8)
    rows = make_rows(2, 1)
    model.fit([r["text"] for r in rows], [r["label"] for r in rows])
    with pytest.raises(ValueError, match="this model has no student: fit_student first"):
        model.gate_student(["We planned it together."])


@pytest.fixture(scope="module")
def with_student(tiny_bert, tmp_path_factory):
    """A tiny fine-tuned model with a 1-layer student, saved."""
    rows, val = make_rows(4, 1), make_rows(2, 1)
    model = FineTuneClassifier(
        labels=LABELS,
        pretrained=str(tiny_bert),
        max_length=32,
        epochs=2,
        batch_size=8,
        student_layers=1,
        student_epochs=3,
    )
    model.fit(
        [r["text"] for r in rows], [r["label"] for r in rows], [r["text"] for r in val], [r["label"] for r in val]
    )
    root = tmp_path_factory.mktemp("student")
    model.save(root / "ft")
    return model, root / "ft", [r["text"] for r in rows + val]


def test_student_is_distilled_with_its_gate_measured_on_validation(with_student):
    model, folder, texts = with_student
    report = model.student_report_
    assert report.layers == [1] and model.student_.config.num_hidden_layers == 1
    # the 8 validation passages and their sentence variations, none of them distilled on
    val = texts[-8:]
    assert report.val_passages == len(distil.distillation_texts(val, model.seed + 1)) > 8
    assert 0.0 <= report.val_changed <= report.target_changed
    assert report.gate in distil.GATE_MARGINS
    table = {row["gate"]: row for row in report.gates}  # the whole trade-off, for the model card and README
    assert list(table) == list(distil.GATE_MARGINS)
    assert table[report.gate]["changed"] == report.val_changed and table[1.0]["changed"] == 0.0
    rescored = [row["rescored"] for row in report.gates]
    assert rescored == sorted(rescored)  # a wider gate never sends fewer passages to the full model
    assert [h["epoch"] for h in report.history] == [1, 2, 3]
    assert all(np.isfinite(h["distil_loss"]) for h in report.history)
    saved = json.loads((folder / "student" / "report.json").read_text())
    assert saved["gate"] == report.gate and (folder / "student" / "hf" / "config.json").is_file()
    metrics = student_metrics(model)
    assert metrics["student_layers"] == 1.0 and metrics["student_gate"] == report.gate


def test_fast_mode_cascades_from_the_student_to_the_full_model(with_student):
    _, folder, texts = with_student
    texts = texts * 2
    teacher = load_classifier(folder)
    assert teacher.has_student() and teacher.student_ is None  # loaded only when --fast needs it
    full_fast = teacher.make_fast().use_runtime() and teacher._fast_or_full(texts, True)
    model = load_classifier(folder)
    Labeler(model, fast=True)
    model.student_report_.gate = 0.0  # gate closed: the student alone
    alone = model.decision_function(texts)
    assert model.student_onnx_ is not None and model.last_student_rescored_ == 0
    assert list((folder / "student" / "onnx").glob("*/model.int8.onnx"))
    margins = distil.margins(alone)
    model.student_report_.gate = float(np.median(margins))
    mixed = model.decision_function(texts)
    unsure = margins < model.student_report_.gate
    assert 0 < model.last_student_rescored_ == unsure.sum() < len(texts)
    assert np.abs(mixed[unsure] - full_fast[unsure]).max() < 1e-5  # the full model's answer
    assert np.abs(mixed[~unsure] - alone[~unsure]).max() < 1e-6  # the student's


def test_a_model_fitted_in_this_process_uses_a_torch_int8_student(with_student):
    model, _, texts = with_student
    model.make_fast()
    assert model.use_runtime() == "torch"
    out = model.predict_proba(texts)
    assert model.fast_student_ is not None and out.shape == (len(texts), 4)
    assert np.allclose(out.sum(1), 1.0)
