"""ONNX Runtime engine for fine-tuned models: parity with torch, the int8 fast path, the graph
cache (reuse, corruption, read-only folders) and every fallback to torch.

One tiny fine-tuned model is exported once for the module (the export is the slow part)."""

from __future__ import annotations

import json
import logging
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import PASSAGES, make_rows
from supportlens.inference.labeler import Labeler, PredictError
from supportlens.models import FineTuneClassifier, load_classifier, onnx_runtime
from supportlens.models.base import softmax
from supportlens.models.onnx_runtime import FP32_FILE, INT8_FILE, GraphCache

LABELS = ["push", "pull", "co_creation", "none"]


def _texts() -> list[str]:
    rows = make_rows(6, 2)
    extra = [
        " ".join(t for texts in PASSAGES.values() for t in texts),  # longer than max_length
        "ok",
        "unseen words everywhere here",
        "we we we we",
    ]
    return [r["text"] for r in rows] + extra


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """Never write to the real user cache."""
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.delenv("SUPPORTLENS_RUNTIME", raising=False)
    return tmp_path / "user-cache"


@pytest.fixture(scope="module")
def saved(tiny_bert, tmp_path_factory):
    """A tiny fine-tuned model folder whose ONNX graph was exported once, next to it."""
    root = tmp_path_factory.mktemp("onnx")
    rows = make_rows(4, 1)
    model = FineTuneClassifier(labels=LABELS, pretrained=str(tiny_bert), max_length=32, epochs=2, batch_size=8).fit(
        [r["text"] for r in rows], [r["label"] for r in rows]
    )
    model.save(root / "ft")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUPPORTLENS_CACHE", str(root / "user-cache"))
        mp.delenv("SUPPORTLENS_RUNTIME", raising=False)
        loaded = load_classifier(root / "ft")
        assert loaded.use_runtime() == "onnx"
        assert loaded.onnx_.exported
    assert not (root / "user-cache").exists()
    return root / "ft"


def _cached(folder, name=FP32_FILE):
    found = list((folder / "onnx").glob(f"*/{name}"))
    assert len(found) == 1, found
    return found[0]


def test_graph_is_cached_next_to_the_model_with_a_checksum(saved):
    path = _cached(saved)
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["bytes"] == path.stat().st_size and len(record["sha256"]) == 64


def test_onnx_fp32_matches_torch(saved):
    texts = _texts()
    ours = load_classifier(saved)
    theirs = load_classifier(saved)
    assert ours.use_runtime() == "onnx" and theirs.use_runtime("torch") == "torch"
    p_ours, p_theirs = ours.predict_proba(texts), theirs.predict_proba(texts)
    assert np.abs(p_ours - p_theirs).max() < 1e-4
    assert (ours.predict(texts) == theirs.predict(texts)).all()
    assert not np.allclose(p_ours, p_ours[0])  # a model that separates passages, so the check means something


