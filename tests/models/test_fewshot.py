"""The few-shot blend over a researcher's own coded passages: its weight, its pull, what it leaves
alone, and that it saves, loads and labels like every model folder."""

import numpy as np
import pandas as pd
import pytest

from conftest import CODEBOOK, PASSAGES, fast_overrides, make_rows
from supportlens.config import load_config
from supportlens.models import EmbedLogReg, TfidfLogReg, build_model, load_classifier
from supportlens.models.fewshot import FewShotBlend, blend_proba, fewshot_proba, fewshot_weight

LABELS = ["push", "pull", "co_creation", "none"]
# the researcher's corpus uses the fixture's wording for other approaches than the authored rows do
RECODED = {"push": "pull", "pull": "co_creation", "co_creation": "none", "none": "push"}


def _xy(n_interviews=6, per_label=2):
    rows = make_rows(n_interviews, per_label)
    return [r["text"] for r in rows], [r["label"] for r in rows]


@pytest.fixture(scope="module")
def tfidf_base():
    return TfidfLogReg(labels=LABELS).fit(*_xy())


def _targets(codes=LABELS, per_code=1):
    """Coded target passages (recoded as RECODED says) and near-duplicates of them to score."""
    X = [PASSAGES[c][j] for c in codes for j in range(per_code)]
    y = [RECODED[c] for c in codes for j in range(per_code)]
    return X, y, [t + " really" for t in X]


def test_weight_is_zero_without_target_passages_and_grows_with_k():
    weights = [fewshot_weight(k, k0=20.0, max_weight=0.5) for k in (0, 1, 10, 20, 40, 80, 10_000)]
    assert weights[0] == 0.0
    assert all(a < b for a, b in zip(weights, weights[1:]))
    assert weights[3] == pytest.approx(0.25)  # half of max_weight at k0
    assert weights[-1] < 0.5


def test_no_target_passage_gives_the_base_probabilities_exactly(tfidf_base, tiny_bert):
    X, _ = _xy(2)
    blend = FewShotBlend.wrap(tfidf_base, [], [], pretrained=str(tiny_bert))
    assert blend.weight_ == 0.0 and blend.embeds_with_ == "none"  # no encoder loaded for nothing
    assert np.array_equal(blend.predict_proba(X), tfidf_base.predict_proba(X))


@pytest.mark.parametrize("method", ["prototype", "knn"])
def test_well_separated_targets_pull_their_own_axes(method):
    """Pure function on vectors: a query near one target passage leans to that passage's code."""
    E_target = np.eye(4)[[0, 0, 1, 2]] + 0.01
    y_target = ["pull", "pull", "none", "push"]
    E_query = np.eye(4)[[0, 1, 2, 3]] + 0.05
    q = fewshot_proba(E_query, E_target, y_target, LABELS, method=method, neighbours=2)
    assert q.argmax(axis=1)[:3].tolist() == [LABELS.index(c) for c in ("pull", "none", "push")]
    assert q[:3].max(axis=1).min() > 0.5
    assert np.allclose(q.sum(axis=1), 1.0)
    assert np.all(q[:, LABELS.index("co_creation")] == 0.0)  # no evidence, not invented


@pytest.mark.parametrize("method", ["prototype", "knn"])
@pytest.mark.parametrize("base_kind", ["tfidf", "embed"])
def test_target_passages_pull_near_duplicates_toward_their_codes(tiny_bert, tfidf_base, method, base_kind):
    base = (
        tfidf_base
        if base_kind == "tfidf"
        else EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), max_length=32, batch_size=4).fit(*_xy())
    )
    X_t, y_t, near = _targets()
    before = base.predict_proba(near)
    mild = FewShotBlend.wrap(base, X_t, y_t, method=method, neighbours=1, pretrained=str(tiny_bert))
    strong = FewShotBlend.wrap(base, X_t, y_t, method=method, neighbours=1, k0=0.01, max_weight=1.0)
    assert mild.embeds_with_ == ("own" if base_kind == "tfidf" else "base")
    cols = [LABELS.index(c) for c in y_t]
    rows = np.arange(len(near))
    p_mild, p_strong = mild.predict_proba(near), strong.predict_proba(near)
    assert np.all(p_mild[rows, cols] > before[rows, cols])
    assert np.all(p_strong[rows, cols] > p_mild[rows, cols])  # more weight, more pull
    assert strong.predict(near).tolist() == y_t
    assert base.predict(near).tolist() != y_t  # the base alone codes them otherwise


def test_codes_without_a_target_passage_keep_the_base_probability(tfidf_base, tiny_bert):
    X_t, y_t, near = _targets(codes=["push", "none"], per_code=2)  # coded as pull and push only
    blend = FewShotBlend.wrap(tfidf_base, X_t, y_t, k0=1.0, max_weight=0.9, pretrained=str(tiny_bert))
    queries = near + _xy(1)[0]
    base, mixed = tfidf_base.predict_proba(queries), blend.predict_proba(queries)
    unseen = [LABELS.index("co_creation"), LABELS.index("none")]
    seen = [LABELS.index("pull"), LABELS.index("push")]
    assert np.allclose(mixed[:, unseen], base[:, unseen], atol=1e-9, rtol=0)
    assert np.allclose(mixed[:, seen].sum(axis=1), base[:, seen].sum(axis=1), atol=1e-9, rtol=0)
    assert not np.allclose(mixed[:, seen], base[:, seen], atol=1e-3)  # yet the seen codes moved


