"""Frozen sentence embeddings (mean-pooled encoder) + class-weighted logistic regression,
optionally informed by the codebook (see :mod:`supportlens.models.prior`)."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from supportlens.models.base import TextClassifier, expand_columns, warm_start_logistic
from supportlens.models.encoders import (
    batched_apply,
    cached_embed,
    encoder_digest,
    load_encoder,
    mean_pool,
    saved_encoder,
    shared_encoder,
)
from supportlens.models.prior import PRIOR_MODES, CodebookSimilarity


class EmbedLogReg(TextClassifier):
    kind = "embed_logreg"
    # a frozen encoder gives the same vector for the same text, so embeddings may be cached
    frozen_encoder = True

    def __init__(
        self,
        labels: list[str],
        pretrained: str = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 256,
        C: float = 2.0,
        batch_size: int = 32,
        class_weight: str | None = "balanced",
        allow_download: bool = False,
        seed: int = 13,
        prior_mode: str = "off",
        prior_texts: dict[str, list[str]] | None = None,
        prior_weight: float = 1.0,
        prior_temperature: float = 0.05,
        prior_top_k: int = 3,
    ):
        self.labels = labels
        self.pretrained = pretrained
        self.max_length = max_length
        self.C = C
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.allow_download = allow_download
        self.seed = seed
        self.prior_mode = prior_mode
        self.prior_texts = prior_texts
        self.prior_weight = prior_weight
        self.prior_temperature = prior_temperature
        self.prior_top_k = prior_top_k

    # -- embeddings -------------------------------------------------------------------------
    def _ensure_encoder(self) -> None:
        if not hasattr(self, "encoder_"):
            self.tokenizer_, self.encoder_ = load_encoder(self.pretrained, self.allow_download)

    def _encode(self, X: list[str]) -> np.ndarray:
        return batched_apply(
            self.encoder_,
            self.tokenizer_,
            X,
            self.batch_size,
            self.max_length,
            mean_pool,
            device=getattr(self, "device", "cpu"),
        )

    def embed(self, X: list[str]) -> np.ndarray:
        self._ensure_encoder()
        if self.frozen_encoder:
            key = (getattr(self, "cache_key_", self.pretrained), self.max_length)
            return cached_embed(key, X, self._encode)
        return self._encode(X)

    # -- codebook prior ---------------------------------------------------------------------
    def _check_prior(self) -> None:
        if self.prior_mode not in PRIOR_MODES:
            raise ValueError(f"prior_mode must be one of {PRIOR_MODES}; got {self.prior_mode!r}")
        if self.prior_mode != "off" and not self.prior_texts:
            raise ValueError(f"prior_mode {self.prior_mode!r} needs the codebook's prior_texts")

    def _codebook_similarity(self) -> CodebookSimilarity:
        """The codebook prior's scorer, its sentences embedded by this model's encoder: the one
        construction that prior modes and the zero-shot `CodebookPriorClassifier` share."""
        assert self.prior_texts is not None  # both callers refused a model without them first
        return CodebookSimilarity(self.labels, self.prior_texts, self.prior_top_k).fit(self.embed)

    def _fit_prior(self) -> None:
        self.prior_ = self._codebook_similarity() if self.prior_mode != "off" else None

    def _features(self, E: np.ndarray, sims: np.ndarray | None) -> np.ndarray:
        if self.prior_mode != "features":
            return E
        return np.hstack([E, self.prior_weight * (sims - self.sim_mean_) / self.sim_sd_])

    # -- TextClassifier ---------------------------------------------------------------------
    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        self._check_prior()
        self._ensure_encoder()
        self._fit_prior()
        self._fit_head(self.embed(X), y, sample_weight)

    def _fit_head(self, E: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        sims = self.prior_.similarities(E) if self.prior_ is not None else None
        if sims is not None:
            self.sim_mean_, self.sim_sd_ = sims.mean(0), sims.std(0) + 1e-6
        self.head_ = LogisticRegression(
            C=self.C, class_weight=self.class_weight, max_iter=3000, random_state=self.seed
        ).fit(self._features(E, sims), y, sample_weight=sample_weight)

    def _continue_fit(self, X, y, sample_weight, X_val, y_val, epochs) -> None:
        """Warm-start the head on the embeddings of X; the encoder, the codebook prior and the
        prior features' scaling stay as fitted (the head's coefficients are in their units)."""
        self._ensure_encoder()
        E = self.embed(X)
        prior = getattr(self, "prior_", None)
        features = self._features(E, prior.similarities(E) if prior is not None else None)
        self.head_ = warm_start_logistic(self.head_, features, y, sample_weight, self.class_weight)
        self.history_.append({"epoch": self._next_epoch(), "continued": 1.0, "continued_rows": float(len(X))})

    def _logits(self, X: list[str]) -> np.ndarray:
        E = self.embed(X)
        prior = getattr(self, "prior_", None)
        sims = prior.similarities(E) if prior is not None else None
        log_p = self.head_.predict_log_proba(self._features(E, sims))
        logits = expand_columns(log_p, list(self.head_.classes_), self.labels, fill=-np.inf)
        if self.prior_mode == "product":
            assert sims is not None  # a product-mode model always fits its prior
            logits = logits + self.prior_weight * sims / self.prior_temperature
        return logits

    def to_device(self, device: str) -> EmbedLogReg:
        self.device = device
        self.encoder_.to(device)
        return self

    def _save(self, path: Path) -> None:
        # the encoder travels with the model so the folder (and the MLflow model) is self-contained
        self.encoder_.save_pretrained(path / "encoder")
        self.tokenizer_.save_pretrained(path / "encoder")
        joblib.dump(
            {
                "head": self.head_,
                "prior": getattr(self, "prior_", None),
                "sim_mean": getattr(self, "sim_mean_", None),
                "sim_sd": getattr(self, "sim_sd_", None),
            },
            path / "head.joblib",
        )

    def _load(self, path: Path) -> None:
        # vectors are shared by content, never by name: a saved copy may differ from the name it came
        # from, while identical copies (an ensemble's members) embed each passage once between them
        folder = saved_encoder(path)
        digest = encoder_digest(folder)
        self.cache_key_ = "sha256:" + digest
        if self.frozen_encoder:  # identical frozen copies are also loaded once
            self._shared_encoder = shared_encoder(digest, folder)
            self.tokenizer_, self.encoder_ = self._shared_encoder.tokenizer, self._shared_encoder.model
        else:
            self.tokenizer_, self.encoder_ = load_encoder(str(folder))
        saved = joblib.load(path / "head.joblib")
        if isinstance(saved, dict):
            self.head_, self.prior_ = saved["head"], saved["prior"]
            self.sim_mean_, self.sim_sd_ = saved["sim_mean"], saved["sim_sd"]
        else:  # folders saved before the codebook prior existed hold the bare head
            self.head_, self.prior_ = saved, None
