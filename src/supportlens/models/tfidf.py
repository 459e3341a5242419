"""TF-IDF (word and character n-grams) + class-weighted logistic regression: fast, transparent."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from supportlens.models.base import TextClassifier, expand_columns, warm_start_logistic


class TfidfLogReg(TextClassifier):
    kind = "tfidf_logreg"

    def __init__(
        self,
        labels: list[str],
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 2,
        max_features: int = 60000,
        C: float = 4.0,
        class_weight: str | None = "balanced",
        seed: int = 13,
    ):
        self.labels = labels
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.C = C
        self.class_weight = class_weight
        self.seed = seed

    def _pipeline(self, n_docs: int) -> Pipeline:
        # min_df above the document count would leave no vocabulary on tiny data
        min_df = self.min_df if n_docs >= 10 * self.min_df else 1
        features = FeatureUnion(
            [
                (
                    "word",
                    TfidfVectorizer(
                        ngram_range=tuple(self.word_ngrams),
                        min_df=min_df,
                        max_features=self.max_features,
                        sublinear_tf=True,
                        strip_accents="unicode",
                        lowercase=True,
                    ),
                ),
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=tuple(self.char_ngrams),
                        min_df=min_df,
                        max_features=self.max_features,
                        sublinear_tf=True,
                        lowercase=True,
                    ),
                ),
            ]
        )
        clf = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=3000, random_state=self.seed)
        return Pipeline([("features", features), ("clf", clf)])

    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        # the weights reach the logistic regression; the vocabulary and IDF count every passage once
        fit_params = {} if sample_weight is None else {"clf__sample_weight": sample_weight}
        self.pipeline_ = self._pipeline(len(X)).fit(X, y, **fit_params)

    def _continue_fit(self, X, y, sample_weight, X_val, y_val, epochs) -> None:
        """Keep the vocabulary (n-grams new to X get no feature) and warm-start the head."""
        features, head = self.pipeline_.steps[0][1], self.pipeline_.steps[-1][1]
        head = warm_start_logistic(head, features.transform(X), y, sample_weight, self.class_weight)
        self.pipeline_ = Pipeline([("features", features), ("clf", head)])
        self.history_.append({"epoch": self._next_epoch(), "continued": 1.0, "continued_rows": float(len(X))})

    def _logits(self, X: list[str]) -> np.ndarray:
        log_p = self.pipeline_.predict_log_proba(X)
        return expand_columns(log_p, list(self.pipeline_.classes_), self.labels, fill=-np.inf)

    def _save(self, path: Path) -> None:
        # joblib pickles: load only model folders you trust (as with any pickled model)
        joblib.dump(self.pipeline_, path / "pipeline.joblib")

    def _load(self, path: Path) -> None:
        self.pipeline_ = joblib.load(path / "pipeline.joblib")
