"""Scoring on a local Spark (local[2]) gives what `supportlens predict` gives on one machine:
the same passages, offsets, labels, probabilities and needs_review; and the logged pyfunc works
unchanged in `mlflow.pyfunc.spark_udf`."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import ROOT
from supportlens.cli import app
from supportlens.inference.labeler import PredictError
from supportlens.inference.predict import predict_files
from supportlens.transcripts.read import ReadError, parse_transcript, read_transcript

pytestmark = pytest.mark.spark

SAMPLES = ROOT / "data" / "transcripts"
SAMPLE_GLOB = str(SAMPLES / "smp*")
PROBS = ["p_push", "p_pull", "p_co_creation", "p_none"]
runner = CliRunner()


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime: Spark cannot start")
    from supportlens.inference.spark import spark_session

    session = spark_session(
        "local[2]",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.ui.showConsoleProgress": "false",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def local_labels(model_dir, tmp_path_factory) -> pd.DataFrame:
    """`supportlens predict` on one machine over the six sample transcripts (all formats)."""
    from supportlens.inference.labeler import Labeler
    from supportlens.models import load_classifier

    out = tmp_path_factory.mktemp("local") / "labels.parquet"
    report = predict_files([str(SAMPLES)], Labeler(load_classifier(model_dir)), out)
    assert report.files_done == 6 and not report.failures
    return pd.read_parquet(out)


def assert_same_passages(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same rows, provenance and labels; probabilities to 1e-6."""
    key = ["source", "passage_index"]
    ours = ours.sort_values(key).reset_index(drop=True)
    theirs = theirs.sort_values(key).reset_index(drop=True)
    exact = ["source", "passage_index", "speaker", "role", "start", "end", "text", "label", "needs_review"]
    pd.testing.assert_frame_equal(ours[exact], theirs[exact], check_dtype=False)
    for col in ("start_time", "end_time"):
        assert ours[col].isna().equals(theirs[col].isna()), col
        assert np.allclose(ours[col].fillna(-1), theirs[col].fillna(-1)), col
    assert np.allclose(ours[PROBS + ["confidence"]], theirs[PROBS + ["confidence"]], atol=1e-6, rtol=0)


# -- parse_transcript: the reader on in-memory content (no Spark needed) -----------------------


def test_parse_transcript_equals_reading_the_file():
    for path in sorted(SAMPLES.glob("smp*")):
        from_file = read_transcript(path)
        from_bytes = parse_transcript(path.read_bytes(), path.suffix, str(path))
        assert (from_bytes.text, from_bytes.cues, from_bytes.notes) == (from_file.text, from_file.cues, from_file.notes)
        if path.suffix != ".docx":
            from_text = parse_transcript(path.read_text(encoding="utf-8"), path.suffix[1:], str(path))
            assert (from_text.text, from_text.cues) == (from_file.text, from_file.cues)
    crlf = parse_transcript("Interviewer: Hi?\r\nP1: Hello.\r\n", "txt", "s3://bucket/t1")
    assert crlf.source == "s3://bucket/t1" and crlf.text == "Interviewer: Hi?\nP1: Hello.\n"
    assert [c.speaker for c in crlf.cues] == ["Interviewer", "P1"]


@pytest.mark.parametrize(
    "content, fmt, message",
    [
        ("some words", "pdf", "s3://bucket/t1: unsupported format 'pdf'"),
        ("some words", "docx", "s3://bucket/t1: a .docx transcript is binary"),
        ("   \n ", "txt", "s3://bucket/t1: empty file"),
    ],
)
def test_parse_transcript_errors_name_the_source(content, fmt, message):
    with pytest.raises(ReadError) as err:
        parse_transcript(content, fmt, "s3://bucket/t1")
    assert str(err.value).startswith(message)


# -- Spark -------------------------------------------------------------------------------------


def test_transcripts_on_spark_match_predict(spark, local_labels, model_dir):
    from supportlens.inference.spark import load_transcripts, score_transcripts

    transcripts, problems = load_transcripts(spark, [SAMPLE_GLOB])
    assert not problems and transcripts.count() == 6  # txt, md, vtt, srt and docx (as bytes)
    scored = score_transcripts(transcripts, str(model_dir)).toPandas()  # one Spark job, not two
    assert scored["error"].isna().all()
    ours = scored.drop(columns="error")
    assert list(ours.columns) == list(local_labels.columns)
    assert_same_passages(ours, local_labels)


