"""Zero-shot classification from the codebook alone (model.kind = codebook_prior).

It never fits on coded excerpts: its probabilities are a softmax of the passage's similarity to
each code's codebook sentences. Fitting only embeds the codebook; calibration (on validation
interviews, as for every model) then sets how sharp those probabilities are."""

from __future__ import annotations

import numpy as np

from supportlens.models.embed import EmbedLogReg
from supportlens.models.prior import CodebookSimilarity


class CodebookPrior(EmbedLogReg):
    kind = "codebook_prior"

    def _fit(self, X, y, X_val, y_val) -> None:
        if not self.prior_texts:
            raise ValueError("codebook_prior needs the codebook's prior_texts")
        self._ensure_encoder()
        self.prior_ = CodebookSimilarity(self.labels, self.prior_texts, self.prior_top_k).fit(self.embed)
        self.head_ = None

    def _logits(self, X: list[str]) -> np.ndarray:
        return self.prior_.similarities(self.embed(X)) / self.prior_temperature
