"""REFI-QDA round trip: human codings in NVivo, ATLAS.ti, MAXQDA or QualCoder projects become coded
excerpts, and model labels go back into a project as suggested codings that a coder reviews there.

A ``.qdpx`` file is a zip archive holding ``project.qde`` (XML, namespace ``urn:QDA-XML:project:1.0``)
and the sources' files under ``Sources/``; a ``.qdc`` file is a bare codebook (namespace
``urn:QDA-XML:codebook:1.0``). The schemas are ``Project.xsd`` and ``Codebook.xsd`` of QDA-XML 1.0.

Offsets
    ``startPosition`` / ``endPosition`` of a ``PlainTextSelection`` count Unicode code points into
    the text source's plain text, which is exactly Python ``str`` indexing (an emoji is one
    position, not two UTF-16 units or four bytes).

Line endings
    A source's plain text is used exactly as the project stores it: the internal file
    (``plainTextPath="internal://<guid>.txt"``) is decoded as UTF-8 and its line endings are kept,
    so in a CRLF source a line break is two positions, as in the Windows tools that wrote it. Only a
    leading UTF-8 byte order mark is dropped (positions start after it). Inline
    ``PlainTextContent`` is taken as the XML parser delivers it (XML itself turns a literal CRLF
    into LF; an escaped ``&#13;`` survives and is written back escaped). New sources made from
    transcripts carry ``supportlens.transcripts.read``'s ``Transcript.text`` unchanged: UTF-8 without a byte
    order mark and with ``"\\n"`` line endings, so a passage's offsets are the same in supportlens
    output and in the project.

Segmenting a source
    Uncoded text (``uncoded_as``) and predictions need passages. A source's text is parsed like a
    ``.txt`` transcript (``.md`` when the source name ends in ``.md``) on an LF copy, and every
    offset is mapped back to the stored text, so passages always satisfy
    ``plain_text[start:end] == passage.text``.

Codes
    A project code maps to a codebook label by a code map entry, else by its name (a label or
    alias), else by the "supportlens label: X" line supportlens writes into the descriptions of
    the codes it creates; a code with none of these inherits its parent's label.

Suggestions
    Exported suggestions are ordinary codings under their own user (default "supportlens
    suggestions"), each on a new selection whose ``Description`` starts with
    ``"supportlens suggestion:"``. Human selections are never changed. On import such selections
    are skipped unless asked for, so unreviewed model output does not become training data.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from supportlens.codebook import Code, Codebook
from supportlens.io.atomic import write_atomic
from supportlens.io.jsonl import frame_to_jsonl
from supportlens.transcripts.read import Cue, ReadError, Transcript
from supportlens.transcripts.segmentation import SpeakerRules, merge_turns, segment, speaker_roles

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
PROJECT_FILE = "project.qde"
SUGGESTION_MARK = "supportlens suggestion:"
DEFAULT_USER = "supportlens suggestions"
EXCERPT_COLUMNS = ["id", "interview_id", "source", "start", "end", "text", "label", "code", "coder",
                   "speaker", "speaker_role"]
TABLE_SUFFIXES = (".csv", ".jsonl", ".xlsx")
# codes made from a codebook get stable guids, so a .qdc and every new project agree on them
_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://supportlens/refi-qda/codebook")
_RGB = re.compile(r"#(?:[A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})")
_LABEL_LINE = re.compile(r"^supportlens label: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


class QdaError(ValueError):
    """A REFI-QDA project, codebook or code map cannot be used; one line naming file and element."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# ---------------------------------------------------------------------------------------------
# reading a project


@dataclass
class QdaCode:
    guid: str
    name: str
    path: str  # "Parent > Child", how a person finds it in the code tree
    parent: str | None
    label_hint: str | None = None  # from a "supportlens label: X" line in the description


@dataclass
class QdaSource:
    guid: str
    name: str
    text: str  # the plain text as stored; positions refer to it
    element: ET.Element


@dataclass
class QdaProject:
    """A parsed ``project.qde``; the archive's other members stay in the file at ``path`` (a
    project may hold gigabytes of audio and video) and are copied from there byte for byte."""

    path: Path
    root: ET.Element
    namespace: str  # the root's namespace URI ("" for a project written without one)
    qde_name: str
    members: list[str]  # names of the other members of the archive at `path`
    added: list[tuple[zipfile.ZipInfo, bytes]] = field(default_factory=list)  # new files to write

    def tag(self, local: str) -> str:
        return f"{{{self.namespace}}}{local}" if self.namespace else local

    @property
    def where(self) -> str:
        return f"{self.path}: {self.qde_name}"


def open_project(path: str | os.PathLike) -> QdaProject:
    """Read a ``.qdpx`` archive; every problem is a `QdaError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise QdaError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            qde = _find_qde(path, names)
            xml = archive.read(qde)
        members = [n for n in names if n != qde]
    except (zipfile.BadZipFile, NotImplementedError) as exc:  # not a zip / unknown compression
        raise QdaError(f"{path}: not a REFI-QDA project (a .qdpx file is a zip archive): {exc}") from None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        line, column = exc.position
        raise QdaError(f"{path}: {qde}: broken XML at line {line}, column {column}: "
                       f"{str(exc).split(':')[0]}") from None
    namespace, local = _split_tag(root.tag)
    if local != "Project":
        raise QdaError(f"{path}: {qde}: the root element is <{local}>, not <Project>")
    if namespace not in ("", PROJECT_NS):
        raise QdaError(f"{path}: {qde}: namespace {namespace!r} is not {PROJECT_NS!r}")
    return QdaProject(path, root, namespace, qde, members)


def _find_qde(path: Path, names: list[str]) -> str:
    if PROJECT_FILE in names:
        return PROJECT_FILE
    found = [n for n in names if n.lower().endswith(".qde")]
    if len(found) == 1:  # tolerated: a project file under another name or in a folder
        return found[0]
    raise QdaError(f"{path}: no {PROJECT_FILE} in the archive"
                   + (f" (several .qde files: {', '.join(found)})" if found else ""))


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def project_codes(project: QdaProject) -> dict[str, QdaCode]:
    """All codes of the project's code tree by guid, parents before children."""
    codes: dict[str, QdaCode] = {}

    def walk(element: ET.Element, parent: QdaCode | None) -> None:
        for node in element.findall(project.tag("Code")):
            guid, name = node.get("guid"), node.get("name")
            if not guid or name is None:
                raise QdaError(f"{project.where}: a <Code> lacks its guid or name attribute")
            if guid in codes:
                raise QdaError(f"{project.where}: Code guid {guid} is used twice")
            hint = _LABEL_LINE.search(node.findtext(project.tag("Description")) or "")
            code = QdaCode(guid, name, f"{parent.path} > {name}" if parent else name,
                           parent.guid if parent else None, hint.group(1) if hint else None)
            codes[guid] = code
            walk(node, code)

    codes_element = project.root.find(f"{project.tag('CodeBook')}/{project.tag('Codes')}")
    if codes_element is not None:
        walk(codes_element, None)
    return codes


