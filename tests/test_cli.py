
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from supportlens.cli import app

from conftest import CODEBOOK, fast_overrides, make_rows, write_jsonl

runner = CliRunner()


def _train(coded_file, *extra):
    args = ["train", "--config", str(CODEBOOK.parent / "tfidf.yaml"), "--data", str(coded_file)]
    for s in fast_overrides():
        args += ["--set", s]
    return runner.invoke(app, args + list(extra))


@pytest.mark.parametrize("module", ["cli", "cli_assist", "cli_qda", "cli_report"])
def test_each_cli_module_imports_on_its_own(module):
    """A test or notebook may import any command module first (cli_qda once could not: a cycle)."""
    done = subprocess.run([sys.executable, "-c", f"import supportlens.{module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_train_evaluate_runs(coded_file, tracking_uri, tmp_path):
    result = _train(coded_file, "--cv", "2")
    assert result.exit_code == 0, result.output
    assert "model URI:" in result.output
    uri = result.output.split("model URI:")[1].split()[0]
    ev = runner.invoke(app, ["evaluate", "--model", uri, "--data", str(coded_file), "--out", str(tmp_path / "ev")])
    assert ev.exit_code == 0, ev.output
    assert "macro_f1" in ev.output and "co_creation" in ev.output
    assert re.search(r"95% bootstrap intervals: kappa -?\d\.\d{3} to \d\.\d{3}; alpha", ev.output), ev.output
    assert (tmp_path / "ev" / "misclassified.csv").is_file()
    table = runner.invoke(app, ["runs", "--experiment", "supportlens"])
    assert table.exit_code == 0 and "tfidf_logreg" in table.output
    csv = runner.invoke(app, ["runs", "--format", "csv", "--sort", "kappa"])
    assert csv.exit_code == 0
    header = csv.output.splitlines()[0].split(",")
    assert {"run_name", "model_kind", "data_digest", "macro_f1", "kappa", "f1_push", "train_seconds"} <= set(header)
    # whole run ids, so runs:/<run_id>/model works with what the table shows
    assert uri.split("/")[1] in csv.output and uri.split("/")[1] in table.output.replace("\n", "")


def test_train_register(coded_file, tracking_uri):
    result = _train(coded_file, "--register", "sl-cli")
    assert result.exit_code == 0, result.output
    assert "models:/sl-cli@champion" in result.output


def test_train_bad_config_key(coded_file, tracking_uri):
    result = _train(coded_file, "--set", "train.epoch=2")
    assert result.exit_code == 2
    assert "train.epoch" in result.output


def test_train_unknown_label(tmp_path, tracking_uri):
    rows = make_rows(4, 1)
    rows[0]["label"] = "sort of push"
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    result = _train(path)
    assert result.exit_code == 2
    assert "unknown label" in result.output and "'sort of push'" in result.output


def test_evaluate_missing_model(coded_file, tracking_uri):
    result = runner.invoke(app, ["evaluate", "--model", "nowhere", "--data", str(coded_file)])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_runs_unknown_experiment_and_sort(tracking_uri, coded_file):
    assert _train(coded_file).exit_code == 0
    bad = runner.invoke(app, ["runs", "--experiment", "nope"])
    assert bad.exit_code == 2 and "no experiment 'nope'" in bad.output
    bad_sort = runner.invoke(app, ["runs", "--sort", "banana"])
    assert bad_sort.exit_code == 2 and "cannot sort by 'banana'" in bad_sort.output


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "evaluate", "runs", "ui"):
        assert command in result.output


def test_ui_starts_mlflow_ui_on_the_store(monkeypatch, tracking_uri):
    import supportlens.cli as cli

    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda args: calls.append(args) or 0)
    result = runner.invoke(app, ["ui", "--port", "5055"])
    assert result.exit_code == 0
    assert calls and calls[0][1:4] == ["-m", "mlflow", "ui"]
    assert tracking_uri in calls[0] and "5055" in calls[0]


