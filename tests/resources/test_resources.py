"""The one rule for finding a file the user named: theirs when it exists, else the bundled copy."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import ROOT
from supportlens.config import load_config
from supportlens.resources import bundled_configs, bundled_file, resolve, sample_transcripts


def _same_file(found: Path, repo_path: str) -> bool:
    """The bundled copy is the repository's file (one copy in git; an editable install reads it)."""
    return found.is_absolute() and found.read_bytes() == (ROOT / repo_path).read_bytes()


@pytest.mark.parametrize(
    "name, repo_path",
    [
        ("configs/default.yaml", "configs/default.yaml"),
        ("default", "configs/default.yaml"),
        ("tfidf.yaml", "configs/tfidf.yaml"),
        ("codebook", "configs/codebook.yaml"),
        ("experiments/setfit-minilm", "configs/experiments/setfit-minilm.yaml"),
        ("data/transcripts/smp01_child_welfare.txt", "data/transcripts/smp01_child_welfare.txt"),
    ],
)
def test_outside_a_project_names_resolve_to_the_bundled_files_with_a_note(
    name, repo_path, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="supportlens.resources"):
        found = resolve(name)
    assert _same_file(found, repo_path)
    assert f"no {repo_path} in {tmp_path}: using the one bundled with supportlens ({found})" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="supportlens.resources"):
        assert resolve(name, note=False) == found and not caplog.text


def test_a_users_own_file_wins_and_is_not_noted(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tfidf.yaml").write_text("model: {kind: tfidf_logreg}\n")
    (tmp_path / "mine.yaml").write_text("seed: 1\n")
    with caplog.at_level(logging.INFO, logger="supportlens.resources"):
        assert resolve("tfidf") == Path("configs/tfidf.yaml")  # the project's, by its bare name too
        assert resolve("configs/tfidf.yaml") == Path("configs/tfidf.yaml")
        assert resolve("mine.yaml") == Path("mine.yaml")
    assert not caplog.text


@pytest.mark.parametrize(
    "name", ["nowhere.yaml", "configs/nowhere.yaml", "configs/../pyproject.toml", "src/supportlens/config.py"]
)
def test_other_names_come_back_unchanged_for_the_callers_error(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bundled_file(name) is None
    assert resolve(name) == Path(name)


def test_a_bundled_config_finds_its_codebook_and_data_in_the_bundle_and_the_projects_codebook_first(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cfg = load_config("tfidf")
    assert _same_file(Path(cfg.codebook), "configs/codebook.yaml")
    assert Path(cfg.data.path).name == "starter.jsonl" and Path(cfg.data.path).is_file()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "codebook.yaml").write_text("codes: []\n")
    assert load_config("tfidf").codebook == "configs/codebook.yaml"  # the project's codebook wins
    defaults = load_config(None)  # no file: the defaults, their paths resolved the same way
    assert defaults.codebook == "configs/codebook.yaml" and Path(defaults.data.path).name == "starter.jsonl"


def test_the_bundled_names_and_samples():
    names = bundled_configs()
    assert names[:7] == ["default", "embed-logreg", "embed-prior", "finetune", "llm", "tfidf", "zeroshot"]
    assert "experiments/setfit-minilm" in names and "codebook" not in names
    assert [p.name for p in sample_transcripts()] == sorted(p.name for p in (ROOT / "data/transcripts").glob("smp*"))
