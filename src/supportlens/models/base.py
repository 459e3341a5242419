"""What every supportlens model shares: scikit-learn's fit / predict / predict_proba, a fixed
column order (the codebook's labels, even for codes absent from training), temperature
calibration, and a folder format that the CLI, the MLflow pyfunc and tests all load the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

# the folder format, here too for the model kinds that save and load one
from supportlens.models.meta import FORMAT_VERSION, META_FILE, ModelLoadError, read_meta  # noqa: F401


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expand_columns(values: np.ndarray, present: Sequence[str], labels: Sequence[str], fill: float) -> np.ndarray:
    """Place columns for ``present`` classes into the full ``labels`` order."""
    out = np.full((values.shape[0], len(labels)), fill, dtype=np.float64)
    index = {label: i for i, label in enumerate(labels)}
    for j, label in enumerate(present):
        out[:, index[label]] = values[:, j]
    return out


def check_sample_weight(sample_weight: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray | None:
    """``sample_weight`` checked against ``n`` rows and scaled to mean 1, or None when it changes
    nothing (None, or every weight equal).

    Only the ratios between weights matter: scaling them all would otherwise change how strongly
    a logistic head is regularised (scikit-learn's penalty is relative to the summed weight), so
    the same weights always give the same model whatever their scale."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must be numbers: {exc}") from exc
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"sample_weight has {w.size} values for {n} training passages")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight must be finite (it holds NaN or infinity)")
    if (w < 0).any():
        raise ValueError(f"sample_weight must not be negative (smallest: {w.min():g})")
    if n and not w.any():
        raise ValueError("sample_weight is zero for every passage")
    if n == 0 or (w == w[0]).all():
        return None
    return w / w.mean()


