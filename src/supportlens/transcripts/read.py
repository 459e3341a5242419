"""Read interview transcripts into one shape: a `Transcript` with speaker-labelled `Cue`s.

Every `Cue` points into `Transcript.text` by character offsets, and
``transcript.text[cue.start:cue.end] == cue.text`` always holds. What the offsets refer to depends
on the format:

* **txt / md** -- ``Transcript.text`` is the file's own text, decoded, with line endings
  normalised to ``"\\n"`` (what Python's universal newlines give, so it equals
  ``open(path, encoding=...).read()``; a UTF-8 byte order mark is removed). Offsets are
  therefore offsets into the file as a text editor shows it.
* **vtt / srt / docx** -- these formats have no single running text, so ``Transcript.text`` is a
  deterministic plain-text rendering: one line per turn, turns separated by a blank line
  (``"\\n\\n"``), each turn line starting with ``"Speaker: "`` when the speaker is known, and
  consecutive cues of the same speaker joined by a single space on that line. (A .docx paragraph
  without a speaker prefix continues the current cue after a ``"\\n"``; caption line wraps inside
  one VTT/SRT cue become single spaces.) Offsets refer to this rendering, which is also the text
  exported to QDA software, so codings made on it line up there. A caption cue whose timing line
  cannot be read keeps its text without times, with a note naming its cue number and line.
* **csv / xlsx** -- one cue per non-empty row (of a workbook's first sheet with the text column);
  ``Transcript.text`` is the row texts joined by ``"\\n\\n"``. A row's ``id`` cell (when the
  table has an ``id`` column) becomes ``Cue.row_id`` and its ``speaker_role`` cell ``Cue.role``,
  so each row can be traced back and its role need not be guessed.

Speaker labels in txt/md/docx/Zoom-VTT/SRT are written as ``Name: text`` at the start of a line
(optionally after a ``[hh:mm:ss]`` timestamp and inside Markdown bold/italics: ``**Name:**``). A
name counts as a speaker only if at least two lines use it or it looks like an interview role
(``Interviewer``, ``P07``, ``Respondent``, ``Q``, ...), and never if it is a header word such as
``Note`` or ``Date``; so a header line such as ``Interview date: 12 March`` is not taken for a
speaker. In Markdown, a heading line ends the turn above it.

Text files are decoded as UTF-8 (with or without a byte order mark), UTF-16 with a byte order
mark, or else cp1252, with a note in ``Transcript.notes`` saying what was done: the policy of
`supportlens.io.decoding`, which coded-data tables share.
"""

from __future__ import annotations

import glob
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from supportlens.io.decoding import DecodeError, decode_text
from supportlens.io.tables import find_column

SUPPORTED_SUFFIXES = (".txt", ".md", ".docx", ".vtt", ".srt", ".csv", ".xlsx")
# optional columns of a csv/xlsx transcript (found like the text column, by
# `supportlens.io.tables.find_column`: "ID" and "Speaker Role" will do): a row id to trace each
# passage back to its row, and the speaker's role, which the coded-excerpt files already call
# speaker_role
ID_COLUMN = "id"
ROLE_COLUMN = "speaker_role"
# An interview transcript is typically 30-200 KB. A file over this limit is not one (a whole export,
# a corpus in one file) and would take hours to label: it is refused before it is read into memory.
MAX_TRANSCRIPT_BYTES = 50_000_000
# A file over this is read and labelled, with a note to check that it holds one interview.
LARGE_TRANSCRIPT_BYTES = 5_000_000


class ReadError(ValueError):
    """A transcript could not be read. The message is one line: ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str | None = None):
        if reason is None:  # ReadError("already formatted message")
            message = str(path)
            self.path, self.reason = None, message
        else:
            self.path, self.reason = str(path), _one_line(reason)
            message = f"{self.path}: {self.reason}"
        super().__init__(_one_line(message))


@dataclass
class Cue:
    """One speaker's utterance (a caption cue, a paragraph, a labelled line and its continuation)."""

    speaker: str | None  # as written ("Dana", "INTERVIEWER"); None when the text has no labels
    text: str  # == transcript.text[start:end]; no speaker prefix, timestamp or markup
    start: int
    end: int
    start_time: float | None = None  # seconds
    end_time: float | None = None
    row_id: str | None = None  # csv/xlsx: the row's `ID_COLUMN` cell, carried into predictions
    role: str | None = None  # csv/xlsx: the row's `ROLE_COLUMN` cell as written ("interviewer", ...)


@dataclass
class Transcript:
    source: str
    text: str
    cues: list[Cue]
    format: str  # txt | md | docx | vtt | srt | csv | xlsx
    encoding: str = "utf-8"
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# entry points


