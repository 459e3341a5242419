"""Shared fixtures: a four-code codebook, small coded files, and a tiny random BERT built locally
(no download), so the whole pipeline can be tested in seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = ROOT / "configs" / "codebook.yaml"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

# A few short passages per code; the fixture spreads variants of them over interviews.
PASSAGES = {
    "push": [
        "we trained every site on the manual and checked fidelity each month",
        "the model was rolled out the same way everywhere and sites had to comply",
        "our job was to deliver the curriculum and certify the staff",
    ],
    "pull": [
        "the county asked for help with referrals so we tailored the coaching to that",
        "we listened to what the agency needed and answered their requests",
        "support started from the questions the site brought to us",
    ],
    "co_creation": [
        "we designed the plan together with the families and staff and shared decisions",
        "the team and i made sense of the data jointly and agreed next steps as partners",
        "we learned from each other and built the solution side by side",
    ],
    "none": [
        "i started my career as a caseworker in a small town",
        "the funding ended in the spring and the office moved",
        "yeah that is a good question let me think",
    ],
}

VOCAB_WORDS = sorted(
    {w for texts in PASSAGES.values() for t in texts for w in t.split()}
    | {"site", "sites", "interview", "variant", "again", "also", "really"}
)


def make_rows(n_interviews: int = 10, per_label: int = 2) -> list[dict]:
    rows = []
    fillers = ["", " again", " also", " really", " you know", " and so on"]
    for g in range(n_interviews):
        k = 0
        for label, texts in PASSAGES.items():
            for j in range(per_label):
                text = texts[(g + j) % len(texts)] + fillers[(g + j) % len(fillers)] + f" in interview {g} part {j}"
                rows.append(
                    {
                        "id": f"i{g:02d}-{k:02d}",
                        "interview_id": f"i{g:02d}",
                        "speaker_role": "participant",
                        "text": text,
                        "label": label,
                    }
                )
                k += 1
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def codebook_path() -> Path:
    return CODEBOOK


@pytest.fixture
def codebook():
    from supportlens.codebook import load_codebook

    return load_codebook(CODEBOOK)


@pytest.fixture
def coded_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "coded.jsonl", make_rows())


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT and a word-level vocab, saved like a hub model."""
    from transformers import BertConfig, BertModel, BertTokenizer

    d = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w in VOCAB_WORDS] + [str(i) for i in range(20)]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(vocab=str(d / "vocab.txt")).save_pretrained(d)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)  # the same random weights in every run: tests must not depend on the draw
    BertModel(config).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A TF-IDF model fitted on the fixture rows and saved like a trained one (review threshold
    0.5, codebook in its metadata): scoring in tests takes milliseconds."""
    from supportlens.codebook import load_codebook
    from supportlens.models import TfidfLogReg

    rows = make_rows(6, 2)
    model = TfidfLogReg(labels=["push", "pull", "co_creation", "none"]).fit(
        [r["text"] for r in rows], [r["label"] for r in rows]
    )
    d = tmp_path_factory.mktemp("model") / "m"
    model.save(d, extra={"review_threshold": 0.5, "codebook": load_codebook(CODEBOOK).to_dict()})
    return d


@pytest.fixture
def labeler(model_dir):
    """A fresh Labeler over `model_dir` (tests may monkeypatch it)."""
    from supportlens.inference.labeler import Labeler
    from supportlens.models import load_classifier

    return Labeler(load_classifier(model_dir))


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch) -> None:
    """Tests never read or fill the user's supportlens cache (graphs, downloaded models)."""
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path_factory.getbasetemp() / "supportlens-cache"))


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch) -> str:
    """A throwaway SQLite store; artifacts land in tmp_path too."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def fast_overrides(pretrained: Path | None = None, kind: str = "tfidf_logreg") -> list[str]:
    sets = [
        f"model.kind={kind}",
        "train.epochs=2",
        "train.batch_size=8",
        "model.max_length=32",
        "split.test_size=0.2",
        "split.val_size=0.2",
        "output_dir=outputs",
        f"codebook={CODEBOOK}",
    ]
    if pretrained is not None:
        sets.append(f"model.pretrained={pretrained}")
    return sets


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A real llama.cpp server with a tiny instruction-tuned model on 127.0.0.1, started once per
    session for the tests marked `llm_server` (tests/llm_server.py; `make test-llm`)."""
    from llm_server import running_server

    with running_server(tmp_path_factory.mktemp("llm-server") / "server.log") as server:
        yield server
