"""Training, as an outline: load and validate -> split by interview -> fit -> calibrate on
validation -> evaluate on test (and optionally grouped k-fold CV) -> save -> track in MLflow."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from supportlens import tracking
from supportlens.calibration import MIN_VAL_EXCERPTS, MIN_VAL_INTERVIEWS, Calibration, plural
from supportlens.codebook import Codebook, load_codebook
from supportlens.config import Config, config_from_dict
from supportlens.corpus.dataset import CodedData, DataError, combine_coded, listing, load_coded, text_key
from supportlens.corpus.sheets import sheet_data_config
from supportlens.corpus.splits import Split, grouped_folds, grouped_split, inner_validation, split_shares
from supportlens.evaluation.evaluate import (
    EXCERPTS_FILE,
    Evaluation,
    evaluate_model,
    evaluate_proba,
    excerpt_hashes,
    json_ready,
    summarise_folds,
    training_overlap,
)
from supportlens.io.atomic import write_new_folder
from supportlens.models import ModelLoadError, TextClassifier, load_classifier
from supportlens.models.encoders import embedding_cache
from supportlens.models.fitting import fit_and_calibrate
from supportlens.models.meta import read_meta
from supportlens.training.adapt import (
    SourceData,
    TargetData,
    TrustReport,
    cross_fit,
    describe_adapt,
    fit_adapted,
    select_weighting,
    target_folds,
    trust_report,
)
from supportlens.training.modelcard import render_model_card

Logger = Callable[[str], None]
# an untracked run's model folder (a tracked run's is named by its MLflow run id): sorts by time
RUN_FOLDER_FORMAT = "run-%Y%m%d-%H%M%S"


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
    calibration: Calibration | None = None
    split_interviews: dict[str, int] = field(default_factory=dict)
    trust: TrustReport | None = None  # agreement on the added (target) passages, cross-fitted
    registered_as: str | None = None  # models:/<name>@<alias> when registered


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _excerpts(corpus: datasets.Dataset, idx: np.ndarray) -> tuple[list[str], np.ndarray, list[str]]:
    """Rows ``idx`` of the coded corpus as a model takes them: texts, codes by name (from the
    ``ClassLabel``) and interviews."""
    part = corpus.select(idx)
    codes = part.features["label"].int2str(list(part["label"]))
    return list(part["text"]), np.asarray(codes, dtype=object), list(part["group"])


def cross_validate(
    cfg: Config, labels: list[str], frame: pd.DataFrame, k: int, log: Logger = print, grouped: bool = True
) -> tuple[dict[str, float], pd.DataFrame]:
    """Grouped k-fold CV: per fold, an inner grouped validation split for early stopping and
    calibration. Returns mean/sd metrics and the out-of-fold predictions.

    A fold whose inner validation is too small is not calibrated (T = 1, every passage flagged):
    the metrics' ``cv_folds_calibrated`` counts the folds that were, and one line says why the
    others were not, so that ``cv_ece`` is not read as the calibrated model's."""
    texts, y, groups = frame["text"].tolist(), frame["label"].to_numpy(dtype=object), frame["group"].to_numpy()
    # a --fast student changes no CV figure (it serves the final model's scoring): skip it per fold
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, student_layers=0))
    oof = np.zeros((len(frame), len(labels)))
    fold_metrics, uncalibrated = [], []
    for fold, (train_idx, test_idx) in enumerate(grouped_folds(y, groups, k, cfg.seed), start=1):
        inner_fit, inner_val = inner_validation(y[train_idx], groups[train_idx], cfg.split.val_size, cfg.seed + fold)
        fit_idx, val_idx = train_idx[inner_fit], train_idx[inner_val]
        model, calibration, _ = fit_and_calibrate(
            cfg,
            labels,
            [texts[i] for i in fit_idx],
            y[fit_idx],
            [texts[i] for i in val_idx],
            y[val_idx],
            groups[val_idx] if grouped else None,
        )
        if not calibration.threshold_measured:
            uncalibrated.append((fold, calibration.notes[0]))
        proba = model.predict_proba([texts[i] for i in test_idx])
        oof[test_idx] = proba
        result = evaluate_proba(
            y[test_idx], proba, labels, name=f"fold {fold}", review_threshold=calibration.review_threshold
        )
        fold_metrics.append(result.metrics)
        log(f"  fold {fold}/{k}: macro-F1 {result.metrics['macro_f1']:.3f}  kappa {result.metrics['kappa']:.3f}")
    if uncalibrated:
        first, why = uncalibrated[0]
        log(
            f"note: {len(uncalibrated)} of {k} folds were not calibrated (fold {first}: {why}): their "
            "confidences are the models' own probabilities (T = 1), so cv_ece describes uncalibrated "
            "models, and every passage of theirs was flagged for review"
        )
    oof_frame = frame[["id", "group", "text", "label"]].copy()
    for j, label in enumerate(labels):
        oof_frame[f"p_{label}"] = oof[:, j]
    return (
        {**summarise_folds(fold_metrics), "cv_folds": float(k), "cv_folds_calibrated": float(k - len(uncalibrated))},
        oof_frame,
    )


