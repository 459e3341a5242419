"""Pieces of the training loop that fine-tuning (`finetune`) and distilling its student (`distil`)
share: length-grouped batches, dynamic padding and the warm-up schedule.

A module of their own, so that the fine-tuner can use the distiller and the distiller these
pieces without either importing the other.
"""

from __future__ import annotations

import numpy as np


def warmup_then_linear_decay(optimizer, warmup: int, total: int):
    """Learning rate rising linearly over ``warmup`` steps, then falling linearly to 0 at ``total``."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )


def padded_batch(tokenizer, encoded, idx) -> dict:
    """Rows ``idx`` of a tokenised corpus, padded to the longest of them (dynamic padding)."""
    return tokenizer.pad([{k: encoded[k][i] for k in encoded.keys()} for i in idx], return_tensors="pt")


def length_grouped_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort within mega-chunks, shuffle the batches.

    Similar lengths mean little padding (CPU time is spent on real tokens) while the order still
    changes every epoch.
    """
    perm = rng.permutation(len(lengths))
    mega = batch_size * 32
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), mega):
        chunk = perm[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches
