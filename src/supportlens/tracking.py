"""Everything that talks to MLflow: runs, params, data, metrics, artifacts, the pyfunc model,
the registry, and resolving a model URI back to a local model folder.

Keeping MLflow behind this one module means the rest of supportlens can be used (and tested)
without a tracking server, and an MLflow API change is fixed in one place.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel  # by name: mlflow loads `mlflow.pyfunc` lazily, hidden from mypy

from supportlens.io.cache import cache_root
from supportlens.models.meta import META_FILE, ModelLoadError
from supportlens.models.registry import load_classifier
from supportlens.schema import score_frame

DEFAULT_URI = "sqlite:///mlflow.db"
MODEL_ARTIFACT = "model"
# "train" (scored on its own held-out test interviews) or "evaluate" (scored on a named file)
KIND_TAG = "supportlens.run_kind"
_PACKAGE_DIR = Path(__file__).resolve().parent
_REQUIREMENTS = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "pyyaml",
    "joblib",
    "openai",  # the llm model kind's client (a served llm model imports it)
)


def resolve_uri(uri: str | None = None) -> str:
    """Explicit URI, else $MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


# Loggers whose INFO records are a store's housekeeping, news to nobody running `train`: creating
# and migrating a new SQLite store's tables ("Creating initial MLflow database tables...",
# alembic's "Running upgrade ..."). Nothing else logs there, so they stay at WARNING once set.
_STORE_HOUSEKEEPING = ("mlflow.store.db", "alembic")
# Where MLflow announces the experiment it creates on first use. The same logger later says
# where to view a run on a tracking server, which is worth reading, so only setup() quiets it.
_EXPERIMENT_NOTICE = "mlflow.tracking.fluent"


def _raise_to_warning(names: tuple[str, ...]) -> list[logging.Logger]:
    """Show only warnings and errors from these loggers; returns those changed (a level that a
    user set on one is left as it is)."""
    changed = [logging.getLogger(name) for name in names if logging.getLogger(name).level == logging.NOTSET]
    for logger in changed:
        logger.setLevel(logging.WARNING)
    return changed


@contextlib.contextmanager
def _quieted(names: tuple[str, ...]) -> Iterator[None]:
    """Within the block, only warnings and errors from these loggers (see `_raise_to_warning`)."""
    quieted = _raise_to_warning(names)
    try:
        yield
    finally:
        for logger in quieted:
            logger.setLevel(logging.NOTSET)


def setup(uri: str | None = None, experiment: str | None = None) -> str:
    """Point MLflow at the store (see `resolve_uri`) and the experiment, without MLflow's
    first-run INFO notices (a new store's tables, a new experiment); warnings still show."""
    resolved = resolve_uri(uri)
    _raise_to_warning(_STORE_HOUSEKEEPING)
    mlflow.set_tracking_uri(resolved)
    if experiment:
        with _quieted((_EXPERIMENT_NOTICE,)):
            mlflow.set_experiment(experiment)
    return resolved


@contextlib.contextmanager
def run(
    name: str | None = None, tags: dict[str, str] | None = None, nested: bool = False, run_id: str | None = None
) -> Iterator[Any]:
    """A new run, or with ``run_id`` a finished one reopened to log more to it (a distillation's
    agreement figures, in the run that trained its student)."""
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else name, tags=tags, nested=nested) as active:
        yield active


def log_params(params: dict[str, Any]) -> None:
    clean = {k: ("null" if v is None else str(v))[:6000] for k, v in params.items()}
    mlflow.log_params(clean)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    finite = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating)) and np.isfinite(v)}
    mlflow.log_metrics(finite, step=step)