def _split(cfg: Config, corpus: datasets.Dataset, rows: np.ndarray | None = None) -> Split:
    """The grouped train/validation/test split of ``rows`` of the corpus (all of them by default);
    indices into the whole corpus."""
    rows = np.arange(len(corpus)) if rows is None else np.asarray(rows, dtype=int)
    _, codes, groups = _excerpts(corpus, rows)
    split = grouped_split(codes, np.asarray(groups, dtype=object), cfg.split.test_size, cfg.split.val_size, cfg.seed)
    return Split(train=rows[split.train], val=rows[split.val], test=rows[split.test])


def split_interviews(frame: pd.DataFrame, split: Split) -> dict[str, int]:
    """Interviews (groups) per part of the split."""
    groups = frame["group"].to_numpy()
    return {part: int(len(np.unique(groups[getattr(split, part)]))) for part in ("train", "val", "test")}


def describe_split(sizes: dict[str, int], interviews: dict[str, int] | None = None) -> str:
    """'train 40 excerpts from 6 interviews, validation 6 from 1 interview, test 7 from 1 interview';
    without ``interviews`` (data with no interview column) 'train 40 excerpts, validation 6, test 7'."""
    names = {"train": "train", "val": "validation", "test": "test"}
    parts = []
    for i, part in enumerate(("train", "val", "test")):
        unit = " excerpts" if i == 0 else ""
        source = f" from {plural(interviews[part], 'interview')}" if interviews else ""
        parts.append(f"{names[part]} {sizes[part]}{unit}{source}")
    return ", ".join(parts)


def interviews_needed(cfg: Config, excerpts_per_interview: float, part: str = "val") -> int:
    """About how many coded interviews the grouped split needs for ``part`` (val or test) to hold
    `MIN_VAL_INTERVIEWS` interviews and, for validation, `MIN_VAL_EXCERPTS` excerpts
    (at the shares of `splits.split_shares`)."""
    test_share, val_share = split_shares(cfg.split.test_size, cfg.split.val_size)
    share = test_share if part == "test" else val_share
    wanted = MIN_VAL_INTERVIEWS
    if part == "val":
        wanted = max(wanted, math.ceil(MIN_VAL_EXCERPTS / max(excerpts_per_interview, 1e-9)))
    return math.ceil(wanted / share)


def excerpts_needed(cfg: Config) -> int:
    """Data with no interview column are split by excerpt: about how many coded excerpts give
    validation and test `MIN_VAL_EXCERPTS` each (the only minimum such data can show)."""
    return max(math.ceil(MIN_VAL_EXCERPTS / share) for share in split_shares(cfg.split.test_size, cfg.split.val_size))


def _calibration_warning(
    cfg: Config, calibration: Calibration, frame: pd.DataFrame, data_path: str, grouped: bool = True
) -> str:
    head = (
        f"warning: confidence is not calibrated: {calibration.notes[0]}. The model's own probabilities "
        "are kept (T = 1) and no review threshold could be measured, so every passage is flagged "
        "needs_review. "
    )
    tail = (
        "Until then `Labeler(review_below=X)` flags passages below a confidence of your "
        "choosing, one that no data has checked."
    )
    if not grouped:
        needed = max(excerpts_needed(cfg), len(frame) + 1)
        return (
            head
            + (
                f"Code more excerpts: at split.val_size {cfg.split.val_size:g} validation gets about "
                f"{_share_text(cfg)} of the excerpts, so about {needed} coded excerpts are needed "
                f"({data_path} has {len(frame)}; with an interview column they would also have to come "
                f"from enough interviews). "
            )
            + tail
        )
    n_groups = int(frame["group"].nunique())
    per_interview = len(frame) / max(n_groups, 1)
    needed = max(interviews_needed(cfg, per_interview, "val"), n_groups + 1)
    return (
        head
        + (
            f"Code more interviews: at split.val_size {cfg.split.val_size:g} validation gets "
            f"about {_share_text(cfg)} of the interviews, so about {needed} coded interviews are needed "
            f"(at {per_interview:.1f} excerpts each; {data_path} has {n_groups}). "
        )
        + tail
    )


def _share_text(cfg: Config) -> str:
    return f"1 in {round(1.0 / split_shares(cfg.split.test_size, cfg.split.val_size)[1])}"


