"""Fit a model and calibrate it on validation data (:func:`fit_and_calibrate`), with optional
reuse of fits.

Comparing configs (the experiment harness) fits the same member models again and again: an
ensemble of TF-IDF, embedding and fine-tuned models needs exactly the fits that those three
configs already made on the same folds. Inside :func:`reuse_fits`, a fit is keyed by everything
that determines it (the model-related config and the exact training and validation data) and
made once."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from supportlens.calibration import Calibration, review_threshold, validation_shortfall
from supportlens.models.base import TextClassifier, check_sample_weight
from supportlens.models.registry import build_model

_FITS: dict[str, tuple[Any, float]] | None = None
MODEL_SECTIONS = (
    "seed",
    "codebook",
    "model",
    "tfidf",
    "embed",
    "train",
    "prior",
    "setfit",
    "ensemble",
    "calibration",
    "adapt",
    "llm",
)


@contextmanager
def reuse_fits() -> Iterator[None]:
    """Within this block identical fits are made once and shared (models are not copied)."""
    global _FITS
    outer = _FITS
    _FITS = {} if outer is None else outer
    try:
        yield
    finally:
        _FITS = outer


def fit_key(
    cfg,
    X: Sequence[str],
    y: Sequence[str] | np.ndarray,
    X_val: Sequence[str],
    y_val: Sequence[str] | np.ndarray,
    sample_weight: Sequence[float] | np.ndarray | None = None,
) -> str:
    """What determines a fit, hashed. Weights count as the model sees them (`check_sample_weight`):
    weights that differ only in scale, or are all equal (as None), make the same model and key."""
    config = {k: v for k, v in cfg.to_dict().items() if k in MODEL_SECTIONS}
    h = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode())
    for part in (X, y, ["--val--"], X_val, y_val):
        for item in part:
            h.update(str(item).encode())
            h.update(b"\x1f")
    weights = check_sample_weight(sample_weight, len(X))
    if weights is not None:  # unweighted fits keep the key they always had
        h.update(b"--weights--")
        h.update(np.ascontiguousarray(weights, dtype=np.float64).tobytes())
    return h.hexdigest()


def fit_model(
    cfg,
    labels: list[str],
    X: Sequence[str],
    y: Sequence[str] | np.ndarray,
    X_val: Sequence[str],
    y_val: Sequence[str] | np.ndarray,
    sample_weight: Sequence[float] | np.ndarray | None = None,
) -> tuple[TextClassifier, float]:
    """(model, seconds): ``build_model(cfg)`` fitted on X (early stopping on X_val), each passage
    of X weighted by ``sample_weight``, and, when ``cfg.calibration.temperature``, its temperature
    fitted on X_val (unweighted); made once inside :func:`reuse_fits`. The step that
    :func:`fit_and_calibrate` and an ensemble's members share: whether the validation data are
    enough to calibrate on is for the caller to have decided."""
    fits = _FITS  # inside reuse_fits(): the fits made so far (None outside it: nothing is kept)
    key = fit_key(cfg, X, y, X_val, y_val, sample_weight) if fits is not None else ""
    if fits is not None and key in fits:
        return fits[key]
    started = time.perf_counter()
    model = build_model(cfg, labels)
    model.fit(
        list(X),
        np.asarray(y, dtype=object),
        list(X_val),
        np.asarray(y_val, dtype=object),
        sample_weight=sample_weight,
    )
    seconds = time.perf_counter() - started
    if cfg.calibration.temperature:
        model.calibrate(list(X_val), np.asarray(y_val, dtype=object))
    if fits is not None:
        fits[key] = (model, seconds)
    return model, seconds


def fit_and_calibrate(
    cfg,
    labels: list[str],
    X: Sequence[str],
    y: Sequence[str] | np.ndarray,
    X_val: Sequence[str],
    y_val: Sequence[str] | np.ndarray,
    val_groups: Sequence[str] | None = None,
    sample_weight: Sequence[float] | np.ndarray | None = None,
) -> tuple[TextClassifier, Calibration, float]:
    """Fit on X (weighted by ``sample_weight``), early-stop and calibrate on X_val; returns
    (model, calibration, seconds).

    Calibration is the temperature (when the config asks for it) and the review threshold that
    reaches ``cfg.calibration.target_precision`` on X_val. ``val_groups`` are the validation
    excerpts' interviews; None when the data have no interview column. On too little validation
    data (`calibration.validation_shortfall`) nothing is fitted to it: no temperature (an
    ensemble's members' neither) and no review threshold, which is then 1.0 and not measured, so
    that every passage goes to review; ``Calibration.notes`` says why."""
    shortfall = calibration_shortfall(X_val, val_groups)
    fit_cfg = cfg
    if shortfall and cfg.calibration.temperature:
        fit_cfg = dataclasses.replace(cfg, calibration=dataclasses.replace(cfg.calibration, temperature=False))
    model, seconds = fit_model(fit_cfg, labels, X, y, X_val, y_val, sample_weight)
    return model, validation_calibration(cfg, model, X_val, y_val, val_groups, shortfall), seconds


def calibration_shortfall(X_val: Sequence[str], val_groups: Sequence[str] | None) -> str | None:
    """Why X_val is too little to calibrate on (`calibration.validation_shortfall`), or None."""
    grouped = val_groups is not None
    return validation_shortfall(len(X_val), len(set(val_groups)) if val_groups is not None else 0, grouped)


def validation_calibration(
    cfg,
    model: TextClassifier,
    X_val: Sequence[str],
    y_val: Sequence[str] | np.ndarray,
    val_groups: Sequence[str] | None,
    shortfall: str | None,
) -> Calibration:
    """The record of ``model``'s calibration on X_val: the temperature its ``calibrate`` found (when
    the config asks for one) and the review threshold that reaches the target precision there; with
    a ``shortfall``, neither (threshold 1.0, not measured) and why. Shared by a fresh fit
    (:func:`fit_and_calibrate`) and a model trained further or blended after one (`training.adapt`)."""
    grouped = val_groups is not None
    n_val_groups = len(set(val_groups)) if val_groups is not None else None
    if shortfall:
        return Calibration(model.temperature_, False, 1.0, False, len(X_val), n_val_groups, [shortfall], grouped)
    notes, fitted = [], False
    found = getattr(model, "temperature_fit_", None) if cfg.calibration.temperature else None
    if found is not None:  # what the model's calibrate() found, and why it kept T = 1 if it did
        fitted = found.optimum is not None and found.note is None
        notes += [found.note] if found.note else []
    proba = model.predict_proba(list(X_val))
    correct = np.asarray(model.classes_)[proba.argmax(1)] == np.asarray(y_val, dtype=object)
    threshold = review_threshold(proba.max(1), correct, cfg.calibration.target_precision)
    return Calibration(model.temperature_, fitted, threshold, True, len(X_val), n_val_groups, notes, grouped)