def read_transcript(
    path: str | os.PathLike, text_column: str = "text", speaker_column: str | None = "speaker"
) -> Transcript:
    """Read one transcript file; raise `ReadError` (one line, starting with the path) if it can't."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReadError(
            path, f"unsupported file type {suffix or '(no suffix)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    raw = _read_bytes(path)  # a file over MAX_TRANSCRIPT_BYTES is refused before it is read
    return _note_size(_parse(path, raw, suffix[1:], text_column, speaker_column), len(raw))


def parse_transcript(
    content: str | bytes,
    fmt: str,
    source: str = "<text>",
    text_column: str = "text",
    speaker_column: str | None = "speaker",
) -> Transcript:
    """Parse a transcript held in memory (a Spark row, a database field) exactly as
    `read_transcript` parses a file of format `fmt` (``"txt"``, ``".vtt"``, ...) with that content.

    `content` is the file's bytes, or for the text formats its decoded text; the binary formats
    (docx, xlsx) need bytes. Offsets, cues and notes are those `read_transcript` would give, and
    ``Transcript.source`` is `source` unchanged (an id or URI, which `Path` would alter)."""
    fmt = str(fmt).strip().lower().lstrip(".")
    if f".{fmt}" not in SUPPORTED_SUFFIXES:
        raise ReadError(
            source, f"unsupported format {fmt or '(none)'!r}; supported: {', '.join(s[1:] for s in SUPPORTED_SUFFIXES)}"
        )
    if isinstance(content, str):
        if fmt in ("docx", "xlsx"):
            raise ReadError(source, f"a .{fmt} transcript is binary: give the file's bytes, not text")
        content = content.encode("utf-8")  # one decoding path: BOM, line endings, emptiness checks
    try:
        _check_size(source, len(content))
        transcript = _note_size(_parse(Path(source), bytes(content), fmt, text_column, speaker_column), len(content))
    except ReadError as exc:  # name the source as given, not as Path rewrote it ("s3://" -> "s3:/")
        raise ReadError(source, exc.reason) from None
    transcript.source = source
    return transcript


def _parse(path: Path, raw: bytes, fmt: str, text_column: str, speaker_column: str | None) -> Transcript:
    if fmt == "docx":
        return _read_docx(path, raw)
    if fmt == "xlsx":
        return _read_table(path, None, "xlsx", text_column, speaker_column, "utf-8", [], raw=raw)
    text, encoding, notes = _decode(path, raw)
    if fmt in ("txt", "md"):
        return _read_plain(path, text, fmt, encoding, notes)
    if fmt in ("vtt", "srt"):
        return _read_captions(path, text, fmt, encoding, notes)
    # a CSV's CRLFs end its rows; offsets point into the rendering, so that note says nothing here
    notes = [note for note in notes if not note.startswith("line endings normalised")]
    return _read_table(path, text, "csv", text_column, speaker_column, encoding, notes)


def expand_inputs(inputs: list[str], skipped: list[Path] | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Turn files, folders and glob patterns into a sorted list of unique file paths.

    A file is kept whatever its suffix (an unsupported one is reported when it is read). A folder
    is searched recursively for `SUPPORTED_SUFFIXES`, skipping hidden files and folders; its other
    files (a stray .pdf, gold codings) are appended to ``skipped`` when given: not failures, since
    folders often hold other files, but worth a line each. A pattern
    is expanded with ``glob.glob(..., recursive=True)``. Inputs that match nothing come back as
    ``(input, reason)`` problems instead of raising, so a batch can report them all at once.
    """
    found: dict[str, Path] = {}
    problems: list[tuple[str, str]] = []

    def add(p: Path) -> None:
        found.setdefault(os.path.normcase(os.path.abspath(p)), p)

    for item in inputs:
        p = Path(os.path.expanduser(item))
        if p.is_file():
            add(p)
        elif p.is_dir():
            hits, others = _files_under(p)
            if not hits:
                problems.append((item, f"folder has no transcripts ({', '.join(SUPPORTED_SUFFIXES)})"))
            for hit in hits:
                add(hit)
            if skipped is not None:  # a caller that reports them, so no interview is missed unsaid
                skipped.extend(others)
        elif glob.has_magic(item):
            hits = [Path(m) for m in glob.glob(os.path.expanduser(item), recursive=True)]
            files = [h for h in hits if h.is_file()]
            if not files:
                problems.append((item, "no files match this pattern"))
            for hit in files:
                add(hit)
        else:
            problems.append((item, "no such file or folder"))
    return sorted(found.values(), key=str), problems


