"""Alternatives to the shipped --fast graph, measured and rejected (README, "Labelling speed").

On a fine-tuned model folder whose ONNX graphs supportlens has already cached (score it once on
CPU), this compares, interleaved on the same corpus excerpts with the same batching as predict:
- the shipped fp32 graph and dynamic int8 graph (``--fast`` before its fp32 re-check);
- the fp32 graph after onnxruntime's BERT fusion (attention, skip-LayerNorm, GELU);
- static int8 (activations calibrated on other corpus excerpts), QOperator and QDQ formats.

    python experiments/bench_quant_variants.py --model outputs/<run_id> --out experiments/results/quant_variants
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

from harness import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a fine-tuned supportlens model folder, scored once on CPU")
    parser.add_argument("--passages", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="experiments/results/quant_variants")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort
    import pandas as pd
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers import optimizer
    from transformers import AutoConfig, AutoTokenizer

    from supportlens.models.encoders import length_sorted_batches
    from supportlens.models.onnx_runtime import FP32_FILE, INT8_FILE

    model_dir = Path(args.model)
    graphs = sorted((model_dir / "onnx").glob(f"*/{FP32_FILE}"))
    if not graphs:
        raise SystemExit(f"{model_dir}: no cached ONNX graph; run supportlens predict on it once first")
    fp32 = graphs[-1]
    int8 = fp32.with_name(INT8_FILE)
    tokenizer = AutoTokenizer.from_pretrained(model_dir / "hf")
    config = AutoConfig.from_pretrained(model_dir / "hf")
    texts = pd.read_json(ROOT / "data/excerpts/starter.jsonl", lines=True)["text"].tolist()
    rng = np.random.default_rng(0)
    bench = [texts[i] for i in rng.choice(2000, args.passages, replace=False)]
    calibration = texts[2500:2700]  # other excerpts than the measured ones
    names = [i.name for i in ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()]

    def feeds(batch_texts):
        return [
            (idx, {k: b[k].numpy() for k in names}) for idx, b in length_sorted_batches(tokenizer, batch_texts, 16, 256)
        ]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([f for _, f in feeds(calibration)])

        def get_next(self):
            return next(self.items, None)

    work = Path(tempfile.mkdtemp(prefix="quant-variants-"))
    variants = {"fp32 (shipped)": fp32}
    if int8.is_file():
        variants["dynamic int8 (shipped --fast, before re-check)"] = int8
    fused = optimizer.optimize_model(
        str(fp32), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size, opt_level=0
    )
    fused.save_model_to_file(str(work / "fused.onnx"))
    variants["fp32 + onnxruntime BERT fusion"] = work / "fused.onnx"
    quant_pre_process(str(fp32), str(work / "pre.onnx"), skip_symbolic_shape=True)
    for fmt, tag in ((QuantFormat.QOperator, "QOperator"), (QuantFormat.QDQ, "QDQ")):
        target = work / f"static_{tag}.onnx"
        quantize_static(
            str(work / "pre.onnx"),
            str(target),
            Reader(),
            quant_format=fmt,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            calibrate_method=CalibrationMethod.MinMax,
        )
        variants[f"static int8, calibrated, {tag}"] = target

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 2
    sessions = {
        k: ort.InferenceSession(str(v), options, providers=["CPUExecutionProvider"]) for k, v in variants.items()
    }
    batches = feeds(bench)

    def run(session):
        out = np.zeros((len(bench), config.num_labels), dtype=np.float32)
        for idx, feed in batches:
            out[idx] = session.run(None, feed)[0]
        return out

    reference = run(sessions["fp32 (shipped)"]).argmax(1)
    seconds = {k: [] for k in sessions}
    changed = {}
    for _ in range(args.repeats):
        for name, session in sessions.items():
            started = time.perf_counter()
            labels = run(session).argmax(1)
            seconds[name].append(time.perf_counter() - started)
            changed[name] = float((labels != reference).mean())
    rows = [
        {"variant": k, "passages_per_s": len(bench) / float(np.median(v)), "labels_changed_vs_fp32": changed[k]}
        for k, v in seconds.items()
    ]
    info = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "model": str(model_dir),
        "passages": len(bench),
        "repeats": args.repeats,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**info, "rows": rows}, indent=2))
    lines = [
        f"Measured {info['date']} on {info['machine']}; {len(bench)} corpus excerpts, batches of 16, "
        f"2 ONNX Runtime threads, median of {args.repeats} interleaved repeats.",
        "",
        "| variant | passages/s | labels changed vs fp32 |",
        "|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | {r['passages_per_s']:.1f} | {100 * r['labels_changed_vs_fp32']:.1f}% |" for r in rows
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
