"""Turn a `Transcript` into `Passage`s: whole speaker turns, split only when too long for the model.

The pipeline is three pure steps, each usable on its own:

1. `merge_turns` joins consecutive cues of the same speaker into one turn (caption files cut a
   turn into one-sentence cues; a paragraph break inside a turn does not end it).
2. `speaker_roles` marks which speaker is the interviewer: by name (`SpeakerRules`), or else by
   who mostly asks questions. A role given with the text (a table's ``speaker_role`` column) wins.
3. `split_long` cuts a turn that is over the token limit at sentence boundaries (pysbd), packing
   sentences greedily, and a single over-long sentence at word boundaries.

Every passage keeps character offsets into ``transcript.text``:
``transcript.text[p.start:p.end] == p.text``, passages are in order and never overlap.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from supportlens.transcripts.read import Cue, Transcript, strip_span

ROLES = ("interviewer", "participant", "unknown")


class SpeakerRulesError(ValueError):
    """An interviewer pattern that is not a valid regular expression."""


@dataclass
class SpeakerRules:
    """How to tell the interviewer from participants."""

    # speaker names (case-insensitive) that mark the interviewer; "Name (Interviewer)" and any name
    # containing "interviewer" match too
    interviewer_names: list[str] = field(
        default_factory=lambda: ["interviewer", "int", "i", "q", "moderator", "facilitator", "researcher"]
    )
    # extra regular expressions, case-insensitive, matched against the whole speaker name
    interviewer_patterns: list[str] = field(default_factory=list)
    # with no name match and two or more speakers: the one whose turns most often end in "?"
    infer: bool = True
    min_turns_to_infer: int = 3  # a speaker with fewer turns gives too noisy a question ratio

    def __post_init__(self) -> None:
        for pattern in self.interviewer_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SpeakerRulesError(
                    f"interviewer pattern {pattern!r} is not a valid regular expression ({exc}); "
                    "escape characters such as ( ) [ ] * + ? with a backslash"
                ) from None

    @classmethod
    def with_interviewers(cls, names: Iterable[str] | None = None) -> SpeakerRules:
        """The usual rules, plus each of ``names`` marking the interviewer both as a name
        (case-insensitive) and as a regular expression: a user names the interviewer once and need
        not know which of the two their name is (``supportlens predict --interviewer``, `next`, `import`).
        Raises SpeakerRulesError for a name that is not a valid regular expression."""
        names = list(names or [])
        rules = cls(interviewer_patterns=names)
        if names:
            rules.interviewer_names = list(rules.interviewer_names) + [n.lower() for n in names]
        return rules

    def names_interviewer(self, speaker: str) -> bool:
        """Whether the name alone marks this speaker as the interviewer."""
        names = {n.strip().casefold() for n in self.interviewer_names}
        name = " ".join(speaker.split()).casefold()
        if name in names or "interviewer" in name:
            return True
        # "Jane Doe (she/her)" or "Jane Doe (Acme)" is Jane Doe: with_interviewers(["Jane Doe"]) names her
        if " ".join(re.sub(r"\([^)]*\)", " ", name).split()) in names:
            return True
        if any(part.strip() in names for part in re.findall(r"\(([^)]*)\)", name)):
            return True
        return any(re.fullmatch(p, speaker.strip(), re.IGNORECASE) for p in self.interviewer_patterns)


@dataclass
class Passage:
    source: str
    index: int  # 0-based within the transcript, over all passages (interviewer ones included)
    speaker: str | None
    role: str  # interviewer | participant | unknown (no speaker known)
    text: str  # == transcript.text[start:end]
    start: int
    end: int
    start_time: float | None = None
    end_time: float | None = None
    row_id: str | None = None  # the id of the table row it comes from (csv/xlsx with an id column)


def estimate_tokens(text: str) -> int:
    """Tokenizer-free estimate: 1.3 subword tokens per whitespace word, rounded up."""
    return math.ceil(len(text.split()) * 1.3)


# ---------------------------------------------------------------------------------------------


TABLE_FORMATS = ("csv", "xlsx")  # one passage per row, as the user laid them out


def merge_turns(transcript: Transcript) -> list[Cue]:
    """Merge consecutive cues of one speaker into turns.

    Cues are merged when only whitespace lies between them. A cue with no speaker in a transcript
    that has speakers continues the speaker before it (captions often name the speaker only when
    it changes). In a transcript without any speakers, paragraphs stay apart: cues merge only when
    no blank line separates them (caption fragments of one paragraph). A row of a table
    (csv/xlsx) is never merged: the table says one passage per row, so each row keeps its own
    label (and its id and given role, if it has them); a blank speaker cell continues the speaker
    above, as elsewhere. Cues with an id or different given roles stay apart in any format.
    """
    text = transcript.text
    table = transcript.format in TABLE_FORMATS
    turns: list[Cue] = []
    extended: set[int] = set()  # turns that cues were merged into
    current = None  # the speaker in effect
    for cue in transcript.cues:
        speaker = cue.speaker if cue.speaker is not None else current
        current = speaker
        if turns and not table:
            last = turns[-1]
            gap = text[last.end : cue.start]
            if (
                last.speaker == speaker
                and cue.start >= last.end
                and not gap.strip()
                and (speaker is not None or "\n\n" not in gap)
                and last.row_id is None
                and cue.row_id is None
                and last.role == cue.role
            ):
                # extended in place, its text cut once below: copying the turn so far at every cue
                # is quadratic in a long turn (a lecture's thousands of caption cues)
                last.end = cue.end
                last.end_time = cue.end_time if cue.end_time is not None else last.end_time
                extended.add(len(turns) - 1)
                continue
        turns.append(
            Cue(speaker, cue.text, cue.start, cue.end, cue.start_time, cue.end_time, row_id=cue.row_id, role=cue.role)
        )
    for i in extended:
        turns[i].text = text[turns[i].start : turns[i].end]
    return turns


def speaker_roles(cues: list[Cue], rules: SpeakerRules | None = None) -> dict[str, str]:
    """Map each speaker to "interviewer" or "participant".

    Names matching `rules` are interviewers. If none match, `rules.infer` is on and there are two
    or more speakers, the speaker whose turns most often end with a question mark is the
    interviewer (at least `rules.min_turns_to_infer` turns, a ratio above zero and a unique best).
    """
    rules = rules or SpeakerRules()
    speakers = list(dict.fromkeys(c.speaker for c in cues if c.speaker is not None))
    named = {s for s in speakers if rules.names_interviewer(s)}
    if not named and rules.infer and len(speakers) >= 2:
        inferred = _most_questions(cues, rules.min_turns_to_infer)
        named = {inferred} if inferred else set()
    return {s: "interviewer" if s in named else "participant" for s in speakers}


def roles_note(cues: list[Cue], rules: SpeakerRules, roles: dict[str, str]) -> str | None:
    """What a researcher should check about the roles: who was guessed to be the interviewer
    from questions, and on what count, or that no interviewer was found among several speakers.
    Names that mark the interviewer need no note."""
    if len(roles) < 2 or any(rules.names_interviewer(s) for s in roles):
        return None
    guessed = [s for s, role in roles.items() if role == "interviewer"]
    if guessed:
        counts = _question_counts(cues)
        asked, turns = counts[guessed[0]]
        return (
            f"interviewer guessed from questions: {guessed[0]} (ends {asked} of {turns} turns with '?'); "
            "if that is wrong, pass `rules=SpeakerRules.with_interviewers(['NAME'])`"
        )
    return (
        f"no interviewer found among {len(roles)} speakers, by name or by questions (at least "
        f"{rules.min_turns_to_infer} turns each): all are scored as participants; "
        "pass `rules=SpeakerRules.with_interviewers(['NAME'])`"
    )


def _most_questions(cues: list[Cue], min_turns: int) -> str | None:
    counts = _question_counts(cues)
    ratios = {s: asked / turns for s, (asked, turns) in counts.items() if turns >= min_turns}
    if not ratios:
        return None
    best = max(ratios.values())
    leaders = [s for s, r in ratios.items() if r == best]
    return leaders[0] if best > 0 and len(leaders) == 1 else None


def _question_counts(cues: list[Cue]) -> dict[str, tuple[int, int]]:
    """Per speaker: (turns ending in "?", turns)."""
    turns: dict[str, int] = {}
    questions: dict[str, int] = {}
    previous = None
    last_text: dict[str, str] = {}

    def close(speaker: str | None) -> None:
        if speaker is None:
            return
        turns[speaker] = turns.get(speaker, 0) + 1
        ending = last_text[speaker].rstrip().rstrip("\"'\u201d\u2019)]*_ ")
        questions[speaker] = questions.get(speaker, 0) + ending.endswith("?")

    for cue in cues:
        if cue.speaker is None:
            continue
        if cue.speaker != previous:
            close(previous)
            previous = cue.speaker
        last_text[cue.speaker] = cue.text
    close(previous)
    return {s: (questions[s], turns[s]) for s in turns}


# ---------------------------------------------------------------------------------------------


# pysbd's time grows with the square of the text it is given (a 100 KB paragraph takes seconds, 1 MB
# many minutes), so a longer turn is handed to it a window at a time: cost then grows linearly. A
# turn of an interview is a few hundred to a few thousand characters and is segmented whole.
SENTENCE_WINDOW = 4000  # characters
# pysbd judges a boundary by the text around it; one this close to a window's cut may be an
# artefact of the cut, so it is left to the next window, which starts before it
_WINDOW_MARGIN = 500
_SPACES = re.compile(r"\s*")


def _sentence_starts(text: str) -> list[int]:
    """Offsets where sentences start (pysbd), 0 first. Only starts are used, so a sentence pysbd
    could not place is absorbed by its neighbour and the pieces always cover the whole text.

    A text over `SENTENCE_WINDOW` characters is segmented in windows of that size: each window
    begins at the last sentence start of the one before that lies clear of its cut, or, inside
    a sentence longer than a window, at a word boundary (then not taken for a sentence start)."""
    if len(text) <= SENTENCE_WINDOW:
        return _pysbd_starts(text, 0, len(text))
    starts = [0]
    begin = 0
    while True:
        end = min(begin + SENTENCE_WINDOW, len(text))
        found = [s for s in _pysbd_starts(text, begin, end) if s > begin]
        if end == len(text):
            starts.extend(found)
            return starts
        clear = [s for s in found if s <= end - _WINDOW_MARGIN]
        starts.extend(clear)
        begin = clear[-1] if clear else _word_start(text, begin, end - _WINDOW_MARGIN)


def _pysbd_starts(text: str, begin: int, end: int) -> list[int]:
    """Sentence starts pysbd finds in ``text[begin:end]``, as offsets into `text`, `begin` first."""
    import pysbd

    window = text[begin:end]
    # a Segmenter keeps the text it works on as state, so each call gets its own (cheap to build)
    segmenter = pysbd.Segmenter(language="en", clean=False)
    starts = {0}
    found = 0  # where the sentence found last ends, with the whitespace after it
    for sentence in segmenter.processor(window).process():
        if not sentence:
            continue
        # the spans `segment(..., char_span=True)` gives, without its regular expression per
        # sentence (a third of its time, and they push its own out of `re`'s cache): a sentence
        # follows the one before it, and only one that does not is searched for as pysbd does
        if window.startswith(sentence, found):
            spaces = _SPACES.match(window, found + len(sentence))
            assert spaces is not None  # \s* matches anywhere, if only the empty string
            start, after = found, spaces.end()
        else:
            match = next((m for m in re.finditer(re.escape(sentence) + r"\s*", window) if m.end() > found), None)
            if match is None:
                continue
            start, after = match.span()
        if 0 < start < len(window):
            starts.add(start)
        found = after
    return [begin + s for s in sorted(starts)]


def _word_start(text: str, begin: int, at: int) -> int:
    """The start of the word at offset `at` (after `begin`), or `at` itself in a run without spaces."""
    i = at
    while i > begin and not text[i - 1].isspace():
        i -= 1
    return i if i > begin else at


def split_long(text: str, start: int, count_tokens: Callable[[str], int], max_tokens: int) -> list[tuple[int, int]]:
    """Split one turn into ``(start, end)`` spans of at most `max_tokens` tokens each.

    `text` is the turn and `start` its offset in the transcript; returned spans are offsets in the
    transcript, stripped of surrounding whitespace, in order, inside the turn. Sentences are packed
    greedily; a sentence that alone is over the limit is cut at word boundaries (a single word over
    the limit becomes its own piece). `count_tokens` must give each whitespace-separated word one
    token at least (as subword tokenizers and `estimate_tokens` do): a long span of more words than
    `max_tokens` is then known to be over the limit without counting it, so time and memory grow
    linearly with the turn.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")

    def fits(a: int, b: int) -> bool:
        if b - a > SENTENCE_WINDOW and _more_words(text, a, b, max_tokens):
            return False  # uncounted: tokenizing a whole file to learn that costs time and memory
        return count_tokens(text[a:b]) <= max_tokens

    s, e = strip_span(text, 0, len(text))
    if s == e:
        return []
    if fits(s, e):
        return [(start + s, start + e)]

    bounds = _sentence_starts(text) + [len(text)]
    sentences = [strip_span(text, a, b) for a, b in zip(bounds, bounds[1:])]
    sentences = [(a, b) for a, b in sentences if a < b]

    pieces: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for a, b in sentences:
        if current is not None and fits(current[0], b):
            current = (current[0], b)
            continue
        if current is not None:
            pieces.append(current)
        if fits(a, b):
            current = (a, b)
        else:  # one sentence over the limit: cut it into word runs, keep the tail open for packing
            runs = _cut_words(text, a, b, count_tokens, max_tokens)
            pieces.extend(runs[:-1])
            current = runs[-1]
    if current is not None:
        pieces.append(current)
    return [(start + a, start + b) for a, b in pieces]


