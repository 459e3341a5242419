"""Batch prediction: transcripts -> passages -> labels with calibrated confidence.

Built for folders of hundreds of transcripts on a laptop:
- streaming: a few transcripts are held at a time, so memory stays flat in the number of files;
- resumable: each finished transcript is committed atomically to a journal folder beside the
  output; ``resume=True`` skips transcripts already in the journal or the output, labels again
  those whose file changed since, and refuses to mix the labels of another model, review
  threshold or speaker choice (recorded in ``.<output>.run.json`` beside the output);
- atomic: the output file is assembled from the journal into a temporary file and renamed into
  place, so it is never half-written;
- forgiving: a bad file is reported in one line and the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from supportlens.inference.labeler import Labeler, PredictError
from supportlens.inference.loop import (
    CHUNK_PASSAGES,
    SPEAKER_CHOICES,
    FileFailure,
    file_input,
    label_transcripts,
    skipped_note,
)
from supportlens.io.atomic import write_atomic
from supportlens.io.jsonl import frame_to_jsonl
from supportlens.schema import (
    PREDICTION_SUFFIXES,
    ROW_ID_COLUMN,
    arrow_schema,
    passage_rows,
    prediction_columns,
    read_output,
)
from supportlens.transcripts.read import ReadError, expand_inputs
from supportlens.transcripts.segmentation import SpeakerRules


@dataclass
class BatchReport:
    output: Path | None = None  # None when no transcript was labelled: nothing was written
    summary: Path | None = None
    files_done: int = 0
    files_skipped: int = 0  # already done (resume)
    passages: int = 0
    seconds: float = 0.0
    failures: list[FileFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the batch as a whole
    # (source, note) about one file: kept apart so that a note many files share is said once
    file_notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passages_per_second(self) -> float:
        return self.passages / self.seconds if self.seconds else 0.0

    def note_lines(self) -> list[str]:
        """Every note, to print one a line: the batch's, then the files' (see `grouped_notes`)."""
        return self.notes + grouped_notes(self.file_notes)


def grouped_notes(file_notes: list[tuple[str, str]], shown: int = 3) -> list[str]:
    """One line per distinct note, in the order first seen: ``source: note`` for one file; for a
    note several files share (the same header on 200 transcripts), how many and the first few:
    ``12 files: note (a.txt, b.txt, c.txt and 9 more)``."""
    sources_of: dict[str, list[str]] = {}
    for source, note in file_notes:
        sources_of.setdefault(note, []).append(source)
    lines = []
    for note, sources in sources_of.items():
        if len(sources) == 1:
            lines.append(f"{sources[0]}: {note}")
        else:
            named = ", ".join(sources[:shown]) + (f" and {len(sources) - shown} more" if len(sources) > shown else "")
            lines.append(f"{len(sources)} files: {note} ({named})")
    return lines


# -- journal: one atomically written file per finished transcript -----------------------------
class Journal:
    """Finished transcripts of the run in progress, each with the content hash of its file and
    the settings (model, threshold, speakers) that labelled it."""

    def __init__(self, output: Path):
        self.dir = output.parent / f".{output.name}.parts"

    def _path(self, source: str) -> Path:
        return self.dir / (hashlib.sha1(source.encode("utf-8")).hexdigest()[:20] + ".jsonl")

    def reset(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def commit(self, source: str, rows: list[dict], sha256: str | None = None, settings: dict | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            row_ids = any(row.get(ROW_ID_COLUMN) is not None for row in rows)
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(
                    json.dumps(
                        {
                            "source": source,
                            "rows": len(rows),
                            "sha256": sha256,
                            "settings": settings,
                            "row_ids": row_ids,
                        }
                    )
                    + "\n"
                )
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")

        write_atomic(self._path(source), write)

    def headers(self) -> dict[str, dict]:
        """source -> header of its finished entry."""
        if not self.dir.is_dir():
            return {}
        out = {}
        for path in self.dir.glob("*.jsonl"):
            with path.open(encoding="utf-8") as fh:
                header = json.loads(fh.readline())
            out[header["source"]] = header
        return out

    def done(self) -> set[str]:
        return set(self.headers())

    def has_row_ids(self) -> bool:
        """Whether any finished transcript carries table row ids (so the output needs the column)."""
        return any(header.get("row_ids") for header in self.headers().values())

    def iter_frames(self) -> Iterator[pd.DataFrame]:
        """Per transcript, in source order (stable output regardless of processing order)."""
        if not self.dir.is_dir():
            return
        entries = []
        for path in self.dir.glob("*.jsonl"):
            with path.open(encoding="utf-8") as fh:
                entries.append((json.loads(fh.readline())["source"], path))
        for _, path in sorted(entries):
            with path.open(encoding="utf-8") as fh:
                fh.readline()
                rows = [json.loads(line) for line in fh if line.strip()]
            yield pd.DataFrame(rows)


def record_path(output: Path) -> Path:
    """Beside each output: the settings that made it and the hash of each transcript it holds."""
    return output.parent / f".{output.name}.run.json"


def _content_hash(path: Path) -> str | None:
    from supportlens.models.encoders import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None  # unreadable: reported when it is read


def _check_settings(where: str, recorded: dict | None, settings: dict) -> None:
    if not recorded:
        return
    differ = [k for k in settings if recorded.get(k) != settings[k]]
    if differ:
        what = ", ".join(f"{k} {recorded.get(k)} there, {settings[k]} now" for k in differ)
        raise PredictError(
            f"{where} was labelled with other settings ({what}); `resume=True` would mix "
            "them in one output: write to a new `output`, or run without `resume=True` to start over"
        )


def _adopt_existing(output: Path, journal: Journal, settings: dict) -> tuple[int, list[str]]:
    """On resume, move rows of a finished earlier output into the journal, per source, after
    checking that the same settings made it. Returns (transcripts adopted, notes)."""
    notes: list[str] = []
    for header in journal.headers().values():  # an interrupted run's finished transcripts
        _check_settings(f"{output}: the interrupted run", header.get("settings"), settings)
    if not output.exists():
        return 0, notes
    record_file = record_path(output)
    record: dict = {}
    if record_file.is_file():
        try:
            record = json.loads(record_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
    if record:
        _check_settings(str(output), record.get("settings"), settings)
    else:
        notes.append(
            f"{output.name} has no record of the model that labelled it "
            f"({record_file.name} is missing); its rows are kept as they are"
        )
    try:
        frame = read_output(output)
    except Exception as exc:  # noqa: BLE001 - any unreadable earlier output
        raise PredictError(
            f"{output}: cannot read the earlier output to resume from ({exc}); "
            "move it away or run without `resume=True`"
        ) from exc
    if "source" not in frame.columns:
        raise PredictError(f"{output}: has no 'source' column, so it is not a supportlens output")
    done = journal.done()
    hashes = record.get("sources", {})
    count = 0
    for source, block in frame.groupby("source", sort=False):
        if source not in done:
            block = block.astype(object).where(block.notna(), None)
            journal.commit(
                str(source), block.to_dict("records"), hashes.get(str(source)), record.get("settings") or None
            )
            count += 1
    return count, notes


def _write_atomic(frames: Iterator[pd.DataFrame], output: Path, columns: list[str] | None = None, schema=None) -> int:
    """Stream frames into ``output`` through a temporary file (see `supportlens.io.atomic`)."""
    suffix = output.suffix.lower()
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            for frame in frames:
                frame = frame.reindex(columns=columns) if columns is not None else frame
                written += len(frame)
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table.cast(writer.schema))
            if writer is None:
                empty = pd.DataFrame(columns=columns or ["source"])
                pq.write_table(
                    schema.empty_table() if schema is not None else pa.Table.from_pandas(empty, preserve_index=False),
                    str(tmp),
                )
            else:
                writer.close()
            return
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            wrote_header = False
            for frame in frames:
                frame = frame.reindex(columns=columns) if columns is not None else frame
                written += len(frame)
                if suffix == ".csv":
                    frame.to_csv(fh, index=False, header=not wrote_header)
                    wrote_header = True
                else:
                    fh.write(frame_to_jsonl(frame))
            if suffix == ".csv" and not wrote_header and columns:
                fh.write(",".join(columns) + "\n")

    write_atomic(output, write)
    return written


def summarise(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per transcript: passages and words per code (counts and shares) and the dominant approach."""
    rows = []
    approaches = [lab for lab in labels if lab != "none"]
    for source, block in frame.groupby("source", sort=True):
        words = block["text"].astype(str).str.split().str.len()
        row: dict[str, object] = {"source": source, "passages": len(block), "words": int(words.sum())}
        code_words: dict[str, int] = {}  # the words_<code> columns, typed
        for lab in labels:
            mask = block["label"] == lab
            row[f"n_{lab}"] = int(mask.sum())
            row[f"share_{lab}"] = float(mask.mean()) if len(block) else 0.0
            row[f"words_{lab}"] = code_words[lab] = int(words[mask].sum())
            row[f"word_share_{lab}"] = float(words[mask].sum() / max(1, words.sum()))
        most = max((code_words[lab] for lab in approaches), default=0)
        # a tie names every tied approach ("push/pull"): no order of the codebook should decide it
        row["dominant"] = "/".join(lab for lab in approaches if code_words[lab] == most) if most else "none"
        row["needs_review"] = int(block["needs_review"].astype(bool).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def check_options(
    output: str | os.PathLike, summary: str | os.PathLike | None = None, speaker: str = "participant"
) -> None:
    """Refuse a bad `output`, `summary` or `speaker` before any model is loaded or file is read."""
    output = Path(output)
    if output.suffix.lower() not in PREDICTION_SUFFIXES:
        raise PredictError(
            f"`output` must end in one of {', '.join(PREDICTION_SUFFIXES)} (or .qdpx for QDA "
            f"software); got {output.name!r}"
        )
    if summary is not None and Path(summary).suffix.lower() not in PREDICTION_SUFFIXES:
        raise PredictError(f"`summary` must end in one of {', '.join(PREDICTION_SUFFIXES)}; got {Path(summary).name!r}")
    if speaker not in SPEAKER_CHOICES:
        raise PredictError(f"`speaker` must be one of {', '.join(SPEAKER_CHOICES)}; got {speaker!r}")
    for path in (output, Path(summary) if summary is not None else None):
        if path is not None and not path.parent.exists():
            raise PredictError(f"{path.parent}: output folder does not exist")


def predict_files(
    inputs: list[str],
    labeler: Labeler,
    output: str | os.PathLike,
    summary: str | os.PathLike | None = None,
    speaker: str = "participant",
    resume: bool = False,
    rules: SpeakerRules | None = None,
    chunk_passages: int = CHUNK_PASSAGES,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[FileFailure], None] | None = None,
    text_column: str = "text",
    on_total: Callable[[int], None] | None = None,
) -> BatchReport:
    """Label every passage of every readable transcript in ``inputs``; see the module docstring.

    Progress counts the files that are read: ``on_total(n)`` is called once, before the first
    is read, with their number; ``on_progress(files, passages)`` as they are labelled or fail,
    and as each `loop.SCORE_CHUNK` passages are scored (so a long transcript's passages count up).
    An input that names no file and a transcript already done (resume) are not among them.

    When no transcript is labelled (and, resuming, none was done before), nothing is written:
    an earlier ``output``, ``summary`` and run record stay as they were, and ``report.output``
    is None."""
    output = Path(output)
    check_options(output, summary, speaker)
    rules = rules or SpeakerRules()
    report = BatchReport(output=output)
    started = time.perf_counter()
    journal = Journal(output)
    settings = {**labeler.settings, "speaker": speaker}
    # an interrupted run's journal outlives a run that labels nothing (it is cleared, without
    # resume, only when this run commits its first transcript)
    had_journal = journal.dir.is_dir()
    start_over = not resume
    if resume:
        adopted, notes = _adopt_existing(output, journal, settings)
        report.notes.extend(notes)
        if adopted:
            report.notes.append(f"resumed: {adopted} transcripts taken from the earlier {output.name}")
    done = journal.headers() if resume else {}

    others: list[Path] = []
    paths, problems = expand_inputs(list(inputs), skipped=others)
    for given, reason in problems:
        _fail(report, FileFailure(given, f"{given}: {reason}"), on_failure)
    report.file_notes.extend(skipped_note(p) for p in others)
    todo: list[tuple[Path, str | None]] = []
    changed = 0
    for path in paths:
        sha = _content_hash(path)
        header = done.get(str(path))
        if header is None:
            todo.append((path, sha))
        elif header.get("sha256") and sha and header["sha256"] != sha:
            todo.append((path, sha))  # edited since it was labelled: label it again
            changed += 1
        else:
            report.files_skipped += 1
    if changed:
        report.notes.append(f"{changed} transcript(s) changed since the earlier run: labelled again")
    if resume:  # kept, never dropped without a word: the earlier rows of transcripts not given now
        given_now = {str(path) for path in paths}
        extra = sorted(source for source in done if source not in given_now)
        if extra:
            shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
            report.notes.append(
                f"{len(extra)} transcript(s) in the earlier {output.name} are not among this "
                f"run's inputs and are kept: {shown}; run without `resume=True` to label "
                "only these inputs"
            )
    if on_total:
        on_total(len(todo))

    unreadable = 0  # files of `todo` that failed

    def progress() -> None:
        if on_progress:
            on_progress(report.files_done + unreadable, report.passages)

    def scoring(scored: int) -> None:  # a long transcript's passages count as they are scored
        if on_progress:
            on_progress(report.files_done + unreadable, report.passages + scored)

    inputs_todo = (file_input(path, text_column, key=sha) for path, sha in todo)
    for result in label_transcripts(
        inputs_todo, labeler, speaker, rules, chunk_passages=chunk_passages, on_scoring=scoring
    ):
        if isinstance(result, FileFailure):
            _fail(report, result, on_failure)
            unreadable += 1
            progress()
            continue
        if start_over:  # after scoring: a run interrupted before its first commit keeps the old journal
            journal.reset()
            start_over = False
        for done_now in result:
            report.file_notes.extend((done_now.source, note) for note in done_now.transcript.notes)
            journal.commit(
                done_now.source,
                passage_rows(done_now.source, done_now.passages, done_now.scores),
                done_now.key,
                settings,
            )
            report.files_done += 1
            report.passages += len(done_now.passages)
        progress()

    if not report.files_done and not report.files_skipped:
        # nothing of these inputs would be in the output: the earlier output, summary and record
        # stay as they were (a resumed run whose transcripts were all done still writes its output)
        if not had_journal:
            journal.reset()  # the rows resuming copied from the earlier output
        report.output = None
        report.seconds = time.perf_counter() - started
        return report

    row_ids = journal.has_row_ids()
    optional = labeler.optional_fields  # a language model's reasons, a second opinion's columns
    columns = prediction_columns(labeler.labels, row_ids, optional)
    record = {"settings": settings, "sources": {source: h.get("sha256") for source, h in journal.headers().items()}}
    codebook = getattr(labeler.model, "meta_", {}).get("codebook")
    if isinstance(codebook, dict):  # so `report` finds the codes' names and definitions anywhere
        record["codebook"] = codebook
    _write_atomic(
        journal.iter_frames(),
        output,
        columns,
        arrow_schema(labeler.labels, row_ids, optional) if output.suffix.lower() == ".parquet" else None,
    )
    write_atomic(record_path(output), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1), encoding="utf-8"))
    if summary is not None:
        summary = Path(summary)
        per_file = (summarise(frame, labeler.labels) for frame in journal.iter_frames())
        _write_atomic(per_file, summary)
        report.summary = summary
    journal.reset()
    report.seconds = time.perf_counter() - started
    return report


