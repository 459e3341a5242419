"""Benchmark: does coding the passages `supportlens next` suggests teach a model faster than coding
passages in random order?

Simulated coding on the bundled corpus with the TF-IDF model: per seed, one grouped fold of
interviews is held out as the test set and the rest is the pool. Coding starts from 40 random
excerpts of the pool; each round the strategy picks the next 40 from the pool (their human codes
are then "revealed"), the model is retrained and scored on the test interviews, up to 600 coded.
Strategies within a seed share the test set and the first 40 excerpts, so differences are paired.

    python experiments/bench_active.py                                   # margin vs random, 5 seeds
    python experiments/bench_active.py --arms margin margin-plain entropy random --seeds 3

Arms: margin / entropy (uncertainty + the diversity step, as `supportlens next` runs),
margin-plain (uncertainty only), random. The model is not temperature-calibrated here (there is no
validation set in the simulation); calibration does not change its predicted codes.
Writes experiments/results/active_learning.{png,json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARMS = {
    "margin": ("margin", True),
    "entropy": ("entropy", True),
    "margin-plain": ("margin", False),
    "random": ("random", False),
}
COLORS = {"margin": "#D1495B", "entropy": "#00798C", "margin-plain": "#EDAE49", "random": "#555555"}


def simulate(frame, labels, test_idx, pool_idx, arm, cfg, start, batch, budget, seed):
    """One learning curve: macro-F1 on the test interviews after each batch of coded excerpts."""
    import pandas as pd
    from sklearn.metrics import f1_score

    from supportlens.assist.active import select_next
    from supportlens.models import build_model

    strategy, diversity = ARMS[arm]
    texts, y = frame["text"].to_numpy(dtype=object), frame["label"].to_numpy(dtype=object)
    rng = np.random.default_rng(seed)
    coded = list(rng.choice(pool_idx, size=start, replace=False))
    test_texts, test_y = texts[test_idx].tolist(), y[test_idx]
    xs, scores = [], []
    while True:
        model = build_model(cfg, labels).fit(texts[coded].tolist(), y[coded])
        pred = model.predict(test_texts)
        xs.append(len(coded))
        scores.append(float(f1_score(test_y, pred, labels=sorted(set(test_y)), average="macro", zero_division=0)))
        if len(coded) >= budget:
            return xs, scores
        taken = set(coded)
        remaining = np.array([i for i in pool_idx if i not in taken])
        size = min(batch, budget - len(coded))
        if strategy == "random":  # random order needs no scores: skip scoring the whole pool
            coded.extend(int(i) for i in rng.choice(remaining, size=size, replace=False))
            continue
        passages = pd.DataFrame({"text": texts[remaining], "row": remaining})
        chosen = select_next(passages, model, n=size, strategy=strategy, diversity=diversity, seed=seed)
        coded.extend(int(i) for i in chosen["row"])


def area(xs, ys) -> float:
    """Area under the curve divided by the x range: the curve's mean macro-F1 (trapezoid rule)."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    return float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs)) / (xs[-1] - xs[0]))


