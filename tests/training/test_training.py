"""The whole workflow on tiny data: train -> evaluate -> reload the logged pyfunc -> predict."""

import json
import os
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from conftest import fast_overrides
from supportlens.cli.common import in_cli_terms
from supportlens.config import load_config
from supportlens.models import load_classifier
from supportlens.tracking import fetch_model_dir, runs_table
from supportlens.training.evaluate_run import evaluate_file
from supportlens.training.trainer import train


def test_train_tfidf_tracks_everything(coded_file, tracking_uri, codebook):
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    result = train(cfg, cv=3, log=lambda m: None)
    assert result.run_id and result.model_uri == f"runs:/{result.run_id}/model"
    run = mlflow.get_run(result.run_id)
    # resolved config as params, data digest, metrics, per-code metrics, cv mean/sd
    assert run.data.params["model.kind"] == "tfidf_logreg"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.tags["data_digest"] == result.data.digest
    for key in (
        "macro_f1",
        "kappa",
        "kappa_ci_low",
        "alpha_ci_high",
        "alpha",
        "ece",
        "accuracy",
        "f1_push",
        "precision_none",
        "recall_co_creation",
        "cv_macro_f1_mean",
        "cv_macro_f1_sd",
        "train_seconds",
        "val_macro_f1",
        "review_threshold",
        "peak_memory_mb",
    ):
        assert key in run.data.metrics, key
    # the training data as an MLflow dataset with a digest
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest
    # artifacts
    artifacts = mlflow.artifacts.download_artifacts(run_id=result.run_id)
    from pathlib import Path

    a = Path(artifacts)
    for rel in (
        "evaluation/test/confusion_matrix.csv",
        "evaluation/test/confusion_matrix.png",
        "evaluation/test/reliability.png",
        "evaluation/test/misclassified.csv",
        "evaluation/test/per_code.csv",
        "evaluation/cv/cv_out_of_fold.csv",
        "codebook/codebook.yaml",
        "MODEL_CARD.md",
        "data/data_report.json",
    ):
        assert (a / rel).is_file(), rel
    card = (a / "MODEL_CARD.md").read_text()
    assert "coding assistant" in card and "by interview" in card
    # the pyfunc model reloads and predicts one probability per code
    pyfunc = mlflow.pyfunc.load_model(result.model_uri)
    out = pyfunc.predict(
        pd.DataFrame({"text": ["we designed it together as partners", "we trained every site on the manual"]})
    )
    assert list(out.columns) == ["label", "p_push", "p_pull", "p_co_creation", "p_none", "confidence", "needs_review"]
    assert set(out["label"]) <= set(codebook.labels)
    assert out[["p_push", "p_pull", "p_co_creation", "p_none"]].sum(axis=1).round(6).eq(1).all()
    assert pyfunc.metadata.signature is not None
    # logged from code (supportlens' own source), not as a pickled object
    logged = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    assert not list(logged.rglob("*.pkl"))
    assert (logged / "pyfunc_entry.py").is_file() and (logged / "code" / "supportlens").is_dir()
    # no interview in two splits
    preds = pd.read_csv(a / "evaluation/test/predictions.csv")
    val = pd.read_csv(a / "evaluation/validation/predictions.csv")
    assert not set(preds["group"]) & set(val["group"])


def test_register_and_models_uri(coded_file, tracking_uri):
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    result = train(cfg, register="supportlens-test", log=lambda m: None)
    assert str(result.registered_version) == "1"
    model_dir = fetch_model_dir("models:/supportlens-test@champion")
    assert load_classifier(model_dir).kind == "tfidf_logreg"


def test_models_uri_of_an_ensemble_is_the_ensemble_not_a_member(coded_file, tracking_uri, tmp_path):
    """A logged ensemble holds its members' model folders inside its own: the URI must resolve to
    the ensemble (its calibration and review threshold), never to the first member found."""
    member = tmp_path / "member.yaml"
    member.write_text("model: {kind: tfidf_logreg}\n")
    cfg = load_config(
        None,
        fast_overrides() + [f"data.path={coded_file}", "model.kind=ensemble", f"ensemble.members=[{member}, {member}]"],
    )
    result = train(cfg, register="supportlens-ens", log=lambda m: None)
    for uri in (result.model_uri, "models:/supportlens-ens@champion"):
        model = load_classifier(fetch_model_dir(uri))
        assert model.kind == "ensemble" and "review_threshold" in model.meta_