def test_bad_transcripts_become_failure_rows(spark, model_dir):
    from supportlens.inference.spark import score_transcripts, split_failures

    good = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    rows = pd.DataFrame(
        {
            "id": ["good", "scan.pdf", "ocr.pdf", "blank", "notes.docx", None, "asks-only"],
            "text": [
                good,
                "words",
                "words from a scan",
                "  \n",
                "Dana: hello",
                good,
                "Interviewer: Why?\n\nInterviewer: How?",
            ],
            "format": [None, "pdf", None, "txt", None, "txt", "txt"],
        }
    )
    passages, failures = split_failures(score_transcripts(spark.createDataFrame(rows), str(model_dir)))
    errors = {r["source"]: r["error"] for r in failures.collect()}
    assert set(errors) == {"scan.pdf", "blank", "notes.docx", None, "asks-only"}
    assert "unsupported format 'pdf'" in errors["scan.pdf"]
    assert errors["blank"].startswith("blank: empty file")
    assert "binary" in errors["notes.docx"]
    assert "no id" in errors[None]
    assert errors["asks-only"].startswith("asks-only: no participant passages to score: all ")
    assert "are interviewer turns, which `speaker='all'` labels too" in errors["asks-only"]
    kept = passages.toPandas()
    # no format and no transcript suffix: plain text; a .docx id without a format is docx
    assert set(kept["source"]) == {"good", "ocr.pdf"} and len(kept) > 10
    kept = kept[kept["source"] == "good"]
    assert all(good[r.start : r.end] == r.text for r in kept.itertuples())


def test_transcripts_frame_needs_id_and_text(spark, model_dir):
    from supportlens.inference.spark import score_transcripts

    with pytest.raises(PredictError, match="no 'id' column"):
        score_transcripts(spark.createDataFrame(pd.DataFrame({"name": ["a"], "text": ["b"]})), str(model_dir))
    with pytest.raises(PredictError, match="needs a 'text' \\(string\\) or 'content'"):
        score_transcripts(spark.createDataFrame(pd.DataFrame({"id": ["a"], "body": ["b"]})), str(model_dir))


def test_segmented_passages_on_spark_match_labeler(spark, labeler, model_dir):
    from supportlens.inference.spark import score_passages

    texts = [
        "we designed the plan together with the families",
        "the county asked for help with referrals",
        None,
        "we trained every site on the manual",
    ]
    frame = spark.createDataFrame(
        pd.DataFrame({"passage_id": [1, 2, 3, 4], "text": texts}), "passage_id long, text string"
    )
    ours = score_passages(frame, str(model_dir)).toPandas().sort_values("passage_id").reset_index(drop=True)
    assert list(ours.columns) == ["passage_id", "text", "label"] + PROBS + ["confidence", "needs_review"]
    assert ours.loc[2, ["label", "confidence"]].isna().all()  # a null text gets null scores
    present = ours.drop(index=2).reset_index(drop=True)
    expected = labeler.score([t for t in texts if t is not None])
    assert present["label"].tolist() == expected["label"].tolist()
    assert present["needs_review"].astype(bool).tolist() == expected["needs_review"].tolist()
    assert np.allclose(present[PROBS].astype(float), expected[PROBS], atol=1e-6, rtol=0)
    with pytest.raises(PredictError, match="already has column\\(s\\) label"):
        score_passages(score_passages(frame, str(model_dir)), str(model_dir))