def project_users(project: QdaProject) -> dict[str, str]:
    """User guid -> name (the guid itself when the user has no name)."""
    users = {}
    for user in project.root.iterfind(f"{project.tag('Users')}/{project.tag('User')}"):
        guid = user.get("guid")
        if guid:
            users[guid] = user.get("name") or guid
    return users


def text_sources(project: QdaProject) -> list[QdaSource]:
    """The project's text sources with their plain text (other source kinds carry no text)."""
    sources = []
    archive = zipfile.ZipFile(project.path) if project.members else None
    try:
        for element in project.root.iterfind(f"{project.tag('Sources')}/{project.tag('TextSource')}"):
            guid = element.get("guid")
            if not guid:
                raise QdaError(f"{project.where}: a <TextSource> has no guid")
            name = element.get("name") or guid
            sources.append(QdaSource(guid, name, _plain_text(project, archive, element, guid, name), element))
    except zipfile.BadZipFile as exc:  # a damaged member (bad CRC)
        raise QdaError(f"{project.path}: damaged archive: {exc}") from None
    finally:
        if archive is not None:
            archive.close()
    return sources


def _plain_text(project: QdaProject, archive: zipfile.ZipFile | None, element: ET.Element, guid: str,
                name: str) -> str:
    what = f"{project.where}: TextSource {guid} ({name!r})"
    inline = element.find(project.tag("PlainTextContent"))
    if inline is not None:
        return inline.text or ""
    target = element.get("plainTextPath")
    if not target:
        raise QdaError(f"{what} has neither plainTextPath nor PlainTextContent")
    if not target.startswith("internal://"):
        raise QdaError(f"{what}: plainTextPath {target!r} points outside the project; only sources "
                       "stored in the .qdpx (internal://) can be read")
    member = target[len("internal://"):]
    wanted = {f"sources/{member}".lower(), member.lower()}
    found = next((n for n in project.members if n.lower() in wanted), None)
    if found is None or archive is None:
        raise QdaError(f"{what}: plainTextPath {target!r}: Sources/{member} is not in the archive")
    data = archive.read(found)
    try:
        return data.decode("utf-8-sig")  # the standard stores plain text as UTF-8
    except UnicodeDecodeError as exc:
        raise QdaError(f"{what}: Sources/{member} is not UTF-8 (byte {exc.start})") from None


# ---------------------------------------------------------------------------------------------
# code mapping


def _known_label(codebook: Codebook, value: object, where: str) -> str:
    """The codebook label for a code name or alias; a QdaError naming ``where`` otherwise."""
    label = codebook.normalise(value)
    if label is None:
        raise QdaError(f"{where}: {value!r} is not a codebook code; known: {', '.join(codebook.labels)}")
    return label