def test_blend_proba_keeps_every_row_a_distribution():
    rng = np.random.default_rng(0)
    p_base = rng.dirichlet(np.ones(4), size=5)
    q = np.zeros((5, 4))
    q[:, :2] = rng.dirichlet(np.ones(2), size=5)
    out = blend_proba(p_base, q, np.array([True, True, False, False]), 0.4)
    assert np.allclose(out.sum(axis=1), 1.0) and np.array_equal(out[:, 2:], p_base[:, 2:])


def test_saved_blend_loads_with_identical_probabilities_and_no_passage_text(tmp_path, tfidf_base, tiny_bert):
    X_t, y_t, near = _targets(per_code=2)
    blend = FewShotBlend.wrap(tfidf_base, X_t, y_t, method="knn", neighbours=3, pretrained=str(tiny_bert))
    X_cal, y_cal = _xy(2)
    blend.calibrate(X_cal, [RECODED[c] for c in y_cal])  # mistakes to learn a temperature from
    expected = blend.predict_proba(near)
    blend.save(tmp_path / "blend")
    loaded = load_classifier(tmp_path / "blend")
    assert isinstance(loaded, FewShotBlend) and isinstance(loaded.base_, TfidfLogReg)
    assert loaded.temperature_ == blend.temperature_ != 1.0
    assert np.array_equal(loaded.predict_proba(near), expected)
    assert (tmp_path / "blend" / "encoder" / "config.json").is_file()
    saved = b"".join(p.read_bytes() for p in (tmp_path / "blend").rglob("*") if p.is_file())
    assert not any(text.encode() in saved for text in X_t)  # embeddings and codes, never the texts


def test_ensemble_base_lends_its_encoder_embeds_once_and_is_saved_once(tmp_path, tiny_bert):
    """The default model's shape (embeddings + codebook prior, one MiniLM): the blend reuses the
    members' encoder, embeds each passage once for base and few-shot part, and adds no copy."""
    b, z = tmp_path / "b.yaml", tmp_path / "z.yaml"
    b.write_text(f"model: {{kind: embed_logreg, pretrained: {tiny_bert}, max_length: 32}}\ncodebook: {CODEBOOK}\n")
    z.write_text(f"model: {{kind: codebook_prior, pretrained: {tiny_bert}, max_length: 32}}\ncodebook: {CODEBOOK}\n")
    cfg = load_config(None, fast_overrides() + ["model.kind=ensemble", f"ensemble.members=[{b}, {z}]"])
    X, y = _xy(8)
    base = build_model(cfg, LABELS).fit(X[:48], y[:48], X[48:], y[48:])
    X_t, y_t, near = _targets()
    blend = FewShotBlend.wrap(base, X_t, y_t)
    assert blend.embeds_with_ == "base"
    expected = blend.predict_proba(near)
    blend.save(tmp_path / "blend")
    assert len([p for p in (tmp_path / "blend").rglob("encoder") if p.is_dir()]) == 1
    loaded = load_classifier(tmp_path / "blend")
    calls = []
    for member in loaded.base_.members_:
        encode = member._encode
        member._encode = lambda texts, encode=encode: calls.append(len(texts)) or encode(texts)
    assert np.allclose(loaded.predict_proba(near), expected, atol=1e-6, rtol=0)
    assert sum(calls) == len(set(near))


def test_labeler_and_mlflow_pyfunc_label_with_a_saved_blend(tmp_path, tfidf_base, tiny_bert, tracking_uri):
    import mlflow

    from supportlens import tracking
    from supportlens.codebook import load_codebook
    from supportlens.inference.labeler import Labeler

    X_t, y_t, near = _targets()
    blend = FewShotBlend.wrap(tfidf_base, X_t, y_t, k0=0.01, max_weight=1.0, pretrained=str(tiny_bert))
    folder = blend.save(
        tmp_path / "blend", extra={"review_threshold": 0.5, "codebook": load_codebook(CODEBOOK).to_dict()}
    )
    scores = Labeler(load_classifier(folder)).score(near)
    assert scores["label"].tolist() == y_t == blend.predict(near).tolist()
    tracking.setup(tracking_uri, "fewshot")
    with tracking.run("blend") as run:
        tracking.log_model(folder, near[:2])
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(pd.DataFrame({"text": near}))
    assert served["label"].tolist() == y_t
    probs = [f"p_{c}" for c in LABELS]
    assert np.allclose(served[probs], scores[probs], atol=1e-6, rtol=0)


def test_an_unknown_method_or_label_is_refused_by_name(tfidf_base):
    X_t, y_t, _ = _targets()
    with pytest.raises(ValueError, match="method must be one of prototype, knn; got 'nearest'"):
        FewShotBlend.wrap(tfidf_base, X_t, y_t, method="nearest")
    with pytest.raises(ValueError, match="method"):
        fewshot_proba(np.eye(2), np.eye(2), ["push", "pull"], LABELS, method="centroid")
    with pytest.raises(ValueError, match=r"y_target has labels \['mystery'\]"):
        FewShotBlend.wrap(tfidf_base, X_t[:1], ["mystery"])
    with pytest.raises(TypeError, match="FewShotBlend.wrap"):
        FewShotBlend(labels=LABELS).fit(X_t, y_t)
