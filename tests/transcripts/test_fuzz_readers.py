"""Fuzzing every transcript reader: whatever bytes a file holds, reading it either gives a
transcript whose cues and passages point at their text, or refuses it with a one-line `ReadError`
naming the file; never another exception, and never a hang.

The generators (random bytes, cuts and mutations of the sample transcripts, mixed encodings, BOMs,
NUL bytes, very long lines, damaged .docx/.xlsx packages) are shared with
``experiments/fault_suite.py``, which runs them with many more examples and counts the outcomes.
Examples are derandomized, so every run tries the same inputs."""

from __future__ import annotations

import codecs
import csv
import io
import re
import signal
import tempfile
import zipfile
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.transcripts.read import ReadError, read_transcript
from supportlens.transcripts.segmentation import segment

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "transcripts"
FORMATS = ("txt", "md", "vtt", "srt", "csv", "docx", "xlsx")
# seconds one read + segment may take before it counts as a hang (the samples take milliseconds)
TIME_LIMIT = 10.0
# a small token window, so long turns are split at sentences and words and those offsets are checked
MAX_TOKENS = 24

# ---------------------------------------------------------------------------------------------
# seeds: the sample transcripts, and csv/xlsx/docx built from one of them


@cache
def seeds() -> dict[str, list[bytes]]:
    """Well-formed files of each format to cut and mutate."""
    import docx
    import openpyxl

    by_format: dict[str, list[bytes]] = {fmt: [] for fmt in FORMATS}
    for path in sorted(SAMPLES.glob("smp*")):
        by_format[path.suffix[1:]].append(path.read_bytes())
    cues = read_transcript(SAMPLES / "smp01_child_welfare.txt").cues[:12]
    rows = [
        (f"r{i:03d}", c.speaker or "", "interviewer" if c.speaker == "Interviewer" else "participant", c.text)
        for i, c in enumerate(cues)
    ]

    table = io.StringIO()
    csv.writer(table).writerows([("id", "speaker", "speaker_role", "text"), *rows])
    by_format["csv"].append(table.getvalue().encode("utf-8"))

    book = openpyxl.Workbook()
    book.active.append(["id", "speaker", "speaker_role", "text"])
    for row in rows:
        book.active.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    by_format["xlsx"].append(buffer.getvalue())

    document = docx.Document()  # paragraphs with labels, then a transcript laid out as a table
    for _, speaker, _, text in rows[:6]:
        document.add_paragraph(f"{speaker}: {text}" if speaker else text)
    grid = document.add_table(rows=0, cols=2)
    for _, speaker, _, text in rows[6:]:
        cells = grid.add_row().cells
        cells[0].text, cells[1].text = speaker, text
    buffer = io.BytesIO()
    document.save(buffer)
    by_format["docx"].append(buffer.getvalue())
    return by_format


# ---------------------------------------------------------------------------------------------
# generators

