"""Installed like any Python tool: the wheel carries the codebook, the configs and the sample data,
and every command works in an empty folder, from a fresh virtual environment, with no repository
file on the path (issue #21).

The wheel test takes minutes (a fresh environment gets torch, transformers, MLflow...), so it is
marked ``install``: `make test` leaves it out, `make test-install` (run by .ci/run) runs it.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

# Authored coded excerpts: ten interviews, one excerpt per code each (the README's four codes).
EXCERPTS = {
    "push": [
        "We trained every site on the manual and checked fidelity each month.",
        "The programme was rolled out the same way everywhere and sites had to comply.",
        "Our job was to deliver the curriculum and certify the staff.",
        "We sent the protocol down and expected the clinics to follow it to the letter.",
        "Fidelity checklists came from the state office and we enforced them.",
        "We told the schools what the model required and monitored adherence.",
        "The toolkit was fixed; sites received it and implemented it as written.",
        "Coaches audited each team against the standard and reported deviations.",
        "We delivered the same training package to every agency, no changes allowed.",
        "Headquarters decided the plan and we pushed it out to the districts.",
    ],
    "pull": [
        "The county asked for help with referrals, so we tailored the coaching to that.",
        "We listened to what the agency needed and answered their requests.",
        "Support started from the questions the site brought to us.",
        "When the clinic called with a problem we came and helped with that problem.",
        "The school asked for data help and we provided it on their terms.",
        "Teams requested a workshop on supervision, and we built one for them.",
        "We waited for the districts to tell us what they wanted before offering anything.",
        "Their manager asked for advice on staffing and we responded to that request.",
        "The help desk answered whatever the practitioners asked about that week.",
        "They came to us with a need and we found the resource they were after.",
    ],
    "co_creation": [
        "We designed the plan together with the families and staff and shared decisions.",
        "The team and I made sense of the data jointly and agreed next steps as partners.",
        "We learned from each other and built the solution side by side.",
        "Parents, nurses and our staff co-wrote the new intake process in joint sessions.",
        "We sat with the teachers and worked out the approach together, as equals.",
        "Decisions were made jointly at the partnership table, not by us alone.",
        "We co-designed the pilot with the community and adjusted it together.",
        "The clinicians and researchers developed the tool together over many meetings.",
        "Every change was negotiated together with the site leaders and the youth council.",
        "We built the improvement plan in partnership, sharing ownership of the results.",
    ],
    "none": [
        "I started my career as a caseworker in a small town.",
        "The funding ended in the spring and the office moved.",
        "Yeah, that is a good question, let me think.",
        "I have two children and we live near the coast.",
        "The building had no parking, which was annoying.",
        "My first job after university was in a bakery.",
        "We had a lot of snow that winter.",
        "The conference was in a hotel by the airport.",
        "I moved to the city about ten years ago.",
        "Sorry, could you repeat the question?",
    ],
}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_under_src_is_listed_for_the_wheel():
    """pyproject.toml lists its packages (configs/ and data/ are mapped in, which `find` cannot do):
    a package added under src/ and not listed would be missing from the wheel."""
    from setuptools import find_packages

    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert set(find_packages(str(ROOT / "src"))) <= listed


def _build_wheel(out: Path) -> Path:
    """The wheel, built from a copy of the files it is made of: a build in the working tree would
    reuse its build/ folder, where a module deleted since is still found."""
    source = out / "source"
    source.mkdir(parents=True)
    for item in ROOT.iterdir():  # pyproject.toml, README.md and any other top-level file it names
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, source / item.name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for folder in ("src", "configs", "data"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    # build isolation: pyproject's build-system (setuptools>=77), not whatever this environment has
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out / "dist"), str(source)], cwd=out)
    (wheel,) = (out / "dist").glob("supportlens-*.whl")
    return wheel


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


@pytest.mark.install
def test_the_wheel_works_in_an_empty_folder(tmp_path):
    wheel = _build_wheel(tmp_path / "build")
    names = zipfile.ZipFile(wheel).namelist()
    # one copy of each config in git, all of them in the wheel; the samples but not their gold coding
    shipped = {n.split("resources/", 1)[1] for n in names if "/resources/configs/" in n and n.endswith(".yaml")}
    assert shipped == {p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").glob("**/*.yaml")}
    assert "supportlens/resources/data/excerpts/starter.jsonl" in names  # configs/default.yaml trains on it
    assert sum("/resources/data/transcripts/smp" in n for n in names) == 6 and not any("gold" in n for n in names)
    assert all(n.startswith(("supportlens/", "supportlens-")) for n in names)  # no tests, experiments, models
    assert wheel.stat().st_size < 2_000_000

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python, cli = venv / "bin" / "python", str(venv / "bin" / "supportlens")
    # Constrained to the lock file that make install and CI use (requirements/lock.txt): the
    # tested dependency set, resolved without backtracking; the test is about the package.
    pins = ROOT / "requirements" / "lock.txt"
    # torch first, pinned: the CPU build on this machine's disk (a bare `torch` pulls a CUDA build)
    _run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], cwd=tmp_path, timeout=900)
    _run([str(python), "-m", "pip", "install", "-q", "-c", str(pins), str(wheel)], cwd=tmp_path, timeout=1200)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    work = tmp_path / "empty"
    work.mkdir()
    where = _run(
        [
            str(python),
            "-c",
            "import importlib.resources as r, supportlens; "
            "print(supportlens.__file__); print(r.files('supportlens.resources.configs'))",
        ],
        work,
        env,
    )
    assert str(ROOT) not in where and str(venv) in where  # the installed copy, not the repository's

    version = _pyproject()["project"]["version"]
    assert _run([cli, "--version"], work, env).strip() == f"supportlens {version}"
    assert "cd proj" in _run([cli, "init", "proj"], work, env)
    project = work / "proj"
    with (project / "data" / "coded.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "interview_id", "text", "label"])
        for k in range(10):
            for label, texts in EXCERPTS.items():
                writer.writerow([f"int{k:02d}-{label}", f"int{k:02d}", texts[k], label])
    # tracked to the project's own mlflow.db, registered, and labelled through the registry
    trained = _run([cli, "train", "--config", "tfidf", "--data", "data/coded.csv", "--register", "mine"], project, env)
    assert "registered:   models:/mine@champion" in trained
    assert (project / "mlflow.db").is_file()
    _run(
        [
            cli,
            "predict",
            "data/transcripts/smp01_child_welfare.txt",
            "--model",
            "models:/mine@champion",
            "--out",
            "outputs/labels.csv",
        ],
        project,
        env,
    )
    assert len((project / "outputs" / "labels.csv").read_text(encoding="utf-8").splitlines()) > 5
    _run([cli, "report", "outputs/labels.csv", "--out", "outputs/report.html"], project, env)
    assert "<html" in (project / "outputs" / "report.html").read_text(encoding="utf-8").lower()
    # outside the project: the bundled codebook, and a note saying which file that was
    exported = _run([cli, "export-codebook", "--out", "codes.qdc"], work, env)
    assert "bundled with supportlens" in exported and str(venv) in exported
    assert "Co-creation" in (work / "codes.qdc").read_text(encoding="utf-8")
