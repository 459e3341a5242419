"""Benchmark Spark scoring against single-process `predict` on this machine.

N transcripts are made by repeating the bundled samples (data/transcripts/smp*: txt, md, vtt,
srt, docx) and scored with the same model twice, each in a fresh process:

* ``local``: ``predict_files`` (what ``supportlens predict`` runs), Parquet output;
* ``spark``: ``predict_spark`` (what ``supportlens predict --engine spark`` runs) on ``--master``,
  partitioned Parquet output; the session start is timed apart from the scoring.

For each: wall time from process start to finish (imports and model loading included), the
scoring part alone, passages per second, and peak resident memory summed over the whole process
tree (driver, JVM and Python workers for Spark; sampled every 0.1 s from /proc, so Linux only).
The two outputs are compared passage by passage (labels, probabilities, offsets).

    python experiments/bench_spark.py --model outputs/<run_id>            # full: 1,000 transcripts
    python experiments/bench_spark.py --model tiny --n 20 --out /tmp/sb    # smoke run, TF-IDF model
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))


# -- workers (run in a fresh process each) -----------------------------------------------------


def local_worker(model_dir: str, inputs: str, out: str) -> dict:
    started = time.perf_counter()
    import torch

    from supportlens.inference.labeler import Labeler
    from supportlens.inference.predict import predict_files
    from supportlens.models import load_classifier
    from supportlens.training.trainer import peak_memory_mb

    labeler = Labeler(load_classifier(model_dir))
    report = predict_files([inputs], labeler, out)
    return {
        "engine": "local",
        "transcripts": report.files_done,
        "passages": report.passages,
        "failures": len(report.failures),
        "scoring_seconds": report.seconds,
        "wall_seconds": time.perf_counter() - started,
        "torch_threads": torch.get_num_threads(),
        "driver_peak_mb": peak_memory_mb(),
    }


def spark_worker(model_dir: str, inputs: str, out: str, master: str) -> dict:
    started = time.perf_counter()
    from supportlens.inference.spark import predict_spark, spark_session
    from supportlens.training.trainer import peak_memory_mb

    spark = spark_session(master, conf={"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
    session_seconds = time.perf_counter() - started
    report = predict_spark([inputs], model_dir, out, master=master)  # the active session: not stopped
    parallelism = spark.sparkContext.defaultParallelism
    spark.stop()
    return {
        "engine": "spark",
        "master": master,
        "parallelism": parallelism,
        "transcripts": report.transcripts,
        "passages": report.passages,
        "failures": len(report.failures),
        "session_seconds": session_seconds,
        "scoring_seconds": report.seconds,
        "wall_seconds": time.perf_counter() - started,
        "driver_peak_mb": peak_memory_mb(),
    }


# -- measurement -------------------------------------------------------------------------------


def _tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024


def run_worker(args: list[str]) -> dict:
    """Run this script as a worker and sample its process tree's memory while it runs."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_mb(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        print(stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"benchmark worker {args[:2]} failed")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tree_peak_mb"] = max(peak, result["driver_peak_mb"])  # sampling can miss a short peak
    result["passages_per_s"] = result["passages"] / result["wall_seconds"]
    return result


def compare(local_out: Path, spark_out: Path) -> dict:
    import numpy as np
    import pandas as pd

    key = ["source", "passage_index"]
    a = pd.read_parquet(local_out).sort_values(key).reset_index(drop=True)
    b = pd.read_parquet(spark_out).drop(columns="bucket").sort_values(key).reset_index(drop=True)
    spans = key + ["start", "end"]
    same_rows = len(a) == len(b) and (a[spans].to_numpy() == b[spans].to_numpy()).all()
    probs = [c for c in a.columns if c.startswith("p_")] + ["confidence"]
    return {
        "same_passages_and_offsets": bool(same_rows),
        "labels_identical_share": float((a["label"] == b["label"]).mean()) if same_rows else 0.0,
        "max_probability_difference": float(np.abs(a[probs].to_numpy() - b[probs].to_numpy()).max())
        if same_rows
        else float("nan"),
    }