def test_second_load_reuses_the_cache(saved, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again although a cached graph exists")

    monkeypatch.setattr(onnx_runtime, "export_fp32", no_export)
    model = load_classifier(saved)
    assert model.use_runtime() == "onnx" and not model.onnx_.exported
    assert model.onnx_.fp32_path == _cached(saved)


def test_fast_path_uses_int8_and_rechecks_near_ties(saved):
    texts = _texts() * 3
    fp32 = load_classifier(saved).decision_function(texts)
    model = load_classifier(saved)
    labeler = Labeler(model, fast=True)
    assert labeler.runtime == "onnx" and model.onnx_.int8 is not None
    assert _cached(saved, INT8_FILE).is_file()
    model.recheck_margin_ = 0.0
    raw = model.decision_function(texts)  # the int8 graph alone
    assert np.abs(raw - fp32).max() > 1e-4
    top2 = np.sort(softmax(raw / model.temperature_), axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    model.recheck_margin_ = float(np.median(gap))  # the tiny model's margins are small: split them in half
    mixed = model.decision_function(texts)
    close = gap < model.recheck_margin_
    assert 0 < model.last_rechecked_ == close.sum() < len(texts)
    assert np.abs(mixed[close] - fp32[close]).max() < 1e-4  # near-ties: fp32's answer
    assert np.abs(mixed[~close] - raw[~close]).max() < 1e-6  # the rest: int8's
    changed = mixed.argmax(1) != fp32.argmax(1)
    # a label can differ from fp32 only where int8 alone decided it and int8 alone differed; how
    # often that happens is a property of a real model (experiments/bench_predict.py), not of
    # this random tiny one, whose margins are all small
    assert not changed[close].any()
    assert (changed[~close] == (raw.argmax(1) != fp32.argmax(1))[~close]).all()


def test_corrupt_cached_graph_is_detected_and_rebuilt(saved, tmp_path, caplog):
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    Labeler(load_classifier(folder), fast=True)  # make sure an int8 graph is cached in the copy
    int8 = _cached(folder, INT8_FILE)
    int8.write_bytes(int8.read_bytes()[: int8.stat().st_size // 2])  # a truncated file
    model = load_classifier(folder)
    with caplog.at_level(logging.WARNING, logger="supportlens"):
        Labeler(model, fast=True)
    assert "corrupt" in caplog.text and str(int8) in caplog.text
    assert model.onnx_.int8_path == int8 and onnx_runtime._verify(int8) is None


def test_cache_detects_partial_and_corrupt_files(tmp_path, caplog):
    cache = GraphCache(tmp_path / "model", "k1")
    path = cache.store("g.onnx", lambda tmp: tmp.write_bytes(b"graph bytes"))
    assert path == tmp_path / "model" / "onnx" / "k1" / "g.onnx"
    assert cache.find("g.onnx") == path
    path.write_bytes(b"graph bytez")  # same size, different content
    with caplog.at_level(logging.WARNING, logger="supportlens"):
        assert cache.find("g.onnx") is None
    assert "checksum mismatch" in caplog.text and not path.exists()
    path = cache.store("g.onnx", lambda tmp: tmp.write_bytes(b"graph bytes"))
    path.with_name("g.onnx.json").unlink()  # an export interrupted before its checksum was written
    assert cache.find("g.onnx") is None
    assert "incomplete" in caplog.text


def test_unwritable_model_folder_falls_back_to_the_user_cache(tmp_path, user_cache):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "onnx").write_text("a file where the cache folder should be")
    cache = GraphCache(tmp_path / "model", "k1")
    path = cache.store("g.onnx", lambda tmp: tmp.write_bytes(b"graph"))
    assert path == user_cache / "onnx" / "k1" / "g.onnx"
    assert GraphCache(tmp_path / "model", "k1").find("g.onnx") == path


def test_without_onnxruntime_falls_back_to_torch_with_one_warning(saved, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    model = load_classifier(saved)
    with caplog.at_level(logging.WARNING, logger="supportlens"):
        labeler = Labeler(model, fast=True)
    assert labeler.runtime == "torch" and model.fast_model_ is not None
    warnings = [r for r in caplog.records if r.name == "supportlens"]
    assert len(warnings) == 1 and "onnxruntime is not installed" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert len(labeler.score(_texts())) == len(_texts())
    with pytest.raises(PredictError, match="onnxruntime is not installed"):
        Labeler(load_classifier(saved), runtime="onnx")


def test_export_that_disagrees_with_torch_is_not_used(saved, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder, ignore=shutil.ignore_patterns("onnx"))
    good = _cached(saved)
    monkeypatch.setattr(onnx_runtime, "export_fp32", lambda model, tok, n, dest: shutil.copy(good, dest))
    monkeypatch.setattr(onnx_runtime.OnnxEngine, "max_error_vs", lambda self, *a: 0.5)
    model = load_classifier(folder)
    with caplog.at_level(logging.WARNING, logger="supportlens"):
        assert model.use_runtime() == "torch"
    assert "disagrees with torch" in caplog.text
    assert not list((folder / "onnx").glob(f"*/{FP32_FILE}"))  # the bad graph is not kept


def test_runtime_choice_env_and_devices(saved, monkeypatch, tiny_bert):
    monkeypatch.setenv("SUPPORTLENS_RUNTIME", "torch")
    assert Labeler(load_classifier(saved)).runtime == "torch"
    monkeypatch.setenv("SUPPORTLENS_RUNTIME", "tensorrt")
    with pytest.raises(PredictError, match="SUPPORTLENS_RUNTIME must be one of auto, onnx, torch"):
        Labeler(load_classifier(saved))
    monkeypatch.delenv("SUPPORTLENS_RUNTIME")
    with pytest.raises(PredictError, match="runtime must be one of"):
        Labeler(load_classifier(saved), runtime="fastest")
    model = load_classifier(saved)
    model.device = "cuda"  # CUDA keeps torch (only the choice is tested: no GPU here)
    assert model.use_runtime() == "torch"
    rows = make_rows(2, 1)
    fresh = FineTuneClassifier(labels=LABELS, pretrained=str(tiny_bert), max_length=16, epochs=1).fit(
        [r["text"] for r in rows], [r["label"] for r in rows]
    )
    assert fresh.use_runtime() == "torch"  # fitted here, not loaded: no folder to cache a graph in


def test_intact_but_unloadable_graph_is_exported_again(saved, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    path = _cached(folder)
    GraphCache(folder, path.parent.name).store(FP32_FILE, lambda tmp: tmp.write_bytes(b"not a graph"))
    good = _cached(saved)
    monkeypatch.setattr(onnx_runtime, "export_fp32", lambda model, tok, n, dest: shutil.copy(good, dest))
    model = load_classifier(folder)
    with caplog.at_level(logging.WARNING, logger="supportlens"):
        assert model.use_runtime() == "onnx"
    assert "cannot load it" in caplog.text and model.onnx_.exported
    assert path.read_bytes() == good.read_bytes()


def test_first_token_classifier_gives_the_same_logits(tiny_bert):
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=4).eval()
    with torch.no_grad():  # peaked attention, so that a wrong mask or scale would show
        for layer in model.bert.encoder.layer:
            layer.attention.self.query.weight.mul_(8)
            layer.attention.self.key.weight.mul_(8)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    batch = tokenizer(_texts()[:6], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
        got = onnx_runtime.first_token_classifier(model)(**batch)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    other = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=20, num_labels=4)
    )
    assert onnx_runtime.first_token_classifier(other) is None  # exported as it is


def test_cli_runtime_option_picks_the_runtime(saved, tmp_path, monkeypatch):
    """``--runtime torch`` and ``--runtime onnx`` give the same labels; a bad value is refused by name."""
    from typer.testing import CliRunner

    from supportlens.cli import app

    transcript = tmp_path / "t.txt"
    transcript.write_text(
        "Interviewer: How did it go?\nP1: we trained them on the manual and then we listened.\n"
        "P1: we designed it together with the families.\n",
        encoding="utf-8",
    )
    runner, outputs, chosen = CliRunner(), {}, []
    original = Labeler.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        chosen.append(self.runtime)

    monkeypatch.setattr(Labeler, "__init__", spy)
    for runtime in ("torch", "onnx"):
        out = tmp_path / f"{runtime}.csv"
        result = runner.invoke(
            app, ["predict", str(transcript), "--model", str(saved), "--out", str(out), "--runtime", runtime]
        )
        assert result.exit_code == 0, result.output
        outputs[runtime] = pd.read_csv(out)
    assert chosen == ["torch", "onnx"]
    assert list(outputs["torch"]["label"]) == list(outputs["onnx"]["label"])
    bad = runner.invoke(
        app,
        ["predict", str(transcript), "--model", str(saved), "--out", str(tmp_path / "x.csv"), "--runtime", "tensorrt"],
    )
    assert bad.exit_code == 2 and "--runtime must be auto, onnx or torch" in bad.output


def test_sessions_leave_layernorm_and_residual_unfused(saved, tmp_path, monkeypatch):
    """ORT's fused SkipLayerNormalization was the slower kernel (README, "Labelling speed")."""
    import onnx
    import onnxruntime as ort

    written = []
    real = ort.InferenceSession

    def recording(path, options, *args, **kwargs):
        options.optimized_model_filepath = str(tmp_path / f"optimised{len(written)}.onnx")
        options.log_severity_level = 3  # no warning that the saved graph is machine-specific
        written.append(options.optimized_model_filepath)
        return real(path, options, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    model = load_classifier(saved)
    Labeler(model, fast=True).score(_texts())
    assert len(written) == 2  # the fp32 and the int8 graph
    for path in written:
        ops = {node.op_type for node in onnx.load(path).graph.node}
        assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops, (path, sorted(ops))


def test_onnx_runtime_scores_small_batches_whatever_the_callers_batch_size(saved, monkeypatch):
    """Activations of small batches stay in cache (README, "Labelling speed")."""
    model = load_classifier(saved)
    model.predict_batch_size = 16
    assert model.use_runtime() == "onnx"
    sizes, real = [], model.onnx_.fp32.run

    def recording(names, feed):
        sizes.append(len(feed["input_ids"]))
        return real(names, feed)

    monkeypatch.setattr(model.onnx_.fp32, "run", recording)
    texts = _texts() * 3
    reference = load_classifier(saved).predict_proba(texts)
    assert np.abs(model.predict_proba(texts) - reference).max() < 1e-5
    assert sum(sizes) == len(texts) and max(sizes) == onnx_runtime.MAX_BATCH < 16


def test_a_passages_fast_logits_do_not_depend_on_its_batch_mates(saved):
    """Dynamic quantisation scales a call's activations by their largest value: int8 runs alone."""
    model = load_classifier(saved)
    Labeler(model, fast=True)
    engine, texts = model.onnx_, _texts()
    others = [t + " and then some more words about the county and the families" for t in texts]
    alone = np.vstack([engine.logits(model.tokenizer_, [t], 16, model.max_length, int8=True) for t in texts])
    mixed = engine.logits(
        model.tokenizer_, [x for pair in zip(texts, others) for x in pair], 16, model.max_length, int8=True
    )[::2]
    assert np.array_equal(alone, mixed)
