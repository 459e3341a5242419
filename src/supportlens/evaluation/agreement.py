"""Agreement statistics between two codings of the same excerpts (coder vs coder, or model vs coder).

One implementation serves training metrics and the coder-facing agreement command, so a kappa
reported anywhere in supportlens means the same thing.

The coder-facing part works in three steps, each usable on its own:

1. `read_coding` reads one coder's file (or a `supportlens predict` output) into units with a code;
2. `match_codings` pairs the units of two codings, by excerpt id or by overlapping spans;
3. `compare_codings` takes two *aligned* frames (row i of one is row i of the other) and returns an
   `Agreement`: the statistics with bootstrap intervals, per-code agreement, the confusion table
   and the disagreements to discuss. Any source of aligned codings (two users in one QDA project,
   say) only needs this last call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from supportlens.config import DEFAULT_CODEBOOK
from supportlens.corpus.dataset import DataError, listing, rows_phrase
from supportlens.corpus.sheets import passage_id, write_sheet

MATCH_CHOICES = ("id", "span")
SOURCE_COLUMNS = ("source", "file")  # `predict` writes source; the gold files name it file
CODE_COLUMNS = ("code", "label")  # a coding sheet's code wins over a label column beside it
MIN_SPAN_OVERLAP = 0.5  # share of the shorter span two spans must share to count as one unit
UNIT_COLUMNS = ["unit", "source", "start", "end", "text", "code", "row"]
UNKNOWN_CHOICES = ("error", "keep")  # a code the codebook does not know: stop, or compare it as written


def percent_agreement(a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return float((a == b).mean()) if len(a) else float("nan")


def cohens_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa; 1.0 when both codings are identical and constant (sklearn gives nan)."""
    a, b = list(a), list(b)
    if not a:
        return float("nan")
    if a == b:
        return 1.0
    return float(cohen_kappa_score(a, b))