def _test_warning(
    cfg: Config, test: Evaluation, interviews: int, frame: pd.DataFrame, cv: int, grouped: bool = True
) -> str | None:
    """A warning when the test split is too small to say much: fewer than `MIN_VAL_INTERVIEWS`
    interviews, or for data with no interview column fewer than `MIN_VAL_EXCERPTS` excerpts."""
    m = test.metrics
    if (interviews >= MIN_VAL_INTERVIEWS) if grouped else (m["n"] >= MIN_VAL_EXCERPTS):
        return None
    low, high = m.get("kappa_ci_low"), m.get("kappa_ci_high")
    spread = (
        f"κ's 95% interval {_interval(m, 'kappa')}"
        if low != high
        else f"κ's bootstrap interval shrinks to {low:.3f} alone: {m['n']} excerpts cannot show how uncertain it is"
    )
    if not grouped:
        needed = max(excerpts_needed(cfg), len(frame) + 1)
        advice = (
            f"code more excerpts (about {needed} for {MIN_VAL_EXCERPTS} in the test split at "
            f"split.test_size {cfg.split.test_size:g})"
        )
        if not cv or cv < 2:
            advice += f", and add `cv={min(5, len(frame))}` so that every excerpt is tested once (cross-validation)"
        return (
            f"warning: the test split holds {plural(int(m['n']), 'excerpt')}: its scores have wide "
            f"uncertainty ({spread}); {advice}."
        )
    n_groups = int(frame["group"].nunique())
    needed = max(interviews_needed(cfg, len(frame) / max(n_groups, 1), "test"), n_groups + 1)
    advice = (
        f"code more interviews (about {needed} for {MIN_VAL_INTERVIEWS} in the test split at "
        f"split.test_size {cfg.split.test_size:g})"
    )
    if not cv or cv < 2:
        advice += f", and add `cv={min(5, n_groups)}` so that every interview is tested once (grouped cross-validation)"
    return (
        f"warning: the test split holds {plural(interviews, 'interview')} "
        f"({m['n']} excerpts): its scores describe {'that interview' if interviews == 1 else 'those interviews'} "
        f"and little more ({spread}); {advice}."
    )


def _interval(metrics: dict[str, Any], key: str) -> str:
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "not estimable"
    return f"{low:.3f} to {high:.3f}"


def _confidence_text(x: float) -> str:
    """Two decimals, or five where two would round a value below 1 up to 1.00."""
    text = f"{x:.2f}"
    return f"{x:.5f}" if text == "1.00" and x < 1.0 else text


def add_coded(data: CodedData, paths: list[str], codebook: Codebook, cfg: Config, log: Logger = print) -> CodedData:
    """The main coded data plus extra coded files or filled coding sheets (blank codes skipped),
    combined by `dataset.combine_coded`: a passage already coded keeps its first coding, a sheet's
    transcript files are matched to interviews, and rows are counted per file."""
    extras = []
    for path in paths:
        extra = load_coded(path, codebook, sheet_data_config(path, cfg.data), skip_blank_labels=True, min_codes=1)
        log(extra.report.summary())
        extras.append(extra)
    return combine_coded(data, extras, codebook)


