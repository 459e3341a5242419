"""``supportlens report``: predict's output as one self-contained HTML page to read and review."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from supportlens.cli.common import console, fail, in_cli_terms, not_written, out, user_errors
from supportlens.config import DEFAULT_CODEBOOK


def report(
    predictions: Annotated[Path, typer.Argument(help="Output of supportlens predict: .csv, .jsonl or .parquet")],
    out_path: Annotated[Path, typer.Option("--out", help="The HTML page to write (.html)")],
    codebook: Annotated[
        Path | None, typer.Option(help=f"Codebook YAML (default: the --model's, else {DEFAULT_CODEBOOK})")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model whose saved codebook to use: a folder, runs:/… or models:/…")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for runs:/ and models:/")] = None,
    title: Annotated[str | None, typer.Option(help="Page title (default: names the predictions file)")] = None,
) -> None:
    """Write predict's output as a self-contained HTML page to read and review.

    The page holds the transcripts shaded by code and confidence, a legend, per-transcript
    profiles and the passages flagged for review. The unscored turns (by default, the
    interviewer's questions) are read again from the transcripts and shown in grey between them."""
    from supportlens.inference.report import ReportError, build_report

    try:
        summary = build_report(
            predictions, out_path, codebook=codebook, model=model, tracking_uri=tracking_uri, title=title
        )
    except user_errors(ReportError) as exc:  # e.g. predictions with no passages: no page
        fail(f"{exc}; {not_written(out_path)}")
        return
    out.print(
        f"report: {summary.output} ({summary.transcripts} transcripts, {summary.passages} passages, "
        f"{summary.needs_review} flagged for review"
        + (f", the second opinion differs on {summary.disagreements}" if summary.disagreements is not None else "")
        + ")",
        highlight=False,
    )
    # one line per transcript would bury the rest when a whole batch was labelled elsewhere
    for note in summary.notes[:3]:
        console.print(f"note: {in_cli_terms(note)}", highlight=False, markup=False)
    if len(summary.notes) > 3:
        console.print(
            f"note: and {len(summary.notes) - 3} more transcripts without their unscored turns (the page names each)",
            highlight=False,
        )
    console.print(f"open it in a browser: file://{summary.output.resolve()}", highlight=False)
