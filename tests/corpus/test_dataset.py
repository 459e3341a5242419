import json
from types import SimpleNamespace

import datasets
import pandas as pd
import pytest

from conftest import make_rows, write_jsonl
from supportlens.cli.common import in_cli_terms
from supportlens.config import DataConfig
from supportlens.corpus.dataset import DataError, load_coded


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
    df = pd.DataFrame(
        {
            "Excerpt": ["we co-designed it", "we trained them", "hello there"],
            "Code": ["Co-creation/exchange", "PUSH", "no approach"],
            "Doc": ["a", "b", "c"],
        }
    )
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(
        path, codebook, DataConfig(text_column="Excerpt", label_column="Code", group_column="Doc", id_column=None)
    )
    assert data.frame["label"].tolist() == ["co_creation", "push", "none"]


def test_missing_column_names_file_and_columns(tmp_path, codebook):
    path = tmp_path / "c.csv"
    pd.DataFrame({"excerpt": ["x"], "label": ["push"]}).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_coded(path, codebook)
    msg = str(err.value)
    assert str(path) in msg and "'text'" in msg and "excerpt" in msg
    assert "'excerpt' looks like it: `data.text_column='excerpt'` in the config" in msg  # in the API's terms
    # on the command line, advice that each command accepts: train and audit have --set, evaluate has --text-column
    assert "--set data.text_column=excerpt (train, audit) or --text-column excerpt (evaluate)" in in_cli_terms(msg)


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
    with pytest.raises(DataError, match=r"c\.csv: row 4: field 'text' is empty$"):
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


def test_undecodable_bytes_name_file_and_line(tmp_path, codebook, monkeypatch):
    import charset_normalizer

    # bytes that are not UTF-8 and that cp1252 does not define, and no guess from the detector
    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda raw: SimpleNamespace(best=lambda: None))
    path = tmp_path / "c.csv"
    path.write_bytes(b"text,label,interview_id\nfine,push,a\nbad \x81\x8d\x90 here,pull,b\n")
    with pytest.raises(
        DataError,
        match=r"c\.csv: line 3: undecodable bytes b'\\x81' at byte 40 \(cannot decode "
        r"text: not valid UTF-8, UTF-16 or cp1252\); save the file as UTF-8",
    ):
        load_coded(path, codebook)


def test_cp1252_table_is_read_with_the_transcript_readers_note(tmp_path, codebook, monkeypatch):
    """Excel's plain "CSV" on Western European Windows is cp1252: coded data in it is read as a
    transcript in it is, with the same note, not refused."""
    import charset_normalizer

    from supportlens.transcripts.read import read_transcript

    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda raw: SimpleNamespace(best=lambda: None))
    df = _frame()
    df.loc[0, "text"] = "We met at the caf\u00e9 \u2013 a \u2018co-design\u2019 session."
    path = tmp_path / "c.csv"
    path.write_bytes(df.to_csv(index=False).encode("cp1252"))
    data = load_coded(path, codebook)
    assert data.frame.loc[0, "text"] == df.loc[0, "text"]
    transcript = read_transcript(path)
    assert transcript.encoding == "cp1252" and transcript.cues[0].text == df.loc[0, "text"]
    note = transcript.notes[0]
    assert note.startswith("not valid UTF-8, so decoded as cp1252") and note in data.report.notes
    assert f"note: {note}" in data.report.summary()


def test_binary_file_with_a_table_suffix_is_refused(tmp_path, codebook):
    path = tmp_path / "c.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" * 20)  # a workbook renamed .csv
    with pytest.raises(DataError, match=r"c\.csv: binary file, not a CSV file"):
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
    with pytest.raises(DataError, match=r"rows 1, 2: field 'id' repeats ids 'i00-00' \(rows 1, 2\)"):
        load_coded(path, codebook)


def test_a_row_pasted_twice_is_removed_with_a_note(tmp_path, codebook):
    """README: exact duplicates are removed. A row pasted twice (same id, same content) is one."""
    df = _frame()
    df = pd.concat([df.iloc[:3], df.iloc[[2]], df.iloc[3:]], ignore_index=True)  # row 4 pasted again as row 5
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook)
    assert len(data.frame) == len(df) - 1
    assert data.report.duplicates_removed == [df.loc[2, "id"]]
    summary = data.report.summary()
    assert "1 exact duplicates removed" in summary
    assert f"row 5 (= row 4, id {df.loc[2, 'id']!r})" in summary


def test_blank_ids_get_row_numbers_with_a_note(tmp_path, codebook):
    df = _frame()
    path = tmp_path / "c.csv"
    df.loc[2, "id"] = ""
    df.to_csv(path, index=False)
    one = load_coded(path, codebook)
    assert one.frame.loc[one.frame["row"] == 4, "id"].tolist() == ["row-4"]
    assert "row 4: no id in field 'id'; given its row number as id (row-4)" in one.report.summary()
    df.loc[5, "id"] = ""  # two blank ids are not "repeated ids"
    df.to_csv(path, index=False)
    two = load_coded(path, codebook)
    assert "rows 4, 7: no id in field 'id'" in two.report.summary()
    assert two.frame["id"].is_unique and (two.frame["id"] != "").all()


