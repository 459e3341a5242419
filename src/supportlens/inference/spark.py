"""Score transcript corpora on Apache Spark with supportlens' own reader, segmenter and labeller.

Spark only distributes rows; every Python worker runs per transcript the loop that
``supportlens predict`` runs (`read.parse_transcript` -> `loop.label_transcripts` ->
`schema.passage_rows`), with its columns and types (`supportlens.schema`), so labels,
probabilities, offsets, ``needs_review`` and failures are those of the single-machine path, and a
fix there is a fix here.

* `score_transcripts`: a DataFrame of transcripts (``id``; ``text`` or ``content`` bytes;
  optional ``format``) -> passages with provenance and scores, plus one ``error`` row per
  transcript that could not be read (the batch goes on, as in ``supportlens predict``).
* `score_passages`: an already-segmented DataFrame with a ``text`` column -> the same scores.
* `predict_spark`: the ``supportlens predict --engine spark`` flow (files or Parquet in,
  partitioned Parquet out).

The model travels with the job: the driver resolves the URI to a folder and adds it to the
Spark context (`SparkContext.addFile`), and each Python worker loads it once. Executors need
supportlens installed (``pip install "supportlens[spark]"``); where that is not possible, score
passages with the logged MLflow model through ``mlflow.pyfunc.spark_udf`` (it ships the package
code with the model; see `pyfunc_result_type`).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from supportlens.inference.labeler import Labeler, PredictError
from supportlens.inference.loop import SPEAKER_CHOICES, FileFailure, TranscriptInput, label_transcripts
from supportlens.schema import passage_rows, prediction_fields, score_columns, score_fields
from supportlens.transcripts.read import SUPPORTED_SUFFIXES, ReadError, Transcript, expand_inputs, parse_transcript
from supportlens.transcripts.segmentation import SpeakerRules

if TYPE_CHECKING:  # pyspark is an optional extra: imported where it is used
    from pyspark.sql import DataFrame, SparkSession

TRANSCRIPT_COLUMNS = ("id", "text", "content", "format")
ERROR_COLUMN = "error"
BUCKET_COLUMN = "bucket"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # s3a://, hdfs:///, dbfs:/ (not a C:/ drive)


# ---------------------------------------------------------------------------------------------
# session and model


def _pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise PredictError("Spark scoring needs pyspark: pip install 'supportlens[spark]'") from None


def spark_session(
    master: str = "local[2]", app_name: str = "supportlens", conf: dict[str, str] | None = None
) -> SparkSession:
    """Get or start a Spark session; with a ``local`` master, workers run this very Python.

    An active session (a notebook's, a test's) is returned as it is, whatever `master` says."""
    _pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master.startswith("local"):
        # pyspark starts workers with `python3` from PATH unless told; that is not this venv
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    # a transcript is tens of kB: Arrow batches of 10,000 rows (the default) would hold
    # hundreds of MB in one worker
    settings = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": "256",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own runtime errors when Java is missing
        raise PredictError(
            f"cannot start Spark (master {master!r}): {str(exc).rstrip('.')}. Spark needs a Java runtime "
            "(17 or newer) on PATH or JAVA_HOME"
        ) from exc


@dataclass(frozen=True)
class LabelerSettings:
    """How workers build their `Labeler` (the ``supportlens predict`` options of the same names)."""

    review_below: float | None = None
    fast: bool = False
    batch_size: int = 16
    device: str = "cpu"
    runtime: str | None = None  # fine-tuned models: auto, onnx or torch; None: the Labeler's default

    def build(self, model_dir: str | Path) -> Labeler:
        from supportlens.models import load_classifier

        extra = {"runtime": self.runtime} if self.runtime is not None else {}
        return Labeler(
            load_classifier(model_dir),
            review_below=self.review_below,
            device=self.device,
            fast=self.fast,
            batch_size=self.batch_size,
            **extra,
        )


@dataclass(frozen=True)
class ShippedModel:
    """A model folder added to a Spark application under a name unique to its files."""

    name: str
    labels: tuple[str, ...]
    settings: LabelerSettings


_shipped: dict[tuple[str, str], str] = {}  # (application id, model key) -> file name, on the driver
_worker_labelers: dict[tuple[str, LabelerSettings], Labeler] = {}  # per Python worker process


def _model_key(model_dir: Path) -> str:
    digest = hashlib.sha1(str(model_dir.resolve()).encode("utf-8"))
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def ship_model(
    spark: SparkSession, model: str | Path, settings: LabelerSettings | None = None, tracking_uri: str | None = None
) -> ShippedModel:
    """Resolve `model` (folder, ``runs:/``, ``models:/``) on the driver, check that it loads with
    `settings`, and add it to the Spark application so that every executor can load it."""
    from supportlens.tracking import fetch_model_dir

    settings = settings or LabelerSettings()
    model_dir = fetch_model_dir(str(model), tracking_uri)
    labels = tuple(settings.build(model_dir).labels)  # fail here, not in a thousand tasks
    try:
        context = spark.sparkContext
    except Exception as exc:  # Spark Connect sessions have no SparkContext
        raise PredictError(
            "this Spark session has no SparkContext (Spark Connect?): score with "
            "mlflow.pyfunc.spark_udf on the logged model instead"
        ) from exc
    key = (context.applicationId, _model_key(model_dir))
    if key not in _shipped:
        # addFile keys files by base name: copy under a unique one so two models never collide
        name = f"supportlens-model-{key[1]}"
        staging = Path(tempfile.mkdtemp(prefix="supportlens-ship-")) / name
        atexit.register(shutil.rmtree, staging.parent, True)  # Spark reads it until the app ends
        shutil.copytree(model_dir, staging)
        context.addFile(str(staging), recursive=True)
        _shipped[key] = name
    return ShippedModel(_shipped[key], labels, settings)


def _labeler(model: ShippedModel) -> Labeler:
    """The worker's labeller for `model`, loaded on first use (Python workers are reused)."""
    key = (model.name, model.settings)
    if key not in _worker_labelers:
        from pyspark import SparkFiles

        _worker_labelers[key] = model.settings.build(SparkFiles.get(model.name))
    return _worker_labelers[key]


