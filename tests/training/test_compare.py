"""The comparison harness (supportlens.training.compare): side-by-side figures, parent and nested runs."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import CODEBOOK, ROOT, make_rows, write_jsonl
from supportlens.training.compare import Benchmarks, compare, markdown_table, transfer_metrics, write_results


def _config(path, extra=""):
    path.write_text(
        f"codebook: {CODEBOOK}\nmodel: {{kind: tfidf_logreg}}\nsplit: {{test_size: 0.2, val_size: 0.2}}\n" + extra,
        encoding="utf-8",
    )
    return path


def test_transfer_metrics_report_abstention_honestly():
    labels = ["push", "pull", "co_creation", "none"]
    y = np.array(["push", "pull", "none", "none"], dtype=object)
    proba = np.array([[0.9, 0.05, 0.03, 0.02], [0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    m = transfer_metrics(y, proba, labels, threshold=0.65, prefix="dev")
    # accepted: rows 0 (right), 2 (wrong), 3 (right) -> precision 2/3 at the promised threshold
    assert m["dev_accepted_share"] == pytest.approx(0.75)
    assert m["dev_accepted_precision"] == pytest.approx(2 / 3)
    assert m["dev_recall_none"] == pytest.approx(0.5)
    assert m["dev_recall_push"] == pytest.approx(1.0)
    assert 0 <= m["dev_coverage_at_90"] <= m["dev_coverage_at_80"] <= 1


def test_compare_two_configs_tracks_parent_and_nested_runs(tmp_path, tracking_uri):
    data = write_jsonl(tmp_path / "coded.jsonl", make_rows(12, 2))
    dev = write_jsonl(
        tmp_path / "dev.jsonl",
        [
            {"id": f"d{i}", "text": r["text"] + " said someone", "label": r["label"]}
            for i, r in enumerate(make_rows(2, 1))
        ],
    )
    a = _config(tmp_path / "a.yaml")
    b = _config(tmp_path / "b.yaml", "tfidf: {C: 0.3}\n")
    gold = Benchmarks.find(ROOT, dev).gold
    assert gold, "the bundled gold transcripts are found"
    table = compare(
        [a, b],
        folds=3,
        benchmarks=Benchmarks(dev=dev, gold=gold[:1]),
        data_path=str(data),
        tracking_uri=tracking_uri,
        experiment="cmp",
        log=lambda m: None,
    )
    assert list(table["config"]) == ["a", "b"]
    for column in (
        "cv_kappa_mean",
        "cv_macro_f1_sd",
        "test_kappa",
        "dev_kappa",
        "dev_recall_pull",
        "dev_coverage_at_80",
        "gold_kappa",
        "train_seconds",
        "predict_per_second",
    ):
        assert table[column].notna().all(), column
    assert table.loc[0, "dev_kappa"] > 0.5  # the tiny dev set is close to the training text
    runs = mlflow.search_runs(experiment_names=["cmp"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 1 and len(children) == 2
    assert set(children["tags.mlflow.runName"]) == {"a", "b"}
    assert (children["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]).all()
    assert children["metrics.dev_kappa"].notna().all()
    artifacts = {f.path for f in mlflow.MlflowClient().list_artifacts(parents["run_id"].iloc[0], "comparison")}
    assert {"comparison/comparison.csv", "comparison/comparison.md"} <= artifacts

    # b's dev κ is compared with a's (the first config), paired on the same quotes
    assert table.attrs["reference"] == "a"
    assert table.loc[0, "dev_kappa_delta"] == 0.0
    assert table.loc[1, "dev_kappa_delta"] == pytest.approx(table.loc[1, "dev_kappa"] - table.loc[0, "dev_kappa"])
    assert (
        table.loc[1, "dev_kappa_delta_ci_low"]
        <= table.loc[1, "dev_kappa_delta"]
        <= table.loc[1, "dev_kappa_delta_ci_high"]
    )
    assert "comparison/dev_predictions.csv" in artifacts

    json_path, md_path = write_results(table, tmp_path / "out" / "harness", {"machine": "test box"})
    assert json.loads(json_path.read_text())["rows"][1]["config"] == "b"
    assert json.loads(json_path.read_text())["reference"] == "a"
    text = md_path.read_text()
    assert "machine: test box" in text and "| a | tfidf_logreg |" in text
    assert "dev κ minus a's [paired 95% CI]" in text and "(reference)" in text
    preds = pd.read_csv(tmp_path / "out" / "harness_dev_predictions.csv")
    assert list(preds.columns) == ["id", "a", "b"] and len(preds) == 8 and preds["id"].iloc[0] == "d0"


def test_compare_rejects_an_unknown_reference_before_training(tmp_path, tracking_uri):
    a = _config(tmp_path / "a.yaml")
    with pytest.raises(ValueError, match="reference config 'default' is not among the configs compared \\(a\\)"):
        compare([a], folds=0, tracking_uri=tracking_uri, log=lambda m: None, reference="default")


def test_compare_rejects_mixed_codebooks_before_training(tmp_path, tracking_uri):
    a = _config(tmp_path / "a.yaml")
    other = tmp_path / "cb.yaml"
    other.write_text(CODEBOOK.read_text(encoding="utf-8"), encoding="utf-8")
    b = tmp_path / "b.yaml"
    b.write_text(f"codebook: {other}\nmodel: {{kind: tfidf_logreg}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="different codebooks"):
        compare([a, b], folds=0, tracking_uri=tracking_uri, log=lambda m: None)


def test_markdown_table_shows_missing_figures_as_dashes():
    table = pd.DataFrame([{"config": "x", "kind": "tfidf_logreg", "encoder": "tf-idf", "test_kappa": 0.5}])
    line = markdown_table(table).splitlines()[-1]
    assert line.startswith("| x | tfidf_logreg | tf-idf | – | – | 0.500 | – | – | – |")


def test_compare_rejects_configs_on_different_data(tmp_path, tracking_uri):
    a = _config(tmp_path / "a.yaml", "data: {path: one.jsonl}\n")
    b = _config(tmp_path / "b.yaml", "data: {path: two.jsonl}\n")
    with pytest.raises(ValueError, match="configs use different data"):
        compare([a, b], folds=0, tracking_uri=tracking_uri, log=lambda m: None)
