"""Coded excerpts in: CSV, TSV, JSONL or XLSX files -> a validated ``datasets.Dataset``.

Coders export from many tools, so every problem is reported with the file, the row as a person
would count it (the header is row 1 in a spreadsheet-like file, the first line is row 1 in JSONL)
and the field, before any training starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pandas as pd

from .codebook import Codebook
from .config import DataConfig

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".xlsx")
_MAX_LISTED = 10


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

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def summary(self) -> str:
        parts = [f"{self.rows_kept} excerpts kept of {self.rows_read} read from {self.path}"]
        if self.duplicates_removed:
            parts.append(f"{len(self.duplicates_removed)} exact duplicates removed")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} texts coded with different labels "
                         f"({self.conflict_policy})")
        if self.skipped_blank_labels:
            parts.append(f"{len(self.skipped_blank_labels)} rows with no code skipped")
        return "; ".join(parts) + "".join(f"\n  note: {n}" for n in self.notes)


@dataclass
class CodedData:
    dataset: datasets.Dataset
    report: DataReport
    frame: pd.DataFrame  # the kept rows, with canonical columns, for logging and inspection

    @property
    def digest(self) -> str:
        return dataset_digest(self.frame)


def dataset_digest(frame: pd.DataFrame) -> str:
    """A short content hash of texts, labels and groups: equal data -> equal digest."""
    h = hashlib.sha256()
    for row in frame[["text", "label", "group"]].itertuples(index=False):
        h.update("\x1f".join(map(str, row)).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()[:12]


def _decode(path: Path, raw: bytes) -> str:
    """Decode UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is an error."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: undecodable bytes {raw[exc.start:exc.end]!r} at byte "
            f"{exc.start}; save the file as UTF-8 (in Excel: 'CSV UTF-8') and try again"
        ) from None


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
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


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a coded-excerpt table into strings; adds ``_row`` (the row number a person sees)."""
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
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises many types for broken files
            raise DataError(f"{path}: cannot read as an Excel workbook: {exc}") from exc
        frame["_row"] = range(2, len(frame) + 2)
        return frame
    text = _decode(path, path.read_bytes())
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path, text)
    sep = "\t" if suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a valid {suffix[1:].upper()} file: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    frame["_row"] = range(2, len(frame) + 2)
    return frame


def _listing(rows: list[Any]) -> str:
    shown = ", ".join(str(r) for r in rows[:_MAX_LISTED])
    return shown + (f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else "")


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def load_coded(path: str | Path, codebook: Codebook, cfg: DataConfig | None = None,
               skip_blank_labels: bool = False, min_codes: int = 2) -> CodedData:
    """Load, validate and de-duplicate coded excerpts (a table, or a REFI-QDA ``.qdpx`` project
    whose coded selections are read by `supportlens.qda.import_qdpx`).

    ``skip_blank_labels`` is for coding sheets, where an empty code means "not coded yet".
    """
    cfg = cfg or DataConfig()
    path = Path(path)
    notes: list[str] = []
    if path.suffix.lower() == ".qdpx":
        frame, cfg, notes = _read_qdpx(path, codebook, cfg)
    else:
        frame = read_table(path)
    report = DataReport(path=str(path), rows_read=len(frame), conflict_policy=cfg.conflicts, notes=notes)
    if frame.empty:
        raise DataError(f"{path}: no rows")

    columns = [c for c in frame.columns if c != "_row"]
    for key, column in (("--text-column or data.text_column", cfg.text_column),
                        ("--label-column or data.label_column", cfg.label_column)):
        if column not in frame.columns:
            raise DataError(
                f"{path}: missing column {column!r} (choose it with {key}); the file has columns: "
                f"{', '.join(map(str, columns))}"
            )
    optional = {"group": cfg.group_column, "id": cfg.id_column, "speaker": cfg.speaker_column,
                "coder": cfg.coder_column}
    out = pd.DataFrame({
        "row": frame["_row"].astype(int),
        "text": [_clean(v).strip() for v in frame[cfg.text_column]],
        "raw_label": [_clean(v).strip() for v in frame[cfg.label_column]],
    })
    for name, column in optional.items():
        if column and column in frame.columns:
            out[name] = [_clean(v).strip() for v in frame[column]]
        else:
            out[name] = ""
    if not cfg.group_column or cfg.group_column not in frame.columns:
        report.grouped = False
        report.notes.append(
            "no interview/document column: each excerpt is its own group, so excerpts of one "
            "interview may land in both training and test data and scores will be optimistic"
        )
        out["group"] = [f"row-{r}" for r in out["row"]]
    elif (out["group"] == "").any():
        missing = out.loc[out["group"] == "", "row"].tolist()
        raise DataError(f"{path}: rows {_listing(missing)}: field {cfg.group_column!r} is empty; "
                        "every excerpt needs its interview or document id")
    if (out["id"] == "").all():
        out["id"] = [f"row-{r}" for r in out["row"]]

    empty = out.loc[out["text"] == "", "row"].tolist()
    if empty:
        raise DataError(f"{path}: rows {_listing(empty)}: field {cfg.text_column!r} is empty")

    blank = out["raw_label"] == ""
    if blank.any():
        if skip_blank_labels:
            report.skipped_blank_labels = out.loc[blank, "row"].tolist()
            out = out.loc[~blank].copy()
            if out.empty:
                raise DataError(f"{path}: no row has a code in {cfg.label_column!r} yet")
        else:
            raise DataError(f"{path}: rows {_listing(out.loc[blank, 'row'].tolist())}: "
                            f"field {cfg.label_column!r} is empty")

    out["label"] = [codebook.normalise(v) for v in out["raw_label"]]
    unknown = out.loc[out["label"].isna()]
    if not unknown.empty:
        values = sorted(set(unknown["raw_label"]))
        raise DataError(
            f"{path}: unknown label{'s' if len(values) > 1 else ''} in field {cfg.label_column!r}: "
            f"{', '.join(repr(v) for v in values)} (rows {_listing(unknown['row'].tolist())}). "
            f"Known codes: {'; '.join(codebook.known_values())}. Add an alias to the codebook "
            "or pass another with --codebook."
        )

    ids = out["id"]
    dup_ids = sorted(set(ids[ids.duplicated()]))
    if dup_ids:
        raise DataError(f"{path}: field {cfg.id_column!r} repeats ids {_listing(dup_ids)}; "
                        "excerpt ids must be unique")

    out = _deduplicate(out, report, path)
    report.rows_kept = len(out)
    out = out.drop(columns=["raw_label"]).reset_index(drop=True)
    if out["label"].nunique() < min_codes:  # an extra sheet may hold one code; the training set may not
        raise DataError(f"{path}: all kept excerpts have the same code; a classifier needs two or more")
    return CodedData(dataset=to_dataset(out, codebook), report=report, frame=out)


def _read_qdpx(path: Path, codebook: Codebook, cfg: DataConfig) -> tuple[pd.DataFrame, DataConfig, list[str]]:
    """A REFI-QDA project's coded selections as a table (``_row`` counts excerpts from 1), with
    the column settings that fit it: its columns have fixed names whatever the config says."""
    from .qda import QdaError, import_qdpx

    try:
        frame, qda_report = import_qdpx(path, codebook)
    except QdaError as exc:
        raise DataError(str(exc)) from None
    summary = qda_report.summary(import_options=False)  # import's options are not ours: say how to get them
    if frame.empty:
        raise DataError(f"{path}: no coded selection maps to the codebook ("
                        + "; ".join(summary.splitlines()) + ")")
    frame = frame.assign(_row=range(1, len(frame) + 1))
    cfg = dataclasses.replace(cfg, text_column="text", label_column="label", group_column="interview_id",
                              id_column="id", speaker_column="speaker_role", coder_column="coder")
    notes = [line.removeprefix("note: ") for line in summary.splitlines()[1:]]
    return frame, cfg, notes


def _norm_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _deduplicate(out: pd.DataFrame, report: DataReport, path: Path) -> pd.DataFrame:
    key = out["text"].map(_norm_text)
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
        report.conflicts.append({"ids": block["id"].tolist(), "rows": block["row"].tolist(),
                                 "labels": block["label"].tolist(),
                                 "text": block["text"].iloc[0][:200]})
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


def to_dataset(frame: pd.DataFrame, codebook: Codebook) -> datasets.Dataset:
    """Canonical columns -> ``datasets.Dataset`` whose ``label`` is a ``ClassLabel``."""
    features = datasets.Features({
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=codebook.labels),
        "group": datasets.Value("string"),
        "speaker": datasets.Value("string"),
        "coder": datasets.Value("string"),
    })
    data = {name: frame[name].astype(str).tolist() for name in ("id", "text", "group", "speaker", "coder")}
    data["label"] = [codebook.label2id[label] for label in frame["label"]]
    return datasets.Dataset.from_dict(data, features=features)
