import json

import datasets
import pandas as pd
import pytest

from supportlens.config import DataConfig
from supportlens.dataset import DataError, load_coded

from conftest import make_rows, write_jsonl


def _frame():
    return pd.DataFrame(make_rows(n_interviews=4, per_label=1))


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".xlsx"])
def test_formats_give_a_classlabel_dataset(tmp_path, codebook, suffix):
    df = _frame()
    path = tmp_path / f"coded{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        write_jsonl(path, df.to_dict("records"))
    else:
        df.to_excel(path, index=False)
    data = load_coded(path, codebook)
    assert isinstance(data.dataset, datasets.Dataset)
    assert isinstance(data.dataset.features["label"], datasets.ClassLabel)
    assert data.dataset.features["label"].names == codebook.labels
    assert len(data.dataset) == len(df)
    assert set(data.frame["group"]) == set(df["interview_id"])


def test_custom_columns_and_aliases(tmp_path, codebook):
    df = pd.DataFrame({"Excerpt": ["we co-designed it", "we trained them", "hello there"],
                       "Code": ["Co-creation/exchange", "PUSH", "no approach"],
                       "Doc": ["a", "b", "c"]})
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook, DataConfig(text_column="Excerpt", label_column="Code",
                                                 group_column="Doc", id_column=None))
    assert data.frame["label"].tolist() == ["co_creation", "push", "none"]


def test_missing_column_names_file_and_columns(tmp_path, codebook):
    path = tmp_path / "c.csv"
    pd.DataFrame({"excerpt": ["x"], "label": ["push"]}).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_coded(path, codebook)
    msg = str(err.value)
    assert str(path) in msg and "'text'" in msg and "excerpt" in msg
    assert "--text-column or data.text_column" in msg


def test_unknown_labels_listed_with_known_ones(tmp_path, codebook):
    rows = make_rows(n_interviews=3, per_label=1)
    rows[1]["label"] = "pushy"
    rows[4]["label"] = "maybe"
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_coded(path, codebook)
    msg = str(err.value)
    assert "'maybe'" in msg and "'pushy'" in msg
    assert "rows 2, 5" in msg
    assert "co_creation" in msg and "Known codes" in msg


def test_empty_text_names_row_and_field(tmp_path, codebook):
    df = _frame()
    df.loc[2, "text"] = "   "
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"rows 4: field 'text' is empty"):
        load_coded(path, codebook)


def test_empty_label_is_an_error_unless_skipped(tmp_path, codebook):
    df = _frame()
    df.loc[0, "label"] = ""
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="field 'label' is empty"):
        load_coded(path, codebook)
    data = load_coded(path, codebook, skip_blank_labels=True)
    assert data.report.skipped_blank_labels == [2]
    assert len(data.frame) == len(df) - 1


def test_undecodable_bytes_name_file_and_line(tmp_path, codebook):
    path = tmp_path / "c.csv"
    path.write_bytes(b"text,label,interview_id\nfine,push,a\nbad \xff\xfe\xfa here,pull,b\n")
    with pytest.raises(DataError, match=r"line 3: undecodable bytes"):
        load_coded(path, codebook)


def test_utf16_with_bom(tmp_path, codebook):
    df = _frame()
    path = tmp_path / "c.csv"
    path.write_bytes(df.to_csv(index=False).encode("utf-16"))
    assert len(load_coded(path, codebook).frame) == len(df)


def test_bad_json_line(tmp_path, codebook):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(make_rows(2, 1)[0]) + "\n{broken\n")
    with pytest.raises(DataError, match="row 2: not valid JSON"):
        load_coded(path, codebook)


def test_exact_duplicates_removed_and_reported(tmp_path, codebook):
    rows = make_rows(n_interviews=3, per_label=1)
    dup = dict(rows[0], id="dup-1", text=rows[0]["text"].upper() + "  ")
    path = write_jsonl(tmp_path / "c.jsonl", rows + [dup])
    data = load_coded(path, codebook)
    assert data.report.duplicates_removed == ["dup-1"]
    assert len(data.frame) == len(rows)
    assert "1 exact duplicates removed" in data.report.summary()


@pytest.mark.parametrize("policy,kept", [("drop", -1), ("keep", 1)])
def test_conflicting_codes_reported(tmp_path, codebook, policy, kept):
    rows = make_rows(n_interviews=3, per_label=1)
    twin = dict(rows[0], id="twin", label="none")
    path = write_jsonl(tmp_path / "c.jsonl", rows + [twin])
    data = load_coded(path, codebook, DataConfig(conflicts=policy))
    assert len(data.report.conflicts) == 1
    assert data.report.conflicts[0]["labels"] == [rows[0]["label"], "none"]
    assert len(data.frame) == len(rows) + kept


def test_conflicts_can_be_an_error(tmp_path, codebook):
    rows = make_rows(n_interviews=3, per_label=1)
    path = write_jsonl(tmp_path / "c.jsonl", rows + [dict(rows[0], id="twin", label="none")])
    with pytest.raises(DataError, match="coded with different labels"):
        load_coded(path, codebook, DataConfig(conflicts="error"))


def test_duplicate_ids(tmp_path, codebook):
    rows = make_rows(n_interviews=2, per_label=1)
    rows[1]["id"] = rows[0]["id"]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(DataError, match="repeats ids"):
        load_coded(path, codebook)


def test_unsupported_and_missing_files(tmp_path, codebook):
    (tmp_path / "c.pdf").write_text("x")
    with pytest.raises(DataError, match="unsupported file type .pdf"):
        load_coded(tmp_path / "c.pdf", codebook)
    with pytest.raises(DataError, match="file not found"):
        load_coded(tmp_path / "missing.csv", codebook)


def test_no_group_column_is_noted(tmp_path, codebook):
    df = _frame().drop(columns=["interview_id"])
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook)
    assert not data.report.grouped
    assert "optimistic" in data.report.notes[0]
    assert data.frame["group"].nunique() == len(df)


def test_digest_is_stable_and_content_sensitive(tmp_path, codebook):
    rows = make_rows(3, 1)
    a = load_coded(write_jsonl(tmp_path / "a.jsonl", rows), codebook).digest
    b = load_coded(write_jsonl(tmp_path / "b.jsonl", rows), codebook).digest
    rows[0]["label"] = "none"
    c = load_coded(write_jsonl(tmp_path / "c.jsonl", rows), codebook).digest
    assert a == b != c
