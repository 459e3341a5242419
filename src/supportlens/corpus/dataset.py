"""Coded excerpts in: CSV, TSV, JSONL or XLSX files -> a validated ``datasets.Dataset``.

Coders export from many tools, so every problem is reported with the file, the row as a person
would count it (the header is row 1 in a spreadsheet-like file, the first line is row 1 in JSONL)
and the field, before any training starts.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pandas as pd

from supportlens.codebook import Codebook
from supportlens.config import DataConfig
from supportlens.io import tables
from supportlens.io.decoding import DecodeError, decode_text
from supportlens.io.workbook import choose_sheet, sheet_note, sheets_listing

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".xlsx")
_MAX_LISTED = 10
_MAX_PROBLEMS = 20  # row-level problems listed in one error; the count says how many there are
# column names that often hold what a setting means, when the configured name is not in the file
# (compared ignoring case, spaces, hyphens and underscores)
_LIKELY_COLUMNS = {
    "text_column": (
        "text",
        "excerpt",
        "quote",
        "quotation",
        "passage",
        "segment",
        "content",
        "utterance",
        "coded text",
        "coded segment",
    ),
    "label_column": ("label", "code", "codes", "category", "theme", "coding"),
    "group_column": (
        "interview",
        "interview id",
        "interviewid",
        "interview no",
        "interview number",
        "document",
        "document id",
        "doc",
        "doc id",
        "transcript",
        "transcript id",
        "source",
        "file",
        "file name",
        "filename",
        "participant",
        "participant id",
        "case",
        "case id",
    ),
}


class DataError(ValueError):
    """Coded data cannot be used; the message names file, row and field."""


@dataclass
class DataReport:
    """What loading did to the data, logged with every run so nothing is dropped silently."""

    path: str
    rows_read: int = 0
    rows_kept: int = 0
    duplicates_removed: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    conflict_policy: str = "drop"
    skipped_blank_labels: list[int] = field(default_factory=list)
    grouped: bool = True
    notes: list[str] = field(default_factory=list)
    # several files trained on together (`combine_coded`): {path, rows_read, rows_kept} each
    files: list[dict[str, Any]] = field(default_factory=list)
    # False when no added file (the target domain, `combine_coded`) names interviews
    target_grouped: bool = True

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def summary(self) -> str:
        if self.files:
            parts = [
                f"{self.rows_kept} excerpts kept of {self.rows_read} read from {len(self.files)} files: "
                + ", ".join(f"{f['path']} ({f['rows_kept']} of {f['rows_read']})" for f in self.files)
            ]
        else:
            parts = [f"{self.rows_kept} excerpts kept of {self.rows_read} read from {self.path}"]
        if self.duplicates_removed:
            parts.append(f"{len(self.duplicates_removed)} exact duplicates removed")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} texts coded with different labels ({self.conflict_policy})")
        if self.skipped_blank_labels:
            parts.append(f"{len(self.skipped_blank_labels)} rows with no code skipped")
        return "; ".join(parts) + "".join(f"\n  note: {n}" for n in self.notes)


@dataclass
class CodedData:
    """Coded excerpts, kept and checked: ``frame`` for reports and inspection, ``dataset`` for what
    learns from them (training's split, fit and evaluation, MLflow's dataset record)."""

    report: DataReport
    frame: pd.DataFrame  # the kept rows, with canonical columns (row, id, text, label, group, ...)
    codebook: Codebook = field(repr=False)  # what the labels were checked against: the ClassLabel's names

    @functools.cached_property
    def dataset(self) -> datasets.Dataset:
        """The kept rows as a ``datasets.Dataset`` whose ``label`` is a ``ClassLabel`` of the codebook's
        codes, in ``frame``'s order. Built once, when first read: a file loaded only to be combined
        with others, evaluated or audited never needs it."""
        return to_dataset(self.frame, self.codebook)

    @property
    def digest(self) -> str:
        return dataset_digest(self.frame)


def dataset_digest(frame: pd.DataFrame) -> str:
    """A short content hash of texts, labels and groups, and of which rows are the target domain
    (combined data, `combine_coded`): the same rows learnt as target passages make another model.
    Equal data -> equal digest; data without target rows hash as they always did."""
    h = hashlib.sha256()
    target = frame["target"].astype(bool).tolist() if "target" in frame else [False] * len(frame)
    for row, is_target in zip(frame[["text", "label", "group"]].itertuples(index=False), target):
        h.update("\x1f".join(map(str, row)).encode("utf-8"))
        if is_target:
            h.update(b"\x1ftarget")
        h.update(b"\x1e")
    return h.hexdigest()[:12]


def _decode(path: Path, raw: bytes) -> tuple[str, list[str]]:
    """Decode a coded table as transcripts are decoded (`supportlens.io.decoding`): a CSV that
    Excel saved as cp1252 is read, with a note saying so, rather than refused. Returns (text with
    its line endings as written, notes)."""
    try:
        decoded = decode_text(raw, what=f"{path.suffix[1:].upper()} file")
    except DecodeError as exc:
        if exc.start is None:
            raise DataError(f"{path}: {exc.reason}") from None
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: undecodable bytes {raw[exc.start : exc.end]!r} at byte {exc.start} "
            f"({exc.reason}); save the file as UTF-8 (in Excel: 'CSV UTF-8') and try again"
        ) from None
    return decoded.text, decoded.notes


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    """One JSON object per line. Lines end at "\n" (a "\r" before it is dropped) and nowhere else:
    U+2028, U+2029 and U+0085, which ``str.splitlines`` also breaks at, are text inside a string."""
    rows = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: row {lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: row {lineno}: expected a JSON object, got {type(obj).__name__}")
        obj["_row"] = lineno
        rows.append(obj)
    return pd.DataFrame(rows)


def find_column(columns: Sequence[object], wanted: str) -> Any | None:
    """The column of a table read by `read_table` that ``wanted`` names, by the rule of
    `supportlens.io.tables.find_column` ("Text ", "TEXT", "Interview_ID" for "interview id");
    the ``_row`` it adds is never one. None when there is none."""
    return tables.find_column([c for c in columns if c != "_row"], wanted)


def _has_columns(columns: Sequence[object], required: Sequence[str | tuple[str, ...]]) -> bool:
    return all(
        any(find_column(columns, name) is not None for name in ((need,) if isinstance(need, str) else need))
        for need in required
    )


def read_table(path: str | Path, required: Sequence[str | tuple[str, ...]] = ()) -> pd.DataFrame:
    """Read a coded-excerpt table into strings; adds ``_row`` (the row number a person sees).

    A workbook's sheet is the first one that has the ``required`` columns (a tuple: any one of
    them), else its first sheet; ``frame.attrs`` then holds ``sheet`` (the one read) and
    ``sheets`` (every sheet's columns), so messages can name them. A text file is decoded as
    transcripts are (`supportlens.io.decoding`); ``frame.attrs["notes"]`` then holds what decoding
    did (a cp1252 fallback), for the caller's report."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(TABLE_SUFFIXES)}"
            " (or .qdpx for a REFI-QDA project)"
        )
    if suffix == ".xlsx":
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises many types for broken files
            raise DataError(f"{path}: cannot read as an Excel workbook: {exc}") from exc
        if not sheets:
            raise DataError(f"{path}: the workbook has no sheets")
        frame = choose_sheet(sheets, lambda columns: _has_columns(columns, required))
        frame["_row"] = range(2, len(frame) + 2)
        return frame
    text, notes = _decode(path, path.read_bytes())
    if suffix in (".jsonl", ".ndjson"):
        frame = _read_jsonl(path, text)
        frame.attrs["notes"] = notes
        return frame
    sep = "\t" if suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a valid {suffix[1:].upper()} file: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    frame["_row"] = range(2, len(frame) + 2)
    frame.attrs["notes"] = notes
    return frame