def test_logged_models_are_downloaded_once(coded_file, tracking_uri, tmp_path, monkeypatch):
    """A run's model and a numbered version never change: fetched once into the cache (so the ONNX
    graph exported next to it is reused); an alias is followed to its current version."""
    from supportlens.tracking import register

    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")  # relative, as by default
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    first = train(cfg, register="supportlens-cached", log=lambda m: None)
    by_run = fetch_model_dir(first.model_uri)
    assert by_run.is_relative_to(tmp_path / "cache" / "models")
    (by_run / "marker").write_text("kept")
    assert fetch_model_dir(first.model_uri) == by_run and (by_run / "marker").is_file()
    by_alias = fetch_model_dir("models:/supportlens-cached@champion")
    assert by_alias == fetch_model_dir("models:/supportlens-cached/1") != by_run
    second = train(cfg, log=lambda m: None)
    register(second.model_uri, "supportlens-cached", "champion")
    moved = fetch_model_dir("models:/supportlens-cached@champion")
    assert moved != by_alias and moved == fetch_model_dir("models:/supportlens-cached/2")
    assert not list((tmp_path / "cache" / "models").glob(".partial-*"))  # no half-written download left
    # two projects' stores can both hold a models:/supportlens-cached/1 under the same URI text
    # (sqlite:///mlflow.db in two folders): a version is cached under the run it came from
    from supportlens.tracking import _immutable_key

    assert first.run_id in _immutable_key("models:/supportlens-cached/1")
    assert second.run_id in _immutable_key("models:/supportlens-cached@champion")
    assert _immutable_key("models:/supportlens-cached/Production") is None  # a stage moves: never cached


def test_evaluate_any_file_with_logged_model(coded_file, tracking_uri, tmp_path):
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    result = train(cfg, log=lambda m: None)
    ev = evaluate_file(result.model_uri, str(coded_file), out_dir=str(tmp_path / "ev"))
    assert ev.metrics["n"] == 80
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["macro_f1"] == ev.metrics["macro_f1"]
    table = runs_table()
    assert len(table) >= 2  # the training run and the evaluation run


def test_finetune_end_to_end_with_tiny_bert(coded_file, tracking_uri, tiny_bert):
    cfg = load_config(None, fast_overrides(tiny_bert, kind="finetune") + [f"data.path={coded_file}"])
    result = train(cfg, log=lambda m: None)
    run = mlflow.get_run(result.run_id)
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2]
    assert run.data.params["model.kind"] == "finetune"
    out = mlflow.pyfunc.load_model(result.model_uri).predict(pd.DataFrame({"text": ["we trained them"]}))
    assert out.shape[0] == 1


def test_finetune_with_a_fast_student_logs_it_and_describes_it(coded_file, tracking_uri, tiny_bert):
    cfg = load_config(
        None,
        fast_overrides(tiny_bert, kind="finetune")
        + [f"data.path={coded_file}", "train.student_layers=1", "train.student_epochs=1"],
    )
    result = train(cfg, log=lambda m: None)
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert metrics["student_layers"] == 1.0 and 0.0 <= metrics["student_val_changed"] <= 0.005
    assert 0.0 <= metrics["student_val_rescored"] <= 1.0
    report = json.loads((result.model_dir / "student" / "report.json").read_text())
    assert [row["gate"] for row in report["gates"]][:3] == [0.0, 0.05, 0.1]
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert "distilled student (teacher layers [1]" in card and f"within {report['gate']:.2f}" in card
    # the logged model carries the student, and --fast finds it there
    logged = load_classifier(fetch_model_dir(result.model_uri))
    assert logged.has_student() and logged.student_report_.gate == report["gate"]


