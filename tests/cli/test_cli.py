import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import CODEBOOK, fast_overrides, make_rows, write_jsonl
from supportlens.cli import app

runner = CliRunner()


def _train(coded_file, *extra):
    args = ["train", "--config", str(CODEBOOK.parent / "tfidf.yaml"), "--data", str(coded_file)]
    for s in fast_overrides():
        args += ["--set", s]
    return runner.invoke(app, args + list(extra))


@pytest.mark.parametrize(
    "module",
    [
        "cli",
        "cli.app",
        "cli.assist",
        "cli.qda",
        "cli.report",
        "cli.train",
        "cli.predict",
        "cli.distil",
        "cli.project",
        "cli.docs",
    ],
)
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
    import supportlens.tracking as tracking  # the one module that knows how to start MLflow

    calls = []
    monkeypatch.setattr(tracking.subprocess, "call", lambda args: calls.append(args) or 0)
    result = runner.invoke(app, ["ui", "--port", "5055"])
    assert result.exit_code == 0
    assert calls and calls[0][1:4] == ["-m", "mlflow", "ui"]
    assert tracking_uri in calls[0] and "5055" in calls[0]


def test_evaluate_against_a_second_model_reports_the_paired_difference(coded_file, tracking_uri, tmp_path):
    import json

    first = _train(coded_file)
    second = _train(coded_file, "--set", "tfidf.C=0.01")
    uris = [r.output.split("model URI:")[1].split()[0] for r in (first, second)]
    ev = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            uris[0],
            "--data",
            str(coded_file),
            "--against",
            uris[1],
            "--out",
            str(tmp_path / "ev"),
            "--no-log",
        ],
    )
    assert ev.exit_code == 0, ev.output
    assert "paired 95% interval" in ev.output and f"({uris[1]})" in ev.output
    saved = json.loads((tmp_path / "ev" / "against.json").read_text())
    assert saved["against"] == uris[1]
    assert saved["kappa_difference"] == pytest.approx(saved["kappa_a"] - saved["kappa_b"])
    assert saved["kappa_difference_ci_low"] <= saved["kappa_difference"] <= saved["kappa_difference_ci_high"]
    assert saved["both_right"] + saved["only_a_right"] + saved["only_b_right"] <= saved["n"]
    # a model against itself: no difference at all
    same = runner.invoke(
        app, ["evaluate", "--model", uris[0], "--data", str(coded_file), "--against", uris[0], "--no-log"]
    )
    assert same.exit_code == 0 and "difference +0.000" in same.output and "no measurable difference" in same.output
    missing = runner.invoke(app, ["evaluate", "--model", uris[0], "--data", str(coded_file), "--against", "nowhere"])
    assert missing.exit_code == 2 and "--against nowhere" in missing.output


def test_every_command_summary_is_one_unbroken_sentence():
    """`supportlens --help` lists each command by its docstring's first paragraph: a line break in
    it split report's summary mid-sentence ('a legend,' / 'per-transcript profiles')."""

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

    script = (
        "import os, supportlens.cli; print(os.environ['HF_HUB_DISABLE_PROGRESS_BARS'], "
        "os.environ['MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR'])"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    }
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert quiet.stdout.split() == ["1", "false"]
    mine = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "HF_HUB_DISABLE_PROGRESS_BARS": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert mine.stdout.split() == ["0", "false"]


