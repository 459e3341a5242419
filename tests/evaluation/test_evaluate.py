"""Evaluation results: paired differences, strict JSON, the overlap with training data."""

import pytest
from typer.testing import CliRunner

from supportlens.cli import app

runner = CliRunner()


def test_paired_difference_needs_the_same_excerpts_and_codes():
    import numpy as np

    from supportlens.evaluation.evaluate import evaluate_proba, paired_difference

    labels = ["push", "pull", "co_creation", "none"]
    y = ["push", "pull", "none", "none"]
    sure = np.eye(4)[[0, 1, 3, 3]]
    unsure = np.eye(4)[[0, 0, 3, 1]]
    a = evaluate_proba(y, sure, labels, ids=["a", "b", "c", "d"])
    b = evaluate_proba(y, unsure, labels, ids=["a", "b", "c", "d"])
    result = paired_difference(a, b, n_boot=300)
    assert result["kappa_a"] == pytest.approx(1.0)
    assert result["kappa_difference"] == pytest.approx(1.0 - result["kappa_b"])
    assert (result["both_right"], result["only_a_right"], result["only_b_right"]) == (2, 2, 0)
    other_rows = evaluate_proba(y, unsure, labels, ids=["a", "b", "c", "e"])
    with pytest.raises(ValueError, match="not of the same coded excerpts"):
        paired_difference(a, other_rows)
    other_codes = evaluate_proba(
        y, unsure[:, [1, 0, 2, 3]], ["pull", "push", "co_creation", "none"], ids=["a", "b", "c", "d"]
    )
    with pytest.raises(ValueError, match="different codebooks"):
        paired_difference(a, other_codes)


def test_json_outputs_are_strict_json_with_whole_counts(model_dir, coded_file, tmp_path):
    """metrics.json held a bare NaN (no precision among no accepted passages) and against.json
    wrote counts as floats ("n": 12.0)."""
    import json

    import numpy as np

    from supportlens.evaluation.evaluate import evaluate_proba

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))

    ev = evaluate_proba(
        ["push", "pull"],
        np.array([[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0]]),
        ["push", "pull", "co_creation", "none"],
        review_threshold=1.0,
    )
    ev.write(tmp_path / "ev")
    assert strict((tmp_path / "ev" / "metrics.json").read_text())["accepted_precision"] is None
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--data",
            str(coded_file),
            "--no-log",
            "--against",
            str(model_dir),
            "--out",
            str(tmp_path / "both"),
        ],
    )
    assert result.exit_code == 0, result.output
    against = strict((tmp_path / "both" / "against.json").read_text())
    for key in ("n", "both_right", "only_a_right", "only_b_right"):
        assert isinstance(against[key], int), key
    assert against["n"] == 80


def test_training_overlap_reads_each_saved_part_once(tmp_path, monkeypatch):
    """Review item 13: the saved hashes of a part become a set once, not once per text scored."""
    import json as real_json
    import types

    from supportlens.evaluation import evaluate

    texts = [f"excerpt number {i}" for i in range(50)]
    (tmp_path / evaluate.EXCERPTS_FILE).write_text(
        real_json.dumps(evaluate.excerpt_hashes({"train": texts[:10], "val": texts[10:15], "test": texts[15:20]})),
        encoding="utf-8",
    )
    passes = []

    class Counted(list):
        def __iter__(self):
            passes.append(1)
            return super().__iter__()

    def loads(text):
        return {k: Counted(v) if isinstance(v, list) else v for k, v in real_json.loads(text).items()}

    monkeypatch.setattr(evaluate, "json", types.SimpleNamespace(loads=loads))
    assert evaluate.training_overlap(tmp_path, [t.upper() for t in texts]) == {"train": 10, "val": 5, "test": 5}
    assert len(passes) <= 3