def _write_atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; results are for sharing
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=130)
    for arm, r in results["arms"].items():
        xs, mean, sd = np.array(r["x"]), np.array(r["mean"]), np.array(r["sd"])
        ax.plot(xs, mean, marker="o", ms=3, color=COLORS.get(arm), label=f"{arm} (area {r['auc_mean']:.3f})")
        ax.fill_between(xs, mean - sd, mean + sd, color=COLORS.get(arm), alpha=0.15, linewidth=0)
    ax.set_xlabel("coded excerpts")
    ax.set_ylabel("macro-F1 on held-out interviews")
    ax.set_title(
        f"What to code next: TF-IDF, batches of {results['batch']}, mean ± sd of {results['seeds']} seeds", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def markdown(results: dict) -> str:
    arms = results["arms"]
    checkpoints = (
        [x for x in (120, 200, 400, results["budget"]) if x in arms["random"]["x"]] if "random" in arms else []
    )
    lines = [
        "# What to code next: active learning vs random order",
        "",
        f"Simulated coding on `{results['data']}` ({results['n_excerpts']} excerpts, {results['n_interviews']} "
        f"interviews) with the TF-IDF model (`{results['config']}`): per seed one grouped fold of interviews is the "
        f"test set (mean {results['n_test_mean']:.0f} excerpts), the rest the pool; start from {results['start']} "
        f"random excerpts, add {results['batch']} per round up to {results['budget']}, retrain, score macro-F1 on "
        f"the test interviews. {results['seeds']} seeds; {results['seconds']:.0f} s on {results['machine']}.",
        "",
        "Area = area under the learning curve divided by its x range (trapezoid rule), i.e. the mean macro-F1 "
        "over the curve; higher is better.",
        "",
        "| arm | area (mean ± sd over seeds) | " + " | ".join(f"F1 at {x}" for x in checkpoints) + " |",
        "|---|---|" + "---|" * len(checkpoints),
    ]
    for arm, r in arms.items():
        at = [r["mean"][r["x"].index(x)] for x in checkpoints]
        lines.append(
            f"| {arm} | {r['auc_mean']:.3f} ± {r['auc_sd']:.3f} | " + " | ".join(f"{v:.3f}" for v in at) + " |"
        )
    for arm, r in arms.items():
        if arm != "random" and r.get("reaches_random_final_at"):
            lines += [
                "",
                f"`{arm}` reaches the macro-F1 that random order has after {results['budget']} coded "
                f"excerpts ({arms['random']['mean'][-1]:.3f}) after {r['reaches_random_final_at']}.",
            ]
    lines += ["", "![learning curves](active_learning.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "excerpts" / "starter.jsonl"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "tfidf.yaml"))
    parser.add_argument("--arms", nargs="+", default=["margin", "random"], choices=list(ARMS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--budget", type=int, default=600)
    parser.add_argument(
        "--out",
        default=str(ROOT / "experiments" / "results" / "active_learning"),
        help="path stem: .png, .json and .md are written",
    )
    args = parser.parse_args(argv)

    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.corpus.dataset import load_coded
    from supportlens.corpus.splits import grouped_folds

    cfg = load_config(args.config, [f"codebook={ROOT / 'configs' / 'codebook.yaml'}"])
    codebook = load_codebook(cfg.codebook)
    frame = load_coded(args.data, codebook, cfg.data).frame
    labels = codebook.labels
    folds = grouped_folds(frame["label"].to_numpy(dtype=object), frame["group"].to_numpy(), 5, cfg.seed)
    started = time.perf_counter()
    curves: dict[str, list[list[float]]] = {arm: [] for arm in args.arms}
    xs: list[int] = []
    n_test = []
    for seed in range(args.seeds):
        pool_idx, test_idx = folds[seed % len(folds)]
        n_test.append(len(test_idx))
        for arm in args.arms:
            t0 = time.perf_counter()
            xs, ys = simulate(frame, labels, test_idx, pool_idx, arm, cfg, args.start, args.batch, args.budget, seed)
            curves[arm].append(ys)
            print(
                f"seed {seed} {arm:>12}: area {area(xs, ys):.3f}, final {ys[-1]:.3f} ({time.perf_counter() - t0:.0f}s)",
                file=sys.stderr,
            )
    results = {
        "data": str(Path(args.data).relative_to(ROOT)) if Path(args.data).is_relative_to(ROOT) else args.data,
        "config": str(Path(args.config).relative_to(ROOT)) if Path(args.config).is_relative_to(ROOT) else args.config,
        "n_excerpts": len(frame),
        "n_interviews": int(frame["group"].nunique()),
        "n_test_mean": float(np.mean(n_test)),
        "start": args.start,
        "batch": args.batch,
        "budget": args.budget,
        "seeds": args.seeds,
        "seconds": time.perf_counter() - started,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "arms": {},
    }
    for arm, runs in curves.items():
        values = np.array(runs)
        areas = [area(xs, ys) for ys in runs]
        results["arms"][arm] = {
            "x": xs,
            "mean": values.mean(axis=0).round(4).tolist(),
            "sd": values.std(axis=0, ddof=1).round(4).tolist() if len(runs) > 1 else [0.0] * len(xs),
            "per_seed": values.round(4).tolist(),
            "auc_mean": float(np.mean(areas)),
            "auc_sd": float(np.std(areas, ddof=1)) if len(areas) > 1 else 0.0,
            "auc_per_seed": [round(a, 4) for a in areas],
        }
    if "random" in results["arms"]:
        target = results["arms"]["random"]["mean"][-1]
        for r in results["arms"].values():
            hit = next((x for x, m in zip(r["x"], r["mean"]) if m >= target), None)
            r["reaches_random_final_at"] = hit
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(results, out.with_suffix(".png"))
    _write_atomic(
        out.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(results, indent=2), encoding="utf-8")
    )
    _write_atomic(out.with_suffix(".md"), lambda tmp: Path(tmp).write_text(markdown(results), encoding="utf-8"))
    for arm, r in results["arms"].items():
        print(f"{arm:>12}: area {r['auc_mean']:.3f} ± {r['auc_sd']:.3f}; final macro-F1 {r['mean'][-1]:.3f}")
    print(f"wrote {out.with_suffix('.png')}, .json, .md in {results['seconds']:.0f}s")
    return results


if __name__ == "__main__":
    main()