def _fail(report: BatchReport, failure: FileFailure, callback) -> None:
    report.failures.append(failure)
    if callback:
        callback(failure)


def gold_comparison(
    labeler: Labeler, transcript: str | Path, gold: str | Path, rules: SpeakerRules | None = None
) -> pd.DataFrame:
    """Run read -> segment -> label on a gold-coded transcript (every speaker's passages) and pair
    each gold span with the predicted label of the passage that overlaps it most (passages are
    split only for long turns). A transcript that cannot be read raises its `ReadError`."""
    [result] = label_transcripts([file_input(transcript)], labeler, "all", rules, keep_empty=True)
    if isinstance(result, FileFailure):
        raise ReadError(result.reason)
    passages, scores = result[0].passages, result[0].scores
    rows = []
    with Path(gold).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            g = json.loads(line)
            overlaps = [max(0, min(p.end, g["end"]) - max(p.start, g["start"])) for p in passages]
            best = int(np.argmax(overlaps)) if overlaps else -1
            found = best >= 0 and overlaps[best] > 0
            rows.append(
                {
                    "source": str(transcript),
                    "start": g["start"],
                    "end": g["end"],
                    "human": g["label"],
                    "model": scores["label"].iloc[best] if found else "none",
                    "confidence": float(scores["confidence"].iloc[best]) if found else 0.0,
                    "matched": found,
                    "exact_span": found and passages[best].start == g["start"] and passages[best].end == g["end"],
                }
            )
    return pd.DataFrame(rows)
