"""Labelling straight into a REFI-QDA project: transcripts, or the text sources of one ``.qdpx``
project, are read, segmented and scored as by `supportlens.inference.predict.predict_files`, and the
labels are written back as suggested codings (`supportlens.qda.exporting.export_suggestions`).

It lives in `inference`, not `qda`, because it runs a model: `qda` only reads and writes projects.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from supportlens.codebook import Code, Codebook, codebook_from_dict
from supportlens.inference.loop import (
    SPEAKER_CHOICES,
    FileFailure,
    TranscriptInput,
    file_input,
    label_transcripts,
    skipped_note,
)
from supportlens.inference.predict import BatchReport
from supportlens.qda.exporting import check_qdpx_output, export_suggestions
from supportlens.qda.project import DEFAULT_USER, QdaError, QdaSource, open_project, source_transcript, text_sources
from supportlens.transcripts.read import ReadError, Transcript, expand_inputs
from supportlens.transcripts.segmentation import SpeakerRules


def _model_codebook(model) -> Codebook:
    """The codebook saved with the model by `supportlens train`; else one made from its labels."""
    saved = getattr(model, "meta_", {}).get("codebook")
    if isinstance(saved, dict):
        return codebook_from_dict(saved, source="the model's codebook")
    labels = [str(x) for x in model.classes_]
    return Codebook(
        [Code(label, label, label, f"supportlens label {label}") for label in labels], source="the model's labels"
    )


def check_qdpx_options(
    inputs: list[str],
    out_path: str | os.PathLike,
    speaker: str = "participant",
    overwrite: bool = False,
    user: str = DEFAULT_USER,
    cli_model: str | None = None,
) -> None:
    """Refuse what `predict_to_qdpx` would refuse about its inputs and output, before a model is
    loaded or a transcript read; ``cli_model`` as for `check_qdpx_output`."""
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".qdpx":
        raise QdaError(f"{out_path}: a .qdpx project is labelled into a .qdpx output; got {out_path.name!r}")
    if speaker not in SPEAKER_CHOICES:
        raise QdaError(f"`speaker` must be one of {', '.join(SPEAKER_CHOICES)}; got {speaker!r}")
    if not out_path.parent.is_dir():
        raise QdaError(f"{out_path.parent}: output folder does not exist")
    projects = [i for i in inputs if str(i).lower().endswith(".qdpx")]
    if projects and len(inputs) > 1:
        raise QdaError("give one .qdpx project, or transcripts, not both or several projects")
    check_qdpx_output(out_path, overwrite, user, cli_model)


def _where(project_path: str, source: QdaSource) -> str:
    """How notes and failures name a text source of a project."""
    return f"{project_path}: source {source.name!r}"


def _source_transcript(project_path: str, source: QdaSource) -> Transcript:
    """A project's text source as a transcript; its `ReadError` names the project and source."""
    try:
        return source_transcript(source.name, source.text)
    except ReadError as exc:
        raise ReadError(_where(project_path, source), exc.reason) from None


def predict_to_qdpx(
    inputs: list[str],
    labeler,
    out_path: str | os.PathLike,
    codebook: Codebook | None = None,
    speaker: str = "participant",
    rules: SpeakerRules | None = None,
    code_prefix: str = "",
    min_confidence: float = 0.0,
    model_uri: str = "",
    user: str = DEFAULT_USER,
    text_column: str = "text",
    include_none: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[Any], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> BatchReport:
    """Label transcripts, or the text sources of one ``.qdpx`` project, into a ``.qdpx`` of suggestions.

    A project input is copied with suggestions added; transcript inputs (files, folders, globs)
    become a new project with one text source per transcript, named by file name. Passages are
    made and scored exactly as by `supportlens.inference.predict.predict_files`, with progress, failures and
    notes as there (files read, not inputs that name none). Returns its `BatchReport`.

    An existing ``out_path`` is refused before anything is read (see `check_qdpx_output`; the
    input project itself included), and when nothing is labelled nothing is written:
    ``report.output`` is then None.
    """
    out_path = Path(out_path)
    check_qdpx_options(inputs, out_path, speaker, overwrite, user)
    projects = [i for i in inputs if str(i).lower().endswith(".qdpx")]
    if codebook is None:
        codebook = _model_codebook(labeler.model)
    rules = rules or SpeakerRules()
    report = BatchReport(output=out_path)
    started = time.perf_counter()

    def fail(failure: FileFailure) -> None:
        report.failures.append(failure)
        if on_failure:
            on_failure(failure)

    # each input is named in notes and failures by its path (a project's source: by project and
    # name), and in the predictions by its key (a source's guid; a file's name, or path if two share it)
    to_label: list[TranscriptInput]
    if projects:
        project_path = projects[0]
        project_sources = text_sources(open_project(project_path))
        if on_total:
            on_total(len(project_sources))
        to_label = [
            TranscriptInput(
                _where(project_path, source), partial(_source_transcript, project_path, source), source.guid
            )
            for source in project_sources
        ]
    else:
        project_path = None
        others: list[Path] = []
        paths, problems = expand_inputs(list(inputs), skipped=others)
        for given, reason in problems:
            fail(FileFailure(given, f"{given}: {reason}"))
        report.file_notes.extend(skipped_note(p) for p in others)
        if on_total:
            on_total(len(paths))
        names = Counter(p.name for p in paths)
        to_label = [
            file_input(path, text_column, key=path.name if names[path.name] == 1 else str(path)) for path in paths
        ]

    rows = []
    sources: dict[str, str] = {}  # key -> text of each labelled transcript, in input order
    unreadable = 0  # sources or files that were read and failed (progress counts them)
    # one transcript per model call (chunk_passages=1): progress moves on per transcript
    for result in label_transcripts(to_label, labeler, speaker, rules, chunk_passages=1):
        if isinstance(result, FileFailure):
            fail(result)
            unreadable += 1
        else:
            for done in result:
                report.file_notes.extend((done.source, note) for note in done.transcript.notes)
                sources[done.key] = done.transcript.text
                for p, label, confidence in zip(done.passages, done.scores["label"], done.scores["confidence"]):
                    rows.append(
                        {
                            "source": done.key,
                            "start": p.start,
                            "end": p.end,
                            "text": p.text,
                            "label": label,
                            "confidence": float(confidence),
                        }
                    )
                report.files_done += 1
                report.passages += len(done.passages)
        if on_progress:
            on_progress(report.files_done + unreadable, report.passages)
    if not report.files_done:  # an empty project, or an unchanged copy, would only mislead
        report.output = None
        report.seconds = time.perf_counter() - started
        return report
    predictions = pd.DataFrame(rows, columns=["source", "start", "end", "text", "label", "confidence"])
    exported = export_suggestions(
        project_path,
        predictions,
        None if projects else sources,
        out_path,
        codebook,
        user=user,
        code_prefix=code_prefix,
        min_confidence=min_confidence,
        model_uri=model_uri,
        include_none=include_none,
        overwrite=overwrite,
    )
    report.notes.extend(exported.notes)
    report.notes.append(exported.summary())
    report.seconds = time.perf_counter() - started
    return report
