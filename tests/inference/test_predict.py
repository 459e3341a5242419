"""Batch prediction: outputs, resume after an interruption, bad files, speakers, the CLI."""

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import ROOT, make_rows
from supportlens.cli import app
from supportlens.cli.common import in_cli_terms
from supportlens.inference import loop
from supportlens.inference.labeler import Labeler, PredictError
from supportlens.inference.predict import predict_files, summarise
from supportlens.models import load_classifier

SAMPLES = ROOT / "data" / "transcripts"
runner = CliRunner()


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for name in (
        "smp01_child_welfare.txt",
        "smp03_schools_teams.vtt",
        "smp04_behavioural_health.srt",
        "smp05_public_health.docx",
        "smp06_juvenile_justice.md",
    ):
        shutil.copy(SAMPLES / name, d / name)
    return d


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_outputs_carry_provenance_and_probabilities(folder, labeler, tmp_path, suffix):
    out = tmp_path / f"labels{suffix}"
    report = predict_files([str(folder)], labeler, out, summary=tmp_path / "profile.csv")
    assert report.files_done == 5 and not report.failures
    frame = (
        pd.read_csv(out)
        if suffix == ".csv"
        else pd.read_json(out, lines=True)
        if suffix == ".jsonl"
        else pd.read_parquet(out)
    )
    assert len(frame) == report.passages > 50
    for col in (
        "source",
        "passage_index",
        "speaker",
        "role",
        "start",
        "end",
        "start_time",
        "end_time",
        "text",
        "label",
        "p_push",
        "p_pull",
        "p_co_creation",
        "p_none",
        "confidence",
        "needs_review",
    ):
        assert col in frame.columns, col
    assert (frame["role"] != "interviewer").all()  # interviewer turns are not scored by default
    probs = frame[["p_push", "p_pull", "p_co_creation", "p_none"]].sum(axis=1)
    assert probs.round(6).eq(1).all()
    assert (frame["needs_review"] == (frame["confidence"] < 0.5)).all()
    # offsets point into the transcript's text (the file itself for .txt/.md)
    txt = frame[frame["source"].str.endswith(".txt")]
    source_text = (folder / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    for row in txt.itertuples():
        assert source_text[row.start : row.end] == row.text
    vtt = frame[frame["source"].str.endswith(".vtt")]
    assert vtt["start_time"].notna().all() and vtt["end_time"].notna().all()
    profile = pd.read_csv(tmp_path / "profile.csv")
    assert len(profile) == 5
    assert set(profile["dominant"]) <= {"push", "pull", "co_creation", "none"}
    assert (
        profile["n_push"]
        .add(profile["n_pull"])
        .add(profile["n_co_creation"])
        .add(profile["n_none"])
        .eq(profile["passages"])
        .all()
    )
    # no journal or temp file left behind; only the record of what made the output
    assert [p.name for p in tmp_path.glob(".labels*")] == [f".labels{suffix}.run.json"]
    if suffix == ".jsonl":  # paths as written, not "\/"-escaped as pandas' to_json writes them
        raw = out.read_text(encoding="utf-8")
        assert "\\/" not in raw and f'"source":"{folder.as_posix()}/smp01_child_welfare.txt"' in raw


TABLE = pd.DataFrame(
    {
        "id": ["q1", "007", "a2"],
        "speaker_role": ["interviewer", "participant", "participant"],
        "text": [
            "How did you support the county?",
            "we trained every site on the manual and checked fidelity each month",
            "we designed the plan together with the families and staff and shared decisions",
        ],
    }
)
PASSAGES_TEXT = [
    "we trained every site",
    "we listened to the county",
    "we designed it together",
    "the funding ended",
    "the team agreed next steps",
]
COLUMNS = [
    "source",
    "passage_index",
    "speaker",
    "role",
    "start",
    "end",
    "start_time",
    "end_time",
    "text",
    "label",
    "p_push",
    "p_pull",
    "p_co_creation",
    "p_none",
    "confidence",
    "needs_review",
]


def _read(out: Path) -> pd.DataFrame:
    if out.suffix == ".csv":
        return pd.read_csv(out, dtype={"row_id": str})
    return pd.read_json(out, lines=True, dtype={"row_id": str}) if out.suffix == ".jsonl" else pd.read_parquet(out)


@pytest.mark.parametrize("table, out_suffix", [(".csv", ".csv"), (".xlsx", ".parquet"), (".csv", ".jsonl")])
def test_table_rows_keep_their_id_and_role(folder, labeler, tmp_path, table, out_suffix):
    path = tmp_path / f"rows{table}"
    if table == ".csv":
        TABLE.to_csv(path, index=False)
    else:
        TABLE.to_excel(path, index=False)
    out = tmp_path / f"labels{out_suffix}"
    predict_files([str(path)], labeler, out)
    frame = _read(out)
    assert list(frame.columns) == COLUMNS + ["row_id"]  # the existing columns first, in their order
    assert frame["row_id"].tolist() == ["007", "a2"]  # the interviewer's row is not scored
    assert frame["role"].tolist() == ["participant", "participant"]
    asked = _read(predict_files([str(path)], labeler, tmp_path / f"i{out_suffix}", speaker="interviewer").output)
    assert asked["row_id"].tolist() == ["q1"] and asked["role"].tolist() == ["interviewer"]
    # beside a transcript, whose rows have no id; other outputs keep the columns they had
    both = _read(
        predict_files(
            [str(path), str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / f"both{out_suffix}"
        ).output
    )
    assert both.loc[both["source"] == str(path), "row_id"].tolist() == ["007", "a2"]
    assert both.loc[both["source"] != str(path), "row_id"].isna().all()
    alone = predict_files([str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / f"txt{out_suffix}")
    assert list(_read(alone.output).columns) == COLUMNS
    # resuming keeps the ids as written
    again = predict_files(
        [str(path), str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / f"both{out_suffix}", resume=True
    )
    assert again.files_skipped == 2
    assert _read(again.output).loc[lambda f: f["source"] == str(path), "row_id"].tolist() == ["007", "a2"]


def test_progress_counts_only_the_files_that_are_read(folder, labeler, tmp_path):
    (folder / "empty.txt").write_text("")
    totals, counted = [], []
    report = predict_files(
        [str(folder), str(tmp_path / "missing.txt")],
        labeler,
        tmp_path / "l.csv",
        on_total=totals.append,
        on_progress=lambda files, passages: counted.append(files),
        chunk_passages=1,
    )
    assert totals == [6]  # five transcripts and the empty file; not the path that names no file
    assert counted[-1] == 6 and counted == sorted(counted)
    assert sorted(Path(f.source).name for f in report.failures) == ["empty.txt", "missing.txt"]


def test_speaker_choice(folder, labeler, tmp_path):
    every = predict_files([str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / "a.csv", speaker="all")
    only_int = predict_files(
        [str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / "i.csv", speaker="interviewer"
    )
    part = predict_files([str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / "p.csv")
    assert every.passages == only_int.passages + part.passages
    assert set(pd.read_csv(tmp_path / "i.csv")["role"]) == {"interviewer"}


def test_no_passages_of_a_role_says_how_roles_were_found(labeler, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Speaker 1  0:00\nHello, we rolled it out.\n\nSpeaker 2  0:05\nWe co-designed it.\n")
    report = predict_files([str(short)], labeler, tmp_path / "labels.csv", speaker="interviewer")
    assert [in_cli_terms(f.reason) for f in report.failures] == [  # as the command line says it
        f"{short}: no interviewer passages to score (no interviewer found among 2 speakers, by name or by "
        "questions (at least 3 turns each): all are scored as participants; pass --interviewer NAME)"
    ]


def test_only_interviewer_turns_says_speaker_all_labels_them(labeler, tmp_path):
    asks = tmp_path / "asks.txt"
    asks.write_text("Interviewer: How did the county start?\n\nInterviewer: And then?\n")
    report = predict_files([str(asks)], labeler, tmp_path / "labels.csv")
    assert [f.reason for f in report.failures] == [
        f"{asks}: no participant passages to score: all 2 passage(s) are interviewer turns, which `speaker='all'` "
        "labels too (`speaker='interviewer'` labels them alone)"
    ]
    assert report.output is None and not (tmp_path / "labels.csv").exists()


def test_repeated_row_ids_are_noted(labeler, tmp_path):
    path = tmp_path / "rows.csv"
    pd.DataFrame({"id": ["a1", "a2", "a1", "b", "b"], "text": PASSAGES_TEXT}).to_csv(path, index=False)
    report = predict_files([str(path)], labeler, tmp_path / "labels.csv")
    assert report.files_done == 1 and report.passages == 5
    assert (
        f"{path}: 2 id(s) in column 'id' are used by more than one row, so row_id does not tell those rows "
        "apart: 'a1' (rows 2, 4), 'b' (rows 5, 6); give each row its own id" in report.note_lines()
    )


def test_bad_files_do_not_sink_the_batch(folder, labeler, tmp_path):
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 50)
    (folder / "broken.vtt").write_text("not a caption file\n\n00:00 --> nonsense\nhello\n")
    (folder / "only_interviewer.txt").write_text("Interviewer: How are you?\n\nInterviewer: And then?\n")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    out = tmp_path / "labels.csv"
    report = predict_files([str(folder), str(tmp_path / "notes.pdf"), str(tmp_path / "missing.txt")], labeler, out)
    reasons = {Path(f.source).name: f.reason for f in report.failures}
    assert report.files_done == 5
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "broken.vtt" in reasons["broken.vtt"]
    assert "no participant passages" in reasons["only_interviewer.txt"]
    assert "unsupported" in reasons["notes.pdf"]
    assert any("missing.txt" in f.source for f in report.failures)
    assert all("\n" not in f.reason for f in report.failures)
    assert pd.read_csv(out)["source"].nunique() == 5


def test_interrupted_run_resumes(folder, labeler, tmp_path, monkeypatch):
    out = tmp_path / "labels.jsonl"
    calls = {"n": 0}
    original = labeler.score

    def flaky(texts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the third transcript
        return original(texts)

    monkeypatch.setattr(labeler, "score", flaky)
    with pytest.raises(KeyboardInterrupt):
        predict_files([str(folder)], labeler, out, chunk_passages=1)
    assert not out.exists()  # never half-written
    journal = tmp_path / ".labels.jsonl.parts"
    assert len(list(journal.glob("*.jsonl"))) == 2  # the two finished transcripts are kept
    monkeypatch.setattr(labeler, "score", original)
    report = predict_files([str(folder)], labeler, out, resume=True, chunk_passages=1)
    assert report.files_skipped == 2 and report.files_done == 3
    frame = pd.read_json(out, lines=True)
    assert frame["source"].nunique() == 5
    assert not frame.duplicated(["source", "passage_index"]).any()
    # resuming from a finished output skips everything
    again = predict_files([str(folder)], labeler, out, resume=True)
    assert again.files_skipped == 5 and again.files_done == 0
    assert len(pd.read_json(out, lines=True)) == len(frame)


def test_resume_relabels_edited_files_and_never_mixes_settings(folder, model_dir, tmp_path):
    out = tmp_path / "labels.csv"
    first = predict_files([str(folder)], Labeler(load_classifier(model_dir)), out)
    edited = sorted(p for p in folder.iterdir() if p.suffix == ".txt")[0]
    edited.write_text(
        edited.read_text(encoding="utf-8") + "\nP1: We wrote the new guide together with the families.\n",
        encoding="utf-8",
    )
    again = predict_files([str(folder)], Labeler(load_classifier(model_dir)), out, resume=True)
    assert again.files_done == 1 and again.files_skipped == first.files_done - 1
    assert any("changed since the earlier run" in n for n in again.notes)
    frame = pd.read_csv(out)
    assert frame["text"].str.contains("together with the families").any()
    assert not frame.duplicated(["source", "passage_index"]).any()
    # resumed with fewer inputs: the earlier rows of the others are kept, and the notes say so
    fewer = predict_files([str(edited)], Labeler(load_classifier(model_dir)), out, resume=True)
    assert any(
        f"{first.files_done - 1} transcript(s) in the earlier labels.csv are not among this run's inputs" in n
        for n in fewer.notes
    ), fewer.notes
    assert pd.read_csv(out)["source"].nunique() == first.files_done
    # another review threshold (or model, or speaker choice) would mix two kinds of rows
    with pytest.raises(PredictError, match="other settings .*review_below.*write to a new `output`"):
        predict_files([str(folder)], Labeler(load_classifier(model_dir), review_below=0.99), out, resume=True)
    with pytest.raises(PredictError, match="speaker participant there, all now"):
        predict_files([str(folder)], Labeler(load_classifier(model_dir)), out, resume=True, speaker="all")
    other = load_classifier(model_dir)
    other.meta_ = {**other.meta_, "temperature": 123.0}  # a differently trained model
    with pytest.raises(PredictError, match="model "):
        predict_files([str(folder)], Labeler(other), out, resume=True)
    # an output without its record (e.g. copied elsewhere) is resumed, with a note saying so
    (tmp_path / ".labels.csv.run.json").unlink()
    legacy = predict_files([str(folder)], Labeler(load_classifier(model_dir)), out, resume=True)
    assert legacy.files_done == 0 and any("no record of the model" in n for n in legacy.notes)


def test_bad_options(labeler, tmp_path, folder):
    with pytest.raises(PredictError, match="`output` must end in"):
        predict_files([str(folder)], labeler, tmp_path / "labels.txt")
    with pytest.raises(PredictError, match="`speaker` must be one of"):
        predict_files([str(folder)], labeler, tmp_path / "l.csv", speaker="everyone")
    with pytest.raises(PredictError, match="does not exist"):
        predict_files([str(folder)], labeler, tmp_path / "nope" / "l.csv")


def test_summary_dominant_approach():
    frame = pd.DataFrame(
        {
            "source": ["a"] * 3,
            "text": ["one two three", "four", "five six"],
            "label": ["pull", "none", "push"],
            "needs_review": [False, True, False],
        }
    )
    s = summarise(frame, ["push", "pull", "co_creation", "none"])
    assert s.loc[0, "dominant"] == "pull"
    assert s.loc[0, "word_share_pull"] == pytest.approx(0.5)
    assert s.loc[0, "needs_review"] == 1
    tied = summarise(frame.assign(text=["one two", "four", "five six"]), ["push", "pull", "co_creation", "none"])
    assert tied.loc[0, "dominant"] == "push/pull"  # not whichever code the codebook lists first
    nothing = summarise(frame.assign(label="none"), ["push", "pull", "co_creation", "none"])
    assert nothing.loc[0, "dominant"] == "none"


def test_cli_predict_interrupted_says_how_to_resume(folder, model_dir, tmp_path, monkeypatch):
    import supportlens.inference.predict

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def interrupted_after_one(*args, on_total=None, on_progress=None, **kwargs):
        on_total(3)
        on_progress(1, 12)  # one transcript finished and committed
        raise KeyboardInterrupt

    monkeypatch.setattr(supportlens.inference.predict, "predict_files", interrupted_after_one)
    out = tmp_path / "labels.csv"
    result = runner.invoke(app, ["predict", str(folder), "--model", str(model_dir), "--out", str(out)])
    assert result.exit_code == 130
    assert "run the same command with --resume" in " ".join(result.output.split())
    # interrupted before any transcript was finished: nothing is kept, and it says so
    monkeypatch.setattr(supportlens.inference.predict, "predict_files", interrupted)
    early = runner.invoke(app, ["predict", str(folder), "--model", str(model_dir), "--out", str(out)])
    assert early.exit_code == 130
    said = " ".join(early.output.split())
    assert "before any transcript was finished" in said and "kept" not in said
    import supportlens.inference.qdpx

    monkeypatch.setattr(
        supportlens.inference.qdpx, "predict_to_qdpx", interrupted
    )  # a project is written whole or not at all
    project = runner.invoke(app, ["predict", str(folder), "--model", str(model_dir), "--out", str(tmp_path / "p.qdpx")])
    assert project.exit_code == 130 and "p.qdpx was not written; run the command again" in " ".join(
        project.output.split()
    )
    assert not (tmp_path / "p.qdpx").exists()


def test_cli_predict(folder, model_dir, tmp_path):
    (folder / "empty.txt").write_text("")
    out = tmp_path / "labels.csv"
    result = runner.invoke(
        app,
        [
            "predict",
            str(folder),
            str(tmp_path / "missing.txt"),
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--summary",
            str(tmp_path / "profile.csv"),
        ],
    )
    assert result.exit_code == 1  # two inputs failed
    assert "2 file(s) failed" in result.output and "empty.txt" in result.output
    assert "missing.txt: no such file or folder" in result.output
    assert "6/6 files" in result.output  # the bar counts the files read, not the path that names none
    assert "5 transcripts labelled" in result.output
    assert out.is_file() and (tmp_path / "profile.csv").is_file()
    ok = runner.invoke(
        app,
        [
            "predict",
            str(folder / "smp06_juvenile_justice.md"),
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "one.jsonl"),
            "--speaker",
            "all",
        ],
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["predict", str(folder), "--model", str(tmp_path / "no-model"), "--out", str(out)])
    assert bad.exit_code == 2 and "not found" in bad.output
    above = runner.invoke(
        app, ["predict", str(folder), "--model", str(model_dir), "--out", str(out), "--review-below", "1.5"]
    )
    assert above.exit_code == 2 and "--review-below is a confidence between 0 and 1, got 1.5" in above.output


def test_cli_predict_failing_before_any_file_is_read_shows_no_progress_bar(model_dir, tmp_path):
    """No transcript to read (every input names nothing, or the project is missing): the errors
    alone, not an empty 0/0 bar among them."""
    missing = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path / "nope.txt"),
            str(tmp_path / "none" / "*.vtt"),
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "labels.csv"),
        ],
    )
    assert missing.exit_code == 1 and "nope.txt: no such file or folder" in missing.output
    assert "labelling" not in missing.output and "0/0 files" not in missing.output, missing.output
    project = runner.invoke(
        app, ["predict", str(tmp_path / "nope.qdpx"), "--model", str(model_dir), "--out", str(tmp_path / "out.qdpx")]
    )
    assert project.exit_code == 2 and "nope.qdpx: file not found" in project.output
    assert "labelling" not in project.output, project.output
    assert project.output.startswith("error:")  # no blank line where the bar would have been


def test_whole_path_with_tiny_finetuned_model(tiny_bert, tmp_path, folder):
    from supportlens.models import FineTuneClassifier

    rows = make_rows(4, 1)
    model = FineTuneClassifier(
        labels=["push", "pull", "co_creation", "none"], pretrained=str(tiny_bert), max_length=24, epochs=1, batch_size=8
    ).fit([r["text"] for r in rows], [r["label"] for r in rows])
    model.save(tmp_path / "ft", extra={"review_threshold": 0.3})
    labeler = Labeler(load_classifier(tmp_path / "ft"), fast=True)
    assert labeler.max_tokens == 22
    report = predict_files([str(folder / "smp01_child_welfare.txt")], labeler, tmp_path / "o.csv")
    frame = pd.read_csv(tmp_path / "o.csv")
    # long turns were split under the 22-token window, with exact offsets
    assert report.passages > 17
    text = (folder / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    assert all(text[r.start : r.end] == r.text for r in frame.itertuples())


def test_gold_path_on_sample_transcripts(labeler):
    from supportlens.evaluation.agreement import cohens_kappa
    from supportlens.inference.predict import gold_comparison

    frames = [
        gold_comparison(labeler, SAMPLES / name, SAMPLES / "gold" / (Path(name).stem + ".jsonl"))
        for name in ("smp01_child_welfare.txt", "smp06_juvenile_justice.md")
    ]
    frame = pd.concat(frames)
    assert frame["matched"].all() and frame["exact_span"].all()  # segmentation recovers every gold turn
    assert len(frame) >= 30
    assert set(frame["model"]) <= {"push", "pull", "co_creation", "none"}
    assert -1 <= cohens_kappa(frame["human"], frame["model"]) <= 1


def test_other_files_in_a_folder_are_named_not_failed(folder, labeler, tmp_path):
    (folder / "consent-form.pdf").write_bytes(b"%PDF-1.4")
    report = predict_files([str(folder)], labeler, tmp_path / "l.csv")
    assert not report.failures and report.files_done == 5
    assert any(
        n.startswith(str(folder / "consent-form.pdf")) and "not a transcript (.pdf" in n for n in report.note_lines()
    )


def test_cli_checks_options_before_loading_the_model(tmp_path):
    """A typo in --out, --summary or --speaker is reported at once, not after the model loads."""
    runner = CliRunner()
    for extra, message in (
        (["--out", str(tmp_path / "z.txt")], "--out must end in"),
        (["--out", str(tmp_path / "z.csv"), "--summary", str(tmp_path / "s.txt")], "--summary must end in"),
        (["--out", str(tmp_path / "z.csv"), "--speaker", "everyone"], "--speaker must be one of"),
    ):
        result = runner.invoke(app, ["predict", str(tmp_path), "--model", str(tmp_path / "no-such-model"), *extra])
        assert result.exit_code == 2 and message in result.output, result.output


def test_cli_predict_warns_when_the_models_confidence_is_not_calibrated(tmp_path):
    """A model trained on too little validation data flags every passage; predict says why."""
    from supportlens.models import TfidfLogReg

    rows = make_rows(6, 2)
    model = TfidfLogReg(labels=["push", "pull", "co_creation", "none"]).fit(
        [r["text"] for r in rows], [r["label"] for r in rows]
    )
    reason = "the validation split holds 1 interview and 6 excerpts"
    model.save(
        tmp_path / "m", extra={"review_threshold": 1.0, "calibration": {"threshold_measured": False, "notes": [reason]}}
    )
    transcript = SAMPLES / "smp06_juvenile_justice.md"
    result = runner.invoke(
        app, ["predict", str(transcript), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "labels.csv")]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"warning: this model's confidence is not calibrated ({reason}), so every passage is flagged" in text
    assert pd.read_csv(tmp_path / "labels.csv")["needs_review"].all()
    chosen = runner.invoke(
        app,
        [
            "predict",
            str(transcript),
            "--model",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "chosen.csv"),
            "--review-below",
            "0.5",
        ],
    )
    assert chosen.exit_code == 0 and "not calibrated" not in chosen.output


def test_cli_predict_that_labels_nothing_leaves_the_earlier_output_alone(folder, model_dir, tmp_path):
    """An empty transcript or a mistyped folder: the earlier output, summary and run record keep
    every byte, the message says so, and the exit code is 1. A resumed run whose transcripts were
    all done before still (re)writes its complete output."""
    out, profile, record = tmp_path / "keep.csv", tmp_path / "profile.csv", tmp_path / ".keep.csv.run.json"
    base = ["--model", str(model_dir), "--out", str(out), "--summary", str(profile)]
    first = runner.invoke(app, ["predict", str(folder / "smp01_child_welfare.txt"), *base])
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in (out, profile, record)}
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    for inputs in (
        [str(tmp_path / "empty.txt")],
        [str(tmp_path / "no_such_folder") + "/"],
        [str(tmp_path / "no_such_folder") + "/", "--resume"],
    ):
        result = runner.invoke(app, ["predict", *inputs, *base])
        said = " ".join(result.output.split())
        assert result.exit_code == 1, result.output
        assert (
            f"no transcript was labelled, so {out} was not written (it is unchanged); {profile} was not "
            "written (it is unchanged)" in said
        ), said
        assert "transcripts labelled (" not in said  # no "0 transcripts labelled -> keep.csv"
        assert {p: p.read_bytes() for p in before} == before
        assert sorted(p.name for p in tmp_path.glob(".keep*")) == [".keep.csv.run.json"]  # no journal left
    done = runner.invoke(app, ["predict", str(folder / "smp01_child_welfare.txt"), *base, "--resume"])
    assert done.exit_code == 0, done.output
    assert "0 transcripts labelled" in done.output and "1 already done" in done.output
    assert pd.read_csv(out).equals(pd.read_csv(io.BytesIO(before[out]))) and len(pd.read_csv(out)) > 10


def test_a_run_that_labels_nothing_keeps_an_interrupted_runs_journal(folder, labeler, tmp_path, monkeypatch):
    """Without --resume the journal of an interrupted run is cleared only once this run has a
    transcript of its own to put there: an empty input must not throw the finished ones away."""
    out = tmp_path / "labels.csv"
    journal = tmp_path / ".labels.csv.parts"
    original = labeler.score

    def interrupted(texts):  # Ctrl-C once the first transcript is committed
        if list(journal.glob("*.jsonl")):
            raise KeyboardInterrupt
        return original(texts)

    monkeypatch.setattr(labeler, "score", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predict_files([str(folder)], labeler, out, chunk_passages=1)
    monkeypatch.setattr(labeler, "score", original)
    assert len(list(journal.glob("*.jsonl"))) == 1
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    nothing = predict_files([str(tmp_path / "empty.txt")], labeler, out)
    assert nothing.output is None and nothing.summary is None and len(nothing.failures) == 1
    assert not out.exists() and len(list(journal.glob("*.jsonl"))) == 1
    resumed = predict_files([str(folder)], labeler, out, resume=True)
    assert resumed.files_skipped == 1 and resumed.files_done == 4 and pd.read_csv(out)["source"].nunique() == 5


def test_a_long_transcript_counts_its_passages_as_they_are_scored(labeler, tmp_path, monkeypatch):
    path = tmp_path / "long.txt"
    path.write_text(
        "".join(f"Interviewer: And in week {i}?\nDana: We met the county team about referrals.\n" for i in range(300)),
        encoding="utf-8",
    )
    whole = predict_files([str(path)], labeler, tmp_path / "w.csv")  # one model call
    monkeypatch.setattr(loop, "SCORE_CHUNK", 64)
    seen: list[tuple[int, int]] = []
    report = predict_files(
        [str(path)], labeler, tmp_path / "l.csv", on_progress=lambda files, passages: seen.append((files, passages))
    )
    # within the one file, not only once it is done
    assert seen == [(0, 64), (0, 128), (0, 192), (0, 256), (1, 300)]
    assert report.passages == whole.passages == 300
    pd.testing.assert_frame_equal(pd.read_csv(report.output), pd.read_csv(whole.output))
