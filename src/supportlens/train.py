"""Training, as an outline: load and validate -> split by interview -> fit -> calibrate on
validation -> evaluate on test (and optionally grouped k-fold CV) -> save -> track in MLflow."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import tracking
from .calibration import review_threshold
from .codebook import Codebook, load_codebook
from .config import Config
from .dataset import CodedData, combine_coded, load_coded
from .evaluate import Evaluation, evaluate_model, evaluate_proba, summarise_folds
from .modelcard import render_model_card
from .models import TextClassifier
from .models.encoders import embedding_cache
from .models.fitting import fit_calibrated
from .splits import Split, grouped_folds, grouped_split, inner_validation

Logger = Callable[[str], None]


@dataclass
class TrainResult:
    run_id: str | None
    model_dir: Path
    model_uri: str | None
    test: Evaluation
    val: Evaluation
    split_sizes: dict[str, int]
    train_seconds: float
    review_threshold: float
    temperature: float
    cv: dict[str, float] = field(default_factory=dict)
    data: CodedData | None = None
    registered_version: str | None = None


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def fit_and_calibrate(cfg: Config, labels: list[str], frame: pd.DataFrame, fit_idx: np.ndarray,
                      val_idx: np.ndarray) -> tuple[TextClassifier, float, float]:
    """Fit on ``fit_idx``, early-stop and calibrate on ``val_idx``; returns (model, threshold, seconds)."""
    texts, y = frame["text"].tolist(), frame["label"].to_numpy(dtype=object)
    val_texts = [texts[i] for i in val_idx]
    model, seconds = fit_calibrated(cfg, labels, [texts[i] for i in fit_idx], y[fit_idx], val_texts, y[val_idx])
    proba = model.predict_proba(val_texts)
    correct = np.asarray(model.classes_)[proba.argmax(1)] == y[val_idx]
    threshold = review_threshold(proba.max(1), correct, cfg.calibration.target_precision)
    return model, threshold, seconds


def cross_validate(cfg: Config, labels: list[str], frame: pd.DataFrame, k: int,
                   log: Logger = print) -> tuple[dict[str, float], pd.DataFrame]:
    """Grouped k-fold CV: per fold, an inner grouped validation split for early stopping and
    calibration. Returns mean/sd metrics and the out-of-fold predictions."""
    y, groups = frame["label"].to_numpy(dtype=object), frame["group"].to_numpy()
    # a --fast student changes no CV figure (it serves the final model's scoring): skip it per fold
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, student_layers=0))
    oof = np.zeros((len(frame), len(labels)))
    fold_metrics = []
    for fold, (train_idx, test_idx) in enumerate(grouped_folds(y, groups, k, cfg.seed), start=1):
        inner_fit, inner_val = inner_validation(y[train_idx], groups[train_idx],
                                                cfg.split.val_size, cfg.seed + fold)
        model, threshold, _ = fit_and_calibrate(cfg, labels, frame, train_idx[inner_fit], train_idx[inner_val])
        texts = frame["text"].iloc[test_idx].tolist()
        proba = model.predict_proba(texts)
        oof[test_idx] = proba
        result = evaluate_proba(y[test_idx], proba, labels, name=f"fold {fold}", review_threshold=threshold)
        fold_metrics.append(result.metrics)
        log(f"  fold {fold}/{k}: macro-F1 {result.metrics['macro_f1']:.3f}  kappa {result.metrics['kappa']:.3f}")
    oof_frame = frame[["id", "group", "text", "label"]].copy()
    for j, label in enumerate(labels):
        oof_frame[f"p_{label}"] = oof[:, j]
    return summarise_folds(fold_metrics), oof_frame


def _split(cfg: Config, frame: pd.DataFrame) -> Split:
    return grouped_split(frame["label"].to_numpy(dtype=object), frame["group"].to_numpy(),
                         cfg.split.test_size, cfg.split.val_size, cfg.seed)


def add_coded(data: CodedData, paths: list[str], codebook: Codebook, cfg: Config,
              log: Logger = print) -> CodedData:
    """The main coded data plus extra coded files or filled coding sheets (blank codes skipped),
    combined by `dataset.combine_coded`: a passage already coded keeps its first coding, a sheet's
    transcript files are matched to interviews, and rows are counted per file."""
    from .active import sheet_data_config

    extras = []
    for path in paths:
        extra = load_coded(path, codebook, sheet_data_config(path, cfg.data), skip_blank_labels=True,
                           min_codes=1)
        log(extra.report.summary())
        extras.append(extra)
    return combine_coded(data, extras, codebook)


def train(cfg: Config, data_path: str | None = None, codebook_path: str | None = None,
          cv: int | None = None, tracking_uri: str | None = None, register: str | None = None,
          log: Logger = print, track: bool = True, extra_data: list[str] | None = None) -> TrainResult:
    """Train, evaluate and (by default) track one model as configured.

    ``extra_data``: coded files or filled coding sheets (`supportlens next`) added to the data
    before splitting.
    """
    if codebook_path:  # the codebook prior and the saved model must use the same codebook
        cfg = dataclasses.replace(cfg, codebook=str(codebook_path))
    codebook = load_codebook(cfg.codebook)
    data_path = data_path or cfg.data.path
    data = load_coded(data_path, codebook, cfg.data)
    if extra_data:
        data = add_coded(data, list(extra_data), codebook, cfg, log)
    log(data.report.summary())
    frame = data.frame
    labels = codebook.labels
    split = _split(cfg, frame)
    log(f"grouped split by interview: {split.sizes()}" if data.report.grouped else
        f"split by excerpt, not by interview (no interview column: see the note above): {split.sizes()}")
    k = cv if cv is not None else cfg.split.cv_folds

    tmp = Path(tempfile.mkdtemp(prefix="supportlens-run-"))
    ctx = _tracked(cfg, tracking_uri) if track else contextlib.nullcontext()
    # members of an ensemble (and the CV folds) share one frozen encoder: embed each text once
    with ctx as run_id, embedding_cache():
        if track:
            _log_inputs(cfg, data, codebook, data_path, split, extra_data)
        log(f"training {cfg.model.kind} ({cfg.describe_model()})")
        model, threshold, seconds = fit_and_calibrate(cfg, labels, frame, split.train, split.val)
        log(f"trained in {seconds:.1f}s; temperature {model.temperature_:.2f}; "
            f"review below confidence {threshold:.2f}")
        student = student_metrics(model)
        if student.get("student_val_rescored") is not None:
            log(f"--fast student: {student['student_layers']:.0f} layers, gate {student['student_gate']:.2f}; on "
                f"validation it leaves {student['student_val_rescored']:.0%} of passages to the full model and "
                f"changes {student['student_val_changed']:.2%} of labels")
        val = _evaluate(model, frame, split.val, "validation", threshold)
        test = _evaluate(model, frame, split.test, "test", threshold)
        cv_metrics: dict[str, float] = {}
        oof = None
        if k and k > 1:
            log(f"grouped {k}-fold cross-validation")
            cv_metrics, oof = cross_validate(cfg, labels, frame, k, log)
        run_info = {"run_id": run_id, "data_digest": data.digest, "split": split.sizes(),
                    "train_seconds": seconds}
        model_dir = _save(model, cfg, codebook, data, threshold, test, val, cv_metrics, run_info,
                          Path(cfg.output_dir) / (run_id or time.strftime("run-%Y%m%d-%H%M%S")))
        model_uri, version = None, None
        if track:
            model_uri, version = _log_outputs(model, val, test, cv_metrics, oof, model_dir, frame,
                                              seconds, threshold, tmp, register or cfg.tracking.register,
                                              cfg.tracking.alias)
        log(f"test: macro-F1 {test.metrics['macro_f1']:.3f}, kappa {test.metrics['kappa']:.3f}, "
            f"alpha {test.metrics['alpha']:.3f}, ECE {test.metrics['ece']:.3f} (n={test.metrics['n']})")
        if cv_metrics:
            log(f"cv: macro-F1 {cv_metrics['cv_macro_f1_mean']:.3f} ± {cv_metrics['cv_macro_f1_sd']:.3f}, "
                f"kappa {cv_metrics['cv_kappa_mean']:.3f} ± {cv_metrics['cv_kappa_sd']:.3f}")
    shutil.rmtree(tmp, ignore_errors=True)
    return TrainResult(run_id=run_id, model_dir=model_dir, model_uri=model_uri, test=test, val=val,
                       split_sizes=split.sizes(), train_seconds=seconds, review_threshold=threshold,
                       temperature=model.temperature_, cv=cv_metrics, data=data,
                       registered_version=version)


def student_metrics(model: TextClassifier) -> dict[str, float]:
    """The --fast student's size, gate and validation figures, if the model has one."""
    report = getattr(model, "student_report_", None)
    if report is None:
        return {}
    values = {"student_layers": len(report.layers), "student_gate": report.gate,
              "student_seconds": report.seconds, "student_val_agreement": report.val_agreement,
              "student_val_rescored": report.val_rescored, "student_val_changed": report.val_changed}
    return {k: float(v) for k, v in values.items() if v is not None}


