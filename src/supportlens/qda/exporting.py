"""Exporting to REFI-QDA: the codebook as a ``.qdc`` code tree, and model labels as suggested
codings in a ``.qdpx`` project that a coder reviews in QDA software.

Suggestions
    Exported suggestions are ordinary codings under their own user (default "supportlens
    suggestions"), each on a new selection whose ``Description`` starts with
    ``"supportlens suggestion:"``. Human selections are never changed, and a project holding human
    work is never overwritten (`check_qdpx_output`).
"""

from __future__ import annotations

import os
import re
import shlex
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from supportlens.codebook import Code, Codebook
from supportlens.io.atomic import write_atomic
from supportlens.qda.project import (
    DEFAULT_USER,
    PROJECT_FILE,
    PROJECT_NS,
    SUGGESTION_MARK,
    QdaError,
    QdaProject,
    QdaSource,
    code_name_key,
    open_project,
    project_codes,
    project_contents,
    serialise,
    text_sources,
    write_project,
)

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
# codes made from a codebook get stable guids, so a .qdc and every new project agree on them
_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://supportlens/refi-qda/codebook")
_RGB = re.compile(r"#(?:[A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})")


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
    data = serialise(root, CODEBOOK_NS)
    write_atomic(out_path, lambda tmp: tmp.write_bytes(data))
    return out_path


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_guid() -> str:
    return str(uuid.uuid4())


def _new_project(name: str, sources: dict[str, str], user_name: str) -> tuple[QdaProject, dict[str, str]]:
    """An empty project with one internal text source per entry of ``sources``; returns key -> guid."""
    user = _new_guid()
    now = _now()
    root = ET.Element(
        f"{{{PROJECT_NS}}}Project",
        {"name": name, "origin": "supportlens", "creatingUserGUID": user, "creationDateTime": now},
    )
    project = QdaProject(Path(name), root, PROJECT_NS, PROJECT_FILE, [])
    users = ET.SubElement(root, project.tag("Users"))
    ET.SubElement(users, project.tag("User"), {"guid": user, "name": user_name})
    keys = {}
    if sources:
        element = ET.SubElement(root, project.tag("Sources"))
        for key, text in sources.items():
            guid = _new_guid()
            keys[key] = guid
            ET.SubElement(
                element,
                project.tag("TextSource"),
                {
                    "guid": guid,
                    "name": str(key),
                    "plainTextPath": f"internal://{guid}.txt",
                    "creatingUser": user,
                    "creationDateTime": now,
                },
            )
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
        guid = user.get("guid")
        if user.get("name") == name and guid:
            return guid
    guid = _new_guid()
    ET.SubElement(users, project.tag("User"), {"guid": guid, "name": name})
    return guid


def _suggestion_codes(
    project: QdaProject, codebook: Codebook, labels: list[str], prefix: str, report: ExportReport
) -> dict[str, str]:
    """label -> code guid: the project's own code for the label, or a new top-level one."""
    existing = project_codes(project)
    chosen: dict[str, str] = {}
    for label in labels:
        code = codebook.code(label)
        wanted = f"{prefix}{code.name}"
        if prefix:
            match = [g for g, c in existing.items() if c.name == wanted]
        else:  # the human coders' code for it, the codebook name first, then any alias
            match = [g for g, c in existing.items() if code_name_key(c.name) == code_name_key(code.name)] or [
                g for g, c in existing.items() if codebook.normalise(c.name) == label
            ]
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


def _free_name(path: Path, suffix: str) -> Path:
    """``name-suggestions.qdpx`` beside ``path``, numbered when that file exists too."""
    candidate = path.with_name(f"{path.stem}{suffix}{path.suffix}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}{suffix}-{n}{path.suffix}")
        n += 1
    return candidate


def check_qdpx_output(
    out_path: str | os.PathLike, overwrite: bool = False, user: str = DEFAULT_USER, cli_model: str | None = None
) -> None:
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
        relabel = (
            f"supportlens predict {shlex.quote(str(out))} --model {shlex.quote(cli_model)} "
            f"--out {shlex.quote(str(_free_name(out, '-suggestions')))}"
        )
    else:
        allow, new_name = "overwrite=True", "give out_path a new file name"
        relabel = f"predict_to_qdpx([{str(out)!r}], labeler, {str(_free_name(out, '-suggestions'))!r})"
    try:
        contents = project_contents(open_project(out), user)
    except QdaError as exc:
        if overwrite:
            return  # not a project: nothing in it that supportlens could keep
        raise QdaError(
            f"{out} already exists and is not a readable REFI-QDA project ({exc}); it is not "
            f"replaced unless you pass {allow}; or {new_name}"
        ) from None
    if contents.human_work:
        why = (
            f"a project with human work is never replaced, not even with {allow}" if overwrite else "it is not replaced"
        )
        raise QdaError(
            f"{out} already exists and holds {contents.describe()}; {why}. To add suggestions "
            f"to it, label the project itself into a copy that keeps every human coding: "
            f"{relabel}; or {new_name}"
        )
    if not overwrite:
        raise QdaError(
            f"{out} already exists and holds {contents.describe()} (no human work); pass {allow} "
            f"to replace it, or {new_name}"
        )


