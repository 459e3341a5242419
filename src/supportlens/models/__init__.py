"""Model kinds behind one interface; built from config, loaded from a model folder."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .base import META_FILE, ModelLoadError, TextClassifier, read_meta
from .embed import EmbedLogReg
from .finetune import FineTuneClassifier
from .tfidf import TfidfLogReg

MODEL_CLASSES: dict[str, type[TextClassifier]] = {
    cls.kind: cls for cls in (TfidfLogReg, EmbedLogReg, FineTuneClassifier)
}


def build_model(cfg: Config, labels: list[str]) -> TextClassifier:
    """A fresh, unfitted model of the configured kind."""
    kind = cfg.model.kind
    if kind == "tfidf_logreg":
        t = cfg.tfidf
        return TfidfLogReg(labels=labels, word_ngrams=tuple(t.word_ngrams), char_ngrams=tuple(t.char_ngrams),
                           min_df=t.min_df, max_features=t.max_features, C=t.C,
                           class_weight=t.class_weight, seed=cfg.seed)
    if kind == "embed_logreg":
        e = cfg.embed
        return EmbedLogReg(labels=labels, pretrained=cfg.model.pretrained, max_length=cfg.model.max_length,
                           C=e.C, batch_size=e.batch_size, class_weight=e.class_weight,
                           allow_download=cfg.model.allow_download, seed=cfg.seed)
    if kind == "finetune":
        t = cfg.train
        return FineTuneClassifier(
            labels=labels, pretrained=cfg.model.pretrained, max_length=cfg.model.max_length,
            epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
            head_learning_rate=t.head_learning_rate, weight_decay=t.weight_decay,
            warmup_ratio=t.warmup_ratio, patience=t.patience, class_weighted=t.class_weighted,
            label_smoothing=t.label_smoothing, freeze_embeddings=t.freeze_embeddings,
            freeze_layers=t.freeze_layers, grad_clip=t.grad_clip, threads=t.threads,
            allow_download=cfg.model.allow_download, seed=cfg.seed)
    raise ValueError(f"unknown model kind {kind!r}")


def load_classifier(path: str | Path) -> TextClassifier:
    """Load a model folder written by :meth:`TextClassifier.save`."""
    path = Path(path)
    meta = read_meta(path)
    cls = MODEL_CLASSES.get(meta["kind"])
    if cls is None:
        raise ModelLoadError(f"{path}: unknown model kind {meta['kind']!r}")
    params = dict(meta["params"])
    if "device" in params:
        params["device"] = "cpu"  # a model trained on a GPU still loads where there is none
    for key in ("word_ngrams", "char_ngrams"):
        if key in params:
            params[key] = tuple(params[key])
    model = cls(**params)
    import numpy as np

    model.classes_ = np.asarray(meta["classes"], dtype=object)
    model.temperature_ = float(meta.get("temperature", 1.0))
    model.history_ = meta.get("history", [])
    model.meta_ = meta
    model._load(path)
    return model


__all__ = ["MODEL_CLASSES", "META_FILE", "ModelLoadError", "TextClassifier", "build_model",
           "load_classifier", "EmbedLogReg", "FineTuneClassifier", "TfidfLogReg"]
