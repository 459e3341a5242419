"""Which codes look wrong: flipped labels come out on top of the audit."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CODEBOOK, fast_overrides, make_rows, write_jsonl
from supportlens.assist.audit import AUDIT_COLUMNS, FLAGGED_MEANING, audit, code_legend, doubtful_codes
from supportlens.cli import app
from supportlens.config import load_config
from supportlens.corpus.dataset import DataError

runner = CliRunner()
LABELS = ["push", "pull", "co_creation", "none"]


def _flipped(tmp_path, share=0.1, seed=0):
    rows = make_rows(12, 3)
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(rows), size=int(round(share * len(rows))), replace=False)
    for i in flipped:
        rows[i]["label"] = str(rng.choice([lab for lab in LABELS if lab != rows[i]["label"]]))
    return write_jsonl(tmp_path / "coded.jsonl", rows), {rows[i]["id"] for i in flipped}


def test_flipped_codes_rank_at_the_top(tmp_path, codebook):
    path, flipped = _flipped(tmp_path)
    cfg = load_config(None, fast_overrides())
    result = audit(str(path), cfg, k=5, codebook=codebook, log=lambda m: None)
    assert list(result.columns) == AUDIT_COLUMNS
    top = set(result["id"].head(2 * len(flipped)))
    assert len(top & flipped) >= 0.7 * len(flipped), (len(top & flipped), len(flipped))
    assert result["rank"].tolist() == list(range(1, len(result) + 1))
    first = result.iloc[0]
    assert first["suggested_code"] != first["given_code"]
    assert first["given_definition"] == codebook.code(first["given_code"]).definition
    assert first["suggested_definition"] == codebook.code(first["suggested_code"]).definition
    assert result["flagged"].head(len(flipped)).mean() > 0.5  # cleanlab agrees about most of the top
    limited = audit(str(path), cfg, k=5, codebook=codebook, top=3, log=lambda m: None)
    assert limited["id"].tolist() == result["id"].head(3).tolist()


def test_audit_warns_when_the_model_is_too_weak_to_judge(tmp_path, codebook):
    """Codes drawn at random: the out-of-fold model is near chance, and the log says its list means little."""
    rows = make_rows(12, 3)
    rng = np.random.default_rng(1)
    for row in rows:
        row["label"] = str(rng.choice(LABELS))
    path = write_jsonl(tmp_path / "random.jsonl", rows)
    said = []
    audit(str(path), load_config(None, fast_overrides()), k=3, codebook=codebook, log=said.append)
    assert any(m.startswith("warning: out of fold, the model agrees with these codes at κ") for m in said), said
    flipped, _ = _flipped(tmp_path)  # a learnable corpus with a few wrong codes: no warning
    said.clear()
    audit(str(flipped), load_config(None, fast_overrides()), k=5, codebook=codebook, log=said.append)
    assert not any(m.startswith("warning") for m in said), said


def test_ranking_by_margin_on_known_probabilities(codebook):
    oof = pd.DataFrame(
        {
            "id": ["ok", "unsure", "wrong"],
            "group": ["g1", "g2", "g3"],
            "text": ["a", "b", "c"],
            "label": ["push", "pull", "none"],
            "p_push": [0.9, 0.45, 0.05],
            "p_pull": [0.05, 0.40, 0.05],
            "p_co_creation": [0.03, 0.1, 0.85],
            "p_none": [0.02, 0.05, 0.05],
        }
    )
    result = doubtful_codes(oof, LABELS, codebook)
    assert result["id"].tolist() == ["wrong", "unsure"]  # "ok": its code is the most probable
    assert result[["given_code", "suggested_code"]].values.tolist() == [["none", "co_creation"], ["pull", "push"]]
    assert result["given_probability"].tolist() == [0.05, 0.4]
    assert result["suggested_probability"].tolist() == [0.85, 0.45]


def test_legend_names_the_codes_in_the_table(codebook):
    result = pd.DataFrame({"given_code": ["none", "pull"], "suggested_code": ["co_creation", "push"]})
    assert code_legend(result.head(1), codebook) == [
        ("co_creation", codebook.code("co_creation").short),
        ("none", codebook.code("none").short),
    ]
    assert [code for code, _ in code_legend(result, codebook)] == LABELS  # codebook order


def test_audit_accepts_a_frame_and_checks_it(codebook):
    cfg = load_config(None, fast_overrides())
    rows = pd.DataFrame(make_rows(6, 2)).rename(columns={"interview_id": "group"})
    assert set(audit(rows, cfg, k=3, codebook=codebook, log=lambda m: None).columns) == set(AUDIT_COLUMNS)
    with pytest.raises(DataError, match="lacks column group"):
        audit(rows.drop(columns=["group"]), cfg, k=3, codebook=codebook)
    with pytest.raises(DataError, match="codes not in the codebook: 'maybe'"):
        audit(rows.assign(label="maybe"), cfg, k=3, codebook=codebook)


def _cli(*args):
    sets = [x for s in fast_overrides() for x in ("--set", s)]
    return runner.invoke(app, ["audit", *args, "--config", str(CODEBOOK.parent / "tfidf.yaml"), *sets])


def test_cli_audit_writes_the_doubtful_codes(tmp_path, codebook):
    path, flipped = _flipped(tmp_path)
    out = tmp_path / "doubtful.csv"
    result = _cli(str(path), "--out", str(out), "--top", "10", "--cv", "4")
    assert result.exit_code == 0, result.output
    assert "doubtful codes" in result.output and "grouped 4-fold" in result.output
    written = pd.read_csv(out)
    # a coder reading the console learns what "flagged" means and what each code shown stands for
    flat = " ".join(result.output.split())
    assert FLAGGED_MEANING in flat
    for code in set(written["given_code"].head(20)) | set(written["suggested_code"].head(20)):
        assert f"{code} {codebook.code(code).short}" in flat, code
    assert f"full definitions: given_definition and suggested_definition in {out}" in flat
    assert list(written.columns) == AUDIT_COLUMNS and len(written) == 10
    assert len(set(written["id"]) & flipped) >= 7


def test_cli_audit_bad_inputs_exit_2(tmp_path):
    path, _ = _flipped(tmp_path)
    missing = _cli(str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "nope.jsonl: file not found" in missing.output
    bad_out = _cli(str(path), "--out", str(tmp_path / "x.json"))
    assert bad_out.exit_code == 2 and "--out must end in .csv or .xlsx" in bad_out.output
    too_many = _cli(str(path), "--cv", "20")
    assert too_many.exit_code == 2 and "cannot make 20 grouped folds from 12 interviews" in too_many.output
    one_fold = _cli(str(path), "--cv", "1")
    assert one_fold.exit_code == 2 and "--cv must be at least 2" in one_fold.output
    unknown = write_jsonl(
        tmp_path / "bad.jsonl", [{**r, "label": "maybe"} if i == 3 else r for i, r in enumerate(make_rows(4, 1))]
    )
    bad_label = _cli(str(unknown))
    assert bad_label.exit_code == 2 and "row 4: unknown label 'maybe'" in bad_label.output


def test_cli_audit_with_no_doubtful_codes_leaves_the_earlier_file_alone(tmp_path, monkeypatch):
    """Nothing doubtful: no empty table is written over the earlier one (with a coder's notes),
    and the output says it was not written. The audit itself is stubbed: only the CLI is tested."""
    import supportlens.assist.audit

    monkeypatch.setattr(supportlens.assist.audit, "audit", lambda *args, **kwargs: pd.DataFrame(columns=AUDIT_COLUMNS))
    out = tmp_path / "doubtful.csv"
    out.write_bytes(b"rank,id,notes\n1,i00-03,checked: the code stands\n")
    result = _cli(str(tmp_path / "coded.jsonl"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (
        f"no doubtful codes: every excerpt's code is the one the model finds most likely, so {out} was not "
        "written (it is unchanged)" in " ".join(result.output.split())
    ), result.output
    assert out.read_bytes() == b"rank,id,notes\n1,i00-03,checked: the code stands\n"
