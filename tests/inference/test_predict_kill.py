"""`supportlens predict` killed with SIGKILL at random points of a 200-file run, then rerun with
--resume until it finishes, gives exactly the rows of an uninterrupted run; and at every kill the
output at --out is absent or a complete earlier version, never a truncated one.

The CLI runs in a subprocess, as a user runs it, so a kill lands wherever it lands: while the
model loads, between journal commits, while the output is being written."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT
from supportlens.transcripts.read import read_transcript
from supportlens.transcripts.segmentation import segment

SAMPLES = ROOT / "data" / "transcripts"
N_FILES = 200
SEED = 17
RUN_LIMIT = 120  # seconds one CLI run may take before the test gives up on it


def _answers() -> list[str]:
    """Participants' turns of the text and caption samples, each cut to a few words."""
    answers = []
    for name in (
        "smp01_child_welfare.txt",
        "smp02_home_visiting.vtt",
        "smp04_behavioural_health.srt",
        "smp06_juvenile_justice.md",
    ):
        answers += [
            " ".join(p.text.split()[:18]) for p in segment(read_transcript(SAMPLES / name)) if p.role == "participant"
        ]
    return answers


def _stamp(seconds: int, comma: bool) -> str:
    stamp = f"00:{seconds // 60:02d}:{seconds % 60:02d}.000"
    return stamp.replace(".", ",") if comma else stamp


def write_corpus(folder: Path, n: int = N_FILES, seed: int = SEED) -> list[Path]:
    """`n` tiny transcripts of every format (a question and 1-3 answers cut from the samples), one copy of the
    .docx sample, and one broken caption file that every run reports and skips."""
    rng = random.Random(seed)
    answers = _answers()
    folder.mkdir()
    paths = []
    for i in range(n - 2):
        fmt = ("txt", "md", "vtt", "srt", "csv")[i % 5]
        window = [("Interviewer", "Could you tell me more about that?")]
        window += [("P1", answer) for answer in rng.sample(answers, rng.randint(1, 3))]
        path = folder / f"t{i:03d}.{fmt}"
        if fmt in ("txt", "md"):
            bold = "**" if fmt == "md" else ""
            body = "\n\n".join(f"{bold}{who}:{bold} {text}" for who, text in window) + "\n"
        elif fmt == "csv":
            table = io.StringIO()
            csv.writer(table).writerows([("speaker", "text"), *window])
            body = table.getvalue()
        else:
            blocks = [
                f"{k + 1}\n{_stamp(2 * k, fmt == 'srt')} --> {_stamp(2 * k + 1, fmt == 'srt')}\n{who}: {text}\n"
                for k, (who, text) in enumerate(window)
            ]
            body = ("WEBVTT\n\n" if fmt == "vtt" else "") + "\n".join(blocks)
        path.write_text(body, encoding="utf-8")
        paths.append(path)
    paths.append(Path(shutil.copy(SAMPLES / "smp05_public_health.docx", folder / "t198.docx")))
    broken = folder / "t199_broken.vtt"
    broken.write_text("this is not a caption file\n", encoding="utf-8")
    paths.append(broken)
    return paths


def _command(folder: Path, model_dir: Path, out: Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "supportlens.cli.app",
        "predict",
        str(folder),
        "--model",
        str(model_dir),
        "--out",
        str(out),
    ] + (["--resume"] if resume else [])


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "COLUMNS": "200"}


