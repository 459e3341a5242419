"""The researcher's own coded passages as the target domain (issue 19): weights, continued
training, the few-shot blend, calibration on the target, cross-fitting and the trust figure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import PASSAGES, fast_overrides, make_rows, write_jsonl
from supportlens.calibration import review_threshold, temperature_fit
from supportlens.config import AdaptConfig, load_config
from supportlens.corpus.splits import SplitError
from supportlens.evaluation.evaluate import excerpt_hash
from supportlens.models import TextClassifier, load_classifier
from supportlens.models.tfidf import TfidfLogReg
from supportlens.training import adapt as adapt_module
from supportlens.training.adapt import (
    SourceData,
    TargetData,
    cross_fit,
    fit_adapted,
    target_folds,
    target_weights,
    trust_report,
)
from supportlens.training.trainer import train

LABELS = ["push", "pull", "co_creation", "none"]


def _cfg(*sets: str):
    return load_config(None, fast_overrides() + list(sets))


def _source(n_interviews: int = 10) -> tuple[list[str], np.ndarray, list[str], list[str], np.ndarray, list[str]]:
    """(X, y, groups) for training and (X_val, y_val, val_groups): fixture rows, 4 interviews (32
    excerpts) of validation, enough to calibrate on."""
    rows = make_rows(n_interviews, 2)
    train_rows = [r for r in rows if int(r["interview_id"][1:]) >= 4]
    val_rows = [r for r in rows if int(r["interview_id"][1:]) < 4]

    def parts(rs):
        return (
            [r["text"] for r in rs],
            np.array([r["label"] for r in rs], dtype=object),
            [r["interview_id"] for r in rs],
        )

    return (*parts(train_rows), *parts(val_rows))


def _target(n_interviews: int = 4, per_label: int = 2, relabel: dict[str, str] | None = None) -> TargetData:
    """Passages of 'your own corpus': the fixture's sentences in other words, ``relabel`` giving
    codes that differ from the authored ones (a corpus whose language means something else)."""
    texts, labels, groups = [], [], []
    for g in range(n_interviews):
        for label, sentences in PASSAGES.items():
            for j in range(per_label):
                texts.append(f"{sentences[(g + j) % 3]} said the coach at clinic {g} visit {j}")
                labels.append((relabel or {}).get(label, label))
                groups.append(f"own{g}")
    return TargetData(texts, np.array(labels, dtype=object), groups)


def _target_file(tmp_path: Path, target: TargetData) -> Path:
    rows = [
        {"id": f"t{i:03d}", "interview_id": g, "text": t, "label": lab}
        for i, (t, lab, g) in enumerate(zip(target.texts, target.labels, target.groups))
    ]
    return write_jsonl(tmp_path / "own.jsonl", rows)


# ---------------------------------------------------------------------------------------------
# weights and folds


def test_target_weights_give_the_target_exactly_its_share():
    w = target_weights(300, 20, AdaptConfig(weighting="share", target_share=0.25))
    assert len(w) == 320 and (w[:300] == 1.0).all() and np.allclose(w[300:], w[300])
    assert w[300:].sum() / w.sum() == pytest.approx(0.25, abs=1e-12)
    half = target_weights(300, 20, AdaptConfig(weighting="share", target_share=0.5))
    assert half[300:].sum() == pytest.approx(300.0) and half[300] == pytest.approx(15.0)
    assert (target_weights(300, 20, AdaptConfig(weighting="off")) == 1.0).all()
    assert (target_weights(300, 0, AdaptConfig()) == 1.0).all() and len(target_weights(0, 5, AdaptConfig())) == 5


def test_target_folds_are_grouped_and_fall_back_as_documented():
    target = _target(n_interviews=3)
    pairs, note = target_folds(target.labels, target.groups, 5, seed=1)
    assert len(pairs) == 3 and note is None  # fewer interviews than folds: one fold per interview
    groups = np.array(target.groups)
    for train_idx, test_idx in pairs:
        assert not set(groups[train_idx]) & set(groups[test_idx])
    one = _target(n_interviews=1)
    pairs, note = target_folds(one.labels, ["same"] * len(one), 5, seed=1)
    assert len(pairs) == 5 and "all coded passages come from one interview" in note
    assert sorted(np.concatenate([te for _, te in pairs]).tolist()) == list(range(len(one)))
    with pytest.raises(SplitError, match="at least 2 coded passages"):
        target_folds(np.array(["push"], dtype=object), ["a"], 5, seed=1)


# ---------------------------------------------------------------------------------------------
# (a) to (d), each on and off


def test_a_weighting_moves_the_model_towards_the_target_language():
    """The target corpus codes push-like talk as pull and pull-like talk as push (the same share
    of each code, so class balancing leaves them be); weighted to 90% of the loss its reading wins
    on authored push talk, weighted like authored rows it is outvoted."""
    X, y, _, X_val, y_val, val_groups = _source()
    target = _target(relabel={"push": "pull", "pull": "push"})
    query = [PASSAGES["push"][0]]
    pull = LABELS.index("pull")
    common = ["adapt.fewshot=off", "adapt.calibrate_on_target=false"]
    shared, _, _ = fit_adapted(
        _cfg(*common, "adapt.weighting=share", "adapt.target_share=0.9"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        target,
    )
    drowned, _, _ = fit_adapted(
        _cfg(*common, "adapt.weighting=off"), LABELS, SourceData(X, y, X_val, y_val, val_groups), target
    )
    assert shared.kind == drowned.kind == "tfidf_logreg"
    assert shared.predict_proba(query)[0, pull] > drowned.predict_proba(query)[0, pull] + 0.3
    assert (shared.predict(query)[0], drowned.predict(query)[0]) == ("pull", "push")


def test_b_continues_a_copy_of_the_given_model_with_authored_rows_replayed(monkeypatch):
    X, y, _, X_val, y_val, val_groups = _source()
    target = _target()
    cfg = _cfg(
        "adapt.weighting=off",
        "adapt.fewshot=off",
        "adapt.calibrate_on_target=false",
        "adapt.replay=0.25",
        "adapt.continue_epochs=2",
    )
    init = TfidfLogReg(labels=LABELS).fit(X, y)
    before = init.predict_proba(target.texts)
    calls: list[dict] = []
    real = TextClassifier.continue_fit

    def spy(self, X, y, sample_weight=None, X_val=None, y_val=None, epochs=1):
        calls.append({"X": list(X), "w": np.asarray(sample_weight), "epochs": epochs, "self": self})
        return real(self, X, y, sample_weight=sample_weight, X_val=X_val, y_val=y_val, epochs=epochs)

    monkeypatch.setattr(TextClassifier, "continue_fit", spy)
    model, calibration, _ = fit_adapted(cfg, LABELS, SourceData(X, y, X_val, y_val, val_groups), target, init_from=init)
    (call,) = calls
    n_replay = round(0.25 * len(X))
    assert len(call["X"]) == n_replay + len(target) and call["X"][n_replay:] == target.texts
    assert set(call["X"][:n_replay]) <= set(X) and call["epochs"] == 2
    assert np.allclose(call["w"], target_weights(n_replay, len(target), cfg.adapt))
    assert call["self"] is model and model is not init
    assert np.array_equal(init.predict_proba(target.texts), before)  # the given model is untouched
    assert not np.allclose(model.predict_proba(target.texts), before)
    assert calibration.on == "validation" and calibration.val_excerpts == len(X_val)
    # seeded: the same replayed rows again
    again, _, _ = fit_adapted(cfg, LABELS, SourceData(X, y, X_val, y_val, val_groups), target, init_from=init)
    assert calls[1]["X"] == call["X"] and np.allclose(again.predict_proba(X_val), model.predict_proba(X_val))
    calls.clear()
    fit_adapted(cfg, LABELS, SourceData(X, y, X_val, y_val, val_groups), target)  # without init_from: fitted anew
    assert calls == []


def test_c_blends_a_fewshot_component_over_the_target_passages(tiny_bert, monkeypatch):
    X, y, _, X_val, y_val, val_groups = _source()
    target = _target()
    calibrated: list[str] = []
    real = TextClassifier.calibrate

    def spy(self, X, y):
        calibrated.append(self.kind)
        return real(self, X, y)

    monkeypatch.setattr(TextClassifier, "calibrate", spy)
    sets = [f"model.pretrained={tiny_bert}", "adapt.calibrate_on_target=false", "calibration.temperature=true"]
    blend, calibration, _ = fit_adapted(
        _cfg(*sets, "adapt.fewshot=knn", "adapt.fewshot_k0=8", "adapt.fewshot_max_weight=0.6"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        target,
    )
    assert blend.kind == "fewshot_blend" and blend.base_.kind == "tfidf_logreg" and blend.method == "knn"
    assert blend.weight_ == pytest.approx(0.6 * len(target) / (len(target) + 8))
    assert calibrated[-1] == "fewshot_blend" and calibration.on == "validation"  # the blend's own temperature
    assert np.allclose(blend.predict_proba(X_val).sum(1), 1.0)
    plain, _, _ = fit_adapted(
        _cfg(*sets, "adapt.fewshot=off"), LABELS, SourceData(X, y, X_val, y_val, val_groups), target
    )
    assert plain.kind == "tfidf_logreg"


def test_d_calibrates_on_the_target_passages_cross_fitted_once_there_are_enough():
    X, y, _, X_val, y_val, val_groups = _source()
    target = _target()  # 32 passages from 4 interviews
    rng = np.random.default_rng(3)
    oof = rng.dirichlet(np.ones(4), size=len(target))  # given: the figures below follow from it alone
    sets = [
        "adapt.weighting=off",
        "adapt.fewshot=off",
        "calibration.temperature=true",
        "calibration.target_precision=0.3",
    ]
    on_val, val_cal, _ = fit_adapted(
        _cfg(*sets, "adapt.calibrate_on_target=false"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        target,
        oof=oof,
    )
    model, calibration, _ = fit_adapted(
        _cfg(*sets, "adapt.min_target_calibration=30"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        target,
        oof=oof,
    )
    assert val_cal.on == "validation" and val_cal.val_excerpts == len(X_val)
    assert calibration.on == "target" and (calibration.val_excerpts, calibration.val_interviews) == (32, 4)
    assert "cross-fitted predictions of 32 coded passages" in calibration.notes[0]
    assert "32 coded passages from 4 interviews of your corpus (cross-fitted)" in calibration.summary()
    y_idx = np.array([LABELS.index(c) for c in target.labels])
    t = temperature_fit(np.log(oof), y_idx).temperature
    assert model.temperature_ == pytest.approx(on_val.temperature_ * t)
    z = np.exp(np.log(oof) / t)
    scaled = z / z.sum(1, keepdims=True)
    assert calibration.review_threshold == pytest.approx(
        review_threshold(scaled.max(1), scaled.argmax(1) == y_idx, 0.3)
    )
    few, few_cal, _ = fit_adapted(
        _cfg(*sets, "adapt.min_target_calibration=40"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        target,
        oof=oof,
    )
    assert few_cal.on == "validation" and "fewer than adapt.min_target_calibration (40)" in few_cal.notes[-1]


# ---------------------------------------------------------------------------------------------
# cross-fitting


class Memoriser(TextClassifier):
    """Certain of the code of every passage it was trained on, uniform on the rest: a model that
    scored a passage it saw would give it away."""

    kind = "memoriser"
    scored: list[tuple[set[str], list[str]]] = []

    def __init__(self, labels: list[str]):
        self.labels = labels

    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        self.seen_ = dict(zip(X, y))

    def _logits(self, X):
        Memoriser.scored.append((set(self.seen_), list(X)))
        out = np.zeros((len(X), len(self.labels)))
        for i, text in enumerate(X):
            if text in self.seen_:
                out[i, self.labels.index(self.seen_[text])] = 50.0
        return out


@pytest.mark.parametrize("weighting", ["off", "auto"])
def test_cross_fit_never_scores_a_passage_with_a_model_that_saw_it_or_its_interview(monkeypatch, weighting):
    """With ``auto``, each fold chooses its weight by folds within its own training passages:
    those inner scorings too are by models that never saw the passage or its interview."""
    X, y, _, X_val, y_val, val_groups = _source()
    target = _target(n_interviews=6)

    def fit_memoriser(cfg, labels, X, y, X_val, y_val, val_groups=None, sample_weight=None):
        from supportlens.calibration import Calibration

        model = Memoriser(labels).fit(X, y)
        return model, Calibration(1.0, False, 0.5, True, len(X_val), 2), 0.0

    monkeypatch.setattr(adapt_module, "fit_and_calibrate", fit_memoriser)
    Memoriser.scored = []
    cfg = _cfg("adapt.fewshot=off", f"adapt.weighting={weighting}", "adapt.min_selection=4")
    oof = cross_fit(cfg, LABELS, SourceData(X, y, X_val, y_val, val_groups), target, folds=3)
    assert np.allclose(oof, 0.25)  # every passage scored by a model that never learnt it
    group_of = dict(zip(target.texts, target.groups))
    scored = sum(len(texts) for _, texts in Memoriser.scored)
    # auto: besides the outer scoring, three shares score each fold's training passages once each
    assert scored == (len(target) if weighting == "off" else len(target) + 3 * 2 * len(target))
    for seen, texts in Memoriser.scored:
        assert {group_of[t] for t in texts}.isdisjoint({group_of[t] for t in seen if t in group_of})
        assert set(X) <= seen  # the source rows are in every fold's training


# ---------------------------------------------------------------------------------------------
# the trust figure


def _hand_example() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Ten passages, five interviews of two; two mistakes, both in interview g4, at confidence 0.6,
    the eight right ones at 0.9. κ = (0.8 - 0.5) / (1 - 0.5) = 0.6."""
    y_true = np.array(["push"] * 5 + ["pull"] * 5, dtype=object)
    groups = ["g0", "g1", "g2", "g3", "g4", "g0", "g1", "g2", "g3", "g4"]
    predicted = ["push"] * 4 + ["pull"] + ["pull"] * 4 + ["push"]
    proba = np.zeros((10, 4))
    for i, code in enumerate(predicted):
        sure = 0.9 if code == y_true[i] else 0.6
        proba[i] = (1 - sure) / 3
        proba[i, LABELS.index(code)] = sure
    return y_true, proba, groups


