"""Experiment harness: train a list of configs on the corpus and compare them side by side.

    python experiments/harness.py configs/tfidf.yaml configs/embed-logreg.yaml configs/default.yaml \
        --folds 5 --out experiments/results/harness

For each config: grouped k-fold CV on the corpus (macro-F1, κ), the grouped test split, the
real-quote development set (macro-F1, κ with a bootstrap CI, κ minus the reference config's
with a paired bootstrap CI, per-code recall, how the review threshold chosen on validation
interviews holds, coverage at 80% and 90% precision), the gold-coded sample transcripts
(read -> segment -> label), train time and predict speed. One MLflow parent run holds a nested run
per config; the dev predictions (ids and codes) go to <out>_dev_predictions.csv. The development set
(../shared/eval/real_quotes_dev.jsonl) is only scored, never trained or tuned on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "real_quotes_dev.jsonl"


# Instruction sets that change which kernels run (int8 dot products, bf16): recorded with every
# figure, since "AMD EPYC, 2 cores" has meant more than one CPU generation on this project's hosts.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
            if key.strip() == "flags":
                break
    except OSError:
        pass
    cpu = info.get("model name", cpu)
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']} model {info.get('model', '?')})"
    flags = set(info.get("flags", "").split())
    isa = "/".join(flag for flag in ISA_FLAGS if flag in flags) or "ISA not read"
    import torch

    return f"{cpu}, {os.cpu_count()} cores, {isa}, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="config YAML files")
    parser.add_argument("--folds", type=int, default=5, help="grouped CV folds (0 = no CV)")
    parser.add_argument("--set", action="append", default=[], dest="sets", help="override for every config")
    parser.add_argument("--data", default=None, help="coded corpus (default: the configs' data.path)")
    parser.add_argument("--dev", default=str(DEV), help="real-language development set (scored only)")
    parser.add_argument("--experiment", default="supportlens-harness")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--out", default="experiments/results/harness")
    parser.add_argument(
        "--reference",
        default=None,
        help="config name the others' dev κ is compared with, paired (default: default, else the first)",
    )
    parser.add_argument(
        "--embedding-cache",
        default=None,
        help="folder keeping frozen-encoder vectors between runs (e.g. .cache/embeddings)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(ROOT)
    from supportlens.training.compare import Benchmarks, compare, write_results

    benchmarks = Benchmarks.find(ROOT, args.dev)
    if benchmarks.dev is None:
        print(
            f"note: no development set at {args.dev}; transfer is measured on the gold transcripts only",
            file=sys.stderr,
        )
    started = time.perf_counter()
    table = compare(
        args.configs,
        folds=args.folds,
        benchmarks=benchmarks,
        overrides=args.sets,
        data_path=args.data,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        log=lambda m: print(m, file=sys.stderr, flush=True),
        embedding_dir=args.embedding_cache,
        reference=args.reference,
    )
    info = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "folds": args.folds,
        "overrides": " ".join(args.sets) or "none",
        "dev_set": os.path.relpath(benchmarks.dev, ROOT) if benchmarks.dev else "none",
        "gold": ", ".join(str(g[1].name) for g in benchmarks.gold),
        "wall_minutes": round((time.perf_counter() - started) / 60, 1),
    }
    json_path, md_path = write_results(table, args.out, info)
    print(md_path.read_text())
    print(f"written {json_path} and {md_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
