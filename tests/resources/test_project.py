"""``supportlens init``: a project folder to work in, never written over a user's files."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import ROOT
from supportlens.cli import app
from supportlens.config import load_config
from supportlens.resources.project import ProjectError, init_project

runner = CliRunner()


def test_init_makes_a_project_whose_default_config_works_from_it(tmp_path, monkeypatch):
    written = init_project(tmp_path / "study")
    folder = tmp_path / "study"
    assert sorted(p.as_posix() for p in written) == sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
    )
    for name in ("codebook.yaml", "default.yaml", "embed-prior.yaml", "zeroshot.yaml", "tfidf.yaml", "llm.yaml"):
        assert (folder / "configs" / name).read_bytes() == (ROOT / "configs" / name).read_bytes()
    assert sorted(p.name for p in (folder / "data" / "transcripts").iterdir()) == sorted(
        p.name for p in (ROOT / "data" / "transcripts").glob("smp*")
    )
    assert "data/coded.csv" in (folder / "data" / "README.md").read_text(encoding="utf-8")
    ignored = (folder / ".gitignore").read_text(encoding="utf-8").split()
    assert {".venv/", "mlflow.db", "mlruns/", "mlartifacts/", "outputs/"} <= set(ignored)
    # from the project: its own codebook and members, the bundled starter corpus
    monkeypatch.chdir(folder)
    cfg = load_config("configs/default.yaml")
    assert cfg.codebook == "configs/codebook.yaml"
    assert cfg.ensemble.members == ["configs/embed-prior.yaml", "configs/zeroshot.yaml"]
    assert cfg.data.path.endswith("starter.jsonl") and cfg.data.path != "data/excerpts/starter.jsonl"


def test_init_never_writes_over_a_users_files(tmp_path):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="study already exists and is not empty"):
        init_project(tmp_path / "study")
    assert [p.name for p in (tmp_path / "study").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ProjectError):
        init_project(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert init_project(tmp_path / "empty")  # an empty folder is fine


def test_cli_init_prints_the_next_steps_and_refuses_a_second_time(tmp_path):
    made = runner.invoke(app, ["init", str(tmp_path / "study")])
    assert made.exit_code == 0, made.output
    assert f"cd {tmp_path / 'study'}" in made.output and "supportlens train --data data/coded.csv" in made.output
    again = runner.invoke(app, ["init", str(tmp_path / "study")])
    assert again.exit_code == 2 and "already exists and is not empty" in again.output
