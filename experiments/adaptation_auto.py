"""Adaptation benchmark, second run (issue 19): weighting chosen on the researcher's own passages.

    python experiments/adaptation_auto.py --workers 2 --tracking-uri sqlite:///mlflow.db
    python experiments/adaptation_auto.py --quick      # plumbing only: 1 domain, k 0/10, 1 seed

Why a second run: the first (experiments/adaptation.py, 2026-12-06) found that a fixed share of the
loss for the target passages (a) lost κ on authored domains, whose language the source already
speaks, while beside the few-shot blend (c) it gained most on real quotes. ``adapt.weighting:
auto`` (training.adapt.select_weighting) lets each corpus decide: every share in adapt.share_grid
(0, 0.25, 0.5) is cross-fitted on the coded passages (adapt.selection_folds = 3 folds by interview,
the configured few-shot blend on top), and the smallest share whose mean log-loss is within one
standard error of the best is kept; below adapt.min_selection (10) passages, no extra weight.

The procedure, fixed before it is run (repeated in the results file):

Everything as in experiments/adaptation.py (its docstring): the same five held-out domains of part
A with the same pool/test halves and random orders, seeds 0, 1, 2, κ on the test half, mean over
domains of each domain's mean over seeds with 95% t-intervals over domains; the same part B over
../shared/eval/real_quotes_dev.jsonl (five folds by source, the same random picks, pooled held-out
κ with source-bootstrap intervals, paired gains). To fit in the session's time (a cell with
auto-c costs about nine extra fits), k in {0, 10, 40, 80} on A and {0, 20, all} on B. Only the default
config, and four methods: "before", "c-prototype" (the current default), "a+c-prototype" (share
0.5 + prototype) and "auto-c" (auto weighting + prototype). None calibrates on the target (d never
changes a code). Each fit is built by the library (`adaptation.fit_method`, which calls
`training.adapt.select_weighting` for auto-c and then the chosen share's fit); the share chosen
in each cell is recorded.

Decision (on part A only; part B is reported, never used to decide): auto-c becomes what
`--add-data` does by default (adapt.weighting: auto) if, over all five domains of part A, its mean
κ gain from k = 0 to k = 40 is at least c-prototype's minus 0.01, and its mean κ at k = 80 is at
least c-prototype's minus 0.01: where the authored corpus already speaks a domain's language,
choosing the weight must cost (almost) nothing. Otherwise the default stays c-prototype.
The goal check of issue 19 is reported for the chosen default on A (gain 0 to 40 against +0.15)
and on B (gain 0 to all, short of k = 40).

Part C (`--parts C`, added and committed after A and B had run, before it ran): the goal's
ceiling check for the adopted default, as the first run made it for its winner. For each of A's
five domains, auto-c fitted on the domain's whole pool (every coded participant and document
passage of its pool half, 135 to 358) and scored on the same test half; the gap is A's κ at
k = 80 (mean over seeds, from <out>.json) minus that κ, mean over domains with a 95% t-interval;
the goal is met if the mean gap is at least -0.05. Writes <out>_ceiling.json and .md.

Writes <out>.json, <out>.md and <out>.png (default experiments/results/adaptation_auto) and one MLflow run
per part and method, nested in one parent run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import adaptation as base  # noqa: E402

METHODS = ("before", "c-prototype", "a+c-prototype", "auto-c")
DEFAULT, CANDIDATE = "c-prototype", "auto-c"
NO_HARM = 0.01
KS_A = (0, 10, 40, 80)
KS_B = (0, 20, "all")
CONFIG = "configs/default.yaml"


def procedure_text() -> str:
    doc = __doc__ or ""
    return doc[doc.index("The procedure, fixed") : doc.index("Writes <out>")].strip()


def share_counts(values: list[float]) -> dict[str, int]:
    """How often each share was chosen, by share."""
    return dict(sorted(Counter(f"{v:g}" for v in values).items()))


def decide(summary: dict[str, Any]) -> dict[str, Any]:
    """The fixed rule: auto-c adopted when it costs at most NO_HARM against c-prototype on A."""
    gain = {m: summary[m]["40"]["gain"] for m in (DEFAULT, CANDIDATE)}
    at80 = {m: summary[m]["80"]["kappa"] for m in (DEFAULT, CANDIDATE)}
    adopt = gain[CANDIDATE] >= gain[DEFAULT] - NO_HARM and at80[CANDIDATE] >= at80[DEFAULT] - NO_HARM
    return {"gain_0_40": gain, "kappa_80": at80, "adopt": bool(adopt), "default": CANDIDATE if adopt else DEFAULT}


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) and np.isfinite(x) else "n/a"


def _with_interval(cell: dict[str, Any] | None, key: str) -> str:
    """'0.424 [0.158, 0.669]' for ``key`` and its ``_low``/``_high``; n/a when not measured."""
    if not cell:
        return "n/a"
    return f"{_fmt(cell.get(key))} [{_fmt(cell.get(key + '_low'))}, {_fmt(cell.get(key + '_high'))}]"


def markdown(results: dict[str, Any]) -> str:
    info = results["info"]
    lines = [
        "# Adaptation benchmark, second run: weighting chosen on the researcher's own passages",
        "",
        f"Measured {info['date']} on {info['machine']}; wall time {info['wall_minutes']} min.",
        f"Command: `{info['command']}`",
        "",
        "## Procedure (fixed before the run)",
        "",
        "```text",
        info["procedure"],
        "```",
        "",
    ]
    if "A" in results:
        a = results["A"]
        ks = [str(k) for k in a["ks"]]
        lines += [
            "## Part A: simulated new corpora (default config)",
            "",
            "κ on the test half, mean over domains (each domain's mean over seeds) [95% t-interval over domains].",
            "",
            "| method | " + " | ".join(f"k={k}" for k in ks) + " | κ gain 0→40 |",
            "|---" * (len(ks) + 2) + "|",
        ]
        for method in METHODS:
            entry = a["summary"][method]
            cells = [_with_interval(entry.get(k), "kappa") for k in ks]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {_with_interval(entry.get('40'), 'gain')} |")
        at = "40" if "40" in ks else ks[-1]
        lines += ["", f"κ per domain at k = {at} (mean over seeds):", ""]
        domains = list(a["summary"][METHODS[0]][at]["per_domain_kappa"])
        lines += ["| method | " + " | ".join(domains) + " |", "|---" * (len(domains) + 1) + "|"]
        for method in METHODS:
            per = a["summary"][method][at]["per_domain_kappa"]
            lines.append(f"| {method} | " + " | ".join(_fmt(per[d]) for d in domains) + " |")
        lines += ["", "Shares auto-c chose (cells of domain × seed, per k):", ""]
        for k, counts in a["choices"].items():
            lines.append(f"- k = {k}: " + ", ".join(f"{share}: {n}" for share, n in counts.items()))
        if "decision" in a:
            d = a["decision"]
            lines += [
                "",
                f"**Decision:** auto-c's κ gain 0→40 {_fmt(d['gain_0_40'][CANDIDATE])} against c-prototype's "
                f"{_fmt(d['gain_0_40'][DEFAULT])}; κ at k = 80 {_fmt(d['kappa_80'][CANDIDATE])} against "
                f"{_fmt(d['kappa_80'][DEFAULT])} (no-harm margin {NO_HARM}): "
                + ("**adopt auto-c** (adapt.weighting: auto)." if d["adopt"] else "**keep c-prototype**."),
            ]
        lines.append("")
    if "B" in results:
        b = results["B"]
        ks = [str(k) for k in b["ks"]]
        lines += [
            f"## Part B: real language, cross-fitted ({b['quotes']} quotes from {b['sources']} sources, "
            f"{b['folds']} folds by source)",
            "",
            "κ (mean over seeds) [95% bootstrap interval resampling sources]; gain over k = 0, paired.",
            "",
            "| method | " + " | ".join(f"κ k={k}" for k in ks) + " | gain 0→all | macro-F1 all |",
            "|---" * (len(ks) + 3) + "|",
        ]
        for method in METHODS:
            entry = b["summary"][method]
            cells = [_with_interval(entry.get(k), "kappa") for k in ks]
            last = entry[ks[-1]]
            lines.append(
                f"| {method} | " + " | ".join(cells) + f" | {_with_interval(last, 'gain')} | {_fmt(last['macro_f1'])} |"
            )
        lines += ["", "Shares auto-c chose (fold × seed cells, per k):", ""]
        for k, counts in b["choices"].items():
            lines.append(f"- k = {k}: " + ", ".join(f"{share}: {n}" for share, n in counts.items()))
        lines.append("")
    lines += ["![κ against coded passages](adaptation_auto.png)", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """κ against k for each method: part A (mean over domains) and part B (pooled, with the
    default's 95% interval shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("A", "B") if p in results]
    fig, axes = plt.subplots(1, len(parts), figsize=(6.2 * len(parts), 4.2), dpi=120, squeeze=False)
    adopted = results.get("A", {}).get("decision", {}).get("default", CANDIDATE)
    for ax, name in zip(axes[0], parts):
        part = results[name]
        ks = part["ks"]
        added = part["summary"][METHODS[0]].get("all", {}).get("quotes_added", "")  # "27-31": the other folds
        all_x = float(np.mean([int(v) for v in added.split("-")])) if added else 30.0
        xs = [k if k != "all" else all_x for k in ks]
        for i, method in enumerate(METHODS):
            entry = part["summary"][method]
            pts = [(x, entry[str(k)]) for x, k in zip(xs, ks) if str(k) in entry]
            bold = method == adopted
            ax.plot(
                [p[0] for p in pts],
                [p[1]["kappa"] for p in pts],
                marker="o",
                ms=3,
                lw=2.4 if bold else 1.1,
                color=plt.get_cmap("tab10")(i),
                label=method + (" (default)" if bold else ""),
            )
            if bold and name == "B":
                ax.fill_between(
                    [p[0] for p in pts],
                    [p[1]["kappa_low"] for p in pts],
                    [p[1]["kappa_high"] for p in pts],
                    color=plt.get_cmap("tab10")(i),
                    alpha=0.12,
                )
        ax.set_xticks(xs, [str(k) if k != "all" else f"all\n({added})" for k in ks])
        ax.set_xlabel("coded target passages added (k)")
        ax.set_ylabel("Cohen's κ")
        ax.set_title(
            "A: simulated new corpora (authored; mean over 5 domains)"
            if name == "A"
            else "B: 37 real quotes, cross-fitted (95% interval shaded)",
            fontsize=9,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def log_mlflow(results: dict[str, Any], tracking_uri: str | None, experiment: str) -> None:
    from supportlens import tracking

    tracking.setup(tracking_uri, experiment)
    info = results["info"]
    with tracking.run(f"adaptation-auto {info['date']}", tags={"kind": "adaptation-auto"}):
        tracking.log_params({k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))})
        for part in ("A", "B"):
            if part not in results:
                continue
            for method, entry in results[part]["summary"].items():
                with tracking.run(f"{part} {method}", nested=True, tags={"part": part}):
                    tracking.log_params({"part": part, "method": method})
                    tracking.log_metrics(
                        {
                            f"{key}_k{k}": float(value)
                            for k, cell in entry.items()
                            for key, value in cell.items()
                            if isinstance(value, (int, float)) and np.isfinite(value)
                        }
                    )


