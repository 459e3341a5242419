"""The REFI-QDA project model: reading a ``.qdpx`` project, its codes, users and text sources,
what human work it holds, and writing it back safely.

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

Suggestions
    Selections whose ``Description`` starts with ``"supportlens suggestion:"`` are supportlens'
    own (see `supportlens.qda.exporting`); they are not human work.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from supportlens.io.atomic import write_atomic
from supportlens.transcripts.read import Cue, Transcript, read_text

PROJECT_NS = "urn:QDA-XML:project:1.0"
PROJECT_FILE = "project.qde"
SUGGESTION_MARK = "supportlens suggestion:"
DEFAULT_USER = "supportlens suggestions"
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
        raise QdaError(f"{path}: {qde}: broken XML at line {line}, column {column}: {str(exc).split(':')[0]}") from None
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
    raise QdaError(
        f"{path}: no {PROJECT_FILE} in the archive" + (f" (several .qde files: {', '.join(found)})" if found else "")
    )


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
            code = QdaCode(
                guid,
                name,
                f"{parent.path} > {name}" if parent else name,
                parent.guid if parent else None,
                hint.group(1) if hint else None,
            )
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


def _plain_text(project: QdaProject, archive: zipfile.ZipFile | None, element: ET.Element, guid: str, name: str) -> str:
    what = f"{project.where}: TextSource {guid} ({name!r})"
    inline = element.find(project.tag("PlainTextContent"))
    if inline is not None:
        return inline.text or ""
    target = element.get("plainTextPath")
    if not target:
        raise QdaError(f"{what} has neither plainTextPath nor PlainTextContent")
    if not target.startswith("internal://"):
        raise QdaError(
            f"{what}: plainTextPath {target!r} points outside the project; only sources "
            "stored in the .qdpx (internal://) can be read"
        )
    member = target[len("internal://") :]
    wanted = {f"sources/{member}".lower(), member.lower()}
    found = next((n for n in project.members if n.lower() in wanted), None)
    if found is None or archive is None:
        raise QdaError(f"{what}: plainTextPath {target!r}: Sources/{member} is not in the archive")
    data = archive.read(found)
    try:
        return data.decode("utf-8-sig")  # the standard stores plain text as UTF-8
    except UnicodeDecodeError as exc:
        raise QdaError(f"{what}: Sources/{member} is not UTF-8 (byte {exc.start})") from None


def code_name_key(name: str) -> str:
    """How code names compare, in code maps and when finding a project's code for a label:
    case and runs of whitespace ignored."""
    return " ".join(str(name).split()).casefold()


def is_suggestion(project: QdaProject, selection: ET.Element) -> bool:
    """A selection supportlens made as a suggestion (its Description starts with the mark)."""
    description = selection.findtext(project.tag("Description")) or ""
    return description.lstrip().startswith(SUGGESTION_MARK)


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
# human work in a project


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
        return bool(self.sources_added or self.codings or self.selections or self.notes or self.codes or self.other)

    def describe(self) -> str:
        """'6 sources and 59 codings by 1 user'."""
        from supportlens.calibration import plural  # here: scipy takes a quarter second to import

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
                if element.get("creatingUser") in mine and is_suggestion(project, element):
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
        section = project.root.find(project.tag(part))
        if section is not None and len(section):
            contents.other[part] = len(section)
    return contents


# ---------------------------------------------------------------------------------------------
# writing a project


def serialise(root: ET.Element, namespace: str) -> bytes:
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
            tag = tag[len(prefix) :]
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


def write_project(project: QdaProject, out_path: Path) -> list[str]:
    """Write the project to ``out_path``; returns notes naming the input's unsafe entries, which
    are never copied (the rest of the project is)."""
    data = serialise(project.root, project.namespace)
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
                            notes.append(
                                f"{project.path}: entry {info.filename!r} left out of {out_path}: "
                                "its name points outside the project (an absolute path or '..')"
                            )
                            continue
                        _copy_member(source, info, archive)
            for info, payload in project.added:
                archive.writestr(info, payload)

    write_atomic(out_path, write)
    return notes
