"""What every command shares: the consoles, failing with a message, user errors, notes."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

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
console = Console(stderr=True, soft_wrap=True)  # never break an error message mid-line
# tables are wide; when piped or captured (no terminal) do not squeeze them to 80 columns
out = Console() if Console().is_terminal else Console(width=240)

def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def not_written(*paths: str | os.PathLike | None) -> str:
    """Tell a user whose run produced nothing that their files are safe: an earlier output is
    left as it was, byte for byte (every output is written whole, or not at all)."""
    said = []
    for path in (Path(p) for p in paths if p is not None):
        if path.is_dir():  # evaluate --out: a folder of files
            said.append(f"nothing was written to {path} (its files are unchanged)")
        else:
            said.append(f"{path} was not written" + (" (it is unchanged)" if path.exists() else ""))
    return "; ".join(said)


def styled(message: str) -> str:
    """A library log line for the console: its text as written (a path may hold '['), with a
    leading 'warning:' in colour so that it stands out from the progress lines."""
    if message.startswith("warning:"):
        return "[bold yellow]warning:[/]" + escape(message[len("warning:"):])
    return escape(message)


def user_errors() -> tuple[type[Exception], ...]:
    from supportlens.codebook import CodebookError
    from supportlens.config import ConfigError
    from supportlens.corpus.dataset import DataError
    from supportlens.models.base import ModelLoadError
    from supportlens.corpus.splits import SplitError

    return (ConfigError, CodebookError, DataError, ModelLoadError, SplitError)


