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
from sklearn.base import BaseEstimator, ClassifierMixin

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
    ) -> TextClassifier:
        X, y = list(X), np.asarray(y, dtype=object)
        unknown = sorted(set(y) - set(self.labels))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the model's labels {self.labels}")
        self.classes_ = np.asarray(self.labels, dtype=object)
        self.temperature_ = 1.0
        self.history_: list[dict[str, float]] = []
        self._fit(
            X, y, None if X_val is None else list(X_val), None if y_val is None else np.asarray(y_val, dtype=object)
        )
        return self

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
    def _fit(self, X: list[str], y: np.ndarray, X_val: list[str] | None, y_val: np.ndarray | None) -> None:
        raise NotImplementedError

    def _logits(self, X: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _save(self, path: Path) -> None:
        raise NotImplementedError

    def _load(self, path: Path) -> None:
        raise NotImplementedError
