"""Importing human codings from a REFI-QDA project (NVivo, ATLAS.ti, MAXQDA, QualCoder) as
coded excerpts, the table that training and evaluation read.

Codes
    A project code maps to a codebook label by a code map entry, else by its name (a label or
    alias), else by the "supportlens label: X" line supportlens writes into the descriptions of
    the codes it creates; a code with none of these inherits its parent's label.

Suggestions
    Selections that supportlens exported as suggestions (see `supportlens.qda.exporting`) are
    skipped unless asked for, so unreviewed model output does not become training data.

Offsets, line endings and how a source is segmented: see `supportlens.qda.project`.
"""

from __future__ import annotations

import os
import shlex
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from supportlens.codebook import Codebook
from supportlens.io.atomic import write_atomic
from supportlens.io.jsonl import frame_to_jsonl
from supportlens.qda.project import (
    QdaCode,
    QdaError,
    QdaSource,
    code_name_key,
    is_suggestion,
    open_project,
    project_codes,
    project_users,
    source_transcript,
    text_sources,
)
from supportlens.transcripts.read import Cue, ReadError, Transcript
from supportlens.transcripts.segmentation import SpeakerRules, merge_turns, segment, speaker_roles

EXCERPT_COLUMNS = [
    "id",
    "interview_id",
    "source",
    "start",
    "end",
    "text",
    "label",
    "code",
    "coder",
    "speaker",
    "speaker_role",
]
TABLE_SUFFIXES = (".csv", ".jsonl", ".xlsx")


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
            raise QdaError(f"{path}: {key!r}: the value must be a codebook label or null, got {type(value).__name__}")
        out[str(key)] = value
    return out


def map_codes(
    codes: dict[str, QdaCode],
    codebook: Codebook,
    code_map: dict[str, str | None] | None = None,
    map_source: str = "code map",
) -> tuple[dict[str, str | None], list[str]]:
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
        entries[code_name_key(key)] = label
        given[code_name_key(key)] = key
    used: set[str] = set()
    mapping: dict[str, str | None] = {}
    for guid, code in codes.items():  # parents come first, so mapping[parent] is ready
        for key in (code_name_key(code.path), code_name_key(code.name)):
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
            return (
                f"`supportlens import {shlex.quote(self.path)} {option}{value} --out coded.csv`, then use "
                "coded.csv in place of the project"
            )

        lines = [
            f"{self.excerpts} excerpts from {self.selections} coded selections in "
            f"{self.sources} text sources of {self.path}"
        ]
        if self.coders:
            lines.append(
                "coders: "
                + ", ".join(
                    f"{c or '(unknown)'} ({n}{', model suggestions' if c in self.suggestion_coders else ''})"
                    for c, n in self.coders.items()
                )
            )
        if self.skipped_selections:
            names = ", ".join(f"{name!r} ({n})" for name, n in sorted(self.unmapped.items()))
            lines.append(
                f"{self.skipped_selections} selections skipped: their codes map to no codebook "
                f"code ({names}); map them with {advice('--code-map', ' MAP.yaml')}"
            )
        elif self.unmapped:
            lines.append(
                "codings with unmapped codes ignored: "
                + ", ".join(f"{name!r} ({n})" for name, n in sorted(self.unmapped.items()))
            )
        if self.uncoded_excerpts:
            lines.append(
                f"{self.uncoded_excerpts} uncoded participant passages added"
                + (
                    " (text coded only with codes that map to nothing counts as uncoded: map such "
                    "a code in --code-map if its text is not 'none')"
                    if self.skipped_selections
                    else ""
                )
            )
        if self.suggestions_skipped:
            lines.append(
                f"{self.suggestions_skipped} supportlens suggestions skipped (unreviewed model "
                f"output; include them with {advice('--include-suggestions')})"
            )
        if self.uncoded_selections:
            lines.append(f"{self.uncoded_selections} selections without a code ignored")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def import_qdpx(
    path: str | os.PathLike,
    codebook: Codebook,
    code_map: dict[str, str | None] | None = None,
    uncoded_as: str | None = None,
    rules: SpeakerRules | None = None,
    include_suggestions: bool = False,
    map_source: str = "code map",
) -> tuple[pd.DataFrame, ImportReport]:
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
            suggestion = is_suggestion(project, selection)
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
                    raise QdaError(
                        f"{where}: Coding {coding.get('guid')}: CodeRef {target} is not a code "
                        "of the project's CodeBook"
                    )
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
                rows.append(
                    {
                        "id": sel_guid if len(found) == 1 else f"{sel_guid}#{k}",
                        "interview_id": names[source.guid],
                        "source": source.guid,
                        "start": start,
                        "end": end,
                        "text": text,
                        "label": label,
                        "code": code,
                        "coder": coder,
                        "speaker": speaker,
                        "speaker_role": role,
                    }
                )
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


def _positions(selection: ET.Element, where: str, length: int) -> tuple[int, int]:
    try:
        start, end = int(selection.get("startPosition", "")), int(selection.get("endPosition", ""))
    except ValueError:
        raise QdaError(
            f"{where}: startPosition/endPosition must be integers, got "
            f"{selection.get('startPosition')!r}/{selection.get('endPosition')!r}"
        ) from None
    if not 0 <= start <= end <= length:
        raise QdaError(f"{where}: positions {start}-{end} lie outside the source's plain text (0-{length} characters)")
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

    def uncoded_rows(
        self, covered: list[tuple[int, int]], label: str, interview_id: str, report: ImportReport
    ) -> list[dict[str, Any]]:
        transcript = self._parse()
        if transcript is None:
            return []
        rows = []
        for p in segment(transcript, self.rules):
            if p.role == "interviewer" or any(p.start < e and s < p.end for s, e in covered):
                continue
            rows.append(
                {
                    "id": f"{self.source.guid}:{p.start}-{p.end}",
                    "interview_id": interview_id,
                    "source": self.source.guid,
                    "start": p.start,
                    "end": p.end,
                    "text": p.text,
                    "label": label,
                    "code": "",
                    "coder": "",
                    "speaker": p.speaker,
                    "speaker_role": p.role if p.speaker is not None else None,
                }
            )
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