def _files_under(folder: Path) -> tuple[list[Path], list[Path]]:
    """(transcripts, other files) under ``folder``, skipping hidden files and folders."""
    hits: list[Path] = []
    others: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            (hits if path.suffix.lower() in SUPPORTED_SUFFIXES else others).append(path)
    return hits, others


# ---------------------------------------------------------------------------------------------
# bytes -> text


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def _read_bytes(path: Path) -> bytes:
    try:
        _check_size(path, path.stat().st_size)
        return path.read_bytes()
    except FileNotFoundError:
        raise ReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ReadError(path, "is a folder, not a file") from None
    except PermissionError:
        raise ReadError(path, "permission denied") from None
    except OSError as exc:
        raise ReadError(path, f"cannot read file: {exc.strerror or exc}") from None


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def _check_size(source: str | os.PathLike, size: int) -> None:
    if size > MAX_TRANSCRIPT_BYTES:
        raise ReadError(
            source,
            f"{_megabytes(size)}, over the {MAX_TRANSCRIPT_BYTES / 1e6:g} MB limit for one "
            "transcript (an interview is typically 30-200 KB): split the file into one "
            f"file per interview, or into parts under {MAX_TRANSCRIPT_BYTES / 1e6:g} MB",
        )


def _note_size(transcript: Transcript, size: int) -> Transcript:
    if size > LARGE_TRANSCRIPT_BYTES:
        transcript.notes.append(
            f"{_megabytes(size)} is far longer than an interview (typically 30-200 KB): "
            "check that the file holds one interview; reading and labelling it takes minutes"
        )
    return transcript


def _decode(path: Path, raw: bytes) -> tuple[str, str, list[str]]:
    """Decode text bytes by `supportlens.io.decoding`'s policy; return (text with "\\n" line
    endings, encoding, notes). Offsets count from after a byte order mark and in the text with
    "\\n" line endings, and the notes say so."""
    if not raw.strip():
        raise ReadError(path, "empty file")
    try:
        decoded = decode_text(raw, what="transcript")
    except DecodeError as exc:
        raise ReadError(path, exc.reason) from None
    text, encoding = decoded.text, decoded.encoding
    notes = ["UTF-8 byte order mark removed (offsets start after it)"] if encoding == "utf-8-sig" else []
    notes += decoded.notes
    if "\r" in text:
        notes.append(
            "line endings normalised from "
            + ("CRLF" if "\r\n" in text else "CR")
            + " to LF; offsets refer to the text with \\n line endings"
        )
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ReadError(path, "empty file")
    return text, encoding, notes


# ---------------------------------------------------------------------------------------------
# speaker labels


_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_NAME_CHAR = r"(?:[^\W_]|[ .'\u2019()\-])"
_SPEAKER_LINE = re.compile(
    r"^[ \t]*"
    rf"(?:(?:\[(?P<t1>{_TIME})\]|\((?P<t2>{_TIME})\)|(?P<t3>\d{{1,2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,3}})?))"
    r"[ \t]*(?:[-\u2013\u2014|][ \t]*)?)?"
    r"(?P<open>\*\*|__|\*|_)?"
    rf"(?P<name>[^\W_]{_NAME_CHAR}{{0,44}}?)"
    r"[ \t]*(?P<mid>\*\*|__|\*|_)?[ \t]*:(?P<close>\*\*|__|\*|_)?"
    r"(?=\s|$)[ \t]*"
)
# Exports of transcription services put the time beside the name and often the turn's text on the
# lines below: "Speaker 1  0:00" (Otter.ai, Teams), "Jane Doe (00:01:02):" (Rev, also with text after
# the colon), "[Jane Doe] 10:32:15" (Zoom), "00:01:02 Speaker 1" or "[00:01:02] Jane Doe" (Word's
# Transcribe and others). Without a colon the line must hold nothing but the name and the time.
# Display names may hold commas and pronouns ("Doe, Jane", "Jane Doe (she/her)").
_NAME = rf"(?P<name>[^\W\d_](?:{_NAME_CHAR}|[,/]){{0,44}}?)"
_NAME_THEN_TIME = re.compile(
    rf"^[ \t]*{_NAME}(?P<gap>[ \t]*)"
    rf"(?:\((?P<t1>{_TIME})\)|\[(?P<t2>{_TIME})\]|(?<=[ \t])(?P<t3>{_TIME}))"
    r"[ \t]*(?:(?P<colon>:)(?=\s|$)[ \t]*|$)"
)
_BRACKETED_NAME_THEN_TIME = re.compile(  # Zoom's saved transcript: "[Jane Doe] 10:32:15"
    r"^[ \t]*\[(?P<name>[^\W\d_][^\]\n]{0,58}?)\][ \t]+"
    rf"(?P<t1>{_TIME})[ \t]*$"
)
_TIME_THEN_NAME = re.compile(
    rf"^[ \t]*(?:\[(?P<t1>{_TIME})\]|\((?P<t2>{_TIME})\)|(?P<t3>{_TIME}))[ \t]+(?:[-\u2013\u2014|][ \t]*)?"
    rf"{_NAME}[ \t]*$"
)
# How many labels of an unmistakable shape (below) show that a file is laid out that way.
_STRONG_LAYOUT = 3
# The last line of an Otter.ai export, and of others like it: not speech.
_FOOTER = re.compile(r"^[ \t]*transcribed by\b.{0,80}$", re.IGNORECASE)
# Names that label an interview role even when used only once.
_ROLE_NAME = re.compile(
    r"(?:interviewer|interviewee|participant|respondent|moderator|facilitator|researcher|speaker"
    r"|int|resp|i|q|a|r|p)\s*\d*|[pri]\d+|.*\(\s*(?:interviewer|interviewee|participant|respondent"
    r"|moderator|facilitator|researcher)\s*\)",
    re.IGNORECASE,
)


