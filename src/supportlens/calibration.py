"""Calibrated confidence: temperature scaling, expected calibration error, review thresholds.

Coders act on the confidence ("accept the sure ones, check the rest"), so it has to mean what it
says: a temperature fitted on validation interviews, and a review threshold chosen there to reach
a stated precision.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises validation NLL; 1.0 if there is too little data."""
    logits = np.asarray(logits, dtype=np.float64)
    if len(y) < 5 or not np.isfinite(logits).any():
        return 1.0
    # absent classes carry -inf logits; keep them out of the optimisation's arithmetic
    logits = np.where(np.isfinite(logits), logits, -1e4)
    result = minimize_scalar(lambda t: _nll(logits, y, t), bounds=(0.05, 20.0), method="bounded")
    return float(result.x) if result.success else 1.0


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-width confidence bins (the usual definition)."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability_table(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Per bin: mean confidence, accuracy and count (for the reliability diagram)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (confidence > lo) & (confidence <= hi)
        rows.append({
            "bin_low": float(lo), "bin_high": float(hi), "count": int(mask.sum()),
            "confidence": float(confidence[mask].mean()) if mask.any() else float("nan"),
            "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
        })
    return rows


def review_threshold(confidence: np.ndarray, correct: np.ndarray, target_precision: float) -> float:
    """The lowest confidence threshold whose accepted predictions reach ``target_precision``.

    Predictions at or above the threshold are accepted; the rest are flagged ``needs_review``.
    Returns 1.0 (review everything) when no threshold reaches the target.
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        return 1.0
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    best = 1.0
    # walk thresholds from high to low; keep the lowest one that still meets the target
    for i in range(len(order)):
        if i + 1 < len(order) and conf_sorted[i + 1] == conf_sorted[i]:
            continue  # a threshold cannot split tied confidences
        if precision[i] >= target_precision:
            best = float(conf_sorted[i])
    return best


def coverage_at_precision(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """Share of passages that can be accepted while keeping precision >= target."""
    threshold = review_threshold(confidence, correct, target)
    if threshold >= 1.0 and not (np.asarray(confidence) >= 1.0).any():
        return 0.0
    return float((np.asarray(confidence) >= threshold).mean())
