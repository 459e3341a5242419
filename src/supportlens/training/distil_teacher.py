"""Distillation: a language model (the *teacher*) codes the researcher's uncoded transcripts, and a
fast classifier (the *student*) learns from its codes, beside the authored corpus and the passages
a person coded, each of which counts `HUMAN_WEIGHT` times a teacher's code.

The outline (`distil`):
1. the teacher labels the pool through the one read -> segment -> score loop and the journal of
   ``supportlens predict`` (`inference.predict.predict_files`), each transcript committed as soon
   as it is labelled: an interrupted run goes on where it stopped (``resume``), and the teacher's
   answer cache means that no passage is sent twice;
2. passages the teacher could not code (no valid answer, a refusal: its ``review_reason``) are left
   out, and counted by reason;
3. a share of the pool's transcripts (``holdout``) is kept from the student, to compare the two on;
4. the student is trained by the one trainer (`training.trainer.train`): the teacher's codes as
   ``teacher_data``, the human codes as ``extra_data`` (the target domain), weighted
   ``human_weight`` times a teacher's code (``adapt.weighting: factor``);
5. agreement: student vs teacher on the held-out transcripts; teacher vs human and student vs human
   (cross-fitted: the trainer's trust figure) on the human-coded passages. Printed, written to
   ``distil.json`` and logged to the student's MLflow run with the teacher's prompt.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supportlens import tracking
from supportlens.calibration import plural
from supportlens.codebook import load_codebook
from supportlens.config import Config
from supportlens.evaluation.agreement import cohens_kappa, percent_agreement
from supportlens.inference.label import llm_from_config
from supportlens.inference.labeler import Labeler, PredictError
from supportlens.inference.loop import SPEAKER_CHOICES, FileFailure
from supportlens.inference.predict import predict_files
from supportlens.io.atomic import write_atomic
from supportlens.models import load_classifier
from supportlens.schema import REVIEW_REASON_COLUMN, read_output
from supportlens.training.trainer import Logger, TrainResult, log_model_prompt, train
from supportlens.transcripts.segmentation import SpeakerRules

HUMAN_WEIGHT = 3.0  # a person's code counts this many times a teacher's
HOLDOUT = 0.25  # share of the pool's transcripts kept from the student, to compare it with the teacher
TEACHER_LABELS = "teacher_labels.jsonl"  # the teacher's predictions, as `supportlens predict` writes them
TEACHER_CODED = "teacher_coded.jsonl"  # the passages it coded that the student learns from
SUMMARY = "distil.json"


class DistilError(PredictError):
    """Distillation cannot start or go on as asked; the message names the option (API terms)."""


@dataclass
class DistilOptions:
    """What to distil from and how: ``supportlens distil``'s options, one field each."""

    pool: list[str]  # uncoded transcripts (files, folders, globs) for the teacher to label
    out: str | os.PathLike = "outputs/distil"  # the teacher's labels, the student's teacher data, distil.json
    add_data: list[str] = field(default_factory=list)  # passages a person coded (coded files, filled sheets)
    human_weight: float = HUMAN_WEIGHT
    holdout: float = HOLDOUT
    resume: bool = False  # go on from an interrupted run: its labelled transcripts are kept
    speaker: str = "participant"
    interviewers: list[str] = field(default_factory=list)
    text_column: str = "text"  # for .csv/.xlsx transcripts
    allow_remote: bool = False  # the teacher may be reached on a host other than this machine


@dataclass
class PairAgreement:
    """How far two coders (teacher, student, human) agree on the same passages."""

    a: str
    b: str
    n: int
    kappa: float
    accuracy: float
    on: str  # which passages
    interval: tuple[float, float] | None = None  # 95% bootstrap interval of κ, where one was drawn

    def line(self) -> str:
        ci = f" [{self.interval[0]:.2f}, {self.interval[1]:.2f}]" if self.interval else ""
        return (
            f"{self.a} vs {self.b} on {self.on}: κ {_num(self.kappa)}{ci}, agreement {_num(self.accuracy)} (n={self.n})"
        )


