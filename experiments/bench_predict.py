"""Benchmark batch prediction on this machine.

1. Throughput on the same fine-tuned model and the same passages (default: the first 2,000
   excerpts of the bundled corpus): transformers' ``pipeline("text-classification")`` with default
   settings versus supportlens' Labeler in torch fp32, torch --fast, ONNX Runtime fp32 and ONNX
   Runtime --fast. The paths run interleaved, chunk by chunk, in one process, so that other load
   on the machine slows them alike and the ratios stay fair. Labels are compared with the pipeline
   and with torch fp32.
2. Peak memory of each path, each in a fresh process (load, warm up, score the longest passages).
3. First use of ONNX Runtime on a model folder without a cached graph: export + int8 time.
4. The --fast re-check margin: share of passages re-scored in fp32 and of labels changed.
5. Scaling: ``predict_files`` over N transcripts made by repeating the samples (N = 100, 300,
   1000 by default), each in a fresh process: wall time and peak memory.
6. With ``--student-model`` (the same model with a distilled --fast student, from
   experiments/distil_student.py), one more path: ``--fast`` through the student cascade.

    python experiments/bench_predict.py --model outputs/<run_id> --out experiments/results/predict_bench

``--rerun NAME`` runs only the throughput worker and records it under NAME in the existing results
(for a rerun on a quieter machine, or with a student added).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

PATHS = ("pipeline", "torch_fp32", "torch_fast", "onnx_fp32", "onnx_fast")
STUDENT_PATH = "onnx_student"
TITLES = {
    STUDENT_PATH: "supportlens `--fast` with a distilled 3-layer student (int8), unsure passages to the full model",
    "pipeline": 'transformers `pipeline("text-classification")`, defaults',
    "torch_fp32": "supportlens, torch fp32",
    "torch_fast": "supportlens `--fast`, torch int8 + fp32 re-check",
    "onnx_fp32": "supportlens, ONNX Runtime fp32 (default on CPU)",
    "onnx_fast": "supportlens `--fast`, ONNX Runtime int8 + fp32 re-check",
}
MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


def bench_texts(n_passages: int) -> list[str]:
    import pandas as pd

    texts = pd.read_json(ROOT / "data/excerpts/starter.jsonl", lines=True)["text"].tolist()
    while len(texts) < n_passages:
        texts = texts + texts
    return texts[:n_passages]


def paths_for(student_dir: str | None) -> tuple[str, ...]:
    return PATHS + ((STUDENT_PATH,) if student_dir else ())


def make_scorer(path: str, model_dir: str, student_dir: str | None = None):
    """A function texts -> labels for one path, plus the Labeler (None for the pipeline)."""
    import numpy as np

    from supportlens.inference.labeler import Labeler
    from supportlens.models import load_classifier

    if path == "pipeline":
        from transformers import pipeline

        hf_dir = str(Path(model_dir) / "hf")
        pipe = pipeline("text-classification", model=hf_dir, tokenizer=hf_dir, device=-1)
        return (lambda texts: np.array([r["label"] for r in pipe(texts)])), None
    if path == STUDENT_PATH:
        path, model_dir = "onnx_fast", student_dir
    runtime, mode = path.split("_")
    labeler = Labeler(load_classifier(model_dir), fast=mode == "fast", runtime=runtime)
    assert labeler.runtime == runtime, f"{path}: asked for {runtime}, got {labeler.runtime}"
    return (lambda texts: labeler.score(texts)["label"].to_numpy()), labeler


def throughput(model_dir: str, n_passages: int, chunks: int, threads: int = 0, student_dir: str | None = None) -> dict:
    """Passages/s (wall) and CPU-seconds per path. With ``threads=1`` every path runs on one
    thread, so CPU-seconds measure the work each path does whatever else loads the machine."""
    import numpy as np
    import torch

    if threads:
        torch.set_num_threads(threads)  # ONNX Runtime follows torch's count (batches run at once)
    texts = bench_texts(n_passages)
    out: dict = {"passages": len(texts), "threads": torch.get_num_threads(), "chunks": chunks}
    scorers = {}
    paths = paths_for(student_dir)
    for path in paths:
        scorers[path] = make_scorer(path, model_dir, student_dir)
        scorers[path][0](texts[:32])  # warm-up
    bounds = np.linspace(0, len(texts), chunks + 1).astype(int)
    seconds = dict.fromkeys(paths, 0.0)
    cpu = dict.fromkeys(paths, 0.0)
    labels: dict[str, list] = {p: [] for p in paths}
    for k in range(chunks):
        part = texts[bounds[k] : bounds[k + 1]]
        for path in paths[k % len(paths) :] + paths[: k % len(paths)]:  # rotate who goes first
            started, cpu_started = time.perf_counter(), time.process_time()
            labels[path].append(scorers[path][0](part))
            seconds[path] += time.perf_counter() - started
            cpu[path] += time.process_time() - cpu_started
    labels = {p: np.concatenate(v) for p, v in labels.items()}
    out["paths"] = list(paths)
    for path in paths:
        out[path] = {
            "per_s": len(texts) / seconds[path],
            "seconds": seconds[path],
            "cpu_seconds": cpu[path],
            "speedup_vs_pipeline": seconds["pipeline"] / seconds[path],
            "cpu_ratio_vs_pipeline": cpu["pipeline"] / cpu[path],
            "labels_changed_vs_pipeline": float((labels[path] != labels["pipeline"]).mean()),
            "labels_changed_vs_torch_fp32": float((labels[path] != labels["torch_fp32"]).mean()),
        }
        labeler = scorers[path][1]
        if labeler is not None and getattr(labeler.model, "fast_", False):
            out[path]["rechecked_last_chunk"] = int(getattr(labeler.model, "last_rechecked_", 0))
        if path == STUDENT_PATH:
            out[path]["student_gate"] = labeler.model.student_report_.gate
            out[path]["to_full_model_last_chunk"] = int(labeler.model.last_student_rescored_)
            out[path]["last_chunk"] = len(part)
    out["margins"] = margin_sweep(scorers["onnx_fast"][1].model, texts)
    return out


def margin_sweep(model, texts: list[str]) -> list[dict]:
    """For each re-check margin: share of passages re-scored in fp32, share of labels changed."""
    import numpy as np

    from supportlens.models.base import softmax

    engine = model.onnx_
    exact = engine.logits(model.tokenizer_, texts, model.predict_batch_size, model.max_length)
    quick = engine.logits(model.tokenizer_, texts, model.predict_batch_size, model.max_length, int8=True)
    proba = softmax(quick.astype(np.float64) / model.temperature_)
    top2 = np.sort(proba, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    rows = []
    for margin in MARGINS:
        mixed = quick.copy()
        close = gap < margin
        mixed[close] = exact[close]
        rows.append(
            {
                "margin": margin,
                "rechecked": float(close.mean()),
                "labels_changed_vs_fp32": float((mixed.argmax(1) != exact.argmax(1)).mean()),
            }
        )
    return rows


def memory_worker(model_dir: str, path: str, n_passages: int) -> dict:
    """Peak resident memory of one path in a fresh process: load, warm up, score the longest passages."""
    from supportlens.training.trainer import peak_memory_mb

    texts = sorted(bench_texts(n_passages), key=len, reverse=True)[:256]
    score, _ = make_scorer(path, model_dir)
    score(texts[:32])
    score(texts)
    return {"path": path, "peak_memory_mb": peak_memory_mb()}


def first_use_worker(model_dir: str) -> dict:
    """Export and quantise from scratch on a copy of the model folder without its cached graph."""
    from supportlens.inference.labeler import Labeler
    from supportlens.models import load_classifier

    tmp = Path(tempfile.mkdtemp(prefix="sl-bench-export-"))
    try:
        copy = tmp / "model"
        shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("onnx"))
        os.environ["SUPPORTLENS_CACHE_DIR"] = str(tmp / "cache")
        model = load_classifier(copy)
        started = time.perf_counter()
        model.use_runtime("onnx")
        exported = time.perf_counter() - started
        Labeler(model, fast=True, runtime="onnx")
        quantised = time.perf_counter() - started - exported
        started = time.perf_counter()
        Labeler(load_classifier(copy), fast=True, runtime="onnx")
        cached = time.perf_counter() - started
        return {
            "export_s": exported,
            "quantize_s": quantised,
            "cached_load_s": cached,
            "fp32_mb": model.onnx_.fp32_path.stat().st_size / 2**20,
            "int8_mb": model.onnx_.int8_path.stat().st_size / 2**20,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scaling_worker(model_dir: str, n_files: int) -> dict:
    from supportlens.inference.labeler import Labeler
    from supportlens.inference.predict import predict_files
    from supportlens.models import load_classifier
    from supportlens.training.trainer import peak_memory_mb

    samples = sorted((ROOT / "data/transcripts").glob("smp*"))
    tmp = Path(tempfile.mkdtemp(prefix="sl-bench-"))
    try:
        for i in range(n_files):
            src = samples[i % len(samples)]
            shutil.copy(src, tmp / f"t{i:05d}{src.suffix}")
        labeler = Labeler(load_classifier(model_dir))
        base = peak_memory_mb()
        report = predict_files([str(tmp)], labeler, tmp / "labels.parquet")
        return {
            "files": n_files,
            "passages": report.passages,
            "seconds": report.seconds,
            "passages_per_s": report.passages_per_second,
            "peak_memory_mb": peak_memory_mb(),
            "peak_before_batch_mb": base,
            "failures": len(report.failures),
            "runtime": labeler.runtime,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report_lines(result: dict) -> list[str]:
    t = result["throughput"]
    memory = {r["path"]: r["peak_memory_mb"] for r in result.get("memory", [])}
    lines = [f"Measured {result['date']} on {result['machine']}.", ""]
    if result.get("load_note"):
        lines += [result["load_note"], ""]
    lines += [
        f"Throughput on {t['passages']} passages, same fine-tuned model; the paths ran interleaved in "
        f"{t['chunks']} chunks in one process:",
        "",
        "| path | passages/s | vs pipeline | labels changed vs pipeline | vs torch fp32 | peak memory MB |",
        "|---|---|---|---|---|---|",
    ]
    for path in PATHS:
        r = t[path]
        mem = f"{memory[path]:.0f}" if path in memory else "–"
        lines.append(
            f"| {TITLES[path]} | {r['per_s']:.1f} | {r['speedup_vs_pipeline']:.2f}× | "
            f"{r['labels_changed_vs_pipeline']:.2%} | {r['labels_changed_vs_torch_fp32']:.2%} | {mem} |"
        )
    lines += [
        "",
        "Peak memory: each path alone in a fresh process (load, warm up, score the 256 longest passages).",
        "",
    ]
    single = result.get("throughput_single_thread")
    if single:
        lines += [
            f"Work per path, less sensitive to other load: every path on one thread ({single['passages']} "
            "passages, interleaved), CPU-seconds of the process:",
            "",
            "| path | CPU-s per 100 passages | pipeline's CPU ÷ this path's | labels changed vs pipeline |",
            "|---|---|---|---|",
        ]
        for path in PATHS:
            r = single[path]
            lines.append(
                f"| {TITLES[path]} | {100 * r['cpu_seconds'] / single['passages']:.2f} | "
                f"{r['cpu_ratio_vs_pipeline']:.2f}× | {r['labels_changed_vs_pipeline']:.2%} |"
            )
        lines.append("")
    f = result.get("first_use")
    if f:
        lines += [
            f"First CPU use of a model folder: ONNX export {f['export_s']:.0f} s (checked against torch), "
            f"int8 quantisation {f['quantize_s']:.0f} s, cached afterwards (next load "
            f"{f['cached_load_s']:.1f} s); graphs {f['fp32_mb']:.0f} MB fp32 + {f['int8_mb']:.0f} MB int8.",
            "",
        ]
    lines += [
        "`--fast` re-check margin (ONNX Runtime int8, then fp32 for passages whose top two probabilities "
        "lie within the margin):",
        "",
        "| margin | re-scored in fp32 | labels changed vs fp32 |",
        "|---|---|---|",
    ]
    for r in t["margins"]:
        lines.append(f"| {r['margin']:.2f} | {r['rechecked']:.1%} | {r['labels_changed_vs_fp32']:.2%} |")
    if result.get("scaling"):
        lines += [
            "",
            "Scaling (`predict_files`, default runtime, Parquet output, one fresh process each):",
            "",
            "| transcripts | passages | seconds | passages/s | peak memory MB |",
            "|---|---|---|---|---|",
        ]
        for r in result["scaling"]:
            lines.append(
                f"| {r['files']} | {r['passages']} | {r['seconds']:.0f} | {r['passages_per_s']:.1f} | "
                f"{r['peak_memory_mb']:.0f} |"
            )
    for name, rerun in result.get("reruns", {}).items():
        lines += ["", *rerun_lines(name, rerun)]
    return lines


def rerun_lines(name: str, rerun: dict) -> list[str]:
    t = rerun["throughput"]
    lines = [
        f"Rerun `{name}` ({rerun['date']}, {rerun['machine']}; {t['passages']} passages, "
        f"{t['chunks']} interleaved chunks): {rerun['note']}",
        "",
        "| path | passages/s | vs pipeline | labels changed vs pipeline | vs torch fp32 |",
        "|---|---|---|---|---|",
    ]
    for path in t.get("paths", PATHS):
        r = t[path]
        lines.append(
            f"| {TITLES[path]} | {r['per_s']:.1f} | {r['speedup_vs_pipeline']:.2f}× | "
            f"{r['labels_changed_vs_pipeline']:.2%} | {r['labels_changed_vs_torch_fp32']:.2%} |"
        )
    if STUDENT_PATH in t:
        r = t[STUDENT_PATH]
        lines += [
            "",
            f"Student gate {r['student_gate']:.2f}: in the last chunk it left "
            f"{r['to_full_model_last_chunk']} of {r['last_chunk']} passages to the full model.",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a fine-tuned supportlens model folder")
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=4, help="interleaving: each path scores each chunk in turn")
    parser.add_argument("--files", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--out", default="experiments/results/predict_bench")
    parser.add_argument("--load-note", default="", help="what else ran on the machine, for the report")
    parser.add_argument("--worker", choices=["throughput", "scaling", "memory", "first_use"])
    parser.add_argument("--path", choices=PATHS)
    parser.add_argument("--threads", type=int, default=0, help="throughput worker: torch/ONNX threads (0: default)")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--student-model", help="the same model with a --fast student (experiments/distil_student.py)")
    parser.add_argument("--rerun", help="run only the throughput worker; record it under this name")
    parser.add_argument("--rerun-note", default="", help="--rerun: what the rerun is, for the report")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker == "throughput":
        print(json.dumps(throughput(args.model, args.passages, args.chunks, args.threads, args.student_model)))
        return
    if args.worker == "memory":
        print(json.dumps(memory_worker(args.model, args.path, args.passages)))
        return
    if args.worker == "first_use":
        print(json.dumps(first_use_worker(args.model)))
        return
    if args.worker == "scaling":
        print(json.dumps(scaling_worker(args.model, args.n)))
        return

    def run(*extra: str) -> dict:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--model",
                args.model,
                "--passages",
                str(args.passages),
                "--chunks",
                str(args.chunks),
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit("benchmark worker failed")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    from harness import machine

    out = Path(args.out)
    if args.rerun:
        result = json.loads(out.with_suffix(".json").read_text())
        extra = ("--student-model", args.student_model) if args.student_model else ()
        rerun = run("--worker", "throughput", *extra)
        result.setdefault("reruns", {})[args.rerun] = {
            "note": args.rerun_note,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(),
            "model": args.model,
            "student_model": args.student_model,
            "throughput": rerun,
        }
        out.with_suffix(".json").write_text(json.dumps(result, indent=2))
        block = rerun_lines(args.rerun, result["reruns"][args.rerun])
        report = out.with_suffix(".md").read_text()  # keeps the hand-written notes of earlier runs
        start, end = f"<!-- rerun {args.rerun} -->", f"<!-- /rerun {args.rerun} -->"
        if start in report:
            report = report[: report.index(start)].rstrip("\n") + report[report.index(end) + len(end) :]
        out.with_suffix(".md").write_text(report.rstrip("\n") + "\n\n" + "\n".join([start, *block, end]) + "\n")
        print("\n".join(block))
        return

    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "model": args.model, "load_note": args.load_note}
    result["first_use"] = run("--worker", "first_use")  # on a copy: the model folder's own cache stays
    print(json.dumps(result["first_use"]), file=sys.stderr)
    result["throughput"] = run("--worker", "throughput")
    print(json.dumps(result["throughput"], indent=1), file=sys.stderr)
    result["memory"] = [run("--worker", "memory", "--path", path) for path in PATHS]
    print(json.dumps(result["memory"]), file=sys.stderr)
    result["scaling"] = []
    for n in args.files:
        row = run("--worker", "scaling", "--n", str(n))
        result["scaling"].append(row)
        print(json.dumps(row), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = report_lines(result)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
