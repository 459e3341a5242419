"""Commands that run no transformer start without importing torch or transformers.

`supportlens runs` once took 6 to 7 seconds, most of it importing torch (tracking -> models.base ->
models/__init__ -> finetune); each command here runs in a fresh interpreter, as a user runs it, and
says which of the heavy libraries it had imported by the time it finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, write_jsonl

HEAVY = ("torch", "transformers")
# the command as the console script runs it, then what it imported (SystemExit ends every command)
SCRIPT = f"""
import json, sys
from supportlens.cli import app
try:
    app(sys.argv[1:], prog_name="supportlens")
    code = 0
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({{"exit": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _imports(args: list[str], cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the folder's own store
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report_input(folder: Path, model_dir: Path) -> list[str]:
    from supportlens import Labeler, load_classifier, predict_files

    labels = folder / "labels.jsonl"
    predict_files(
        [str(ROOT / "data" / "transcripts" / "smp01_child_welfare.txt")], Labeler(load_classifier(model_dir)), labels
    )
    return ["report", str(labels), "--out", str(folder / "report.html")]


def _agreement_input(folder: Path, model_dir: Path) -> list[str]:
    codes = ["push", "pull", "co_creation", "none"]
    a = write_jsonl(
        folder / "a.jsonl", [{"id": f"x{i}", "text": f"excerpt {i}", "label": codes[i % 4]} for i in range(8)]
    )
    b = write_jsonl(
        folder / "b.jsonl", [{"id": f"x{i}", "text": f"excerpt {i}", "label": codes[i // 2 % 4]} for i in range(8)]
    )
    return ["agreement", str(a), str(b), "--bootstrap", "0"]


@pytest.mark.parametrize("command", ["--help", "runs", "agreement", "report"])
def test_command_does_not_import_torch_or_transformers(command, tmp_path, model_dir):
    inputs = {
        "--help": lambda folder, _: ["--help"],
        "runs": lambda folder, _: ["runs"],
        "agreement": _agreement_input,
        "report": _report_input,
    }
    result = _imports(inputs[command](tmp_path, model_dir), tmp_path)  # runs: an empty store, made here
    assert result == {"exit": 0, "heavy": []}
