"""Benchmark batch prediction on this machine.

1. Throughput on the same fine-tuned model and the same passages (default: every excerpt of the
   bundled corpus, 2,000+): supportlens' Labeler in fp32 and in --fast mode versus transformers'
   ``pipeline("text-classification")`` with default settings; label agreement with the pipeline.
2. Scaling: ``predict_files`` over N transcripts made by repeating the samples (N = 100, 300,
   1000 by default), each in a fresh process: wall time and peak memory.

    python experiments/bench_predict.py --model outputs/<run_id> --out experiments/results/predict_bench
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


def throughput(model_dir: str, n_passages: int) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from transformers import pipeline

    from supportlens.models import load_classifier
    from supportlens.predict import Labeler
    from supportlens.train import peak_memory_mb

    texts = pd.read_json(ROOT / "data/excerpts/starter.jsonl", lines=True)["text"].tolist()
    while len(texts) < n_passages:
        texts = texts + texts
    texts = texts[:n_passages]
    out: dict = {"passages": len(texts), "threads": torch.get_num_threads()}

    labeler = Labeler(load_classifier(model_dir))
    labeler.score(texts[:32])  # warm-up
    started = time.perf_counter()
    ours = labeler.score(texts)["label"].to_numpy()
    out["supportlens_fp32_per_s"] = len(texts) / (time.perf_counter() - started)

    hf_dir = str(Path(model_dir) / "hf")
    pipe = pipeline("text-classification", model=hf_dir, tokenizer=hf_dir, device=-1)
    pipe(texts[:8])
    started = time.perf_counter()
    theirs = np.array([r["label"] for r in pipe(texts)])
    out["pipeline_default_per_s"] = len(texts) / (time.perf_counter() - started)
    out["fp32_label_agreement_with_pipeline"] = float((ours == theirs).mean())

    fast = Labeler(load_classifier(model_dir), fast=True)
    fast.score(texts[:32])
    started = time.perf_counter()
    quick = fast.score(texts)["label"].to_numpy()
    out["supportlens_fast_per_s"] = len(texts) / (time.perf_counter() - started)
    out["fast_labels_changed_share"] = float((quick != ours).mean())
    out["speedup_fp32"] = out["supportlens_fp32_per_s"] / out["pipeline_default_per_s"]
    out["speedup_fast"] = out["supportlens_fast_per_s"] / out["pipeline_default_per_s"]
    out["peak_memory_mb"] = peak_memory_mb()
    return out


def scaling_worker(model_dir: str, n_files: int) -> dict:
    from supportlens.models import load_classifier
    from supportlens.predict import Labeler, predict_files
    from supportlens.train import peak_memory_mb

    samples = sorted((ROOT / "data/transcripts").glob("smp*"))
    tmp = Path(tempfile.mkdtemp(prefix="sl-bench-"))
    try:
        for i in range(n_files):
            src = samples[i % len(samples)]
            shutil.copy(src, tmp / f"t{i:05d}{src.suffix}")
        labeler = Labeler(load_classifier(model_dir))
        base = peak_memory_mb()
        report = predict_files([str(tmp)], labeler, tmp / "labels.parquet")
        return {"files": n_files, "passages": report.passages, "seconds": report.seconds,
                "passages_per_s": report.passages_per_second, "peak_memory_mb": peak_memory_mb(),
                "peak_before_batch_mb": base, "failures": len(report.failures)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a fine-tuned supportlens model folder")
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--files", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--out", default="experiments/results/predict_bench")
    parser.add_argument("--worker", choices=["throughput", "scaling"])
    parser.add_argument("--n", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker == "throughput":
        print(json.dumps(throughput(args.model, args.passages)))
        return
    if args.worker == "scaling":
        print(json.dumps(scaling_worker(args.model, args.n)))
        return

    def run(*extra: str) -> dict:
        proc = subprocess.run([sys.executable, __file__, "--model", args.model, "--passages", str(args.passages),
                               *extra], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit("benchmark worker failed")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    from bench_train import machine

    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "model": args.model}
    result["throughput"] = run("--worker", "throughput")
    print(json.dumps(result["throughput"], indent=1), file=sys.stderr)
    result["scaling"] = []
    for n in args.files:
        row = run("--worker", "scaling", "--n", str(n))
        result["scaling"].append(row)
        print(json.dumps(row), file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    t = result["throughput"]
    lines = [f"Measured {result['date']} on {result['machine']}.", "",
             f"Throughput on {t['passages']} passages (same fine-tuned model):", "",
             "| path | passages/s | vs pipeline | labels vs pipeline fp32 |", "|---|---|---|---|",
             f"| transformers `pipeline(\"text-classification\")`, defaults | {t['pipeline_default_per_s']:.1f} | 1.0× | – |",
             f"| supportlens fp32 | {t['supportlens_fp32_per_s']:.1f} | {t['speedup_fp32']:.1f}× | "
             f"{t['fp32_label_agreement_with_pipeline']:.2%} identical |",
             f"| supportlens `--fast` (int8) | {t['supportlens_fast_per_s']:.1f} | {t['speedup_fast']:.1f}× | "
             f"{t['fast_labels_changed_share']:.2%} changed vs fp32 |", "",
             "Scaling (`predict_files`, Parquet output, one fresh process each):", "",
             "| transcripts | passages | seconds | passages/s | peak memory MB |", "|---|---|---|---|---|"]
    for r in result["scaling"]:
        lines.append(f"| {r['files']} | {r['passages']} | {r['seconds']:.0f} | {r['passages_per_s']:.1f} | "
                     f"{r['peak_memory_mb']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
