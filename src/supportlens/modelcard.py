"""The model card written beside every trained model and logged with its run."""

from __future__ import annotations

from typing import Any

from .codebook import Codebook
from .config import Config
from .dataset import CodedData
from .evaluate import Evaluation


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def render_model_card(cfg: Config, codebook: Codebook, data: CodedData, test: Evaluation,
                      val: Evaluation, cv_metrics: dict[str, float], run_info: dict[str, Any],
                      threshold: float, temperature: float, student: Any = None) -> str:
    """``student``: the model's distil.StudentReport when it has a ``--fast`` student."""
    m = test.metrics
    per_code = "\n".join(
        f"| {r.code} | {_fmt(r.precision)} | {_fmt(r.recall)} | {_fmt(r.f1)} | {r.support} |"
        for r in test.per_code.itertuples(index=False)
    )
    counts = data.frame["label"].value_counts().reindex(codebook.labels, fill_value=0)
    label_counts = ", ".join(f"{k} {v}" for k, v in counts.items())
    cv_line = ""
    if cv_metrics:
        cv_line = (f"\nGrouped cross-validation: macro-F1 {_fmt(cv_metrics['cv_macro_f1_mean'])} ± "
                   f"{_fmt(cv_metrics['cv_macro_f1_sd'])}, Cohen's κ {_fmt(cv_metrics['cv_kappa_mean'])} ± "
                   f"{_fmt(cv_metrics['cv_kappa_sd'])}.\n")
    student_line = ""
    if student is not None:
        student_line = (f"\n- `predict --fast` scores with a distilled student (teacher layers {student.layers}, "
                        f"{student.texts} distillation texts) "
                        f"and sends passages whose top two probabilities lie within {student.gate:.2f} to this model")
        if student.val_changed is not None:
            student_line += (f"; on {student.val_passages} validation passages that sent "
                             f"{student.val_rescored:.0%} to this model and changed "
                             f"{student.val_changed:.2%} of labels")
    authored = "starter.jsonl" in str(data.report.path)
    provenance = (
        "The bundled starter corpus: **authored, illustrative excerpts written for supportlens, not "
        "real participant data** (see `data/README.md`). Scores on it say how well the model learns "
        "the codebook from tidy authored text, not how it performs on your interviews."
        if authored else f"`{data.report.path}` (provided by the user)."
    )
    return f"""# Model card: supportlens {cfg.model.kind}

## Intended use
A **coding assistant** for qualitative researchers who code interviews with implementation support
practitioners as push, pull, co-creation/exchange or none (codebook `{codebook.name}` v{codebook.version}).
It suggests a code and a confidence for each passage; a human coder decides. It is not meant to
replace human coding, to score individual practitioners, or to be used on other kinds of text
without checking agreement on a coded sample first.

## Model
- kind: `{cfg.model.kind}`; encoder: `{cfg.model.pretrained if cfg.model.kind != 'tfidf_logreg' else 'none (TF-IDF)'}`
- probabilities calibrated by temperature scaling on validation interviews (T = {temperature:.2f})
- passages with confidence below **{threshold:.3f}** are flagged `needs_review`; this threshold
  reached precision ≥ {cfg.calibration.target_precision:.2f} on the validation interviews
- run: `{run_info.get('run_id')}`; seed {cfg.seed}; training time {run_info.get('train_seconds', 0):.1f}s{student_line}

## Training data
{provenance}

- {data.report.rows_kept} excerpts ({label_counts}), data digest `{data.digest}`
- split **by interview** (no interview in two parts): {run_info.get('split')}
- {data.report.summary().splitlines()[0]}

## Evaluation (held-out test interviews)
Macro-F1 {_fmt(m['macro_f1'])}, accuracy {_fmt(m['accuracy'])}, Cohen's κ {_fmt(m['kappa'])}
(bootstrap 95% interval {_fmt(m.get('kappa_ci_low', float('nan')))}–{_fmt(m.get('kappa_ci_high', float('nan')))}),
Krippendorff's α {_fmt(m['alpha'])}, expected calibration error {_fmt(m['ece'])}, n = {m['n']}.
Share of passages accepted at the review threshold: {_fmt(m.get('accepted_share', float('nan')))}
(precision among them {_fmt(m.get('accepted_precision', float('nan')))}).
{cv_line}
| code | precision | recall | F1 | support |
|---|---|---|---|---|
{per_code}

## Known limits
- Trained on few interviews; per-code figures on a small test split have wide uncertainty.
- Authored or single-project training text transfers imperfectly to other interviews' language:
  measure agreement with a human coder on a sample of your own transcripts before relying on it
  (`supportlens evaluate --data your_sample.csv`; `--against` compares two models on it, paired).
- Passages that mention several approaches are coded by the codebook's rule
  ("{codebook.multiple_approaches_rule[:160]}…"); the model will be least reliable there.
- Interviewer talk, very short turns and non-English text are outside what it was trained on.
"""
