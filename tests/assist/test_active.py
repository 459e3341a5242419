"""What to code next: uncertainty ranking, the diversity step, coding sheets, and sheets fed back
into training."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import ROOT, fast_overrides, make_rows, write_jsonl
from supportlens.assist.active import (
    NothingToOffer,
    SelectionError,
    choose_next,
    diverse_order,
    drop_seen,
    read_passages,
    select_next,
    texts_in,
    uncertainty,
)
from supportlens.cli import app
from supportlens.config import DataConfig, load_config
from supportlens.corpus.dataset import DataError, load_coded
from supportlens.corpus.sheets import SHEET_COLUMNS, coding_sheet, is_coding_sheet, sheet_data_config, write_sheet
from supportlens.inference.labeler import Labeler
from supportlens.models import load_classifier
from supportlens.training.trainer import train

SAMPLES = ROOT / "data" / "transcripts"
runner = CliRunner()


class FixedModel:
    """Returns preset probabilities per text, so the expected ranking is known exactly."""

    classes_ = np.array(["push", "pull", "co_creation", "none"], dtype=object)

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def predict_proba(self, texts):
        return np.array([self.table[t] for t in texts], dtype=float)


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for name in ("smp01_child_welfare.txt", "smp04_behavioural_health.srt", "smp06_juvenile_justice.md"):
        shutil.copy(SAMPLES / name, d / name)
    return d


def test_uncertainty_scores():
    proba = np.array([[0.9, 0.05, 0.05, 0.0], [0.4, 0.35, 0.25, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert uncertainty(proba, "margin") == pytest.approx([1 - 0.85, 1 - 0.05, 1.0])
    entropy = uncertainty(proba, "entropy")
    assert entropy[2] == pytest.approx(1.0) and entropy[0] < entropy[1] < entropy[2]
    with pytest.raises(SelectionError, match="strategy must be one of margin, entropy, random"):
        uncertainty(proba, "confusion")


def _frame(texts):
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(texts))], "text": texts})


def test_select_next_ranks_by_uncertainty_without_diversity():
    table = {
        "sure": [0.97, 0.01, 0.01, 0.01],
        "torn": [0.45, 0.44, 0.1, 0.01],
        "mild": [0.6, 0.3, 0.05, 0.05],
        "lost": [0.35, 0.3, 0.2, 0.15],
    }
    chosen = select_next(_frame(list(table)), FixedModel(table), n=3, diversity=False)
    assert chosen["text"].tolist() == ["torn", "lost", "mild"]
    assert chosen["pick"].tolist() == [1, 2, 3] and chosen["id"].tolist() == ["p1", "p3", "p2"]
    assert chosen["suggested_code"].tolist() == ["push", "push", "push"]
    assert chosen["confidence"].tolist() == pytest.approx([0.45, 0.35, 0.6])
    by_entropy = select_next(_frame(list(table)), FixedModel(table), n=1, strategy="entropy", diversity=False)
    assert by_entropy["text"].tolist() == ["lost"]


def test_diversity_avoids_near_duplicates():
    dupes = [f"we trained every site on the manual and checked fidelity {w}" for w in ("monthly", "weekly", "daily")]
    others = [
        "the county asked us for help with referrals",
        "we designed the plan together with families",
        "funding ended in the spring and the office moved",
        "i started as a caseworker",
    ]
    table = {t: [0.34, 0.33, 0.33, 0.0] for t in dupes}  # the three most uncertain say the same thing
    table.update({t: [0.5, 0.3, 0.2, 0.0] for t in others})
    model = FixedModel(table)
    plain = select_next(_frame(dupes + others), model, n=3, diversity=False)
    assert set(plain["text"]) == set(dupes)
    spread = select_next(_frame(dupes + others), model, n=3, diversity=True)
    assert spread["text"].iloc[0] in dupes  # the most uncertain still comes first
    assert sum(t in dupes for t in spread["text"]) == 1
    assert diverse_order(["fidelity checks", "fidelity checks", "county requests"], np.array([1.0, 0.9, 0.1]), 2) == [
        0,
        2,
    ]


def test_random_strategy_is_seeded():
    texts = [f"passage number {i}" for i in range(30)]
    model = FixedModel({t: [0.25] * 4 for t in texts})
    one = select_next(_frame(texts), model, n=5, strategy="random", seed=1)["text"].tolist()
    assert one == select_next(_frame(texts), model, n=5, strategy="random", seed=1)["text"].tolist()
    assert one != select_next(_frame(texts), model, n=5, strategy="random", seed=2)["text"].tolist()
    assert len(select_next(_frame(texts[:3]), model, n=10, strategy="random")) == 3


def test_select_next_bad_inputs():
    model = FixedModel({"a": [1, 0, 0, 0]})
    with pytest.raises(SelectionError, match="strategy must be one of"):
        select_next(_frame(["a"]), model, strategy="smallest")
    with pytest.raises(SelectionError, match="n must be at least 1"):
        select_next(_frame(["a"]), model, n=0)
    with pytest.raises(SelectionError, match="no 'body' column"):
        select_next(_frame(["a"]), model, text_column="body")
    with pytest.raises(SelectionError, match="no predict_proba"):
        select_next(_frame(["a"]), object())


def test_passages_from_transcripts_with_a_labeler(folder, model_dir):
    labeler = Labeler(load_classifier(model_dir))
    passages, problems, _ = read_passages([str(folder), str(folder / "missing.txt")], labeler)
    assert problems and "missing.txt" in problems[0]
    assert passages["id"].is_unique and set(passages["role"]) <= {"participant", "unknown"}
    assert passages["id"].iloc[0] == f"{passages['source'].iloc[0]}#{passages['passage_index'].iloc[0]}"
    chosen = select_next(passages, labeler, n=6)
    assert len(chosen) == 6 and chosen["confidence"].between(0, 1).all()
    with pytest.raises(SelectionError, match="`speaker` must be one of"):
        read_passages([str(folder)], labeler, speaker="everyone")


def test_sheet_rows_from_a_table_with_ids_carry_the_row_id(tmp_path, model_dir, folder):
    (folder / "rows.csv").write_text(
        "id,text\nA-7,We designed the rollout with the county together.\nA-8,They asked us for help with their data.\n",
        encoding="utf-8",
    )
    labeler = Labeler(load_classifier(model_dir))
    passages, _, _ = read_passages([str(folder)], labeler)
    sheet = coding_sheet(select_next(passages, labeler, n=len(passages)))
    assert list(sheet.columns) == SHEET_COLUMNS + ["row_id"]
    from_table = sheet[sheet["source"].str.endswith("rows.csv")]
    assert sorted(from_table["row_id"]) == ["A-7", "A-8"]
    assert (sheet.loc[~sheet["source"].str.endswith("rows.csv"), "row_id"] == "").all()
    plain = coding_sheet(select_next(passages[passages["row_id"].isna()], labeler, n=4))
    assert list(plain.columns) == SHEET_COLUMNS  # no table rows with ids: no row_id column


def _sheet(tmp_path, model_dir, folder, suffix=".csv", n=8) -> Path:
    labeler = Labeler(load_classifier(model_dir))
    passages, _, _ = read_passages([str(folder)], labeler)
    return write_sheet(coding_sheet(select_next(passages, labeler, n=n)), tmp_path / f"sheet{suffix}")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_filled_sheet_loads_as_training_data(tmp_path, model_dir, folder, codebook, suffix):
    path = _sheet(tmp_path, model_dir, folder, suffix)
    sheet = pd.read_csv(path, keep_default_na=False) if suffix == ".csv" else pd.read_excel(path, dtype=str).fillna("")
    assert list(sheet.columns) == SHEET_COLUMNS
    assert (sheet["code"] == "").all() and (sheet["notes"] == "").all()
    assert is_coding_sheet(path)
    with pytest.raises(DataError, match="no row has a code in 'code' yet"):
        load_coded(path, codebook, DataConfig(label_column="code", group_column="source"), skip_blank_labels=True)
    sheet.loc[:2, "code"] = ["push", "co-creation", "none"]  # an alias, as coders write it
    if suffix == ".csv":
        sheet.to_csv(path, index=False)
    else:
        sheet.to_excel(path, index=False)
    data = load_coded(path, codebook, DataConfig(label_column="code", group_column="source"), skip_blank_labels=True)
    assert data.frame["label"].tolist() == ["push", "co_creation", "none"]
    assert len(data.report.skipped_blank_labels) == 5
    assert set(data.frame["group"]) <= set(sheet["source"])
    assert sheet_data_config(path, DataConfig()).label_column == "code"
    assert sheet_data_config(tmp_path / "project.qdpx", DataConfig()).label_column == "label"


def test_skip_leaves_out_passages_already_coded(tmp_path):
    passages = _frame(["We trained  everyone.", "Something new"])
    coded = write_jsonl(tmp_path / "coded.jsonl", [{"id": "1", "text": "we trained everyone.", "label": "push"}])
    assert drop_seen(passages, texts_in([coded]))["text"].tolist() == ["Something new"]
    with pytest.raises(DataError, match="missing column 'text'"):
        texts_in([write_jsonl(tmp_path / "x.jsonl", [{"body": "a"}])])


def test_choose_next_leaves_out_coded_and_blank_passages_and_writes_the_sheet(tmp_path):
    """`next` as one library call: coded passages never come back, blank ones only when asked,
    and what was left out is said in the API's terms (the CLI names its options)."""
    table = {"coded": [0.4, 0.4, 0.1, 0.1], "blank": [0.4, 0.4, 0.1, 0.1], "new": [0.6, 0.3, 0.05, 0.05]}
    coded, blank = {"coded"}, {"blank"}
    sheet = choose_next(_frame(list(table)), FixedModel(table), tmp_path / "s.csv", coded=coded, blank=blank)
    assert sheet.chosen["text"].tolist() == ["new"] and (sheet.offered, sheet.coded, sheet.blank) == (1, 1, 1)
    assert sheet.path == tmp_path / "s.csv" and pd.read_csv(sheet.path)["text"].tolist() == ["new"]
    assert sheet.left_out() == (
        "1 already coded left out; 1 on a `skip` sheet without a code left out too "
        "(code them there, or add `offer_blank=True` to have them offered again)"
    )
    again = choose_next(_frame(list(table)), FixedModel(table), coded=coded, blank=blank, offer_blank=True)
    assert again.chosen["text"].tolist() == ["blank", "new"] and again.path is None
    assert again.left_out() == "1 already coded left out; 1 left blank on a `skip` sheet offered again"
    with pytest.raises(NothingToOffer, match=r"^no passages to choose from \(1 already coded left out\)$"):
        choose_next(_frame(["coded"]), FixedModel(table), tmp_path / "t.csv", coded=coded)
    with pytest.raises(NothingToOffer, match="no readable transcript with such turns"):
        choose_next(_frame([]), FixedModel(table), tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def _filled(tmp_path, model_dir, folder) -> Path:
    path = _sheet(tmp_path, model_dir, folder, n=10)
    sheet = pd.read_csv(path, keep_default_na=False)
    sheet.loc[:5, "code"] = ["push", "pull", "none", "co_creation", "pull", "none"]
    sheet.to_csv(path, index=False)
    return path


def test_train_with_added_sheet(tmp_path, model_dir, folder, coded_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = _filled(tmp_path, model_dir, folder)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    logs: list[str] = []
    base = train(cfg, track=False, log=lambda m: None)
    result = train(cfg, track=False, log=logs.append, extra_data=[str(sheet)])
    frame = result.data.frame
    assert len(frame) == len(base.data.frame) + 6
    assert result.data.digest != base.data.digest  # the digest covers the combined data
    # a sheet's passages are grouped by transcript: the file's name without folder and suffix
    assert set(frame["group"]) - set(base.data.frame["group"]) <= {Path(s).stem for s in pd.read_csv(sheet)["source"]}
    assert any(f"added 6 coded excerpts from {sheet}" in line for line in logs)
    meta = load_classifier(result.model_dir).meta_
    assert meta["data_digest"] == result.data.digest
    # the same sheet twice: its excerpts are learnt once
    twice = train(cfg, track=False, log=lambda m: None, extra_data=[str(sheet), str(sheet)])
    assert len(twice.data.frame) == len(frame)
    assert any("already coded in an earlier file" in n for n in twice.data.report.notes)


def test_train_extra_file_with_clashing_ids(tmp_path, coded_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = make_rows(2, 1)
    for r in rows:
        r["text"] += " but different"
    extra = write_jsonl(tmp_path / "extra.jsonl", rows)  # same ids as coded_file, other texts
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    with pytest.raises(DataError, match=r"extra\.jsonl: ids i00-00.* are also used in .*coded\.jsonl"):
        train(cfg, track=False, log=lambda m: None, extra_data=[str(extra)])


def test_cli_next_then_train_add_data(tmp_path, model_dir, folder, coded_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "to_code.xlsx"
    result = runner.invoke(app, ["next", str(folder), "--model", str(model_dir), "--n", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 passages to code next" in result.output and "--add-data" in result.output
    sheet = pd.read_excel(out, dtype=str).fillna("")
    assert list(sheet.columns) == SHEET_COLUMNS and len(sheet) == 5
    # an earlier sheet passed to --skip: none of its passages is offered again
    again = runner.invoke(
        app,
        [
            "next",
            str(folder),
            "--model",
            str(model_dir),
            "--n",
            "5",
            "--out",
            str(tmp_path / "more.csv"),
            "--skip",
            str(out),
            "--strategy",
            "entropy",
        ],
    )
    assert again.exit_code == 0, again.output
    assert not set(pd.read_csv(tmp_path / "more.csv")["id"]) & set(sheet["id"])
    assert "(5 on a --skip sheet without a code left out too" in again.output  # offered, not coded
    sheet.loc[:1, "code"] = ["pull", "none"]
    sheet.to_excel(out, index=False)
    trained = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(ROOT / "configs" / "tfidf.yaml"),
            "--data",
            str(coded_file),
            "--add-data",
            str(out),
            "--no-track",
        ]
        + [x for s in fast_overrides() for x in ("--set", s)],
    )
    assert trained.exit_code == 0, trained.output
    assert "added 2 coded excerpts" in trained.output


def test_cli_next_bad_inputs_exit_2(tmp_path, model_dir, folder):
    base = ["next", str(folder), "--model", str(model_dir)]
    bad_out = runner.invoke(app, base + ["--out", str(tmp_path / "x.parquet")])
    assert bad_out.exit_code == 2 and "--out must end in .csv or .xlsx" in bad_out.output
    bad_strategy = runner.invoke(app, base + ["--out", str(tmp_path / "x.csv"), "--strategy", "smallest"])
    assert bad_strategy.exit_code == 2 and "--strategy must be one of margin, entropy, random" in bad_strategy.output
    no_model = runner.invoke(
        app, ["next", str(folder), "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path / "x.csv")]
    )
    assert no_model.exit_code == 2 and "nomodel" in no_model.output
    nothing = runner.invoke(
        app, ["next", str(tmp_path / "none.txt"), "--model", str(model_dir), "--out", str(tmp_path / "x.csv")]
    )
    assert nothing.exit_code == 2 and "no passages to choose from" in nothing.output
    assert "none.txt: no such file or folder" in nothing.output
    bad_add = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(ROOT / "configs" / "tfidf.yaml"),
            "--add-data",
            str(tmp_path / "nosheet.csv"),
            "--no-track",
        ],
    )
    assert bad_add.exit_code == 2 and "nosheet.csv: file not found" in bad_add.output


def test_skip_counts_coded_passages_apart_from_those_left_blank(tmp_path, model_dir, folder):
    """A filled sheet with 3 of 8 rows coded: 3 are 'already coded'; the 5 left blank are named
    apart, and --offer-blank offers them again."""
    sheet_path = _sheet(tmp_path, model_dir, folder, n=8)
    sheet = pd.read_csv(sheet_path, keep_default_na=False)
    sheet.loc[:2, "code"] = ["push", "pull", "none"]
    sheet.to_csv(sheet_path, index=False)
    base = ["next", str(folder), "--model", str(model_dir), "--n", "200", "--skip", str(sheet_path)]
    kept = runner.invoke(app, base + ["--out", str(tmp_path / "a.csv")])
    assert kept.exit_code == 0, kept.output
    assert (
        "(3 already coded left out; 5 on a --skip sheet without a code left out too (code them there, "
        "or add --offer-blank to have them offered again))" in " ".join(kept.output.split())
    )
    assert not set(pd.read_csv(tmp_path / "a.csv")["id"]) & set(sheet["id"])
    again = runner.invoke(app, base + ["--out", str(tmp_path / "b.csv"), "--offer-blank"])
    assert again.exit_code == 0, again.output
    assert "(3 already coded left out; 5 left blank on a --skip sheet offered again)" in again.output
    offered = set(pd.read_csv(tmp_path / "b.csv")["id"])
    assert set(sheet.loc[3:, "id"]) <= offered and not set(sheet.loc[:2, "id"]) & offered


def test_added_sheet_joins_the_interviews_and_is_counted_per_file(tmp_path, model_dir, folder, monkeypatch):
    """A sheet groups passages by transcript path; the main file by interview id. The sheet's
    passages of smp01_child_welfare.txt join interview 'smp01_child_welfare' of the main file (so a
    grouped split keeps that interview in one part), and the counts say which file gave what."""
    monkeypatch.chdir(tmp_path)
    rows = make_rows(8, 1)
    for r in rows[:4]:  # interview i00 is the transcript smp01_child_welfare
        r["interview_id"] = "smp01_child_welfare"
    coded = write_jsonl(tmp_path / "coded.jsonl", rows)
    sheet = _filled(tmp_path, model_dir, folder)  # 10 rows, 6 coded
    sources = pd.read_csv(sheet, keep_default_na=False)
    assert sources["source"].str.endswith("smp01_child_welfare.txt").any()
    cfg = load_config(None, fast_overrides() + [f"data.path={coded}"])
    logs: list[str] = []
    result = train(cfg, track=False, log=logs.append, extra_data=[str(sheet)])
    groups = set(result.data.frame["group"])
    assert not any("/" in g or g.endswith((".txt", ".srt", ".md")) for g in groups), groups
    assert groups - {r["interview_id"] for r in rows} <= {"smp04_behavioural_health", "smp06_juvenile_justice"}
    from_smp01 = result.data.frame["text"].isin(
        sources.loc[sources["source"].str.endswith("smp01_child_welfare.txt") & (sources["code"] != ""), "text"]
    )
    assert from_smp01.any() and set(result.data.frame.loc[from_smp01, "group"]) == {"smp01_child_welfare"}
    report = result.data.report
    line = f"38 excerpts kept of 42 read from 2 files: {coded} (32 of 32), {sheet} (6 of 10)"
    assert report.summary().startswith(line) and any(entry.startswith(line) for entry in logs)
    assert report.files == [
        {"path": str(coded), "rows_read": 32, "rows_kept": 32},
        {"path": str(sheet), "rows_read": 10, "rows_kept": 6},
    ]
    assert any(
        "joined to interviews of the data so far" in n and "as 'smp01_child_welfare' (same name)" in n
        for n in report.notes
    ), report.notes


def test_jsonl_null_or_missing_codes_are_blank_and_missing_texts_are_not_nan(tmp_path):
    """Review item 12: in a JSONL --skip file, a code that is null or absent is not coded yet, and a
    row without a text adds nothing (it used to add the text "nan" and count blanks as coded)."""
    from supportlens.assist.active import coded_and_blank_texts

    path = tmp_path / "skip.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "we co-designed it", "code": "co_creation"},
                {"text": "they sent the manual", "code": None},
                {"text": "we asked for help"},
                {"text": None, "code": "push"},
                {"code": "pull"},
                {"text": "left empty", "code": ""},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    coded, blank = coded_and_blank_texts([path])
    assert coded == {"we co-designed it"}
    assert blank == {"they sent the manual", "we asked for help", "left empty"}


def test_cli_next_exits_1_when_an_input_could_not_be_read(tmp_path, model_dir, folder):
    """As predict: the sheet is written from the readable inputs, and the exit code says not all were."""
    out = tmp_path / "to_code.csv"
    result = runner.invoke(
        app,
        ["next", str(folder), str(tmp_path / "missing.txt"), "--model", str(model_dir), "--n", "3", "--out", str(out)],
    )
    assert result.exit_code == 1, result.output
    assert out.is_file() and len(pd.read_csv(out)) == 3
    said = " ".join(result.output.split())
    assert "missing.txt: no such file or folder" in said and "1 input(s) could not be read" in said


def test_cli_next_with_no_passages_leaves_the_earlier_sheet_alone(tmp_path, model_dir):
    """A coding sheet with no passages is not written over a coder's earlier (maybe half-filled) one."""
    sheet = tmp_path / "to_code.csv"
    sheet.write_bytes(b"id,text,code\np1,half coded,push\n")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    result = runner.invoke(app, ["next", str(tmp_path / "empty.txt"), "--model", str(model_dir), "--out", str(sheet)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert (
        f"no passages to choose from (no readable transcript with such turns), so {sheet} was not written "
        "(it is unchanged)" in said
    ), said
    assert sheet.read_bytes() == b"id,text,code\np1,half coded,push\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt", "to_code.csv"]