def krippendorff_alpha(a: Sequence[str], b: Sequence[str]) -> float:
    """Krippendorff's alpha at the nominal level for two coders, no missing values."""
    a, b = list(a), list(b)
    if not a:
        return float("nan")
    values = sorted(set(a) | set(b))
    if len(values) < 2:
        return 1.0  # perfect agreement on a single value; the formula divides by zero
    index = {v: i for i, v in enumerate(values)}
    data = np.array([[index[v] for v in a], [index[v] for v in b]], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


# ---------------------------------------------------------------------------------------------
# statistics from confusion tables, vectorised over bootstrap resamples


def stats_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Percent agreement, Cohen's kappa and nominal alpha from a stack of K x K confusion tables.

    Written out by hand (rather than calling the functions above) so that 2,000 bootstrap
    resamples cost one array operation; the test suite checks both give the same numbers.
    """
    cm = np.asarray(cm, dtype=float)
    if cm.ndim == 2:
        cm = cm[None]
    n = cm.sum(axis=(1, 2))
    agree = np.trace(cm, axis1=1, axis2=2)
    rows, cols = cm.sum(axis=2), cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        po = agree / n
        pe = (rows * cols).sum(axis=1) / n**2
        # chance agreement 1 means both coders used one and the same code throughout: perfect
        kappa = np.where(np.isclose(pe, 1.0), 1.0, (po - pe) / (1.0 - pe))
        # nominal alpha for two coders and no missing values, from the coincidence matrix
        pairable = 2 * n
        totals = rows + cols
        expected = pairable**2 - (totals**2).sum(axis=1)
        observed = 2 * (n - agree)
        alpha = np.where(expected > 0, 1.0 - (pairable - 1) * observed / expected, 1.0)
    empty = n == 0
    return {
        name: np.where(empty, np.nan, values) for name, values in (("percent", po), ("kappa", kappa), ("alpha", alpha))
    }


def bootstrap_confusions(
    ia: np.ndarray, ib: np.ndarray, k: int, n_boot: int, seed: int, chunk: int = 250
) -> np.ndarray:
    """Confusion tables of ``n_boot`` resamples (with replacement) of the matched units."""
    rng = np.random.default_rng(seed)
    pairs = np.asarray(ia) * k + np.asarray(ib)
    n = len(pairs)
    tables = []
    for start in range(0, n_boot, chunk):  # chunks keep memory flat for large codings
        b = min(chunk, n_boot - start)
        sample = pairs[rng.integers(0, n, size=(b, n))]
        flat = (sample + (np.arange(b) * k * k)[:, None]).ravel()
        tables.append(np.bincount(flat, minlength=b * k * k).reshape(b, k, k))
    return np.concatenate(tables) if tables else np.zeros((0, k, k))


def paired_kappa_difference(
    truth: Sequence[str] | np.ndarray,
    a: Sequence[str] | np.ndarray,
    b: Sequence[str] | np.ndarray,
    labels: Sequence[str],
    n_boot: int = 2000,
    seed: int = 13,
) -> Estimate:
    """κ(truth, b) − κ(truth, a), with a paired bootstrap 95% interval.

    Both models are scored on the same resampled units in every replicate, so the interval is
    that of the *difference*. On a small set (37 quotes) two separate κ intervals overlap almost
    always; the paired one says whether one model is better on these units at all.
    """
    codes = {c: i for i, c in enumerate(labels)}
    truth, a, b = ([str(x) for x in v] for v in (truth, a, b))
    unknown = sorted(set(truth + a + b) - set(codes))
    if unknown:
        raise ValueError(f"codes {unknown} are not among the labels {list(labels)}")
    if not len(truth) == len(a) == len(b):
        raise ValueError(f"paired codings must have equal length, got {len(truth)}, {len(a)} and {len(b)}")
    if len(truth) == 0:
        raise ValueError("no units to compare")
    k = len(codes)
    t, ia, ib = (np.array([codes[x] for x in v]) for v in (truth, a, b))
    point = cohens_kappa(truth, b) - cohens_kappa(truth, a)
    # the same seed draws the same resamples of the units for both models: that is the pairing
    diffs = (
        stats_from_confusion(bootstrap_confusions(t, ib, k, n_boot, seed))["kappa"]
        - stats_from_confusion(bootstrap_confusions(t, ia, k, n_boot, seed))["kappa"]
    )
    diffs = diffs[np.isfinite(diffs)]
    low, high = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan)
    return Estimate(float(point), float(low), float(high))


def specific_agreement(a: Sequence[str], b: Sequence[str], code: str) -> float:
    """Positive specific agreement 2a / (2a + b + c) for one code; nan when neither coder used it."""
    in_a = np.asarray(a, dtype=object) == code
    in_b = np.asarray(b, dtype=object) == code
    both = int((in_a & in_b).sum())
    denominator = 2 * both + int((in_a & ~in_b).sum()) + int((~in_a & in_b).sum())
    return 2 * both / denominator if denominator else float("nan")


# ---------------------------------------------------------------------------------------------
# the result


@dataclass
class Estimate:
    value: float
    low: float = float("nan")  # bootstrap 95% interval; nan when no bootstrap was run
    high: float = float("nan")


@dataclass
class Agreement:
    name_a: str
    name_b: str
    labels: list[str]
    n: int  # matched units
    percent: Estimate
    kappa: Estimate
    alpha: Estimate
    per_code: pd.DataFrame  # code, n_a, n_b, both, specific_agreement, kappa
    confusion: pd.DataFrame  # rows: codes of A, columns: codes of B
    disagreements: pd.DataFrame  # unit, source, start, end, text, code_a, code_b
    only_a: int = 0  # units of A with no partner in B (a unit B left blank is not counted here)
    only_b: int = 0
    uncoded_a: int = 0  # rows left blank (not coded yet), skipped before matching
    uncoded_b: int = 0
    # the units behind those counts, named as the researcher finds them again (see `unit_names`)
    only_a_units: list[str] = field(default_factory=list)
    only_b_units: list[str] = field(default_factory=list)
    uncoded_a_units: list[str] = field(default_factory=list)
    uncoded_b_units: list[str] = field(default_factory=list)
    matched_by: str = "aligned"
    n_boot: int = 0
    notes: list[str] = field(default_factory=list)
    # codes the codebook does not know, compared as written (``unknown_codes="keep"``); a note names them
    unknown_codes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        stats = {name: vars(getattr(self, name)).copy() for name in ("percent", "kappa", "alpha")}
        return {
            "a": self.name_a,
            "b": self.name_b,
            "n": self.n,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "uncoded_a": self.uncoded_a,
            "uncoded_b": self.uncoded_b,
            "only_a_units": list(self.only_a_units),
            "only_b_units": list(self.only_b_units),
            "uncoded_a_units": list(self.uncoded_a_units),
            "uncoded_b_units": list(self.uncoded_b_units),
            "matched_by": self.matched_by,
            "n_boot": self.n_boot,
            "unknown_codes": list(self.unknown_codes),
            **stats,
            "per_code": self.per_code.to_dict("records"),
            "confusion": self.confusion.to_dict(),
            "notes": list(self.notes),
        }


def compare_codings(
    a: pd.DataFrame,
    b: pd.DataFrame,
    labels: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 13,
    name_a: str = "A",
    name_b: str = "B",
) -> Agreement:
    """Agreement between two aligned codings: row i of ``a`` and of ``b`` are the same unit.

    Both frames need a ``code`` column; ``unit``, ``source``, ``start``, ``end`` and ``text`` are
    carried into the list of disagreements when present (taken from ``a``, else ``b``).
    """
    if len(a) != len(b):
        raise ValueError(f"aligned codings must have equal length, got {len(a)} and {len(b)}")
    for name, frame in ((name_a, a), (name_b, b)):
        if "code" not in frame.columns:
            raise ValueError(f"{name}: the aligned frame needs a 'code' column")
    if len(a) == 0:
        raise ValueError(f"no units in common between {name_a} and {name_b}")
    codes_a = a["code"].astype(str).to_numpy(dtype=object)
    codes_b = b["code"].astype(str).to_numpy(dtype=object)
    labels = list(labels or [])
    labels += sorted((set(codes_a) | set(codes_b)) - set(labels))
    index = {lab: i for i, lab in enumerate(labels)}
    ia = np.array([index[c] for c in codes_a])
    ib = np.array([index[c] for c in codes_b])
    k = len(labels)

    table = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k)
    point = {
        "percent": percent_agreement(codes_a, codes_b),
        "kappa": cohens_kappa(codes_a, codes_b),
        "alpha": krippendorff_alpha(codes_a, codes_b),
    }
    estimates = {name: Estimate(value) for name, value in point.items()}
    if n_boot > 0:
        boot = stats_from_confusion(bootstrap_confusions(ia, ib, k, n_boot, seed))
        for name, values in boot.items():
            if np.isfinite(values).any():
                low, high = np.nanpercentile(values, [2.5, 97.5])
                estimates[name] = Estimate(point[name], float(low), float(high))

    per_code = []
    for code in labels:
        in_a, in_b = codes_a == code, codes_b == code
        used = bool(in_a.any() or in_b.any())
        per_code.append(
            {
                "code": code,
                "n_a": int(in_a.sum()),
                "n_b": int(in_b.sum()),
                "both": int((in_a & in_b).sum()),
                "specific_agreement": specific_agreement(codes_a, codes_b, code),
                "kappa": cohens_kappa(in_a.astype(str), in_b.astype(str)) if used else float("nan"),
            }
        )
    confusion = pd.DataFrame(table, index=pd.Index(labels, name=name_a), columns=pd.Index(labels, name=name_b))

    def column(name: str) -> pd.Series:
        for frame in (a, b):  # A's provenance, unless A lacks it (ids only) and B has it
            if name in frame.columns and (frame[name].notna() & (frame[name].astype(str) != "")).any():
                return frame[name].reset_index(drop=True)
        return pd.Series([""] * len(a))

    differ = codes_a != codes_b
    disagreements = pd.DataFrame({name: column(name) for name in ("unit", "source", "start", "end", "text")})
    disagreements["code_a"], disagreements["code_b"] = codes_a, codes_b
    disagreements = disagreements.loc[differ].reset_index(drop=True)
    return Agreement(
        name_a=name_a,
        name_b=name_b,
        labels=labels,
        n=len(a),
        percent=estimates["percent"],
        kappa=estimates["kappa"],
        alpha=estimates["alpha"],
        per_code=pd.DataFrame(per_code),
        confusion=confusion,
        disagreements=disagreements,
        n_boot=max(0, n_boot),
    )


# ---------------------------------------------------------------------------------------------
# reading a coding and matching two of them


def _integers(frame: pd.DataFrame, column: str, path: Path | str) -> pd.Series:
    values = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
    bad = frame.loc[values.isna() | (values != values.round()), "_row"].tolist()
    if bad:
        raise DataError(f"{path}: {rows_phrase(bad)}: field {column!r} must be a whole number (a character offset)")
    return values.astype(int)


@dataclass
class Coding:
    """One coder's (or model's) units: `frame` has the columns in `UNIT_COLUMNS`."""

    path: str
    frame: pd.DataFrame
    uncoded: int = 0  # rows with a blank code, skipped
    has_spans: bool = False
    # those rows (columns `UNIT_COLUMNS`, code ""): a unit the other coder coded but this one left
    # blank is reported as not coded, not as missing
    blank: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNIT_COLUMNS))
    # codes the codebook does not know, kept as written (``unknown_codes="keep"``): code -> rows
    unknown: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what reading did (a project's import report)

    @property
    def name(self) -> str:
        return Path(self.path).name


def read_coding(
    path: str | Path, codebook=None, code_column: str | None = None, id_column: str = "id", unknown_codes: str = "error"
) -> Coding:
    """Read a coded file (CSV/TSV/JSONL/XLSX), a filled coding sheet or a `predict` output.

    The code is taken from ``code_column``, else a ``code`` column (coding sheets), else ``label``
    (coded excerpts and predictions). With a codebook, aliases are mapped to labels; a code it
    does not know is an error naming the rows, or with ``unknown_codes="keep"`` is kept as written
    and listed in ``Coding.unknown``. Rows with a blank code are counted as not coded and skipped.
    """
    from supportlens.corpus.dataset import read_table, table_name

    if unknown_codes not in UNKNOWN_CHOICES:
        raise ValueError(f"unknown_codes must be one of {', '.join(UNKNOWN_CHOICES)}; got {unknown_codes!r}")
    path = Path(path)
    raw = read_table(path, required=[code_column or CODE_COLUMNS])
    where = table_name(path, raw)  # names the sheet read, in a workbook of several
    columns = [c for c in raw.columns if c != "_row"]
    if raw.empty:
        raise DataError(f"{where}: no rows")
    if code_column is None:
        code_column = next((c for c in CODE_COLUMNS if c in raw.columns), None)
        if code_column is None:
            raise DataError(
                f"{where}: no code column (looked for {' or '.join(map(repr, CODE_COLUMNS))});"
                f" the file has columns: {', '.join(map(str, columns))}"
            )
    elif code_column not in raw.columns:
        raise DataError(
            f"{where}: missing column {code_column!r}; the file has columns: {', '.join(map(str, columns))}"
        )

    def text_of(column: str) -> pd.Series:
        return raw[column].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip())

    frame = pd.DataFrame({"row": raw["_row"].astype(int), "code": text_of(code_column)})
    source_column = next((c for c in SOURCE_COLUMNS if c in raw.columns), None)
    frame["source"] = text_of(source_column) if source_column else ""
    frame["text"] = text_of("text") if "text" in raw.columns else ""
    has_spans = source_column is not None and {"start", "end"} <= set(raw.columns)
    if has_spans:
        frame["start"] = _integers(raw, "start", where).to_numpy()
        frame["end"] = _integers(raw, "end", where).to_numpy()
        backwards = frame.loc[frame["end"] <= frame["start"], "row"].tolist()
        if backwards:
            raise DataError(f"{where}: {rows_phrase(backwards)}: field 'end' must be after 'start'")
    else:
        frame["start"] = frame["end"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    if id_column in raw.columns:
        frame["unit"] = text_of(id_column)
    elif source_column and "passage_index" in raw.columns:
        frame["unit"] = [passage_id(s, i) for s, i in zip(frame["source"], text_of("passage_index"))]
    else:
        frame["unit"] = ""

    blank = frame["code"] == ""
    uncoded = int(blank.sum())
    blank_rows = frame.loc[blank, UNIT_COLUMNS].reset_index(drop=True)
    frame = frame.loc[~blank].copy()
    if frame.empty:
        raise DataError(f"{where}: no row has a code in {code_column!r}")
    unknown: dict[str, list[int]] = {}
    if codebook is not None:
        normalised = frame["code"].map(codebook.normalise)
        strange = frame.loc[normalised.isna()]
        unknown = {code: strange.loc[strange["code"] == code, "row"].tolist() for code in sorted(set(strange["code"]))}
        if unknown and unknown_codes == "error":
            raise DataError(
                f"{where}: unknown code{'s' if len(unknown) > 1 else ''} in field "
                f"{code_column!r}: "
                + ", ".join(f"{code!r} ({rows_phrase(rows)})" for code, rows in unknown.items())
                + f". Known codes: {'; '.join(codebook.known_values())}"
            )
        frame["code"] = normalised.fillna(frame["code"])  # an unknown code stays as written
    return Coding(
        path=str(path),
        frame=frame[UNIT_COLUMNS].reset_index(drop=True),
        uncoded=uncoded,
        has_spans=has_spans,
        blank=blank_rows,
        unknown=unknown,
        notes=[f"{where}: {note}" for note in raw.attrs.get("notes", [])],
    )  # a cp1252 file, read


def _source_keys(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series, str | None]:
    """Keys to pair sources by: the normalised path, or the file name when the two files name
    the same transcripts by different folders (a gold file says smp01.txt, predict a full path)."""

    def norm(s: str) -> str:
        return os.path.normcase(os.path.normpath(s)) if s else s

    full_a, full_b = a.map(norm), b.map(norm)
    if set(full_a) & set(full_b):
        return full_a, full_b, None
    base_a, base_b = a.map(lambda s: Path(s).name), b.map(lambda s: Path(s).name)
    if set(base_a) & set(base_b):
        return base_a, base_b, "sources matched by file name (the two files give different folders)"
    return full_a, full_b, None


def _match_spans(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pair spans of the same source, each span used once: candidate pairs overlap by at least
    `MIN_SPAN_OVERLAP` of the shorter span; the largest overlaps are paired first, so each span of
    A gets the B span overlapping it most unless a better-overlapping A span already took it."""
    key_a, key_b, note = _source_keys(a["source"], b["source"])
    pairs_a: list[int] = []
    pairs_b: list[int] = []
    b_groups = {key: np.asarray(idx) for key, idx in b.groupby(key_b.to_numpy()).indices.items()}
    for key, ia in a.groupby(key_a.to_numpy()).indices.items():
        ib = b_groups.get(key)
        if ib is None:
            continue
        sa, ea = a["start"].to_numpy()[ia], a["end"].to_numpy()[ia]
        sb, eb = b["start"].to_numpy()[ib], b["end"].to_numpy()[ib]
        overlap = np.minimum(ea[:, None], eb[None, :]) - np.maximum(sa[:, None], sb[None, :])
        shorter = np.minimum((ea - sa)[:, None], (eb - sb)[None, :])
        ok = (overlap > 0) & (overlap >= MIN_SPAN_OVERLAP * shorter)
        rows, cols = np.nonzero(ok)
        order = np.lexsort((cols, rows, -overlap[rows, cols]))
        used_a, used_b = set(), set()
        for r, c in zip(rows[order], cols[order]):
            if r in used_a or c in used_b:
                continue
            used_a.add(r)
            used_b.add(c)
            pairs_a.append(int(ia[r]))
            pairs_b.append(int(ib[c]))
    order = np.argsort(pairs_a, kind="stable")  # report units in A's order
    return np.asarray(pairs_a, dtype=int)[order], np.asarray(pairs_b, dtype=int)[order], [note] if note else []


