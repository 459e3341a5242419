"""A smaller student of a fine-tuned classifier, for ``--fast`` scoring on CPU.

Why: int8 alone makes a 6-layer MiniLM about 1.5x faster on a CPU without VNNI, short of the 4x
over transformers' pipeline that batch scoring is asked for (experiments/bench_predict.py). A
student with half the teacher's layers, distilled on the teacher's logits, is twice as fast again.
It is not trusted on its own: where its top two probabilities lie within a gate margin, the
teacher scores the passage. The margin is chosen on validation passages the student never saw,
as the smallest that keeps the share of changed labels under a target, so the trade-off between
speed and fidelity is measured, not assumed.

Distillation needs no labels: the student learns the teacher's logits on the training texts and
on variations of them (single sentences, adjacent pairs, and pairs of sentences from different
excerpts), so that it meets text of other lengths and mixtures than the excerpts themselves.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from supportlens.models.base import softmax

GATE_MARGINS = tuple(round(0.05 * i, 2) for i in range(21))  # 0.0, 0.05, ..., 1.0
DEFAULT_GATE = 0.6  # used when there are no validation passages to choose it on
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class StudentReport:
    """How the student was made and what its gate costs, measured on validation passages."""

    layers: list[int]
    texts: int
    seconds: float
    gate: float
    target_changed: float
    val_passages: int = 0
    val_agreement: float | None = None  # student alone vs the teacher
    val_rescored: float | None = None  # share sent to the teacher by the gate
    val_changed: float | None = None  # share whose label differs from the teacher's after the gate
    history: list[dict[str, float]] = field(default_factory=list)
    gates: list[dict[str, float]] = field(default_factory=list)  # the trade-off at each margin tried

    def to_dict(self) -> dict:
        return asdict(self)


def kept_layers(n_layers: int, n_keep: int) -> list[int]:
    """Evenly spaced teacher layers, always ending with the last (which the head was trained on)."""
    if not 1 <= n_keep < n_layers:
        raise ValueError(
            f"a student keeps between 1 and {n_layers - 1} of the teacher's {n_layers} layers; got {n_keep}"
        )
    step = n_layers / n_keep
    return sorted({n_layers - 1 - int(i * step) for i in range(n_keep)})


def student_of(teacher, n_keep: int):
    """A copy of ``teacher`` (a transformers encoder classifier) with ``n_keep`` of its layers."""
    import torch

    base = getattr(teacher, teacher.base_model_prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(f"cannot make a student of {type(teacher).__name__}: no encoder layers found")
    keep = kept_layers(len(layers), n_keep)
    student = copy.deepcopy(teacher)
    encoder = getattr(student, student.base_model_prefix).encoder
    encoder.layer = torch.nn.ModuleList([encoder.layer[i] for i in keep])
    student.config.num_hidden_layers = len(keep)
    return student, keep


def distillation_texts(texts: Sequence[str], seed: int, per_text: float = 2.5) -> list[str]:
    """The texts, then their sentences, adjacent sentence pairs and random cross-excerpt pairs.

    At most ``per_text`` variations per text are added (deduplicated, shuffled with ``seed``)."""
    rng = np.random.default_rng(seed)
    sentences = [[s for s in SENTENCE_END.split(t.strip()) if len(s.split()) >= 4] for t in texts]
    variations = []
    for parts in sentences:
        if len(parts) > 1:
            variations += parts
            variations += [" ".join(parts[i : i + 2]) for i in range(0, len(parts) - 1, 2)]
    pool = [s for parts in sentences for s in parts]
    if len(pool) > 1:
        for _ in range(int(np.ceil(max(1.0, per_text) * len(texts)))):  # enough to fill per_text
            i, j = rng.choice(len(pool), size=2, replace=False)
            variations.append(f"{pool[i]} {pool[j]}")
    seen = set(texts)
    variations = [v for v in dict.fromkeys(variations) if v not in seen]
    rng.shuffle(variations)
    return list(texts) + variations[: int(per_text * len(texts))]


def distil(
    student,
    tokenizer,
    texts: Sequence[str],
    teacher_logits: np.ndarray,
    max_length: int,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    temperature: float = 2.0,
    seed: int = 13,
    order: Callable | None = None,
) -> list[dict[str, float]]:
    """Train ``student`` to match ``teacher_logits`` on ``texts`` (soft-label KL plus logit MSE).

    The KL term carries the teacher's ranking of the codes; the MSE term keeps the logits on the
    teacher's scale, so the teacher's calibration temperature stays valid for the student."""
    import torch

    from supportlens.models.batching import length_grouped_order, padded_batch, warmup_then_linear_decay

    order = order or length_grouped_order
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    targets = torch.tensor(np.asarray(teacher_logits, dtype=np.float32))
    base = getattr(student, student.base_model_prefix)
    for p in base.embeddings.parameters():
        p.requires_grad = False  # the vocabulary's vectors are the teacher's: keep them
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01)
    steps = epochs * int(np.ceil(len(texts) / batch_size))
    schedule = warmup_then_linear_decay(optimizer, max(1, int(0.06 * steps)), steps)
    rng = np.random.default_rng(seed)
    history = []
    student.train()
    for epoch in range(1, epochs + 1):
        started, running = time.perf_counter(), 0.0
        for idx in order(lengths, batch_size, rng):
            batch = padded_batch(tokenizer, encoded, idx)
            logits = student(**batch).logits
            target = targets[idx]
            kl = (
                torch.nn.functional.kl_div(
                    torch.log_softmax(logits / temperature, 1),
                    torch.softmax(target / temperature, 1),
                    reduction="batchmean",
                )
                * temperature**2
            )
            loss = kl + 0.5 * torch.nn.functional.mse_loss(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            running += float(loss.detach()) * len(idx)
        history.append(
            {"epoch": epoch, "distil_loss": running / len(texts), "epoch_seconds": time.perf_counter() - started}
        )
    student.eval()
    return history


def margins(logits: np.ndarray) -> np.ndarray:
    """Top probability minus the runner-up, per row (uncalibrated softmax: the gate's scale)."""
    p = np.sort(softmax(np.asarray(logits, dtype=np.float64)), axis=1)
    return p[:, -1] - p[:, -2]


def gate_effect(student_logits: np.ndarray, teacher_logits: np.ndarray, gate: float) -> tuple[float, float]:
    """(share re-scored by the teacher, share of labels changed) for one gate margin."""
    rescored = margins(student_logits) < gate
    changed = (np.argmax(student_logits, 1) != np.argmax(teacher_logits, 1)) & ~rescored
    return float(rescored.mean()), float(changed.mean())


def gate_table(student_logits: np.ndarray, teacher_logits: np.ndarray) -> list[dict[str, float]]:
    """Share re-scored and share changed at every margin of :data:`GATE_MARGINS`."""
    rows = []
    for gate in GATE_MARGINS:
        rescored, changed = gate_effect(student_logits, teacher_logits, gate)
        rows.append({"gate": gate, "rescored": rescored, "changed": changed})
    return rows


def chosen_row(table: list[dict[str, float]], target_changed: float) -> dict[str, float]:
    """The row of a :func:`gate_table` with the smallest margin whose changed share is within the
    target (the widest margin if none is)."""
    return next((row for row in table if row["changed"] <= target_changed), table[-1])


def choose_gate(student_logits: np.ndarray, teacher_logits: np.ndarray, target_changed: float) -> float:
    """The smallest margin on :data:`GATE_MARGINS` whose changed-label share is within the target."""
    return chosen_row(gate_table(student_logits, teacher_logits), target_changed)["gate"]