def test_runs_fits_the_width_and_keeps_the_key_columns(coded_file, tracking_uri):
    """At COLUMNS=100 `runs` printed rows of about 230 characters: the table now fits the width,
    leaving out the least telling columns (and saying which), never the run id or the scores."""
    result = _train(coded_file)
    assert result.exit_code == 0, result.output
    run_id = result.output.split("model URI:")[1].split()[0].split("/")[1]
    ev = runner.invoke(app, ["evaluate", "--model", f"runs:/{run_id}/model", "--data", str(coded_file)])
    assert ev.exit_code == 0, ev.output
    shown = runner.invoke(app, ["runs"], env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    print(shown.output)
    lines = shown.output.splitlines()
    assert max(len(line) for line in lines) <= 100, shown.output
    header = " ".join(shown.output.split())
    for column in ("run_id", "run_name", "macro_f1", "kappa", "n"):
        assert f" {column} " in header, column
    assert run_id in shown.output  # whole, on one line: runs:/<run_id>/model needs it
    assert "left out to fit 100 columns: " in header and "--format csv has every column" in header
    wide = runner.invoke(app, ["runs"], env={"COLUMNS": "400"})
    assert "left out" not in wide.output and "data_digest" in wide.output


def test_every_flag_shows_as_a_flag_in_help():
    """typer's rich help showed `--no-track <bool>` (even `--help <bool>`), as if the flag took a
    value; `train --no-track false` then failed. Every bool option is a flag, shown with no type."""
    import typer.main

    group = typer.main.get_command(app)
    flags = 0
    for name, command in group.commands.items():
        shown = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        assert "<bool>" not in shown.output and "BOOLEAN" not in shown.output, (name, shown.output)
        for param in command.params:
            if isinstance(param.default, bool):  # the bool options, --help included
                assert param.is_flag, (name, param.name)  # given alone: `--resume`, not `--resume true`
                line = next(line for line in shown.output.splitlines() if param.opts[0] in line)
                assert "<" not in line.split(param.opts[0])[1].split()[0], (name, line)
                flags += 1
    assert flags >= 6  # --no-track, --no-log, --resume, --fast, --diversity, --offer-blank, ...


def _header_transcripts(folder, n: int):
    """n transcripts that each open with the same two-line header (a note per file when read)."""
    folder.mkdir()
    for i in range(n):
        (folder / f"t{i}.txt").write_text(
            "Interview with the site lead\nRecorded in March\n\nInterviewer: How did you support the county?\n"
            "Participant: we trained every site on the manual and checked fidelity each month\n"
            "Interviewer: And then?\nParticipant: we designed the plan together with the families and staff\n",
            encoding="utf-8",
        )
    return folder


def test_predict_says_a_note_many_files_share_once(model_dir, tmp_path):
    """A 200-file batch printed one identical note per file ("2 line(s) before the first speaker
    label are a header"): it is said once, with how many files and the first few."""
    folder = _header_transcripts(tmp_path / "in", 5)
    result = runner.invoke(app, ["predict", str(folder), "--model", str(model_dir), "--out", str(tmp_path / "l.csv")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.count("before the first speaker label are a header") == 1, result.output
    assert (
        f"note: 5 files: 2 line(s) before the first speaker label are a header, not cues "
        f"({folder / 't0.txt'}, {folder / 't1.txt'}, {folder / 't2.txt'} and 2 more)"
    ) in said
    one = runner.invoke(
        app, ["predict", str(folder / "t0.txt"), "--model", str(model_dir), "--out", str(tmp_path / "one.csv")]
    )
    assert f"note: {folder / 't0.txt'}: 2 line(s) before" in " ".join(one.output.split())


def test_predict_lists_each_failed_file_once(model_dir, tmp_path):
    """Each failure was printed twice: as "skipped" during the run and again in the final list.
    Now only in the list at the end, where a researcher scanning a log looks; the progress shows
    how many failed."""
    folder = _header_transcripts(tmp_path / "in", 2)
    (folder / "empty.txt").write_text("")
    result = runner.invoke(app, ["predict", str(folder), "--model", str(model_dir), "--out", str(tmp_path / "l.csv")])
    assert result.exit_code == 1
    assert result.output.count("empty.txt") == 1, result.output
    assert "skipped" not in result.output
    lines = result.output.splitlines()
    assert lines[-2:] == ["1 file(s) failed:", f"  {folder / 'empty.txt'}: " + lines[-1].split(": ", 1)[1]]
    assert "3/3 files" in result.output and "1 failed" in result.output  # the progress counts it


def test_predict_without_a_terminal_prints_progress_as_it_goes(model_dir, tmp_path, monkeypatch):
    """Under nohup or in a CI log the live bar showed only at the end: there a plain line comes
    every few seconds (here every update) while the files are labelled."""
    from functools import partial

    import supportlens.cli.progress
    import supportlens.inference.predict

    monkeypatch.setattr(supportlens.cli.progress, "PLAIN_INTERVAL_S", 0.0)
    # a flush per file, so that progress is reported after each file
    monkeypatch.setattr(
        supportlens.inference.predict,
        "predict_files",
        partial(supportlens.inference.predict.predict_files, chunk_passages=1),
    )
    folder = _header_transcripts(tmp_path / "in", 3)
    result = runner.invoke(app, ["predict", str(folder), "--model", str(model_dir), "--out", str(tmp_path / "l.csv")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    progress = [
        i
        for i, line in enumerate(lines)
        if re.fullmatch(r"labelling: \d/3 files, \d+ passages, \d+\.\d/s, 0:00:\d\d", line)
    ]
    assert {"1/3", "2/3", "3/3"} <= {lines[i].split()[1] for i in progress}, result.output
    done = next(i for i, line in enumerate(lines) if "transcripts labelled" in line)
    assert progress[0] < done and "━" not in result.output  # plain lines, no bar drawn into the log
    assert len(set(lines[i] for i in progress)) == len(progress)  # the last state is not said twice


def test_evaluate_says_where_it_wrote_and_which_run_it_logged(model_dir, coded_file, tracking_uri, tmp_path):
    """`evaluate --out` said neither where its files went nor which MLflow run it logged."""
    import mlflow

    out_dir = tmp_path / "ev"
    ev = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--data", str(coded_file), "--out", str(out_dir)])
    assert ev.exit_code == 0, ev.output
    said = " ".join(ev.output.split())
    assert f"evaluation files -> {out_dir}" in said
    mlflow.set_tracking_uri(tracking_uri)
    run = mlflow.search_runs(experiment_names=["supportlens-evaluations"], output_format="list")[0]
    assert f"MLflow run {run.info.run_id} in experiment 'supportlens-evaluations'" in said
    quiet = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--data", str(coded_file), "--no-log"])
    assert quiet.exit_code == 0 and "MLflow run" not in quiet.output and "evaluation files" not in quiet.output


def test_predict_interrupted_still_lists_the_files_that_failed(model_dir, tmp_path, monkeypatch):
    """Failures are listed at the end, not as they happen: Ctrl-C must not lose them."""
    import supportlens.inference.predict
    from supportlens.inference.loop import FileFailure

    def interrupted(*args, on_total=None, on_failure=None, **kwargs):
        on_total(3)
        on_failure(FileFailure("a.txt", "a.txt: empty file"))
        raise KeyboardInterrupt

    monkeypatch.setattr(supportlens.inference.predict, "predict_files", interrupted)
    result = runner.invoke(app, ["predict", str(tmp_path), "--model", str(model_dir), "--out", str(tmp_path / "l.csv")])
    assert result.exit_code == 130
    assert result.output.count("a.txt: empty file") == 1 and "1 file(s) failed:" in result.output, result.output


def test_next_says_a_note_many_files_share_once(model_dir, tmp_path):
    """`next` reads transcripts as predict does, and groups their notes the same way."""
    folder = _header_transcripts(tmp_path / "in", 4)
    result = runner.invoke(
        app, ["next", str(folder), "--model", str(model_dir), "--out", str(tmp_path / "s.csv"), "--n", "2"]
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.count("before the first speaker label are a header") == 1 and "note: 4 files: 2 line(s)" in said


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"supportlens {version('supportlens')}"


@pytest.mark.parametrize("command", ["predict", "import", "next"])
def test_an_invalid_interviewer_pattern_is_a_one_line_error(command, tmp_path):
    """`--interviewer 'Dr (Smith'` is not a valid regular expression: a clear error naming it, and no
    traceback (predict and import crashed with a ValueError)."""
    transcript = tmp_path / "a.txt"
    transcript.write_text("Interviewer: How did it go?\nSam: We planned it together.\n", encoding="utf-8")
    args = {
        "predict": [
            "predict",
            str(transcript),
            "--model",
            str(tmp_path / "no-model"),
            "--out",
            str(tmp_path / "labels.csv"),
        ],
        "import": ["import", str(tmp_path / "p.qdpx"), "--out", str(tmp_path / "coded.csv")],
        "next": ["next", str(transcript), "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "sheet.csv")],
    }[command]
    result = runner.invoke(app, args + ["--interviewer", "Dr (Smith"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "interviewer pattern 'Dr (Smith' is not a valid regular expression" in result.output
