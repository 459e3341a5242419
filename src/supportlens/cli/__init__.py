"""The command line: a typer app (`app`) whose commands are thin calls into the library.

`app.py` registers every command; one module per command group (`train`, `predict`, `distil`,
`project`, `qda`, `assist`, `report`) holds its commands; `common.py` what they share; `progress.py` the
progress display; `docs.py` the click command the docs site reads. Imports anything below it.
"""

from supportlens.cli.app import app, main

__all__ = ["app", "main"]