def test_trust_report_on_a_hand_checked_example():
    y_true, proba, groups = _hand_example()
    report = trust_report(y_true, proba, LABELS, groups, target_precision=0.8, seed=1, folds=5)
    assert report.kappa == pytest.approx(0.6) and report.macro_f1 == pytest.approx(0.8)
    assert report.accuracy == pytest.approx(0.8) and (report.n, report.n_interviews) == (10, 5)
    assert report.recall == {"push": pytest.approx(0.8), "pull": pytest.approx(0.8)}
    assert report.support == {"push": 5, "pull": 5}
    # whichever fold holds g4 learns its threshold from 8 right passages: 0.9; every other fold's
    # training holds the two mistakes (precision 6/8 < 0.8 at 0.6): 0.9 too. So the eight right
    # passages are accepted, the two mistakes go to review
    assert report.fold_thresholds == [pytest.approx(0.9)] * report.folds
    assert report.accepted_share == pytest.approx(0.8) and report.accepted_precision == pytest.approx(1.0)
    assert report.kappa_low < 0.6 < report.kappa_high <= 1.0
    # resampling interviews: a resample without g4 is perfect, so the interval reaches 1.0
    assert report.kappa_high == pytest.approx(1.0)
    lines = report.lines()
    assert lines[0].startswith("On your 10 coded passages from 5 interviews, cross-fitted (5 folds")
    assert "κ 0.60 [" in lines[0] and "bootstrap interval over interviews" in lines[0]
    assert lines[1] == "recall per code (passages): push 0.80 (5), pull 0.80 (5)"
    assert "precision reached 1.00 on the 80% of passages accepted" in lines[2]
    assert lines[3].startswith("warning: 10 coded passages are too few: the interval is too wide to trust")
    metrics = report.metrics()
    assert metrics["target_kappa"] == pytest.approx(0.6) and metrics["target_recall_pull"] == pytest.approx(0.8)
    assert all(key.startswith("target_") for key in metrics)
    assert json.loads(json.dumps(report.to_dict()))["lines"] == lines