def test_logged_pyfunc_in_mlflow_spark_udf(spark, labeler, model_dir, tracking_uri):
    import mlflow
    from pyspark.sql import functions as F

    from supportlens import tracking
    from supportlens.inference.spark import pyfunc_result_type

    tracking.setup(tracking_uri, "spark-udf")
    with tracking.run("tiny") as run:
        tracking.log_model(model_dir, ["we designed it together", "we trained the sites"])
    texts = [
        "we designed the plan together with the families",
        "the county asked for help with referrals",
        "we trained every site on the manual",
        "the funding ended in the spring",
    ]
    udf = mlflow.pyfunc.spark_udf(
        spark, f"runs:/{run.info.run_id}/model", result_type=pyfunc_result_type(labeler.labels), env_manager="local"
    )
    frame = spark.createDataFrame(pd.DataFrame({"i": range(len(texts)), "text": texts}))
    ours = (
        frame.withColumn("s", udf(F.struct("text")))
        .select("i", "s.*")
        .toPandas()
        .sort_values("i")
        .reset_index(drop=True)
    )
    expected = labeler.score(texts)
    assert ours["label"].tolist() == expected["label"].tolist()
    assert ours["needs_review"].tolist() == expected["needs_review"].tolist()
    assert np.allclose(ours[PROBS + ["confidence"]], expected[PROBS + ["confidence"]], atol=1e-6, rtol=0)


def test_cli_engine_spark_writes_partitioned_parquet(spark, local_labels, model_dir, tmp_path):
    out = tmp_path / "labels"
    args = ["predict", "--engine", "spark", "--master", "local[2]", "--model", str(model_dir), "--out", str(out)]
    result = runner.invoke(app, args + [str(SAMPLES)])  # a folder, as for `supportlens predict`
    assert result.exit_code == 0, result.output
    assert "6 transcripts labelled on Spark" in result.output
    written = pd.read_parquet(out)
    assert {d.name.split("=")[0] for d in out.iterdir() if d.is_dir()} == {"bucket"}
    assert written.groupby("source")["bucket"].nunique().eq(1).all()  # a transcript stays in one bucket
    assert_same_passages(written.drop(columns="bucket"), local_labels)

    # Parquet of transcripts (id, text, format) as input; the earlier output is replaced whole
    table = tmp_path / "transcripts.parquet"
    names = ["smp01_child_welfare.txt", "smp02_home_visiting.vtt", "smp06_juvenile_justice.md"]
    pd.DataFrame(
        {
            "id": [str(SAMPLES / n) for n in names],
            "text": [(SAMPLES / n).read_text(encoding="utf-8") for n in names],
            "format": [Path(n).suffix[1:] for n in names],
        }
    ).to_parquet(table)
    result = runner.invoke(app, args + [str(table)])
    assert result.exit_code == 0, result.output
    again = pd.read_parquet(out).drop(columns="bucket")
    assert set(again["source"]) == {str(SAMPLES / n) for n in names}
    assert_same_passages(again, local_labels[local_labels["source"].isin(again["source"])])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".labels")]  # no staging left behind


def test_cli_engine_spark_errors(spark, model_dir, tmp_path):
    base = ["predict", str(SAMPLES / "smp01_child_welfare.txt"), "--model", str(model_dir)]
    taken = tmp_path / "mine"
    taken.mkdir()
    (taken / "keep.txt").write_text("not a Spark output")
    result = runner.invoke(app, base + ["--engine", "spark", "--out", str(taken)])
    assert result.exit_code == 2 and "exists and is not an earlier Spark output" in result.output
    assert (taken / "keep.txt").exists()
    result = runner.invoke(
        app, base + ["--engine", "spark", "--out", str(tmp_path / "o"), "--summary", str(tmp_path / "s.csv")]
    )
    assert result.exit_code == 2 and "--summary" in result.output
    result = runner.invoke(app, base + ["--engine", "dask", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--engine must be local or spark" in result.output
    result = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path / "missing*.txt"),
            str(SAMPLES / "smp01_child_welfare.txt"),
            "--model",
            str(model_dir),
            "--engine",
            "spark",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1 and "missing*.txt: no files match this pattern" in result.output
    assert "1 transcripts labelled on Spark" in result.output


def test_cli_engine_spark_that_labels_nothing_keeps_the_earlier_output(spark, model_dir, tmp_path):
    out = tmp_path / "labels"
    args = ["predict", "--engine", "spark", "--master", "local[2]", "--model", str(model_dir), "--out", str(out)]
    assert runner.invoke(app, args + [str(SAMPLES / "smp01_child_welfare.txt")]).exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    result = runner.invoke(app, args + [str(empty)])
    assert result.exit_code == 1, result.output
    assert "no transcript was labelled" in result.output and "(its files are unchanged)" in result.output
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