def _rows(path: Path) -> list[str]:
    """The data rows of a finished CSV output, sorted; a truncated file fails to parse or compares unequal."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path} does not end with a full row"
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body), f"{path} has a row cut short"
    return sorted("\x1f".join(row) for row in body)


def _parts(journal: Path) -> int:
    return len(list(journal.glob("*.jsonl"))) if journal.is_dir() else 0


def _temporary(out: Path) -> set[Path]:
    """The output's temporary files (`supportlens.io.atomic`): one is there while it is written, and
    a killed writer leaves its own behind."""
    return set(out.parent.glob(f".{out.name}.*.tmp"))


def _version(out: Path) -> tuple[int, int] | None:
    try:
        stat = out.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def run_cli(command: list[str], out: Path, kill_when=lambda seconds, parts, writing: False) -> dict:
    """Run the CLI; SIGKILL it as soon as `kill_when(seconds since start, transcripts this run
    committed to the journal, whether it is writing the output)` is true. Returns whether it was
    killed and when it first committed a transcript, started writing the output and ended (seconds
    since start; None if it did not)."""
    journal = out.parent / f".{out.name}.parts"
    before, left_over, version = _parts(journal), _temporary(out), _version(out)
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    seen = {"killed": False, "committed": None, "writing": None}
    while process.poll() is None:
        seconds = time.monotonic() - started
        assert seconds < RUN_LIMIT, "a predict run did not finish"
        parts = _parts(journal) - before
        if parts and seen["committed"] is None:
            seen["committed"] = seconds
        # a temporary file of its own, or (were it written in place) the output changing
        writing = bool(_temporary(out) - left_over) or _version(out) != version
        if seen["writing"] is None and writing:
            seen["writing"] = seconds
        if kill_when(seconds, parts, writing):
            os.kill(process.pid, signal.SIGKILL)
            seen["killed"] = True
        time.sleep(0.005)
    seen["ended"] = time.monotonic() - started
    seen["output"] = process.stdout.read().decode("utf-8", errors="replace")
    process.stdout.close()
    if not seen["killed"]:  # the broken file makes it exit 1
        assert process.returncode in (0, 1), f"predict exited {process.returncode}: {seen['output'][-2000:]}"
    return seen


def test_sigkill_then_resume_gives_the_rows_of_an_uninterrupted_run(tmp_path, model_dir):
    folder = tmp_path / "in"
    write_corpus(folder)

    baseline = tmp_path / "whole" / "labels.csv"
    baseline.parent.mkdir()
    whole = run_cli(_command(folder, model_dir, baseline, resume=False), baseline)
    assert "t199_broken.vtt" in whole["output"]  # reported, and skipped by every run
    expected = _rows(baseline)
    assert len({row.split("\x1f")[0] for row in expected}) == N_FILES - 1

    # kill points: random moments from about when transcripts are read (the model loads first) to
    # when the output is written, the first journal commit, the output being written (over the
    # complete output of an earlier run, if one finished); seeded, so every run tries the same
    rng = random.Random(SEED)
    end = whole["writing"] or whole["ended"]  # None: the poll missed the moment
    begin = 0.7 * (whole["committed"] or end / 2)
    # the commit-triggered kill comes first, on a fresh run: a timed kill that misses (the run was
    # faster than the baseline) would leave a complete output, and every later run would resume from
    # it without a journal, so no kill could land between commits
    kill_points = [
        lambda seconds, parts, writing: parts >= 1,
        lambda seconds, parts, writing, at=rng.uniform(begin, end): seconds >= at,
        lambda seconds, parts, writing, at=rng.uniform(begin, end): seconds >= at,
        lambda seconds, parts, writing: writing,
        lambda seconds, parts, writing, at=rng.uniform(begin, end): seconds >= at,
    ]
    out = tmp_path / "killed" / "labels.csv"
    out.parent.mkdir()
    journal = out.parent / f".{out.name}.parts"
    kills = between_commits = 0
    for k, kill_when in enumerate(kill_points):  # a run that finishes first is resumed from its output
        run = run_cli(_command(folder, model_dir, out, resume=k > 0), out, kill_when)
        if out.exists():  # a complete earlier version: every version written holds all the rows
            assert _rows(out) == expected, f"kill {k}: {out} is not a complete output"
        kills += run["killed"]
        between_commits += run["killed"] and _parts(journal) > 0 and not out.exists()
    # timed kills may come after a resumed run (less to do) has finished: then the next resumes from its output
    assert kills >= 2, f"only {kills} of {len(kill_points)} runs were killed before they finished"
    assert between_commits >= 1, "no kill landed between journal commits"

    final = run_cli(_command(folder, model_dir, out, resume=True), out)
    assert not final["killed"]
    assert _rows(out) == expected
    assert not journal.exists()  # a finished run leaves no journal behind