def table_name(path: str | Path, frame: pd.DataFrame) -> str:
    """How messages name a table: the file, and the sheet read when the workbook has several."""
    sheets = frame.attrs.get("sheets") or {}
    return f"{path} (sheet {frame.attrs['sheet']!r})" if len(sheets) > 1 else str(path)


def _set_advice(key: str, value: str | None = None) -> str:
    """How to point a data setting at a column, in the config's terms (`DataConfig`); the CLI
    turns this into the option of each command that reads coded data."""
    return f"`data.{key}{'' if value is None else f'={value!r}'}` in the config"


def _likely(columns: Sequence[object], key: str, taken: set[object]) -> list[object]:
    """Columns that may hold what setting ``key`` names (an "Interview" column for interview_id)."""
    names = {tables.column_key(n) for n in _LIKELY_COLUMNS.get(key, ())}
    return [
        c
        for c in columns
        if c != "_row"
        and c not in taken
        and (tables.column_key(c) in names or (key == "group_column" and "interview" in tables.column_key(c)))
    ]


def text_key(text: object) -> str:
    """The form in which excerpt texts are compared everywhere (repeated excerpts, passages already
    coded, excerpts a model was trained on): whitespace runs collapsed to one space, ends stripped,
    case folded ("Straße" = "STRASSE"). `evaluate.excerpt_hash` hashes it, so saved hashes stay
    comparable; repeated excerpts were matched by ``lower()`` before, which differs only for
    letters like ß and ligatures."""
    return " ".join(str(text).split()).casefold()


