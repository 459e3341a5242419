"""The ``supportlens`` command line: thin wrappers over the library API."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# The CLI draws its own progress bar; the libraries' bars ("Loading weights", "Writing model shards",
# MLflow's "Downloading artifacts") only repeat on every command. Set before they are imported;
# a user's own setting of these variables wins.
for _variable, _value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
    os.environ.setdefault(_variable, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Code implementation-support interviews as push, pull, co-creation or none.")
console = Console(stderr=True, soft_wrap=True)  # never break an error message mid-line
# tables are wide; when piped or captured (no terminal) do not squeeze them to 80 columns
out = Console() if Console().is_terminal else Console(width=240)


@app.callback()
def _quiet_libraries() -> None:
    """Our own progress bars only: transformers' per-load "Loading weights" bars and MLflow's
    per-file download bars are noise here. Set through the libraries' environment variables
    (a user's explicit setting wins), read when they are first imported: importing transformers
    here would add more than a second to every command, --help included."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow the hub's
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _styled(message: str) -> str:
    """A library log line for the console: its text as written (a path may hold '['), with a
    leading 'warning:' in colour so that it stands out from the progress lines."""
    if message.startswith("warning:"):
        return "[bold yellow]warning:[/]" + escape(message[len("warning:"):])
    return escape(message)


def _user_errors() -> tuple[type[Exception], ...]:
    from .codebook import CodebookError
    from .config import ConfigError
    from .dataset import DataError
    from .models.base import ModelLoadError
    from .splits import SplitError

    return (ConfigError, CodebookError, DataError, ModelLoadError, SplitError)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config (see configs/)")] = Path("configs/default.yaml"),
    data: Annotated[Optional[str], typer.Option(help="Coded excerpts (CSV/TSV/JSONL/XLSX); overrides data.path")] = None,
    codebook: Annotated[Optional[str], typer.Option(help="Codebook YAML; overrides the config's")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key, e.g. train.epochs=3")] = None,
    cv: Annotated[Optional[int], typer.Option(help="Also run grouped K-fold cross-validation")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")] = None,
    register: Annotated[Optional[str], typer.Option(help="Register the model under this name and set the alias")] = None,
    no_track: Annotated[bool, typer.Option("--no-track", help="Do not log to MLflow")] = False,
    add_data: Annotated[Optional[list[str]], typer.Option("--add-data", help="Extra coded file or filled coding sheet (from `supportlens next`) to train on too; repeatable")] = None,
) -> None:
    """Train a model on coded excerpts, evaluate it on held-out interviews, and log the run."""
    from .config import load_config
    from .training import train as run_training

    try:
        cfg = load_config(config, set_)
        result = run_training(cfg, data_path=data, codebook_path=codebook, cv=cv,
                              tracking_uri=tracking_uri, register=register,
                              log=lambda m: console.print(_styled(m), highlight=False), track=not no_track,
                              extra_data=add_data)
    except _user_errors() as exc:
        _fail(str(exc))
        return
    out.print(f"model folder: {result.model_dir}")
    if result.model_uri:
        out.print(f"model URI:    {result.model_uri}")
    if result.registered_version:
        out.print(f"registered:   models:/{register or cfg.tracking.register}@{cfg.tracking.alias} "
                  f"(version {result.registered_version})")


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="runs:/<id>/model, models:/<name>@<alias> or a model folder")],
    data: Annotated[str, typer.Option(help="Coded excerpts to evaluate on")],
    codebook: Annotated[Optional[str], typer.Option(help="Codebook (default: the one saved with the model)")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Write metrics, confusion matrix, plots here")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI")] = None,
    text_column: Annotated[Optional[str], typer.Option(help="Name of the text column (default: text)")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Name of the code column (default: label; code in a coding sheet)")] = None,
    group_column: Annotated[Optional[str], typer.Option(help="Interview/document id column (default: interview_id; source in a coding sheet)")] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log this evaluation to MLflow")] = False,
    against: Annotated[Optional[str], typer.Option(help="A second model: also report its kappa and the paired difference")] = None,
) -> None:
    """Evaluate any model on any coded file: accuracy, macro-F1, per-code scores, kappa, alpha, ECE.

    Rows left without a code (a coding sheet not filled in yet) are skipped, with a note. With
    --against, a second model is scored on the same rows and kappa's difference gets a paired
    bootstrap interval: is one model measurably better on this file?"""
    from .config import DataConfig
    from .evaluate import evaluate_file, paired_difference

    given = {name: value for name, value in (("text_column", text_column), ("label_column", label_column),
                                             ("group_column", group_column)) if value is not None}
    try:
        data_cfg = DataConfig(**given) if given else None
        result = evaluate_file(model, data, codebook, str(out_dir) if out_dir else None, tracking_uri,
                               log_run=not no_log, data_cfg=data_cfg)
    except _user_errors() as exc:
        _fail(str(exc))
        return
    other = None
    if against:
        try:
            other = evaluate_file(against, data, codebook, None, tracking_uri, log_run=not no_log,
                                  data_cfg=data_cfg)
            paired = paired_difference(result, other)
        except (*_user_errors(), ValueError) as exc:
            _fail(f"--against {against}: {exc}")
            return
        if out_dir:
            from .atomic import write_atomic

            write_atomic(out_dir / "against.json", lambda tmp: Path(tmp).write_text(
                json.dumps({"model": model, "against": against, **paired}, indent=2), encoding="utf-8"))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    m = result.metrics
    table = Table(title=f"{result.name} (n={m['n']})")
    for name in ("accuracy", "macro_f1", "kappa", "alpha", "ece"):
        table.add_column(name)
    table.add_row(*(f"{m[k]:.3f}" for k in ("accuracy", "macro_f1", "kappa", "alpha", "ece")))
    out.print(table)
    intervals = [f"{k} {m[f'{k}_ci_low']:.3f} to {m[f'{k}_ci_high']:.3f}" for k in ("kappa", "alpha")
                 if isinstance(m.get(f"{k}_ci_low"), float) and not math.isnan(m[f"{k}_ci_low"])]
    if intervals:  # a κ from a few hundred rows is uncertain: say how much
        out.print("95% bootstrap intervals: " + "; ".join(intervals), highlight=False)
    codes = Table(title="per code")
    for name in ("code", "precision", "recall", "f1", "support"):
        codes.add_column(name)
    for r in result.per_code.itertuples(index=False):
        codes.add_row(r.code, f"{r.precision:.3f}", f"{r.recall:.3f}", f"{r.f1:.3f}", str(r.support))
    out.print(codes)
    if other is not None:
        verdict = ("no measurable difference on this file" if paired["kappa_difference_ci_low"] <= 0
                   <= paired["kappa_difference_ci_high"] else
                   "the first model agrees better" if paired["kappa_difference"] > 0 else
                   "the second model agrees better")
        out.print(f"kappa {paired['kappa_a']:.3f} ({model}) vs {paired['kappa_b']:.3f} ({against}): "
                  f"difference {paired['kappa_difference']:+.3f}, paired 95% interval "
                  f"[{paired['kappa_difference_ci_low']:+.3f}, {paired['kappa_difference_ci_high']:+.3f}] over "
                  f"{int(paired['n'])} excerpts ({int(paired['only_a_right'])} right only by the first, "
                  f"{int(paired['only_b_right'])} only by the second): {verdict}", highlight=False)