def test_untracked_training_writes_model_folder(coded_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    result = train(cfg, track=False, log=lambda m: None)
    assert result.run_id is None and result.model_uri is None
    model = load_classifier(result.model_dir)
    assert 0 <= model.meta_["review_threshold"] <= 1
    assert (result.model_dir / "MODEL_CARD.md").is_file()


def _same_second(monkeypatch) -> str:
    """Freeze the clock ``time.strftime`` reads, as for runs started within one second; the
    folder name an untracked run asks for then."""
    import time

    real, frozen = time.strftime, time.localtime(1714564800)
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: real(fmt, frozen if t is None else t))
    return real("run-%Y%m%d-%H%M%S", frozen)


def test_untracked_runs_in_the_same_second_keep_both_models(coded_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = _same_second(monkeypatch)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    first = train(cfg, track=False, log=lambda m: None)
    (first.model_dir / "marker").write_text("first run")
    lines: list[str] = []
    second = train(cfg, track=False, log=lines.append)
    assert (first.model_dir.name, second.model_dir.name) == (name, f"{name}-2")
    assert (first.model_dir / "marker").read_text() == "first run"
    assert load_classifier(first.model_dir).kind == load_classifier(second.model_dir).kind == "tfidf_logreg"
    assert f"note: {Path('outputs') / name} already exists (not this run's)" in "\n".join(lines)
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [name, f"{name}-2"]  # no temp folder
    umask = os.umask(0)
    os.umask(umask)
    assert second.model_dir.stat().st_mode & 0o777 == 0o777 & ~umask  # not a private temp folder's 0700


@pytest.mark.parametrize("interrupt", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_save_that_fails_half_way_leaves_no_model_folder(coded_file, tmp_path, monkeypatch, interrupt):
    """The model files are written, the card is not: nothing appears that looks like a model, and
    neither an earlier run under the same name nor any other run folder is touched."""
    import supportlens.training.trainer as trainer

    monkeypatch.chdir(tmp_path)
    name = _same_second(monkeypatch)
    for earlier in (name, "run-20200101-000000"):
        (tmp_path / "outputs" / earlier).mkdir(parents=True)
        (tmp_path / "outputs" / earlier / "marker").write_text(earlier)

    def broken_card(*args, **kwargs):
        raise interrupt

    monkeypatch.setattr(trainer, "render_model_card", broken_card)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    with pytest.raises(type(interrupt)):
        train(cfg, track=False, log=lambda m: None)
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["run-20200101-000000", name]
    for earlier in (name, "run-20200101-000000"):
        assert (tmp_path / "outputs" / earlier / "marker").read_text() == earlier


def test_a_run_that_fails_leaves_no_scratch_folder(coded_file, tmp_path, monkeypatch):
    """The scratch folder for artifacts goes however the run ends, not only when it succeeds."""
    import tempfile

    import supportlens.training.trainer as trainer

    monkeypatch.chdir(tmp_path)
    scratch_root = tmp_path / "scratch"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))

    def broken_fit(*args, **kwargs):
        assert [p.name.startswith("supportlens-run-") for p in scratch_root.iterdir()] == [True]
        raise RuntimeError("out of memory")

    monkeypatch.setattr(trainer, "fit_and_calibrate", broken_fit)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    with pytest.raises(RuntimeError, match="out of memory"):
        train(cfg, track=False, log=lambda m: None)
    assert list(scratch_root.iterdir()) == []


def test_bad_model_uri(tracking_uri):
    from supportlens.models.base import ModelLoadError

    with pytest.raises(ModelLoadError, match="not found"):
        fetch_model_dir("no/such/folder")
    with pytest.raises(ModelLoadError, match="cannot fetch model"):
        fetch_model_dir("models:/nothing-registered@champion")
    with pytest.raises(ModelLoadError, match="no MLflow store at .*pass `tracking_uri`") as err:
        fetch_model_dir("models:/supportlens@champion", "sqlite:///elsewhere.db")
    assert "pass --tracking-uri)" in in_cli_terms(str(err.value))
    assert not (Path.cwd() / "elsewhere.db").exists()  # no empty store left behind


