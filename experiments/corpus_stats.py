"""Tables for the data card (data/README.md): label counts per grouped split, hard-case
categories, sources of variety. Uses the same split code and seed as `supportlens train`.

    python experiments/corpus_stats.py [configs/default.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from supportlens.config import load_config
    from supportlens.corpus.splits import grouped_split

    cfg = load_config(sys.argv[1] if len(sys.argv) > 1 else ROOT / "configs" / "default.yaml")
    df = pd.read_json(ROOT / cfg.data.path, lines=True)
    split = grouped_split(
        df["label"].to_numpy(), df["interview_id"].to_numpy(), cfg.split.test_size, cfg.split.val_size, cfg.seed
    )
    df["split"] = "train"
    df.loc[split.val, "split"] = "validation"
    df.loc[split.test, "split"] = "test"
    labels = ["push", "pull", "co_creation", "none"]
    table = pd.crosstab(df["label"], df["split"]).reindex(labels)[["train", "validation", "test"]]
    table["all"] = table.sum(axis=1)
    table.loc["total"] = table.sum()
    interviews = df.groupby("split")["interview_id"].nunique()
    print(
        f"{len(df)} excerpts, {df['interview_id'].nunique()} interviews "
        f"(train {interviews['train']}, validation {interviews['validation']}, test {interviews['test']})\n"
    )
    print("| label | train | validation | test | all |\n|---|---|---|---|---|")
    for label, row in table.iterrows():
        print(f"| {label} | " + " | ".join(str(int(v)) for v in row) + " |")
    hard = df["hard_case"].fillna("(none)")
    print(f"\nhard cases: {int((hard != '(none)').sum())} ({(hard != '(none)').mean():.0%})\n")
    print("| hard-case category | excerpts | labels |\n|---|---|---|")
    for cat, block in df[hard != "(none)"].groupby("hard_case"):
        counts = ", ".join(f"{k} {v}" for k, v in block["label"].value_counts().items())
        print(f"| {cat} | {len(block)} | {counts} |")
    words = df["text"].str.split().str.len()
    print(
        f"\nwords per excerpt: median {words.median():.0f}, range {words.min()}–{words.max()}; "
        f"speaker roles: {df['speaker_role'].value_counts().to_dict()}"
    )
    if "setting" in df:
        print(
            f"settings: {df['setting'].nunique()} distinct tags; most common: "
            + ", ".join(f"{k} ({v})" for k, v in df["setting"].value_counts().head(8).items())
        )


if __name__ == "__main__":
    main()