@app.command()
def runs(
    experiment: Annotated[Optional[str], typer.Option(help="Experiment name (default: all)")] = None,
    sort: Annotated[str, typer.Option(help="Column to sort by")] = "macro_f1",
    format_: Annotated[str, typer.Option("--format", help="table or csv")] = "table",
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Compare tracked runs side by side: training runs, then evaluation runs.

    A training run's scores are on its own held-out test interviews, an evaluation run's on the
    file it names; n says how many excerpts each figure rests on."""
    import pandas as pd

    from .tracking import runs_table

    try:
        table = runs_table(experiment, sort, tracking_uri)
    except ValueError as exc:
        _fail(str(exc))
        return
    if format_ == "csv":
        sys.stdout.write(table.to_csv(index=False))
        return
    if format_ != "table":
        _fail(f"--format must be table or csv, got {format_!r}")
    titles = {"train": "training runs: scored on each run's own held-out test interviews",
              "evaluate": "evaluation runs: scored on the file named in scored_on"}
    kinds = list(dict.fromkeys(table["kind"])) if len(table) else ["train"]
    for kind in kinds:
        part = table[table["kind"] == kind].drop(columns="kind")
        view = Table(title=titles.get(kind, f"{kind} runs"), title_justify="left")
        for column in part.columns:
            view.add_column(column, no_wrap=column == "run_id")
        for row in part.itertuples(index=False):
            view.add_row(*("" if v is None or pd.isna(v) else f"{v:.3f}" if isinstance(v, float) else str(v)
                           for v in row))
        out.print(view)


@app.command()
def predict(
    inputs: Annotated[list[str], typer.Argument(help="Transcript files, folders (searched recursively) or globs")],
    model: Annotated[str, typer.Option(help="runs:/<id>/model, models:/<name>@<alias> or a model folder")],
    out_path: Annotated[str, typer.Option("--out", help="Passages with labels: .csv, .jsonl or .parquet; or .qdpx for QDA software; with --engine spark a folder or URI for partitioned Parquet")],
    summary: Annotated[Optional[Path], typer.Option(help="Per-transcript profile: .csv, .jsonl or .parquet")] = None,
    speaker: Annotated[str, typer.Option(help="Which turns to score: participant, interviewer or all")] = "participant",
    interviewer: Annotated[Optional[list[str]], typer.Option(help="Speaker name (or regex) of the interviewer; repeatable")] = None,
    review_below: Annotated[Optional[float], typer.Option(help="Flag passages under this confidence (default: the model's threshold)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip transcripts already in --out")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    fast: Annotated[bool, typer.Option("--fast", help="int8 CPU inference, re-scoring near-ties in fp32: faster, changes under 1% of labels (see README)")] = False,
    runtime: Annotated[Optional[str], typer.Option(help="Fine-tuned models on CPU: auto (ONNX Runtime when it loads, else torch), onnx or torch (default: $SUPPORTLENS_RUNTIME, else auto)")] = None,
    batch_size: Annotated[int, typer.Option(help="Passages per forward pass (16 measured fastest for torch on 2 CPU cores; ONNX Runtime on CPU takes at most 4, and one per int8 call with --fast)")] = 16,
    text_column: Annotated[str, typer.Option(help="Text column for .csv/.xlsx inputs")] = "text",
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI for runs:/ and models:/")] = None,
    code_prefix: Annotated[str, typer.Option(help="With .qdpx output: put suggestions under new codes named PREFIX + code name, e.g. 'AI: '")] = "",
    min_confidence: Annotated[float, typer.Option(help="With .qdpx output: leave out suggestions below this confidence")] = 0.0,
    engine: Annotated[str, typer.Option(help="local (this process) or spark (needs supportlens[spark] and Java; INPUT may be Parquet of id, text, format)")] = "local",
    master: Annotated[str, typer.Option(help="With --engine spark: the Spark master, e.g. local[4], yarn, spark://host:7077")] = "local[2]",
) -> None:
    """Segment transcripts into passages and label each with a code and calibrated confidence.

    With a REFI-QDA project as input, or --out ending in .qdpx, the labels become suggested codings
    in a .qdpx project (a copy of the input project, or a new one made from the transcripts)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .models import load_classifier
    from .predict import Labeler, PredictError, check_options, predict_files
    from .qda import QdaError
    from .segmentation import SpeakerRules
    from .tracking import fetch_model_dir

    to_qda = Path(out_path).suffix.lower() == ".qdpx" or any(i.lower().endswith(".qdpx") for i in inputs)
    if engine not in ("local", "spark"):
        _fail(f"--engine must be local or spark, got {engine!r}")
    if runtime is not None and runtime not in ("auto", "onnx", "torch"):
        _fail(f"--runtime must be auto, onnx or torch, got {runtime!r}")
    if review_below is not None and not 0.0 <= review_below <= 1.0:
        _fail(f"--review-below is a confidence between 0 and 1, got {review_below}")
    if engine == "spark" and (to_qda or summary is not None or resume):
        _fail("--engine spark writes partitioned Parquet: .qdpx, --summary and --resume need --engine local")
    if to_qda and (summary is not None or resume):
        _fail("--summary and --resume are not available with a .qdpx project; label into .csv/.jsonl for them")
    try:
        if engine == "local" and not to_qda:
            check_options(out_path, summary, speaker)  # before the model takes seconds to load
        model_dir = fetch_model_dir(model, tracking_uri)
        loaded = load_classifier(model_dir)
        labeler = Labeler(loaded, review_below=review_below, device=device, fast=fast, batch_size=batch_size,
                          runtime=runtime)
    except (*_user_errors(), PredictError) as exc:
        _fail(str(exc))
        return
    calibration = getattr(loaded, "meta_", {}).get("calibration") or {}
    if calibration.get("threshold_measured") is False and review_below is None:
        console.print("[bold yellow]warning:[/] " + escape(
            f"this model's confidence is not calibrated ({'; '.join(calibration.get('notes') or [])}), so every "
            "passage is flagged needs_review. Train on more coded interviews, or pass --review-below "
            "with a threshold of your own choosing (one that no data has checked)."), highlight=False)
    rules = SpeakerRules(interviewer_patterns=list(interviewer or []))
    if interviewer:
        rules.interviewer_names = list(rules.interviewer_names) + [n.lower() for n in interviewer]
    if engine == "spark":
        from .spark import LabelerSettings, predict_spark

        try:
            done = predict_spark(inputs, model_dir, out_path, master=master, speaker=speaker, rules=rules,
                                 settings=LabelerSettings(review_below, fast, batch_size, device),
                                 table_text_column=text_column)
        except (PredictError, *_user_errors()) as exc:
            _fail(str(exc))
            return
        console.print(f"{done.transcripts} transcripts labelled on Spark ({done.passages} passages, "
                      f"{done.passages_per_second:.1f}/s) -> {done.output}", highlight=False)
        for failure in done.failures:
            console.print(f"[bold red]failed:[/] {failure.reason}", highlight=False)
        raise typer.Exit(1 if done.failures else 0)
    started = __import__("time").perf_counter()
    progress = Progress(TextColumn("[bold]labelling"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                        TextColumn("{task.fields[passages]} passages, {task.fields[rate]:.1f}/s"),
                        TimeElapsedColumn(), console=console, transient=False)
    task = progress.add_task("predict", total=None, passages=0, rate=0.0)

    def on_total(files: int) -> None:  # the files that will be read, not inputs that name none
        progress.update(task, total=files)
        if files:  # a run that fails before it has a file to read shows no empty bar
            progress.start()

    def on_progress(files: int, passages: int) -> None:
        elapsed = __import__("time").perf_counter() - started
        progress.update(task, completed=files, passages=passages, rate=passages / max(elapsed, 1e-9))

    def on_failure(failure) -> None:
        progress.console.print(f"[yellow]skipped[/] {failure.reason}", highlight=False)

    try:
        try:
            if to_qda:
                from .codebook import load_codebook
                from .qda import predict_to_qdpx

                saved = model_dir / "codebook.yaml"  # names, colours, definitions of the codes
                report = predict_to_qdpx(inputs, labeler, out_path,
                                         codebook=load_codebook(saved) if saved.is_file() else None,
                                         speaker=speaker, rules=rules, code_prefix=code_prefix,
                                         min_confidence=min_confidence, model_uri=model,
                                         text_column=text_column, on_progress=on_progress,
                                         on_failure=on_failure, on_total=on_total)
            else:
                report = predict_files(inputs, labeler, out_path, summary=summary, speaker=speaker, resume=resume,
                                       rules=rules, on_progress=on_progress, on_failure=on_failure,
                                       text_column=text_column, on_total=on_total)
        finally:
            if progress.live.is_started:  # the bar ends above any message that follows
                progress.stop()
    except (PredictError, QdaError, *_user_errors()) as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:
        if to_qda:
            console.print(f"interrupted: {out_path} was not written; run the command again", highlight=False)
        elif progress.tasks[0].completed or resume:
            console.print(f"interrupted: the transcripts finished so far are kept; run the same command "
                          f"with --resume to label the rest into {out_path}", highlight=False)
        else:
            console.print(f"interrupted before any transcript was finished: {out_path} was not written; "
                          "run the command again", highlight=False)
        raise typer.Exit(130) from None
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"{report.files_done} transcripts labelled ({report.passages} passages, "
                  f"{report.passages_per_second:.1f}/s)"
                  + (f", {report.files_skipped} already done" if report.files_skipped else "")
                  + f" -> {report.output}" + (f"; summary -> {report.summary}" if report.summary else ""),
                  highlight=False)
    if report.failures:
        console.print(f"[bold red]{len(report.failures)} file(s) failed:[/]", highlight=False)
        for failure in report.failures:
            console.print(f"  {failure.reason}", highlight=False)
        raise typer.Exit(1)


@app.command()
def ui(
    tracking_uri: Annotated[Optional[str], typer.Option(help="Backend store URI")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 5000,
) -> None:
    """Open the MLflow UI on the tracking store."""
    from .tracking import resolve_uri

    raise typer.Exit(subprocess.call([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
                                      resolve_uri(tracking_uri), "--host", "127.0.0.1", "--port", str(port)]))


# commands defined in their own modules register on `app` when imported
from . import cli_assist, cli_qda, cli_report  # noqa: E402,F401

def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
