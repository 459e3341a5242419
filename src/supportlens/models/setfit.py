"""SetFit-style training (model.kind = setfit): a contrastive stage, then a logistic head.

The contrastive stage tunes the sentence encoder so that excerpts sharing a code lie close
together and excerpts of different codes apart (a supervised contrastive loss over each batch,
which uses every same-code pair in the batch instead of sampling pairs as SetFit does). The head
is then the same logistic regression as ``embed_logreg``, optionally with the codebook prior. The
tuned encoder is saved in the model folder, so the folder stays self-contained.
"""

from __future__ import annotations

import numpy as np
import torch

from supportlens.models.embed import EmbedLogReg
from supportlens.models.encoders import set_threads


def supervised_contrastive_loss(z: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Khosla et al. (2020) SupCon loss for L2-normalised embeddings ``z`` and integer labels ``y``."""
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y[:, None] == y[None, :]) & ~self_mask
    has_pos = positives.any(dim=1)
    if not has_pos.any():
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positives, 0.0)).sum(1) / positives.sum(1).clamp(min=1)
    return per_anchor[has_pos].mean()


class SetFitClassifier(EmbedLogReg):
    kind = "setfit"
    frozen_encoder = False  # the encoder is tuned, so vectors of the pretrained one do not apply

    def __init__(
        self,
        labels: list[str],
        pretrained: str = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 128,
        C: float = 2.0,
        batch_size: int = 32,
        class_weight: str | None = "balanced",
        allow_download: bool = False,
        seed: int = 13,
        prior_mode: str = "off",
        prior_texts: dict[str, list[str]] | None = None,
        prior_weight: float = 1.0,
        prior_temperature: float = 0.05,
        prior_top_k: int = 3,
        contrastive_epochs: int = 1,
        contrastive_batch_size: int = 32,
        contrastive_learning_rate: float = 3e-5,
        contrastive_temperature: float = 0.1,
        freeze_layers: int = 2,
        threads: int = 0,
    ):
        super().__init__(
            labels=labels,
            pretrained=pretrained,
            max_length=max_length,
            C=C,
            batch_size=batch_size,
            class_weight=class_weight,
            allow_download=allow_download,
            seed=seed,
            prior_mode=prior_mode,
            prior_texts=prior_texts,
            prior_weight=prior_weight,
            prior_temperature=prior_temperature,
            prior_top_k=prior_top_k,
        )
        self.contrastive_epochs = contrastive_epochs
        self.contrastive_batch_size = contrastive_batch_size
        self.contrastive_learning_rate = contrastive_learning_rate
        self.contrastive_temperature = contrastive_temperature
        self.freeze_layers = freeze_layers
        self.threads = threads

    def _trainable(self) -> list[torch.nn.Parameter]:
        for p in self.encoder_.parameters():
            p.requires_grad = True
        for p in self.encoder_.embeddings.parameters():
            p.requires_grad = False
        layers = getattr(getattr(self.encoder_, "encoder", None), "layer", [])
        for layer in list(layers)[: self.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad = False
        return [p for p in self.encoder_.parameters() if p.requires_grad]

    def _batches(self, y_idx: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches (with four codes and 32 excerpts a batch, nearly every anchor has a
        same-code positive; anchors without one are skipped by the loss)."""
        order = rng.permutation(len(y_idx))
        size = self.contrastive_batch_size
        return [order[i : i + size] for i in range(0, len(order), size) if len(order[i : i + size]) >= 4]

    def _contrastive(self, X: list[str], y: np.ndarray) -> None:
        set_threads(self.threads)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        index = {label: i for i, label in enumerate(self.labels)}
        y_idx = np.array([index[v] for v in y])
        params = self._trainable()
        optimizer = torch.optim.AdamW(params, lr=self.contrastive_learning_rate, weight_decay=0.01)
        device = getattr(self, "device", "cpu")
        self.encoder_.to(device)
        self.history_ = []
        for epoch in range(1, self.contrastive_epochs + 1):
            self.encoder_.train()
            losses = []
            for chunk in self._batches(y_idx, rng):
                batch = self.tokenizer_(
                    [X[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = self.encoder_(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                z = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)
                loss = supervised_contrastive_loss(
                    z, torch.as_tensor(y_idx[chunk], device=device), self.contrastive_temperature
                )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                losses.append(float(loss.detach()))
            self.history_.append({"epoch": epoch, "contrastive_loss": float(np.mean(losses)) if losses else 0.0})
        self.encoder_.eval()
        for p in self.encoder_.parameters():
            p.requires_grad = False

    def _fit(self, X, y, X_val, y_val, sample_weight=None) -> None:
        """``sample_weight`` weighs the logistic head's loss only: the contrastive stage learns
        from pairs within a batch, where a per-passage weight has no single meaning, and treats
        every passage alike. Continued training (`continue_fit`, inherited) warm-starts the head
        alone and leaves the tuned encoder as it is."""
        self._check_prior()
        self._ensure_encoder()
        self._contrastive(X, y)
        self._fit_prior()
        self._fit_head(self.embed(X), y, sample_weight)
