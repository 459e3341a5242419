"""A report to read: one self-contained HTML page per run of ``supportlens predict``.

A coder reviewing a batch wants the transcripts themselves, not a table: each passage shaded in its
code's colour (fainter when the model was less sure), a legend with the codebook's definitions, a
profile of each interview, and a list of the passages the model flagged for review. The page has
no external assets (inline CSS, JS and SVG only) so it can be mailed, archived or opened offline;
every piece of text from the data is escaped with :func:`html.escape`. The page reads fully without
JavaScript; the inline script only adds filters.
"""

from __future__ import annotations

import bisect
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from supportlens import schema
from supportlens.codebook import Code, Codebook, CodebookError, codebook_from_dict, load_codebook
from supportlens.config import DEFAULT_CODEBOOK
from supportlens.inference.predict import record_path, summarise
from supportlens.io.atomic import write_atomic
from supportlens.transcripts.read import ReadError, read_transcript, strip_span
from supportlens.transcripts.segmentation import merge_turns

REPORT_SUFFIXES = (".html", ".htm")
_FALLBACK_COLOR = "#888888"
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_NAMED = re.compile(r"[a-zA-Z]+")


class ReportError(ValueError):
    """The predictions file, the output path or the codebook cannot make a report."""


@dataclass
class ReportSummary:
    """What was written, for the CLI to tell the user."""

    output: Path
    transcripts: int
    passages: int
    needs_review: int
    unscored_turns: int = 0  # shown for context (by default, the interviewer's)
    # passages whose second opinion (`predict --second-opinion`) chose another code; None: no second opinion
    disagreements: int | None = None
    notes: list[str] = field(default_factory=list)  # transcripts whose unscored turns could not be shown


@dataclass
class UnscoredTurn:
    """A turn predict did not score (by default, an interviewer's), shown so an answer reads with
    its question."""

    speaker: str
    role: str
    text: str
    start: int
    end: int
    start_time: float | None = None


@dataclass
class TranscriptTurns:
    """The unscored turns of one transcript, or why they could not be found (`problem`)."""

    role: str  # whose turns were not scored: "interviewer", unless predict scored only interviewers
    turns: list[UnscoredTurn] = field(default_factory=list)
    problem: str | None = None


