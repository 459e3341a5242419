"""The typer app as a click command, for the generated CLI reference (docs/cli.md, mkdocs-click).

mkdocs-click documents click commands; a typer app becomes one through ``typer.main.get_command``.
Importing ``supportlens.cli`` registers every command group (cli_assist, cli_qda, cli_report) first.
"""

import typer

from .cli import app

command = typer.main.get_command(app)
