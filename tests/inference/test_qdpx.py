"""Labelling straight into a REFI-QDA project (`predict_to_qdpx`): passages as `predict_files`
makes them, human work never replaced, and nothing written when nothing is labelled."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from qda_projects import (
    INLINE_GUID,
    MAORI_GUID,
    MAORI_TEXT,
    NS,
    SAMPLES,
    SMP01_GUID,
    SMP06_GUID,
    assert_valid_project,
    build_project,
    count_codings,
    gold_predictions,
    make_guid,
    project_selections,
    sample_project,
)
from supportlens.inference.predict import predict_files
from supportlens.inference.qdpx import predict_to_qdpx
from supportlens.qda.exporting import export_suggestions
from supportlens.qda.importing import import_qdpx
from supportlens.qda.project import QdaError
from supportlens.transcripts.read import read_transcript


@pytest.fixture
def project(tmp_path) -> Path:
    return sample_project(tmp_path / "project.qdpx")


def test_new_project_from_transcripts_matches_predict_and_round_trips(labeler, codebook, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("smp01_child_welfare.txt", "smp03_schools_teams.vtt", "smp05_public_health.docx"):
        shutil.copy(SAMPLES / name, folder / name)
    out = tmp_path / "new.qdpx"
    report = predict_to_qdpx([str(folder)], labeler, out, codebook=codebook, include_none=True)
    assert report.files_done == 3 and not report.failures
    xml = assert_valid_project(out)
    root = ET.fromstring(xml)
    with zipfile.ZipFile(out) as archive:
        for source in root.iter(f"{{{NS}}}TextSource"):
            stored = archive.read(f"Sources/{source.get('guid')}.txt")
            assert stored.decode("utf-8") == read_transcript(folder / source.get("name")).text
            assert b"\r" not in stored and not stored.startswith(b"\xef\xbb\xbf")
    frame, _ = import_qdpx(out, codebook, include_suggestions=True)
    csv = tmp_path / "labels.csv"
    predict_files([str(folder)], labeler, csv)
    expected = pd.read_csv(csv)
    expected["source"] = expected["source"].map(lambda s: Path(s).name)
    got = sorted(zip(frame["interview_id"], frame["start"], frame["end"], frame["label"]))
    assert got == sorted(zip(expected["source"], expected["start"], expected["end"], expected["label"]))
    assert set(frame["code"]) <= {c.name for c in codebook.codes}


def test_predict_into_an_existing_project(labeler, project, codebook, tmp_path):
    out = tmp_path / "suggested.qdpx"
    before = project_selections(project)
    report = predict_to_qdpx([str(project)], labeler, out, codebook=codebook, include_none=True)
    assert report.files_done == 4 and not report.failures
    assert_valid_project(out)
    after = project_selections(out)
    assert {g: after[g] for g in before} == before
    frame, _ = import_qdpx(out, codebook, include_suggestions=True)
    ai = frame[frame["coder"] == "supportlens suggestions"]
    assert set(ai["source"]) == {SMP01_GUID, MAORI_GUID, INLINE_GUID, SMP06_GUID}
    maori = ai[ai["source"] == MAORI_GUID]
    assert len(maori) == 3 and set(maori["speaker"]) == {"Aroha"}  # participant turns only
    assert maori.sort_values("start")["text"].iloc[0].startswith("😀 Honestly")
    for row in maori.itertuples():
        assert MAORI_TEXT[row.start : row.end] == row.text


def test_a_project_with_human_codings_is_never_replaced(labeler, project, codebook, tmp_path, monkeypatch):
    before = project.read_bytes()
    monkeypatch.setattr(labeler, "score", lambda texts: pytest.fail("scored before the output was checked"))
    holds = f"{project} already exists and holds 5 sources and {count_codings(project)} codings by 2 users"
    transcript = str(SAMPLES / "smp01_child_welfare.txt")
    with pytest.raises(QdaError, match="it is not replaced") as refused:
        predict_to_qdpx([transcript], labeler, project, codebook=codebook)
    assert holds in str(refused.value)
    assert f"predict_to_qdpx([{str(project)!r}], labeler, {str(tmp_path / 'project-suggestions.qdpx')!r})" in str(
        refused.value
    )  # how to add suggestions to it instead
    with pytest.raises(QdaError, match="never replaced, not even with overwrite=True"):
        predict_to_qdpx([transcript], labeler, project, codebook=codebook, overwrite=True)
    for overwrite in (False, True):  # labelling the project into itself is no exception
        with pytest.raises(QdaError, match="never replaced" if overwrite else "it is not replaced") as refused:
            predict_to_qdpx([str(project)], labeler, project, codebook=codebook, overwrite=overwrite)
        assert holds in str(refused.value)
        with pytest.raises(QdaError, match="already exists and holds 5 sources"):
            export_suggestions(project, gold_predictions(), None, project, codebook, overwrite=overwrite)
    assert project.read_bytes() == before


def test_a_project_of_suggestions_only_is_replaced_with_overwrite(labeler, codebook, tmp_path):
    out = tmp_path / "ai.qdpx"
    transcript = str(SAMPLES / "smp01_child_welfare.txt")
    predict_to_qdpx([transcript], labeler, out, codebook=codebook)
    earlier = out.read_bytes()
    with pytest.raises(
        QdaError,
        match=r"ai.qdpx already exists and holds 1 source and \d+ supportlens "
        r"suggestions \(no human work\); pass overwrite=True to replace it",
    ):
        predict_to_qdpx([transcript], labeler, out, codebook=codebook)
    assert out.read_bytes() == earlier
    report = predict_to_qdpx([transcript], labeler, out, codebook=codebook, overwrite=True)
    assert report.output == out and out.read_bytes() != earlier
    assert_valid_project(out)
    # a note a person wrote in it is human work: kept, whatever overwrite says
    with zipfile.ZipFile(out) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    root = ET.fromstring(members["project.qde"])
    notes = ET.SubElement(root, f"{{{NS}}}Notes")
    ET.SubElement(notes, f"{{{NS}}}Note", {"guid": make_guid("note"), "name": "memo"})
    members["project.qde"] = ET.tostring(root)
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    noted = out.read_bytes()
    with pytest.raises(
        QdaError,
        match=r"holds 1 source, 1 note and \d+ supportlens suggestions; a project "
        "with human work is never replaced, not even with overwrite=True",
    ):
        predict_to_qdpx([transcript], labeler, out, codebook=codebook, overwrite=True)
    assert out.read_bytes() == noted
    # a file that is not a project is replaced only when asked to
    out.write_bytes(b"not a zip")
    with pytest.raises(
        QdaError, match="ai.qdpx already exists and is not a readable REFI-QDA project .*unless you pass overwrite=True"
    ):
        predict_to_qdpx([transcript], labeler, out, codebook=codebook)
    assert out.read_bytes() == b"not a zip"
    predict_to_qdpx([transcript], labeler, out, codebook=codebook, overwrite=True)
    assert_valid_project(out)


def test_a_run_that_labels_nothing_writes_no_project(labeler, codebook, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "consent.pdf").write_bytes(b"%PDF-1.4")
    out = tmp_path / "new.qdpx"
    report = predict_to_qdpx([str(folder), str(tmp_path / "typo")], labeler, out, codebook=codebook)
    assert report.output is None and report.files_done == 0 and not out.exists()
    reasons = [f.reason for f in report.failures]
    assert reasons[0].startswith(f"{folder}: folder has no transcripts")
    assert reasons[1:] == [f"{tmp_path / 'typo'}: no such file or folder"]
    assert any("consent.pdf: not a transcript" in line for line in report.note_lines())
    empty = build_project(tmp_path / "empty.qdpx", [])  # a project without text sources
    report = predict_to_qdpx([str(empty)], labeler, out, codebook=codebook)
    assert report.output is None and not out.exists()


@pytest.mark.parametrize(
    "unsafe",
    [
        "../../evil.txt",
        "/abs/evil.txt",
        "Sources/../../evil.txt",
        "..\\..\\evil.txt",
        "Sources\\..\\..\\evil.txt",
        "C:/evil.txt",
        "C:evil.txt",
    ],
)
def test_entries_that_point_outside_the_project_are_dropped_with_a_note(labeler, project, codebook, tmp_path, unsafe):
    with zipfile.ZipFile(project) as archive:
        safe = sorted(archive.namelist())
    with zipfile.ZipFile(project, "a") as archive:
        archive.writestr(unsafe, b"would be written outside the folder it is unzipped in")
    out = tmp_path / "suggested.qdpx"
    report = export_suggestions(project, gold_predictions(), None, out, codebook)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == safe
    assert_valid_project(out)
    assert report.notes == [
        f"{project}: entry {unsafe!r} left out of {out}: its name points outside the project (an absolute path or '..')"
    ]
    again = tmp_path / "labelled.qdpx"
    batch = predict_to_qdpx([str(project)], labeler, again, codebook=codebook)  # the CLI prints these notes
    assert any(repr(unsafe) in line and "left out" in line for line in batch.note_lines())
    with zipfile.ZipFile(again) as archive:
        assert sorted(archive.namelist()) == safe


def test_qdpx_output_gives_the_notes_and_failures_a_csv_output_gives(labeler, codebook, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("smp01_child_welfare.txt", "smp02_home_visiting.vtt"):  # a header; a guessed interviewer
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "consent.pdf").write_bytes(b"%PDF-1.4")  # not a transcript
    (folder / "questions.txt").write_text("Interviewer: How did it start?\n\nInterviewer: And then?\n")
    csv = predict_files([str(folder)], labeler, tmp_path / "labels.csv")
    qdpx = predict_to_qdpx([str(folder)], labeler, tmp_path / "labels.qdpx", codebook=codebook)
    exported = [line for line in qdpx.note_lines() if " suggestions in 2 sources -> " in line]
    assert len(exported) == 1
    assert set(qdpx.note_lines()) - set(exported) == set(csv.note_lines())
    said = " ".join(csv.note_lines())
    assert "consent.pdf: not a transcript" in said and "interviewer guessed from questions" in said
    assert [f.reason for f in qdpx.failures] == [f.reason for f in csv.failures] != []  # questions.txt
    root = ET.fromstring(assert_valid_project(tmp_path / "labels.qdpx"))
    assert sorted(s.get("name") for s in root.iter(f"{{{NS}}}TextSource")) == [
        "smp01_child_welfare.txt",
        "smp02_home_visiting.vtt",
    ]
