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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from supportlens.io.atomic import write_atomic
from supportlens.calibration import flags_for_review, threshold_measured
from supportlens.io.jsonl import frame_to_jsonl
from supportlens.transcripts.read import SUPPORTED_SUFFIXES, ReadError, Transcript, expand_inputs, read_transcript
from supportlens.transcripts.segmentation import Passage, SpeakerRules, segment

OUTPUT_SUFFIXES = (".csv", ".jsonl", ".parquet")
SPEAKER_CHOICES = ("participant", "interviewer", "all")
PASSAGE_COLUMNS = ["source", "passage_index", "speaker", "role", "start", "end", "start_time",
                   "end_time", "text"]
# passages per model call: a transcript of more (a 20 MB file has some 20,000) is scored in parts, its
# progress shown after each; an interview's passages, and the few transcripts pending, take one call
SCORE_CHUNK = 1024
# the id of a csv/xlsx input's row (its `read.ID_COLUMN`): the last column, and only in outputs
# that hold such a row, so the columns of every other output stay as they were
ROW_ID_COLUMN = "row_id"


class PredictError(ValueError):
    """The batch cannot start (bad output path, bad option); per-file problems are not raised."""


@dataclass
class FileFailure:
    source: str
    reason: str


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


def _keep(passage: Passage, speaker: str) -> bool:
    if speaker == "all":
        return True
    if speaker == "interviewer":
        return passage.role == "interviewer"
    return passage.role in ("participant", "unknown")


class Labeler:
    """Scores passages with a loaded supportlens model; owns device, speed mode and threshold."""

    def __init__(self, model, review_below: float | None = None, device: str = "cpu", fast: bool = False,
                 batch_size: int = 16, runtime: str | None = None):
        """``runtime``: for fine-tuned models, ``auto`` (ONNX Runtime on CPU when possible), ``onnx``
        or ``torch``; None defers to ``$SUPPORTLENS_RUNTIME`` (see FineTuneClassifier.use_runtime)."""
        self.model = model
        self.labels = [str(x) for x in model.classes_]
        self.threshold = float(review_below if review_below is not None
                               else model.meta_.get("review_threshold", 0.0))
        # no threshold measured in training (stored as 1.0): every passage is flagged, also one at 1.0
        self.threshold_measured = review_below is not None or threshold_measured(model)
        self.device = resolve_device(device)
        if hasattr(model, "predict_batch_size"):
            model.predict_batch_size = batch_size
        if hasattr(model, "to_device"):
            model.to_device(self.device)
        if fast and not hasattr(model, "make_fast"):
            raise PredictError(f"--fast is only available for fine-tuned models; this {model.kind} "
                               "model always runs at full precision: run without --fast")
        self.runtime: str | None = None  # "onnx" or "torch" for fine-tuned models
        if hasattr(model, "use_runtime"):
            from supportlens.models.onnx_runtime import OnnxUnavailable

            try:  # choose (and on first use, export) before the first batch, not in the middle of it
                model.use_runtime(runtime)
                if fast:
                    model.make_fast()
                self.runtime = model.use_runtime()
            except OnnxUnavailable as exc:
                raise PredictError(f"ONNX Runtime asked for but unavailable: {exc}") from exc
            except ValueError as exc:
                raise PredictError(str(exc)) from exc
        tokenizer = getattr(model, "tokenizer_", None)
        self.max_tokens = int(getattr(model, "max_length", 256)) - 2 if tokenizer is not None else 256

    @property
    def settings(self) -> dict:
        """What decides the rows of an output: the trained model (its saved metadata holds its
        parameters, calibration and metrics) and the review threshold."""
        meta = json.dumps(getattr(self.model, "meta_", {}), sort_keys=True, default=str)
        return {"model": hashlib.sha256(meta.encode("utf-8")).hexdigest()[:16],
                "kind": getattr(self.model, "kind", type(self.model).__name__),
                "review_below": round(self.threshold, 6)}

    def count_tokens(self, text: str) -> int:
        tokenizer = getattr(self.model, "tokenizer_", None)
        if tokenizer is None:
            return int(np.ceil(len(text.split()) * 1.3))
        return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def score(self, texts: list[str]) -> pd.DataFrame:
        proba = self.model.predict_proba(texts) if texts else np.zeros((0, len(self.labels)))
        frame = pd.DataFrame({"label": [self.labels[i] for i in proba.argmax(1)] if texts else []})
        for j, label in enumerate(self.labels):
            frame[f"p_{label}"] = proba[:, j] if texts else []
        frame["confidence"] = proba.max(1) if texts else []
        frame["needs_review"] = flags_for_review(frame["confidence"].to_numpy(dtype=float), self.threshold,
                                                 self.threshold_measured)
        return frame


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise PredictError(f"--device must be cpu, cuda or auto; got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise PredictError("--device cuda asked for, but torch sees no CUDA device; use cpu or auto")
    return device


def passages_of(transcript: Transcript, labeler: Labeler, speaker: str, rules: SpeakerRules) -> list[Passage]:
    passages = segment(transcript, rules, count_tokens=labeler.count_tokens, max_tokens=labeler.max_tokens)
    return [p for p in passages if _keep(p, speaker)]


def nothing_to_score(source: str, transcript: Transcript, labeler: Labeler, speaker: str,
                     rules: SpeakerRules) -> str:
    """The one-line failure for a transcript with no passages of `speaker`: with what the
    transcript does hold (only interviewer turns, which the default leaves out) and its notes,
    which say how the roles were found."""
    message = f"{source}: no {speaker + ' ' if speaker != 'all' else ''}passages to score"
    if speaker == "participant":
        asked = len(passages_of(transcript, labeler, "interviewer", rules))
        if asked:
            message += (f": all {asked} passage(s) are interviewer turns, which --speaker all labels too "
                        "(--speaker interviewer labels them alone)")
    return message + "".join(f" ({note})" for note in transcript.notes)


def _rows(source: str, passages: list[Passage], scores: pd.DataFrame) -> list[dict]:
    rows = []
    for p, (_, s) in zip(passages, scores.iterrows()):
        row = {"source": source, "passage_index": p.index, "speaker": p.speaker, "role": p.role,
               "start": p.start, "end": p.end, "start_time": p.start_time, "end_time": p.end_time,
               "text": p.text}
        row.update({k: (bool(v) if k == "needs_review" else float(v) if k.startswith("p_") or k == "confidence"
                        else v) for k, v in s.items()})
        if p.row_id is not None:
            row[ROW_ID_COLUMN] = p.row_id
        rows.append(row)
    return rows


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
                fh.write(json.dumps({"source": source, "rows": len(rows), "sha256": sha256,
                                     "settings": settings, "row_ids": row_ids}) + "\n")
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
        raise PredictError(f"{where} was labelled with other settings ({what}); --resume would mix "
                           "them in one output: write to a new --out, or run without --resume to start over")


def _read_output(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    as_text = {ROW_ID_COLUMN: str}  # ids such as "007" stay as written, not numbers
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=as_text)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=as_text)
    return pd.read_parquet(path)


