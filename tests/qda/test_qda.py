"""REFI-QDA round trip: projects built here by hand (not by supportlens' own writer) are imported,
labelled and exported; exports are validated against the QDA-XML 1.0 schemas in tests/qda/refi-qda."""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CODEBOOK, fast_overrides, make_rows
from qda_projects import (
    ANA,
    AUDIO,
    AUDIO_GUID,
    BEN,
    INLINE_GUID,
    INLINE_TEXT,
    LABEL_CODE,
    MAORI_CO,
    MAORI_GUID,
    MAORI_NAME,
    MAORI_PULL,
    MAORI_TEXT,
    NS,
    PUSH,
    SAMPLES,
    SMP01_GUID,
    SMP06_GUID,
    assert_valid_project,
    build_project,
    count_codings,
    gold_codings,
    gold_predictions,
    make_guid,
    maori_source,
    project_selections,
    sample_project,
    schema,
    smp01_source,
    smp06_source,
)
from supportlens.cli import app
from supportlens.corpus.dataset import DataError, load_coded
from supportlens.qda.exporting import export_codebook, export_suggestions
from supportlens.qda.importing import import_qdpx, load_code_map, write_excerpts
from supportlens.qda.project import QdaError, source_transcript
from supportlens.transcripts.segmentation import segment

runner = CliRunner()


@pytest.fixture
def project(tmp_path) -> Path:
    return sample_project(tmp_path / "project.qdpx")


# ---------------------------------------------------------------------------------------------
# import


def test_import_reads_every_human_coding_with_exact_offsets(project, codebook):
    assert_valid_project(project)  # the hand-built fixture is a schema-valid project too
    frame, report = import_qdpx(project, codebook)
    smp01 = frame[frame["source"] == SMP01_GUID].set_index("id")
    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    for i, g in enumerate(gold_codings()):
        if i in (4, 12):  # Funding only; Help desk needs a code map
            assert make_guid(f"smp01-{i}") not in smp01.index
            continue
        row = smp01.loc[make_guid(f"smp01-{i}")]
        assert (row["start"], row["end"], row["label"]) == (g["start"], g["end"], g["label"])
        assert row["text"] == g["text"] == text[g["start"] : g["end"]]
        assert row["coder"] == ("Ana" if i % 2 == 0 else "Ben")
        assert (row["speaker"], row["speaker_role"]) == ("Dana", "participant")
        assert row["interview_id"] == "smp01_child_welfare.txt"
    assert smp01.loc[make_guid("smp01-5"), "code"] == "Support model > Co-creation > Shared decisions"
    assert smp01.loc[make_guid("smp01-5"), "label"] == "co_creation"
    assert frame["id"].is_unique
    assert report.coders == {"Ana": 9, "Ben": 9}  # smp01 7 + 8, Kōrero 1 + 1, inline 1 + 0
    assert report.sources == 4 and report.excerpts == len(frame) == 18


def test_unmapped_codes_are_counted_named_and_skipped(project, codebook):
    _, report = import_qdpx(project, codebook)
    assert report.skipped_selections == 2
    assert report.unmapped == {"Funding": 2, "Support model > Responsive TA > Help desk": 1}
    assert report.code_mapping["Support model"] is None
    assert report.code_mapping["Support model > Push"] == "push"
    summary = report.summary()
    assert "2 selections skipped" in summary and "'Funding' (2)" in summary and "--code-map" in summary


