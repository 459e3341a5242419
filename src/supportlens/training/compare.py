"""Compare model configs side by side: grouped CV on the coded corpus, the held-out test
interviews, and transfer to other language (a development set of real quotes, gold-coded
transcripts), all tracked as one MLflow parent run with a nested run per config.

A model that looks excellent on its own corpus can fail on real speech, so every config is
judged on both. External sets are only scored: nothing here fits or tunes on them. Inside one
comparison, frozen-encoder embeddings and identical fits are computed once and shared
(:func:`~supportlens.models.encoders.embedding_cache`, :func:`~supportlens.models.fitting.reuse_fits`),
so an ensemble costs no more than its members already did.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from supportlens import tracking
from supportlens.calibration import coverage_at_precision
from supportlens.codebook import Codebook, load_codebook
from supportlens.config import Config, DataConfig, load_config
from supportlens.corpus.dataset import CodedData, load_coded
from supportlens.corpus.splits import grouped_split
from supportlens.evaluation.agreement import paired_kappa_difference
from supportlens.evaluation.evaluate import evaluate_proba
from supportlens.models.encoders import embedding_cache, suspend_embedding_cache
from supportlens.models.fitting import fit_and_calibrate, reuse_fits
from supportlens.training.trainer import cross_validate, peak_memory_mb

Logger = Callable[[str], None]


@dataclass
class Benchmarks:
    """Language the models never train on: a coded development file and gold-coded transcripts."""

    dev: Path | None = None
    gold: list[tuple[Path, Path]] = field(default_factory=list)  # (transcript, gold jsonl)

    @classmethod
    def find(cls, root: Path, dev: str | Path | None = None) -> Benchmarks:
        """The real-quote dev set (if present) and every ``data/transcripts/gold/*.jsonl``."""
        gold = []
        gold_dir = root / "data" / "transcripts" / "gold"
        for g in sorted(gold_dir.glob("*.jsonl")):
            sources = [p for p in (root / "data" / "transcripts").glob(g.stem + ".*") if p.is_file()]
            if sources:
                gold.append((sources[0], g))
        dev_path = Path(dev) if dev else None
        return cls(dev=dev_path if dev_path is not None and dev_path.is_file() else None, gold=gold)


def transfer_metrics(y_true, proba: np.ndarray, labels: list[str], threshold: float, prefix: str) -> dict[str, float]:
    """Macro-F1, κ (with CI), per-code recall and how the review threshold holds on a set."""
    ev = evaluate_proba(y_true, proba, labels, name=prefix, review_threshold=threshold)
    m = ev.metrics
    confidence = proba.max(1)
    correct = np.asarray(labels, dtype=object)[proba.argmax(1)] == np.asarray(y_true, dtype=object)
    out = {
        f"{prefix}_macro_f1": m["macro_f1"],
        f"{prefix}_kappa": m["kappa"],
        f"{prefix}_kappa_ci_low": m["kappa_ci_low"],
        f"{prefix}_kappa_ci_high": m["kappa_ci_high"],
        f"{prefix}_accuracy": m["accuracy"],
        f"{prefix}_ece": m["ece"],
        f"{prefix}_accepted_share": m.get("accepted_share", float("nan")),
        f"{prefix}_accepted_precision": m.get("accepted_precision", float("nan")),
        f"{prefix}_coverage_at_80": coverage_at_precision(confidence, correct, 0.8),
        f"{prefix}_coverage_at_90": coverage_at_precision(confidence, correct, 0.9),
    }
    out.update({f"{prefix}_recall_{r.code}": float(r.recall) for r in ev.per_code.itertuples()})
    return out


def gold_metrics(model, gold: list[tuple[Path, Path]], threshold: float = 0.0) -> dict[str, float]:
    """read -> segment -> label on gold-coded transcripts; agreement with the gold codes."""
    from sklearn.metrics import f1_score

    from supportlens.evaluation.agreement import cohens_kappa
    from supportlens.inference.labeler import Labeler
    from supportlens.inference.predict import gold_comparison

    if not gold:
        return {}
    labeler = Labeler(model, review_below=threshold)
    frame = pd.concat([gold_comparison(labeler, source, g) for source, g in gold])
    return {
        "gold_passages": float(len(frame)),
        "gold_macro_f1": float(f1_score(frame["human"], frame["model"], average="macro")),
        "gold_kappa": float(cohens_kappa(frame["human"], frame["model"])),
    }


def evaluate_config(
    cfg: Config,
    frame: pd.DataFrame,
    labels: list[str],
    folds: int,
    benchmarks: Benchmarks,
    dev: CodedData | None,
    log: Logger = print,
    predictions: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Every figure for one config on one corpus: CV, test split, dev set, gold transcripts, speed.
    ``predictions``, when given, receives the dev set's predicted codes under ``"dev"``."""
    row: dict[str, float] = {"n_excerpts": float(len(frame)), "n_interviews": float(frame["group"].nunique())}
    if folds > 1:
        cv, _ = cross_validate(cfg, labels, frame, folds, log)
        row.update({k: v for k, v in cv.items() if k.startswith(("cv_macro_f1", "cv_kappa"))})
    texts, codes, groups = frame["text"].tolist(), frame["label"].to_numpy(dtype=object), frame["group"].to_numpy()
    split = grouped_split(codes, groups, cfg.split.test_size, cfg.split.val_size, cfg.seed)
    model, calibration, seconds = fit_and_calibrate(
        cfg,
        labels,
        [texts[i] for i in split.train],
        codes[split.train],
        [texts[i] for i in split.val],
        codes[split.val],
        groups[split.val],
    )
    threshold = calibration.review_threshold
    row.update({"train_seconds": seconds, "review_threshold": threshold, "temperature": model.temperature_})
    test = frame.iloc[split.test]
    with suspend_embedding_cache():  # time real inference, not cache look-ups
        started = time.perf_counter()
        proba = model.predict_proba(test["text"].tolist())
        row["predict_per_second"] = len(test) / max(time.perf_counter() - started, 1e-9)
    row.update(transfer_metrics(test["label"].to_numpy(dtype=object), proba, labels, threshold, "test"))
    if dev is not None:
        dev_proba = model.predict_proba(dev.frame["text"].tolist())
        row.update(transfer_metrics(dev.frame["label"].to_numpy(dtype=object), dev_proba, labels, threshold, "dev"))
        if predictions is not None:
            predictions["dev"] = np.asarray(labels, dtype=object)[dev_proba.argmax(1)]
    row.update(gold_metrics(model, benchmarks.gold, threshold))
    return row


def load_dev(benchmarks: Benchmarks, codebook: Codebook) -> CodedData | None:
    if benchmarks.dev is None:
        return None
    return load_coded(benchmarks.dev, codebook, DataConfig(group_column="id"))


def compare(
    configs: list[str | Path],
    folds: int = 5,
    benchmarks: Benchmarks | None = None,
    overrides: list[str] | None = None,
    data_path: str | None = None,
    tracking_uri: str | None = None,
    experiment: str = "supportlens-compare",
    run_name: str | None = None,
    log: Logger = print,
    embedding_dir: str | Path | None = None,
    reference: str | None = None,
) -> pd.DataFrame:
    """Evaluate each config; one row per config. Tracked as a parent run with nested runs.
    ``embedding_dir`` keeps frozen-encoder vectors on disk between comparisons. On the dev set each
    config's κ is also compared with ``reference``'s (a config name; default: ``default`` when it is
    among the configs, else the first) by a paired bootstrap; ``table.attrs`` keeps the reference
    and every config's dev predictions."""
    benchmarks = benchmarks or Benchmarks()
    cfgs = [load_config(c, overrides) for c in configs]  # fail on a bad config before any training
    names = [Path(c).stem for c in configs]
    if reference is not None and reference not in names:
        raise ValueError(f"reference config {reference!r} is not among the configs compared ({', '.join(names)})")
    reference = reference or ("default" if "default" in names else names[0])
    codebooks = {c.codebook for c in cfgs}
    if len(codebooks) != 1:
        raise ValueError(f"configs use different codebooks ({', '.join(sorted(codebooks))}); compare like with like")
    codebook = load_codebook(cfgs[0].codebook)
    labels = codebook.labels
    data_paths = {data_path or c.data.path for c in cfgs}
    if len(data_paths) != 1:
        raise ValueError(f"configs use different data ({', '.join(sorted(data_paths))}); pass data_path")
    data = load_coded(data_paths.pop(), codebook, cfgs[0].data)
    dev = load_dev(benchmarks, codebook)
    rows = []
    dev_predictions: dict[str, np.ndarray] = {}
    tracking.setup(tracking_uri, experiment)
    with tracking.run(run_name or f"compare {len(cfgs)} configs", tags={"kind": "comparison"}):
        tracking.log_params(
            {
                "configs": ", ".join(str(c) for c in configs),
                "folds": folds,
                "data_digest": data.digest,
                "n_excerpts": len(data.frame),
                "dev_set": str(benchmarks.dev),
                "overrides": " ".join(overrides or []),
            }
        )
        with embedding_cache(embedding_dir), reuse_fits():
            for name, cfg in zip(names, cfgs):
                log(f"== {name} ({cfg.model.kind}, {cfg.describe_model()})")
                started = time.perf_counter()
                with tracking.run(name, tags={"model_kind": cfg.model.kind, "data_digest": data.digest}, nested=True):
                    tracking.log_params(cfg.flat())
                    kept: dict[str, np.ndarray] = {}
                    row = evaluate_config(cfg, data.frame, labels, folds, benchmarks, dev, log, kept)
                    if "dev" in kept:
                        dev_predictions[name] = kept["dev"]
                    row["wall_seconds"] = time.perf_counter() - started
                    tracking.log_metrics(row)
                rows.append({"config": name, "kind": cfg.model.kind, "encoder": cfg.describe_model(), **row})
                log("   " + _brief(rows[-1]))
        table = pd.DataFrame(rows)
        if dev is not None and reference in dev_predictions:
            _paired_deltas(table, dev.frame, dev_predictions, reference, labels)
            log(
                f"dev κ difference from {reference}: "
                + ", ".join(f"{r.config} {r.dev_kappa_delta:+.3f}" for r in table.itertuples() if r.config != reference)
            )
        with tempfile_dir() as tmp:
            table.to_csv(tmp / "comparison.csv", index=False)
            (tmp / "comparison.md").write_text(markdown_table(table), encoding="utf-8")
            tracking.log_artifact(tmp / "comparison.csv", "comparison")
            tracking.log_artifact(tmp / "comparison.md", "comparison")
            if "dev_predictions" in table.attrs:
                table.attrs["dev_predictions"].to_csv(tmp / "dev_predictions.csv", index=False)
                tracking.log_artifact(tmp / "dev_predictions.csv", "comparison")
        tracking.log_metrics({"peak_memory_mb": peak_memory_mb()})
    return table


def _paired_deltas(
    table: pd.DataFrame, dev: pd.DataFrame, predictions: dict[str, np.ndarray], reference: str, labels: list[str]
) -> None:
    """Add each config's dev κ minus the reference's, with a paired bootstrap 95% interval."""
    truth = dev["label"].to_numpy(dtype=object)
    for column in ("dev_kappa_delta", "dev_kappa_delta_ci_low", "dev_kappa_delta_ci_high"):
        table[column] = np.nan
    for i, name in enumerate(table["config"]):
        if name in predictions:
            est = paired_kappa_difference(truth, predictions[reference], predictions[name], labels)
            table.loc[i, ["dev_kappa_delta", "dev_kappa_delta_ci_low", "dev_kappa_delta_ci_high"]] = (
                est.value,
                est.low,
                est.high,
            )
    ids = dev["id"] if "id" in dev.columns else pd.Series(range(len(dev)))
    table.attrs["reference"] = reference
    table.attrs["dev_predictions"] = pd.DataFrame({"id": ids.to_numpy(), **predictions})


def _brief(row: dict) -> str:
    parts = []
    for key, label in (
        ("cv_kappa_mean", "CV κ"),
        ("test_kappa", "test κ"),
        ("dev_kappa", "dev κ"),
        ("gold_kappa", "gold κ"),
        ("train_seconds", "train s"),
    ):
        if key in row:
            parts.append(f"{label} {row[key]:.3f}" if "seconds" not in key else f"{label} {row[key]:.0f}")
    return ", ".join(parts)


@contextlib.contextmanager
def tempfile_dir():
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="supportlens-compare-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fmt(row: pd.Series, key: str, sd: str | None = None, digits: int = 3) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    text = f"{value:.{digits}f}"
    if sd and sd in row and pd.notna(row[sd]):
        text += f" ± {row[sd]:.{digits}f}"
    return text


def markdown_table(table: pd.DataFrame) -> str:
    """The side-by-side table (quality on the corpus, transfer, abstention, cost)."""
    reference = table.attrs.get("reference", "the reference")
    lines = [
        "| config | kind | encoder | CV macro-F1 | CV κ | test κ | dev macro-F1 | dev κ [95% CI] | "
        f"dev κ minus {reference}'s [paired 95% CI] | "
        "dev recall push / pull / co_creation / none | dev precision at threshold (share accepted) | "
        "dev coverage at 80% / 90% precision | gold κ | train s | passages/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        recall = " / ".join(_fmt(r, f"dev_recall_{c}", digits=2) for c in ("push", "pull", "co_creation", "none"))
        ci = (
            f" [{r['dev_kappa_ci_low']:.2f}, {r['dev_kappa_ci_high']:.2f}]"
            if "dev_kappa_ci_low" in r and pd.notna(r.get("dev_kappa_ci_low"))
            else ""
        )
        delta = _fmt(r, "dev_kappa_delta", digits=3)
        if r["config"] == reference and delta != "–":
            delta = "(reference)"
        elif delta != "–" and pd.notna(r.get("dev_kappa_delta_ci_low")):
            delta = (
                f"{r['dev_kappa_delta']:+.3f} [{r['dev_kappa_delta_ci_low']:+.2f}, {r['dev_kappa_delta_ci_high']:+.2f}]"
            )
        lines.append(
            f"| {r['config']} | {r['kind']} | {r['encoder']} | {_fmt(r, 'cv_macro_f1_mean', 'cv_macro_f1_sd')} | "
            f"{_fmt(r, 'cv_kappa_mean', 'cv_kappa_sd')} | {_fmt(r, 'test_kappa')} | {_fmt(r, 'dev_macro_f1')} | "
            f"{_fmt(r, 'dev_kappa')}{ci} | {delta} | {recall} | {_fmt(r, 'dev_accepted_precision', digits=2)} "
            f"({_fmt(r, 'dev_accepted_share', digits=2)}) | {_fmt(r, 'dev_coverage_at_80', digits=2)} / "
            f"{_fmt(r, 'dev_coverage_at_90', digits=2)} | {_fmt(r, 'gold_kappa')} | "
            f"{_fmt(r, 'train_seconds', digits=0)} | "
            f"{_fmt(r, 'predict_per_second', digits=0)} |"
        )
    return "\n".join(lines) + "\n"


def write_results(table: pd.DataFrame, out: str | Path, info: dict) -> tuple[Path, Path]:
    """``out``.json (every figure) and ``out``.md (the table), written atomically."""
    from supportlens.io.atomic import write_atomic

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**info, "reference": table.attrs.get("reference"), "rows": json.loads(table.to_json(orient="records"))}
    json_path, md_path = out.with_suffix(".json"), out.with_suffix(".md")
    write_atomic(json_path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2), encoding="utf-8"))
    header = "".join(f"{k}: {v}  \n" for k, v in info.items() if isinstance(v, (str, int, float)))
    write_atomic(md_path, lambda tmp: Path(tmp).write_text(header + "\n" + markdown_table(table), encoding="utf-8"))
    if "dev_predictions" in table.attrs:  # ids and predicted codes only: the quotes stay where they are
        preds = out.with_name(out.name + "_dev_predictions.csv")
        write_atomic(preds, lambda tmp: table.attrs["dev_predictions"].to_csv(tmp, index=False))
    return json_path, md_path
