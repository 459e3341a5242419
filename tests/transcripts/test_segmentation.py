"""Segmentation: turns, interviewer detection, long-turn splitting and the offset invariants."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pysbd
import pytest

from supportlens.cli.common import in_cli_terms
from supportlens.transcripts import segmentation
from supportlens.transcripts.read import Cue, Transcript, read_transcript
from supportlens.transcripts.segmentation import (
    Passage,
    SpeakerRules,
    SpeakerRulesError,
    estimate_tokens,
    merge_turns,
    segment,
    speaker_roles,
    split_long,
)

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "transcripts"

INTERVIEWERS = {
    "smp01_child_welfare.txt": "Interviewer",
    "smp02_home_visiting.vtt": "Priya Raman",  # no role in the name: found by the question ratio
    "smp03_schools_teams.vtt": "Aisha Mensah",
    "smp04_behavioural_health.srt": "INTERVIEWER",
    "smp05_public_health.docx": "Interviewer",
    "smp06_juvenile_justice.md": "Interviewer",
}


def assert_invariants(t: Transcript, passages: list[Passage]) -> None:
    assert [p.index for p in passages] == list(range(len(passages)))
    for p in passages:
        assert p.text and p.text == p.text.strip()
        assert t.text[p.start : p.end] == p.text
        assert p.source == t.source
    for a, b in zip(passages, passages[1:]):
        assert a.end <= b.start


def transcript(cues: list[tuple[str | None, str]], sep: str = "\n\n") -> Transcript:
    """A transcript whose text is the cue texts joined by `sep` (speakers kept only on the cues)."""
    text, out = "", []
    for speaker, body in cues:
        if text:
            text += sep
        out.append(Cue(speaker, body, len(text), len(text) + len(body)))
        text += body
    return Transcript("mem.txt", text, out, "txt")


# --- the six samples --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INTERVIEWERS))
def test_samples_segment_with_interviewer_found(name):
    t = read_transcript(SAMPLES / name)
    passages = segment(t)
    assert_invariants(t, passages)
    roles = {p.speaker: p.role for p in passages}
    assert roles[INTERVIEWERS[name]] == "interviewer"
    assert sorted(roles.values()) == ["interviewer", "participant"]
    assert sum(p.role == "participant" for p in passages) >= 15
    # each sample alternates speakers, so turns alternate too
    assert all(a.speaker != b.speaker for a, b in zip(passages, passages[1:]))


@pytest.mark.parametrize("name", ["smp01_child_welfare.txt", "smp06_juvenile_justice.md"])
def test_participant_passages_match_gold_offsets(name):
    path = SAMPLES / name
    gold_file = SAMPLES / "gold" / f"{path.stem}.jsonl"
    gold = [json.loads(line) for line in gold_file.read_text(encoding="utf-8").splitlines()]
    passages = [p for p in segment(read_transcript(path), max_tokens=256) if p.role == "participant"]
    assert [(p.start, p.end) for p in passages] == [(g["start"], g["end"]) for g in gold]
    assert [p.text for p in passages] == [g["text"] for g in gold]


def test_caption_passages_carry_times_of_their_cues():
    t = read_transcript(SAMPLES / "smp02_home_visiting.vtt")
    first = segment(t)[0]
    assert first.speaker == "Priya Raman"
    assert (first.start_time, first.end_time) == (5.056, 14.692)  # first cue's start, second cue's end


# --- merging ----------------------------------------------------------------------------------


def test_consecutive_cues_of_a_speaker_merge():
    t = transcript([("I", "Why?"), ("Dana", "One."), ("Dana", "Two."), ("I", "And?"), ("Dana", "Three.")])
    turns = merge_turns(t)
    assert [(c.speaker, c.text) for c in turns] == [
        ("I", "Why?"),
        ("Dana", "One.\n\nTwo."),
        ("I", "And?"),
        ("Dana", "Three."),
    ]
    assert all(t.text[c.start : c.end] == c.text for c in turns)


def test_merged_turn_keeps_first_start_and_last_end_time():
    t = transcript([("A", "One."), ("A", "Two.")], sep=" ")
    t.cues[0].start_time, t.cues[0].end_time = 1.0, 2.0
    t.cues[1].start_time, t.cues[1].end_time = 2.5, 4.0
    (turn,) = merge_turns(t)
    assert (turn.text, turn.start_time, turn.end_time) == ("One. Two.", 1.0, 4.0)


def test_unlabelled_cue_continues_the_previous_speaker():
    t = transcript([("Host", "Why?"), ("Guest", "Because."), (None, "And more.")], sep=" ")
    turns = merge_turns(t)
    assert [(c.speaker, c.text) for c in turns] == [("Host", "Why?"), ("Guest", "Because. And more.")]


def test_paragraphs_without_speakers_stay_apart():
    t = transcript([(None, "First paragraph."), (None, "Second paragraph.")])
    passages = segment(t)
    assert [(p.text, p.role, p.speaker) for p in passages] == [
        ("First paragraph.", "unknown", None),
        ("Second paragraph.", "unknown", None),
    ]
    joined = transcript([(None, "Caption one"), (None, "continues.")], sep=" ")
    assert [p.text for p in segment(joined)] == ["Caption one continues."]


def test_table_rows_with_ids_stay_passages_of_their_own_with_the_given_role():
    t = transcript([("Dana", "We asked the county."), ("Dana", "Then we planned it together.")])
    t.cues[0].row_id, t.cues[1].row_id = "r1", "r2"
    t.cues[0].role = t.cues[1].role = "Moderator"
    passages = segment(t)
    assert [(p.row_id, p.role) for p in passages] == [("r1", "interviewer"), ("r2", "interviewer")]
    t.cues[1].role = "document"  # any role that names no interviewer is a participant's
    assert [p.role for p in segment(t)] == ["interviewer", "participant"]
    assert_invariants(t, passages)


def test_table_rows_are_one_passage_each_even_without_ids():
    rows = transcript(
        [("Dana", "We asked the county."), ("Dana", "Then we planned it together."), (None, "And we kept meeting.")]
    )
    rows.format = "csv"
    passages = segment(rows)
    assert [(p.speaker, p.text) for p in passages] == [
        ("Dana", "We asked the county."),
        ("Dana", "Then we planned it together."),
        ("Dana", "And we kept meeting."),
    ]  # blank cell: same speaker
    assert_invariants(rows, passages)
    rows.format = "txt"  # the same cues as paragraphs of a text file form one turn
    assert len(segment(rows)) == 1


def test_text_between_cues_prevents_merging():
    text = "Dana: One.\nNOTE\nDana: Two."
    t = Transcript("m.txt", text, [Cue("Dana", "One.", 6, 10), Cue("Dana", "Two.", 22, 26)], "txt")
    assert len(merge_turns(t)) == 2


# --- splitting --------------------------------------------------------------------------------

SENTENCES = [f"Sentence number {i} talks about coaching the county team on referrals." for i in range(12)]


def test_short_turn_is_one_stripped_span():
    assert split_long("  Hello there.  ", 100, estimate_tokens, 50) == [(102, 114)]
    assert split_long("   ", 0, estimate_tokens, 50) == []


@pytest.mark.parametrize("limit", [15, 30, 60])
def test_long_turn_splits_at_sentence_boundaries_under_the_limit(limit):
    text = " ".join(SENTENCES)
    spans = split_long(text, 1000, estimate_tokens, limit)
    pieces = [text[s - 1000 : e - 1000] for s, e in spans]
    assert len(pieces) > 1
    assert all(estimate_tokens(p) <= limit for p in pieces)
    assert all(p.endswith(".") and p.startswith("Sentence") for p in pieces)  # whole sentences only
    assert " ".join(pieces) == text  # in order, nothing lost, nothing repeated
    # greedy: a piece plus the next sentence would have been over the limit
    for (s, e), (s2, _) in zip(spans, spans[1:]):
        next_sentence = text[s2 - 1000 :].split(". ")[0] + "."
        assert estimate_tokens(text[s - 1000 : e - 1000] + " " + next_sentence) > limit


def test_one_long_sentence_is_cut_at_word_boundaries():
    words = [f"word{i}" for i in range(100)]
    text = "Short one. " + " ".join(words) + ". Tail."
    spans = split_long(text, 0, lambda s: len(s.split()), 30)
    pieces = [text[s:e] for s, e in spans]
    assert all(len(p.split()) <= 30 for p in pieces)
    assert " ".join(pieces) == text
    assert pieces[0] == "Short one."  # the long sentence starts its own piece...
    assert pieces[-1].startswith("word") and pieces[-1].endswith(". Tail.")  # ...and its tail packs on
    assert all(not text[e : e + 1].strip() for _, e in spans)  # cuts fall at whitespace


def test_custom_token_counter_is_used():
    text = "Aaaa. Bbbb. Cccc."
    assert [text[s:e] for s, e in split_long(text, 0, len, 11)] == ["Aaaa. Bbbb.", "Cccc."]


def test_invalid_limit():
    with pytest.raises(ValueError, match="max_tokens"):
        split_long("Hi.", 0, estimate_tokens, 0)


def test_segment_splits_long_turns_and_keeps_roles():
    t = transcript([("Interviewer", "Tell me more?"), ("Dana", " ".join(SENTENCES))])
    passages = segment(t, max_tokens=40)
    assert_invariants(t, passages)
    assert passages[0].role == "interviewer"
    dana = passages[1:]
    assert len(dana) > 2 and all(p.role == "participant" and p.speaker == "Dana" for p in dana)
    assert all(estimate_tokens(p.text) <= 40 for p in passages)


def test_sample_turns_split_under_a_small_limit():
    t = read_transcript(SAMPLES / "smp04_behavioural_health.srt")
    passages = segment(t, max_tokens=40)
    assert_invariants(t, passages)
    assert len(passages) > len(segment(t))
    assert all(estimate_tokens(p.text) <= 40 for p in passages)


# --- long input: time and memory grow linearly ------------------------------------------------


@pytest.fixture
def quick_splitter(monkeypatch) -> list[int]:
    """pysbd's sentence finder replaced by a split after . ! ? (fast at any length), which fails
    when handed more than 10,000 characters at once; returns the lengths it was handed."""
    handed: list[int] = []

    def processor(self, text: str):
        handed.append(len(text))
        assert len(text) <= 10_000, f"the sentence splitter was handed {len(text)} characters at once"
        return SimpleNamespace(process=lambda: [s for s in re.split(r"(?<=[.!?])\s+", text) if s])

    monkeypatch.setattr(pysbd.Segmenter, "processor", processor)
    return handed


def test_a_long_paragraph_reaches_the_sentence_splitter_in_bounded_windows(quick_splitter):
    text = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(5000))  # 320 KB, one paragraph
    t = transcript([("Dana", text)])
    passages = segment(t, max_tokens=60)
    assert_invariants(t, passages)
    assert all(estimate_tokens(p.text) <= 60 and p.text.endswith("referrals.") for p in passages)
    assert " ".join(p.text for p in passages) == text
    for a, b in zip(passages, passages[1:]):  # packed greedily across the windows' cuts
        assert estimate_tokens(a.text + " " + b.text.split(". ")[0]) > 60
    assert max(quick_splitter) <= segmentation.SENTENCE_WINDOW
    assert sum(quick_splitter) < 1.5 * len(text)  # each character is looked at about once


def test_windows_find_the_sentences_pysbd_finds_in_the_whole_text(monkeypatch):
    text = " ".join(" ".join(read_transcript(p).text.split()) for p in sorted(SAMPLES.glob("*.*")))[:15_000]
    spans = pysbd.Segmenter(language="en", clean=False, char_span=True).segment(text)
    whole = sorted({0} | {s.start for s in spans if 0 < s.start and text[s.start : s.end] == s.sent})
    assert segmentation._sentence_starts(text) == whole
    monkeypatch.setattr(segmentation, "SENTENCE_WINDOW", 1500)
    monkeypatch.setattr(segmentation, "_WINDOW_MARGIN", 300)
    assert segmentation._sentence_starts(text) == whole


def test_a_long_text_without_punctuation_is_cut_without_counting_it_all_again_and_again(quick_splitter):
    text = " ".join(f"word{i}" for i in range(40_000))  # 330 KB: a caption export without punctuation
    counted: list[int] = []

    def count(piece: str) -> int:
        counted.append(len(piece))
        return len(piece.split())

    pieces = [text[s:e] for s, e in split_long(text, 0, count, 100)]
    assert [len(p.split()) for p in pieces] == [100] * 400
    assert " ".join(pieces) == text
    assert max(counted) < 10_000  # never the whole text, which a tokenizer would hold in memory at once
    assert sum(counted) < 20 * len(text)  # not a search over all the rest of the text for every piece


class _Tallied(str):
    """A text that tallies the characters its slices copy."""

    copied = 0

    def __getitem__(self, key):
        piece = str.__getitem__(self, key)
        self.copied += len(piece)
        return piece


def test_merging_thousands_of_cues_copies_the_turn_once():
    t = transcript([(None, f"caption line {i} of the lecture") for i in range(5000)], sep=" ")
    t.text = _Tallied(t.text)  # 150 KB
    turns = merge_turns(t)
    assert len(turns) == 1 and turns[0].text == t.text
    assert t.text.copied < 3 * len(t.text)  # not the turn so far at each of 5,000 cues


# --- roles ------------------------------------------------------------------------------------


def interview(asker: str, answerer: str, turns: int = 4) -> list[Cue]:
    cues = []
    for i in range(turns):
        cues.append(Cue(asker, f"What happened next, part {i}?", 0, 0))
        cues.append(Cue(answerer, f"We kept working on it, part {i}.", 0, 0))
    return cues


def test_interviewer_by_name():
    cues = [Cue("Q", "Why?", 0, 0), Cue("A", "Because.", 0, 0)]
    assert speaker_roles(cues) == {"Q": "interviewer", "A": "participant"}
    assert SpeakerRules().names_interviewer("Priya Raman (Interviewer)")
    assert SpeakerRules().names_interviewer("Lead Interviewer")
    assert SpeakerRules().names_interviewer("FACILITATOR")
    assert not SpeakerRules().names_interviewer("Interviewee")
    # --interviewer "Jane Doe" names the Zoom/Teams display name with pronouns or an affiliation
    jane = SpeakerRules(interviewer_names=["Jane Doe"])
    assert jane.names_interviewer("Jane Doe (she/her)") and jane.names_interviewer("jane  doe (Acme Institute)")
    assert not jane.names_interviewer("Jane Doering (she/her)")


def test_with_interviewers_adds_names_and_patterns_to_the_usual_ones():
    """What --interviewer gives (predict, next, import): the name as a name and as a pattern."""
    rules = SpeakerRules.with_interviewers(["Jane Doe", r"Dr\.? Smith"])
    assert rules.names_interviewer("jane doe (she/her)")  # as a name
    assert rules.names_interviewer("Dr Smith") and rules.names_interviewer("Dr. Smith")  # as a pattern
    assert rules.names_interviewer("Moderator")  # the usual names stay
    assert SpeakerRules.with_interviewers(None) == SpeakerRules() == SpeakerRules.with_interviewers([])
    with pytest.raises(SpeakerRulesError, match=r"interviewer pattern 'Jane \(' is not a valid regular expression"):
        SpeakerRules.with_interviewers(["Jane ("])


def test_interviewer_inferred_from_questions():
    assert speaker_roles(interview("Sam", "Alex")) == {"Sam": "interviewer", "Alex": "participant"}
    assert speaker_roles(interview("Alex", "Sam")) == {"Alex": "interviewer", "Sam": "participant"}


def test_inference_can_be_turned_off_and_needs_enough_turns():
    assert set(speaker_roles(interview("Sam", "Alex"), SpeakerRules(infer=False)).values()) == {"participant"}
    assert set(speaker_roles(interview("Sam", "Alex", turns=2)).values()) == {"participant"}
    tie = [Cue(s, "Why?", 0, 0) for _ in range(3) for s in ("A", "B")]
    assert set(speaker_roles(tie).values()) == {"participant"}


def test_segment_notes_how_the_interviewer_was_found():
    """A guessed interviewer, and a missing one, are said in the transcript's notes with what to do;
    an interviewer known by name needs no note."""

    def notes_of(cues):
        t = transcript([(c.speaker, c.text) for c in cues])
        segment(t)
        return t.notes

    guessed = notes_of(interview("Sam", "Alex"))
    assert guessed == [
        "interviewer guessed from questions: Sam (ends 4 of 4 turns with '?'); "
        "if that is wrong, pass `rules=SpeakerRules.with_interviewers(['NAME'])`"
    ]
    # the command line names its option instead
    assert [in_cli_terms(n) for n in guessed] == [
        "interviewer guessed from questions: Sam (ends 4 of 4 turns "
        "with '?'); if that is wrong, pass --interviewer NAME"
    ]
    missing = notes_of(interview("Sam", "Alex", turns=2))
    assert [in_cli_terms(n) for n in missing] == [
        "no interviewer found among 2 speakers, by name or by questions (at least 3 turns "
        "each): all are scored as participants; pass --interviewer NAME"
    ]
    assert notes_of(interview("Interviewer", "Alex")) == []
    assert notes_of([Cue("Alex", "Just me.", 0, 0)]) == []


def test_custom_interviewer_pattern():
    cues = interview("Alex", "Host Kim")  # Alex asks, but the pattern names the host
    rules = SpeakerRules(interviewer_patterns=[r"host\b.*"])
    assert speaker_roles(cues, rules) == {"Alex": "participant", "Host Kim": "interviewer"}
    assert speaker_roles(cues, SpeakerRules(interviewer_patterns=["host"]))["Host Kim"] == "participant"  # whole name


def test_invalid_pattern_is_reported():
    with pytest.raises(SpeakerRulesError, match=r"interviewer pattern '\(unclosed' is not a valid regular expression"):
        SpeakerRules(interviewer_patterns=["(unclosed"])