@dataclass
class DistilResult:
    """What a distillation did and measured (`lines` for people, `metrics` for MLflow)."""

    train: TrainResult
    teacher_labels: Path
    teacher_coded: Path
    transcripts: int  # pool transcripts the teacher labelled (this run and any resumed)
    passages: int  # their passages
    left_out: dict[str, int]  # why the teacher could not code a passage -> how many
    held_out: list[str]  # pool transcripts kept from the student
    student_teacher: PairAgreement | None = None
    teacher_human: PairAgreement | None = None
    student_human: PairAgreement | None = None
    failures: list[FileFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_left_out(self) -> int:
        return sum(self.left_out.values())

    def lines(self) -> list[str]:
        """The teacher's work and the three agreements, a line each (what the CLI prints)."""
        lines = [
            f"teacher: coded {self.passages - self.n_left_out} of {plural(self.passages, 'passage')} from "
            f"{plural(self.transcripts, 'pool transcript')} -> {self.teacher_labels}"
        ]
        if self.left_out:
            reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(self.left_out.items(), key=lambda x: -x[1]))
            lines.append(f"left out of the student's data: {self.n_left_out} the teacher could not code ({reasons})")
        if self.held_out:
            lines.append(
                f"held out from the student: {plural(len(self.held_out), 'pool transcript')}, to compare it with "
                "the teacher"
            )
        for agreement in (self.student_teacher, self.teacher_human, self.student_human):
            if agreement is not None:
                lines.append(agreement.line())
        return lines + [f"note: {note}" for note in self.notes]

    def metrics(self) -> dict[str, float]:
        """For MLflow, keys prefixed ``distil_``."""
        out = {
            "distil_pool_transcripts": float(self.transcripts),
            "distil_pool_passages": float(self.passages),
            "distil_left_out": float(self.n_left_out),
            "distil_held_out_transcripts": float(len(self.held_out)),
        }
        for agreement in (self.student_teacher, self.teacher_human, self.student_human):
            if agreement is not None:
                key = f"distil_{agreement.a}_{agreement.b}"
                out.update({f"{key}_kappa": agreement.kappa, f"{key}_agreement": agreement.accuracy})
                out[f"{key}_n"] = float(agreement.n)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_dir": str(self.train.model_dir),
            "run_id": self.train.run_id,
            "teacher_labels": str(self.teacher_labels),
            "teacher_coded": str(self.teacher_coded),
            "left_out": self.left_out,
            "held_out": self.held_out,
            "metrics": {k: (v if np.isfinite(v) else None) for k, v in self.metrics().items()},
            "lines": self.lines(),
        }


def _num(x: float) -> str:
    return f"{x:.2f}" if np.isfinite(x) else "n/a"


def check_distil(teacher: Config, student: Config, options: DistilOptions) -> None:
    """Refuse what cannot work before the teacher is asked anything (errors in the API's terms)."""
    if not options.pool:
        raise DistilError("`pool` names no transcripts: give the uncoded transcripts for the teacher to label")
    if teacher.model.kind != "llm":
        raise DistilError(
            f"the teacher must be a language model (model.kind llm, as in configs/llm.yaml); its config is "
            f"model.kind {teacher.model.kind}"
        )
    if student.model.kind == "llm":
        raise DistilError(
            "the student's config is model.kind llm: distil into a fast classifier (configs/default.yaml, "
            "configs/finetune.yaml, configs/tfidf.yaml)"
        )
    if not 0.0 <= options.holdout < 1.0:
        raise DistilError(
            f"`holdout` is the share of pool transcripts kept from the student, in [0, 1); got {options.holdout}"
        )
    if not options.human_weight > 0:
        raise DistilError(f"`human_weight` must be above 0, got {options.human_weight}")
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise DistilError(f"`out` must be a folder; {out} is a file")
    if options.speaker not in SPEAKER_CHOICES:
        raise DistilError(f"`speaker` must be one of {', '.join(SPEAKER_CHOICES)}; got {options.speaker!r}")
    SpeakerRules.with_interviewers(options.interviewers)  # an invalid pattern fails here, not mid-run


