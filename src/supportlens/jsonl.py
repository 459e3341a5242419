"""JSON Lines that people can read: one JSON object per line, with "/" and non-ASCII text as written.

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
    return "".join(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n" for record in records)
