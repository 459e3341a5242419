"""Evaluation against human codes: the figures and files a methods section needs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from supportlens.calibration import coverage_at_precision, expected_calibration_error, reliability_table
from supportlens.corpus.dataset import text_key
from supportlens.evaluation.agreement import compare_codings
from supportlens.evaluation.plots import confusion_png, reliability_png

# Beside a trained model: a hash of each training, validation and test excerpt's text, so that an
# evaluation can tell when it scores the model on excerpts it learnt from.
EXCERPTS_FILE = "excerpts.json"
_HASH_NOTE = "sha256 of the text with whitespace collapsed and case folded, first 16 hex digits"


def excerpt_hash(text: str) -> str:
    """`_HASH_NOTE`: the hash of `dataset.text_key`, so "seen in training" means what "already
    coded" and "repeated excerpt" mean."""
    return hashlib.sha256(text_key(text).encode("utf-8")).hexdigest()[:16]


def excerpt_hashes(parts: dict[str, Sequence[str]]) -> dict[str, Any]:
    """The content of `EXCERPTS_FILE`: per part of the split, the hashes of its excerpts' texts."""
    return {"hash": _HASH_NOTE, **{part: [excerpt_hash(t) for t in texts] for part, texts in parts.items()}}


def training_overlap(model_dir: str | Path, texts: Sequence[str]) -> dict[str, int] | None:
    """How many of ``texts`` the model saw in training and validation (and its test split held);
    None for a model saved without `EXCERPTS_FILE`."""
    path = Path(model_dir) / EXCERPTS_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    hashes = [excerpt_hash(t) for t in texts]
    parts = {part: set(saved.get(part, [])) for part in ("train", "val", "test")}  # once, not per text
    return {part: sum(h in seen for h in hashes) for part, seen in parts.items()}


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None, so json.dumps writes strict JSON (null)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class Evaluation:
    name: str
    labels: list[str]
    metrics: dict[str, float]
    per_code: pd.DataFrame
    confusion: np.ndarray
    reliability: list[dict[str, float]]
    misclassified: pd.DataFrame
    predictions: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)  # what loading the coded file left out, and why
    warnings: list[str] = field(default_factory=list)  # why the figures may mislead (seen excerpts)
    run_id: str | None = None  # the MLflow run this evaluation was logged as; None: not logged
    experiment: str | None = None  # and the experiment that holds it

    def flat_metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Metrics plus per-code precision/recall/F1, ready for ``mlflow.log_metrics``."""
        p = f"{prefix}_" if prefix else ""
        out = {f"{p}{k}": float(v) for k, v in self.metrics.items() if v is not None}
        for row in self.per_code.itertuples(index=False):
            for m in ("precision", "recall", "f1"):
                out[f"{p}{m}_{row.code}"] = float(getattr(row, m))
        return out

    def write(self, directory: str | Path) -> list[Path]:
        """Write every artifact under ``directory``; returns the paths written.

        They are all made in a temporary folder inside it first, then each is renamed into place:
        a failure part way (a plot, a full disk) leaves the earlier files as they were."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=d, prefix=".evaluation.") as staging:
            made = self._write_files(Path(staging))
            for path in made:
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
            for path in made:
                os.replace(path, d / path.name)
        return [d / path.name for path in made]

    def _write_files(self, d: Path) -> list[Path]:
        files = []
        (d / "metrics.json").write_text(json.dumps(json_ready(self.metrics), indent=2), encoding="utf-8")
        files.append(d / "metrics.json")
        self.per_code.to_csv(d / "per_code.csv", index=False)
        files.append(d / "per_code.csv")
        pd.DataFrame(
            self.confusion, index=[f"human_{x}" for x in self.labels], columns=[f"model_{x}" for x in self.labels]
        ).to_csv(d / "confusion_matrix.csv")
        files.append(d / "confusion_matrix.csv")
        files.append(confusion_png(self.confusion, self.labels, d / "confusion_matrix.png", f"Confusion: {self.name}"))
        pd.DataFrame(self.reliability).to_csv(d / "calibration.csv", index=False)
        files.append(d / "calibration.csv")
        files.append(
            reliability_png(self.reliability, self.metrics["ece"], d / "reliability.png", f"Reliability: {self.name}")
        )
        self.misclassified.to_csv(d / "misclassified.csv", index=False)
        files.append(d / "misclassified.csv")
        self.predictions.to_csv(d / "predictions.csv", index=False)
        files.append(d / "predictions.csv")
        return files


