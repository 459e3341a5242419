"""The ``supportlens`` application: every command registered here, by name, from its module.

Command modules import only `supportlens.cli.common` and the library; nothing imports this
module but the entry point, so the commands and the app form no import circle.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from supportlens.cli import assist, distil, predict, project, qda, report, train
from supportlens.cli.common import console, out

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Code implementation-support interviews as push, pull, co-creation or none.",
)

for name, command in (
    ("train", train.train),
    ("adapt", train.adapt),
    ("evaluate", train.evaluate),
    ("runs", train.runs),
    ("predict", predict.predict),
    ("distil", distil.distil),
    ("ui", train.ui),
    ("init", project.init),
    ("import", qda.import_project),
    ("export-codebook", qda.export_codebook_command),
    ("agreement", assist.agreement),
    ("next", assist.next_),
    ("audit", assist.audit),
    ("report", report.report),
):
    app.command(name)(command)


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
def _setup(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the installed version and exit"),
    ] = False,
) -> None:
    """Say which bundled file a command used, when the folder it runs in has none of its own.
    (The libraries' own progress bars are turned off in `supportlens.cli.common`.)"""
    notes = logging.getLogger("supportlens.resources")
    if not any(isinstance(h, _ConsoleNotes) for h in notes.handlers):
        notes.addHandler(_ConsoleNotes())
        notes.setLevel(logging.INFO)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
