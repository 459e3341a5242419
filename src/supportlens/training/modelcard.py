"""The model card written beside every trained model and logged with its run."""

from __future__ import annotations

import math
from typing import Any

from supportlens.calibration import MIN_VAL_EXCERPTS, MIN_VAL_INTERVIEWS, Calibration, plural
from supportlens.codebook import Codebook
from supportlens.config import Config
from supportlens.corpus.dataset import CodedData
from supportlens.evaluation.evaluate import Evaluation
from supportlens.training.adapt import TrustReport


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _split_line(run_info: dict[str, Any], grouped: bool = True) -> str:
    """How the data were split, and into what (interviews are named only when the data have them)."""
    sizes, groups = run_info.get("split") or {}, run_info.get("split_interviews") or {}
    names = {"train": "train", "val": "validation", "test": "test"}
    if not grouped:
        return "split by excerpt, not by interview (no interview column): " + ", ".join(
            f"{names[k]} {sizes[k]} excerpts" for k in names if k in sizes
        )
    head = "split **by interview** (no interview in two parts): "
    if not groups:
        return head + str(sizes)
    return head + ", ".join(
        f"{names[k]} {sizes.get(k)} excerpts from {plural(groups[k], 'interview')}" for k in names if k in groups
    )


def _calibration_lines(
    cfg: Config,
    calibration: Calibration | None,
    val: Evaluation,
    threshold: float,
    temperature: float,
    trust: TrustReport | None = None,
) -> str:
    """What the confidence means, saying only what validation (or, calibrated on the target
    corpus, the cross-fitted trust figure) measured."""
    target = cfg.calibration.target_precision
    if calibration is None:  # a caller without the record: the figures alone
        return (
            f"- probabilities calibrated by temperature scaling on validation interviews (T = {temperature:.2f})\n"
            f"- passages with confidence below **{threshold:.3f}** are flagged `needs_review`"
        )
    if not calibration.threshold_measured:
        return (
            f"- **confidence not calibrated**: {'; '.join(calibration.notes)}. The model's own "
            f"probabilities are used (T = {temperature:.2f}); no human codes have "
            "checked what they are worth\n"
            "- **no review threshold** could be measured, so every passage is flagged `needs_review`. "
            f"Code more {'interviews' if calibration.grouped else 'excerpts'} and train again; "
            "`predict --review-below` sets a threshold of "
            "your choosing, one that no data has checked"
        )
    where = calibration.validation_text()
    if calibration.temperature_fitted:
        lines = [f"- probabilities calibrated by temperature scaling on {where} (T = {temperature:.2f})"]
    else:
        why = "; ".join(calibration.notes) or "calibration.temperature is off"
        lines = [f"- probabilities not temperature-scaled (T = {temperature:.2f}): {why}"]
    if calibration.on == "target":
        reached = (
            f"; cross-fitted, a threshold chosen this way reached precision {_fmt(trust.accepted_precision)} "
            f"on {_fmt(trust.accepted_share)} of them (target ≥ {target:.2f}; see below)"
            if trust is not None
            else ""
        )
        lines.append(
            f"- passages with confidence below **{threshold:.3f}** are flagged `needs_review`; chosen on the "
            f"{where}{reached}"
        )
        return "\n".join(lines)
    vm = val.metrics
    accepted = round((vm.get("accepted_share") or 0.0) * vm["n"])
    if not accepted:
        lines.append(
            f"- no confidence threshold reached precision ≥ {target:.2f} on the {where}, so every "
            "passage is flagged `needs_review`"
        )
    else:
        lines.append(
            f"- passages with confidence below **{threshold:.3f}** are flagged `needs_review`; on the "
            f"{where}, the {accepted} at or above it had precision "
            f"{_fmt(vm.get('accepted_precision'))} (target ≥ {target:.2f})"
        )
    return "\n".join(lines)


