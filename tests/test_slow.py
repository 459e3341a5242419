"""Tests with the real packaged MiniLM encoder: minutes on a 2-core CPU, so marked slow
(`make test-slow`)."""

import numpy as np
import pytest

from conftest import make_rows
from supportlens.models import EmbedLogReg, FineTuneClassifier

pytestmark = pytest.mark.slow
LABELS = ["push", "pull", "co_creation", "none"]


def test_minilm_embeddings_are_semantic():
    model = EmbedLogReg(labels=LABELS)
    emb = model.embed(
        [
            "We designed the plan together with the county.",
            "The county and our team co-designed the plan as equals.",
            "The weather was cold on the day of the site visit.",
        ]
    )
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


def test_minilm_finetune_learns_fixture():
    rows = make_rows(6, 2)
    X, y = [r["text"] for r in rows], [r["label"] for r in rows]
    model = FineTuneClassifier(
        labels=LABELS, epochs=3, batch_size=8, max_length=48, freeze_layers=4, learning_rate=1e-4
    ).fit(X, y, X, y)
    assert model.score(X, y) > 0.8
    assert np.isfinite(model.predict_proba(X)).all()
