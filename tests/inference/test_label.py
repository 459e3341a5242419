"""`supportlens predict` as library calls: options checked before a model loads, in the API's terms,
and labelling into a table or a .qdpx project from a notebook."""

import shutil

import pandas as pd
import pytest

from conftest import ROOT
from supportlens.cli.common import in_cli_terms
from supportlens.inference.label import (
    LabelOptions,
    calibration_warning,
    check_label_options,
    label,
    labels_into_qdpx,
    load_model,
)
from supportlens.inference.labeler import PredictError

SAMPLE = ROOT / "data" / "transcripts" / "smp01_child_welfare.txt"


@pytest.mark.parametrize(
    "options, library, cli",
    [
        (LabelOptions(engine="gpu"), "`engine` must be local or spark, got 'gpu'", "--engine must be local or spark"),
        (
            LabelOptions(runtime="tensorrt"),
            "`runtime` must be auto, onnx or torch",
            "--runtime must be auto, onnx or torch",
        ),
        (
            LabelOptions(review_below=1.5),
            "`review_below` is a confidence between 0 and 1, got 1.5",
            "--review-below is a confidence between 0 and 1, got 1.5",
        ),
        (
            LabelOptions(engine="spark", resume=True),
            "`summary` and `resume` need `engine='local'`",
            "--engine spark writes partitioned Parquet: .qdpx, --summary and --resume need --engine local",
        ),
    ],
)
def test_options_that_do_not_go_together_are_refused_in_the_apis_terms(tmp_path, options, library, cli):
    with pytest.raises(PredictError) as err:
        check_label_options([str(SAMPLE)], tmp_path / "out.csv", options)
    assert library in str(err.value) and "--" not in str(err.value)
    assert cli in in_cli_terms(str(err.value))


def test_a_qdpx_output_takes_no_summary_or_resume(tmp_path):
    assert labels_into_qdpx([str(SAMPLE)], tmp_path / "out.QDPX") and labels_into_qdpx(["p.qdpx"], "x.csv")
    assert not labels_into_qdpx([str(SAMPLE)], tmp_path / "out.csv")
    with pytest.raises(PredictError, match=r"`summary` and `resume` are not available with a \.qdpx project"):
        check_label_options([str(SAMPLE)], tmp_path / "out.qdpx", LabelOptions(resume=True))


def test_label_from_a_notebook_into_a_table_and_a_project(tmp_path, model_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    options = LabelOptions(speaker="all", interviewers=["Interviewer"])
    check_label_options([str(folder)], tmp_path / "labels.csv", options)
    loaded = load_model(str(model_dir), options)
    assert loaded.folder == model_dir and calibration_warning(loaded, options) is None
    report = label([str(folder)], loaded, tmp_path / "labels.csv", options)
    table = pd.read_csv(tmp_path / "labels.csv")
    assert report.files_done == 1 and len(table) == report.passages
    assert {"interviewer", "participant"} <= set(table["role"])
    project = label([str(folder)], loaded, tmp_path / "labels.qdpx", LabelOptions())
    assert project.output is not None and (tmp_path / "labels.qdpx").is_file()


def test_an_uncalibrated_model_is_said_once_unless_a_threshold_is_given(model_dir):
    loaded = load_model(str(model_dir))
    loaded.labeler.model.meta_["calibration"] = {"threshold_measured": False, "notes": ["too few interviews"]}
    warning = calibration_warning(loaded)
    assert warning.startswith("this model's confidence is not calibrated (too few interviews)")
    assert "or pass --review-below with a threshold" in in_cli_terms(warning)
    assert calibration_warning(loaded, LabelOptions(review_below=0.6)) is None