def train(
    cfg: Config,
    data_path: str | None = None,
    codebook_path: str | None = None,
    cv: int | None = None,
    tracking_uri: str | None = None,
    register: str | None = None,
    log: Logger = print,
    track: bool = True,
    extra_data: list[str] | None = None,
    init_from: str | Path | TextClassifier | None = None,
    teacher_data: str | Path | None = None,
) -> TrainResult:
    """Train, evaluate and (by default) track one model as configured.

    ``extra_data``: coded files or filled coding sheets (`supportlens next`) of the researcher's
    own corpus: the *target domain* (`training.adapt`). They are not split: every one of their
    passages is trained on, as ``cfg.adapt`` says, while validation and test stay authored
    interviews; the trust figure (their agreement with the model, cross-fitted) is printed, logged
    and saved with the model. ``init_from``: a trained model (folder, ``runs:/…`` or
    ``models:/…``) to continue training on them instead of fitting anew. ``teacher_data``: a coded
    file whose codes a language model gave (`training.distil_teacher`): trained on beside the
    authored training interviews, weighted like them, never validated, tested or cross-fitted on;
    a passage the coded data also hold is left out of it (a person's code wins).
    """
    if codebook_path:  # the codebook prior and the saved model must use the same codebook
        cfg = dataclasses.replace(cfg, codebook=str(codebook_path))
    codebook = load_codebook(cfg.codebook)
    data_path = data_path or cfg.data.path
    data = load_coded(data_path, codebook, cfg.data)
    if extra_data:
        data = add_coded(data, list(extra_data), codebook, cfg, log)
    log(data.report.summary())
    frame = data.frame  # for the figures and warnings; the model learns from and is scored on `corpus`
    corpus = data.dataset
    labels = codebook.labels
    # rows of added files are the target domain: kept out of the authored split
    is_target = frame["target"].to_numpy(dtype=bool) if "target" in frame else np.zeros(len(frame), dtype=bool)
    authored = frame if not is_target.any() else frame.loc[~is_target].reset_index(drop=True)
    target = _target_data(data, is_target)
    teacher = _teacher_data(teacher_data, codebook, frame, log) if teacher_data is not None else None
    init_model, init_dir = (None, None)
    if init_from is not None:
        if target is None:
            raise ModelLoadError(
                "`init_from` continues a trained model on passages coded on your own corpus; "
                "give them with `extra_data` (none were added)"
            )
        init_model, init_dir = load_init_model(init_from, labels, cfg, tracking_uri)
    split = _split(cfg, corpus, np.flatnonzero(~is_target))
    grouped = data.report.grouped  # False: no interview column, each excerpt its own group
    interviews = split_interviews(frame, split) if grouped else {}
    log(
        f"grouped split by interview: {describe_split(split.sizes(), interviews)}"
        if grouped
        else f"split by excerpt, not by interview (no interview column: see the note above): "
        f"{describe_split(split.sizes())}"
    )
    held_out = _target_in_held_out(frame, split, target) if target is not None and grouped else None
    if held_out:
        log(held_out)
    k = cv if cv is not None else cfg.split.cv_folds

    scratch = tempfile.TemporaryDirectory(prefix="supportlens-run-", ignore_cleanup_errors=True)
    tmp = Path(scratch.name)  # files logged as artifacts; removed however the run ends
    ctx = _tracked(cfg, tracking_uri) if track else contextlib.nullcontext()
    # members of an ensemble (and the CV folds) share one frozen encoder: embed each text once
    with scratch, ctx as run_id, embedding_cache():
        if track:
            _log_inputs(cfg, data, codebook, data_path, split, extra_data, interviews)
            if teacher is not None:
                _log_teacher(teacher)
        log(f"training {cfg.model.kind} ({cfg.describe_model()})")
        X, y, _ = _excerpts(corpus, split.train)
        if teacher is not None:  # the teacher's labels: training rows, like the authored ones
            X, y = [*X, *teacher.frame["text"]], np.concatenate([y, teacher.frame["label"].to_numpy(dtype=object)])
        X_val, y_val, val_groups = _excerpts(corpus, split.val)
        trust, oof, choice = None, None, None
        if target is None:
            model, calibration, seconds = fit_and_calibrate(
                cfg, labels, X, y, X_val, y_val, val_groups if grouped else None
            )
        else:
            source = SourceData(X, y, X_val, y_val, val_groups if grouped else None)
            trust, oof = _cross_fit_target(cfg, labels, source, target, init_model, log)
            if trust is not None and init_dir is not None:
                trust.notes += _init_saw_target(init_dir, target)
            if cfg.adapt.weighting == "auto":
                choice = select_weighting(cfg, labels, source, target, init_model)
                log(choice.line())
                if track:
                    tracking.log_metrics({"target_share_chosen": choice.share})
                    tracking.log_text(json.dumps(json_ready(choice.to_dict()), indent=2), "weighting_choice.json")
            model, calibration, seconds = fit_adapted(
                cfg, labels, source, target, init_model, oof=oof, weighting=choice
            )
        if track:
            log_model_prompt(model)
        threshold = calibration.review_threshold
        if calibration.threshold_measured:
            log(
                f"trained in {seconds:.1f}s; temperature {model.temperature_:.2f}; "
                f"review below confidence {_confidence_text(threshold)}"
            )
            for note in calibration.notes:
                log(f"note: {note}")
        else:
            log(
                f"trained in {seconds:.1f}s; temperature 1.00 (not fitted); no review threshold (every passage flagged)"
            )
            log(_calibration_warning(cfg, calibration, authored, str(data_path), grouped))
        student = student_metrics(model)
        if student.get("student_val_rescored") is not None:
            log(
                f"student (`fast=True`): {student['student_layers']:.0f} layers, "
                f"gate {student['student_gate']:.2f}; on "
                f"validation it leaves {student['student_val_rescored']:.0%} of passages to the full model and "
                f"changes {student['student_val_changed']:.2%} of labels"
            )
        val = _evaluate(model, corpus, split.val, "validation", threshold)
        test = _evaluate(model, corpus, split.test, "test", threshold)
        cv_metrics: dict[str, float] = {}
        cv_oof = None
        if k and k > 1:
            log(f"grouped {k}-fold cross-validation" + (" of the authored data" if target is not None else ""))
            cv_metrics, cv_oof = cross_validate(cfg, labels, authored, k, log, grouped)
        run_info: dict[str, Any] = {
            "run_id": run_id,
            "data_digest": data.digest,
            "split": split.sizes(),
            "split_interviews": interviews,
            "train_seconds": seconds,
            "grouped": grouped,
            # the authored data as read (`data_path` may differ from the config's): `adapt_model` reads them again
            "data_path": str(Path(data_path).resolve()) if Path(data_path).exists() else str(data_path),
        }
        if grouped:  # for MIN_VAL_INTERVIEWS in each of validation and test at these split shares
            per_interview = len(authored) / max(int(authored["group"].nunique()), 1)
            run_info["interviews_needed"] = max(interviews_needed(cfg, per_interview, part) for part in ("val", "test"))
        else:  # for MIN_VAL_EXCERPTS in each: the only minimum that data with no interview column can show
            run_info["excerpts_needed"] = excerpts_needed(cfg)
        if teacher is not None:
            run_info["teacher"] = {"file": teacher.report.path, "passages": len(teacher.frame)}
        if target is not None:
            run_info["target"] = {
                "passages": len(target),
                "interviews": target.n_groups if target.grouped else None,
                "files": [f["path"] for f in data.report.files[1:]],
                "init_from": str(init_from) if init_from is not None and init_dir is not None else None,
                "adapt": describe_adapt(
                    (choice.apply(cfg) if choice is not None else cfg).adapt,
                    len(target),
                    init_model is not None,
                    chosen_among=len(choice.losses) if choice is not None and choice.losses else None,
                ),
                **({"weighting_choice": choice.to_dict()} if choice is not None else {}),
            }
        wanted = Path(cfg.output_dir) / (run_id or time.strftime(RUN_FOLDER_FORMAT))
        learnt_beside = [  # trained on besides the split's training rows
            *(target.texts if target is not None else []),
            *(teacher.frame["text"] if teacher is not None else []),
        ]
        # whole or not at all, at `wanted` or `wanted-2`, …: never over another run's model
        model_dir = write_new_folder(
            wanted,
            lambda folder: _write_model_folder(
                model,
                cfg,
                codebook,
                data,
                calibration,
                test,
                val,
                cv_metrics,
                run_info,
                split,
                folder,
                trust,
                learnt_beside,
            ),
        )
        if model_dir != wanted:
            log(f"note: {wanted} already exists (not this run's): the model is saved in {model_dir} instead")
        model_uri, version = None, None
        if track:
            if trust is not None and oof is not None and target is not None:
                _log_trust(trust, oof, target, labels, tmp)
            model_uri, version = _log_outputs(
                model,
                val,
                test,
                cv_metrics,
                cv_oof,
                model_dir,
                frame,
                seconds,
                calibration,
                interviews,
                tmp,
                register or cfg.tracking.register,
                cfg.tracking.alias,
            )
        m = test.metrics
        log(
            f"test: macro-F1 {m['macro_f1']:.3f}, kappa {m['kappa']:.3f} (95% interval {_interval(m, 'kappa')}), "
            f"alpha {m['alpha']:.3f}, ECE {m['ece']:.3f} (n={m['n']} excerpts"
            + (f" from {plural(interviews['test'], 'interview')})" if grouped else ")")
        )
        warning = _test_warning(cfg, test, interviews.get("test", 0), authored, k, grouped)
        if warning:
            log(warning)
        if init_dir is not None:
            seen = _init_overlap(init_dir, corpus, split)
            if seen:
                log(
                    f"warning: {seen} of the {m['n']} test excerpts were training or validation data of "
                    "`init_from`: the test figures above are optimistic. Continue a model trained on the same "
                    "data and config (as `supportlens adapt` does), so that its test interviews stay held out"
                )
        if cv_metrics:
            log(
                f"cv: macro-F1 {cv_metrics['cv_macro_f1_mean']:.3f} ± {cv_metrics['cv_macro_f1_sd']:.3f}, "
                f"kappa {cv_metrics['cv_kappa_mean']:.3f} ± {cv_metrics['cv_kappa_sd']:.3f}"
            )
        if trust is not None:
            log("trust figure (what a methods section can quote; the test figures are on authored interviews):")
            for line in trust.lines():
                log(line)
    return TrainResult(
        run_id=run_id,
        model_dir=model_dir,
        model_uri=model_uri,
        test=test,
        val=val,
        split_sizes=split.sizes(),
        train_seconds=seconds,
        review_threshold=threshold,
        temperature=model.temperature_,
        cv=cv_metrics,
        data=data,
        registered_version=version,
        calibration=calibration,
        split_interviews=interviews,
        trust=trust,
        registered_as=f"models:/{register or cfg.tracking.register}@{cfg.tracking.alias}" if version else None,
    )


