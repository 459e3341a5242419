"""Model kinds behind one interface; built from config, loaded from a model folder."""

from __future__ import annotations

from pathlib import Path

from supportlens.config import Config
from supportlens.models.base import META_FILE, ModelLoadError, TextClassifier, read_meta
from supportlens.models.embed import EmbedLogReg
from supportlens.models.ensemble import EnsembleClassifier
from supportlens.models.finetune import FineTuneClassifier
from supportlens.models.setfit import SetFitClassifier
from supportlens.models.tfidf import TfidfLogReg
from supportlens.models.zeroshot import CodebookPrior

MODEL_CLASSES: dict[str, type[TextClassifier]] = {
    cls.kind: cls for cls in (TfidfLogReg, EmbedLogReg, FineTuneClassifier, CodebookPrior, SetFitClassifier,
                              EnsembleClassifier)
}


def _prior_params(cfg: Config, codebook=None, mode: str | None = None) -> dict:
    """Keyword arguments for the codebook prior; the codebook's sentences travel in the params.
    ``mode`` overrides ``prior.mode``; the zero-shot model passes "off" (it combines nothing) but
    still needs the sentences."""
    mode = cfg.prior.mode if mode is None else mode
    texts = None
    if mode != "off" or cfg.model.kind == "codebook_prior":
        if codebook is None:
            from supportlens.codebook import load_codebook

            codebook = load_codebook(cfg.codebook)
        texts = {c.label: c.prior_texts() for c in codebook.codes}
    return {"prior_mode": mode, "prior_texts": texts, "prior_weight": cfg.prior.weight,
            "prior_temperature": cfg.prior.temperature, "prior_top_k": cfg.prior.top_k}


def _ensemble_members(cfg: Config) -> list[dict]:
    """Each member's full config, resolved now so the saved ensemble does not depend on the files."""
    from supportlens.config import ConfigError, load_config

    members = []
    for i, path in enumerate(cfg.ensemble.members):
        member = load_config(path)
        if member.model.kind == "ensemble":
            raise ConfigError(f"ensemble.members[{i}] ({path}) is itself an ensemble; nest members directly")
        member.seed, member.codebook, member.calibration = cfg.seed, cfg.codebook, cfg.calibration
        members.append(member.to_dict())
    return members


def build_model(cfg: Config, labels: list[str], codebook=None) -> TextClassifier:
    """A fresh, unfitted model of the configured kind (``codebook``: the loaded codebook, when the
    caller has it; otherwise ``cfg.codebook`` is read if the prior needs it)."""
    kind = cfg.model.kind
    if kind == "ensemble":
        return EnsembleClassifier(labels=labels, members=_ensemble_members(cfg), method=cfg.ensemble.method,
                                  weights=cfg.ensemble.weights, seed=cfg.seed)
    if kind in ("embed_logreg", "codebook_prior", "setfit"):
        e = cfg.embed
        common = dict(labels=labels, pretrained=cfg.model.pretrained, C=e.C, batch_size=e.batch_size,
                      class_weight=e.class_weight, allow_download=cfg.model.allow_download, seed=cfg.seed)
        if kind == "codebook_prior":
            return CodebookPrior(max_length=cfg.model.max_length,
                                 **common, **_prior_params(cfg, codebook, mode="off"))
        if kind == "setfit":
            s = cfg.setfit
            return SetFitClassifier(max_length=s.max_length, contrastive_epochs=s.epochs,
                                    contrastive_batch_size=s.batch_size, contrastive_learning_rate=s.learning_rate,
                                    contrastive_temperature=s.temperature, freeze_layers=s.freeze_layers,
                                    threads=cfg.train.threads, **common, **_prior_params(cfg, codebook))
        return EmbedLogReg(max_length=cfg.model.max_length, **common, **_prior_params(cfg, codebook))
    if kind == "tfidf_logreg":
        t = cfg.tfidf
        return TfidfLogReg(labels=labels, word_ngrams=tuple(t.word_ngrams), char_ngrams=tuple(t.char_ngrams),
                           min_df=t.min_df, max_features=t.max_features, C=t.C,
                           class_weight=t.class_weight, seed=cfg.seed)
    if kind == "finetune":
        t = cfg.train
        return FineTuneClassifier(
            labels=labels, pretrained=cfg.model.pretrained, max_length=cfg.model.max_length,
            epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
            head_learning_rate=t.head_learning_rate, weight_decay=t.weight_decay,
            warmup_ratio=t.warmup_ratio, patience=t.patience, class_weighted=t.class_weighted,
            label_smoothing=t.label_smoothing, freeze_embeddings=t.freeze_embeddings,
            freeze_layers=t.freeze_layers, grad_clip=t.grad_clip, rdrop_alpha=t.rdrop_alpha,
            layer_decay=t.layer_decay, threads=t.threads,
            allow_download=cfg.model.allow_download, seed=cfg.seed, student_layers=t.student_layers,
            student_epochs=t.student_epochs, student_max_changed=t.student_max_changed)
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
           "load_classifier", "CodebookPrior", "EmbedLogReg", "EnsembleClassifier", "FineTuneClassifier",
           "SetFitClassifier", "TfidfLogReg"]