# pieces of what transcripts hold, and of what breaks readers: labels, timings, headers, markup,
# line endings of every kind, separators and characters that are not what they seem
TOKENS = [
    "Interviewer: ",
    "P1: ",
    "Dana: ",
    "**Dana:** ",
    "_Sam_: ",
    "[00:01:02] ",
    "(1:02) ",
    "Speaker 1  0:04\n",
    "[Jane Doe] 10:32:15\n",
    "00:01:02 Jane Doe\n",
    "Jane Doe (00:01:02): ",
    "Note: ",
    "Date: ",
    "WEBVTT\n\n",
    "WEBVTT",
    "NOTE a note\n\n",
    "00:00:01.000 --> 00:00:02.000\n",
    "00:00:03,000 --> 00:00:01,000\n",
    "1\n",
    "00:01 -> 00:02\n",
    "<v Dana>",
    "</v>",
    "<b>",
    "</c>",
    "-->",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "\t",
    "\x0c",
    "\x0b",
    "\u2028",
    "\u2029",
    "\u0085",
    "\ufeff",
    "\u200b",
    "\xa0",
    "# Heading\n",
    "## ",
    "> ",
    "Transcribed by https://otter.ai",
    "?",
    ". ",
    "! ",
    "Mr. ",
    "e.g. ",
    "...",
    "\u2026",
    "\u201cquoted\u201d",
    ",",
    ";",
    '"',
    '""',
    "id,speaker,speaker_role,text\n",
    "text\n",
    "speaker;text\n",
    "a\tb\n",
    "=1+2",
    "caf\xe9 ",
    "\u00c3\u00a9",
    "\U0001f600",
    "\u0301",
    "\u05d0\u05d1",
    "\ud7ff",
    " " * 40,
    "x" * 300,
]
# byte chunks spliced into files: other encodings, byte order marks, NULs, stray high bytes
CHUNKS = [
    b"\x00",
    b"\x00" * 9,
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
    "caf\xe9 \u2018quoted\u2019 \u2013 na\xefve \u20ac5".encode("cp1252"),
    "\xe9t\xe9 \xfc\xdf".encode("latin-1"),
    "\u00e9\u4e2d\u6587".encode("utf-16-le"),
    b"\x81\x8d\x8f\x90\x9d",
    b"\xff\xfe\xfd",
    b"\xc3",
    b"\xe2\x80",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\x1b[31m",
    b"PK\x03\x04",
]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"]


def long_line(draw) -> bytes:
    """A line of up to ~60,000 characters without a break, of words or of one unbroken run."""
    unit = draw(st.sampled_from([b"word ", b"x", b"Dana: ", b"no-break-", "\u00e9\u2019 ".encode("utf-8")]))
    return unit * draw(st.integers(1_000, 12_000))


def _reencode(draw, raw: bytes) -> bytes:
    text = raw.decode("utf-8", errors="replace")
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


def _truncate(draw, raw: bytes) -> bytes:
    return raw[: draw(st.integers(0, len(raw)))]


def _window(draw, raw: bytes) -> bytes:  # a random cut: a slice from anywhere
    a = draw(st.integers(0, len(raw)))
    return raw[a : draw(st.integers(a, len(raw)))]


def _delete(draw, raw: bytes) -> bytes:
    a = draw(st.integers(0, len(raw)))
    return raw[:a] + raw[draw(st.integers(a, min(len(raw), a + 200))) :]


def _splice(draw, raw: bytes) -> bytes:
    at = draw(st.integers(0, len(raw)))
    kind = draw(st.integers(0, 3))
    chunk = (
        draw(st.sampled_from(CHUNKS))
        if kind == 0
        else draw(st.binary(min_size=1, max_size=12))
        if kind == 1
        else draw(st.sampled_from(TOKENS)).encode("utf-8")
        if kind == 2
        else long_line(draw)
    )
    return raw[:at] + chunk + raw[at:]


def _overwrite(draw, raw: bytes) -> bytes:
    if not raw:
        return raw
    at = draw(st.integers(0, len(raw) - 1))
    return raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at + 4 :]


def _line_endings(draw, raw: bytes) -> bytes:
    return raw.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\r\r\n", "\u2028".encode("utf-8")])))


def _prepend(draw, raw: bytes) -> bytes:
    return draw(st.sampled_from(CHUNKS)) + raw


BYTE_MUTATIONS = [_truncate, _window, _delete, _splice, _overwrite, _reencode, _line_endings, _prepend]


