"""Benchmark reading and segmenting very large transcripts: is the time linear in the input's size?

Inputs, made by repeating the bundled samples (data/transcripts/smp*):

* ``paragraph``: one paragraph without a line break (the six samples' text, whitespace collapsed,
  repeated) of 0.1, 1, 5 and 20 MB: one turn, which sentence splitting (pysbd) must cut up;
* ``turns``: a well-formed 20 MB transcript, the samples' turns (``Speaker: text`` lines, blank
  lines between) repeated: some 60,000 speaker turns.

Each size runs in a fresh process, which times ``read_transcript`` and ``segment`` apart and
records the process's peak resident memory (``VmHWM``) and its resident memory after the
imports, before the file is read. No model scores the passages: they are cut with the token count
`Labeler.count_tokens` uses for a model without a tokenizer (TF-IDF: 1.3 tokens per word, 256 a
passage); scoring's own time per passage is in predict_bench. Every passage's offsets are checked
(``transcript.text[p.start:p.end] == p.text``).

``--before`` adds the code as it was before sentence splitting went by windows (segmentation.py
at git ``HEAD`` unless ``--before-rev`` names another revision) on single paragraphs of 100, 200
and 400 KB: its time grew with the square of the paragraph.

    python experiments/bench_reading.py --before --out experiments/results/reading_bench
    python experiments/bench_reading.py --sizes 0.1 1 --turns-mb 1 --out /tmp/rb      # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
SAMPLES = ROOT / "data" / "transcripts"
MAX_TOKENS = 256  # a Labeler's limit for a model without a tokenizer


# -- inputs ------------------------------------------------------------------------------------


def sample_texts() -> list[str]:
    from supportlens.transcripts.read import read_transcript

    return [read_transcript(p).text for p in sorted(SAMPLES.glob("smp*"))]


def make_input(kind: str, megabytes: float, path: Path) -> None:
    """Write a `kind` input of about `megabytes` MB (10^6 bytes of UTF-8) to `path`."""
    texts = sample_texts()
    unit = " ".join(" ".join(t.split()) for t in texts) + " " if kind == "paragraph" else "\n\n".join(texts) + "\n\n"
    size = int(megabytes * 1_000_000)
    text = unit * (size // len(unit.encode("utf-8")) + 1)
    data = text.encode("utf-8")[:size].decode("utf-8", errors="ignore").strip() + "\n"
    path.write_text(data, encoding="utf-8")


# -- worker (a fresh process per input) -----------------------------------------------------------


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, from /proc (Linux only).
    Not ``getrusage``: its peak carries over from the parent across fork and exec, and the parent
    held the 20 MB inputs it made."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(path: str, code: str, before_rev: str) -> dict:
    import math

    import pysbd  # noqa: F401 - imported before the baseline, as `segment` would import it

    from supportlens.transcripts.read import read_transcript

    if code == "before":
        segment = _segment_at(before_rev)
    else:
        from supportlens.transcripts.segmentation import segment

    def count_tokens(text: str) -> int:  # Labeler.count_tokens for a model without a tokenizer
        return int(math.ceil(len(text.split()) * 1.3))

    baseline = _memory_mb("VmRSS")
    started = time.perf_counter()
    transcript = read_transcript(path)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    passages = segment(transcript, count_tokens=count_tokens, max_tokens=MAX_TOKENS)
    segment_s = time.perf_counter() - started
    peak = _memory_mb("VmHWM")
    ok = all(transcript.text[p.start : p.end] == p.text for p in passages)
    return {
        "bytes": os.path.getsize(path),
        "turns": len(transcript.cues),
        "passages": len(passages),
        "read_s": read_s,
        "segment_s": segment_s,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak,
        "offsets_ok": ok,
        "max_passage_tokens": max((count_tokens(p.text) for p in passages), default=0),
    }


def _segment_at(rev: str):
    """`segment` of src/supportlens/segmentation.py at git revision `rev`, importing the rest of
    the package as it is now (its `.read` import is resolved inside `supportlens`)."""
    import importlib.util

    source = subprocess.run(
        ["git", "show", f"{rev}:src/supportlens/segmentation.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("supportlens._segmentation_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "supportlens"
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    exec(compile(source, f"{rev}:segmentation.py", "exec"), module.__dict__)
    return module.segment


def run_worker(path: Path, code: str, before_rev: str, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(path), "--code", code, "--before-rev", before_rev],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if proc.returncode:
        raise RuntimeError(f"worker failed on {path.name} ({code}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report --------------------------------------------------------------------------------------


def write_report(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = [
        f"Measured {result['date']} on {result['machine']}.",
        "",
        result["load_note"],
        "",
        "Read (`read_transcript`) and segment (`segment`) only, no model scoring: passages are cut with "
        f"the token count a Labeler uses for a model without a tokenizer (1.3 per word, {MAX_TOKENS} a "
        "passage). Each input in a fresh process; memory is the process's peak resident set "
        "(`VmHWM`), and its increase over the resident set after the imports.",
        "",
        "| code | input | MB | turns | passages | read s | segment s | s per MB | peak RSS MB | "
        "increase MB | offsets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        mb = row["bytes"] / 1e6
        total = row["read_s"] + row["segment_s"]
        lines.append(
            f"| {row['code']} | {row['kind']} | {mb:.2f} | {row['turns']} | {row['passages']} | "
            f"{row['read_s']:.2f} | {row['segment_s']:.2f} | {total / mb:.1f} | {row['peak_rss_mb']:.0f} | "
            f"{row['peak_rss_mb'] - row['baseline_rss_mb']:.0f} | "
            f"{'exact' if row['offsets_ok'] else 'WRONG'} |"
        )
    lines += ["", *result.get("notes", [])]
    if result.get("before_rev"):
        lines.append(
            f"`before`: src/supportlens/segmentation.py at commit {result['before_rev']}, the rest of "
            "the package as it is now."
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 1, 5, 20], help="single-paragraph MB")
    parser.add_argument("--turns-mb", type=float, default=20, help="MB of the well-formed transcript (0: none)")
    parser.add_argument("--before", action="store_true", help="also time the code at --before-rev")
    parser.add_argument("--before-sizes", type=float, nargs="+", default=[0.1, 0.2, 0.4])
    parser.add_argument("--before-rev", default="HEAD")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one input may take")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results" / "reading_bench"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--code", default="now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.code, args.before_rev)))
        return

    from harness import machine

    plan = [("now", "paragraph", mb) for mb in args.sizes]
    plan += [("now", "turns", args.turns_mb)] if args.turns_mb else []
    plan += [("before", "paragraph", mb) for mb in args.before_sizes] if args.before else []
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for code, kind, mb in plan:
            path = Path(tmp) / f"{kind}_{mb:g}MB.txt"
            if not path.exists():
                make_input(kind, mb, path)
            row = {"code": code, "kind": kind, "megabytes": mb, **run_worker(path, code, args.before_rev, args.timeout)}
            rows.append(row)
            print(
                f"{code:6} {kind:9} {row['bytes'] / 1e6:6.2f} MB  read {row['read_s']:.2f}s  segment "
                f"{row['segment_s']:.2f}s  peak {row['peak_rss_mb']:.0f} MB  offsets "
                f"{'exact' if row['offsets_ok'] else 'WRONG'}",
                flush=True,
            )
    after = os.getloadavg()
    before_rev = (
        subprocess.run(
            ["git", "rev-parse", "--short", args.before_rev], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        or args.before_rev
    )  # HEAD moves on: name the commit
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "max_tokens": MAX_TOKENS,
        "before_rev": before_rev if args.before else None,
        "rows": rows,
        "load_note": (
            f"Load average (1 min) {load[0]:.1f} at the start and {after[0]:.1f} at the end on "
            f"{os.cpu_count()} cores: other work shared the machine, so times are upper bounds."
        ),
    }
    result["notes"] = _notes(rows)
    write_report(result, Path(args.out))
    print(f"-> {Path(args.out).with_suffix('.md')}")


def _notes(rows: list[dict]) -> list[str]:
    notes = []
    now = [r for r in rows if r["code"] == "now" and r["kind"] == "paragraph"]
    before = [r for r in rows if r["code"] == "before"]
    if len(now) > 1:
        rate = [(r["read_s"] + r["segment_s"]) / (r["bytes"] / 1e6) for r in now]
        notes.append(
            f"Single paragraph now: {min(rate):.1f} to {max(rate):.1f} s per MB from "
            f"{now[0]['bytes'] / 1e6:g} to {now[-1]['bytes'] / 1e6:g} MB (linear: the rate stays flat)."
        )
    if len(before) > 1:
        first, last = before[0], before[-1]
        growth = (last["segment_s"] / first["segment_s"]) if first["segment_s"] else float("nan")
        notes.append(
            f"Before: {last['bytes'] / first['bytes']:.0f}× the paragraph took {growth:.1f}× the time "
            "(quadratic: pysbd was handed the whole paragraph)."
        )
    return notes


if __name__ == "__main__":
    main()
