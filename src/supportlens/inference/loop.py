"""THE read -> segment -> score loop: every path that labels transcripts runs it.

`predict_files` (tables), `predict_to_qdpx` (a REFI-QDA project), Spark's workers
(`spark.score_transcripts`), `gold_comparison`, and ``supportlens next``'s candidate passages
(`assist.active.read_passages`, which reads and segments but does not score) all go through here,
so they agree on a transcript's passages, on which speakers are kept, and on which problems fail
one transcript rather than the run.

One error policy for all of them. Reading or segmenting a transcript fails that transcript, and
the run goes on, when it raises
- `ReadError`: what the readers refuse (an empty file, an unknown encoding, a missing column),
  already said in one line naming the file;
- `OSError`: the file vanished or cannot be opened;
- `ValueError`: a reader's bug or an odd file, said with its type so that it can be reported;
and a transcript with no passages of the chosen speaker fails too (`nothing_to_score`), so that no
interview is left out unsaid. Anything else (KeyboardInterrupt, MemoryError, an error of the
model while scoring) stops the run: it is not about one file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from supportlens.transcripts.read import SUPPORTED_SUFFIXES, ReadError, Transcript, read_transcript
from supportlens.transcripts.segmentation import Passage, SpeakerRules, segment

SPEAKER_CHOICES = ("participant", "interviewer", "all")
# passages per model call: a transcript of more (a 20 MB file has some 20,000) is scored in parts, its
# progress shown after each; an interview's passages, and the few transcripts pending, take one call
SCORE_CHUNK = 1024
# transcripts are scored together until they hold this many passages: one model call for many short
# interviews, while only a few transcripts are held in memory at a time
CHUNK_PASSAGES = 256


class Scorer(Protocol):
    """What the loop needs of a `inference.labeler.Labeler`."""

    max_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def score(self, texts: list[str]) -> pd.DataFrame: ...


def skipped_note(path: Path) -> tuple[str, str]:
    """The (source, note) for a file in a folder that is not a transcript: every output format
    says the same of it, so that no file is passed over unsaid."""
    return str(path), (
        f"not a transcript ({path.suffix.lower() or 'no suffix'}; reads {', '.join(SUPPORTED_SUFFIXES)}); skipped"
    )


@dataclass
class FileFailure:
    """A transcript (or an input naming none) that could not be labelled, and why, in one line."""

    source: str
    reason: str


@dataclass(frozen=True)
class TranscriptInput:
    """One transcript to label: how outputs and messages name it, how to read it, and the
    caller's own handle for it (returned with the result; a project source's guid, say)."""

    source: str
    read: Callable[[], Transcript]
    key: Any = None


@dataclass
class Segmented:
    """A transcript read and segmented into its passages of the chosen speaker."""

    source: str
    key: Any
    transcript: Transcript
    passages: list[Passage]


@dataclass
class Scored(Segmented):
    """A segmented transcript with its `scores`: `supportlens.schema.score_columns`, one row per
    passage, in order."""

    scores: pd.DataFrame


def file_input(path: str | Path, text_column: str = "text", key: Any = None) -> TranscriptInput:
    """A transcript file to label, named by its path (`text_column`: of a csv/xlsx table)."""
    return TranscriptInput(str(path), partial(read_transcript, Path(path), text_column=text_column), key)


def file_inputs(paths: Iterable[str | Path], text_column: str = "text") -> Iterator[TranscriptInput]:
    """`file_input` of each path, as the loop asks for them."""
    return (file_input(path, text_column) for path in paths)


def keeps(passage: Passage, speaker: str) -> bool:
    """Whether a passage is scored for the `speaker` choice: ``participant`` also keeps the turns
    of a speaker whose role is unknown (only the interviewer's are left out)."""
    if speaker == "all":
        return True
    if speaker == "interviewer":
        return passage.role == "interviewer"
    return passage.role in ("participant", "unknown")


def passages_of(transcript: Transcript, labeler: Scorer, speaker: str, rules: SpeakerRules) -> list[Passage]:
    """The transcript's passages of `speaker`, no longer than the model reads."""
    passages = segment(transcript, rules, count_tokens=labeler.count_tokens, max_tokens=labeler.max_tokens)
    return [p for p in passages if keeps(p, speaker)]


def nothing_to_score(source: str, transcript: Transcript, labeler: Scorer, speaker: str, rules: SpeakerRules) -> str:
    """The one-line failure for a transcript with no passages of `speaker`: with what the
    transcript does hold (only interviewer turns, which the default leaves out) and its notes,
    which say how the roles were found."""
    message = f"{source}: no {speaker + ' ' if speaker != 'all' else ''}passages to score"
    if speaker == "participant":
        asked = len(passages_of(transcript, labeler, "interviewer", rules))
        if asked:
            message += (
                f": all {asked} passage(s) are interviewer turns, which `speaker='all'` labels too "
                "(`speaker='interviewer'` labels them alone)"
            )
    return message + "".join(f" ({note})" for note in transcript.notes)


def segment_transcripts(
    inputs: Iterable[TranscriptInput],
    labeler: Scorer,
    speaker: str = "participant",
    rules: SpeakerRules | None = None,
    *,
    keep_empty: bool = False,
) -> Iterator[Segmented | FileFailure]:
    """Read and segment each input in turn: its `Segmented` passages of `speaker`, or its
    `FileFailure` under the module's error policy. `keep_empty`: a transcript with no passages of
    `speaker` is yielded as it is, not failed (for callers that choose among passages)."""
    rules = rules or SpeakerRules()
    for item in inputs:
        source = item.source
        try:
            transcript = item.read()
            passages = passages_of(transcript, labeler, speaker, rules)
            if not passages and not keep_empty:
                raise ReadError(nothing_to_score(source, transcript, labeler, speaker, rules))
        except ReadError as exc:
            yield FileFailure(source, str(exc))
            continue
        except (OSError, ValueError) as exc:  # a reader bug or odd file must not sink the run
            yield FileFailure(source, f"{source}: {type(exc).__name__}: {exc}")
            continue
        yield Segmented(source, item.key, transcript, passages)


def label_transcripts(
    inputs: Iterable[TranscriptInput],
    labeler: Scorer,
    speaker: str = "participant",
    rules: SpeakerRules | None = None,
    *,
    chunk_passages: int = CHUNK_PASSAGES,
    on_scoring: Callable[[int], None] | None = None,
    keep_empty: bool = False,
) -> Iterator[list[Scored] | FileFailure]:
    """Read, segment and score each input: yields each `FileFailure` as it happens, and the
    transcripts read since, `Scored`, as one list once they hold `chunk_passages` passages (and at
    the end). Inputs are read as the results are consumed, so memory holds a few transcripts.
    ``on_scoring(n)``: after each `SCORE_CHUNK` passages of a list but its last are scored.
    `keep_empty` as for `segment_transcripts`."""
    pending: list[Segmented] = []
    pending_n = 0
    for item in segment_transcripts(inputs, labeler, speaker, rules, keep_empty=keep_empty):
        if isinstance(item, FileFailure):
            yield item
            continue
        pending.append(item)
        pending_n += len(item.passages)
        if pending_n >= chunk_passages:
            yield _scored(pending, labeler, on_scoring)
            pending, pending_n = [], 0
    if pending:
        yield _scored(pending, labeler, on_scoring)


def _scored(transcripts: list[Segmented], labeler: Scorer, on_scoring: Callable[[int], None] | None) -> list[Scored]:
    scores = score_in_chunks(labeler, [p.text for t in transcripts for p in t.passages], on_scoring)
    scored, offset = [], 0
    for t in transcripts:
        block = scores.iloc[offset : offset + len(t.passages)].reset_index(drop=True)
        scored.append(Scored(t.source, t.key, t.transcript, t.passages, block))
        offset += len(t.passages)
    return scored


def score_in_chunks(labeler: Scorer, texts: list[str], on_chunk: Callable[[int], None] | None = None) -> pd.DataFrame:
    """``labeler.score(texts)``, `SCORE_CHUNK` texts per model call, with ``on_chunk(texts scored
    so far)`` after each call but the last: a transcript of thousands of passages (a 20 MB file)
    shows its progress instead of sitting at 0 passages until the whole of it is scored."""
    size = SCORE_CHUNK
    if len(texts) <= size:
        return labeler.score(texts)
    frames = []
    for begin in range(0, len(texts), size):
        frames.append(labeler.score(texts[begin : begin + size]))
        if on_chunk and begin + size < len(texts):
            on_chunk(begin + size)
    return pd.concat(frames, ignore_index=True)