def _limits(data: CodedData, run_info: dict[str, Any], codebook: Codebook) -> str:
    lines = []
    authored = data.frame.loc[~data.frame["target"]] if "target" in data.frame else data.frame  # split ones
    n_interviews = int(authored["group"].nunique())
    needed = run_info.get("interviews_needed")
    groups = run_info.get("split_interviews") or {}
    sizes = run_info.get("split") or {}
    if not data.report.grouped:
        n_needed = run_info.get("excerpts_needed")
        if n_needed and len(data.frame) < n_needed:
            lines.append(
                f"- Trained on few excerpts ({len(data.frame)}; validation {sizes.get('val')}, test "
                f"{sizes.get('test')}): about {n_needed} would give validation and test "
                f"{MIN_VAL_EXCERPTS} excerpts each. Every figure above has wide uncertainty."
            )
        lines.append(
            "- The data have no interview column, so they were split by excerpt: excerpts of one "
            "interview can sit in both training and test, and the scores above may be higher than "
            "on interviews the model has not seen."
        )
    elif needed and n_interviews < needed:
        lines.append(
            f"- Trained on few interviews ({n_interviews}; validation {groups.get('val')}, test "
            f"{groups.get('test')}): about {needed} would give validation and test "
            f"{MIN_VAL_INTERVIEWS} interviews each. Every figure above rests on a few "
            "interviews and has wide uncertainty."
        )
    elif groups and groups.get("test", MIN_VAL_INTERVIEWS) < MIN_VAL_INTERVIEWS:
        lines.append(
            f"- The test split holds {plural(groups['test'], 'interview')}: per-code figures on it have "
            "wide uncertainty."
        )
    lines += [
        "- Authored or single-project training text transfers imperfectly to other interviews' language:\n"
        "  measure agreement with a human coder on a sample of your own transcripts before relying on it\n"
        "  (`supportlens evaluate --data your_sample.csv`; `--against` compares two models on it, paired).",
        "- Passages that mention several approaches are coded by the codebook's rule\n"
        f'  ("{codebook.multiple_approaches_rule[:160]}…"); the model will be least reliable there.',
    ]
    speakers = data.frame["speaker"].astype(str).str.strip().str.casefold() if "speaker" in data.frame else None
    n_interviewer = int((speakers == "interviewer").sum()) if speakers is not None else 0
    if n_interviewer:
        lines.append(
            f"- Interviewer talk was {n_interviewer} of the {len(data.frame)} training excerpts; very "
            "short turns and non-English text are outside what it was trained on."
        )
    else:
        lines.append(
            "- Interviewer talk (the training data mark no interviewer turns), very short turns and "
            "non-English text are outside what it was trained on."
        )
    return "\n".join(lines)


def render_model_card(
    cfg: Config,
    codebook: Codebook,
    data: CodedData,
    test: Evaluation,
    val: Evaluation,
    cv_metrics: dict[str, float],
    run_info: dict[str, Any],
    threshold: float,
    temperature: float,
    student: Any = None,
    calibration: Calibration | None = None,
    trust: TrustReport | None = None,
) -> str:
    """``student``: the model's distil.StudentReport when it has a ``--fast`` student;
    ``calibration``: what was fitted on validation (without it the card states the figures only);
    ``trust``: the cross-fitted agreement on passages coded on the user's own corpus (added files)."""
    m = test.metrics
    per_code = "\n".join(
        f"| {r.code} | {_fmt(r.precision)} | {_fmt(r.recall)} | {_fmt(r.f1)} | {r.support} |"
        for r in test.per_code.itertuples(index=False)
    )
    counts = data.frame["label"].value_counts().reindex(codebook.labels, fill_value=0)
    label_counts = ", ".join(f"{k} {v}" for k, v in counts.items())
    cv_line = ""
    if cv_metrics:
        cv_line = (
            f"\nGrouped cross-validation: macro-F1 {_fmt(cv_metrics['cv_macro_f1_mean'])} ± "
            f"{_fmt(cv_metrics['cv_macro_f1_sd'])}, Cohen's κ {_fmt(cv_metrics['cv_kappa_mean'])} ± "
            f"{_fmt(cv_metrics['cv_kappa_sd'])}.{_cv_calibration(cv_metrics)}\n"
        )
    student_line = ""
    if student is not None:
        student_line = (
            f"\n- `predict --fast` scores with a distilled student (teacher layers {student.layers}, "
            f"{student.texts} distillation texts) "
            f"and sends passages whose top two probabilities lie within {student.gate:.2f} to this model"
        )
        if student.val_changed is not None:
            student_line += (
                f"; on {student.val_passages} validation passages that sent "
                f"{student.val_rescored:.0%} to this model and changed "
                f"{student.val_changed:.2%} of labels"
            )
    authored = "starter.jsonl" in str(data.report.path)
    provenance = (
        "The bundled starter corpus: **authored, illustrative excerpts written for supportlens, not "
        "real participant data** (see `data/README.md`). Scores on it say how well the model learns "
        "the codebook from tidy authored text, not how it performs on your interviews."
        if authored
        else f"`{data.report.path}` (provided by the user)."
    )
    grouped = data.report.grouped
    target = run_info.get("target")
    test_groups = (run_info.get("split_interviews") or {}).get("test")
    test_from = (
        f" excerpts from {plural(test_groups, 'interview')}"
        if grouped and test_groups is not None
        else " excerpts"
        if not grouped
        else ""
    )
    return f"""# Model card: supportlens {cfg.model.kind}

## Intended use
A **coding assistant** for qualitative researchers who code interviews with implementation support
practitioners as push, pull, co-creation/exchange or none (codebook `{codebook.name}` v{codebook.version}).
It suggests a code and a confidence for each passage; a human coder decides. It is not meant to
replace human coding, to score individual practitioners, or to be used on other kinds of text
without checking agreement on a coded sample first.

## Model
- kind: `{cfg.model.kind}`; encoder: `{cfg.model.pretrained if cfg.model.kind != "tfidf_logreg" else "none (TF-IDF)"}`
{_calibration_lines(cfg, calibration, val, threshold, temperature, trust)}
- run: `{run_info.get("run_id")}`; seed {cfg.seed}; training time {run_info.get("train_seconds", 0):.1f}s{student_line}

## Training data
{provenance}

- {data.report.rows_kept} excerpts ({label_counts}), data digest `{data.digest}`
- {_split_line(run_info, grouped)}
- {data.report.summary().splitlines()[0]}{_target_line(run_info)}

## Evaluation (held-out test {"interviews" if grouped else "excerpts"}{" of the authored data" if target else ""})
Macro-F1 {_fmt(m["macro_f1"])}, accuracy {_fmt(m["accuracy"])}, Cohen's κ {_fmt(m["kappa"])}
(bootstrap 95% interval {_fmt(m.get("kappa_ci_low"))} to {_fmt(m.get("kappa_ci_high"))}),
Krippendorff's α {_fmt(m["alpha"])}, expected calibration error {_fmt(m["ece"])}, n = {m["n"]}{test_from}.
{_accepted_line(m, calibration)}
{cv_line}
| code | precision | recall | F1 | support |
|---|---|---|---|---|
{per_code}
{_trust_section(trust, target)}
## Known limits
{_limits(data, run_info, codebook)}
"""