def adapt_model(
    model: str | Path,
    coded: list[str],
    cfg: Config | None = None,
    overrides: list[str] | None = None,
    data_path: str | None = None,
    tracking_uri: str | None = None,
    register: str | None = None,
    log: Logger = print,
    track: bool = True,
) -> TrainResult:
    """Continue a trained model on passages coded on the researcher's own corpus (``coded``) and
    report the trust figure: `train` with ``init_from=model`` and ``extra_data=coded``, by default
    with the config the model was trained with (``overrides`` applied), its codebook, and its
    training data as the authored data (replayed, and split as before, so its test interviews
    stay held out)."""
    folder = tracking.fetch_model_dir(str(model), tracking_uri)
    codebook_path = None
    if cfg is None:
        meta = read_meta(folder)
        saved = meta.get("config")
        if not isinstance(saved, dict):
            raise ModelLoadError(f"`model` {model} was saved without its config: give the config to continue it with")
        cfg = config_from_dict(saved, overrides)
        if (folder / "codebook.yaml").is_file():
            codebook_path = str(folder / "codebook.yaml")
        trained_on = (meta.get("run") or {}).get("data_path")
        if data_path is None and trained_on:
            data_path = trained_on
    if not Path(data_path or cfg.data.path).exists():
        raise DataError(
            f"{data_path or cfg.data.path}: file not found (the authored data {model} was trained on); give "
            "them with `data_path`"
        )
    return train(
        cfg,
        data_path=data_path,
        codebook_path=codebook_path,
        tracking_uri=tracking_uri,
        register=register,
        log=log,
        track=track,
        extra_data=list(coded),
        init_from=model,
    )