def warm_start_logistic(
    head: LogisticRegression,
    F: np.ndarray | sparse.spmatrix,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    class_weight: str | None,
) -> LogisticRegression:
    """A copy of the fitted ``head`` trained further on (F, y), starting from its coefficients.

    Its classes are the head's and any new ones in ``y``, so a code absent from the new rows keeps
    its column (what the new rows say about the other codes still moves it). scikit-learn's own
    warm start needs ``y`` to hold every class, so codes missing from ``y`` get one all-zero row
    of weight zero, which adds nothing to the loss; "balanced" class weights are computed here over
    the codes in ``y`` (weighted counts, as scikit-learn does) for the same reason."""
    old = list(head.classes_)
    classes = sorted(set(old) | set(y))
    d = head.coef_.shape[1]
    coef = np.zeros((len(classes), d))
    intercept = np.zeros(len(classes))
    rows = [classes.index(c) for c in old]
    if head.coef_.shape[0] == 1:  # binary head: one row scores old[1] against old[0]
        coef[rows[0]], coef[rows[1]] = -head.coef_[0] / 2, head.coef_[0] / 2
        intercept[rows[0]], intercept[rows[1]] = -head.intercept_[0] / 2, head.intercept_[0] / 2
    else:
        coef[rows], intercept[rows] = head.coef_, head.intercept_
    if len(classes) == 2:  # back to scikit-learn's binary form
        coef, intercept = coef[1:] - coef[:1], intercept[1:] - intercept[:1]

    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).copy()
    if class_weight == "balanced":
        present = sorted(set(y))
        mass = {c: w[y == c].sum() for c in present}
        w = w * np.array([w.sum() / (len(present) * mass[c]) for c in y])
    elif class_weight is not None:
        raise ValueError(f"class_weight must be 'balanced' or None, got {class_weight!r}")
    missing = [c for c in classes if c not in set(y)]
    if missing:
        pad = sparse.csr_matrix((len(missing), d)) if sparse.issparse(F) else np.zeros((len(missing), d))
        F = sparse.vstack([F, pad], format="csr") if sparse.issparse(F) else np.vstack([F, pad])
        y = np.concatenate([np.asarray(y, dtype=object), np.asarray(missing, dtype=object)])
        w = np.concatenate([w, np.zeros(len(missing))])
    out = clone(head).set_params(warm_start=True, class_weight=None)
    out.coef_, out.intercept_ = coef, intercept
    return out.fit(F, y, sample_weight=w)


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Base class. Subclasses implement ``_fit``, ``_logits``, ``_save`` and ``_load``.

    ``predict_proba`` returns calibrated probabilities: the raw logits divided by
    ``temperature_`` (1.0 until :meth:`calibrate` is called).
    """

    kind: ClassVar[str] = "base"

    # -- scikit-learn API -------------------------------------------------------------------
    def fit(
        self,
        X: Sequence[str],
        y: Sequence[str] | np.ndarray,
        X_val: Sequence[str] | None = None,
        y_val: Sequence[str] | np.ndarray | None = None,
        sample_weight: Sequence[float] | np.ndarray | None = None,
    ) -> TextClassifier:
        """Fit on (X, y), early-stopping on (X_val, y_val) where the kind does.

        ``sample_weight``: one non-negative weight per passage of X; only their ratios matter
        (`check_sample_weight`). Every kind's loss weighs each passage by it, on top of its class
        weighting: "balanced" class weights are computed from the weighted counts, so weights
        move emphasis between passages of a code more than between codes."""
        X, y = list(X), np.asarray(y, dtype=object)
        self._check_labels(y)
        weights = check_sample_weight(sample_weight, len(X))
        self.classes_ = np.asarray(self.labels, dtype=object)
        self.temperature_ = 1.0
        self.history_: list[dict[str, float]] = []
        self._fit(
            X,
            y,
            None if X_val is None else list(X_val),
            None if y_val is None else np.asarray(y_val, dtype=object),
            sample_weight=weights,
        )
        return self

    def continue_fit(
        self,
        X: Sequence[str],
        y: Sequence[str] | np.ndarray,
        sample_weight: Sequence[float] | np.ndarray | None = None,
        X_val: Sequence[str] | None = None,
        y_val: Sequence[str] | np.ndarray | None = None,
        epochs: int = 1,
    ) -> TextClassifier:
        """Train this fitted (or loaded) model further on (X, y), starting from its current state.

        For adapting to a researcher's own passages: pass them with a replayed sample of the
        original training data, so that what the model knew is not overwritten. ``epochs`` counts
        for kinds trained in epochs (finetune). Codes absent from X keep their columns. The
        temperature goes back to 1.0, since the old one belongs to the old model: calibrate again.
        ``history_`` gains records marked ``continued``."""
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"continue_fit needs a fitted {self.kind} model: fit or load one first")
        if not isinstance(epochs, int | np.integer) or epochs < 1:
            raise ValueError(f"epochs must be a whole number of at least 1, got {epochs!r}")
        X, y = list(X), np.asarray(y, dtype=object)
        if not X:
            raise ValueError("continue_fit needs at least one passage")
        self._check_labels(y)
        weights = check_sample_weight(sample_weight, len(X))
        self.history_ = list(getattr(self, "history_", None) or [])
        self._continue_fit(
            X,
            y,
            weights,
            None if X_val is None else list(X_val),
            None if y_val is None else np.asarray(y_val, dtype=object),
            int(epochs),
        )
        self.temperature_ = 1.0
        self.__dict__.pop("temperature_fit_", None)
        return self

    def _check_labels(self, y: np.ndarray) -> None:
        unknown = sorted(set(y) - set(self.labels))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the model's labels {self.labels}")

    def _next_epoch(self) -> int:
        """The epoch number a continued training's first record takes (records stay in order)."""
        return 1 + max((int(r.get("epoch", 0)) for r in self.history_), default=0)

    def decision_function(self, X: Sequence[str]) -> np.ndarray:
        """Uncalibrated logits, one column per label."""
        return self._logits(list(X))

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return softmax(self.decision_function(X) / self.temperature_)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # -- calibration ------------------------------------------------------------------------
    def calibrate(self, X: Sequence[str], y: Sequence[str] | np.ndarray) -> float:
        """Fit the temperature on held-out data (minimises its negative log-likelihood).

        What the search found, and why its optimum was not used if it was not, stays in
        ``temperature_fit_`` (a `calibration.TemperatureFit`) for the run's record."""
        from supportlens.calibration import temperature_fit

        logits = self.decision_function(X)
        index = {label: i for i, label in enumerate(self.classes_)}
        self.temperature_fit_ = temperature_fit(logits, np.array([index[v] for v in y]))
        self.temperature_ = self.temperature_fit_.temperature
        return self.temperature_

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save(path)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "params": self.get_params(deep=False),
            "classes": list(self.classes_),
            "temperature": float(self.temperature_),
            "history": self.history_,
            **(extra or {}),
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        return path

    # subclasses
    def _fit(
        self,
        X: list[str],
        y: np.ndarray,
        X_val: list[str] | None,
        y_val: np.ndarray | None,
        sample_weight: np.ndarray | None = None,
    ) -> None:
        raise NotImplementedError

    def _continue_fit(
        self,
        X: list[str],
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        X_val: list[str] | None,
        y_val: np.ndarray | None,
        epochs: int,
    ) -> None:
        raise NotImplementedError(f"model kind {self.kind!r} cannot continue training")

    def _logits(self, X: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _save(self, path: Path) -> None:
        raise NotImplementedError

    def _load(self, path: Path) -> None:
        raise NotImplementedError
