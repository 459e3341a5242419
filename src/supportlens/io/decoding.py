"""Bytes -> text: one decoding policy for every text file a researcher gives supportlens.

Transcripts (.txt, .md, .vtt, .srt, .csv) and coded-data tables (.csv, .tsv, .jsonl) come from the
same machines and programs (Word, Excel, Notepad, transcription services), so they are decoded
alike: UTF-8 (with or without a byte order mark), UTF-16 with a byte order mark, else cp1252 (what
Excel's plain "CSV" and Notepad write on Western European Windows), else charset-normalizer's
guess. A fallback is never silent: it comes back as a note that names the encoding used and what to
do if the text looks wrong. Bytes that look binary are refused rather than read as text.

What the text means (line endings and offsets for transcripts, rows for tables, emptiness) is left
to the reader that called. Imports nothing of supportlens.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field


class DecodeError(ValueError):
    """The bytes are not text in any encoding the policy tries.

    ``reason`` is one line without the file's name (the caller adds it); ``start``/``end`` are the
    absolute byte offsets of the first bytes that are not UTF-8, when a UTF-8 reading failed
    there, so a table's reader can name the line."""

    def __init__(self, reason: str, start: int | None = None, end: int | None = None):
        super().__init__(reason)
        self.reason, self.start, self.end = reason, start, end


@dataclass
class DecodedText:
    """Decoded text as it was in the file (line endings untouched, byte order mark removed)."""

    text: str
    encoding: str  # utf-8 | utf-8-sig | utf-16-le | utf-16-be | cp1252 | charset-normalizer's guess
    notes: list[str] = field(default_factory=list)  # the fallback used, if one was


def looks_binary(raw: bytes) -> bool:
    """True for bytes no text file holds: a NUL, or control characters beyond the odd one."""
    if b"\x00" in raw:
        return True
    head = raw[:8192]
    # Control bytes other than tab, newline, form feed and carriage return do not occur in text.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls > max(2, len(head) // 100)


def decode_text(raw: bytes, what: str = "transcript") -> DecodedText:
    """Decode ``raw`` by the policy above; raise `DecodeError` if it is binary or undecodable.

    ``what`` names the kind of file in the binary-file reason (``"binary file, not a transcript"``)."""
    if raw.startswith(codecs.BOM_UTF8):
        encoding, body, codec = "utf-8-sig", raw[len(codecs.BOM_UTF8) :], "utf-8"
    elif raw.startswith(codecs.BOM_UTF16_LE):
        encoding, body, codec = "utf-16-le", raw[2:], "utf-16-le"
    elif raw.startswith(codecs.BOM_UTF16_BE):
        encoding, body, codec = "utf-16-be", raw[2:], "utf-16-be"
    else:
        if looks_binary(raw):
            raise DecodeError(f"binary file, not a {what}")
        encoding, body, codec = "utf-8", raw, "utf-8"
    notes: list[str] = []
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        offset = len(raw) - len(body)  # the byte order mark, if any
        where = (exc.start + offset, exc.end + offset) if codec == "utf-8" else (None, None)
        if codec != "utf-8" or encoding == "utf-8-sig":
            raise DecodeError(f"cannot decode as {encoding}: {exc.reason} at byte {exc.start}", *where) from None
        text, encoding, note = _decode_fallback(raw, where)
        notes.append(note)
    if "\x00" in text:
        raise DecodeError(f"binary file, not a {what}")
    return DecodedText(text, encoding, notes)


def _decode_fallback(raw: bytes, where: tuple[int | None, int | None]) -> tuple[str, str, str]:
    """Not UTF-8: try cp1252 (Windows Word/Notepad/Excel exports), then charset-normalizer's guess."""
    guess = None
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(raw).best()
        guess = best.encoding if best is not None else None
    except Exception:  # detection is advisory only
        guess = None
    # cp1252 even when the detector guesses otherwise: its guesses on a short English transcript
    # with a few accents are often wrong, so it is named only as the thing to try when text looks odd
    try:
        other = f" (charset-normalizer suggests {guess})" if guess and codecs.lookup(guess).name != "cp1252" else ""
    except LookupError:  # a name Python has no codec for: no suggestion worth making
        other = ""
    try:
        return (
            raw.decode("cp1252"),
            "cp1252",
            (
                "not valid UTF-8, so decoded as cp1252, the encoding of Windows exports in Western European "
                f"languages; if accented letters look wrong, the file is in another encoding{other}: "
                "save it as UTF-8 and read it again"
            ),
        )
    except UnicodeDecodeError:
        pass
    if guess:
        try:
            note = (
                f"not valid UTF-8 or cp1252, so decoded as {guess}, charset-normalizer's guess; if "
                "characters look wrong, save the file as UTF-8 and read it again"
            )
            return raw.decode(guess), guess, note
        except (UnicodeDecodeError, LookupError):
            pass
    raise DecodeError("cannot decode text: not valid UTF-8, UTF-16 or cp1252", *where)