@dataclass
class _Label:
    name: str
    rest_start: int  # index in the line where the utterance starts
    time: float | None
    bare: bool = False  # a name and a time with no colon: in plain text, only at the start of a block
    # an unmistakable label: the time bracketed beside the name, the name bracketed, or the two
    # apart by two or more spaces; in a file with several, a speaker who talks once is still one
    strong: bool = False


def _parse_label(line: str) -> _Label | None:
    """A syntactically valid ``[time] **Name:** text`` prefix, a transcription service's
    ``Name  time`` / ``Name (time):`` / ``time Name`` label, or None."""
    m = _SPEAKER_LINE.match(line)
    if m:
        opener, closer = m["open"], m["mid"] or m["close"]
        if opener != closer or (m["mid"] and m["close"]):
            return None
    else:
        m = _NAME_THEN_TIME.match(line) or _BRACKETED_NAME_THEN_TIME.match(line) or _TIME_THEN_NAME.match(line)
        if not m:
            return None
    name = m["name"].strip()
    if (
        len(name) > 40
        or len(name.split()) > 5
        or not any(ch.isalpha() for ch in name)
        or name.count("(") != name.count(")")
    ):
        return None
    groups = m.groupdict()
    time = groups.get("t1") or groups.get("t2") or groups.get("t3")
    bare = m.re is not _SPEAKER_LINE and not groups.get("colon")
    strong = bool(
        groups.get("t1")
        or groups.get("t2")
        or m.re is _BRACKETED_NAME_THEN_TIME
        or len(groups.get("gap") or "") >= 2
        or "\t" in (groups.get("gap") or "")
        or (m.re is _SPEAKER_LINE and time)
    )
    return _Label(name, m.end(), _seconds(time) if time else None, bare, strong)


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


# "Label: value" words common in headers and notes that never name a speaker.
_NOT_SPEAKERS = {
    "note",
    "notes",
    "nb",
    "ps",
    "date",
    "time",
    "duration",
    "location",
    "place",
    "title",
    "subject",
    "topic",
    "summary",
    "transcript",
    "recording",
    "file",
    "source",
    "project",
    "study",
    "tags",
    "keywords",
    "comment",
    "comments",
    "e.g.",
    "i.e.",
    "eg",
    "ie",
    "example",
    "for example",
    "re",
    "update",
    "edit",
    "see",
    "warning",
    "caution",
    "tip",
    "important",
    "attendees",
    "present",
    "participants",
    "speakers",
    "audio",
    "video",
}


