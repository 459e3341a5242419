"""The one read -> segment -> score loop: what it yields, when it scores, and its one error policy."""

import pytest

from conftest import ROOT
from supportlens.inference.loop import (
    FileFailure,
    Segmented,
    TranscriptInput,
    file_input,
    file_inputs,
    label_transcripts,
    segment_transcripts,
)
from supportlens.transcripts.read import ReadError, read_transcript

SAMPLES = ROOT / "data" / "transcripts"
ASKS = "Interviewer: How did the county start?\n\nInterviewer: And then?\n"


def _raises(exc: BaseException):
    def read():
        raise exc

    return read


def test_each_kind_of_reading_problem_fails_only_its_transcript(labeler, tmp_path):
    (tmp_path / "asks.txt").write_text(ASKS, encoding="utf-8")
    good = SAMPLES / "smp01_child_welfare.txt"
    inputs = [
        TranscriptInput("refused", _raises(ReadError("refused", "empty file"))),
        TranscriptInput("gone", _raises(FileNotFoundError(2, "No such file"))),
        TranscriptInput("odd", _raises(ValueError("reader bug"))),
        file_input(tmp_path / "asks.txt"),
        file_input(good),
    ]
    results = list(segment_transcripts(inputs, labeler))
    failures = [r for r in results if isinstance(r, FileFailure)]
    assert [f.reason for f in failures[:3]] == [
        "refused: empty file",
        "gone: FileNotFoundError: [Errno 2] No such file",
        "odd: ValueError: reader bug",
    ]
    assert failures[3].reason.startswith(f"{tmp_path / 'asks.txt'}: no participant passages to score")
    assert [r.source for r in results if isinstance(r, Segmented)] == [str(good)]


def test_other_errors_stop_the_run(labeler):
    """Not about one file (an interrupt, a bug of ours): never turned into a failure line."""
    inputs = [TranscriptInput("a", _raises(KeyboardInterrupt())), file_input(SAMPLES / "smp01_child_welfare.txt")]
    with pytest.raises(KeyboardInterrupt):
        list(segment_transcripts(inputs, labeler))
    with pytest.raises(RuntimeError):
        list(segment_transcripts([TranscriptInput("b", _raises(RuntimeError("bug")))], labeler))


def test_keep_empty_yields_a_transcript_without_passages_of_the_speaker(labeler, tmp_path):
    (tmp_path / "asks.txt").write_text(ASKS, encoding="utf-8")
    [kept] = segment_transcripts(file_inputs([tmp_path / "asks.txt"]), labeler, keep_empty=True)
    assert isinstance(kept, Segmented) and kept.passages == []
    [every] = segment_transcripts(file_inputs([tmp_path / "asks.txt"]), labeler, speaker="all")
    assert len(every.passages) == 2


def test_transcripts_are_scored_together_up_to_chunk_passages(labeler):
    paths = sorted(SAMPLES.glob("smp0*"))
    calls: list[int] = []
    original = labeler.score
    labeler.score = lambda texts: calls.append(len(texts)) or original(texts)
    whole = [r for r in label_transcripts(file_inputs(paths), labeler, chunk_passages=10**6)]
    assert len(whole) == 1 and len(whole[0]) == len(paths) and len(calls) == 1
    calls.clear()
    one_each = list(label_transcripts(file_inputs(paths), labeler, chunk_passages=1))
    assert [len(chunk) for chunk in one_each] == [1] * len(paths) and len(calls) == len(paths)
    for together, alone in zip(whole[0], [chunk[0] for chunk in one_each]):
        assert together.source == alone.source and len(together.scores) == len(together.passages)
        assert together.scores.equals(alone.scores)  # where a transcript is scored changes nothing


def test_a_failure_is_yielded_before_the_transcripts_read_earlier_are_scored(labeler):
    inputs = [file_input(SAMPLES / "smp01_child_welfare.txt"), TranscriptInput("bad", _raises(ValueError("x")))]
    results = list(label_transcripts(inputs, labeler, chunk_passages=10**6))
    assert isinstance(results[0], FileFailure) and [t.source for t in results[1]] == [str(inputs[0].source)]


def test_key_travels_with_the_transcript(labeler):
    path = SAMPLES / "smp06_juvenile_justice.md"
    [result] = label_transcripts([TranscriptInput("named", lambda: read_transcript(path), key="guid-1")], labeler)
    assert result[0].key == "guid-1" and result[0].source == "named"