def test_filled_sheet_with_one_code_adds_to_training(coded_file, tmp_path, monkeypatch):
    """A partly filled coding sheet may hold a single code; it only adds to the training data."""
    monkeypatch.chdir(tmp_path)
    sheet = pd.DataFrame(
        {
            "id": ["s1", "s2", "s3"],
            "source": ["new.txt"] * 3,
            "passage_index": [0, 1, 2],
            "text": ["the weather on the visit was grey", "we drove for hours", "lunch was late"],
            "suggested_code": ["none", "pull", "none"],
            "confidence": [0.6, 0.5, 0.7],
            "code": ["none", "", "none"],
            "notes": ["", "", ""],
        }
    )
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    result = train(cfg, track=False, extra_data=[str(tmp_path / "sheet.csv")], log=lambda m: None)
    assert len(result.data.frame) == 80 + 2  # the blank-coded row is skipped


def _small_study(tmp_path: Path, interviewer_rows: int = 0) -> Path:
    """8 interviews of 8 excerpts: the default split leaves validation and test one interview each."""
    from conftest import make_rows, write_jsonl

    rows = make_rows(8, 2)
    for row in rows[:interviewer_rows]:
        row["speaker_role"] = "interviewer"
    return write_jsonl(tmp_path / "small.jsonl", rows)


def _plain_config(data: Path, *extra: str):
    from conftest import CODEBOOK

    return load_config(
        None, [f"codebook={CODEBOOK}", "model.kind=tfidf_logreg", f"data.path={data}", "output_dir=outputs", *extra]
    )


def _spy_on_calibrate(monkeypatch) -> list[str]:
    """Record the kind of every model whose temperature is fitted. On this tidy data validation holds
    no mistake, so a fitted temperature is 1.0 too: only the calls show whether one was fitted."""
    from supportlens.models.base import TextClassifier

    calls: list[str] = []
    real = TextClassifier.calibrate

    def spy(self, X, y):
        calls.append(self.kind)
        return real(self, X, y)

    monkeypatch.setattr(TextClassifier, "calibrate", spy)
    return calls


def test_too_little_validation_leaves_confidence_uncalibrated_and_says_why(tmp_path, tracking_uri, monkeypatch):
    """A temperature once fitted on 6 validation excerpts of one interview hit its bound (0.05), the
    review threshold became 0.99998, and the card claimed it reached precision ≥ 0.80."""
    lines: list[str] = []
    calibrated = _spy_on_calibrate(monkeypatch)
    result = train(_plain_config(_small_study(tmp_path)), log=lines.append)
    assert calibrated == []  # no temperature was fitted on the 8 validation excerpts
    text = "\n".join(lines)
    assert (
        "warning: confidence is not calibrated: the validation split holds 1 interview and 8 excerpts; "
        "fitting a temperature and a review threshold needs at least 3 interviews and 30 excerpts"
    ) in text
    assert "every passage is flagged needs_review" in text
    assert re.search(r"so about \d+ coded interviews are needed \(at 8\.0 excerpts each; \S+small\.jsonl has 8\)", text)
    calibration = result.calibration
    assert not calibration.threshold_measured and calibration.review_threshold == 1.0
    model = load_classifier(result.model_dir)
    assert model.temperature_ == 1.0 and model.meta_["review_threshold"] == 1.0
    assert model.meta_["calibration"]["threshold_measured"] is False
    # recorded in the run, and the card claims no measured precision
    run = mlflow.get_run(result.run_id)
    assert run.data.metrics["review_threshold_measured"] == 0.0
    assert run.data.tags["calibration"].startswith("not calibrated: the validation split holds 1 interview")
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert "**confidence not calibrated**: the validation split holds 1 interview and 8 excerpts" in card
    assert "**no review threshold** could be measured, so every passage is flagged `needs_review`" in card
    assert "reached precision" not in card and "had precision" not in card
    assert "No review threshold was measured: every passage is flagged for review." in card
    out = mlflow.pyfunc.load_model(result.model_uri).predict(pd.DataFrame({"text": ["we trained every site"]}))
    assert out["needs_review"].all()


def test_an_ensembles_members_are_not_calibrated_on_too_little_validation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    member = tmp_path / "member.yaml"
    member.write_text("model: {kind: tfidf_logreg}\n")
    cfg = _plain_config(_small_study(tmp_path), "model.kind=ensemble", f"ensemble.members=[{member}, {member}]")
    calibrated = _spy_on_calibrate(monkeypatch)
    result = train(cfg, track=False, log=lambda m: None)
    assert calibrated == []  # neither the ensemble nor its members
    model = load_classifier(result.model_dir)
    assert model.temperature_ == 1.0 and [m.temperature_ for m in model.members_] == [1.0, 1.0]