_WORD = re.compile(r"\S+")


def _more_words(text: str, a: int, b: int, n: int) -> bool:
    """Whether ``text[a:b]`` holds more than `n` words (reading no further than word n + 1)."""
    return sum(1 for _ in itertools.islice(_WORD.finditer(text, a, b), n + 1)) > n


def _cut_words(text: str, a: int, b: int, count_tokens: Callable[[str], int], max_tokens: int) -> list[tuple[int, int]]:
    """``text[a:b]`` cut into runs of whole words, each the longest that fits from where the one
    before ended. Words are read as needed and a run is found by doubling, then bisecting, its
    length: the time grows with the run, not with the rest of the sentence, which for a transcript
    without punctuation (a single sentence for pysbd) is the rest of the file."""
    words = _WORD.finditer(text, a, b)
    ahead: list[tuple[int, int]] = []  # words read but not yet in a run

    def read(n: int) -> bool:  # whether `ahead` holds at least n words
        while len(ahead) < n:
            word = next(words, None)
            if word is None:
                return False
            ahead.append(word.span())
        return True

    def fits(n: int) -> bool:  # whether the first n words of `ahead` fit (token counts grow with length)
        return count_tokens(text[ahead[0][0] : ahead[n - 1][1]]) <= max_tokens

    runs = []
    while read(1):
        lo = 1  # a single word over the limit still becomes its own piece
        size = 2
        while read(size) and fits(size):
            lo, size = size, size * 2
        # the longest run that may fit: short of the `size` words that did not, or all words left
        hi = size - 1 if len(ahead) >= size else len(ahead)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        runs.append((ahead[0][0], ahead[lo - 1][1]))
        del ahead[:lo]
    return runs