def set_tags(tags: dict[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_training_data(data: Any, source: str, name: str, digest: str, context: str = "training") -> None:
    """Log the coded excerpts as an MLflow dataset (with its digest) and tag our own digest.

    ``data`` is the corpus as training reads it, a ``datasets.Dataset`` (`CodedData.dataset`),
    recorded as a table with the codes by name; or such a table (``pandas.DataFrame``) itself."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.pandas_dataset import from_pandas

    frame = data if isinstance(data, pd.DataFrame) else _codes_by_name(data)
    columns = [c for c in ("id", "group", "speaker", "text", "label") if c in frame.columns]
    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice and warns, on every run, that a path
        # "can be interpreted in multiple ways" between the two identical candidates
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
        resolved = resolve_dataset_source(str(source))
    dataset = from_pandas(frame[columns], source=resolved, name=name, targets="label")
    mlflow.log_input(dataset, context=context)
    set_tags({f"data_digest_{context}": digest})


def _codes_by_name(corpus: Any) -> pd.DataFrame:
    """A ``datasets.Dataset`` as a table whose ``label`` holds its ``ClassLabel``'s names, not
    their numbers: what a person reading the run expects (duck-typed: importing ``datasets`` here
    would slow every command that only lists runs)."""
    columns = {c: list(corpus[c]) for c in corpus.column_names}
    label = corpus.features.get("label")
    if "label" in columns and hasattr(label, "int2str"):
        columns["label"] = label.int2str(columns["label"])
    return pd.DataFrame(columns)


def log_artifacts(directory: str | Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifacts(str(directory), artifact_path=artifact_path)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_prompt(text: str, prompt_hash: str, version: object, prefix: str = "llm") -> None:
    """A language model's rendered prompt (its instructions: the codebook as it reads it) as the
    artifact ``prompt/<prefix>-<hash>.txt``, with its hash and version as the params
    ``<prefix>.prompt_hash`` and ``<prefix>.prompt_version``: a run's labels trace back to the
    exact words the model was given. ``prefix``: ``llm`` for the model trained, ``teacher`` in a
    distillation run."""
    mlflow.log_text(text, f"prompt/{prefix}-{prompt_hash[:12]}.txt")
    log_params({f"{prefix}.prompt_hash": prompt_hash, f"{prefix}.prompt_version": version})


def _pip_requirements() -> list[str]:
    reqs = []
    for name in _REQUIREMENTS:
        try:
            reqs.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


# MLflow warns, when this class is defined, that predict lacks type hints for its data validation;
# the model is logged with an explicit signature instead, so users should not see the advice on
# every command. MLflow resets the warning filters around that check, so the one message is
# dropped where warnings are shown, for the class definition only.
_show_warning = warnings.showwarning


def _without_type_hint_advice(message, category, filename, lineno, file=None, line=None):
    if "Add type hints to the `predict` method" not in str(message):
        _show_warning(message, category, filename, lineno, file, line)


warnings.showwarning = _without_type_hint_advice
try:

    class SupportlensModel(PythonModel):
        """Pyfunc wrapper: DataFrame with a ``text`` column -> label, one probability per code,
        confidence and needs_review. The model folder and supportlens' code travel inside it."""

        def load_context(self, context) -> None:
            self.model = load_classifier(context.artifacts["model_dir"])
            self.threshold = float(self.model.meta_.get("review_threshold", 0.0))

        def predict(self, context, model_input, params=None):
            if isinstance(model_input, pd.Series):
                texts = model_input.astype(str).tolist()
            elif isinstance(model_input, pd.DataFrame):
                if "text" not in model_input.columns:
                    raise ValueError(f"input needs a 'text' column; got columns {list(model_input.columns)}")
                texts = model_input["text"].astype(str).tolist()
            else:
                texts = [str(t) for t in model_input]
            from supportlens.calibration import threshold_measured

            return predictions_frame(self.model, texts, self.threshold, threshold_measured(self.model))
finally:
    warnings.showwarning = _show_warning


def predictions_frame(model, texts: list[str], threshold: float, measured: bool = True) -> pd.DataFrame:
    """What the pyfunc model returns for `texts`: the score columns of batch prediction
    (`supportlens.schema.score_frame`), so a served model and ``supportlens predict`` agree."""
    labels = [str(x) for x in model.classes_]
    proba = model.predict_proba(texts) if texts else np.zeros((0, len(labels)))
    return score_frame(proba, labels, threshold, measured)


def log_model(model_dir: str | Path, example_texts: list[str]) -> Any:
    """Log a saved model folder as an MLflow pyfunc model with signature and input example."""
    from mlflow.models import infer_signature

    model = load_classifier(model_dir)
    example = pd.DataFrame({"text": example_texts[:3]})
    output = predictions_frame(model, example["text"].tolist(), float(model.meta_.get("review_threshold", 0.0)))
    signature = infer_signature(example, output)
    with _quieted(("mlflow.pyfunc",)):  # its INFO "Validating input example ..." on every run
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(_PACKAGE_DIR / "pyfunc_entry.py"),  # from code: no pickled object to trust
            artifacts={"model_dir": str(model_dir)},
            code_paths=[str(_PACKAGE_DIR)],
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
        )


def serve_from_code() -> None:
    """Tell MLflow which object a model logged from code serves. ``pyfunc_entry.py``, the file
    MLflow executes when it logs or loads a supportlens model, calls this: only this module
    imports mlflow."""
    mlflow.models.set_model(SupportlensModel())


def open_ui(uri: str | None = None, port: int = 5000) -> int:
    """Run the MLflow UI on the tracking store (127.0.0.1:``port``) until it stops; its exit status."""
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            resolve_uri(uri),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    )


