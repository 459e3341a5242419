"""What to code next: the passages a model is least sure about (optionally spread out so that no
two picks are near-duplicates), written as a coding sheet that goes back into training once filled in.

Coding the passages the model finds hardest teaches it more per hour of coding than coding in
transcript order. The diversity step is off by default: on five simulated new corpora plain margin
climbed fastest (experiments/adaptation.py: area under κ-vs-k 0.626, margin with diversity 0.621,
entropy 0.624, random 0.613).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supportlens.corpus.dataset import text_key
from supportlens.corpus.sheets import SheetError, coding_sheet, passage_id, write_sheet
from supportlens.inference.loop import SPEAKER_CHOICES, FileFailure, file_inputs, segment_transcripts
from supportlens.transcripts.read import expand_inputs

STRATEGIES = ("margin", "entropy", "random")
POOL_FACTOR = 5  # the diversity step chooses among the 5n most uncertain passages
DIVERSITY_WEIGHT = 0.5  # 0: pure uncertainty order; 1: only spread matters
# TF-IDF cosine at which two passages count as near-duplicates; distinct passages of one interview
# are mostly below 0.3, while a passage and a lightly edited copy are well above 0.5
NEAR_DUPLICATE = 0.5


class SelectionError(SheetError):
    """Passages cannot be selected as asked (a `SheetError`, so that one ``except`` covers choosing
    the passages and writing their sheet)."""


# ---------------------------------------------------------------------------------------------
# ranking


def uncertainty(proba: np.ndarray, strategy: str = "margin") -> np.ndarray:
    """Higher = less sure. margin: 1 - (top probability - runner-up); entropy: Shannon entropy
    divided by its maximum, so both lie in [0, 1]."""
    proba = np.asarray(proba, dtype=float)
    if strategy == "margin":
        if proba.shape[1] < 2:
            return np.zeros(len(proba))
        top2 = np.sort(proba, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(proba > 0, proba * np.log(proba), 0.0)
        return -terms.sum(axis=1) / np.log(max(proba.shape[1], 2))
    raise SelectionError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")


def _tfidf_rows(texts: Sequence[str]):
    """L2-normalised TF-IDF rows: cosine similarity is then a dot product."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode")
    try:
        return vectorizer.fit_transform(list(texts))
    except ValueError:  # only stop words or punctuation: nothing to compare, so no penalty
        return None


