"""The codebook as a prior: what a coder reads before coding, embedded.

Each code is represented by its summary, definition and use-when sentences and its examples. A
passage's similarity to a code is the mean cosine similarity of its k best-matching sentences of
that code. Alone (``codebook_prior``, `supportlens.models.zeroshot.CodebookPriorClassifier`) this
is a zero-shot classifier that has never seen a coded excerpt, so it cannot overfit the authored
corpus; as features or a prior it pulls a supervised model back towards the codebook's wording of
each approach.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PRIOR_MODES = ("off", "features", "product")


class CodebookSimilarity:
    """Embeds the codebook's sentences once; scores passages against each code: the feature that
    ``prior.mode`` adds to `EmbedLogReg` and that `CodebookPriorClassifier` classifies by alone.
    (Saved models pickle it under this name and module: keep both.)"""

    def __init__(self, labels: list[str], texts: dict[str, list[str]], top_k: int = 3):
        missing = [label for label in labels if not texts.get(label)]
        if missing:
            raise ValueError(f"the codebook prior has no sentences for codes {missing}")
        self.labels = labels
        self.texts = {label: list(texts[label]) for label in labels}
        self.top_k = top_k

    def fit(self, embed: Callable[[list[str]], np.ndarray]) -> CodebookSimilarity:
        flat = [t for label in self.labels for t in self.texts[label]]
        self.owner_ = np.repeat(np.arange(len(self.labels)), [len(self.texts[lb]) for lb in self.labels])
        self.vectors_ = np.asarray(embed(flat), dtype=np.float32)
        return self

    def similarities(self, E: np.ndarray) -> np.ndarray:
        """(n passages, n codes): mean of each passage's top-k cosine similarities per code."""
        sims = np.asarray(E, dtype=np.float32) @ self.vectors_.T
        out = np.zeros((len(E), len(self.labels)), dtype=np.float64)
        for j in range(len(self.labels)):
            block = sims[:, self.owner_ == j]
            k = min(self.top_k, block.shape[1])
            out[:, j] = np.sort(block, axis=1)[:, -k:].mean(axis=1)
        return out
