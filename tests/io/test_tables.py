"""One rule for finding the column a setting names, in transcripts and coded data alike."""

import pytest

from supportlens.io.tables import column_key, find_column


@pytest.mark.parametrize(
    "columns,wanted,found",
    [
        (["id", "text"], "text", "text"),
        (["Text ", "label"], "text", "Text "),
        (["TEXT"], "text", "TEXT"),
        (["Interview_ID"], "interview id", "Interview_ID"),
        (["Speaker Role"], "speaker_role", "Speaker Role"),
        (["speaker-role"], "speaker_role", "speaker-role"),
        (["speaker name"], "speaker", None),
        ([], "text", None),
    ],
)
def test_finds_the_column_by_name_case_and_separators(columns, wanted, found):
    assert find_column(columns, wanted) == found


def test_the_closest_name_wins_whatever_the_order():
    assert find_column(["TEXT", "text"], "text") == "text"
    assert find_column(["speaker_role", "Speaker_Role"], "Speaker_Role") == "Speaker_Role"
    assert find_column(["Speaker Role", " speaker_role "], "speaker_role") == " speaker_role "


def test_non_string_column_names():
    assert find_column([0, 1], "1") == 1


def test_column_key():
    assert column_key(" Interview__ID-no ") == "interview id no"
