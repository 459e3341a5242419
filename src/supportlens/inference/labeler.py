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
from supportlens.schema import score_frame


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
    ):
        """``runtime``: for fine-tuned models, ``auto`` (ONNX Runtime on CPU when possible), ``onnx``
        or ``torch``; None defers to ``$SUPPORTLENS_RUNTIME`` (see FineTuneClassifier.use_runtime)."""
        self.model = model
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
        return {
            "model": hashlib.sha256(meta.encode("utf-8")).hexdigest()[:16],
            "kind": getattr(self.model, "kind", type(self.model).__name__),
            "review_below": round(self.threshold, 6),
        }

    def count_tokens(self, text: str) -> int:
        tokenizer = getattr(self.model, "tokenizer_", None)
        if tokenizer is None:
            return int(np.ceil(len(text.split()) * 1.3))
        return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def score(self, texts: list[str]) -> pd.DataFrame:
        """`supportlens.schema.score_columns` for `texts`, one row each, in order."""
        proba = self.model.predict_proba(texts) if texts else np.zeros((0, len(self.labels)))
        return score_frame(proba, self.labels, self.threshold, self.threshold_measured)


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``auto`` (cuda when torch sees one) as the device to run on."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise PredictError(f"`device` must be cpu, cuda or auto; got {device!r}")
    if device == "cuda" and not cuda_available():
        raise PredictError("`device='cuda'` asked for, but torch sees no CUDA device; use cpu or auto")
    return device