def test_all_row_problems_are_reported_at_once(tmp_path, codebook):
    """One run lists every planted mistake (an empty text, a misspelt code, a repeated id), each
    with its rows, instead of one mistake per run."""
    df = _frame()
    df.loc[1, "text"] = ""
    df.loc[4, "label"] = "co_creaton"
    df.loc[6, "id"] = df.loc[7, "id"]  # same id, different content
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_coded(path, codebook)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 3 problems; fix them all, then run again:")
    assert "  - row 3: field 'text' is empty" in msg
    assert "  - row 6: unknown label 'co_creaton' in field 'label'" in msg
    assert f"  - rows 8, 9: field 'id' repeats ids {df.loc[7, 'id']!r} (rows 8, 9)" in msg
    assert "Known codes: push" in msg


def test_data_first_sheet_is_found_and_named(tmp_path, codebook):
    path = tmp_path / "c.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["coded by AK, March"]}).to_excel(writer, sheet_name="Notes", index=False)
        _frame().to_excel(writer, sheet_name="Coded", index=False)
    data = load_coded(path, codebook)
    assert len(data.frame) == len(_frame())
    assert (
        "read sheet 'Coded' of 2, the first with columns 'text' and 'label'; not read: 'Notes'" in data.report.summary()
    )
    with pytest.raises(DataError) as err:  # no sheet has the columns: say which sheets have which
        load_coded(path, codebook, DataConfig(text_column="quote"))
    msg = str(err.value)
    assert "no column 'quote' (data.text_column)" in msg
    assert "No sheet has it; the sheets and their columns: 'Notes': note; 'Coded': id, interview_id" in msg


def test_interview_column_under_another_name_is_named_in_the_note(tmp_path, codebook):
    df = _frame().rename(columns={"interview_id": "Interview"})
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook)
    assert not data.report.grouped
    note = data.report.notes[0]
    assert "no interview column 'interview_id' (data.group_column)" in note
    assert "'Interview' looks like the interview: use it with `data.group_column='Interview'` in the config" in note
    assert "'Interview' looks like the interview: use it with --set data.group_column=Interview" in in_cli_terms(note)
    # a name that differs only in case or spacing is the column itself
    df.rename(columns={"Interview": "Interview_ID"}).to_csv(path, index=False)
    same = load_coded(path, codebook)
    assert same.report.grouped and set(same.frame["group"]) == set(df["Interview"])
    assert "column 'Interview_ID' read as data.group_column 'interview_id'" in same.report.summary()


def test_split_line_says_when_the_split_is_not_by_interview(tmp_path, codebook, monkeypatch):
    from conftest import fast_overrides
    from supportlens.config import load_config
    from supportlens.training.trainer import train

    monkeypatch.chdir(tmp_path)
    df = pd.DataFrame(make_rows(n_interviews=6, per_label=2)).rename(columns={"interview_id": "Interview"})
    df.to_csv(tmp_path / "c.csv", index=False)
    logs: list[str] = []
    train(load_config(None, fast_overrides() + [f"data.path={tmp_path / 'c.csv'}"]), track=False, log=logs.append)
    assert not any("grouped split by interview" in line for line in logs)
    assert any(line.startswith("split by excerpt, not by interview (no interview column") for line in logs)


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


def test_a_row_pasted_twice_is_removed_when_the_file_has_ids_but_no_interview_column(tmp_path, codebook):
    """Review item 3: rows get their own `row-N` groups only after repeats are found."""
    df = _frame().drop(columns=["interview_id"])
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # row 2 pasted again at the end
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook)
    assert len(data.frame) == len(df) - 1 and not data.report.grouped
    assert data.report.duplicates_removed == [df.loc[0, "id"]]
    assert f"row {len(df) + 1} (= row 2, id {df.loc[0, 'id']!r})" in data.report.summary()
    assert data.frame["group"].is_unique  # still one group per excerpt


