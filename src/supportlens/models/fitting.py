"""Fit a model and calibrate its temperature on validation data, with optional reuse of fits.

Comparing configs (the experiment harness) fits the same member models again and again: an
ensemble of TF-IDF, embedding and fine-tuned models needs exactly the fits that those three
configs already made on the same folds. Inside :func:`reuse_fits`, a fit is keyed by everything
that determines it (the model-related config and the exact training and validation data) and
made once."""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

_FITS: dict[str, tuple[Any, float]] | None = None
MODEL_SECTIONS = ("seed", "codebook", "model", "tfidf", "embed", "train", "prior", "setfit", "ensemble",
                  "calibration")


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


def fit_key(cfg, X: Sequence[str], y: Sequence[str], X_val: Sequence[str], y_val: Sequence[str]) -> str:
    config = {k: v for k, v in cfg.to_dict().items() if k in MODEL_SECTIONS}
    h = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode())
    for part in (X, y, ["--val--"], X_val, y_val):
        for item in part:
            h.update(str(item).encode())
            h.update(b"\x1f")
    return h.hexdigest()


def fit_calibrated(cfg, labels: list[str], X: Sequence[str], y: Sequence[str], X_val: Sequence[str],
                   y_val: Sequence[str]):
    """(model, seconds): ``build_model(cfg)`` fitted on X (early stopping on X_val) and, when the
    config asks for it, temperature-calibrated on X_val."""
    from supportlens.models import build_model

    key = fit_key(cfg, X, y, X_val, y_val) if _FITS is not None else None
    if key is not None and key in _FITS:
        return _FITS[key]
    started = time.perf_counter()
    model = build_model(cfg, labels)
    model.fit(list(X), np.asarray(y, dtype=object), list(X_val), np.asarray(y_val, dtype=object))
    seconds = time.perf_counter() - started
    if cfg.calibration.temperature:
        model.calibrate(list(X_val), np.asarray(y_val, dtype=object))
    if key is not None:
        _FITS[key] = (model, seconds)
    return model, seconds
