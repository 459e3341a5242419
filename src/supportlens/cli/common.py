"""What every command shares: the consoles, failing with a message, user errors, notes."""

from __future__ import annotations

import ast
import os
import re
import shlex
from pathlib import Path
from typing import Any

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

    # ctx: typer's own click Context, private (typer._click) and moved between versions: not named here
    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and not self.count else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_show_flags_as_flags()
console = Console(stderr=True, soft_wrap=True)  # never break an error message mid-line
# tables are wide; when piped or captured (no terminal) do not squeeze them to 80 columns
out = Console() if Console().is_terminal else Console(width=240)


def fail(message: str, code: int = 2) -> None:
    """Print an error (a library's, in the command line's terms) and exit with ``code``."""
    console.print(f"[bold red]error:[/] {in_cli_terms(message)}", highlight=False)
    raise typer.Exit(code)


# The library's messages speak to a notebook user: what to change is a parameter or a config key,
# written in backticks (`speaker='all'`, `resume=True`, `data.text_column='excerpt'` in the config).
# A command-line user changes an option instead; this is where one is turned into the other.
_OPTIONS = {
    "add_data": "--add-data",
    "allow_remote": "--allow-remote",
    "by": "--by",
    "code_map": "--code-map",
    "cv": "--cv",
    "data_path": "--data",
    "device": "--device",
    "engine": "--engine",
    "extra_data": "--add-data",
    "fast": "--fast",
    "holdout": "--holdout",
    "human_weight": "--human-weight",
    "include_suggestions": "--include-suggestions",
    "init_from": "--init-from",
    "model": "--model",
    "offer_blank": "--offer-blank",
    "out": "--out",
    "output": "--out",
    "overrides": "--set",
    "overwrite": "--overwrite",
    "pool": "--pool",
    "resume": "--resume",
    "review_below": "--review-below",
    "runtime": "--runtime",
    "second_opinion": "--second-opinion",
    "skip": "--skip",
    "speaker": "--speaker",
    "summary": "--summary",
    "teacher": "--teacher",
    "text_column": "--text-column",
    "tracking_uri": "--tracking-uri",
    "user_a": "--user-a",
    "user_b": "--user-b",
}
# the data settings `evaluate` takes as options; train and audit take them as --set data.<key>=...
_EVALUATE_OPTIONS = {"text_column": "--text-column", "label_column": "--label-column", "group_column": "--group-column"}
_LITERAL = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_PHRASES = (  # whole phrases whose option is not one parameter
    (re.compile(r"give the (config|codebook) a full path"), r"give --\1 a full path"),
    (re.compile(r"`(config|codebook)=([^`]*)`"), r"--\1 \2"),  # bare, `codebook` names a bundled file
    (re.compile(r"use another codebook"), "pass another with --codebook"),
    (re.compile(r"use a stronger config\b"), "use a stronger --config"),
    (re.compile(r"`Labeler\(review_below=X\)`"), "'supportlens predict --review-below X'"),
    (re.compile(r"student \(`fast=True`\):"), "--fast student:"),
    (
        re.compile(rf"`rules=SpeakerRules\.with_interviewers\(\[({_LITERAL})\]\)`"),
        lambda m: f"--interviewer {ast.literal_eval(m[1])}",
    ),
)
_SETTING = re.compile(rf"`data\.(\w+)(?:=({_LITERAL}))?` in the config")
_PARAMETER = re.compile(r"`(\w+)(?:=([^`]*))?`")


def _setting(match: re.Match[str]) -> str:
    """```data.text_column='excerpt'` in the config`` as the options of each command that reads
    coded data: ``--set data.text_column=excerpt (train, audit) or --text-column excerpt (evaluate)``."""
    key, value = match[1], ast.literal_eval(match[2]) if match[2] else "NAME"
    option = _EVALUATE_OPTIONS.get(key)
    return f"--set {shlex.quote(f'data.{key}={value}')} (train, audit)" + (
        f" or {option} {shlex.quote(value)} (evaluate)" if option else ""
    )


def _option(match: re.Match[str]) -> str:
    """`name`, `name=True`, `name='value'`, `name=[...]` as the option a command takes instead."""
    name, value = match[1], match[2]
    flag = _OPTIONS.get(name)
    if flag is None:  # a name no command takes as an option: left as the library wrote it
        return match[0]
    if value is None or value == "True":
        return flag
    try:
        given = ast.literal_eval(value)
    except (ValueError, SyntaxError):  # a placeholder such as MAP.yaml or X
        given = value
    if isinstance(given, list):  # overrides=['a=1', 'b=2']: --set a=1 --set b=2
        return " ".join(f"{flag} {item}" for item in given)
    return f"{flag} {given}"


def in_cli_terms(message: str) -> str:
    """A library message (error, note, log line) with each parameter or config key it tells the
    user to change named as the command-line option that changes it."""
    for pattern, replacement in _PHRASES:
        message = pattern.sub(replacement, message)
    return _PARAMETER.sub(_option, _SETTING.sub(_setting, message))


def announce_sending(message: str) -> None:
    """A language model's word, before it sends passages to a remote host, of what goes where."""
    console.print(f"[bold yellow]sending:[/] {escape(in_cli_terms(message))}", highlight=False)


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
    message = in_cli_terms(message)
    if message.startswith("warning:"):
        return "[bold yellow]warning:[/]" + escape(message[len("warning:") :])
    return escape(message)


def user_errors(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """The library's errors that a user's input causes (shown as a message, not a traceback), and
    ``more`` a command adds: ``except user_errors(SheetError) as exc``."""
    from supportlens.codebook import CodebookError
    from supportlens.config import ConfigError
    from supportlens.corpus.dataset import DataError
    from supportlens.corpus.splits import SplitError
    from supportlens.models.base import ModelLoadError
    from supportlens.transcripts.segmentation import SpeakerRulesError

    return (ConfigError, CodebookError, DataError, ModelLoadError, SplitError, SpeakerRulesError, *more)
