"""`supportlens distil`: a language model labels uncoded transcripts, a fast classifier learns from it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from supportlens.cli.common import announce_sending, console, fail, in_cli_terms, out, styled, user_errors

if TYPE_CHECKING:
    from supportlens.inference.loop import FileFailure


def distil(
    teacher: Annotated[
        str, typer.Option(metavar="CONFIG", help="The teacher: a language-model config (model.kind llm), e.g. llm")
    ],
    pool: Annotated[
        list[str],
        typer.Option(
            metavar="TRANSCRIPTS",
            help="Uncoded transcripts for the teacher to label: a file, folder or glob; repeatable",
        ),
    ],
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="The student's config: a fast classifier (default, finetune, tfidf, ...)"),
    ] = Path("configs/default.yaml"),
    add_data: Annotated[
        list[str] | None,
        typer.Option(
            "--add-data",
            help=(
                "Passages a person coded (coded file or filled coding sheet); they count --human-weight times a "
                "teacher's code, and both models are compared with them; repeatable"
            ),
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the teacher's labels, its training rows and distil.json")
    ] = Path("outputs/distil"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Go on from an interrupted run: transcripts already labelled are kept")
    ] = False,
    human_weight: Annotated[float, typer.Option(help="How many teacher codes one human code counts as")] = 3.0,
    holdout: Annotated[
        float,
        typer.Option(help="Share of the pool's transcripts kept from the student, to compare it with the teacher"),
    ] = 0.25,
    speaker: Annotated[str, typer.Option(help="Which turns to label: participant, interviewer or all")] = "participant",
    interviewer: Annotated[
        list[str] | None, typer.Option(help="Speaker name (or regex) of the interviewer; repeatable")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column for .csv/.xlsx transcripts")] = "text",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key of the student's config, e.g. train.epochs=3")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ] = None,
    register: Annotated[str | None, typer.Option(help="Register the student under this name and set the alias")] = None,
    no_track: Annotated[bool, typer.Option("--no-track", help="Do not log to MLflow")] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Let the teacher be reached on a host other than this machine")
    ] = False,
) -> None:
    """Label uncoded transcripts with a language model and train a fast classifier on its codes.

    The language model is the teacher, the fast classifier the student; human codes (--add-data)
    count more than the teacher's.

    The teacher's answers are cached and each labelled transcript is kept, so an interrupted run
    goes on with --resume and sends no passage twice. Passages the teacher could not code are left
    out and counted. Prints student-vs-teacher agreement on held-out pool transcripts and, with
    --add-data, teacher-vs-human and student-vs-human (cross-fitted) agreement."""
    from supportlens.cli.progress import FileProgress
    from supportlens.config import load_config
    from supportlens.inference.labeler import PredictError
    from supportlens.training.distil_teacher import DistilOptions
    from supportlens.training.distil_teacher import distil as run_distil

    options = DistilOptions(
        pool=list(pool),
        out=out_dir,
        add_data=list(add_data or []),
        human_weight=human_weight,
        holdout=holdout,
        resume=resume,
        speaker=speaker,
        interviewers=list(interviewer or []),
        text_column=text_column,
        allow_remote=allow_remote,
    )
    progress = FileProgress(console, label="teacher labelling")
    failed: list[FileFailure] = []

    def on_failure(failure: FileFailure) -> None:
        failed.append(failure)
        progress.failed()

    def log(message: str) -> None:
        progress.stop()  # a line from training ends the teacher's bar first
        console.print(styled(message), highlight=False)

    try:
        try:
            result = run_distil(
                load_config(teacher),
                load_config(config, set_),
                options,
                log=log,
                track=not no_track,
                tracking_uri=tracking_uri,
                register=register,
                on_send=announce_sending,
                on_progress=progress.update,
                on_failure=on_failure,
                on_total=progress.start,
            )
        finally:
            progress.stop()
    except user_errors(PredictError) as exc:
        fail(str(exc))
        return
    except KeyboardInterrupt:
        console.print(
            f"interrupted: the transcripts the teacher finished are kept in {out_dir}; run the same command with "
            "--resume to go on (answers already received are cached and not asked again)",
            highlight=False,
        )
        raise typer.Exit(130) from None
    if failed:
        console.print(f"[bold red]{len(failed)} file(s) failed:[/]", highlight=False)
        for failure in failed:
            console.print(f"  {in_cli_terms(failure.reason)}", highlight=False)
    out.print(f"student model folder: {result.train.model_dir}")
    if result.train.model_uri:
        out.print(f"student model URI:    {result.train.model_uri}")
    if failed:
        raise typer.Exit(1)