def _accepted_speakers(labels: list[_Label]) -> set[str]:
    """Names used on two or more lines, shaped like an interview role, or given by an unmistakable
    label in a file laid out with them (never header words)."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label.name.casefold()] = counts.get(label.name.casefold(), 0) + 1
    strong_layout = sum(label.strong for label in labels) >= _STRONG_LAYOUT
    return {
        label.name
        for label in labels
        if label.name.casefold() not in _NOT_SPEAKERS
        and (counts[label.name.casefold()] >= 2 or _ROLE_NAME.fullmatch(label.name) or (label.strong and strong_layout))
    }


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` narrowed past leading and trailing whitespace of ``text[start:end]``."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# ---------------------------------------------------------------------------------------------
# txt / md


_MD_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}(?:[ \t]|$)")


def read_text(text: str, source: str = "<text>", fmt: str = "txt") -> Transcript:
    """Parse already-decoded plain text (e.g. a QDA project's source) like a .txt/.md transcript."""
    return _read_plain(Path(source), text, fmt, "utf-8", [])


def _read_plain(path: Path, text: str, fmt: str, encoding: str, notes: list[str]) -> Transcript:
    lines: list[tuple[int, str]] = []  # (offset of line start, line without "\n")
    offset = 0
    for line in text.split("\n"):
        lines.append((offset, line))
        offset += len(line) + 1

    footer = _footer_line(lines)
    if footer is not None:
        notes.append(f"the last line ({lines[footer][1].strip()!r}) is the transcription service's footer, not speech")
        lines = lines[:footer]
    labels = [(i, _parse_label(line)) for i, (_, line) in enumerate(lines)]
    # "Name 0:04" with no colon and one space opens a turn only after a blank line, as the
    # services lay it out; elsewhere it is a line of running text that happens to end with a time
    labels = [
        (i, None if lab is not None and lab.bare and not lab.strong and i > 0 and lines[i - 1][1].strip() else lab)
        for i, lab in labels
    ]
    accepted = _accepted_speakers([lab for _, lab in labels if lab is not None])
    starts = [(i, lab) for i, lab in labels if lab is not None and lab.name in accepted]

    cues: list[Cue] = []
    if not starts:
        cues = _paragraph_cues(text, lines, skip_headings=fmt == "md")
        if cues:
            notes.append("no speaker labels found: one cue per paragraph, speaker unknown")
    else:
        header = sum(1 for _, line in lines[: starts[0][0]] if line.strip())
        if header:
            notes.append(f"{header} line(s) before the first speaker label are a header, not cues")
        for k, (i, label) in enumerate(starts):
            stop = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
            if fmt == "md":  # a Markdown heading ends the turn above it
                stop = next((j for j in range(i + 1, stop) if _MD_HEADING.match(lines[j][1])), stop)
            begin = lines[i][0] + label.rest_start
            end = lines[stop - 1][0] + len(lines[stop - 1][1])
            s, e = strip_span(text, begin, end)
            if s < e:
                cues.append(Cue(label.name, text[s:e], s, e, start_time=label.time))
    if not cues:
        raise ReadError(path, "empty file: no transcript text found")
    return Transcript(str(path), text, cues, fmt, encoding, notes)


def _footer_line(lines: list[tuple[int, str]]) -> int | None:
    """Index of a closing "Transcribed by ..." line after a blank line, or None."""
    filled = [i for i, (_, line) in enumerate(lines) if line.strip()]
    if len(filled) < 2 or not _FOOTER.match(lines[filled[-1]][1]) or lines[filled[-1] - 1][1].strip():
        return None
    return filled[-1]


def _paragraph_cues(text: str, lines: list[tuple[int, str]], skip_headings: bool) -> list[Cue]:
    cues: list[Cue] = []
    block: list[tuple[int, str]] = []
    for item in lines + [(len(text), "")]:
        if item[1].strip():
            block.append(item)
            continue
        if block and not (skip_headings and all(_MD_HEADING.match(line) for _, line in block)):
            s, e = strip_span(text, block[0][0], block[-1][0] + len(block[-1][1]))
            cues.append(Cue(None, text[s:e], s, e))
        block = []
    return cues


# ---------------------------------------------------------------------------------------------
# rendered formats: vtt / srt / docx


@dataclass
class _Utterance:
    speaker: str | None
    text: str
    start_time: float | None = None
    end_time: float | None = None


def _render(utterances: list[_Utterance], join_unlabelled: bool = True) -> tuple[str, list[Cue]]:
    """Lay utterances out as turns ("Speaker: a b" lines, blank line between turns)."""
    parts: list[str] = []
    cues: list[Cue] = []
    pos = 0
    previous: _Utterance | None = None
    for u in utterances:
        same_turn = (
            previous is not None and u.speaker == previous.speaker and (u.speaker is not None or join_unlabelled)
        )
        if same_turn:
            lead = " "
        else:
            lead = ("\n\n" if previous is not None else "") + (f"{u.speaker}: " if u.speaker else "")
        parts.append(lead)
        pos += len(lead)
        cues.append(Cue(u.speaker, u.text, pos, pos + len(u.text), u.start_time, u.end_time))
        parts.append(u.text)
        pos += len(u.text)
        previous = u
    return "".join(parts), cues


# a cue timing line, well formed or not ("00:00:01.000 --> ...", "00:00:0x,000 --> ...", "00:01 -> ...")
_TIMING_LINE = re.compile(r"^(?:.*-->|[ \t]*\d[\d:.,]*[ \t]*->)", re.MULTILINE)
# stands in for a timing that cannot be read, so that cue's text is still read as webvtt-py reads text
_NO_TIMING = "00:00:00.000 --> 00:00:00.000"


@dataclass
class _CaptionCue:
    number: int  # 1-based, among the file's cues
    line: int  # 1-based line of its timing line in the (decoded) file
    timing: str  # that line as written
    lines: list[str]  # from its timing line up to the next cue's number or identifier line


def _caption_cues(text: str, fmt: str) -> tuple[list[_CaptionCue], int]:
    """Split a caption file at its timing lines, one piece per cue, so that one malformed cue can be
    read, or left, on its own; also count the filled lines above the first cue (SRT junk)."""
    lines = text.split("\n")
    rows = [i for i, line in enumerate(lines) if _TIMING_LINE.match(line)]

    def opens(i: int) -> int:  # where cue i's block starts: its number (SRT) or identifier (VTT) line
        if i == 0 or not lines[i - 1].strip() or _TIMING_LINE.match(lines[i - 1]):
            return i
        if fmt == "srt":
            return i - 1 if lines[i - 1].strip().isdigit() else i
        # a VTT identifier opens its block: after a blank line, never the "WEBVTT" header line
        return i - 1 if i >= 2 and not lines[i - 2].strip() else i

    starts = [opens(i) for i in rows]
    cues = [
        _CaptionCue(k + 1, i + 1, lines[i], lines[i : starts[k + 1] if k + 1 < len(rows) else len(lines)])
        for k, i in enumerate(rows)
    ]
    above = sum(1 for line in lines[: starts[0] if starts else len(lines)] if line.strip())
    return cues, above


def _parse_caption(cue: _CaptionCue, fmt: str, timing: str | None = None):
    """The webvtt-py caption of one cue (with `timing` in place of its own), or None if unreadable."""
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    body = [timing if timing is not None else cue.timing, *cue.lines[1:]]
    # webvtt-py reads each piece as a whole file: a header for VTT, a cue number for SRT
    piece = ["WEBVTT", "", *body] if fmt == "vtt" else ["1", *body]
    try:
        captions = list(
            webvtt.from_buffer(
                io.StringIO("\n".join(piece)), format=fmt, **({"strict": timing is None} if fmt == "vtt" else {})
            ).captions
        )
    except (MalformedFileError, MalformedCaptionError, ValueError):
        return None
    return captions[0] if len(captions) == 1 else None


def _read_captions(path: Path, text: str, fmt: str, encoding: str, notes: list[str]) -> Transcript:
    kind = "WebVTT" if fmt == "vtt" else "SRT"
    if fmt == "vtt" and not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise ReadError(path, "malformed WebVTT: missing 'WEBVTT' header on the first line")
    pieces, above = _caption_cues(text.lstrip("\ufeff"), fmt)
    if not pieces:
        if fmt == "srt":
            raise ReadError(path, "malformed SRT: no cue timing line such as '00:00:01,000 --> 00:00:04,000' found")
        raise ReadError(path, f"empty file: no {kind} cues")
    if fmt == "srt" and above:
        notes.append(
            f"{above} line(s) above the first cue (timing on line {pieces[0].line}) belong to no cue and were left out"
        )

    # one cue whose timing cannot be read keeps its text, without times: the rest of the file is good
    pending: list[tuple[str | None, _Label | None, str, float | None, float | None]] = []
    bad: list[tuple[str, str]] = []  # ("cue 2 (line 6): what is wrong", what was done)
    for piece in pieces:
        if not any(line.strip() for line in piece.lines[1:]):
            continue  # a cue with no text: nothing to read or to lose
        cap = _parse_caption(piece, fmt)
        t0 = t1 = None
        problem = f"timing line {piece.timing.strip()!r} could not be read"
        if cap is not None:
            t0, t1 = cap.start_time.in_milliseconds() / 1000, cap.end_time.in_milliseconds() / 1000
            if t1 < t0:
                problem = f"ends before it starts ({piece.timing.strip()!r})"
                t0 = t1 = None
        if t0 is None:
            cap = _parse_caption(piece, fmt, timing=_NO_TIMING)
            bad.append(
                (
                    f"cue {piece.number} (line {piece.line}): {problem}",
                    "its text is kept without times" if cap is not None else "the cue was left out",
                )
            )
        if cap is None:
            continue
        body = " ".join(cap.text.split())  # caption line wraps are display-only
        pending.append((cap.voice, None if cap.voice else _parse_label(body), body, t0, t1))
    if bad and all(t0 is None for *_, t0, _ in pending):
        raise ReadError(path, f"malformed {kind}: no cue has timings that can be read; {bad[0][0]}")
    if bad:
        shown = "; ".join(f"{what}; {done}" for what, done in bad[:3])
        more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        notes.append(f"{len(bad)} of {len(pieces)} {kind} cue(s) are malformed: {shown}{more}")

    accepted = _accepted_speakers([lab for _, lab, _, _, _ in pending if lab is not None])
    utterances = []
    for voice, label, body, t0, t1 in pending:
        speaker = voice.strip() if voice else None
        if label is not None and label.name in accepted:
            speaker, body = label.name, body[label.rest_start :].strip()
        if body:
            utterances.append(_Utterance(speaker, body, t0, t1))
    if not utterances:
        raise ReadError(path, f"empty file: the {kind} cues have no text")
    rendered, cues = _render(utterances)
    return Transcript(str(path), rendered, cues, fmt, encoding, notes)


def _read_docx(path: Path, raw: bytes) -> Transcript:
    import docx

    try:
        document = docx.Document(io.BytesIO(raw))
    except Exception as exc:  # python-docx raises zipfile/KeyError/PackageNotFoundError variants
        raise ReadError(path, f"not a readable .docx file ({type(exc).__name__}: {exc})") from None
    blocks = [(p.replace("\r", "\n").strip(), given) for p, given in _docx_blocks(document)]
    blocks = [(p, given) for p, given in blocks if p]
    if not blocks:
        raise ReadError(path, "empty file: the document has no paragraph or table text")
    notes: list[str] = []
    if len(blocks) > 1 and blocks[-1][1] is None and _FOOTER.match(blocks[-1][0]):
        notes.append(f"the last paragraph ({blocks[-1][0]!r}) is the transcription service's footer, not speech")
        blocks = blocks[:-1]
    paragraphs = [p for p, _ in blocks]
    # a label may end its paragraph's first line, the turn's text following after a line break
    labels = [_parse_label(p.split("\n", 1)[0]) for p in paragraphs]
    # paragraphs have no blank line to mark where a turn may open, so a colon-less "Name  0:04"
    # counts only in documents laid out that way: at least half of their labels are of that kind
    bare = sum(1 for lab in labels if lab is not None and lab.bare)
    if bare and 2 * bare < sum(1 for lab in labels if lab is not None):
        labels = [None if lab is not None and lab.bare else lab for lab in labels]
    accepted = _accepted_speakers([lab for lab in labels if lab is not None])
    # a table's speaker cell names its speaker outright
    labels = [given or lab for lab, (_, given) in zip(labels, blocks)]
    accepted |= {given.name for _, given in blocks if given is not None}
    utterances: list[_Utterance] = []
    if not accepted:
        utterances = [_Utterance(None, p) for p in paragraphs]
        notes.append("no speaker labels found: one cue per paragraph, speaker unknown")
    else:
        skipped = 0
        for para, label in zip(paragraphs, labels):
            if label is not None and label.name in accepted:
                body = para[label.rest_start :].strip()
                utterances.append(_Utterance(label.name, body, label.time))
            elif utterances:  # a paragraph without a label continues the current cue
                last = utterances[-1]
                last.text = f"{last.text}\n{para}" if last.text else para
            else:
                skipped += 1
        utterances = [u for u in utterances if u.text]
        if skipped:
            notes.append(f"{skipped} paragraph(s) before the first speaker label are a header, not cues")
    if not utterances:
        raise ReadError(path, "empty file: no transcript text found")
    rendered, cues = _render(utterances, join_unlabelled=False)
    return Transcript(str(path), rendered, cues, "docx", "utf-8", notes)


# Header cells of a transcript laid out as a table ("Speaker | Text", "Time | Speaker | Text").
_TABLE_HEADERS = {
    "speaker",
    "name",
    "who",
    "time",
    "timestamp",
    "timecode",
    "start",
    "text",
    "transcript",
    "utterance",
    "content",
    "dialogue",
    "speech",
}
_CLOCK = re.compile(rf"^[\[(]?(?P<t>{_TIME})[\])]?$")


def _docx_blocks(document) -> list[tuple[str, _Label | None]]:
    """The body's paragraphs and table rows in document order, each with the label a table row
    gives. Some transcription services lay a transcript out as a table; a row of (speaker, text)
    or (time, speaker, text) cells is that speaker's turn, any other row its cells' text joined."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    blocks: list[tuple[str, _Label | None]] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            blocks.append((Paragraph(child, document).text, None))
        elif tag == "tbl":
            for row in Table(child, document).rows:
                cells, seen = [], set()
                for cell in row.cells:  # a merged cell appears once per grid column it spans
                    if id(cell._tc) not in seen:
                        seen.add(id(cell._tc))
                        cells.append(cell.text.strip())
                cells = [c for c in cells if c]
                if cells and all(c.casefold().rstrip(":") in _TABLE_HEADERS for c in cells):
                    continue
                clock = _CLOCK.match(cells[0]) if cells else None
                if len(cells) == 3 and clock and len(cells[1]) <= 60:
                    name, text, time = cells[1].rstrip(":").strip(), cells[2], _seconds(clock["t"])
                elif len(cells) == 2 and not clock and len(cells[0]) <= 60:
                    name, text, time = cells[0].rstrip(":").strip(), cells[1], None
                else:
                    blocks.append(("\n".join(cells), None))
                    continue
                # rendered as "Name: text", the label being the part before the text
                blocks.append((f"{name}: {text}", _Label(name, len(name) + 2, time)))
    return blocks


# ---------------------------------------------------------------------------------------------
# csv / xlsx


def _read_table(
    path: Path,
    text: str | None,
    fmt: str,
    text_column: str,
    speaker_column: str | None,
    encoding: str,
    notes: list[str],
    raw: bytes | None = None,
) -> Transcript:
    import pandas as pd

    try:
        if fmt == "csv":
            assert text is not None  # a CSV comes decoded, a workbook as bytes
            first = text.split("\n", 1)[0]
            sep = ";" if ("," not in first and ";" in first) else "\t" if ("," not in first and "\t" in first) else ","
            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
        else:  # every sheet as written: a cell reading "N/A" is an answer, not a missing value
            assert raw is not None
            sheets = pd.read_excel(
                io.BytesIO(raw), sheet_name=None, dtype=str, keep_default_na=False, engine="openpyxl"
            )
    except Exception as exc:  # pandas/openpyxl raise many parser and zip error types
        what = "CSV" if fmt == "csv" else "an Excel workbook"
        raise ReadError(path, f"cannot read as {what}: {type(exc).__name__}: {exc}") from None
    if fmt == "xlsx":  # the transcript may not be on the first sheet: take it as `train` takes coded data
        from supportlens.io.workbook import choose_sheet, sheet_note, sheets_listing

        if not sheets:
            raise ReadError(path, "the workbook has no sheets")
        frame = choose_sheet(sheets, lambda columns: find_column(columns, text_column) is not None)
        if len(sheets) > 1 and find_column(frame.columns, text_column) is None:
            raise ReadError(
                path,
                f"no sheet has a {text_column!r} column (sheets and their columns: "
                f"{sheets_listing(frame)}); choose the text column with `text_column`",
            )
        sheet = sheet_note(frame, [text_column])
        if sheet:
            notes.append(sheet)

    text_col = find_column(frame.columns, text_column)
    if text_col is None:
        columns = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise ReadError(
            path, f"no {text_column!r} column (columns: {columns}); choose the text column with `text_column`"
        )
    speaker_col = find_column(frame.columns, speaker_column) if speaker_column else None
    id_col = find_column(frame.columns, ID_COLUMN)
    role_col = find_column(frame.columns, ROLE_COLUMN)

    def optional(row, column) -> str | None:
        return (_cell(row[column]).strip() or None) if column is not None else None

    parts: list[str] = []
    cues: list[Cue] = []
    rows_of: dict[str, list[int]] = {}  # row id -> the rows (as a spreadsheet numbers them) that have it
    pos = 0
    # plain dicts of the columns used, not iterrows(): a Series per row or column (each copying
    # frame.attrs) made a sheet with a stray cell far below or beside the table take minutes
    used = [col for col in dict.fromkeys((text_col, speaker_col, id_col, role_col)) if col is not None]
    for number, row in enumerate(frame[used].to_dict("records"), start=2):  # row 1 is the header
        body = _cell(row[text_col]).strip()
        if not body:
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        speaker = optional(row, speaker_col)
        # rendered as `Speaker: text`, like captions and Word, so the text that goes to QDA software
        # keeps who spoke; the cue's offsets cover the text only
        label = f"{speaker}: " if speaker else ""
        start = pos + len(label)
        cues.append(
            Cue(speaker, body, start, start + len(body), row_id=optional(row, id_col), role=optional(row, role_col))
        )
        if cues[-1].row_id is not None:
            rows_of.setdefault(cues[-1].row_id, []).append(number)
        parts.append(label + body)
        pos = start + len(body)
    if not cues:
        raise ReadError(path, f"empty file: no text in column {str(text_col)!r}")
    repeated = {row_id: rows for row_id, rows in rows_of.items() if len(rows) > 1}
    if repeated:  # the predictions of these rows could not be told apart, nor joined back to the rows
        shown = ", ".join(
            f"{row_id!r} (rows {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''})"
            for row_id, rows in list(repeated.items())[:3]
        )
        more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
        notes.append(
            f"{len(repeated)} id(s) in column {str(id_col)!r} are used by more than one row, so "
            f"row_id does not tell those rows apart: {shown}{more}; give each row its own id"
        )
    return Transcript(str(path), "".join(parts), cues, fmt, encoding, notes)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).replace("\r\n", "\n").replace("\r", "\n")
