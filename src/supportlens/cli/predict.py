"""`supportlens predict`: label transcripts into a table, a .qdpx project or Parquet on Spark."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from supportlens.cli.common import console, fail, not_written, user_errors

if TYPE_CHECKING:
    from supportlens.inference.predict import FileFailure



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
    from supportlens.cli.progress import FileProgress
    from supportlens.models import load_classifier
    from supportlens.inference.predict import Labeler, PredictError, check_options, predict_files
    from supportlens.qda.refi import QdaError, check_qdpx_options
    from supportlens.transcripts.segmentation import SpeakerRules
    from supportlens.tracking import fetch_model_dir

    to_qda = Path(out_path).suffix.lower() == ".qdpx" or any(i.lower().endswith(".qdpx") for i in inputs)
    if engine not in ("local", "spark"):
        fail(f"--engine must be local or spark, got {engine!r}")
    if runtime is not None and runtime not in ("auto", "onnx", "torch"):
        fail(f"--runtime must be auto, onnx or torch, got {runtime!r}")
    if review_below is not None and not 0.0 <= review_below <= 1.0:
        fail(f"--review-below is a confidence between 0 and 1, got {review_below}")
    if engine == "spark" and (to_qda or summary is not None or resume):
        fail("--engine spark writes partitioned Parquet: .qdpx, --summary and --resume need --engine local")
    if to_qda and (summary is not None or resume):
        fail("--summary and --resume are not available with a .qdpx project; label into .csv/.jsonl for them")
    try:
        if engine == "local" and not to_qda:
            check_options(out_path, summary, speaker)  # before the model takes seconds to load
        elif to_qda:  # an existing project is refused before the model loads, not after scoring
            check_qdpx_options(inputs, out_path, speaker, overwrite=overwrite, cli_model=model)
        model_dir = fetch_model_dir(model, tracking_uri)
        loaded = load_classifier(model_dir)
        labeler = Labeler(loaded, review_below=review_below, device=device, fast=fast, batch_size=batch_size,
                          runtime=runtime)
    except (*user_errors(), PredictError, QdaError) as exc:
        fail(str(exc))
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
        from supportlens.inference.spark import LabelerSettings, predict_spark

        try:
            done = predict_spark(inputs, model_dir, out_path, master=master, speaker=speaker, rules=rules,
                                 settings=LabelerSettings(review_below, fast, batch_size, device),
                                 table_text_column=text_column)
        except (PredictError, *user_errors()) as exc:
            fail(str(exc))
            return
        for failure in done.failures:
            console.print(f"[bold red]failed:[/] {failure.reason}", highlight=False)
        if done.output is None:
            fail(f"no transcript was labelled, so {not_written(out_path)}", code=1)
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
                from supportlens.codebook import load_codebook
                from supportlens.qda.refi import predict_to_qdpx

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
    except (PredictError, QdaError, *user_errors()) as exc:
        fail(str(exc))
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
        fail(f"no transcript was labelled, so {not_written(out_path, summary)}", code=1)
    if report.failures:
        raise typer.Exit(1)


def _list_failures(failures: list[FileFailure]) -> None:
    """The files a batch could not label, each once: where a researcher scanning the end of a log looks."""
    if failures:
        console.print(f"[bold red]{len(failures)} file(s) failed:[/]", highlight=False)
        for failure in failures:
            console.print(f"  {failure.reason}", highlight=False)


