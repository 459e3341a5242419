"""Evaluating a saved or logged model on a coded file, as an MLflow run: `supportlens evaluate`.

Here, not in `supportlens.evaluation`, because it fetches the model through MLflow and logs a run:
the metrics it computes stay pure functions there (`evaluate_model`), while this module, like the
rest of training, is where a model meets the tracking store.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supportlens import tracking
from supportlens.codebook import codebook_from_dict, load_codebook
from supportlens.config import DataConfig
from supportlens.corpus.dataset import listing, load_coded
from supportlens.corpus.sheets import sheet_data_config
from supportlens.evaluation.evaluate import Evaluation, evaluate_model, training_overlap
from supportlens.inference.label import allow_llm
from supportlens.models import load_classifier


def evaluate_file(
    model_uri: str,
    data_path: str,
    codebook_path: str | None = None,
    out_dir: str | None = None,
    tracking_uri: str | None = None,
    log_run: bool = True,
    data_cfg: DataConfig | None = None,
    allow_remote: bool = False,
    on_send: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate any saved or logged model on any coded file; optionally log it as an MLflow run.

    ``data_cfg`` names the file's columns; by default those of coded excerpts, or for a filled
    coding sheet (`supportlens next`) its ``code`` and ``source`` columns. Rows with no code (not
    coded yet) are skipped, as ``train --add-data`` skips them, and ``notes`` says how many; a
    code that is not in the codebook is still an error that names its row. A language model (kind
    ``llm``) may reach a remote host when ``allow_remote``, and says what it sends through ``on_send``."""
    model_dir = tracking.fetch_model_dir(model_uri, tracking_uri)
    model = load_classifier(model_dir)
    if model.kind == "llm":
        allow_llm(model, allow_remote, on_send)
    codebook = (
        load_codebook(codebook_path)
        if codebook_path
        else codebook_from_dict(model.meta_["codebook"], source=f"{model_dir}/codebook.yaml")
    )
    data_cfg = data_cfg or sheet_data_config(data_path, DataConfig())
    # one code is enough to score a model on (a classifier needs two only to learn)
    data = load_coded(data_path, codebook, data_cfg, skip_blank_labels=True, min_codes=1)
    frame = data.frame
    threshold = model.meta_.get("review_threshold")
    result = evaluate_model(
        model,
        frame["text"].tolist(),
        frame["label"].tolist(),
        frame["id"].tolist(),
        frame["group"].tolist(),
        name=Path(data_path).stem,
        review_threshold=threshold,
    )
    skipped = data.report.skipped_blank_labels
    if skipped:
        result.notes.append(
            f"{len(skipped)} row{'s' if len(skipped) > 1 else ''} with no code in "
            f"{data_cfg.label_column!r} skipped (not coded yet): rows {listing(skipped)}"
        )
    _check_overlap(result, model_dir, model.meta_, frame["text"].tolist(), data.digest, data_path)
    if out_dir:
        result.write(out_dir)
    if log_run:
        result.experiment = "supportlens-evaluations"
        tracking.setup(tracking_uri, result.experiment)
        with tracking.run(f"evaluate {Path(data_path).name}") as active:
            result.run_id = active.info.run_id
            tracking.set_tags(
                {
                    "model_uri": model_uri,
                    "model_kind": model.kind,
                    tracking.KIND_TAG: "evaluate",
                    "evaluated_file": Path(data_path).name,
                    "data_digest": data.digest,
                    "evaluation_of": model_uri,
                    **({"warning": " | ".join(result.warnings)} if result.warnings else {}),
                }
            )
            tracking.log_training_data(
                data.dataset, source=data_path, name=Path(data_path).stem, digest=data.digest, context="evaluation"
            )
            tracking.log_metrics(result.flat_metrics())
            with tempfile.TemporaryDirectory() as tmp:
                result.write(tmp)
                tracking.log_artifacts(tmp, "evaluation")
    return result


def _check_overlap(
    result: Evaluation, model_dir: Path, meta: dict[str, Any], texts: list[str], digest: str, data_path: str
) -> None:
    """Warn (and record in the metrics) when the file repeats excerpts the model learnt from:
    scores on them say how well it remembers, not how well it codes new interviews."""
    seen = training_overlap(model_dir, texts)
    test_kappa = (meta.get("test_metrics") or {}).get("kappa")
    held_out = (
        f" (its held-out test κ was {test_kappa:.3f})"
        if isinstance(test_kappa, (int, float)) and math.isfinite(test_kappa)
        else ""
    )
    if seen is None:  # a model saved before per-excerpt hashes: the whole file's digest still tells
        if meta.get("data_digest") == digest:
            result.warnings.append(
                f"{data_path} is the data this model was trained on (same data digest {digest}): these "
                f"scores are optimistic{held_out}; evaluate on interviews the model has not seen"
            )
        return
    result.metrics["n_seen_in_training"] = seen["train"]
    result.metrics["n_seen_in_validation"] = seen["val"]
    result.metrics["n_in_test_split"] = seen["test"]
    overlap = seen["train"] + seen["val"]
    if overlap:
        n = result.metrics["n"]
        result.warnings.append(
            f"{overlap} of {n} excerpts in {data_path} were this model's training ({seen['train']}) or "
            f"validation ({seen['val']}) data: these scores are optimistic{held_out}. Evaluate on "
            "interviews the model has not seen: remove those rows, or code a new sample"
        )
