"""The researcher's own coded passages as the *target domain* (issue 19).

Passages coded on the user's transcripts (`train --add-data`, `supportlens adapt`) are few beside
the authored corpus, yet they are the language the model will code. Four mechanisms make them
count, each switched by `config.AdaptConfig`:

(a) weighting: their total weight is a set share of the loss (`target_weights`), or the share that
    predicts them best, cross-fitted on them (`select_weighting`, ``adapt.weighting: auto``);
(b) continued training of an already trained model on them, with authored rows replayed;
(c) a few-shot component over them (`models.fewshot.FewShotBlend`), its say growing with their number;
(d) temperature and review threshold fitted on their cross-fitted predictions, not on authored
    validation interviews.

And one figure a methods section can quote: the agreement between the model and the researcher
on those same passages, each scored by a model that never saw it (`cross_fit`, `trust_report`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from supportlens.calibration import Calibration, plural, review_threshold, temperature_fit
from supportlens.config import AdaptConfig, Config
from supportlens.corpus.splits import SplitError, grouped_folds
from supportlens.evaluation.agreement import cohens_kappa, stats_from_confusion
from supportlens.models import TextClassifier
from supportlens.models.encoders import embedding_cache
from supportlens.models.fitting import calibration_shortfall, fit_and_calibrate, validation_calibration

# Below this many coded passages a κ interval spans most of the scale: say so, not just print it.
MIN_TRUSTED_PASSAGES = 20
# Resampling fewer interviews than this gives an interval narrower than the truth.
MIN_TRUSTED_INTERVIEWS = 5
N_BOOT = 2000


@dataclass
class TargetData:
    """Coded passages of the researcher's own corpus. ``groups``: the interview (or source) of
    each passage; each passage its own group when the sheet names none (``grouped`` False)."""

    texts: list[str]
    labels: np.ndarray
    groups: list[str]
    grouped: bool = True

    def __post_init__(self) -> None:
        self.texts = [str(t) for t in self.texts]
        self.labels = np.asarray(self.labels, dtype=object)
        self.groups = [str(g) for g in self.groups]
        if not len(self.texts) == len(self.labels) == len(self.groups):
            raise ValueError(
                f"target data: {len(self.texts)} texts, {len(self.labels)} labels and {len(self.groups)} "
                "groups; each passage needs one of each"
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))

    def subset(self, idx: Sequence[int] | np.ndarray) -> TargetData:
        idx = np.asarray(idx, dtype=int)
        return TargetData([self.texts[i] for i in idx], self.labels[idx], [self.groups[i] for i in idx], self.grouped)


@dataclass
class SourceData:
    """The authored rows beside the target passages: trained on (``X``, ``y``), and the
    validation interviews that early-stop and calibrate (``X_val``, ``y_val``, ``val_groups``;
    no groups when the data have no interview column)."""

    X: Sequence[str]
    y: np.ndarray
    X_val: Sequence[str]
    y_val: np.ndarray
    val_groups: Sequence[str] | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=object)
        self.y_val = np.asarray(self.y_val, dtype=object)


def target_weights(n_source: int, n_target: int, adapt: AdaptConfig) -> np.ndarray:
    """One weight per row, source rows first: 1.0 each; with ``adapt.weighting`` "share" the
    target rows share ``adapt.target_share`` of the total weight equally (so 20 coded passages
    beside 3,000 authored ones weigh as much as all of them at a share of 0.5); "factor": each
    target row weighs ``adapt.target_factor`` (a stated ratio whatever the numbers, as distillation
    states how far a human code outweighs a teacher's label); "off": all 1.0."""
    weights = np.ones(n_source + n_target)
    if adapt.weighting == "share" and n_source and n_target:
        share = adapt.target_share
        weights[n_source:] = share * n_source / ((1.0 - share) * n_target)
    elif adapt.weighting == "factor":
        weights[n_source:] = adapt.target_factor
    return weights


def describe_adapt(adapt: AdaptConfig, n_target: int, continued: bool = False, chosen_among: int | None = None) -> str:
    """Which mechanisms are on, for the log and the model card. ``chosen_among``: the weighting
    (fixed in ``adapt``) was chosen by `select_weighting` among that many shares."""
    weight = (
        "weighted by the share of the loss that predicts them best, cross-fitted on them "
        f"(among {', '.join(_share_text(v) for v in adapt.share_grid)})"
        if adapt.weighting == "auto"
        else f"weighted to {adapt.target_share:.0%} of the loss"
        if adapt.weighting == "share"
        else f"each weighted {adapt.target_factor:g}× a training row"
        if adapt.weighting == "factor"
        else "weighted like authored rows"
    )
    if chosen_among:
        weight += f" (chosen by cross-fitting on them among {chosen_among} shares: adapt.weighting auto)"
    replayed = f" ({adapt.replay:.0%})" if adapt.replay else ""
    parts = [
        f"continued training of the given model, authored rows replayed{replayed}, the passages {weight}"
        if continued
        else weight
    ]
    if adapt.fewshot != "off":
        parts.append(f"a few-shot {adapt.fewshot} component blended in")
    if adapt.calibrate_on_target and n_target >= max(2, adapt.min_target_calibration):
        parts.append("confidence calibrated on them (cross-fitted)")
    elif adapt.calibrate_on_target:
        parts.append(f"confidence calibrated on authored validation (below {adapt.min_target_calibration} passages)")
    return "; ".join(parts)


def _share_text(share: float) -> str:
    return "no extra weight" if share == 0 else f"{share:.0%}"


@dataclass
class WeightingChoice:
    """What ``adapt.weighting: auto`` chose, and the evidence: each share's mean log-loss on the
    coded passages (cross-fitted) and, beside the best, the standard error of the difference."""

    share: float  # 0: no extra weight
    n: int
    folds: int
    losses: dict[float, float] = field(default_factory=dict)
    standard_errors: dict[float, float] = field(default_factory=dict)
    note: str | None = None  # why nothing was compared (too few passages or interviews)

    def apply(self, cfg: Config) -> Config:
        """``cfg`` with the chosen weighting as a fixed setting."""
        weighting = "share" if self.share > 0 else "off"
        share = self.share if self.share > 0 else cfg.adapt.target_share
        return dataclasses.replace(cfg, adapt=dataclasses.replace(cfg.adapt, weighting=weighting, target_share=share))

    def line(self) -> str:
        """One line for the log and the calibration notes."""
        if self.note:
            return f"adapt.weighting auto: {_share_text(self.share)} ({self.note})"
        best = min(self.losses.values(), default=float("nan"))
        compared = ", ".join(
            f"{_share_text(s)} {loss:.3f}"
            + (f" ±{self.standard_errors[s]:.3f}" if s in self.standard_errors and loss != best else "")
            for s, loss in self.losses.items()
        )
        return (
            f"adapt.weighting auto: {_share_text(self.share)}"
            + (" of the loss" if self.share else "")
            + f", chosen by {self.folds}-fold cross-fitting on {plural(self.n, 'coded passage')} (mean log-loss "
            f"{compared}; ± the standard error of the difference from the best; the smallest share within one "
            "standard error of the best is kept)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "n": self.n,
            "folds": self.folds,
            "losses": {str(k): v for k, v in self.losses.items()},
            "standard_errors": {str(k): v for k, v in self.standard_errors.items()},
            "note": self.note,
        }


def one_standard_error(losses: dict[float, np.ndarray]) -> tuple[float, dict[float, float]]:
    """The smallest share whose mean per-passage loss is within one standard error of the best
    one's (the error of their paired difference): more weight on a few passages must earn its keep
    by more than the noise of those few passages."""
    means = {s: float(np.mean(v)) for s, v in losses.items()}
    best = min(means, key=lambda s: (means[s], s))
    errors = {}
    for s, v in losses.items():
        diff = np.asarray(v) - np.asarray(losses[best])
        errors[s] = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    chosen = min(s for s in losses if means[s] - means[best] <= errors[s])
    return chosen, errors


def select_weighting(
    cfg: Config,
    labels: list[str],
    source: SourceData,
    target: TargetData,
    init_from: TextClassifier | None = None,
) -> WeightingChoice:
    """(a) chosen on the researcher's own passages: for each share in ``adapt.share_grid``, the
    passages' out-of-fold probabilities (`cross_fit` over ``adapt.selection_folds`` folds by
    interview, with the configured few-shot blend) and their log-loss; `one_standard_error` picks.
    Where the authored corpus already speaks the target's language, extra weight only adds the
    noise of a few passages and loses; where it does not, the passages predict each other better
    when they count."""
    adapt = cfg.adapt
    grid = sorted(set(float(v) for v in adapt.share_grid))
    n = len(target)
    if n < adapt.min_selection:
        few = f"{plural(n, 'coded passage')}, fewer than adapt.min_selection ({adapt.min_selection}) to choose by"
        return WeightingChoice(0.0, n, 0, note=few)
    pairs, _ = target_folds(target.labels, target.groups, adapt.selection_folds, cfg.seed)
    if len(pairs) < 2:
        return WeightingChoice(0.0, n, len(pairs), note="too few interviews to cross-fit a choice")
    index = {c: j for j, c in enumerate(labels)}
    truth = np.array([index[str(c)] for c in target.labels])
    losses: dict[float, np.ndarray] = {}
    for share in grid:
        fixed = WeightingChoice(share, n, len(pairs)).apply(cfg)  # cross_fit leaves (d) out of its folds
        oof = cross_fit(fixed, labels, source, target, init_from, adapt.selection_folds)
        losses[share] = -np.log(np.clip(oof[np.arange(n), truth], 1e-6, 1.0))
    chosen, errors = one_standard_error(losses)
    return WeightingChoice(
        chosen,
        n,
        len(pairs),
        {s: float(np.mean(v)) for s, v in losses.items()},
        errors,
    )


def target_folds(
    labels: np.ndarray, groups: Sequence[str], folds: int, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """(train_idx, test_idx) folds over target passages, grouped by interview and stratified as
    the groups allow; with fewer interviews than ``folds``, one fold per interview; with a single
    interview, folds over passages, and a note saying what that costs. Empty folds are dropped."""
    labels = np.asarray(labels, dtype=object)
    n = len(labels)
    if n < 2:
        raise SplitError(f"cross-fitting needs at least 2 coded passages, got {n}")
    groups_arr = np.asarray(groups, dtype=object)
    note = None
    if len(set(groups_arr)) < 2:
        note = (
            "all coded passages come from one interview: the folds split its passages, so each is "
            "scored by a model that saw others of the same interview, and the figure says little "
            "about other interviews"
        )
        groups_arr = np.arange(n).astype(str).astype(object)
    k = min(folds, len(set(groups_arr)))
    try:
        with warnings.catch_warnings():  # "the least populated class has only 1 member": expected here
            warnings.simplefilter("ignore", UserWarning)
            pairs = grouped_folds(labels, groups_arr, k, seed)
    except ValueError:  # every code rarer than the folds are many: nothing to stratify by
        names = np.random.default_rng(seed).permutation(sorted(set(groups_arr)))
        fold_of = {name: i % k for i, name in enumerate(names)}
        assigned = np.array([fold_of[g] for g in groups_arr])
        pairs = [(np.flatnonzero(assigned != f), np.flatnonzero(assigned == f)) for f in range(k)]
    return [(np.sort(tr), np.sort(te)) for tr, te in pairs if len(te) and len(tr)], note


def calibrate_on_validation(
    cfg: Config,
    model: TextClassifier,
    X_val: Sequence[str],
    y_val: Sequence[str] | np.ndarray,
    val_groups: Sequence[str] | None,
) -> Calibration:
    """Temperature (when the config asks for it) and review threshold of ``model`` fitted on the
    authored validation set, as `fitting.fit_and_calibrate` does for a fresh fit: for a model that
    was trained further or blended after that fit. Too little validation: neither, and why."""
    shortfall = calibration_shortfall(X_val, val_groups)
    if not shortfall and cfg.calibration.temperature:
        model.calibrate(list(X_val), np.asarray(y_val, dtype=object))
    return validation_calibration(cfg, model, X_val, y_val, val_groups, shortfall)


def calibrate_on_target(
    cfg: Config, model: TextClassifier, oof: np.ndarray, target: TargetData, before: Calibration
) -> Calibration:
    """(d): temperature and review threshold from the target passages' cross-fitted predictions.

    ``oof`` comes from fold models already calibrated on the authored validation set, so the
    temperature fitted on its log-probabilities is a correction on top of that calibration: the
    model's temperature is multiplied by it. The threshold is where those rescaled confidences
    reach ``calibration.target_precision``."""
    labels = [str(c) for c in model.classes_]
    index = {c: j for j, c in enumerate(labels)}
    y = np.array([index[str(c)] for c in target.labels])
    log_p = np.log(np.clip(np.asarray(oof, dtype=np.float64), 1e-12, 1.0))
    notes = [
        f"temperature and review threshold fitted on the cross-fitted predictions of "
        f"{plural(len(target), 'coded passage')} of the target corpus (adapt.calibrate_on_target): they are "
        "the language the model will code, which the authored validation interviews are not"
    ]
    correction, fitted = 1.0, before.temperature_fitted
    if cfg.calibration.temperature:
        found = temperature_fit(log_p, y)
        correction = found.temperature
        fitted = fitted or (found.optimum is not None and found.note is None)
        if found.note:  # the search ran to its lower bound: no mistake to learn from
            notes.append(
                "the temperature fit on the coded passages ran to the lower bound of its search: the "
                "models made (almost) no mistake on them, so they cannot say how sure it should be; the "
                f"temperature from validation is kept (T = {model.temperature_:.2f})"
            )
        model.temperature_ = model.temperature_ * correction
    z = log_p / correction
    z -= z.max(axis=1, keepdims=True)
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    threshold = review_threshold(proba.max(1), proba.argmax(1) == y, cfg.calibration.target_precision)
    return Calibration(
        model.temperature_,
        fitted,
        threshold,
        True,
        len(target),
        target.n_groups if target.grouped else None,
        notes,
        target.grouped,
        on="target",
    )


def _continued(cfg: Config, source: SourceData, target: TargetData, init_from: TextClassifier) -> TextClassifier:
    """(b): a copy of ``init_from`` trained further on the target passages beside a seeded sample
    of ``adapt.replay`` of the authored training rows (so it does not forget what it knew),
    weighted as (a) weighs them."""
    adapt = cfg.adapt
    model = copy.deepcopy(init_from)
    if model.kind == "fewshot_blend":  # an adapted model: continue its base, blend afresh below
        model = model.base_
    rng = np.random.default_rng(cfg.seed)
    n_replay = int(round(adapt.replay * len(source.X)))
    pick = np.sort(rng.choice(len(source.X), size=n_replay, replace=False)) if n_replay else np.zeros(0, dtype=int)
    texts = [source.X[i] for i in pick] + list(target.texts)
    codes = np.concatenate([source.y[pick], target.labels])
    weights = target_weights(n_replay, len(target), adapt)
    model.continue_fit(
        texts, codes, sample_weight=weights, X_val=list(source.X_val), y_val=source.y_val, epochs=adapt.continue_epochs
    )
    return model


def blend_fewshot(cfg: Config, model: TextClassifier, target: TargetData) -> TextClassifier:
    """(c): ``model`` blended with the few-shot part over the target passages that ``cfg.adapt``
    names (uncalibrated: the caller fits the blend's temperature); ``model`` itself when it names none."""
    adapt = cfg.adapt
    if adapt.fewshot == "off" or not len(target):
        return model
    from supportlens.models.fewshot import FewShotBlend

    return FewShotBlend.wrap(
        model,
        target.texts,
        target.labels,
        method=adapt.fewshot,
        k0=adapt.fewshot_k0,
        max_weight=adapt.fewshot_max_weight,
        neighbours=adapt.fewshot_neighbours,
        pretrained=cfg.model.pretrained,
        encoder_max_length=cfg.model.max_length,
        allow_download=cfg.model.allow_download,
    )


def fit_adapted(
    cfg: Config,
    labels: list[str],
    source: SourceData,
    target: TargetData,
    init_from: TextClassifier | None = None,
    *,
    oof: np.ndarray | None = None,
    weighting: WeightingChoice | None = None,
) -> tuple[TextClassifier, Calibration, float]:
    """A model of the source rows (``source.X``, ``source.y``) and the target passages, as
    ``cfg.adapt`` says; returns (model, calibration, seconds). The authored validation set
    (``source.X_val``) early-stops and calibrates unless (d) applies.

    (a) without ``init_from``: fitted on source + target rows, the target weighted by
    `target_weights`; (b) with it: a copy of that model trained further (`_continued`); (c) with
    ``adapt.fewshot``: blended with a few-shot part over the target passages; (d) with
    ``adapt.calibrate_on_target`` and at least ``adapt.min_target_calibration`` passages:
    calibrated on their cross-fitted predictions (``oof``, computed by `cross_fit` when not given).
    ``adapt.weighting: auto`` fixes (a) by `select_weighting` first (or ``weighting``, its result
    when the caller already has it). ``Calibration.notes`` says which calibration and weighting
    were used and why."""
    started = time.perf_counter()
    X, y, X_val, y_val, val_groups = source.X, source.y, source.X_val, source.y_val, source.val_groups
    if init_from is not None and [str(c) for c in init_from.classes_] != list(labels):
        raise ValueError(
            f"`init_from` codes {[str(c) for c in init_from.classes_]}, not the codebook's {list(labels)}: "
            "continue from a model trained with this codebook"
        )
    choice = None
    if cfg.adapt.weighting == "auto":
        if weighting is None:
            weighting = select_weighting(cfg, labels, source, target, init_from)
        choice, cfg = weighting, weighting.apply(cfg)
    adapt = cfg.adapt
    if init_from is None:
        weights = target_weights(len(X), len(target), adapt)
        model, calibration, _ = fit_and_calibrate(
            cfg,
            labels,
            [*X, *target.texts],
            np.concatenate([y, target.labels]),
            X_val,
            y_val,
            val_groups,
            sample_weight=weights,
        )
    else:
        model = _continued(cfg, source, target, init_from)
        calibration = calibrate_on_validation(cfg, model, X_val, y_val, val_groups)
    if adapt.fewshot != "off" and len(target):
        model = blend_fewshot(cfg, model, target)
        calibration = calibrate_on_validation(cfg, model, X_val, y_val, val_groups)
    if adapt.calibrate_on_target and len(target) >= max(2, adapt.min_target_calibration):
        if oof is None:
            oof = cross_fit(cfg, labels, source, target, init_from)
        if adapt.fewshot == "off" and init_from is None:
            # the fit may be shared inside `fitting.reuse_fits()`: rescale a copy, not the shared model
            model = copy.copy(model)
        calibration = calibrate_on_target(cfg, model, oof, target, calibration)
    elif adapt.calibrate_on_target and len(target):
        calibration.notes.append(
            f"calibrated on the authored validation set: {plural(len(target), 'coded passage')} of the "
            f"target corpus are fewer than adapt.min_target_calibration ({adapt.min_target_calibration})"
        )
    if choice is not None:
        calibration.notes.append(choice.line())
    return model, calibration, time.perf_counter() - started


def cross_fit(
    cfg: Config,
    labels: list[str],
    source: SourceData,
    target: TargetData,
    init_from: TextClassifier | None = None,
    folds: int | None = None,
) -> np.ndarray:
    """Out-of-fold probabilities (columns = ``labels``) for every target passage: folds by
    interview (`target_folds`), each scored by `fit_adapted` on the source rows and the *other*
    folds' target passages, so that no passage is scored by a model that saw it. The fold models
    are calibrated on the authored validation set ((d) would need folds within folds)."""
    pairs, _ = target_folds(target.labels, target.groups, folds or cfg.adapt.folds, cfg.seed)
    inner = dataclasses.replace(cfg, adapt=dataclasses.replace(cfg.adapt, calibrate_on_target=False))
    oof = np.full((len(target), len(labels)), np.nan)
    with embedding_cache():  # a frozen encoder embeds each passage once over all folds
        for train_idx, test_idx in pairs:
            model, _, _ = fit_adapted(inner, labels, source, target.subset(train_idx), init_from)
            proba = model.predict_proba([target.texts[i] for i in test_idx])
            oof[test_idx] = _in_label_order(proba, model.classes_, labels)
    return oof


def _in_label_order(proba: np.ndarray, classes: Sequence[Any], labels: Sequence[str]) -> np.ndarray:
    order = [[str(c) for c in classes].index(label) for label in labels]
    return np.asarray(proba)[:, order]


# ---------------------------------------------------------------------------------------------
# the trust figure


@dataclass
class TrustReport:
    """How far the model agrees with the researcher on their own coded passages, cross-fitted.

    ``accepted_share`` and ``accepted_precision`` are reached with a review threshold chosen, for
    each fold, on the other folds' predictions (``fold_thresholds``): the precision a coder would
    see on passages the model did not learn from at a threshold not chosen on them."""

    n: int
    n_interviews: int
    grouped: bool
    kappa: float
    kappa_low: float
    kappa_high: float
    macro_f1: float
    accuracy: float
    recall: dict[str, float]
    support: dict[str, int]
    target_precision: float
    fold_thresholds: list[float]
    accepted_share: float
    accepted_precision: float
    folds: int
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What the CLI prints and a methods section can quote."""
        source = (
            f"from {plural(self.n_interviews, 'interview')}"
            if self.grouped
            else "(no interview column: folds and interval over passages)"
        )
        over = "interviews" if self.grouped and self.n_interviews > 1 else "passages"
        lines = [
            f"On your {plural(self.n, 'coded passage')} {source}, cross-fitted ({self.folds} folds; each "
            f"passage scored by a model that never saw it): κ {_num(self.kappa)} "
            f"[{_num(self.kappa_low)}, {_num(self.kappa_high)}] (95% bootstrap interval over {over}), "
            f"macro-F1 {_num(self.macro_f1)}, accuracy {_num(self.accuracy)}"
        ]
        lines.append(
            "recall per code (passages): "
            + ", ".join(f"{code} {_num(self.recall[code])} ({self.support[code]})" for code in self.recall)
        )
        chosen = [t for t in self.fold_thresholds if np.isfinite(t)]
        if not np.isfinite(self.accepted_precision):
            lines.append(
                f"review threshold for precision ≥ {self.target_precision:.2f}, chosen on the other folds: "
                "no passage was accepted at it, so every suggestion goes to review"
            )
        else:
            span = f" (thresholds {min(chosen):.2f} to {max(chosen):.2f})" if chosen else ""
            lines.append(
                f"review threshold for precision ≥ {self.target_precision:.2f}, chosen on the other folds"
                f"{span}: precision reached {_num(self.accepted_precision)} on the "
                f"{self.accepted_share:.0%} of passages accepted; the rest go to review"
            )
        if self.n < MIN_TRUSTED_PASSAGES:
            lines.append(
                f"warning: {plural(self.n, 'coded passage')} are too few: the interval is too wide to trust. "
                f"Code at least {MIN_TRUSTED_PASSAGES} (more, from several interviews, is better) before "
                "quoting this figure"
            )
        elif self.grouped and 1 < self.n_interviews < MIN_TRUSTED_INTERVIEWS:  # one: a note says so
            lines.append(
                f"warning: the passages come from only {plural(self.n_interviews, 'interview')}: an interval "
                "that resamples so few interviews understates the uncertainty, and the figure says little "
                f"about interviews unlike them. Code passages from at least {MIN_TRUSTED_INTERVIEWS} interviews "
                "before quoting it"
            )
        lines += [f"note: {note}" for note in self.notes]
        return lines

    def metrics(self) -> dict[str, float]:
        """For MLflow: every figure, keys prefixed ``target_``."""
        out = {
            "target_n": float(self.n),
            "target_interviews": float(self.n_interviews),
            "target_kappa": self.kappa,
            "target_kappa_ci_low": self.kappa_low,
            "target_kappa_ci_high": self.kappa_high,
            "target_macro_f1": self.macro_f1,
            "target_accuracy": self.accuracy,
            "target_accepted_share": self.accepted_share,
            "target_accepted_precision": self.accepted_precision,
            "target_folds": float(self.folds),
        }
        for code, value in self.recall.items():
            out[f"target_recall_{code}"] = value
            out[f"target_support_{code}"] = float(self.support[code])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "lines": self.lines()}


def _num(x: float) -> str:
    return f"{x:.2f}" if np.isfinite(x) else "n/a"


def grouped_kappa_interval(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], groups: Sequence[str], n_boot: int, seed: int
) -> tuple[float, float]:
    """95% bootstrap interval of Cohen's κ resampling whole groups (interviews) with replacement:
    passages of one interview share a speaker and its turns of phrase, so they are not
    independent evidence."""
    codes = {c: i for i, c in enumerate(labels)}
    k = len(codes)
    names, gi = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    cells = np.array([codes[str(a)] * k + codes[str(b)] for a, b in zip(y_true, y_pred)])
    per_group = np.zeros((len(names), k * k))
    np.add.at(per_group, (gi, cells), 1.0)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=n_boot)
    kappas = stats_from_confusion((draws @ per_group).reshape(n_boot, k, k))["kappa"]
    kappas = kappas[np.isfinite(kappas)]
    if not len(kappas):
        return float("nan"), float("nan")
    low, high = np.percentile(kappas, [2.5, 97.5])
    return float(low), float(high)


def trust_report(
    y_true: Sequence[str] | np.ndarray,
    oof_proba: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str],
    target_precision: float,
    seed: int,
    folds: int = 5,
    grouped: bool = True,
) -> TrustReport:
    """The trust figure from out-of-fold probabilities (`cross_fit`): κ with a bootstrap interval
    over interviews, macro-F1, per-code recall, and the precision and share accepted at a review
    threshold chosen cross-fitted (per fold, on the other folds' predictions, by the same folds
    as `cross_fit` for the same ``seed`` and ``folds``)."""
    labels = [str(c) for c in labels]
    y_true = np.asarray([str(v) for v in y_true], dtype=object)
    proba = np.asarray(oof_proba, dtype=np.float64)
    if len(y_true) != len(proba) or len(groups) != len(y_true):
        raise ValueError(f"{len(y_true)} codes, {len(proba)} predictions and {len(groups)} groups: one each")
    y_pred = np.asarray(labels, dtype=object)[proba.argmax(1)]
    confidence = proba.max(1)
    correct = y_pred == y_true
    n_groups = len(set(groups))
    notes: list[str] = []
    boot_groups = list(groups) if n_groups > 1 else [str(i) for i in range(len(y_true))]
    low, high = grouped_kappa_interval(y_true, y_pred, labels, boot_groups, N_BOOT, seed)
    present = [c for c in labels if c in set(y_true) | set(y_pred)]
    support = {c: int((y_true == c).sum()) for c in labels if (y_true == c).any()}
    recall = {c: float((correct & (y_true == c)).sum() / support[c]) for c in support}
    pairs, note = target_folds(y_true, list(groups), folds, seed) if len(y_true) >= 2 else ([], None)
    if note and grouped:
        notes.append(note)
    accepted = np.zeros(len(y_true), dtype=bool)
    thresholds = []
    for train_idx, test_idx in pairs:
        threshold = review_threshold(confidence[train_idx], correct[train_idx], target_precision)
        kept = confidence[train_idx] >= threshold
        reached = kept.any() and correct[train_idx][kept].mean() >= target_precision
        thresholds.append(threshold if reached else float("nan"))
        if reached:
            accepted[test_idx] = confidence[test_idx] >= threshold
    return TrustReport(
        n=len(y_true),
        n_interviews=n_groups,
        grouped=grouped,
        kappa=cohens_kappa(list(y_true), list(y_pred)),
        kappa_low=low,
        kappa_high=high,
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        accuracy=float(correct.mean()) if len(correct) else float("nan"),
        recall=recall,
        support=support,
        target_precision=target_precision,
        fold_thresholds=thresholds,
        accepted_share=float(accepted.mean()) if len(accepted) else float("nan"),
        accepted_precision=float(correct[accepted].mean()) if accepted.any() else float("nan"),
        folds=len(pairs),
        notes=notes,
    )
