"""A hand-written REFI-QDA project builder, independent of `supportlens.qda.project`'s writer, so
that a bug there cannot hide in a test; shared by the qda, corpus, evaluation and inference tests.

Importable from every test folder because the root ``conftest.py`` puts ``tests/`` on the path.
"""

from __future__ import annotations

import io
import json
import uuid
import xml.etree.ElementTree as ET
import zipfile
from functools import cache
from pathlib import Path

import pandas as pd
import xmlschema

from conftest import ROOT

SAMPLES = ROOT / "data" / "transcripts"
SCHEMAS = Path(__file__).parent / "qda" / "refi-qda"
NS = "urn:QDA-XML:project:1.0"


def make_guid(name: str) -> str:
    """A stable guid per name, so that tests can name the same element twice."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.test.supportlens"))


ANA, BEN = make_guid("ana"), make_guid("ben")
SUPPORT, PUSH, PULL, COCREATION = make_guid("support"), make_guid("push"), make_guid("pull"), make_guid("co")
SHARED, RESPONSIVE, HELPDESK = make_guid("shared"), make_guid("responsive"), make_guid("helpdesk")
NO_APPROACH, FUNDING = make_guid("noapproach"), make_guid("funding")
# (guid, name, codable, children)
CODE_TREE = [
    (
        SUPPORT,
        "Support model",
        False,
        [
            (PUSH, "Push", True, []),
            (PULL, "Pull", True, []),
            (COCREATION, "Co-creation", True, [(SHARED, "Shared decisions", True, [])]),
            (RESPONSIVE, "Responsive TA", True, [(HELPDESK, "Help desk", True, [])]),
        ],
    ),
    (NO_APPROACH, "No approach", True, []),
    (FUNDING, "Funding", True, []),
]
LABEL_CODE = {"push": PUSH, "pull": PULL, "co_creation": COCREATION, "none": NO_APPROACH}

MAORI_NAME = "Kōrero_Māori_02.txt"
MAORI_TEXT = (
    "Interviewer: Kia ora, thanks for joining. How did the support start?\r\n\r\n"
    "Aroha: 😀 Honestly it was naïve at first. We sat down with the whānau and designed the plan together,\r\n"
    "sharing every decision.\r\n\r\n"
    "Interviewer: And later?\r\n\r\n"
    "Aroha: The Māori health team asked us for help with referrals, so we tailored the coaching to that.\r\n\r\n"
    "Interviewer: Anything else?\r\n\r\n"
    "Aroha: We also moved offices that winter, which was chaotic.\r\n"
)
MAORI_CO = "We sat down with the whānau and designed the plan together,\r\nsharing every decision."
MAORI_PULL = "The Māori health team asked us for help with referrals, so we tailored the coaching to that."
MAORI_GUID = make_guid("maori")
SMP01_GUID, SMP06_GUID, INLINE_GUID = make_guid("smp01"), make_guid("smp06"), make_guid("inline")
AUDIO_GUID = make_guid("audio")
AUDIO = bytes(range(256)) * 64  # stands in for a recording: binary, copied byte for byte
INLINE_TEXT = "District note\r\nThe district asked for coaching on referrals.\r\n"


def gold_codings() -> list[dict]:
    """The gold spans of smp01, the coded selections of the sample project."""
    lines = (SAMPLES / "gold" / "smp01_child_welfare.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _code_nodes(parent: ET.Element, nodes) -> None:
    for guid, name, codable, children in nodes:
        el = ET.SubElement(
            parent,
            "Code",
            {"guid": guid, "name": name, "isCodable": "true" if codable else "false", "color": "#336699"},
        )
        _code_nodes(el, children)


def build_project(
    path: Path,
    sources: list[dict],
    drop_member: str | None = None,
    qde: bytes | None = None,
    audio: bytes | None = None,
) -> Path:
    """sources: {guid, name, text, inline?, selections: [(guid, start, end, user, [code guids])]};
    ``audio``: also an audio source stored in the archive (not text: import passes it by)."""
    root = ET.Element("Project", {"xmlns": NS, "name": "test project", "origin": "hand-built"})
    users = ET.SubElement(root, "Users")
    ET.SubElement(users, "User", {"guid": ANA, "name": "Ana"})
    ET.SubElement(users, "User", {"guid": BEN, "name": "Ben"})
    codes = ET.SubElement(ET.SubElement(root, "CodeBook"), "Codes")
    _code_nodes(codes, CODE_TREE)
    holder = ET.SubElement(root, "Sources")
    files = {}
    for src in sources:
        attrs = {"guid": src["guid"], "name": src["name"]}
        if not src.get("inline"):
            attrs["plainTextPath"] = f"internal://{src['guid']}.txt"
            files[f"Sources/{src['guid']}.txt"] = src["text"].encode("utf-8")
        el = ET.SubElement(holder, "TextSource", attrs)
        if src.get("inline"):  # an escaped CR survives XML parsing; write it as &#13;
            ET.SubElement(el, "PlainTextContent").text = src["text"].replace("\r", "\ue123")
        for sel_guid, start, end, user, code_guids in src.get("selections", []):
            sel = ET.SubElement(
                el,
                "PlainTextSelection",
                {
                    "guid": sel_guid,
                    "startPosition": str(start),
                    "endPosition": str(end),
                    "creatingUser": user,
                    "creationDateTime": "2024-03-12T10:00:00Z",
                },
            )
            for k, code in enumerate(code_guids):
                coding = ET.SubElement(sel, "Coding", {"guid": make_guid(f"{sel_guid}-{k}"), "creatingUser": user})
                ET.SubElement(coding, "CodeRef", {"targetGUID": code})
    if audio is not None:
        ET.SubElement(
            holder, "AudioSource", {"guid": AUDIO_GUID, "name": "recording", "path": f"internal://{AUDIO_GUID}.m4a"}
        )
        files[f"Sources/{AUDIO_GUID}.m4a"] = audio
    xml = ET.tostring(root, encoding="unicode").replace("\ue123", "&#13;")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "project.qde",
            qde if qde is not None else ('<?xml version="1.0" encoding="utf-8"?>\n' + xml).encode("utf-8"),
        )
        for name, data in files.items():
            if name != drop_member:
                archive.writestr(name, data)
    return path


def smp01_source() -> dict:
    text = (SAMPLES / "smp01_child_welfare.txt").read_text(encoding="utf-8")
    selections = []
    for i, g in enumerate(gold_codings()):
        codes = [LABEL_CODE[g["label"]]]
        if i == 4:  # coded only with a code the codebook does not know
            codes = [FUNDING]
        elif i == 5:  # a grandchild of "Co-creation" inherits co_creation
            codes = [SHARED]
        elif i == 12:  # a child of a code mapped only through --code-map
            codes = [HELPDESK]
        elif i == 1:  # one mapped and one unmapped code on the same selection
            codes = [PUSH, FUNDING]
        selections.append((make_guid(f"smp01-{i}"), g["start"], g["end"], ANA if i % 2 == 0 else BEN, codes))
    return {"guid": SMP01_GUID, "name": "smp01_child_welfare.txt", "text": text, "selections": selections}


def maori_source() -> dict:
    co, pull = MAORI_TEXT.index(MAORI_CO), MAORI_TEXT.index(MAORI_PULL)
    return {
        "guid": MAORI_GUID,
        "name": MAORI_NAME,
        "text": MAORI_TEXT,
        "selections": [
            (make_guid("m-co"), co, co + len(MAORI_CO), ANA, [COCREATION]),
            (make_guid("m-pull"), pull, pull + len(MAORI_PULL), BEN, [PULL]),
        ],
    }


def inline_source() -> dict:
    start = INLINE_TEXT.index("The district")
    return {
        "guid": INLINE_GUID,
        "name": "inline note",
        "text": INLINE_TEXT,
        "inline": True,
        "selections": [(make_guid("inline-1"), start, INLINE_TEXT.index(".") + 1, ANA, [PULL])],
    }


def smp06_source() -> dict:  # nobody has coded it yet
    return {
        "guid": SMP06_GUID,
        "name": "smp06_juvenile_justice.md",
        "text": (SAMPLES / "smp06_juvenile_justice.md").read_text(encoding="utf-8"),
    }


def sample_project(path: Path) -> Path:
    """The project most tests start from: two coders' codings of smp01, a CRLF source in te reo
    Māori with an emoji, an inline source, an uncoded source, and a recording."""
    return build_project(path, [smp01_source(), maori_source(), inline_source(), smp06_source()], audio=AUDIO)


@cache
def schema(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / name))


def assert_valid_project(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("project.qde")
    schema("Project.xsd").validate(io.BytesIO(xml))
    return xml


def project_selections(path: Path) -> dict[str, bytes]:
    """Every PlainTextSelection of a project, serialised, by guid."""
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("project.qde"))
    return {s.get("guid"): ET.tostring(s) for s in root.iter(f"{{{NS}}}PlainTextSelection")}


def count_codings(path: Path) -> int:
    """Every Coding of a project (people's and suggestions)."""
    with zipfile.ZipFile(path) as archive:
        return sum(1 for _ in ET.fromstring(archive.read("project.qde")).iter(f"{{{NS}}}Coding"))


def gold_predictions() -> pd.DataFrame:
    """smp01's gold spans as a predictions table, some of them below a confidence of 0.5."""
    rows = []
    for i, g in enumerate(gold_codings()):
        rows.append(
            {
                "source": "smp01_child_welfare.txt",
                "start": g["start"],
                "end": g["end"],
                "text": g["text"],
                "label": g["label"],
                "confidence": 0.9 if i % 3 else 0.3,
            }
        )
    return pd.DataFrame(rows)
