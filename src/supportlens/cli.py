"""The ``supportlens`` command line: thin wrappers over the library API."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# The CLI draws its own progress bar; the libraries' bars ("Loading weights", "Writing model shards",
# MLflow's "Downloading artifacts") only repeat on every command. Set before they are imported;
# a user's own setting of these variables wins.
for _variable, _value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
    os.environ.setdefault(_variable, _value)


def _show_flags_as_flags() -> None:
    """typer 0.29's rich help gives every flag a type (`--no-track <bool>`, even `--help <bool>`),
    as if it took a value, and `--no-track false` then fails. Its plain help shows none: so do we,
    for every command at once (a flag added later included)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)  # the typer versions that show types
    if shown is None:
        return

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag and not self.count else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_show_flags_as_flags()
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Code implementation-support interviews as push, pull, co-creation or none.")
console = Console(stderr=True, soft_wrap=True)  # never break an error message mid-line
# tables are wide; when piped or captured (no terminal) do not squeeze them to 80 columns
out = Console() if Console().is_terminal else Console(width=240)

if TYPE_CHECKING:  # the CLI imports the library lazily, so that --help is quick
    from .predict import FileFailure


def _print_version(value: bool) -> None:
    """``--version``: the installed distribution's version, as pip knows it."""
    if value:
        from importlib.metadata import version

        out.print(f"supportlens {version('supportlens')}", highlight=False)
        raise typer.Exit()


