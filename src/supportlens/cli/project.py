"""`supportlens init`: a project folder to start from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from supportlens.cli.common import fail, out

if TYPE_CHECKING:
    pass


def init(
    folder: Annotated[Path, typer.Argument(help="The project folder to create (new, or empty)")],
) -> None:
    """Create a project folder to work in, with the codebook and configs to edit.

    It also holds data/ with the sample transcripts and a .gitignore for what runs write (MLflow's
    store, outputs/). An existing folder that is not empty is refused, never written over."""
    from supportlens.resources.project import ProjectError, init_project

    try:
        written = init_project(folder)
    except ProjectError as exc:
        fail(str(exc))
        return
    out.print(f"created {folder} ({len(written)} files: configs/, data/, .gitignore). Next:", highlight=False)
    out.print(
        f"  cd {folder}   # edit configs/codebook.yaml; coded excerpts go in data/ (data/README.md)\n"
        "  supportlens train --data data/coded.csv --register mymodel   # no --data: the starter corpus\n"
        "  supportlens predict data/transcripts --model models:/mymodel@champion --out outputs/labels.csv\n"
        "  supportlens report outputs/labels.csv --out outputs/report.html",
        highlight=False,
        markup=False,
    )