def _adopt_existing(output: Path, journal: Journal, settings: dict) -> tuple[int, list[str]]:
    """On resume, move rows of a finished earlier output into the journal, per source, after
    checking that the same settings made it. Returns (transcripts adopted, notes)."""
    notes = []
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
        notes.append(f"{output.name} has no record of the model that labelled it "
                     f"({record_file.name} is missing); its rows are kept as they are")
    try:
        frame = _read_output(output)
    except Exception as exc:  # noqa: BLE001 - any unreadable earlier output
        raise PredictError(f"{output}: cannot read the earlier output to resume from ({exc}); "
                           "move it away or run without --resume") from exc
    if "source" not in frame.columns:
        raise PredictError(f"{output}: has no 'source' column, so it is not a supportlens output")
    done = journal.done()
    hashes = record.get("sources", {})
    count = 0
    for source, block in frame.groupby("source", sort=False):
        if source not in done:
            block = block.astype(object).where(block.notna(), None)
            journal.commit(str(source), block.to_dict("records"), hashes.get(str(source)),
                           record.get("settings") or None)
            count += 1
    return count, notes


def _arrow_schema(labels: list[str], row_ids: bool = False):
    """Fixed Parquet types, so a transcript with no timestamps (all nulls) still fits the file."""
    import pyarrow as pa

    fields = [("source", pa.string()), ("passage_index", pa.int64()), ("speaker", pa.string()),
              ("role", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
              ("start_time", pa.float64()), ("end_time", pa.float64()), ("text", pa.string()),
              ("label", pa.string())]
    fields += [(f"p_{lab}", pa.float64()) for lab in labels]
    fields += [("confidence", pa.float64()), ("needs_review", pa.bool_())]
    fields += [(ROW_ID_COLUMN, pa.string())] if row_ids else []
    return pa.schema(fields)


def _write_atomic(frames: Iterator[pd.DataFrame], output: Path, columns: list[str] | None = None,
                  schema=None) -> int:
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
                pq.write_table(schema.empty_table() if schema is not None
                               else pa.Table.from_pandas(empty, preserve_index=False), str(tmp))
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
        for lab in labels:
            mask = block["label"] == lab
            row[f"n_{lab}"] = int(mask.sum())
            row[f"share_{lab}"] = float(mask.mean()) if len(block) else 0.0
            row[f"words_{lab}"] = int(words[mask].sum())
            row[f"word_share_{lab}"] = float(words[mask].sum() / max(1, words.sum()))
        most = max((row[f"words_{lab}"] for lab in approaches), default=0)
        # a tie names every tied approach ("push/pull"): no order of the codebook should decide it
        row["dominant"] = "/".join(lab for lab in approaches if row[f"words_{lab}"] == most) if most else "none"
        row["needs_review"] = int(block["needs_review"].astype(bool).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def check_options(output: str | Path, summary: str | Path | None = None, speaker: str = "participant") -> None:
    """Refuse a bad --out, --summary or --speaker before any model is loaded or file is read."""
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise PredictError(f"--out must end in one of {', '.join(OUTPUT_SUFFIXES)} (or .qdpx for QDA "
                           f"software); got {output.name!r}")
    if summary is not None and Path(summary).suffix.lower() not in OUTPUT_SUFFIXES:
        raise PredictError(f"--summary must end in one of {', '.join(OUTPUT_SUFFIXES)}; got {Path(summary).name!r}")
    if speaker not in SPEAKER_CHOICES:
        raise PredictError(f"--speaker must be one of {', '.join(SPEAKER_CHOICES)}; got {speaker!r}")
    for path in (output, Path(summary) if summary is not None else None):
        if path is not None and not path.parent.exists():
            raise PredictError(f"{path.parent}: output folder does not exist")


def predict_files(inputs: list[str], labeler: Labeler, output: str | Path,
                  summary: str | Path | None = None, speaker: str = "participant",
                  resume: bool = False, rules: SpeakerRules | None = None,
                  chunk_passages: int = 256, on_progress: Callable[[int, int], None] | None = None,
                  on_failure: Callable[[FileFailure], None] | None = None,
                  text_column: str = "text", on_total: Callable[[int], None] | None = None) -> BatchReport:
    """Label every passage of every readable transcript in ``inputs``; see the module docstring.

    Progress counts the files that are read: ``on_total(n)`` is called once, before the first
    is read, with their number; ``on_progress(files, passages)`` as they are labelled or fail,
    and as each `SCORE_CHUNK` passages are scored (so a long transcript's passages count up).
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
    # --resume, only when this run commits its first transcript)
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
    report.file_notes.extend((str(p), f"not a transcript ({p.suffix.lower() or 'no suffix'}; reads "
                              f"{', '.join(SUPPORTED_SUFFIXES)}); skipped") for p in others)
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
            report.notes.append(f"{len(extra)} transcript(s) in the earlier {output.name} are not among this "
                                f"run's inputs and are kept: {shown}; run without --resume to label only "
                                "these inputs")
    if on_total:
        on_total(len(todo))

    pending: list[tuple[str, str | None, list[Passage]]] = []
    pending_n = 0
    unreadable = 0  # files of `todo` that failed

    def progress() -> None:
        if on_progress:
            on_progress(report.files_done + unreadable, report.passages)

    def scoring(scored: int) -> None:  # a long transcript's passages count as they are scored
        if on_progress:
            on_progress(report.files_done + unreadable, report.passages + scored)

    def flush() -> None:
        nonlocal pending, pending_n, start_over
        texts = [p.text for _, _, ps in pending for p in ps]
        scores = _score_in_chunks(labeler, texts, SCORE_CHUNK, scoring)
        if start_over:  # after scoring: a run interrupted before its first commit keeps the old journal
            journal.reset()
            start_over = False
        offset = 0
        for source, sha, ps in pending:
            block = scores.iloc[offset:offset + len(ps)].reset_index(drop=True)
            offset += len(ps)
            journal.commit(source, _rows(source, ps, block), sha, settings)
            report.files_done += 1
            report.passages += len(ps)
        progress()
        pending, pending_n = [], 0

    for path, sha in todo:
        source = str(path)
        try:
            transcript = read_transcript(path, text_column=text_column)
            passages = passages_of(transcript, labeler, speaker, rules)
            if not passages:
                raise ReadError(nothing_to_score(source, transcript, labeler, speaker, rules))
        except ReadError as exc:
            _fail(report, FileFailure(source, str(exc)), on_failure)
            unreadable += 1
            progress()
            continue
        except (OSError, ValueError) as exc:  # a reader bug or odd file must not sink the batch
            _fail(report, FileFailure(source, f"{source}: {type(exc).__name__}: {exc}"), on_failure)
            unreadable += 1
            progress()
            continue
        report.file_notes.extend((source, note) for note in transcript.notes)
        pending.append((source, sha, passages))
        pending_n += len(passages)
        if pending_n >= chunk_passages:
            flush()
    if pending:
        flush()

    if not report.files_done and not report.files_skipped:
        # nothing of these inputs would be in the output: the earlier output, summary and record
        # stay as they were (a resumed run whose transcripts were all done still writes its output)
        if not had_journal:
            journal.reset()  # the rows --resume copied from the earlier output
        report.output = None
        report.seconds = time.perf_counter() - started
        return report

    row_ids = journal.has_row_ids()
    columns = (PASSAGE_COLUMNS + ["label"] + [f"p_{lab}" for lab in labeler.labels] + ["confidence", "needs_review"]
               + ([ROW_ID_COLUMN] if row_ids else []))
    record = {"settings": settings,
              "sources": {source: h.get("sha256") for source, h in journal.headers().items()}}
    codebook = getattr(labeler.model, "meta_", {}).get("codebook")
    if isinstance(codebook, dict):  # so `report` finds the codes' names and definitions anywhere
        record["codebook"] = codebook
    _write_atomic(journal.iter_frames(), output, columns,
                  _arrow_schema(labeler.labels, row_ids) if output.suffix.lower() == ".parquet" else None)
    write_atomic(record_path(output),
                 lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1), encoding="utf-8"))
    if summary is not None:
        summary = Path(summary)
        per_file = (summarise(frame, labeler.labels) for frame in journal.iter_frames())
        _write_atomic(per_file, summary)
        report.summary = summary
    journal.reset()
    report.seconds = time.perf_counter() - started
    return report


def _score_in_chunks(labeler: Labeler, texts: list[str], size: int,
                     on_chunk: Callable[[int], None] | None = None) -> pd.DataFrame:
    """``labeler.score(texts)``, `size` texts per model call, with ``on_chunk(texts scored so far)``
    after each call but the last: a transcript of thousands of passages (a 20 MB file) shows its
    progress instead of sitting at 0 passages until the whole of it is scored."""
    if len(texts) <= size:
        return labeler.score(texts)
    frames = []
    for begin in range(0, len(texts), size):
        frames.append(labeler.score(texts[begin:begin + size]))
        if on_chunk and begin + size < len(texts):
            on_chunk(begin + size)
    return pd.concat(frames, ignore_index=True)


def _fail(report: BatchReport, failure: FileFailure, callback) -> None:
    report.failures.append(failure)
    if callback:
        callback(failure)


def gold_comparison(labeler: Labeler, transcript: str | Path, gold: str | Path,
                    rules: SpeakerRules | None = None) -> pd.DataFrame:
    """Run read -> segment -> label on a gold-coded transcript and pair each gold span with the
    predicted label of the passage that overlaps it most (passages are split only for long turns)."""
    text = read_transcript(transcript)
    passages = segment(text, rules or SpeakerRules(), count_tokens=labeler.count_tokens,
                       max_tokens=labeler.max_tokens)
    scores = labeler.score([p.text for p in passages])
    rows = []
    with Path(gold).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            g = json.loads(line)
            overlaps = [max(0, min(p.end, g["end"]) - max(p.start, g["start"])) for p in passages]
            best = int(np.argmax(overlaps)) if overlaps else -1
            found = best >= 0 and overlaps[best] > 0
            rows.append({"source": str(transcript), "start": g["start"], "end": g["end"], "human": g["label"],
                         "model": scores["label"].iloc[best] if found else "none",
                         "confidence": float(scores["confidence"].iloc[best]) if found else 0.0,
                         "matched": found,
                         "exact_span": found and passages[best].start == g["start"] and passages[best].end == g["end"]})
    return pd.DataFrame(rows)
