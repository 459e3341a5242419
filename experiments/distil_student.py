"""Give an already trained fine-tuned model a --fast student, for the benchmark.

New models get one at training time (``train.student_layers`` in the config). This script adds one
to a model trained without it, distilled on corpus excerpts the benchmark never scores: the
interviews of the benchmark's passages (the first ``--skip`` excerpts of the corpus) are left
out, and the rest are split by interview into texts to distil on (80%) and validation passages on
which the gate is chosen (20%). So the labels the student changes in the benchmark are measured
on text it never saw.

    python experiments/distil_student.py --model outputs/<run_id> --out outputs/<run_id>-student
    python experiments/distil_student.py --model outputs/<run_id>-student --gate-only --max-changed 0.005
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def split_corpus(skip: int) -> tuple[list[str], list[str], int]:
    """(texts to distil on, validation texts, interviews left out) outside the first ``skip`` rows."""
    import pandas as pd

    corpus = pd.read_json(ROOT / "data/excerpts/starter.jsonl", lines=True)
    benchmark = set(corpus["interview_id"].iloc[:skip])
    rest = corpus[~corpus["interview_id"].isin(benchmark)]
    val = rest["interview_id"].map(lambda s: int(hashlib.sha256(s.encode()).hexdigest(), 16) % 5 == 0)
    return rest["text"][~val].tolist(), rest["text"][val].tolist(), len(benchmark)


def bench_table(model, skip: int) -> str:
    """Markdown: at each gate, the share of benchmark passages the student (ONNX int8, as --fast
    runs it) leaves to the full model and the share whose label then differs from the full
    model's fp32 label. Measured, not used to choose anything: the gate comes from validation."""
    import pandas as pd

    from supportlens.models import distil

    if not model.has_student():
        raise SystemExit("the model has no student")
    texts = pd.read_json(ROOT / "data/excerpts/starter.jsonl", lines=True)["text"].iloc[:skip].tolist()
    model.fast_ = True
    model.use_runtime()
    model._prepare_student()
    ours, theirs = model._student_scores(texts), model._score(texts, False)
    lines = [
        f"Student alone agrees with the full model on {(ours.argmax(1) == theirs.argmax(1)).mean():.1%} "
        f"of {len(texts)} benchmark passages (gate in use: {model.student_report_.gate:.2f}).",
        "",
        "| gate | to the full model | labels changed (student's share) |",
        "|---|---|---|",
    ]
    for row in distil.gate_table(ours, theirs):
        if 0.5 <= row["gate"] <= 0.9:
            lines.append(f"| {row['gate']:.2f} | {row['rescored']:.1%} | {row['changed']:.2%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a fine-tuned model folder")
    parser.add_argument("--out", help="where to write the copy with a student (not with --gate-only)")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-changed", type=float, default=0.005)
    parser.add_argument(
        "--per-text", type=float, default=2.5, help="variations (sentences, sentence pairs) distilled on per excerpt"
    )
    parser.add_argument(
        "--gate-only",
        action="store_true",
        help="--model already has a student: choose its gate again (in place), no distillation",
    )
    parser.add_argument(
        "--bench-table",
        action="store_true",
        help="--model has a student: print its gate trade-off on the benchmark's passages (held out)",
    )
    parser.add_argument("--skip", type=int, default=2000, help="benchmark passages: the first N corpus excerpts")
    args = parser.parse_args()
    if not (args.gate_only or args.bench_table) and not args.out:
        parser.error("--out is required (unless --gate-only or --bench-table)")

    from supportlens.models import load_classifier
    from supportlens.models.finetune import STUDENT_DIR, STUDENT_REPORT

    texts, val, left_out = split_corpus(args.skip)
    model = load_classifier(args.model)
    if model.kind != "finetune":
        raise SystemExit(f"{args.model}: a student needs a fine-tuned model, not {model.kind!r}")
    model.student_layers, model.student_epochs, model.student_max_changed = args.layers, args.epochs, args.max_changed
    started = time.perf_counter()
    if args.bench_table:
        print(bench_table(model, args.skip))
        return
    if args.gate_only:
        if not model.has_student():
            raise SystemExit(f"{args.model}: no student to gate; run without --gate-only first")
        report = model.gate_student(val)
        path = Path(args.model) / STUDENT_DIR / STUDENT_REPORT
        path.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        print(json.dumps({k: v for k, v in report.to_dict().items() if k not in ("history", "gates")}, indent=2))
        return
    model.fit_student(texts, val, per_text=args.per_text)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(args.model, out, ignore=shutil.ignore_patterns("onnx"))
    model.save(
        out,
        extra={
            k: v
            for k, v in model.meta_.items()
            if k not in ("format_version", "kind", "params", "classes", "temperature", "history")
        },
    )
    report = {
        **model.student_report_.to_dict(),
        "benchmark_interviews_left_out": left_out,
        "distil_excerpts": len(texts),
        "val_excerpts": len(val),
        "seconds_total": time.perf_counter() - started,
    }
    report.pop("history")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