def diverse_order(
    texts: Sequence[str],
    scores: np.ndarray,
    n: int,
    weight: float = DIVERSITY_WEIGHT,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[int]:
    """Greedy maximal marginal relevance: each pick maximises
    ``(1 - weight) * score - weight * (highest cosine similarity to an earlier pick)``,
    with scores rescaled to [0, 1]; a near-duplicate of an earlier pick (similarity at least
    ``near_duplicate``) is taken only when nothing else is left. Returns positions into ``texts``."""
    scores = np.asarray(scores, dtype=float)
    n = min(n, len(scores))
    if n <= 0:
        return []
    span = scores.max() - scores.min()
    relevance = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    vectors = _tfidf_rows(texts)
    closest = np.zeros(len(scores))  # highest similarity to anything picked so far
    available = np.ones(len(scores), dtype=bool)
    picks: list[int] = []
    for _ in range(n):
        value = (1 - weight) * relevance - weight * closest
        fresh = available & (closest < near_duplicate)
        best = int(np.argmax(np.where(fresh if fresh.any() else available, value, -np.inf)))
        picks.append(best)
        available[best] = False
        if vectors is not None:
            similarity = (vectors @ vectors[best].T).toarray().ravel()
            closest = np.maximum(closest, similarity)
    return picks


def _proba(labeler_or_model: Any, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    model = getattr(labeler_or_model, "model", labeler_or_model)  # a predict.Labeler wraps one
    if not hasattr(model, "predict_proba"):
        raise SelectionError(
            f"{type(model).__name__} has no predict_proba; pass a supportlens model or a predict.Labeler"
        )
    proba = np.asarray(model.predict_proba(texts), dtype=float)
    return proba, [str(c) for c in model.classes_]


def select_next(
    passages: pd.DataFrame,
    labeler_or_model: Any,
    n: int = 40,
    strategy: str = "margin",
    diversity: bool = False,
    seed: int = 13,
    pool_factor: int = POOL_FACTOR,
    diversity_weight: float = DIVERSITY_WEIGHT,
    text_column: str = "text",
) -> pd.DataFrame:
    """The ``n`` passages to code next, best first.

    Ranks ``passages`` by the model's uncertainty (``margin`` or ``entropy``), then, with
    ``diversity``, picks among the ``pool_factor * n`` most uncertain by maximal marginal relevance
    on TF-IDF vectors so that picks are not near-duplicates. ``random`` is a seeded random sample
    (the baseline to beat; no diversity step). Returns the chosen rows with every input column
    plus ``suggested_code``, ``confidence``, ``uncertainty`` and ``pick`` (1 = code first).
    """
    if strategy not in STRATEGIES:
        raise SelectionError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if n < 1:
        raise SelectionError(f"n must be at least 1, got {n}")
    if text_column not in passages.columns:
        raise SelectionError(
            f"passages have no {text_column!r} column; columns: {', '.join(map(str, passages.columns))}"
        )
    if passages.empty:
        raise SelectionError("no passages to choose from")
    texts = passages[text_column].astype(str).tolist()
    proba, classes = _proba(labeler_or_model, texts)
    if strategy == "random":
        unsure = np.random.default_rng(seed).random(len(texts))
        order = list(np.argsort(-unsure, kind="stable")[:n])
    else:
        unsure = uncertainty(proba, strategy)
        ranked = np.argsort(-unsure, kind="stable")  # ties keep transcript order
        if diversity:
            pool = ranked[: max(n, pool_factor * n)]
            order = [int(pool[i]) for i in diverse_order([texts[j] for j in pool], unsure[pool], n, diversity_weight)]
        else:
            order = list(ranked[:n])
    chosen = passages.iloc[order].copy()
    chosen["suggested_code"] = [classes[j] for j in proba[order].argmax(axis=1)]
    chosen["confidence"] = proba[order].max(axis=1)
    chosen["uncertainty"] = unsure[order]
    chosen["pick"] = np.arange(1, len(order) + 1)
    return chosen.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# passages from transcripts


def read_passages(
    inputs: list[str], labeler, speaker: str = "participant", rules=None, text_column: str = "text"
) -> tuple[pd.DataFrame, list[str], list[tuple[str, str]]]:
    """Read and segment transcripts exactly as ``supportlens predict`` does (its loop,
    `supportlens.inference.loop`, without the scoring).

    Returns (passages, problems, notes): one row per passage with id, source, passage_index,
    start, end, speaker, role and text; a file that cannot be read is a problem, not an error
    (a transcript with no passages of `speaker` is not one: it offers none to choose from);
    notes are (source, note) pairs, for `supportlens.inference.predict.grouped_notes`.
    """
    if speaker not in SPEAKER_CHOICES:
        raise SelectionError(f"`speaker` must be one of {', '.join(SPEAKER_CHOICES)}; got {speaker!r}")
    paths, found_problems = expand_inputs(list(inputs))
    problems = [f"{given}: {reason}" for given, reason in found_problems]
    notes: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []
    for result in segment_transcripts(file_inputs(paths, text_column), labeler, speaker, rules, keep_empty=True):
        if isinstance(result, FileFailure):
            problems.append(result.reason)
            continue
        source = result.source
        notes.extend((source, note) for note in result.transcript.notes)
        for p in result.passages:
            rows.append(
                {
                    "id": passage_id(source, p.index),
                    "source": source,
                    "passage_index": p.index,
                    "start": p.start,
                    "end": p.end,
                    "speaker": p.speaker or "",
                    "role": p.role,
                    "text": p.text,
                    "row_id": p.row_id,
                }
            )
    columns = ["id", "source", "passage_index", "start", "end", "speaker", "role", "text", "row_id"]
    return pd.DataFrame(rows, columns=columns), problems, notes


def coded_and_blank_texts(paths: Sequence[str | Path], text_column: str = "text") -> tuple[set[str], set[str]]:
    """Normalised texts of coded files or earlier sheets: (those with a code, those left blank).

    The code is the sheet's ``code`` column, else a ``label`` column; a file with neither counts
    every text as coded. A code that is empty, JSON ``null`` or missing from a JSONL row is blank;
    a row without a text is passed over. A text coded in one file and blank in another counts as coded."""
    from supportlens.corpus.dataset import DataError, cell_text, find_column, read_table, table_name

    coded: set[str] = set()
    blank: set[str] = set()
    for path in paths:
        frame = read_table(path, required=[text_column])
        column = find_column(frame.columns, text_column)
        if column is None:
            raise DataError(
                f"{table_name(path, frame)}: missing column {text_column!r}; the file has columns: "
                f"{', '.join(str(c) for c in frame.columns if c != '_row')}"
            )
        code = next((c for c in ("code", "label") if c in frame.columns), None)
        for text, value in zip(frame[column], frame[code] if code else [None] * len(frame)):
            text = cell_text(text)  # None or NaN (a JSONL null or a missing key) is no text, not "nan"
            if text.strip():
                (blank if code and not cell_text(value).strip() else coded).add(text_key(text))
    return coded, blank - coded


def texts_in(paths: Sequence[str | Path], text_column: str = "text") -> set[str]:
    """Normalised texts of coded files or earlier sheets, coded or not."""
    coded, blank = coded_and_blank_texts(paths, text_column)
    return coded | blank


def drop_seen(passages: pd.DataFrame, seen: set[str]) -> pd.DataFrame:
    """Passages whose text is not among ``seen`` (whitespace and case ignored)."""
    if not seen or passages.empty:
        return passages
    return passages.loc[~passages["text"].map(text_key).isin(seen)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# the next coding sheet


class NothingToOffer(SelectionError):
    """No passage is left to choose from: every one read is coded already, or none was read."""


@dataclass
class NextSheet:
    """The passages `choose_next` put on the sheet, and what it left out and why."""

    chosen: pd.DataFrame  # as `select_next` returns them, pick 1 first
    offered: int  # passages they were chosen from
    coded: int  # passages left out because a ``skip`` file has them coded
    blank: int  # passages a ``skip`` sheet holds without a code: left out unless offer_blank
    offer_blank: bool = False
    path: Path | None = None  # the sheet written, if any

    def left_out(self) -> str:
        """What ``skip`` left out: passages coded, and those an earlier sheet holds with a blank code."""
        parts = [f"{self.coded} already coded left out"] if self.coded else []
        if self.blank and self.offer_blank:
            parts.append(f"{self.blank} left blank on a `skip` sheet offered again")
        elif self.blank:
            parts.append(
                f"{self.blank} on a `skip` sheet without a code left out too (code them there, or add "
                "`offer_blank=True` to have them offered again)"
            )
        return "; ".join(parts)


def choose_next(
    passages: pd.DataFrame,
    labeler_or_model: Any,
    out: str | Path | None = None,
    coded: set[str] | None = None,
    blank: set[str] | None = None,
    offer_blank: bool = False,
    n: int = 40,
    strategy: str = "margin",
    diversity: bool = False,
    seed: int = 13,
) -> NextSheet:
    """The next coding sheet: `select_next` over the ``passages`` (from `read_passages`) that are
    not coded yet, written to ``out`` (.csv or .xlsx) when given.

    ``coded`` and ``blank`` are the texts of earlier files (`coded_and_blank_texts` of the
    ``skip`` files): coded passages are never offered again, and passages an earlier sheet holds
    without a code are left out too (they are still on that sheet) unless ``offer_blank``.
    Raises `NothingToOffer` when no passage is left, before anything is scored or written."""
    total = len(passages)
    passages = drop_seen(passages, coded or set())
    n_coded = total - len(passages)
    n_blank = len(passages) - len(drop_seen(passages, blank or set()))
    if not offer_blank:  # offered on an earlier sheet and not coded there yet: still on that sheet
        passages = drop_seen(passages, blank or set())
    sheet = NextSheet(passages.iloc[:0], len(passages), n_coded, n_blank, offer_blank)
    if passages.empty:
        raise NothingToOffer(
            "no passages to choose from"
            + (f" ({sheet.left_out()})" if total else " (no readable transcript with such turns)")
        )
    sheet.chosen = select_next(passages, labeler_or_model, n=n, strategy=strategy, diversity=diversity, seed=seed)
    if out is not None:
        sheet.path = write_sheet(coding_sheet(sheet.chosen), out)
    return sheet
