"""The predictions table, defined once: its columns and their types, the scores of a batch of
passages, one row per passage, reading a written table back, and checking one for the report.

Every producer and consumer of labelled passages builds on this module, so they cannot drift apart:
`inference.labeler.Labeler.score` and the MLflow pyfunc model (`tracking`) make the score columns
with `score_frame`; `inference.predict.predict_files` writes `prediction_columns` with
`arrow_schema`'s types and reads its output back with `read_output` to resume; Spark's
`score_transcripts` types its columns from `prediction_fields`; the HTML report reads a table with
`read_predictions`.

It sits at the top level, beside `calibration`, and not in `inference`: `tracking`, which serves the
same columns from its pyfunc model, is below `inference` and may not import it. It imports only
`calibration` (the ``needs_review`` rule), pandas and numpy (pyarrow when a Parquet schema is asked for).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supportlens.calibration import flags_for_review

# the file types a predictions table is written as and read from
PREDICTION_SUFFIXES = (".csv", ".jsonl", ".parquet")

# Each column with its type, as Spark SQL names it (Spark's schemas and the pyfunc model's
# `result_type` are written in these names; `arrow_schema` maps them for Parquet).
# Where a passage is in its transcript, then what the model said of it.
PASSAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("source", "string"),
    ("passage_index", "bigint"),
    ("speaker", "string"),
    ("role", "string"),
    ("start", "bigint"),
    ("end", "bigint"),
    ("start_time", "double"),
    ("end_time", "double"),
    ("text", "string"),
)
PASSAGE_COLUMNS = [name for name, _ in PASSAGE_FIELDS]
# the id of a csv/xlsx input's row (its `read.ID_COLUMN`): the last column, and only in outputs
# that hold such a row, so the columns of every other output stay as they were
ROW_ID_COLUMN = "row_id"
# Optional columns, after the scores (and before ``row_id``), only in outputs whose run made them,
# so the columns of every other output stay as they were: why a language-model labeller could
# not code a passage (`REVIEW_REASON_FIELDS`), and what a second opinion (`predict
# --second-opinion`) said of a passage the model flagged for review (`SECOND_OPINION_FIELDS`)
REVIEW_REASON_COLUMN = "review_reason"
REVIEW_REASON_FIELDS: tuple[tuple[str, str], ...] = ((REVIEW_REASON_COLUMN, "string"),)
SECOND_OPINION_FIELDS: tuple[tuple[str, str], ...] = (
    ("second_label", "string"),
    ("second_confidence", "double"),
    ("second_reason", "string"),
)
OPTIONAL_COLUMNS = frozenset(name for name, _ in REVIEW_REASON_FIELDS + SECOND_OPINION_FIELDS)
# the `transcripts.segmentation.Passage` attribute of each passage column but ``source``
_PASSAGE_ATTRIBUTES = {"passage_index": "index"}
# what the HTML report needs of a predictions table (the other columns are optional there)
REQUIRED_COLUMNS = ("source", "passage_index", "speaker", "text", "label", "confidence", "needs_review")
_ARROW_TYPES = {"string": "string", "bigint": "int64", "double": "float64", "boolean": "bool_"}
_BOOLEAN = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class PredictionsError(ValueError):
    """A predictions table cannot be read, or is not one (a column missing, a bad value)."""


def score_fields(labels: Sequence[str]) -> list[tuple[str, str]]:
    """The model's columns: its label, one probability per code (``p_<code>``, in the model's
    order), its confidence and whether the passage needs review."""
    return (
        [("label", "string")]
        + [(f"p_{label}", "double") for label in labels]
        + [("confidence", "double"), ("needs_review", "boolean")]
    )


def score_columns(labels: Sequence[str]) -> list[str]:
    return [name for name, _ in score_fields(labels)]


def prediction_fields(
    labels: Sequence[str], row_ids: bool = False, optional: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """Every column of a predictions table, in order: the passage's, the scores, the `optional`
    ones the run made (`REVIEW_REASON_FIELDS`, `SECOND_OPINION_FIELDS`), then ``row_id``, only
    when asked for."""
    return (
        list(PASSAGE_FIELDS) + score_fields(labels) + list(optional) + ([(ROW_ID_COLUMN, "string")] if row_ids else [])
    )


def prediction_columns(
    labels: Sequence[str], row_ids: bool = False, optional: Sequence[tuple[str, str]] = ()
) -> list[str]:
    return [name for name, _ in prediction_fields(labels, row_ids, optional)]


def arrow_schema(labels: Sequence[str], row_ids: bool = False, optional: Sequence[tuple[str, str]] = ()):
    """Fixed Parquet types, so a transcript with no timestamps (all nulls) still fits the file."""
    import pyarrow as pa  # only for Parquet: a csv or jsonl run never needs it

    fields = prediction_fields(labels, row_ids, optional)
    return pa.schema([(name, getattr(pa, _ARROW_TYPES[kind])()) for name, kind in fields])


def score_frame(proba: np.ndarray, labels: Sequence[str], threshold: float, measured: bool = True) -> pd.DataFrame:
    """The score columns for passages whose probabilities (one row each, one column per label) are
    `proba`: the most probable label, every probability, the confidence (the highest probability),
    and ``needs_review`` (`calibration.flags_for_review`: below `threshold`, or always when no
    threshold was `measured`). The same for every caller: batch files, Spark and the pyfunc model."""
    proba = np.asarray(proba, dtype=float).reshape(-1, len(labels))
    frame = pd.DataFrame({"label": [labels[i] for i in proba.argmax(axis=1)]})
    for j, label in enumerate(labels):
        frame[f"p_{label}"] = proba[:, j]
    frame["confidence"] = proba.max(axis=1)
    frame["needs_review"] = flags_for_review(frame["confidence"].to_numpy(dtype=float), threshold, measured)
    return frame


def passage_rows(source: str, passages: Sequence[Any], scores: pd.DataFrame) -> list[dict]:
    """One row per passage (a `transcripts.segmentation.Passage`) with its scores (a `score_frame`
    in the same order), as plain Python values; ``row_id`` only for a passage that has one."""
    rows = []
    for passage, (_, scored) in zip(passages, scores.iterrows()):
        row = {
            "source": source,
            **{column: getattr(passage, _PASSAGE_ATTRIBUTES.get(column, column)) for column in PASSAGE_COLUMNS[1:]},
        }
        row.update(
            {
                k: (
                    _optional_value(v)
                    if k in OPTIONAL_COLUMNS
                    else bool(v)
                    if k == "needs_review"
                    else float(v)
                    if k.startswith("p_") or k == "confidence"
                    else v
                )
                for k, v in scored.items()
            }
        )
        if passage.row_id is not None:
            row[ROW_ID_COLUMN] = passage.row_id
        rows.append(row)
    return rows


def _optional_value(value: Any) -> Any:
    """An optional column's cell as plain Python: a missing one (None, NaN) as None, so that it is
    null in JSON and Parquet and empty in a CSV."""
    if _missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def read_output(path: str | Path) -> pd.DataFrame:
    """A predictions table (.csv, .jsonl or .parquet) as written: in a CSV only an empty cell is
    missing (a speaker called "NA" is not), JSON values keep the types they were written with, and
    row ids such as "007" stay text."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={ROW_ID_COLUMN: str})
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_parquet(path)


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions table and check what the report needs of it: `REQUIRED_COLUMNS`, a
    confidence in [0, 1], a true/false ``needs_review``, a whole ``passage_index``, a source and
    a label in every row. Errors (`PredictionsError`) name the file, and the row (1-based, header
    not counted) and field of a bad value."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_SUFFIXES:
        raise PredictionsError(
            f"{path}: predictions must be {', '.join(PREDICTION_SUFFIXES)}; got {suffix or 'no suffix'!r}"
        )
    if not path.is_file():
        raise PredictionsError(f"{path}: predictions file not found")
    try:
        frame = read_output(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a malformed file
        raise PredictionsError(f"{path}: cannot read predictions ({type(exc).__name__}: {exc})") from exc
    if frame.empty:  # before the column check: an empty JSONL file has no columns either
        raise PredictionsError(f"{path}: has no passages")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise PredictionsError(
            f"{path}: missing column(s) {', '.join(missing)}; is this an output of supportlens predict?"
        )
    frame = frame.reset_index(drop=True)
    frame["confidence"] = [_confidence(v, path, i) for i, v in enumerate(frame["confidence"])]
    frame["needs_review"] = [_flag(v, path, i) for i, v in enumerate(frame["needs_review"])]
    frame["passage_index"] = [_index(v, path, i) for i, v in enumerate(frame["passage_index"])]
    for column in ("source", "label"):
        for i, value in enumerate(frame[column]):
            if _missing(value) or not str(value).strip():
                raise PredictionsError(f"{path}: row {i + 1}: field '{column}' is empty")
    frame["source"] = frame["source"].astype(str)
    frame["label"] = frame["label"].astype(str)
    frame["speaker"] = _texts(frame["speaker"])
    frame["text"] = _texts(frame["text"])
    return frame


def _texts(values: Iterable[object]) -> list[str]:
    return ["" if _missing(v) else str(v) for v in values]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _confidence(value: object, path: Path, i: int) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number <= 1.0:  # also rejects NaN
        raise PredictionsError(f"{path}: row {i + 1}: field 'confidence' must be a number in [0, 1]; got {value!r}")
    return number


def _flag(value: object, path: Path, i: int) -> bool:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()  # also numpy's True_ and 0/1 integers
    if key not in _BOOLEAN:
        raise PredictionsError(f"{path}: row {i + 1}: field 'needs_review' must be true or false; got {value!r}")
    return _BOOLEAN[key]


def _index(value: object, path: Path, i: int) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or number < 0:  # NaN is not an integer either
        raise PredictionsError(f"{path}: row {i + 1}: field 'passage_index' must be a whole number >= 0; got {value!r}")
    return int(number)
