"""Fine-tune a transformer encoder with a classification head.

A short, explicit training loop rather than ``transformers.Trainer``: on a 2-core CPU every
choice shows up in minutes (length-grouped batches, frozen embeddings, early stopping on grouped
validation macro-F1), and the loop stays deterministic for a given seed.
"""

from __future__ import annotations

import copy
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from .base import ModelLoadError, TextClassifier
from .encoders import batched_apply, resolve_pretrained, set_threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort within mega-chunks, shuffle the batches.

    Similar lengths mean little padding (CPU time is spent on real tokens) while the order still
    changes every epoch.
    """
    perm = rng.permutation(len(lengths))
    mega = batch_size * 32
    batches = []
    for start in range(0, len(perm), mega):
        chunk = perm[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


class FineTuneClassifier(TextClassifier):
    kind = "finetune"

    def __init__(self, labels: list[str], pretrained: str = "sentence-transformers/all-MiniLM-L6-v2",
                 max_length: int = 256, epochs: int = 4, batch_size: int = 16,
                 learning_rate: float = 8e-5, head_learning_rate: float = 1e-3,
                 weight_decay: float = 0.01, warmup_ratio: float = 0.1, patience: int = 2,
                 class_weighted: bool = True, label_smoothing: float = 0.1,
                 freeze_embeddings: bool = True, freeze_layers: int = 0, grad_clip: float = 1.0,
                 threads: int = 0, allow_download: bool = False, seed: int = 13, device: str = "cpu",
                 predict_batch_size: int = 16):
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
        self.threads = threads
        self.allow_download = allow_download
        self.seed = seed
        self.device = device
        self.predict_batch_size = predict_batch_size

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
                path, num_labels=len(self.labels),
                id2label=dict(enumerate(self.labels)),
                label2id={label: i for i, label in enumerate(self.labels)},
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load {self.pretrained!r} from {path}: {exc}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
        return tokenizer, model

    def _freeze(self, model: torch.nn.Module) -> None:
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

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        base_prefix = model.base_model_prefix + "."
        groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            is_head = not name.startswith(base_prefix)
            no_decay = p.ndim < 2  # biases and LayerNorm weights
            groups.setdefault((is_head, no_decay), []).append(p)
        params = [
            {"params": ps, "lr": self.head_learning_rate if is_head else self.learning_rate,
             "weight_decay": 0.0 if no_decay else self.weight_decay}
            for (is_head, no_decay), ps in groups.items()
        ]
        return torch.optim.AdamW(params)

    # -- training ---------------------------------------------------------------------------
    def _fit(self, X, y, X_val, y_val) -> None:
        set_threads(self.threads)
        seed_everything(self.seed)
        self.tokenizer_, self.model_ = self._build()
        model = self.model_.to(self.device)
        self._freeze(model)
        index = {label: i for i, label in enumerate(self.labels)}
        targets = torch.tensor([index[v] for v in y])
        weights = None
        if self.class_weighted:
            counts = np.bincount(targets.numpy(), minlength=len(self.labels)).astype(float)
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
        total = steps_per_epoch * self.epochs
        warmup = int(self.warmup_ratio * total)
        optimizer = self._optimizer(model)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup
            else max(0.0, (total - s) / max(1, total - warmup)))

        best_f1, best_state, stale = -1.0, None, 0
        self.best_epoch_ = self.epochs
        for epoch in range(1, self.epochs + 1):
            model.train()
            started, running = time.perf_counter(), 0.0
            for batch_idx in length_grouped_order(lengths, self.batch_size, rng):
                features = [{k: encoded[k][i] for k in encoded.keys()} for i in batch_idx]
                batch = self.tokenizer_.pad(features, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                logits = model(**batch).logits
                loss = loss_fn(logits, targets[batch_idx].to(self.device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                optimizer.step()
                schedule.step()
                running += float(loss.detach()) * len(batch_idx)
            record = {"epoch": epoch, "train_loss": running / len(X),
                      "epoch_seconds": time.perf_counter() - started}
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

    def _logits(self, X: list[str]) -> np.ndarray:
        fast = getattr(self, "fast_model_", None)
        logits = batched_apply(fast if fast is not None else self.model_, self.tokenizer_, X,
                               self.predict_batch_size, self.max_length, lambda m, b: m(**b).logits,
                               device=self.device).astype(np.float64)
        if fast is not None and len(X):
            z = logits / getattr(self, "temperature_", 1.0)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            top2 = np.sort(p, axis=1)[:, -2:]
            close = np.flatnonzero(top2[:, 1] - top2[:, 0] < self.recheck_margin_)
            self.last_rechecked_ = len(close)
            if len(close):
                logits[close] = batched_apply(self.model_, self.tokenizer_, [X[i] for i in close],
                                              self.predict_batch_size, self.max_length,
                                              lambda m, b: m(**b).logits, device=self.device)
        return logits

    def to_device(self, device: str) -> "FineTuneClassifier":
        self.device = device
        self.model_.to(device)
        return self

    def make_fast(self, recheck_margin: float = 0.2) -> "FineTuneClassifier":
        """Faster CPU inference: an int8 copy (dynamic quantisation of the linear layers) scores
        every passage, and passages whose top two calibrated probabilities lie within
        ``recheck_margin`` are scored again in fp32. int8 alone flipped 2-4% of labels in our
        measurements, all near the decision boundary; the re-check keeps flips under 1%
        (experiments/bench_predict.py)."""
        if self.device != "cpu":
            return self
        import warnings

        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notice that eager quantisation moves to torchao
            self.fast_model_ = quantize_dynamic(copy.deepcopy(self.model_),
                                                {torch.nn.Linear: per_channel_dynamic_qconfig})
        self.recheck_margin_ = recheck_margin
        return self

    def _save(self, path: Path) -> None:
        self.model_.save_pretrained(path / "hf")
        self.tokenizer_.save_pretrained(path / "hf")

    def _load(self, path: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer_ = AutoTokenizer.from_pretrained(path / "hf")
        self.model_ = AutoModelForSequenceClassification.from_pretrained(path / "hf").to(self.device)
        self.model_.eval()
