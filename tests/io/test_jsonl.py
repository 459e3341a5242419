"""JSON Lines output: valid JSON per line, paths and non-ASCII text readable as written."""

import json

import numpy as np
import pandas as pd

from supportlens.io.jsonl import frame_to_jsonl


def test_slashes_and_non_ascii_are_written_as_they_are():
    frame = pd.DataFrame(
        {
            "source": ["data/in/Kōrero_Māori_02.txt", "C:\\in\\a/b.txt"],
            "text": ['the whānau said "co-design/ing" 😀', "line one\nline two"],
            "passage_index": np.array([0, 7], dtype=np.int64),
            "confidence": [0.25, float("nan")],
            "needs_review": [True, False],
            "row_id": ["007", None],
        }
    )
    text = frame_to_jsonl(frame)
    assert "\\/" not in text  # pandas' to_json writes "data\/in\/..."
    assert "data/in/Kōrero_Māori_02.txt" in text and "whānau" in text and "😀" in text
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")  # one object a line: the newline in a text is escaped
    assert json.loads(lines[0]) == {
        "source": "data/in/Kōrero_Māori_02.txt",
        "text": 'the whānau said "co-design/ing" 😀',
        "passage_index": 0,
        "confidence": 0.25,
        "needs_review": True,
        "row_id": "007",
    }
    assert json.loads(lines[1]) == {
        "source": "C:\\in\\a/b.txt",
        "text": "line one\nline two",
        "passage_index": 7,
        "confidence": None,
        "needs_review": False,
        "row_id": None,
    }


def test_no_rows_is_an_empty_text():
    assert frame_to_jsonl(pd.DataFrame(columns=["source", "text"])) == ""


def test_unicode_line_separators_are_escaped_so_each_line_is_one_object():
    """Review item 6: U+2028, U+2029 and U+0085 (common in text pasted from Word or a PDF) are line
    breaks to str.splitlines and some editors; written raw, they would cut an object in two."""
    texts = ["first\u2028second", "para\u2029graph", "next\x85line"]
    text = frame_to_jsonl(pd.DataFrame({"text": texts}))
    assert not {"\u2028", "\u2029", "\x85"} & set(text)
    lines = text.splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["text"] for line in lines] == texts