def test_an_ensemble_and_its_members_are_calibrated_on_enough_validation(tmp_path, monkeypatch):
    """The other side of the test above: the spy sees the fits when validation is large enough."""
    from conftest import make_rows, write_jsonl

    monkeypatch.chdir(tmp_path)
    member = tmp_path / "member.yaml"
    member.write_text("model: {kind: tfidf_logreg}\n")
    data = write_jsonl(tmp_path / "twenty.jsonl", make_rows(20, 2))
    calibrated = _spy_on_calibrate(monkeypatch)
    train(
        _plain_config(
            data,
            "split.test_size=0.2",
            "split.val_size=0.2",
            "model.kind=ensemble",
            f"ensemble.members=[{member}, {member}]",
        ),
        track=False,
        log=lambda m: None,
    )
    assert sorted(calibrated) == ["ensemble", "tfidf_logreg", "tfidf_logreg"]


def test_the_calibration_record_is_what_calibrate_found(tmp_path, monkeypatch):
    """The run's record reads the fit that calibrate() made; it does not fit a second time."""
    from conftest import make_rows, write_jsonl
    from supportlens.calibration import TemperatureFit
    from supportlens.models.base import TextClassifier

    def calibrate(self, X, y):
        self.temperature_fit_ = TemperatureFit(1.0, 0.3, "a note only calibrate() knows")
        self.temperature_ = 1.0
        return 1.0

    monkeypatch.setattr(TextClassifier, "calibrate", calibrate)
    monkeypatch.chdir(tmp_path)
    data = write_jsonl(tmp_path / "twenty.jsonl", make_rows(20, 2))
    cfg = _plain_config(data, "split.test_size=0.2", "split.val_size=0.2")  # validation: 4 interviews
    result = train(cfg, track=False, log=lambda m: None)
    assert result.calibration.threshold_measured and not result.calibration.temperature_fitted
    assert result.calibration.notes == ["a note only calibrate() knows"]

    def fitted(self, X, y):
        self.temperature_fit_ = TemperatureFit(2.0, 2.0)
        self.temperature_ = 2.0
        return 2.0

    monkeypatch.setattr(TextClassifier, "calibrate", fitted)
    result = train(cfg, track=False, log=lambda m: None)
    assert result.calibration.temperature_fitted and result.calibration.temperature == 2.0
    assert result.calibration.notes == []


def test_data_without_an_interview_column_are_described_as_excerpts(tmp_path, monkeypatch):
    """With no interview column each excerpt is its own group: nothing may call them interviews,
    split 'by interview', or count interviews needed (review of 2026-12-06, item 2)."""
    from conftest import make_rows

    monkeypatch.chdir(tmp_path)
    rows = make_rows(10, 2)
    for row in rows:
        del row["interview_id"]
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    lines: list[str] = []
    result = train(load_config(None, fast_overrides() + ["data.path=c.csv"]), track=False, log=lines.append)
    text = "\n".join(lines)
    assert (
        "split by excerpt, not by interview (no interview column: see the note above): "
        "train 48 excerpts, validation 16, test 16"
    ) in text
    assert (
        "warning: confidence is not calibrated: the validation split holds 16 excerpts; fitting a "
        "temperature and a review threshold needs at least 30 excerpts"
    ) in text
    assert "no interview column" in text.split("warning: confidence")[1]
    assert "about 150 coded excerpts are needed (c.csv has 80" in text
    assert "(n=16 excerpts)" in text and "warning: the test split holds 16 excerpts" in text
    assert "add `cv=5` so that every excerpt is tested once" in text  # train's argument
    assert "add --cv 5 so that every excerpt is tested once" in in_cli_terms(text)  # the command's option
    for claim in ("by interview:", "16 interviews", "excerpts each", "interviews are needed", "code more interviews"):
        assert claim not in text, claim
    calibration = result.calibration
    assert not calibration.grouped and calibration.val_interviews is None
    assert result.split_interviews == {}
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert (
        "- split by excerpt, not by interview (no interview column): train 48 excerpts, "
        "validation 16 excerpts, test 16 excerpts"
    ) in card
    assert "by interview**" not in card and "from 16 interviews" not in card
    assert "## Evaluation (held-out test excerpts)" in card and "n = 16 excerpts." in card
    assert "Code more excerpts and train again" in card
    assert (
        "- Trained on few excerpts (80; validation 16, test 16): about 150 would give validation and "
        "test 30 excerpts each."
    ) in card
    assert "Trained on few interviews" not in card


