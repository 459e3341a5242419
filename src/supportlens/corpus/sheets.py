"""Coding sheets: the table `supportlens next` writes for a coder to fill in, and how a filled one
is read back as coded excerpts.

Here, in the corpus, because training (`train --add-data`), evaluation (`evaluate --data` on a
sheet, `agreement --out`) and active learning all need to know a sheet's columns; none of them
should have to import another to learn them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from supportlens.config import DataConfig
from supportlens.corpus.dataset import TABLE_SUFFIXES, read_table
from supportlens.io.atomic import write_atomic

SHEET_COLUMNS = [
    "id",
    "source",
    "passage_index",
    "start",
    "end",
    "speaker",
    "text",
    "suggested_code",
    "confidence",
    "code",
    "notes",
]
SHEET_SUFFIXES = (".csv", ".xlsx")


class SheetError(ValueError):
    """A sheet cannot be written as asked (its name or folder)."""


def passage_id(source: str, passage_index: int | str) -> str:
    """The id of a passage of a transcript: shared by coding sheets and prediction files, so a
    sheet a coder filled in can be matched to predictions by id."""
    return f"{source}#{passage_index}"


def coding_sheet(selected: pd.DataFrame) -> pd.DataFrame:
    """The sheet a coder fills in: `SHEET_COLUMNS`, with ``code`` and ``notes`` left empty.

    Passages from table rows with an id (csv/xlsx inputs) also get ``row_id``, the last column,
    as in ``supportlens predict``'s output, so a coded row can be matched to the input table."""
    sheet = pd.DataFrame({column: selected[column] if column in selected.columns else "" for column in SHEET_COLUMNS})
    sheet["confidence"] = selected["confidence"].astype(float).round(3)
    sheet["code"] = ""
    sheet["notes"] = ""
    if "row_id" in selected.columns and selected["row_id"].notna().any():
        sheet["row_id"] = selected["row_id"].fillna("")
    return sheet


def write_sheet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table for people to read or fill in (.csv or .xlsx), atomically.

    CSV is written with a UTF-8 byte order mark so that Excel shows curly quotes and accents
    correctly; supportlens and pandas read it either way.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SHEET_SUFFIXES:
        raise SheetError(f"{path.name}: the output must end in {' or '.join(SHEET_SUFFIXES)}")
    if not path.parent.exists():
        raise SheetError(f"{path.parent}: output folder does not exist")

    def write(tmp: Path) -> None:
        if suffix == ".xlsx":
            from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

            # control characters that Excel rejects would make openpyxl fail on the whole file
            clean = frame.apply(
                lambda col: col.map(lambda v: ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v)
            )
            clean.to_excel(tmp, index=False, engine="openpyxl")
        else:
            frame.to_csv(tmp, index=False, encoding="utf-8-sig")

    return write_atomic(path, write)


def is_coding_sheet(path: str | Path) -> bool:
    """A filled coding sheet (written by `supportlens next`) has a ``suggested_code`` column."""
    if Path(path).suffix.lower() not in TABLE_SUFFIXES:
        return False  # a .qdpx project, say: load_coded reads it (or says why it cannot)
    return "suggested_code" in read_table(path, required=["suggested_code"]).columns


def sheet_data_config(path: str | Path, default: DataConfig) -> DataConfig:
    """How to load an extra training file: a coding sheet has its code in ``code`` and its
    interview in ``source``; any other coded file is read as the main data is."""
    if is_coding_sheet(path):
        return DataConfig(label_column="code", group_column="source")
    return default