def load_code_map(path: str | os.PathLike) -> dict[str, str | None]:
    """``{project code name or "Parent > Child" path: codebook label or alias}``; null = ignore."""
    path = Path(path)
    if not path.is_file():
        raise QdaError(f"{path}: code map file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise QdaError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise QdaError(f"{path}: a code map is a mapping of project code names to codebook labels")
    out: dict[str, str | None] = {}
    for key, value in raw.items():
        if value is not None and not isinstance(value, str):
            raise QdaError(f"{path}: {key!r}: the value must be a codebook label or null, "
                           f"got {type(value).__name__}")
        out[str(key)] = value
    return out


def _name_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def map_codes(codes: dict[str, QdaCode], codebook: Codebook, code_map: dict[str, str | None] | None = None,
              map_source: str = "code map") -> tuple[dict[str, str | None], list[str]]:
    """Each project code's codebook label (or None), and notes about the map.

    A code's own mapping is its ``code_map`` entry (by path, else by name; null maps it to
    nothing), else its name read as a codebook label or alias, else the "supportlens label: X"
    line that supportlens writes into the descriptions of codes it creates (so "AI: Push" and
    renamed codes still map). A code without one inherits its parent's, so the children of
    "Co-creation" count as co-creation.
    """
    entries: dict[str, str | None] = {}
    given: dict[str, str] = {}  # normalised key -> as written, for notes
    for key, value in (code_map or {}).items():
        label = None if value is None else _known_label(codebook, value, f"{map_source}: {key!r}")
        entries[_name_key(key)] = label
        given[_name_key(key)] = key
    used: set[str] = set()
    mapping: dict[str, str | None] = {}
    for guid, code in codes.items():  # parents come first, so mapping[parent] is ready
        for key in (_name_key(code.path), _name_key(code.name)):
            if key in entries:
                mapping[guid] = entries[key]
                used.add(key)
                break
        else:
            own = codebook.normalise(code.name)
            if own is None and code.label_hint:
                own = codebook.normalise(code.label_hint)
            mapping[guid] = own if own is not None else mapping.get(code.parent) if code.parent else None
    notes = [f"{map_source}: {given[key]!r} matches no code of the project" for key in entries if key not in used]
    return mapping, notes


# ---------------------------------------------------------------------------------------------
# sources as transcripts


def _lf_index(text: str) -> tuple[str, list[int] | None]:
    """An LF copy of ``text`` and, when it differs, the stored offset of every LF-copy offset."""
    if "\r" not in text:
        return text, None
    chars: list[str] = []
    index: list[int] = []
    i, n = 0, len(text)
    while i < n:
        index.append(i)
        if text[i] == "\r":
            chars.append("\n")
            i += 2 if text.startswith("\r\n", i) else 1
        else:
            chars.append(text[i])
            i += 1
    index.append(n)
    return "".join(chars), index


def source_transcript(name: str, text: str) -> Transcript:
    """Parse a source's plain text like a .txt transcript, with offsets into ``text`` as stored."""
    # read.py's plain-text parser works on a string with "\n" line endings; it is private there
    # because read_transcript is its only caller (ask: expose it as a public read_text function)
    from supportlens.transcripts.read import read_text

    lf_text, index = _lf_index(text)
    fmt = "md" if name.lower().endswith(".md") else "txt"
    parsed = read_text(lf_text, name, fmt)
    if index is None:
        return Transcript(name, text, parsed.cues, fmt, "utf-8", parsed.notes)
    cues = []
    for cue in parsed.cues:
        start, end = index[cue.start], index[cue.end]
        cues.append(Cue(cue.speaker, text[start:end], start, end, cue.start_time, cue.end_time))
    return Transcript(name, text, cues, fmt, "utf-8", parsed.notes + ["CRLF line endings kept"])


# ---------------------------------------------------------------------------------------------
# import


@dataclass
class ImportReport:
    """What an import read, mapped and skipped; nothing is dropped without a count here."""

    path: str
    sources: int = 0
    selections: int = 0  # coded text selections read (suggestions not included unless asked)
    excerpts: int = 0  # rows from human codings
    uncoded_excerpts: int = 0  # rows added for uncoded participant text
    coders: dict[str, int] = field(default_factory=dict)  # coder -> rows
    code_mapping: dict[str, str | None] = field(default_factory=dict)  # code path -> label
    unmapped: dict[str, int] = field(default_factory=dict)  # code path -> codings mapped to nothing
    skipped_selections: int = 0  # selections none of whose codes map to the codebook
    uncoded_selections: int = 0  # selections without a coding (e.g. holding a memo)
    suggestions_skipped: int = 0
    suggestion_coders: dict[str, int] = field(default_factory=dict)  # users of suggestions read -> rows
    notes: list[str] = field(default_factory=list)

    def summary(self, import_options: bool = True) -> str:
        """One line per finding. ``import_options`` False: the reader (``train``, ``evaluate``,
        any command reading the project through `load_coded`) lacks ``import``'s options, so the
        advice names a ``supportlens import`` run whose output file can be used instead."""
        def advice(option: str, value: str = "") -> str:
            if import_options:
                return option
            return (f"`supportlens import {shlex.quote(self.path)} {option}{value} --out coded.csv`, then use "
                    "coded.csv in place of the project")

        lines = [f"{self.excerpts} excerpts from {self.selections} coded selections in "
                 f"{self.sources} text sources of {self.path}"]
        if self.coders:
            lines.append("coders: " + ", ".join(
                f"{c or '(unknown)'} ({n}{', model suggestions' if c in self.suggestion_coders else ''})"
                for c, n in self.coders.items()))
        if self.skipped_selections:
            names = ", ".join(f"{name!r} ({n})" for name, n in sorted(self.unmapped.items()))
            lines.append(f"{self.skipped_selections} selections skipped: their codes map to no codebook "
                         f"code ({names}); map them with {advice('--code-map', ' MAP.yaml')}")
        elif self.unmapped:
            lines.append("codings with unmapped codes ignored: "
                         + ", ".join(f"{name!r} ({n})" for name, n in sorted(self.unmapped.items())))
        if self.uncoded_excerpts:
            lines.append(f"{self.uncoded_excerpts} uncoded participant passages added"
                         + (" (text coded only with codes that map to nothing counts as uncoded: map such "
                            "a code in --code-map if its text is not 'none')" if self.skipped_selections else ""))
        if self.suggestions_skipped:
            lines.append(f"{self.suggestions_skipped} supportlens suggestions skipped (unreviewed model "
                         f"output; include them with {advice('--include-suggestions')})")
        if self.uncoded_selections:
            lines.append(f"{self.uncoded_selections} selections without a code ignored")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def import_qdpx(path: str | os.PathLike, codebook: Codebook, code_map: dict[str, str | None] | None = None,
                uncoded_as: str | None = None, rules: SpeakerRules | None = None,
                include_suggestions: bool = False, map_source: str = "code map") -> tuple[pd.DataFrame, ImportReport]:
    """Every coded text selection of a ``.qdpx`` project as an excerpt row (see EXCERPT_COLUMNS).

    ``id`` is the selection's guid (``guid#n`` when one selection carries several labels or
    coders), ``interview_id`` the source name, ``source`` the source guid, ``start``/``end`` code
    point offsets with ``text == plain_text[start:end]``, ``code`` the project code that gave the
    label, ``coder`` the coding user's name, ``speaker``/``speaker_role`` those of the turn the
    selection lies in (None when it spans several speakers or the source has no speaker labels).

    ``uncoded_as`` (e.g. "none"): participant passages, segmented as for prediction, that overlap no
    mapped selection become excerpts with that label. Only sources with at least one mapped
    selection take part (a transcript nobody has coded yet says nothing about its text), and a
    passage that a selection covers only in part is left out (the uncoded rest of a coded turn is
    usually context of the coded part, not evidence that no approach is described).
    """
    project = open_project(path)
    report = ImportReport(path=str(project.path))
    codes = project_codes(project)
    mapping, notes = map_codes(codes, codebook, code_map, map_source)
    report.notes.extend(notes)
    report.code_mapping = {codes[g].path: label for g, label in mapping.items()}
    users = project_users(project)
    uncoded_label = None if uncoded_as is None else _known_label(codebook, uncoded_as, "uncoded_as")
    rules = rules or SpeakerRules()

    sources = text_sources(project)
    names = _interview_ids(sources, report)
    rows: list[dict[str, Any]] = []
    unmapped: Counter[str] = Counter()
    for source in sources:
        report.sources += 1
        turns = _SourceTurns(source, rules)
        covered: list[tuple[int, int]] = []
        whole = len(source.element.findall(project.tag("Coding")))
        if whole:  # a code on the whole document says nothing about which passage it means
            report.notes.append(f"source {source.name!r}: {whole} coding(s) of the whole source ignored")
        for selection in source.element.iterfind(project.tag("PlainTextSelection")):
            sel_guid = selection.get("guid") or ""  # required by the schema; checked below
            where = f"{project.where}: PlainTextSelection {sel_guid} in source {source.name!r}"
            codings = selection.findall(project.tag("Coding"))
            if not codings:
                report.uncoded_selections += 1
                continue
            suggestion = _is_suggestion(project, selection)
            if suggestion and not include_suggestions:
                report.suggestions_skipped += 1
                continue
            if not sel_guid:
                raise QdaError(f"{where}: a <PlainTextSelection> has no guid")
            start, end = _positions(selection, where, len(source.text))
            report.selections += 1
            found: dict[tuple[str, str], str] = {}  # (label, coder) -> code path
            for coding in codings:
                ref = coding.find(project.tag("CodeRef"))
                target = ref.get("targetGUID") if ref is not None else None
                if target is None:
                    raise QdaError(f"{where}: Coding {coding.get('guid')} has no CodeRef targetGUID")
                if target not in codes:
                    raise QdaError(f"{where}: Coding {coding.get('guid')}: CodeRef {target} is not a code "
                                   "of the project's CodeBook")
                label = mapping[target]
                if label is None:
                    unmapped[codes[target].path] += 1
                    continue
                user = coding.get("creatingUser") or selection.get("creatingUser") or ""
                found.setdefault((label, users.get(user, user)), codes[target].path)
            if not found:
                report.skipped_selections += 1
                continue
            text = source.text[start:end]
            if not text.strip():
                report.notes.append(f"{where}: selection {start}-{end} holds only whitespace; skipped")
                continue
            covered.append((start, end))
            speaker, role = turns.speaker_at(start, end)
            for k, ((label, coder), code) in enumerate(found.items(), start=1):
                if suggestion:
                    report.suggestion_coders[coder] = report.suggestion_coders.get(coder, 0) + 1
                rows.append({"id": sel_guid if len(found) == 1 else f"{sel_guid}#{k}",
                             "interview_id": names[source.guid], "source": source.guid, "start": start,
                             "end": end, "text": text, "label": label, "code": code, "coder": coder,
                             "speaker": speaker, "speaker_role": role})
        if uncoded_label is not None and covered:
            rows.extend(turns.uncoded_rows(covered, uncoded_label, names[source.guid], report))
    report.unmapped = dict(unmapped)
    frame = pd.DataFrame(rows, columns=EXCERPT_COLUMNS)
    report.excerpts = len(frame) - report.uncoded_excerpts
    report.coders = dict(Counter(r["coder"] for r in rows if r["code"]))
    return frame, report


def _interview_ids(sources: list[QdaSource], report: ImportReport) -> dict[str, str]:
    counts = Counter(s.name for s in sources)
    ids = {}
    for s in sources:
        ids[s.guid] = s.name if counts[s.name] == 1 else f"{s.name} [{s.guid[:8]}]"
    for name, n in counts.items():
        if n > 1:
            report.notes.append(f"{n} sources are named {name!r}; their interview ids carry the guid")
    return ids


def _is_suggestion(project: QdaProject, selection: ET.Element) -> bool:
    description = selection.findtext(project.tag("Description")) or ""
    return description.lstrip().startswith(SUGGESTION_MARK)


def _positions(selection: ET.Element, where: str, length: int) -> tuple[int, int]:
    try:
        start, end = int(selection.get("startPosition", "")), int(selection.get("endPosition", ""))
    except ValueError:
        raise QdaError(f"{where}: startPosition/endPosition must be integers, got "
                       f"{selection.get('startPosition')!r}/{selection.get('endPosition')!r}") from None
    if not 0 <= start <= end <= length:
        raise QdaError(f"{where}: positions {start}-{end} lie outside the source's plain text "
                       f"(0-{length} characters)")
    return start, end


class _SourceTurns:
    """A source's turns and speaker roles, parsed on first use (many sources need neither)."""

    def __init__(self, source: QdaSource, rules: SpeakerRules):
        self.source, self.rules = source, rules
        self._transcript: Transcript | None = None
        self._turns: list[Cue] | None = None
        self._roles: dict[str, str] = {}

    def _parse(self) -> Transcript | None:
        if self._turns is None:
            try:
                self._transcript = source_transcript(self.source.name, self.source.text)
                self._turns = merge_turns(self._transcript)
                self._roles = speaker_roles(self._turns, self.rules)
            except ReadError:  # an empty source has no turns; its selections still count
                self._turns = []
        return self._transcript

    def speaker_at(self, start: int, end: int) -> tuple[str | None, str | None]:
        self._parse()
        speakers = {t.speaker for t in self._turns or [] if t.start < end and start < t.end}
        if len(speakers) == 1:
            speaker = speakers.pop()
            if speaker is not None:
                return speaker, self._roles.get(speaker, "participant")
        return None, None

    def uncoded_rows(self, covered: list[tuple[int, int]], label: str, interview_id: str,
                     report: ImportReport) -> list[dict[str, Any]]:
        transcript = self._parse()
        if transcript is None:
            return []
        rows = []
        for p in segment(transcript, self.rules):
            if p.role == "interviewer" or any(p.start < e and s < p.end for s, e in covered):
                continue
            rows.append({"id": f"{self.source.guid}:{p.start}-{p.end}", "interview_id": interview_id,
                         "source": self.source.guid, "start": p.start, "end": p.end, "text": p.text,
                         "label": label, "code": "", "coder": "", "speaker": p.speaker,
                         "speaker_role": p.role if p.speaker is not None else None})
        report.uncoded_excerpts += len(rows)
        return rows


def write_excerpts(frame: pd.DataFrame, out_path: str | os.PathLike) -> Path:
    """Write excerpts as .csv, .jsonl or .xlsx (by suffix) through a temporary file."""
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise QdaError(f"{out_path}: the output must end in one of {', '.join(TABLE_SUFFIXES)}")
    if not out_path.parent.is_dir():
        raise QdaError(f"{out_path.parent}: output folder does not exist")

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        elif suffix == ".jsonl":
            tmp.write_text(frame_to_jsonl(frame), encoding="utf-8")
        else:
            frame.to_excel(tmp, index=False, engine="openpyxl")

    write_atomic(out_path, write)
    return out_path


# ---------------------------------------------------------------------------------------------
# export


@dataclass
class ExportReport:
    output: Path
    sources: int = 0
    suggestions: int = 0
    below_confidence: int = 0
    none_skipped: int = 0
    codes_created: list[str] = field(default_factory=list)
    replaced: int = 0  # earlier supportlens suggestions of the same user, removed first
    notes: list[str] = field(default_factory=list)  # e.g. unsafe entries of the input left out

    def summary(self) -> str:
        parts = [f"{self.suggestions} suggestions in {self.sources} sources -> {self.output}"]
        if self.replaced:
            parts.append(f"{self.replaced} earlier supportlens suggestions replaced")
        if self.below_confidence:
            parts.append(f"{self.below_confidence} below the minimum confidence left out")
        if self.none_skipped:
            parts.append(f"{self.none_skipped} 'none' passages not suggested")
        if self.codes_created:
            parts.append("codes added: " + ", ".join(self.codes_created))
        return "; ".join(parts)


def code_description(code: Code) -> str:
    """A code's definition as QDA software shows it: summary, definition and when (not) to use it."""
    parts = [code.short, code.definition]
    if code.use_when:
        parts.append(f"Use when: {code.use_when}")
    if code.do_not_use_when:
        parts.append(f"Do not use when: {code.do_not_use_when}")
    parts.append(f"supportlens label: {code.label}")
    return "\n\n".join(p for p in parts if p)


def codebook_guid(codebook: Codebook, label: str) -> str:
    return str(uuid.uuid5(_GUID_NAMESPACE, f"{codebook.name}/{label}"))


def _code_element(parent: ET.Element, tag: Callable[[str], str], guid: str, name: str, code: Code) -> ET.Element:
    attrs = {"guid": guid, "name": name, "isCodable": "true"}
    if _RGB.fullmatch(code.color or ""):
        attrs["color"] = code.color
    element = ET.SubElement(parent, tag("Code"), attrs)
    ET.SubElement(element, tag("Description")).text = code_description(code)
    return element


def export_codebook(codebook: Codebook, out_path: str | os.PathLike) -> Path:
    """Write the codebook as a REFI-QDA ``.qdc`` file that QDA software imports as a code tree."""
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise QdaError(f"{out_path.parent}: output folder does not exist")

    def tag(local: str) -> str:
        return f"{{{CODEBOOK_NS}}}{local}"

    root = ET.Element(tag("CodeBook"), {"origin": f"supportlens ({codebook.name} {codebook.version})"})
    codes = ET.SubElement(root, tag("Codes"))
    for code in codebook.codes:
        _code_element(codes, tag, codebook_guid(codebook, code.label), code.name, code)
    data = _serialise(root, CODEBOOK_NS)
    write_atomic(out_path, lambda tmp: tmp.write_bytes(data))
    return out_path


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_guid() -> str:
    return str(uuid.uuid4())


def _new_project(name: str, sources: dict[str, str], user_name: str) -> tuple[QdaProject, dict[str, str]]:
    """An empty project with one internal text source per entry of ``sources``; returns key -> guid."""
    user = _new_guid()
    now = _now()
    root = ET.Element(f"{{{PROJECT_NS}}}Project", {"name": name, "origin": "supportlens",
                                                  "creatingUserGUID": user, "creationDateTime": now})
    project = QdaProject(Path(name), root, PROJECT_NS, PROJECT_FILE, [])
    users = ET.SubElement(root, project.tag("Users"))
    ET.SubElement(users, project.tag("User"), {"guid": user, "name": user_name})
    element = ET.SubElement(root, project.tag("Sources")) if sources else None
    keys = {}
    for key, text in sources.items():
        guid = _new_guid()
        keys[key] = guid
        ET.SubElement(element, project.tag("TextSource"),
                      {"guid": guid, "name": str(key), "plainTextPath": f"internal://{guid}.txt",
                       "creatingUser": user, "creationDateTime": now})
        info = zipfile.ZipInfo(f"Sources/{guid}.txt", date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        project.added.append((info, text.encode("utf-8")))
    return project, keys


def _child_index(parent: ET.Element, project: QdaProject, after: tuple[str, ...]) -> int:
    """Where a new child goes: after the last child whose tag is in ``after`` (schema order)."""
    index = 0
    wanted = {project.tag(t) for t in after}
    for i, child in enumerate(parent):
        if child.tag in wanted:
            index = i + 1
    return index


def _ensure(project: QdaProject, parent: ET.Element, local: str, after: tuple[str, ...]) -> ET.Element:
    element = parent.find(project.tag(local))
    if element is None:
        element = ET.Element(project.tag(local))
        parent.insert(_child_index(parent, project, after), element)
    return element


def _suggestion_user(project: QdaProject, name: str) -> str:
    users = _ensure(project, project.root, "Users", ())
    for user in users.findall(project.tag("User")):
        if user.get("name") == name and user.get("guid"):
            return user.get("guid")
    guid = _new_guid()
    ET.SubElement(users, project.tag("User"), {"guid": guid, "name": name})
    return guid


def _suggestion_codes(project: QdaProject, codebook: Codebook, labels: list[str], prefix: str,
                      report: ExportReport) -> dict[str, str]:
    """label -> code guid: the project's own code for the label, or a new top-level one."""
    existing = project_codes(project)
    chosen: dict[str, str] = {}
    for label in labels:
        code = codebook.code(label)
        wanted = f"{prefix}{code.name}"
        if prefix:
            match = [g for g, c in existing.items() if c.name == wanted]
        else:  # the human coders' code for it, the codebook name first, then any alias
            match = ([g for g, c in existing.items() if _name_key(c.name) == _name_key(code.name)]
                     or [g for g, c in existing.items() if codebook.normalise(c.name) == label])
        if match:
            chosen[label] = match[0]
            continue
        book = _ensure(project, project.root, "CodeBook", ("Users",))
        codes = _ensure(project, book, "Codes", ())
        guid = _new_guid()
        _code_element(codes, project.tag, guid, wanted, code)
        chosen[label] = guid
        report.codes_created.append(wanted)
    return chosen


_PROJECT_PARTS = ("Cases", "Variables", "Sets", "Links", "Graphs")  # made only by people


@dataclass
class ProjectContents:
    """What a project holds, people's work told apart from supportlens' own suggestions."""

    sources: int = 0
    sources_added: int = 0  # added by a person (supportlens' new projects mark theirs as its own)
    codings: int = 0  # every coding that is not part of a supportlens suggestion
    coders: set[str] = field(default_factory=set)  # who made them
    selections: int = 0  # people's selections without a coding (one holding a memo, say)
    notes: int = 0
    codes: int = 0  # codes supportlens did not make (its own carry a "supportlens label" line)
    other: dict[str, int] = field(default_factory=dict)  # cases, variables, sets, links, graphs
    suggestions: int = 0

    @property
    def human_work(self) -> bool:
        return bool(self.sources_added or self.codings or self.selections or self.notes or self.codes
                    or self.other)

    def describe(self) -> str:
        """'6 sources and 59 codings by 1 user'."""
        from supportlens.calibration import plural

        parts = [plural(self.sources, "source")]
        if self.codings:
            parts.append(f"{plural(self.codings, 'coding')} by {plural(len(self.coders), 'user')}")
        if self.selections:
            parts.append(f"{plural(self.selections, 'selection')} without a code")
        if self.notes:
            parts.append(plural(self.notes, "note"))
        if self.codes and not self.codings:  # a code tree nobody has used yet is work too
            parts.append(f"{plural(self.codes, 'code')} of its own")
        parts += [f"{n} {part.lower()}" for part, n in self.other.items()]
        if self.suggestions:
            parts.append(plural(self.suggestions, "supportlens suggestion"))
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def project_contents(project: QdaProject, user: str = DEFAULT_USER) -> ProjectContents:
    """Count a project's human work and the suggestions ``user`` (supportlens) made in it."""
    mine = {u.get("guid") for u in project.root.iter(project.tag("User")) if u.get("name") == user}
    names = project_users(project)
    contents = ProjectContents()
    sources = project.root.find(project.tag("Sources"))
    for source in sources if sources is not None else []:
        contents.sources += 1
        if source.get("creatingUser") not in mine:
            contents.sources_added += 1
        suggested: set[int] = set()  # the codings of supportlens' selections, by id()
        for element in source.iter():  # a selection comes before its codings
            _, local = _split_tag(element.tag)
            if local.endswith("Selection"):
                if element.get("creatingUser") in mine and _is_suggestion(project, element):
                    contents.suggestions += 1
                    suggested.update(id(c) for c in element.findall(project.tag("Coding")))
                elif element.find(project.tag("Coding")) is None:
                    contents.selections += 1
            elif local == "Coding" and id(element) not in suggested:
                contents.codings += 1
                who = element.get("creatingUser") or ""
                contents.coders.add(names.get(who, who))
    contents.notes = len(project.root.findall(f"{project.tag('Notes')}/{project.tag('Note')}"))
    contents.codes = sum(1 for code in project_codes(project).values() if code.label_hint is None)
    for part in _PROJECT_PARTS:
        element = project.root.find(project.tag(part))
        if element is not None and len(element):
            contents.other[part] = len(element)
    return contents


def _free_name(path: Path, suffix: str) -> Path:
    """``name-suggestions.qdpx`` beside ``path``, numbered when that file exists too."""
    candidate = path.with_name(f"{path.stem}{suffix}{path.suffix}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}{suffix}-{n}{path.suffix}")
        n += 1
    return candidate


def check_qdpx_output(out_path: str | os.PathLike, overwrite: bool = False, user: str = DEFAULT_USER,
                      cli_model: str | None = None) -> None:
    """Refuse an ``out_path`` whose project would be lost: a .qdpx that exists is replaced only
    with ``overwrite`` and only when it holds no human work (nothing but supportlens suggestions),
    or when it is not a readable project. ``cli_model`` (the --model of a ``supportlens predict``
    run) makes the messages speak in that command's flags."""
    out = Path(out_path)
    if not out.exists():
        return
    if out.is_dir():
        raise QdaError(f"{out}: is a folder; the output must be a .qdpx file")
    if cli_model is not None:
        allow, new_name = "--overwrite", "give --out a new file name"
        relabel = (f"supportlens predict {shlex.quote(str(out))} --model {shlex.quote(cli_model)} "
                   f"--out {shlex.quote(str(_free_name(out, '-suggestions')))}")
    else:
        allow, new_name = "overwrite=True", "give out_path a new file name"
        relabel = f"predict_to_qdpx([{str(out)!r}], labeler, {str(_free_name(out, '-suggestions'))!r})"
    try:
        contents = project_contents(open_project(out), user)
    except QdaError as exc:
        if overwrite:
            return  # not a project: nothing in it that supportlens could keep
        raise QdaError(f"{out} already exists and is not a readable REFI-QDA project ({exc}); it is not "
                       f"replaced unless you pass {allow}; or {new_name}") from None
    if contents.human_work:
        why = (f"a project with human work is never replaced, not even with {allow}" if overwrite
               else "it is not replaced")
        raise QdaError(f"{out} already exists and holds {contents.describe()}; {why}. To add suggestions "
                       f"to it, label the project itself into a copy that keeps every human coding: "
                       f"{relabel}; or {new_name}")
    if not overwrite:
        raise QdaError(f"{out} already exists and holds {contents.describe()} (no human work); pass {allow} "
                       f"to replace it, or {new_name}")


def export_suggestions(project_path: str | os.PathLike | None, predictions: pd.DataFrame,
                       sources: dict[str, str] | None, out_path: str | os.PathLike, codebook: Codebook,
                       user: str = DEFAULT_USER, code_prefix: str = "", min_confidence: float = 0.0,
                       model_uri: str = "", include_none: bool = False, overwrite: bool = False) -> ExportReport:
    """Write model labels as suggested codings into a ``.qdpx`` project.

    With ``project_path`` the project is copied and suggestions are added (human codings are left
    exactly as they are; suggestions an earlier run made for the same ``user`` are replaced);
    ``predictions.source`` names a text source by guid or by its (unique) name. Without a project, a new one is made from ``sources`` (name -> plain text, written as
    given, UTF-8) and ``predictions.source`` names its keys. ``predictions`` needs ``source``,
    ``start``, ``end``, ``label`` and ``confidence``; with a ``text`` column each row is checked
    against ``plain_text[start:end]``. Passages labelled ``none`` are not suggested unless
    ``include_none`` (a coder gains nothing from seeing most of a transcript coded "none").

    An existing ``out_path`` is never replaced when it holds human work, and otherwise only with
    ``overwrite`` (see `check_qdpx_output`); ``project_path`` itself is no exception. Entries of
    the project whose names point outside it (``../x``, ``/x``, ``C:x``) are left out, each with a
    line in ``notes``.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".qdpx":
        raise QdaError(f"{out_path}: the output must be a .qdpx file")
    if not out_path.parent.is_dir():
        raise QdaError(f"{out_path.parent}: output folder does not exist")
    if (project_path is None) == (sources is None):
        raise QdaError("export_suggestions needs either a project or the sources' texts, not both")
    if sources is not None and not sources:
        raise QdaError(f"no sources given: nothing was labelled; {out_path} was not written")
    check_qdpx_output(out_path, overwrite, user)
    report = ExportReport(output=out_path)
    if project_path is not None:
        project = open_project(project_path)
        texts = {s.guid: s for s in text_sources(project)}
        keys = dict(_source_keys(list(texts.values())))
        report.sources = len(texts)
        report.replaced = _drop_earlier_suggestions(project, texts, user)
    else:
        project, guids = _new_project(out_path.stem, sources, user)
        elements = {e.get("guid"): e for e in project.root.iter(project.tag("TextSource"))}
        texts = {guids[k]: QdaSource(guids[k], k, text, elements[guids[k]]) for k, text in sources.items()}
        keys = {k: guids[k] for k in sources}
        report.sources = len(sources)
    _add_suggestions(project, texts, keys, predictions, codebook, user, code_prefix, min_confidence,
                     model_uri, include_none, report)
    report.notes.extend(_write_project(project, out_path))
    return report


def _drop_earlier_suggestions(project: QdaProject, texts: dict[str, "QdaSource"], user: str) -> int:
    """Remove the suggestions an earlier run made in this project, so that labelling a project
    again replaces them instead of doubling every span. Only selections made by the suggestion
    user and marked as suggestions go; the coders' own codings are never touched."""
    users = {u.get("guid") for u in project.root.iter(project.tag("User")) if u.get("name") == user}
    dropped = 0
    for source in texts.values():
        for selection in list(source.element.findall(project.tag("PlainTextSelection"))):
            description = selection.find(project.tag("Description"))
            if (selection.get("creatingUser") in users and description is not None
                    and (description.text or "").startswith(SUGGESTION_MARK)):
                source.element.remove(selection)
                dropped += 1
    return dropped


def _source_keys(sources: list[QdaSource]) -> list[tuple[str, str]]:
    """Ways to name a source in predictions: its guid always, its name when no other has it."""
    names = Counter(s.name for s in sources)
    keys = [(s.guid, s.guid) for s in sources]
    keys += [(s.name, s.guid) for s in sources if names[s.name] == 1]
    return keys


_REQUIRED = ("source", "start", "end", "label", "confidence")


def _add_suggestions(project: QdaProject, texts: dict[str, QdaSource], keys: dict[str, str],
                     predictions: pd.DataFrame, codebook: Codebook, user: str, prefix: str,
                     min_confidence: float, model_uri: str, include_none: bool, report: ExportReport) -> None:
    missing = [c for c in _REQUIRED if c not in predictions.columns]
    if missing:
        raise QdaError(f"predictions: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    keep = []
    for i, row in enumerate(predictions.to_dict("records"), start=1):
        label = codebook.normalise(row["label"])
        if label is None:
            raise QdaError(f"predictions row {i}: label {row['label']!r} is not a codebook code")
        source = str(row["source"])
        if source not in keys:
            raise QdaError(f"predictions row {i}: source {source!r} is not a text source of the project "
                           "(give its guid, or its name when that is unique)")
        text = texts[keys[source]].text
        start, end = int(row["start"]), int(row["end"])
        if not 0 <= start < end <= len(text):
            raise QdaError(f"predictions row {i}: positions {start}-{end} lie outside source {source!r} "
                           f"(0-{len(text)} characters)")
        if "text" in row and isinstance(row["text"], str) and text[start:end] != row["text"]:
            raise QdaError(f"predictions row {i}: the text at {start}-{end} of source {source!r} differs "
                           "from the row's text; offsets must count characters of the source's plain text")
        if label == "none" and not include_none:
            report.none_skipped += 1
            continue
        confidence = float(row["confidence"])
        if confidence < min_confidence:
            report.below_confidence += 1
            continue
        keep.append((keys[source], start, end, label, confidence))
    if not keep:
        return
    user_guid = _suggestion_user(project, user)
    codes = _suggestion_codes(project, codebook, sorted({k[3] for k in keep}, key=codebook.labels.index),
                              prefix, report)
    now = _now()
    model = f", model {model_uri}" if model_uri else ""
    for guid, start, end, label, confidence in sorted(keep, key=lambda k: (k[0], k[1], k[2])):
        element = texts[guid].element
        selection = ET.Element(project.tag("PlainTextSelection"),
                               {"guid": _new_guid(), "name": f"{prefix}{codebook.code(label).name}",
                                "startPosition": str(start), "endPosition": str(end),
                                "creatingUser": user_guid, "creationDateTime": now})
        ET.SubElement(selection, project.tag("Description")).text = (
            f"{SUGGESTION_MARK} {label}, confidence {confidence:.2f}{model}")
        coding = ET.SubElement(selection, project.tag("Coding"),
                               {"guid": _new_guid(), "creatingUser": user_guid, "creationDateTime": now})
        ET.SubElement(coding, project.tag("CodeRef"), {"targetGUID": codes[label]})
        index = _child_index(element, project, ("Description", "PlainTextContent", "PlainTextSelection"))
        element.insert(index, selection)
        report.suggestions += 1


def _serialise(root: ET.Element, namespace: str) -> bytes:
    """XML bytes with a declaration, ``namespace`` as the default namespace, and "\\r" in element
    text written as ``&#13;``.

    ElementTree cannot write a default namespace when attributes are unqualified (its
    ``default_namespace`` rejects them), so a copy with local tag names and an ``xmlns`` attribute
    is written instead. It also writes "\\r" in text raw, and every XML parser reads a raw CR as
    LF, which would shift the positions of an inline PlainTextContent written with escaped CRs.
    """
    prefix = f"{{{namespace}}}" if namespace else None

    def local(element: ET.Element) -> ET.Element:
        tag = element.tag
        if prefix and tag.startswith(prefix):
            tag = tag[len(prefix):]
        out = ET.Element(tag, element.attrib)
        out.text, out.tail = element.text, element.tail
        out.extend(local(child) for child in element)
        return out

    copy = local(root)
    if namespace:
        copy.set("xmlns", namespace)
    with_cr = [e for e in copy.iter() if (e.text and "\r" in e.text) or (e.tail and "\r" in e.tail)]
    if with_cr:
        plain = ET.tostring(copy, encoding="unicode")
        mark = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in plain)
        for e in with_cr:
            e.text = e.text.replace("\r", mark) if e.text else e.text
            e.tail = e.tail.replace("\r", mark) if e.tail else e.tail
    body = ET.tostring(copy, encoding="unicode")
    if with_cr:
        body = body.replace(mark, "&#13;")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


def _copy_member(source: zipfile.ZipFile, info: zipfile.ZipInfo, target: zipfile.ZipFile) -> None:
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.external_attr, copy.comment, copy.file_size = info.external_attr, info.comment, info.file_size
    writable = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
    copy.compress_type = info.compress_type if info.compress_type in writable else zipfile.ZIP_DEFLATED
    if info.is_dir():
        target.writestr(copy, b"")
        return
    with source.open(info) as reader, target.open(copy, "w") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_member(name: str) -> bool:
    """An archive entry that an unzip tool would write outside the folder it extracts into:
    an absolute path, a drive letter, or a ``..`` step (with / or \\ as separator)."""
    path = name.replace("\\", "/")
    return path.startswith("/") or bool(_DRIVE.match(path)) or ".." in path.split("/")


def _write_project(project: QdaProject, out_path: Path) -> list[str]:
    """Write the project to ``out_path``; returns notes naming the input's unsafe entries, which
    are never copied (the rest of the project is)."""
    data = _serialise(project.root, project.namespace)
    qde_name = PROJECT_FILE if _unsafe_member(project.qde_name) else project.qde_name
    notes: list[str] = []

    def write(tmp: Path) -> None:
        notes.clear()
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(qde_name, data)
            if project.members:  # the project's own files, streamed over unchanged
                with zipfile.ZipFile(project.path) as source:
                    for info in source.infolist():
                        if info.filename == project.qde_name:
                            continue
                        if _unsafe_member(info.filename):
                            notes.append(f"{project.path}: entry {info.filename!r} left out of {out_path}: "
                                         "its name points outside the project (an absolute path or '..')")
                            continue
                        _copy_member(source, info, archive)
            for info, payload in project.added:
                archive.writestr(info, payload)

    write_atomic(out_path, write)
    return notes


# ---------------------------------------------------------------------------------------------
# predict straight into a project


def _model_codebook(model) -> Codebook:
    """The codebook saved with the model by `supportlens train`; else one made from its labels."""
    from supportlens.codebook import codebook_from_dict

    saved = getattr(model, "meta_", {}).get("codebook")
    if isinstance(saved, dict):
        return codebook_from_dict(saved, source="the model's codebook")
    labels = [str(x) for x in model.classes_]
    return Codebook([Code(label, label, label, f"supportlens label {label}") for label in labels],
                    source="the model's labels")


def check_qdpx_options(inputs: list[str], out_path: str | os.PathLike, speaker: str = "participant",
                       overwrite: bool = False, user: str = DEFAULT_USER, cli_model: str | None = None) -> None:
    """Refuse what `predict_to_qdpx` would refuse about its inputs and output, before a model is
    loaded or a transcript read; ``cli_model`` as for `check_qdpx_output`."""
    from supportlens.inference.predict import SPEAKER_CHOICES

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".qdpx":
        raise QdaError(f"{out_path}: a .qdpx project is labelled into a .qdpx output; got {out_path.name!r}")
    if speaker not in SPEAKER_CHOICES:
        raise QdaError(f"--speaker must be one of {', '.join(SPEAKER_CHOICES)}; got {speaker!r}")
    if not out_path.parent.is_dir():
        raise QdaError(f"{out_path.parent}: output folder does not exist")
    projects = [i for i in inputs if str(i).lower().endswith(".qdpx")]
    if projects and len(inputs) > 1:
        raise QdaError("give one .qdpx project, or transcripts, not both or several projects")
    check_qdpx_output(out_path, overwrite, user, cli_model)


def _skipped_note(path: Path) -> tuple[str, str]:
    """A folder's file that is not a transcript, as `predict_files` notes it."""
    from supportlens.transcripts.read import SUPPORTED_SUFFIXES

    return str(path), (f"not a transcript ({path.suffix.lower() or 'no suffix'}; reads "
                       f"{', '.join(SUPPORTED_SUFFIXES)}); skipped")


def predict_to_qdpx(inputs: list[str], labeler, out_path: str | os.PathLike, codebook: Codebook | None = None,
                    speaker: str = "participant", rules: SpeakerRules | None = None, code_prefix: str = "",
                    min_confidence: float = 0.0, model_uri: str = "", user: str = DEFAULT_USER,
                    text_column: str = "text", include_none: bool = False, overwrite: bool = False,
                    on_progress: Callable[[int, int], None] | None = None,
                    on_failure: Callable[[Any], None] | None = None,
                    on_total: Callable[[int], None] | None = None):
    """Label transcripts, or the text sources of one ``.qdpx`` project, into a ``.qdpx`` of suggestions.

    A project input is copied with suggestions added; transcript inputs (files, folders, globs)
    become a new project with one text source per transcript, named by file name. Passages are
    made and scored exactly as by `supportlens.inference.predict.predict_files`, with progress, failures and
    notes as there (files read, not inputs that name none). Returns its `BatchReport`.

    An existing ``out_path`` is refused before anything is read (see `check_qdpx_output`; the
    input project itself included), and when nothing is labelled nothing is written:
    ``report.output`` is then None.
    """
    from supportlens.inference.predict import BatchReport, FileFailure, nothing_to_score, passages_of
    from supportlens.transcripts.read import expand_inputs, read_transcript

    out_path = Path(out_path)
    check_qdpx_options(inputs, out_path, speaker, overwrite, user)
    projects = [i for i in inputs if str(i).lower().endswith(".qdpx")]
    if codebook is None:
        codebook = _model_codebook(labeler.model)
    rules = rules or SpeakerRules()
    report = BatchReport(output=out_path)
    started = time.perf_counter()

    def fail(source: str, reason: str) -> None:
        report.failures.append(FileFailure(source, reason))
        if on_failure:
            on_failure(report.failures[-1])

    # (key naming the source in predictions, how notes and failures name it, Transcript) per readable input
    transcripts: list[tuple[str, str, Transcript]] = []
    unreadable = 0  # sources or files that were read and failed (progress counts them)
    if projects:
        project_path = projects[0]
        project_sources = text_sources(open_project(project_path))
        if on_total:
            on_total(len(project_sources))
        for source in project_sources:
            where = f"{project_path}: source {source.name!r}"
            try:
                transcripts.append((source.guid, where, source_transcript(source.name, source.text)))
            except ReadError as exc:
                fail(source.name, f"{where}: {exc.reason}")
                unreadable += 1
    else:
        project_path = None
        others: list[Path] = []
        paths, problems = expand_inputs(list(inputs), skipped=others)
        for given, reason in problems:
            fail(given, f"{given}: {reason}")
        report.file_notes.extend(_skipped_note(p) for p in others)
        if on_total:
            on_total(len(paths))
        names = Counter(p.name for p in paths)
        for path in paths:
            try:
                transcript = read_transcript(path, text_column=text_column)
            except ReadError as exc:
                fail(str(path), str(exc))
                unreadable += 1
                continue
            transcripts.append((path.name if names[path.name] == 1 else str(path), str(path), transcript))
    if on_progress and unreadable:
        on_progress(unreadable, 0)

    rows = []
    labelled: set[str] = set()
    for key, where, transcript in transcripts:
        passages = passages_of(transcript, labeler, speaker, rules)
        # notes after segmenting, which adds how the interviewer was found to them
        if not passages:  # as in predict_files: a failure, so that no interview is skipped unsaid
            fail(where, nothing_to_score(where, transcript, labeler, speaker, rules))
            unreadable += 1
            if on_progress:
                on_progress(report.files_done + unreadable, report.passages)
            continue
        report.file_notes.extend((where, note) for note in transcript.notes)
        labelled.add(key)
        scores = labeler.score([p.text for p in passages])
        for p, label, confidence in zip(passages, scores["label"], scores["confidence"]):
            rows.append({"source": key, "start": p.start, "end": p.end, "text": p.text,
                         "label": label, "confidence": float(confidence)})
        report.files_done += 1
        report.passages += len(passages)
        if on_progress:
            on_progress(report.files_done + unreadable, report.passages)
    if not report.files_done:  # an empty project, or an unchanged copy, would only mislead
        report.output = None
        report.seconds = time.perf_counter() - started
        return report
    predictions = pd.DataFrame(rows, columns=["source", "start", "end", "text", "label", "confidence"])
    sources = None if projects else {key: t.text for key, _, t in transcripts if key in labelled}
    exported = export_suggestions(project_path, predictions, sources, out_path, codebook, user=user,
                                  code_prefix=code_prefix, min_confidence=min_confidence,
                                  model_uri=model_uri, include_none=include_none, overwrite=overwrite)
    report.notes.extend(exported.notes)
    report.notes.append(exported.summary())
    report.seconds = time.perf_counter() - started
    return report