def test_trust_report_of_enough_passages_from_two_interviews_warns_that_the_interval_is_too_narrow():
    """33 passages from 2 interviews: a bootstrap over 2 interviews looks tight and means little."""
    y_true, proba, _ = _hand_example()
    y_true, proba = np.concatenate([y_true] * 3), np.vstack([proba] * 3)
    groups = ["a"] * 15 + ["b"] * 15
    lines = trust_report(y_true, proba, LABELS, groups, target_precision=0.8, seed=1, folds=2).lines()
    warning = [line for line in lines if line.startswith("warning:")]
    assert warning and "only 2 interviews" in warning[0] and "at least 5 interviews" in warning[0]


def test_trust_report_of_enough_passages_from_one_interview_says_what_its_folds_are():
    y_true, proba, _ = _hand_example()
    y_true, proba = np.concatenate([y_true] * 3), np.concatenate([proba] * 3)
    report = trust_report(y_true, proba, LABELS, ["one"] * 30, target_precision=0.8, seed=1, folds=5)
    assert report.n_interviews == 1 and not any(line.startswith("warning:") for line in report.lines())
    assert "bootstrap interval over passages" in report.lines()[0]
    assert any("all coded passages come from one interview" in line for line in report.lines())
    unseen = trust_report(y_true, proba, LABELS, [str(i) for i in range(30)], 0.8, seed=1, grouped=False)
    assert "(no interview column: folds and interval over passages)" in unseen.lines()[0]


