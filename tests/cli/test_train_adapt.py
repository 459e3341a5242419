"""`train --add-data [--init-from]` and `adapt`: the target domain from the command line, and the
trust figure printed and logged (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from typer.testing import CliRunner

from conftest import CODEBOOK, PASSAGES, fast_overrides, write_jsonl
from supportlens.cli import app
from supportlens.models import load_classifier

runner = CliRunner()


def _own(tmp_path: Path, n_interviews: int = 4) -> Path:
    """Passages of 'your own corpus', two per code from each of ``n_interviews`` interviews."""
    rows = []
    for g in range(n_interviews):
        for label, sentences in PASSAGES.items():
            for j in range(2):
                text = f"{sentences[(g + j) % 3]} said the coach at clinic {g} visit {j}"
                rows.append({"id": f"own{g}-{label}-{j}", "interview_id": f"own{g}", "text": text, "label": label})
    return write_jsonl(tmp_path / "own.jsonl", rows)


def _sets(*more: str) -> list[str]:
    return [x for s in [*fast_overrides(), *more] for x in ("--set", s)]


def _train(coded_file: Path, *extra: str) -> object:
    args = ["train", "--config", str(CODEBOOK.parent / "tfidf.yaml"), "--data", str(coded_file)]
    return runner.invoke(app, args + list(extra))


def test_train_add_data_prints_the_trust_figure_and_logs_it(coded_file, tracking_uri, tmp_path):
    own = _own(tmp_path)
    result = _train(coded_file, "--add-data", str(own), *_sets("adapt.fewshot=off"))
    assert result.exit_code == 0, result.output
    text = result.output
    assert "target domain: 32 coded passages of your own corpus from 4 interviews, not split" in text
    trust_at = text.index("On your 32 coded passages from 4 interviews, cross-fitted")
    assert text.index("test: macro-F1") < trust_at and "recall per code (passages): push" in text[trust_at:]
    assert "precision reached" in text[trust_at:]
    run_id = text.split("model URI:")[1].split()[0].split("/")[1]
    run = mlflow.get_run(run_id)
    assert 0.0 <= run.data.metrics["target_kappa"] <= 1.0 and run.data.metrics["target_n"] == 32
    assert run.data.params["data.target_passages"] == "32"
    saved = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="trust.json")).read_text())
    assert saved["n"] == 32 and saved["lines"][0].startswith("On your 32 coded passages")


def test_adapt_continues_a_trained_model_on_your_coded_passages(coded_file, tmp_path, tiny_bert, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = _train(coded_file, "--no-track", *_sets(f"model.pretrained={tiny_bert}"))
    assert first.exit_code == 0, first.output
    model_dir = first.output.split("model folder:")[1].split()[0]
    own = _own(tmp_path, n_interviews=5)  # 40 passages: calibrated on them (adapt.min_target_calibration)
    adapted = runner.invoke(app, ["adapt", str(own), "--model", model_dir, "--no-track"])
    assert adapted.exit_code == 0, adapted.output
    out = adapted.output
    assert "continued training of the given model, authored rows replayed (25%), the passages weighted" in out
    assert "a few-shot prototype component blended in" in out and "On your 40 coded passages from 5" in out
    new_dir = Path(out.split("model folder:")[1].split()[0])
    model = load_classifier(new_dir)
    assert model.kind == "fewshot_blend" and model.base_.kind == "tfidf_logreg"
    meta = model.meta_
    assert meta["run"]["target"]["init_from"] == model_dir and meta["calibration"]["on"] == "target"
    before = load_classifier(model_dir).meta_
    assert meta["run"]["split"] == before["run"]["split"]  # the model's own authored split: test held out
    assert "were training or validation data of" not in out
    assert "had already learnt" not in out  # the first model never saw these passages
    # an adapted model continues again (its base; the blend is rebuilt over the passages given)
    again = runner.invoke(app, ["adapt", str(own), "--model", str(new_dir), "--no-track", "--set", "adapt.fewshot=off"])
    assert again.exit_code == 0, again.output
    # ... but it learnt these very passages: every fold starts from a model that saw them
    assert "had already learnt 40 of these 40 coded passages" in again.output
    assert "figure is optimistic" in again.output
    assert load_classifier(again.output.split("model folder:")[1].split()[0]).kind == "tfidf_logreg"


def test_adapt_and_init_from_errors_are_one_line_naming_the_flag(coded_file, tmp_path, monkeypatch, model_dir):
    monkeypatch.chdir(tmp_path)
    own = _own(tmp_path)
    alone = _train(coded_file, "--no-track", "--init-from", str(model_dir), *_sets())
    assert alone.exit_code == 2
    assert "--init-from continues a trained model" in alone.output and "give them with --add-data" in alone.output
    kind = _train(
        coded_file,
        "--no-track",
        "--add-data",
        str(own),
        "--init-from",
        str(model_dir),
        *_sets("model.kind=embed_logreg"),
    )
    assert kind.exit_code == 2 and "is a tfidf_logreg model, but the config trains embed_logreg" in kind.output
    missing = runner.invoke(app, ["adapt", str(own), "--model", str(tmp_path / "nomodel"), "--no-track"])
    assert missing.exit_code == 2 and "nomodel" in missing.output and "Traceback" not in missing.output
    no_config = runner.invoke(app, ["adapt", str(own), "--model", str(model_dir), "--no-track"])
    assert no_config.exit_code == 2
    assert "--model" in no_config.output and "was saved without its config" in no_config.output
    no_sheet = runner.invoke(app, ["adapt", str(tmp_path / "none.csv"), "--model", str(model_dir), "--no-track"])
    assert no_sheet.exit_code == 2


def test_adapt_says_which_authored_file_is_gone_and_how_to_give_it(coded_file, tmp_path, monkeypatch):
    """`adapt` replays the authored data the model was trained on: when that file has moved, the
    error names it and the option that gives it, before anything is trained."""
    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "authored.jsonl"
    moved.write_bytes(coded_file.read_bytes())
    first = _train(moved, "--no-track", *_sets())
    assert first.exit_code == 0, first.output
    model_dir = first.output.split("model folder:")[1].split()[0]
    moved.unlink()
    gone = runner.invoke(app, ["adapt", str(_own(tmp_path)), "--model", model_dir, "--no-track"])
    assert gone.exit_code == 2 and "Traceback" not in gone.output
    assert "authored.jsonl: file not found (the authored data" in gone.output and "--data" in gone.output
