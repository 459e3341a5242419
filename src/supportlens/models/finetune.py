"""Fine-tune a transformer encoder with a classification head.

A short, explicit training loop rather than ``transformers.Trainer``: on a 2-core CPU every
choice shows up in minutes (length-grouped batches, frozen embeddings, early stopping on grouped
validation macro-F1), and the loop stays deterministic for a given seed.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.metrics import f1_score

from supportlens.models import distil
from supportlens.models.base import ModelLoadError, TextClassifier
from supportlens.models.batching import length_grouped_order, padded_batch, warmup_then_linear_decay
from supportlens.models.encoders import batched_apply, resolve_pretrained, set_threads
from supportlens.models.onnx_runtime import OnnxEngine, OnnxUnavailable

if TYPE_CHECKING:  # transformers itself is imported where it is used
    from transformers import PreTrainedModel

log = logging.getLogger("supportlens")

RUNTIMES = ("auto", "onnx", "torch")
RECHECK_MARGIN = 0.2  # fast mode: re-score in fp32 when the top two probabilities are this close
STUDENT_DIR = "student"  # in a model folder: the distilled --fast student, if one was trained
STUDENT_REPORT = "report.json"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_LAYER = re.compile(r"\.layer\.(\d+)\.")  # a transformer block's parameters: ...layer.<index>....


class FineTuneClassifier(TextClassifier):
    kind = "finetune"

    # learned state that may be absent (None: not made yet, or dropped with new weights)
    model_dir_: Path | None  # the folder these weights were loaded from, where their ONNX graph is cached
    runtime_: str | None  # the engine use_runtime chose: "onnx" or "torch"
    fast_model_: torch.nn.Module | None  # the torch int8 copy for fast mode
    student_report_: distil.StudentReport | None  # the distilled student, if there is one
    student_dir_: Path | None  # the saved student's folder (a loaded model reads it on first use)
    student_onnx_: OnnxEngine | None  # the student's int8 ONNX Runtime engine, once opened

    def __init__(
        self,
        labels: list[str],
        pretrained: str = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 256,
        epochs: int = 4,
        batch_size: int = 16,
        learning_rate: float = 8e-5,
        head_learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        patience: int = 2,
        class_weighted: bool = True,
        label_smoothing: float = 0.1,
        freeze_embeddings: bool = True,
        freeze_layers: int = 0,
        grad_clip: float = 1.0,
        rdrop_alpha: float = 0.0,
        layer_decay: float = 1.0,
        threads: int = 0,
        allow_download: bool = False,
        seed: int = 13,
        device: str = "cpu",
        predict_batch_size: int = 16,
        runtime: str = "auto",
        student_layers: int = 0,
        student_epochs: int = 3,
        student_max_changed: float = 0.005,
    ):
        self.labels = labels
        self.pretrained = pretrained
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.patience = patience
        self.class_weighted = class_weighted
        self.label_smoothing = label_smoothing
        self.freeze_embeddings = freeze_embeddings
        self.freeze_layers = freeze_layers
        self.grad_clip = grad_clip
        self.rdrop_alpha = rdrop_alpha  # >0: R-drop consistency between two dropout passes
        self.layer_decay = layer_decay  # <1: lower encoder layers learn more slowly
        self.threads = threads
        self.allow_download = allow_download
        self.seed = seed
        self.device = device
        self.predict_batch_size = predict_batch_size
        self.runtime = runtime
        self.student_layers = student_layers  # >0: also distil a student with this many layers for --fast
        self.student_epochs = student_epochs
        self.student_max_changed = student_max_changed  # the gate keeps changed labels under this share

    # -- building ---------------------------------------------------------------------------
    def _build(self):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = resolve_pretrained(self.pretrained, self.allow_download)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialised head" is expected here
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=len(self.labels),
                id2label=dict(enumerate(self.labels)),
                label2id={label: i for i, label in enumerate(self.labels)},
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load {self.pretrained!r} from {path}: {exc}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
        return tokenizer, model

    def _freeze(self, model: PreTrainedModel) -> None:
        base = getattr(model, model.base_model_prefix, None)
        if base is None:
            return
        if self.freeze_embeddings and hasattr(base, "embeddings"):
            for p in base.embeddings.parameters():
                p.requires_grad = False
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if self.freeze_layers and layers is not None:
            for layer in list(layers)[: self.freeze_layers]:
                for p in layer.parameters():
                    p.requires_grad = False

    def _learning_rate(self, name: str, base_prefix: str, n_layers: int) -> float:
        """The head's rate for the head; for the encoder, learning_rate times layer_decay to the power
        of the layer's distance below the top one (the embeddings sit one below the first layer)."""
        if not name.startswith(base_prefix):
            return self.head_learning_rate
        if self.layer_decay == 1.0:
            return self.learning_rate
        found = _LAYER.search(name)
        if found:
            depth = n_layers - 1 - int(found.group(1))  # the top layer learns at learning_rate
        elif ".embeddings." in name:
            depth = n_layers
        else:  # pooler and other parts above the layers
            depth = 0
        return self.learning_rate * self.layer_decay**depth

    def _optimizer(self, model: PreTrainedModel) -> torch.optim.Optimizer:
        base_prefix = model.base_model_prefix + "."
        # counted from the names, so BERT's encoder.layer.N and DistilBERT's transformer.layer.N both work
        n_layers = 1 + max(
            (int(m.group(1)) for name, _ in model.named_parameters() if (m := _LAYER.search(name))), default=-1
        )
        groups: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            no_decay = p.ndim < 2  # biases and LayerNorm weights
            groups.setdefault((self._learning_rate(name, base_prefix, n_layers), no_decay), []).append(p)
        params = [
            {"params": ps, "lr": lr, "weight_decay": 0.0 if no_decay else self.weight_decay}
            for (lr, no_decay), ps in groups.items()
        ]
        return torch.optim.AdamW(params)

    def _batch_loss(
        self,
        model: torch.nn.Module,
        batch: dict,
        target: torch.Tensor,
        loss_fn,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy; with R-drop, the mean over two dropout passes plus their symmetric KL.
        ``sample_weight`` (mean 1 over the training data, as `fit` passes it) weighs each
        passage's terms, both."""
        logits = model(**batch).logits
        if not self.rdrop_alpha:
            return _cross_entropy(loss_fn, logits, target, sample_weight)
        other = model(**batch).logits  # another dropout mask
        p, q = torch.log_softmax(logits, -1), torch.log_softmax(other, -1)
        if sample_weight is None:
            kl = 0.5 * (
                torch.nn.functional.kl_div(p, q, log_target=True, reduction="batchmean")
                + torch.nn.functional.kl_div(q, p, log_target=True, reduction="batchmean")
            )
        else:  # per passage, weighted; over the batch size like "batchmean"
            each = torch.nn.functional.kl_div(p, q, log_target=True, reduction="none").sum(-1)
            each = each + torch.nn.functional.kl_div(q, p, log_target=True, reduction="none").sum(-1)
            kl = 0.5 * (sample_weight * each).sum() / len(target)
        ce = _cross_entropy(loss_fn, logits, target, sample_weight) + _cross_entropy(
            loss_fn, other, target, sample_weight
        )
        return 0.5 * ce + self.rdrop_alpha * kl

    # -- training ---------------------------------------------------------------------------
    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        set_threads(self.threads)
        seed_everything(self.seed)
        self._new_weights()
        self.tokenizer_, self.model_ = self._build()
        self._train(X, y, X_val, y_val, sample_weight, self.epochs)

    def _continue_fit(self, X, y, sample_weight, X_val, y_val, epochs) -> None:
        """``epochs`` more epochs of the usual loop (fresh optimiser and warm-up), from the current
        weights; a distilled student is distilled again from the new weights."""
        set_threads(self.threads)
        seed_everything(self.seed)
        self._new_weights()
        self._train(X, y, X_val, y_val, sample_weight, epochs, continued=True)

    def _new_weights(self) -> None:
        """Forget what belonged to the old weights: neither a cached ONNX graph (``model_dir_``),
        an engine chosen for them, an int8 copy nor a student applies to new ones."""
        self.model_dir_, self.runtime_, self.fast_model_ = None, None, None  # runtime_: choose again
        self.fast_ = False  # validation during training scores in fp32; make_fast again after it
        self._drop_student()

    def _train(self, X, y, X_val, y_val, sample_weight, epochs: int, continued: bool = False) -> None:
        """The training loop over ``self.model_``: ``epochs`` epochs, keeping the best on X_val."""
        model = self.model_.to(self.device)
        self._freeze(model)
        index = {label: i for i, label in enumerate(self.labels)}
        targets = torch.tensor([index[v] for v in y])
        row_weights = None if sample_weight is None else torch.tensor(sample_weight, dtype=torch.float32)
        weights = None
        if self.class_weighted:  # "balanced" over the weighted counts, as scikit-learn computes it
            counts = np.bincount(targets.numpy(), weights=sample_weight, minlength=len(self.labels)).astype(float)
            present = counts > 0
            w = np.zeros(len(self.labels))
            w[present] = counts[present].sum() / (present.sum() * counts[present])
            weights = torch.tensor(w, dtype=torch.float32, device=self.device)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=self.label_smoothing)

        encoded = self.tokenizer_(list(X), truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        lengths = np.array([len(s) for s in ids])
        rng = np.random.default_rng(self.seed)
        steps_per_epoch = math.ceil(len(X) / self.batch_size)
        total = steps_per_epoch * epochs
        warmup = int(self.warmup_ratio * total)
        optimizer = self._optimizer(model)
        schedule = warmup_then_linear_decay(optimizer, warmup, total)

        best_f1, best_state, stale = -1.0, None, 0
        first = self._next_epoch() if continued else 1  # continued records follow the earlier ones
        self.best_epoch_ = first + epochs - 1
        for epoch in range(first, first + epochs):
            model.train()
            started, running = time.perf_counter(), 0.0
            for batch_idx in length_grouped_order(lengths, self.batch_size, rng):
                batch = padded_batch(self.tokenizer_, encoded, batch_idx)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                batch_weights = None if row_weights is None else row_weights[batch_idx].to(self.device)
                loss = self._batch_loss(model, batch, targets[batch_idx].to(self.device), loss_fn, batch_weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                optimizer.step()
                schedule.step()
                running += float(loss.detach()) * len(batch_idx)
            record = {"epoch": epoch, "train_loss": running / len(X), "epoch_seconds": time.perf_counter() - started}
            if continued:
                record["continued"] = 1.0
            if X_val is not None and len(X_val):
                pred = self.classes_[self._logits(X_val).argmax(1)]
                val_f1 = f1_score(y_val, pred, average="macro", labels=sorted(set(y_val)), zero_division=0)
                record["val_macro_f1"] = float(val_f1)
                if val_f1 > best_f1 + 1e-6:
                    best_f1, stale, self.best_epoch_ = val_f1, 0, epoch
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
            self.history_.append(record)
            if X_val is not None and stale >= self.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)  # keep the best checkpoint, not the last
        model.eval()
        if self.student_layers:
            self.fit_student(X, X_val)

    # -- the --fast student -----------------------------------------------------------------
    def fit_student(self, X, X_val=None, per_text: float = 2.5) -> FineTuneClassifier:
        """Distil a student with ``student_layers`` layers from this (fitted) model.

        ``X``: texts to distil on (no labels needed: the student learns this model's logits).
        ``X_val``: passages the student does not see, on which its gate margin is chosen
        (models/distil.py); without them the gate is :data:`distil.DEFAULT_GATE`.
        ``per_text``: variations (sentences, sentence pairs) added per text of ``X``."""
        started = time.perf_counter()
        self.use_runtime()
        texts = distil.distillation_texts(list(X), self.seed, per_text)
        teacher_logits = self._score(texts, False)
        seed_everything(self.seed)
        student, keep = distil.student_of(self.model_, self.student_layers or 3)
        history = distil.distil(
            student.to("cpu"),
            self.tokenizer_,
            texts,
            teacher_logits,
            self.max_length,
            epochs=self.student_epochs,
            seed=self.seed,
        )
        report = distil.StudentReport(
            layers=keep,
            texts=len(texts),
            seconds=0.0,
            gate=distil.DEFAULT_GATE,
            target_changed=self.student_max_changed,
            history=history,
        )
        self._drop_student()
        self.student_, self.student_report_ = student, report
        if X_val is not None and len(X_val):
            self.gate_student(X_val)
        report.seconds = time.perf_counter() - started
        return self

    def gate_student(self, X_val) -> distil.StudentReport:
        """Choose the student's gate margin on passages it never saw; returns the updated report.

        The passages are extended by their sentences and sentence pairs (more of them, and of the
        lengths predict meets) and the student scores them in int8, as ``--fast`` runs it; the
        gate is the smallest margin whose share of labels changed against this model stays
        within ``student_max_changed``."""
        if not self.has_student():
            raise ValueError("this model has no student: fit_student first")
        self.use_runtime()
        self._load_student()
        report = self.student_report_
        assert report is not None  # has_student()
        X_val = distil.distillation_texts(list(X_val), self.seed + 1)
        ours = self._student_torch_logits(_quantized(self.student_), X_val)
        theirs = self._score(X_val, False)
        report.target_changed = self.student_max_changed
        report.gates = distil.gate_table(ours, theirs)
        chosen = distil.chosen_row(report.gates, self.student_max_changed)
        report.gate, report.val_rescored, report.val_changed = chosen["gate"], chosen["rescored"], chosen["changed"]
        report.val_passages = len(X_val)
        report.val_agreement = float((ours.argmax(1) == theirs.argmax(1)).mean())
        return report

    def _drop_student(self) -> None:
        self.student_, self.student_report_, self.student_dir_ = None, None, None
        self.student_onnx_, self.fast_student_ = None, None

    def has_student(self) -> bool:
        return getattr(self, "student_report_", None) is not None

    def _student_torch_logits(self, student, X: list[str]) -> np.ndarray:
        return batched_apply(
            student,
            self.tokenizer_,
            X,
            self.predict_batch_size,
            self.max_length,
            lambda m, b: m(**b).logits,
            device="cpu",
        )

    def _load_student(self) -> None:
        """The student's weights, from the model folder unless already in memory."""
        if getattr(self, "student_", None) is None:
            from transformers import AutoModelForSequenceClassification

            assert self.student_dir_ is not None  # a student not in memory was loaded from a folder
            self.student_ = AutoModelForSequenceClassification.from_pretrained(self.student_dir_ / "hf").eval()

    def _prepare_student(self) -> None:
        """Load the saved student (if not in memory) and open its int8 engine."""
        self._load_student()
        if self.student_onnx_ is not None or self.fast_student_ is not None:
            return
        if getattr(self, "onnx_", None) is not None and self.student_dir_ is not None:
            try:
                engine = OnnxEngine.for_model(
                    self.student_, self.tokenizer_, self.student_dir_, self.max_length, torch.get_num_threads()
                )
                engine.enable_int8()
                self.student_onnx_ = engine
                return
            except OnnxUnavailable as exc:
                log.warning("fast mode scores its student with torch int8, not ONNX Runtime: %s", exc)
        self.fast_student_ = _quantized(self.student_)

    def _student_scores(self, X: list[str]) -> np.ndarray:
        if self.student_onnx_ is not None:
            return self.student_onnx_.logits(self.tokenizer_, X, self.predict_batch_size, self.max_length, int8=True)
        return self._student_torch_logits(self.fast_student_, X)

    # -- inference --------------------------------------------------------------------------
    def _logits(self, X: list[str]) -> np.ndarray:
        self.use_runtime()
        quick = getattr(self, "fast_", False) and self.device == "cpu"
        if quick and len(X) and self.has_student():
            return self._cascade_logits(X)
        return self._fast_or_full(X, quick)

    def _fast_or_full(self, X: list[str], quick: bool) -> np.ndarray:
        """fp32 logits, or (``quick``) int8 logits with near-ties re-scored in fp32."""
        logits = self._score(X, quick).astype(np.float64)
        if quick and len(X):
            close = self._near_ties(logits)
            self.last_rechecked_ = len(close)
            if len(close):
                logits[close] = self._score([X[i] for i in close], False)
        return logits

    def _cascade_logits(self, X: list[str]) -> np.ndarray:
        """The student (int8) scores every passage; the teacher's fast path those it is unsure of."""
        self._prepare_student()
        logits = self._student_scores(X).astype(np.float64)
        assert self.student_report_ is not None  # the cascade runs only for a model with a student
        unsure = np.flatnonzero(distil.margins(logits) < self.student_report_.gate)
        self.last_student_rescored_ = len(unsure)
        if len(unsure):
            logits[unsure] = self._fast_or_full([X[i] for i in unsure], True)
        return logits

    def _score(self, X: list[str], int8: bool) -> np.ndarray:
        """Raw logits from the chosen engine, at full precision or (``int8``) quantised."""
        if self.onnx_ is not None:
            return self.onnx_.logits(self.tokenizer_, X, self.predict_batch_size, self.max_length, int8=int8)
        model = self.fast_model_ if int8 else self.model_
        assert model is not None  # int8 in torch: _prepare_fast made the copy
        return batched_apply(
            model,
            self.tokenizer_,
            X,
            self.predict_batch_size,
            self.max_length,
            lambda m, b: m(**b).logits,
            device=self.device,
        )

    def _near_ties(self, logits: np.ndarray) -> np.ndarray:
        """Rows whose top two calibrated probabilities lie within ``recheck_margin_``."""
        return np.flatnonzero(distil.margins(logits / getattr(self, "temperature_", 1.0)) < self.recheck_margin_)

    def use_runtime(self, runtime: str | None = None) -> str:
        """Pick the inference engine now and return it: ``"onnx"`` or ``"torch"``.

        ``runtime`` (else the ``runtime`` parameter, else ``$SUPPORTLENS_RUNTIME``) is ``auto``,
        ``onnx`` or ``torch``. ``auto`` uses ONNX Runtime for a model loaded from a folder and
        scored on CPU, exporting its graph on first use (models/onnx_runtime.py), and torch when
        that is impossible (with a one-line warning); ``onnx`` raises instead of falling back.
        A model fitted in this process, or one on CUDA, always runs in torch."""
        if runtime is not None:
            if runtime not in RUNTIMES:
                raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
            self.runtime = runtime
            self.runtime_ = None
        if getattr(self, "runtime_", None) is None:
            self.runtime_, self.onnx_ = self._open_runtime()
            if getattr(self, "fast_", False):
                self._prepare_fast()
        assert self.runtime_ is not None  # just chosen, or chosen before
        return self.runtime_

    def _wanted_runtime(self) -> str:
        wanted = self.runtime
        source = "runtime"
        if wanted == "auto" and os.environ.get("SUPPORTLENS_RUNTIME"):
            wanted, source = os.environ["SUPPORTLENS_RUNTIME"].strip().lower(), "SUPPORTLENS_RUNTIME"
        if wanted not in RUNTIMES:
            raise ValueError(f"{source} must be one of {', '.join(RUNTIMES)}; got {wanted!r}")
        return wanted

    def _open_runtime(self) -> tuple[str, OnnxEngine | None]:
        wanted = self._wanted_runtime()
        model_dir = getattr(self, "model_dir_", None)
        if wanted == "torch" or self.device != "cpu" or model_dir is None:
            return "torch", None  # no folder: fitted in this process, its weights not saved as-is
        try:
            engine = OnnxEngine.for_model(
                self.model_, self.tokenizer_, model_dir, self.max_length, torch.get_num_threads()
            )
        except OnnxUnavailable as exc:
            if wanted == "onnx":
                raise
            log.warning("scoring with torch, not ONNX Runtime: %s", exc)
            return "torch", None
        return "onnx", engine

    def to_device(self, device: str) -> FineTuneClassifier:
        if device != self.device:
            self.runtime_ = None  # CUDA keeps torch; back on CPU, choose again
        self.device = device
        self.model_.to(device)
        return self

    def make_fast(self, recheck_margin: float = RECHECK_MARGIN) -> FineTuneClassifier:
        """Faster CPU inference: an int8 graph (ONNX Runtime's dynamic quantisation, or torch's
        when ONNX Runtime is not used) scores every passage, and passages whose top two calibrated
        probabilities lie within ``recheck_margin`` are scored again in fp32. int8 alone changed
        0.5-4% of labels in our measurements, nearly all near the decision boundary; the re-check
        keeps changes under 1% (experiments/bench_predict.py). No effect on CUDA."""
        if self.device != "cpu":
            return self
        self.fast_, self.recheck_margin_ = True, recheck_margin
        self.use_runtime()
        self._prepare_fast()
        return self

    def _prepare_fast(self) -> None:
        if self.onnx_ is not None:
            try:
                self.onnx_.enable_int8()
                return
            except OnnxUnavailable as exc:
                log.warning("fast mode uses torch int8, not ONNX Runtime: %s", exc)
                self.runtime_, self.onnx_ = "torch", None
        if getattr(self, "fast_model_", None) is None:
            self.fast_model_ = _quantized(self.model_)

    def _save(self, path: Path) -> None:
        self.model_.save_pretrained(path / "hf")
        self.tokenizer_.save_pretrained(path / "hf")
        if self.has_student():
            assert self.student_report_ is not None  # has_student()
            self._load_student()  # a loaded model reads its student only when needed
            self.student_.save_pretrained(path / STUDENT_DIR / "hf")
            self.tokenizer_.save_pretrained(path / STUDENT_DIR / "hf")
            (path / STUDENT_DIR / STUDENT_REPORT).write_text(
                json.dumps(self.student_report_.to_dict(), indent=2), encoding="utf-8"
            )

    def _load(self, path: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer_ = AutoTokenizer.from_pretrained(path / "hf")
        self.model_ = AutoModelForSequenceClassification.from_pretrained(path / "hf").to(self.device)
        self.model_.eval()
        self.model_dir_ = path  # where the ONNX graph of these weights is cached
        self.runtime_ = None
        self._drop_student()
        report = path / STUDENT_DIR / STUDENT_REPORT
        if report.is_file():  # the student itself loads on first --fast use
            self.student_report_ = distil.StudentReport(**json.loads(report.read_text(encoding="utf-8")))
            self.student_dir_ = path / STUDENT_DIR


def _cross_entropy(loss_fn, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``loss_fn`` (a CrossEntropyLoss), each passage's term times ``weight``. The denominator stays
    the unweighted one (the sum of the class weights, as torch's mean has it), so uniform weights of
    1 give exactly ``loss_fn`` and a batch of heavier passages moves the model more."""
    if weight is None:
        return loss_fn(logits, target)
    each = torch.nn.functional.cross_entropy(
        logits, target, weight=loss_fn.weight, label_smoothing=loss_fn.label_smoothing, reduction="none"
    )
    denominator = loss_fn.weight[target].sum() if loss_fn.weight is not None else len(target)
    return (weight * each).sum() / denominator


def _quantized(model):
    """torch's dynamic int8 copy of ``model`` (every Linear, one scale per output channel)."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that eager quantisation moves to torchao
        return quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear: per_channel_dynamic_qconfig})
