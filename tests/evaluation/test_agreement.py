import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from supportlens.cli import app
from supportlens.cli.common import in_cli_terms
from supportlens.corpus.dataset import DataError
from supportlens.evaluation.agreement import (
    agreement_files,
    bootstrap_confusions,
    cohens_kappa,
    compare_codings,
    krippendorff_alpha,
    match_codings,
    percent_agreement,
    read_coding,
    specific_agreement,
    stats_from_confusion,
)


def test_known_kappa():
    # 2x2 table [[20, 5], [10, 15]]: po = .7, pe = .5 -> kappa = .4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)
    assert percent_agreement(a, b) == pytest.approx(0.7)


def test_alpha_matches_hand_computation():
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    # nominal alpha for two coders: 1 - (n-1) * D_o / sum_c n_c(n - n_c) ... computed directly:
    n = 100
    n_y = 25 + 30
    n_n = n - n_y
    disagreements = 15
    expected = 1 - (n - 1) * (2 * disagreements) / (2 * n_y * n_n)
    assert krippendorff_alpha(a, b) == pytest.approx(expected)


def test_identical_constant_codings():
    assert cohens_kappa(["a"] * 5, ["a"] * 5) == 1.0
    assert krippendorff_alpha(["a"] * 5, ["a"] * 5) == 1.0


def test_empty():
    assert np.isnan(cohens_kappa([], []))


# ---------------------------------------------------------------------------------------------
# coder-facing agreement: statistics with intervals, per code, matching, files, CLI

runner = CliRunner()
CODES = ["push", "pull", "co_creation", "none"]


def _pair(n: int = 120, flip: float = 0.25, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    a = list(rng.choice(CODES, size=n))
    b = [rng.choice(CODES) if rng.random() < flip else x for x in a]
    return a, b


def _aligned(a, b, **extra):
    return pd.DataFrame({"code": a, **extra}), pd.DataFrame({"code": b})


def test_vectorised_statistics_equal_the_reference_functions():
    for seed in range(5):
        a, b = _pair(seed=seed)
        index = {c: i for i, c in enumerate(CODES)}
        cm = np.zeros((4, 4), dtype=int)
        for x, y in zip(a, b):
            cm[index[x], index[y]] += 1
        stats = stats_from_confusion(cm)
        assert stats["percent"][0] == pytest.approx(percent_agreement(a, b))
        assert stats["kappa"][0] == pytest.approx(cohens_kappa(a, b))
        assert stats["alpha"][0] == pytest.approx(krippendorff_alpha(a, b))
    # one code used by both throughout: perfect, as the reference functions say
    constant = stats_from_confusion(np.array([[5, 0], [0, 0]]))
    assert constant["kappa"][0] == 1.0 and constant["alpha"][0] == 1.0


def test_bootstrap_resamples_units():
    ia, ib = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])
    tables = bootstrap_confusions(ia, ib, 2, n_boot=7, seed=1)
    assert tables.shape == (7, 2, 2)
    assert (tables.sum(axis=(1, 2)) == 5).all()
    # only observed pairs can be drawn: (1, 0) was observed once, (0, 0) once ...
    assert tables[:, 0, 0].max() <= 5 and tables.sum(axis=0)[0, 0] > 0


def test_compare_codings_intervals_are_seeded_and_bracket_the_estimate():
    a, b = _pair(200)
    fa, fb = _aligned(a, b)
    one = compare_codings(fa, fb, CODES, n_boot=500, seed=3)
    two = compare_codings(fa, fb, CODES, n_boot=500, seed=3)
    other = compare_codings(fa, fb, CODES, n_boot=500, seed=4)
    for name in ("percent", "kappa", "alpha"):
        est = getattr(one, name)
        assert est.low < est.value < est.high, name
        assert (est.low, est.high) == (getattr(two, name).low, getattr(two, name).high)
    assert (one.kappa.low, one.kappa.high) != (other.kappa.low, other.kappa.high)
    assert one.kappa.value == pytest.approx(cohens_kappa(a, b))
    # a bigger sample gives a narrower interval
    big = compare_codings(*_aligned(a * 4, b * 4), CODES, n_boot=500, seed=3)
    assert big.kappa.high - big.kappa.low < one.kappa.high - one.kappa.low
    # no bootstrap: no interval
    assert np.isnan(compare_codings(fa, fb, CODES, n_boot=0).kappa.low)


