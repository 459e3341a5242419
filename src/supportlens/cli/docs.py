"""The typer app as a click command, for the generated CLI reference (docs/cli.md, mkdocs-click).

mkdocs-click documents click commands; a typer app becomes one through ``typer.main.get_command``.
`supportlens.cli.app` registers every command.
"""

import typer

from supportlens.cli.app import app

command = typer.main.get_command(app)
