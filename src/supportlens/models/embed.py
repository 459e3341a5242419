"""Frozen sentence embeddings (mean-pooled encoder) + class-weighted logistic regression."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from .base import TextClassifier, expand_columns
from .encoders import batched_apply, load_encoder, mean_pool


class EmbedLogReg(TextClassifier):
    kind = "embed_logreg"

    def __init__(self, labels: list[str], pretrained: str = "sentence-transformers/all-MiniLM-L6-v2",
                 max_length: int = 256, C: float = 2.0, batch_size: int = 32,
                 class_weight: str | None = "balanced", allow_download: bool = False, seed: int = 13):
        self.labels = labels
        self.pretrained = pretrained
        self.max_length = max_length
        self.C = C
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.allow_download = allow_download
        self.seed = seed

    def embed(self, X: list[str]) -> np.ndarray:
        if not hasattr(self, "encoder_"):
            self.tokenizer_, self.encoder_ = load_encoder(self.pretrained, self.allow_download)
        return batched_apply(self.encoder_, self.tokenizer_, X, self.batch_size, self.max_length, mean_pool,
                             device=getattr(self, "device", "cpu"))

    def _fit(self, X, y, X_val, y_val) -> None:
        self.head_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=3000,
                                        random_state=self.seed).fit(self.embed(X), y)

    def _logits(self, X: list[str]) -> np.ndarray:
        log_p = self.head_.predict_log_proba(self.embed(X))
        return expand_columns(log_p, list(self.head_.classes_), self.labels, fill=-np.inf)

    def to_device(self, device: str) -> "EmbedLogReg":
        self.device = device
        self.encoder_.to(device)
        return self

    def _save(self, path: Path) -> None:
        # the encoder travels with the model so the folder (and the MLflow model) is self-contained
        self.encoder_.save_pretrained(path / "encoder")
        self.tokenizer_.save_pretrained(path / "encoder")
        joblib.dump(self.head_, path / "head.joblib")

    def _load(self, path: Path) -> None:
        self.tokenizer_, self.encoder_ = load_encoder(str(path / "encoder"))
        self.head_ = joblib.load(path / "head.joblib")