def test_paired_kappa_difference_is_the_difference_with_a_paired_interval():
    from supportlens.evaluation.agreement import paired_kappa_difference

    rng = np.random.default_rng(0)
    truth = list(rng.choice(CODES, size=40))
    better = [t if rng.random() < 0.8 else CODES[0] for t in truth]
    worse = [t if rng.random() < 0.4 else CODES[0] for t in truth]
    est = paired_kappa_difference(truth, worse, better, CODES, n_boot=800, seed=5)
    assert est.value == pytest.approx(cohens_kappa(truth, better) - cohens_kappa(truth, worse))
    assert est.low < est.value < est.high and est.low > 0  # clearly better on these units
    # a model against itself: no difference, and no width, in every replicate
    same = paired_kappa_difference(truth, better, better, CODES, n_boot=200)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    # paired is narrower than two separate intervals would suggest for near-identical models
    nearly = list(better)
    nearly[0] = CODES[(CODES.index(nearly[0]) + 1) % len(CODES)]
    close = paired_kappa_difference(truth, better, nearly, CODES, n_boot=800, seed=5)
    assert close.high - close.low < 0.15
    with pytest.raises(ValueError, match=r"codes \['maybe'\] are not among the labels"):
        paired_kappa_difference(truth, better, ["maybe"] * 40, CODES)
    with pytest.raises(ValueError, match="equal length"):
        paired_kappa_difference(truth, better[:-1], better, CODES)
    with pytest.raises(ValueError, match="no units to compare"):
        paired_kappa_difference([], [], [], CODES)


def test_per_code_agreement_confusion_and_disagreements():
    a = ["push", "push", "push", "pull", "pull", "none"]
    b = ["push", "push", "pull", "pull", "none", "none"]
    fa, fb = _aligned(a, b, unit=[f"u{i}" for i in range(6)], text=[f"t{i}" for i in range(6)])
    result = compare_codings(fa, fb, CODES, n_boot=0, name_a="ann", name_b="ben")
    per = result.per_code.set_index("code")
    # push: a=2 both, b=1 only A, c=0 only B -> 4/5
    assert per.loc["push", "specific_agreement"] == pytest.approx(4 / 5)
    assert specific_agreement(a, b, "pull") == pytest.approx(2 / 4)
    assert per.loc["push", "kappa"] == pytest.approx(cohens_kappa([x == "push" for x in a], [x == "push" for x in b]))
    assert np.isnan(per.loc["co_creation", "specific_agreement"]) and np.isnan(per.loc["co_creation", "kappa"])
    assert list(per["n_a"]) == [3, 2, 0, 1] and list(per["n_b"]) == [2, 2, 0, 2]
    assert result.confusion.loc["push", "pull"] == 1 and result.confusion.loc["push", "push"] == 2
    assert result.confusion.index.name == "ann" and result.confusion.columns.name == "ben"
    assert result.disagreements[["unit", "text", "code_a", "code_b"]].values.tolist() == [
        ["u2", "t2", "push", "pull"],
        ["u4", "t4", "pull", "none"],
    ]


