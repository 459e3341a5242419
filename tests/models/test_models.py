import numpy as np
import pytest
import torch

from conftest import make_rows
from supportlens.config import load_config
from supportlens.models import EmbedLogReg, FineTuneClassifier, TfidfLogReg, build_model, load_classifier
from supportlens.models.base import ModelLoadError
from supportlens.models.encoders import resolve_pretrained

LABELS = ["push", "pull", "co_creation", "none"]


def _xy(n_interviews=6, per_label=2):
    rows = make_rows(n_interviews, per_label)
    return [r["text"] for r in rows], [r["label"] for r in rows]


def test_tfidf_follows_sklearn_conventions(tmp_path):
    X, y = _xy()
    model = TfidfLogReg(labels=LABELS)
    assert model.fit(X, y) is model
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 4)
    assert np.allclose(proba.sum(1), 1)
    assert list(model.classes_) == LABELS
    assert (model.predict(X) == np.asarray(model.classes_)[proba.argmax(1)]).all()
    assert model.score(X, y) > 0.9
    assert set(model.get_params()) >= {"labels", "C", "word_ngrams"}


def test_code_absent_from_training_keeps_its_column():
    X, y = _xy()
    keep = [i for i, lab in enumerate(y) if lab != "pull"]
    model = TfidfLogReg(labels=LABELS).fit([X[i] for i in keep], [y[i] for i in keep])
    proba = model.predict_proba(X)
    assert proba.shape[1] == 4
    assert np.allclose(proba[:, LABELS.index("pull")], 0)


def test_unknown_training_label_rejected():
    with pytest.raises(ValueError, match="not among the model's labels"):
        TfidfLogReg(labels=LABELS).fit(["a", "b"], ["push", "maybe"])


def test_save_load_roundtrip(tmp_path):
    X, y = _xy()
    model = TfidfLogReg(labels=LABELS).fit(X, y)
    model.calibrate(X, y)
    model.save(tmp_path / "m", extra={"review_threshold": 0.5})
    again = load_classifier(tmp_path / "m")
    assert np.allclose(again.predict_proba(X), model.predict_proba(X))
    assert again.meta_["review_threshold"] == 0.5
    assert again.temperature_ == model.temperature_


def test_load_rejects_non_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not a supportlens model folder"):
        load_classifier(tmp_path)


def test_finetune_tiny_bert_learns_and_is_deterministic(tiny_bert, tmp_path):
    X, y = _xy(8, 2)
    kwargs = dict(
        labels=LABELS,
        pretrained=str(tiny_bert),
        max_length=32,
        epochs=8,
        batch_size=8,
        learning_rate=3e-3,
        head_learning_rate=3e-3,
        patience=20,
        label_smoothing=0.0,
        warmup_ratio=0.0,
        seed=7,
        freeze_embeddings=False,
    )
    a = FineTuneClassifier(**kwargs).fit(X, y, X, y)
    b = FineTuneClassifier(**kwargs).fit(X, y, X, y)
    assert np.allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)
    losses = [h["train_loss"] for h in a.history_]
    assert losses[-1] < 0.9 * losses[0]  # it learns (0.78 with the fixture's seeded weights)...
    assert a.score(X, y) > 0.35  # ...beyond the 0.25 of chance on four balanced codes
    assert [h["epoch"] for h in a.history_] == list(range(1, 9))
    assert "val_macro_f1" in a.history_[0]
    a.save(tmp_path / "ft")
    again = load_classifier(tmp_path / "ft")
    assert np.allclose(again.predict_proba(X), a.predict_proba(X), atol=1e-5)


def test_finetune_early_stopping_keeps_best_epoch(tiny_bert):
    X, y = _xy(6, 2)
    model = FineTuneClassifier(
        labels=LABELS,
        pretrained=str(tiny_bert),
        max_length=32,
        epochs=8,
        batch_size=8,
        learning_rate=1e-9,
        head_learning_rate=1e-9,
        patience=1,
        seed=1,
    ).fit(X, y, X[:12], y[:12])
    # with a learning rate of ~0 nothing improves: stop after 1 + patience epochs
    assert len(model.history_) == 2
    assert model.best_epoch_ == 1


