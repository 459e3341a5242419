"""Checks on the bundled, authored corpus and sample transcripts (data/)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from conftest import ROOT

STARTER = ROOT / "data" / "excerpts" / "starter.jsonl"
TRANSCRIPTS = ROOT / "data" / "transcripts"
TELL_WORDS = re.compile(r"\b(push\w*|pull\w*|co-?creat\w*|cocreat\w*|exchang\w*)", re.I)


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return pd.read_json(STARTER, lines=True)


def test_size_fields_and_labels(corpus, codebook):
    assert len(corpus) >= 800
    assert corpus["interview_id"].nunique() >= 40
    assert {"id", "interview_id", "speaker_role", "text", "label"} <= set(corpus.columns)
    assert set(corpus["label"]) == set(codebook.labels)
    assert corpus["id"].is_unique
    assert corpus["text"].str.strip().str.len().gt(0).all()


def test_proportions_are_realistic(corpus):
    share = corpus["label"].value_counts(normalize=True)
    assert share.idxmax() == "none"  # uncoded talk is the most common in real transcripts
    assert share.min() > 0.1 and share.max() < 0.5


def test_no_tell_word_shortcut(corpus):
    for label, block in corpus.groupby("label"):
        share = block["text"].str.contains(TELL_WORDS).mean()
        assert share <= 0.10, f"{label}: {share:.1%} of excerpts use a tell-word"


def test_hard_cases_at_least_15_percent(corpus):
    assert corpus["hard_case"].notna().mean() >= 0.15


def test_no_near_duplicates_across_interviews(corpus):
    texts = corpus["text"].str.lower().str.replace(r"\s+", " ", regex=True)
    grams = CountVectorizer(analyzer="char", ngram_range=(5, 5), binary=True).fit_transform(texts)
    sizes = np.asarray(grams.sum(axis=1)).ravel()
    inter = (grams @ grams.T).toarray()
    union = sizes[:, None] + sizes[None, :] - inter
    jaccard = inter / np.maximum(union, 1)
    np.fill_diagonal(jaccard, 0)
    groups = corpus["interview_id"].to_numpy()
    across = groups[:, None] != groups[None, :]
    i, j = np.unravel_index(np.argmax(np.where(across, jaccard, 0)), jaccard.shape)
    assert jaccard[i, j] <= 0.8, (corpus["id"][i], corpus["id"][j], jaccard[i, j])
    within = np.where(~across, jaccard, 0).max()
    assert within <= 0.8


def test_transcripts_exist_in_every_format():
    files = sorted(p for p in TRANSCRIPTS.glob("smp*") if p.is_file())
    assert {p.suffix for p in files} >= {".txt", ".vtt", ".srt", ".docx", ".md"}
    assert len(files) >= 6
    assert any("<v " in p.read_text(encoding="utf-8") for p in files if p.suffix == ".vtt")  # Teams style


@pytest.mark.parametrize("name", ["smp01_child_welfare.txt", "smp06_juvenile_justice.md"])
def test_gold_offsets_point_at_the_quoted_text(name, codebook):
    text = (TRANSCRIPTS / name).read_text(encoding="utf-8")
    gold = [json.loads(line) for line in (TRANSCRIPTS / "gold" / (Path(name).stem + ".jsonl")).open()]
    assert len(gold) >= 10
    for row in gold:
        assert text[row["start"] : row["end"]] == row["text"]
        assert row["label"] in codebook.labels
    assert len(text.split()) >= 1500


def test_transcript_interviews_are_not_in_the_corpus(corpus):
    sample = (TRANSCRIPTS / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    for text in corpus["text"].head(200):
        assert text[:80] not in sample


DEV_QUOTES = ROOT.parent / "shared" / "eval" / "real_quotes_dev.jsonl"


def _word_runs(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.skipif(not DEV_QUOTES.is_file(), reason="the real-quote development set is not beside the project")
def test_no_authored_text_copies_a_dev_quote(corpus, codebook):
    """Authored text must never carry the dev quotes' wording: a run of 8 words in common is a copy
    (shorter runs occur by chance: "I didn't know what to ..."). Paraphrase cannot be caught this
    way; the data card says how the writers were kept away from the quotes."""
    quotes = [json.loads(line)["text"] for line in DEV_QUOTES.read_text(encoding="utf-8").splitlines() if line.strip()]
    quoted = set().union(*(_word_runs(q, 8) for q in quotes))
    texts = {f"corpus {r.id}": r.text for r in corpus.itertuples()}
    texts.update({f"codebook {c.label} example {i}": e for c in codebook.codes for i, e in enumerate(c.examples)})
    texts.update(
        {
            f"transcript {p.name}": p.read_text(encoding="utf-8", errors="replace")
            for p in TRANSCRIPTS.glob("smp*")
            if p.suffix != ".docx"
        }
    )
    copies = {}
    for name, text in texts.items():
        shared = _word_runs(text, 8) & quoted
        if shared:
            copies[name] = " ".join(min(shared))
    assert not copies, copies
