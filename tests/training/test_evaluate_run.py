"""Evaluating a saved model on a coded file: blank codes of a coding sheet, unknown codes, the
overlap with its training data, and the output folder written whole."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_rows
from supportlens.cli import app
from supportlens.corpus.dataset import DataError
from supportlens.training.evaluate_run import evaluate_file

runner = CliRunner()


def _sheet(tmp_path, codes):
    """A coding sheet as `supportlens next` writes it, with the coder's codes filled in."""
    rows = make_rows(3, 1)[: len(codes)]
    sheet = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "source": [r["interview_id"] + ".txt" for r in rows],
            "passage_index": range(len(rows)),
            "start": 0,
            "end": 1,
            "speaker": "P1",
            "text": [r["text"] for r in rows],
            "suggested_code": [r["label"] for r in rows],
            "confidence": 0.5,
            "code": codes,
            "notes": "",
        }
    )
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


def test_evaluating_on_the_models_own_training_data_warns_with_the_count(coded_file, tmp_path, tracking_uri):
    """46 of 53 rows of a file were the model's training or validation data, and evaluate said
    nothing: κ 0.874 there against 0.300 on its held-out test."""
    import json

    import mlflow

    from conftest import fast_overrides, write_jsonl
    from supportlens.config import load_config
    from supportlens.training.trainer import train

    trained = train(load_config(None, fast_overrides() + [f"data.path={coded_file}"]), track=False, log=lambda m: None)
    n_train, n_val = trained.split_sizes["train"], trained.split_sizes["val"]
    result = evaluate_file(str(trained.model_dir), str(coded_file), out_dir=str(tmp_path / "ev"))
    assert len(result.warnings) == 1
    assert (
        f"{n_train + n_val} of 80 excerpts in {coded_file} were this model's training ({n_train}) or "
        f"validation ({n_val}) data: these scores are optimistic"
    ) in result.warnings[0]
    assert (result.metrics["n_seen_in_training"], result.metrics["n_seen_in_validation"]) == (n_train, n_val)
    assert result.metrics["n_in_test_split"] == trained.split_sizes["test"]
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["n_seen_in_training"] == n_train
    # recorded in the evaluation run
    run = mlflow.search_runs(experiment_names=["supportlens-evaluations"], output_format="list")[0]
    assert run.data.metrics["n_seen_in_training"] == n_train
    assert run.data.tags["warning"] == result.warnings[0]
    # excerpts the model never saw (whitespace and case aside, the same text counts as seen)
    fresh_rows = [r for r in make_rows(12, 2) if r["interview_id"] in ("i10", "i11")]
    fresh = write_jsonl(tmp_path / "fresh.jsonl", fresh_rows)
    clean = evaluate_file(str(trained.model_dir), str(fresh), log_run=False)
    assert clean.warnings == [] and clean.metrics["n_seen_in_training"] == 0
    shouted = write_jsonl(
        tmp_path / "shouted.jsonl", [{**r, "text": "  " + r["text"].upper()} for r in make_rows(10, 2)[:5]]
    )
    m = evaluate_file(str(trained.model_dir), str(shouted), log_run=False).metrics
    assert m["n_seen_in_training"] + m["n_seen_in_validation"] + m["n_in_test_split"] == 5
    # and the console says so
    cli = runner.invoke(app, ["evaluate", "--model", str(trained.model_dir), "--data", str(coded_file), "--no-log"])
    assert cli.exit_code == 0, cli.output
    assert f"warning: {n_train + n_val} of 80 excerpts" in " ".join(cli.output.split())


def test_cli_evaluate_that_fails_leaves_the_earlier_out_folder_alone(model_dir, tmp_path):
    """A sheet with no code filled in yet, or an --against model that does not load: every file
    already in --out keeps its bytes (--against is checked before anything is written), and the
    message says nothing was written there."""
    out = tmp_path / "evals"
    out.mkdir()
    (out / "metrics.json").write_bytes(b'{"kappa": 0.61}')
    (out / "against.json").write_bytes(b'{"kappa_difference": 0.1}')
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    blank = _sheet(tmp_path, ["", ""])
    nothing = runner.invoke(
        app, ["evaluate", "--model", str(model_dir), "--data", str(blank), "--no-log", "--out", str(out)]
    )
    assert nothing.exit_code == 2
    assert f"nothing was written to {out} (its files are unchanged)" in " ".join(nothing.output.split())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    coded = _sheet(tmp_path, ["push", "pull", "none"])
    against = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--data",
            str(coded),
            "--no-log",
            "--out",
            str(out),
            "--against",
            str(tmp_path / "no-model"),
        ],
    )
    assert against.exit_code == 2 and "--against" in against.output
    assert f"nothing was written to {out} (its files are unchanged)" in " ".join(against.output.split())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_evaluation_files_are_all_written_or_none(model_dir, tmp_path, monkeypatch):
    """A failure part way through (here: a plot) leaves the earlier files as they were, and no
    temporary folder behind; a run that works replaces them all."""
    import supportlens.evaluation.evaluate

    result = evaluate_file(str(model_dir), str(_sheet(tmp_path, ["push", "pull", "none"])), log_run=False)
    out = tmp_path / "evals"
    out.mkdir()
    (out / "metrics.json").write_bytes(b'{"kappa": 0.61}')

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(supportlens.evaluation.evaluate, "reliability_png", broken)
        with pytest.raises(OSError, match="disk full"):
            result.write(out)
    assert [p.name for p in out.iterdir()] == ["metrics.json"]
    assert (out / "metrics.json").read_bytes() == b'{"kappa": 0.61}'
    written = result.write(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written) and len(written) == 8
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["n"] == 3
