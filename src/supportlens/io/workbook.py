"""Which sheet of an Excel workbook holds the data, and how messages name it.

Shared by the coded-data reader (`dataset`) and the transcript reader (`read`), which must not
import each other (dataset imports read), so that ``train`` and ``predict`` pick and name a
workbook's sheet the same way. Imports nothing of ours."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd


def choose_sheet(
    sheets: Mapping[object, pd.DataFrame], has_columns: Callable[[Sequence[object]], bool]
) -> pd.DataFrame:
    """A copy of the first sheet whose columns satisfy `has_columns`, else of the first sheet;
    ``frame.attrs`` holds ``sheet`` (the one chosen) and ``sheets`` (every sheet's columns),
    so messages can name them. `sheets` is ``pd.read_excel(..., sheet_name=None)``, not empty."""
    name = next((n for n, f in sheets.items() if has_columns(f.columns)), next(iter(sheets)))
    frame = sheets[name].copy()
    frame.attrs["sheet"] = str(name)
    frame.attrs["sheets"] = {str(n): [str(c) for c in f.columns] for n, f in sheets.items()}
    return frame


def sheet_note(frame: pd.DataFrame, required: Sequence[str]) -> str | None:
    """Which sheet was read and which were not, when the workbook has several; else None."""
    sheets = frame.attrs.get("sheets") or {}
    if len(sheets) < 2:
        return None
    others = ", ".join(repr(n) for n in sheets if n != frame.attrs["sheet"])
    return (
        f"read sheet {frame.attrs['sheet']!r} of {len(sheets)}, the first with "
        f"{'column' if len(required) == 1 else 'columns'} "
        f"{' and '.join(map(repr, required))}; not read: {others}"
    )


def sheets_listing(frame: pd.DataFrame) -> str:
    """Every sheet with its columns: ``'Coded': text, label; 'Notes': (none)``."""
    return "; ".join(
        f"{name!r}: {', '.join(columns) or '(none)'}" for name, columns in (frame.attrs.get("sheets") or {}).items()
    )
