"""Which column of a table a setting names: one rule for transcripts, coded data and sheets.

People name columns as their tool or habit has it ("Text", "Speaker Role", "interview_id",
"Interview-ID"), so a column is found by the closest of three matches, in this order: the exact
name; the name ignoring case and spaces at either end; the name ignoring case and treating runs
of spaces, underscores and hyphens alike. The closest match wins, so a table that has the exact
name never has another column taken for it. Imports nothing of supportlens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def column_key(name: object) -> str:
    """The form in which column names are compared at the most forgiving step: case folded, runs
    of spaces, underscores and hyphens one space, ends stripped (``"Interview_ID"`` ->
    ``"interview id"``)."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().casefold()


def find_column(columns: Iterable[object], wanted: str) -> Any | None:
    """The column of ``columns`` that ``wanted`` names (see the module docstring); None if none."""
    columns = list(columns)
    for same in (
        lambda c: str(c) == wanted,
        lambda c: str(c).strip().casefold() == wanted.strip().casefold(),
        lambda c: column_key(c) == column_key(wanted),
    ):
        found = next((c for c in columns if same(c)), None)
        if found is not None:
            return found
    return None
