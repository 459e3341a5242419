"""Coding sheets: written whole, readable by Excel, and checked before anything is written."""

import os

import pandas as pd
import pytest

from supportlens.corpus.sheets import SheetError, passage_id, write_sheet


def test_passage_id_joins_source_and_index():
    assert passage_id("data/a.txt", 3) == "data/a.txt#3"


def test_write_sheet_is_atomic_and_checks_the_path(tmp_path):
    frame = pd.DataFrame({"text": ["caf\u00e9 \u201cquoted\u201d\x07"]})
    write_sheet(frame, tmp_path / "s.xlsx")  # a control character Excel rejects is dropped
    assert pd.read_excel(tmp_path / "s.xlsx")["text"].tolist() == ["caf\u00e9 \u201cquoted\u201d"]
    write_sheet(frame, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel then reads UTF-8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.xlsx"]  # no temporary files left
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(SheetError, match="must end in .csv or .xlsx"):
        write_sheet(frame, tmp_path / "s.parquet")
    with pytest.raises(SheetError, match="output folder does not exist"):
        write_sheet(frame, tmp_path / "nope" / "s.csv")
