"""`supportlens predict`: label transcripts into a table, a .qdpx project or Parquet on Spark."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from supportlens.cli.common import announce_sending, console, fail, in_cli_terms, not_written, user_errors

if TYPE_CHECKING:
    from supportlens.inference.loop import FileFailure


def predict(
    inputs: Annotated[list[str], typer.Argument(help="Transcript files, folders (searched recursively) or globs")],
    model: Annotated[str, typer.Option(help="runs:/<id>/model, models:/<name>@<alias> or a model folder")],
    out_path: Annotated[
        str,
        typer.Option(
            "--out",
            help=(
                "Passages with labels: .csv, .jsonl or .parquet; or .qdpx for QDA software; with --engine spark a "
                "folder or URI for partitioned Parquet"
            ),
        ),
    ],
    summary: Annotated[Path | None, typer.Option(help="Per-transcript profile: .csv, .jsonl or .parquet")] = None,
    speaker: Annotated[str, typer.Option(help="Which turns to score: participant, interviewer or all")] = "participant",
    interviewer: Annotated[
        list[str] | None, typer.Option(help="Speaker name (or regex) of the interviewer; repeatable")
    ] = None,
    review_below: Annotated[
        float | None, typer.Option(help="Flag passages under this confidence (default: the model's threshold)")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip transcripts already in --out")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="int8 CPU inference, re-scoring near-ties in fp32: faster, changes under 1% of labels (see README)",
        ),
    ] = False,
    runtime: Annotated[
        str | None,
        typer.Option(
            help=(
                "Fine-tuned models on CPU: auto (ONNX Runtime when it loads, else torch), onnx or torch (default: "
                "$SUPPORTLENS_RUNTIME, else auto)"
            )
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help=(
                "Passages per forward pass (16 measured fastest for torch on 2 CPU cores; ONNX Runtime on CPU "
                "takes at most 4, and one per int8 call with --fast)"
            )
        ),
    ] = 16,
    text_column: Annotated[str, typer.Option(help="Text column for .csv/.xlsx inputs")] = "text",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for runs:/ and models:/")] = None,
    code_prefix: Annotated[
        str,
        typer.Option(help="With .qdpx output: put suggestions under new codes named PREFIX + code name, e.g. 'AI: '"),
    ] = "",
    min_confidence: Annotated[
        float, typer.Option(help="With .qdpx output: leave out suggestions below this confidence")
    ] = 0.0,
    engine: Annotated[
        str,
        typer.Option(
            help=(
                "local (this process) or spark (needs supportlens[spark] and Java; INPUT may be Parquet of id, "
                "text, format)"
            )
        ),
    ] = "local",
    master: Annotated[
        str, typer.Option(help="With --engine spark: the Spark master, e.g. local[4], yarn, spark://host:7077")
    ] = "local[2]",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help=(
                "With .qdpx output: replace an existing --out that holds only supportlens suggestions (a project "
                "with human codings is never replaced)"
            ),
        ),
    ] = False,
    second_opinion: Annotated[
        str | None,
        typer.Option(
            metavar="CONFIG",
            help=(
                "A language-model config (model.kind llm, e.g. configs/llm.yaml) asked about the passages flagged "
                "for review, and only those: its code, confidence and reason go into the columns second_label, "
                "second_confidence and second_reason (tables only)"
            ),
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Let a language model (--model or --second-opinion) be reached on a host other than this machine",
        ),
    ] = False,
) -> None:
    """Segment transcripts into passages and label each with a code and calibrated confidence.

    With a REFI-QDA project as input, or --out ending in .qdpx, the labels become suggested codings
    in a .qdpx project (a copy of the input project, or a new one made from the transcripts)."""
    from supportlens.cli.progress import FileProgress
    from supportlens.inference.label import (
        LabelOptions,
        calibration_warning,
        check_label_options,
        label,
        labels_into_qdpx,
        load_model,
    )
    from supportlens.inference.labeler import PredictError
    from supportlens.inference.predict import BatchReport
    from supportlens.qda.project import QdaError

    options = LabelOptions(
        summary=summary,
        speaker=speaker,
        interviewers=list(interviewer or []),
        review_below=review_below,
        resume=resume,
        device=device,
        fast=fast,
        runtime=runtime,
        batch_size=batch_size,
        text_column=text_column,
        tracking_uri=tracking_uri,
        code_prefix=code_prefix,
        min_confidence=min_confidence,
        overwrite=overwrite,
        engine=engine,
        master=master,
        second_opinion=second_opinion,
        allow_remote=allow_remote,
    )
    try:
        check_label_options(inputs, out_path, options, model_uri=model)  # before the model takes seconds to load
        loaded = load_model(model, options, on_send=announce_sending)
    except user_errors(PredictError, QdaError) as exc:
        fail(str(exc))
        return
    warning = calibration_warning(loaded, options)
    if warning:
        console.print("[bold yellow]warning:[/] " + escape(in_cli_terms(warning)), highlight=False)
    if engine == "spark":
        from supportlens.inference.spark import SparkReport

        try:
            done = label(inputs, loaded, out_path, options)
        except user_errors(PredictError) as exc:
            fail(str(exc))
            return
        assert isinstance(done, SparkReport)  # what label returns for engine="spark"
        for failure in done.failures:
            console.print(f"[bold red]failed:[/] {in_cli_terms(failure.reason)}", highlight=False)
        if done.output is None:
            fail(f"no transcript was labelled, so {not_written(out_path)}", code=1)
        console.print(
            f"{done.transcripts} transcripts labelled on Spark ({done.passages} passages, "
            f"{done.passages_per_second:.1f}/s) -> {done.output}",
            highlight=False,
        )
        raise typer.Exit(1 if done.failures else 0)
    progress = FileProgress(console)  # counts the files that will be read, not inputs that name none
    failed: list[FileFailure] = []  # listed once, at the end (or on an interruption)

    def on_failure(failure: FileFailure) -> None:
        failed.append(failure)
        progress.failed()

    try:
        try:
            report = label(
                inputs,
                loaded,
                out_path,
                options,
                on_progress=progress.update,
                on_failure=on_failure,
                on_total=progress.start,
            )
        finally:
            progress.stop()  # the bar ends above any message that follows
    except user_errors(PredictError, QdaError) as exc:
        fail(str(exc))
        return
    except KeyboardInterrupt:
        _list_failures(failed)  # not shown while the run went on
        if labels_into_qdpx(inputs, out_path):
            console.print(f"interrupted: {out_path} was not written; run the command again", highlight=False)
        elif progress.completed or resume:
            console.print(
                f"interrupted: the transcripts finished so far are kept; run the same command "
                f"with --resume to label the rest into {out_path}",
                highlight=False,
            )
        else:
            console.print(
                f"interrupted before any transcript was finished: {out_path} was not written; run the command again",
                highlight=False,
            )
        raise typer.Exit(130) from None
    assert isinstance(report, BatchReport)  # what label returns for the local engine
    for note in report.note_lines():  # a note many files share is said once
        console.print(f"note: {in_cli_terms(note)}", highlight=False)
    if report.output is not None:  # None: no transcript labelled, nothing written (said below)
        console.print(
            f"{report.files_done} transcripts labelled ({report.passages} passages, "
            f"{report.passages_per_second:.1f}/s)"
            + (f", {report.files_skipped} already done" if report.files_skipped else "")
            + f" -> {report.output}"
            + (f"; summary -> {report.summary}" if report.summary else ""),
            highlight=False,
        )
    _list_failures(report.failures)
    if report.output is None:
        fail(f"no transcript was labelled, so {not_written(out_path, summary)}", code=1)
    if report.failures:
        raise typer.Exit(1)


def _list_failures(failures: list[FileFailure]) -> None:
    """The files a batch could not label, each once: where a researcher scanning the end of a log looks."""
    if failures:
        console.print(f"[bold red]{len(failures)} file(s) failed:[/]", highlight=False)
        for failure in failures:
            console.print(f"  {in_cli_terms(failure.reason)}", highlight=False)