def register(model_uri: str, name: str, alias: str | None) -> Any:
    """Register a logged model and point an alias (e.g. ``champion``) at the new version."""
    version = mlflow.register_model(model_uri, name)
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version.version)
    return version


def active_run_id() -> str | None:
    current = mlflow.active_run()
    return current.info.run_id if current else None


def _find_model_dir(root: Path) -> Path:
    """The outermost supportlens model folder under ``root``. An ensemble holds its members'
    folders, each with its own metadata file, so the shallowest one is the model, never a member."""
    if (root / META_FILE).is_file():
        return root
    found = sorted(root.rglob(META_FILE), key=lambda p: (len(p.parts), str(p)))
    if found:
        return found[0].parent
    raise ModelLoadError(f"{root}: no supportlens model inside (looked for {META_FILE})")


def fetch_model_dir(uri: str, tracking_uri: str | None = None) -> Path:
    """Resolve ``runs:/…``, ``models:/…`` or a local folder to a local supportlens model folder."""
    local = Path(uri).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelLoadError(f"{uri}: a model is a folder, not a file")
        return _find_model_dir(local)
    if not uri.startswith(("runs:/", "models:/", "mlflow-artifacts:/", "s3://", "gs://", "dbfs:/")):
        raise ModelLoadError(
            f"model {uri!r} not found: give a local model folder, runs:/<run_id>/model or models:/<name>@<alias>"
        )
    store = resolve_uri(tracking_uri)
    if store.startswith("sqlite:///") and uri.startswith(("runs:/", "models:/")):
        db = Path(store[len("sqlite:///") :])
        if not db.is_file():  # never leave an empty store behind where none was meant to be
            raise ModelLoadError(
                f"cannot fetch model {uri!r}: there is no MLflow store at {db.resolve()} "
                "(run from the project folder that holds it, or pass `tracking_uri`)"
            )
    setup(tracking_uri)
    key = _immutable_key(uri, tracking_uri)
    if key is None:  # e.g. a bucket path: its contents may change, so fetch afresh every time
        scratch = Path(tempfile.mkdtemp(prefix="supportlens-model-"))
        atexit.register(shutil.rmtree, scratch, True)
        return _find_model_dir(_download(uri, scratch, tracking_uri))
    folder = cache_root() / "models" / hashlib.sha256(f"{resolve_uri(tracking_uri)}|{key}".encode()).hexdigest()[:20]
    if (folder / DOWNLOAD_MARK).is_file():
        return _find_model_dir(folder / "model")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
    try:
        _download(uri, staging / "model", tracking_uri)
        (staging / DOWNLOAD_MARK).write_text(f"{key}\n", encoding="utf-8")
        try:
            staging.rename(folder)  # atomic: a folder is either complete or absent
        except OSError:  # another process finished the same download first
            if not (folder / DOWNLOAD_MARK).is_file():
                shutil.rmtree(folder, ignore_errors=True)
                staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _find_model_dir(folder / "model")


DOWNLOAD_MARK = "complete.txt"


def _immutable_key(uri: str, tracking_uri: str | None = None) -> str | None:
    """A name for what ``uri`` points at that never points elsewhere, or None.

    A run's artifacts and a numbered model version do not change, so they are downloaded once
    and reused (with the ONNX graph exported next to them); an alias is resolved to its version
    first, so moving ``@champion`` to a new version fetches the new one. A version is named by the
    run it came from and when it was made, since two projects' stores (``sqlite:///mlflow.db`` in
    two folders) can both have a ``models:/supportlens/1``; run ids are unique."""
    if uri.startswith("runs:/"):
        return uri.rstrip("/")
    if not uri.startswith("models:/"):
        return None
    rest = uri[len("models:/") :].rstrip("/")
    name, _, version = rest.rpartition("/")
    if "@" not in rest and not (name and version.isdigit()):
        return None  # e.g. a stage name, which moves: fetch afresh
    client = mlflow.MlflowClient()
    try:
        if "@" in rest:
            found = client.get_model_version_by_alias(*rest.split("@", 1))
        else:
            found = client.get_model_version(name, version)
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for a missing model
        raise ModelLoadError(f"cannot fetch model {uri!r} from {resolve_uri(tracking_uri)}: {exc}") from exc
    return f"models:/{found.name}/{found.version}|{found.run_id or found.source}|{found.creation_timestamp}"