def ceiling(args: argparse.Namespace) -> dict[str, Any]:
    """Part C: the adopted default given each domain's whole pool, against A's κ at k = 80."""
    from supportlens.models.encoders import embedding_cache

    out = Path(args.out)
    saved = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    at80 = saved["A"]["summary"][CANDIDATE]["80"]["per_domain_kappa"]
    dev = str(Path(args.dev).resolve())
    jobs = [base.Job("A-followup", CONFIG, dev, domain=d.name, ks=tuple(KS_A), winner=CANDIDATE) for d in base.DOMAINS]
    scratch = tempfile.mkdtemp(prefix="adaptation-ceiling-vectors-")
    jobs = [dataclasses.replace(job, embedding_dir=scratch) for job in jobs]
    started = time.perf_counter()
    try:
        with embedding_cache(scratch):
            base.warm_up([CONFIG], dev, base._log)
        outputs = base.run_jobs(jobs, max(1, args.workers))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    whole = {job.domain: done["ceiling"] for job, done in zip(jobs, outputs)}
    gaps = [at80[d] - whole[d]["kappa"] for d in whole]
    gap, low, high = base.t_interval(gaps)
    result = {
        "per_domain": {d: {"k80": at80[d], "whole_pool": c["kappa"], "pool": c["pool"]} for d, c in whole.items()},
        "gap": gap,
        "gap_low": low,
        "gap_high": high,
        "met": bool(gap >= -base.GOAL_CEILING),
        "info": {
            "machine": base.machine(),
            "date": time.strftime("%Y-%m-%d"),
            "wall_minutes": round((time.perf_counter() - started) / 60, 1),
            "command": "python experiments/adaptation_auto.py --parts C",
        },
    }
    lines = [
        "# Adaptation, second run, part C: the default's k = 80 against the whole pool",
        "",
        f"Measured {result['info']['date']} on {result['info']['machine']}; wall time "
        f"{result['info']['wall_minutes']} min. Procedure: the module docstring of experiments/adaptation_auto.py.",
        "",
        "| domain | κ at k = 80 (mean of 3 seeds) | κ with the whole pool | pool passages |",
        "|---|---|---|---|",
        *(
            f"| {d} | {_fmt(v['k80'])} | {_fmt(v['whole_pool'])} | {v['pool']} |"
            for d, v in result["per_domain"].items()
        ),
        "",
        f"Gap (k = 80 minus whole pool), mean over domains: {_with_interval(result, 'gap')}; goal: at least "
        f"-{base.GOAL_CEILING}: **{'met' if result['met'] else 'not met'}**.",
        "",
    ]
    stem = out.with_name(out.name + "_ceiling")
    stem.with_suffix(".json").write_text(json.dumps(base._clean(result), indent=1), encoding="utf-8")
    stem.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="plumbing: 1 domain, k 0/10, seed 0")
    parser.add_argument("--parts", nargs="+", default=["A", "B"], choices=["A", "B", "C"])
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results" / "adaptation_auto"))
    parser.add_argument("--dev", default=str(base.DEV))
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--experiment", default="supportlens-adaptation")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument(
        "--replot", action="store_true", help="only redraw <out>.png and rewrite <out>.md from <out>.json"
    )
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text(encoding="utf-8"))
        plot(saved, Path(args.out).with_suffix(".png"))
        Path(args.out).with_suffix(".md").write_text(markdown(saved), encoding="utf-8")
        return saved
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(ROOT)
    if args.parts == ["C"]:
        return ceiling(args)
    from supportlens.models.encoders import embedding_cache

    dev = str(Path(args.dev).resolve())
    if "B" in args.parts and not Path(dev).is_file():
        raise SystemExit(f"adaptation_auto.py: part B needs the development set; no file at {args.dev} (--dev)")
    domains = [base.DOMAINS[0]] if args.quick else list(base.DOMAINS)
    ks_a = (0, 10) if args.quick else KS_A
    ks_b = (0, 10) if args.quick else KS_B
    seeds = (0,) if args.quick else base.SEEDS
    folds = range(base.B_FOLDS)
    jobs: list[base.Job] = []
    if "A" in args.parts:
        jobs += [base.Job("A", CONFIG, dev, METHODS, d.name, ks=tuple(ks_a), seeds=tuple(seeds)) for d in domains]
    if "B" in args.parts:
        jobs += [base.Job("B", CONFIG, dev, METHODS, fold=f, ks_b=tuple(ks_b), seeds=tuple(seeds)) for f in folds]
    workers = max(1, args.workers)
    scratch = tempfile.mkdtemp(prefix="adaptation-auto-vectors-")
    jobs = [dataclasses.replace(job, embedding_dir=scratch) for job in jobs]
    started = time.perf_counter()
    try:
        with embedding_cache(scratch):
            base.warm_up([CONFIG], dev, base._log)
        outputs = base.run_jobs(jobs, workers)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ctx = base.context(CONFIG, dev)
    results: dict[str, Any] = {}
    if "A" in args.parts:
        rows = [r for job, out in zip(jobs, outputs) if job.kind == "A" for r in out["rows"]]
        summary = base.summarise_a(rows, METHODS, ks_a)
        chosen: dict[str, list[float]] = {}
        for r in rows:
            if r["method"] == CANDIDATE and r["k"] and "share_chosen" in r:
                chosen.setdefault(str(r["k"]), []).append(r["share_chosen"])
        results["A"] = {
            "ks": list(ks_a),
            "domains": [d.name for d in domains],
            "summary": summary,
            "choices": {k: share_counts(v) for k, v in chosen.items()},
            "rows": rows,
        }
        if not args.quick:
            results["A"]["decision"] = decide(summary)
    if "B" in args.parts:
        parts = [out for job, out in zip(jobs, outputs) if job.kind == "B"]
        raw = base.assemble_b(parts, ctx.dev)
        choices: dict[str, list[float]] = {}
        for part in parts:
            for key, share in part["choices"].items():
                choices.setdefault(key.split("|")[1], []).append(share)
        results["B"] = {
            "ks": list(ks_b),
            "summary": base.summarise_b(raw, ctx.labels, list(METHODS), list(ks_b), list(seeds), ctx.cfg.seed),
            "choices": {k: share_counts(v) for k, v in choices.items()},
            "quotes": int(len(raw["y"])),
            "sources": int(len(set(raw["sources"]))),
            "folds": raw["n_folds"],
        }
    results["info"] = {
        "machine": base.machine(),
        "date": time.strftime("%Y-%m-%d"),
        "wall_minutes": round((time.perf_counter() - started) / 60, 1),
        "workers": workers,
        "quick": args.quick,
        "config": CONFIG,
        "corpus_digest": ctx.digest,
        "command": "python experiments/adaptation_auto.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "procedure": procedure_text(),
        "adapt_defaults": dataclasses.asdict(ctx.cfg.adapt),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean = base._clean(results)
    out.with_suffix(".json").write_text(
        json.dumps(clean, indent=1, default=base._json_default, allow_nan=False), encoding="utf-8"
    )
    out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    plot(clean, out.with_suffix(".png"))
    log_mlflow(results, args.tracking_uri, args.experiment)
    print(out.with_suffix(".md").read_text(encoding="utf-8"))
    return results


if __name__ == "__main__":
    main()