def listing(rows: list[Any]) -> str:
    """ "4, 9, 12 and 3 more": at most ten items, so that a message about a big file stays readable."""
    shown = ", ".join(str(r) for r in rows[:_MAX_LISTED])
    return shown + (f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else "")


def rows_phrase(rows: list[Any]) -> str:
    """ "row 4" or "rows 4, 9, 12": rows of a file as a person counts them."""
    return f"row{'s' if len(rows) > 1 else ''} {listing(rows)}"


def cell_text(value: Any) -> str:
    """A table cell as text: None or NaN (an empty cell, a JSONL null) is "", not "nan"."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def load_coded(
    path: str | Path,
    codebook: Codebook,
    cfg: DataConfig | None = None,
    skip_blank_labels: bool = False,
    min_codes: int = 2,
) -> CodedData:
    """Load, validate and de-duplicate coded excerpts (a table, or a REFI-QDA ``.qdpx`` project
    whose coded selections are read by `supportlens.qda.importing.import_qdpx`).

    Every problem in the rows (an empty text, code or interview id, an unknown code, a repeated
    id) is found before any is reported, so one run lists them all. A row that repeats another
    exactly (same id and content) is removed with a note. ``skip_blank_labels`` is for coding
    sheets, where an empty code means "not coded yet".
    """
    cfg = cfg or DataConfig()
    path = Path(path)
    notes: list[str] = []
    if path.suffix.lower() == ".qdpx":
        frame, cfg, notes = _read_qdpx(path, codebook, cfg)
    else:
        frame = read_table(path, required=[cfg.text_column, cfg.label_column])
    where = table_name(path, frame)
    notes += frame.attrs.get("notes", [])  # what decoding did: a cp1252 file is read, not refused
    report = DataReport(path=str(path), rows_read=len(frame), conflict_policy=cfg.conflicts, notes=notes)
    sheet = sheet_note(frame, [cfg.text_column, cfg.label_column])
    if sheet:
        report.notes.append(sheet)
    if frame.empty:
        raise DataError(f"{where}: no rows")

    columns = _resolve_columns(frame, cfg, where, report)
    out = pd.DataFrame(
        {
            "row": frame["_row"].astype(int),
            "text": [cell_text(v).strip() for v in frame[columns["text_column"]]],
            "raw_label": [cell_text(v).strip() for v in frame[columns["label_column"]]],
        }
    )
    for name, key in (
        ("group", "group_column"),
        ("id", "id_column"),
        ("speaker", "speaker_column"),
        ("coder", "coder_column"),
    ):
        column = columns[key]
        out[name] = [cell_text(v).strip() for v in frame[column]] if column is not None else ""
    group_column, id_column = columns["group_column"], columns["id_column"]
    _fill_blank_ids(out, id_column, report)
    out["label"] = [codebook.normalise(v) if v else None for v in out["raw_label"]]
    # before rows get their own groups below: a row pasted twice must still repeat its original
    out = _drop_repeated_rows(out, id_column, report)
    if group_column is None:
        report.grouped = False
        out["group"] = [f"row-{r}" for r in out["row"]]

    problems: list[str] = []
    if group_column is not None:
        missing = out.loc[out["group"] == "", "row"].tolist()
        if missing:
            problems.append(
                f"{rows_phrase(missing)}: field {group_column!r} is empty; every excerpt needs its "
                "interview or document id"
            )
    empty = out.loc[out["text"] == "", "row"].tolist()
    if empty:
        problems.append(f"{rows_phrase(empty)}: field {columns['text_column']!r} is empty")
    blank = out["raw_label"] == ""
    if blank.any() and not skip_blank_labels:
        problems.append(f"{rows_phrase(out.loc[blank, 'row'].tolist())}: field {columns['label_column']!r} is empty")
    unknown = out.loc[~blank & out["label"].isna()]
    advice = ""
    if not unknown.empty:
        values = sorted(set(unknown["raw_label"]))
        field_name = columns["label_column"]
        if len(values) == 1:
            problems.append(
                f"{rows_phrase(unknown['row'].tolist())}: unknown label {values[0]!r} in field {field_name!r}"
            )
        else:
            problems.append(
                f"{rows_phrase(unknown['row'].tolist())}: unknown labels in field {field_name!r}: "
                + ", ".join(
                    f"{v!r} ({rows_phrase(unknown.loc[unknown['raw_label'] == v, 'row'].tolist())})"
                    for v in values[:_MAX_LISTED]
                )
                + (f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else "")
            )
        advice = (
            f"Known codes: {'; '.join(codebook.known_values())}. Add an alias to the codebook or use another codebook."
        )
    ids = out.loc[out["id"] != "", "id"]
    repeated = sorted(set(ids[ids.duplicated()]))
    if repeated:
        rows_of = {i: out.loc[out["id"] == i, "row"].tolist() for i in repeated}
        problems.append(
            f"{rows_phrase(sorted(r for rows in rows_of.values() for r in rows))}: field {id_column!r} repeats ids "
            + ", ".join(f"{i!r} ({rows_phrase(rows_of[i])})" for i in repeated[:_MAX_LISTED])
            + (f" and {len(repeated) - _MAX_LISTED} more" if len(repeated) > _MAX_LISTED else "")
            + "; excerpt ids must be unique (a row repeating another exactly is removed; these differ)"
        )
    if problems:
        raise DataError(_problems_message(where, problems, advice))

    if blank.any():  # skip_blank_labels: a sheet's rows not coded yet
        report.skipped_blank_labels = out.loc[blank, "row"].tolist()
        out = out.loc[~blank].copy()
        if out.empty:
            raise DataError(f"{where}: no row has a code in {columns['label_column']!r} yet")
    out = _deduplicate(out, report, where)
    report.rows_kept = len(out)
    out = out.drop(columns=["raw_label"]).reset_index(drop=True)
    if out["label"].nunique() < min_codes:  # an extra sheet may hold one code; the training set may not
        raise DataError(f"{where}: all kept excerpts have the same code; a classifier needs two or more")
    return CodedData(report=report, frame=out, codebook=codebook)


def _problems_message(where: str, problems: list[str], advice: str = "") -> str:
    """One problem on one line; several as a list, so that one run shows everything to fix."""
    if len(problems) == 1:
        return f"{where}: {problems[0]}" + (f". {advice}" if advice else "")
    shown = problems[:_MAX_PROBLEMS]
    more = len(problems) - len(shown)
    return (
        f"{where}: {len(problems)} problems; fix them all, then run again:\n"
        + "\n".join(f"  - {p}" for p in shown)
        + (f"\n  ... and {more} more" if more else "")
        + (f"\n{advice}" if advice else "")
    )


def _resolve_columns(frame: pd.DataFrame, cfg: DataConfig, where: str, report: DataReport) -> dict[str, Any]:
    """The file's column for each data setting (None: not in the file). A name that differs only
    in case or spacing is used, with a note; a missing text or code column is an error naming
    the setting and any likely column; a missing interview column turns grouping off, with a note
    that says how to name it."""
    columns = [c for c in frame.columns if c != "_row"]
    found: dict[str, Any] = {}
    for key in ("text_column", "label_column", "group_column", "id_column", "speaker_column", "coder_column"):
        wanted = getattr(cfg, key)
        column = find_column(columns, wanted) if wanted else None
        if column is not None and column != wanted:
            report.notes.append(
                f"column {str(column)!r} read as data.{key} {wanted!r} (the names differ only in case or spacing)"
            )
        found[key] = column
    taken = {c for c in found.values() if c is not None}
    missing = []
    for key in ("text_column", "label_column"):
        if found[key] is None:
            likely = _likely(columns, key, taken)
            hint = (
                f"; {str(likely[0])!r} looks like it: {_set_advice(key, str(likely[0]))}"
                if likely
                else f"; name it with {_set_advice(key)}"
            )
            missing.append(f"no column {getattr(cfg, key)!r} (data.{key}){hint}")
    if missing:
        sheets = frame.attrs.get("sheets") or {}
        has = (
            f"no sheet has it; the sheets and their columns: {sheets_listing(frame)}"
            if len(sheets) > 1
            else f"the file has columns: {', '.join(map(str, columns))}"
        )
        raise DataError(f"{where}: " + "; ".join(missing) + f". {has[0].upper()}{has[1:]}")
    if found["group_column"] is None:
        report.grouped = False
        likely = _likely(columns, "group_column", taken)
        if cfg.group_column:
            what = (
                f"no interview column {cfg.group_column!r} (data.group_column), so each excerpt is its own "
                "group: excerpts of one interview may land in both training and test data and scores "
                "will be optimistic"
            )
        else:
            what = (
                "data.group_column is not set, so each excerpt is its own group: excerpts of one interview "
                "may land in both training and test data and scores will be optimistic"
            )
        how = (
            f"; {str(likely[0])!r} looks like the interview: use it with {_set_advice('group_column', str(likely[0]))}"
            if likely
            else f"; name the interview column with {_set_advice('group_column')}"
        )
        report.notes.append(what + how)
    return found


def _fill_blank_ids(out: pd.DataFrame, id_column: Any, report: DataReport) -> None:
    """Rows without an id get ``row-<row number>``; a note names them when the file has ids.

    A generated id never takes an id the file itself uses (a row may be called ``row-3``): it
    becomes ``row-3-2`` (``-3``, ...) instead, and the note says so."""
    blank = out["id"] == ""
    if not blank.any():
        return
    taken = set(out.loc[~blank, "id"])
    generated, clashes = [], []
    for r in out.loc[blank, "row"]:
        new, k = f"row-{r}", 1
        while new in taken:
            k += 1
            new = f"row-{r}-{k}"
        if k > 1:
            clashes.append(f"row-{r}")
        taken.add(new)
        generated.append(new)
    out.loc[blank, "id"] = generated
    if id_column is None:
        return  # no id column at all: row numbers are the ids, as documented
    rows = out.loc[blank, "row"].tolist()
    report.notes.append(
        f"{rows_phrase(rows)}: no id in field {id_column!r}; "
        + (
            "every row is given its row number as id (row-2, ...)"
            if blank.all()
            else f"given {'their row numbers' if len(rows) > 1 else 'its row number'} as id ({listing(generated)})"
        )
        + (
            f"; {listing(clashes)} {'are' if len(clashes) > 1 else 'is'} already an id in the "
            "file, so a suffix was added"
            if clashes
            else ""
        )
    )


def _drop_repeated_rows(out: pd.DataFrame, id_column: Any, report: DataReport) -> pd.DataFrame:
    """Remove rows that repeat an earlier row exactly (same id, text, code, interview, speaker and
    coder: a row pasted twice), noting each with the row it repeats."""
    if id_column is None:
        return out  # no ids: `_deduplicate` finds repeated texts
    key = pd.DataFrame(
        {
            "id": out["id"],
            "text": out["text"].map(text_key),
            "label": [lab if lab is not None else raw.casefold() for lab, raw in zip(out["label"], out["raw_label"])],
            "group": out["group"],
            "speaker": out["speaker"],
            "coder": out["coder"],
        }
    )
    repeat = key.duplicated(keep="first")
    if not repeat.any():
        return out
    first: dict[tuple, int] = {}
    pairs = []
    for k, r, is_repeat in zip(key.itertuples(index=False), out["row"], repeat):
        if is_repeat:
            pairs.append((r, first[tuple(k)]))
        else:
            first.setdefault(tuple(k), r)
    ids = out.loc[repeat, "id"].tolist()
    report.duplicates_removed.extend(ids)
    listed = ", ".join(f"row {r} (= row {f}, id {i!r})" for (r, f), i in zip(pairs[:_MAX_LISTED], ids))
    report.notes.append(
        f"{len(pairs)} row{'s' if len(pairs) > 1 else ''} repeating an earlier row exactly "
        f"(same id and content) removed: {listed}"
        + (f" and {len(pairs) - _MAX_LISTED} more" if len(pairs) > _MAX_LISTED else "")
    )
    return out.loc[~repeat].copy()


def _read_qdpx(path: Path, codebook: Codebook, cfg: DataConfig) -> tuple[pd.DataFrame, DataConfig, list[str]]:
    """A REFI-QDA project's coded selections as a table (``_row`` counts excerpts from 1), with
    the column settings that fit it: its columns have fixed names whatever the config says."""
    from supportlens.qda.importing import import_qdpx
    from supportlens.qda.project import QdaError

    try:
        frame, qda_report = import_qdpx(path, codebook)
    except QdaError as exc:
        raise DataError(str(exc)) from None
    summary = qda_report.summary(import_options=False)  # import's options are not ours: say how to get them
    if frame.empty:
        raise DataError(f"{path}: no coded selection maps to the codebook (" + "; ".join(summary.splitlines()) + ")")
    frame = frame.assign(_row=range(1, len(frame) + 1))
    cfg = dataclasses.replace(
        cfg,
        text_column="text",
        label_column="label",
        group_column="interview_id",
        id_column="id",
        speaker_column="speaker_role",
        coder_column="coder",
    )
    notes = [line.removeprefix("note: ") for line in summary.splitlines()[1:]]
    return frame, cfg, notes


def _deduplicate(out: pd.DataFrame, report: DataReport, path: Path | str) -> pd.DataFrame:
    key = out["text"].map(text_key)
    keep = pd.Series(True, index=out.index)
    for _, idx in out.groupby(key).groups.items():
        if len(idx) < 2:
            continue
        block = out.loc[idx]
        labels = sorted(set(block["label"]))
        if len(labels) == 1:
            report.duplicates_removed.extend(block["id"].iloc[1:].tolist())
            keep.loc[idx[1:]] = False
            continue
        report.conflicts.append(
            {
                "ids": block["id"].tolist(),
                "rows": block["row"].tolist(),
                "labels": block["label"].tolist(),
                "text": block["text"].iloc[0][:200],
            }
        )
        if report.conflict_policy == "drop":
            keep.loc[idx] = False
        elif report.conflict_policy == "keep":
            pass
    if report.conflicts and report.conflict_policy == "error":
        first = report.conflicts[0]
        raise DataError(
            f"{path}: {len(report.conflicts)} excerpt texts are coded with different labels, e.g. "
            f"rows {first['rows']} as {first['labels']}; resolve them or set data.conflicts to "
            "drop or keep"
        )
    return out.loc[keep].copy()


def combine_coded(data: CodedData, extras: Sequence[CodedData], codebook: Codebook) -> CodedData:
    """The main coded data plus extra coded files or filled coding sheets, as one training set,
    with a ``target`` column that is True for the extra files' rows: passages coded on the
    researcher's own corpus, which training treats as the target domain (`training.adapt`) and
    keeps out of the authored split. So whether the data are grouped (split by interview) is the
    main file's to say; an extra file without an interview column makes each of its passages its
    own interview (``<file stem>:row-N``), with a note.

    An excerpt already present (same text, whitespace and case ignored) keeps its first coding,
    so a passage offered on two coding sheets is learnt once; an id used in two files is an error.
    A coding sheet names each passage's interview by its transcript file (``source``); such a
    group joins the interview it shares passages with, else the one named like the file
    (``transcripts/IV11.txt`` is interview ``IV11``), so one interview is one group and a grouped
    split cannot put it in both training and test data. The report counts rows per file.
    """
    main = data.report
    report = dataclasses.replace(
        main,
        notes=list(main.notes),
        duplicates_removed=list(main.duplicates_removed),
        conflicts=list(main.conflicts),
        skipped_blank_labels=list(main.skipped_blank_labels),
        files=[{"path": main.path, "rows_read": main.rows_read, "rows_kept": main.rows_kept}],
    )
    frames = [data.frame.assign(target=False)]
    text_group = dict(zip(data.frame["text"].map(text_key), data.frame["group"]))
    id_source = {i: main.path for i in data.frame["id"]}
    grouped_extras: list[bool] = []
    for extra in extras:
        path = extra.report.path
        frame = extra.frame.copy()
        frame["target"] = True
        if extra.report.grouped:
            frame["group"] = _align_groups(frame, text_group, path, report)
        else:  # "row-N" of two files must not become one interview
            frame["group"] = [f"{Path(path).stem}:{g}" for g in frame["group"]]
            report.notes.append(
                f"{path} has no interview column: each of its passages counts as its own interview "
                "when its passages are cross-fitted"
            )
        key = frame["text"].map(text_key)
        repeated = key.isin(text_group.keys())
        if repeated.any():
            report.notes.append(
                f"{path}: {int(repeated.sum())} excerpts already coded in an earlier "
                "file were left out (the first coding is kept)"
            )
        frame, key = frame.loc[~repeated], key[~repeated]
        clash = frame.loc[frame["id"].isin(id_source.keys())]
        if not clash.empty:
            ids = clash["id"].tolist()
            raise DataError(
                f"{path}: ids {listing(ids)} ({rows_phrase(clash['row'].tolist())}) are also used in "
                f"{id_source[ids[0]]}; excerpt ids must be unique across all training files"
            )
        id_source.update({i: path for i in frame["id"]})
        text_group.update(zip(key, frame["group"]))
        report.rows_read += extra.report.rows_read
        report.rows_kept += len(frame)
        report.duplicates_removed.extend(extra.report.duplicates_removed)
        report.conflicts.extend(extra.report.conflicts)
        report.files.append({"path": path, "rows_read": extra.report.rows_read, "rows_kept": len(frame)})
        grouped_extras.append(extra.report.grouped)
        report.notes.append(
            f"added {len(frame)} coded excerpts from {path} "
            f"({len(extra.report.skipped_blank_labels)} rows without a code skipped)"
        )
        frames.append(frame)
    report.path = " + ".join(f["path"] for f in report.files)
    report.target_grouped = any(grouped_extras) or not extras
    combined = pd.concat(frames, ignore_index=True)
    return CodedData(report=report, frame=combined, codebook=codebook)


def _align_groups(frame: pd.DataFrame, text_group: dict[str, str], path: str, report: DataReport) -> pd.Series:
    """Groups of an extra file that name a transcript file, renamed to the interview they are:
    the group of the data so far that shares passages with them, else one whose file name or stem
    is the file's (``transcripts/smp01.txt`` joins ``smp01.txt``, imported from a .qdpx, or ``smp01``;
    case ignored), else the file's name without folder and suffix; a note lists each."""
    from supportlens.transcripts.read import SUPPORTED_SUFFIXES

    def stem(value: str) -> str:
        return Path(value.replace("\\", "/")).stem

    groups = pd.Series(frame["group"], index=frame.index)
    files = sorted({g for g in groups if Path(g.replace("\\", "/")).suffix.lower() in SUPPORTED_SUFFIXES})
    if not files:
        return groups
    # an interview imported from a .qdpx keeps its source's name ("smp01.txt"), one from a table
    # is often the stem ("smp01"): either matches the sheet's file, by file name or by stem
    known: dict[str, str] = {}
    for g in sorted(set(text_group.values())):
        for key in (g, Path(g.replace("\\", "/")).name, stem(g)):
            known.setdefault(key.casefold(), g)
    renamed: dict[str, str] = {}
    joined: list[str] = []
    for name in files:
        texts = frame.loc[groups == name, "text"].map(text_key)
        shared = [text_group[t] for t in texts if t in text_group]
        same = next(
            (known[k] for k in (Path(name.replace("\\", "/")).name.casefold(), stem(name).casefold()) if k in known),
            None,
        )
        if shared:
            renamed[name] = max(set(shared), key=shared.count)
            joined.append(f"{name!r} as {renamed[name]!r} (they share passages)")
        elif same is not None:
            renamed[name] = same
            joined.append(f"{name!r} as {renamed[name]!r} (same name)")
        else:
            renamed[name] = stem(name)
    new = sorted({renamed[n] for n in files} - set(known.values()))
    report.notes.append(
        f"{path}: each transcript file is one interview, named by the file without folder and suffix"
        + (f"; joined to interviews of the data so far: {listing(joined)}" if joined else "")
        + (f"; new interviews: {listing(new)}" if new else "")
    )
    return groups.map(lambda g: renamed.get(g, g))


def to_dataset(frame: pd.DataFrame, codebook: Codebook) -> datasets.Dataset:
    """Canonical columns -> ``datasets.Dataset`` whose ``label`` is a ``ClassLabel``."""
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=codebook.labels),
            "group": datasets.Value("string"),
            "speaker": datasets.Value("string"),
            "coder": datasets.Value("string"),
        }
    )
    data = {name: frame[name].astype(str).tolist() for name in ("id", "text", "group", "speaker", "coder")}
    data["label"] = [codebook.label2id[label] for label in frame["label"]]
    return datasets.Dataset.from_dict(data, features=features)
