"""`label`: what ``supportlens predict`` does, as calls a notebook can make too.

Checking the options (`check_label_options`, before a model takes seconds to load), loading the
model (`load_model`) and labelling into a table (`predict_files`), a ``.qdpx`` project
(`predict_to_qdpx`) or partitioned Parquet on Spark (`predict_spark`) (`label`). Errors speak in
the API's terms (`LabelOptions`' field names); the command line names its options instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from supportlens.inference.labeler import Labeler, PredictError
from supportlens.inference.predict import check_options
from supportlens.transcripts.segmentation import SpeakerRules

if TYPE_CHECKING:
    from supportlens.config import Config
    from supportlens.inference.loop import FileFailure
    from supportlens.inference.predict import BatchReport
    from supportlens.inference.spark import SparkReport

ENGINES = ("local", "spark")
RUNTIMES = ("auto", "onnx", "torch")


@dataclass
class LabelOptions:
    """How transcripts are read, scored and written: ``supportlens predict``'s options, one field each."""

    summary: str | os.PathLike | None = None  # per-transcript profile (.csv, .jsonl or .parquet)
    speaker: str = "participant"  # which turns to score: participant, interviewer or all
    interviewers: list[str] = field(default_factory=list)  # names (or regexes) of the interviewer
    review_below: float | None = None  # flag passages under this confidence (None: the model's threshold)
    resume: bool = False  # skip transcripts already in the output
    device: str = "cpu"  # cpu, cuda or auto
    fast: bool = False  # int8 CPU inference (fine-tuned models)
    runtime: str | None = None  # fine-tuned models on CPU: auto, onnx or torch (None: $SUPPORTLENS_RUNTIME)
    batch_size: int = 16  # passages per forward pass
    text_column: str = "text"  # for .csv/.xlsx transcripts
    tracking_uri: str | None = None  # for runs:/ and models:/ URIs
    # a language-model config (model.kind llm) asked about the passages flagged for review, and only
    # those; its code, confidence and reason become the second_* columns (tables only, not Spark)
    second_opinion: str | os.PathLike | None = None
    allow_remote: bool = False  # a language model may be reached on a host other than this machine
    # .qdpx output only
    code_prefix: str = ""  # suggestions under new codes named prefix + code name
    min_confidence: float = 0.0  # suggestions below this confidence are left out
    overwrite: bool = False  # replace an existing output that holds only supportlens suggestions
    # Spark only
    engine: str = "local"  # local (this process) or spark
    master: str = "local[2]"  # the Spark master


@dataclass
class LoadedModel:
    """A model ready to label with, and where it came from."""

    uri: str  # as given (runs:/…, models:/…@alias or a folder); a .qdpx records it with its suggestions
    folder: Path  # its local copy, which Spark workers load and which may hold its codebook.yaml
    labeler: Labeler


def labels_into_qdpx(inputs: list[str], out: str | os.PathLike) -> bool:
    """Whether the labels go into a REFI-QDA project: a ``.qdpx`` input or output."""
    return Path(out).suffix.lower() == ".qdpx" or any(str(i).lower().endswith(".qdpx") for i in inputs)


def check_label_options(
    inputs: list[str], out: str | os.PathLike, options: LabelOptions, model_uri: str | None = None
) -> None:
    """Refuse options that do not go together, a bad output or an existing project, before any
    model is loaded or file is read. ``model_uri``: the model as the user named it, for the
    advice when a ``.qdpx`` output exists."""
    to_qda = labels_into_qdpx(inputs, out)
    SpeakerRules.with_interviewers(options.interviewers)  # an invalid pattern fails here, not mid-run
    if options.engine not in ENGINES:
        raise PredictError(f"`engine` must be local or spark, got {options.engine!r}")
    if options.runtime is not None and options.runtime not in RUNTIMES:
        raise PredictError(f"`runtime` must be auto, onnx or torch, got {options.runtime!r}")
    if options.review_below is not None and not 0.0 <= options.review_below <= 1.0:
        raise PredictError(f"`review_below` is a confidence between 0 and 1, got {options.review_below}")
    if options.second_opinion is not None and (to_qda or options.engine == "spark"):
        raise PredictError(
            "`second_opinion` records its answers as columns of a table: label into .csv, .jsonl or "
            "a .parquet file with `engine='local'`"
        )
    if options.engine == "spark" and (to_qda or options.summary is not None or options.resume):
        raise PredictError(
            "`engine='spark'` writes partitioned Parquet: .qdpx, `summary` and `resume` need `engine='local'`"
        )
    if to_qda and (options.summary is not None or options.resume):
        raise PredictError(
            "`summary` and `resume` are not available with a .qdpx project; label into .csv/.jsonl for them"
        )
    if options.engine == "local" and not to_qda:
        check_options(out, options.summary, options.speaker)
    elif to_qda:  # an existing project is refused before the model loads, not after scoring
        from supportlens.inference.qdpx import check_qdpx_options

        check_qdpx_options(inputs, out, options.speaker, overwrite=options.overwrite, cli_model=model_uri)


def load_model(
    model: str, options: LabelOptions | None = None, on_send: Callable[[str], None] | None = None
) -> LoadedModel:
    """Fetch (runs:/, models:/) and load a model, on the device and in the speed mode asked for,
    with the second opinion asked for (`load_second_opinion`). ``on_send``: where a language model
    announces what it sends to a remote host (None: the model's default, standard error)."""
    from supportlens.models import load_classifier
    from supportlens.tracking import fetch_model_dir

    options = options or LabelOptions()
    folder = fetch_model_dir(model, options.tracking_uri)
    classifier = load_classifier(folder)
    if getattr(classifier, "kind", None) == "llm":
        allow_llm(classifier, options.allow_remote, on_send)
    second = None
    if options.second_opinion is not None:
        second = load_second_opinion(
            options.second_opinion, [str(c) for c in classifier.classes_], options.allow_remote, on_send
        )
    labeler = Labeler(
        classifier,
        review_below=options.review_below,
        device=options.device,
        fast=options.fast,
        batch_size=options.batch_size,
        runtime=options.runtime,
        second_opinion=second,
    )
    return LoadedModel(model, folder, labeler)