def _target_in_held_out(frame: pd.DataFrame, split: Split, target: TargetData) -> str | None:
    """A warning when coded passages of the target come from interviews whose authored excerpts
    the split holds out (a sheet of a transcript the authored data also hold, joined to it): every
    target passage is trained on, so those interviews are no longer unseen."""
    groups = frame["group"].astype(str).to_numpy()
    held = {part: set(groups[getattr(split, part)]) for part in ("test", "val")}
    shared = {part: sorted(set(target.groups) & names) for part, names in held.items()}
    if not shared["test"] and not shared["val"]:
        return None
    held_out = held["test"] | held["val"]
    n = sum(g in held_out for g in target.groups)
    where = " and ".join(
        f"the {'test' if part == 'test' else 'validation'} split ({listing(names)})"
        for part, names in shared.items()
        if names
    )
    return (
        f"warning: {plural(n, 'coded passage')} of your corpus come from interviews whose authored excerpts are "
        f"held out in {where}: the model learns those passages, so the figures on those interviews "
        "(test κ, or the calibration on validation) are optimistic. The trust figure, cross-fitted on your "
        "passages, is the one to quote"
    )


def _target_data(data: CodedData, is_target: np.ndarray) -> TargetData | None:
    """The added files' passages (the target domain), or None when there are none."""
    if not is_target.any():
        return None
    rows = data.frame.loc[is_target]
    return TargetData(
        rows["text"].tolist(),
        rows["label"].to_numpy(dtype=object),
        rows["group"].tolist(),
        grouped=data.report.target_grouped,
    )


def log_model_prompt(model: TextClassifier, prefix: str = "llm") -> None:
    """A language model's rendered prompt, hash and version in the active run (`tracking.log_prompt`);
    nothing for other kinds. A blend over a language model (`adapt.fewshot`) logs its base's."""
    prompted = model if hasattr(model, "rendered_prompt") else getattr(model, "base_", None)
    if prompted is not None and hasattr(prompted, "rendered_prompt"):
        tracking.log_prompt(prompted.rendered_prompt(), prompted.prompt_hash, prompted.prompt.version, prefix)


def _teacher_data(path: str | Path, codebook: Codebook, frame: pd.DataFrame, log: Logger) -> CodedData:
    """A teacher's labels (a coded file), less the passages the coded data hold: on those a
    person's code is the one to learn."""
    teacher = load_coded(path, codebook, min_codes=1)
    coded = set(frame["text"].map(text_key))
    known = teacher.frame["text"].map(text_key).isin(coded)
    if known.any():
        teacher.frame = teacher.frame.loc[~known].reset_index(drop=True)
    log(
        f"teacher: {plural(len(teacher.frame), 'passage')} coded by a language model ({path}), trained on "
        "beside the authored training interviews (never validated, tested or cross-fitted on)"
        + (f"; {int(known.sum())} also coded by a person left out" if known.any() else "")
    )
    return teacher


def _log_teacher(teacher: CodedData) -> None:
    tracking.log_params({"data.teacher_path": teacher.report.path, "data.teacher_passages": len(teacher.frame)})
    tracking.log_training_data(
        teacher.frame,
        source=teacher.report.path,
        name=Path(teacher.report.path).stem,
        digest=teacher.digest,
        context="teacher",
    )


