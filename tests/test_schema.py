"""The predictions table is defined once (`supportlens.schema`): every writer and reader of it
(batch files, Spark, the MLflow pyfunc model, the Labeler, the report) agrees with it."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from supportlens import schema
from supportlens.inference.predict import predict_files

SAMPLE = ROOT / "data" / "transcripts" / "smp01_child_welfare.txt"


def test_every_producer_has_the_schemas_columns(labeler, tmp_path):
    labels = labeler.labels
    columns = schema.prediction_columns(labels)
    assert columns[: len(schema.PASSAGE_COLUMNS)] == schema.PASSAGE_COLUMNS
    # the batch writer, in each of its formats, and the Parquet types it writes
    for suffix in schema.PREDICTION_SUFFIXES:
        out = tmp_path / f"labels{suffix}"
        predict_files([str(SAMPLE)], labeler, out)
        assert list(schema.read_output(out).columns) == columns, suffix
    assert pd.read_parquet(tmp_path / "labels.parquet").shape[1] == len(schema.arrow_schema(labels))
    assert schema.arrow_schema(labels).names == columns
    assert schema.arrow_schema(labels, row_ids=True).names == columns + [schema.ROW_ID_COLUMN]
    # the Labeler and the MLflow pyfunc model
    texts = ["we trained every site on the manual", "we designed it together"]
    assert list(labeler.score(texts).columns) == schema.score_columns(labels)
    from supportlens.tracking import predictions_frame

    served = predictions_frame(labeler.model, texts, labeler.threshold, labeler.threshold_measured)
    pd.testing.assert_frame_equal(served, labeler.score(texts))
    # Spark: its result types and the pyfunc udf's result_type (pyspark itself is not needed)
    from supportlens.inference import spark

    assert [name for name, _ in spark.result_fields(labels)] == columns + [spark.ERROR_COLUMN]
    assert spark.pyfunc_result_type(labels) == ", ".join(f"{name} {kind}" for name, kind in schema.score_fields(labels))
    assert spark.pyfunc_result_type(["push", "none"]) == (
        "label string, p_push double, p_none double, confidence double, needs_review boolean"
    )


def test_passage_rows_fill_every_passage_column(labeler):
    from supportlens.inference.loop import file_input, label_transcripts

    [scored] = label_transcripts([file_input(SAMPLE)], labeler)
    rows = schema.passage_rows(scored[0].source, scored[0].passages, scored[0].scores)
    assert len(rows) == len(scored[0].passages) > 5
    assert list(rows[0]) == schema.prediction_columns(labeler.labels)  # no row_id: not a table row
    assert rows[0]["passage_index"] == scored[0].passages[0].index
    assert type(rows[0]["needs_review"]) is bool and type(rows[0]["confidence"]) is float


def test_score_frame_follows_the_review_rule():
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [1.0, 0.0]])
    frame = schema.score_frame(proba, ["push", "pull"], threshold=0.65)
    assert frame["label"].tolist() == ["push", "pull", "push"]
    assert frame["confidence"].tolist() == [0.7, 0.6, 1.0]
    assert frame["needs_review"].tolist() == [False, True, False]
    # no measured threshold: every passage is flagged, even one at 1.0
    assert schema.score_frame(proba, ["push", "pull"], 1.0, measured=False)["needs_review"].all()
    empty = schema.score_frame(np.zeros((0, 2)), ["push", "pull"], 0.5)
    assert list(empty.columns) == schema.score_columns(["push", "pull"]) and empty.empty


def test_read_output_keeps_values_as_written(tmp_path):
    """Row ids such as "007" stay text; a speaker called "NA" or "1" is not missing or a number."""
    rows = [
        {
            "source": "a.csv",
            "passage_index": 0,
            "speaker": "NA",
            "text": "x",
            "confidence": 1.0,
            schema.ROW_ID_COLUMN: "007",
        },
        {
            "source": "a.csv",
            "passage_index": 1,
            "speaker": "1",
            "text": "y",
            "confidence": 1.0,
            schema.ROW_ID_COLUMN: "010",
        },
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name in ("p.csv", "p.jsonl"):
        frame = schema.read_output(tmp_path / name)
        assert frame[schema.ROW_ID_COLUMN].tolist() == ["007", "010"], name
        assert frame["speaker"].tolist() == ["NA", "1"], name
    # a JSON float stays a float, even when every value is whole
    assert schema.read_output(tmp_path / "p.jsonl")["confidence"].dtype.kind == "f"


def test_read_predictions_checks_what_the_report_needs(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        {
            "source": ["a"],
            "passage_index": [0],
            "speaker": ["A"],
            "text": ["x"],
            "label": ["push"],
            "confidence": [1.5],
            "needs_review": [False],
        }
    ).to_csv(bad, index=False)
    with pytest.raises(schema.PredictionsError, match="row 1: field 'confidence' must be a number in"):
        schema.read_predictions(bad)
    pd.DataFrame({"source": ["a"]}).to_csv(bad, index=False)
    with pytest.raises(schema.PredictionsError, match="missing column"):
        schema.read_predictions(bad)
    with pytest.raises(schema.PredictionsError, match="predictions must be .csv, .jsonl, .parquet"):
        schema.read_predictions(tmp_path / "p.txt")