def evaluate_proba(
    y_true: Sequence[str] | np.ndarray,
    proba: np.ndarray,
    labels: Sequence[str],
    texts: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    name: str = "test",
    review_threshold: float | None = None,
) -> Evaluation:
    """Compare predicted probabilities (columns = ``labels``) with human codes."""
    labels = list(labels)
    y_true = np.asarray(y_true, dtype=object)
    proba = np.asarray(proba, dtype=float)
    pred_idx = proba.argmax(axis=1)
    y_pred = np.asarray(labels, dtype=object)[pred_idx]
    confidence = proba.max(axis=1)
    correct = y_pred == y_true
    present = [lab for lab in labels if lab in set(y_true) | set(y_pred)]
    ece = expected_calibration_error(confidence, correct)
    # model vs human agreement with the same implementation (and bootstrap) coders use
    agreement = compare_codings(
        pd.DataFrame({"code": y_true}), pd.DataFrame({"code": y_pred}), labels, n_boot=1000, seed=13
    )
    metrics: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "kappa": agreement.kappa.value,
        "kappa_ci_low": agreement.kappa.low,
        "kappa_ci_high": agreement.kappa.high,
        "alpha": agreement.alpha.value,
        "alpha_ci_low": agreement.alpha.low,
        "alpha_ci_high": agreement.alpha.high,
        "ece": ece,
        "coverage_at_80": coverage_at_precision(confidence, correct, 0.8),
        "coverage_at_90": coverage_at_precision(confidence, correct, 0.9),
    }
    if review_threshold is not None:
        accepted = confidence >= review_threshold
        metrics["review_threshold"] = float(review_threshold)
        metrics["accepted_share"] = float(accepted.mean())
        metrics["accepted_precision"] = float(correct[accepted].mean()) if accepted.any() else float("nan")
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_code = pd.DataFrame(
        {"code": labels, "precision": prec, "recall": rec, "f1": f1, "support": support.astype(int)}
    )
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    n = len(y_true)
    predictions = pd.DataFrame(
        {
            "id": list(ids) if ids is not None else [str(i) for i in range(n)],
            "group": list(groups) if groups is not None else [""] * n,
            "text": list(texts) if texts is not None else [""] * n,
            "human": y_true,
            "model": y_pred,
            "confidence": confidence,
            **{f"p_{lab}": proba[:, j] for j, lab in enumerate(labels)},
        }
    )
    mis = predictions.loc[~correct].sort_values("confidence", ascending=False).reset_index(drop=True)
    return Evaluation(
        name=name,
        labels=labels,
        metrics=metrics,
        per_code=per_code,
        confusion=cm,
        reliability=reliability_table(confidence, correct),
        misclassified=mis,
        predictions=predictions,
    )


def paired_difference(a: Evaluation, b: Evaluation, n_boot: int = 2000, seed: int = 13) -> dict[str, float | int]:
    """κ of ``a`` minus κ of ``b`` on the same coded excerpts, with a paired bootstrap 95% interval.

    On a small hand-coded sample two separate κ intervals nearly always overlap; the paired one
    asks whether one model agrees with the coders better than the other on these excerpts."""
    from supportlens.evaluation.agreement import paired_kappa_difference

    if a.labels != b.labels:
        raise ValueError(
            f"the models code with different codebooks ({a.labels} and {b.labels}): compare like with like"
        )
    pa, pb = a.predictions, b.predictions
    if list(pa["id"]) != list(pb["id"]) or list(pa["human"]) != list(pb["human"]):
        raise ValueError("the two evaluations are not of the same coded excerpts")
    est = paired_kappa_difference(
        pa["human"].tolist(), pb["model"].tolist(), pa["model"].tolist(), a.labels, n_boot=n_boot, seed=seed
    )
    return {
        "n": len(pa),
        "kappa_a": float(a.metrics["kappa"]),
        "kappa_b": float(b.metrics["kappa"]),
        "kappa_difference": est.value,
        "kappa_difference_ci_low": est.low,
        "kappa_difference_ci_high": est.high,  # counts are counts: integers in against.json
        "both_right": int(((pa["model"] == pa["human"]) & (pb["model"] == pb["human"])).sum()),
        "only_a_right": int(((pa["model"] == pa["human"]) & (pb["model"] != pb["human"])).sum()),
        "only_b_right": int(((pa["model"] != pa["human"]) & (pb["model"] == pb["human"])).sum()),
    }


def evaluate_model(
    model,
    texts: Sequence[str],
    y_true: Sequence[str],
    ids=None,
    groups=None,
    name: str = "test",
    review_threshold: float | None = None,
) -> Evaluation:
    """Score ``texts`` with any fitted supportlens model and evaluate."""
    proba = model.predict_proba(list(texts))
    return evaluate_proba(y_true, proba, list(model.classes_), texts, ids, groups, name, review_threshold)


def summarise_folds(
    fold_metrics: list[dict[str, float]], keys: Sequence[str] = ("accuracy", "macro_f1", "kappa", "alpha", "ece")
) -> dict[str, float]:
    """Mean and sample standard deviation of each metric over cross-validation folds."""
    out = {}
    for key in keys:
        values = np.array([m[key] for m in fold_metrics if key in m], dtype=float)
        if len(values):
            out[f"cv_{key}_mean"] = float(np.nanmean(values))
            out[f"cv_{key}_sd"] = float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0
    return out