def test_layer_decay_slows_lower_layers_and_leaves_the_head(tiny_bert):
    model = FineTuneClassifier(
        labels=LABELS,
        pretrained=str(tiny_bert),
        learning_rate=1e-3,
        head_learning_rate=1e-2,
        layer_decay=0.5,
        freeze_embeddings=False,
    )
    _, net = model._build()
    rates = {}
    for group in model._optimizer(net).param_groups:
        for p in group["params"]:
            rates[id(p)] = group["lr"]
    by_name = {name: rates[id(p)] for name, p in net.named_parameters()}
    assert by_name["classifier.weight"] == pytest.approx(1e-2)
    assert by_name["bert.encoder.layer.1.output.dense.weight"] == pytest.approx(1e-3)  # the top layer
    assert by_name["bert.encoder.layer.0.output.dense.weight"] == pytest.approx(5e-4)
    assert by_name["bert.embeddings.word_embeddings.weight"] == pytest.approx(2.5e-4)
    # without decay, one rate for the whole encoder (as before)
    flat = FineTuneClassifier(labels=LABELS, pretrained=str(tiny_bert), learning_rate=1e-3, freeze_embeddings=False)
    assert {g["lr"] for g in flat._optimizer(net).param_groups} == {1e-3, flat.head_learning_rate}


def test_rdrop_adds_a_consistency_term_only_under_dropout(tiny_bert):
    X, y = _xy(4, 1)
    model = FineTuneClassifier(labels=LABELS, pretrained=str(tiny_bert), max_length=32, rdrop_alpha=4.0, seed=3)
    tokenizer, net = model._build()
    batch = dict(tokenizer(X, padding=True, return_tensors="pt"))
    target = torch.tensor([LABELS.index(v) for v in y])
    loss_fn = torch.nn.CrossEntropyLoss()
    net.eval()  # no dropout: both passes agree, so R-drop is plain cross-entropy
    with torch.no_grad():
        plain = loss_fn(net(**batch).logits, target)
        assert model._batch_loss(net, batch, target, loss_fn) == pytest.approx(float(plain), abs=1e-6)
    net.train()
    torch.manual_seed(0)
    with torch.no_grad():
        two = float(model._batch_loss(net, batch, target, loss_fn))
        torch.manual_seed(0)
        first, second = net(**batch).logits, net(**batch).logits
    assert not torch.allclose(first, second)  # two dropout masks
    assert two > 0.5 * float(loss_fn(first, target) + loss_fn(second, target))  # plus a KL term > 0
    fitted = FineTuneClassifier(
        labels=LABELS,
        pretrained=str(tiny_bert),
        max_length=32,
        epochs=2,
        batch_size=8,
        rdrop_alpha=1.0,
        layer_decay=0.8,
        seed=3,
    ).fit(*_xy(6, 2))
    assert len(fitted.history_) == 2 and np.isfinite(fitted.history_[-1]["train_loss"])


def test_embed_logreg_with_tiny_encoder(tiny_bert, tmp_path):
    X, y = _xy()
    model = EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), max_length=32, batch_size=4).fit(X, y)
    emb = model.embed(X[:3])
    assert emb.shape == (3, 32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    model.save(tmp_path / "e")
    assert (tmp_path / "e" / "encoder" / "config.json").is_file()
    assert np.allclose(load_classifier(tmp_path / "e").predict_proba(X), model.predict_proba(X), atol=1e-5)


def test_build_model_from_config(tiny_bert):
    for kind, cls in (("tfidf_logreg", TfidfLogReg), ("embed_logreg", EmbedLogReg), ("finetune", FineTuneClassifier)):
        cfg = load_config(None, [f"model.kind={kind}", f"model.pretrained={tiny_bert}", "train.epochs=2"])
        model = build_model(cfg, LABELS)
        assert isinstance(model, cls)
    assert build_model(cfg, LABELS).epochs == 2


def test_resolve_pretrained_offline():
    # the packaged default resolves without network
    path = resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model")
    with pytest.raises(ModelLoadError) as err:
        resolve_pretrained("nobody/does-not-exist-model")
    msg = str(err.value)
    assert "cannot find pretrained model 'nobody/does-not-exist-model' offline" in msg
    assert "allow_download" in msg


def test_local_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_pretrained(str(tmp_path))
