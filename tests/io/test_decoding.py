"""The one decoding policy that transcripts and coded tables share."""

import codecs
from types import SimpleNamespace

import pytest

from supportlens.io.decoding import DecodeError, decode_text, looks_binary

TEXT = "Interviewer: Why?\nParticipant: The caf\u00e9 \u2018meeting\u2019 helped.\r\n"


@pytest.fixture
def no_guess(monkeypatch):
    """charset-normalizer's guess held at none: a detector's guess is only ever a hint."""
    import charset_normalizer

    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda raw: SimpleNamespace(best=lambda: None))


@pytest.mark.parametrize(
    "raw,encoding",
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_unicode_is_read_as_written_without_notes(raw, encoding):
    decoded = decode_text(raw)
    # the byte order mark is gone, line endings are the caller's business
    assert (decoded.text, decoded.encoding, decoded.notes) == (TEXT, encoding, [])


def test_not_utf8_falls_back_to_cp1252_with_a_note(no_guess):
    decoded = decode_text(TEXT.encode("cp1252"))
    assert decoded.text == TEXT and decoded.encoding == "cp1252"
    assert decoded.notes == [
        "not valid UTF-8, so decoded as cp1252, the encoding of Windows exports in Western "
        "European languages; if accented letters look wrong, the file is in another encoding: "
        "save it as UTF-8 and read it again"
    ]


def test_undecodable_bytes_say_where(no_guess):
    raw = b"line one\nbad \x81\x8d here\n"
    with pytest.raises(DecodeError) as caught:
        decode_text(raw)
    assert caught.value.reason == "cannot decode text: not valid UTF-8, UTF-16 or cp1252"
    assert raw[caught.value.start : caught.value.end] == b"\x81"


def test_a_broken_bom_file_is_refused_by_its_encoding():
    raw = codecs.BOM_UTF8 + b"ok \xff then"
    with pytest.raises(DecodeError, match=r"cannot decode as utf-8-sig: invalid start byte at byte 3") as caught:
        decode_text(raw)
    assert caught.value.start == 6  # counted in the file, byte order mark included


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        bytes(range(1, 31)) * 20,
        codecs.BOM_UTF16_LE + "a\x00b".encode("utf-16-le"),
    ],
)
def test_binary_bytes_are_refused_naming_what_was_expected(raw):
    assert looks_binary(raw) or raw.startswith(codecs.BOM_UTF16_LE)
    with pytest.raises(DecodeError, match=r"^binary file, not a CSV file$"):
        decode_text(raw, what="CSV file")