def _in_member(draw, raw: bytes) -> bytes:
    """Damage one part inside a .docx/.xlsx package and zip it up again, so the damage reaches
    the XML and the reader's logic instead of stopping at a broken zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as package:
            parts = {name: package.read(name) for name in package.namelist()}
    except Exception:  # already not a zip: nothing inside to damage
        return raw
    main = [name for name in sorted(parts) if name in MAIN_PARTS]
    name = draw(st.sampled_from(main if main and draw(st.integers(0, 3)) else sorted(parts)))
    body = parts[name]
    xml = [_xml_text, _xml_snippet, _xml_snippet]
    for mutate in draw(st.lists(st.sampled_from(BYTE_MUTATIONS + xml * 3), min_size=1, max_size=2)):
        body = mutate(draw, body)
    parts[name] = body
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for part, data in parts.items():
            package.writestr(part, data)
    return out.getvalue()


# the parts of a .docx/.xlsx that hold the text, and well-formed pieces of their XML that are odd
# where they land: merged and spanned cells, empty rows and tables, breaks, out-of-range references
MAIN_PARTS = ("word/document.xml", "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml")
XML_SNIPPETS = [
    "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Dana:</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>hi</w:t></w:r></w:p>"
    "</w:tc></w:tr></w:tbl>",
    "<w:tbl><w:tr></w:tr></w:tbl>",
    "<w:tbl></w:tbl>",
    "<w:tr><w:tc></w:tc></w:tr>",
    '<w:tc><w:tcPr><w:gridSpan w:val="5"/></w:tcPr><w:p/></w:tc>',
    '<w:tcPr><w:gridSpan w:val="0"/></w:tcPr>',
    "<w:tcPr><w:vMerge/></w:tcPr>",
    '<w:tcPr><w:vMerge w:val="restart"/></w:tcPr>',
    '<w:gridCol w:w="-1"/>',
    '<w:p><w:r><w:t xml:space="preserve">  Interviewer:  </w:t></w:r></w:p>',
    "<w:br/>",
    "<w:cr/>",
    "<w:tab/>",
    "<w:r><w:t>\u2028P1: x</w:t></w:r>",
    "<w:sdt><w:sdtContent><w:p><w:r><w:t>P2: y</w:t></w:r></w:p></w:sdtContent></w:sdt>",
    '<c r="A2" t="s"><v>99999</v></c>',
    '<c r="B2" t="n"><v>abc</v></c>',
    '<c r="A2" t="inlineStr"><is><t>x</t></is></c>',
    '<c r="XFD1048576"><v>1</v></c>',
    '<row r="0"><c r="A0"><v>1</v></c></row>',
    '<row r="3"></row>',
    '<c r="D7" t="b"><v>2</v></c>',
    '<c r="A2" t="e"><v>#REF!</v></c>',
    '<c r="A2" t="d"><v>not a date</v></c>',
    "<si><t>text</t></si>",
    "<si></si>",
    '<mergeCells count="1"><mergeCell ref="A1:D9"/></mergeCells>',
]


def _xml_snippet(draw, raw: bytes) -> bytes:
    """Insert a well-formed but odd XML piece before one of the first tags of a part."""
    tags = [m.start() for m in re.finditer(rb"<(?![?!/])", raw[:200_000])][:2_000]
    if not tags:
        return raw
    at = draw(st.sampled_from(tags))
    return raw[:at] + draw(st.sampled_from(XML_SNIPPETS)).encode("utf-8") + raw[at:]


def _xml_text(draw, raw: bytes) -> bytes:
    """Swap the text of one XML text node (``>...<``) for generated text, escaped or not."""
    spans = [i for i in range(len(raw)) if raw[i : i + 1] == b">"][:400]
    if not spans:
        return raw
    at = draw(st.sampled_from(spans)) + 1
    end = raw.find(b"<", at)
    end = len(raw) if end < 0 else end
    text = draw(transcript_text())
    if draw(st.booleans()):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return raw[:at] + text.encode("utf-8", errors="surrogatepass") + raw[end:]


@st.composite
def transcript_text(draw) -> str:
    """Text shaped like a transcript: labels, timings, markup and odd characters, in any order."""
    pieces = draw(st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=24)), max_size=40))
    return "".join(pieces)


@st.composite
def mutated(draw, fmt: str) -> bytes:
    """A seed of `fmt`, cut and damaged in one to three ways."""
    raw = draw(st.sampled_from(seeds()[fmt]))
    # damage to a package's bytes mostly breaks the zip; damage inside it reaches the reader's logic
    mutations = [_in_member] if fmt in ("docx", "xlsx") and draw(st.integers(0, 3)) else BYTE_MUTATIONS
    for mutate in draw(st.lists(st.sampled_from(mutations), min_size=1, max_size=3)):
        raw = mutate(draw, raw)
    return raw


# what a file of each format starts with, so generated text gets past the first check sometimes
HEADS = {
    "vtt": ["WEBVTT\n\n", "\ufeffWEBVTT - title\n\n"],
    "csv": ["text\n", "speaker,text\n", "id,speaker,speaker_role,text\n", "Speaker;Text\n", "text\tspeaker\n"],
}
# characters that Word and Excel files cannot hold (XML 1.0): left out of generated documents
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@st.composite
def generated(draw, fmt: str) -> bytes:
    """Transcript-shaped text from scratch: for text formats in one of several encodings and
    sometimes very long; for .docx/.xlsx laid out as paragraphs, table rows or sheet rows."""
    text = draw(transcript_text())
    if fmt in HEADS and draw(st.booleans()):
        text = draw(st.sampled_from(HEADS[fmt])) + text
    if fmt == "docx":
        return _docx_of(_NOT_IN_XML.sub("", text), as_table=draw(st.booleans()))
    if fmt == "xlsx":
        stray = draw(st.none() | st.tuples(st.integers(1, 3_000), st.integers(1, 100)))
        return _xlsx_of(
            _NOT_IN_XML.sub("", text),
            header=draw(st.sampled_from([["text"], ["speaker", "text"], ["id", "speaker_role", "text"]])),
            stray=stray,
        )
    raw = text.encode(draw(st.sampled_from(ENCODINGS)), errors=draw(st.sampled_from(["replace", "ignore"])))
    if draw(st.integers(0, 9)) == 0:
        raw += long_line(draw)
    return raw


def _docx_of(text: str, as_table: bool) -> bytes:
    """A .docx with one paragraph per line of `text`, or one table row per line (cells split at ":")."""
    import docx

    document = docx.Document()
    for line in text.split("\n"):
        if as_table:
            cells = line.split(":", 2)
            row = document.add_table(rows=1, cols=len(cells)).rows[0].cells
            for cell, value in zip(row, cells):
                cell.text = value
        else:
            document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _xlsx_of(text: str, header: list[str], stray: tuple[int, int] | None = None) -> bytes:
    """An .xlsx whose first sheet has `header` and one row per line of `text` (cells split at ","),
    and maybe a stray value at (row, column) that widens the sheet's range."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(header)
    for line in text.split("\n"):
        book.active.append([cell[:32_000] for cell in line.split(",", len(header) - 1)])
    if stray is not None:
        book.active.cell(row=stray[0], column=stray[1], value="stray")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