def test_evaluate_against_a_second_model_reports_the_paired_difference(coded_file, tracking_uri, tmp_path):
    import json

    first = _train(coded_file)
    second = _train(coded_file, "--set", "tfidf.C=0.01")
    uris = [r.output.split("model URI:")[1].split()[0] for r in (first, second)]
    ev = runner.invoke(app, ["evaluate", "--model", uris[0], "--data", str(coded_file), "--against", uris[1],
                             "--out", str(tmp_path / "ev"), "--no-log"])
    assert ev.exit_code == 0, ev.output
    assert "paired 95% interval" in ev.output and f"({uris[1]})" in ev.output
    saved = json.loads((tmp_path / "ev" / "against.json").read_text())
    assert saved["against"] == uris[1]
    assert saved["kappa_difference"] == pytest.approx(saved["kappa_a"] - saved["kappa_b"])
    assert saved["kappa_difference_ci_low"] <= saved["kappa_difference"] <= saved["kappa_difference_ci_high"]
    assert saved["both_right"] + saved["only_a_right"] + saved["only_b_right"] <= saved["n"]
    # a model against itself: no difference at all
    same = runner.invoke(app, ["evaluate", "--model", uris[0], "--data", str(coded_file), "--against", uris[0],
                               "--no-log"])
    assert same.exit_code == 0 and "difference +0.000" in same.output and "no measurable difference" in same.output
    missing = runner.invoke(app, ["evaluate", "--model", uris[0], "--data", str(coded_file), "--against", "nowhere"])
    assert missing.exit_code == 2 and "--against nowhere" in missing.output


def test_every_command_summary_is_one_unbroken_sentence():
    """`supportlens --help` lists each command by its docstring's first paragraph: a line break in
    it split report's summary mid-sentence ('a legend,' / 'per-transcript profiles')."""
    import supportlens.cli_assist, supportlens.cli_qda, supportlens.cli_report  # noqa: E401,F401 - register all

    for command in app.registered_commands:
        first = (command.callback.__doc__ or "").strip().split("\n\n")[0]
        assert first and "\n" not in first and first.endswith("."), (command.callback.__name__, first)


def test_runs_keeps_training_and_evaluation_runs_apart_and_shows_n(coded_file, tracking_uri, tmp_path):
    """An evaluation on the training file (n = 80) once topped the table above the training run's
    held-out test (n = 16), in one ranking with no n."""
    import io

    import pandas as pd

    result = _train(coded_file)
    assert result.exit_code == 0, result.output
    uri = result.output.split("model URI:")[1].split()[0]
    ev = runner.invoke(app, ["evaluate", "--model", uri, "--data", str(coded_file)])
    assert ev.exit_code == 0, ev.output
    csv = runner.invoke(app, ["runs", "--format", "csv"])
    table = pd.read_csv(io.StringIO(csv.output))
    assert table["kind"].tolist() == ["train", "evaluate"]
    assert table["n"].tolist() == [16, 80]
    assert table["scored_on"].tolist() == ["test split", "coded.jsonl"]
    shown = runner.invoke(app, ["runs"])
    assert shown.exit_code == 0
    text = " ".join(shown.output.split())
    assert "training runs: scored on each run's own held-out test interviews" in text
    assert "evaluation runs: scored on the file named in scored_on" in text
    assert text.index("training runs") < text.index("evaluation runs")


def test_set_errors_name_the_override_not_the_config_file(coded_file, tracking_uri):
    result = _train(coded_file, "--set", "split.test_size=0.6")
    assert result.exit_code == 2
    assert "--set split.test_size=0.6: split.test_size must be between 0 and 0.5" in " ".join(result.output.split())
    assert "tfidf.yaml" not in result.output


def test_the_cli_turns_off_the_libraries_progress_bars_unless_the_user_set_them():
    import os
    import subprocess
    import sys

    script = ("import os, supportlens.cli; print(os.environ['HF_HUB_DISABLE_PROGRESS_BARS'], "
              "os.environ['MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR'])")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")}
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert quiet.stdout.split() == ["1", "false"]
    mine = subprocess.run([sys.executable, "-c", script], env={**env, "HF_HUB_DISABLE_PROGRESS_BARS": "0"},
                          capture_output=True, text=True, check=True)
    assert mine.stdout.split() == ["0", "false"]