def load_init_model(
    init_from: str | Path | TextClassifier, labels: list[str], cfg: Config, tracking_uri: str | None = None
) -> tuple[TextClassifier, Path | None]:
    """The model ``init_from`` names (a folder, ``runs:/…``, ``models:/…``, resolved as
    ``predict --model`` resolves them) and its folder; it must code this codebook's labels and be
    of the configured kind."""
    if isinstance(init_from, TextClassifier):
        model, folder = init_from, None
    else:
        folder = tracking.fetch_model_dir(str(init_from), tracking_uri or cfg.tracking.uri)
        model = load_classifier(folder)
    classes = [str(c) for c in model.classes_]
    if classes != list(labels):
        raise ModelLoadError(
            f"`init_from` {init_from}: the model codes {', '.join(classes)}, but the codebook "
            f"{cfg.codebook} has {', '.join(labels)}; continue from a model trained with this codebook"
        )
    kind = model.base_.kind if model.kind == "fewshot_blend" else model.kind
    if kind != cfg.model.kind:
        raise ModelLoadError(
            f"`init_from` {init_from} is a {kind} model, but the config trains {cfg.model.kind}: give the "
            "config it was trained with (`supportlens adapt` uses it by itself)"
        )
    return model, folder


def _cross_fit_target(
    cfg: Config,
    labels: list[str],
    source: SourceData,
    target: TargetData,
    init_model: TextClassifier | None,
    log: Logger,
) -> tuple[TrustReport | None, np.ndarray | None]:
    """The trust figure on the target passages and their out-of-fold probabilities (which (d)
    calibrates on); (None, None) for a single passage, which nothing can be cross-fitted on."""
    origin = f" from {plural(target.n_groups, 'interview')}" if target.grouped else ""
    log(
        f"target domain: {plural(len(target), 'coded passage')} of your own corpus{origin}, not split: all "
        f"trained on ({describe_adapt(cfg.adapt, len(target), init_model is not None)})"
    )
    if len(target) < 2:
        log("note: a single coded passage cannot be cross-fitted: no trust figure; code more passages")
        return None, None
    folds = len(target_folds(target.labels, target.groups, cfg.adapt.folds, cfg.seed)[0])  # the ones cross_fit uses
    log(
        f"cross-fitting the model on them ({folds} folds) for the trust figure"
        + (": each fold chooses its weighting on its own training passages" if cfg.adapt.weighting == "auto" else "")
    )
    oof = cross_fit(cfg, labels, source, target, init_model, cfg.adapt.folds)
    report = trust_report(
        target.labels,
        oof,
        labels,
        target.groups,
        cfg.calibration.target_precision,
        cfg.seed,
        cfg.adapt.folds,
        target.grouped,
    )
    return report, oof


def _init_saw_target(init_dir: Path, target: TargetData) -> list[str]:
    """A note when the ``init_from`` model already learnt some of the target passages: every fold
    of the cross-fit starts from it, so those passages were seen and the figure is optimistic."""
    seen = training_overlap(init_dir, target.texts)
    n = 0 if seen is None else sum(seen.values())
    if not n:
        return []
    return [
        f"the starting model (`init_from`: --init-from, or adapt's --model) had already learnt {n} of these "
        f"{plural(len(target), 'coded passage')}, so each fold started from a model that saw them and this "
        "figure is optimistic; for a figure to quote, train without it (or continue a model trained without "
        "them)"
    ]


def _init_overlap(init_dir: Path, corpus: datasets.Dataset, split: Split) -> int:
    """How many test excerpts the ``init_from`` model learnt from (0 when it kept no record)."""
    seen = training_overlap(init_dir, list(corpus.select(split.test)["text"]))
    return 0 if seen is None else seen["train"] + seen["val"]


def _log_trust(trust: TrustReport, oof: np.ndarray, target: TargetData, labels: list[str], tmp: Path) -> None:
    """The trust figure as ``target_*`` metrics, ``trust.json`` and the out-of-fold predictions."""
    tracking.log_metrics(trust.metrics())
    tracking.log_text(json.dumps(json_ready(trust.to_dict()), indent=2), "trust.json")
    table = pd.DataFrame({"group": target.groups, "text": target.texts, "human": target.labels})
    table["model"] = np.asarray(labels, dtype=object)[oof.argmax(1)]
    for j, label in enumerate(labels):
        table[f"p_{label}"] = oof[:, j]
    table.to_csv(tmp / "target_out_of_fold.csv", index=False)
    tracking.log_artifact(tmp / "target_out_of_fold.csv", "evaluation/target")