def _evaluate(model: TextClassifier, frame: pd.DataFrame, idx: np.ndarray, name: str, threshold: float) -> Evaluation:
    part = frame.iloc[idx]
    return evaluate_model(model, part["text"].tolist(), part["label"].tolist(), part["id"].tolist(),
                          part["group"].tolist(), name=name, review_threshold=threshold)


class _tracked:
    def __init__(self, cfg: Config, tracking_uri: str | None):
        self.cfg, self.uri = cfg, tracking_uri

    def __enter__(self) -> str:
        tracking.setup(self.uri or self.cfg.tracking.uri, self.cfg.tracking.experiment)
        self._ctx = tracking.run(self.cfg.tracking.run_name)
        active = self._ctx.__enter__()
        return active.info.run_id

    def __exit__(self, *exc: Any) -> Any:
        return self._ctx.__exit__(*exc)


def _log_inputs(cfg: Config, data: CodedData, codebook: Codebook, data_path: str, split: Split,
                extra_data: list[str] | None = None) -> None:
    tracking.log_params(cfg.flat())
    if extra_data:
        tracking.log_params({"data.extra_paths": ", ".join(map(str, extra_data))})
    tracking.log_params({"data.resolved_path": str(data_path), "codebook.resolved": codebook.source,
                         **{f"split.n_{k}": v for k, v in split.sizes().items()}})
    tracking.set_tags({"model_kind": cfg.model.kind, "data_digest": data.digest,
                       "codebook": f"{codebook.name} v{codebook.version}"})
    tracking.log_training_data(data.frame, source=str(data_path), name=Path(data_path).stem,
                               digest=data.digest)
    tracking.log_text(json.dumps(data.report.to_dict(), indent=2, default=str), "data/data_report.json")
    tracking.log_text(json.dumps(cfg.to_dict(), indent=2), "config/resolved_config.json")