INPUT_KINDS = ("random bytes", "generated text", "damaged sample")


def tagged_inputs(fmt: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """Every kind of input for one format, with its kind (`INPUT_KINDS`); damaged samples twice
    as often, since they reach furthest into a reader."""
    return st.one_of(
        st.binary(max_size=2_000).map(lambda raw: ("random bytes", raw)),
        generated(fmt).map(lambda raw: ("generated text", raw)),
        mutated(fmt).map(lambda raw: ("damaged sample", raw)),
        mutated(fmt).map(lambda raw: ("damaged sample", raw)),
    )


def inputs(fmt: str) -> st.SearchStrategy[bytes]:
    return tagged_inputs(fmt).map(lambda tagged: tagged[1])


# ---------------------------------------------------------------------------------------------
# the property


class Hang(Exception):
    """Reading took longer than `TIME_LIMIT`."""


@contextmanager
def time_limit(seconds: float):
    def stop(signum, frame):
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def broken_offsets(transcript) -> str | None:
    """What breaks the promises of `read` and `segment` about offsets, or None."""
    text = transcript.text
    for i, cue in enumerate(transcript.cues):
        if not 0 <= cue.start <= cue.end <= len(text) or text[cue.start : cue.end] != cue.text:
            return f"cue {i} ({cue.start}, {cue.end}) does not point at its text {cue.text[:40]!r}"
    end = 0
    for i, p in enumerate(segment(transcript, max_tokens=MAX_TOKENS)):
        if p.index != i:
            return f"passage {i} has index {p.index}"
        if text[p.start : p.end] != p.text:
            return f"passage {i} ({p.start}, {p.end}) does not point at its text {p.text[:40]!r}"
        if p.start < end or p.start >= p.end or p.text != p.text.strip():
            return f"passage {i} ({p.start}, {p.end}) is empty, unstripped, out of order or overlaps the one before"
        end = p.end
    return None


def classify(path: Path) -> tuple[str, str]:
    """Read and segment one file: ``("parsed", "")``, ``("refused", message)`` for a one-line
    `ReadError` naming the file, or else ``("other" | "hang" | "bad offsets" | "bad error", why)``."""
    try:
        with time_limit(TIME_LIMIT):
            transcript = read_transcript(path)
            broken = broken_offsets(transcript)
    except Hang as exc:
        return "hang", str(exc)
    except ReadError as exc:
        message = str(exc)
        if "\n" in message or "\r" in message or not message.startswith(f"{path}: "):
            return "bad error", repr(message)
        return "refused", message
    except Exception as exc:  # noqa: BLE001 - what the property rules out
        return "other", f"{type(exc).__name__}: {exc}"
    if broken:
        return "bad offsets", broken
    return "parsed", ""


_WORKDIR = tempfile.TemporaryDirectory(prefix="supportlens-fuzz-")


def check(fmt: str, raw: bytes) -> tuple[str, str]:
    """Write `raw` as a .`fmt` file and classify reading it."""
    path = Path(_WORKDIR.name) / f"fuzzed.{fmt}"
    path.write_bytes(raw)
    return classify(path)


# the time limit above is the per-example bound (it also stops a true hang); the deadline is a backstop
FUZZ = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=2 * TIME_LIMIT),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_reader_parses_or_refuses_in_one_line(fmt):
    @FUZZ
    @given(raw=inputs(fmt))
    def run(raw: bytes) -> None:
        outcome, why = check(fmt, raw)
        assert outcome in ("parsed", "refused"), f"{outcome}: {why}"

    run()


def test_the_seeds_parse():
    """The generators start from files that read: a mutant refused is the mutation's doing."""
    for fmt, raws in seeds().items():
        for raw in raws:
            assert check(fmt, raw) == ("parsed", ""), fmt


def test_a_stray_cell_far_from_the_table_does_not_stall_reading(tmp_path):
    """A value typed by accident far below and beside the table (Excel keeps the whole range):
    reading the rows once took a pandas Series per row and column, each copying the frame's
    sheet listing, and ran for minutes."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["speaker", "text"])
    book.active.append(["P1", "we designed the plan together with the families"])
    book.active["ZZ2"] = "stray"
    book.active["B40000"] = " "
    path = tmp_path / "stray.xlsx"
    book.save(path)
    with time_limit(TIME_LIMIT):
        cues = read_transcript(path).cues
    assert [(c.speaker, c.text) for c in cues] == [("P1", "we designed the plan together with the families")]
