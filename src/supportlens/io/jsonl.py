"""JSON Lines that people can read: one JSON object per line, with "/" and non-ASCII text as written
(except the Unicode line separators U+2028, U+2029 and U+0085, written as escapes).

pandas' ``to_json`` escapes every forward slash (``"data\\/in\\/smp01.txt"``): valid JSON, but a
researcher opening predict's output or an imported coding in an editor, or grepping it for a path,
should see the path. Values are converted exactly as ``to_json`` converts them (NaN and None become
null, numpy numbers plain numbers, floats to its precision); only the escaping differs.
"""

from __future__ import annotations

import json

import pandas as pd


def frame_to_jsonl(frame: pd.DataFrame) -> str:
    """The rows of ``frame`` as JSON Lines, each line ending in a newline ("" for no rows)."""
    if not len(frame):
        return ""
    records = json.loads(frame.to_json(orient="records", force_ascii=False))
    # compact separators, as to_json writes them; json.dumps never escapes "/"
    return "".join(
        _line_safe(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) + "\n" for record in records
    )


# Characters that many line readers (Python's str.splitlines, some editors) take as line breaks;
# text pasted from Word, PDF or the web has them. Inside a JSON string they are written as
# escapes, so that every line of the file is one whole object whatever splits it.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _line_safe(line: str) -> str:
    for char, escape in _LINE_BREAKS.items():
        line = line.replace(char, escape)
    return line