def allow_llm(model, allow_remote: bool = False, on_send: Callable[[str], None] | None = None) -> None:
    """Let a language model (kind ``llm``) reach a remote host when ``allow_remote`` (a model whose
    own config allows it keeps that), and announce what it sends there through ``on_send``."""
    if allow_remote:
        model.allow_remote = True
    if on_send is not None:
        model.on_send = on_send


def load_second_opinion(
    config: str | os.PathLike,
    labels: list[str],
    allow_remote: bool = False,
    on_send: Callable[[str], None] | None = None,
):
    """The language model of ``config`` (model.kind ``llm``, its codebook the prompt), ready to
    code passages with ``labels`` (the main model's codes, in its order). Refuses another kind of
    model, and a codebook whose codes are not the main model's, before anything is labelled."""
    from supportlens.config import load_config

    return llm_from_config(load_config(Path(config)), labels, allow_remote, on_send, f"{config}: `second_opinion`")


def llm_from_config(
    cfg: Config,
    labels: list[str],
    allow_remote: bool = False,
    on_send: Callable[[str], None] | None = None,
    role: str = "the language model",
):
    """A language model (model.kind ``llm``) built from ``cfg`` to code with ``labels``, which its
    codebook (the prompt) must have, in that order; nothing is learnt, so it is ready at once (a
    remote host without ``allow_remote`` is refused here, before anything is sent). ``role`` names
    it in errors: ``second_opinion``, the distillation's teacher."""
    import dataclasses

    from supportlens.codebook import load_codebook
    from supportlens.models import build_model

    if cfg.model.kind != "llm":
        raise PredictError(
            f"{role} takes the config of a language model (model.kind llm, as in configs/llm.yaml); "
            f"this one is model.kind {cfg.model.kind}"
        )
    if allow_remote:
        cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, allow_remote=True))
    codebook = load_codebook(cfg.codebook)
    if sorted(codebook.labels) != sorted(labels):
        raise PredictError(
            f"{role}: its codebook ({cfg.codebook}) has the codes {', '.join(codebook.labels)}, the model's "
            f"are {', '.join(labels)}: both must choose among the same codes"
        )
    model = build_model(cfg, list(labels), codebook)
    model.fit([], [])  # nothing is learnt: this checks the endpoint's settings (a remote host refused)
    allow_llm(model, False, on_send)
    return model


def calibration_warning(loaded: LoadedModel, options: LabelOptions | None = None) -> str | None:
    """Why every passage will be flagged needs_review, when training measured no review threshold
    and none was given: the user should know before reading the flags."""
    calibration = getattr(loaded.labeler.model, "meta_", {}).get("calibration") or {}
    if calibration.get("threshold_measured") is not False or (options and options.review_below is not None):
        return None
    return (
        f"this model's confidence is not calibrated ({'; '.join(calibration.get('notes') or [])}), so every "
        "passage is flagged needs_review. Train on more coded interviews, or pass `review_below` "
        "with a threshold of your own choosing (one that no data has checked)."
    )


def label(
    inputs: list[str],
    loaded: LoadedModel,
    out: str | os.PathLike,
    options: LabelOptions | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[FileFailure], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> BatchReport | SparkReport:
    """Label the transcripts (files, folders, globs; or one ``.qdpx`` project) in ``inputs`` into
    ``out``: a table, a ``.qdpx`` project of suggested codings, or with ``engine='spark'``
    partitioned Parquet. Progress and failures as for `predict_files` (not on Spark, which
    returns its failures in its report). See `check_label_options` for what is refused up front."""
    options = options or LabelOptions()
    rules = SpeakerRules.with_interviewers(options.interviewers)
    if options.engine == "spark":
        from supportlens.inference.spark import LabelerSettings, predict_spark

        # no runtime: the workers take their default ($SUPPORTLENS_RUNTIME, else auto), as predict always did
        settings = LabelerSettings(options.review_below, options.fast, options.batch_size, options.device)
        return predict_spark(
            inputs,
            loaded.folder,
            os.fspath(out),  # a URI stays as written
            master=options.master,
            speaker=options.speaker,
            rules=rules,
            settings=settings,
            table_text_column=options.text_column,
        )
    if labels_into_qdpx(inputs, out):
        from supportlens.codebook import load_codebook
        from supportlens.inference.qdpx import predict_to_qdpx

        saved = loaded.folder / "codebook.yaml"  # names, colours, definitions of the codes
        return predict_to_qdpx(
            inputs,
            loaded.labeler,
            out,
            codebook=load_codebook(saved) if saved.is_file() else None,
            speaker=options.speaker,
            rules=rules,
            code_prefix=options.code_prefix,
            min_confidence=options.min_confidence,
            model_uri=loaded.uri,
            text_column=options.text_column,
            overwrite=options.overwrite,
            on_progress=on_progress,
            on_failure=on_failure,
            on_total=on_total,
        )
    from supportlens.inference.predict import predict_files

    return predict_files(
        inputs,
        loaded.labeler,
        out,
        summary=options.summary,
        speaker=options.speaker,
        resume=options.resume,
        rules=rules,
        on_progress=on_progress,
        on_failure=on_failure,
        text_column=options.text_column,
        on_total=on_total,
    )
