"""Learning curve: real-language κ and grouped-CV κ against corpus size.

    python experiments/learning_curve.py configs/tfidf.yaml configs/experiments/embed-prior-features.yaml \
        --sizes 200 400 800 1600 3200 --folds 3 --out experiments/results/learning_curve

For each size, excerpts are drawn from the whole corpus (seeded, stratified by code; interviews
stay whole groups for the CV and the split). Each config is trained on the draw and scored by
grouped CV on it, and on the real-quote development set (scored only, never trained on). With
several seeds a point is the mean over draws. Writes .json, .md and a .png plot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

from harness import DEV, machine  # noqa: E402


def draw(frame, size: int, seed: int):
    """``size`` excerpts, stratified by code (all of them when size >= the corpus)."""
    if size >= len(frame):
        return frame
    share = size / len(frame)
    parts = [
        block.sample(n=max(1, round(len(block) * share)), random_state=seed) for _, block in frame.groupby("label")
    ]
    import pandas as pd

    return pd.concat(parts).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--sizes", nargs="+", type=int, default=[200, 400, 800, 1600, 3200, 10**9])
    parser.add_argument("--seeds", nargs="+", type=int, default=[13])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--dev", default=str(DEV))
    parser.add_argument("--out", default="experiments/results/learning_curve")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the draws already in --out's .json (same config, size and seed are replaced)",
    )
    parser.add_argument("--embedding-cache", default=None, help="folder keeping frozen-encoder vectors between runs")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(ROOT)
    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.corpus.dataset import load_coded
    from supportlens.models.encoders import embedding_cache
    from supportlens.training.compare import Benchmarks, evaluate_config, load_dev

    cfgs = {Path(c).stem: load_config(c) for c in args.configs}
    first = next(iter(cfgs.values()))
    codebook = load_codebook(first.codebook)
    data = load_coded(first.data.path, codebook, first.data)
    benchmarks = Benchmarks(dev=Path(args.dev) if Path(args.dev).is_file() else None)
    dev = load_dev(benchmarks, codebook)
    rows = []
    with embedding_cache(args.embedding_cache):
        for size in sorted(set(min(s, len(data.frame)) for s in args.sizes)):
            # the whole corpus is the same draw whatever the seed: score it once
            for seed in args.seeds if size < len(data.frame) else args.seeds[:1]:
                sub = draw(data.frame, size, seed).reset_index(drop=True)
                for name, cfg in cfgs.items():
                    started = time.perf_counter()
                    row = evaluate_config(cfg, sub, codebook.labels, args.folds, benchmarks, dev, log=lambda m: None)
                    rows.append(
                        {
                            "config": name,
                            "size": len(sub),
                            "seed": seed,
                            "interviews": int(sub["group"].nunique()),
                            **{
                                k: row.get(k)
                                for k in (
                                    "cv_kappa_mean",
                                    "cv_macro_f1_mean",
                                    "test_kappa",
                                    "dev_kappa",
                                    "dev_macro_f1",
                                )
                            },
                            "seconds": time.perf_counter() - started,
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    info = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "folds": args.folds,
        "seeds": args.seeds,
        "corpus": str(first.data.path),
        "corpus_size": len(data.frame),
    }
    previous = Path(args.out).with_suffix(".json")
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("folds") != args.folds or old.get("corpus_size") != len(data.frame):
            raise SystemExit(f"{previous}: measured with other folds or another corpus; not merging")
        new = {(r["config"], r["size"], r["seed"]) for r in rows}
        rows = [r for r in old["rows"] if (r["config"], r["size"], r["seed"]) not in new] + rows
        info["seeds"] = sorted({r["seed"] for r in rows})
    print(write_outputs(rows, info, Path(args.out)))


def write_outputs(rows: list[dict], info: dict, out: Path) -> str:
    """.json (every draw), .md (means per config and size) and .png (the two curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.DataFrame(rows).groupby(["config", "size"], as_index=False).mean(numeric_only=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**info, "rows": rows}, indent=2))
    lines = [
        f"Measured {info['date']} on {info['machine']}; grouped {info['folds']}-fold CV; seeds {info['seeds']}.",
        "",
        "| config | excerpts | draws | CV κ | dev macro-F1 | dev κ |",
        "|---|---|---|---|---|---|",
    ]
    counts = pd.DataFrame(rows).groupby(["config", "size"]).size()
    for r in table.itertuples():
        lines.append(
            f"| {r.config} | {int(r.size)} | {counts[(r.config, r.size)]} | {r.cv_kappa_mean:.3f} | "
            f"{r.dev_macro_f1:.3f} | {r.dev_kappa:.3f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for name, block in table.groupby("config"):
        axes[0].plot(block["size"], block["cv_kappa_mean"], marker="o", label=name)
        axes[1].plot(block["size"], block["dev_kappa"], marker="o", label=name)
    for ax, title in zip(axes, ("grouped-CV κ on the authored corpus", "κ on 37 real published quotes (dev)")):
        ax.set_xscale("log")
        ax.minorticks_off()  # the log axis' minor labels overlap; label the measured sizes instead
        sizes: list[int] = []
        for size in sorted(int(s) for s in table["size"].unique()):  # labels closer than 1.25x collide
            if sizes and size < 1.25 * sizes[-1]:
                sizes.pop()
            sizes.append(size)
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.set_xlabel("training excerpts")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Cohen's κ")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
