"""Evaluating a saved model on a coded file: blank codes of a coding sheet, unknown codes."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from supportlens.cli import app
from supportlens.dataset import DataError
from supportlens.evaluate import evaluate_file

from conftest import make_rows

runner = CliRunner()


def _sheet(tmp_path, codes):
    """A coding sheet as `supportlens next` writes it, with the coder's codes filled in."""
    rows = make_rows(3, 1)[: len(codes)]
    sheet = pd.DataFrame({"id": [r["id"] for r in rows], "source": [r["interview_id"] + ".txt" for r in rows],
                          "passage_index": range(len(rows)), "start": 0, "end": 1, "speaker": "P1",
                          "text": [r["text"] for r in rows], "suggested_code": [r["label"] for r in rows],
                          "confidence": 0.5, "code": codes, "notes": ""})
    path = tmp_path / "sheet.csv"
    sheet.to_csv(path, index=False)
    return path


def test_blank_codes_of_a_sheet_are_skipped_with_a_note(model_dir, tmp_path):
    path = _sheet(tmp_path, ["push", "", "co_creation", "none", "", "pull"])
    result = evaluate_file(str(model_dir), str(path), log_run=False)
    assert result.metrics["n"] == 4
    assert result.notes == ["2 rows with no code in 'code' skipped (not coded yet): rows 3, 6"]


def test_a_code_not_in_the_codebook_is_still_an_error_naming_its_row(model_dir, tmp_path):
    path = _sheet(tmp_path, ["push", "", "sort of pull"])
    with pytest.raises(DataError, match=r"row 4: unknown label 'sort of pull' in field 'code'"):
        evaluate_file(str(model_dir), str(path), log_run=False)


def test_cli_evaluate_a_partly_filled_sheet(model_dir, tmp_path):
    path = _sheet(tmp_path, ["push", "", "co_creation", "none"])
    result = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--data", str(path), "--no-log"])
    assert result.exit_code == 0, result.output
    assert "note: 1 row with no code in 'code' skipped (not coded yet): rows 3" in result.output
    assert "(n=3)" in result.output
    unknown = _sheet(tmp_path, ["push", "maybe"])
    bad = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--data", str(unknown), "--no-log"])
    assert bad.exit_code == 2 and "row 3: unknown label 'maybe'" in bad.output


def test_paired_difference_needs_the_same_excerpts_and_codes():
    import numpy as np

    from supportlens.evaluate import evaluate_proba, paired_difference

    labels = ["push", "pull", "co_creation", "none"]
    y = ["push", "pull", "none", "none"]
    sure = np.eye(4)[[0, 1, 3, 3]]
    unsure = np.eye(4)[[0, 0, 3, 1]]
    a = evaluate_proba(y, sure, labels, ids=["a", "b", "c", "d"])
    b = evaluate_proba(y, unsure, labels, ids=["a", "b", "c", "d"])
    result = paired_difference(a, b, n_boot=300)
    assert result["kappa_a"] == pytest.approx(1.0)
    assert result["kappa_difference"] == pytest.approx(1.0 - result["kappa_b"])
    assert (result["both_right"], result["only_a_right"], result["only_b_right"]) == (2, 2, 0)
    other_rows = evaluate_proba(y, unsure, labels, ids=["a", "b", "c", "e"])
    with pytest.raises(ValueError, match="not of the same coded excerpts"):
        paired_difference(a, other_rows)
    other_codes = evaluate_proba(y, unsure[:, [1, 0, 2, 3]], ["pull", "push", "co_creation", "none"],
                                 ids=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="different codebooks"):
        paired_difference(a, other_codes)