def test_code_map_maps_a_parent_and_its_children(project, codebook, tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("Responsive TA: pull\nFunding: none\nNot in project: push\n", encoding="utf-8")
    frame, report = import_qdpx(project, codebook, code_map=load_code_map(path), map_source=str(path))
    rows = frame.set_index("id")
    assert rows.loc[make_guid("smp01-12"), "label"] == "pull"  # "Help desk" inherits from its parent
    assert rows.loc[make_guid("smp01-12"), "code"] == "Support model > Responsive TA > Help desk"
    assert rows.loc[make_guid("smp01-4"), "label"] == "none"
    # one selection coded Push and Funding now carries two labels: one row each
    assert set(rows.loc[[f"{make_guid('smp01-1')}#1", f"{make_guid('smp01-1')}#2"], "label"]) == {"push", "none"}
    assert report.skipped_selections == 0 and not report.unmapped
    assert any("'Not in project'" in n for n in report.notes)


def test_code_map_with_an_unknown_label_names_file_and_key(project, codebook, tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("Funding: sort of push\n", encoding="utf-8")
    with pytest.raises(QdaError, match=r"map\.yaml: 'Funding': 'sort of push' is not a codebook code"):
        import_qdpx(project, codebook, code_map=load_code_map(path), map_source=str(path))
    path.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(QdaError, match="map.yaml: a code map is a mapping"):
        load_code_map(path)


def test_crlf_and_non_ascii_offsets_are_code_points_into_the_stored_text(project, codebook):
    frame, _ = import_qdpx(project, codebook)
    rows = frame[frame["source"] == MAORI_GUID].set_index("label")
    co = rows.loc["co_creation"]
    assert co["text"] == MAORI_CO and "\r\n" in co["text"]  # line endings kept, two positions each
    assert co["start"] == MAORI_TEXT.index(MAORI_CO)
    assert co["start"] != len(MAORI_TEXT[: co["start"]].encode("utf-8"))  # not bytes (emoji, macrons)
    assert co["start"] != len(MAORI_TEXT[: co["start"]].encode("utf-16-le")) // 2  # not UTF-16 units
    assert rows.loc["pull", "text"] == MAORI_PULL
    assert (co["speaker"], co["interview_id"]) == ("Aroha", MAORI_NAME)
    inline = frame[frame["source"] == INLINE_GUID].iloc[0]
    assert inline["text"] == "The district asked for coaching on referrals."
    assert inline["start"] == INLINE_TEXT.index("The district")  # &#13; kept: CRLF counts as two


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_source_transcript_maps_passages_back_to_the_stored_text(newline):
    text = MAORI_TEXT.replace("\r\n", newline)
    transcript = source_transcript(MAORI_NAME, text)
    assert transcript.text == text
    passages = segment(transcript)
    assert [p.speaker for p in passages] == ["Interviewer", "Aroha"] * 3
    for p in passages:
        assert text[p.start : p.end] == p.text
    assert passages[1].text == MAORI_TEXT[
        MAORI_TEXT.index("😀") : MAORI_TEXT.index(".\r\n\r\nInterviewer: And") + 1
    ].replace("\r\n", newline)


def test_uncoded_participant_text_becomes_none(project, codebook):
    frame, report = import_qdpx(project, codebook, uncoded_as="none")
    extra = frame[frame["code"] == ""]
    assert len(extra) == report.uncoded_excerpts > 0
    assert set(extra["label"]) == {"none"}
    assert SMP06_GUID not in set(extra["source"])  # an uncoded transcript is not evidence of "none"
    assert "We also moved offices that winter, which was chaotic." in set(extra["text"])
    assert (extra["speaker_role"] == "participant").all()
    coded = frame[frame["code"] != ""]
    texts = {
        SMP01_GUID: (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8"),
        MAORI_GUID: MAORI_TEXT,
        INLINE_GUID: INLINE_TEXT,
    }
    for row in extra.itertuples():
        assert texts[row.source][row.start : row.end] == row.text
        same = coded[coded["source"] == row.source]
        assert not ((same["start"] < row.end) & (row.start < same["end"])).any()
    # gold span 4 is coded only "Funding" (unmapped), so its turn is uncovered and becomes none
    assert gold_codings()[4]["text"] in set(extra["text"])
    with pytest.raises(QdaError, match="uncoded_as: 'nothing' is not a codebook code"):
        import_qdpx(project, codebook, uncoded_as="nothing")


def test_load_coded_reads_a_project(project, codebook):
    data = load_coded(project, codebook)
    assert set(data.frame["group"]) == {"smp01_child_welfare.txt", MAORI_NAME, "inline note"}
    assert set(data.frame["coder"]) == {"Ana", "Ben"}
    assert data.frame["id"].str.fullmatch(r"[0-9a-f-]{36}").all()
    assert any("'Funding' (2)" in note for note in data.report.notes)
    # load_coded has no --code-map: the advice is an import run whose output can be used instead
    funding = next(note for note in data.report.notes if "'Funding' (2)" in note)
    assert f"`supportlens import {project} --code-map MAP.yaml --out coded.csv`" in funding


def _broken(tmp_path: Path, kind: str) -> tuple[Path, str]:
    path = tmp_path / "broken.qdpx"
    if kind == "not a zip":
        path.write_bytes(b"this is a plain text file")
        return path, r"broken\.qdpx: not a REFI-QDA project \(a \.qdpx file is a zip archive\)"
    if kind == "no project.qde":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("Sources/x.txt", "hello")
        return path, r"broken\.qdpx: no project\.qde in the archive"
    if kind == "broken XML":
        build_project(
            path, [], qde=b'<?xml version="1.0"?>\n<Project xmlns="urn:QDA-XML:project:1.0" name="x">\n<Users>'
        )
        return path, r"broken\.qdpx: project\.qde: broken XML at line 3, column"
    if kind == "missing source file":
        build_project(path, [maori_source()], drop_member=f"Sources/{MAORI_GUID}.txt")
        return path, (
            rf"broken\.qdpx: project\.qde: TextSource {MAORI_GUID} \('{MAORI_NAME}'\): "
            rf"plainTextPath 'internal://{MAORI_GUID}\.txt': Sources/{MAORI_GUID}\.txt is not in the archive"
        )
    if kind == "dangling CodeRef":
        source = maori_source()
        source["selections"][1] = (make_guid("m-pull"), 10, 20, BEN, [make_guid("nowhere")])
        build_project(path, [source])
        return path, (
            rf"PlainTextSelection {make_guid('m-pull')} in source '{MAORI_NAME}': Coding [0-9a-f-]+: "
            rf"CodeRef {make_guid('nowhere')} is not a code of the project's CodeBook"
        )
    source = maori_source()  # positions past the end of the text
    source["selections"][0] = (make_guid("m-co"), 10, len(MAORI_TEXT) + 5, ANA, [PUSH])
    build_project(path, [source])
    return path, rf"PlainTextSelection {make_guid('m-co')} .*positions 10-{len(MAORI_TEXT) + 5} lie outside"


@pytest.mark.parametrize(
    "kind",
    ["not a zip", "no project.qde", "broken XML", "missing source file", "dangling CodeRef", "positions out of range"],
)
def test_broken_projects_give_one_line_errors(tmp_path, codebook, kind):
    path, message = _broken(tmp_path, kind)
    with pytest.raises(QdaError, match=message) as info:
        import_qdpx(path, codebook)
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(DataError, match=message):  # and training reports the same
        load_coded(path, codebook)


# ---------------------------------------------------------------------------------------------
# export


def test_suggestions_are_added_and_human_codings_stay_untouched(project, codebook, tmp_path):
    before = project_selections(project)
    out = tmp_path / "suggested.qdpx"
    preds = gold_predictions()
    report = export_suggestions(project, preds, None, out, codebook, min_confidence=0.5, model_uri="runs:/abc123/model")
    xml = assert_valid_project(out)
    after = project_selections(out)
    assert {g: after[g] for g in before} == before  # every human selection byte-identical
    kept = preds[(preds["confidence"] >= 0.5) & (preds["label"] != "none")]
    assert report.suggestions == len(after) - len(before) == len(kept) > 0
    assert report.below_confidence == ((preds["confidence"] < 0.5) & (preds["label"] != "none")).sum()
    assert report.none_skipped == (preds["label"] == "none").sum()
    assert report.codes_created == []  # the project's own Push / Pull / Co-creation codes are reused
    with zipfile.ZipFile(project) as a, zipfile.ZipFile(out) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():
            if name != "project.qde":
                assert a.read(name) == b.read(name)
        assert b.read(f"Sources/{AUDIO_GUID}.m4a") == AUDIO
    root = ET.fromstring(xml)
    users = [u.get("name") for u in root.iter(f"{{{NS}}}User")]
    assert users == ["Ana", "Ben", "supportlens suggestions"]
    descriptions = [d.text for d in root.iter(f"{{{NS}}}Description")]
    assert any(
        d.startswith("supportlens suggestion: push, confidence 0.90, model runs:/abc123/model") for d in descriptions
    )

    _, human = import_qdpx(out, codebook)
    assert human.suggestions_skipped == len(kept) and human.excerpts == 18
    frame, _ = import_qdpx(out, codebook, include_suggestions=True)
    ai = frame[frame["coder"] == "supportlens suggestions"].sort_values("start")
    assert (
        ai[["start", "end", "text", "label"]].values.tolist()
        == kept.sort_values("start")[["start", "end", "text", "label"]].values.tolist()
    )


def test_code_prefix_makes_new_codes_and_reexport_reuses_them(project, codebook, tmp_path):
    out = tmp_path / "ai.qdpx"
    report = export_suggestions(project, gold_predictions(), None, out, codebook, code_prefix="AI: ")
    assert report.codes_created == ["AI: Push", "AI: Pull", "AI: Co-creation / exchange"]
    root = ET.fromstring(assert_valid_project(out))
    codes = {c.get("name"): c for c in root.iter(f"{{{NS}}}Code")}
    assert codes["AI: Push"].get("color") == codebook.code("push").color
    assert "Use when:" in codes["AI: Pull"].findtext(f"{{{NS}}}Description")
    again = tmp_path / "ai2.qdpx"
    report = export_suggestions(out, gold_predictions(), None, again, codebook, code_prefix="AI: ")
    assert report.codes_created == []
    root = ET.fromstring(assert_valid_project(again))
    assert [u.get("name") for u in root.iter(f"{{{NS}}}User")].count("supportlens suggestions") == 1
    frame, _ = import_qdpx(again, codebook, include_suggestions=True)
    assert set(frame.loc[frame["coder"] == "supportlens suggestions", "code"]) == {
        "AI: Push",
        "AI: Pull",
        "AI: Co-creation / exchange",
    }


def test_crlf_source_round_trips_through_export(project, codebook, tmp_path):
    transcript = source_transcript(MAORI_NAME, MAORI_TEXT)
    passages = [p for p in segment(transcript) if p.role == "participant"]
    preds = pd.DataFrame(
        [
            {
                "source": MAORI_GUID,
                "start": p.start,
                "end": p.end,
                "text": p.text,
                "label": "co_creation",
                "confidence": 0.8,
            }
            for p in passages
        ]
    )
    out = tmp_path / "crlf.qdpx"
    export_suggestions(project, preds, None, out, codebook)
    with zipfile.ZipFile(out) as archive:
        assert archive.read(f"Sources/{MAORI_GUID}.txt") == MAORI_TEXT.encode("utf-8")  # bytes unchanged
    frame, _ = import_qdpx(out, codebook, include_suggestions=True)
    ai = frame[(frame["coder"] == "supportlens suggestions")].sort_values("start")
    assert ai[["start", "end", "text"]].values.tolist() == preds[["start", "end", "text"]].values.tolist()
    # an inline source with escaped CRs keeps them through the rewrite (else the text would shift)
    inline = frame[frame["source"] == INLINE_GUID].iloc[0]
    assert inline["text"] == "The district asked for coaching on referrals."


def test_predictions_that_do_not_fit_the_source_are_refused(project, codebook, tmp_path):
    out = tmp_path / "x.qdpx"
    bad = gold_predictions().head(2).copy()
    bad.loc[0, "start"] += 1
    with pytest.raises(QdaError, match="predictions row 1: the text at .* differs"):
        export_suggestions(project, bad, None, out, codebook)
    bad = gold_predictions().head(1).assign(source="nowhere.txt")
    with pytest.raises(QdaError, match="predictions row 1: source 'nowhere.txt' is not a text source"):
        export_suggestions(project, bad, None, out, codebook)
    with pytest.raises(QdaError, match="missing column confidence"):
        export_suggestions(project, gold_predictions().drop(columns="confidence"), None, out, codebook)
    assert not out.exists()


def test_export_codebook_is_a_valid_qdc(codebook, tmp_path):
    out = export_codebook(codebook, tmp_path / "codebook.qdc")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # ordinary rights, not mkstemp's 0600
    data = out.read_bytes()
    schema("Codebook.xsd").validate(io.BytesIO(data))
    ns = "{urn:QDA-XML:codebook:1.0}"
    codes = ET.fromstring(data).findall(f"{ns}Codes/{ns}Code")
    assert [c.get("name") for c in codes] == [c.name for c in codebook.codes]
    pull = codes[codebook.labels.index("pull")]
    description = pull.findtext(f"{ns}Description")
    assert codebook.code("pull").use_when in description and codebook.code("pull").do_not_use_when in description
    assert pull.get("color") == codebook.code("pull").color
    again = ET.fromstring(export_codebook(codebook, tmp_path / "again.qdc").read_bytes())
    assert [c.get("guid") for c in again.findall(f"{ns}Codes/{ns}Code")] == [c.get("guid") for c in codes]


# ---------------------------------------------------------------------------------------------
# command line


def _training_project(path: Path) -> Path:
    """make_rows() as a project: one source per interview, each excerpt a coded participant turn."""
    by_interview: dict[str, list[dict]] = {}
    for row in make_rows():
        by_interview.setdefault(row["interview_id"], []).append(row)
    sources = []
    for interview, rows in by_interview.items():
        text, selections = "", []
        for k, row in enumerate(rows):
            text += "Interviewer: Could you say more about that?\n\nP01: "
            selections.append(
                (
                    make_guid(row["id"]),
                    len(text),
                    len(text) + len(row["text"]),
                    ANA if k % 2 else BEN,
                    [LABEL_CODE[row["label"]]],
                )
            )
            text += row["text"] + "\n\n"
        sources.append({"guid": make_guid(interview), "name": interview, "text": text, "selections": selections})
    return build_project(path, sources)


def test_cli_import_then_train_on_the_project(tmp_path, tracking_uri):
    project = _training_project(tmp_path / "coded.qdpx")
    result = runner.invoke(
        app, ["import", str(project), "--out", str(tmp_path / "coded.jsonl"), "--codebook", str(CODEBOOK)]
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_json(tmp_path / "coded.jsonl", lines=True)
    assert len(rows) == 80 and set(rows["speaker"]) == {"P01"}
    assert "Support model > Push" in result.output and "coders: Ben (40), Ana (40)" in result.output
    args = ["train", "--config", str(CODEBOOK.parent / "tfidf.yaml"), "--data", str(project), "--no-track"]
    for s in fast_overrides():
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "80 excerpts kept of 80 read" in result.output


def test_cli_train_on_a_project_of_suggestions_points_to_import(codebook, tmp_path):
    """train has no --include-suggestions: its advice must be a command that has one."""
    human = build_project(tmp_path / "uncoded.qdpx", [{**smp01_source(), "selections": []}])
    suggested = tmp_path / "suggested.qdpx"
    export_suggestions(human, gold_predictions(), None, suggested, codebook)
    result = runner.invoke(
        app, ["train", "--config", str(CODEBOOK.parent / "tfidf.yaml"), "--data", str(suggested), "--no-track"]
    )
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # rich may wrap a long line
    assert "supportlens suggestions skipped" in output
    assert f"`supportlens import {suggested} --include-suggestions --out coded.csv`" in output
    assert "include them with --include-suggestions)" not in output
    result = runner.invoke(
        app,
        [
            "import",
            str(suggested),
            "--out",
            str(tmp_path / "ai.csv"),
            "--codebook",
            str(CODEBOOK),
            "--include-suggestions",
        ],
    )
    assert result.exit_code == 0, result.output  # and the advice works


def test_cli_import_code_map_uncoded_and_errors(project, tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Responsive TA: pull\n", encoding="utf-8")
    out = tmp_path / "coded.xlsx"
    result = runner.invoke(
        app,
        [
            "import",
            str(project),
            "--out",
            str(out),
            "--code-map",
            str(mapping),
            "--uncoded-as",
            "none",
            "--codebook",
            str(CODEBOOK),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_excel(out)
    assert make_guid("smp01-12") in set(frame["id"]) and "none" in set(frame["label"])
    assert "selections skipped" in result.output and "'Funding' (2)" in result.output
    broken, _ = _broken(tmp_path, "dangling CodeRef")
    result = runner.invoke(app, ["import", str(broken), "--out", str(tmp_path / "b.csv"), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 2 and "is not a code of the project's CodeBook" in result.output
    assert not (tmp_path / "b.csv").exists()


def test_excerpts_as_jsonl_read_as_written(tmp_path):
    """Slashes and non-ASCII text are not escaped (pandas' to_json writes "a\\/b")."""
    rows = [
        {
            "id": "g1",
            "interview_id": MAORI_NAME,
            "text": "we co-designed it with the whānau/iwi",
            "label": "co_creation",
            "code": "Support model/Co-creation",
            "start": 0,
            "end": 5,
        }
    ]
    out = write_excerpts(pd.DataFrame(rows), tmp_path / "coded.jsonl")
    raw = out.read_text(encoding="utf-8")
    assert raw.count("\n") == 1 and "\\/" not in raw and "\\u" not in raw
    assert '"code":"Support model/Co-creation"' in raw and MAORI_NAME in raw
    assert json.loads(raw) == rows[0]


def test_cli_export_codebook(tmp_path):
    result = runner.invoke(app, ["export-codebook", "--out", str(tmp_path / "cb.qdc"), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 0, result.output
    schema("Codebook.xsd").validate(str(tmp_path / "cb.qdc"))
    result = runner.invoke(app, ["export-codebook", "--out", str(tmp_path / "cb.xml")])
    assert result.exit_code == 2 and "must end in .qdc" in result.output


def test_cli_predict_project_into_suggestions(project, model_dir, tmp_path):
    out = tmp_path / "suggested.qdpx"
    result = runner.invoke(
        app,
        [
            "predict",
            str(project),
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--code-prefix",
            "AI: ",
            "--min-confidence",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    root = ET.fromstring(assert_valid_project(out))
    names = {c.get("name") for c in root.iter(f"{{{NS}}}Code")}
    assert {"Push", "Pull"} <= names and any(n.startswith("AI: ") for n in names)
    assert "4 transcripts labelled" in result.output
    # labelling the labelled project again replaces its suggestions instead of doubling them
    before = sum(1 for s in root.iter(f"{{{NS}}}PlainTextSelection"))
    again = tmp_path / "again.qdpx"
    result = runner.invoke(
        app,
        [
            "predict",
            str(out),
            "--model",
            str(model_dir),
            "--out",
            str(again),
            "--code-prefix",
            "AI: ",
            "--min-confidence",
            "0.3",
        ],
    )
    assert result.exit_code == 0 and "earlier supportlens suggestions replaced" in result.output, result.output
    assert sum(1 for s in ET.fromstring(assert_valid_project(again)).iter(f"{{{NS}}}PlainTextSelection")) == before
    result = runner.invoke(app, ["predict", str(project), "--model", str(model_dir), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "a .qdpx project is labelled into a .qdpx output" in result.output
    result = runner.invoke(
        app,
        [
            "predict",
            str(project),
            str(SAMPLES / "smp01_child_welfare.txt"),
            "--model",
            str(model_dir),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2 and "give one .qdpx project, or transcripts" in result.output
    new = tmp_path / "new.qdpx"
    result = runner.invoke(
        app,
        [
            "predict",
            str(SAMPLES / "smp01_child_welfare.txt"),
            str(SAMPLES / "smp06_juvenile_justice.md"),
            "--model",
            str(model_dir),
            "--out",
            str(new),
        ],
    )
    assert result.exit_code == 0, result.output
    root = ET.fromstring(assert_valid_project(new))
    assert sorted(s.get("name") for s in root.iter(f"{{{NS}}}TextSource")) == [
        "smp01_child_welfare.txt",
        "smp06_juvenile_justice.md",
    ]


# ---------------------------------------------------------------------------------------------
# an existing project is never lost (predict_to_qdpx's own tests: tests/inference/test_qdpx.py)


def test_cli_refuses_an_existing_project_before_loading_the_model(project, model_dir, tmp_path):
    before = project.read_bytes()
    transcript = str(SAMPLES / "smp01_child_welfare.txt")
    missing_model = str(tmp_path / "no-model")  # never loaded: the refusal comes first
    result = runner.invoke(app, ["predict", transcript, "--model", missing_model, "--out", str(project)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (
        f"{project} already exists and holds 5 sources and {count_codings(project)} codings by 2 users; "
        "it is not replaced"
    ) in said
    assert (
        f"supportlens predict {project} --model {missing_model} --out {tmp_path / 'project-suggestions.qdpx'}" in said
        and "or give --out a new file name" in said
    )
    for args in (["--overwrite"], []):
        result = runner.invoke(app, ["predict", str(project), "--model", missing_model, "--out", str(project), *args])
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and "already exists and holds 5 sources" in said, result.output
        assert ("not even with --overwrite" in said) == bool(args)
    assert project.read_bytes() == before
    # a project of supportlens suggestions only: --overwrite replaces it
    out = tmp_path / "ai.qdpx"
    assert runner.invoke(app, ["predict", transcript, "--model", str(model_dir), "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["predict", transcript, "--model", str(model_dir), "--out", str(out)])
    assert result.exit_code == 2 and "(no human work); pass --overwrite to replace it" in result.output
    result = runner.invoke(app, ["predict", transcript, "--model", str(model_dir), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0 and "1 transcripts labelled" in result.output, result.output


def test_cli_import_and_export_codebook_with_nothing_to_write_leave_the_earlier_file_alone(tmp_path):
    """A project nobody has coded yields no excerpts, and a codebook that does not load yields no
    .qdc: the file already at --out keeps every byte, and the message says it was not written."""
    coded, qdc = tmp_path / "coded.csv", tmp_path / "cb.qdc"
    coded.write_bytes(b"id,text,label\nkeep,earlier work,push\n")
    qdc.write_bytes(b"<CodeBook>earlier</CodeBook>")
    uncoded = build_project(tmp_path / "uncoded.qdpx", [smp06_source()])
    result = runner.invoke(app, ["import", str(uncoded), "--out", str(coded), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 2
    assert f"no coded selection maps to the codebook, so {coded} was not written (it is unchanged)" in " ".join(
        result.output.split()
    ), result.output
    assert coded.read_bytes() == b"id,text,label\nkeep,earlier work,push\n"
    broken = tmp_path / "broken.yaml"
    broken.write_text("codes: [\n", encoding="utf-8")
    result = runner.invoke(app, ["export-codebook", "--out", str(qdc), "--codebook", str(broken)])
    assert result.exit_code == 2 and "broken.yaml" in result.output
    assert f"{qdc} was not written (it is unchanged)" in " ".join(result.output.split()), result.output
    assert qdc.read_bytes() == b"<CodeBook>earlier</CodeBook>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml", "cb.qdc", "coded.csv", "uncoded.qdpx"]
