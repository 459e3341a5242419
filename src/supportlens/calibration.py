"""Calibrated confidence: temperature scaling, expected calibration error, review thresholds.

Coders act on the confidence ("accept the sure ones, check the rest"), so it has to mean what it
says: a temperature fitted on validation interviews, and a review threshold chosen there to reach
a stated precision. Both are estimates, and on a validation split of a handful of excerpts they
are noise that looks like certainty: below the minimum here neither is fitted, and the reason is
recorded instead (:class:`Calibration`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

TEMPERATURE_BOUNDS = (0.05, 20.0)  # the search range; an optimum on its edge is not an estimate
# The least validation data to calibrate on. The threshold is where the measured precision reaches
# the target; from n excerpts that precision has a standard error near sqrt(0.8 * 0.2 / n): 0.07
# at n = 30, 0.16 at n = 6. Excerpts of one interview share a speaker and turns of phrase, so one
# or two interviews say little about the next one's: three at the least.
MIN_VAL_EXCERPTS = 30
MIN_VAL_INTERVIEWS = 3


def plural(n: int, word: str) -> str:
    """'1 interview', '3 interviews'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def validation_shortfall(n_excerpts: int, n_interviews: int, grouped: bool = True) -> str | None:
    """Why a validation split this small cannot calibrate confidence; None when it can.

    ``grouped`` False: the data have no interview column, so nothing tells which excerpts share an
    interview (``n_interviews`` then counts excerpts and is ignored); only the excerpt minimum is
    checked, and the reason says that the interviews behind them are unknown."""
    if not grouped:
        if n_excerpts >= MIN_VAL_EXCERPTS:
            return None
        return (
            f"the validation split holds {plural(n_excerpts, 'excerpt')}; fitting a temperature and a "
            f"review threshold needs at least {MIN_VAL_EXCERPTS} excerpts (and {MIN_VAL_INTERVIEWS} "
            "interviews, which these data cannot show: they have no interview column)"
        )
    if n_excerpts >= MIN_VAL_EXCERPTS and n_interviews >= MIN_VAL_INTERVIEWS:
        return None
    return (
        f"the validation split holds {plural(n_interviews, 'interview')} and "
        f"{plural(n_excerpts, 'excerpt')}; fitting a temperature and a review threshold needs at "
        f"least {MIN_VAL_INTERVIEWS} interviews and {MIN_VAL_EXCERPTS} excerpts"
    )


def flags_for_review(confidence: np.ndarray, threshold: float, measured: bool = True) -> np.ndarray:
    """``needs_review`` per passage: confidence below a measured threshold; every passage when no
    threshold was measured (its stored 1.0 would let a confidence of exactly 1.0 through, which a
    float64 softmax gives for a logit gap of about 37)."""
    confidence = np.asarray(confidence, dtype=float)
    return confidence < threshold if measured else np.ones(confidence.shape, dtype=bool)


def threshold_measured(model) -> bool:
    """False when training recorded that the review threshold was never measured (too little
    validation data): every passage is then flagged. Models from before that record: True."""
    return (getattr(model, "meta_", {}).get("calibration") or {}).get("threshold_measured") is not False


@dataclass
class Calibration:
    """How a model's confidence was calibrated on validation data, and what was left unfitted.

    ``threshold_measured`` is False when the validation data were too few to choose a review
    threshold: ``review_threshold`` is then 1.0, so every passage is flagged for review.
    ``notes`` say why a fit was not used (empty when both were). ``grouped`` False: the data had
    no interview column, and ``val_interviews`` is None (their interviews are unknown)."""

    temperature: float
    temperature_fitted: bool  # False: T = 1, the model's own probabilities
    review_threshold: float
    threshold_measured: bool
    val_excerpts: int
    val_interviews: int | None
    notes: list[str] = field(default_factory=list)
    grouped: bool = True
    # "validation": the authored validation split; "target": cross-fitted predictions of passages
    # coded on the researcher's own corpus (training.adapt, `adapt.calibrate_on_target`)
    on: str = "validation"

    def validation_text(self) -> str:
        """'32 validation excerpts from 4 interviews' (or, ungrouped, '32 validation excerpts');
        calibrated on the target corpus, '46 coded passages from 6 interviews of your corpus
        (cross-fitted)'."""
        unit = "coded passage" if self.on == "target" else "validation excerpt"
        text = f"{plural(self.val_excerpts, unit)}"
        if self.grouped and self.val_interviews is not None:
            text += f" from {plural(self.val_interviews, 'interview')}"
        return text + (" of your corpus (cross-fitted)" if self.on == "target" else "")

    def summary(self) -> str:
        """One line for the run's record: what was fitted on validation, or why not."""
        if not self.threshold_measured:
            return "not calibrated: " + "; ".join(self.notes)
        fitted = (
            f"temperature {self.temperature:.2f} and review threshold {self.review_threshold:.4g} fitted"
            if self.temperature_fitted
            else f"review threshold {self.review_threshold:.4g} fitted (no temperature: T = 1)"
        )
        return f"{fitted} on {self.validation_text()}" + "".join(f"; {note}" for note in self.notes)

    def to_dict(self) -> dict:
        return asdict(self)


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float  # the one to use
    optimum: float | None = None  # what the search found; None when it did not run
    note: str | None = None  # why ``temperature`` is 1.0 rather than the optimum


def temperature_fit(logits: np.ndarray, y: np.ndarray) -> TemperatureFit:
    """The temperature that minimises validation NLL, searched in ``TEMPERATURE_BOUNDS``.

    1.0 (the model's own probabilities) when there is too little data, and when the optimum lies
    at the lower bound: validation then holds (almost) no mistake to learn from, the likelihood
    keeps rising as the temperature falls, and the bound would only sharpen every confidence
    towards 1."""
    logits = np.asarray(logits, dtype=np.float64)
    if len(y) < 5 or not np.isfinite(logits).any():
        return TemperatureFit(1.0)
    # absent classes carry -inf logits; keep them out of the optimisation's arithmetic
    logits = np.where(np.isfinite(logits), logits, -1e4)
    low, high = TEMPERATURE_BOUNDS
    result = minimize_scalar(lambda t: _nll(logits, y, t), bounds=(low, high), method="bounded")
    if not result.success:
        return TemperatureFit(1.0)
    optimum = float(result.x)
    # (an optimum at the upper bound is kept: the model is near chance on validation, and the
    # flattened probabilities it gives send every passage to review, which is what it deserves)
    # at the bound: the likelihood is still rising there (the search stops short of the edge)
    if optimum <= low * 1.01 or _nll(logits, y, low) <= float(result.fun):
        return TemperatureFit(
            1.0,
            optimum,
            (
                f"the temperature fit on validation ran to the lower bound of its search (T = {low}): the "
                "model made (almost) no mistake there, so validation cannot say how sure it should be; "
                "its own probabilities are used (T = 1)"
            ),
        )
    return TemperatureFit(optimum, optimum)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature to use (see :func:`temperature_fit`); 1.0 if there is too little data."""
    return temperature_fit(logits, y).temperature


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
        rows.append(
            {
                "bin_low": float(lo),
                "bin_high": float(hi),
                "count": int(mask.sum()),
                "confidence": float(confidence[mask].mean()) if mask.any() else float("nan"),
                "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
            }
        )
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