def _cv_calibration(cv_metrics: dict[str, float]) -> str:
    """Said only when some folds were too small to calibrate: their ECE is for T = 1."""
    folds, calibrated = cv_metrics.get("cv_folds"), cv_metrics.get("cv_folds_calibrated")
    if folds is None or calibrated is None or calibrated >= folds:
        return ""
    return (
        f" {folds - calibrated:.0f} of the {folds:.0f} folds had too little inner validation to be "
        "calibrated: their confidences (and the cross-validated ECE) are the models' own (T = 1)."
    )


def _accepted_line(m: dict[str, Any], calibration: Calibration | None) -> str:
    if calibration is not None and not calibration.threshold_measured:
        return "No review threshold was measured: every passage is flagged for review."
    share = m.get("accepted_share")
    if share is None or not math.isfinite(share) or share == 0:
        return "No test passage reached the review threshold: all were flagged for review."
    return (
        f"Share of passages accepted at the review threshold: {_fmt(share)} "
        f"(precision among them {_fmt(m.get('accepted_precision'))})."
    )


def _target_line(run_info: dict[str, Any]) -> str:
    """The added files' passages: the target domain, trained on whole (`training.adapt`)."""
    target = run_info.get("target")
    if not target:
        return ""
    source = f" from {plural(target['interviews'], 'interview')}" if target.get("interviews") else ""
    continued = f"; continued from `{target['init_from']}`" if target.get("init_from") else ""
    return (
        f"\n- {plural(target['passages'], 'passage')}{source} coded on your own corpus "
        f"({', '.join(f'`{f}`' for f in target['files'])}): the target domain, not split but all trained on "
        f"({target['adapt']}){continued}"
    )


def _trust_section(trust: TrustReport | None, target: dict[str, Any] | None) -> str:
    """The figure a methods section can quote: agreement on the user's own coded passages."""
    if not target:
        return ""
    if trust is None:
        return "\n## Agreement on your own coded passages\nOne passage cannot be cross-fitted: no figure.\n"
    body = "\n".join(f"- {line}" for line in trust.lines())
    return (
        "\n## Agreement on your own coded passages (cross-fitted)\n"
        "The figure to quote for your corpus: the test figures above are on authored interviews.\n\n"
        f"{body}\n"
    )