def export_suggestions(
    project_path: str | os.PathLike | None,
    predictions: pd.DataFrame,
    sources: dict[str, str] | None,
    out_path: str | os.PathLike,
    codebook: Codebook,
    user: str = DEFAULT_USER,
    code_prefix: str = "",
    min_confidence: float = 0.0,
    model_uri: str = "",
    include_none: bool = False,
    overwrite: bool = False,
) -> ExportReport:
    """Write model labels as suggested codings into a ``.qdpx`` project.

    With ``project_path`` the project is copied and suggestions are added (human codings are left
    exactly as they are; suggestions an earlier run made for the same ``user`` are replaced);
    ``predictions.source`` names a text source by guid or by its (unique) name. Without a project,
    a new one is made from ``sources`` (name -> plain text, written as given, UTF-8) and
    ``predictions.source`` names its keys. ``predictions`` needs ``source``,
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
        assert sources is not None  # checked above: a project or the sources' texts
        project, guids = _new_project(out_path.stem, sources, user)
        elements = {e.get("guid"): e for e in project.root.iter(project.tag("TextSource"))}
        texts = {guids[k]: QdaSource(guids[k], k, text, elements[guids[k]]) for k, text in sources.items()}
        keys = {k: guids[k] for k in sources}
        report.sources = len(sources)
    _add_suggestions(
        project, texts, keys, predictions, codebook, user, code_prefix, min_confidence, model_uri, include_none, report
    )
    report.notes.extend(write_project(project, out_path))
    return report


def _drop_earlier_suggestions(project: QdaProject, texts: dict[str, QdaSource], user: str) -> int:
    """Remove the suggestions an earlier run made in this project, so that labelling a project
    again replaces them instead of doubling every span. Only selections made by the suggestion
    user and marked as suggestions go; the coders' own codings are never touched."""
    users = {u.get("guid") for u in project.root.iter(project.tag("User")) if u.get("name") == user}
    dropped = 0
    for source in texts.values():
        for selection in list(source.element.findall(project.tag("PlainTextSelection"))):
            description = selection.find(project.tag("Description"))
            if (
                selection.get("creatingUser") in users
                and description is not None
                and (description.text or "").startswith(SUGGESTION_MARK)
            ):
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


def _add_suggestions(
    project: QdaProject,
    texts: dict[str, QdaSource],
    keys: dict[str, str],
    predictions: pd.DataFrame,
    codebook: Codebook,
    user: str,
    prefix: str,
    min_confidence: float,
    model_uri: str,
    include_none: bool,
    report: ExportReport,
) -> None:
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
            raise QdaError(
                f"predictions row {i}: source {source!r} is not a text source of the project "
                "(give its guid, or its name when that is unique)"
            )
        text = texts[keys[source]].text
        start, end = int(row["start"]), int(row["end"])
        if not 0 <= start < end <= len(text):
            raise QdaError(
                f"predictions row {i}: positions {start}-{end} lie outside source {source!r} (0-{len(text)} characters)"
            )
        if "text" in row and isinstance(row["text"], str) and text[start:end] != row["text"]:
            raise QdaError(
                f"predictions row {i}: the text at {start}-{end} of source {source!r} differs "
                "from the row's text; offsets must count characters of the source's plain text"
            )
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
    codes = _suggestion_codes(
        project, codebook, sorted({k[3] for k in keep}, key=codebook.labels.index), prefix, report
    )
    now = _now()
    model = f", model {model_uri}" if model_uri else ""
    for guid, start, end, label, confidence in sorted(keep, key=lambda k: (k[0], k[1], k[2])):
        element = texts[guid].element
        selection = ET.Element(
            project.tag("PlainTextSelection"),
            {
                "guid": _new_guid(),
                "name": f"{prefix}{codebook.code(label).name}",
                "startPosition": str(start),
                "endPosition": str(end),
                "creatingUser": user_guid,
                "creationDateTime": now,
            },
        )
        ET.SubElement(
            selection, project.tag("Description")
        ).text = f"{SUGGESTION_MARK} {label}, confidence {confidence:.2f}{model}"
        coding = ET.SubElement(
            selection, project.tag("Coding"), {"guid": _new_guid(), "creatingUser": user_guid, "creationDateTime": now}
        )
        ET.SubElement(coding, project.tag("CodeRef"), {"targetGUID": codes[label]})
        index = _child_index(element, project, ("Description", "PlainTextContent", "PlainTextSelection"))
        element.insert(index, selection)
        report.suggestions += 1
