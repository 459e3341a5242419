"""Model kinds by name: a fresh model built from config, a saved one loaded from its folder.

Kinds are named here with the module that defines each, and a kind's module is imported only when
that kind is built or loaded: commands that never touch a transformer (`runs`, `report`,
`agreement`, a TF-IDF model) do not pay for importing torch and transformers. Naming modules, not
importing classes, also lets an ensemble build and load its members through this registry without
an import circle.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from supportlens.codebook import load_codebook
from supportlens.config import Config, ConfigError, load_config
from supportlens.models.meta import ModelLoadError, read_meta

if TYPE_CHECKING:  # base imports scikit-learn: a kind's module brings it when the kind is used
    from supportlens.models.base import TextClassifier

# kind (as in a config's model.kind and a model folder's meta) -> (module, class)
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "tfidf_logreg": ("supportlens.models.tfidf", "TfidfLogReg"),
    "embed_logreg": ("supportlens.models.embed", "EmbedLogReg"),
    "finetune": ("supportlens.models.finetune", "FineTuneClassifier"),
    "codebook_prior": ("supportlens.models.zeroshot", "CodebookPriorClassifier"),
    "setfit": ("supportlens.models.setfit", "SetFitClassifier"),
    "ensemble": ("supportlens.models.ensemble", "EnsembleClassifier"),
    "llm": ("supportlens.models.llm", "LLMClassifier"),
    "fewshot_blend": ("supportlens.models.fewshot", "FewShotBlend"),
}


def model_class(kind: str) -> type[TextClassifier]:
    """The class of model ``kind``, its module imported now (and torch with it, for most kinds)."""
    module, name = MODEL_KINDS[kind]
    return getattr(importlib.import_module(module), name)


def _prior_params(cfg: Config, codebook=None, mode: str | None = None) -> dict:
    """Keyword arguments for the codebook prior; the codebook's sentences travel in the params.
    ``mode`` overrides ``prior.mode``; the zero-shot model passes "off" (it combines nothing) but
    still needs the sentences."""
    mode = cfg.prior.mode if mode is None else mode
    texts = None
    if mode != "off" or cfg.model.kind == "codebook_prior":
        if codebook is None:
            codebook = load_codebook(cfg.codebook)
        texts = {c.label: c.prior_texts() for c in codebook.codes}
    return {
        "prior_mode": mode,
        "prior_texts": texts,
        "prior_weight": cfg.prior.weight,
        "prior_temperature": cfg.prior.temperature,
        "prior_top_k": cfg.prior.top_k,
    }


def _ensemble_members(cfg: Config) -> list[dict]:
    """Each member's full config, resolved now so the saved ensemble does not depend on the files."""
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
    if kind == "llm":  # the codebook is its prompt: it travels in the params, resolved now
        if codebook is None:
            codebook = load_codebook(cfg.codebook)
        return model_class("llm")(
            labels=labels, codebook=codebook.to_dict(), seed=cfg.seed, **dataclasses.asdict(cfg.llm)
        )
    if kind == "ensemble":
        return model_class("ensemble")(
            labels=labels,
            members=_ensemble_members(cfg),
            method=cfg.ensemble.method,
            weights=cfg.ensemble.weights,
            seed=cfg.seed,
        )
    if kind in ("embed_logreg", "codebook_prior", "setfit"):
        e = cfg.embed
        common = dict(
            labels=labels,
            pretrained=cfg.model.pretrained,
            C=e.C,
            batch_size=e.batch_size,
            class_weight=e.class_weight,
            allow_download=cfg.model.allow_download,
            seed=cfg.seed,
        )
        if kind == "codebook_prior":
            return model_class("codebook_prior")(
                max_length=cfg.model.max_length, **common, **_prior_params(cfg, codebook, mode="off")
            )
        if kind == "setfit":
            s = cfg.setfit
            return model_class("setfit")(
                max_length=s.max_length,
                contrastive_epochs=s.epochs,
                contrastive_batch_size=s.batch_size,
                contrastive_learning_rate=s.learning_rate,
                contrastive_temperature=s.temperature,
                freeze_layers=s.freeze_layers,
                threads=cfg.train.threads,
                **common,
                **_prior_params(cfg, codebook),
            )
        return model_class("embed_logreg")(max_length=cfg.model.max_length, **common, **_prior_params(cfg, codebook))
    if kind == "tfidf_logreg":
        t = cfg.tfidf
        return model_class("tfidf_logreg")(
            labels=labels,
            word_ngrams=tuple(t.word_ngrams),
            char_ngrams=tuple(t.char_ngrams),
            min_df=t.min_df,
            max_features=t.max_features,
            C=t.C,
            class_weight=t.class_weight,
            seed=cfg.seed,
        )
    if kind == "finetune":
        tr = cfg.train
        return model_class("finetune")(
            labels=labels,
            pretrained=cfg.model.pretrained,
            max_length=cfg.model.max_length,
            epochs=tr.epochs,
            batch_size=tr.batch_size,
            learning_rate=tr.learning_rate,
            head_learning_rate=tr.head_learning_rate,
            weight_decay=tr.weight_decay,
            warmup_ratio=tr.warmup_ratio,
            patience=tr.patience,
            class_weighted=tr.class_weighted,
            label_smoothing=tr.label_smoothing,
            freeze_embeddings=tr.freeze_embeddings,
            freeze_layers=tr.freeze_layers,
            grad_clip=tr.grad_clip,
            rdrop_alpha=tr.rdrop_alpha,
            layer_decay=tr.layer_decay,
            threads=tr.threads,
            allow_download=cfg.model.allow_download,
            seed=cfg.seed,
            student_layers=tr.student_layers,
            student_epochs=tr.student_epochs,
            student_max_changed=tr.student_max_changed,
        )
    raise ValueError(f"unknown model kind {kind!r}")


def load_classifier(path: str | Path) -> TextClassifier:
    """Load a model folder written by :meth:`TextClassifier.save`."""
    path = Path(path)
    meta = read_meta(path)
    if meta["kind"] not in MODEL_KINDS:
        raise ModelLoadError(f"{path}: unknown model kind {meta['kind']!r}")
    cls = model_class(meta["kind"])
    params = dict(meta["params"])
    if "device" in params:
        params["device"] = "cpu"  # a model trained on a GPU still loads where there is none
    for key in ("word_ngrams", "char_ngrams"):
        if key in params:
            params[key] = tuple(params[key])
    model = cls(**params)
    model.classes_ = np.asarray(meta["classes"], dtype=object)
    model.temperature_ = float(meta.get("temperature", 1.0))
    model.history_ = meta.get("history", [])
    model.meta_ = meta
    model._load(path)
    return model