def distil(
    teacher_cfg: Config,
    student_cfg: Config,
    options: DistilOptions,
    *,
    log: Logger = print,
    track: bool = True,
    tracking_uri: str | None = None,
    register: str | None = None,
    on_send: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[FileFailure], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> DistilResult:
    """Label ``options.pool`` with the teacher and train the student on its codes; see the module
    docstring. ``on_send``: where the teacher announces what it sends to a remote host; the
    progress callbacks as for `inference.predict.predict_files` (the teacher's labelling)."""
    check_distil(teacher_cfg, student_cfg, options)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = load_codebook(student_cfg.codebook).labels
    teacher = llm_from_config(teacher_cfg, labels, options.allow_remote, on_send, "`teacher`")
    # what labelled the journal's transcripts: another prompt or endpoint must not resume them
    teacher.meta_ = {"kind": teacher.kind, "prompt_hash": teacher.prompt_hash, "params": teacher.get_params()}
    teacher.meta_["codebook"] = teacher.codebook  # so `supportlens report` reads the teacher's labels

    labels_path = out / TEACHER_LABELS
    log(f"teacher: {teacher_cfg.llm.model} at {teacher_cfg.llm.base_url} labels the pool -> {labels_path}")
    # one transcript per call: the teacher is slow, so each is committed (and resumable) at once
    batch = predict_files(
        options.pool,
        Labeler(teacher, review_below=0.0),  # flagged: only the passages it could not code
        labels_path,
        speaker=options.speaker,
        resume=options.resume,
        rules=SpeakerRules.with_interviewers(options.interviewers),
        chunk_passages=1,
        on_progress=on_progress,
        on_failure=on_failure,
        text_column=options.text_column,
        on_total=on_total,
    )
    for note in batch.note_lines():
        log(f"note: {note}")
    if batch.output is None:
        raise DistilError(
            "no transcript of `pool` could be labelled"
            + (f" ({batch.failures[0].reason}" + (" and more)" if len(batch.failures) > 1 else ")"))
            if batch.failures
            else ""
        )
    table = read_output(labels_path)
    reasons = table[REVIEW_REASON_COLUMN] if REVIEW_REASON_COLUMN in table else pd.Series([None] * len(table))
    uncoded = reasons.notna() & (reasons.astype(str).str.strip() != "")
    left_out = dict(Counter(str(r) for r in reasons[uncoded]))
    coded = table.loc[~uncoded.to_numpy()].reset_index(drop=True)
    held_out, notes = _hold_out(sorted(table["source"].astype(str).unique()), options.holdout, student_cfg.seed)
    learnt = coded.loc[~coded["source"].astype(str).isin(held_out)]
    if learnt.empty:
        raise DistilError(
            f"the teacher coded none of the pool's passages that the student may learn from ({len(table)} labelled, "
            f"{int(uncoded.sum())} not coded, {len(coded) - len(learnt)} held out): nothing to distil"
        )
    coded_path = _write_teacher_coded(learnt, out / TEACHER_CODED)

    student = student_cfg
    if options.add_data:  # a person's code outweighs the teacher's by the stated factor
        student = dataclasses.replace(
            student_cfg,
            adapt=dataclasses.replace(student_cfg.adapt, weighting="factor", target_factor=options.human_weight),
        )
        log(f"human codes count {options.human_weight:g} times a teacher's code (adapt.weighting: factor)")
    trained = train(
        student,
        tracking_uri=tracking_uri,
        register=register,
        log=log,
        track=track,
        extra_data=list(options.add_data) or None,
        teacher_data=coded_path,
    )
    result = DistilResult(
        train=trained,
        teacher_labels=labels_path,
        teacher_coded=coded_path,
        transcripts=int(table["source"].nunique()),
        passages=len(table),
        left_out=left_out,
        held_out=held_out,
        failures=list(batch.failures),
        notes=notes,
    )
    _agreements(result, teacher, coded, trained)
    write_atomic(
        out / SUMMARY,
        lambda tmp: Path(tmp).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8"),
    )
    if track and trained.run_id:
        _log_distillation(result, teacher, teacher_cfg, options, tracking_uri or student_cfg.tracking.uri)
    for line in result.lines():
        log(line)
    return result


def _hold_out(sources: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """The pool transcripts kept from the student (seeded), whole transcripts so that no passage of
    one is learnt while another is compared; and a note when none can be."""
    if share <= 0:
        return [], ["`holdout` is 0: the student is not compared with the teacher on unseen transcripts"]
    if len(sources) < 2:
        return [], ["a single pool transcript: none is held out, so student and teacher are not compared"]
    n = min(max(int(round(share * len(sources))), 1), len(sources) - 1)
    order = np.random.default_rng(seed).permutation(len(sources))
    return sorted(sources[i] for i in order[:n]), []


def _write_teacher_coded(rows: pd.DataFrame, path: Path) -> Path:
    """The teacher's codes as a coded file (the columns `corpus.dataset.load_coded` reads)."""
    frame = pd.DataFrame(
        {
            "id": [f"teacher-{i:06d}" for i in range(len(rows))],
            "interview_id": rows["source"].astype(str).to_numpy(),
            "speaker_role": rows["role"].astype(str).to_numpy() if "role" in rows else "participant",
            "text": rows["text"].astype(str).to_numpy(),
            "label": rows["label"].astype(str).to_numpy(),
            "confidence": rows["confidence"].astype(float).to_numpy(),
        }
    )
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in frame.to_dict("records"))
    return write_atomic(path, lambda tmp: Path(tmp).write_text(lines, encoding="utf-8"))


def _agreements(result: DistilResult, teacher: Any, coded: pd.DataFrame, trained: TrainResult) -> None:
    """Student vs teacher on the held-out transcripts; teacher vs human and student vs human
    (the trainer's cross-fitted trust figure) on the human-coded passages."""
    held = coded.loc[coded["source"].astype(str).isin(result.held_out)]
    if not held.empty:
        student = load_classifier(trained.model_dir)
        said = [str(c) for c in student.predict(held["text"].astype(str).tolist())]
        result.student_teacher = PairAgreement(
            "student",
            "teacher",
            len(held),
            cohens_kappa(held["label"].astype(str).tolist(), said),
            percent_agreement(held["label"].astype(str).tolist(), said),
            f"{plural(len(result.held_out), 'held-out pool transcript')}",
        )
    frame = trained.data.frame if trained.data is not None else pd.DataFrame()
    if "target" not in frame or not frame["target"].astype(bool).any():
        result.notes.append(
            "no human codes (`add_data`): agreement with a person is not measured; code a sample of the pool "
            "(`supportlens next`) and give it with `add_data` before relying on the student"
        )
        return
    human = frame.loc[frame["target"].astype(bool)]
    texts, codes = human["text"].astype(str).tolist(), human["label"].astype(str).tolist()
    reasons = teacher.review_reasons(texts)
    said = [str(c) for c in teacher.predict(texts)]
    kept = [i for i, reason in enumerate(reasons) if reason is None]
    if kept:
        result.teacher_human = PairAgreement(
            "teacher",
            "human",
            len(kept),
            cohens_kappa([codes[i] for i in kept], [said[i] for i in kept]),
            percent_agreement([codes[i] for i in kept], [said[i] for i in kept]),
            "your coded passages",
        )
    if len(kept) < len(texts):
        result.notes.append(
            f"{len(texts) - len(kept)} of your coded passages the teacher could not code are left out of "
            "teacher vs human"
        )
    trust = trained.trust
    if trust is not None:
        interval = (trust.kappa_low, trust.kappa_high) if np.isfinite(trust.kappa_low) else None
        result.student_human = PairAgreement(
            "student",
            "human",
            trust.n,
            trust.kappa,
            trust.accuracy,
            "your coded passages (cross-fitted: each scored by a student that never saw it)",
            interval,
        )


def _log_distillation(
    result: DistilResult, teacher: Any, teacher_cfg: Config, options: DistilOptions, tracking_uri: str | None
) -> None:
    """The agreements, the teacher's settings and prompt, and the teacher's training rows, in the
    MLflow run that trained the student."""
    tracking.setup(tracking_uri)
    with tracking.run(run_id=result.train.run_id):
        tracking.log_metrics(result.metrics())
        tracking.log_params(
            {
                **{f"teacher.{k}": v for k, v in dataclasses.asdict(teacher_cfg.llm).items()},
                "distil.pool": ", ".join(map(str, options.pool)),
                "distil.human_weight": options.human_weight,
                "distil.holdout": options.holdout,
                "distil.held_out": ", ".join(result.held_out),
            }
        )
        tracking.set_tags({"supportlens.teacher": f"{teacher_cfg.llm.model} (prompt {teacher.prompt_hash[:12]})"})
        log_model_prompt(teacher, prefix="teacher")
        tracking.log_text(json.dumps(result.to_dict(), indent=2), f"distil/{SUMMARY}")
        tracking.log_artifact(result.teacher_coded, "distil")