def _pair_ids(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows of ``a`` and ``b`` with the same (non-empty) unit id."""
    position = {unit: i for i, unit in enumerate(b["unit"]) if unit}
    ia = [i for i, unit in enumerate(a["unit"]) if unit in position]
    return np.asarray(ia, dtype=int), np.asarray([position[a["unit"].iloc[i]] for i in ia], dtype=int)


def _match_ids(a: Coding, b: Coding) -> tuple[np.ndarray, np.ndarray]:

    for coding in (a, b):
        units = coding.frame["unit"]
        if (units == "").all():
            raise DataError(
                f"{coding.path}: no id column (nor source and passage_index) to match "
                "units by; use `by='span'` with source, start and end columns"
            )
        repeated = sorted(set(units[units.duplicated() & (units != "")]))
        if repeated:
            where = "; ".join(
                f"{unit!r} in rows {', '.join(map(str, coding.frame.loc[units == unit, 'row']))}"
                for unit in repeated[:10]
            )
            raise DataError(
                f"{coding.path}: field 'id' repeats ids {listing(repeated)} ({where}); "
                "ids must be unique to match by id"
            )
    return _pair_ids(a.frame, b.frame)


def _match(a: Coding, b: Coding, by: str | None) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    """Positions in ``a.frame`` and ``b.frame`` of the units both codings share (see `match_codings`)."""

    if by is None:
        by = "span" if a.has_spans and b.has_spans else "id"
    if by not in MATCH_CHOICES:
        raise DataError(f"`by` must be one of {', '.join(MATCH_CHOICES)}; got {by!r}")
    if by == "span":
        for coding in (a, b):
            if not coding.has_spans:
                raise DataError(f"{coding.path}: matching by span needs columns source (or file), start and end")
        ia, ib, notes = _match_spans(a.frame, b.frame)
        return ia, ib, by, notes
    ia, ib = _match_ids(a, b)
    return ia, ib, by, []


def match_codings(a: Coding, b: Coding, by: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str, list[str]]:
    """Aligned frames of the units both codings share; ``by`` None picks span matching when both
    files have source, start and end columns, else ids. Returns (a_rows, b_rows, by, notes)."""
    ia, ib, by, notes = _match(a, b, by)
    return (a.frame.iloc[ia].reset_index(drop=True), b.frame.iloc[ib].reset_index(drop=True), by, notes)


def unit_names(frame: pd.DataFrame, by: str) -> list[str]:
    """Units as a researcher finds them again: by id when matched by id, else "source start-end"
    (a span-matched file may have no ids, or ids nobody reads, like a QDA selection's guid)."""
    if by == "id":  # a blank row may lack an id: its row in the file then
        return [str(u) if u else f"row {r}" for u, r in zip(frame["unit"], frame["row"])]
    return [f"{s} {b}-{e}" for s, b, e in zip(frame["source"], frame["start"], frame["end"])]


def _left_blank(unmatched: pd.DataFrame, blank: pd.DataFrame, by: str) -> np.ndarray:
    """Which unmatched units of one coding the other coding has, but with a blank code."""
    if unmatched.empty or blank.empty:
        return np.zeros(len(unmatched), dtype=bool)
    paired = _pair_ids(unmatched, blank)[0] if by == "id" else _match_spans(unmatched, blank)[0]
    found = np.zeros(len(unmatched), dtype=bool)
    found[paired] = True
    return found


def qdpx_codings(
    path: str | Path,
    codebook=None,
    user_a: str | None = None,
    user_b: str | None = None,
    code_map: str | Path | dict[str, str | None] | None = None,
) -> tuple[Coding, Coding]:
    """Two users' codings inside one REFI-QDA project.

    Project codes map to the codebook as ``supportlens import`` maps them (``code_map``: a code
    map file or dict, as ``import --code-map`` takes). By default the two human coders with most
    codings are compared: supportlens' own suggestions (model output) are compared only when
    named, or when there is a single human coder. Units are matched by span, so each user's
    selections are paired with the other's overlapping ones, as with two separate files. The
    first coding's ``notes`` hold the import report (selections skipped, and why) and say who
    was compared and how to choose others. Without ``codebook``, `config.DEFAULT_CODEBOOK` (the
    project folder's, else the one bundled with supportlens) is used, as by every other command."""
    from supportlens.codebook import load_codebook
    from supportlens.qda.importing import import_qdpx, load_code_map
    from supportlens.qda.project import QdaError

    if codebook is None:
        codebook = load_codebook(DEFAULT_CODEBOOK)  # outside a project folder, the bundled one (noted)
    try:
        mapping = load_code_map(code_map) if isinstance(code_map, (str, Path)) else code_map
        frame, report = import_qdpx(
            path,
            codebook,
            code_map=mapping,
            include_suggestions=True,
            map_source=str(code_map) if isinstance(code_map, (str, Path)) else "code map",
        )
    except QdaError as exc:
        raise DataError(str(exc)) from None
    notes = report.summary().splitlines()
    counts = frame["coder"].fillna("").value_counts()
    model = set(report.suggestion_coders)
    humans = [u for u in counts.index if u and u not in model]
    everyone = humans + [u for u in counts.index if u and u in model]  # people first, then the model

    def described(user: str) -> str:
        return f"{user} ({counts[user]}{', model suggestions' if user in model else ''})"

    for who in (user_a, user_b):
        if who is not None and who not in everyone:
            skipped = (
                f"; {report.skipped_selections} selections were skipped because their codes map to no "
                "codebook code: map them with `code_map=MAP.yaml`"
                if report.skipped_selections
                else ""
            )
            raise DataError(
                f"{path}: no user {who!r} has codings that map to the codebook; users with "
                f"such codings: {', '.join(map(described, everyone)) or 'none'}{skipped}"
            )
    if user_a is not None and user_a == user_b:
        raise DataError(f"{path}: `user_a` and `user_b` both name {user_a!r}; name two users")
    chosen = [user_a, user_b]
    for i in (0, 1):  # people first: the model's suggestions only when no other person coded
        if chosen[i] is None:
            chosen[i] = next((u for u in everyone if u not in chosen), None)
    if chosen[0] is None or chosen[1] is None:
        raise DataError(
            f"{path}: needs codings by two users that map to the codebook; found "
            f"{', '.join(map(described, everyone)) or 'none'}"
        )
    pair = [chosen[0], chosen[1]]  # A and B, both named now
    if user_a is None or user_b is None:
        picked = [u for u, given in zip(pair, (user_a, user_b)) if given is None]
        kind = "human coder" if not model & set(picked) else "user"
        named = [u for u in (user_a, user_b) if u is not None]
        why = (
            f"the {'two ' + kind + 's' if len(picked) == 2 else kind} with most codings"
            + (f" other than {named[0]}" if named else "")
            + (" (supportlens' suggestions only because no other person coded)" if model & set(picked) else "")
        )
        left = [u for u in everyone if u not in pair]
        notes.append(
            f"compared {pair[0]} (A) with {pair[1]} (B), {' and '.join(picked)} being {why}"
            + (f"; not compared: {', '.join(map(described, left))}" if left else "")
            + "; choose with `user_a` and `user_b`"
        )
    codings = []
    for who in pair:
        block = frame.loc[frame["coder"] == who]
        units = pd.DataFrame(
            {
                "unit": block["id"].astype(str),
                "source": block["interview_id"].astype(str),
                "start": block["start"].astype("Int64"),
                "end": block["end"].astype("Int64"),
                "text": block["text"].astype(str),
                "code": block["label"].astype(str),
                "row": range(1, len(block) + 1),
            }
        )
        codings.append(
            Coding(path=f"{Path(path).name} [{who}]", frame=units[UNIT_COLUMNS].reset_index(drop=True), has_spans=True)
        )
    codings[0].notes = notes
    return codings[0], codings[1]


def _unknown_codes(codings: Sequence[Coding]) -> dict[str, list[str]]:
    """The codes the codebook does not know (kept as written) -> where they are ("c.csv row 3")."""
    found: dict[str, list[str]] = {}
    for coding in codings:
        for code, rows in coding.unknown.items():
            found.setdefault(code, []).append(f"{coding.name} {rows_phrase(rows)}")
    return found


def _unknown_note(found: dict[str, list[str]], codebook) -> str | None:
    """Which codes the codebook does not know (compared as written), and where they are."""
    if not found:
        return None
    book = f" {codebook.source}" if getattr(codebook, "source", None) else ""
    listed = list(found.items())
    return (
        f"{len(found)} code{'s' if len(found) > 1 else ''} not in the codebook{book}, compared as written: "
        + "; ".join(f"{code!r} ({', '.join(where)})" for code, where in listed[:10])
        + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")
        + "; every other code was matched through it (labels, names, aliases)"
    )


def agreement_files(
    path_a: str | Path,
    path_b: str | Path | None,
    codebook=None,
    by: str | None = None,
    n_boot: int = 2000,
    seed: int = 13,
    code_column_a: str | None = None,
    code_column_b: str | None = None,
    user_a: str | None = None,
    user_b: str | None = None,
    unknown_codes: str = "error",
    code_map: str | Path | dict[str, str | None] | None = None,
) -> Agreement:
    """Agreement between two coded files (coder vs coder, or coder vs `predict` output), or
    between two users of one ``.qdpx`` project (``path_b`` None or the same project).

    ``unknown_codes`` (files): "error" stops at a code the codebook does not know; "keep" maps
    every code it knows and compares the others as written, with a note naming them.
    ``code_map`` (a project): maps the project's codes as ``supportlens import --code-map`` does."""

    is_project = str(path_a).lower().endswith(".qdpx") and (path_b is None or Path(path_b) == Path(path_a))
    if code_map is not None and not is_project:
        raise DataError(
            "`code_map` maps the codes of one .qdpx project; for coded files, add the names "
            "as aliases to the codebook (or use another codebook)"
        )
    if is_project:
        a, b = qdpx_codings(path_a, codebook, user_a, user_b, code_map)
        by = by or "span"
    elif path_b is None:
        raise DataError("give two coded files, or one .qdpx project with codings by two users")
    else:
        a = read_coding(path_a, codebook, code_column_a, unknown_codes=unknown_codes)
        b = read_coding(path_b, codebook, code_column_b, unknown_codes=unknown_codes)
    ia, ib, by, notes = _match(a, b, by)
    rows_a, rows_b = a.frame.iloc[ia].reset_index(drop=True), b.frame.iloc[ib].reset_index(drop=True)
    if rows_a.empty:
        how = "ids" if by == "id" else f"spans overlapping by {MIN_SPAN_OVERLAP:.0%} of the shorter one"
        raise DataError(
            f"{a.path} and {b.path} share no units (matched by {how}); are they codings "
            "of the same excerpts or transcripts?"
        )
    labels = codebook.labels if codebook is not None else None
    if labels is not None and unknown_codes == "keep":
        # the codebook matches names here, it does not define the scheme: a file in another scheme
        # gets no rows and columns of zeros for the codebook's codes that neither coding uses
        used = set(rows_a["code"].astype(str)) | set(rows_b["code"].astype(str))
        labels = [label for label in labels if label in used]
    name_a, name_b = (a.name, b.name) if a.name != b.name else (str(path_a), str(path_b))
    result = compare_codings(rows_a, rows_b, labels, n_boot=n_boot, seed=seed, name_a=name_a, name_b=name_b)
    # a unit one coder left blank is "not coded" there, not missing: count and name it once
    unmatched_a = a.frame.drop(index=a.frame.index[ia]).reset_index(drop=True)
    unmatched_b = b.frame.drop(index=b.frame.index[ib]).reset_index(drop=True)
    only_a = unmatched_a.loc[~_left_blank(unmatched_a, b.blank, by)]
    only_b = unmatched_b.loc[~_left_blank(unmatched_b, a.blank, by)]
    result.only_a, result.only_b = len(only_a), len(only_b)
    result.only_a_units, result.only_b_units = unit_names(only_a, by), unit_names(only_b, by)
    result.uncoded_a, result.uncoded_b = a.uncoded, b.uncoded
    result.uncoded_a_units, result.uncoded_b_units = unit_names(a.blank, by), unit_names(b.blank, by)
    result.matched_by = by
    found = _unknown_codes((a, b))
    result.unknown_codes = list(found)
    unknown = _unknown_note(found, codebook)
    result.notes.extend(a.notes + b.notes + ([unknown] if unknown else []) + notes)
    return result


def write_disagreements(result: Agreement, path: str | Path) -> Path:
    """Write the disagreements (.csv or .xlsx) for the coders to discuss, atomically."""
    frame = result.disagreements.rename(columns={"unit": "id"})
    frame["resolved_code"] = ""
    frame["notes"] = ""
    return write_sheet(frame, path)