def _save(model: TextClassifier, cfg: Config, codebook: Codebook, data: CodedData, threshold: float,
          test: Evaluation, val: Evaluation, cv_metrics: dict[str, float], run_info: dict[str, Any],
          model_dir: Path) -> Path:
    if model_dir.exists():
        shutil.rmtree(model_dir)
    extra = {
        "review_threshold": threshold,
        "target_precision": cfg.calibration.target_precision,
        "codebook": codebook.to_dict(),
        "config": cfg.to_dict(),
        "data_digest": data.digest,
        "test_metrics": test.metrics,
        "cv_metrics": cv_metrics,
        "run": run_info,
    }
    model.save(model_dir, extra=extra)
    codebook.save(model_dir / "codebook.yaml")
    card = render_model_card(cfg, codebook, data, test, val, cv_metrics, run_info, threshold,
                             model.temperature_, getattr(model, "student_report_", None))
    (model_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return model_dir


def _log_outputs(model: TextClassifier, val: Evaluation, test: Evaluation, cv_metrics: dict[str, float],
                 oof: pd.DataFrame | None, model_dir: Path, frame: pd.DataFrame, seconds: float,
                 threshold: float, tmp: Path, register_name: str | None, alias: str
                 ) -> tuple[str, str | None]:
    for record in model.history_:
        step = int(record["epoch"])
        tracking.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=step)
    tracking.log_metrics({**test.flat_metrics(), **val.flat_metrics("val"), **cv_metrics,
                          "train_seconds": seconds, "review_threshold": threshold,
                          "temperature": model.temperature_, "peak_memory_mb": peak_memory_mb(),
                          **student_metrics(model)})
    for evaluation in (val, test):
        out = tmp / evaluation.name
        evaluation.write(out)
        tracking.log_artifacts(out, f"evaluation/{evaluation.name}")
    if oof is not None:
        oof.to_csv(tmp / "cv_out_of_fold.csv", index=False)
        tracking.log_artifact(tmp / "cv_out_of_fold.csv", "evaluation/cv")
    tracking.log_artifact(model_dir / "codebook.yaml", "codebook")
    tracking.log_artifact(model_dir / "MODEL_CARD.md")
    info = tracking.log_model(model_dir, frame["text"].head(3).tolist())
    run_id = tracking.active_run_id()
    model_uri = f"runs:/{run_id}/{tracking.MODEL_ARTIFACT}"
    version = None
    if register_name:
        version = tracking.register(info.model_uri, register_name, alias).version
    return model_uri, version