def test_compare_codings_rejects_misaligned_frames():
    with pytest.raises(ValueError, match="equal length"):
        compare_codings(pd.DataFrame({"code": ["a"]}), pd.DataFrame({"code": ["a", "b"]}))


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".xlsx":
        pd.DataFrame(rows).to_excel(path, index=False)
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _in_a_project_folder(tmp_path: Path, codebook_path: Path, monkeypatch) -> Path:
    """Work from a folder whose configs/codebook.yaml is the project's codebook."""
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "codebook.yaml").write_text(codebook_path.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(project)
    return project


def _coder_files(tmp_path: Path) -> tuple[Path, Path]:
    a = [{"id": f"x{i}", "text": f"excerpt {i}", "label": CODES[i % 4]} for i in range(12)]
    b = [
        {"id": f"x{i}", "text": f"excerpt {i}", "code": CODES[i % 4] if i % 3 else CODES[(i + 1) % 4]}
        for i in range(2, 14)
    ]
    b[0]["code"] = ""  # x2: not coded yet
    return _write(tmp_path / "ann.jsonl", a), _write(tmp_path / "ben.xlsx", b)


def test_files_matched_by_id_with_unmatched_and_uncoded_counts(tmp_path, codebook):
    a, b = _coder_files(tmp_path)
    result = agreement_files(a, b, codebook, n_boot=200)
    assert result.matched_by == "id"
    assert result.n == 9  # x3..x11
    # x2 is in both files but B left it blank: not coded in B, not "only in A"
    assert (result.only_a, result.only_b, result.uncoded_a, result.uncoded_b) == (2, 2, 0, 1)
    assert (result.only_a_units, result.only_b_units) == (["x0", "x1"], ["x12", "x13"])
    assert (result.uncoded_a_units, result.uncoded_b_units) == ([], ["x2"])
    # x3, x6, x9 were coded differently by B
    assert sorted(result.disagreements["unit"]) == ["x3", "x6", "x9"]
    assert result.percent.value == pytest.approx(6 / 9)
    assert result.labels == codebook.labels
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["n"] == 9 and summary["kappa"]["low"] <= summary["kappa"]["value"] <= summary["kappa"]["high"]
    assert summary["uncoded_b_units"] == ["x2"]


def test_a_span_left_blank_is_not_coded_rather_than_missing(tmp_path):
    a = _write(tmp_path / "a.csv", _spans("t.txt", [(0, 100, "push"), (200, 300, "pull"), (400, 500, "none")]))
    b = _write(tmp_path / "b.csv", _spans("t.txt", [(0, 100, "push"), (210, 300, ""), (600, 700, "")]))
    result = agreement_files(a, b, n_boot=0)
    assert (result.n, result.only_a, result.only_b, result.uncoded_a, result.uncoded_b) == (1, 1, 0, 0, 2)
    assert result.only_a_units == ["t.txt 400-500"]
    assert result.uncoded_b_units == ["t.txt 210-300", "t.txt 600-700"]


def _spans(source: str, spans: list[tuple[int, int, str]], name="source") -> list[dict]:
    return [{name: source, "start": s, "end": e, "label": c, "text": f"{s}-{e}"} for s, e, c in spans]


def test_span_matching_needs_half_of_the_shorter_span(tmp_path):
    a = _write(
        tmp_path / "a.csv",
        _spans("t.txt", [(0, 100, "push"), (200, 300, "pull"), (400, 500, "none"), (600, 700, "push")]),
    )
    b = _write(
        tmp_path / "b.csv",
        _spans(
            "t.txt",
            [
                (10, 90, "push"),  # inside: matched
                (250, 400, "pull"),  # 50 of 100 shared: matched
                (451, 560, "none"),  # 49 of 100 shared: not matched
                (600, 700, "co_creation"),
            ],
        )
        + _spans("other.txt", [(0, 100, "push")]),
    )
    ca, cb = read_coding(a), read_coding(b)
    rows_a, rows_b, by, _ = match_codings(ca, cb)
    assert by == "span"
    assert rows_a["start"].tolist() == [0, 200, 600] and rows_b["start"].tolist() == [10, 250, 600]
    result = agreement_files(a, b, n_boot=0)
    assert (result.n, result.only_a, result.only_b) == (3, 1, 2)
    assert result.disagreements[["start", "end", "code_a", "code_b"]].values.tolist() == [
        [600, 700, "push", "co_creation"]
    ]


def test_span_matching_pairs_each_span_once(tmp_path):
    # one long B span covers two A spans: it pairs with the one it overlaps most
    a = _write(tmp_path / "a.csv", _spans("t.txt", [(0, 40, "push"), (50, 150, "pull")]))
    b = _write(tmp_path / "b.csv", _spans("t.txt", [(0, 150, "pull")]))
    rows_a, rows_b, _, _ = match_codings(read_coding(a), read_coding(b))
    assert rows_a["start"].tolist() == [50] and len(rows_b) == 1


def test_coder_against_predict_output_by_file_name(tmp_path, codebook):
    # a gold file names the transcript "file": smp.txt; predict gives a path and labels in "label"
    gold = _write(tmp_path / "gold.jsonl", _spans("smp.txt", [(0, 50, "push"), (60, 120, "pull")], name="file"))
    pred = _write(
        tmp_path / "pred.csv",
        [
            {
                "source": "data/in/smp.txt",
                "passage_index": i,
                "speaker": "P",
                "role": "participant",
                "start": s,
                "end": e,
                "text": "x",
                "label": lab,
                "p_push": 0.5,
                "confidence": 0.5,
                "needs_review": False,
            }
            for i, (s, e, lab) in enumerate([(0, 55, "push"), (58, 120, "co_creation"), (130, 170, "none")])
        ],
    )
    result = agreement_files(gold, pred, codebook, n_boot=0)
    assert result.matched_by == "span" and result.n == 2 and result.only_b == 1
    assert any("file name" in note for note in result.notes)
    assert result.disagreements["code_b"].tolist() == ["co_creation"]
    # predictions get ids source#passage_index, so a coding sheet with those ids matches by id too
    assert read_coding(pred).frame["unit"].tolist()[0] == "data/in/smp.txt#0"


def test_reading_errors_name_file_row_and_field(tmp_path, codebook):
    bad_code = _write(tmp_path / "a.csv", [{"id": "1", "label": "push"}, {"id": "2", "label": "pushy"}])
    with pytest.raises(DataError, match=r"a\.csv: unknown code in field 'label': 'pushy' \(row 3\)"):
        read_coding(bad_code, codebook)
    no_code = _write(tmp_path / "b.csv", [{"id": "1", "category": "push"}])
    with pytest.raises(DataError, match=r"b\.csv: no code column.*category"):
        read_coding(no_code)
    bad_offset = _write(
        tmp_path / "c.csv",
        _spans("t.txt", [(0, 10, "push")]) + [{"source": "t.txt", "start": "ten", "end": 20, "label": "push"}],
    )
    with pytest.raises(DataError, match=r"c\.csv: row 3: field 'start' must be a whole number"):
        read_coding(bad_offset)
    twice = _write(tmp_path / "d.csv", [{"id": "1", "label": "push"}, {"id": "1", "label": "pull"}])
    with pytest.raises(DataError, match=r"d\.csv: field 'id' repeats ids 1 \('1' in rows 2, 3\)"):
        agreement_files(twice, twice)


def test_cli_agreement_prints_tables_and_writes_disagreements(tmp_path, codebook_path):
    a, b = _coder_files(tmp_path)
    out_file = tmp_path / "disagree.csv"
    result = runner.invoke(
        app,
        ["agreement", str(a), str(b), "--out", str(out_file), "--bootstrap", "300", "--codebook", str(codebook_path)],
    )
    assert result.exit_code == 0, result.output
    for text in (
        "matched by id",
        "Cohen's kappa",
        "Krippendorff's alpha",
        "95% interval",
        "per code",
        "specific agreement",
        "confusion",
        "disagreements (3)",
        "x6",
    ):
        assert text in result.output, text
    units = result.output.split("units (matched by id)")[1].split("agreement")[0]
    assert re.search(r"│\s*9\s*│\s*2\s*│\s*2\s*│\s*0\s*│\s*1\s*│", units), units
    assert "only in A: x0, x1\n" in units and "only in B: x12, x13\n" in units
    assert "not coded (blank code) in B: x2\n" in units and "not coded (blank code) in A" not in units
    written = pd.read_csv(out_file, keep_default_na=False)
    assert written["id"].tolist() == ["x3", "x6", "x9"]
    assert {"text", "code_a", "code_b", "resolved_code", "notes"} <= set(written.columns)


def test_cli_agreement_matches_code_names_through_the_project_codebook(tmp_path, codebook_path, monkeypatch):
    """Run in a project folder, "Push" and "Co-creation/exchange" are the codes push and co_creation;
    codes outside the codebook are compared as written, and the output says which was done."""
    codes = ["push", "pull", "co_creation", "none", "push", "pull"]
    a = _write(tmp_path / "a.csv", [{"id": f"x{i}", "code": c} for i, c in enumerate(codes)])
    named = _write(
        tmp_path / "b.csv",
        [
            {"id": f"x{i}", "code": {"push": "Push", "co_creation": "Co-creation/exchange"}.get(c, c)}
            for i, c in enumerate(codes)
        ],
    )
    other = _write(
        tmp_path / "c.csv", [{"id": f"x{i}", "code": "Capacity building" if i == 1 else c} for i, c in enumerate(codes)]
    )
    _in_a_project_folder(tmp_path, codebook_path, monkeypatch)
    same = runner.invoke(app, ["agreement", str(a), str(named), "--bootstrap", "0"])
    assert same.exit_code == 0, same.output
    assert "codes matched through configs/codebook.yaml" in same.output
    assert re.search(r"Cohen's kappa\s*│\s*1\.000", same.output)
    scheme = runner.invoke(app, ["agreement", str(a), str(other), "--bootstrap", "0"])
    assert scheme.exit_code == 0, scheme.output
    assert "compared as written: 'Capacity building' (c.csv row 3)" in scheme.output
    monkeypatch.chdir(tmp_path)  # no codebook here: codes as written, no note
    raw = runner.invoke(app, ["agreement", str(a), str(named), "--bootstrap", "0"])
    assert raw.exit_code == 0 and "codes matched" not in raw.output and "compared as written" not in raw.output


def test_cli_agreement_bad_inputs_exit_2(tmp_path):
    a, b = _coder_files(tmp_path)
    missing = runner.invoke(app, ["agreement", str(a), str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv: file not found" in missing.output
    bad_by = runner.invoke(app, ["agreement", str(a), str(b), "--by", "row"])
    assert bad_by.exit_code == 2 and "--by must be one of id, span" in bad_by.output
    no_spans = runner.invoke(app, ["agreement", str(a), str(b), "--by", "span"])
    assert no_spans.exit_code == 2 and "matching by span needs columns" in no_spans.output
    disjoint = _write(tmp_path / "c.jsonl", [{"id": "zz", "label": "push"}])
    none = runner.invoke(app, ["agreement", str(a), str(disjoint)])
    assert none.exit_code == 2 and "share no units" in none.output
    bad_out = runner.invoke(app, ["agreement", str(a), str(b), "--out", str(tmp_path / "d.txt")])
    assert bad_out.exit_code == 2 and "--out must end in .csv or .xlsx" in bad_out.output


def test_two_users_in_one_qdpx(tmp_path, codebook):
    from qda_projects import ANA, BEN, LABEL_CODE, SAMPLES, SMP01_GUID, build_project, gold_codings, make_guid
    from supportlens.evaluation.agreement import agreement_files

    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    gold = gold_codings()
    flips = {"push": "pull", "pull": "co_creation", "co_creation": "none", "none": "push"}
    selections = []
    for i, g in enumerate(gold):
        selections.append((make_guid(f"a-{i}"), g["start"], g["end"], ANA, [LABEL_CODE[g["label"]]]))
        ben = flips[g["label"]] if i in (0, 3) else g["label"]  # Ben disagrees twice
        selections.append((make_guid(f"b-{i}"), g["start"], g["end"], BEN, [LABEL_CODE[ben]]))
    project = build_project(
        tmp_path / "two.qdpx",
        [{"guid": SMP01_GUID, "name": "smp01_child_welfare.txt", "text": text, "selections": selections}],
    )
    result = agreement_files(project, None, codebook, n_boot=200)
    assert result.n == len(gold)
    assert len(result.disagreements) == 2
    assert result.matched_by == "span"
    result_named = agreement_files(project, project, codebook, n_boot=0, user_a="Ben", user_b="Ana")
    assert result_named.n == len(gold)
    import pytest as _pytest

    from supportlens.corpus.dataset import DataError

    with _pytest.raises(DataError, match="no user 'Zoe'"):
        agreement_files(project, None, codebook, user_b="Zoe")


def test_cli_names_the_two_users_it_compared(tmp_path):
    """On a .qdpx the header says which coders were compared, not the file twice."""
    from typer.testing import CliRunner

    from qda_projects import ANA, BEN, LABEL_CODE, SAMPLES, SMP01_GUID, build_project, gold_codings, make_guid
    from supportlens.cli import app

    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    selections = []
    for i, g in enumerate(gold_codings()):
        selections.append((make_guid(f"a-{i}"), g["start"], g["end"], ANA, [LABEL_CODE[g["label"]]]))
        selections.append((make_guid(f"b-{i}"), g["start"], g["end"], BEN, [LABEL_CODE[g["label"]]]))
    project = build_project(
        tmp_path / "two.qdpx",
        [{"guid": SMP01_GUID, "name": "smp01_child_welfare.txt", "text": text, "selections": selections}],
    )
    result = CliRunner().invoke(app, ["agreement", str(project), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    header = [line for line in result.output.splitlines() if line.startswith(("A = ", "B = "))]
    assert len(header) == 2 and {h[4:] for h in header} == {"two.qdpx [Ana]", "two.qdpx [Ben]"}


def test_one_unknown_code_leaves_the_others_matched_through_the_codebook(tmp_path, codebook_path, monkeypatch):
    """A code the project codebook does not know ('Mixed') is compared as written; "Push" and
    "push" are still one code, so they agree, and the note names the unknown code and its row."""
    codes = ["push", "pull", "co_creation", "none", "push", "pull", "none", "co_creation"]
    spelled = {"push": "Push", "pull": "Pull", "co_creation": "Co-creation/exchange"}
    a = _write(tmp_path / "a.csv", [{"id": f"x{i}", "code": c} for i, c in enumerate(codes)])
    c = _write(
        tmp_path / "c.csv",
        [{"id": f"x{i}", "code": "Mixed" if i == 3 else spelled.get(code, code)} for i, code in enumerate(codes)],
    )
    _in_a_project_folder(tmp_path, codebook_path, monkeypatch)
    result = runner.invoke(app, ["agreement", str(a), str(c), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "compared as written: 'Mixed' (c.csv row 5)" in result.output
    assert "disagreements (1)" in result.output  # only x3 (none vs Mixed); Push/push agree
    assert re.search(r"percent agreement\s*│\s*0\.875", result.output), result.output
    # the library: "keep" maps what the codebook knows; "error" (an explicit codebook) still stops
    from supportlens.codebook import load_codebook

    book = load_codebook(codebook_path)
    kept = agreement_files(a, c, book, n_boot=0, unknown_codes="keep")
    assert kept.labels == book.labels + ["Mixed"] and kept.n == 8 and len(kept.disagreements) == 1
    with pytest.raises(DataError, match=r"unknown code in field 'code': 'Mixed' \(row 5\)"):
        agreement_files(a, c, book, n_boot=0)


def _project_with_unmapped_codes(tmp_path: Path) -> Path:
    """Ana and Ben code the 17 passages of smp01. Ben codes each of the 3 pull passages with
    'Responsive TA' (no codebook name), Ana the first; Ben codes the second passage (push) none."""
    from qda_projects import (
        ANA,
        BEN,
        LABEL_CODE,
        RESPONSIVE,
        SAMPLES,
        SMP01_GUID,
        build_project,
        gold_codings,
        make_guid,
    )

    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    selections = []
    for i, g in enumerate(gold_codings()):
        label = g["label"]
        ana = RESPONSIVE if label == "pull" and i == 3 else LABEL_CODE[label]
        ben = RESPONSIVE if label == "pull" else LABEL_CODE["none" if i == 1 else label]
        selections.append((make_guid(f"a-{i}"), g["start"], g["end"], ANA, [ana]))
        selections.append((make_guid(f"b-{i}"), g["start"], g["end"], BEN, [ben]))
    return build_project(
        tmp_path / "two.qdpx",
        [{"guid": SMP01_GUID, "name": "smp01_child_welfare.txt", "text": text, "selections": selections}],
    )


def test_qdpx_agreement_reports_skipped_selections_and_takes_a_code_map(tmp_path):
    from qda_projects import gold_codings

    project = _project_with_unmapped_codes(tmp_path)
    assert [g["label"] for g in gold_codings()].count("pull") == 3 and gold_codings()[1]["label"] == "push"
    plain = runner.invoke(app, ["agreement", str(project), "--bootstrap", "0"])
    assert plain.exit_code == 0, plain.output
    assert (
        "note: 4 selections skipped: their codes map to no codebook code ('Support model > Responsive TA' "
        "(4)); map them with --code-map"
    ) in plain.output, plain.output
    assert re.search(r"│\s*14\s*│\s*2\s*│\s*0\s*│", plain.output.split("units (matched by span)")[1])
    code_map = tmp_path / "map.yaml"
    code_map.write_text('"Responsive TA": pull\n', encoding="utf-8")
    mapped = runner.invoke(app, ["agreement", str(project), "--bootstrap", "0", "--code-map", str(code_map)])
    assert mapped.exit_code == 0, mapped.output
    assert "selections skipped" not in mapped.output
    units = mapped.output.split("units (matched by span)")[1]
    assert re.search(r"│\s*17\s*│\s*0\s*│\s*0\s*│", units), units  # every passage is now compared
    assert "disagreements (1)" in mapped.output
    a, b = _coder_files(tmp_path)
    wrong = runner.invoke(app, ["agreement", str(a), str(b), "--code-map", str(code_map)])
    assert wrong.exit_code == 2 and "--code-map maps the codes of one .qdpx project" in wrong.output


def test_qdpx_agreement_compares_the_human_coders_by_default(tmp_path, codebook):
    """Once a project holds supportlens' suggestions (more codings than anyone), the default is
    still Ana against Ben, and a note says who was compared and how to choose the model instead."""
    from qda_projects import SMP01_GUID, gold_codings
    from supportlens.qda.exporting import export_suggestions

    project = _project_with_unmapped_codes(tmp_path)
    gold = gold_codings()
    predictions = pd.DataFrame(
        {
            "source": SMP01_GUID,
            "start": [g["start"] for g in gold],
            "end": [g["end"] for g in gold],
            "label": "push",
            "confidence": 0.9,
        }
    )
    suggested = tmp_path / "suggested.qdpx"
    export_suggestions(project, predictions, None, suggested, codebook)
    result = agreement_files(suggested, None, codebook, n_boot=0)
    assert (result.name_a, result.name_b) == ("suggested.qdpx [Ana]", "suggested.qdpx [Ben]")
    note = next(n for n in result.notes if n.startswith("compared "))
    assert note.startswith("compared Ana (A) with Ben (B), Ana and Ben being the two human coders with most codings")
    assert "not compared: supportlens suggestions (" in note and "`user_a` and `user_b`" in note
    assert "--user-a and --user-b" in in_cli_terms(note)  # as the command line says it
    model = agreement_files(suggested, None, codebook, n_boot=0, user_b="supportlens suggestions")
    assert (model.name_a, model.name_b) == ("suggested.qdpx [Ana]", "suggested.qdpx [supportlens suggestions]")
    with pytest.raises(
        DataError,
        match=r"no user 'Zoe'.*Ana \(\d+\), Ben \(\d+\), supportlens suggestions "
        r"\(\d+, model suggestions\)",
    ):
        agreement_files(suggested, None, codebook, user_a="Zoe")


def test_a_project_without_a_codebook_uses_the_project_folders_codebook(tmp_path, codebook_path, monkeypatch):
    """Review item 12: `qdpx_codings` reads config.DEFAULT_CODEBOOK (configs/codebook.yaml of the
    folder it runs in), as every other command does, before the one bundled with the package."""
    from qda_projects import ANA, BEN, FUNDING, SAMPLES, SMP01_GUID, build_project, gold_codings, make_guid
    from supportlens.evaluation.agreement import qdpx_codings

    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    selections = [
        (make_guid(f"{who}-{i}"), g["start"], g["end"], who, [FUNDING])
        for i, g in enumerate(gold_codings()[:4])
        for who in (ANA, BEN)
    ]
    project = build_project(
        tmp_path / "p.qdpx",
        [{"guid": SMP01_GUID, "name": "smp01_child_welfare.txt", "text": text, "selections": selections}],
    )
    folder = tmp_path / "study"
    (folder / "configs").mkdir(parents=True)
    # this study's codebook knows the project's code "Funding" as an alias of push
    book = codebook_path.read_text(encoding="utf-8").replace(
        'aliases: ["push model"', 'aliases: ["funding", "push model"'
    )
    assert book != codebook_path.read_text(encoding="utf-8")
    (folder / "configs" / "codebook.yaml").write_text(book, encoding="utf-8")
    monkeypatch.chdir(folder)
    a, b = qdpx_codings(project)
    assert len(a.frame) == len(b.frame) == 4 and set(a.frame["code"]) == {"push"}
    monkeypatch.chdir(tmp_path)  # no codebook here: the bundled one, which has no alias "funding"
    with pytest.raises(DataError, match=r"p\.qdpx: needs codings by two users that map to the codebook; found none"):
        qdpx_codings(project)


def test_codes_kept_as_written_list_only_the_codes_that_occur(tmp_path, codebook):
    """Review items 13 and 11: with the project codebook only matching names ("keep"), files in
    another scheme get no rows of zeros for the codebook's four codes, and the result says which
    codes were compared as written (the CLI reads that flag, not the wording of a note)."""
    a = _write(
        tmp_path / "a.csv",
        [{"id": f"x{i}", "code": c} for i, c in enumerate(["Capacity", "Funding", "Capacity", "Push"])],
    )
    b = _write(
        tmp_path / "b.csv",
        [{"id": f"x{i}", "code": c} for i, c in enumerate(["Capacity", "Capacity", "Capacity", "push"])],
    )
    result = agreement_files(a, b, codebook, n_boot=0, unknown_codes="keep")
    assert result.labels == ["push", "Capacity", "Funding"]
    assert result.per_code["code"].tolist() == ["push", "Capacity", "Funding"]
    assert list(result.confusion.index) == list(result.confusion.columns) == ["push", "Capacity", "Funding"]
    assert result.unknown_codes == ["Capacity", "Funding"]
    same = agreement_files(a, a, codebook, n_boot=0, unknown_codes="keep")
    assert same.kappa.value == 1.0
    known = _write(
        tmp_path / "k.csv", [{"id": f"x{i}", "code": c} for i, c in enumerate(["push", "pull", "none", "push"])]
    )
    assert agreement_files(known, known, codebook, n_boot=0, unknown_codes="keep").unknown_codes == []


def test_cli_notes_the_codebook_match_by_the_flag_not_by_the_notes_wording(tmp_path, codebook_path, monkeypatch):
    """Review item 11: a note that happens to contain "compared as written" (here, a coder's file
    name in a note) must not stop the CLI from saying that codes were matched through the codebook."""
    import supportlens.evaluation.agreement as agreement_module

    codes = ["push", "pull", "co_creation", "none"]
    a = _write(tmp_path / "a.csv", [{"id": f"x{i}", "code": c} for i, c in enumerate(codes)])
    _in_a_project_folder(tmp_path, codebook_path, monkeypatch)
    real = agreement_module.agreement_files

    def with_a_note(*args, **kwargs):
        result = real(*args, **kwargs)
        result.notes.append("sources matched by file name: 'codes compared as written.txt'")
        return result

    monkeypatch.setattr(agreement_module, "agreement_files", with_a_note)
    result = runner.invoke(app, ["agreement", str(a), str(a), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "codes matched through configs/codebook.yaml" in result.output


def test_qdpx_agreement_needs_two_different_users(tmp_path, codebook):
    """The same user named twice, or a project only one user coded, is an error that says so."""
    from qda_projects import ANA, LABEL_CODE, SAMPLES, SMP01_GUID, build_project, gold_codings, make_guid

    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    selections = [
        (make_guid(f"a-{i}"), g["start"], g["end"], ANA, [LABEL_CODE[g["label"]]]) for i, g in enumerate(gold_codings())
    ]
    project = build_project(
        tmp_path / "one.qdpx",
        [{"guid": SMP01_GUID, "name": "smp01_child_welfare.txt", "text": text, "selections": selections}],
    )
    with pytest.raises(DataError, match=r"needs codings by two users that map to the codebook; found Ana \(\d+\)"):
        agreement_files(project, None, codebook, n_boot=0)
    with pytest.raises(DataError, match="`user_a` and `user_b` both name 'Ana'; name two users") as err:
        agreement_files(project, None, codebook, n_boot=0, user_a="Ana", user_b="Ana")
    assert "--user-a and --user-b both name 'Ana'; name two users" in in_cli_terms(str(err.value))


def test_read_coding_rejects_an_unknown_choice_for_unknown_codes(tmp_path, codebook):
    path = _write(tmp_path / "a.csv", [{"id": "x0", "code": "push"}])
    with pytest.raises(ValueError, match="unknown_codes must be one of error, keep; got 'ignore'"):
        read_coding(path, codebook, unknown_codes="ignore")


def test_cli_agreement_with_nothing_to_write_leaves_the_earlier_file_alone(tmp_path):
    """Coders who now agree on every unit, or files that share no unit: no disagreements sheet is
    written over the earlier one (the coders' resolved codes and notes), and the output says so."""
    a, _ = _coder_files(tmp_path)
    out_file = tmp_path / "disagree.csv"
    out_file.write_bytes(b"id,code_a,code_b,resolved_code,notes\nx3,push,pull,pull,agreed in meeting\n")
    before = out_file.read_bytes()
    same = runner.invoke(app, ["agreement", str(a), str(a), "--out", str(out_file), "--bootstrap", "0"])
    assert same.exit_code == 0, same.output
    assert f"no disagreements, so {out_file} was not written (it is unchanged)" in " ".join(same.output.split())
    assert out_file.read_bytes() == before
    disjoint = _write(tmp_path / "c.jsonl", [{"id": "zz", "label": "push"}])
    none = runner.invoke(app, ["agreement", str(a), str(disjoint), "--out", str(out_file)])
    assert none.exit_code == 2 and "share no units" in none.output
    assert f"{out_file} was not written (it is unchanged)" in " ".join(none.output.split())
    assert out_file.read_bytes() == before