# ---------------------------------------------------------------------------------------------


def segment(
    transcript: Transcript,
    rules: SpeakerRules | None = None,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = 256,
) -> list[Passage]:
    """Passages of a transcript: one per turn, or several for a turn over `max_tokens`.

    `count_tokens` defaults to `estimate_tokens`; the predictor passes its tokenizer's count so
    passages fit the model. Times of a passage come from the cues it overlaps. A turn whose role
    is given (a table's ``speaker_role`` cell) is the interviewer's when `rules` would take that
    value for an interviewer's name ("interviewer", "moderator", ...), else a participant's
    (``participant``, ``respondent``, ``document``, ...).
    """
    count_tokens = count_tokens or estimate_tokens
    rules = rules or SpeakerRules()
    turns = merge_turns(transcript)
    roles = speaker_roles(turns, rules)
    unroled = [t for t in turns if t.role is None]  # a role given with the text needs no guess
    note = roles_note(unroled, rules, {t.speaker: roles[t.speaker] for t in unroled if t.speaker is not None})
    if note and note not in transcript.notes:
        transcript.notes.append(note)
    cue_starts = [c.start for c in transcript.cues]

    passages: list[Passage] = []
    for turn in turns:
        if turn.role is not None:  # given with the text: interviewer if it names one, else participant
            role = "interviewer" if rules.names_interviewer(turn.role) else "participant"
        else:
            role = roles.get(turn.speaker, "participant") if turn.speaker is not None else "unknown"
        for s, e in split_long(turn.text, turn.start, count_tokens, max_tokens):
            t0, t1 = _times(transcript.cues, cue_starts, s, e)
            passages.append(
                Passage(
                    transcript.source,
                    len(passages),
                    turn.speaker,
                    role,
                    transcript.text[s:e],
                    s,
                    e,
                    t0,
                    t1,
                    row_id=turn.row_id,
                )
            )
    return passages


def _times(cues: list[Cue], cue_starts: list[int], s: int, e: int) -> tuple[float | None, float | None]:
    first = max(bisect.bisect_right(cue_starts, s) - 1, 0)
    last = max(bisect.bisect_left(cue_starts, e) - 1, first)
    overlapping = cues[first : last + 1]
    start_time = next((c.start_time for c in overlapping if c.start_time is not None), None)
    end_time = next((c.end_time for c in reversed(overlapping) if c.end_time is not None), None)
    return start_time, end_time