# ---------------------------------------------------------------------------------------------
# schemas


def pyfunc_result_type(labels: tuple[str, ...] | list[str]) -> str:
    """The ``result_type`` for ``mlflow.pyfunc.spark_udf`` on a logged supportlens model: a struct
    of label, one probability per code, confidence and needs_review (`schema.score_fields`)."""
    return ", ".join(f"{name} {kind}" for name, kind in score_fields(labels))


def _struct(fields: list[tuple[str, str]]):
    """A Spark schema of `supportlens.schema` fields (Spark SQL type names)."""
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

    types = {"string": StringType, "bigint": LongType, "double": DoubleType, "boolean": BooleanType}
    return StructType([StructField(name, types[kind]()) for name, kind in fields])


def _score_schema(labels):
    return _struct(score_fields(labels))


def _passage_schema(labels):
    """`supportlens predict`'s columns and types (`schema.prediction_fields`), plus ``error``."""
    return _struct(result_fields(labels))


def result_fields(labels) -> list[tuple[str, str]]:
    """The columns of `score_transcripts` and their types: those of ``supportlens predict``'s
    output (`schema.prediction_fields`; no ``row_id``), then ``error``."""
    return prediction_fields(labels) + [(ERROR_COLUMN, "string")]


# ---------------------------------------------------------------------------------------------
# transcripts -> passages


def _for_arrow(frame: pd.DataFrame, text_columns: list[str]) -> pd.DataFrame:
    """Missing values of text columns as None in object columns: pyspark (4.x) cannot convert a
    column of float NaN (what `reindex` puts in an absent column) to a string column."""
    for column in text_columns:
        if column in frame.columns and frame[column].dtype.kind == "f":
            frame[column] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def _format_of(source: str, given) -> str:
    """The row's format, else the id's file suffix when it is a transcript suffix, else txt."""
    if isinstance(given, str) and given.strip():
        return given
    suffix = Path(source).suffix.lower()
    return suffix[1:] if suffix in SUPPORTED_SUFFIXES else "txt"


def _transcript_inputs(batches: Iterator[pd.DataFrame], table_text_column: str) -> Iterator[TranscriptInput]:
    """Each row of each batch as a transcript to label: read (parsed from its text or bytes) only
    when the loop reaches it. A row with no id is named "" (``source`` null in the output)."""
    for batch in batches:
        for row in batch.itertuples(index=False):
            source = row.id if isinstance(row.id, str) and row.id else None
            content = row.content if row.content is not None else row.text
            yield TranscriptInput(
                source or "", partial(_parse, source, content, _format_of(source or "", row.format), table_text_column)
            )


