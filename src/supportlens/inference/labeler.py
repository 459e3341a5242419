"""The model as every labelling path uses it: `Labeler` loads it onto a device, in a speed mode,
with a review threshold, counts tokens for the segmenter, and scores passages into the columns of
`supportlens.schema`.

Its errors speak in the API's terms (``fast=True``, ``device='cuda'``); the command line names its
options instead (`supportlens.cli.common.in_cli_terms`).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from supportlens.calibration import threshold_measured
from supportlens.models.device import cuda_available
from supportlens.schema import REVIEW_REASON_COLUMN, REVIEW_REASON_FIELDS, SECOND_OPINION_FIELDS, score_frame


class PredictError(ValueError):
    """Labelling cannot start as asked (a bad option, output path or model setting); a problem
    with one transcript is not raised but reported (`inference.loop.FileFailure`)."""


class Labeler:
    """Scores passages with a loaded supportlens model; owns device, speed mode and threshold."""

    def __init__(
        self,
        model,
        review_below: float | None = None,
        device: str = "cpu",
        fast: bool = False,
        batch_size: int = 16,
        runtime: str | None = None,
        second_opinion=None,
    ):
        """``runtime``: for fine-tuned models, ``auto`` (ONNX Runtime on CPU when possible), ``onnx``
        or ``torch``; None defers to ``$SUPPORTLENS_RUNTIME`` (see FineTuneClassifier.use_runtime).
        ``second_opinion``: a language-model labeller (model kind ``llm``, with the same codes)
        asked about the passages this model flags for review, and only those
        (`inference.label.load_second_opinion`); its answers fill `SECOND_OPINION_FIELDS`."""
        self.model = model
        self.second_opinion = second_opinion
        self.labels = [str(x) for x in model.classes_]
        self.threshold = float(review_below if review_below is not None else model.meta_.get("review_threshold", 0.0))
        # no threshold measured in training (stored as 1.0): every passage is flagged, also one at 1.0
        self.threshold_measured = review_below is not None or threshold_measured(model)
        self.device = resolve_device(device)
        if hasattr(model, "predict_batch_size"):
            model.predict_batch_size = batch_size
        if hasattr(model, "to_device"):
            model.to_device(self.device)
        if fast and not hasattr(model, "make_fast"):
            raise PredictError(
                f"`fast=True` is only available for fine-tuned models; this {model.kind} "
                "model always runs at full precision: run without `fast=True`"
            )
        self.runtime: str | None = None  # "onnx" or "torch" for fine-tuned models
        if hasattr(model, "use_runtime"):
            from supportlens.models.onnx_runtime import OnnxUnavailable

            try:  # choose (and on first use, export) before the first batch, not in the middle of it
                model.use_runtime(runtime)
                if fast:
                    model.make_fast()
                self.runtime = model.use_runtime()
            except OnnxUnavailable as exc:
                raise PredictError(f"ONNX Runtime asked for but unavailable: {exc}") from exc
            except ValueError as exc:
                raise PredictError(str(exc)) from exc
        tokenizer = getattr(model, "tokenizer_", None)
        self.max_tokens = int(getattr(model, "max_length", 256)) - 2 if tokenizer is not None else 256

    @property
    def settings(self) -> dict:
        """What decides the rows of an output: the trained model (its saved metadata holds its
        parameters, calibration and metrics) and the review threshold."""
        meta = json.dumps(getattr(self.model, "meta_", {}), sort_keys=True, default=str)
        settings = {
            "model": hashlib.sha256(meta.encode("utf-8")).hexdigest()[:16],
            "kind": getattr(self.model, "kind", type(self.model).__name__),
            "review_below": round(self.threshold, 6),
        }
        if self.second_opinion is not None:  # only then: the records of other runs stay as they were
            settings["second_opinion"] = second_opinion_id(self.second_opinion)
        return settings

    @property
    def optional_fields(self) -> list[tuple[str, str]]:
        """The optional columns (`supportlens.schema`) this labeller's scores carry: the reason a
        language model could not code a passage, when the model is one; a second opinion's."""
        fields = list(REVIEW_REASON_FIELDS) if hasattr(self.model, "review_reasons") else []
        return fields + (list(SECOND_OPINION_FIELDS) if self.second_opinion is not None else [])

    def count_tokens(self, text: str) -> int:
        tokenizer = getattr(self.model, "tokenizer_", None)
        if tokenizer is None:
            return int(np.ceil(len(text.split()) * 1.3))
        return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def score(self, texts: list[str]) -> pd.DataFrame:
        """`supportlens.schema.score_columns` for `texts`, one row each, in order, then the
        `optional_fields` this labeller makes."""
        proba = self.model.predict_proba(texts) if texts else np.zeros((0, len(self.labels)))
        frame = score_frame(proba, self.labels, self.threshold, self.threshold_measured)
        if hasattr(self.model, "review_reasons"):  # a language model: why it could not code a passage
            reasons = pd.Series(self.model.review_reasons(texts) if texts else [], dtype=object)
            frame[REVIEW_REASON_COLUMN] = reasons
            # its label is no code but the first of equal probabilities: always for review
            frame["needs_review"] = frame["needs_review"].to_numpy(dtype=bool) | reasons.notna().to_numpy()
        if self.second_opinion is not None:
            second = ask_second_opinion(self.second_opinion, texts, frame["needs_review"].to_numpy(dtype=bool))
            frame = pd.concat([frame, second], axis=1)
        return frame


def second_opinion_id(model) -> str:
    """What decides a second opinion's answers (its prompt, model, endpoint and sampling), hashed:
    resuming a run with another second opinion would mix two in one output."""
    params = json.dumps(
        {"params": model.get_params(deep=False), "prompt": getattr(model, "prompt_hash", None)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(params.encode("utf-8")).hexdigest()[:16]


def ask_second_opinion(model, texts: list[str], flagged: np.ndarray) -> pd.DataFrame:
    """`SECOND_OPINION_FIELDS` for `texts`: for each passage in `flagged`, the language model's code,
    confidence and rationale, or no code and the reason when it could not code the passage (never
    a guess); nothing for the others, which are not sent."""
    columns = [name for name, _ in SECOND_OPINION_FIELDS]
    out = pd.DataFrame({name: pd.Series([None] * len(texts), dtype=object) for name in columns})
    asked = np.flatnonzero(flagged)
    if not len(asked):
        return out
    sent = [texts[i] for i in asked]
    proba = np.asarray(model.predict_proba(sent), dtype=float)
    reasons = model.review_reasons(sent)  # from the answers just read: nothing is asked again
    answers = model.answers(sent)
    classes = [str(c) for c in model.classes_]
    for row, p, reason, given in zip(asked, proba, reasons, answers):
        if reason is not None:
            out.at[row, "second_reason"] = str(reason)
            continue
        code = classes[int(p.argmax())]
        out.at[row, "second_label"] = code
        out.at[row, "second_confidence"] = float(p.max())
        # the model's own words for its code: the first sample that chose it
        out.at[row, "second_reason"] = next((a.rationale for a in given if a.code == code), None)
    return out


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``auto`` (cuda when torch sees one) as the device to run on."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise PredictError(f"`device` must be cpu, cuda or auto; got {device!r}")
    if device == "cuda" and not cuda_available():
        raise PredictError("`device='cuda'` asked for, but torch sees no CUDA device; use cpu or auto")
    return device
