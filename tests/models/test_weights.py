"""Per-passage sample weights and continued training, for every model kind: what `train
--add-data` and `--init-from` build on to make a researcher's own coded passages count as the
target domain."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from conftest import make_rows
from supportlens.config import load_config
from supportlens.models import (
    CodebookPriorClassifier,
    EmbedLogReg,
    EnsembleClassifier,
    FineTuneClassifier,
    TfidfLogReg,
    load_classifier,
)
from supportlens.models.base import TextClassifier, check_sample_weight
from supportlens.models.finetune import _cross_entropy
from supportlens.models.fitting import fit_key, fit_model, reuse_fits

LABELS = ["push", "pull", "co_creation", "none"]


def _xy(n_interviews=6, per_label=2):
    rows = make_rows(n_interviews, per_label)
    return [r["text"] for r in rows], np.array([r["label"] for r in rows], dtype=object)


def _relabelled(X, y, weight=5.0):
    """The data plus a copy of every "none" passage coded "pull", the copies weighing ``weight``:
    weights decide which code those passages lean to."""
    copies = [x for x, label in zip(X, y) if label == "none"]
    X2 = X + copies
    y2 = np.concatenate([y, np.array(["pull"] * len(copies), dtype=object)])
    return X2, y2, np.r_[np.ones(len(X)), np.full(len(copies), weight)], copies


def _pull(model, X):
    return model.predict_proba(X)[:, LABELS.index("pull")].mean()


# -- sample weights --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tfidf", "embed"])
def test_uniform_weights_give_the_unweighted_model(kind, tiny_bert):
    X, y = _xy()

    def fresh():
        if kind == "tfidf":
            return TfidfLogReg(labels=LABELS)
        # random tiny embeddings lie close together: a weak penalty lets the head follow them
        return EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), max_length=32, C=50.0)

    plain = fresh().fit(X, y).predict_proba(X)
    assert np.array_equal(fresh().fit(X, y, sample_weight=np.ones(len(X))).predict_proba(X), plain)
    assert np.array_equal(fresh().fit(X, y, sample_weight=[3.0] * len(X)).predict_proba(X), plain)
    X2, y2, w, copies = _relabelled(X, y)
    weighted = fresh().fit(X2, y2, sample_weight=w)
    assert _pull(weighted, copies) > _pull(fresh().fit(X2, y2), copies) + 0.02


@pytest.mark.parametrize("class_weight", ["balanced", None])
def test_upweighted_passages_pull_the_model_towards_their_code(class_weight):
    X, y = _xy()
    X2, y2, w, copies = _relabelled(X, y)
    plain = TfidfLogReg(labels=LABELS, class_weight=class_weight).fit(X2, y2)
    weighted = TfidfLogReg(labels=LABELS, class_weight=class_weight).fit(X2, y2, sample_weight=w)
    assert _pull(weighted, copies) > _pull(plain, copies) + 0.05
    # only ratios matter: the same weights at another scale make the same model
    scaled = TfidfLogReg(labels=LABELS, class_weight=class_weight).fit(X2, y2, sample_weight=w * 7)
    assert np.allclose(scaled.predict_proba(X), weighted.predict_proba(X), atol=1e-8)


def test_unbalanced_weights_on_one_code_raise_its_probability():
    X, y = _xy()
    w = np.where(y == "pull", 5.0, 1.0)
    plain = TfidfLogReg(labels=LABELS, class_weight=None).fit(X, y)
    weighted = TfidfLogReg(labels=LABELS, class_weight=None).fit(X, y, sample_weight=w)
    assert _pull(weighted, X) > _pull(plain, X) + 0.02


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 2.0], "sample_weight has 2 values for 3 training passages"),
        ([1.0, -1.0, 1.0], "sample_weight must not be negative"),
        ([1.0, float("nan"), 1.0], "sample_weight must be finite"),
        ([0.0, 0.0, 0.0], "sample_weight is zero for every passage"),
        (["a", "b", "c"], "sample_weight must be numbers"),
    ],
)
def test_bad_sample_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        TfidfLogReg(labels=LABELS).fit(["a b", "c d", "e f"], ["push", "pull", "none"], sample_weight=weights)


def test_check_sample_weight_drops_weights_that_change_nothing():
    assert check_sample_weight(None, 3) is None
    assert check_sample_weight([2.0, 2.0, 2.0], 3) is None
    assert np.allclose(check_sample_weight([1.0, 3.0], 2), [0.5, 1.5])


def test_fit_key_and_reuse_depend_on_the_weights():
    X, y = _xy()
    cfg = load_config(None, ["model.kind=tfidf_logreg"])
    a, b = np.r_[np.ones(20), np.full(10, 4.0)], np.r_[np.full(10, 4.0), np.ones(20)]
    args = (cfg, X[:30], y[:30], X[30:], y[30:])
    assert fit_key(*args) == fit_key(*args, np.ones(30))  # all equal: no weights at all
    assert fit_key(*args, a) == fit_key(*args, 2 * a)  # the same weights at another scale
    assert len({fit_key(*args), fit_key(*args, a), fit_key(*args, b)}) == 3
    with reuse_fits():
        m_a = fit_model(cfg, LABELS, *args[1:], sample_weight=a)[0]
        assert fit_model(cfg, LABELS, *args[1:], sample_weight=a)[0] is m_a
        m_b = fit_model(cfg, LABELS, *args[1:], sample_weight=b)[0]
        m_none = fit_model(cfg, LABELS, *args[1:])[0]
    assert m_b is not m_a and m_none is not m_a
    assert not np.allclose(m_a.predict_proba(X), m_b.predict_proba(X))


def _tfidf_member(C):
    return load_config(None, ["model.kind=tfidf_logreg", f"tfidf.C={C}", "calibration.temperature=false"]).to_dict()


def test_ensemble_fits_every_member_with_the_weights():
    X, y = _xy(8)
    X2, y2, w, copies = _relabelled(X[:48], y[:48])
    ensemble = EnsembleClassifier(labels=LABELS, members=[_tfidf_member(4.0), _tfidf_member(1.0)])
    ensemble.fit(X2, y2, X[48:], y[48:], sample_weight=w)
    for member, C in zip(ensemble.members_, (4.0, 1.0)):
        alone = TfidfLogReg(labels=LABELS, C=C).fit(X2, y2, sample_weight=w)
        assert np.allclose(member.predict_proba(X), alone.predict_proba(X))
        assert _pull(member, copies) > _pull(TfidfLogReg(labels=LABELS, C=C).fit(X2, y2), copies) + 0.02


# -- fine-tuning: a weighted loss ----------------------------------------------------------
def test_weighted_cross_entropy_is_the_old_loss_under_uniform_weights():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 1, 2, 3, 3])
    class_weights = torch.tensor([0.5, 1.0, 2.0, 1.5])
    for loss_fn in (
        torch.nn.CrossEntropyLoss(weight=class_weights, label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(label_smoothing=0.0),
    ):
        assert float(_cross_entropy(loss_fn, logits, target, torch.ones(6))) == pytest.approx(
            float(loss_fn(logits, target)), abs=1e-6
        )
    # a weight scales one passage's term; the denominator stays the class weights' sum
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights, label_smoothing=0.1)
    each = torch.nn.functional.cross_entropy(
        logits, target, weight=class_weights, label_smoothing=0.1, reduction="none"
    )
    w = torch.tensor([3.0, 0.0, 1.0, 1.0, 0.5, 0.5])
    expected = (w * each).sum() / class_weights[target].sum()
    assert float(_cross_entropy(loss_fn, logits, target, w)) == pytest.approx(float(expected), abs=1e-6)


def test_finetune_batch_loss_weighs_passages_with_and_without_rdrop(tiny_bert):
    X, y = _xy(2, 1)
    target = torch.tensor([LABELS.index(v) for v in y])
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 1.0, 0.5]), label_smoothing=0.1)
    for alpha in (0.0, 2.0):
        model = FineTuneClassifier(labels=LABELS, pretrained=str(tiny_bert), rdrop_alpha=alpha)
        tokenizer, net = model._build()
        batch = dict(tokenizer(X, padding=True, return_tensors="pt"))
        net.train()  # dropout: both passes of R-drop differ, so its KL term is not zero
        losses = {}
        for name, w in (("none", None), ("ones", torch.ones(len(X))), ("half", torch.full((len(X),), 0.5))):
            torch.manual_seed(0)
            with torch.no_grad():
                losses[name] = float(model._batch_loss(net, batch, target, loss_fn, w))
        assert losses["ones"] == pytest.approx(losses["none"], abs=1e-6)
        assert losses["half"] == pytest.approx(0.5 * losses["none"], abs=1e-6)


FINETUNE = dict(
    labels=LABELS,
    max_length=32,
    batch_size=8,
    learning_rate=1e-2,  # the tiny random model learns slowly
    head_learning_rate=1e-2,
    label_smoothing=0.0,
    warmup_ratio=0.0,
    freeze_embeddings=False,
    seed=7,
)


def test_finetune_weights_steer_the_fit(tiny_bert):
    X, y = _xy(4, 2)
    X2, y2, w, copies = _relabelled(X, y, weight=6.0)
    # without class weights, which would also rebalance the weighted counts of pull and none
    kwargs = dict(FINETUNE, pretrained=str(tiny_bert), epochs=2, class_weighted=False)
    plain = FineTuneClassifier(**kwargs).fit(X2, y2)
    ones = FineTuneClassifier(**kwargs).fit(X2, y2, sample_weight=np.ones(len(X2)))
    assert np.array_equal(ones.predict_proba(X), plain.predict_proba(X))
    weighted = FineTuneClassifier(**kwargs).fit(X2, y2, sample_weight=w)
    assert _pull(weighted, copies) > _pull(plain, copies) + 0.1  # 0.36 -> 0.54 with the fixture's weights
    # with class weights, label smoothing and R-drop too
    every = dict(kwargs, epochs=1, class_weighted=True, label_smoothing=0.1, rdrop_alpha=1.0)
    assert np.isfinite(FineTuneClassifier(**every).fit(X2, y2, sample_weight=w).history_[0]["train_loss"])


# -- continued training ----------------------------------------------------------------------
def _new_data(X, y):
    """Data unlike the original: the "none" passages coded "pull", beside the "push" ones;
    co_creation and none are absent."""
    copies = [x for x, label in zip(X, y) if label == "none"]
    push = [x for x, label in zip(X, y) if label == "push"]
    return copies + push, ["pull"] * len(copies) + ["push"] * len(push), copies


def _check_continued(model, X, y, tmp_path, epochs=1, atol=1e-9, before_reload=None):
    """Continue the saved-and-loaded ``model`` on new data; the checks every kind shares.
    ``before_reload`` runs before the continued model is saved and loaded again."""
    model.calibrate(X, y)
    model.save(tmp_path / "before")
    loaded = load_classifier(tmp_path / "before")
    before = loaded.predict_proba(X)
    history = list(loaded.history_)
    X_new, y_new, copies = _new_data(X, y)
    pull_before = _pull(loaded, copies)
    assert loaded.continue_fit(X_new, y_new, epochs=epochs) is loaded
    after = loaded.predict_proba(X)
    assert _pull(loaded, copies) > pull_before + 0.05  # towards the new data
    assert loaded.temperature_ == 1.0 and list(loaded.classes_) == LABELS
    assert (after > 0).all()  # the codes absent from the new data keep their columns
    assert loaded.history_[: len(history)] == history and len(loaded.history_) == len(history) + epochs
    assert all(r["continued"] == 1.0 for r in loaded.history_[len(history) :])
    assert not np.allclose(after, before)
    if before_reload is not None:
        before_reload(loaded)
    loaded.save(tmp_path / "after")
    assert np.allclose(load_classifier(tmp_path / "after").predict_proba(X), after, atol=atol)
    return loaded


def test_tfidf_continues_from_its_vocabulary_and_head(tmp_path):
    X, y = _xy()
    model = TfidfLogReg(labels=LABELS).fit(X, y)
    continued = _check_continued(model, X, y, tmp_path)
    vocabulary = model.pipeline_.steps[0][1].transformer_list[0][1].vocabulary_
    assert continued.pipeline_.steps[0][1].transformer_list[0][1].vocabulary_ == vocabulary
    assert list(continued.pipeline_.steps[-1][1].classes_) == sorted(LABELS)


def test_continued_head_gains_a_code_it_never_saw():
    X, y = _xy()
    keep = y != "pull"
    model = TfidfLogReg(labels=LABELS).fit([x for x, k in zip(X, keep) if k], y[keep])
    assert np.allclose(model.predict_proba(X)[:, LABELS.index("pull")], 0)
    X_new, y_new, copies = _new_data(X, y)
    model.continue_fit(X_new + X, y_new + list(y))
    assert _pull(model, copies) > 0.3
    assert list(model.pipeline_.steps[-1][1].classes_) == sorted(LABELS)


def test_embed_logreg_continues_its_head(tiny_bert, tmp_path):
    X, y = _xy()
    model = EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), max_length=32, C=50.0).fit(X, y)
    _check_continued(model, X, y, tmp_path, atol=1e-5)


def test_finetune_continues_from_loaded_weights(tiny_bert, tmp_path, monkeypatch):
    X, y = _xy(4, 2)
    model = FineTuneClassifier(**FINETUNE, pretrained=str(tiny_bert), epochs=2).fit(X, y)
    # the loaded model scores through ONNX Runtime, its graph cached in the old folder: continued
    # weights must not be scored with it (the probabilities would not move)
    monkeypatch.setenv("SUPPORTLENS_RUNTIME", "onnx")

    def once_is_enough(continued):
        assert continued.model_dir_ is None and continued.use_runtime() == "torch"
        monkeypatch.setenv("SUPPORTLENS_RUNTIME", "torch")  # no second export: this test stays fast

    continued = _check_continued(model, X, y, tmp_path, epochs=3, atol=1e-5, before_reload=once_is_enough)
    assert [r["epoch"] for r in continued.history_] == [1, 2, 3, 4, 5]


def test_ensemble_continues_every_member(tmp_path):
    X, y = _xy(8)
    model = EnsembleClassifier(labels=LABELS, members=[_tfidf_member(4.0), _tfidf_member(1.0)])
    model.fit(X[:48], y[:48], X[48:], y[48:])
    temperatures = [m.temperature_ for m in model.members_]
    X_new, y_new, copies = _new_data(X, y)
    model.continue_fit(X_new, y_new)
    assert [m.temperature_ for m in model.members_] == temperatures  # no validation data: kept
    for member, C in zip(model.members_, (4.0, 1.0)):
        alone = TfidfLogReg(labels=LABELS, C=C).fit(X[:48], y[:48]).continue_fit(X_new, y_new)
        assert np.allclose(member.decision_function(X), alone.decision_function(X))
    assert model.history_[-1]["continued"] == 1.0 and len(model.history_) == 2


def test_codebook_prior_has_nothing_to_continue(tiny_bert):
    texts = {label: [f"{label} passage", f"about {label}"] for label in LABELS}
    model = CodebookPriorClassifier(labels=LABELS, pretrained=str(tiny_bert), max_length=32, prior_texts=texts)
    X, y = _xy(2, 1)
    model.fit(X, y)
    model.temperature_ = 0.5
    before = model.predict_proba(X)
    assert model.continue_fit(X, y) is model
    assert np.array_equal(model.predict_proba(X), before)


class _Plain(TextClassifier):
    kind = "plain"

    def __init__(self, labels):
        self.labels = labels

    def _fit(self, X, y, X_val, y_val, sample_weight=None):
        pass


def test_continue_fit_needs_a_fitted_model_of_a_kind_that_continues():
    with pytest.raises(NotFittedError, match="continue_fit needs a fitted tfidf_logreg model"):
        TfidfLogReg(labels=LABELS).continue_fit(["a"], ["push"])
    plain = _Plain(LABELS).fit(["a"], ["push"])
    with pytest.raises(NotImplementedError, match="model kind 'plain' cannot continue training"):
        plain.continue_fit(["a"], ["push"])
    X, y = _xy()
    model = TfidfLogReg(labels=LABELS).fit(X, y)
    with pytest.raises(ValueError, match="epochs must be a whole number of at least 1"):
        model.continue_fit(X, y, epochs=0)
    with pytest.raises(ValueError, match="sample_weight has 1 values"):
        model.continue_fit(X, y, sample_weight=[1.0])
    with pytest.raises(ValueError, match="not among the model's labels"):
        model.continue_fit(["a"], ["maybe"])