# -- inputs -----------------------------------------------------------------------------------
def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read predict's output (.csv, .jsonl or .parquet) and check the columns the report needs
    (`supportlens.schema.read_predictions`).

    Errors name the file, and the row (1-based, header not counted) and field of a bad value.
    """
    try:
        return schema.read_predictions(path)
    except schema.PredictionsError as exc:
        raise ReportError(str(exc)) from None


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def resolve_codebook(
    codebook: str | Path | None = None,
    model: str | None = None,
    tracking_uri: str | None = None,
    predictions: str | Path | None = None,
) -> Codebook:
    """``--codebook`` wins; else the codebook saved with ``--model``; else the one ``predict``
    recorded beside ``predictions`` (the labelling model's); else `config.DEFAULT_CODEBOOK`.

    A model's folder carries ``codebook.yaml`` (written by train); a folder saved without one still
    has the codebook in its metadata when train wrote it, so that is the second place to look.
    """
    if codebook is not None:
        return load_codebook(codebook)
    if model is not None:
        from supportlens.models.base import read_meta
        from supportlens.tracking import fetch_model_dir

        model_dir = fetch_model_dir(model, tracking_uri)
        saved = model_dir / "codebook.yaml"
        if saved.is_file():
            return load_codebook(saved)
        meta = read_meta(model_dir)
        if isinstance(meta.get("codebook"), dict):
            return codebook_from_dict(meta["codebook"], source=f"{model_dir}/{saved.name}")
        raise CodebookError(
            f"{model_dir}: the model has no codebook.yaml and none in its metadata; pass `codebook=FILE`"
        )
    if predictions is not None:
        recorded = _recorded_codebook(Path(predictions))
        if recorded is not None:
            return recorded
    return load_codebook(DEFAULT_CODEBOOK)  # outside a project folder, the bundled one (noted)


def _recorded_codebook(predictions: Path) -> Codebook | None:
    """The codebook ``predict`` wrote into the run record beside ``predictions``, if any."""
    raw = _run_record(predictions).get("codebook")
    return codebook_from_dict(raw, source=str(record_path(predictions))) if isinstance(raw, dict) else None


def _run_record(predictions: Path) -> dict:
    """The run record ``predict`` wrote beside ``predictions``; empty when there is none or it is unreadable."""
    try:
        record = json.loads(record_path(predictions).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


# -- unscored turns: the questions the scored answers respond to ---------------------------------
def unscored_turns(
    frame: pd.DataFrame, folder: str | Path | None = None, scored: str = "participant"
) -> dict[str, TranscriptTurns]:
    """Per source: the turns lying between the scored passages, found by reading the transcript again.

    Predictions hold one row per scored passage only (by default, the participants'), but the
    transcripts they name still hold the questions. A source is looked up as written, then relative
    to ``folder`` (the predictions' folder). ``scored`` is predict's ``--speaker``. A transcript that
    cannot be found or read, or that changed since it was labelled (a passage's text is no longer at
    its offsets), gets a ``problem`` instead of turns, so no turn is ever shown out of place.
    """
    role = "participant" if scored == "interviewer" else "interviewer"
    return {
        str(source): _turns_of(str(source), block, Path(folder) if folder is not None else None, role)
        for source, block in frame.groupby("source", sort=False)
    }


def _turns_of(source: str, block: pd.DataFrame, folder: Path | None, role: str) -> TranscriptTurns:
    def problem(why: str) -> TranscriptTurns:
        return TranscriptTurns(role, problem=why)

    if "start" not in block.columns or "end" not in block.columns:
        return problem("the predictions have no 'start' and 'end' offsets to place them by")
    try:
        spans = sorted((int(s), int(e)) for s, e in zip(block["start"], block["end"]))
    except (TypeError, ValueError):  # also NaN: a row without offsets
        return problem("a passage has no 'start' or 'end' offset to place them by")
    path = Path(source)
    if not path.is_file() and folder is not None and not path.is_absolute() and (folder / path).is_file():
        path = folder / path  # predict ran in the predictions' folder
    if not path.is_file():
        return problem(f"transcript not found at {source}")
    try:
        transcript = read_transcript(path)
    except (ReadError, OSError, ValueError) as exc:
        return problem(f"cannot read the transcript again ({exc})")
    text = transcript.text
    for s, e, passage in zip(block["start"], block["end"], block["text"]):
        if text[int(s) : int(e)] != passage:
            return problem(f"{path} has changed since it was labelled")
    starts = [s for s, _ in spans]
    turns = []
    for turn in merge_turns(transcript):
        s, e = strip_span(text, turn.start, turn.end)
        k = bisect.bisect_left(starts, e) - 1  # the last scored passage that starts before this turn ends
        if s == e or (k >= 0 and spans[k][1] > s):  # empty, or (part of it) scored
            continue
        turns.append(UnscoredTurn(turn.speaker or "", role, text[s:e], s, e, turn.start_time))
    return TranscriptTurns(role, turns)


def _check_labels(frame: pd.DataFrame, codebook: Codebook, where: str) -> None:
    known = set(codebook.labels)
    for i, label in enumerate(frame["label"]):
        if label not in known:
            raise ReportError(
                f"{where}: row {i + 1}: label {label!r} is not a code of codebook "
                f"{codebook.name!r} ({codebook.source or 'in memory'}); its codes are "
                f"{', '.join(codebook.labels)}. Pass the codebook the model was trained with."
            )


# -- small pieces of markup --------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _safe_color(color: str) -> str:
    """Only a hex colour or a bare colour name reaches the CSS; anything else becomes grey."""
    color = color.strip()
    return color if _HEX.fullmatch(color) or _NAMED.fullmatch(color) else _FALLBACK_COLOR


def _tint(color: str, alpha: float) -> str:
    """The code's colour at ``alpha`` over the page; rgba() for hex, color-mix() for a name."""
    color = _safe_color(color)
    if _HEX.fullmatch(color):
        digits = color[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        r, g, b = (int(digits[k : k + 2], 16) for k in (0, 2, 4))
        return f"rgba({r}, {g}, {b}, {alpha:.3f})"
    return f"color-mix(in srgb, {color} {alpha * 100:.1f}%, transparent)"


def shade(confidence: float, n_codes: int) -> float:
    """Background opacity for a passage: chance level (1/K) is faintest, certainty is strongest.

    Rescaling from chance rather than from 0 uses the whole range: a four-code model never
    scores below 0.25, so plain confidence would leave every passage at least a quarter shaded.
    """
    floor = 1.0 / max(2, n_codes)
    strength = min(1.0, max(0.0, (confidence - floor) / (1.0 - floor)))
    return round(0.08 + 0.52 * strength, 3)


def _clock(seconds: object) -> str:
    if _missing(seconds):
        return ""
    try:
        total = int(float(seconds))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _percent(x: float) -> str:
    return f"{x * 100:.0f}%"


def _confidence_text(x: float) -> str:
    """A confidence in whole percent; '>99%' for one that would round up to a certainty it is not
    (a flagged 0.9993 must not read '100%')."""
    x = float(x)
    return ">99%" if 0.995 <= x < 1.0 else _percent(x)


def _probability(x: float) -> str:
    """Two decimals; '>0.99' for one that would round up to 1.00 (see `_confidence_text`)."""
    return ">0.99" if 0.995 <= x < 1.0 else f"{x:.2f}"


def rounded_percents(shares: dict[str, float]) -> dict[str, int]:
    """Whole percents that add up to the rounded total (100 for shares of a whole): each share is
    rounded down, and the points left go to the largest remainders, as for seats in an election."""
    exact = {k: max(float(v), 0.0) * 100 for k, v in shares.items()}
    out = {k: int(v) for k, v in exact.items()}
    left = round(sum(exact.values())) - sum(out.values())
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[: max(left, 0)]:
        out[k] += 1
    return out


def profile_bar(shares: dict[str, float], codebook: Codebook, title: str) -> str:
    """A stacked bar (inline SVG) of the share of talk, by words, coded with each code.

    Positions are percentages of the SVG's own width rather than a scaled viewBox, so the bar
    stretches to any column while its labels keep their size.
    """
    parts, x = [], 0.0
    shown = rounded_percents({c.label: shares.get(c.label, 0.0) for c in codebook.codes})
    for code in codebook.codes:
        share = float(shares.get(code.label, 0.0))
        if share <= 0:
            continue
        w = share * 100
        tip = f"{code.name}: {shown[code.label]}% of words"
        parts.append(
            f'<rect x="{x:.3f}%" y="0" width="{w:.3f}%" height="100%" '
            f'fill="{_e(_safe_color(code.color))}" data-code="{_e(code.label)}" '
            f'data-share="{share:.4f}"><title>{_e(tip)}</title></rect>'
        )
        if share >= 0.07:  # a label only where it fits (a two-digit "8%" still does)
            parts.append(
                f'<text x="{x + w / 2:.3f}%" y="50%" dy=".35em" text-anchor="middle">{shown[code.label]}%</text>'
            )
        x += w
    if not parts:
        parts.append('<rect x="0" y="0" width="100%" height="100%" fill="#eeeeee"></rect>')
    label = title + ": " + ", ".join(f"{c.name} {shown[c.label]}%" for c in codebook.codes)
    return (
        f'<svg class="profile" width="100%" height="26" role="img" aria-label="{_e(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


# -- the page ---------------------------------------------------------------------------------
def render_report(
    frame: pd.DataFrame,
    codebook: Codebook,
    title: str = "supportlens report",
    subtitle: str = "",
    where: str = "predictions",
    turns: dict[str, TranscriptTurns] | None = None,
) -> str:
    """The whole page as one string; ``frame`` is predict's output as read by :func:`read_predictions`.

    ``turns`` (from :func:`unscored_turns`) puts each transcript's unscored turns between its passages.
    """
    _check_labels(frame, codebook, where)
    codes = {c.label: c for c in codebook.codes}
    sources = list(dict.fromkeys(frame["source"]))  # predict's order (sorted by source) is kept
    profile = summarise(frame, codebook.labels).set_index("source")
    transcript_id = {source: f"t{k + 1}" for k, source in enumerate(sources)}

    # passages in transcript order; the anchor uses the position, so duplicated indices cannot clash
    blocks: dict[str, list[tuple[str, pd.Series]]] = {}
    for source in sources:
        block = frame[frame["source"] == source].sort_values("passage_index", kind="stable")
        blocks[source] = [(f"{transcript_id[source]}-p{k + 1}", row) for k, (_, row) in enumerate(block.iterrows())]

    n_review = int(frame["needs_review"].sum())
    body = [
        _header(title, subtitle, len(sources), len(frame), n_review, codebook, disagreements(frame)),
        _controls(codebook),
        _legend(codebook),
        _overview(sources, transcript_id, profile, codebook),
        _review_list(sources, blocks, codes),
        *(
            _transcript(
                source, transcript_id[source], blocks[source], profile.loc[source], codebook, (turns or {}).get(source)
            )
            for source in sources
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # no request may leave the page: a report is often opened from a mail or an archive
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + f"\n</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def disagreements(frame: pd.DataFrame) -> int | None:
    """Passages whose second opinion chose another code than the model; None when the predictions
    hold no second opinion (`predict --second-opinion`)."""
    if "second_label" not in frame.columns:
        return None
    return sum(1 for label, second in zip(frame["label"], frame["second_label"]) if _disagrees(label, second))


def _disagrees(label: object, second: object) -> bool:
    return not _missing(second) and str(second).strip() != "" and str(second) != str(label)


def _header(
    title: str,
    subtitle: str,
    n_sources: int,
    n_passages: int,
    n_review: int,
    codebook: Codebook,
    n_disagree: int | None = None,
) -> str:
    second = f" · second opinion differs on {n_disagree}" if n_disagree is not None else ""
    facts = (
        f"{n_sources} transcript{'s' if n_sources != 1 else ''} · {n_passages} passages · "
        f"{n_review} flagged for review{second} · codebook {codebook.name} v{codebook.version}"
    )
    sub = f'<p class="sub">{_e(subtitle)}</p>' if subtitle else ""
    disagree = f' data-disagree="{n_disagree}"' if n_disagree is not None else ""
    return (
        f'<header><h1>{_e(title)}</h1>{sub}<p class="facts" data-passages="{n_passages}" '
        f'data-review="{n_review}"{disagree}>{_e(facts)}</p>'
        '<p id="status" class="status">Static view (scripts not run): all passages shown.</p></header>'
    )


def _controls(codebook: Codebook) -> str:
    """Filters; hidden until the script runs, because without it they would do nothing."""
    boxes = "".join(
        f'<label class="filter"><input type="checkbox" checked data-filter-code="{_e(c.label)}">'
        f'<span class="swatch" style="background:{_e(_safe_color(c.color))}"></span>{_e(c.name)}</label>'
        for c in codebook.codes
    )
    return (
        f'<nav id="controls" class="controls" hidden><span class="controls-title">Show:</span>{boxes}'
        '<label class="filter"><input type="checkbox" id="only-review"> only ⚑ needs review</label></nav>'
    )


def _legend(codebook: Codebook) -> str:
    items = []
    for c in codebook.codes:
        extra = ""
        if c.use_when or c.do_not_use_when:
            extra = (
                "<details><summary>when to use it</summary>"
                + (f"<p><b>Use when:</b> {_e(c.use_when)}</p>" if c.use_when else "")
                + (f"<p><b>Do not use when:</b> {_e(c.do_not_use_when)}</p>" if c.do_not_use_when else "")
                + "</details>"
            )
        items.append(
            f'<li class="legend-entry" data-code="{_e(c.label)}" style="--code:{_e(_safe_color(c.color))}">'
            f'<span class="swatch" style="background:{_e(_safe_color(c.color))}"></span>'
            f'<div><p class="code-name">{_e(c.name)} <code>{_e(c.label)}</code></p>'
            f'<p class="code-short">{_e(c.short)}</p>'
            f'<p class="code-definition">{_e(c.definition)}</p>{extra}</div></li>'
        )
    example = codebook.codes[0]
    n = len(codebook.codes)
    ramp = "".join(
        f'<span class="ramp-step" style="background:{_e(_tint(example.color, shade(conf, n)))}">{_percent(conf)}</span>'
        for conf in (1.0 / n, (1.0 / n + 1) / 2, 1.0)
    )
    rule = (
        f'<p class="rule"><b>When a passage describes several approaches:</b> '
        f"{_e(codebook.multiple_approaches_rule)}</p>"
        if codebook.multiple_approaches_rule
        else ""
    )
    return (
        '<section id="legend"><h2>Codes</h2>'
        f'<ul class="legend">{"".join(items)}</ul>{rule}'
        '<p class="key">Each passage is shaded in the colour of its suggested code; the fainter the '
        f"shading, the less confident the model (confidence {ramp}). "
        "⚑ marks a passage under the review threshold; ≠ one whose second opinion (a language model "
        "asked about the flagged passages) chose another code. <b>#</b> numbers the scored passages of a transcript "
        "in order. Turns in grey, marked <i>not scored</i>, were not labelled (by default, the "
        "interviewer's); they are shown so each answer reads with its question.</p></section>"
    )


def _shares(row: pd.Series, codebook: Codebook) -> dict[str, float]:
    return {lab: float(row.get(f"word_share_{lab}", 0.0)) for lab in codebook.labels}


def _dominant(profile: pd.Series, codebook: Codebook) -> str:
    labels = str(profile["dominant"]).split("/")  # a tie: "push/pull"
    return " = ".join(codebook.code(label).name if label in codebook.labels else label for label in labels)


def _overview(sources: list[str], transcript_id: dict[str, str], profile: pd.DataFrame, codebook: Codebook) -> str:
    rows = []
    for source in sources:
        p = profile.loc[source]
        dominant = _dominant(p, codebook)
        rows.append(
            f'<tr><th scope="row"><a href="#{transcript_id[source]}">{_e(_short_name(source))}</a></th>'
            f'<td class="bar">{profile_bar(_shares(p, codebook), codebook, _short_name(source))}</td>'
            f"<td>{int(p['passages'])}</td><td>{int(p['words'])}</td><td>{_e(dominant)}</td>"
            f"<td>{int(p['needs_review'])}</td></tr>"
        )
    return (
        '<section id="profiles"><h2>Profiles</h2><p class="key">Share of each transcript\'s scored talk, '
        'by words, per suggested code.</p><table class="overview"><thead><tr><th>transcript</th>'
        "<th>share of words</th><th>passages</th><th>words</th><th>dominant approach</th><th>⚑</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _review_list(sources: list[str], blocks: dict[str, list[tuple[str, pd.Series]]], codes: dict[str, Code]) -> str:
    items = []
    for source in sources:
        for number, (anchor, row) in enumerate(blocks[source], 1):
            if not row["needs_review"]:
                continue
            text = row["text"] if len(row["text"]) <= 160 else row["text"][:157].rstrip() + "…"
            items.append(
                f'<li data-review-item="{anchor}"><a href="#{anchor}">{_e(_short_name(source))} · '
                f"passage #{number}</a> · {_e(row['speaker'] or 'unnamed speaker')} · "
                f"{_e(codes[row['label']].name)} {_confidence_text(row['confidence'])}"
                f"{_second_note(row, codes)}"
                f'<div class="snippet">{_e(text)}</div></li>'
            )
    inner = f'<ol class="review">{"".join(items)}</ol>' if items else "<p>No passage is under the review threshold.</p>"
    return (
        f'<section id="review"><details{" open" if len(items) <= 50 else ""}><summary><h2>Needs review '
        f"({len(items)})</h2></summary>{inner}</details></section>"
    )


def _second_note(row: pd.Series, codes: dict[str, Code]) -> str:
    """' · second opinion: Pull 80%' in the review list, marked where it differs from the model."""
    if "second_label" not in row.index:
        return ""
    second = row.get("second_label")
    if _missing(second) or not str(second).strip():
        reason = row.get("second_reason")
        return " · second opinion: none" + (f" ({_e(reason)})" if not _missing(reason) and reason else "")
    name = codes[second].name if second in codes else str(second)
    confidence = row.get("second_confidence")
    shown = f" {_confidence_text(float(confidence))}" if not _missing(confidence) else ""
    mark = '<span class="second" data-disagree>≠</span> ' if _disagrees(row["label"], second) else ""
    return f" · {mark}second opinion: {_e(name)}{shown}"


def _second_marker(row: pd.Series, codes: dict[str, Code]) -> str:
    """A passage's mark where its second opinion chose another code, the second code and its
    confidence (and reason) in the title; nothing where they agree or none was asked."""
    if "second_label" not in row.index or not _disagrees(row["label"], row.get("second_label")):
        return ""
    second = str(row["second_label"])
    name = codes[second].name if second in codes else second
    confidence = row.get("second_confidence")
    title = f"second opinion: {name}" + (f" {_confidence_text(float(confidence))}" if not _missing(confidence) else "")
    return f'<span class="second" title="{_e(title)}">≠ {_e(name)}</span>'


def _transcript(
    source: str,
    tid: str,
    rows: list[tuple[str, pd.Series]],
    profile: pd.Series,
    codebook: Codebook,
    turns: TranscriptTurns | None = None,
) -> str:
    n = len(codebook.codes)
    context = turns.turns if turns is not None and turns.problem is None else []
    passages = []
    q = 0  # the next unscored turn; it goes before the first passage that starts after it
    for number, (anchor, row) in enumerate(rows, 1):
        while q < len(context) and context[q].start < int(row["start"]):
            passages.append(_unscored(context[q], anchor))
            q += 1
        code = codebook.code(row["label"])
        review = bool(row["needs_review"])
        reason = row.get("review_reason")
        flag_title = "needs review" + (f": {reason}" if not _missing(reason) and str(reason).strip() else "")
        second = _second_marker(row, {c.label: c for c in codebook.codes})
        probabilities = " · ".join(
            f"{c.name} {_probability(float(row[f'p_{c.label}']))}"
            for c in codebook.codes
            if f"p_{c.label}" in row.index and not _missing(row[f"p_{c.label}"])
        )
        when = _clock(row.get("start_time"))
        role = row.get("role")
        role_note = f" ({role})" if isinstance(role, str) and role and role not in ("participant", "unknown") else ""
        meta = (
            f'<span class="speaker">{_e(row["speaker"] or "unnamed speaker")}{_e(role_note)}</span>'
            + (f'<span class="time">{_e(when)}</span>' if when else "")
            + f'<span class="label" style="border-color:{_e(_safe_color(code.color))}">{_e(code.name)}</span>'
            + f'<span class="conf" title="{_e(probabilities)}">{_confidence_text(row["confidence"])}</span>'
            + (f'<span class="flag" title="{_e(flag_title)}">⚑</span>' if review else "")
            + second
            + f'<a class="pid" href="#{anchor}" title="passage_index {int(row["passage_index"])} in the '
            f'predictions">#{number}</a>'
        )
        passages.append(
            f'<article class="passage{" review" if review else ""}" id="{anchor}" data-passage '
            f'data-source="{_e(source)}" data-index="{int(row["passage_index"])}" data-label="{_e(code.label)}" '
            f'data-confidence="{row["confidence"]:.4f}" data-review="{"true" if review else "false"}" '
            + (f'data-second="{_e(row["second_label"])}" ' if second else "")
            + f'style="--code:{_e(_safe_color(code.color))}; '
            f'background:{_e(_tint(code.color, shade(row["confidence"], n)))}">'
            f'<div class="meta">{meta}</div><div class="text">{_e(row["text"])}</div></article>'
        )
    passages.extend(_unscored(turn, None) for turn in context[q:])
    unscored = (
        f" · {len(context)} {turns.role} turn{'s' if len(context) != 1 else ''} not scored"
        if turns is not None and context  # context: the turns of `turns` (none without it)
        else ""
    )
    missing = (
        f'<p class="note" data-turns-missing>{_e(turns.role.capitalize())} turns could not be shown: '
        f"{_e(turns.problem)}.</p>"
        if turns is not None and turns.problem
        else ""
    )
    return (
        f'<section class="transcript" id="{tid}" data-source="{_e(source)}">'
        f'<h2>{_e(_short_name(source))}</h2><p class="path">{_e(source)}</p>'
        f'<p class="facts">{int(profile["passages"])} passages · {int(profile["words"])} words · '
        f"dominant approach: {_e(_dominant(profile, codebook))} · {int(profile['needs_review'])} ⚑"
        f"{_e(unscored)}</p>{missing}"
        f"{profile_bar(_shares(profile, codebook), codebook, _short_name(source))}"
        # the bar labels only wide segments; the caption gives every share
        f'<p class="shares">{_share_caption(_shares(profile, codebook), codebook)}</p>'
        f'<div class="passages">{"".join(passages)}</div></section>'
    )


def _unscored(turn: UnscoredTurn, answer: str | None) -> str:
    """An unscored turn: quieter than a passage, with no code, confidence or number. ``answer`` is
    the passage after it, so a filter that hides the answer hides its question too."""
    when = _clock(turn.start_time)
    role_note = f" ({turn.role})" if turn.role.casefold() not in turn.speaker.casefold() else ""
    meta = (
        f'<span class="speaker">{_e(turn.speaker or "unnamed speaker")}{_e(role_note)}</span>'
        + (f'<span class="time">{_e(when)}</span>' if when else "")
        + '<span class="unscored-tag">not scored</span>'
    )
    before = f' data-before="{_e(answer)}"' if answer else ""
    return (
        f'<div class="unscored" data-unscored data-role="{_e(turn.role)}"{before}>'
        f'<div class="meta">{meta}</div><div class="text">{_e(turn.text)}</div></div>'
    )


def _share_caption(shares: dict[str, float], codebook: Codebook) -> str:
    shown = rounded_percents({c.label: shares.get(c.label, 0.0) for c in codebook.codes})
    return " · ".join(
        f'<span class="swatch" style="background:{_e(_safe_color(c.color))}"></span> {_e(c.name)} {shown[c.label]}%'
        for c in codebook.codes
    )


def _short_name(source: str) -> str:
    return Path(source).name or source


# -- writing ----------------------------------------------------------------------------------
def write_report(page: str, out: str | Path) -> Path:
    """Write through a temporary file in the same folder and rename, so a reader never sees half a page."""
    out = Path(out)
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise ReportError(f"`out` must end in .html or .htm; got {out.name!r}")
    if not out.parent.is_dir():
        raise ReportError(f"{out.parent}: output folder does not exist")
    return write_atomic(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def build_report(
    predictions: str | Path,
    out: str | Path,
    codebook: str | Path | None = None,
    model: str | None = None,
    tracking_uri: str | None = None,
    title: str | None = None,
) -> ReportSummary:
    """Read predictions, pick the codebook, render and write the page: the CLI's whole job."""
    predictions = Path(predictions)
    out = Path(out)
    if out.suffix.lower() not in REPORT_SUFFIXES:  # fail before the (slower) reading and rendering
        raise ReportError(f"`out` must end in .html or .htm; got {out.name!r}")
    frame = read_predictions(predictions)
    book = resolve_codebook(codebook, model, tracking_uri, predictions)
    subtitle = f"predictions: {predictions.name}" + (f" · model: {model}" if model else "")
    settings = _run_record(predictions).get("settings")
    scored = settings.get("speaker", "participant") if isinstance(settings, dict) else "participant"
    turns = unscored_turns(frame, predictions.parent, scored=str(scored))
    page = render_report(
        frame,
        book,
        title=title or f"supportlens report: {predictions.name}",
        subtitle=subtitle,
        where=str(predictions),
        turns=turns,
    )
    write_report(page, out)
    return ReportSummary(
        output=out,
        transcripts=frame["source"].nunique(),
        passages=len(frame),
        needs_review=int(frame["needs_review"].sum()),
        unscored_turns=sum(len(t.turns) for t in turns.values()),
        disagreements=disagreements(frame),
        notes=[f"{source}: {t.role} turns not shown: {t.problem}" for source, t in turns.items() if t.problem],
    )


_CSS = """
:root { --ink: #1d1f23; --muted: #5b6270; --line: #dde1e6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: #fafbfc; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }
a { color: #0b5cad; }
.sub, .facts, .path, .key, .status { color: var(--muted); margin: .2rem 0; }
.path { font-size: .85rem; word-break: break-all; }
.controls { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: .4rem 1rem;
            align-items: center; padding: .5rem .75rem; margin: 1rem 0; background: #fff;
            border: 1px solid var(--line); border-radius: 6px; }
.controls[hidden] { display: none; }
.controls-title { font-weight: 600; }
.filter { display: inline-flex; align-items: center; gap: .35rem; cursor: pointer; }
.swatch { display: inline-block; width: .9rem; height: .9rem; border-radius: 3px; flex: none; }
.legend { list-style: none; padding: 0; margin: 0; display: grid; gap: .6rem; }
.legend-entry { display: flex; gap: .75rem; padding: .6rem .75rem; background: #fff; border: 1px solid var(--line);
                border-left: 6px solid var(--code); border-radius: 6px; }
.legend-entry .swatch { margin-top: .3rem; }
.legend-entry p { margin: .1rem 0; }
.code-name { font-weight: 600; }
.code-name code { font-weight: 400; color: var(--muted); font-size: .85rem; }
.code-short { font-style: italic; }
.code-definition { color: #30343b; }
details summary { cursor: pointer; color: var(--muted); }
details summary h2 { display: inline; }
.rule { font-size: .9rem; color: #30343b; }
.ramp-step { display: inline-block; padding: 0 .4rem; margin: 0 .1rem; border-radius: 3px; font-size: .85rem; }
table.overview { width: 100%; border-collapse: collapse; background: #fff; }
.overview th, .overview td { padding: .35rem .5rem; border-bottom: 1px solid var(--line); text-align: left;
                             vertical-align: middle; font-size: .9rem; }
.overview td.bar { width: 45%; }
svg.profile { display: block; width: 100%; height: 26px; min-width: 12rem; border-radius: 4px; overflow: hidden; }
svg.profile text { fill: #fff; font: 600 12px system-ui, sans-serif; }
.transcript > svg.profile { margin: .5rem 0 .25rem; }
.shares { font-size: .85rem; color: var(--muted); margin: 0 0 1rem; }
.shares .swatch { width: .7rem; height: .7rem; vertical-align: -1px; }
ol.review { padding-left: 1.5rem; }
ol.review li { margin: .3rem 0; }
.snippet { color: var(--muted); font-size: .85rem; }
.passages { display: grid; gap: .5rem; }
.passage { padding: .5rem .75rem; border-left: 5px solid var(--code); border-radius: 4px; }
.passage:target { outline: 3px solid #0b5cad; outline-offset: 2px; }
.passage.review { box-shadow: inset 0 0 0 1px rgba(0, 0, 0, .25); }
.passage[hidden] { display: none; }
.meta { display: flex; flex-wrap: wrap; gap: .3rem .75rem; align-items: baseline; font-size: .8rem;
         margin-bottom: .2rem; }
.speaker { font-weight: 600; }
.time, .pid { color: #30343b; }
.pid { margin-left: auto; text-decoration: none; }
.label { padding: 0 .4rem; background: rgba(255, 255, 255, .75); border: 1px solid; border-radius: 3px; }
.conf { font-variant-numeric: tabular-nums; }
.flag { color: #b00020; font-weight: 700; }
.second { color: #6a1b9a; font-weight: 600; }
.text { white-space: pre-wrap; }
/* an unscored turn (by default the interviewer's question): context, quieter than the passages */
.unscored { padding: .15rem .75rem .15rem 1rem; border-left: 2px solid var(--line); color: var(--muted);
            font-size: .88rem; }
.unscored[hidden] { display: none; }
.unscored .speaker { font-weight: 500; }
.unscored .time { color: inherit; }
.unscored-tag { font-style: italic; }
.note { color: #7a4b00; font-size: .9rem; margin: .2rem 0; }
@media print { .controls { display: none; } .passage { break-inside: avoid; } }
"""

# Filters by code and by review flag; the static page is complete without it.
_JS = """
(function () {
  var passages = Array.prototype.slice.call(document.querySelectorAll('[data-passage]'));
  var turns = Array.prototype.slice.call(document.querySelectorAll('[data-unscored]'));
  var codeBoxes = Array.prototype.slice.call(document.querySelectorAll('[data-filter-code]'));
  var onlyReview = document.getElementById('only-review');
  var status = document.getElementById('status');
  function apply() {
    var shown = {};
    codeBoxes.forEach(function (box) { shown[box.getAttribute('data-filter-code')] = box.checked; });
    var visible = 0, flagged = 0;
    passages.forEach(function (p) {
      var review = p.getAttribute('data-review') === 'true';
      if (review) { flagged += 1; }
      var show = shown[p.getAttribute('data-label')] !== false && (!onlyReview.checked || review);
      p.hidden = !show;
      if (show) { visible += 1; }
    });
    // an unscored turn shows with the passage that answers it; one after the last passage, unfiltered
    var filtering = onlyReview.checked || codeBoxes.some(function (box) { return !box.checked; });
    turns.forEach(function (t) {
      var answer = t.getAttribute('data-before');
      var next = answer && document.getElementById(answer);
      t.hidden = next ? next.hidden : filtering;
    });
    status.textContent = 'Showing ' + visible + ' of ' + passages.length + ' passages (' + flagged +
      ' flagged for review).';
    status.setAttribute('data-visible', String(visible));
  }
  // a link from the review list to a passage a filter hides would go nowhere: clear the filters
  function reveal() {
    var target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.hasAttribute('data-passage') && target.hidden) {
      codeBoxes.forEach(function (box) { box.checked = true; });
      onlyReview.checked = false;
      apply();
      target.scrollIntoView();
    }
  }
  codeBoxes.concat([onlyReview]).forEach(function (box) { box.addEventListener('change', apply); });
  window.addEventListener('hashchange', reveal);
  document.getElementById('controls').hidden = false;
  apply();
  document.documentElement.setAttribute('data-rendered', 'true');
})();
"""

__all__ = [
    "ReportError",
    "ReportSummary",
    "TranscriptTurns",
    "UnscoredTurn",
    "build_report",
    "disagreements",
    "profile_bar",
    "read_predictions",
    "render_report",
    "resolve_codebook",
    "shade",
    "unscored_turns",
    "write_report",
]