def _download(uri: str, target: Path, tracking_uri: str | None) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    except Exception as exc:  # MLflow raises several types for a missing run/model
        shutil.rmtree(target, ignore_errors=True)
        raise ModelLoadError(f"cannot fetch model {uri!r} from {resolve_uri(tracking_uri)}: {exc}") from exc


def list_runs(experiment: str | None = None, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per finished or running run of supportlens' experiments."""
    setup(tracking_uri)
    client = mlflow.MlflowClient()
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise ValueError(f"no experiment {experiment!r}; known: {', '.join(names) or '(none)'}")
        ids = [exp.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    runs = mlflow.search_runs(experiment_ids=ids, output_format="pandas")
    return runs if isinstance(runs, pd.DataFrame) else pd.DataFrame()


RUN_KINDS = ("train", "evaluate")


def runs_table(
    experiment: str | None = None,
    sort: str = "macro_f1",
    tracking_uri: str | None = None,
    labels: list[str] | None = None,
) -> pd.DataFrame:
    """A compact comparison table: kind, name, model, what was scored and n, macro-F1, kappa,
    per-code F1, time. Training runs (scored on their own held-out test interviews) come first,
    then evaluation runs (scored on a named file); ``sort`` orders the runs within each kind:
    figures from different excerpts are not one ranking."""
    runs = list_runs(experiment, tracking_uri)
    if runs.empty:
        return pd.DataFrame(
            columns=["kind", "run_name", "model_kind", "scored_on", "n", "data_digest", "macro_f1", "kappa"]
        )

    def col(name: str) -> pd.Series:
        return runs[name] if name in runs.columns else pd.Series([None] * len(runs), index=runs.index)

    # runs logged before the kind tag: an evaluation run names the model it evaluated
    evaluated = col("tags.evaluation_of").notna()
    kind = col(f"tags.{KIND_TAG}").where(
        col(f"tags.{KIND_TAG}").notna(), evaluated.map({True: "evaluate", False: "train"})
    )
    scored_on = col("tags.evaluated_file").where(
        col("tags.evaluated_file").notna(), col("tags.mlflow.runName").astype(str).str.removeprefix("evaluate ")
    )
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],  # whole: it is what runs:/<run_id>/model needs
            "kind": kind,
            "run_name": col("tags.mlflow.runName"),
            "model_kind": col("tags.model_kind"),
            "scored_on": scored_on.where(kind == "evaluate", "test split"),
            "n": pd.to_numeric(col("metrics.n"), errors="coerce").astype("Int64"),
            "data_digest": col("tags.data_digest"),
            "macro_f1": col("metrics.macro_f1"),
            "kappa": col("metrics.kappa"),
            "alpha": col("metrics.alpha"),
            "cv_macro_f1": col("metrics.cv_macro_f1_mean"),
        }
    )
    f1_cols = sorted(c for c in runs.columns if c.startswith("metrics.f1_"))
    if labels:
        f1_cols = [f"metrics.f1_{lab}" for lab in labels if f"metrics.f1_{lab}" in runs.columns]
    for c in f1_cols:
        table[c.removeprefix("metrics.")] = runs[c]
    table["train_seconds"] = col("metrics.train_seconds")
    table["started"] = pd.to_datetime(col("start_time")).dt.strftime("%Y-%m-%d %H:%M")
    table = table.dropna(subset=["macro_f1"], how="all") if "macro_f1" in table else table
    if sort and sort not in table.columns:
        raise ValueError(f"cannot sort by {sort!r}; columns: {', '.join(table.columns)}")
    order = {k: i for i, k in enumerate(RUN_KINDS)}
    table = table.assign(_kind=table["kind"].map(order).fillna(len(order)))
    if sort and sort != "kind":
        ascending = sort in ("run_name", "model_kind", "scored_on", "train_seconds")
        table = table.sort_values(sort, ascending=ascending, na_position="last", kind="stable")
    table = table.sort_values("_kind", kind="stable").drop(columns="_kind")
    return table.reset_index(drop=True)