def _parse(source: str | None, content: str | bytes | float | None, fmt: str, table_text_column: str) -> Transcript:
    if source is None:
        raise ReadError("a transcript row has no id")
    if content is None or isinstance(content, float):  # a missing cell: None, or NaN from pandas
        raise ReadError(source, "no text: both 'text' and 'content' are empty")
    return parse_transcript(content, fmt, source, text_column=table_text_column)


def _score_transcript_batches(
    batches: Iterator[pd.DataFrame], model: ShippedModel, speaker: str, rules: SpeakerRules, table_text_column: str
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: `loop.label_transcripts` over the rows, as in `predict_files`; each
    scored part as passages, the failures so far as rows with ``error`` set."""
    labeler = _labeler(model)
    fields = result_fields(model.labels)
    columns = [name for name, _ in fields]
    text_columns = [name for name, kind in fields if kind == "string"]  # filled with None, not NaN
    failures: list[dict] = []
    inputs = _transcript_inputs(batches, table_text_column)
    for result in label_transcripts(inputs, labeler, speaker, rules):
        if isinstance(result, FileFailure):
            failures.append({"source": result.source or None, ERROR_COLUMN: result.reason})
            continue
        rows = [row for t in result for row in passage_rows(t.source, t.passages, t.scores)]
        yield _for_arrow(pd.DataFrame(rows).reindex(columns=columns), text_columns)
        if failures:
            yield _for_arrow(pd.DataFrame(failures).reindex(columns=columns), text_columns)
            failures = []
    if failures:
        yield _for_arrow(pd.DataFrame(failures).reindex(columns=columns), text_columns)


def _check_transcripts(transcripts: DataFrame, where: str = "transcripts") -> DataFrame:
    """Columns id, text, content, format in that order and type; a clear error for a bad frame."""
    from pyspark.sql import functions as F

    columns = {c.lower(): c for c in transcripts.columns}
    if "id" not in columns:
        raise PredictError(f"{where}: no 'id' column (columns: {', '.join(transcripts.columns) or 'none'})")
    if "text" not in columns and "content" not in columns:
        raise PredictError(
            f"{where}: needs a 'text' (string) or 'content' (bytes) column (columns: {', '.join(transcripts.columns)})"
        )
    types = {"id": "string", "text": "string", "content": "binary", "format": "string"}
    return transcripts.select(
        *[(F.col(columns[c]) if c in columns else F.lit(None)).cast(types[c]).alias(c) for c in TRANSCRIPT_COLUMNS]
    )


def score_transcripts(
    transcripts: DataFrame,
    model: str | Path,
    *,
    speaker: str = "participant",
    rules: SpeakerRules | None = None,
    settings: LabelerSettings | None = None,
    table_text_column: str = "text",
    tracking_uri: str | None = None,
) -> DataFrame:
    """Passages of every transcript with the columns of ``supportlens predict`` plus ``error``.

    `transcripts` has one row per transcript: ``id`` (becomes ``source``; keep it unique),
    ``text`` or ``content`` (the file's bytes; needed for docx/xlsx), and optionally ``format``
    (txt, md, vtt, srt, csv, docx, xlsx; default: the id's suffix, else txt). A transcript that
    cannot be read gives one row with ``source`` and ``error`` set and the other columns null;
    `split_failures` separates the two. `table_text_column` is the text column inside csv/xlsx
    transcripts. The result is lazy: cache it before using it twice."""
    if speaker not in SPEAKER_CHOICES:
        raise PredictError(f"speaker must be one of {', '.join(SPEAKER_CHOICES)}; got {speaker!r}")
    frame = _check_transcripts(transcripts)
    spark = frame.sparkSession
    shipped = ship_model(spark, model, settings, tracking_uri)
    rules = rules or SpeakerRules()
    parallelism = spark.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() < parallelism:  # one Parquet file is one partition: spread it
        frame = frame.repartition(parallelism)

    def body(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return _score_transcript_batches(batches, shipped, speaker, rules, table_text_column)

    return frame.mapInPandas(body, _passage_schema(shipped.labels))


def split_failures(scored: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(passages without the ``error`` column, failures as ``source, error``) of `score_transcripts`."""
    from pyspark.sql import functions as F

    passages = scored.filter(F.col(ERROR_COLUMN).isNull()).drop(ERROR_COLUMN)
    failures = scored.filter(F.col(ERROR_COLUMN).isNotNull()).select("source", ERROR_COLUMN)
    return passages, failures


# ---------------------------------------------------------------------------------------------
# passages -> scores


def score_passages(
    passages: DataFrame,
    model: str | Path,
    *,
    text_column: str = "text",
    settings: LabelerSettings | None = None,
    tracking_uri: str | None = None,
) -> DataFrame:
    """Add label, ``p_<code>``, confidence and needs_review to a DataFrame of passages (any other
    columns are kept). A null text gets null scores."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    if text_column not in passages.columns:
        raise PredictError(f"passages: no {text_column!r} column (columns: {', '.join(passages.columns)})")
    shipped = ship_model(passages.sparkSession, model, settings, tracking_uri)
    added = score_columns(shipped.labels)
    clash = [c for c in added if c in passages.columns]
    if clash:
        raise PredictError(f"passages: already has column(s) {', '.join(clash)}; drop or rename them first")

    # pyspark's stubs lack the one-argument form that takes its kind from the type hints (the documented one)
    @pandas_udf(_score_schema(shipped.labels))  # type: ignore[call-overload]
    def score(texts: pd.Series) -> pd.DataFrame:
        present = texts.notna()
        # the score columns only (a language model's review_reason is not among them)
        frame = _labeler(shipped).score(texts[present].astype(str).tolist())[added]
        if present.all():
            return frame
        frame.index = texts.index[present]
        return frame.reindex(texts.index).astype(object).where(lambda f: f.notna(), None)

    struct = "_supportlens_scores"
    return passages.withColumn(struct, score(F.col(text_column))).select(
        *[F.col(f"`{c}`") for c in passages.columns], *[F.col(f"{struct}.`{c}`") for c in added]
    )


# ---------------------------------------------------------------------------------------------
# input and output for the CLI


def _is_table(item: str) -> bool:
    path = Path(item)
    if _URI.match(item) and not item.startswith("file:"):
        return True  # remote inputs are read by Spark, so they must be a table
    if item.lower().rstrip("/").endswith(".parquet"):
        return True
    if path.is_dir():  # a Spark/pyarrow dataset folder: Parquet files and no transcripts
        return any(path.rglob("*.parquet")) and not expand_inputs([item])[0]
    return False


def _read_parquet(spark: SparkSession, item: str) -> DataFrame:
    try:
        return spark.read.parquet(item)
    except Exception as exc:  # Spark's AnalysisException and friends: keep the first line only
        raise PredictError(f"{item}: cannot read as Parquet: {str(exc).strip().splitlines()[0]}") from None


def load_transcripts(spark: SparkSession, inputs: list[str]) -> tuple[DataFrame, list[FileFailure]]:
    """Transcripts DataFrame from the CLI's inputs, plus inputs that matched nothing.

    A Parquet file or folder (local or a URI) is read by Spark: columns ``id``, ``text`` and/or
    ``content``, optional ``format``. Files, folders and globs are expanded on the driver as in
    ``supportlens predict`` and shipped as bytes (id = the path as given, so ``source`` matches
    the single-machine output); that suits thousands of files, not millions: convert those to
    Parquet first."""
    tables = [item for item in inputs if _is_table(item)]
    files = [item for item in inputs if item not in tables]
    frames: list[DataFrame] = [_check_transcripts(_read_parquet(spark, item), item) for item in tables]
    problems: list[FileFailure] = []
    if files:
        paths, missing = expand_inputs(files)
        problems.extend(FileFailure(given, f"{given}: {reason}") for given, reason in missing)
        rows = []
        for path in paths:
            try:
                rows.append(
                    {
                        "id": str(path),
                        "text": None,
                        "content": path.read_bytes(),
                        "format": path.suffix[1:].lower() or None,
                    }
                )
            except OSError as exc:
                problems.append(FileFailure(str(path), f"{path}: cannot read file: {exc.strerror or exc}"))
        if rows:
            schema = "id string, text string, content binary, format string"
            frames.append(spark.createDataFrame(pd.DataFrame(rows, columns=list(TRANSCRIPT_COLUMNS)), schema))
    if not frames:
        return spark.createDataFrame([], "id string, text string, content binary, format string"), problems
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame, problems


def write_passages(passages: DataFrame, out: str | Path, buckets: int = 16) -> str:
    """Write passages as Parquet partitioned by ``bucket`` = hash(source) mod `buckets` (all
    passages of a transcript in one folder, a bounded number of folders), sorted by source and
    passage. A local `out` is written beside itself and swapped in whole, replacing only an
    earlier Spark output or an empty folder; a URI (``s3a://``, ``hdfs://``, ``dbfs:/``) is
    overwritten through Spark's own commit protocol."""
    from pyspark.sql import functions as F

    if buckets < 1:
        raise PredictError(f"buckets must be at least 1, got {buckets}")
    frame = (
        passages.withColumn(BUCKET_COLUMN, F.pmod(F.xxhash64("source"), F.lit(buckets)).cast("int"))
        .repartition(buckets, BUCKET_COLUMN)
        .sortWithinPartitions("source", "passage_index")
    )
    local = _local_output(out)
    if local is None:
        frame.write.mode("overwrite").partitionBy(BUCKET_COLUMN).parquet(str(out))
        return str(out)
    out = local
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        frame.write.partitionBy(BUCKET_COLUMN).parquet(staging.resolve().as_uri())  # local, whatever the default FS
        old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(out)


def _local_output(out: str | Path) -> Path | None:
    """The local folder `out` names, checked to be writable by `write_passages`; None for a URI."""
    target = str(out)
    if _URI.match(target) and not target.startswith("file:"):
        return None
    path = Path(re.sub(r"^file:(?://)?", "", target))
    if not path.parent.exists():
        raise PredictError(f"{path.parent}: output folder does not exist")
    earlier_output = path.is_dir() and ((path / "_SUCCESS").exists() or not any(path.iterdir()))
    if path.exists() and not earlier_output:
        raise PredictError(f"{path}: exists and is not an earlier Spark output; choose another `out`")
    return path


@dataclass
class SparkReport:
    output: str | None  # None: no transcript was labelled, so nothing was written
    transcripts: int = 0
    passages: int = 0
    seconds: float = 0.0
    failures: list[FileFailure] = field(default_factory=list)

    @property
    def passages_per_second(self) -> float:
        return self.passages / self.seconds if self.seconds else 0.0


def predict_spark(
    inputs: list[str],
    model: str | Path,
    out: str | Path,
    *,
    master: str = "local[2]",
    speaker: str = "participant",
    rules: SpeakerRules | None = None,
    settings: LabelerSettings | None = None,
    table_text_column: str = "text",
    tracking_uri: str | None = None,
    buckets: int = 16,
) -> SparkReport:
    """``supportlens predict --engine spark``: score `inputs` on `master` into partitioned Parquet.

    A session this call starts is stopped at the end; an active one is left running."""
    _pyspark()
    from pyspark import StorageLevel
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    started = time.perf_counter()
    _local_output(out)  # a bad --out fails before Spark starts
    owned = SparkSession.getActiveSession() is None
    spark = spark_session(master)
    try:
        transcripts, problems = load_transcripts(spark, inputs)
        scored = score_transcripts(
            transcripts,
            model,
            speaker=speaker,
            rules=rules,
            settings=settings,
            table_text_column=table_text_column,
            tracking_uri=tracking_uri,
        )
        scored = scored.persist(StorageLevel.MEMORY_AND_DISK)  # written, counted, listed: score once
        try:
            passages, failures = split_failures(scored)
            ok = F.col(ERROR_COLUMN).isNull()
            stats = scored.agg(
                F.count(F.when(ok, 1)).alias("passages"),
                F.countDistinct(F.when(ok, F.col("source"))).alias("transcripts"),
            ).first()
            assert stats is not None  # an aggregate without groupBy has exactly one row
            # a run that labelled nothing leaves an earlier output as it was
            written = write_passages(passages, out, buckets) if stats["transcripts"] else None
            failed = [FileFailure(r["source"] or "", r[ERROR_COLUMN]) for r in failures.collect()]
        finally:
            scored.unpersist()
    finally:
        if owned:
            spark.stop()
    return SparkReport(
        written,
        int(stats["transcripts"]),
        int(stats["passages"]),
        time.perf_counter() - started,
        problems + sorted(failed, key=lambda f: f.source),
    )
