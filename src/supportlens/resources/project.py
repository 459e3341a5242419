"""``supportlens init``: a new project folder, the way ``kedro new`` or ``spacy init config`` make one.

The folder holds copies of the bundled codebook and configs to edit (the default config's two
members included, so that the whole default recipe can be changed), the sample transcripts to try
``predict`` on, a data/README.md saying where coded data goes, and a .gitignore for what runs
write. The starter corpus is not copied (1.7 MB): the default config finds the bundled one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from supportlens.resources import bundled_file, sample_transcripts

# the default config (configs/default.yaml) is the mean of embed-prior and zeroshot; tfidf trains in seconds
CONFIGS = (
    "configs/codebook.yaml",
    "configs/default.yaml",
    "configs/embed-prior.yaml",
    "configs/zeroshot.yaml",
    "configs/tfidf.yaml",
    "configs/llm.yaml",  # a language model the researcher runs (docs/llm.md); loopback only unless allowed
)

GITIGNORE = """\
# written by supportlens runs (the MLflow store, trained models, reports) and the environment
.venv/
mlflow.db
mlruns/
mlartifacts/
outputs/
"""

DATA_README = """\
# data

Put your coded excerpts here (CSV, TSV, JSONL or XLSX: one row per excerpt, with the columns named
in configs/default.yaml under `data:`, by default `text`, `label` and `interview_id`), e.g.
data/coded.csv, then run `supportlens train --data data/coded.csv`.

transcripts/ holds six sample transcripts to try `supportlens predict` on. They, and the starter
corpus that `supportlens train` uses without --data, are authored and illustrative, not real
participant data.
"""


class ProjectError(ValueError):
    """The project folder cannot be created (it exists and holds files)."""


def init_project(folder: str | Path) -> list[Path]:
    """Create the project folder ``folder``; returns the files written, relative to it.

    Refuses a folder that exists and is not empty: init never writes over a user's files."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ProjectError(
            f"{folder} already exists and is not empty; supportlens init only creates a "
            "new (or empty) folder, so that it never writes over your files"
        )
    sources: dict[str, Path] = {}
    for name in CONFIGS:
        found = bundled_file(name)
        if found is None:  # pragma: no cover - a broken installation
            raise ProjectError(f"{name} is missing from the installed package; reinstall supportlens")
        sources[name] = found
    sources.update({f"data/transcripts/{p.name}": p for p in sample_transcripts()})
    written = []
    for name, source in sources.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(Path(name))
    for name, text in (("data/README.md", DATA_README), (".gitignore", GITIGNORE)):
        (folder / name).write_text(text, encoding="utf-8")
        written.append(Path(name))
    return written