def test_a_generated_id_never_takes_an_id_the_file_uses(tmp_path, codebook):
    """Review item 7: row 2 is called 'row-3' in the file; row 3, with no id, gets another one."""
    df = _frame()
    df.loc[0, "id"] = "row-3"  # row 2 of the file
    df.loc[1, "id"] = ""  # row 3 of the file: row-3 is taken
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook)
    assert data.frame.loc[data.frame["row"] == 3, "id"].tolist() == ["row-3-2"]
    assert data.frame["id"].is_unique
    assert "given its row number as id (row-3-2); row-3 is already an id in the file" in data.report.summary()


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_jsonl_texts_with_unicode_line_separators_round_trip(tmp_path, codebook, separator):
    """Review item 6: text pasted from Word or a PDF holds U+2028 and the like; a JSONL file is
    split at "\\n" only, so such a text (written raw by another tool, or escaped by ours) reads back."""
    from supportlens.io.jsonl import frame_to_jsonl

    df = _frame()
    df.loc[0, "text"] = f"first line{separator}second line"
    ours = tmp_path / "ours.jsonl"
    ours.write_text(frame_to_jsonl(df), encoding="utf-8")
    raw = tmp_path / "raw.jsonl"  # a writer that leaves them raw, as json.dumps(ensure_ascii=False) does
    raw.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in df.to_dict("records")), encoding="utf-8")
    for path in (ours, raw):
        data = load_coded(path, codebook)
        assert len(data.frame) == len(df)
        assert data.frame.loc[data.frame["id"] == df.loc[0, "id"], "text"].tolist() == [df.loc[0, "text"]]


def test_one_text_normaliser_for_repeats_seen_passages_and_excerpt_hashes(tmp_path, codebook):
    """Review item 11: 'Straße' and 'STRASSE' (and a ligature 'ﬁ' and 'fi') are the same excerpt
    for de-duplication, `next --skip` and the training-overlap hashes alike."""
    from supportlens.assist import active
    from supportlens.corpus.dataset import text_key
    from supportlens.evaluation import evaluate

    a, b = "Die Straße ﬁnally  opened", "die STRASSE finally opened"
    assert text_key(a) == text_key(b)
    assert evaluate.excerpt_hash(a) == evaluate.excerpt_hash(b)
    assert not active.drop_seen(pd.DataFrame({"text": [a]}), {text_key(b)}).shape[0]
    # saved hashes stay what they were: sha256 of the text with whitespace collapsed, case folded
    import hashlib

    assert evaluate.excerpt_hash(" We  co-designed\tit ") == hashlib.sha256(b"we co-designed it").hexdigest()[:16]
    df = _frame()
    df.loc[1, "text"], df.loc[1, "label"] = a, "push"
    df.loc[2, "text"], df.loc[2, "label"] = b, "push"
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    data = load_coded(path, codebook)
    assert data.report.duplicates_removed == [df.loc[2, "id"]]


def test_a_coding_sheet_joins_interviews_imported_from_a_project(tmp_path, codebook, labeler):
    """Review item 4: `import project.qdpx` names interviews by the project's source (it keeps
    ".txt"); `next` names them by the transcript file (transcripts/SMP01_child_welfare.txt). The
    filled sheet's passages must join that interview, by file name or stem, case ignored."""
    import shutil

    from qda_projects import SAMPLES, build_project, maori_source, smp01_source
    from supportlens.assist.active import read_passages, select_next
    from supportlens.corpus.dataset import combine_coded, text_key
    from supportlens.corpus.sheets import coding_sheet, sheet_data_config, write_sheet
    from supportlens.qda.importing import import_qdpx, write_excerpts

    project = build_project(tmp_path / "project.qdpx", [smp01_source(), maori_source()])
    frame, _ = import_qdpx(project, codebook)
    coded = write_excerpts(frame, tmp_path / "coded.csv")  # supportlens import project.qdpx --out coded.csv
    folder = tmp_path / "transcripts"
    folder.mkdir()
    shutil.copy(SAMPLES / "smp01_child_welfare.txt", folder / "SMP01_child_welfare.txt")
    shutil.copy(SAMPLES / "smp06_juvenile_justice.md", folder / "smp06_juvenile_justice.md")
    passages, problems, _ = read_passages([str(folder)], labeler)  # supportlens next transcripts/
    assert not problems
    main = load_coded(coded, codebook)
    sheet = coding_sheet(select_next(passages, labeler, n=len(passages)))
    sheet = sheet.loc[~sheet["text"].map(text_key).isin(set(main.frame["text"].map(text_key)))]
    sheet["code"] = "pull"  # the coder fills it in
    filled = write_sheet(sheet, tmp_path / "to_code.csv")
    extra = load_coded(filled, codebook, sheet_data_config(filled, DataConfig()), skip_blank_labels=True, min_codes=1)
    combined = combine_coded(main, [extra], codebook)
    added = combined.frame.iloc[len(main.frame) :]
    from_smp01 = added["text"].isin(sheet.loc[sheet["source"].str.contains("SMP01"), "text"])
    assert from_smp01.any() and (~from_smp01).any()
    assert set(added.loc[from_smp01, "group"]) == {"smp01_child_welfare.txt"}  # the imported interview
    assert set(added.loc[~from_smp01, "group"]) == {"smp06_juvenile_justice"}  # a new one
    note = next(n for n in combined.report.notes if "each transcript file is one interview" in n)
    assert "as 'smp01_child_welfare.txt' (same name)" in note and "new interviews: smp06_juvenile_justice" in note
