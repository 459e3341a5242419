"""Ensembles (model.kind = ensemble): several calibrated models, one set of probabilities.

TF-IDF, frozen embeddings and fine-tuning fail on different passages of real speech, so their
combination transfers better than any one of them. Each member is a full supportlens config,
fitted on the same training interviews and temperature-calibrated on the validation interviews.
``mean`` averages the calibrated probabilities (optionally weighted); ``stack`` fits a small
logistic regression on the members' validation log-probabilities. Members are saved in
sub-folders, so the ensemble folder is self-contained like every other model folder; members whose
frozen encoders are identical keep one copy of it between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from supportlens.config import config_from_dict
from supportlens.models.base import TextClassifier, expand_columns
from supportlens.models.encoders import embedding_cache, share_identical_encoders
from supportlens.models.registry import load_classifier


class EnsembleClassifier(TextClassifier):
    kind = "ensemble"

    def __init__(
        self,
        labels: list[str],
        members: list[dict[str, Any]] | None = None,
        method: str = "mean",
        weights: list[float] | None = None,
        seed: int = 13,
    ):
        self.labels = labels
        self.members = members
        self.method = method
        self.weights = weights
        self.seed = seed

    def _member_configs(self):
        return [config_from_dict(m) for m in self.members or []]

    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        """Fits every member with ``sample_weight``; the stacker, fitted on validation data, is not weighted."""
        from supportlens.models.fitting import fit_model

        if X_val is None or len(X_val) == 0:
            raise ValueError("an ensemble needs validation data to calibrate its members")
        configs = self._member_configs()
        if len(configs) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members_ = [fit_model(c, self.labels, X, y, X_val, y_val, sample_weight)[0] for c in configs]
        self.stacker_ = None
        if self.method == "stack":
            self.stacker_ = LogisticRegression(
                C=1.0, max_iter=3000, class_weight="balanced", random_state=self.seed
            ).fit(self._stack_features(X_val), y_val)
        self.history_ = [
            {"epoch": 1, **{f"member{i}_temperature": float(m.temperature_) for i, m in enumerate(self.members_)}}
        ]

    def _continue_fit(self, X, y, sample_weight, X_val, y_val, epochs) -> None:
        """Continue every member. With validation data, each member is calibrated on it again
        (where its config asks for a temperature, as when fitting) and a stacker is refitted;
        without, members keep the temperatures they had, the closest estimate there is."""
        records = {}
        for i, (member, cfg) in enumerate(zip(self.members_, self._member_configs())):
            temperature = member.temperature_
            member.continue_fit(X, y, sample_weight, X_val, y_val, epochs)
            if X_val is not None and len(X_val) and cfg.calibration.temperature:
                member.calibrate(X_val, y_val)
            elif X_val is None or not len(X_val):
                member.temperature_ = temperature
            records[f"member{i}_temperature"] = float(member.temperature_)
        if self.stacker_ is not None and X_val is not None and len(X_val):
            self.stacker_ = LogisticRegression(
                C=1.0, max_iter=3000, class_weight="balanced", random_state=self.seed
            ).fit(self._stack_features(X_val), y_val)
        self.history_.append({"epoch": self._next_epoch(), "continued": 1.0, **records})

    def _stack_features(self, X: list[str]) -> np.ndarray:
        return np.hstack([np.log(np.clip(m.predict_proba(X), 1e-9, 1.0)) for m in self.members_])

    def _logits(self, X: list[str]) -> np.ndarray:
        # members with the same frozen encoder embed each passage once between them
        with embedding_cache():
            return self._mixed_logits(X)

    def _mixed_logits(self, X: list[str]) -> np.ndarray:
        if self.stacker_ is not None:
            log_p = self.stacker_.predict_log_proba(self._stack_features(X))
            return expand_columns(log_p, list(self.stacker_.classes_), self.labels, fill=-np.inf)
        weights = np.asarray(self.weights or [1.0] * len(self.members_), dtype=float)
        weights = weights / weights.sum()
        mixed = sum(w * m.predict_proba(X) for w, m in zip(weights, self.members_))
        return np.log(np.clip(mixed, 1e-12, 1.0))

    def to_device(self, device: str) -> EnsembleClassifier:
        for m in self.members_:
            if hasattr(m, "to_device"):
                m.to_device(device)
        return self

    def _save(self, path: Path) -> None:
        folders = [path / "members" / str(i) for i in range(len(self.members_))]
        for member, folder in zip(self.members_, folders):
            member.save(folder)
        share_identical_encoders(folders)  # the default's two MiniLM members: one copy on disk
        joblib.dump(self.stacker_, path / "stacker.joblib")

    def _load(self, path: Path) -> None:
        folders = sorted((path / "members").iterdir(), key=lambda p: int(p.name))
        self.members_ = [load_classifier(folder) for folder in folders]
        self.stacker_ = joblib.load(path / "stacker.joblib")
