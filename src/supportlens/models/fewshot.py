"""A few-shot component over the researcher's own coded passages, blended with a trained model.

A few dozen passages coded on the user's own transcripts are drowned as a few rows among thousands
of authored ones in a logistic fit. Used as labelled neighbours (or class prototypes) in the
encoder's space they act directly on passages that resemble them, and their say grows with how
many there are: p = (1 - w) p_base + w p_fewshot, w = max_weight * k / (k + k0).

The module functions work on embeddings alone, so a benchmark can score blends on cached vectors
without refitting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supportlens.config import DEFAULT_ENCODER
from supportlens.models.base import TextClassifier
from supportlens.models.encoders import (
    batched_apply,
    cached_embed,
    embedding_cache,
    encoder_digest,
    load_encoder,
    mean_pool,
    saved_encoder,
    share_identical_encoders,
    shared_encoder,
)
from supportlens.models.meta import META_FILE, ModelLoadError
from supportlens.models.registry import load_classifier

FEWSHOT_METHODS = ("prototype", "knn")
# Cosine similarities become logits divided by this. Fixed, not fitted: k passages are too few to
# fit it on while they also serve as the prototypes. It is the codebook prior's scale in the same
# sentence space (prior.temperature): there a 0.1 gap in cosine between codes, typical of MiniLM,
# means odds of e^2 (about 7:1), sharp enough to matter and soft enough to blend. The blend's own
# temperature (`calibrate`) then sets how confident the whole is.
FEWSHOT_TEMPERATURE = 0.05
_FILE = "fewshot.npz"
_CORE_META = ("format_version", "kind", "params", "classes", "temperature", "history")


def fewshot_weight(k: int, k0: float, max_weight: float) -> float:
    """The few-shot part's share of the blend: 0 with no target passage, half of ``max_weight``
    at ``k0`` of them, approaching ``max_weight`` as they become many."""
    if k < 0:
        raise ValueError(f"k (the number of target passages) must be 0 or more; got {k}")
    if k0 <= 0:
        raise ValueError(f"k0 must be above 0; got {k0}")
    if not 0.0 <= max_weight <= 1.0:
        raise ValueError(f"max_weight must be in [0, 1]; got {max_weight}")
    return float(max_weight * k / (k + k0))


def _check_method(method: str, neighbours: int) -> None:
    if method not in FEWSHOT_METHODS:
        raise ValueError(f"method must be one of {', '.join(FEWSHOT_METHODS)}; got {method!r}")
    if neighbours < 1:
        raise ValueError(f"neighbours must be at least 1; got {neighbours}")


def _unit(E: np.ndarray) -> np.ndarray:
    E = np.asarray(E, dtype=np.float64)
    return E / np.clip(np.linalg.norm(E, axis=1, keepdims=True), 1e-12, None)


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fewshot_proba(
    E_query: np.ndarray,
    E_target: np.ndarray,
    y_target: Sequence[str] | np.ndarray,
    labels: Sequence[str],
    method: str = "prototype",
    neighbours: int = 5,
) -> np.ndarray:
    """(n queries, len(labels)): what the target passages alone say of each query.

    ``prototype``: softmax of the cosine to each code's mean target embedding; ``knn``: a vote of
    the ``neighbours`` most similar target passages, each weighted by softmax of its cosine. Rows
    sum to 1 over the codes that have a target passage; codes without one get 0 here (they have no
    evidence: :func:`blend_proba` gives them the base model's probability). Embeddings are
    L2-normalised here, so any mean-pooled vectors will do."""
    _check_method(method, neighbours)
    labels = list(labels)
    y = np.asarray(y_target, dtype=object)
    unknown = sorted(set(y) - set(labels))
    if unknown:
        raise ValueError(f"target labels {unknown} are not among the labels {labels}")
    out = np.zeros((len(E_query), len(labels)), dtype=np.float64)
    if len(E_query) == 0 or len(y) == 0:
        return out
    Q, T = _unit(E_query), _unit(E_target)
    column = {label: j for j, label in enumerate(labels)}
    seen = [label for label in labels if label in set(y)]
    cols = [column[label] for label in seen]
    if method == "prototype":
        centroids = _unit(np.stack([T[y == label].mean(axis=0) for label in seen]))
        out[:, cols] = _softmax_rows(Q @ centroids.T / FEWSHOT_TEMPERATURE)
        return out
    sims = Q @ T.T
    n = min(neighbours, len(y))
    nearest = np.argpartition(-sims, n - 1, axis=1)[:, :n]
    weights = _softmax_rows(np.take_along_axis(sims, nearest, axis=1) / FEWSHOT_TEMPERATURE)
    target_col = np.array([column[label] for label in y])
    rows = np.repeat(np.arange(len(Q)), n)
    np.add.at(out, (rows, target_col[nearest].ravel()), weights.ravel())
    return out


def blend_proba(p_base: np.ndarray, p_fewshot: np.ndarray, seen: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * p_base + weight * the few-shot part, where the few-shot part keeps the base's
    probability for codes not ``seen`` among the target passages and shares out the base's mass of
    the seen codes as ``p_fewshot`` (from :func:`fewshot_proba`) says: target passages redistribute
    among the codes they show, and never invent or erase the others."""
    p_base = np.asarray(p_base, dtype=np.float64)
    seen = np.asarray(seen, dtype=bool)
    out = p_base.copy()  # unseen codes: the base's probability, to the last bit
    shared = p_fewshot[:, seen] * p_base[:, seen].sum(axis=1, keepdims=True)
    out[:, seen] = (1.0 - weight) * p_base[:, seen] + weight * shared
    return out


def _embedding_source(model: Any) -> Any:
    """The model (or first ensemble member) whose encoder can embed passages, or None."""
    if callable(getattr(model, "embed", None)) and getattr(model, "embeds_with_", "base") != "none":
        return model
    for member in getattr(model, "members_", None) or []:
        found = _embedding_source(member)
        if found is not None:
            return found
    return None


def _from_base(name: str, settable: bool = False) -> property:
    """An attribute read from the base model (absent when the base lacks it), so the Labeler
    segments, batches and picks a runtime for the blend exactly as for its base."""

    def get(self: FewShotBlend) -> Any:
        return getattr(self.base_, name)

    def set_(self: FewShotBlend, value: Any) -> None:
        setattr(self.base_, name, value)

    return property(get, set_ if settable else None)


class FewShotBlend(TextClassifier):
    """A trained model blended with a few-shot component over target passages (kind
    ``fewshot_blend``). Build it with :meth:`wrap`; ``fit`` is not how it learns. Calibrate it on
    passages that are not among its targets (they would look too easy)."""

    kind = "fewshot_blend"

    def __init__(
        self,
        labels: list[str],
        method: str = "prototype",
        k0: float = 20.0,
        max_weight: float = 0.5,
        neighbours: int = 5,
        pretrained: str | None = None,
        encoder_max_length: int = 256,
        batch_size: int = 32,
        allow_download: bool = False,
    ):
        self.labels = labels
        self.method = method
        self.k0 = k0
        self.max_weight = max_weight
        self.neighbours = neighbours
        self.pretrained = pretrained
        self.encoder_max_length = encoder_max_length
        self.batch_size = batch_size
        self.allow_download = allow_download

    @classmethod
    def wrap(
        cls,
        base: TextClassifier,
        X_target: Sequence[str],
        y_target: Sequence[str] | np.ndarray,
        method: str = "prototype",
        k0: float = 20.0,
        max_weight: float = 0.5,
        neighbours: int = 5,
        pretrained: str | None = None,
        **encoder_options: Any,
    ) -> FewShotBlend:
        """``base`` (fitted, calibrated) blended with its few-shot part over the coded target
        passages. The base's encoder embeds them when it has one (so a passage is embedded once
        for both); else ``pretrained`` (default: the default encoder) is loaded, offline-first.
        ``encoder_options``: encoder_max_length, batch_size, allow_download for that encoder."""
        X, y = list(X_target), np.asarray(y_target, dtype=object)
        if len(X) != len(y):
            raise ValueError(f"X_target has {len(X)} passages but y_target {len(y)} labels")
        model = cls(
            labels=[str(c) for c in base.classes_],
            method=method,
            k0=k0,
            max_weight=max_weight,
            neighbours=neighbours,
            pretrained=pretrained,
            **encoder_options,
        )
        _check_method(method, neighbours)
        unknown = sorted(set(y) - set(model.labels))
        if unknown:
            raise ValueError(f"y_target has labels {unknown} that are not among the model's {model.labels}")
        model.base_ = base
        model.classes_ = np.asarray(base.classes_, dtype=object)
        model.temperature_ = 1.0
        model.history_ = []
        model.weight_ = fewshot_weight(len(X), k0, max_weight)
        if _embedding_source(base) is not None:
            model.embeds_with_ = "base"
        elif X:
            model.embeds_with_ = "own"
            model.tokenizer_own_, model.encoder_own_ = load_encoder(pretrained or DEFAULT_ENCODER, model.allow_download)
        else:  # nothing to embed: no encoder loaded or saved for a blend that is all base
            model.embeds_with_ = "none"
        model.target_labels_ = y
        model.target_embeddings_ = np.asarray(model.embed(X), dtype=np.float32) if X else np.zeros((0, 0), np.float32)
        return model

    # the base model's segmentation and inference settings, for the Labeler
    tokenizer_ = _from_base("tokenizer_")
    max_length = _from_base("max_length")
    predict_batch_size = _from_base("predict_batch_size", settable=True)
    use_runtime = _from_base("use_runtime")
    make_fast = _from_base("make_fast")

    def embed(self, X: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors from the encoder the target passages were embedded with."""
        if self.embeds_with_ == "base":
            return _embedding_source(self.base_).embed(X)
        if self.embeds_with_ == "none":
            raise ValueError("this blend has no target passages, so it holds no encoder to embed with")
        key = (getattr(self, "cache_key_", self.pretrained or DEFAULT_ENCODER), self.encoder_max_length)
        return cached_embed(key, X, self._encode)

    def _encode(self, X: list[str]) -> np.ndarray:
        return batched_apply(
            self.encoder_own_,
            self.tokenizer_own_,
            X,
            self.batch_size,
            self.encoder_max_length,
            mean_pool,
            device=getattr(self, "device", "cpu"),
        )

    # -- TextClassifier ---------------------------------------------------------------------
    def _fit(self, X: list[str], y: np.ndarray, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "a fewshot_blend model is not fitted on its own: build it with "
            "FewShotBlend.wrap(base, X_target, y_target) from a fitted model"
        )

    def _logits(self, X: list[str]) -> np.ndarray:
        if not X:
            return np.zeros((0, len(self.classes_)))
        if self.weight_ == 0.0:  # the base alone, to the last bit
            return self.base_.decision_function(X) / self.base_.temperature_
        with embedding_cache():  # the base and the few-shot part embed each passage once
            p_base = self.base_.predict_proba(X)
            E = self.embed(X)
        labels = [str(c) for c in self.classes_]
        q = fewshot_proba(E, self.target_embeddings_, self.target_labels_, labels, self.method, self.neighbours)
        seen = np.isin(np.asarray(labels, dtype=object), self.target_labels_)
        return np.log(np.clip(blend_proba(p_base, q, seen, self.weight_), 1e-12, 1.0))

    def to_device(self, device: str) -> FewShotBlend:
        self.device = device
        if hasattr(self.base_, "to_device"):
            self.base_.to_device(device)
        if self.embeds_with_ == "own":
            self.encoder_own_.to(device)
        return self

    def _save(self, path: Path) -> None:
        base_dir = path / "base"
        # what training recorded on the base (threshold, metrics, codebook) stays with it
        carried = {k: v for k, v in getattr(self.base_, "meta_", {}).items() if k not in _CORE_META}
        self.base_.save(base_dir, extra=carried)
        # embeddings and codes, not the texts: the passages are the researcher's data
        np.savez(
            path / _FILE,
            embeddings=np.asarray(self.target_embeddings_, dtype=np.float32),
            labels=np.asarray([str(v) for v in self.target_labels_], dtype=str),
            source=np.asarray(self.embeds_with_),
        )
        if self.embeds_with_ == "own":
            self.encoder_own_.save_pretrained(path / "encoder")
            self.tokenizer_own_.save_pretrained(path / "encoder")
            members = sorted(p for p in (base_dir / "members").glob("*") if (p / META_FILE).is_file())
            share_identical_encoders([base_dir, *members, path])  # one copy of the same weights

    def _load(self, path: Path) -> None:
        self.base_ = load_classifier(path / "base")
        if not (path / _FILE).is_file():
            raise ModelLoadError(f"{path}: a fewshot_blend folder without its {_FILE}")
        with np.load(path / _FILE, allow_pickle=False) as saved:
            self.target_embeddings_ = saved["embeddings"]
            self.target_labels_ = saved["labels"].astype(object)
            self.embeds_with_ = str(saved["source"])
        self.weight_ = fewshot_weight(len(self.target_labels_), self.k0, self.max_weight)
        if self.embeds_with_ == "own":
            folder = saved_encoder(path)
            digest = encoder_digest(folder)
            self.cache_key_ = "sha256:" + digest  # vectors shared by content, as for EmbedLogReg
            self._shared_encoder = shared_encoder(digest, folder)
            self.tokenizer_own_, self.encoder_own_ = self._shared_encoder.tokenizer, self._shared_encoder.model