def student_metrics(model: TextClassifier) -> dict[str, float]:
    """The --fast student's size, gate and validation figures, if the model has one."""
    report = getattr(model, "student_report_", None)
    if report is None:
        return {}
    values = {
        "student_layers": len(report.layers),
        "student_gate": report.gate,
        "student_seconds": report.seconds,
        "student_val_agreement": report.val_agreement,
        "student_val_rescored": report.val_rescored,
        "student_val_changed": report.val_changed,
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def _evaluate(
    model: TextClassifier, corpus: datasets.Dataset, idx: np.ndarray, name: str, threshold: float
) -> Evaluation:
    texts, codes, groups = _excerpts(corpus, idx)
    return evaluate_model(
        model, texts, codes.tolist(), list(corpus.select(idx)["id"]), groups, name=name, review_threshold=threshold
    )


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


def _log_inputs(
    cfg: Config,
    data: CodedData,
    codebook: Codebook,
    data_path: str,
    split: Split,
    extra_data: list[str] | None = None,
    interviews: dict[str, int] | None = None,
) -> None:
    tracking.log_params(cfg.flat())
    if extra_data:
        target = int(data.frame["target"].sum()) if "target" in data.frame else 0
        tracking.log_params({"data.extra_paths": ", ".join(map(str, extra_data)), "data.target_passages": target})
    tracking.log_params(
        {
            "data.resolved_path": str(data_path),
            "codebook.resolved": codebook.source,
            **{f"split.n_{k}": v for k, v in split.sizes().items()},
            **{f"split.interviews_{k}": v for k, v in (interviews or {}).items()},
        }
    )
    tracking.set_tags(
        {
            "model_kind": cfg.model.kind,
            "data_digest": data.digest,
            tracking.KIND_TAG: "train",
            "codebook": f"{codebook.name} v{codebook.version}",
        }
    )
    tracking.log_training_data(data.dataset, source=str(data_path), name=Path(data_path).stem, digest=data.digest)
    tracking.log_text(json.dumps(data.report.to_dict(), indent=2, default=str), "data/data_report.json")
    tracking.log_text(json.dumps(cfg.to_dict(), indent=2), "config/resolved_config.json")


def _write_model_folder(
    model: TextClassifier,
    cfg: Config,
    codebook: Codebook,
    data: CodedData,
    calibration: Calibration,
    test: Evaluation,
    val: Evaluation,
    cv_metrics: dict[str, float],
    run_info: dict[str, Any],
    split: Split,
    model_dir: Path,
    trust: TrustReport | None,
    target_texts: list[str] | None,
) -> None:
    """The model folder's files, written into ``model_dir`` (the staging folder that
    `write_new_folder` renames into place once all are there)."""
    threshold = calibration.review_threshold
    extra = {
        "review_threshold": threshold,
        "target_precision": cfg.calibration.target_precision,
        "calibration": calibration.to_dict(),
        "codebook": codebook.to_dict(),
        "config": cfg.to_dict(),
        "data_digest": data.digest,
        "test_metrics": test.metrics,
        "cv_metrics": cv_metrics,
        "run": run_info,
        **({"trust": trust.to_dict()} if trust is not None else {}),
    }
    model.save(model_dir, extra=json_ready(extra))  # strict JSON: an unmeasured metric is null, not NaN
    codebook.save(model_dir / "codebook.yaml")
    # which excerpts the model learnt from, by text hash: `evaluate` warns when a file repeats them
    # (the target passages, all trained on, among the training ones)
    texts = list(data.dataset["text"])
    parts: dict[str, Sequence[str]] = {
        part: [texts[i] for i in getattr(split, part)] for part in ("train", "val", "test")
    }
    parts["train"] = [*parts["train"], *(target_texts or [])]
    (model_dir / EXCERPTS_FILE).write_text(json.dumps(excerpt_hashes(parts)), encoding="utf-8")
    card = render_model_card(
        cfg,
        codebook,
        data,
        test,
        val,
        cv_metrics,
        run_info,
        threshold,
        model.temperature_,
        getattr(model, "student_report_", None),
        calibration,
        trust,
    )
    (model_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")


def _log_outputs(
    model: TextClassifier,
    val: Evaluation,
    test: Evaluation,
    cv_metrics: dict[str, float],
    oof: pd.DataFrame | None,
    model_dir: Path,
    frame: pd.DataFrame,
    seconds: float,
    calibration: Calibration,
    interviews: dict[str, int],
    tmp: Path,
    register_name: str | None,
    alias: str,
) -> tuple[str, str | None]:
    for record in model.history_:
        step = int(record["epoch"])
        tracking.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=step)
    tracking.log_metrics(
        {
            **test.flat_metrics(),
            **val.flat_metrics("val"),
            **cv_metrics,
            "train_seconds": seconds,
            "review_threshold": calibration.review_threshold,
            "review_threshold_measured": float(calibration.threshold_measured),
            "temperature": model.temperature_,
            "peak_memory_mb": peak_memory_mb(),
            **{f"interviews_{k}": float(v) for k, v in interviews.items()},
            **student_metrics(model),
        }
    )
    tracking.set_tags({"calibration": calibration.summary()})
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