def tiny_model(folder: Path) -> Path:
    """A TF-IDF model on the bundled excerpts: seconds to fit, for a smoke run of this script."""
    import pandas as pd

    from supportlens.codebook import load_codebook
    from supportlens.models import TfidfLogReg

    frame = pd.read_json(ROOT / "data/excerpts/starter.jsonl", lines=True)
    codebook = load_codebook(ROOT / "configs/codebook.yaml")
    model = TfidfLogReg(labels=list(codebook.labels)).fit(frame["text"].tolist(), frame["label"].tolist())
    return model.save(folder / "tiny", extra={"review_threshold": 0.5, "codebook": codebook.to_dict()})


def make_corpus(folder: Path, n: int) -> None:
    samples = sorted((ROOT / "data/transcripts").glob("smp*"))
    folder.mkdir(parents=True)
    for i in range(n):
        src = samples[i % len(samples)]
        shutil.copy(src, folder / f"t{i:05d}{src.suffix}")


def report_lines(result: dict) -> list[str]:
    local, spark, same = result["local"], result["spark"], result["agreement"]
    lines = [
        f"Measured {result['date']} on {result['machine']}; model: {result['model']}.",
        "",
        f"{local['transcripts']} transcripts ({local['passages']} passages scored) made by repeating "
        "data/transcripts/smp*; each engine in a fresh process.",
        "",
        "| engine | wall s | of which Spark start s | scoring s | passages/s (wall) | peak RSS MB, all processes |",
        "|---|---|---|---|---|---|",
        f"| `predict` (one process, {local['torch_threads']} torch threads) | {local['wall_seconds']:.1f} | – | "
        f"{local['scoring_seconds']:.1f} | {local['passages_per_s']:.1f} | {local['tree_peak_mb']:.0f} |",
        f"| `predict --engine spark --master {spark['master']}` | {spark['wall_seconds']:.1f} | "
        f"{spark['session_seconds']:.1f} | {spark['scoring_seconds']:.1f} | {spark['passages_per_s']:.1f} | "
        f"{spark['tree_peak_mb']:.0f} |",
        "",
        f"Spark / one process, wall time: {spark['wall_seconds'] / local['wall_seconds']:.2f}×. "
        f"Same passages and offsets: {same['same_passages_and_offsets']}; labels identical: "
        f"{same['labels_identical_share']:.2%}; largest probability difference: "
        f"{same['max_probability_difference']:.1e}.",
        "",
        f"Spark runs {spark['parallelism']} Python workers, each with one torch thread (Spark sets "
        "OMP_NUM_THREADS=1 in its workers); its wall time includes starting the JVM and, in each "
        "worker, importing torch and loading the model.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        required=True,
        help="a supportlens model folder, runs:/ or models:/ URI, or 'tiny' (a TF-IDF smoke model)",
    )
    parser.add_argument("--n", type=int, default=1000, help="transcripts to generate")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--out", default="experiments/results/spark_bench", help="writes OUT.json and OUT.md")
    parser.add_argument("--worker", choices=["local", "spark"], help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker == "local":
        print(json.dumps(local_worker(args.model, args.inputs, args.result)))
        return
    if args.worker == "spark":
        print(json.dumps(spark_worker(args.model, args.inputs, args.result, args.master)))
        return

    from harness import machine
    from supportlens.tracking import fetch_model_dir

    tmp = Path(tempfile.mkdtemp(prefix="sl-spark-bench-"))
    try:
        model_dir = tiny_model(tmp) if args.model == "tiny" else fetch_model_dir(args.model)
        corpus = tmp / "corpus"
        make_corpus(corpus, args.n)
        result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "model": args.model, "n": args.n}
        common = ["--model", str(model_dir), "--inputs", str(corpus), "--master", args.master]
        result["local"] = run_worker(["--worker", "local", *common, "--result", str(tmp / "local.parquet")])
        print(json.dumps(result["local"]), file=sys.stderr)
        result["spark"] = run_worker(["--worker", "spark", *common, "--result", str(tmp / "spark")])
        print(json.dumps(result["spark"]), file=sys.stderr)
        result["agreement"] = compare(tmp / "local.parquet", tmp / "spark")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from supportlens.io.atomic import write_atomic

    write_atomic(out.with_suffix(".json"), lambda p: p.write_text(json.dumps(result, indent=2)))
    lines = report_lines(result)
    write_atomic(out.with_suffix(".md"), lambda p: p.write_text("\n".join(lines) + "\n"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
