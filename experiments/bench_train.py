"""Benchmark: train each config on the bundled corpus, score it on the grouped test split, on
grouped k-fold CV (optional) and on the real-quote development set; record macro-F1, kappa,
train time and peak memory. Each config runs in its own process so peak memory is its own.

    python experiments/bench_train.py configs/tfidf.yaml configs/embed-logreg.yaml configs/default.yaml \
        --cv 5 --out experiments/results/train_bench

The real-quote set (../shared/eval/real_quotes_dev.jsonl) is only scored, never trained or tuned on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "real_quotes_dev.jsonl"


def worker(config: str, cv: int, sets: list[str]) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from supportlens.config import DataConfig, load_config
    from supportlens.dataset import load_coded
    from supportlens.evaluate import evaluate_model
    from supportlens.train import peak_memory_mb, train

    cfg = load_config(config, sets + ["tracking.experiment=supportlens-bench"])
    result = train(cfg, cv=cv, log=lambda m: print(m, file=sys.stderr))
    row = {"config": Path(config).name, "kind": cfg.model.kind, "n_train": result.split_sizes["train"],
           "test_macro_f1": result.test.metrics["macro_f1"], "test_kappa": result.test.metrics["kappa"],
           "train_seconds": result.train_seconds, "run_id": result.run_id}
    row.update({k: v for k, v in result.cv.items() if k.startswith(("cv_macro_f1", "cv_kappa"))})
    if DEV.is_file():
        from supportlens.models import load_classifier

        model = load_classifier(result.model_dir)
        dev = load_coded(DEV, _codebook(cfg), DataConfig(group_column="id"))
        started = time.perf_counter()
        ev = evaluate_model(model, dev.frame["text"].tolist(), dev.frame["label"].tolist(),
                            review_threshold=model.meta_["review_threshold"])
        row["predict_per_second_dev"] = len(dev.frame) / (time.perf_counter() - started)
        row.update({"dev_macro_f1": ev.metrics["macro_f1"], "dev_kappa": ev.metrics["kappa"],
                    "dev_accepted_precision": ev.metrics.get("accepted_precision"),
                    "dev_accepted_share": ev.metrics.get("accepted_share")})
        row.update({f"dev_recall_{r.code}": float(r.recall) for r in ev.per_code.itertuples()})
    row.update(gold_scores(result.model_dir))
    row["peak_memory_mb"] = peak_memory_mb()
    return row


def gold_scores(model_dir) -> dict:
    """Passage-level agreement on the gold-coded sample transcripts, through read -> segment -> label."""
    import pandas as pd
    from sklearn.metrics import f1_score

    from supportlens.agreement import cohens_kappa
    from supportlens.models import load_classifier
    from supportlens.predict import Labeler, gold_comparison

    labeler = Labeler(load_classifier(model_dir))
    gold_dir = ROOT / "data" / "transcripts" / "gold"
    frames = []
    for gold in sorted(gold_dir.glob("*.jsonl")):
        source = next((ROOT / "data" / "transcripts").glob(gold.stem + ".*"))
        frames.append(gold_comparison(labeler, source, gold))
    frame = pd.concat(frames)
    return {"gold_passages": len(frame),
            "gold_macro_f1": float(f1_score(frame["human"], frame["model"], average="macro")),
            "gold_kappa": cohens_kappa(frame["human"], frame["model"])}


def _codebook(cfg):
    from supportlens.codebook import load_codebook

    return load_codebook(cfg.codebook)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--cv", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--out", default="experiments/results/train_bench")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.configs[0], args.cv, args.sets)))
        return
    rows = []
    for config in args.configs:
        cmd = [sys.executable, __file__, config, "--worker", "--cv", str(args.cv)]
        for s in args.sets:
            cmd += ["--set", s]
        print(f"== {config}", file=sys.stderr)
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{config} failed")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_seconds"] = time.perf_counter() - started
        rows.append(row)
        print(json.dumps(row, indent=1), file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "cv": args.cv, "sets": args.sets, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(info, indent=2))
    lines = [f"Measured {info['date']} on {info['machine']}.", "",
             "| config | kind | test macro-F1 | test κ | CV macro-F1 | CV κ | dev macro-F1 | dev κ | gold macro-F1 | gold κ | train s | peak MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(key: str, sd: str | None = None) -> str:
            if key not in r or r[key] is None:
                return "–"
            return f"{r[key]:.3f}" + (f" ± {r[sd]:.3f}" if sd and sd in r else "")
        lines.append(f"| {r['config']} | {r['kind']} | {f('test_macro_f1')} | {f('test_kappa')} | "
                     f"{f('cv_macro_f1_mean', 'cv_macro_f1_sd')} | {f('cv_kappa_mean', 'cv_kappa_sd')} | "
                     f"{f('dev_macro_f1')} | {f('dev_kappa')} | {f('gold_macro_f1')} | {f('gold_kappa')} | "
                     f"{r['train_seconds']:.0f} | {r['peak_memory_mb']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
