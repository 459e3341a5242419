"""CLI for REFI-QDA projects: ``supportlens import`` and ``supportlens export-codebook``.

Labelling a project (``supportlens predict project.qdpx --out suggestions.qdpx``) is part of the
``predict`` command; these are the other two steps of the round trip. Both call into `qda`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from supportlens.cli.common import console, fail, in_cli_terms, not_written, out
from supportlens.config import DEFAULT_CODEBOOK


def import_project(
    project: Annotated[
        Path, typer.Argument(help="REFI-QDA project exported by NVivo, ATLAS.ti, MAXQDA or QualCoder (.qdpx)")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Coded excerpts to write: .csv, .jsonl or .xlsx")],
    code_map: Annotated[
        Path | None, typer.Option(help="YAML {project code name or 'Parent > Child': codebook label or null}")
    ] = None,
    uncoded_as: Annotated[
        str | None, typer.Option(help="Add participant passages no mapped code covers, with this code (e.g. none)")
    ] = None,
    codebook: Annotated[str, typer.Option(help="Codebook YAML the project's codes are mapped to")] = DEFAULT_CODEBOOK,
    interviewer: Annotated[
        list[str] | None, typer.Option(help="Speaker name (or regex) of the interviewer; repeatable")
    ] = None,
    include_suggestions: Annotated[
        bool,
        typer.Option(
            "--include-suggestions", help="Also read supportlens' own suggested codings (unreviewed model output)"
        ),
    ] = False,
) -> None:
    """Turn the coded text selections of a REFI-QDA project into coded excerpts for training."""
    from supportlens.codebook import CodebookError, load_codebook
    from supportlens.qda.importing import import_qdpx, load_code_map, write_excerpts
    from supportlens.qda.project import QdaError
    from supportlens.transcripts.segmentation import SpeakerRules, SpeakerRulesError

    try:
        rules = SpeakerRules.with_interviewers(interviewer)
        book = load_codebook(codebook)
        mapping = load_code_map(code_map) if code_map else None
        frame, report = import_qdpx(
            project,
            book,
            code_map=mapping,
            uncoded_as=uncoded_as,
            rules=rules,
            include_suggestions=include_suggestions,
            map_source=str(code_map) if code_map else "code map",
        )
        if frame.empty:
            console.print(in_cli_terms(report.summary()), highlight=False)
            fail(f"{project}: no coded selection maps to the codebook, so {not_written(out_path)}")
        write_excerpts(frame, out_path)
    except (CodebookError, QdaError, SpeakerRulesError) as exc:
        fail(f"{exc}; {not_written(out_path)}")
        return
    codes = Table(title="project codes -> codebook")
    codes.add_column("project code")
    codes.add_column("label")
    for path, label in report.code_mapping.items():
        codes.add_row(path, label or "-")
    out.print(codes)
    console.print(in_cli_terms(report.summary()), highlight=False)
    out.print(f"{len(frame)} excerpts -> {out_path}", highlight=False)


def export_codebook_command(
    out_path: Annotated[Path, typer.Option("--out", help="REFI-QDA codebook to write (.qdc)")],
    codebook: Annotated[str, typer.Option(help="Codebook YAML")] = DEFAULT_CODEBOOK,
) -> None:
    """Write the codebook as a REFI-QDA .qdc file (definitions and when to use each code included)."""
    from supportlens.codebook import CodebookError, load_codebook
    from supportlens.qda.exporting import export_codebook
    from supportlens.qda.project import QdaError

    if out_path.suffix.lower() != ".qdc":
        fail(f"--out must end in .qdc, got {out_path.name!r}")
    try:
        book = load_codebook(codebook)
        export_codebook(book, out_path)
    except (CodebookError, QdaError) as exc:  # e.g. a codebook that does not load: no .qdc at all
        fail(f"{exc}; {not_written(out_path)}")
        return
    out.print(f"{len(book.codes)} codes -> {out_path}", highlight=False)