class _ConsoleNotes(logging.Handler):
    """The library's notes (`resources`: the bundled file a command used) as ``note:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"note: {escape(record.getMessage())}", highlight=False)


@app.callback()
def _quiet_libraries(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the installed version and exit")] = False,
) -> None:
    """Our own progress bars only: transformers' per-load "Loading weights" bars and MLflow's
    per-file download bars are noise here. Set through the libraries' environment variables
    (a user's explicit setting wins), read when they are first imported: importing transformers
    here would add more than a second to every command, --help included. And say which bundled
    file a command used, when the folder it runs in has none of its own."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow the hub's
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    notes = logging.getLogger("supportlens.resources")
    if not any(isinstance(h, _ConsoleNotes) for h in notes.handlers):
        notes.addHandler(_ConsoleNotes())
        notes.setLevel(logging.INFO)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _not_written(*paths: str | os.PathLike | None) -> str:
    """Tell a user whose run produced nothing that their files are safe: an earlier output is
    left as it was, byte for byte (every output is written whole, or not at all)."""
    said = []
    for path in (Path(p) for p in paths if p is not None):
        if path.is_dir():  # evaluate --out: a folder of files
            said.append(f"nothing was written to {path} (its files are unchanged)")
        else:
            said.append(f"{path} was not written" + (" (it is unchanged)" if path.exists() else ""))
    return "; ".join(said)


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
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config, or a bundled config's name (default, tfidf, finetune, ...)")] = Path("configs/default.yaml"),
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
        # --out is written below, once --against has worked too: a failed run leaves it as it was
        result = evaluate_file(model, data, codebook, None, tracking_uri, log_run=not no_log, data_cfg=data_cfg)
    except _user_errors() as exc:
        _fail(str(exc) + (f"; {_not_written(out_dir)}" if out_dir else ""))
        return
    other = None
    if against:
        try:
            other = evaluate_file(against, data, codebook, None, tracking_uri, log_run=not no_log,
                                  data_cfg=data_cfg)
            paired = paired_difference(result, other)
        except (*_user_errors(), ValueError) as exc:
            _fail(f"--against {against}: {exc}" + (f"; {_not_written(out_dir)}" if out_dir else ""))
            return
    if out_dir:
        result.write(out_dir)
        if other is not None:
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
    if out_dir:  # where it wrote and what it logged, to find both again
        out.print(f"evaluation files -> {out_dir}" + (" (against.json too)" if other is not None else ""),
                  highlight=False)
    for name, evaluation in ((model, result), (against, other)):
        if evaluation is not None and evaluation.run_id:
            out.print(f"logged {name} on {data}: MLflow run {evaluation.run_id} in experiment "
                      f"{evaluation.experiment!r} (supportlens runs --experiment {evaluation.experiment})",
                      highlight=False)


# `runs` columns from the most telling; the least telling are left out first where the width is short
_RUNS_KEPT = ("run_id", "run_name", "macro_f1", "kappa")
_RUNS_RANK = (*_RUNS_KEPT, "n", "scored_on", "model_kind", "alpha", "cv_macro_f1", "f1_", "started",
              "train_seconds", "data_digest")


def _runs_column_rank(column: str, kind: str) -> int:
    """Where a column stands in `_RUNS_RANK` (per-code F1 columns by their prefix; unknown ones last)."""
    if kind == "train" and column == "scored_on":  # "test split" on every training run
        return len(_RUNS_RANK)
    key = "f1_" if column.startswith("f1_") else column
    return _RUNS_RANK.index(key) if key in _RUNS_RANK else len(_RUNS_RANK)


def _table_width() -> int:
    """The width a table may take: the terminal's; without a terminal $COLUMNS where set (e.g.
    COLUMNS=100 in a script), else `out`'s 240, so that a piped table is not squeezed to 80."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if not out.is_terminal and columns.isdigit() else out.width


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
    width = _table_width()
    for kind in kinds:
        part = table[table["kind"] == kind].drop(columns="kind")
        cells = part.map(lambda v: "" if v is None or pd.isna(v) else f"{v:.3f}" if isinstance(v, float) else str(v))
        columns = list(part.columns)
        while True:  # leave out the least telling columns until the table fits the width
            view = Table(title=titles.get(kind, f"{kind} runs"), title_justify="left")
            for column in columns:
                view.add_column(column, no_wrap=column == "run_id")  # whole: runs:/<run_id>/model needs it
            for row in cells[columns].itertuples(index=False):
                view.add_row(*row)
            spare = [c for c in columns if c not in _RUNS_KEPT]
            if out.measure(view, options=out.options.update(width=10_000)).maximum <= width or not spare:
                break
            columns.remove(max(spare, key=lambda c: _runs_column_rank(c, kind)))
        if len(columns) < len(part.columns):
            view.caption = (f"left out to fit {width} columns: {', '.join(c for c in part.columns if c not in columns)}"
                            " (--format csv has every column)")
            view.caption_justify = "left"
        out.print(view, width=width)  # what still does not fit wraps


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
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With .qdpx output: replace an existing --out that holds only supportlens suggestions (a project with human codings is never replaced)")] = False,
) -> None:
    """Segment transcripts into passages and label each with a code and calibrated confidence.

    With a REFI-QDA project as input, or --out ending in .qdpx, the labels become suggested codings
    in a .qdpx project (a copy of the input project, or a new one made from the transcripts)."""
    from .cli_progress import FileProgress
    from .models import load_classifier
    from .predict import FileFailure, Labeler, PredictError, check_options, predict_files
    from .qda import QdaError, check_qdpx_options
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
        elif to_qda:  # an existing project is refused before the model loads, not after scoring
            check_qdpx_options(inputs, out_path, speaker, overwrite=overwrite, cli_model=model)
        model_dir = fetch_model_dir(model, tracking_uri)
        loaded = load_classifier(model_dir)
        labeler = Labeler(loaded, review_below=review_below, device=device, fast=fast, batch_size=batch_size,
                          runtime=runtime)
    except (*_user_errors(), PredictError, QdaError) as exc:
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
        for failure in done.failures:
            console.print(f"[bold red]failed:[/] {failure.reason}", highlight=False)
        if done.output is None:
            _fail(f"no transcript was labelled, so {_not_written(out_path)}", code=1)
        console.print(f"{done.transcripts} transcripts labelled on Spark ({done.passages} passages, "
                      f"{done.passages_per_second:.1f}/s) -> {done.output}", highlight=False)
        raise typer.Exit(1 if done.failures else 0)
    progress = FileProgress(console)  # counts the files that will be read, not inputs that name none
    failed: list[FileFailure] = []  # listed once, at the end (or on an interruption)

    def on_failure(failure: FileFailure) -> None:
        failed.append(failure)
        progress.failed()

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
                                         text_column=text_column, overwrite=overwrite, on_progress=progress.update,
                                         on_failure=on_failure, on_total=progress.start)
            else:
                report = predict_files(inputs, labeler, out_path, summary=summary, speaker=speaker, resume=resume,
                                       rules=rules, on_progress=progress.update, on_failure=on_failure,
                                       text_column=text_column, on_total=progress.start)
        finally:
            progress.stop()  # the bar ends above any message that follows
    except (PredictError, QdaError, *_user_errors()) as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:
        _list_failures(failed)  # not shown while the run went on
        if to_qda:
            console.print(f"interrupted: {out_path} was not written; run the command again", highlight=False)
        elif progress.completed or resume:
            console.print(f"interrupted: the transcripts finished so far are kept; run the same command "
                          f"with --resume to label the rest into {out_path}", highlight=False)
        else:
            console.print(f"interrupted before any transcript was finished: {out_path} was not written; "
                          "run the command again", highlight=False)
        raise typer.Exit(130) from None
    for note in report.note_lines():  # a note many files share is said once
        console.print(f"note: {note}", highlight=False)
    if report.output is not None:  # None: no transcript labelled, nothing written (said below)
        console.print(f"{report.files_done} transcripts labelled ({report.passages} passages, "
                      f"{report.passages_per_second:.1f}/s)"
                      + (f", {report.files_skipped} already done" if report.files_skipped else "")
                      + f" -> {report.output}" + (f"; summary -> {report.summary}" if report.summary else ""),
                      highlight=False)
    _list_failures(report.failures)
    if report.output is None:
        _fail(f"no transcript was labelled, so {_not_written(out_path, summary)}", code=1)
    if report.failures:
        raise typer.Exit(1)


def _list_failures(failures: list[FileFailure]) -> None:
    """The files a batch could not label, each once: where a researcher scanning the end of a log looks."""
    if failures:
        console.print(f"[bold red]{len(failures)} file(s) failed:[/]", highlight=False)
        for failure in failures:
            console.print(f"  {failure.reason}", highlight=False)


@app.command()
def ui(
    tracking_uri: Annotated[Optional[str], typer.Option(help="Backend store URI")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 5000,
) -> None:
    """Open the MLflow UI on the tracking store."""
    from .tracking import resolve_uri

    raise typer.Exit(subprocess.call([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
                                      resolve_uri(tracking_uri), "--host", "127.0.0.1", "--port", str(port)]))


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The project folder to create (new, or empty)")],
) -> None:
    """Create a project folder to work in, with the codebook and configs to edit.

    It also holds data/ with the sample transcripts and a .gitignore for what runs write (MLflow's
    store, outputs/). An existing folder that is not empty is refused, never written over."""
    from .project import ProjectError, init_project

    try:
        written = init_project(folder)
    except ProjectError as exc:
        _fail(str(exc))
        return
    out.print(f"created {folder} ({len(written)} files: configs/, data/, .gitignore). Next:", highlight=False)
    out.print(f"  cd {folder}   # edit configs/codebook.yaml; coded excerpts go in data/ (data/README.md)\n"
              "  supportlens train --data data/coded.csv --register mymodel   # no --data: the starter corpus\n"
              "  supportlens predict data/transcripts --model models:/mymodel@champion --out outputs/labels.csv\n"
              "  supportlens report outputs/labels.csv --out outputs/report.html", highlight=False, markup=False)


# commands defined in their own modules register on `app` when imported
from . import cli_assist, cli_qda, cli_report  # noqa: E402,F401

def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