def test_cross_validation_says_when_its_folds_were_not_calibrated(tmp_path, monkeypatch):
    """8 interviews in 3 folds: no fold's inner validation reaches 30 excerpts, so the folds keep
    T = 1 and flag every passage; one line says so and the CV figures record it."""
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    result = train(_plain_config(_small_study(tmp_path)), cv=3, track=False, log=lines.append)
    notes = [line for line in lines if "folds were not calibrated" in line]
    assert len(notes) == 1, lines
    assert notes[0].startswith("note: 3 of 3 folds were not calibrated (fold 1: the validation split holds")
    assert "cv_ece describes uncalibrated models" in notes[0]
    assert result.cv["cv_folds"] == 3.0 and result.cv["cv_folds_calibrated"] == 0.0
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert "3 of the 3 folds had too little inner validation to be calibrated" in card


def test_cross_validation_on_enough_data_calibrates_every_fold(tmp_path, monkeypatch):
    from conftest import make_rows, write_jsonl

    monkeypatch.chdir(tmp_path)
    data = write_jsonl(tmp_path / "many.jsonl", make_rows(40, 2))
    lines: list[str] = []
    # each fold's inner validation: a third of 20 interviews, about 7 of them and 53 excerpts
    result = train(_plain_config(data, "split.val_size=0.3"), cv=2, track=False, log=lines.append)
    assert not any("folds were not calibrated" in line for line in lines)
    assert result.cv["cv_folds_calibrated"] == 2.0
    assert "too little inner validation" not in (result.model_dir / "MODEL_CARD.md").read_text()


def test_small_splits_show_their_interviews_the_test_interval_and_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    result = train(_plain_config(_small_study(tmp_path, interviewer_rows=2)), track=False, log=lines.append)
    text = "\n".join(lines)
    assert (
        "grouped split by interview: train 48 excerpts from 6 interviews, validation 8 from 1 interview, "
        "test 8 from 1 interview"
    ) in text
    m = result.test.metrics
    assert (
        f"kappa {m['kappa']:.3f} (95% interval {m['kappa_ci_low']:.3f} to {m['kappa_ci_high']:.3f})" in text
    ) and "(n=8 excerpts from 1 interview)" in text
    assert "warning: the test split holds 1 interview (8 excerpts)" in text
    assert "add --cv 5 so that every interview is tested once" in in_cli_terms(text)
    assert result.split_interviews == {"train": 6, "val": 1, "test": 1}
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert "- Trained on few interviews (8; validation 1, test 1): about" in card
    assert (
        "train 48 excerpts from 6 interviews, validation 8 excerpts from 1 interview, test 8 excerpts from 1 interview"
    ) in card
    # the training data held interviewer turns: the card must not say they are outside it
    assert "Interviewer talk was 2 of the 64 training excerpts" in card


def test_enough_validation_is_calibrated_and_the_card_says_on_what(tmp_path, monkeypatch):
    """20 interviews: validation holds 4 interviews and 32 excerpts, enough to calibrate on."""
    from conftest import make_rows, write_jsonl

    monkeypatch.chdir(tmp_path)
    data = write_jsonl(tmp_path / "twenty.jsonl", make_rows(20, 2))
    lines: list[str] = []
    result = train(load_config(None, fast_overrides() + [f"data.path={data}"]), track=False, log=lines.append)
    calibration = result.calibration
    assert calibration.threshold_measured and (calibration.val_excerpts, calibration.val_interviews) == (32, 4)
    assert not any(line.startswith("warning:") for line in lines), lines
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert "on the 32 validation excerpts from 4 interviews" in card
    assert "Trained on few interviews" not in card  # the line is there only when it is true
    assert "the training data mark no interviewer turns" in card