# ---------------------------------------------------------------------------------------------
# training with added files


def test_added_files_are_the_target_domain_kept_out_of_the_authored_split(coded_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = _target()
    own = _target_file(tmp_path, target)
    cfg = _cfg(f"data.path={coded_file}", "adapt.fewshot=off", "adapt.min_target_calibration=20")
    logs: list[str] = []
    base = train(cfg, track=False, log=lambda m: None)
    result = train(cfg, track=False, log=logs.append, extra_data=[str(own)])
    # the authored split is the one without the added file: its interviews and sizes alike
    assert result.split_sizes == base.split_sizes and result.split_interviews == base.split_interviews
    assert result.test.predictions["id"].tolist() == base.test.predictions["id"].tolist()
    saved = json.loads((result.model_dir / "excerpts.json").read_text())
    own_hashes = {excerpt_hash(t) for t in target.texts}
    assert own_hashes <= set(saved["train"]) and not own_hashes & set(saved["val"] + saved["test"])
    assert len(saved["train"]) == base.split_sizes["train"] + len(target)
    # the trust figure, after the test line, and in the meta and the card
    trust = result.trust
    assert trust is not None and (trust.n, trust.n_interviews) == (32, 4)
    test_line = next(i for i, line in enumerate(logs) if line.startswith("test: "))
    first = next(i for i, line in enumerate(logs) if line.startswith("On your 32 coded passages from 4 interviews"))
    assert first > test_line and logs[first + 1].startswith("recall per code")
    meta = load_classifier(result.model_dir).meta_
    assert meta["trust"]["lines"] == trust.lines() and meta["run"]["target"]["passages"] == 32
    assert meta["calibration"]["on"] == "target"
    card = (result.model_dir / "MODEL_CARD.md").read_text()
    assert "## Agreement on your own coded passages (cross-fitted)" in card and trust.lines()[0] in card
    assert "32 passages from 4 interviews coded on your own corpus" in card
    assert result.data.digest != base.data.digest


def test_without_added_files_training_is_what_it_was(coded_file, tmp_path, monkeypatch):
    """No extra data: the split, fit and calibration of before (`fit_and_calibrate` on the grouped
    split of every row), and the data digest of the file alone. A guard against change: the old
    code passes it too."""
    from supportlens.codebook import load_codebook
    from supportlens.corpus.dataset import load_coded
    from supportlens.corpus.splits import grouped_split
    from supportlens.models.fitting import fit_and_calibrate

    monkeypatch.chdir(tmp_path)
    cfg = _cfg(f"data.path={coded_file}")
    result = train(cfg, track=False, log=lambda m: None)
    data = load_coded(coded_file, load_codebook(cfg.codebook), cfg.data)
    frame = data.frame
    split = grouped_split(frame["label"].to_numpy(), frame["group"].to_numpy(), 0.2, 0.2, cfg.seed)
    texts, codes, groups = frame["text"].tolist(), frame["label"].to_numpy(dtype=object), frame["group"].tolist()
    model, calibration, _ = fit_and_calibrate(
        cfg,
        LABELS,
        [texts[i] for i in split.train],
        codes[split.train],
        [texts[i] for i in split.val],
        codes[split.val],
        [groups[i] for i in split.val],
    )
    expected = model.predict_proba([texts[i] for i in split.test])
    got = result.test.predictions[[f"p_{c}" for c in LABELS]].to_numpy()
    assert np.allclose(got, expected) and result.review_threshold == calibration.review_threshold
    assert result.trust is None and result.data.digest == data.digest
    assert "target" not in load_classifier(result.model_dir).meta_["run"]


def test_init_from_is_checked_against_the_config_and_the_codebook(coded_file, tmp_path, monkeypatch, model_dir):
    from supportlens.models import ModelLoadError

    monkeypatch.chdir(tmp_path)
    own = _target_file(tmp_path, _target())
    cfg = _cfg(f"data.path={coded_file}", "adapt.fewshot=off")
    with pytest.raises(ModelLoadError, match=r"^`init_from` continues a trained model .* give them with `extra_data`"):
        train(cfg, track=False, log=lambda m: None, init_from=str(model_dir))
    embed = _cfg(f"data.path={coded_file}", "model.kind=embed_logreg")
    with pytest.raises(ModelLoadError, match="is a tfidf_logreg model, but the config trains embed_logreg"):
        train(embed, track=False, log=lambda m: None, extra_data=[str(own)], init_from=str(model_dir))
    other = tmp_path / "other"
    texts = [r["text"] for r in make_rows(2, 1)]
    TfidfLogReg(labels=["a", "b"]).fit(texts, ["a", "b"] * (len(texts) // 2)).save(other)
    with pytest.raises(ModelLoadError, match="the model codes a, b, but the codebook"):
        train(cfg, track=False, log=lambda m: None, extra_data=[str(own)], init_from=str(other))
    with pytest.raises(ModelLoadError, match="not found"):
        train(cfg, track=False, log=lambda m: None, extra_data=[str(own)], init_from=str(tmp_path / "none"))


# ---------------------------------------------------------------------------------------------
# (a) chosen on the target passages: adapt.weighting auto


def test_one_standard_error_keeps_the_smallest_share_within_noise_of_the_best():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.5, size=40)
    # 0.25 is a little better than no weight but well within the noise; 0.5 is clearly best
    noisy = {0.0: base, 0.25: base - 0.01 + rng.normal(0, 0.3, 40), 0.5: base - 0.4}
    chosen, errors = adapt_module.one_standard_error(noisy)
    assert chosen == 0.5 and errors[0.5] == 0.0
    # the same gap buried in noise: the smallest share is kept
    buried = {0.0: base, 0.25: base - 0.05 + rng.normal(0, 1.0, 40), 0.5: base + 0.2}
    assert adapt_module.one_standard_error(buried)[0] == 0.0


def test_auto_weighting_weights_a_corpus_that_codes_differently_and_not_one_that_agrees():
    X, y, _, X_val, y_val, val_groups = _source()
    cfg = _cfg("adapt.weighting=auto", "adapt.fewshot=off", "adapt.calibrate_on_target=false")
    # a corpus whose language means something else: only weight lets its passages predict each other
    differs = adapt_module.select_weighting(
        cfg, LABELS, SourceData(X, y, X_val, y_val, val_groups), _target(relabel={"push": "pull", "pull": "push"})
    )
    assert differs.share > 0 and differs.note is None and differs.folds == 3
    assert differs.losses[differs.share] < differs.losses[0.0] - differs.standard_errors[0.0]
    assert set(differs.losses) == {0.0, 0.25, 0.5}
    # one that codes as the authored corpus does: extra weight cannot earn its keep
    agrees = adapt_module.select_weighting(cfg, LABELS, SourceData(X, y, X_val, y_val, val_groups), _target())
    assert agrees.share == 0.0 and agrees.note is None
    assert "no extra weight, chosen by 3-fold cross-fitting on 32 coded passages" in agrees.line()
    assert len(re.findall(r"±\d", agrees.line())) == len(agrees.losses) - 1  # beside every share but the best


def test_auto_weighting_fits_as_the_chosen_share_and_says_so():
    X, y, _, X_val, y_val, val_groups = _source()
    target = _target(relabel={"push": "pull", "pull": "push"})
    common = ["adapt.fewshot=off", "adapt.calibrate_on_target=false"]
    auto, calibration, _ = fit_adapted(
        _cfg(*common, "adapt.weighting=auto"), LABELS, SourceData(X, y, X_val, y_val, val_groups), target
    )
    share = adapt_module.select_weighting(
        _cfg(*common, "adapt.weighting=auto"), LABELS, SourceData(X, y, X_val, y_val, val_groups), target
    ).share
    fixed, _, _ = fit_adapted(
        _cfg(*common, "adapt.weighting=share", f"adapt.target_share={share}"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        target,
    )
    query = [PASSAGES["push"][0], PASSAGES["pull"][1]]
    np.testing.assert_allclose(auto.predict_proba(query), fixed.predict_proba(query))
    assert any(note.startswith(f"adapt.weighting auto: {share:.0%} of the loss") for note in calibration.notes)


def test_auto_weighting_below_min_selection_keeps_no_extra_weight_and_fits_nothing_more(monkeypatch):
    X, y, _, X_val, y_val, val_groups = _source()
    calls = []
    monkeypatch.setattr(adapt_module, "cross_fit", lambda *a, **k: calls.append(a))
    choice = adapt_module.select_weighting(
        _cfg("adapt.weighting=auto", "adapt.min_selection=40"),
        LABELS,
        SourceData(X, y, X_val, y_val, val_groups),
        _target(),
    )
    assert choice.share == 0.0 and not calls
    assert (
        choice.line()
        == "adapt.weighting auto: no extra weight (32 coded passages, fewer than adapt.min_selection (40) to choose by)"
    )


def test_auto_weighting_settings_are_checked():
    with pytest.raises(ValueError, match="adapt.share_grid"):
        AdaptConfig(weighting="auto", share_grid=[0.0])
    with pytest.raises(ValueError, match="adapt.share_grid"):
        AdaptConfig(weighting="auto", share_grid=[0.0, 1.0])
    with pytest.raises(ValueError, match="adapt.weighting"):
        AdaptConfig(weighting="cv")
    for bad in ({"selection_folds": 1}, {"min_selection": 1}):
        with pytest.raises(ValueError, match="adapt.selection_folds and adapt.min_selection must be at least 2"):
            AdaptConfig(weighting="auto", **bad)


def test_train_with_auto_weighting_logs_and_records_the_choice(coded_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    own = _target_file(tmp_path, _target(relabel={"push": "pull", "pull": "push"}))
    cfg = _cfg(
        f"data.path={coded_file}", "adapt.weighting=auto", "adapt.fewshot=off", "adapt.min_target_calibration=100"
    )
    logs: list[str] = []
    result = train(cfg, track=False, log=logs.append, extra_data=[str(own)])
    chosen = [line for line in logs if line.startswith("adapt.weighting auto: ")]
    assert len(chosen) == 1 and "chosen by 3-fold cross-fitting on 32 coded passages" in chosen[0]
    assert any("each fold chooses its weighting on its own training passages" in line for line in logs)
    meta = load_classifier(result.model_dir).meta_
    record = meta["run"]["target"]["weighting_choice"]
    assert record["share"] > 0 and record["n"] == 32
    described = meta["run"]["target"]["adapt"]
    assert "of the loss (chosen by cross-fitting on them among 3 shares: adapt.weighting auto);" in described
    assert described in (result.model_dir / "MODEL_CARD.md").read_text()


def test_passages_from_a_held_out_authored_interview_warn_that_the_test_figures_are_optimistic(
    coded_file, tmp_path, monkeypatch
):
    """A sheet of a transcript the authored data also hold joins that interview; if the split holds
    it out for testing, the model now learns from it: the log says so, and which interview."""
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(f"data.path={coded_file}", "adapt.weighting=off", "adapt.fewshot=off")
    base = train(cfg, track=False, log=lambda m: None)
    tested = sorted(set(base.test.predictions["group"]))
    target = _target(n_interviews=2)
    joined = TargetData(target.texts, target.labels, [tested[0] if g == "own0" else g for g in target.groups])
    logs: list[str] = []
    train(cfg, track=False, log=logs.append, extra_data=[str(_target_file(tmp_path, joined))])
    (warning,) = [line for line in logs if "held out in" in line]
    assert warning.startswith("warning: 8 coded passages of your corpus come from interviews whose authored")
    assert f"the test split ({tested[0]})" in warning and "own1" not in warning
    # passages of new interviews only: no warning
    logs.clear()
    train(cfg, track=False, log=logs.append, extra_data=[str(_target_file(tmp_path, target))])
    assert not [line for line in logs if "held out in" in line]
