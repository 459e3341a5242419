"""Zero-shot classification from the codebook alone (model.kind = codebook_prior).

The codebook prior is one concept in two parts: `supportlens.models.prior.CodebookSimilarity`
scores a passage against each code's codebook sentences (the feature), and the class here is the
model that uses those scores alone. (`EmbedLogReg` uses the same scores beside coded excerpts:
``prior.mode`` features or product.) It never fits on coded excerpts: its probabilities are a
softmax of the passage's similarity to each code's codebook sentences. Fitting only embeds the
codebook; calibration (on validation interviews, as for every model) then sets how sharp those
probabilities are."""

from __future__ import annotations

import numpy as np

from supportlens.models.embed import EmbedLogReg


class CodebookPriorClassifier(EmbedLogReg):
    """The codebook prior as a classifier: logits are `CodebookSimilarity` scores over
    ``prior_temperature``; no head is fitted. Saved and loaded as kind ``codebook_prior``."""

    kind = "codebook_prior"

    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        """Embeds the codebook; the coded passages (and so their ``sample_weight``) are unused."""
        if not self.prior_texts:
            raise ValueError("codebook_prior needs the codebook's prior_texts")
        self._ensure_encoder()
        self.prior_ = self._codebook_similarity()
        self.head_ = None

    def continue_fit(self, X, y, sample_weight=None, X_val=None, y_val=None, epochs=1) -> CodebookPriorClassifier:
        """Nothing is trained on coded passages, so there is nothing to continue: the model, and its
        calibration, stay as they are."""
        self._check_labels(np.asarray(list(y), dtype=object))
        return self

    def _logits(self, X: list[str]) -> np.ndarray:
        assert self.prior_ is not None  # _fit or the saved model set it: this kind is nothing without it
        return self.prior_.similarities(self.embed(X)) / self.prior_temperature
